#include "core/study/replicate_group.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/analysis/stats.h"
#include <stdexcept>

namespace kdscope::core {

ReplicateGroup replicateGroup(const std::vector<std::string>& jobJsons) {
  ReplicateGroup group;
  if (jobJsons.size() < 2) {
    group.why = "fewer than 2 runs";
    return group;
  }
  std::string reference;
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < jobJsons.size(); ++i) {
    nlohmann::json job = nlohmann::json::parse(jobJsons[i], nullptr, /*allow_exceptions=*/false);
    if (!job.is_object()) {
      group.why = "run " + std::to_string(i + 1) + ": its job (attribute \"job\") is not a JSON object";
      return group;
    }
    const auto seed = job.find("replicate_seed");
    const std::uint64_t value =
        seed != job.end() && seed->is_number_unsigned() ? seed->get<std::uint64_t>() : std::uint64_t{0};
    if (value == 0) {
      group.why = "run " + std::to_string(i + 1) + " is not a replicate (no replicate_seed)";
      return group;
    }
    if (!seen.insert(value).second) {
      group.why = "runs share replicate seed " + std::to_string(value);
      return group;
    }
    job.erase("replicate_seed");
    const std::string rest = job.dump();
    if (i == 0) {
      reference = rest;
    } else if (rest != reference) {
      group.why = "run " + std::to_string(i + 1) + "'s job differs from run 1's in more than its replicate seed";
      return group;
    }
    group.seeds.push_back(value);
  }
  group.replicates = true;
  return group;
}

ReplicateBand replicateBand(const std::vector<std::vector<double>>& xs, const std::vector<std::vector<double>>& ys) {
  if (xs.size() != ys.size()) {
    throw std::invalid_argument("replicateBand: " + std::to_string(xs.size()) + " x series but " +
                          std::to_string(ys.size()) + " y series");
  }
  std::map<double, std::vector<double>> at;
  for (std::size_t r = 0; r < xs.size(); ++r) {
    if (xs[r].size() != ys[r].size()) {
      throw std::invalid_argument("replicateBand: replicate " + std::to_string(r + 1) + " has " +
                            std::to_string(xs[r].size()) + " x values but " + std::to_string(ys[r].size()) +
                            " y values");
    }
    for (std::size_t i = 0; i < xs[r].size(); ++i) {
      auto& values = at[xs[r][i]];
      if (std::isfinite(ys[r][i])) {
        values.push_back(ys[r][i]);
      }
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ReplicateBand band;
  for (const auto& [x, values] : at) {
    band.x.push_back(x);
    band.count.push_back(values.size());
    if (values.empty()) {
      band.mean.push_back(nan);
      band.lo.push_back(nan);
      band.hi.push_back(nan);
      continue;
    }
    const analysis::ReplicateSummary s = analysis::summarizeReplicates(values);
    band.mean.push_back(s.mean);
    band.lo.push_back(values.size() >= 2 ? s.interval.lo : nan);
    band.hi.push_back(values.size() >= 2 ? s.interval.hi : nan);
  }
  return band;
}

} // namespace kdscope::core
