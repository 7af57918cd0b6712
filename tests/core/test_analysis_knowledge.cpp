// Tests of core/analysis/knowledge.h: closed forms from ANALYSES.md, a finite-difference
// derivative of the KD objective computed here in float64, and hand-worked cases.

#include "core/analysis/knowledge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace kdscope::core::analysis {
namespace {

/// log softmax(z / T) by the definition (no shift; the test logits are small).
std::vector<double> naiveLogSoftmax(const std::vector<double>& z, double t) {
  double sum = 0.0;
  for (double v : z) {
    sum += std::exp(v / t);
  }
  std::vector<double> out;
  for (double v : z) {
    out.push_back(v / t - std::log(sum));
  }
  return out;
}

/// The per-example objective (1 - lambda) CE(z) + lambda T^2 KL(p^T || softmax(z / T)).
double kdObjective(const std::vector<double>& zs, const std::vector<double>& zt, std::size_t y, double lambda,
                   double t) {
  const std::vector<double> logQ = naiveLogSoftmax(zs, 1.0);
  const std::vector<double> logQt = naiveLogSoftmax(zs, t);
  const std::vector<double> logPt = naiveLogSoftmax(zt, t);
  double kl = 0.0;
  for (std::size_t c = 0; c < zs.size(); ++c) {
    kl += std::exp(logPt[c]) * (logPt[c] - logQt[c]);
  }
  return (1.0 - lambda) * -logQ[y] + lambda * t * t * kl;
}

std::vector<float> randomLogits(std::size_t rows, std::size_t classes, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, scale);
  std::vector<float> out(rows * classes);
  for (float& v : out) {
    v = normal(rng);
  }
  return out;
}

// ---- Universe -----------------------------------------------------------------------

TEST(AnalysisKnowledge, EvenlySpreadTeacherIsLabelSmoothingWithMatchedEpsilon) {
  // C = 4. A teacher with p_y = a and (1 - a) / 3 on each other class is the LS target
  // (1 - eps) onehot + eps / 4 with eps = 4 (1 - a) / 3: e.g. a = 0.7 -> eps = 0.4, target
  // 0.6 + 0.1 = 0.7 on y and 0.1 = 0.3 / 3 elsewhere.
  const std::size_t c = 4;
  const std::vector<double> a{0.7, 0.4, 0.9};
  const std::vector<std::int64_t> labels{0, 2, 3};
  std::vector<double> teacher;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t k = 0; k < c; ++k) {
      teacher.push_back(static_cast<std::int64_t>(k) == labels[i] ? a[i] : (1.0 - a[i]) / 3.0);
    }
  }
  double meanEps = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::vector<double> row(teacher.begin() + static_cast<long>(i * c), teacher.begin() + static_cast<long>(i * c + c));
    const double eps = matchedLabelSmoothingEpsilon(row, {labels[i]}, c);
    EXPECT_NEAR(eps, 4.0 * (1.0 - a[i]) / 3.0, 1e-15);
    const std::vector<double> target = labelSmoothingTargets({labels[i]}, c, eps);
    for (std::size_t k = 0; k < c; ++k) {
      EXPECT_NEAR(target[k], row[k], 1e-15) << "example " << i << " class " << k;
    }
    meanEps += eps / 3.0;
  }
  // Over the set: eps = C E[1 - p_y] / (C - 1) = 4/3 * (0.3 + 0.6 + 0.1) / 3 = 4/9.
  EXPECT_NEAR(matchedLabelSmoothingEpsilon(teacher, labels, c), 4.0 / 9.0, 1e-15);
  EXPECT_NEAR(matchedLabelSmoothingEpsilon(teacher, labels, c), meanEps, 1e-15);
  // Only the total non-target mass matters: an uneven teacher with p_y = 0.7 also gives 0.4.
  EXPECT_NEAR(matchedLabelSmoothingEpsilon({0.7, 0.2, 0.1, 0.0}, {0}, 4), 0.4, 1e-15);
  EXPECT_THROW((void)matchedLabelSmoothingEpsilon({1.0}, {0}, 1), std::invalid_argument);
  EXPECT_TRUE(std::isnan(matchedLabelSmoothingEpsilon({}, {}, 3)));
}

