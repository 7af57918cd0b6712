#pragma once
/// Study figures: the builders that draw a study's views (widgets/views/study_view.h shows them,
/// `kdscope export --study` writes them) and the figures of a study for export, each with a
/// name, a caption and where its numbers come from (docs/figures.md, docs/studies.md). Every
/// number comes from core/study/summary.h: the views and the export only draw. GUI (main)
/// thread; the loss-curve builder reads the cells' run files.

#include <QString>

#include <memory>
#include <string>
#include <vector>

#include "core/study/summary.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/figure_registry.h"

namespace kdscope::widgets {

class PlotWidget;

/// The metric in words, as axis and colour-scale titles say it.
QString studyMetricTitle(core::StudyMetric metric);

/// The factors a study's views plot unless told otherwise: heatmap rows layers and columns
/// heads (else the first two factors; col empty with one factor), lines against
/// temperature (else the first factor) with one line per lambda (else none). Empty strings
/// where the study has no factors.
struct StudyAxes {
  std::string row;
  std::string col;
  std::string x;
  std::string series;
};
StudyAxes defaultStudyAxes(const core::StudySummary& summary);

namespace figures {

/// Names: study.gap_heatmap.TASK, study.gap_lines.TASK, study.gap_effects.TASK,
/// study.loss.TASK (the weighted total) and study.loss_term.TASK.TERM.
QString studyHeatmapName(const QString& task);
QString studyLinesName(const QString& task);
QString studyEffectsName(const QString& task);
QString studyLossName(const QString& task, const QString& term);

/// `task` "" averages over the tasks; `taskLabel` names it in the title. `col` "" gives one
/// column. Leaves a message on the plot when the study has no factors.
void buildStudyHeatmap(PlotWidget& plot, const core::StudySummary& summary, const std::string& task,
                       const QString& taskLabel, const std::string& row, const std::string& col,
                       core::StudyMetric metric);
/// The metric against `x`, one line per level of `series` ("" or equal to x: one line).
void buildStudyLines(PlotWidget& plot, const core::StudySummary& summary, const std::string& task,
                     const QString& taskLabel, const std::string& x, const std::string& series,
                     core::StudyMetric metric);
/// Each factor's level means (largest effect first) with dashed min..max whiskers. Returns
/// the effects in the order drawn (StudyView's table lists them).
std::vector<core::FactorEffect> buildStudyEffects(PlotWidget& plot, const core::StudySummary& summary,
                                                  const std::string& task, const QString& taskLabel,
                                                  core::StudyMetric metric);
/// One term's training curve ("loss": the weighted total) of every complete cell on `task`,
/// read from the run files under `studyDir`. Throws core::InputError for an unreadable file.
void buildStudyLossCurves(PlotWidget& plot, const core::StudySummary& summary, const std::string& studyDir,
                          const std::string& task, const std::string& term);

} // namespace figures

/// A study opened for export: its summary and folder.
struct StudyDocument {
  std::shared_ptr<const core::StudySummary> summary;
  QString summaryPath; ///< absolute, canonical path of study_summary.json
  QString dir;         ///< the study's output folder (the summary's folder)
  QStringList runFiles; ///< absolute paths of the complete cells' run files, in cell order
};

/// Opens a study for export: `path` is a study's output folder or its study_summary.json.
/// Throws core::InputError naming the file at fault: a missing folder or file, a file that
/// is not a study summary, a complete cell whose run file is missing.
StudyDocument openStudy(const QString& path);

/// Every figure of a study for `kdscope export --study`: per task the gap heatmap, the gap
/// lines and the main effects (when the grid has factors), and the loss curves of each
/// logged term (reads the cells' run files; throws core::InputError for an unreadable one).
std::vector<FigureSpec> studyFigures(const StudyDocument& study);

/// Sets what a pack index says about a study's figures (`kdscope export --study` and the
/// window's study export both call it, so their indexes match): the source lines (the
/// study's name, its summary file, the complete cells), the command that remakes the pack
/// (`kdscope export --study DIR ...`) and the heading of the study's section.
void describeStudyExport(const StudyDocument& study, ExportOptions* options);

} // namespace kdscope::widgets
