#pragma once

namespace kdscope::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

/// Parses the command line and runs the subcommand (or the GUI without arguments).
int runMain(int argc, char** argv);

} // namespace kdscope::app
