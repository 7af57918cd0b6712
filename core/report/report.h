#pragma once
/// The distillation loss report (issue #14; docs/report.md): for each task and student what
/// was kept and what was lost, where, on which examples, and the three knowledge levels,
/// each finding one sentence with its number, its 95% interval, what the interval is over and
/// its test. A difference whose interval holds 0 (or whose test has p >= 0.05) is written "no
/// detectable difference"; a number without an interval says why. Built here, without Qt,
/// from a run file (through AnalysisResults) or a replicate folder (replicates.h); the HTML
/// page is written here too, and the PDF by the widgets layer (widgets/report/).
#include <string>
#include <vector>

#include "core/analysis/multiple_testing.h"
#include "core/analysis/stats.h"

namespace kdscope::core {

struct ReportTable {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct ReportSection {
  std::string heading;
  std::vector<std::string> findings; ///< one sentence each
  std::vector<ReportTable> tables;
  std::vector<std::string> notes;    ///< what a number without an interval lacks, and why
};

struct Report {
  std::string title;
  std::string source;                ///< the run file or folder it was built from
  std::vector<std::string> preamble; ///< how to read it: the intervals, the tests, the words
  std::vector<ReportSection> sections;
  std::vector<std::string> runs;     ///< the run files it read (figures come from these)
  /// A study's report: the study's output folder; its figures are the study export's
  /// (study_figures.h), not a run's.
  std::string studyDir;
};

/// A run file (.h5), a replicate folder (replicates.json) or a study folder
/// (study_summary.json). Throws InputError naming the file for anything else or for a run
/// that cannot be read.
Report buildReport(const std::string& path);
Report buildRunReport(const std::string& runPath);
Report buildReplicateReport(const std::string& dir);
/// A study's output folder (report_study.cpp): per task each cell's kept fraction and gap
/// with its paired t, each factor's level means and the paired t of every pair of levels,
/// the task sensitivity; over replicates when the study has them, else single runs (said).
Report buildStudyReport(const std::string& dir);

/// A figure to inline in the HTML page: its SVG text (or, for `imageFile`, an <img> reference
/// relative to the page, for the PDF's HTML).
struct ReportFigure {
  std::string name;
  std::string caption;
  std::string svg;
  std::string imageFile;
};

/// The self-contained HTML page: CSS inline, the figures' SVG inline (none loaded from
/// elsewhere).
std::string reportHtml(const Report& report, const std::vector<ReportFigure>& figures);

// ---- the sentences (report_sentences.cpp) ----------------------------------------------

namespace report {

/// "the teacher" or "student NAME".
std::string who(const std::string& model);

/// The sentence of a paired accuracy difference `first - second` (fractions; written in
/// points). Detectable (analysis::detectable with the verdict p: the Holm p when `holm` has
/// one, else `pValue`): "FIRST beats SECOND on TASK by X points (95% CI lo to hi, TEST p = P,
/// BASIS)", the better one named first; with a Holm p, "TEST p = P, Holm p = Q of M tests".
/// Otherwise "no detectable difference between FIRST and SECOND on TASK: FIRST minus SECOND X
/// points (95% CI lo to hi, TEST p = P, BASIS)".
std::string differenceSentence(const std::string& first, const std::string& second, const std::string& task,
                               const analysis::Interval& difference, double pValue, const std::string& test,
                               const std::string& basis, const analysis::AdjustedP& holm = {});

/// The same sentence from a paired comparison, with its raw and (when its family was
/// adjusted) Holm p: "..., paired t p = 0.010, Holm p = 0.030 of 3 tests, BASIS)"; the
/// verdict uses the Holm p (report_study.cpp).
std::string differenceSentence(const std::string& first, const std::string& second, const std::string& task,
                               const analysis::PairedComparison& test, const analysis::AdjustedP& holm,
                               const std::string& basis);

/// "0.812 (95% CI 0.781 to 0.842, BASIS)"; a NaN interval end gives "(BASIS; no interval: WHY)".
std::string valueWithInterval(const analysis::Interval& interval, const std::string& basis, int decimals = 3);

/// Points: 0.0172 -> "1.7".
std::string points(double fraction);

} // namespace report

} // namespace kdscope::core
