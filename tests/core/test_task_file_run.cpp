// End to end: `kdscope run` on jobs whose tasks are the user's own files (text rows with a
// split column, sentence pairs with WordPiece, an .npy array with a label file), checked
// against values computed independently: split sizes and class counts by Python from the
// same files, WordPiece ids worked out by hand, and the task-source attributes against the
// file system. A bad row refuses the job before any training (exit code 2, no run file).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/core/test_support.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"

#ifndef KDSCOPE_EXECUTABLE
#error "KDSCOPE_EXECUTABLE must name the kdscope executable (tests/CMakeLists.txt defines it)"
#endif
#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with numpy and h5py (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Ids = std::vector<std::int64_t>;

using kdscope::test::runCommand;

/// What a Python snippet prints (its exit status must be 0).
std::string python(const test::TempDir& dir, const std::string& code) {
  const std::string script = test::writeFile(dir.file("oracle.py"), code);
  const auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " '" + script + "'");
  EXPECT_EQ(status, 0) << output;
  return output;
}

Json tinyTransformer(int layers) {
  return {{"type", "transformer"}, {"layers", layers}, {"heads", 2}, {"width", 8}, {"ffn", 16}, {"dropout", 0.0}};
}

/// A job with one teacher and one KD student, one epoch each, no analysis.
Json tinyJob(const Json& task, const Json& teacherArch, const Json& studentArch) {
  return {{"name", "own-data"},
          {"seed", 4},
          {"tasks", Json::array({task})},
          {"teacher", {{"architecture", teacherArch}, {"training", {{"epochs", 1}, {"batch_size", 16}}}}},
          {"students", Json::array({Json{{"name", "kd"},
                                         {"architecture", studentArch},
                                         {"training", {{"epochs", 1}, {"batch_size", 16}}},
                                         {"objective", {{"lambda", 0.5}, {"temperature", 2.0}}}}})},
          {"recording", {{"attention_examples", 2}}},
          {"analyze", false}};
}

/// Runs the job file and returns the run file's path (the run must succeed).
std::string runJob(const test::TempDir& dir, const std::string& jobPath) {
  const std::string out = dir.file("out");
  const auto [status, output] =
      runCommand(std::string(KDSCOPE_EXECUTABLE) + " run '" + jobPath + "' --out '" + out + "'");
  EXPECT_EQ(status, 0) << output;
  return out + "/run.h5";
}

std::map<std::int64_t, std::int64_t> classCounts(const Ids& labels) {
  std::map<std::int64_t, std::int64_t> counts;
  for (const auto label : labels) {
    ++counts[label];
  }
  return counts;
}

