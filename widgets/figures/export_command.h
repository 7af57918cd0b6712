#pragma once
/// `kdscope export`: the headless figure export. app/cmd_export.cpp parses the command line
/// into an ExportCommandLine and calls runExportCommand, which creates a QApplication on the
/// "offscreen" platform when none exists (unless QT_QPA_PLATFORM says otherwise), so it
/// works without a display. Main thread.

#include <optional>
#include <string>
#include <vector>

namespace kdscope::widgets {

struct ExportCommandLine {
  std::vector<std::string> runs;     ///< run files; several give comparison figures too
  /// A study's output folder or its study_summary.json: export the study's figures
  /// (study_figures.h) instead of a run's. A single positional folder or .json file is
  /// taken as a study too.
  std::string study;
  std::vector<std::string> figures;  ///< names, globs or "all" (default: all)
  std::vector<std::string> formats;  ///< pdf, svg, png (default: all three)
  std::string outDir;
  std::string style = "single-column"; ///< a preset name or a JSON style file
  std::optional<int> dpi;            ///< overrides the style's PNG resolution
  std::string index = "auto";        ///< md, html, none; auto: md when exporting all
  bool list = false;                 ///< print the figure names and exit
  bool printStyle = false;           ///< print the resolved style as JSON and exit
  bool csv = true;
};

/// Runs the command; returns the exit code (0 ok, 1 a figure failed, 2 bad usage or input).
/// Prints progress to stdout, problems to stderr.
int runExportCommand(const ExportCommandLine& line);

} // namespace kdscope::widgets
