// Sentence pairs given to TorchScript modules as pairs, the run-size estimate of TorchScript
// models, and issue #13's "Done when" end to end: a traced BERT-family teacher and student
// (forward(input_ids, attention_mask, token_type_ids, head_mask) returning logits, hidden
// states and attentions) and a CSV of sentence pairs made from the fetched hedge set, one job
// file, `kdscope run`, then `info`, `analyze`, `export` (every figure) and `report`. PyTorch
// is the oracle (tests/python/own_pairs.py): it tokenizes the pairs itself and runs the
// module in Python; the attention entropy is recomputed there over the module's own tokens.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/loaders.h"
#include "core/distill/trainer.h"
#include "core/models/model_manifest.h"
#include "core/models/model_tokenizer.h"
#include "core/record/h5_file.h"
#include "core/record/size_estimate.h"
#include "core/study/study_spec.h"
#include "tests/core/test_support.h"

#ifndef KDSCOPE_EXECUTABLE
#error "KDSCOPE_EXECUTABLE must name the kdscope executable (tests/CMakeLists.txt defines it)"
#endif
#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with torch, numpy and h5py (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<std::int64_t>;
using test::runCommand;

// ---- Pairs as pairs -----------------------------------------------------------------------

/// vocab.txt: ids 0..9 are [PAD] [UNK] [CLS] [SEP] the cat sat dog ##s ran.
core::ModelManifest wordPieceManifest(const test::TempDir& dir) {
  core::ModelManifest m;
  m.path = dir.file("model.json");
  core::ManifestTokenizer t;
  t.type = "wordpiece";
  t.vocabPath = test::writeFile(dir.file("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\ncat\nsat\ndog\n##s\nran\n");
  m.tokenizer = t;
  return m;
}

/// Two pairs, the first in train and the second in eval (the data's split).
core::TaskData pairTask(int maxLen) {
  core::RawDataset raw;
  raw.kind = core::TaskKind::Text;
  raw.classNames = {"agree", "differ"};
  raw.labels = {0, 1};
  raw.texts = {"The cat sat", "the dog"};
  raw.pairTexts = {"dogs ran", "The cats sat, the dog ran"};
  raw.inEval = {0, 1};
  core::TaskSpec spec;
  spec.name = "pairs";
  spec.maxLen = maxLen;
  spec.minFreq = 1;
  return core::buildTask(spec, raw, /*seed=*/1);
}

TEST(PairTokenTypes, ModelTokenizerEncodesPairsWithHandWorkedTokenTypes) {
  const test::TempDir dir("pairs");
  const core::TaskData task = pairTask(/*maxLen=*/10);
  // The split keeps both texts: "a\nb" for display, b on its own, a recovered exactly.
  ASSERT_EQ(task.train.pairTexts, std::vector<std::string>{"dogs ran"});
  EXPECT_EQ(task.train.texts[0], "The cat sat\ndogs ran");
  EXPECT_EQ(task.train.firstText(0), "The cat sat");
  EXPECT_EQ(task.eval.firstText(0), "the dog");

  const auto tokenizer = core::ModelTokenizer::fromManifest(wordPieceManifest(dir));
  const core::TaskData view = core::retokenizeTask(task, tokenizer, "test model");
  // Train: [CLS] the cat sat [SEP] dog ##s ran [SEP] [PAD] (worked by hand from the vocab).
  EXPECT_EQ(view.train.tokens, (Ids{2, 4, 5, 6, 3, 7, 8, 9, 3, 0}));
  EXPECT_EQ(view.train.tokenTypes, (Ids{0, 0, 0, 0, 0, 1, 1, 1, 1, 0}));
  // Eval: a = the dog (2 pieces), b = the cat ##s sat , the dog ran = 8 pieces ("," is
  // [UNK]); 2 + 8 > 10 - 3 = 7, so b loses its last token until 2 + 5 fit:
  // [CLS] the dog [SEP] the cat ##s sat [UNK] [SEP].
  EXPECT_EQ(view.eval.tokens, (Ids{2, 4, 7, 3, 4, 5, 8, 6, 1, 3}));
  EXPECT_EQ(view.eval.tokenTypes, (Ids{0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));

  // makeBatch hands them to the module as token_type_ids, row by row.
  const core::Batch batch = core::makeBatch(view, view.eval, Ids{0});
  ASSERT_TRUE(batch.tokenTypes.defined());
  EXPECT_TRUE(torch::equal(batch.tokenTypes, torch::tensor({0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, torch::kLong).view({1, 10})));
  // A task of single texts has no token types: makeBatch leaves them undefined (all 0).
  core::TaskData single = view;
  single.train.tokenTypes.clear();
  EXPECT_FALSE(core::makeBatch(single, single.train, Ids{0}).tokenTypes.defined());
}

TEST(PairTokenTypes, PairTruncationDropsFromTheLongerSideTiesFromTheSecond) {
  const test::TempDir dir("pairs");
  const auto tokenizer = core::ModelTokenizer::fromManifest(wordPieceManifest(dir));
  const core::TaskData view = core::retokenizeTask(pairTask(/*maxLen=*/7), tokenizer, "test model");
  // a = the cat sat (3), b = dog ##s ran (3), room for 4: a tie drops from b (dog ##s), then
  // a is longer (3 > 2) and drops sat: [CLS] the cat [SEP] dog ##s [SEP].
  EXPECT_EQ(view.train.tokens, (Ids{2, 4, 5, 3, 7, 8, 3}));
  EXPECT_EQ(view.train.tokenTypes, (Ids{0, 0, 0, 0, 1, 1, 1}));
}

// ---- The run-size estimate of TorchScript models -------------------------------------------

const core::RunSizeEstimate::Part* partOf(const core::RunSizeEstimate& e, const std::string& what) {
  for (const auto& p : e.parts) {
    if (p.what == what) {
      return &p;
    }
  }
  return nullptr;
}

TEST(TorchScriptSizeEstimate, SizesFromThePreflightCheckWorkedByHand) {
  core::TaskData task;
  task.name = "pairs";
  task.kind = core::TaskKind::Text;
  task.classNames = {"agree", "differ"};
  task.seqLen = 8;
  task.train.labels.assign(20, 0);
  task.eval.labels.assign(10, 0);
  core::JobSpec job;
  job.name = "sizes";
  job.mode = "compare";
  core::StudentSpec student;
  student.name = "small";
  student.torchscript = "small.pt";
  job.students = {student};
  job.recording.attentionExamples = 4;
  job.recording.tokenHiddenExamples = 0;
  job.recording.hidden = true;
  job.recording.float16 = false;

  core::TorchScriptSizes sizes;
  core::RecordedModelSizes teacher; // 2 layers, 4 heads, width 16, everything provided
  teacher.layers = 2;
  teacher.heads = 4;
  teacher.width = 16;
  teacher.classifierWidth = 16;
  teacher.hidden = teacher.attention = teacher.classifier = true;
  core::RecordedModelSizes small; // 1 layer, 2 heads, width 8; no attentions, no classifier
  small.layers = 1;
  small.heads = 2;
  small.width = 8;
  small.hidden = true;
  teacher.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab"};
  small.vocab = teacher.vocab; // recorded only with attentions: not for this one
  sizes["pairs"]["teacher"] = teacher;
  sizes["pairs"]["small"] = small;
  const core::RunSizeEstimate e = core::estimateRunFileSize(job, {task}, sizes);

  // Stored bytes = round(raw x ratio) + 600 (object header) + the B-tree root of a chunked
  // dataset of rank r, 64 x (16 + 8 (r + 1)) + 24 (docs/run-format.md, "Size estimate").
  // eval/attention, the teacher's only: 4 examples x 2 layers x 4 heads x 8 x 8 floats =
  // 8192 bytes x 0.65 = 5324.8 -> 5325, + 600 + 64 x 64 + 24 (rank 5) = 10045.
  ASSERT_NE(partOf(e, "eval/attention"), nullptr);
  EXPECT_EQ(partOf(e, "eval/attention")->bytes, 10045u);
  // eval/hidden: teacher 10 x 3 x 16 floats = 1920 B x 0.9 = 1728, + 600 + 3096 (rank 3) =
  // 5424; student 10 x 2 x 8 floats = 640 B x 0.9 = 576, + 3696 = 4272; together 9696.
  ASSERT_NE(partOf(e, "eval/hidden"), nullptr);
  EXPECT_EQ(partOf(e, "eval/hidden")->bytes, 9696u);
  // Classifier, the teacher's only: a group (1200) + weight and bias 2 x 17 floats = 136 B
  // x 0.9 = 122.4 -> 122, + 600 + 2584 (rank 2) = 3306, + the empty 1-D companion 600 +
  // 2072 = 2672: 7178.
  ASSERT_NE(partOf(e, "classifier weights"), nullptr);
  EXPECT_EQ(partOf(e, "classifier weights")->bytes, 7178u);
  // eval/token_counts of each model: 10 int64 = 80 B x 0.12 = 9.6 -> 10, + 600 + 2072 = 2682.
  ASSERT_NE(partOf(e, "token counts of TorchScript models"), nullptr);
  EXPECT_EQ(partOf(e, "token counts of TorchScript models")->bytes, 2u * 2682u);
  // The teacher's own tokens of its 4 kept examples: 4 x 8 int64 = 256 B x 0.12 = 30.72 -> 31,
  // + 600 + 2584 (rank 2) = 3215; its vocabulary: 5 strings of at most 8 bytes, each 8 + 36,
  // + 600 = 820. Together 4035; nothing for the student without attentions.
  ASSERT_NE(partOf(e, "own tokens and vocabulary of TorchScript models"), nullptr);
  EXPECT_EQ(partOf(e, "own tokens and vocabulary of TorchScript models")->bytes, 4035u);
  // Mode "compare" trains nothing: no training logs.
  EXPECT_EQ(partOf(e, "training logs and eval curves"), nullptr);

  // Without the pre-flight sizes the job's (unused) architecture fields are assumed, as
  // before: another estimate.
  const core::RunSizeEstimate guessed = core::estimateRunFileSize(job, {task});
  EXPECT_NE(guessed.bytes, e.bytes);
}

// ---- Studies take KDScope models only ---------------------------------------------------------

TEST(StudyTorchScriptRefusal, EachTorchScriptFieldAndModeIsRefusedWithTheReason) {
  const core::StudyParseResult parsed = core::parseStudy(R"({
    "name": "s", "mode": "compare",
    "tasks": [{"name": "polarity"}],
    "teacher": {"torchscript": "t.pt", "manifest": "t.json"},
    "student": {"torchscript": "s.pt"},
    "grid": {"layers": [1, 2]}})");
  EXPECT_FALSE(parsed.study.has_value());
  std::vector<std::string> paths;
  for (const auto& issue : parsed.issues) {
    paths.push_back(issue.path);
    EXPECT_NE(issue.message.find("studies take KDScope's own models only"), std::string::npos) << issue.message;
  }
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"mode", "student.torchscript", "teacher.manifest", "teacher.torchscript"}));
}

