// Tests of core/analysis/metrics.h on hand-worked cases (worked out in the comments) and
// against naive float64 formulas written here.

#include "core/analysis/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace kdscope::core::analysis {
namespace {

/// exp(z_c / T) / sum_k exp(z_k / T) without any stabilisation (fine for small logits).
std::vector<double> naiveSoftmaxRow(const std::vector<double>& z, double t) {
  double sum = 0.0;
  for (double v : z) {
    sum += std::exp(v / t);
  }
  std::vector<double> p;
  for (double v : z) {
    p.push_back(std::exp(v / t) / sum);
  }
  return p;
}

TEST(AnalysisMetrics, SoftmaxMatchesDefinitionAndTemperature) {
  const std::vector<float> logits{1.0F, 2.0F, 3.0F, -1.0F, 0.5F, 0.0F};
  const std::vector<double> p = softmax(logits, 3);
  const std::vector<double> p2 = softmax(logits, 3, 2.0);
  for (std::size_t row = 0; row < 2; ++row) {
    const std::vector<double> z(logits.begin() + static_cast<long>(row * 3), logits.begin() + static_cast<long>(row * 3 + 3));
    const std::vector<double> expected = naiveSoftmaxRow(z, 1.0);
    const std::vector<double> expected2 = naiveSoftmaxRow(z, 2.0);
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(p[row * 3 + c], expected[c], 1e-15);
      EXPECT_NEAR(p2[row * 3 + c], expected2[c], 1e-15);
    }
  }
  const std::vector<double> logP = logSoftmax(logits, 3);
  for (std::size_t k = 0; k < logits.size(); ++k) {
    EXPECT_NEAR(logP[k], std::log(p[k]), 1e-14);
  }
}

TEST(AnalysisMetrics, SoftmaxIsStableForHugeLogits) {
  // exp(1000) overflows a double; the max-shifted form gives (1/2, 1/2) and (1, 0).
  const std::vector<double> p = softmax({1000.0F, 1000.0F, 1000.0F, -1000.0F}, 2);
  EXPECT_DOUBLE_EQ(p[0], 0.5);
  EXPECT_DOUBLE_EQ(p[1], 0.5);
  EXPECT_DOUBLE_EQ(p[2], 1.0);
  EXPECT_EQ(p[3], 0.0);
  EXPECT_THROW((void)softmax({1.0F, 2.0F}, 2, 0.0), std::invalid_argument);
  EXPECT_THROW((void)softmax({1.0F, 2.0F, 3.0F}, 2), std::invalid_argument);
}

TEST(AnalysisMetrics, AccuracyAndAgreementHandCase) {
  // Rows (C = 3):      argmax   label  teacher right?
  //  [3, 1, 0]           0        0     yes
  //  [0, 2, 1]           1        2     no
  //  [1, 1, 0]           0 (tie)  0     yes (ties go to the lowest index)
  //  [0, 0, 5]           2        2     yes           -> accuracy 3/4
  const std::vector<float> teacher{3, 1, 0, 0, 2, 1, 1, 1, 0, 0, 0, 5};
  // Student argmax: 0, 2, 1, 0 -> right on rows 0 and 1 -> 2/4; agrees with the teacher on row 0 only.
  const std::vector<float> student{2, 0, 0, 0, 1, 3, 0, 2, 1, 4, 0, 1};
  const std::vector<std::int64_t> labels{0, 2, 0, 2};
  EXPECT_DOUBLE_EQ(accuracy(teacher, labels, 3), 0.75);
  EXPECT_DOUBLE_EQ(accuracy(student, labels, 3), 0.5);
  EXPECT_DOUBLE_EQ(topOneAgreement(teacher, student, 3), 0.25);
  EXPECT_EQ(predictions(teacher, 3), (std::vector<std::int64_t>{0, 1, 0, 2}));
  EXPECT_TRUE(std::isnan(accuracy({}, {}, 3)));
  EXPECT_THROW((void)accuracy(teacher, {0, 2, 0, 3}, 3), std::invalid_argument);
  EXPECT_THROW((void)accuracy(teacher, {0, 2, 0}, 3), std::invalid_argument);
}

