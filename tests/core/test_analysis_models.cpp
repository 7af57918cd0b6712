// Analyses that need a model, checked against independent computations with LibTorch:
// head-gate importance against central finite differences of each example's loss, single-head
// ablation against zeroing the head's columns of the output projection, the gradient
// rescaling weight w against autograd of the real student objective, and the matched
// label-smoothing epsilon against its definition.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "core/analysis/knowledge.h"
#include "core/analysis/model_analysis_torch.h"
#include "core/distill/objectives.h"
#include "core/distill/trainer.h"
#include "core/models/mlp.h"
#include "core/models/transformer.h"

using namespace kdscope::core;
using namespace kdscope::core::analysis;

namespace {

constexpr std::int64_t kVocab = 12;
constexpr int kLen = 6;

/// A text task with random right-padded sequences ([CLS] = 2 first) in its eval split.
TaskData tinyTextTask(std::size_t n, unsigned seed) {
  TaskData task;
  task.name = "tiny";
  task.kind = TaskKind::Text;
  task.classNames = {"a", "b", "c"};
  for (std::int64_t i = 0; i < kVocab; ++i) {
    task.vocab.push_back("w" + std::to_string(i));
  }
  task.seqLen = kLen;
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const int length = 2 + static_cast<int>(rng() % (kLen - 1)); // 2 .. kLen
    task.eval.tokens.push_back(2);
    for (int p = 1; p < kLen; ++p) {
      task.eval.tokens.push_back(p < length ? 3 + static_cast<std::int64_t>(rng() % (kVocab - 3)) : 0);
    }
    task.eval.labels.push_back(static_cast<std::int64_t>(rng() % 3));
  }
  return task;
}

/// A tiny transformer in float64, so that finite differences are accurate.
TransformerClassifier tinyModel(std::uint64_t seed = 3) {
  torch::manual_seed(seed);
  TransformerOptions options(kVocab, kLen, /*classes=*/3);
  options.layers(2).heads(2).width(8).ffn(16).dropout(0.0);
  TransformerClassifier model(options);
  model->to(torch::kFloat64);
  model->eval();
  return model;
}

torch::Tensor perExampleLoss(TransformerClassifier& model, const Batch& batch, const torch::Tensor& gate) {
  const torch::NoGradGuard noGrad;
  const auto logits = model->forward(batch, gate).logits;
  return torch::nn::functional::cross_entropy(
      logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}

} // namespace

TEST(HeadImportance, GateGradientsMatchCentralFiniteDifferencesPerExample) {
  const TaskData task = tinyTextTask(9, 1);
  auto model = tinyModel();
  const Batch batch = makeBatch(task, task.eval, 0, 9);
  const torch::Tensor g = headGateGradients(*model, batch); // [B, L, H]
  ASSERT_EQ(g.sizes(), (std::vector<std::int64_t>{9, 2, 2}));
  const double h = 1e-6;
  double largest = 0.0;
  for (int l = 0; l < 2; ++l) {
    for (int head = 0; head < 2; ++head) {
      auto plus = torch::ones({2, 2}, torch::kFloat64);
      auto minus = torch::ones({2, 2}, torch::kFloat64);
      plus[l][head] = 1.0 + h;
      minus[l][head] = 1.0 - h;
      const auto fd = (perExampleLoss(model, batch, plus) - perExampleLoss(model, batch, minus)) / (2.0 * h);
      for (int i = 0; i < 9; ++i) {
        const double expected = fd[i].item<double>();
        largest = std::max(largest, std::abs(expected));
        EXPECT_NEAR(g[i][l][head].item<double>(), expected, 1e-7 * (1.0 + std::abs(expected)))
            << "example " << i << ", layer " << l << ", head " << head;
      }
    }
  }
  EXPECT_GT(largest, 1e-4); // the check is not vacuous
}

