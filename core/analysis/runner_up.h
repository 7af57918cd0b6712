#pragma once
/// A finding chosen by a point estimate ("the lowest CKA at matched depth", "the most
/// important head", "the teacher head the student matches least", "the head whose ablation
/// hurts most") tested against its runner-up (issue #14; docs/statistics.md, "Against the
/// runner-up"): the paired percentile interval, over the SAME bootstrap resamples that give
/// each cell's own interval, of the difference between the extreme cell and the next one.
/// The difference is oriented so that its estimate is >= 0 (runner-up - lowest for a lowest,
/// highest - runner-up for a highest); an interval holding 0 is "no detectable difference".
/// Plain vectors; no LibTorch, Qt or HDF5. Pure; a shape error throws std::invalid_argument.

#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// Which end of the cells a finding takes.
enum class Extreme { Lowest, Highest };

/// What the runner-up interval is over (the `over` of RunnerUp::difference).
inline constexpr const char* kOverSameResamples = "eval examples (paired bootstrap, the same resamples)";

struct RunnerUp {
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::size_t first = kNone;  ///< the extreme cell (row-major index)
  std::size_t second = kNone; ///< the runner-up cell
  /// second - first (Lowest) or first - second (Highest) with its percentile interval.
  Interval difference;
  [[nodiscard]] bool valid() const { return first != kNone && second != kNone; }
};

/// The extreme and runner-up among the cells whose estimate is finite and, when `eligible`
/// is not empty, eligible[c]. Ties go to the earlier cell (the rule the report uses). Either
/// is RunnerUp::kNone when there are fewer cells.
[[nodiscard]] std::pair<std::size_t, std::size_t> extremeAndRunnerUp(const std::vector<double>& estimates,
                                                                     Extreme extreme,
                                                                     const std::vector<bool>& eligible = {});

/// From each cell's bootstrap replicates (replicates[c][b]: cell c on resample b, the same
/// resamples for every cell): the runner-up comparison. A resample where either cell is NaN
/// is dropped. Not valid (NaN difference) with fewer than two eligible cells.
[[nodiscard]] RunnerUp runnerUpFromReplicates(const std::vector<double>& estimates,
                                              const std::vector<std::vector<double>>& replicates, Extreme extreme,
                                              double level, std::size_t count,
                                              const std::vector<bool>& eligible = {});

} // namespace kdscope::core::analysis
