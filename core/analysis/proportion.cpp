#include "core/analysis/proportion.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace kdscope::core::analysis {

Interval wilsonInterval(std::uint64_t successes, std::uint64_t n, double level) {
  Interval out;
  out.level = level;
  out.count = static_cast<std::size_t>(n);
  if (n == 0) {
    out.estimate = out.lo = out.hi = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const double k = static_cast<double>(std::min(successes, n));
  const double total = static_cast<double>(n);
  const double z = normalQuantile(0.5 + level / 2.0);
  const double z2 = z * z;
  const double centre = (k + z2 / 2.0) / (total + z2);
  const double half = z / (total + z2) * std::sqrt(k * (total - k) / total + z2 / 4.0);
  out.estimate = k / total;
  // At k = 0 (k = n) the lower (upper) end is exactly 0 (1); written so, not as a rounded difference.
  out.lo = k == 0.0 ? 0.0 : std::max(0.0, centre - half);
  out.hi = k == total ? 1.0 : std::min(1.0, centre + half);
  return out;
}

Interval wilsonIntervalOfFraction(double fraction, std::uint64_t n, double level) {
  const auto k = static_cast<std::uint64_t>(std::max(0LL, std::llround(fraction * static_cast<double>(n))));
  return wilsonInterval(k, n, level);
}

std::string fractionWithWilsonText(double fraction, std::uint64_t n) {
  char text[128];
  if (n == 0 || !std::isfinite(fraction)) {
    std::snprintf(text, sizeof text, "%.4f", fraction);
    return text;
  }
  const Interval w = wilsonIntervalOfFraction(fraction, n);
  std::snprintf(text, sizeof text, "%.4f [%.4f, %.4f] (95%% Wilson, n = %llu)", fraction, w.lo, w.hi,
                static_cast<unsigned long long>(n));
  return text;
}

} // namespace kdscope::core::analysis
