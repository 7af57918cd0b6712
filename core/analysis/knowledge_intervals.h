#pragma once
/// 95% intervals of the knowledge analysis's headline numbers (issue #14, docs/statistics.md
/// "Knowledge levels"): the gain decomposition, the instance level's Spearman of w with the
/// teacher's confidence and the domain level's geometry agreement (from probabilities), each
/// a percentile bootstrap over the eval examples of one run. Plain arrays (the conventions
/// of knowledge.h); pure.

#include <cstdint>
#include <vector>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// The gain decomposition with its intervals. The four students are scored on the same
/// examples, so every resample is drawn once and all four accuracies are computed on it
/// (a paired bootstrap): the interval of universe = acc_LS - acc_CE is that of the mean of
/// the per-example differences of correctness, and likewise for the others.
struct GainIntervals {
  Interval universe;
  Interval instance;
  Interval domain;
  Interval total;
  Interval lsShare; ///< (acc_LS - acc_CE) / (acc_KD - acc_CE); a resample with acc_KD == acc_CE is dropped
};

/// `correct` = 0/1 correctness of CE, LS, KD-pt and KD (in that order) on the same N examples.
/// Throws std::invalid_argument unless there are 4 equally long series.
[[nodiscard]] GainIntervals gainIntervals(const std::vector<std::vector<double>>& correct,
                                          const BootstrapOptions& options = {});

/// Spearman correlation of per-example values `a` and `b` (knowledge.h spearmanCorrelation,
/// NaN pairs skipped) with the percentile bootstrap over the pairs.
[[nodiscard]] Interval spearmanInterval(const std::vector<double>& a, const std::vector<double>& b,
                                        const BootstrapOptions& options = {});

/// Geometry agreement from probabilities: offDiagonalCorrelation of
/// classSimilarityFromProbs(teacher) and (student), both recomputed on each resample of the
/// examples (the same examples for both). Rows of classes absent from a resample are NaN and
/// their entries skipped, as on the full set. With fewer than 3 classes the ends are NaN (two
/// off-diagonal entries correlate +-1 by construction).
[[nodiscard]] Interval geometryAgreementProbsInterval(const std::vector<double>& teacherProbs,
                                                      const std::vector<double>& studentProbs,
                                                      const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                                      const BootstrapOptions& options = {});

} // namespace kdscope::core::analysis
