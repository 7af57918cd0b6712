// Tests of core/analysis/probe.h against an objective, gradient and plain gradient-descent
// solver written independently here (naive float64 loops), plus separable data.

#include "core/analysis/probe.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace kdscope::core::analysis {
namespace {

struct Data {
  std::size_t n = 0;
  std::size_t d = 0;
  std::size_t c = 0;
  std::vector<float> x;
  std::vector<std::int64_t> y;
};

/// Gaussian blobs around class centres `spread` apart, plus label noise `flip`.
Data blobs(std::size_t n, std::size_t d, std::size_t c, float spread, double flip, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<float> centres(c * d);
  for (float& v : centres) {
    v = spread * normal(rng);
  }
  Data data{n, d, c, std::vector<float>(n * d), std::vector<std::int64_t>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t cls = i % c;
    for (std::size_t k = 0; k < d; ++k) {
      data.x[i * d + k] = centres[cls * d + k] + normal(rng) + 3.0F * static_cast<float>(k); // offsets: standardisation matters
    }
    data.y[i] = static_cast<std::int64_t>(uniform(rng) < flip ? (cls + 1) % c : cls);
  }
  return data;
}

/// The probe's documented objective, computed from scratch: standardise with the population
/// mean and std of x, then J = mean CE + l2 / 2 ||W||^2; returns J and fills the gradient.
struct Reference {
  std::vector<double> design; // standardised, N x D
  const Data& data;
  double l2;

  Reference(const Data& d, double lambda) : data(d), l2(lambda) {
    design.assign(d.x.begin(), d.x.end());
    for (std::size_t k = 0; k < d.d; ++k) {
      double mean = 0.0;
      for (std::size_t i = 0; i < d.n; ++i) {
        mean += design[i * d.d + k];
      }
      mean /= static_cast<double>(d.n);
      double var = 0.0;
      for (std::size_t i = 0; i < d.n; ++i) {
        var += (design[i * d.d + k] - mean) * (design[i * d.d + k] - mean);
      }
      const double sd = std::sqrt(var / static_cast<double>(d.n));
      for (std::size_t i = 0; i < d.n; ++i) {
        design[i * d.d + k] = sd > 0.0 ? (design[i * d.d + k] - mean) / sd : 0.0;
      }
    }
  }

  double evaluate(const std::vector<double>& w, const std::vector<double>& b, std::vector<double>& gw,
                  std::vector<double>& gb) const {
    const std::size_t n = data.n;
    const std::size_t d = data.d;
    const std::size_t c = data.c;
    gw.assign(c * d, 0.0);
    gb.assign(c, 0.0);
    double loss = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<double> z(c);
      double sum = 0.0;
      for (std::size_t k = 0; k < c; ++k) {
        z[k] = b[k];
        for (std::size_t j = 0; j < d; ++j) {
          z[k] += w[k * d + j] * design[i * d + j];
        }
        sum += std::exp(z[k]);
      }
      const auto y = static_cast<std::size_t>(data.y[i]);
      loss += std::log(sum) - z[y];
      for (std::size_t k = 0; k < c; ++k) {
        const double r = std::exp(z[k]) / sum - (k == y ? 1.0 : 0.0);
        gb[k] += r / static_cast<double>(n);
        for (std::size_t j = 0; j < d; ++j) {
          gw[k * d + j] += r * design[i * d + j] / static_cast<double>(n);
        }
      }
    }
    double penalty = 0.0;
    for (std::size_t k = 0; k < c * d; ++k) {
      gw[k] += l2 * w[k];
      penalty += w[k] * w[k];
    }
    return loss / static_cast<double>(n) + 0.5 * l2 * penalty;
  }
};

double maxAbs(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (double v : a) {
    m = std::max(m, std::abs(v));
  }
  for (double v : b) {
    m = std::max(m, std::abs(v));
  }
  return m;
}

ProbeOptions tight(double l2, std::size_t threads = 0) {
  ProbeOptions o;
  o.l2 = l2;
  o.gradientTolerance = 1e-10;
  o.maxIterations = 2000;
  o.threads = threads;
  return o;
}

