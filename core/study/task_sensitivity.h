#pragma once
/// Task sensitivity of a study over student sizes (issue #14; "What is Lost in Knowledge
/// Distillation?" asks which tasks are more sensitive to distillation): per task, the slope
/// of the retained fraction (student / teacher accuracy) against the compression ratio
/// (student / teacher parameters; also layers and heads per layer), with a 95% bootstrap
/// interval over eval examples, and the tasks ranked by it (docs/studies.md, "Task
/// sensitivity"). Plain structs, no torch or Qt: widgets/ and app/ include this header.

#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/multiple_testing.h"
#include "core/analysis/stats.h"

namespace kdscope::core {

struct StudySpec;
struct StudySummary;

/// Ordinary least squares of y on x: slope = sum (x - mx)(y - my) / sum (x - mx)^2,
/// intercept = my - slope mx. NaN (both) when fewer than 2 points or all x equal. Throws
/// std::invalid_argument when the sizes differ.
struct SlopeFit {
  double slope;
  double intercept;
};
[[nodiscard]] SlopeFit leastSquaresSlope(const std::vector<double>& x, const std::vector<double>& y);

/// The compression measures: x = student / teacher of each.
inline constexpr const char* kMeasureParameters = "parameters";
inline constexpr const char* kMeasureLayers = "layers";
inline constexpr const char* kMeasureHeads = "heads";
/// parameters, layers, heads.
const std::vector<std::string>& compressionMeasures();

/// One complete cell of one task: its compression ratios and the per-example correctness
/// of the student and of the (study's) teacher on the task's eval examples, in eval order.
struct SensitivityCell {
  std::string cell;
  double parameterRatio = 0.0; ///< student / teacher trainable parameters
  double layerRatio = 0.0;     ///< student / teacher encoder layers (MLPs: hidden layers)
  double headRatio = 0.0;      ///< student / teacher heads per layer (NaN for MLPs)
  std::vector<std::uint8_t> studentCorrect;
  std::vector<std::uint8_t> teacherCorrect;
};

/// The slope of one task against one measure.
struct TaskSensitivity {
  std::string task;
  std::string measure; ///< kMeasureParameters, kMeasureLayers or kMeasureHeads
  /// Slope of the retained fraction per unit of compression ratio; its interval is the
  /// percentile bootstrap over the task's eval examples (the same resample in every cell,
  /// so cells stay paired), over = analysis::kOverExamples, count = eval examples. NaN when
  /// the measure takes one value only over the cells (not varied by the study).
  analysis::Interval slope;
  double intercept = 0.0;
  std::size_t cells = 0; ///< complete cells in the fit
  /// 1 = the steepest slope (the most sensitive task) among the tasks with a slope on this
  /// measure; 0 when the slope is NaN.
  int rank = 0;
  std::vector<double> ratios;   ///< per cell, the x of the fit
  std::vector<double> retained; ///< per cell, the y of the fit (student / teacher accuracy)
};

/// The slopes of one task, one per measure (in compressionMeasures() order), from its
/// complete cells. Every cell must have the same number of eval examples (throws
/// std::invalid_argument otherwise); a resample whose teacher gets nothing right in some
/// cell is a NaN replicate and dropped.
[[nodiscard]] std::vector<TaskSensitivity> taskSensitivity(const std::string& task,
                                                           const std::vector<SensitivityCell>& cells,
                                                           const analysis::BootstrapOptions& options = {});

/// Ranks the slopes of each measure across tasks (fills `rank`; steepest first).
void rankTaskSensitivity(std::vector<TaskSensitivity>& slopes);

/// Every task's slopes from the complete cells' run files under `outDir` (at least 2 cells
/// with different ratios), ranked. The layer and head counts come from the cells' jobs; the
/// parameter counts and the correctness from the run files. A cell that cannot be read is
/// left out (its status already says why). Throws only on allocation failure.
[[nodiscard]] std::vector<TaskSensitivity> studyTaskSensitivity(const StudySpec& study, const StudySummary& summary,
                                                                const std::string& outDir,
                                                                const analysis::BootstrapOptions& options = {});

/// The slopes of `measure` in rank order (unranked, NaN slopes last).
[[nodiscard]] std::vector<TaskSensitivity> rankedSensitivity(const std::vector<TaskSensitivity>& slopes,
                                                             const std::string& measure);

/// Two tasks next to each other in one measure's rank order (issue #14, "against the
/// runner-up"), compared over the replicates: the paired t of the per-replicate slope
/// differences, steeper minus next (the replicates that have both; the same seed is one
/// pair). docs/studies.md, "Task sensitivity".
struct AdjacentRankComparison {
  std::string measure;
  int rank = 0;        ///< the steeper task's rank; the other has rank + 1
  std::string steeper; ///< the task ranked `rank`
  std::string next;    ///< the task ranked rank + 1
  /// slope(steeper) - slope(next): mean and t interval over the paired replicates, p of the
  /// paired t (analysis::pairedT); NaN ends with fewer than 2 pairs.
  analysis::PairedComparison difference;
  /// The p Holm-adjusted over the measure's adjacent comparisons (one family per measure).
  analysis::AdjustedP holm;
  /// The ends are known, the interval excludes 0 and the Holm p (else the raw p) is below
  /// 0.05 (analysis::detectable): the two ranks are distinguishable over replicates.
  bool distinguishable = false;
};

/// Each replicate's slope of one task and measure (NaN where a replicate lacks it), every
/// task's in the same replicate order (StudyReplicateStats::slopes).
struct ReplicateSlopes {
  std::string task;
  std::string measure;
  std::vector<double> values;
};

/// For each measure, each pair of adjacent ranks of `slopes` (1 and 2, 2 and 3, ...; ranks as
/// rankTaskSensitivity gives them) compared over the replicates in `perReplicate`. A pair
/// whose tasks have no replicate slopes is left out; no replicates give an empty list (the
/// ranks are then point estimates). Throws std::invalid_argument when two tasks' replicate
/// lists differ in length.
[[nodiscard]] std::vector<AdjacentRankComparison> adjacentRankComparisons(const std::vector<TaskSensitivity>& slopes,
                                                                          const std::vector<ReplicateSlopes>& perReplicate);

/// The same from a study summary: its replicates' slopes (summary.replicates.slopes); empty for
/// a study of one run per cell.
[[nodiscard]] std::vector<AdjacentRankComparison> adjacentRankComparisons(const StudySummary& summary);

/// How the ranks of one measure are to be read, in a sentence: with replicates, which adjacent
/// ranks are distinguishable ("rank 1 (a) and rank 2 (b): distinguishable over 5 replicates,
/// difference ... ; rank 2 (b) and rank 3 (c): no detectable difference ..."); without, that
/// the ranks are point estimates. Empty when the measure has fewer than 2 ranked tasks.
[[nodiscard]] std::string rankReading(const std::vector<TaskSensitivity>& slopes,
                                      const std::vector<AdjacentRankComparison>& comparisons,
                                      const std::string& measure, bool replicated);

} // namespace kdscope::core