TEST(AnalysisKnowledge, MatchedEpsilonAtTheKdTemperatureHandWorked) {
  // Hand-worked, C = 3. Example 0: z = (ln 4, 0, 0), label 0. At T = 1, p = (4, 1, 1) / 6, so
  // 1 - p_y = 1/3; at T = 2, z / T = (ln 2, 0, 0), p = (2, 1, 1) / 4, so 1 - p_y = 1/2.
  // Example 1: z = (0, ln 9, 0), label 1. At T = 1, p_y = 9/11, 1 - p_y = 2/11; at T = 2,
  // p_y = 3/5, 1 - p_y = 2/5.
  // eps(T) = C / (C - 1) * mean(1 - p_y):
  //   T = 1: 3/2 * (1/3 + 2/11) / 2 = 3/4 * 17/33 = 17/44
  //   T = 2: 3/2 * (1/2 + 2/5) / 2 = 3/4 * 9/10  = 27/40
  // The KD temperature's flatter p^T asks for a larger epsilon; the difference is the
  // smoothing the temperature itself adds, which an LS control matched at T = 1 leaves to
  // the instance level.
  const std::vector<float> logits{std::log(4.0F), 0.0F, 0.0F, 0.0F, std::log(9.0F), 0.0F};
  const std::vector<std::int64_t> labels{0, 1};
  EXPECT_NEAR(matchedLabelSmoothingEpsilonAt(logits, labels, 3, 1.0), 17.0 / 44.0, 1e-7);
  EXPECT_NEAR(matchedLabelSmoothingEpsilonAt(logits, labels, 3, 2.0), 27.0 / 40.0, 1e-7);
  // T = 1 is the probability form on softmax(z).
  EXPECT_NEAR(matchedLabelSmoothingEpsilonAt(logits, labels, 3, 1.0),
              matchedLabelSmoothingEpsilon({4.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 11, 9.0 / 11, 1.0 / 11}, labels, 3), 1e-7);
  // T -> infinity: p^T is uniform, 1 - p_y = (C - 1) / C, so eps -> 1.
  EXPECT_NEAR(matchedLabelSmoothingEpsilonAt(logits, labels, 3, 1e6), 1.0, 1e-5);
  EXPECT_THROW((void)matchedLabelSmoothingEpsilonAt(logits, labels, 3, 0.0), std::invalid_argument);
}

// ---- Instance -----------------------------------------------------------------------

TEST(AnalysisKnowledge, RescaleWeightAtTemperatureOneIsTheClosedForm) {
  const std::size_t c = 5;
  const std::vector<float> teacher = randomLogits(30, c, 1, 2.0F);
  const std::vector<float> student = randomLogits(30, c, 2, 2.0F);
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < 30; ++i) {
    labels.push_back(static_cast<std::int64_t>(i % c));
  }
  for (double lambda : {0.0, 0.3, 0.9, 1.0}) {
    const std::vector<double> w = gradRescaleWeights(teacher, student, labels, c, lambda, 1.0);
    for (std::size_t i = 0; i < 30; ++i) {
      const std::vector<double> zt(teacher.begin() + static_cast<long>(i * c), teacher.begin() + static_cast<long>(i * c + c));
      const std::vector<double> zs(student.begin() + static_cast<long>(i * c), student.begin() + static_cast<long>(i * c + c));
      const auto y = static_cast<std::size_t>(labels[i]);
      const double py = std::exp(naiveLogSoftmax(zt, 1.0)[y]);
      const double qy = std::exp(naiveLogSoftmax(zs, 1.0)[y]);
      // ANALYSES.md: w = 1 - lambda (1 - p_y) / (1 - q_y).
      EXPECT_NEAR(w[i], 1.0 - lambda * (1.0 - py) / (1.0 - qy), 1e-12) << "lambda " << lambda << " example " << i;
    }
  }
}

