// Model manifests (core/models/model_manifest.h) and the tokenizers they name
// (core/models/model_tokenizer.h): parsing, every refusal with its field, and hand-worked
// encodings.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/models/model_manifest.h"
#include "core/models/model_tokenizer.h"
#include "core/models/torchscript_model.h"
#include "test_support.h"

namespace kdscope::core {
namespace {

using Json = nlohmann::json;

/// The vocabulary of tests/python/make_torchscript_models.py (ids are line numbers - 1).
const char* const kVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\na\ncat\ndog\nsat\non\nmat\n##s\nun\n##aff\n##able\n"
                           ",\n.\n!\nvery\ngood\nbad\nmovie\nis\nwas\nnot\ni\nit\nand\n##ly\n";

Json textManifest() {
  return Json::parse(R"({
    "manifest_version": 1,
    "inputs": ["input_ids", {"name": "attention_mask", "dtype": "float32"}, "token_type_ids", "position_ids", "head_mask"],
    "outputs": {"logits": 0, "hidden_states": [1], "attentions": [2, "maps"]},
    "tokenizer": {"type": "wordpiece", "vocab": "vocab.txt", "lower_case": false},
    "class_names": ["negative", "positive"],
    "sizes": {"layers": 2, "heads": 4, "width": 16, "max_length": 64},
    "classifier": {"weight": "classifier.weight", "bias": "classifier.bias"}
  })");
}

Json vectorManifest() {
  return Json::parse(R"({"inputs": ["features"], "outputs": {"logits": []}, "class_names": ["a", "b", "c"],
                         "sizes": {"layers": 1, "width": 8, "features": 5}})");
}

class ModelManifestTest : public ::testing::Test {
protected:
  void SetUp() override { test::writeFile(m_dir.file("vocab.txt"), kVocab); }
  ManifestParseResult parse(const Json& j) { return parseModelManifest(j.dump(), m_dir.file("model.json")); }
  /// The single issue of `j`, as "field: message".
  std::string issueOf(const Json& j) {
    const auto r = parse(j);
    EXPECT_FALSE(r.manifest.has_value());
    std::string out;
    for (const auto& i : r.issues) {
      out += (out.empty() ? "" : " | ") + i.field + ": " + i.message;
    }
    return out;
  }
  test::TempDir m_dir{"manifest"};
};

