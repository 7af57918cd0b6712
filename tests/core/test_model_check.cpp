// The pre-flight check (core/models/model_check.h) and `kdscope check-model` on the tiny
// models of tests/python/make_torchscript_models.py, good and broken: what each provides,
// what it lacks with the shape got against the shape expected, what is skipped, and never a
// crash.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "core/models/model_check.h"
#include "crash_test_support.h"
#include "torchscript_test_support.h"

namespace kdscope::core {
namespace {

using test::modelFile;

ModelCheckReport check(const std::string& model, const std::string& manifest = "", int length = 16, int batch = 2) {
  ModelCheckOptions options;
  options.modelPath = modelFile(model);
  options.manifestPath = manifest.empty() ? "" : modelFile(manifest);
  options.length = length;
  options.batch = batch;
  return checkModel(options);
}

/// The detail of the line `what` in `lines` ("" when absent; every detail joined when several).
std::string lineOf(const std::vector<ModelCheckLine>& lines, const std::string& what) {
  std::string out;
  for (const auto& l : lines) {
    if (l.what == what) {
      out += (out.empty() ? "" : "\n") + l.detail;
    }
  }
  return out;
}

std::vector<std::string> whats(const std::vector<ModelCheckLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    out.push_back(l.what);
  }
  return out;
}

std::string allErrors(const ModelCheckReport& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e + "\n";
  }
  return out;
}

/// A copy of a built manifest with `change` applied, written beside the models.
std::string editedManifest(const std::string& from, const std::string& to,
                           const std::function<void(nlohmann::json&)>& change) {
  std::ifstream in(modelFile(from));
  auto j = nlohmann::json::parse(in);
  change(j);
  test::writeFile(modelFile(to), j.dump());
  return to;
}

class ModelCheck : public ::testing::Test {
protected:
  void SetUp() override {
    if (test::torchScriptModels().empty()) {
      GTEST_FAIL() << "no models";
    }
  }
};

TEST_F(ModelCheck, AHuggingFaceLayoutModelProvidesEverythingButScores) {
  const auto r = check("tiny_bert.pt");
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(r.kind, "text");
  EXPECT_EQ(r.batchDescription, "2 rows of 16 tokens (the second padded to 8), synthetic: random tokens of the "
                                "vocabulary (seed 1)");
  EXPECT_EQ(whats(r.provides), (std::vector<std::string>{"logits", "hidden states", "attentions", "head gate", "classifier"}));
  EXPECT_EQ(lineOf(r.provides, "logits"), "outputs[0]: [2, 3]");
  EXPECT_EQ(lineOf(r.provides, "hidden states"), "outputs[1]: 3 x [2, 16, 16]");
  EXPECT_EQ(lineOf(r.provides, "attentions"), "outputs[2]: 2 x [2, 4, 16, 16], rows sum to 1");
  EXPECT_EQ(lineOf(r.provides, "head gate"), "head_mask [2, 4]: the logits' gradients reach it");
  EXPECT_EQ(lineOf(r.provides, "classifier"), "classifier.weight [3, 16], classifier.bias [3]");
  EXPECT_EQ(whats(r.lacks), (std::vector<std::string>{"attention scores", "word embeddings"}));
  EXPECT_EQ(whats(r.skipped), (std::vector<std::string>{"training term attention_mse", "augmentation mixup"}));
  EXPECT_TRUE(r.hasHiddenStates && r.hasAttentions && r.hasHeadGate && r.hasClassifier && r.trainable);
  EXPECT_TRUE(r.notes.empty()) << r.notes.front();
  const auto text = formatModelCheck(r);
  EXPECT_NE(text.find("result: usable; what it lacks is skipped as listed"), std::string::npos) << text;
}

