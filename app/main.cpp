// kdscope: the one executable. No arguments opens the workbench; subcommands serve headless
// and batch use. Exit codes: 0 success, 1 job or analysis failed, 2 bad usage or bad input.

#include <unistd.h>

#include "app/commands.h"
#include "app/openmp_wait.h"

int main(int argc, char** argv) {
  // The `kdscope` command (launcher/launcher.cpp) chose the wait policy before it started
  // this program; started directly, with no policy chosen, the program restarts once with
  // PASSIVE (openmp_wait.h). If exec fails we simply go on with the inherited environment.
  if (kdscope::app::choosePassiveOpenMpWait()) {
    ::execv("/proc/self/exe", argv);
  }
  return kdscope::app::runMain(argc, argv);
}
