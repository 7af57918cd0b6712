// Objectives against closed forms and hand-worked cases (ANALYSES.md "Training objectives").
#include <gtest/gtest.h>

#include <cmath>

#include "core/distill/objectives.h"

using namespace kdscope::core;

namespace {
torch::Tensor row(std::initializer_list<double> values) {
  return torch::tensor(std::vector<double>(values), torch::kFloat64).unsqueeze(0);
}
torch::Tensor label(std::int64_t y) { return torch::tensor({y}, torch::kInt64); }
} // namespace

TEST(Objectives, HardLabelCrossEntropyHandWorked) {
  // softmax([0, ln 3]) = [1/4, 3/4]
  auto logits = row({0.0, std::log(3.0)});
  EXPECT_NEAR(hardLabelLoss(logits, label(1), 0.0).item<double>(), -std::log(0.75), 1e-12);
  EXPECT_NEAR(hardLabelLoss(logits, label(0), 0.0).item<double>(), std::log(4.0), 1e-12);
}

TEST(Objectives, LabelSmoothingTarget) {
  // eps = 0.2, C = 2: target for y = 1 is [0.1, 0.9].
  auto logits = row({0.0, std::log(3.0)});
  const double expected = -(0.1 * std::log(0.25) + 0.9 * std::log(0.75));
  EXPECT_NEAR(hardLabelLoss(logits, label(1), 0.2).item<double>(), expected, 1e-12);
}

TEST(Objectives, KdClosedFormWithTemperatureSquared) {
  // T = 2: z_t / T = [0, ln 3] -> p = [1/4, 3/4]; z_s = 0 -> q = [1/2, 1/2].
  const double T = 2.0;
  auto zt = row({0.0, 2.0 * std::log(3.0)});
  auto zs = row({0.0, 0.0});
  auto p = torch::softmax(zt / T, 1);
  const double kl = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR(kdLoss(zs, p, T, true).item<double>(), T * T * kl, 1e-12);
  EXPECT_NEAR(kdLoss(zs, p, T, false).item<double>(), kl, 1e-12);
}

TEST(Objectives, KdIsZeroWhenStudentMatchesTeacherAndIgnoresZeroProbabilities) {
  auto z = row({1.0, -2.0, 0.5});
  EXPECT_NEAR(kdLoss(z, torch::softmax(z / 3.0, 1), 3.0, true).item<double>(), 0.0, 1e-12);
  // A teacher with an exact zero: KL = sum over p > 0 only (0 log 0 = 0), no NaN.
  auto p = row({0.5, 0.5, 0.0});
  auto zs = row({0.0, 0.0, 0.0});
  const double kl = 0.5 * std::log(0.5 / (1.0 / 3.0)) * 2.0;
  EXPECT_NEAR(kdLoss(zs, p, 1.0, true).item<double>(), kl, 1e-12);
}

TEST(Objectives, KdGradientIsTTimesProbabilityDifference) {
  // d/dz_s [T^2 KL(p^T || q^T)] = T (q^T - p^T): the T, not T^2, that ANALYSES.md's
  // instance-level weight uses.
  const double T = 3.0;
  auto zs = row({0.3, -1.2, 2.0, 0.1}).set_requires_grad(true);
  auto zt = row({1.0, 0.0, -1.0, 0.5});
  auto p = torch::softmax(zt / T, 1);
  kdLoss(zs, p, T, true).backward();
  auto expected = T * (torch::softmax(zs.detach() / T, 1) - p);
  EXPECT_TRUE(torch::allclose(zs.grad(), expected, 1e-10, 1e-12));
}

TEST(Objectives, BatchMeanReduction) {
  auto logits = torch::cat({row({0.0, std::log(3.0)}), row({0.0, std::log(3.0)})});
  auto labels = torch::tensor({1, 0}, torch::kInt64);
  const double expected = 0.5 * (-std::log(0.75) + std::log(4.0));
  EXPECT_NEAR(hardLabelLoss(logits, labels, 0.0).item<double>(), expected, 1e-12);
}

TEST(Objectives, LogitMse) {
  auto zs = row({1.0, 2.0, 3.0});
  auto zt = row({0.0, 2.0, 5.0});
  EXPECT_NEAR(logitMseLoss(zs, zt).item<double>(), (1.0 + 0.0 + 4.0) / 3.0, 1e-12);
}

