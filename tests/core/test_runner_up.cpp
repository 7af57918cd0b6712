// A finding chosen by a point estimate against its runner-up (core/analysis/runner_up.h;
// docs/statistics.md, "Against the runner-up"): the paired interval, over the same bootstrap
// resamples that give each cell's interval, of the difference between the extreme cell and
// the next one. Each case is hand-worked: the resamples' differences are written out here
// from bootstrapResampleIndices (the draws every bootstrap uses) with a closed form of the
// statistic, and the ends are NumPy's linear percentile written out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/analysis/analysis_results.h"
#include "core/analysis/cka.h"
#include "core/analysis/analyze_run.h"
#include "core/analysis/head_ablation_intervals.h"
#include "core/analysis/layer_intervals.h"
#include "core/analysis/runner_up.h"
#include "core/analysis/stats.h"
#include "core/data/dataset.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"
#include "tests/core/test_support.h"

using namespace kdscope::core::analysis;
namespace core = kdscope::core;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// NumPy's default percentile: position q (B - 1), linear between order statistics.
double percentile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(at));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (at - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Linear CKA of two 1-D representations is the squared Pearson correlation (the columns are
/// centred; ||Y'X||^2 / (||X'X|| ||Y'Y||) = Sxy^2 / (Sxx Syy)).
double squaredCorrelation(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0.0;
  double my = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i] / n;
    my += y[i] / n;
  }
  double sxy = 0.0;
  double sxx = 0.0;
  double syy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0.0 && syy > 0.0 ? sxy * sxy / (sxx * syy) : kNaN;
}

/// value(k) for each of B resamples of 3 examples, k = the times example `which` was drawn.
std::vector<double> byDrawsOf(std::size_t which, int resamples, std::uint64_t seed,
                              const std::function<double(int)>& value) {
  const auto indices = bootstrapResampleIndices(3, resamples, seed);
  std::vector<double> out;
  for (std::size_t b = 0; b < static_cast<std::size_t>(resamples); ++b) {
    int k = 0;
    for (std::size_t j = 0; j < 3; ++j) {
      k += indices[b * 3 + j] == which ? 1 : 0;
    }
    out.push_back(value(k));
  }
  return out;
}

/// On each resample (rows `indices[b * n + k]`), the squared correlation of x with y1 minus
/// that with y2, and (when `second` is given) the one with y2 alone: the CKA of width-1
/// layers, recomputed row by row.
std::vector<double> resampledDifferences(const std::vector<double>& x, const std::vector<double>& y1,
                                         const std::vector<double>& y2, const std::vector<std::uint32_t>& indices,
                                         std::size_t n, std::size_t resamples, std::vector<double>* second = nullptr) {
  std::vector<double> differences;
  for (std::size_t b = 0; b < resamples; ++b) {
    std::vector<double> rx;
    std::vector<double> r1;
    std::vector<double> r2;
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint32_t i = indices[b * n + k];
      rx.push_back(x[i]);
      r1.push_back(y1[i]);
      r2.push_back(y2[i]);
    }
    differences.push_back(squaredCorrelation(rx, r1) - squaredCorrelation(rx, r2));
    if (second != nullptr) {
      second->push_back(squaredCorrelation(rx, r2));
    }
  }
  return differences;
}

} // namespace

