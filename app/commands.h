#pragma once
/// The command line. Each subcommand lives in its own app/cmd_*.cpp and registers itself
/// with a register* function; its callback stores the exit code.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/common/progress.h"

namespace CLI {
class App;
}

namespace kdscope::core {
class CancelToken;
struct JobIssue;
} // namespace kdscope::core

namespace kdscope::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
/// Only between `kdscope run --nproc` and the ranks it starts: this rank stopped because
/// another one failed (or it lost contact); the launcher then names the other.
inline constexpr int kExitStoppedByPeer = 3;

/// Parses the command line and runs the subcommand (or the GUI without arguments).
int runMain(int argc, char** argv);

/// Runs `body`, mapping core::InputError to exit code 2 and any other exception to 1,
/// each with its message on stderr.
int guarded(const std::function<int()>& body);

/// A time for progress lines: "05m07s", "2h05m07s"; "--" for a negative (unknown) time.
std::string formatDuration(double seconds);

/// The one terminal progress printer of `kdscope run`, `analyze` and `study`, on stderr: on a
/// terminal one updating line for training steps, otherwise nothing for them; a line per
/// epoch, phase, message and warning, with the elapsed time when `showElapsed`.
class TerminalProgress {
public:
  explicit TerminalProgress(bool showElapsed = false);
  void operator()(const core::ProgressEvent& e);
  /// Ends an updating step line, so the next output starts on a clean line.
  void clearLine();

private:
  bool m_tty;
  bool m_showElapsed;
  bool m_dirty = false;
  std::chrono::steady_clock::time_point m_last{};
};

/// Prints "kdscope COMMAND: PATH is not a valid WHAT:" and then each issue, indented, on stderr.
void printIssues(const std::string& command, const std::string& path, const std::string& what,
                 const std::vector<core::JobIssue>& issues);

/// While it lives, SIGINT and SIGTERM cancel `token` (the handler makes a lock-free atomic
/// store, which is async-signal-safe); afterwards they do nothing. One at a time.
class CancelOnSignal {
public:
  explicit CancelOnSignal(core::CancelToken& token);
  ~CancelOnSignal();
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;
};

/// `kdscope run ... --nproc N`: runs this executable N times as the ranks of a local
/// data-parallel group (app/launch_ranks.cpp) and waits; names the rank that failed first.
int launchRanks(int nproc);
/// Whether this process is a rank started by launchRanks (KDSCOPE_LAUNCHER is set).
bool launchedByKdscope();

/// `kdscope info STUDY_DIR` (cmd_info_study.cpp): a folder holding study_summary.json.
bool isStudyDir(const std::string& path);
int commandStudyInfo(const std::string& dir);

void registerRun(CLI::App& app, int& exitCode);
void registerInfo(CLI::App& app, int& exitCode);
void registerAnalyze(CLI::App& app, int& exitCode);
void registerExport(CLI::App& app, int& exitCode);
void registerStudy(CLI::App& app, int& exitCode);
void registerCheckModel(CLI::App& app, int& exitCode);
void registerReport(CLI::App& app, int& exitCode);

} // namespace kdscope::app
