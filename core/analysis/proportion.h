#pragma once
/// The 95% interval of a proportion from its count alone (docs/statistics.md, "Eval curves"):
/// the Wilson score interval, for numbers recorded as a fraction of N examples without the
/// per-example outcomes (the eval curve's accuracy after each epoch). Torch-free.

#include <cstdint>
#include <string>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// Wilson score interval of `successes` out of `n` at `level` (two-sided, normal quantile):
/// centre (k + z^2/2) / (n + z^2), half-width z / (n + z^2) sqrt(k (n - k) / n + z^2 / 4).
/// estimate = k / n; count = n; lo exactly 0 at k = 0, hi exactly 1 at k = n; NaN estimate
/// and ends when n = 0.
[[nodiscard]] Interval wilsonInterval(std::uint64_t successes, std::uint64_t n, double level = 0.95);

/// The Wilson interval of a fraction of `n` recorded without its count (an eval accuracy):
/// successes = round(fraction * n).
[[nodiscard]] Interval wilsonIntervalOfFraction(double fraction, std::uint64_t n, double level = 0.95);

/// An accuracy as progress lines show it: "0.8125 [0.7900, 0.8330] (95% Wilson, n = 512)", the
/// interval of wilsonIntervalOfFraction; just the number ("0.8125") when n = 0 (count unknown).
[[nodiscard]] std::string fractionWithWilsonText(double fraction, std::uint64_t n);

} // namespace kdscope::core::analysis
