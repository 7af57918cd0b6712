// Single-head ablation, batched (issue #15): the batched ablation (each layer's attention once,
// all its heads stacked, the last block at [CLS] only) against ablating one head at a time
// through forward() with a gate, written out here; the per-example outcomes computeHeadScores
// keeps; and the paired bootstrap intervals of each head's accuracy drop, on a hand-worked
// set and against NumPy from the same resamples.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "core/analysis/head_ablation_intervals.h"
#include "core/analysis/head_ablation_torch.h"
#include "core/analysis/model_analysis_torch.h"
#include "core/distill/trainer.h"
#include "core/models/transformer.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
using namespace kdscope::core::analysis;

namespace {

constexpr std::int64_t kVocab = 15;
constexpr int kLen = 7;
constexpr int kClasses = 3;

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
    task.eval.labels.push_back(static_cast<std::int64_t>(rng() % kClasses));
  }
  return task;
}

/// A tiny float32 transformer with weights large enough that every head matters.
TransformerClassifier tinyModel(int layers, int heads, std::uint64_t seed) {
  torch::manual_seed(seed);
  TransformerOptions options(kVocab, kLen, kClasses);
  options.layers(layers).heads(heads).width(4 * heads).ffn(16).dropout(0.0);
  TransformerClassifier model(options);
  {
    const torch::NoGradGuard noGrad;
    for (auto& p : model->parameters()) {
      p.normal_(0.0, 0.5);
    }
  }
  model->eval();
  return model;
}

/// One head at a time, the plain way: [layers * heads, B, C].
torch::Tensor oneAtATime(TransformerClassifier& model, const Batch& batch, int layers, int heads) {
  const torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> out;
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < heads; ++h) {
      auto gate = torch::ones({layers, heads});
      gate[l][h] = 0.0;
      out.push_back(model->forward(batch, gate).logits);
    }
  }
  return torch::stack(out, 0);
}

} // namespace

TEST(HeadAblationBatched, MatchesOneHeadAtATimeForEveryLayerAndHead) {
  // 1 layer: the last block alone ([CLS]-only path); 3 layers: also the blocks in between.
  for (const auto& [layers, heads] : {std::pair{1, 2}, std::pair{3, 2}, std::pair{2, 4}}) {
    const TaskData task = tinyTextTask(37, 11);
    auto model = tinyModel(layers, heads, 7);
    const Batch batch = makeBatch(task, task.eval, 0, 37);
    const auto expected = oneAtATime(model, batch, layers, heads);
    const HeadAblator ablator(*model);
    ASSERT_TRUE(ablator.fast());
    const torch::NoGradGuard noGrad;
    const auto intact = model->forward(batch);
    const auto batched = ablator.ablatedLogits(batch, intact.hidden);
    ASSERT_EQ(batched.sizes(), expected.sizes());
    EXPECT_LE((batched - expected).abs().max().item<double>(), 1e-5) << layers << " layers, " << heads << " heads";
    // Not vacuous: every ablation changes the logits.
    for (int c = 0; c < layers * heads; ++c) {
      EXPECT_GT((expected[c] - intact.logits).abs().max().item<double>(), 1e-3) << "cell " << c;
    }
  }
}