TEST(AnalysisMetrics, MeanKlHandCase) {
  // Example 0: teacher [0, 0] -> p = (1/2, 1/2); student [1, 0] -> q = (e, 1) / (1 + e).
  //   KL = 1/2 ln(p0/q0) + 1/2 ln(p1/q1) = 1/2 ln((1+e)/(2e)) + 1/2 ln((1+e)/2)
  //      = ln((1+e)/2) - 1/2 = 0.12011450695827752...
  // Example 1: identical logits -> KL = 0.   Mean = (ln((1+e)/2) - 1/2) / 2.
  const std::vector<float> teacher{0, 0, 2, -1};
  const std::vector<float> student{1, 0, 2, -1};
  const double e = std::exp(1.0);
  EXPECT_NEAR(meanKl(teacher, student, 2), (std::log((1.0 + e) / 2.0) - 0.5) / 2.0, 1e-15);
  EXPECT_NEAR(meanKl(teacher, teacher, 2), 0.0, 1e-16);
  // KL is not symmetric: KL(q || p) for example 0 = q0 ln(2 q0) + q1 ln(2 q1).
  const double q0 = e / (1.0 + e);
  const double q1 = 1.0 / (1.0 + e);
  EXPECT_NEAR(meanKl(student, teacher, 2), (q0 * std::log(2.0 * q0) + q1 * std::log(2.0 * q1)) / 2.0, 1e-15);
  // At T = 2 the same formula on halved logits.
  const std::vector<double> p = naiveSoftmaxRow({0.0, 0.0}, 2.0);
  const std::vector<double> q = naiveSoftmaxRow({1.0, 0.0}, 2.0);
  const double kl2 = p[0] * std::log(p[0] / q[0]) + p[1] * std::log(p[1] / q[1]);
  EXPECT_NEAR(meanKl(teacher, student, 2, 2.0), kl2 / 2.0, 1e-15);
}

TEST(AnalysisMetrics, ExpectedCalibrationErrorHandCase) {
  // Two classes, logits [d, 0] give confidence 1 / (1 + e^-d): d = ln 9 -> 0.9, d = ln 3 ->
  // 0.75, d = 0 -> 0.5 (predicted class 0 by the tie rule). With 15 bins of width 1/15:
  //   0.9  -> bin 13 (0.8667, 0.9333]: e0 right, e1 wrong -> acc 0.5, conf 0.9, |gap| 0.4
  //   0.75 -> bin 11 (0.7333, 0.8]:    e2, e3 right       -> acc 1,   conf 0.75, |gap| 0.25
  //   0.5  -> bin 7  (0.4667, 0.5333]: e4 right, e5 wrong -> acc 0.5, conf 0.5, |gap| 0
  // ECE = 2/6 * 0.4 + 2/6 * 0.25 + 2/6 * 0 = 1.3 / 6 = 0.21666...
  const float ln9 = std::log(9.0F);
  const float ln3 = std::log(3.0F);
  const std::vector<float> logits{ln9, 0, ln9, 0, ln3, 0, ln3, 0, 0, 0, 0, 0};
  const std::vector<std::int64_t> labels{0, 1, 0, 0, 0, 1};
  // float(ln 9) and float(ln 3) move the confidences by ~1e-8; nowhere near a bin edge.
  EXPECT_NEAR(expectedCalibrationError(logits, labels, 2), 1.3 / 6.0, 1e-7);
  const CalibrationBins bins = calibrationBins(logits, labels, 2);
  ASSERT_EQ(bins.count.size(), 15U);
  EXPECT_EQ(bins.count[13], 2U);
  EXPECT_EQ(bins.count[11], 2U);
  EXPECT_EQ(bins.count[7], 2U);
  EXPECT_DOUBLE_EQ(bins.accuracy[13], 0.5);
  EXPECT_NEAR(bins.meanConfidence[11], 0.75, 1e-7);
  EXPECT_TRUE(std::isnan(bins.accuracy[0]));
  // Ten bins on the same data: 0.75 -> bin 7, 0.5 -> bin 4 (0.4, 0.5], and 0.9 sits on the
  // edge of bins 8 and 9 (float rounding decides) but e0 and e1 move together: the same
  // groups, the same ECE.
  EXPECT_NEAR(expectedCalibrationError(logits, labels, 2, 10), 1.3 / 6.0, 1e-7);
  EXPECT_TRUE(std::isnan(expectedCalibrationError({}, {}, 2)));
  EXPECT_THROW((void)expectedCalibrationError(logits, labels, 2, 0), std::invalid_argument);
}

TEST(AnalysisMetrics, ConfidenceBinEdgesAreUpperInclusive) {
  // 3, 7 and 15 have values just above an edge where ceil(conf * B) lands one bin low, 25 has
  // edges k / B where it lands one bin high: the rule must not depend on that rounding.
  for (std::size_t bins : {1, 2, 3, 7, 10, 15, 25}) {
    const auto b = static_cast<double>(bins);
    EXPECT_EQ(confidenceBin(0.0, bins), 0U);
    EXPECT_EQ(confidenceBin(1.0, bins), bins - 1);
    for (std::size_t k = 1; k <= bins; ++k) {
      const double edge = static_cast<double>(k) / b;
      EXPECT_EQ(confidenceBin(edge, bins), k - 1) << "edge " << k << "/" << bins;
      if (k < bins) {
        EXPECT_EQ(confidenceBin(std::nextafter(edge, 2.0), bins), k) << "above edge " << k << "/" << bins;
      }
    }
  }
  EXPECT_EQ(confidenceBin(1e-300, 15), 0U);
}

