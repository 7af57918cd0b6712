#include "app/commands.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "core/common/error.h"

#ifdef KDSCOPE_WITH_GUI
#include "widgets/application.h"
#endif

namespace kdscope::app {

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
