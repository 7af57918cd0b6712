// kdscope: the one executable. No arguments opens the workbench; subcommands serve headless
// and batch use. Exit codes: 0 success, 1 job or analysis failed, 2 bad usage or bad input.

#include "app/commands.h"

int main(int argc, char** argv) { return kdscope::app::runMain(argc, argv); }