TEST(HeadImportance, ScoresAreMeanAbsoluteGradientsNormalisedPerLayer) {
  const TaskData task = tinyTextTask(70, 2);
  auto model = tinyModel();
  const HeadScores scores = computeHeadScores(*model, task, task.eval, CancelToken(), /*batchSize=*/16);
  ASSERT_EQ(scores.layers, 2U);
  ASSERT_EQ(scores.heads, 2U);
  // Independently: all examples in one batch, |g| averaged.
  const auto g = headGateGradients(*model, makeBatch(task, task.eval, 0, 70)).abs().mean(0);
  for (int l = 0; l < 2; ++l) {
    double norm = 0.0;
    for (int h = 0; h < 2; ++h) {
      const auto i = static_cast<std::size_t>(l * 2 + h);
      EXPECT_NEAR(scores.importance[i], g[l][h].item<double>(), 1e-12);
      norm += scores.normalisedImportance[i] * scores.normalisedImportance[i];
      EXPECT_NEAR(scores.normalisedImportance[i] * std::sqrt(g[l].pow(2).sum().item<double>()), scores.importance[i],
                  1e-12);
    }
    EXPECT_NEAR(norm, 1.0, 1e-12);
  }
}

// The probes' pooled states take the requested rows in order of length with each batch's
// padding cut, and write each row back at its place: rows asked for in a scrambled order, with
// a repeat, must get the padded forward's states of those rows, row by row (float64 model).
TEST(PooledStates, EachRequestedRowGetsThePaddedForwardsStates) {
  const TaskData task = tinyTextTask(300, 4);
  auto model = tinyModel();
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < 200; ++i) {
    rows.push_back((i * 37 + 11) % 300);
  }
  rows.push_back(rows.front()); // a row asked for twice
  std::vector<std::int64_t> identity(300);
  std::iota(identity.begin(), identity.end(), std::int64_t{0});
  ASSERT_NE(rowsByLength(task, task.eval), identity); // lengths differ: the order is not the rows'
  const int torchThreads = at::get_num_threads();
  for (const std::string pooling : {"mean", "cls"}) {
    // The batches run one per thread: two threads (both batches at once) and one must agree
    // bit for bit.
    at::set_num_threads(2);
    const PooledStates states = computePooledStates(*model, task, task.eval, rows, pooling);
    at::set_num_threads(1);
    const PooledStates single = computePooledStates(*model, task, task.eval, rows, pooling);
    at::set_num_threads(torchThreads);
    EXPECT_EQ(states.values, single.values) << pooling;
    EXPECT_EQ(states.logits, single.logits) << pooling;
    ASSERT_EQ(states.rows, rows.size());
    ASSERT_EQ(states.layers, 3U);
    ASSERT_EQ(states.width, 8U);
    ASSERT_EQ(states.logits.size(), rows.size() * 3);
    const torch::NoGradGuard noGrad;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const Batch one = makeBatch(task, task.eval, rows[r], rows[r] + 1); // padded to kLen
      const ForwardOutput out = model->forward(one);
      const auto expected = poolHiddenStates(out.hidden, one, pooling, 8).to(torch::kFloat32);
      for (std::size_t k = 0; k < 3 * 8; ++k) {
        EXPECT_NEAR(states.values[r * 24 + k], expected.view({-1})[static_cast<std::int64_t>(k)].item<float>(), 1e-5)
            << pooling << " row " << r << " (example " << rows[r] << "), value " << k;
      }
      // The same forward's logits, at the row's place (what the checkpoint check reads).
      for (std::int64_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(states.logits[r * 3 + static_cast<std::size_t>(c)], out.logits[0][c].item<float>(), 1e-5)
            << pooling << " row " << r << ", class " << c;
      }
    }
  }
}