TEST(AnalysisProbe, GradientVanishesAtTheSolution) {
  // KKT for an unconstrained convex problem: the gradient of the regularised objective,
  // computed independently, is ~0 at the returned parameters. 201 examples: the last group
  // of 4 is cut short. Both the AVX2 kernels (where present) and the portable ones.
  // With and without the preconditioner.
  for (std::size_t classes : {2, 3, 5}) {
    for (bool portable : {false, true}) {
     for (bool precondition : {true, false}) {
      const Data data = blobs(201, 5, classes, 1.0F, 0.1, static_cast<unsigned>(classes));
      const double l2 = 1e-2;
      ProbeOptions options = tight(l2);
      options.portableKernels = portable;
      options.precondition = precondition;
      const LinearProbe probe = fitProbe(data.x, data.d, data.y, data.c, options);
      EXPECT_TRUE(probe.converged) << classes << " classes";
      const Reference ref(data, l2);
      std::vector<double> gw;
      std::vector<double> gb;
      const double j = ref.evaluate(probe.weight, probe.bias, gw, gb);
      EXPECT_LT(maxAbs(gw, gb), 1e-9) << classes << " classes";
      EXPECT_NEAR(j, probe.objective, 1e-12);
      // And it is a minimum: a small step along a weight raises J.
      std::vector<double> moved = probe.weight;
      moved[0] += 1e-3;
      EXPECT_GT(ref.evaluate(moved, probe.bias, gw, gb), j);
     }
    }
  }
}

TEST(AnalysisProbe, PreconditionedFitReachesThePlainFitsOptimumInFewerIterations) {
  // Nearly collinear features, as a transformer's hidden states are: 12 features mixed from
  // 4 blob features plus small independent noise, so the standardised covariance has 8
  // eigenvalues near 1e-4 and 4 near 3. Both fits run to max |gradient| <= 1e-9 (checked by
  // the independent reference; the plain fit's float64 floor here is about 3e-10); W is unique
  // (strictly convex for l2 > 0), so they must agree.
  const Data base = blobs(400, 4, 5, 1.5F, 0.1, 51);
  Data data{base.n, 12, base.c, std::vector<float>(base.n * 12), base.y};
  std::mt19937 rng(52);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> mix(12 * 4);
  for (float& m : mix) {
    m = normal(rng);
  }
  for (std::size_t i = 0; i < data.n; ++i) {
    for (std::size_t k = 0; k < 12; ++k) {
      float v = 0.01F * normal(rng);
      for (std::size_t j = 0; j < 4; ++j) {
        v += mix[k * 4 + j] * (base.x[i * 4 + j] - 3.0F * static_cast<float>(j));
      }
      data.x[i * 12 + k] = v;
    }
  }
  const double l2 = 1e-3;
  ProbeOptions options = tight(l2);
  options.gradientTolerance = 1e-9;
  options.maxIterations = 20000;
  const LinearProbe pre = fitProbe(data.x, 12, data.y, data.c, options);
  options.precondition = false;
  const LinearProbe plain = fitProbe(data.x, 12, data.y, data.c, options);
  ASSERT_TRUE(pre.converged) << pre.gradientMaxAbs << " after " << pre.iterations;
  ASSERT_TRUE(plain.converged) << plain.gradientMaxAbs << " after " << plain.iterations;
  const Reference ref(data, l2);
  std::vector<double> gw;
  std::vector<double> gb;
  const double jPre = ref.evaluate(pre.weight, pre.bias, gw, gb);
  EXPECT_LT(maxAbs(gw, gb), 2e-9);
  const double jPlain = ref.evaluate(plain.weight, plain.bias, gw, gb);
  EXPECT_LT(maxAbs(gw, gb), 2e-9);
  EXPECT_NEAR(jPre, jPlain, 1e-12);
  // ||W - W*|| <= ||grad|| / l2 for a l2-strongly convex J: 1e-9 * sqrt(65) / 1e-3 < 1e-5.
  for (std::size_t k = 0; k < pre.weight.size(); ++k) {
    EXPECT_NEAR(pre.weight[k], plain.weight[k], 1e-5) << "weight " << k;
  }
  EXPECT_EQ(predictProbe(pre, data.x), predictProbe(plain, data.x));
  // What the preconditioner is for.
  EXPECT_LT(2 * pre.iterations, plain.iterations) << pre.iterations << " against " << plain.iterations;
}