TEST(AnalysisKnowledge, RescaleWeightMatchesFiniteDifferenceOfObjective) {
  // w = g_KD / g_CE with both derivatives taken numerically (central differences in float64)
  // of (1 - lambda) CE + lambda T^2 KL(p^T || q^T) and of CE, with respect to z_y. This checks
  // that the factor in g_KD is T (what the derivative gives), not T^2.
  const std::size_t c = 4;
  const std::vector<float> teacher = randomLogits(12, c, 3, 1.5F);
  const std::vector<float> student = randomLogits(12, c, 4, 1.5F);
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < 12; ++i) {
    labels.push_back(static_cast<std::int64_t>((i * 3) % c));
  }
  const double h = 1e-5;
  for (double t : {1.0, 2.0, 4.0, 0.5}) {
    for (double lambda : {0.5, 0.9}) {
      const std::vector<double> w = gradRescaleWeights(teacher, student, labels, c, lambda, t);
      for (std::size_t i = 0; i < 12; ++i) {
        const std::vector<double> zt(teacher.begin() + static_cast<long>(i * c), teacher.begin() + static_cast<long>(i * c + c));
        const std::vector<double> zs(student.begin() + static_cast<long>(i * c), student.begin() + static_cast<long>(i * c + c));
        const auto y = static_cast<std::size_t>(labels[i]);
        std::vector<double> plus = zs;
        std::vector<double> minus = zs;
        plus[y] += h;
        minus[y] -= h;
        const double gKd = (kdObjective(plus, zt, y, lambda, t) - kdObjective(minus, zt, y, lambda, t)) / (2.0 * h);
        const double gCe = (kdObjective(plus, zt, y, 0.0, t) - kdObjective(minus, zt, y, 0.0, t)) / (2.0 * h);
        EXPECT_NEAR(w[i], gKd / gCe, 1e-6 * std::max(1.0, std::abs(w[i])))
            << "T " << t << " lambda " << lambda << " example " << i;
      }
    }
  }
}

TEST(AnalysisKnowledge, RescaleWeightIsNaNWithoutCrossEntropyGradient) {
  // exp(-1000) underflows: q_y is exactly 1 and g_CE = 0.
  const std::vector<double> w = gradRescaleWeights({0, 0, 1, 0}, {0, -1000, 0, 0}, {0, 1}, 2, 0.5, 2.0);
  EXPECT_TRUE(std::isnan(w[0]));
  EXPECT_FALSE(std::isnan(w[1]));
  EXPECT_THROW((void)gradRescaleWeights({0, 0}, {0, 0}, {0}, 2, 1.5, 1.0), std::invalid_argument);
  EXPECT_THROW((void)gradRescaleWeights({0, 0}, {0, 0}, {0}, 2, 0.5, 0.0), std::invalid_argument);
}

TEST(AnalysisKnowledge, PtTeacherKeepsTargetAndSpreadsTheRest) {
  // [0.1, 0.6, 0.3] with y = 1 -> [0.2, 0.6, 0.2]; with y = 0 -> [0.1, 0.45, 0.45].
  const std::vector<double> teacher{0.1, 0.6, 0.3, 0.1, 0.6, 0.3};
  const std::vector<std::int64_t> labels{1, 0};
  const std::vector<double> pt = ptTeacherProbs(teacher, labels, 3);
  const std::vector<double> expected{0.2, 0.6, 0.2, 0.1, 0.45, 0.45};
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_NEAR(pt[k], expected[k], 1e-15);
  }
  // It keeps the universe level: the same matched epsilon as the teacher.
  EXPECT_NEAR(matchedLabelSmoothingEpsilon(pt, labels, 3), matchedLabelSmoothingEpsilon(teacher, labels, 3), 1e-15);
  EXPECT_EQ(trueClassProbabilities(pt, labels, 3), (std::vector<double>{0.6, 0.1}));
}

