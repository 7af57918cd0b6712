#pragma once
// The OpenMP wait policy both the `kdscope` command (launcher/launcher.cpp) and the program
// (main.cpp) start with. libgomp reads OMP_WAIT_POLICY once, in its own initialiser, before
// main: LibTorch's OpenMP pool and OpenBLAS's pool spinning against each other made a
// distillation step up to 2x slower on 2 cores (bench/README.md).

#include <cstdlib>

namespace kdscope::app {

/// Sets OMP_WAIT_POLICY=PASSIVE unless the user chose a policy; true when it set it.
inline bool choosePassiveOpenMpWait() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) {
    return false;
  }
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  return true;
}

} // namespace kdscope::app