TEST(RunnerUp, ExtremeAndRunnerUpSkipNaNAndIneligibleAndKeepTheEarlierOnTies) {
  const std::vector<double> v{0.5, kNaN, 0.2, 0.9, 0.2, 0.1};
  auto [lo1, lo2] = extremeAndRunnerUp(v, Extreme::Lowest);
  EXPECT_EQ(lo1, 5U);
  EXPECT_EQ(lo2, 2U); // 0.2 twice: the earlier
  auto [hi1, hi2] = extremeAndRunnerUp(v, Extreme::Highest);
  EXPECT_EQ(hi1, 3U);
  EXPECT_EQ(hi2, 0U);
  auto [e1, e2] = extremeAndRunnerUp(v, Extreme::Lowest, {true, true, false, true, true, false});
  EXPECT_EQ(e1, 4U);
  EXPECT_EQ(e2, 0U);
  auto [t1, t2] = extremeAndRunnerUp({0.3, 0.3}, Extreme::Highest);
  EXPECT_EQ(t1, 0U);
  EXPECT_EQ(t2, 1U);
  auto [o1, o2] = extremeAndRunnerUp({kNaN, 0.4}, Extreme::Highest);
  EXPECT_EQ(o1, 1U);
  EXPECT_EQ(o2, RunnerUp::kNone);
  const RunnerUp one = runnerUpFromReplicates({kNaN, 0.4}, {{1.0}, {2.0}}, Extreme::Highest, 0.95, 1);
  EXPECT_FALSE(one.valid());
  EXPECT_TRUE(std::isnan(one.difference.estimate));
  EXPECT_THROW((void)runnerUpFromReplicates({0.1, 0.2}, {{1.0}}, Extreme::Lowest, 0.95, 1), std::invalid_argument);
  EXPECT_THROW((void)extremeAndRunnerUp({0.1, 0.2}, Extreme::Lowest, {true}), std::invalid_argument);

  // Replicates: a resample with a NaN in either cell is dropped; the difference is oriented
  // (runner-up - lowest). Cells 0.1 and 0.2 on five resamples; the third has a NaN.
  const RunnerUp r = runnerUpFromReplicates({0.2, 0.1}, {{0.3, 0.2, kNaN, 0.25, 0.1}, {0.1, 0.1, 0.0, 0.2, 0.15}},
                                            Extreme::Lowest, 0.5, 7);
  ASSERT_TRUE(r.valid());
  EXPECT_EQ(r.first, 1U);
  EXPECT_EQ(r.second, 0U);
  EXPECT_NEAR(r.difference.estimate, 0.1, 1e-15);
  // Differences 0.2, 0.1, 0.05, -0.05 -> sorted -0.05, 0.05, 0.1, 0.2; 25th percentile at
  // position 0.75: -0.05 + 0.75 x 0.1 = 0.025; 75th at 2.25: 0.1 + 0.25 x 0.1 = 0.125.
  EXPECT_NEAR(r.difference.lo, 0.025, 1e-12);
  EXPECT_NEAR(r.difference.hi, 0.125, 1e-12);
  EXPECT_EQ(r.difference.resamples, 5);
  EXPECT_EQ(r.difference.count, 7U);
  EXPECT_EQ(r.difference.over, kOverSameResamples);
}

// CKA at matched depth of layers wider than one (teacher width 5, student width 3): each
// resample's CKA (from the distinct rows' combined Gram matrix) must be linearCka of the
// resample's gathered rows, so the interval's ends are those replicates' percentiles.
TEST(RunnerUp, MatchedCkaOfWideLayersIsTheGatheredResamplesLinearCka) {
  const std::size_t n = 40;
  const std::size_t p = 5;
  const std::size_t q = 3;
  const BootstrapOptions options{200, 0.95, 9};
  std::vector<float> hiddenT(n * 2 * p);
  std::vector<float> hiddenS(n * 2 * q);
  std::uint32_t state = 12345U;
  const auto next = [&] { // a small LCG: uniform in [-1, 1)
    state = state * 1664525U + 1013904223U;
    return static_cast<float>(state >> 8) / static_cast<float>(1U << 23) - 1.0F;
  };
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t l = 0; l < 2; ++l) {
      for (std::size_t k = 0; k < p; ++k) {
        hiddenT[(i * 2 + l) * p + k] = next() + static_cast<float>(l * k);
      }
      for (std::size_t k = 0; k < q; ++k) {
        // Partly the teacher's same layer (so CKA is well inside (0, 1)), partly noise.
        hiddenS[(i * 2 + l) * q + k] = hiddenT[(i * 2 + l) * p + k + 1] + 0.7F * next();
      }
    }
  }
  const auto out = matchedCkaWithRunnerUp(hiddenT, 2, p, hiddenS, 2, q, {0, 1}, options);
  ASSERT_EQ(out.cka.size(), 2U);
  const auto indices = bootstrapResampleIndices(n, options.resamples, options.seed);
  const auto layer = [](const std::vector<float>& h, std::size_t width, std::size_t l, const std::uint32_t* rows,
                        std::size_t count) {
    std::vector<float> x;
    for (std::size_t r = 0; r < count; ++r) {
      const std::size_t i = rows != nullptr ? rows[r] : r;
      x.insert(x.end(), h.begin() + static_cast<long>((i * 2 + l) * width),
               h.begin() + static_cast<long>((i * 2 + l + 1) * width));
    }
    return x;
  };
  for (std::size_t l = 0; l < 2; ++l) {
    const double estimate = linearCka(layer(hiddenT, p, l, nullptr, n), p, layer(hiddenS, q, l, nullptr, n), q);
    EXPECT_NEAR(out.cka[l].estimate, estimate, 1e-12) << "layer " << l;
    EXPECT_GT(estimate, 0.2);
    EXPECT_LT(estimate, 0.95);
    std::vector<double> replicates;
    for (int b = 0; b < options.resamples; ++b) {
      const std::uint32_t* rows = indices.data() + static_cast<std::size_t>(b) * n;
      replicates.push_back(linearCka(layer(hiddenT, p, l, rows, n), p, layer(hiddenS, q, l, rows, n), q));
    }
    EXPECT_NEAR(out.cka[l].lo, percentile(replicates, 0.025), 1e-9) << "layer " << l;
    EXPECT_NEAR(out.cka[l].hi, percentile(replicates, 0.975), 1e-9) << "layer " << l;
    EXPECT_LT(out.cka[l].lo, estimate);
    EXPECT_GT(out.cka[l].hi, estimate);
  }
}

