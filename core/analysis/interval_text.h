#pragma once
/// How an interval and a p-value are written wherever KDScope shows them (`kdscope info`, the
/// window, figure captions): "0.8120 [0.7810, 0.8420]", "p = 0.013", and the words for a
/// difference whose interval holds 0 (docs/statistics.md, "How to read them"). Plain strings;
/// no Qt. Thread-safety: pure.

#include <limits>
#include <string>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// The words for a difference whose 95% interval holds 0.
inline constexpr const char* kNoDetectableDifference = "no detectable difference";

/// "estimate [lo, hi]" with `decimals` decimals; `showSign` writes a leading + on positive
/// numbers (differences); a number that rounds to 0 has no sign. A NaN end is written "-"; a
/// NaN estimate gives "-".
[[nodiscard]] std::string intervalText(const Interval& interval, int decimals = 4, bool showSign = false);

/// A number as intervalText writes it ("-" for NaN).
[[nodiscard]] std::string numberText(double value, int decimals = 4, bool showSign = false);

/// A p-value: 3 decimals from 0.001 up ("0.013", "1.000" as "1"), two significant digits in
/// scientific notation below ("3.2e-05"), "-" for NaN.
[[nodiscard]] std::string pValueText(double p);

/// The verdict everywhere KDScope shows one: a difference is detectable when its interval's
/// ends are known and do not hold 0 and, when a test accompanies it (`pValue` not NaN), the
/// test's p is below `alpha`. The two can disagree with few discordant or lost examples (a
/// percentile interval resampled from a handful of values is too narrow); then the words are
/// "no detectable difference".
[[nodiscard]] bool detectable(const Interval& difference, double pValue = std::numeric_limits<double>::quiet_NaN(),
                              double alpha = 0.05);

} // namespace kdscope::core::analysis