TEST_F(ModelCheck, AttentionsOfTheWrongHeadCountAreNamedWithBothShapes) {
  const auto r = check("bert_nohm.pt", "bert_nohm_heads12.json");
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(lineOf(r.lacks, "attentions"),
            "outputs[2][0]: attentions of layer 0: got [2, 4, 16, 16], expected [2, 12, 16, 16] (manifest heads = 12)\n"
            "outputs[2][1]: attentions of layer 1: got [2, 4, 16, 16], expected [2, 12, 16, 16] (manifest heads = 12)");
  EXPECT_FALSE(r.hasAttentions);
  EXPECT_EQ(lineOf(r.skipped, "attention"),
            "no attentions: outputs[2][0]: attentions of layer 0: got [2, 4, 16, 16], expected [2, 12, 16, 16] "
            "(manifest heads = 12)");
  EXPECT_EQ(lineOf(r.skipped, "heads"),
            "no head gate: the module takes no head_mask (manifest '" + modelFile("bert_nohm_heads12.json") +
                "', field 'inputs')");
  EXPECT_TRUE(r.hasHiddenStates);
  const auto text = formatModelCheck(r);
  EXPECT_NE(text.find("  attentions        outputs[2][1]: attentions of layer 1: got [2, 4, 16, 16], expected "
                      "[2, 12, 16, 16] (manifest heads = 12)\n"),
            std::string::npos)
      << text;
}

TEST_F(ModelCheck, HeadAveragedOrUnnormalisedAttentionsAreRefusedAsAttentions) {
  auto r = check("bert_head_avg.pt");
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(lineOf(r.lacks, "attentions"),
            "outputs[2][0]: attentions of layer 0: got [2, 16, 16], expected [2, 4, 16, 16] (manifest heads = 4)\n"
            "outputs[2][1]: attentions of layer 1: got [2, 16, 16], expected [2, 4, 16, 16] (manifest heads = 4)");
  EXPECT_TRUE(r.hasHeadGate);
  r = check("bert_doubled_attn.pt");
  ASSERT_TRUE(r.usable) << allErrors(r);
  const auto line = lineOf(r.lacks, "attentions");
  // Doubled probabilities: each real row sums to 2.
  EXPECT_EQ(line.rfind("outputs[2]: attentions: the row sums over real tokens range from 2 to 2, not 1", 0), 0U) << line;
  EXPECT_NE(line.find("not attention probabilities"), std::string::npos) << line;
  EXPECT_FALSE(r.hasAttentions);
}

TEST_F(ModelCheck, MissingOutputsAreNamedAndTheirAnalysesSkipped) {
  const auto r = check("bert_logits_only.pt");
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(lineOf(r.lacks, "hidden states"),
            "outputs[1]: hidden states: the module returned a tuple of 1 element, so there is no element [1]");
  EXPECT_EQ(lineOf(r.lacks, "attentions"),
            "outputs[2]: attentions: the module returned a tuple of 1 element, so there is no element [2]");
  EXPECT_EQ(whats(r.skipped),
            (std::vector<std::string>{"cka", "residual", "probes",
                                      "training terms hidden_mse, hidden_cosine, pkd, infonce, mi_alpha", "attention",
                                      "training term attention_kl", "heads", "training term attention_mse",
                                      "augmentation mixup"}));
  EXPECT_EQ(lineOf(r.skipped, "cka"),
            "no hidden states: outputs[1]: hidden states: the module returned a tuple of 1 element, so there is no "
            "element [1]");
  // In the text, the names that share a reason go on one line, the reason below.
  const auto text = formatModelCheck(r);
  EXPECT_NE(text.find("skipped for this model:\n  cka; residual; probes; training terms hidden_mse, hidden_cosine, pkd, "
                      "infonce, mi_alpha\n      no hidden states: outputs[1]: hidden states: the module returned a tuple "
                      "of 1 element, so there is no element [1]\n  attention; training term attention_kl\n"),
            std::string::npos)
      << text;

  const auto d = check("dict_logits.pt");
  ASSERT_TRUE(d.usable) << allErrors(d);
  EXPECT_EQ(lineOf(d.provides, "logits"), "outputs[\"logits\"]: [2, 3]");
  EXPECT_EQ(lineOf(d.lacks, "hidden states"), "outputs[\"hidden_states\"]: hidden states: the module returned a dict "
                                              "with keys logits, without the key \"hidden_states\"");
  EXPECT_EQ(lineOf(d.lacks, "attentions"), "manifest '" + modelFile("dict_logits.json") + "' declares no outputs.attentions");
}

TEST_F(ModelCheck, AModuleThatIgnoresHeadMaskHasNoHeadGate) {
  const auto r = check("ignores_head_mask.pt");
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_FALSE(r.hasHeadGate);
  EXPECT_EQ(lineOf(r.lacks, "head gate"), "head_mask: the logits do not depend on head_mask (the module ignores it): "
                                          "head importance would be 0 everywhere");
  EXPECT_TRUE(r.hasAttentions);
}

