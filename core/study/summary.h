#pragma once
/// The study summary file and the numbers the study views plot (docs/studies.md). Plain
/// structs, no torch or Qt: widgets/ and app/ include this header.
///
/// The summary is rebuilt from the cells' own run files every time (never accumulated), so
/// it always agrees with them: the accuracies are the run reader's (eval/logits against
/// eval/labels), the gap is teacher minus student.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/study/replicate_group.h"
#include "core/study/study_replicate_stats.h"
#include "core/study/study_spec.h"
#include "core/study/task_sensitivity.h"

namespace kdscope::core {

inline constexpr int kStudySummaryVersion = 1;

/// One task of one cell. Accuracies are fractions in 0..1; NaN when the cell did not finish.
struct StudyTaskResult {
  std::string task;
  double teacherAccuracy;       ///< the study's (final) teacher
  double studentAccuracy;
  double gap;                   ///< teacherAccuracy - studentAccuracy
  double retained;              ///< studentAccuracy / teacherAccuracy
  /// The teacher this student learned from: the final teacher, or the checkpoint of its
  /// teacher_epoch (from the student's objective attribute).
  double sourceTeacherAccuracy;
  double finalLoss;             ///< last logged training objective of the student
  std::int64_t trainSteps = 0;
  std::int64_t parameters = 0;  ///< the student's trainable parameters
  std::map<std::string, double> finalTerms; ///< last logged value of each unweighted term
  StudyTaskResult();
};

struct StudyCellResult {
  std::string name;
  std::vector<std::size_t> levels; ///< level index per factor, in the summary's factor order
  std::string status;              ///< the run file's status, or "missing"
  std::string runFile;             ///< relative to the study's output folder
  std::vector<StudyTaskResult> tasks; ///< in the summary's task order
};

struct StudySummary {
  std::string name;
  std::string studentName = "student";
  std::vector<StudyFactor> factors;
  std::vector<std::string> tasks;
  std::vector<StudyCellResult> cells;
  /// Per task and compression measure, the slope of the retained fraction with its interval
  /// and rank (core/study/task_sensitivity.h); empty with fewer than 2 complete cells.
  std::vector<TaskSensitivity> sensitivity;
  /// A replicated study: the statistics over the replicates (study_replicate_stats.h); the
  /// cells' numbers above are then the means over the replicates and the sensitivity's
  /// intervals are over the replicates. Empty for a study of one run per cell.
  StudyReplicateStats replicates;
  [[nodiscard]] std::size_t completeCells() const;
  /// Index of a factor by name, or -1.
  [[nodiscard]] int factorIndex(const std::string& name) const;
};

/// Reads every cell's run file under `outDir` (OUT/cells/<cell>/run.h5), with readStudyCell.
/// A replicated study reads each replicate's (OUT/rep-<seed>/cells/<cell>/run.h5) and
/// combines them (combineStudyReplicates). Throws only on allocation failure.
StudySummary buildStudySummary(const StudySpec& study, const std::string& outDir);

/// One cell's results from OUT/cells/<cell>/run.h5, with NaN for what the file lacks. Status:
/// the run file's own; "missing" without a file; "running" while another process has it open
/// for writing (its writer's lock, runFileBeingWritten); "unreadable" when it cannot be read.
StudyCellResult readStudyCell(const StudySpec& study, const StudyCell& cell, const std::string& outDir);

/// Whether a process holds the run file open for writing (RunWriter's exclusive lock; on a
/// file system without locks, never).
bool runFileBeingWritten(const std::string& path);

/// Writes OUT/study_summary.json and OUT/study_summary.csv (one row per cell and task).
/// Throws InputError naming the file when it cannot be written.
void writeStudySummary(const StudySummary& summary, const std::string& outDir);

/// Reads a study_summary.json. Throws InputError naming the file and field at fault.
StudySummary readStudySummary(const std::string& path);

/// What a view plots per cell.
enum class StudyMetric { Gap, StudentAccuracy, Retained, SourceGap };
const char* toString(StudyMetric metric);

/// The metric of one cell for a task; `task` empty averages the cell's tasks (NaN if any
/// task is NaN). SourceGap is sourceTeacherAccuracy - studentAccuracy.
double cellMetric(const StudySummary& summary, const StudyCellResult& cell, const std::string& task,
                  StudyMetric metric);

/// Statistics of the metric over the complete cells at one level of a factor.
struct LevelStats {
  std::string level;
  double value = 0.0;      ///< the level as a number (StudyFactor::values)
  std::size_t count = 0;   ///< complete cells at this level
  double mean = 0.0;       ///< NaN when count is 0
  double stddev = 0.0;     ///< population standard deviation over those cells (0 for one)
  double min = 0.0;
  double max = 0.0;
};

/// A pipeline component's contribution: the main effect of one factor.
struct FactorEffect {
  std::string factor;
  std::vector<LevelStats> levels;
  /// max - min of the level means: how much choosing this factor's level moves the metric
  /// on average over the rest of the grid.
  double effect = 0.0;
  /// Mean over levels of the within-level standard deviation: how much the rest of the
  /// grid moves the metric at a fixed level (the spread to read the effect against).
  double spread = 0.0;
};

/// The main effect of every factor, in factor order.
std::vector<FactorEffect> mainEffects(const StudySummary& summary, const std::string& task, StudyMetric metric);

/// The metric over two factors (e.g. layers x heads, temperature x lambda), averaged over
/// the other factors' levels. Row-major [rows x cols]; NaN where no complete cell.
struct StudyGrid {
  std::string rowFactor;
  std::string colFactor;
  std::vector<std::string> rowLevels;
  std::vector<std::string> colLevels;
  std::vector<double> rowValues;
  std::vector<double> colValues;
  std::vector<double> mean;
  std::vector<double> stddev;
  std::vector<std::size_t> count;
  [[nodiscard]] double at(std::size_t row, std::size_t col) const { return mean[row * colLevels.size() + col]; }
};
/// `colFactor` may be empty: one column (the metric against one factor). Throws
/// InputError for an unknown factor name.
StudyGrid studyGrid(const StudySummary& summary, const std::string& task, const std::string& rowFactor,
                    const std::string& colFactor, StudyMetric metric);

/// A replicated study: each value of studyGrid(summary, task, rowFactor, colFactor, metric)
/// over the replicates. In each replicate the grid value is computed from that replicate's
/// own cell values (summary.replicates: the mean over the grid cell's complete cells with a
/// finite value; task "" averages the tasks of each cell first, NaN when one is missing),
/// then summarised over the replicates (mean, sd, 95% Student-t interval over
/// kOverReplicates). Row-major as the grid; empty when the study has no replicates. Throws
/// as studyGrid does.
std::vector<StudyRepValue> studyGridReplicates(const StudySummary& summary, const std::string& task,
                                               const std::string& rowFactor, const std::string& colFactor,
                                               StudyMetric metric);
/// The same for a grid the caller already has (`grid` = studyGrid of these arguments).
std::vector<StudyRepValue> studyGridReplicates(const StudySummary& summary, const StudyGrid& grid,
                                               const std::string& task, const std::string& rowFactor,
                                               const std::string& colFactor, StudyMetric metric);

/// One cell's training curve of one term (or "loss", the weighted total) on one task.
struct TermCurve {
  std::string cell;
  std::vector<std::int64_t> steps;
  std::vector<float> values;
};
/// The curves of every complete cell that logged `term`, read from the run files under
/// `outDir`, in cell order.
std::vector<TermCurve> termCurves(const StudySummary& summary, const std::string& outDir, const std::string& task,
                                  const std::string& term);
/// A replicated study: each complete cell's curve of `term` in every replicate (the same
/// cell's run file under each replicate's folder, summary.replicates.dirs), summarised at each
/// logged step over the replicates that logged it: the mean and the 95% Student-t interval
/// (core/study/replicate_group.h, replicateBand). A replicate whose run file is missing or did
/// not log the term is left out (`replicates` counts those that gave a curve). Empty for a
/// study without replicates.
struct TermBand {
  std::string cell;
  std::size_t replicates = 0;
  ReplicateBand band;
};
std::vector<TermBand> termBands(const StudySummary& summary, const std::string& outDir, const std::string& task,
                                const std::string& term);
/// Every term name the complete cells logged for a task ("loss" first).
std::vector<std::string> termNames(const StudySummary& summary, const std::string& outDir, const std::string& task);

} // namespace kdscope::core