TEST(AnalysisKnowledge, BinsWeightsByConfidenceHandCase) {
  // Ten bins. 0.05 and 0.0 -> bin 0 (values 1, 4: mean 2.5, conf 0.025);
  // 0.15 and 0.12 -> bin 1 (values 2, 3: mean 2.5, conf 0.135); the NaN pair is skipped.
  const ConfidenceBins bins = binByConfidence({1, 2, 3, 4, std::nan("")}, {0.05, 0.15, 0.12, 0.0, 0.5}, 10);
  ASSERT_EQ(bins.count.size(), 10U);
  EXPECT_EQ(bins.count[0], 2U);
  EXPECT_EQ(bins.count[1], 2U);
  EXPECT_EQ(bins.count[4], 0U);
  EXPECT_DOUBLE_EQ(bins.meanValue[0], 2.5);
  EXPECT_DOUBLE_EQ(bins.meanConfidence[0], 0.025);
  EXPECT_DOUBLE_EQ(bins.meanValue[1], 2.5);
  EXPECT_DOUBLE_EQ(bins.meanConfidence[1], 0.135);
  EXPECT_TRUE(std::isnan(bins.meanValue[4]));
  EXPECT_DOUBLE_EQ(bins.lower[3], 0.3);
  EXPECT_DOUBLE_EQ(bins.upper[3], 0.4);
  EXPECT_THROW((void)binByConfidence({1}, {1.5}, 10), std::invalid_argument);
  EXPECT_THROW((void)binByConfidence({1}, {0.5}, 0), std::invalid_argument);
}