// ---- End to end ------------------------------------------------------------------------------

std::string dataDir() {
  const char* env = std::getenv("KDSCOPE_DATA_DIR");
  if (env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.cache/kdscope/data";
}

std::string kdscope(const std::string& args) { return std::string(KDSCOPE_EXECUTABLE) + " " + args; }

std::string oracleScript() { return std::string(KDSCOPE_SOURCE_DIR) + "/tests/python/own_pairs.py"; }

/// Runs the oracle on a run file; its JSON summary (null on failure, with the test failed).
nlohmann::json oracle(const std::string& runPath, const std::string& out) {
  const auto [status, output] =
      runCommand(std::string(KDSCOPE_PYTHON) + " '" + oracleScript() + "' oracle '" + runPath + "' '" + out + "'");
  EXPECT_EQ(status, 0) << output;
  const auto brace = output.rfind('{');
  return brace == std::string::npos ? nlohmann::json() : nlohmann::json::parse(output.substr(brace), nullptr, false);
}

std::size_t filesWithExtension(const fs::path& dir, const std::string& ext) {
  std::size_t n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    n += entry.path().extension() == ext ? 1 : 0;
  }
  return n;
}

TEST(OwnPairsEndToEnd, TracedTeacherAndStudentOnACsvOfPairsGiveEveryViewFromOneJobFile) {
  const std::string hedge = dataDir() + "/own-data/hedge.jsonl";
  if (!fs::exists(hedge)) {
    GTEST_SKIP() << "no " << hedge << " (scripts/setup.sh makes it from the fetched hedge set)";
  }
  const test::TempDir dir("own_pairs");
  const std::string out = dir.path();
  {
    const auto [status, output] =
        runCommand(std::string(KDSCOPE_PYTHON) + " '" + oracleScript() + "' make '" + out + "' '" + dataDir() + "'");
    ASSERT_EQ(status, 0) << output;
  }

  // Mode "compare": the two traced modules recorded as given, then analysed (on by default).
  {
    const auto [status, output] = runCommand(kdscope("run '" + out + "/compare.json' --out '" + out + "/compare'"));
    ASSERT_EQ(status, 0) << output;
    // The pre-flight check fed the modules pairs.
    EXPECT_NE(output.find("(sentence pairs)"), std::string::npos) << output;
  }
  const std::string run = out + "/compare/run.h5";
  {
    const auto [status, output] = runCommand(kdscope("info '" + run + "'"));
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("student"), std::string::npos) << output;
  }
  {
    const auto [status, output] = runCommand(kdscope("analyze '" + run + "'"));
    EXPECT_EQ(status, 0) << output;
  }
  const nlohmann::json checked = oracle(run, out);
  ASSERT_TRUE(checked.is_object());
  SCOPED_TRACE(checked.dump());
  EXPECT_EQ(checked.at("eval_examples"), 60);
  EXPECT_TRUE(checked.at("texts_match").get<bool>());
  // The recorded teacher logits are PyTorch's on the same pairs with token types 0 then 1.
  EXPECT_LT(checked.at("max_abs_difference").get<double>(), 1e-4);
  // ... and not PyTorch's with all-zero token types: the types reached the module.
  EXPECT_GT(checked.at("max_abs_difference_without_token_types").get<double>(), 1e-2);
  EXPECT_EQ(checked.at("rows_with_type_1"), 60);
  EXPECT_TRUE(checked.at("token_counts_match").get<bool>());
  EXPECT_TRUE(checked.at("student_token_counts_match").get<bool>());
  // The attention entropy counts the module's own tokens, which here differ from KDScope's
  // word tokens of the task (the task has no vocab: the word tokenizer).
  EXPECT_GT(checked.at("attention_examples_where_lengths_differ").get<int>(), 0);
  EXPECT_LT(checked.at("entropy_max_abs_difference").get<double>(), 1e-5);
  EXPECT_GT(checked.at("entropy_difference_by_kdscope_tokens").get<double>(), 1e-3);
  // The teacher's own tokens of the kept examples, and its vocabulary, are Python's WordPiece
  // ids and vocab.txt.
  EXPECT_TRUE(checked.at("own_tokens_match").get<bool>());
  EXPECT_TRUE(checked.at("own_vocab_match").get<bool>());
  EXPECT_EQ(checked.at("own_tokens_rows").get<int>(), checked.at("attention_examples").get<int>());

  // Every figure the run can give, and the report.
  {
    const auto [status, output] = runCommand("QT_QPA_PLATFORM=offscreen " +
                                             kdscope("export '" + run + "' --figure all --format svg --out '" + out +
                                                     "/figures'"));
    EXPECT_EQ(status, 0) << output;
    EXPECT_GE(filesWithExtension(out + "/figures", ".svg"), 10u) << output;
  }
  // The teacher's attention map of eval example 0 is labelled with the module's own pieces
  // ([CLS] premise pieces [SEP] hypothesis pieces [SEP], as Python tokenized them), not with
  // KDScope's word tokens of the text.
  {
    std::vector<std::string> expected;
    for (const auto& piece : checked.at("first_example_pieces")) {
      expected.push_back(piece.get<std::string>());
    }
    ASSERT_GE(expected.size(), 3u);
    EXPECT_EQ(expected.front(), "[CLS]");
    EXPECT_EQ(expected.back(), "[SEP]");
    std::string csv;
    for (const auto& entry : fs::recursive_directory_iterator(out + "/figures")) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("heads.attention.hedge-pairs.teacher.e0.", 0) == 0 && entry.path().extension() == ".csv") {
        csv = entry.path().string();
      }
    }
    ASSERT_FALSE(csv.empty()) << "no CSV of the teacher's attention map of example 0 in " << out << "/figures";
    std::ifstream in(csv, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::vector<std::string>> records; // the pieces include "," and '"', quoted
    for (auto& record : core::loaders::parseCsv(text, csv)) {
      if (!record.empty() && record.front().rfind('#', 0) != 0) { // "# figure: ..." comment lines
        records.push_back(std::move(record));
      }
    }
    ASSERT_FALSE(records.empty());
    ASSERT_EQ(records.front(), (std::vector<std::string>{"row", "row_label", "column", "column_label", "value"}));
    std::vector<std::string> rowLabels; // row r's label, from its column-0 cell
    for (std::size_t r = 1; r < records.size(); ++r) {
      ASSERT_EQ(records[r].size(), 5u) << csv << " record " << r;
      if (records[r][2] == "0") {
        rowLabels.push_back(records[r][1]);
      }
    }
    EXPECT_EQ(rowLabels, expected);
  }
  {
    const auto [status, output] =
        runCommand("QT_QPA_PLATFORM=offscreen " + kdscope("report '" + run + "' --out '" + out + "/report'"));
    EXPECT_EQ(status, 0) << output;
    EXPECT_GE(filesWithExtension(out + "/report", ".html"), 1u) << output;
  }

  // A copy whose teacher lost its vocabulary: the tokens left name what they index.
  {
    const std::string broken = out + "/no_vocab.h5";
    fs::copy_file(run, broken);
    {
      core::H5File f(broken, core::H5File::Mode::ReadWrite);
      f.remove("/tasks/hedge-pairs/models/teacher/vocab");
    }
    const auto [status, output] = runCommand(kdscope("info '" + broken + "'"));
    EXPECT_EQ(status, 2) << output;
    EXPECT_NE(output.find(broken + ": /tasks/hedge-pairs/models/teacher/eval/tokens: exists, but "
                                   "/tasks/hedge-pairs/models/teacher/vocab (the vocabulary it indexes) does not"),
              std::string::npos)
        << output;
  }

  // Mode "distil": the same teacher into a KDScope student and into the traced student,
  // trained in C++ on the pairs (with their token types).
  {
    const auto [status, output] = runCommand(kdscope("run '" + out + "/distil.json' --out '" + out + "/distil'"));
    ASSERT_EQ(status, 0) << output;
  }
  const std::string distilled = out + "/distil/run.h5";
  {
    const auto [status, output] = runCommand(kdscope("info '" + distilled + "'"));
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("ts-kd"), std::string::npos) << output;
  }
  EXPECT_TRUE(fs::exists(out + "/distil/checkpoints/hedge-pairs/ts-kd.torchscript.pt"));
  const nlohmann::json teacherAgain = oracle(distilled, out);
  ASSERT_TRUE(teacherAgain.is_object());
  EXPECT_LT(teacherAgain.at("max_abs_difference").get<double>(), 1e-4) << teacherAgain.dump();
}

} // namespace
} // namespace kdscope
