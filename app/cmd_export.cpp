// kdscope export RUN.h5 [RUN2.h5 ...] --figure NAME|all --format pdf,svg,png --out DIR:
// figures for papers, each with a CSV of its numbers, and a figure pack with an index;
// kdscope export --study STUDY_DIR ... the same for a study's figures. The
// work is in widgets/figures/export_command.cpp (it needs Qt); this file only parses the options.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "app/commands.h"

#ifdef KDSCOPE_WITH_GUI
#include "widgets/figures/export_command.h"
#endif

namespace kdscope::app {

#ifdef KDSCOPE_WITH_GUI

void registerExport(CLI::App& app, int& exitCode) {
  auto line = std::make_shared<widgets::ExportCommandLine>();
  auto dpi = std::make_shared<int>(0);
  auto* cmd = app.add_subcommand(
      "export",
      "Export figures of runs to PDF, SVG and PNG, each with a CSV of the numbers plotted. Works without a display.\n"
      "  kdscope export RUN.h5 --list                         names every figure the run can produce\n"
      "  kdscope export RUN.h5 --figure layers.cka.TASK.STUDENT --format pdf --out figs\n"
      "  kdscope export RUN.h5 [RUN2.h5 ...] --figure all --out pack --index html   a figure pack\n"
      "  kdscope export --study STUDY_DIR --figure all --out figs   a study's figures (gap heatmap, lines,\n"
      "                                                           main effects, loss curves per cell)\n"
      "Several runs add comparison figures (compare.*). See docs/figures.md and docs/studies.md.");
  cmd->add_option("runs", line->runs, "run files (.h5); a replicated job's folder (replicates.json) gives its replicates' runs; any other single "
                  "folder or .json file is taken as --study");
  cmd->add_option("--study", line->study,
                  "a study's output folder (kdscope study --out DIR) or its study_summary.json: export the "
                  "study's figures instead of a run's");
  cmd->add_option("-f,--figure", line->figures,
                  "figure names, globs (\"layers.*\") or all; repeat or separate with commas (default: all)")
      ->delimiter(',');
  cmd->add_option("--format", line->formats, "pdf, svg, png; repeat or separate with commas (default: all three)")
      ->delimiter(',');
  cmd->add_option("-o,--out", line->outDir, "output folder (created if needed)");
  cmd->add_option("-s,--style", line->style,
                  "a preset (single-column, double-column, slides) or a JSON style file (default: single-column)");
  cmd->add_option("--dpi", *dpi, "PNG resolution, overriding the style's");
  cmd->add_option("--index", line->index, "index of the figures: md, html or none (default: md with --figure all)");
  cmd->add_flag("--list", line->list, "print the names of every figure the runs can produce, then exit");
  cmd->add_flag("--print-style", line->printStyle, "print the style (preset or file) as JSON, then exit");
  auto* noCsv = cmd->add_flag("--no-csv", "do not write the CSV beside each figure");
  cmd->callback([line, dpi, noCsv, &exitCode]() {
    exitCode = guarded([&]() {
      line->csv = noCsv->count() == 0;
      if (*dpi != 0) {
        line->dpi = *dpi;
      }
      return widgets::runExportCommand(*line);
    });
  });
}

#else

void registerExport(CLI::App& app, int& exitCode) {
  auto* cmd = app.add_subcommand("export", "Export figures (needs KDScope built with the GUI: Qt draws them)");
  cmd->allow_extras();
  cmd->callback([&exitCode]() {
    std::cerr << "kdscope export: this KDScope was built without the GUI (KDSCOPE_BUILD_GUI=OFF); figures need Qt\n";
    exitCode = kExitBadInput;
  });
}

#endif

} // namespace kdscope::app