// CKA at matched depth, width 1 everywhere, so each pair's CKA is the squared correlation.
// 8 examples, x = 1..8 in every teacher layer; the student's embeddings are uncorrelated with
// x (the lowest pair, but excluded: matched by construction), its layer 1 and 2 are x plus
// noise. The lowest encoder pair's difference with the next-lowest is recomputed on each of
// the same 250 resamples from the closed form (B small: linearCka starts its threads on every
// call).
TEST(RunnerUp, LowestCkaAgainstTheNextLowestFromTheSameResamples) {
  const std::size_t n = 8;
  const BootstrapOptions options{250, 0.95, 14};
  const auto indices = bootstrapResampleIndices(n, options.resamples, options.seed);
  struct Case {
    std::vector<double> e1;
    std::vector<double> e2;
    bool detectable;
  };
  // Detectable: layer 1 is x itself (CKA 1), layer 2 is x with +-3 alternating (CKA 0.238).
  // Not: noise of one size in both (CKA 0.819 and 0.741).
  const Case cases[] = {{{0, 0, 0, 0, 0, 0, 0, 0}, {3, -3, 3, -3, 3, -3, 3, -3}, true},
                        {{1, -1, 1, -1, 1, -1, 1, -1}, {1, 1, -1, -1, 1, 1, -1, -2}, false}};
  for (const Case& c : cases) {
    std::vector<double> x(n);
    std::vector<double> emb{1, -1, -1, 1, 1, -1, -1, 1}; // uncorrelated with x
    std::vector<double> y1(n);
    std::vector<double> y2(n);
    std::vector<float> hiddenT(n * 3);
    std::vector<float> hiddenS(n * 3);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = static_cast<double>(i + 1);
      y1[i] = x[i] + c.e1[i];
      y2[i] = x[i] + c.e2[i];
      for (std::size_t l = 0; l < 3; ++l) {
        hiddenT[i * 3 + l] = static_cast<float>(x[i]);
      }
      hiddenS[i * 3 + 0] = static_cast<float>(emb[i]);
      hiddenS[i * 3 + 1] = static_cast<float>(y1[i]);
      hiddenS[i * 3 + 2] = static_cast<float>(y2[i]);
    }
    const auto out = matchedCkaWithRunnerUp(hiddenT, 3, 1, hiddenS, 3, 1, {0, 1, 2}, options);
    ASSERT_EQ(out.cka.size(), 3U);
    EXPECT_NEAR(out.cka[0].estimate, squaredCorrelation(x, emb), 1e-9);
    const double c1 = squaredCorrelation(x, y1);
    const double c2 = squaredCorrelation(x, y2);
    EXPECT_NEAR(out.cka[1].estimate, c1, 1e-9);
    EXPECT_NEAR(out.cka[2].estimate, c2, 1e-9);
    ASSERT_TRUE(out.lowest.valid());
    EXPECT_EQ(out.lowest.first, 2U); // not the embeddings, whose CKA is lower still
    EXPECT_EQ(out.lowest.second, 1U);
    EXPECT_NEAR(out.lowest.difference.estimate, c1 - c2, 1e-9);
    // The same resamples: on each, gather the rows and take runner-up minus lowest.
    std::vector<double> lowestAlone;
    const std::vector<double> differences =
        resampledDifferences(x, y1, y2, indices, n, static_cast<std::size_t>(options.resamples), &lowestAlone);
    const double lo = percentile(differences, 0.025);
    const double hi = percentile(differences, 0.975);
    EXPECT_NEAR(out.lowest.difference.lo, lo, 1e-9);
    EXPECT_NEAR(out.lowest.difference.hi, hi, 1e-9);
    EXPECT_EQ(out.lowest.difference.resamples, 250);
    EXPECT_EQ(out.lowest.difference.count, n);
    EXPECT_EQ(lo > 0.0, c.detectable) << "lo " << lo << " hi " << hi;
    // The lowest pair's own interval comes from the same draws.
    EXPECT_NEAR(out.cka[2].lo, percentile(lowestAlone, 0.025), 1e-9);
    EXPECT_NEAR(out.cka[2].hi, percentile(lowestAlone, 0.975), 1e-9);
  }
  // One encoder layer: no runner-up.
  {
    const std::vector<float> t{1, 1, 2, 2, 3, 3, 4, 5};
    const std::vector<float> s{1, 1, 2, 3, 3, 2, 4, 4};
    EXPECT_FALSE(matchedCkaWithRunnerUp(t, 2, 1, s, 2, 1, {0, 1}, options).lowest.valid());
  }
}

