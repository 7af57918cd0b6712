#pragma once
/// Single-head ablation with intervals (issue #15; docs/statistics.md, "Heads"): each head's
/// accuracy drop (intact accuracy - accuracy with that head gated to 0 alone) and loss increase
/// (mean cross-entropy with the head ablated - intact), each with its 95% paired percentile
/// bootstrap over eval examples: every resample draws examples once (bootstrapResampleIndices
/// of stats.h) and takes the mean over those rows of the per-example difference, for every
/// head from the same draws. Torch-free; pure and thread-safe; a shape error throws
/// std::invalid_argument.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/analysis/runner_up.h"
#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// Row-major [layers * heads] each (index l * heads + h).
struct HeadAblationIntervals {
  std::vector<double> accuracyDrop;   ///< mean_i (correct_i - correct_ih): > 0 when the head helps
  std::vector<double> accuracyDropLo; ///< 95% paired bootstrap interval of accuracyDrop
  std::vector<double> accuracyDropHi;
  std::vector<double> lossIncrease;   ///< mean_i (loss_ih - loss_i), nats
  std::vector<double> lossIncreaseLo;
  std::vector<double> lossIncreaseHi;
  int resamples = 0;
  std::size_t examples = 0;
  /// The head whose ablation lowers accuracy most against the runner-up, paired over examples
  /// from the same resamples: accuracyTop.difference = drop(top) - drop(runner-up) (runner_up.h).
  RunnerUp accuracyTop;
  /// The same for the loss increase: rise(top) - rise(runner-up), nats.
  RunnerUp lossTop;
};

/// From the per-example outcomes of HeadScores (model_analysis.h): intact correctness and loss
/// [N], and under each ablation [N, cells] row-major. N = 0 gives NaN throughout.
[[nodiscard]] HeadAblationIntervals headAblationIntervals(const std::vector<std::uint8_t>& intactCorrect,
                                                          const std::vector<double>& intactLoss,
                                                          const std::vector<std::uint8_t>& ablatedCorrect,
                                                          const std::vector<double>& ablatedLoss, std::size_t cells,
                                                          const BootstrapOptions& options = {});

} // namespace kdscope::core::analysis
