#pragma once
/// The 95% interval of a proportion from its count alone (docs/statistics.md, "Eval curves"):
/// the Wilson score interval, for numbers recorded as a fraction of N examples without the
/// per-example outcomes (the eval curve's accuracy after each epoch). Torch-free.

#include <cstdint>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// Wilson score interval of `successes` out of `n` at `level` (two-sided, normal quantile):
/// centre (k + z^2/2) / (n + z^2), half-width z / (n + z^2) sqrt(k (n - k) / n + z^2 / 4).
/// estimate = k / n; count = n; lo exactly 0 at k = 0, hi exactly 1 at k = n; NaN estimate
/// and ends when n = 0.
[[nodiscard]] Interval wilsonInterval(std::uint64_t successes, std::uint64_t n, double level = 0.95);

} // namespace kdscope::core::analysis