TEST(TaskFileRun, JsonLinesWithASplitColumnRunsAndRecordsItsSource) {
  const test::TempDir dir("filerun");
  // 90 rows, three classes by a pattern, every fifth row "dev"; the words carry the class.
  std::string rows;
  const char* const names[] = {"alpha", "beta", "gamma"};
  for (int i = 0; i < 90; ++i) {
    const int c = (i * 7) % 3;
    rows += Json{{"id", i}, {"body", std::string(names[c]) + " word" + std::to_string(i % 4) + " filler"},
                 {"cls", names[c]}, {"part", i % 5 == 0 ? "dev" : "train"}}
                .dump() +
            "\n";
  }
  const std::string data = test::writeFile(dir.file("data/rows.jsonl"), rows);
  Json task = {{"name", "mine"},       {"file", "../data/rows.jsonl"}, {"text_field", "body"}, {"label_field", "cls"},
               {"id_field", "id"},     {"split_field", "part"},        {"max_len", 6},         {"min_freq", 1}};
  const std::string jobPath = test::writeFile(dir.file("jobs/job.json"),
                                              tinyJob(task, tinyTransformer(2), tinyTransformer(1)).dump());
  // The oracle: Python reads the same file.
  const Json expected = Json::parse(python(
      dir, "import json, collections\n"
           "rows = [json.loads(l) for l in open('" + data + "') if l.strip()]\n"
           "names = sorted({r['cls'] for r in rows})\n"
           "ev = [names.index(r['cls']) for r in rows if r['part'] != 'train']\n"
           "print(json.dumps({'train': sum(r['part'] == 'train' for r in rows), 'eval': len(ev), 'names': names,\n"
           "                  'counts': {str(k): v for k, v in collections.Counter(ev).items()}}))\n"));

  const std::string runPath = runJob(dir, jobPath);
  const H5File file(runPath, H5File::Mode::ReadOnly);
  const std::string t = layout::task("mine");
  EXPECT_EQ(file.attrStrings(t, layout::attr::kClassNames), expected["names"].get<std::vector<std::string>>());
  const Ids evalLabels = file.readInt64(layout::evalLabels("mine"));
  ASSERT_EQ(static_cast<std::int64_t>(evalLabels.size()), expected["eval"].get<std::int64_t>());
  EXPECT_EQ(static_cast<std::int64_t>(file.readInt64(layout::trainLabels("mine")).size()),
            expected["train"].get<std::int64_t>());
  for (const auto& [label, count] : classCounts(evalLabels)) {
    EXPECT_EQ(count, expected["counts"][std::to_string(label)].get<std::int64_t>()) << "class " << label;
  }
  // Provenance: the absolute path (the job said "../data/rows.jsonl"), size, format, fields.
  const std::string absolute = fs::path(data).lexically_normal().string();
  EXPECT_EQ(file.attrString(t, layout::attr::kSource), "file");
  EXPECT_EQ(file.attrString(t, layout::attr::kSourcePath), absolute);
  EXPECT_EQ(file.attrInt(t, layout::attr::kSourceBytes), static_cast<std::int64_t>(fs::file_size(data)));
  EXPECT_EQ(file.attrString(t, layout::attr::kSourceFormat), "jsonl");
  const Json fields = Json::parse(file.attrString(t, layout::attr::kSourceFields));
  EXPECT_EQ(fields["text"], "body");
  EXPECT_EQ(fields["label"], "cls");
  EXPECT_EQ(fields["id"], "id");
  EXPECT_EQ(fields["split"], "part");
  EXPECT_EQ(file.attrString(t, layout::attr::kTokenizer), "word");
  // The job recorded in the run file names the file absolutely (analysis reloads it).
  const Json job = Json::parse(file.attrString(layout::root(), layout::attr::kJob));
  EXPECT_EQ(job["tasks"][0]["file"], absolute);

  const auto [status, info] = runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + runPath + "'");
  EXPECT_EQ(status, 0) << info;
  EXPECT_NE(info.find("data:      " + absolute + " (jsonl, " + std::to_string(fs::file_size(data)) + " bytes)"),
            std::string::npos)
      << info;
  EXPECT_NE(info.find("tokenizer: word"), std::string::npos) << info;
}