TEST(AnalysisMetrics, RecallAndConfusionHandCase) {
  // Predictions 0, 1, 1, 2, 0 for labels 0, 1, 0, 2, 2 (class 3 has no examples).
  const std::vector<float> logits{5, 0, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 0, 5, 0, 5, 0, 0, 0};
  const std::vector<std::int64_t> labels{0, 1, 0, 2, 2};
  const Matrix confusion = confusionMatrix(logits, labels, 4);
  // Row = true class:     pred 0  1  2  3
  const std::vector<double> expected{1, 1, 0, 0,  // true 0: one right, one called 1
                                     0, 1, 0, 0,  // true 1
                                     1, 0, 1, 0,  // true 2: one right, one called 0
                                     0, 0, 0, 0}; // true 3: none
  EXPECT_EQ(confusion.values, expected);
  const std::vector<double> recall = perClassRecall(logits, labels, 4);
  EXPECT_DOUBLE_EQ(recall[0], 0.5);
  EXPECT_DOUBLE_EQ(recall[1], 1.0);
  EXPECT_DOUBLE_EQ(recall[2], 0.5);
  EXPECT_TRUE(std::isnan(recall[3]));
}

TEST(AnalysisMetrics, TaskComparisonCombinesTheParts) {
  const std::vector<float> teacher{3, 1, 0, 0, 2, 1, 1, 1, 0, 0, 0, 5};
  const std::vector<float> student{2, 0, 0, 0, 1, 3, 0, 2, 1, 4, 0, 1};
  const std::vector<std::int64_t> labels{0, 2, 0, 2};
  const TaskComparison c = compareTask(teacher, student, labels, 3);
  EXPECT_DOUBLE_EQ(c.teacherAccuracy, 0.75);
  EXPECT_DOUBLE_EQ(c.studentAccuracy, 0.5);
  EXPECT_DOUBLE_EQ(c.gap, 0.25);
  EXPECT_DOUBLE_EQ(c.retainedFraction, 0.5 / 0.75);
  EXPECT_DOUBLE_EQ(c.agreement, 0.25);
  EXPECT_DOUBLE_EQ(c.meanKl, meanKl(teacher, student, 3));
  EXPECT_DOUBLE_EQ(c.teacherEce, expectedCalibrationError(teacher, labels, 3));
  EXPECT_DOUBLE_EQ(c.studentEce, expectedCalibrationError(student, labels, 3));
  // A teacher that is never right: retained fraction is undefined.
  const TaskComparison wrong = compareTask(student, teacher, {1, 0, 0, 1}, 3);
  EXPECT_DOUBLE_EQ(wrong.teacherAccuracy, 0.0);
  EXPECT_TRUE(std::isnan(wrong.retainedFraction));
}

TEST(AnalysisMetrics, LostAndGainedHandCase) {
  // Two classes.     teacher      student      label   teacher  student
  //  e0             [2, 0]       [0, 1]         0      right    wrong   -> lost
  //  e1             [0, 1]       [3, 0]         0      wrong    right   -> gained
  //  e2             [1, 0]       [1, 0]         0      right    right
  //  e3             [0, 2]       [0, 3]         0      wrong    wrong
  //  e4             [0, 1]       [1, 0]         1      right    wrong   -> lost
  const std::vector<float> teacher{2, 0, 0, 1, 1, 0, 0, 2, 0, 1};
  const std::vector<float> student{0, 1, 3, 0, 1, 0, 0, 3, 1, 0};
  const std::vector<std::int64_t> labels{0, 0, 0, 0, 1};
  const LostAndGained result = lostAndGained(teacher, student, labels, 2);
  ASSERT_EQ(result.lost.size(), 2U);
  ASSERT_EQ(result.gained.size(), 1U);
  auto sigmoid = [](double d) { return 1.0 / (1.0 + std::exp(-d)); };
  const ExampleChange& e0 = result.lost[0];
  EXPECT_EQ(e0.index, 0U);
  EXPECT_EQ(e0.teacherPrediction, 0);
  EXPECT_EQ(e0.studentPrediction, 1);
  EXPECT_NEAR(e0.teacherTrueProbability, sigmoid(2), 1e-15);
  EXPECT_NEAR(e0.studentTrueProbability, sigmoid(-1), 1e-15);
  EXPECT_NEAR(e0.teacherPredictedProbability, sigmoid(2), 1e-15);
  EXPECT_NEAR(e0.studentPredictedProbability, sigmoid(1), 1e-15);
  EXPECT_EQ(result.lost[1].index, 4U);
  EXPECT_EQ(result.lost[1].label, 1);
  const ExampleChange& e1 = result.gained[0];
  EXPECT_EQ(e1.index, 1U);
  EXPECT_NEAR(e1.teacherTrueProbability, sigmoid(-1), 1e-15);
  EXPECT_NEAR(e1.teacherPredictedProbability, sigmoid(1), 1e-15);
  EXPECT_NEAR(e1.studentTrueProbability, sigmoid(3), 1e-15);
}

} // namespace
} // namespace kdscope::core::analysis
