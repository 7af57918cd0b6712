// TorchScriptClassifier (core/models/torchscript_model.h) against PyTorch's own outputs of the
// tiny models of tests/python/make_torchscript_models.py.
//
// Tolerance: the reference is PyTorch's float32 forward in Python, the test LibTorch's in
// C++. Both run the same operations, but a matrix product or a reduction may be computed with
// other blockings (and so another summation order) depending on how the operation is
// dispatched; in float32 each such product of width <= 32 differs by a few ulps (~1e-7 on
// values of order 1), and a handful of layers compound it. 1e-5 absolute (plus 1e-4 relative
// for the small gradients) is far above that and far below any real difference: masking one
// head moves the logits by 1e-2, and a wrong layout moves them by order 1.
#include <gtest/gtest.h>

#include <iostream>

#include "core/common/error.h"
#include "core/models/torchscript_model.h"
#include "torchscript_test_support.h"

namespace kdscope::core {
namespace {

using test::modelFile;
using test::referenceTensor;
using test::torchScriptReference;

constexpr double kAbs = 1e-5;
constexpr double kRel = 1e-4;

::testing::AssertionResult close(const torch::Tensor& got, const torch::Tensor& expected, double atol = kAbs,
                                 double rtol = 0.0) {
  if (!got.defined()) {
    return ::testing::AssertionFailure() << "undefined tensor";
  }
  if (got.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << ", expected " << expected.sizes();
  }
  const auto diff = (got.to(torch::kDouble) - expected.to(torch::kDouble)).abs();
  const auto bound = atol + rtol * expected.to(torch::kDouble).abs();
  if ((diff <= bound).all().item<bool>()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "largest difference " << diff.max().item<double>() << " (bound " << atol
                                       << " + " << rtol << " |expected|)";
}

/// The reference BERT batch: two rows of 16 tokens, a sentence pair and a padded row.
Batch bertBatch() {
  const auto& ref = torchScriptReference().at("bert");
  Batch batch;
  batch.tokens = referenceTensor(ref.at("input_ids"), torch::kLong);
  batch.mask = referenceTensor(ref.at("attention_mask"), torch::kLong).to(torch::kBool);
  batch.tokenTypes = referenceTensor(ref.at("token_type_ids"), torch::kLong);
  batch.labels = torch::tensor({0, 2}, torch::kLong);
  return batch;
}

Batch mlpBatch() {
  Batch batch;
  batch.features = referenceTensor(torchScriptReference().at("mlp").at("features"));
  batch.labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  return batch;
}

class TorchScriptModel : public ::testing::Test {
protected:
  void SetUp() override {
    if (test::torchScriptModels().empty()) {
      GTEST_FAIL() << "no models";
    }
  }
};

TEST_F(TorchScriptModel, HuggingFaceLayoutGivesPyTorchsLogitsHiddenStatesAndAttentions) {
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  EXPECT_EQ(model->numLayers(), 2);
  EXPECT_EQ(model->numHeads(), 4);
  EXPECT_EQ(model->hiddenWidth(), 16);
  model->eval();
  torch::NoGradGuard noGrad;
  const auto out = model->forward(bertBatch());
  const auto& ref = torchScriptReference().at("bert");
  EXPECT_TRUE(close(out.logits, referenceTensor(ref.at("logits"))));
  ASSERT_EQ(out.hidden.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(close(out.hidden[i], referenceTensor(ref.at("hidden_states")[i]))) << "hidden state " << i;
  }
  ASSERT_EQ(out.attention.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(close(out.attention[i], referenceTensor(ref.at("attentions")[i]))) << "attentions of layer " << i;
    // Probabilities: every row sums to 1, and padding keys of the padded row get 0.
    EXPECT_TRUE(close(out.attention[i].sum(-1), torch::ones({2, 4, 16}), 1e-5));
    EXPECT_LT(out.attention[i].index({1, torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(10)})
                  .abs()
                  .max()
                  .item<double>(),
              1e-12);
  }
  // For the record (docs/models.md): how far LibTorch here is from PyTorch's own forward.
  double worst = (out.logits - referenceTensor(ref.at("logits"))).abs().max().item<double>();
  for (std::size_t i = 0; i < 3; ++i) {
    worst = std::max(worst, (out.hidden[i] - referenceTensor(ref.at("hidden_states")[i])).abs().max().item<double>());
  }
  for (std::size_t i = 0; i < 2; ++i) {
    worst = std::max(worst, (out.attention[i] - referenceTensor(ref.at("attentions")[i])).abs().max().item<double>());
  }
  std::cout << "largest |C++ - PyTorch| over logits, hidden states and attentions: " << worst << "\n";
  EXPECT_TRUE(out.scores.empty());
  EXPECT_NE(model->unavailable(ModelFeature::AttentionScores), "");
  EXPECT_EQ(model->unavailable(ModelFeature::HiddenStates), "");
  EXPECT_EQ(model->unavailable(ModelFeature::Attention), "");
  EXPECT_EQ(model->unavailable(ModelFeature::HeadGate), "");
}

TEST_F(TorchScriptModel, HeadGateGoesInAsHeadMaskExactlyAsInPyTorch) {
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  model->eval();
  const auto& ref = torchScriptReference().at("bert");
  torch::NoGradGuard noGrad;
  auto gate = torch::ones({2, 4});
  gate[1][2] = 0.0F;
  const auto masked = model->forward(bertBatch(), gate);
  EXPECT_TRUE(close(masked.logits, referenceTensor(ref.at("masked_logits"))));
  // The test can tell: masking that head moves the logits far beyond the tolerance.
  EXPECT_GT((referenceTensor(ref.at("masked_logits")) - referenceTensor(ref.at("logits"))).abs().max().item<double>(),
            100 * kAbs);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(close(masked.attention[i], referenceTensor(ref.at("masked_attentions")[i])));
  }
  // Hugging Face multiplies the probabilities by the mask: the masked head's map is all 0.
  EXPECT_EQ(masked.attention[1].select(1, 2).abs().max().item<double>(), 0.0);
  EXPECT_GT(masked.attention[1].select(1, 1).abs().max().item<double>(), 0.0);
  // Layer 0 comes before the masked head: unchanged.
  EXPECT_TRUE(close(masked.attention[0], referenceTensor(ref.at("attentions")[0])));
  // A gate of the wrong shape is refused with the expected one.
  const auto message = test::messageOf<InputError>([&] { (void)model->forward(bertBatch(), torch::ones({2, 12})); });
  EXPECT_NE(message.find("head gate [2, 12], expected [2, 4]"), std::string::npos) << message;
}

TEST_F(TorchScriptModel, HeadGateGradientEqualsPyTorchsHeadMaskGradient) {
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  model->eval();
  const auto batch = bertBatch();
  auto gate = torch::ones({2, 4}, torch::TensorOptions().requires_grad(true));
  const auto loss = torch::nn::functional::cross_entropy(model->forward(batch, gate).logits, batch.labels);
  const auto grad = torch::autograd::grad({loss}, {gate})[0];
  EXPECT_TRUE(close(grad, referenceTensor(torchScriptReference().at("bert").at("head_mask_grad")), 1e-6, kRel));
}

TEST_F(TorchScriptModel, WithoutHeadMaskTheGateIsRefusedWithTheReason) {
  TorchScriptClassifier model(modelFile("bert_nohm.pt"));
  model->eval();
  const auto reason = model->unavailable(ModelFeature::HeadGate);
  EXPECT_NE(reason.find("takes no head_mask"), std::string::npos) << reason;
  EXPECT_NE(reason.find("bert_nohm.json"), std::string::npos) << reason;
  torch::NoGradGuard noGrad;
  // Without a gate it runs: position ids made inside the trace follow the length (16, not the
  // traced 8), token types are 0.
  const auto out = model->forward(bertBatch());
  EXPECT_TRUE(close(out.logits, referenceTensor(torchScriptReference().at("bert").at("nohm_logits"))));
  const auto message = test::messageOf<InputError>([&] { (void)model->forward(bertBatch(), torch::ones({2, 4})); });
  EXPECT_NE(message.find("takes no head_mask"), std::string::npos) << message;
  EXPECT_NE(message.find("head importance and ablation are skipped"), std::string::npos) << message;
}

TEST_F(TorchScriptModel, MlpOverFeaturesGivesPyTorchsOutputsAndTrainEvalReachTheModule) {
  TorchScriptClassifier model(modelFile("mlp.pt"));
  EXPECT_EQ(model->numHeads(), 0);
  EXPECT_NE(model->unavailable(ModelFeature::HeadGate), "");
  const auto& ref = torchScriptReference().at("mlp");
  torch::NoGradGuard noGrad;
  model->eval();
  const auto out = model->forward(mlpBatch());
  EXPECT_TRUE(close(out.logits, referenceTensor(ref.at("logits"))));
  ASSERT_EQ(out.hidden.size(), 3U);
  const std::int64_t widths[] = {6, 12, 8};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out.hidden[i].size(1), widths[i]);
    EXPECT_TRUE(close(out.hidden[i], referenceTensor(ref.at("hidden_states")[i])));
  }
  EXPECT_TRUE(out.attention.empty());
  // Scripted dropout follows train(): two training-mode passes draw different masks.
  torch::manual_seed(7);
  model->train();
  const auto a = model->forward(mlpBatch()).logits;
  const auto b = model->forward(mlpBatch()).logits;
  EXPECT_FALSE(torch::equal(a, b));
  model->eval();
  EXPECT_TRUE(close(model->forward(mlpBatch()).logits, referenceTensor(ref.at("logits"))));
}