// Head importance, one layer of two heads, 3 examples: head 0's |dL/dxi| is 1 on every
// example, head 1's is 0, 0, 6. On a resample drawing example 2 k times the means are 1 and
// 2k; normalised by the layer's L2 norm, head 1 minus head 0 is (2k - 1) / sqrt(1 + 4k^2).
// The estimate (k = 1's means) is 1 / sqrt(5). P(k = 0) = 8/27 puts the 2.5% end at -1 and
// P(k = 3) = 1/27 > 2.5% the 97.5% end at 5 / sqrt(37): the interval holds 0.
TEST(RunnerUp, MostImportantHeadAgainstTheRunnerUpHandWorked) {
  const std::vector<double> perExample{1, 0, 1, 0, 1, 6};
  const BootstrapOptions options{2000, 0.95, 5};
  const auto bands = headImportanceIntervals(perExample, 1, 2, options);
  ASSERT_TRUE(bands.top.valid());
  EXPECT_EQ(bands.top.first, 1U);
  EXPECT_EQ(bands.top.second, 0U);
  EXPECT_NEAR(bands.normalised[1], 2.0 / std::sqrt(5.0), 1e-12);
  EXPECT_NEAR(bands.top.difference.estimate, 1.0 / std::sqrt(5.0), 1e-12);
  const auto replicates = byDrawsOf(2, options.resamples, options.seed, [](int k) {
    return (2.0 * k - 1.0) / std::sqrt(1.0 + 4.0 * k * k);
  });
  EXPECT_NEAR(bands.top.difference.lo, percentile(replicates, 0.025), 1e-12);
  EXPECT_NEAR(bands.top.difference.hi, percentile(replicates, 0.975), 1e-12);
  EXPECT_NEAR(bands.top.difference.lo, -1.0, 1e-12);
  EXPECT_NEAR(bands.top.difference.hi, 5.0 / std::sqrt(37.0), 1e-12);
  EXPECT_TRUE(bands.top.difference.holdsZero());

  // Two layers; the top head is L2H1 (importance 3 / sqrt(10) after normalising), the
  // runner-up L1H2 (2 / sqrt(5)); every example the same, so every resample's difference is
  // the estimate: 3 / sqrt(10) - 2 / sqrt(5), an interval of one point above 0.
  const std::vector<double> same{1, 2, 3, 1, 1, 2, 3, 1, 1, 2, 3, 1, 1, 2, 3, 1};
  const auto two = headImportanceIntervals(same, 2, 2, options);
  ASSERT_TRUE(two.top.valid());
  EXPECT_EQ(two.top.first, 2U);
  EXPECT_EQ(two.top.second, 1U);
  const double d = 3.0 / std::sqrt(10.0) - 2.0 / std::sqrt(5.0);
  EXPECT_NEAR(two.top.difference.estimate, d, 1e-12);
  EXPECT_NEAR(two.top.difference.lo, d, 1e-12);
  EXPECT_NEAR(two.top.difference.hi, d, 1e-12);
  EXPECT_GT(two.top.difference.lo, 0.0);
}