TEST(AnalysisProbe, AgreesWithPlainGradientDescent) {
  // An independent solver: fixed-step gradient descent from zero to a tiny gradient. W is
  // unique (strictly convex in W for l2 > 0); b is unique up to a common shift, so the
  // comparison is on W and on the predicted probabilities.
  const Data data = blobs(60, 3, 3, 1.0F, 0.15, 7);
  const double l2 = 0.1;
  const Reference ref(data, l2);
  std::vector<double> w(9, 0.0);
  std::vector<double> b(3, 0.0);
  std::vector<double> gw;
  std::vector<double> gb;
  for (int it = 0; it < 20000; ++it) {
    ref.evaluate(w, b, gw, gb);
    for (std::size_t k = 0; k < w.size(); ++k) {
      w[k] -= 0.4 * gw[k];
    }
    for (std::size_t k = 0; k < b.size(); ++k) {
      b[k] -= 0.4 * gb[k];
    }
  }
  ref.evaluate(w, b, gw, gb);
  ASSERT_LT(maxAbs(gw, gb), 1e-11); // the reference itself converged
  const LinearProbe probe = fitProbe(data.x, 3, data.y, 3, tight(l2));
  for (std::size_t k = 0; k < w.size(); ++k) {
    EXPECT_NEAR(probe.weight[k], w[k], 1e-8) << "weight " << k;
  }
  const std::vector<double> probs = probeProbabilities(probe, data.x);
  for (std::size_t i = 0; i < data.n; ++i) {
    std::vector<double> z(3);
    double sum = 0.0;
    for (std::size_t k = 0; k < 3; ++k) {
      z[k] = b[k];
      for (std::size_t j = 0; j < 3; ++j) {
        z[k] += w[k * 3 + j] * ref.design[i * 3 + j];
      }
      sum += std::exp(z[k]);
    }
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_NEAR(probs[i * 3 + k], std::exp(z[k]) / sum, 1e-8);
    }
  }
}

TEST(AnalysisProbe, SeparableDataIsClassifiedPerfectly) {
  const Data train = blobs(150, 4, 3, 12.0F, 0.0, 11);
  const LinearProbe probe = fitProbe(train.x, 4, train.y, 3);
  EXPECT_DOUBLE_EQ(probeAccuracy(probe, train.x, train.y), 1.0);
  // 300 points from the same blobs (the same seed draws the same centres; points 150..299
  // are new), jittered.
  Data eval = blobs(300, 4, 3, 12.0F, 0.0, 11);
  std::mt19937 rng(99);
  std::normal_distribution<float> jitter(0.0F, 0.3F);
  for (float& v : eval.x) {
    v += jitter(rng);
  }
  EXPECT_DOUBLE_EQ(probeAccuracy(probe, eval.x, eval.y), 1.0);
  const std::vector<std::int64_t> predicted = predictProbe(probe, eval.x);
  EXPECT_EQ(predicted, eval.y);
}

TEST(AnalysisProbe, DeterministicAndIndependentOfThreads) {
  const Data data = blobs(300, 6, 4, 1.5F, 0.1, 21);
  const LinearProbe a = fitProbe(data.x, 6, data.y, 4, tight(1e-3, 1));
  const LinearProbe b = fitProbe(data.x, 6, data.y, 4, tight(1e-3, 1));
  const LinearProbe c = fitProbe(data.x, 6, data.y, 4, tight(1e-3, 2));
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.bias, b.bias);
  EXPECT_EQ(a.weight, c.weight); // bit for bit: fixed blocks, reduced in order
  EXPECT_EQ(a.bias, c.bias);
  EXPECT_EQ(a.iterations, c.iterations);
}

