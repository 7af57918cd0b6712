// Holm-Bonferroni (core/analysis/multiple_testing.h; docs/statistics.md, "Multiple testing"):
// hand-worked families (steps written out below), NaN members left out of the family, the
// cap at 1, ties, and the monotonicity and bounds on random families against Bonferroni.
// The independent check in Python (the Holm steps written out there) runs on a real
// replicate summary in tests/python/check_replicates.py (ReplicateRun.NumPyOracleAgreesOnTheSummary).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/analysis/multiple_testing.h"

namespace an = kdscope::core::analysis;

TEST(MultipleTesting, HolmHandWorked) {
  // p = 0.01, 0.04, 0.03, 0.005 (m = 4). Ascending: 0.005, 0.01, 0.03, 0.04; times 4, 3, 2, 1:
  // 0.02, 0.03, 0.06, 0.04; running maximum: 0.02, 0.03, 0.06, 0.06.
  const auto adj = an::holmAdjust(std::vector<double>{0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adj.size(), 4U);
  EXPECT_NEAR(adj[0], 0.03, 1e-15);
  EXPECT_NEAR(adj[1], 0.06, 1e-15);
  EXPECT_NEAR(adj[2], 0.06, 1e-15);
  EXPECT_NEAR(adj[3], 0.02, 1e-15);
  // A NaN is not in the family: m = 2. 0.2 * 2 = 0.4; 0.5 * 1 = 0.5.
  const auto withNaN = an::holmAdjust(std::vector<double>{0.2, std::nan(""), 0.5});
  EXPECT_NEAR(withNaN[0], 0.4, 1e-15);
  EXPECT_TRUE(std::isnan(withNaN[1]));
  EXPECT_NEAR(withNaN[2], 0.5, 1e-15);
  // Capped at 1: 0.6 * 2 = 1.2 -> 1; 0.9 -> max(1.2, 0.9) -> 1.
  const auto capped = an::holmAdjust(std::vector<double>{0.9, 0.6});
  EXPECT_EQ(capped[0], 1.0);
  EXPECT_EQ(capped[1], 1.0);
  // Ties: 0.01, 0.01, 0.04 -> 0.03, max(0.03, 0.02) = 0.03, max(0.03, 0.04) = 0.04.
  const auto ties = an::holmAdjust(std::vector<double>{0.01, 0.04, 0.01});
  EXPECT_NEAR(ties[0], 0.03, 1e-15);
  EXPECT_NEAR(ties[1], 0.04, 1e-15);
  EXPECT_NEAR(ties[2], 0.03, 1e-15);
  // One test: unchanged. None: empty.
  EXPECT_EQ(an::holmAdjust(std::vector<double>{0.037})[0], 0.037);
  EXPECT_TRUE(an::holmAdjust(std::vector<double>{}).empty());
}

TEST(MultipleTesting, FamilySetsEachAdjustedPAndItsSize) {
  an::AdjustedP a;
  an::AdjustedP b;
  an::AdjustedP c;
  an::HolmFamily family;
  family.add(0.01, &a);
  family.add(std::nan(""), &b);
  family.add(0.5, nullptr); // in the family, its adjustment not kept
  family.add(0.02, &c);
  family.adjust();
  // m = 3 finite: 0.01 * 3 = 0.03; 0.02 * 2 = 0.04; 0.5 * 1 -> 0.5.
  EXPECT_NEAR(a.p, 0.03, 1e-15);
  EXPECT_NEAR(c.p, 0.04, 1e-15);
  EXPECT_TRUE(std::isnan(b.p));
  EXPECT_EQ(a.family, 3U);
  EXPECT_EQ(an::pValuesText(0.01, a, "paired t p"), "paired t p = 0.010, Holm p = 0.030 of 3 tests");
  EXPECT_EQ(an::verdictP(0.01, a), a.p);
  const an::AdjustedP none;
  EXPECT_EQ(an::pValuesText(0.2, none), "p = 0.200");
  EXPECT_EQ(an::verdictP(0.2, none), 0.2);
}

TEST(MultipleTesting, HolmLiesBetweenRawAndBonferroniAndKeepsTheOrder) {
  std::mt19937_64 rng(14);
  std::uniform_real_distribution<double> u(0.0, 0.2);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> p(1 + trial % 12);
    for (double& x : p) {
      x = u(rng);
    }
    const auto adj = an::holmAdjust(p);
    const double m = static_cast<double>(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      EXPECT_GE(adj[i], p[i]);
      EXPECT_LE(adj[i], std::min(1.0, m * p[i]) + 1e-15);
      for (std::size_t j = 0; j < p.size(); ++j) {
        if (p[i] < p[j]) {
          EXPECT_LE(adj[i], adj[j]);
        }
      }
    }
    // The smallest p is multiplied by m exactly (Bonferroni's step).
    const auto k = static_cast<std::size_t>(std::min_element(p.begin(), p.end()) - p.begin());
    EXPECT_NEAR(adj[k], std::min(1.0, m * p[k]), 1e-15);
  }
}
