#include "app/commands.h"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "core/common/cancel.h"
#include "core/analysis/proportion.h"
#include "core/common/error.h"
#include "core/job/job_spec.h"

#ifdef KDSCOPE_WITH_GUI
#include "widgets/shell/application.h"
#endif

namespace kdscope::app {

namespace {

// Set by CancelOnSignal; read by the SIGINT/SIGTERM handler.
core::CancelToken* g_cancel = nullptr;

extern "C" void onCancelSignal(int /*signal*/) {
  if (g_cancel != nullptr) {
    g_cancel->cancel();
  }
}

} // namespace

CancelOnSignal::CancelOnSignal(core::CancelToken& token) {
  g_cancel = &token;
  std::signal(SIGINT, onCancelSignal);
  std::signal(SIGTERM, onCancelSignal);
}

CancelOnSignal::~CancelOnSignal() { g_cancel = nullptr; }

TerminalProgress::TerminalProgress(bool showElapsed)
    : m_tty(::isatty(STDERR_FILENO) != 0), m_showElapsed(showElapsed) {}

void TerminalProgress::operator()(const core::ProgressEvent& e) {
  using Kind = core::ProgressEvent::Kind;
  const auto now = std::chrono::steady_clock::now();
  const double pct = 100.0 * e.fraction;
  std::string eta = "--";
  if (e.fraction > 0.01) {
    eta = formatDuration(e.elapsedSeconds * (1.0 - e.fraction) / e.fraction);
  }
  char head[48];
  if (m_showElapsed) {
    std::snprintf(head, sizeof head, "[%5.1f%% %6.1fs]", pct, e.elapsedSeconds);
  } else {
    std::snprintf(head, sizeof head, "[%5.1f%%]", pct);
  }
  if (e.kind == Kind::Step) {
    if (!m_tty || now - m_last < std::chrono::milliseconds(200)) {
      return;
    }
    m_last = now;
    std::fprintf(stderr, "\r%s %s/%s epoch %d/%d step %ld/%ld loss %.4f  eta %s   ", head, e.task.c_str(),
                 e.model.c_str(), e.epoch, e.epochs, e.step, e.steps, e.loss, eta.c_str());
    std::fflush(stderr);
    m_dirty = true;
    return;
  }
  clearLine();
  const char* warning = e.kind == Kind::Warning ? "warning: " : "";
  if (e.kind == Kind::Epoch) {
    std::fprintf(stderr, "%s %s/%s epoch %d/%d: eval accuracy %s, eval loss %.4f (elapsed %s, eta %s)\n", head,
                 e.task.c_str(), e.model.c_str(), e.epoch, e.epochs,
                 core::analysis::fractionWithWilsonText(e.evalAccuracy, e.evalExamples).c_str(), e.loss,
                 formatDuration(e.elapsedSeconds).c_str(), eta.c_str());
  } else if (e.task.empty()) {
    std::fprintf(stderr, "%s %s%s\n", head, warning, e.message.c_str());
  } else {
    std::fprintf(stderr, "%s %s%s%s%s: %s\n", head, warning, e.task.c_str(), e.model.empty() ? "" : "/",
                 e.model.c_str(), e.message.c_str());
  }
}

void TerminalProgress::clearLine() {
  if (m_dirty) {
    std::fprintf(stderr, "\r%-100s\r", "");
    m_dirty = false;
  }
}

std::string formatDuration(double seconds) {
  if (seconds < 0) {
    return "--";
  }
  const auto s = static_cast<long>(seconds);
  std::ostringstream out;
  if (s >= 3600) {
    out << s / 3600 << "h";
  }
  out << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m" << std::setw(2) << s % 60 << "s";
  return out.str();
}

void printIssues(const std::string& command, const std::string& path, const std::string& what,
                 const std::vector<core::JobIssue>& issues) {
  std::cerr << "kdscope " << command << ": " << path << " is not a valid " << what << ":\n";
  for (const auto& issue : issues) {
    std::cerr << "  " << issue.str() << "\n";
  }
}

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const core::InputError& e) {
    std::cerr << "kdscope: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "kdscope: " << e.what() << "\n";
    return kExitFailed;
  }
}

int runMain(int argc, char** argv) {
  // No arguments, or a single run file: the workbench window.
  const std::string first = argc >= 2 ? argv[1] : "";
  const bool guiWithFile = argc == 2 && first.size() > 3 && first.compare(first.size() - 3, 3, ".h5") == 0;
  if (argc <= 1 || guiWithFile) {
#ifdef KDSCOPE_WITH_GUI
    return widgets::runApplication(argc, argv);
#else
    std::cerr << "kdscope: built without the GUI; see 'kdscope --help'\n";
    return kExitBadInput;
#endif
  }
  CLI::App app{"KDScope: a workbench for studying what a student loses in knowledge distillation.\n"
               "Without arguments it opens the workbench window; 'kdscope RUN.h5' opens a run in it."};
  app.set_version_flag("--version", std::string(KDSCOPE_VERSION_STRING));
  app.require_subcommand(1);
  int exitCode = kExitBadInput;
  registerRun(app, exitCode);
  registerInfo(app, exitCode);
  registerAnalyze(app, exitCode);
  registerExport(app, exitCode);
  registerStudy(app, exitCode);
  registerCheckModel(app, exitCode);
  registerReport(app, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  return exitCode;
}

} // namespace kdscope::app