// After the first batch, computeHeadScores runs one batch per thread, each on one thread of
// every pool, and places their rows in example order: its numbers must not depend on the thread
// count (one thread against two, bit for bit), and the batches' importance sums must be taken in
// batch order. Batches hold the examples in order of length (rowsByLength), 16 at a time.
TEST(HeadAblationBatched, HeadScoresAreTheSameOnOneThreadAndOnTwo) {
  const int layers = 2;
  const int heads = 2;
  const TaskData task = tinyTextTask(100, 13);
  auto model = tinyModel(layers, heads, 3);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const HeadScores one = computeHeadScores(*model, task, task.eval, CancelToken(), /*batchSize=*/16);
  at::set_num_threads(2);
  const HeadScores two = computeHeadScores(*model, task, task.eval, CancelToken(), /*batchSize=*/16);
  at::set_num_threads(threads);
  ASSERT_TRUE(two.layeredAblation);
  EXPECT_EQ(one.perExampleImportance, two.perExampleImportance);
  EXPECT_EQ(one.perExampleAblationLoss, two.perExampleAblationLoss);
  EXPECT_EQ(one.perExampleAblationCorrect, two.perExampleAblationCorrect);
  EXPECT_EQ(one.perExampleLoss, two.perExampleLoss);
  EXPECT_EQ(one.importance, two.importance);
  EXPECT_EQ(one.ablationLoss, two.ablationLoss);
  const std::size_t cells = layers * heads;
  ASSERT_EQ(two.perExampleImportance.size(), 100 * cells);
  // Importance: per batch of 16 examples in order of length, their rows summed in that order,
  // then the batches in order.
  const std::vector<std::int64_t> order = rowsByLength(task, task.eval);
  for (std::size_t c = 0; c < cells; ++c) {
    double total = 0.0;
    for (std::size_t begin = 0; begin < 100; begin += 16) {
      double batch = 0.0;
      for (std::size_t k = begin; k < std::min<std::size_t>(100, begin + 16); ++k) {
        batch += two.perExampleImportance[static_cast<std::size_t>(order[k]) * cells + c];
      }
      total += batch;
    }
    EXPECT_NEAR(two.importance[c], total / 100.0, 1e-15 * std::max(1.0, total)) << "cell " << c;
  }
}

TEST(HeadAblationBatched, HeadScoresKeepEachExamplesOutcomeUnderEachAblation) {
  const int layers = 3;
  const int heads = 2;
  const TaskData task = tinyTextTask(90, 5);
  auto model = tinyModel(layers, heads, 9);
  // The examples differ in length, so the analysis takes them in another order (rowsByLength)
  // and cuts each batch's padding; every result below must still sit at its example's place,
  // and equal the padded model's.
  std::vector<std::int64_t> identity(90);
  std::iota(identity.begin(), identity.end(), std::int64_t{0});
  ASSERT_NE(rowsByLength(task, task.eval), identity);
  const HeadScores scores = computeHeadScores(*model, task, task.eval, CancelToken(), /*batchSize=*/32);
  EXPECT_TRUE(scores.layeredAblation); // the batched path ran (and passed its check)
  const std::size_t cells = layers * heads;
  ASSERT_EQ(scores.perExampleAblationCorrect.size(), 90 * cells);
  ASSERT_EQ(scores.perExampleAblationLoss.size(), 90 * cells);
  ASSERT_EQ(scores.perExampleCorrect.size(), 90U);
  const Batch all = makeBatch(task, task.eval, 0, 90);
  const auto expected = oneAtATime(model, all, layers, heads); // [cells, N, C]
  const torch::NoGradGuard noGrad;
  const auto intact = model->forward(all).logits;
  double intactCorrect = 0.0;
  for (std::int64_t i = 0; i < 90; ++i) {
    const auto y = all.labels[i].item<std::int64_t>();
    const auto li = intact[i];
    EXPECT_NEAR(scores.perExampleLoss[static_cast<std::size_t>(i)],
                (torch::logsumexp(li, 0) - li[y]).item<double>(), 1e-5);
    intactCorrect += li.argmax().item<std::int64_t>() == y ? 1.0 : 0.0;
    for (std::size_t c = 0; c < cells; ++c) {
      const auto z = expected[static_cast<std::int64_t>(c)][i];
      const double loss = (torch::logsumexp(z, 0) - z[y]).item<double>();
      EXPECT_NEAR(scores.perExampleAblationLoss[static_cast<std::size_t>(i) * cells + c], loss, 1e-5);
      // Correctness must agree unless the two best logits are within rounding of each other.
      const auto top = std::get<0>(z.topk(2));
      if ((top[0] - top[1]).item<double>() > 1e-4) {
        EXPECT_EQ(scores.perExampleAblationCorrect[static_cast<std::size_t>(i) * cells + c],
                  z.argmax().item<std::int64_t>() == y ? 1 : 0)
            << "example " << i << ", cell " << c;
      }
    }
  }
  EXPECT_NEAR(scores.accuracy, intactCorrect / 90.0, 1e-12);
  for (std::size_t c = 0; c < cells; ++c) {
    const auto z = expected[static_cast<std::int64_t>(c)];
    EXPECT_NEAR(scores.ablationLoss[c], torch::nn::functional::cross_entropy(z, all.labels).item<double>(), 1e-5);
  }
}

