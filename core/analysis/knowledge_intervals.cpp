#include "core/analysis/knowledge_intervals.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/analysis/knowledge.h"

namespace kdscope::core::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Interval fromReplicates(double estimate, std::vector<double> replicates, const BootstrapOptions& options,
                        std::size_t n) {
  Interval out;
  out.estimate = estimate;
  const auto [lo, hi] = percentileInterval(std::move(replicates), options.level);
  out.lo = lo;
  out.hi = hi;
  out.resamples = options.resamples;
  out.over = kOverExamples;
  out.level = options.level;
  out.count = n;
  return out;
}

} // namespace

GainIntervals gainIntervals(const std::vector<std::vector<double>>& correct, const BootstrapOptions& options) {
  if (correct.size() != 4) {
    throw std::invalid_argument("gainIntervals: needs the correctness of 4 students (CE, LS, KD-pt, KD), got " +
                                std::to_string(correct.size()));
  }
  const std::size_t n = correct[0].size();
  for (const auto& c : correct) {
    if (c.size() != n) {
      throw std::invalid_argument("gainIntervals: the 4 students' correctness differ in length");
    }
  }
  const auto accuracies = [&](const std::uint32_t* rows, std::size_t count) {
    std::vector<double> acc(4, 0.0);
    for (std::size_t m = 0; m < 4; ++m) {
      double sum = 0.0;
      for (std::size_t k = 0; k < count; ++k) {
        sum += correct[m][rows != nullptr ? rows[k] : k];
      }
      acc[m] = count > 0 ? sum / static_cast<double>(count) : kNaN;
    }
    return acc;
  };
  const auto observed = accuracies(nullptr, n);
  const GainDecomposition g = gainDecomposition(observed[0], observed[1], observed[2], observed[3]);
  std::vector<std::vector<double>> replicates(5);
  if (n > 0) {
    const auto indices = bootstrapResampleIndices(n, options.resamples, options.seed);
    for (int b = 0; b < options.resamples; ++b) {
      const auto acc = accuracies(indices.data() + static_cast<std::size_t>(b) * n, n);
      const GainDecomposition r = gainDecomposition(acc[0], acc[1], acc[2], acc[3]);
      replicates[0].push_back(r.universe);
      replicates[1].push_back(r.instance);
      replicates[2].push_back(r.domain);
      replicates[3].push_back(r.total);
      replicates[4].push_back(r.lsShareOfKdGain);
    }
  }
  GainIntervals out;
  out.universe = fromReplicates(g.universe, replicates[0], options, n);
  out.instance = fromReplicates(g.instance, replicates[1], options, n);
  out.domain = fromReplicates(g.domain, replicates[2], options, n);
  out.total = fromReplicates(g.total, replicates[3], options, n);
  out.lsShare = fromReplicates(g.lsShareOfKdGain, replicates[4], options, n);
  return out;
}

Interval spearmanInterval(const std::vector<double>& a, const std::vector<double>& b, const BootstrapOptions& options) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("spearmanInterval: the two series differ in length");
  }
  // Each resample: its complete pairs in draw order, ranked by counting (ResampleRanks gives
  // the numbers spearmanCorrelation's sorts give, exactly), then Pearson of the ranks.
  std::vector<std::uint8_t> complete(a.size());
  std::vector<double> a0(a.size());
  std::vector<double> b0(b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    complete[i] = std::isnan(a[i]) || std::isnan(b[i]) ? 0 : 1;
    a0[i] = complete[i] != 0 ? a[i] : 0.0; // never counted: its rows are left out below
    b0[i] = complete[i] != 0 ? b[i] : 0.0;
  }
  ResampleRanks ranksA(a0);
  ResampleRanks ranksB(b0);
  std::vector<std::uint32_t> kept;
  std::vector<double> x;
  std::vector<double> y;
  Interval out = bootstrapInterval(
      a.size(),
      [&](const std::vector<std::uint32_t>& rows) {
        kept.clear();
        for (const std::uint32_t i : rows) {
          if (complete[i] != 0) {
            kept.push_back(i);
          }
        }
        ranksA.ranks(kept.data(), kept.size(), x);
        ranksB.ranks(kept.data(), kept.size(), y);
        return pearsonCorrelation(x, y);
      },
      options);
  out.estimate = spearmanCorrelation(a, b);
  return out;
}

Interval geometryAgreementProbsInterval(const std::vector<double>& teacherProbs, const std::vector<double>& studentProbs,
                                        const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                        const BootstrapOptions& options) {
  if (teacherProbs.size() != studentProbs.size() || teacherProbs.size() != labels.size() * numClasses) {
    throw std::invalid_argument("geometryAgreementProbsInterval: expected two N x C probability arrays");
  }
  if (numClasses < 3) {
    // Two classes have two off-diagonal entries: their correlation is +-1 by construction on
    // every resample, so an interval would say nothing.
    Interval none;
    none.estimate = offDiagonalCorrelation(classSimilarityFromProbs(teacherProbs, labels, numClasses),
                                           classSimilarityFromProbs(studentProbs, labels, numClasses));
    none.lo = none.hi = kNaN;
    none.over = kOverExamples;
    none.level = options.level;
    none.count = labels.size();
    return none;
  }
  // The estimate checks the labels; each resample then sums its rows in place, in draw order
  // (the same sums as on copied rows, without copying N x C values per resample).
  const double estimate = offDiagonalCorrelation(classSimilarityFromProbs(teacherProbs, labels, numClasses),
                                                 classSimilarityFromProbs(studentProbs, labels, numClasses));
  Interval out = bootstrapInterval(
      labels.size(),
      [&](const std::vector<std::uint32_t>& rows) {
        return offDiagonalCorrelation(
            classSimilarityFromProbsOfRows(teacherProbs, labels, numClasses, rows.data(), rows.size()),
            classSimilarityFromProbsOfRows(studentProbs, labels, numClasses, rows.data(), rows.size()));
      },
      options);
  out.estimate = estimate;
  return out;
}

} // namespace kdscope::core::analysis
