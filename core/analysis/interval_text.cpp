// Writing intervals and p-values (interval_text.h).
#include "core/analysis/interval_text.h"

#include <cmath>
#include <cstdio>

namespace kdscope::core::analysis {

std::string numberText(double value, int decimals, bool showSign) {
  if (std::isnan(value)) {
    return "-";
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, showSign ? "%+.*f" : "%.*f", decimals, value);
  std::string out = buffer;
  // A number that rounds to 0 has no sign ("-0.0000" and "+0.0000" read as a side it is not on).
  if (out.find_first_not_of("+-0.") == std::string::npos && (out[0] == '-' || out[0] == '+')) {
    out.erase(0, 1);
  }
  return out;
}

std::string intervalText(const Interval& interval, int decimals, bool showSign) {
  if (std::isnan(interval.estimate)) {
    return "-";
  }
  return numberText(interval.estimate, decimals, showSign) + " [" + numberText(interval.lo, decimals, showSign) +
         ", " + numberText(interval.hi, decimals, showSign) + "]";
}

std::string pValueText(double p) {
  if (std::isnan(p)) {
    return "-";
  }
  char buffer[64];
  if (p >= 0.9995) {
    return "1";
  }
  if (p >= 0.001) {
    std::snprintf(buffer, sizeof buffer, "%.3f", p);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1e", p);
  }
  return buffer;
}

bool detectable(const Interval& difference, double pValue, double alpha) {
  const bool excluded = !std::isnan(difference.lo) && !std::isnan(difference.hi) && !difference.holdsZero();
  return excluded && (std::isnan(pValue) || pValue < alpha);
}

} // namespace kdscope::core::analysis