TEST_F(ModelCheck, AForwardThatFailsIsAnErrorNotACrash) {
  auto r = check("raises.pt");
  EXPECT_FALSE(r.usable);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0].rfind("model '" + modelFile("raises.pt") +
                                  "': forward failed (inputs input_ids [2, 16], attention_mask [2, 16]): ",
                              0),
            0U)
      << r.errors[0];
  EXPECT_NE(r.errors[0].find("this model refuses every batch"), std::string::npos) << r.errors[0];
  EXPECT_NE(formatModelCheck(r).find("result: NOT usable (1 error)"), std::string::npos);

  // head_mask [2, 12] from a manifest that claims 12 heads: the module fails inside.
  r = check("tiny_bert.pt", "tiny_bert_heads12.json");
  EXPECT_FALSE(r.usable);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_NE(r.errors[0].find("head_mask [2, 12]"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("check sizes.layers and sizes.heads"), std::string::npos) << r.errors[0];
}

TEST_F(ModelCheck, LogitsOfTheWrongClassCountAreAnError) {
  // The classifier's rows already say there are 3 classes.
  auto r = check("tiny_bert.pt", "tiny_bert_classes4.json");
  EXPECT_FALSE(r.usable);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "manifest '" + modelFile("tiny_bert_classes4.json") +
                             "': field 'classifier.weight': parameter 'classifier.weight' is [3, 16], expected [4, D] "
                             "(one row per class; class_names has 4)");
  // Without the classifier field, the logits say it.
  const auto name = editedManifest("tiny_bert_classes4.json", "classes4_nocls.json", [](nlohmann::json& j) { j.erase("classifier"); });
  r = check("tiny_bert.pt", name);
  EXPECT_FALSE(r.usable);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "manifest '" + modelFile(name) + "': field 'outputs.logits': outputs[0]: logits: got [2, 3], "
                                                          "expected [2, 4] (manifest class_names has 4 names)");
}

TEST_F(ModelCheck, FilesAndManifestsThatCannotBeReadAreNamed) {
  for (const std::string name : {"not_a_model", "state_dict"}) {
    const auto r = check(name + ".pt");
    EXPECT_FALSE(r.usable);
    ASSERT_EQ(r.errors.size(), 1U) << allErrors(r);
    EXPECT_EQ(r.errors[0].rfind("model file '" + modelFile(name + ".pt") + "': not a TorchScript module", 0), 0U)
        << r.errors[0];
  }
  // No manifest beside the model: both the manifest and ... nothing else is wrong.
  auto r = check("tiny_bert.pt", "absent.json");
  ASSERT_EQ(r.errors.size(), 1U) << allErrors(r);
  EXPECT_EQ(r.errors[0].rfind("manifest '" + modelFile("absent.json") + "': no such file", 0), 0U) << r.errors[0];
  // A bad manifest and a bad model: both named.
  const auto bad = editedManifest("tiny_bert.json", "bad_fields.json", [](nlohmann::json& j) {
    j["sizes"]["layers"] = "two";
    j["outputs"].erase("logits");
  });
  r = check("not_a_model.pt", bad);
  ASSERT_EQ(r.errors.size(), 3U) << allErrors(r);
  const std::string head = "manifest '" + modelFile(bad) + "': field '";
  EXPECT_EQ(r.errors[0].rfind(head + "outputs.logits': missing", 0), 0U) << r.errors[0];
  EXPECT_EQ(r.errors[1], head + "sizes.layers': must be an integer >= 1, not a string");
  EXPECT_EQ(r.errors[2].rfind("model file '" + modelFile("not_a_model.pt") + "': not a TorchScript module", 0), 0U);
  // Inputs that do not match forward's arguments.
  const auto swapped = editedManifest("tiny_bert.json", "swapped.json", [](nlohmann::json& j) {
    std::swap(j["inputs"][1], j["inputs"][2]);
  });
  r = check("tiny_bert.pt", swapped);
  EXPECT_NE(std::find(r.notes.begin(), r.notes.end(),
                      "forward's argument 2 is named 'attention_mask', but the manifest's inputs[1] is "
                      "'token_type_ids': is the order of \"inputs\" right?"),
            r.notes.end())
      << formatModelCheck(r);
  // A length beyond the manifest's max_length is bad input, not a crash.
  r = check("tiny_bert.pt", "", /*length=*/64);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "length: 64 tokens exceed manifest '" + modelFile("tiny_bert.json") +
                             "' field 'sizes.max_length' (32)");
}