// fitProbes fits the layers side by side, one thread each: every probe must be the one
// fitProbe gives alone (with either thread count), bit for bit, and in the sets' order.
TEST(AnalysisProbe, FitProbesGivesEachSetsFitProbeBitForBit) {
  const int torchThreads = at::get_num_threads();
  at::set_num_threads(2); // forEachItemOnOneThread's workers: two fits at once
  // Three sets of 240 rows, of widths 5, 3 and 5 (models of different widths fit together).
  const std::vector<std::size_t> widths{5, 3, 5};
  std::vector<std::vector<float>> sets;
  std::vector<std::int64_t> labels;
  for (unsigned k = 0; k < 3; ++k) {
    const Data data = blobs(240, widths[k], 3, 1.0F + 0.5F * static_cast<float>(k), 0.1, 50 + k);
    sets.push_back(data.x);
    if (k == 0) {
      labels = data.y; // each set is fitted to the first set's labels
    }
  }
  ProbeOptions options = tight(1e-3, 2);
  options.gradientTolerance = 1e-8;
  const std::vector<LinearProbe> probes = fitProbes(sets, widths, labels, 3, options);
  at::set_num_threads(torchThreads);
  ASSERT_EQ(probes.size(), sets.size());
  EXPECT_THROW((void)fitProbes(sets, {5, 3}, labels, 3, options), std::invalid_argument);
  for (std::size_t k = 0; k < sets.size(); ++k) {
    ASSERT_EQ(probes[k].numFeatures, widths[k]);
    for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
      ProbeOptions alone = options;
      alone.threads = threads;
      const LinearProbe expected = fitProbe(sets[k], widths[k], labels, 3, alone);
      EXPECT_EQ(probes[k].weight, expected.weight) << "set " << k << ", " << threads << " thread(s)";
      EXPECT_EQ(probes[k].bias, expected.bias) << "set " << k;
      EXPECT_EQ(probes[k].iterations, expected.iterations) << "set " << k;
      EXPECT_EQ(probes[k].converged, expected.converged) << "set " << k;
    }
  }
  // The sets differ, so do their fits (a mix-up of the order would show).
  EXPECT_NE(probes[0].weight, probes[2].weight);
}

TEST(AnalysisProbe, StandardisesWithTrainStatisticsAndIgnoresConstantFeatures) {
  Data data = blobs(80, 3, 2, 2.0F, 0.1, 31);
  // Append a constant feature: its std is 0, its scale becomes 1 and its weight stays 0.
  std::vector<float> x;
  for (std::size_t i = 0; i < data.n; ++i) {
    x.insert(x.end(), data.x.begin() + static_cast<long>(i * 3), data.x.begin() + static_cast<long>(i * 3 + 3));
    x.push_back(42.0F);
  }
  const LinearProbe probe = fitProbe(x, 4, data.y, 2, tight(1e-2));
  EXPECT_EQ(probe.scale[3], 1.0);
  EXPECT_EQ(probe.mean[3], 42.0);
  EXPECT_EQ(probe.weight[3], 0.0);
  EXPECT_EQ(probe.weight[7], 0.0);
  // Mean and std are the population ones of the training features.
  double mean = 0.0;
  for (std::size_t i = 0; i < data.n; ++i) {
    mean += data.x[i * 3];
  }
  mean /= static_cast<double>(data.n);
  double var = 0.0;
  for (std::size_t i = 0; i < data.n; ++i) {
    var += (data.x[i * 3] - mean) * (data.x[i * 3] - mean);
  }
  EXPECT_NEAR(probe.mean[0], mean, 1e-12);
  EXPECT_NEAR(probe.scale[0], std::sqrt(var / static_cast<double>(data.n)), 1e-12);
}

TEST(AnalysisProbe, RejectsBadInput) {
  const Data data = blobs(20, 2, 2, 1.0F, 0.0, 41);
  ProbeOptions negative;
  negative.l2 = -1.0;
  EXPECT_THROW((void)fitProbe(data.x, 2, data.y, 2, negative), std::invalid_argument);
  EXPECT_THROW((void)fitProbe(data.x, 3, data.y, 2), std::invalid_argument);
  EXPECT_THROW((void)fitProbe(data.x, 2, data.y, 1), std::invalid_argument);
  std::vector<std::int64_t> bad = data.y;
  bad[0] = 5;
  EXPECT_THROW((void)fitProbe(data.x, 2, bad, 2), std::invalid_argument);
  EXPECT_THROW((void)fitProbe({}, 2, {}, 2), std::invalid_argument);
  const LinearProbe probe = fitProbe(data.x, 2, data.y, 2);
  EXPECT_THROW((void)predictProbe(probe, {1.0F, 2.0F, 3.0F}), std::invalid_argument);
  EXPECT_THROW((void)probeAccuracy(probe, data.x, {0}), std::invalid_argument);
  EXPECT_TRUE(std::isnan(probeAccuracy(probe, {}, {})));
  EXPECT_THROW((void)predictProbe(LinearProbe{}, data.x), std::invalid_argument);
}

} // namespace
} // namespace kdscope::core::analysis