// Single-head ablation, 3 examples, 3 heads (all intact predictions right, intact loss 1):
//   accuracy drop per example: head 0 (1, 0, 0), head 1 (1, 1, 0), head 2 (0, 0, 0)
//   loss increase per example: head 0 (1, 0, 0), head 1 (0, 0, 3), head 2 (0, 0, 0)
// The most hurtful head is head 1 on both (drop 2/3, rise 1), the runner-up head 0 (1/3, 1/3).
// Paired over examples: the accuracy difference's per-example values are (0, 1, 0), so a
// resample drawing example 1 k times gives k/3: P(k = 0) = 8/27 puts the 2.5% end at 0 and
// P(k = 3) = 1/27 the 97.5% end at 1 (holds 0). The loss difference's are (-1, 0, 3).
TEST(RunnerUp, MostHurtfulAblationAgainstTheRunnerUpPairedOverExamples) {
  const std::vector<std::uint8_t> intact{1, 1, 1};
  const std::vector<double> intactLoss{1, 1, 1};
  const std::vector<std::uint8_t> ablated{0, 0, 1, /**/ 1, 0, 1, /**/ 1, 1, 1};
  const std::vector<double> ablatedLoss{2, 1, 1, /**/ 1, 1, 1, /**/ 1, 4, 1};
  const BootstrapOptions options{2000, 0.95, 9};
  const auto out = headAblationIntervals(intact, intactLoss, ablated, ablatedLoss, 3, options);
  ASSERT_TRUE(out.accuracyTop.valid());
  EXPECT_EQ(out.accuracyTop.first, 1U);
  EXPECT_EQ(out.accuracyTop.second, 0U);
  EXPECT_NEAR(out.accuracyTop.difference.estimate, 1.0 / 3.0, 1e-15);
  const auto accuracy = byDrawsOf(1, options.resamples, options.seed, [](int k) { return k / 3.0; });
  EXPECT_NEAR(out.accuracyTop.difference.lo, percentile(accuracy, 0.025), 1e-12);
  EXPECT_NEAR(out.accuracyTop.difference.hi, percentile(accuracy, 0.975), 1e-12);
  EXPECT_NEAR(out.accuracyTop.difference.lo, 0.0, 1e-12);
  EXPECT_NEAR(out.accuracyTop.difference.hi, 1.0, 1e-12);
  EXPECT_TRUE(out.accuracyTop.difference.holdsZero());

  ASSERT_TRUE(out.lossTop.valid());
  EXPECT_EQ(out.lossTop.first, 1U);
  EXPECT_EQ(out.lossTop.second, 0U);
  EXPECT_NEAR(out.lossTop.difference.estimate, 2.0 / 3.0, 1e-12);
  const auto indices = bootstrapResampleIndices(3, options.resamples, options.seed);
  const double perExample[3] = {-1.0, 0.0, 3.0};
  std::vector<double> loss;
  for (std::size_t b = 0; b < 2000; ++b) {
    loss.push_back((perExample[indices[b * 3]] + perExample[indices[b * 3 + 1]] + perExample[indices[b * 3 + 2]]) / 3.0);
  }
  EXPECT_NEAR(out.lossTop.difference.lo, percentile(loss, 0.025), 1e-12);
  EXPECT_NEAR(out.lossTop.difference.hi, percentile(loss, 0.975), 1e-12);
  // Its ends are among the 10 values (3 k2 - k0) / 3 a resample can take; the lowest, -1 (all
  // three draws example 0, P = 1/27 > 2.5%), is the 2.5% end.
  EXPECT_NEAR(out.lossTop.difference.lo, -1.0, 1e-12);
  EXPECT_NEAR(out.lossTop.difference.hi, 3.0, 1e-12); // all three example 2, P = 1/27

  // Detectable: on 20 examples head 1's ablation always costs the prediction, head 0's never;
  // every resample's difference is 1.
  const std::vector<std::uint8_t> right(20, 1);
  const std::vector<double> zero(20, 0.0);
  std::vector<std::uint8_t> a(40);
  for (std::size_t i = 0; i < 20; ++i) {
    a[i * 2] = 1;
    a[i * 2 + 1] = 0;
  }
  const auto clear = headAblationIntervals(right, zero, a, std::vector<double>(40, 0.0), 2, options);
  ASSERT_TRUE(clear.accuracyTop.valid());
  EXPECT_EQ(clear.accuracyTop.first, 1U);
  EXPECT_DOUBLE_EQ(clear.accuracyTop.difference.lo, 1.0);
  EXPECT_DOUBLE_EQ(clear.accuracyTop.difference.hi, 1.0);
}