TEST_F(ModelCheck, VectorModelsAndBatchesFromTasks) {
  auto r = check("mlp.pt", "", 0, 4);
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(r.kind, "vector");
  EXPECT_EQ(lineOf(r.provides, "hidden states"), "outputs[1]: 3 x [4, D] with D = [6, 12, 8]");
  EXPECT_EQ(lineOf(r.skipped, "attention"), "a vector model has no attention");
  EXPECT_EQ(lineOf(r.skipped, "heads"), "a vector model has no attention heads");
  EXPECT_EQ(whats(r.lacks), std::vector<std::string>{});

  ModelCheckOptions options;
  options.modelPath = modelFile("mlp_synth.pt");
  options.task = "synthetic_hierarchy";
  options.batch = 3;
  r = checkModel(options);
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(r.batchDescription, "3 rows of 32 features: the first examples of task 'synthetic_hierarchy'");
  EXPECT_EQ(lineOf(r.lacks, "classifier"),
            "manifest '" + modelFile("mlp_synth.json") + "' names no classifier (field 'classifier': {\"weight\": NAME, "
                                                         "\"bias\": NAME})");
  EXPECT_EQ(lineOf(r.skipped, "knowledge: class geometry"), "no classifier: " + lineOf(r.lacks, "classifier"));
  options.modelPath = modelFile("mlp.pt");
  r = checkModel(options);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "task 'synthetic_hierarchy' has 12 classes (s0c0, s0c1, s0c2, s1c0, s1c1, s1c2, s2c0, s2c1, "
                         "s2c2, s3c0, s3c1, s3c2), but manifest '" + modelFile("mlp.json") +
                             "' field 'class_names' has 3 (negative, neutral, positive)");

  // A text task, encoded with the model's own WordPiece vocabulary.
  test::TempDir data("check_polarity");
  test::writePolarityCorpus(data.path());
  options.modelPath = modelFile("polarity_bag.pt");
  options.dataDir = data.path();
  options.task = "polarity";
  options.length = 12;
  r = checkModel(options);
  ASSERT_TRUE(r.usable) << allErrors(r);
  EXPECT_EQ(r.batchDescription, "3 rows of 12 tokens: the first examples of task 'polarity'");
  EXPECT_EQ(lineOf(r.provides, "logits"), "outputs[\"logits\"]: [3, 2]");
}

TEST(CheckModelCommand, PrintsTheReportAndExitsZeroOrTwo) {
  ASSERT_FALSE(test::torchScriptModels().empty());
  std::string out;
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("tiny_bert.pt")}, &out), 0) << out;
  EXPECT_NE(out.find("result: usable"), std::string::npos) << out;
  EXPECT_NE(out.find("kind:      text, 2 layers, 4 heads, width 16, 3 classes (negative, neutral, positive)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("batch:     2 rows of 32 tokens"), std::string::npos) << out;
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("bert_nohm.pt"), "--manifest",
                              modelFile("bert_nohm_heads12.json"), "--length", "16", "--batch", "2"},
                             &out),
            0)
      << out;
  EXPECT_NE(out.find("outputs[2][1]: attentions of layer 1: got [2, 4, 16, 16], expected [2, 12, 16, 16] "
                     "(manifest heads = 12)"),
            std::string::npos)
      << out;
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("raises.pt")}, &out), 2) << out;
  EXPECT_NE(out.find("this model refuses every batch"), std::string::npos) << out;
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("nothing.pt")}, &out), 2) << out;
  EXPECT_NE(out.find("nothing.json': no such file"), std::string::npos) << out;
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("tiny_bert.pt"), "--batch", "0"}, &out), 2);
  EXPECT_EQ(test::runKdscope({"check-model", modelFile("tiny_bert.pt"), "--task", "no_such_task"}, &out), 2)
      << out;
  EXPECT_NE(out.find("no_such_task"), std::string::npos) << out;
}

} // namespace
} // namespace kdscope::core