// The head scores' forward passes give the checkpoint check's logits and, asked for, the
// probes' pooled eval states: they must be the ones computePooledStates gives for every row of
// the split, in the split's order (300 rows: three batches, the first run alone).
TEST(PooledStates, HeadScoresGiveTheSplitsLogitsAndPooledStates) {
  const TaskData task = tinyTextTask(300, 6);
  auto model = tinyModel(7);
  std::vector<std::int64_t> all(300);
  std::iota(all.begin(), all.end(), std::int64_t{0});
  for (const std::string pooling : {"mean", "cls"}) {
    const HeadScores scores = computeHeadScores(*model, task, task.eval, CancelToken(), 128, &pooling);
    const PooledStates expected = computePooledStates(*model, task, task.eval, all, pooling);
    ASSERT_EQ(scores.pooled.rows, 300U);
    ASSERT_EQ(scores.pooled.layers, expected.layers);
    ASSERT_EQ(scores.pooled.width, expected.width);
    ASSERT_EQ(scores.pooled.values.size(), expected.values.size());
    ASSERT_EQ(scores.logits.size(), expected.logits.size());
    for (std::size_t k = 0; k < expected.values.size(); ++k) {
      ASSERT_NEAR(scores.pooled.values[k], expected.values[k], 1e-6) << pooling << ", value " << k;
    }
    for (std::size_t k = 0; k < expected.logits.size(); ++k) {
      ASSERT_NEAR(scores.logits[k], expected.logits[k], 1e-6) << pooling << ", logit " << k;
    }
    // The intact accuracy is that of these logits.
    double right = 0.0;
    for (std::size_t i = 0; i < 300; ++i) {
      const float* z = scores.logits.data() + i * 3;
      right += (std::max_element(z, z + 3) - z) == task.eval.labels[i] ? 1.0 : 0.0;
    }
    EXPECT_NEAR(scores.accuracy, right / 300.0, 1e-12) << pooling;
  }
  // Without a pooling, no pooled states.
  EXPECT_EQ(computeHeadScores(*model, task, task.eval, CancelToken()).pooled.rows, 0U);
}

TEST(HeadAblation, EqualsZeroingTheHeadsColumnsOfTheOutputProjection) {
  const TaskData task = tinyTextTask(150, 3);
  auto model = tinyModel(5);
  const HeadScores scores = computeHeadScores(*model, task, task.eval, CancelToken());
  EXPECT_TRUE(scores.layeredAblation); // the fast path (blocks from the ablated layer on) ran
  const Batch all = makeBatch(task, task.eval, 0, 150);
  const std::int64_t headDim = 8 / 2;
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 2; ++h) {
      auto copy = tinyModel(5); // same seed: the same parameters
      {
        const torch::NoGradGuard noGrad;
        auto weight = copy->named_parameters()["blocks." + std::to_string(l) + ".attention.out.weight"];
        weight.slice(/*dim=*/1, h * headDim, (h + 1) * headDim).zero_();
      }
      const torch::NoGradGuard noGrad;
      const auto logits = copy->forward(all).logits;
      const double accuracy = logits.argmax(1).eq(all.labels).to(torch::kFloat64).mean().item<double>();
      const double loss = torch::nn::functional::cross_entropy(logits, all.labels).item<double>();
      const auto i = static_cast<std::size_t>(l * 2 + h);
      EXPECT_NEAR(scores.ablationAccuracy[i], accuracy, 1e-12) << l << "," << h;
      EXPECT_NEAR(scores.ablationLoss[i], loss, 1e-10) << l << "," << h;
    }
  }
  const torch::NoGradGuard noGrad;
  const auto logits = model->forward(all).logits;
  EXPECT_NEAR(scores.accuracy, logits.argmax(1).eq(all.labels).to(torch::kFloat64).mean().item<double>(), 1e-12);
  EXPECT_NEAR(scores.loss, torch::nn::functional::cross_entropy(logits, all.labels).item<double>(), 1e-10);
}