TEST_F(ModelManifestTest, AFullTextManifestReadsEveryField) {
  const auto r = parse(textManifest());
  ASSERT_TRUE(r.manifest.has_value()) << (r.issues.empty() ? "" : r.issues.front().message);
  const auto& m = *r.manifest;
  ASSERT_EQ(m.inputs.size(), 5U);
  EXPECT_EQ(m.inputs[0].kind, ModelInput::InputIds);
  EXPECT_EQ(m.inputs[0].dtype, InputDType::Int64);
  EXPECT_EQ(m.inputs[1].kind, ModelInput::AttentionMask);
  EXPECT_EQ(m.inputs[1].dtype, InputDType::Float32);
  EXPECT_EQ(m.inputs[4].kind, ModelInput::HeadMask);
  EXPECT_EQ(m.inputs[4].dtype, InputDType::Float32);
  EXPECT_FALSE(m.isVector());
  EXPECT_TRUE(m.takes(ModelInput::PositionIds));
  EXPECT_FALSE(m.takes(ModelInput::PaddingMask));
  EXPECT_EQ(formatOutputPath(m.logits), "outputs[0]");
  ASSERT_TRUE(m.hiddenStates.has_value());
  EXPECT_EQ(formatOutputPath(*m.hiddenStates), "outputs[1]");
  ASSERT_TRUE(m.attentions.has_value());
  EXPECT_EQ(formatOutputPath(*m.attentions), "outputs[2][\"maps\"]");
  ASSERT_TRUE(m.tokenizer.has_value());
  EXPECT_EQ(m.tokenizer->type, "wordpiece");
  EXPECT_EQ(m.tokenizer->vocabPath, m_dir.file("vocab.txt"));
  EXPECT_FALSE(m.tokenizer->lowerCase);
  EXPECT_EQ(m.classNames, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(m.layers, 2);
  EXPECT_EQ(m.heads, 4);
  EXPECT_EQ(m.width, 16);
  EXPECT_EQ(m.maxLength, 64);
  EXPECT_EQ(m.classifierWeight, "classifier.weight");
  EXPECT_EQ(m.classifierBias, "classifier.bias");
  EXPECT_EQ(m.path, m_dir.file("model.json"));
}

TEST_F(ModelManifestTest, AVectorManifestAndOutputPathForms) {
  const auto r = parse(vectorManifest());
  ASSERT_TRUE(r.manifest.has_value());
  EXPECT_TRUE(r.manifest->isVector());
  EXPECT_EQ(r.manifest->features, 5);
  EXPECT_EQ(r.manifest->heads, 0);
  EXPECT_EQ(formatOutputPath(r.manifest->logits), "outputs");
  EXPECT_FALSE(r.manifest->hiddenStates.has_value());
  EXPECT_FALSE(r.manifest->tokenizer.has_value());
  EXPECT_EQ(r.manifest->classifierWeight, "");
  auto j = vectorManifest();
  j["outputs"]["logits"] = "logits";
  EXPECT_EQ(formatOutputPath(parse(j).manifest->logits), "outputs[\"logits\"]");
  EXPECT_EQ(defaultManifestPath("/a/b/model.pt"), "/a/b/model.json");
  EXPECT_EQ(defaultManifestPath("model"), "model.json");
}

TEST_F(ModelManifestTest, EveryWrongOrMissingFieldIsNamed) {
  struct Case {
    std::function<void(Json&)> change;
    std::string expected; // "field: message fragment"
  };
  const std::vector<Case> cases = {
      {[](Json& j) { j.erase("inputs"); }, "inputs: missing"},
      {[](Json& j) { j["inputs"][1] = "tokens"; }, "inputs[1]: unknown input 'tokens' (known: input_ids,"},
      {[](Json& j) { j["inputs"][2] = "input_ids"; }, "inputs[2]: input 'input_ids' is listed twice"},
      {[](Json& j) { j["inputs"][1]["dtype"] = "float16"; }, "inputs[1].dtype: must be \"int64\", \"float32\" or \"bool\""},
      {[](Json& j) { j["inputs"][0] = {{"name", "input_ids"}, {"dtype", "float32"}}; }, "inputs[0].dtype: 'input_ids' holds ids"},
      {[](Json& j) { j["inputs"] = {"features", "input_ids"}; }, "inputs: a vector model takes \"features\" alone"},
      {[](Json& j) { j["inputs"] = {"attention_mask"}; }, "inputs: a text model must take \"input_ids\""},
      {[](Json& j) { j["outputs"].erase("logits"); }, "outputs.logits: missing"},
      {[](Json& j) { j["outputs"]["hidden_states"] = -1; }, "outputs.hidden_states: must be an index (an integer >= 0) or a dict key"},
      {[](Json& j) { j["outputs"]["attentions"] = {2, 1.5}; }, "outputs.attentions[1]: must be an index"},
      {[](Json& j) { j["outputs"]["scores"] = 3; }, "outputs.scores: unknown field (known here: logits, hidden_states, attentions)"},
      {[](Json& j) { j["sizes"]["layers"] = "two"; }, "sizes.layers: must be an integer >= 1, not a string"},
      {[](Json& j) { j["sizes"]["width"] = 16.5; }, "sizes.width: must be an integer >= 1, not a number"},
      {[](Json& j) { j["sizes"].erase("heads"); }, "sizes.heads: missing (an integer >= 1)"},
      {[](Json& j) { j["sizes"]["max_length"] = 1; }, "sizes.max_length: must be an integer >= 2, not 1"},
      {[](Json& j) { j["sizes"]["features"] = 3; }, "sizes.features: only vector models"},
      {[](Json& j) { j.erase("sizes"); }, "sizes: missing"},
      {[](Json& j) { j["class_names"] = {"a"}; }, "class_names: must be an array of at least 2 class names"},
      {[](Json& j) { j["class_names"] = {"a", "a"}; }, "class_names[1]: 'a' is listed twice"},
      {[](Json& j) { j["class_names"] = {"a", 3}; }, "class_names[1]: must be a non-empty string, not an integer"},
      {[](Json& j) { j.erase("class_names"); }, "class_names: missing"},
      {[](Json& j) { j["tokenizer"]["vocab"] = "missing.txt"; }, "tokenizer.vocab: no such file '"},
      {[](Json& j) { j["tokenizer"]["type"] = "bpe"; }, "tokenizer.type: must be \"wordpiece\" (a BERT vocab.txt) or \"word\""},
      {[](Json& j) { j["tokenizer"]["lower_case"] = "yes"; }, "tokenizer.lower_case: must be true or false, not a string"},
      {[](Json& j) { j.erase("tokenizer"); }, "tokenizer: missing: a text model needs"},
      {[](Json& j) { j["classifier"] = {{"bias", "b"}}; }, "classifier.weight: missing (a string)"},
      {[](Json& j) { j["head"] = 1; }, "head: unknown field"},
      {[](Json& j) { j["manifest_version"] = 2; }, "manifest_version: must be 1"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto j = textManifest();
    cases[i].change(j);
    const auto got = issueOf(j);
    EXPECT_EQ(got.rfind(cases[i].expected, 0), 0U) << "case " << i << ": got \"" << got << "\"\nexpected to start with \""
                                                   << cases[i].expected << "\"";
  }
  // Vector models: no tokenizer, no attention.
  auto v = vectorManifest();
  v["tokenizer"] = {{"type", "word"}, {"vocab", "vocab.txt"}};
  EXPECT_EQ(issueOf(v), "tokenizer: a vector model (input \"features\") takes no tokenizer");
  v = vectorManifest();
  v["outputs"]["attentions"] = 2;
  EXPECT_EQ(issueOf(v), "outputs.attentions: a vector model has no attention");
  v = vectorManifest();
  v["sizes"].erase("features");
  EXPECT_EQ(issueOf(v), "sizes.features: missing (an integer >= 1)");
}

TEST_F(ModelManifestTest, FilesAndMessagesNameTheManifest) {
  const auto notJson = parseModelManifest("{\"inputs\": [", m_dir.file("m.json"));
  ASSERT_EQ(notJson.issues.size(), 1U);
  EXPECT_EQ(notJson.issues[0].field, "");
  EXPECT_EQ(notJson.issues[0].message.rfind("not valid JSON", 0), 0U);
  const auto missing = readModelManifest(m_dir.file("absent.json"));
  ASSERT_EQ(missing.issues.size(), 1U);
  EXPECT_EQ(missing.issues[0].str(m_dir.file("absent.json")).rfind("manifest '" + m_dir.file("absent.json") + "': no such file", 0), 0U);
  auto j = textManifest();
  j["sizes"]["layers"] = "two";
  j["class_names"] = {"a"};
  test::writeFile(m_dir.file("bad.json"), j.dump());
  const auto message = test::messageOf<InputError>([&] { (void)loadModelManifest(m_dir.file("bad.json")); });
  const std::string head = "manifest '" + m_dir.file("bad.json") + "': field '";
  EXPECT_EQ(message, head + "class_names': must be an array of at least 2 class names\n" + head +
                         "sizes.layers': must be an integer >= 1, not a string");
}

TEST_F(ModelManifestTest, WordPieceTokenizerEncodesHandWorkedExamples) {
  auto j = textManifest();
  j["tokenizer"]["lower_case"] = true;
  const auto tokenizer = ModelTokenizer::fromManifest(*parse(j).manifest);
  EXPECT_EQ(tokenizer.type(), "wordpiece");
  EXPECT_EQ(tokenizer.vocabSize(), 30);
  // [CLS] the cat ##s sat on the mat . [SEP] [PAD] [PAD]
  auto e = tokenizer.encode("The cats sat on the mat.", 12);
  EXPECT_EQ(e.inputIds, (std::vector<std::int64_t>{2, 5, 7, 12, 9, 10, 5, 11, 17, 3, 0, 0}));
  EXPECT_EQ(e.attentionMask, (std::vector<std::int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(e.tokenTypeIds, std::vector<std::int64_t>(12, 0));
  // un ##aff ##able !
  EXPECT_EQ(tokenizer.encode("Unaffable!", 6).inputIds, (std::vector<std::int64_t>{2, 13, 14, 15, 18, 3}));
  // [CLS] the cat [SEP] a dog ! [SEP]
  e = tokenizer.encodePair("The cat", "a dog!", 10);
  EXPECT_EQ(e.inputIds, (std::vector<std::int64_t>{2, 5, 7, 3, 6, 8, 18, 3, 0, 0}));
  EXPECT_EQ(e.tokenTypeIds, (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 0, 0}));
  // Cased: "The" is not in the vocabulary.
  const auto cased = ModelTokenizer::fromManifest(*parse(textManifest()).manifest);
  EXPECT_EQ(cased.encode("The cat", 4).inputIds, (std::vector<std::int64_t>{2, 1, 7, 3}));

  // A batch of them, as a TorchScript model takes it.
  const auto batch = encodeTextBatch(tokenizer, {"The cat", "a dog!"}, {"sat", "on the mat"}, 8);
  EXPECT_TRUE(torch::equal(batch.tokens, torch::tensor({2, 5, 7, 3, 9, 3, 0, 0, 2, 6, 8, 18, 3, 10, 5, 3}, torch::kLong)
                                             .reshape({2, 8})));
  EXPECT_TRUE(torch::equal(batch.tokenTypes, torch::tensor({0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, torch::kLong)
                                                 .reshape({2, 8})));
  EXPECT_TRUE(torch::equal(batch.mask, batch.tokens.ne(0)));
  EXPECT_FALSE(batch.labels.defined());
  const auto invalid = test::messageOf<InputError>([&] { (void)encodeTextBatch(tokenizer, {"ok", "bad \xff"}, {}, 8); });
  EXPECT_EQ(invalid.rfind("row 1: ", 0), 0U) << invalid;
}

TEST_F(ModelManifestTest, WordTokenizerNeedsKdscopesSpecialTokensFirst) {
  test::writeFile(m_dir.file("words.txt"), "[PAD]\n[UNK]\n[CLS]\nthe\ncat\n");
  auto j = textManifest();
  j["tokenizer"] = {{"type", "word"}, {"vocab", "words.txt"}};
  const auto tokenizer = ModelTokenizer::fromManifest(*parse(j).manifest);
  EXPECT_EQ(tokenizer.sepId(), -1);
  const auto e = tokenizer.encode("The cat sat", 6);
  EXPECT_EQ(e.inputIds, (std::vector<std::int64_t>{2, 3, 4, 1, 0, 0}));
  EXPECT_EQ(e.attentionMask, (std::vector<std::int64_t>{1, 1, 1, 1, 0, 0}));
  test::writeFile(m_dir.file("words.txt"), "[PAD]\nthe\n[CLS]\n");
  const auto message = test::messageOf<InputError>([&] { (void)ModelTokenizer::fromManifest(*parse(j).manifest); });
  EXPECT_EQ(message, "vocabulary file '" + m_dir.file("words.txt") +
                         "': line 2: must be [UNK] (a word vocabulary starts [PAD], [UNK], [CLS]: ids 0, 1, 2)");
}

} // namespace
} // namespace kdscope::core