TEST_F(TorchScriptModel, RepeatedForwardsGiveTheSameBits) {
  // Same process, same kernels: the graph executor's optimisations are off, so later calls do
  // not switch to fused or specialised code.
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  model->eval();
  torch::NoGradGuard noGrad;
  const auto first = model->forward(bertBatch()).logits;
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(torch::equal(model->forward(bertBatch()).logits, first)) << "call " << i + 2;
  }
}

TEST_F(TorchScriptModel, ClassifierIsTheModulesOwnLinearLayer) {
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  auto& linear = model->classifier();
  const auto weight = model->module().attr("classifier").toModule().attr("weight").toTensor();
  const auto bias = model->module().attr("classifier").toModule().attr("bias").toTensor();
  EXPECT_EQ(linear->weight.data_ptr(), weight.data_ptr());
  EXPECT_EQ(linear->bias.data_ptr(), bias.data_ptr());
  EXPECT_EQ(linear->weight.sizes(), (std::vector<std::int64_t>{3, 16}));
  // A change through the module shows through the accessor, and the logits follow it.
  model->eval();
  torch::NoGradGuard noGrad;
  const auto before = model->forward(bertBatch()).logits;
  bias.add_(torch::tensor({1.0F, 0.0F, -1.0F}));
  EXPECT_TRUE(torch::equal(linear->bias, bias));
  const auto after = model->forward(bertBatch()).logits;
  EXPECT_TRUE(close(after - before, torch::tensor({1.0F, 0.0F, -1.0F}).expand({2, 3}), 1e-6));

  // No classifier in the manifest: the accessor says so.
  auto manifest = loadModelManifest(modelFile("tiny_bert.json"));
  manifest.classifierWeight.clear();
  manifest.classifierBias.clear();
  TorchScriptClassifier bare(modelFile("tiny_bert.pt"), manifest);
  const auto reason = bare->unavailable(ModelFeature::Classifier);
  EXPECT_NE(reason.find("names no classifier"), std::string::npos) << reason;
  EXPECT_EQ(test::messageOf<InputError>([&] { (void)bare->classifier(); }), reason);
}