TEST(Objectives, PtTargetsKeepTrueClassAndSpreadTheRest) {
  auto p = row({0.1, 0.6, 0.2, 0.1});
  auto t = ptTargets(p, label(1));
  const double rest = 0.4 / 3.0;
  auto expected = row({rest, 0.6, rest, rest});
  EXPECT_TRUE(torch::allclose(t, expected, 1e-12, 1e-12));
  EXPECT_NEAR(t.sum().item<double>(), 1.0, 1e-12);
}

TEST(Objectives, StudentObjectiveCombinesWeightedTerms) {
  ObjectiveSpec spec;
  spec.lambda = 0.7;
  spec.temperature = 2.0;
  spec.labelSmoothing = 0.1;
  spec.logitMse = 0.25;
  auto zs = row({0.2, -0.4, 1.1});
  auto zt = row({1.5, 0.0, -0.5});
  auto y = label(2);
  auto terms = studentObjective(spec, zs, zt, y);
  ASSERT_EQ(terms.terms.size(), 3U);
  EXPECT_EQ(terms.terms[0].first, "ce");
  EXPECT_EQ(terms.terms[1].first, "kd");
  EXPECT_EQ(terms.terms[2].first, "logit_mse");
  // Independent float64 evaluation of each term.
  std::vector<double> s = {0.2, -0.4, 1.1};
  std::vector<double> t = {1.5, 0.0, -0.5};
  auto softmax = [](const std::vector<double>& z, double temp) {
    double m = -1e300;
    for (double v : z) m = std::max(m, v / temp);
    std::vector<double> out;
    double sum = 0;
    for (double v : z) { out.push_back(std::exp(v / temp - m)); sum += out.back(); }
    for (double& v : out) v /= sum;
    return out;
  };
  auto q1 = softmax(s, 1.0);
  double ce = 0.0;
  for (int c = 0; c < 3; ++c) ce -= ((c == 2 ? 0.9 : 0.0) + 0.1 / 3.0) * std::log(q1[c]);
  auto pT = softmax(t, 2.0);
  auto qT = softmax(s, 2.0);
  double kl = 0.0;
  for (int c = 0; c < 3; ++c) kl += pT[c] * std::log(pT[c] / qT[c]);
  double mse = 0.0;
  for (int c = 0; c < 3; ++c) mse += (s[c] - t[c]) * (s[c] - t[c]) / 3.0;
  EXPECT_NEAR(terms.terms[0].second.item<double>(), ce, 1e-12);
  EXPECT_NEAR(terms.terms[1].second.item<double>(), 4.0 * kl, 1e-12);
  EXPECT_NEAR(terms.terms[2].second.item<double>(), mse, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(), 0.3 * ce + 0.7 * 4.0 * kl + 0.25 * mse, 1e-12);
}

TEST(Objectives, PlainCeStudentNeedsNoTeacher) {
  ObjectiveSpec spec; // lambda 0, no MSE
  EXPECT_FALSE(needsTeacher(spec));
  auto terms = studentObjective(spec, row({0.0, std::log(3.0)}), torch::Tensor(), label(1));
  ASSERT_EQ(terms.terms.size(), 1U);
  EXPECT_NEAR(terms.total.item<double>(), -std::log(0.75), 1e-12);
}

TEST(Objectives, PtTeacherTargetsAtTemperature) {
  ObjectiveSpec spec;
  spec.lambda = 1.0;
  spec.temperature = 2.0;
  spec.teacherTargets = "pt";
  auto zt = row({0.0, 2.0 * std::log(3.0), 0.0});
  auto targets = teacherTargets(zt, label(1), spec);
  // p^T = [1/5, 3/5, 1/5] already spreads evenly: pt leaves it unchanged.
  EXPECT_TRUE(torch::allclose(targets, row({0.2, 0.6, 0.2}), 1e-12, 1e-12));
}

TEST(Objectives, ObjectiveJsonRecordsConventions) {
  ObjectiveSpec spec;
  spec.lambda = 0.5;
  spec.temperature = 4.0;
  const auto json = objectiveJson(spec);
  EXPECT_NE(json.find("\"t_squared\":true"), std::string::npos) << json;
  EXPECT_NE(json.find("batchmean"), std::string::npos) << json;
  EXPECT_NE(json.find("\"temperature\":4.0"), std::string::npos) << json;
}
