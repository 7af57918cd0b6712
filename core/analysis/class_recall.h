#pragma once
/// Per-class recall with intervals (docs/statistics.md, "Per-class recall"): each class's
/// recall with its 95% percentile bootstrap interval over the class's eval examples, and the
/// paired difference of two models on the same examples. Used by the report and the Tasks
/// view's recall figure, so both give the same numbers. Torch-free.

#include <cstdint>
#include <vector>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// One class of a model (or the paired difference of two).
struct ClassRecall {
  std::size_t examples = 0; ///< eval examples of the class (0: estimate and ends NaN)
  Interval recall;          ///< bootstrapMean of the 0/1 "predicted this class" over them
};

/// Recall of each class of `logits` [N, C] on `labels` with its interval (bootstrapMean with
/// `options`; the defaults are the analysis's, B = 2000, seed 14).
[[nodiscard]] std::vector<ClassRecall> classRecallIntervals(const std::vector<float>& logits,
                                                            const std::vector<std::int64_t>& labels,
                                                            std::size_t classes, const BootstrapOptions& options = {});

/// recall(first) - recall(second) of each class, paired on the class's examples
/// (pairedBootstrap: percentile interval and centred p); a class without examples has NaN.
[[nodiscard]] std::vector<PairedComparison> classRecallDifferences(const std::vector<float>& first,
                                                                   const std::vector<float>& second,
                                                                   const std::vector<std::int64_t>& labels,
                                                                   std::size_t classes,
                                                                   const BootstrapOptions& options = {});

} // namespace kdscope::core::analysis