TEST_F(TorchScriptModel, OneSgdStepThroughItsParametersMatchesPyTorch) {
  for (const std::string name : {"tiny_bert", "mlp"}) {
    SCOPED_TRACE(name);
    TorchScriptClassifier model(modelFile(name + ".pt"));
    const bool isBert = name == "tiny_bert";
    const auto& ref = torchScriptReference().at(isBert ? "bert" : "mlp").at("train");
    const auto batch = isBert ? bertBatch() : mlpBatch();
    // Every parameter of the module is registered, the same tensors, requiring gradients.
    const auto params = model->parameters();
    EXPECT_EQ(params.size(), model->module().parameters().size());
    EXPECT_GT(params.size(), 0U);
    for (const auto& p : params) {
      EXPECT_TRUE(p.requires_grad());
    }
    model->eval(); // no dropout, as in the reference
    torch::optim::SGD optimizer(params, torch::optim::SGDOptions(torchScriptReference().at("sgd_lr").get<double>()));
    optimizer.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(model->forward(batch).logits, batch.labels);
    loss.backward();
    optimizer.step();
    torch::NoGradGuard noGrad;
    const auto after = torch::nn::functional::cross_entropy(model->forward(batch).logits, batch.labels);
    EXPECT_NEAR(loss.item<double>(), ref.at("loss_before").get<double>(), kAbs);
    EXPECT_NEAR(after.item<double>(), ref.at("loss_after").get<double>(), kAbs);
    EXPECT_LT(after.item<double>(), loss.item<double>());
    EXPECT_TRUE(close(model->classifier()->weight, referenceTensor(ref.at("classifier_weight_after"))));
    if (!isBert) {
      const auto fc1 = model->module().attr("fc1").toModule().attr("weight").toTensor();
      EXPECT_TRUE(close(fc1, referenceTensor(ref.at("fc1_weight_after"))));
    }
  }
}

