#pragma once
/// A replicated study's statistics over replicates (issue #14; docs/studies.md,
/// "Replicates"): every cell metric, every factor's level means, effect and spread, and
/// every task's sensitivity slope, computed in each replicate (OUT/rep-<seed>/, an ordinary
/// study) and summarised over the replicates: the mean, the sample sd and the Student-t 95%
/// interval (over = analysis::kOverReplicates). Two levels of a factor are compared with a
/// paired t over the replicates (the same seed in both: the same teacher, split and
/// initialisation stream), a cell against its teacher with a paired t on the per-replicate
/// accuracies. Plain structs, no torch or Qt (widgets/ includes this through summary.h).

#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/multiple_testing.h"
#include "core/analysis/stats.h"

namespace kdscope::core {

struct StudySummary;

/// One number over the replicates: its value in each (seed order; NaN where a replicate has
/// none) and the mean, sd and t interval of the finite ones.
struct StudyRepValue {
  std::vector<double> values;
  analysis::ReplicateSummary summary;
};
StudyRepValue studyRepValue(const std::vector<double>& values);

/// A cell on a task over the replicates: student_accuracy, teacher_accuracy, gap, retained,
/// source_gap, and the paired t of teacher minus student accuracy (the gap) over replicates.
struct StudyRepCell {
  std::string cell;
  std::string task;
  StudyRepValue studentAccuracy;
  StudyRepValue teacherAccuracy;
  StudyRepValue gap;
  StudyRepValue retained;
  StudyRepValue sourceGap;
  analysis::PairedComparison gapTest; ///< pairedT(teacher accuracy, student accuracy)
  analysis::AdjustedP gapHolm;        ///< Holm over the gap's family (studyReplicateStats)
};

/// Two levels of a factor compared over the replicates: d_r = level mean(first) - level
/// mean(second) in replicate r, paired t.
struct StudyRepLevelPair {
  std::string first;
  std::string second;
  std::vector<double> differences;
  analysis::PairedComparison test;
  analysis::AdjustedP holm; ///< Holm over its metric's family (studyReplicateStats)
};

/// One factor's main effect on one metric and task ("" = mean over the tasks; always there) over the
/// replicates: each level's mean (mainEffects in each replicate), the effect (max - min of
/// the level means) and the spread, and every pair of levels compared.
struct StudyRepEffect {
  std::string task;
  std::string metric; ///< toString(StudyMetric)
  std::string factor;
  std::vector<std::string> levels;
  std::vector<StudyRepValue> levelMeans;
  StudyRepValue effect;
  StudyRepValue spread;
  std::vector<StudyRepLevelPair> pairs; ///< (0,1), (0,2), ..., (1,2), ...
};

/// One task's sensitivity slope on one measure, fitted in each replicate.
struct StudyRepSlope {
  std::string task;
  std::string measure;
  StudyRepValue slope;
};

struct StudyReplicateStats {
  std::vector<std::uint64_t> seeds;
  std::vector<std::string> dirs; ///< relative to the study's output folder: rep-<seed>
  std::vector<StudyRepCell> cells;
  std::vector<StudyRepEffect> effects;
  std::vector<StudyRepSlope> slopes;
  [[nodiscard]] bool empty() const { return seeds.empty(); }
  [[nodiscard]] const StudyRepCell* cell(const std::string& cell, const std::string& task) const;
  [[nodiscard]] const StudyRepEffect* effect(const std::string& task, const std::string& metric,
                                             const std::string& factor) const;
  [[nodiscard]] const StudyRepSlope* slope(const std::string& task, const std::string& measure) const;
};

/// The statistics over the replicates' summaries (one per seed, each an ordinary study
/// summary of the same cells, factors and tasks). Only complete cells count; a cell missing
/// in a replicate is NaN there (and left out of that replicate's level means).
StudyReplicateStats studyReplicateStats(const std::vector<std::uint64_t>& seeds,
                                        const std::vector<StudySummary>& replicates);

/// Each entry of a replicated study's grid (studyGridReplicates) tested against 0, as the
/// heatmap's "no detectable difference" mark uses it: the one-sample t of the entry's finite
/// replicate values (pairedT against 0: two-sided p, df = n - 1; NaN with fewer than 2), then
/// Holm over the grid's entries with a p (the family is the grid shown). `rawP`, when given,
/// receives each entry's unadjusted p. Row-major as the grid.
std::vector<analysis::AdjustedP> studyGridHolm(const std::vector<StudyRepValue>& grid,
                                               std::vector<double>* rawP = nullptr);

/// The summary the study views read for a replicated study: the cells of the first
/// replicate with every number the mean over the replicates (status "complete" only when
/// complete in every replicate; run_file the first replicate's), the task sensitivity's
/// slope the mean over the replicates with its t interval (over kOverReplicates, ranked by
/// it), and `stats`.
StudySummary combineStudyReplicates(const std::vector<std::uint64_t>& seeds,
                                    const std::vector<StudySummary>& replicates);

} // namespace kdscope::core