TEST(AnalysisKnowledge, SpearmanAndPearsonHandCases) {
  const std::vector<double> a{1, 2, 3, 4, 5};
  EXPECT_NEAR(spearmanCorrelation(a, {1, 8, 27, 64, 125}), 1.0, 1e-15); // monotone
  EXPECT_NEAR(spearmanCorrelation(a, {5, 4, 3, 2, 1}), -1.0, 1e-15);
  // Ties: ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4]; against [1, 2, 3, 4]:
  // deviations (-1.5, 0, 0, 1.5) and (-1.5, -0.5, 0.5, 1.5): 4.5 / sqrt(4.5 * 5) = 0.94868...
  EXPECT_NEAR(spearmanCorrelation({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(4.5 * 5.0), 1e-15);
  // A NaN pair is skipped.
  EXPECT_NEAR(spearmanCorrelation({1, 2, std::nan(""), 3}, {3, 2, 0, 1}), -1.0, 1e-15);
  EXPECT_TRUE(std::isnan(spearmanCorrelation({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(pearsonCorrelation({1}, {2})));
  // Pearson of (1..6) and (1, 3, 2, 5, 4, 6): 15.5 / 17.5 (worked out in OffDiagonal below).
  EXPECT_NEAR(pearsonCorrelation({1, 2, 3, 4, 5, 6}, {1, 3, 2, 5, 4, 6}), 15.5 / 17.5, 1e-15);
}

TEST(AnalysisKnowledge, PerClassMeanOfWeights) {
  const std::vector<double> mean = perClassMean({1.0, 2.0, 4.0, std::nan(""), 7.0}, {0, 1, 0, 1, 1}, 3);
  EXPECT_DOUBLE_EQ(mean[0], 2.5);
  EXPECT_DOUBLE_EQ(mean[1], 4.5);
  EXPECT_TRUE(std::isnan(mean[2]));
}

// ---- Domain -------------------------------------------------------------------------

TEST(AnalysisKnowledge, ClassSimilarityFromWeightsHandCase) {
  // Rows (1, 0), (0, 1), (1, 1), (0, 0): cos = 0 between the first two, 1/sqrt2 with the
  // third, NaN with the zero row.
  const Matrix s = classSimilarityFromWeights({1, 0, 0, 1, 1, 1, 0, 0}, 4, 2);
  const double r = 1.0 / std::sqrt(2.0);
  EXPECT_NEAR(s(0, 0), 1.0, 1e-15);
  EXPECT_NEAR(s(0, 1), 0.0, 1e-15);
  EXPECT_NEAR(s(0, 2), r, 1e-15);
  EXPECT_NEAR(s(2, 1), r, 1e-15);
  EXPECT_NEAR(s(2, 2), 1.0, 1e-15);
  EXPECT_TRUE(std::isnan(s(3, 0)));
  EXPECT_TRUE(std::isnan(s(1, 3)));
  EXPECT_TRUE(std::isnan(s(3, 3)));
  // Scaling a row does not change its cosines.
  const Matrix scaled = classSimilarityFromWeights({3, 0, 0, 1, 1, 1, 0, 0}, 4, 2);
  EXPECT_NEAR(scaled(0, 2), r, 1e-15);
}

TEST(AnalysisKnowledge, ClassSimilarityFromProbsHandCase) {
  // Class 0: rows [0.8, 0.15, 0.05] and [0.6, 0.3, 0.1] -> mean [0.7, 0.225, 0.075];
  // class 1: [0.2, 0.7, 0.1]; class 2 has no examples -> NaN row.
  const Matrix s = classSimilarityFromProbs({0.8, 0.15, 0.05, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1}, {0, 1, 0}, 3);
  const std::vector<double> expected{0.7, 0.225, 0.075, 0.2, 0.7, 0.1};
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_NEAR(s.values[k], expected[k], 1e-15);
  }
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_TRUE(std::isnan(s(2, k)));
  }
}

TEST(AnalysisKnowledge, OffDiagonalCorrelationHandCase) {
  // Off-diagonal entries in row order: A -> (1, 2, 3, 4, 5, 6), B -> (1, 3, 2, 5, 4, 6).
  // Both have mean 3.5; deviations (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5) and
  // (-2.5, -0.5, -1.5, 1.5, 0.5, 2.5): sum of products 15.5, sums of squares 17.5 each,
  // r = 15.5 / 17.5 = 0.885714... The diagonals (9s, 0s) must not matter.
  Matrix a(3, 3);
  a.values = {9, 1, 2, 3, 9, 4, 5, 6, 9};
  Matrix b(3, 3);
  b.values = {0, 1, 3, 2, 0, 5, 4, 6, 0};
  EXPECT_NEAR(offDiagonalCorrelation(a, b), 15.5 / 17.5, 1e-15);
  EXPECT_NEAR(offDiagonalCorrelation(a, a), 1.0, 1e-15);
  // A NaN entry (a class with no examples) drops that pair: (1, 2, 4, 5, 6) vs (1, 3, 5, 4, 6).
  b(1, 0) = std::nan("");
  EXPECT_NEAR(offDiagonalCorrelation(a, b), pearsonCorrelation({1, 2, 4, 5, 6}, {1, 3, 5, 4, 6}), 1e-15);
  EXPECT_THROW((void)offDiagonalCorrelation(a, Matrix(2, 2)), std::invalid_argument);
}

// ---- Decomposition ------------------------------------------------------------------

TEST(AnalysisKnowledge, GainDecompositionHandCases) {
  // Dyadic accuracies, so every difference below is exact and compared bit for bit.
  // acc_CE 0.5, acc_LS 0.625, acc_KD-pt 0.6875, acc_KD 0.71875:
  //   universe = LS - CE    = 0.625 - 0.5       = 0.125   (1/8)
  //   instance = KD-pt - LS = 0.6875 - 0.625    = 0.0625  (1/16)
  //   domain   = KD - KD-pt = 0.71875 - 0.6875  = 0.03125 (1/32)
  //   total    = KD - CE    = 0.71875 - 0.5     = 0.21875 (7/32)
  //   LS share = universe / total = (4/32) / (7/32) = 4/7.
  // The three levels all differ, so a level computed from the wrong pair of accuracies (or
  // two levels exchanged) shows.
  const GainDecomposition g = gainDecomposition(0.5, 0.625, 0.6875, 0.71875);
  EXPECT_EQ(g.universe, 0.125);
  EXPECT_EQ(g.instance, 0.0625);
  EXPECT_EQ(g.domain, 0.03125);
  EXPECT_EQ(g.total, 0.21875);
  EXPECT_NEAR(g.lsShareOfKdGain, 4.0 / 7.0, 1e-15);
  // A negative level, as in the findings run (KD-pt below LS): CE 0.75, LS 0.8125,
  // KD-pt 0.6875, KD 0.875 -> universe +1/16, instance -1/8, domain +3/16, total +1/8,
  // LS share (1/16) / (1/8) = 1/2.
  const GainDecomposition n = gainDecomposition(0.75, 0.8125, 0.6875, 0.875);
  EXPECT_EQ(n.universe, 0.0625);
  EXPECT_EQ(n.instance, -0.125);
  EXPECT_EQ(n.domain, 0.1875);
  EXPECT_EQ(n.total, 0.125);
  EXPECT_EQ(n.lsShareOfKdGain, 0.5);
  // A KD student no better than CE: the LS share is undefined.
  EXPECT_TRUE(std::isnan(gainDecomposition(0.8, 0.81, 0.79, 0.8).lsShareOfKdGain));
  // LS explains more than all of the gain when KD-pt and KD fall back below LS:
  // (0.75 - 0.5) / (0.625 - 0.5) = 2.
  EXPECT_EQ(gainDecomposition(0.5, 0.75, 0.625, 0.625).lsShareOfKdGain, 2.0);
}

TEST(AnalysisKnowledge, GainDecompositionMatchesCountsOfCorrectExamples) {
  // Accuracies k / N on an eval split of N = 872 (not dyadic). The oracle works in whole
  // examples: each level is (k_a - k_b) / N, one rounding of an exact integer difference,
  // and the LS share is the ratio of two integer differences. The code subtracts rounded
  // accuracies, so it agrees to within a few units in the last place, not bit for bit.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> count(400, 872);
  const double total = 872.0;
  int sharesChecked = 0;
  for (int trial = 0; trial < 500; ++trial) {
    const int kCe = count(rng);
    const int kLs = count(rng);
    const int kPt = count(rng);
    const int kKd = trial % 50 == 0 ? kCe : count(rng); // now and then no gain at all
    const GainDecomposition r = gainDecomposition(kCe / total, kLs / total, kPt / total, kKd / total);
    EXPECT_NEAR(r.universe, (kLs - kCe) / total, 1e-15) << "trial " << trial;
    EXPECT_NEAR(r.instance, (kPt - kLs) / total, 1e-15) << "trial " << trial;
    EXPECT_NEAR(r.domain, (kKd - kPt) / total, 1e-15) << "trial " << trial;
    EXPECT_NEAR(r.total, (kKd - kCe) / total, 1e-15) << "trial " << trial;
    // The levels telescope to the total (ANALYSES.md), to rounding of the total.
    EXPECT_NEAR(r.universe + r.instance + r.domain, r.total, 4e-16) << "trial " << trial;
    if (kKd == kCe) {
      EXPECT_TRUE(std::isnan(r.lsShareOfKdGain)) << "trial " << trial;
    } else {
      const double share = static_cast<double>(kLs - kCe) / static_cast<double>(kKd - kCe);
      EXPECT_NEAR(r.lsShareOfKdGain, share, 1e-12 * std::max(1.0, std::abs(share))) << "trial " << trial;
      ++sharesChecked;
    }
  }
  EXPECT_GT(sharesChecked, 400);
}

} // namespace
} // namespace kdscope::core::analysis
