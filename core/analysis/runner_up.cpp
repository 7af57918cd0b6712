#include "core/analysis/runner_up.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>

namespace kdscope::core::analysis {

std::pair<std::size_t, std::size_t> extremeAndRunnerUp(const std::vector<double>& estimates, Extreme extreme,
                                                       const std::vector<bool>& eligible) {
  if (!eligible.empty() && eligible.size() != estimates.size()) {
    throw std::invalid_argument("extremeAndRunnerUp: eligible has " + std::to_string(eligible.size()) +
                                " entries for " + std::to_string(estimates.size()) + " cells");
  }
  // a comes before b in the ranking (strictly more extreme).
  const auto before = [&](double a, double b) { return extreme == Extreme::Lowest ? a < b : a > b; };
  std::size_t first = RunnerUp::kNone;
  std::size_t second = RunnerUp::kNone;
  for (std::size_t c = 0; c < estimates.size(); ++c) {
    if (!std::isfinite(estimates[c]) || (!eligible.empty() && !eligible[c])) {
      continue;
    }
    if (first == RunnerUp::kNone || before(estimates[c], estimates[first])) {
      second = first;
      first = c;
    } else if (second == RunnerUp::kNone || before(estimates[c], estimates[second])) {
      second = c;
    }
  }
  return {first, second};
}

RunnerUp runnerUpFromReplicates(const std::vector<double>& estimates, const std::vector<std::vector<double>>& replicates,
                                Extreme extreme, double level, std::size_t count, const std::vector<bool>& eligible) {
  if (replicates.size() != estimates.size()) {
    throw std::invalid_argument("runnerUpFromReplicates: " + std::to_string(replicates.size()) +
                                " cells of replicates for " + std::to_string(estimates.size()) + " estimates");
  }
  RunnerUp out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.difference.estimate = out.difference.lo = out.difference.hi = nan;
  out.difference.over = kOverSameResamples;
  out.difference.level = level;
  out.difference.count = count;
  std::tie(out.first, out.second) = extremeAndRunnerUp(estimates, extreme, eligible);
  if (!out.valid()) {
    return out;
  }
  const std::vector<double>& a = replicates[out.first];
  const std::vector<double>& b = replicates[out.second];
  if (a.size() != b.size()) {
    throw std::invalid_argument("runnerUpFromReplicates: the two cells have different numbers of replicates");
  }
  const double sign = extreme == Extreme::Lowest ? -1.0 : 1.0;
  std::vector<double> differences;
  differences.reserve(a.size());
  for (std::size_t r = 0; r < a.size(); ++r) {
    if (std::isfinite(a[r]) && std::isfinite(b[r])) {
      differences.push_back(sign * (a[r] - b[r]));
    }
  }
  out.difference.resamples = static_cast<int>(a.size());
  out.difference.estimate = sign * (estimates[out.first] - estimates[out.second]);
  std::tie(out.difference.lo, out.difference.hi) = percentileInterval(std::move(differences), level);
  return out;
}

} // namespace kdscope::core::analysis
