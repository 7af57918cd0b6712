#include "app/commands.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "core/common/cancel.h"
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  return exitCode;
}

} // namespace kdscope::app
