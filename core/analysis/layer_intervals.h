#pragma once
/// 95% intervals of the per-layer headline numbers (issue #14; docs/statistics.md "Layers"):
/// the linear CKA of each matched (teacher, student) layer pair, the "diagonal" of the CKA
/// matrix at matched depth, with a percentile bootstrap over the eval examples. Plain arrays
/// (the conventions of cka.h); pure.

#include <cstddef>
#include <vector>

#include "core/analysis/runner_up.h"
#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// For each student hidden index i (0..Ls, hiddenS [N, Ls + 1, ds]) mapped to teacher hidden
/// index teacherOf[i] (hiddenT [N, Lt + 1, dt]; -1: unmapped, a NaN interval), the linear CKA
/// of the two layers (linearCka, columns centred, float64) with the percentile bootstrap over
/// the N rows: each resample takes the same rows from both layers and recomputes the CKA
/// (centring included; computed from the distinct rows weighted by their counts, the same
/// number up to float64 rounding). B = options.resamples, drawn as bootstrapResampleIndices(N, B, seed).
/// Throws std::invalid_argument on inconsistent sizes.
[[nodiscard]] std::vector<Interval> matchedCkaIntervals(const std::vector<float>& hiddenT, std::size_t layersT,
                                                        std::size_t widthT, const std::vector<float>& hiddenS,
                                                        std::size_t layersS, std::size_t widthS,
                                                        const std::vector<int>& teacherOf,
                                                        const BootstrapOptions& options = {});

/// matchedCkaIntervals and, from the same resamples, the lowest encoder pair (student index
/// i > 0, mapped, finite CKA; the embeddings are matched by construction) against the
/// next-lowest: lowest.difference = CKA(runner-up) - CKA(lowest) with its percentile interval
/// (runner_up.h). Not valid with fewer than two such pairs.
struct MatchedCkaWithRunnerUp {
  std::vector<Interval> cka;
  RunnerUp lowest;
};
[[nodiscard]] MatchedCkaWithRunnerUp matchedCkaWithRunnerUp(const std::vector<float>& hiddenT, std::size_t layersT,
                                                            std::size_t widthT, const std::vector<float>& hiddenS,
                                                            std::size_t layersS, std::size_t widthS,
                                                            const std::vector<int>& teacherOf,
                                                            const BootstrapOptions& options = {});

/// Head importance (Michel et al.; model_analysis.h HeadScores) with its 95% percentile
/// bootstrap over eval examples: each resample averages the resampled rows of
/// `perExample` (|dL_i / d xi_h|, [N, layers * heads]) and normalises each layer by its L2
/// norm, as the estimate is. Row-major [layers * heads] each; NaN for a layer whose resampled
/// importances are all 0.
struct HeadImportanceIntervals {
  std::vector<double> rawLo;
  std::vector<double> rawHi;
  std::vector<double> normalisedLo;
  std::vector<double> normalisedHi;
  int resamples = 0;
  /// The normalised importance on every example (the estimate the top head is chosen by).
  std::vector<double> normalised;
  /// The most important head (highest normalised importance) against the runner-up, from the
  /// same resamples: top.difference = importance(top) - importance(runner-up).
  RunnerUp top;
};
[[nodiscard]] HeadImportanceIntervals headImportanceIntervals(const std::vector<double>& perExample,
                                                              std::size_t layers, std::size_t heads,
                                                              const BootstrapOptions& options = {});

} // namespace kdscope::core::analysis
