// kdscope report RUN.h5|RUN_DIR|REPLICATE_DIR --out DIR: the distillation loss report as a
// self-contained HTML page and a PDF (docs/report.md). The content is built in core
// (core/report/report.h); the PDF and the figures need Qt (widgets/report/report_writer.h).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "app/commands.h"

#ifdef KDSCOPE_WITH_GUI
#include "widgets/report/report_writer.h"
#endif

namespace kdscope::app {

void registerReport(CLI::App& app, int& exitCode) {
  auto input = std::make_shared<std::string>();
  auto outDir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "report",
      "Write the distillation loss report of a run file, a run folder, a replicate folder or a study folder: DIR/report.html "
      "(self-contained: CSS and figures inline) and DIR/report.pdf, with the figures and their CSVs in "
      "DIR/figures. See docs/report.md.");
  cmd->add_option("input", *input, "run file (.h5), run folder (with run.h5), replicate folder (replicates.json) or study folder "
                  "(study_summary.json)")
      ->required();
  cmd->add_option("-o,--out", *outDir, "output folder (created if needed)")->required();
  cmd->callback([input, outDir, &exitCode]() {
#ifdef KDSCOPE_WITH_GUI
    exitCode = guarded([&]() { return widgets::runReportCommand(*input, *outDir); });
#else
    std::cerr << "kdscope report: this KDScope was built without the GUI (KDSCOPE_BUILD_GUI=OFF); the PDF and "
                 "figures need Qt\n";
    exitCode = kExitBadInput;
#endif
  });
}

} // namespace kdscope::app
