// kdscope: the one executable. No arguments opens the workbench; subcommands serve headless
// and batch use. Exit codes: 0 success, 1 job or analysis failed, 2 bad usage or bad input.

#include <unistd.h>

#include <cstdlib>

#include "app/commands.h"

int main(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY when it loads, before main: LibTorch's OpenMP pool and
  // OpenBLAS's pool spinning against each other made a distillation step up to 2x slower
  // on 2 cores (bench/README.md). The `kdscope` command (launcher/launcher.cpp) sets PASSIVE
  // before it starts this program; started directly, with no policy chosen, the program
  // restarts once with PASSIVE. If exec fails we simply go on with the inherited environment.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv("/proc/self/exe", argv);
  }
  return kdscope::app::runMain(argc, argv);
}
