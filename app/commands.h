#pragma once
/// The command line. Each subcommand lives in its own app/cmd_*.cpp and registers itself
/// with a register* function; its callback stores the exit code.

#include <functional>

namespace CLI {
class App;
}

namespace kdscope::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

/// Parses the command line and runs the subcommand (or the GUI without arguments).
int runMain(int argc, char** argv);

/// Runs `body`, mapping core::InputError to exit code 2 and any other exception to 1,
/// each with its message on stderr.
int guarded(const std::function<int()>& body);

void registerRun(CLI::App& app, int& exitCode);
void registerInfo(CLI::App& app, int& exitCode);
void registerAnalyze(CLI::App& app, int& exitCode);
void registerExport(CLI::App& app, int& exitCode);
void registerStudy(CLI::App& app, int& exitCode);

} // namespace kdscope::app
