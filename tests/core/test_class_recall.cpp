// Per-class recall with intervals (core/analysis/class_recall.h; docs/statistics.md,
// "Per-class recall"): a hand-made set of 6 eval examples over 4 classes (class 3 has none).
// The estimates are worked by hand; each interval equals the bootstrap of the class's 0/1
// hits written out here (the same function and settings), and the paired difference the
// paired bootstrap of the two models' hits on the class's examples.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/analysis/class_recall.h"
#include "core/analysis/proportion.h"
#include "core/analysis/stats.h"

namespace an = kdscope::core::analysis;

namespace {

/// One-hot logits [N, 4]: a 1 at the predicted class.
std::vector<float> predicting(const std::vector<int>& predicted) {
  std::vector<float> z(predicted.size() * 4, 0.0F);
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    z[i * 4 + static_cast<std::size_t>(predicted[i])] = 1.0F;
  }
  return z;
}

} // namespace

TEST(ClassRecall, HandWorkedRecallsIntervalsAndPairedDifferences) {
  const std::vector<std::int64_t> labels = {0, 0, 0, 1, 1, 2};
  // Teacher: hits on class 0 [1, 0, 1], class 1 [1, 0], class 2 [1].
  const auto teacher = predicting({0, 1, 0, 1, 0, 2});
  // Student: class 0 [1, 1, 0], class 1 [0, 0], class 2 [1].
  const auto student = predicting({0, 0, 1, 0, 0, 2});
  const auto t = an::classRecallIntervals(teacher, labels, 4);
  const auto s = an::classRecallIntervals(student, labels, 4);
  ASSERT_EQ(t.size(), 4U);
  EXPECT_EQ(t[0].examples, 3U);
  EXPECT_EQ(t[1].examples, 2U);
  EXPECT_EQ(t[2].examples, 1U);
  EXPECT_EQ(t[3].examples, 0U);
  EXPECT_DOUBLE_EQ(t[0].recall.estimate, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(t[1].recall.estimate, 0.5);
  EXPECT_DOUBLE_EQ(t[2].recall.estimate, 1.0);
  EXPECT_TRUE(std::isnan(t[3].recall.estimate) && std::isnan(t[3].recall.lo) && std::isnan(t[3].recall.hi));
  EXPECT_DOUBLE_EQ(s[0].recall.estimate, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s[1].recall.estimate, 0.0);
  // One example, always a hit: every resample is 1.
  EXPECT_DOUBLE_EQ(t[2].recall.lo, 1.0);
  EXPECT_DOUBLE_EQ(t[2].recall.hi, 1.0);
  // The intervals are the bootstrap of the class's hits, in example order.
  const an::Interval t0 = an::bootstrapMean({1.0, 0.0, 1.0});
  EXPECT_DOUBLE_EQ(t[0].recall.lo, t0.lo);
  EXPECT_DOUBLE_EQ(t[0].recall.hi, t0.hi);
  const an::Interval s0 = an::bootstrapMean({1.0, 1.0, 0.0});
  EXPECT_DOUBLE_EQ(s[0].recall.lo, s0.lo);
  EXPECT_DOUBLE_EQ(s[0].recall.hi, s0.hi);
  EXPECT_LT(t0.lo, t0.hi); // not degenerate

  // student - teacher, paired on each class's examples.
  const auto d = an::classRecallDifferences(student, teacher, labels, 4);
  ASSERT_EQ(d.size(), 4U);
  EXPECT_DOUBLE_EQ(d[0].difference.estimate, 0.0);
  EXPECT_DOUBLE_EQ(d[1].difference.estimate, -0.5);
  EXPECT_DOUBLE_EQ(d[2].difference.estimate, 0.0);
  EXPECT_TRUE(std::isnan(d[3].difference.estimate) && std::isnan(d[3].pValue));
  const an::PairedComparison d1 = an::pairedBootstrap({0.0, 0.0}, {1.0, 0.0});
  EXPECT_DOUBLE_EQ(d[1].difference.lo, d1.difference.lo);
  EXPECT_DOUBLE_EQ(d[1].difference.hi, d1.difference.hi);
  EXPECT_DOUBLE_EQ(d[1].pValue, d1.pValue);
  // Two examples, one discordant: the resampled difference is -1, -0.5 or 0, so the ends
  // are -1 and 0 (both cases drawn in far more than 2.5% of resamples: P = 1/4 each).
  EXPECT_DOUBLE_EQ(d[1].difference.lo, -1.0);
  EXPECT_DOUBLE_EQ(d[1].difference.hi, 0.0);

  // Shapes that do not fit give empty estimates, not a read past the end.
  const auto bad = an::classRecallIntervals(std::vector<float>(5, 0.0F), labels, 4);
  ASSERT_EQ(bad.size(), 4U);
  EXPECT_EQ(bad[0].examples, 0U);
}

// Wilson score interval of 4 of 6 at 95%: centre (4 + z^2/2) / (6 + z^2), z = 1.959964,
// so about [0.2999, 0.9032]. Worked by hand: z^2 = 3.841459, centre 5.920729 / 9.841459 = 0.601611,
// half 0.199154 x sqrt(8/6 + 0.960365) = 0.301617.
TEST(ClassRecall, WilsonIntervalOfAProportionHandWorked) {
  const an::Interval w = an::wilsonInterval(4, 6);
  EXPECT_DOUBLE_EQ(w.estimate, 4.0 / 6.0);
  EXPECT_NEAR(w.lo, 0.601611 - 0.301617, 2e-6);
  EXPECT_NEAR(w.hi, 0.601611 + 0.301617, 2e-6);
  EXPECT_EQ(w.count, 6U);
  // 0 of 10 and 10 of 10: one end at the bound, the other inside (z^2 / (n + z^2) = 0.277533).
  EXPECT_DOUBLE_EQ(an::wilsonInterval(0, 10).lo, 0.0);
  EXPECT_NEAR(an::wilsonInterval(0, 10).hi, 0.277533, 2e-6);
  EXPECT_NEAR(an::wilsonInterval(10, 10).lo, 1.0 - 0.277533, 2e-6);
  EXPECT_DOUBLE_EQ(an::wilsonInterval(10, 10).hi, 1.0);
  EXPECT_TRUE(std::isnan(an::wilsonInterval(0, 0).estimate));
}