TEST(TaskFileRun, SentencePairsWithWordPieceGiveHandWorkedIds) {
  const test::TempDir dir("filerun");
  test::writeFile(dir.file("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\ndog\nsat\nran\n##s\n.\n");
  // Task ids: [PAD] [UNK] [CLS] keep 0 1 2 (already first), then [SEP] 3, [MASK] 4, the 5,
  // cat 6, dog 7, sat 8, ran 9, ##s 10, . 11.
  const std::map<std::string, Ids> handWorked = {
      {"The cat sat.\nthe dog ran", {2, 5, 6, 8, 11, 3, 5, 7, 9, 3}},
      {"Cats ran\ndogs sat.", {2, 6, 10, 9, 3, 7, 10, 8, 11, 3}},
      {"the zebra\ncat", {2, 5, 1, 3, 6, 3, 0, 0, 0, 0}},
      {"dog\nthe cat sat . the dog ran", {2, 7, 3, 5, 6, 8, 11, 5, 7, 3}}, // b cut to 6 pieces
  };
  std::string tsv = "premise\thypothesis\tlabel\n";
  int i = 0;
  for (int copy = 0; copy < 10; ++copy) {
    for (const auto& [text, ids] : handWorked) {
      const auto cut = text.find('\n');
      tsv += text.substr(0, cut) + "\t" + text.substr(cut + 1) + "\t" + std::to_string(i++ % 2) + "\n";
    }
  }
  test::writeFile(dir.file("pairs.tsv"), tsv);
  Json task = {{"name", "nli"},        {"file", "pairs.tsv"},           {"text_field", "premise"},
               {"text_pair_field", "hypothesis"}, {"vocab", "vocab.txt"}, {"max_len", 10}};
  const std::string jobPath =
      test::writeFile(dir.file("job.json"), tinyJob(task, tinyTransformer(1), tinyTransformer(1)).dump());
  const std::string runPath = runJob(dir, jobPath);
  const H5File file(runPath, H5File::Mode::ReadOnly);
  const auto vocab = file.readStrings(layout::vocab("nli"));
  EXPECT_EQ(vocab.size(), 12U); // the file's 12 lines
  EXPECT_EQ(vocab[3], "[SEP]");
  const auto texts = file.readStrings(layout::evalText("nli"));
  const Ids tokens = file.readInt64(layout::evalTokens("nli"));
  ASSERT_EQ(tokens.size(), texts.size() * 10);
  ASSERT_EQ(texts.size(), 8U); // 40 rows, eval_fraction 0.2, 2 balanced classes: 4 + 4
  for (std::size_t k = 0; k < texts.size(); ++k) {
    SCOPED_TRACE(texts[k]);
    ASSERT_EQ(handWorked.count(texts[k]), 1U);
    EXPECT_EQ(Ids(tokens.begin() + static_cast<std::ptrdiff_t>(k * 10), tokens.begin() + static_cast<std::ptrdiff_t>(k * 10 + 10)),
              handWorked.at(texts[k]));
  }
  EXPECT_EQ(file.attrString(layout::task("nli"), layout::attr::kTokenizer), "wordpiece");
  EXPECT_EQ(file.attrString(layout::task("nli"), layout::attr::kTokenizerVocab), dir.file("vocab.txt"));
  EXPECT_EQ(file.attrInt(layout::task("nli"), layout::attr::kTokenizerLowerCase), 1);
}

TEST(TaskFileRun, NpyArrayBesideALabelFileRunsAnMlpJob) {
  const test::TempDir dir("filerun");
  // NumPy writes the features (two blobs) and the labels; it also computes the stratified
  // eval sizes buildTask promises: round(0.25 * n_c) per class.
  const Json expected = Json::parse(python(
      dir, "import numpy as np, json\n"
           "rng = np.random.default_rng(0)\n"
           "y = np.array([0] * 30 + [1] * 18)\n"
           "x = rng.normal(size=(48, 5)) + y[:, None] * 3.0\n"
           "np.save('" + dir.file("x.npy") + "', x.astype('<f8'))\n"
           "open('" + dir.file("y.txt") + "', 'w').write(''.join('%s\\n' % ('left', 'right')[v] for v in y))\n"
           "print(json.dumps({'eval': [int(np.floor(0.25 * 30 + 0.5)), int(np.floor(0.25 * 18 + 0.5))]}))\n"));
  Json task = {{"name", "blobs"}, {"file", "x.npy"}, {"label_file", "y.txt"}, {"eval_fraction", 0.25}};
  const Json mlp8 = {{"type", "mlp"}, {"hidden", {8}}};
  const Json mlp4 = {{"type", "mlp"}, {"hidden", {4}}};
  Json job = tinyJob(task, mlp8, mlp4);
  job.erase("recording");
  const std::string runPath = runJob(dir, test::writeFile(dir.file("job.json"), job.dump()));
  const H5File file(runPath, H5File::Mode::ReadOnly);
  const std::string t = layout::task("blobs");
  EXPECT_EQ(file.attrStrings(t, layout::attr::kClassNames), (std::vector<std::string>{"left", "right"}));
  const auto counts = classCounts(file.readInt64(layout::evalLabels("blobs")));
  EXPECT_EQ(counts.at(0), expected["eval"][0].get<std::int64_t>());
  EXPECT_EQ(counts.at(1), expected["eval"][1].get<std::int64_t>());
  EXPECT_EQ(file.attrString(t, layout::attr::kSourceFormat), "npy");
  EXPECT_EQ(file.attrString(t, layout::attr::kSourceLabelPath), dir.file("y.txt"));
  EXPECT_FALSE(file.hasAttr(t, layout::attr::kTokenizer)); // a vector task has none
}

TEST(TaskFileRun, ABadRowRefusesTheJobBeforeTraining) {
  const test::TempDir dir("filerun");
  const std::string data =
      test::writeFile(dir.file("rows.csv"), "text,label\none,a\ntwo,b\nthree,a\n\"four\",1.5\nfive,b\n");
  const Json task = {{"name", "bad"}, {"file", "rows.csv"}};
  const std::string jobPath =
      test::writeFile(dir.file("job.json"), tinyJob(task, tinyTransformer(1), tinyTransformer(1)).dump());
  const auto [status, output] =
      runCommand(std::string(KDSCOPE_EXECUTABLE) + " run '" + jobPath + "' --out '" + dir.file("out") + "'");
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("task file '" + data + "': line 5: field 'label'"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(dir.file("out/run.h5")));
  // A missing file is refused by the job reader, naming the key and the resolved path.
  const std::string missingJob = test::writeFile(
      dir.file("job2.json"), tinyJob(Json{{"name", "gone"}, {"file", "nope.csv"}}, tinyTransformer(1), tinyTransformer(1)).dump());
  const auto [status2, output2] =
      runCommand(std::string(KDSCOPE_EXECUTABLE) + " run '" + missingJob + "' --out '" + dir.file("out2") + "'");
  EXPECT_EQ(status2, 2) << output2;
  EXPECT_NE(output2.find("tasks[0].file: no such file '" + dir.file("nope.csv") + "'"), std::string::npos) << output2;
}

} // namespace
} // namespace kdscope::core
