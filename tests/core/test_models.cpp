// Model invariants: attention rows, head gates, hidden-state shapes, seeding.
#include <gtest/gtest.h>

#include "core/models/mlp.h"
#include "core/models/transformer.h"

using namespace kdscope::core;

namespace {

Batch paddedBatch() {
  // Two sequences of length 6: the first has 4 real tokens, the second 6.
  Batch b;
  b.tokens = torch::tensor({2, 5, 7, 9, 0, 0, 2, 4, 4, 8, 3, 6}, torch::kInt64).view({2, 6});
  b.mask = b.tokens.ne(0);
  b.labels = torch::tensor({0, 1}, torch::kInt64);
  return b;
}

TransformerClassifier tinyTransformer(std::uint64_t seed = 7) {
  torch::manual_seed(seed);
  TransformerOptions options(/*vocab=*/12, /*maxLen=*/8, /*classes=*/3);
  options.layers(2).heads(2).width(8).ffn(16).dropout(0.0);
  TransformerClassifier model(options);
  model->eval();
  return model;
}

} // namespace

TEST(Transformer, ShapesOfLogitsHiddenAndAttention) {
  auto model = tinyTransformer();
  auto out = model->forward(paddedBatch());
  EXPECT_EQ(out.logits.sizes(), (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(out.hidden.size(), 3U); // embedding output + 2 layers
  for (const auto& h : out.hidden) {
    EXPECT_EQ(h.sizes(), (std::vector<std::int64_t>{2, 6, 8}));
  }
  ASSERT_EQ(out.attention.size(), 2U);
  EXPECT_EQ(out.attention[0].sizes(), (std::vector<std::int64_t>{2, 2, 6, 6}));
}

TEST(Transformer, AttentionRowsSumToOneOverNonPaddingKeys) {
  auto model = tinyTransformer();
  auto batch = paddedBatch();
  auto out = model->forward(batch);
  for (const auto& a : out.attention) {
    auto sums = a.sum(-1);
    EXPECT_TRUE(torch::allclose(sums, torch::ones_like(sums), 1e-5, 1e-6));
    // The first example's padding keys (positions 4, 5) get exactly zero probability.
    EXPECT_EQ(a[0].slice(-1, 4, 6).abs().max().item<float>(), 0.0F);
    EXPECT_GT(a[0].slice(-1, 0, 4).min().item<float>(), 0.0F);
  }
}

TEST(Transformer, PaddingDoesNotChangeTheRealTokensResult) {
  // The same sequence with more padding gives the same logits (masking works end to end).
  auto model = tinyTransformer();
  Batch a;
  a.tokens = torch::tensor({2, 5, 7, 0}, torch::kInt64).view({1, 4});
  a.mask = a.tokens.ne(0);
  Batch b;
  b.tokens = torch::tensor({2, 5, 7, 0, 0, 0, 0, 0}, torch::kInt64).view({1, 8});
  b.mask = b.tokens.ne(0);
  EXPECT_TRUE(torch::allclose(model->forward(a).logits, model->forward(b).logits, 1e-5, 1e-6));
}

TEST(Transformer, AllOnesGateEqualsNoGate) {
  auto model = tinyTransformer();
  auto batch = paddedBatch();
  auto plain = model->forward(batch).logits;
  auto gated = model->forward(batch, torch::ones({2, 2})).logits;
  EXPECT_TRUE(torch::allclose(plain, gated, 0.0, 0.0));
}

TEST(Transformer, ZeroGateRemovesExactlyThatHeadsContribution) {
  // Independent construction: zeroing head h's input columns of the output projection
  // (the slice of the concatenated heads it owns) must give the same result as gate 0.
  auto gatedModel = tinyTransformer(11);
  auto editedModel = tinyTransformer(11);
  const std::int64_t layer = 1;
  const std::int64_t head = 0;
  const std::int64_t headDim = 4;
  {
    torch::NoGradGuard noGrad;
    auto block = editedModel->named_parameters();
    auto& w = block["blocks." + std::to_string(layer) + ".attention.out.weight"];
    w.slice(1, head * headDim, (head + 1) * headDim).zero_();
  }
  auto gate = torch::ones({2, 2});
  gate[layer][head] = 0.0;
  auto batch = paddedBatch();
  auto viaGate = gatedModel->forward(batch, gate).logits;
  auto viaWeights = editedModel->forward(batch).logits;
  EXPECT_TRUE(torch::allclose(viaGate, viaWeights, 1e-6, 1e-6));
  // And the head mattered: the ungated output differs.
  EXPECT_FALSE(torch::allclose(gatedModel->forward(batch).logits, viaGate, 1e-6, 1e-6));
}

TEST(Transformer, SameSeedSameParameters) {
  auto a = tinyTransformer(3);
  auto b = tinyTransformer(3);
  auto c = tinyTransformer(4);
  auto pa = a->parameters();
  auto pb = b->parameters();
  auto pc = c->parameters();
  bool allEqual = true;
  bool anyDiffer = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    allEqual = allEqual && torch::equal(pa[i], pb[i]);
    anyDiffer = anyDiffer || !torch::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(allEqual);
  EXPECT_TRUE(anyDiffer);
}

TEST(Transformer, ParameterCountMatchesClosedForm) {
  auto model = tinyTransformer();
  const std::int64_t V = 12, L = 8, D = 8, F = 16, C = 3, layers = 2;
  const std::int64_t perLayer = (D * 3 * D + 3 * D) + (D * D + D) + 2 * (2 * D) + (D * F + F) + (F * D + D);
  const std::int64_t expected = V * D + L * D + layers * perLayer + 2 * D + (D * C + C);
  EXPECT_EQ(model->parameterCount(), expected);
}

TEST(Mlp, HiddenLayersAndWidth) {
  torch::manual_seed(1);
  MlpOptions options(/*inputDim=*/5, {7, 3}, /*classes=*/4);
  MlpClassifier model(options);
  Batch b;
  b.features = torch::randn({6, 5});
  b.labels = torch::zeros({6}, torch::kInt64);
  model->eval();
  auto out = model->forward(b);
  ASSERT_EQ(out.hidden.size(), 3U);
  EXPECT_EQ(out.hidden[0].size(1), 5);
  EXPECT_EQ(out.hidden[1].size(1), 7);
  EXPECT_EQ(out.hidden[2].size(1), 3);
  EXPECT_EQ(out.logits.sizes(), (std::vector<std::int64_t>{6, 4}));
  EXPECT_EQ(model->hiddenWidth(), 7);
  EXPECT_EQ(model->numHeads(), 0);
  EXPECT_GE(out.hidden[1].min().item<float>(), 0.0F); // post-ReLU
}
