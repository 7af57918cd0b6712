// Holm-Bonferroni adjustment (multiple_testing.h).
#include "core/analysis/multiple_testing.h"

#include <algorithm>
#include <cmath>

#include "core/analysis/interval_text.h"

namespace kdscope::core::analysis {

std::vector<double> holmAdjust(const std::vector<double>& pValues) {
  std::vector<double> adjusted(pValues.size(), std::numeric_limits<double>::quiet_NaN());
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < pValues.size(); ++i) {
    if (std::isfinite(pValues[i])) {
      order.push_back(i);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&pValues](std::size_t a, std::size_t b) { return pValues[a] < pValues[b]; });
  const std::size_t m = order.size();
  double running = 0.0; // the step-down maximum keeps the adjusted p monotone in the raw p
  for (std::size_t k = 0; k < m; ++k) {
    running = std::max(running, static_cast<double>(m - k) * pValues[order[k]]);
    adjusted[order[k]] = std::min(1.0, running);
  }
  return adjusted;
}

void HolmFamily::adjust() const {
  const std::vector<double> adjusted = holmAdjust(m_raw);
  const auto size = static_cast<std::size_t>(
      std::count_if(m_raw.begin(), m_raw.end(), [](double p) { return std::isfinite(p); }));
  for (std::size_t i = 0; i < m_out.size(); ++i) {
    if (m_out[i] != nullptr) {
      m_out[i]->p = adjusted[i];
      m_out[i]->family = size;
    }
  }
}

std::string pValuesText(double rawP, const AdjustedP& adjusted, const std::string& name) {
  std::string text = name + " = " + pValueText(rawP);
  if (std::isfinite(adjusted.p)) {
    text += ", Holm p = " + pValueText(adjusted.p) + " of " + std::to_string(adjusted.family) + " tests";
  }
  return text;
}

double verdictP(double rawP, const AdjustedP& adjusted) {
  return std::isfinite(adjusted.p) ? adjusted.p : rawP;
}

} // namespace kdscope::core::analysis