TEST(GradRescale, MatchesAutogradOfTheRealStudentObjective) {
  const std::int64_t n = 40;
  const std::int64_t c = 5;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0F, 2.0F);
  std::vector<float> zt(static_cast<std::size_t>(n * c));
  std::vector<float> zs(zt.size());
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (auto& v : zt) {
    v = normal(rng);
  }
  for (auto& v : zs) {
    v = normal(rng);
  }
  for (auto& y : labels) {
    y = static_cast<std::int64_t>(rng() % c);
  }
  struct Case {
    double lambda, temperature;
    bool tSquared;
    double eps, mse;
    const char* targets;
  };
  const std::vector<Case> cases = {{0.7, 2.0, true, 0.0, 0.0, "full"}, {0.9, 4.0, true, 0.0, 0.0, "pt"},
                                   {0.5, 1.0, true, 0.1, 0.0, "full"}, {0.3, 3.0, false, 0.0, 0.0, "full"},
                                   {0.6, 2.0, true, 0.0, 0.5, "full"}, {0.0, 1.0, true, 0.2, 0.0, "full"},
                                   {1.0, 0.5, true, 0.0, 0.0, "pt"}};
  // float -> double is exact, so both sides see the same logits.
  const auto zsT = torch::tensor(std::vector<double>(zs.begin(), zs.end()), torch::kFloat64).view({n, c});
  const auto ztT = torch::tensor(std::vector<double>(zt.begin(), zt.end()), torch::kFloat64).view({n, c});
  const auto labelsT = torch::tensor(labels, torch::kInt64);
  for (const Case& k : cases) {
    ObjectiveSpec spec;
    spec.lambda = k.lambda;
    spec.temperature = k.temperature;
    spec.tSquared = k.tSquared;
    spec.labelSmoothing = k.eps;
    spec.logitMse = k.mse;
    spec.teacherTargets = k.targets;
    auto z = zsT.clone().set_requires_grad(true);
    studentObjective(spec, z, ztT, labelsT).total.backward();
    // The objective is a batch mean: example i's own gradient is n times its share.
    const auto grad = z.grad() * static_cast<double>(n);
    const auto q = torch::softmax(zsT, 1);
    LogitObjective objective;
    objective.lambda = k.lambda;
    objective.temperature = k.temperature;
    objective.tSquared = k.tSquared;
    objective.labelSmoothing = k.eps;
    objective.logitMse = k.mse;
    objective.ptTargets = std::string(k.targets) == "pt";
    const auto w = objectiveGradRescaleWeights(zt, zs, labels, static_cast<std::size_t>(c), objective);
    for (std::int64_t i = 0; i < n; ++i) {
      const auto y = labels[static_cast<std::size_t>(i)];
      const double expected = grad[i][y].item<double>() / (q[i][y].item<double>() - 1.0);
      EXPECT_NEAR(w[static_cast<std::size_t>(i)], expected, 1e-9 * (1.0 + std::abs(expected)))
          << "lambda " << k.lambda << " T " << k.temperature << " example " << i;
    }
  }
  // The plain form equals ANALYSES.md's gradRescaleWeights.
  LogitObjective plain;
  plain.lambda = 0.8;
  plain.temperature = 3.0;
  const auto a = objectiveGradRescaleWeights(zt, zs, labels, static_cast<std::size_t>(c), plain);
  const auto b = gradRescaleWeights(zt, zs, labels, static_cast<std::size_t>(c), 0.8, 3.0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-14 * (1.0 + std::abs(b[i])));
  }
}

TEST(MatchedEpsilon, IsCTimesTheTeachersMeanNonTargetMassOverCMinusOne) {
  TaskData task;
  task.name = "vectors";
  task.kind = TaskKind::Vector;
  task.classNames = {"a", "b", "c", "d"};
  task.dim = 3;
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  for (int i = 0; i < 50; ++i) {
    for (int d = 0; d < 3; ++d) {
      task.train.features.push_back(normal(rng));
    }
    task.train.labels.push_back(i % 4);
  }
  torch::manual_seed(2);
  MlpOptions options(3, {8}, 4);
  options.dropout(0.0);
  MlpClassifier teacher(options);
  const double eps = matchedEpsilonOnTrainSplit(*teacher, task);
  const torch::NoGradGuard noGrad;
  const auto batch = makeBatch(task, task.train, 0, 50);
  const auto p = torch::softmax(teacher->forward(batch).logits.to(torch::kFloat64), 1);
  const double meanNonTarget = (1.0 - p.gather(1, batch.labels.unsqueeze(1))).mean().item<double>();
  EXPECT_NEAR(eps, 4.0 * meanNonTarget / 3.0, 1e-12);
  EXPECT_GT(eps, 0.0);
  // At T = 2 (the knowledge controls' default KD temperature): the same rule on softmax(z / 2).
  const auto p2 = torch::softmax(teacher->forward(batch).logits.to(torch::kFloat64) / 2.0, 1);
  const double meanNonTarget2 = (1.0 - p2.gather(1, batch.labels.unsqueeze(1))).mean().item<double>();
  EXPECT_NEAR(matchedEpsilonOnTrainSplit(*teacher, task, 2.0), 4.0 * meanNonTarget2 / 3.0, 1e-12);
}
