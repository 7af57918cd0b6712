#include "core/analysis/head_ablation_intervals.h"

#include "core/analysis/analysis_common.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>

namespace kdscope::core::analysis {

HeadAblationIntervals headAblationIntervals(const std::vector<std::uint8_t>& intactCorrect,
                                            const std::vector<double>& intactLoss,
                                            const std::vector<std::uint8_t>& ablatedCorrect,
                                            const std::vector<double>& ablatedLoss, std::size_t cells,
                                            const BootstrapOptions& options) {
  const std::size_t n = intactCorrect.size();
  if (cells == 0 || intactLoss.size() != n || ablatedCorrect.size() != n * cells || ablatedLoss.size() != n * cells) {
    throw std::invalid_argument("headAblationIntervals: the per-example outcomes are not [N] and [N, " +
                                std::to_string(cells) + "] (N = " + std::to_string(n) + ")");
  }
  if (options.resamples < 1 || !(options.level > 0.0 && options.level < 1.0)) {
    throw std::invalid_argument("headAblationIntervals: resamples must be positive and level in (0, 1)");
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HeadAblationIntervals out;
  out.resamples = options.resamples;
  out.examples = n;
  for (auto* v : {&out.accuracyDrop, &out.accuracyDropLo, &out.accuracyDropHi, &out.lossIncrease, &out.lossIncreaseLo,
                  &out.lossIncreaseHi}) {
    v->assign(cells, nan);
  }
  if (n == 0) {
    return out;
  }
  // Per-example differences, [N, cells].
  std::vector<double> drop(n * cells);
  std::vector<double> rise(n * cells);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < cells; ++c) {
      drop[i * cells + c] = static_cast<double>(intactCorrect[i]) - static_cast<double>(ablatedCorrect[i * cells + c]);
      rise[i * cells + c] = ablatedLoss[i * cells + c] - intactLoss[i];
    }
  }
  auto meanRows = [&](const std::vector<double>& values, const std::uint32_t* rows, std::vector<double>& sum) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (std::size_t k = 0; k < n; ++k) {
      const double* row = values.data() + static_cast<std::size_t>(rows == nullptr ? k : rows[k]) * cells;
      for (std::size_t c = 0; c < cells; ++c) {
        sum[c] += row[c];
      }
    }
    for (double& s : sum) {
      s /= static_cast<double>(n);
    }
  };
  meanRows(drop, nullptr, out.accuracyDrop);
  meanRows(rise, nullptr, out.lossIncrease);
  const std::vector<std::uint32_t> indices = bootstrapResampleIndices(n, options.resamples, options.seed);
  const auto b = static_cast<std::size_t>(options.resamples);
  std::vector<std::vector<double>> dropReplicates(cells, std::vector<double>(b));
  std::vector<std::vector<double>> riseReplicates(cells, std::vector<double>(b));
  detail::forEachResampleBlock(b, [&](std::size_t begin, std::size_t end) {
    std::vector<double> mean(cells);
    for (std::size_t r = begin; r < end; ++r) {
      const std::uint32_t* rows = indices.data() + r * n;
      meanRows(drop, rows, mean);
      for (std::size_t c = 0; c < cells; ++c) {
        dropReplicates[c][r] = mean[c];
      }
      meanRows(rise, rows, mean);
      for (std::size_t c = 0; c < cells; ++c) {
        riseReplicates[c][r] = mean[c];
      }
    }
  });
  out.accuracyTop = runnerUpFromReplicates(out.accuracyDrop, dropReplicates, Extreme::Highest, options.level, n);
  out.lossTop = runnerUpFromReplicates(out.lossIncrease, riseReplicates, Extreme::Highest, options.level, n);
  for (std::size_t c = 0; c < cells; ++c) {
    std::tie(out.accuracyDropLo[c], out.accuracyDropHi[c]) = percentileInterval(std::move(dropReplicates[c]), options.level);
    std::tie(out.lossIncreaseLo[c], out.lossIncreaseHi[c]) = percentileInterval(std::move(riseReplicates[c]), options.level);
  }
  return out;
}

} // namespace kdscope::core::analysis