// The "cka" analysis records the comparison in the run file: a hand-made run of 8 eval
// examples whose teacher and student (2 layers each, hidden width 1, uniform map) carry the
// detectable case above; the attributes of cka_matched against the closed form on the same
// resamples (B = 250 from --resamples, seed 14).
TEST(RunnerUp, TheCkaAnalysisRecordsTheComparisonInTheRunFile) {
  const auto dir = kdscope::test::freshTempDir("runner-up-cka-run");
  const std::string path = (dir / "run.h5").string();
  const std::size_t n = 8;
  std::vector<double> x(n);
  std::vector<double> y1(n);
  std::vector<double> y2(n);
  std::vector<float> hiddenT(n * 3);
  std::vector<float> hiddenS(n * 3);
  const double emb[8] = {1, -1, -1, 1, 1, -1, -1, 1};
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(i + 1);
    y1[i] = x[i];
    y2[i] = x[i] + (i % 2 == 0 ? 3.0 : -3.0);
    for (std::size_t l = 0; l < 3; ++l) {
      hiddenT[i * 3 + l] = static_cast<float>(x[i]);
    }
    hiddenS[i * 3] = static_cast<float>(emb[i]);
    hiddenS[i * 3 + 1] = static_cast<float>(y1[i]);
    hiddenS[i * 3 + 2] = static_cast<float>(y2[i]);
  }
  {
    core::TaskData task;
    task.name = "t";
    task.kind = core::TaskKind::Text;
    task.classNames = {"a", "b"};
    task.vocab = {"[PAD]", "[UNK]", "[CLS]", "x"};
    task.seqLen = 2;
    task.eval.labels = {0, 1, 0, 1, 0, 1, 0, 1};
    task.eval.tokens.assign(n * 2, 3);
    task.eval.texts.assign(n, "x x");
    core::RunWriter writer(path, R"({"name":"runner-up"})");
    writer.writeTask(task);
    const std::string ce = R"({"terms":[{"name":"ce","weight":1.0,"label_smoothing":0.0}]})";
    const std::string arch = R"({"type":"transformer","layers":2,"heads":1,"width":4,"ffn":8})";
    writer.beginModel("t", "teacher", "teacher", arch, ce, 10);
    writer.beginModel("t", "kd", "student", arch, ce, 10);
    std::vector<float> logits;
    for (std::size_t i = 0; i < n; ++i) {
      logits.push_back(i % 2 == 0 ? 1.0F : 0.0F);
      logits.push_back(i % 2 == 0 ? 0.0F : 1.0F);
    }
    for (const char* name : {"teacher", "kd"}) {
      core::RunWriter::EvalShape shape;
      shape.examples = n;
      shape.classes = 2;
      shape.hiddenLayers = 3;
      shape.hiddenDim = 1;
      writer.createEvalOutputs("t", name, shape, "mean");
      writer.writeEvalLogits("t", name, 0, n, logits.data());
      writer.writeEvalHidden("t", name, 0, n, (std::string(name) == "kd" ? hiddenS : hiddenT).data());
    }
    writer.setStatus("complete", "");
  }
  core::AnalyzeOptions options;
  options.only = {"cka"};
  options.bootstrapResamples = 250;
  options.bootstrapSeed = 14;
  const core::AnalyzeResult result = core::analyzeRun(path, options, core::CancelToken{}, {});
  ASSERT_EQ(result.status, core::AnalyzeStatus::Succeeded) << result.message;
  const core::RunReader reader(path);
  const auto r = core::AnalysisResults(reader).runnerUp("t", "kd", "cka_matched");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 2U);
  EXPECT_EQ(r->second, 1U);
  EXPECT_EQ(r->difference.resamples, 250);
  EXPECT_NEAR(r->difference.estimate, squaredCorrelation(x, y1) - squaredCorrelation(x, y2), 1e-9);
  const auto indices = bootstrapResampleIndices(n, 250, 14);
  const std::vector<double> differences = resampledDifferences(x, y1, y2, indices, n, 250);
  EXPECT_NEAR(r->difference.lo, percentile(differences, 0.025), 1e-9);
  EXPECT_NEAR(r->difference.hi, percentile(differences, 0.975), 1e-9);
  EXPECT_GT(r->difference.lo, 0.0);
}