TEST_F(TorchScriptModel, SavedAfterTrainingItLoadsWithTheTrainedWeights) {
  TorchScriptClassifier model(modelFile("mlp.pt"));
  model->eval();
  {
    torch::NoGradGuard noGrad;
    for (auto& p : model->parameters()) {
      p.mul_(0.5);
    }
  }
  test::TempDir dir("ts_save");
  model->saveTorchScript(dir.file("trained.pt"));
  TorchScriptClassifier again(dir.file("trained.pt"), model->manifest());
  again->eval();
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(torch::equal(again->forward(mlpBatch()).logits, model->forward(mlpBatch()).logits));
  EXPECT_FALSE(close(again->forward(mlpBatch()).logits, referenceTensor(torchScriptReference().at("mlp").at("logits"))));
}

TEST_F(TorchScriptModel, LoadingDoesNotDrawFromTheGlobalGenerator) {
  torch::manual_seed(11);
  const auto expected = torch::randn({4});
  torch::manual_seed(11);
  TorchScriptClassifier model(modelFile("tiny_bert.pt"));
  EXPECT_TRUE(torch::equal(torch::randn({4}), expected));
}

TEST_F(TorchScriptModel, WrongOutputsAreInputErrorsUntilTurnedOff) {
  TorchScriptClassifier model(modelFile("bert_head_avg.pt"));
  model->eval();
  torch::NoGradGuard noGrad;
  const auto message = test::messageOf<InputError>([&] { (void)model->forward(bertBatch()); });
  EXPECT_NE(message.find("outputs[2][0]: attentions of layer 0: got [2, 16, 16], expected [2, 4, 16, 16] "
                         "(manifest heads = 4)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("bert_head_avg.json"), std::string::npos) << message;
  model->markUnavailable(ModelFeature::Attention, "head-averaged");
  const auto out = model->forward(bertBatch());
  EXPECT_TRUE(out.attention.empty());
  EXPECT_EQ(out.hidden.size(), 3U);
  EXPECT_TRUE(close(out.logits, referenceTensor(torchScriptReference().at("bert").at("logits"))));
  EXPECT_EQ(model->unavailable(ModelFeature::Attention), "head-averaged");
}

TEST_F(TorchScriptModel, FilesThatAreNotTorchScriptAreNamed) {
  for (const std::string name : {"not_a_model.pt", "state_dict.pt"}) {
    const auto message = test::messageOf<InputError>([&] { (void)loadTorchScriptModule(modelFile(name)); });
    EXPECT_NE(message.find("model file '" + modelFile(name) + "': not a TorchScript module"), std::string::npos)
        << message;
  }
  const auto missing = test::messageOf<InputError>([&] { (void)loadTorchScriptModule(modelFile("nothing.pt")); });
  EXPECT_NE(missing.find("nothing.pt': no such file"), std::string::npos) << missing;
  // The manifest names a parameter the module does not have.
  auto manifest = loadModelManifest(modelFile("tiny_bert.json"));
  manifest.classifierWeight = "head.weight";
  const auto message = test::messageOf<InputError>([&] { TorchScriptClassifier(modelFile("tiny_bert.pt"), manifest); });
  EXPECT_NE(message.find("field 'classifier.weight': the module"), std::string::npos) << message;
  EXPECT_NE(message.find("has no parameter 'head.weight'"), std::string::npos) << message;
  // More inputs than forward takes.
  manifest = loadModelManifest(modelFile("bert_nohm.json"));
  manifest.inputs.push_back({ModelInput::TokenTypeIds, InputDType::Int64});
  const auto inputs = test::messageOf<InputError>([&] { TorchScriptClassifier(modelFile("bert_nohm.pt"), manifest); });
  EXPECT_NE(inputs.find("field 'inputs': lists 3 inputs"), std::string::npos) << inputs;
  EXPECT_NE(inputs.find("takes 2 (input_ids, attention_mask)"), std::string::npos) << inputs;
}

} // namespace
} // namespace kdscope::core