TEST(HeadAblationIntervals, HandWorkedOutcomes) {
  // 10 examples, 3 heads. Intact: examples 0-7 right. Head 0's ablation loses examples 0-2;
  // head 1's changes nothing; head 2's loses all 8 and gains example 8.
  std::vector<std::uint8_t> intact{1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  std::vector<double> intactLoss(10, 0.5);
  std::vector<std::uint8_t> ablated(30);
  std::vector<double> ablatedLoss(30);
  for (std::size_t i = 0; i < 10; ++i) {
    ablated[i * 3 + 0] = i < 3 ? 0 : intact[i];
    ablated[i * 3 + 1] = intact[i];
    ablated[i * 3 + 2] = i == 8 ? 1 : 0;
    ablatedLoss[i * 3 + 0] = i < 3 ? 2.5 : 0.5; // +2 nats on the three lost examples
    ablatedLoss[i * 3 + 1] = 0.5;
    ablatedLoss[i * 3 + 2] = 1.5; // +1 nat everywhere
  }
  const auto out = headAblationIntervals(intact, intactLoss, ablated, ablatedLoss, 3, BootstrapOptions{2000, 0.95, 3});
  EXPECT_DOUBLE_EQ(out.accuracyDrop[0], 0.3);
  EXPECT_DOUBLE_EQ(out.accuracyDrop[1], 0.0);
  EXPECT_DOUBLE_EQ(out.accuracyDrop[2], 0.7); // 8 lost - 1 gained, of 10
  EXPECT_DOUBLE_EQ(out.lossIncrease[0], 0.6);
  EXPECT_DOUBLE_EQ(out.lossIncrease[1], 0.0);
  EXPECT_DOUBLE_EQ(out.lossIncrease[2], 1.0);
  // No difference on any example: every resample's mean difference is 0.
  EXPECT_EQ(out.accuracyDropLo[1], 0.0);
  EXPECT_EQ(out.accuracyDropHi[1], 0.0);
  // The same difference (+1 nat) on every example: every resample's mean is 1.
  EXPECT_DOUBLE_EQ(out.lossIncreaseLo[2], 1.0);
  EXPECT_DOUBLE_EQ(out.lossIncreaseHi[2], 1.0);
  // Head 0: a resample's drop is (lost examples drawn) / 10, so the ends are multiples of 0.1
  // (or between two of them), within [0, 1], around 0.3.
  EXPECT_GE(out.accuracyDropLo[0], 0.0);
  EXPECT_LT(out.accuracyDropLo[0], 0.3);
  EXPECT_GT(out.accuracyDropHi[0], 0.3);
  EXPECT_LE(out.accuracyDropHi[0], 1.0);
  // Head 0 loses 2 nats exactly where it loses an example: every resample's loss increase is
  // twice its drop, and so are the ends.
  EXPECT_NEAR(out.lossIncreaseLo[0], 2.0 * out.accuracyDropLo[0], 1e-12);
  EXPECT_NEAR(out.lossIncreaseHi[0], 2.0 * out.accuracyDropHi[0], 1e-12);
  EXPECT_EQ(out.resamples, 2000);
  EXPECT_EQ(out.examples, 10U);
  EXPECT_THROW((void)headAblationIntervals(intact, intactLoss, ablated, ablatedLoss, 4), std::invalid_argument);
}

TEST(HeadAblationIntervals, MatchNumPyFromTheSameResamples) {
  const std::size_t n = 257;
  const std::size_t cells = 4;
  const int resamples = 600;
  const std::uint64_t seed = 21;
  std::mt19937 rng(4);
  std::vector<std::uint8_t> intact(n);
  std::vector<double> intactLoss(n);
  std::vector<std::uint8_t> ablated(n * cells);
  std::vector<double> ablatedLoss(n * cells);
  for (std::size_t i = 0; i < n; ++i) {
    intact[i] = rng() % 4 != 0 ? 1 : 0;
    intactLoss[i] = std::uniform_real_distribution<double>(0.0, 2.0)(rng);
    for (std::size_t c = 0; c < cells; ++c) {
      ablated[i * cells + c] = rng() % (c + 2) != 0 ? intact[i] : 1 - intact[i];
      ablatedLoss[i * cells + c] = intactLoss[i] + std::normal_distribution<double>(0.1 * c, 0.5)(rng);
    }
  }
  const BootstrapOptions options{resamples, 0.95, seed};
  const auto out = headAblationIntervals(intact, intactLoss, ablated, ablatedLoss, cells, options);
  kdscope::test::TempDir dir("head_ablation");
  {
    const auto indices = bootstrapResampleIndices(n, resamples, seed);
    std::ofstream f(dir.path("indices.txt"));
    for (const auto i : indices) {
      f << i << "\n";
    }
    std::ofstream d(dir.path("data.txt"));
    d.precision(17);
    for (std::size_t i = 0; i < n; ++i) {
      d << static_cast<int>(intact[i]) << " " << intactLoss[i];
      for (std::size_t c = 0; c < cells; ++c) {
        d << " " << static_cast<int>(ablated[i * cells + c]) << " " << ablatedLoss[i * cells + c];
      }
      d << "\n";
    }
    std::ofstream py(dir.path("oracle.py"));
    py << "import sys, numpy as np\n"
          "d = np.loadtxt(sys.argv[1]); idx = np.loadtxt(sys.argv[2], dtype=np.int64).reshape("
       << resamples << ", " << n << ")\n"
       << "cells = " << cells << "\n"
          "for c in range(cells):\n"
          "    drop = d[:, 0] - d[:, 2 + 2 * c]; rise = d[:, 3 + 2 * c] - d[:, 1]\n"
          "    for v in (drop, rise):\n"
          "        reps = v[idx].mean(axis=1)\n"
          "        lo, hi = np.percentile(reps, [2.5, 97.5])\n"
          "        print(repr(float(v.mean())), repr(float(lo)), repr(float(hi)))\n";
  }
  const auto [status, output] = kdscope::test::runCommand(std::string(KDSCOPE_PYTHON) + " " + dir.path("oracle.py") +
                                                          " " + dir.path("data.txt") + " " + dir.path("indices.txt"));
  ASSERT_EQ(status, 0) << output;
  std::istringstream lines(output);
  for (std::size_t c = 0; c < cells; ++c) {
    double mean = 0.0;
    double lo = 0.0;
    double hi = 0.0;
    ASSERT_TRUE(lines >> mean >> lo >> hi) << output;
    EXPECT_NEAR(out.accuracyDrop[c], mean, 1e-12) << c;
    EXPECT_NEAR(out.accuracyDropLo[c], lo, 1e-12) << c;
    EXPECT_NEAR(out.accuracyDropHi[c], hi, 1e-12) << c;
    ASSERT_TRUE(lines >> mean >> lo >> hi) << output;
    EXPECT_NEAR(out.lossIncrease[c], mean, 1e-12) << c;
    EXPECT_NEAR(out.lossIncreaseLo[c], lo, 1e-12) << c;
    EXPECT_NEAR(out.lossIncreaseHi[c], hi, 1e-12) << c;
  }
}
