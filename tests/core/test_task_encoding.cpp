// Text tasks tokenized with WordPiece from a job's `vocab` (buildTask, core/data/dataset.cpp),
// checked against hand-worked ids; and vector tasks from .npy / .h5 arrays beside a label
// file (core/data/feature_array.h), written by NumPy and h5py so that the reader is checked
// against an independent writer.

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/core/test_support.h"
#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/data/feature_array.h"
#include "core/data/task_source.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with numpy and h5py (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core {
namespace {

using Ids = std::vector<std::int64_t>;
using Strings = std::vector<std::string>;

// A BERT-style vocabulary with the special tokens not at KDScope's ids: [UNK] on line 3,
// [CLS] on line 4, an [unused0] before them.
const char* const kVocab = "[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\nthe\ncat\nsat\nun\n##aff\n##able\ndog\n.\n";
// KDScope's order: [PAD] [UNK] [CLS] = 0 1 2, then the others in the file's order.
const Strings kTaskVocab = {"[PAD]", "[UNK]", "[CLS]", "[unused0]", "[SEP]", "the", "cat",
                            "sat",   "un",    "##aff", "##able",    "dog",   "."};

/// The token row of the example whose display text is `text`, in either split.
Ids rowOf(const TaskData& data, const std::string& text) {
  for (const Split* split : {&data.train, &data.eval}) {
    const auto it = std::find(split->texts.begin(), split->texts.end(), text);
    if (it != split->texts.end()) {
      const auto i = static_cast<std::size_t>(it - split->texts.begin());
      const auto len = static_cast<std::size_t>(data.seqLen);
      return Ids(split->tokens.begin() + static_cast<std::ptrdiff_t>(i * len),
                 split->tokens.begin() + static_cast<std::ptrdiff_t>((i + 1) * len));
    }
  }
  ADD_FAILURE() << "no example '" << text << "'";
  return {};
}

TEST(TaskWordPiece, SingleTextsGetHandWorkedIds) {
  const test::TempDir dir("wp");
  test::writeFile(dir.file("vocab.txt"), kVocab);
  test::writeFile(dir.file("d.jsonl"),
                  "{\"text\": \"The cat sat.\", \"label\": \"a\", \"split\": \"train\"}\n"
                  "{\"text\": \"Unaffable dog\", \"label\": \"b\", \"split\": \"train\"}\n"
                  "{\"text\": \"\\u00dcnaffable zebra\", \"label\": \"a\", \"split\": \"dev\"}\n"
                  "{\"text\": \"the the the the the the the the the\", \"label\": \"b\", \"split\": \"dev\"}\n");
  TaskSpec task;
  task.name = "wp";
  task.file = dir.file("d.jsonl");
  task.splitField = "split";
  task.vocab = dir.file("vocab.txt");
  task.maxLen = 8;
  task.vocabSize = 4; // ignored: the vocabulary is the file's
  const TaskData data = loadTask(task, "", 1);
  EXPECT_EQ(data.vocab, kTaskVocab);
  EXPECT_EQ(data.seqLen, 8);
  // [CLS] the cat sat . [SEP] [PAD] [PAD]
  EXPECT_EQ(rowOf(data, "The cat sat."), (Ids{2, 5, 6, 7, 12, 4, 0, 0}));
  // [CLS] un ##aff ##able dog [SEP]: greedy longest match first.
  EXPECT_EQ(rowOf(data, "Unaffable dog"), (Ids{2, 8, 9, 10, 11, 4, 0, 0}));
  // Lower-cased and accent-stripped (Ü -> u); "zebra" has no pieces: [UNK] = 1.
  EXPECT_EQ(rowOf(data, "\xC3\x9cnaffable zebra"), (Ids{2, 8, 9, 10, 1, 4, 0, 0}));
  // Cut to 8 with [SEP] kept last.
  EXPECT_EQ(rowOf(data, "the the the the the the the the the"), (Ids{2, 5, 5, 5, 5, 5, 5, 4}));

  // Cased: "The" and "Unaffable" are no longer in the vocabulary; "Ü..." keeps its accent.
  TaskSpec cased = task;
  cased.lowerCase = false;
  const TaskData c = loadTask(cased, "", 1);
  EXPECT_EQ(rowOf(c, "The cat sat."), (Ids{2, 1, 6, 7, 12, 4, 0, 0}));
  EXPECT_EQ(rowOf(c, "Unaffable dog"), (Ids{2, 1, 11, 4, 0, 0, 0, 0}));
}

TEST(TaskWordPiece, SentencePairsAreClsASepBSep) {
  const test::TempDir dir("wp");
  test::writeFile(dir.file("vocab.txt"), kVocab);
  test::writeFile(dir.file("p.tsv"),
                  "a\tb\tlabel\n"
                  "the cat\tdog sat\tyes\n"
                  "the cat sat\tdog\tno\n"
                  "cat\tthe dog\tyes\n"
                  "dog\tcat\tno\n");
  TaskSpec task;
  task.name = "pairs";
  task.file = dir.file("p.tsv");
  task.textField = "a";
  task.textPairField = "b";
  task.maxLen = 6;
  task.evalFraction = 0.5;
  const TaskData data = loadTask(task, "", 2);
  EXPECT_EQ(data.train.size() + data.eval.size(), 4U);
  // Display texts join the pair with a line break.
  // 7 pieces > 6: the longer side (a) loses its last piece: [CLS] the cat [SEP] dog [SEP].
  task.vocab = dir.file("vocab.txt");
  const TaskData wp = loadTask(task, "", 2);
  EXPECT_EQ(rowOf(wp, "the cat sat\ndog"), (Ids{2, 5, 6, 4, 11, 4}));
  // Fits: [CLS] the cat [SEP] dog sat [SEP] needs 7 > 6, a tie (2 and 2): b loses "sat".
  EXPECT_EQ(rowOf(wp, "the cat\ndog sat"), (Ids{2, 5, 6, 4, 11, 4}));
  EXPECT_EQ(rowOf(wp, "dog\ncat"), (Ids{2, 11, 4, 6, 4, 0}));
  // The word tokenizer reads the joined text: the same examples, other ids.
  EXPECT_EQ(data.vocab[0], "[PAD]");
  EXPECT_EQ(std::count(data.vocab.begin(), data.vocab.end(), "[SEP]"), 0);
}

TEST(TaskWordPiece, AMissingOrBadVocabularyIsNamed) {
  const test::TempDir dir("wp");
  test::writeFile(dir.file("d.csv"), "text,label\na,x\nb,y\nc,x\nd,y\n");
  test::writeFile(dir.file("bad.txt"), "[PAD]\n[UNK]\nthe\n");
  TaskSpec task;
  task.name = "t";
  task.file = dir.file("d.csv");
  task.vocab = dir.file("bad.txt");
  const std::string message = test::messageOf<InputError>([&] { (void)loadTask(task, "", 1); });
  EXPECT_NE(message.find(dir.file("bad.txt")), std::string::npos) << message;
  EXPECT_NE(message.find("[CLS]"), std::string::npos) << message;
}

// ---- feature arrays -------------------------------------------------------------------------------

/// Runs a Python snippet with the project's Python (numpy, h5py); fails the test on error.
void python(const std::string& code) {
  const std::string script = "/tmp/kdscope_feature_array_" + std::to_string(::getpid()) + ".py";
  test::writeFile(script, code);
  const int status = std::system((std::string(KDSCOPE_PYTHON) + " " + script).c_str());
  std::remove(script.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << code;
}

TEST(FeatureArray, NpyFloat32AndFloat64FromNumPy) {
  const test::TempDir dir("npy");
  // a[i, j] = i * 0.5 + j / 4 (exact in float32 for these sizes); 7 rows, 3 columns.
  python("import numpy as np\n"
         "a = np.fromfunction(lambda i, j: i * 0.5 + j / 4.0, (7, 3))\n"
         "np.save('" + dir.file("f4.npy") + "', a.astype('<f4'))\n"
         "np.save('" + dir.file("f8.npy") + "', a.astype('<f8'))\n"
         "np.save('" + dir.file("i8.npy") + "', np.arange(6).reshape(2, 3))\n"
         "np.save('" + dir.file("fortran.npy") + "', np.asfortranarray(a.astype('<f4')))\n"
         "np.save('" + dir.file("three.npy") + "', np.zeros((2, 2, 2), '<f4'))\n"
         "np.save('" + dir.file("big.npy") + "', a.astype('>f4'))\n");
  test::writeFile(dir.file("labels.txt"), "b\na\nb\nb\na\nc\nb\n\n");
  for (const char* name : {"f4.npy", "f8.npy"}) {
    SCOPED_TRACE(name);
    FeatureArraySpec spec;
    spec.path = dir.file(name);
    spec.labelPath = dir.file("labels.txt");
    const RawDataset raw = loadFeatureArray(spec);
    EXPECT_EQ(raw.kind, TaskKind::Vector);
    ASSERT_EQ(raw.dim, 3);
    ASSERT_EQ(raw.features.size(), 21U);
    for (int i = 0; i < 7; ++i) {
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(raw.features[static_cast<std::size_t>(i * 3 + j)], static_cast<float>(i * 0.5 + j / 4.0));
      }
    }
    EXPECT_EQ(raw.classNames, (Strings{"a", "b", "c"}));
    EXPECT_EQ(raw.labels, (Ids{1, 0, 1, 1, 0, 2, 1}));
  }
  const auto error = [&](const std::string& file) {
    FeatureArraySpec spec;
    spec.path = dir.file(file);
    spec.labelPath = dir.file("labels.txt");
    return test::messageOf<InputError>([&] { (void)loadFeatureArray(spec); });
  };
  EXPECT_NE(error("i8.npy").find("feature array '" + dir.file("i8.npy") + "': dtype '<i8' is not supported"),
            std::string::npos);
  EXPECT_NE(error("fortran.npy").find("Fortran order"), std::string::npos);
  EXPECT_NE(error("three.npy").find("3 dimensions"), std::string::npos);
  EXPECT_NE(error("big.npy").find("dtype '>f4'"), std::string::npos);
  test::writeFile(dir.file("not.npy"), "hello");
  EXPECT_NE(error("not.npy").find("not an .npy file"), std::string::npos);
  // Cut short: the header promises 7 x 3 x 4 bytes.
  {
    std::ifstream in(dir.file("f4.npy"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    test::writeFile(dir.file("cut.npy"), bytes.substr(0, bytes.size() - 4));
  }
  EXPECT_NE(error("cut.npy").find("(truncated?)"), std::string::npos) << error("cut.npy");
}

TEST(FeatureArray, H5DatasetAndCsvLabelColumnAndRowCountMismatch) {
  const test::TempDir dir("h5arr");
  python("import h5py, numpy as np\n"
         "with h5py.File('" + dir.file("x.h5") + "', 'w') as f:\n"
         "    f['group/feats'] = np.arange(10, dtype='<f8').reshape(5, 2) / 8.0\n"
         "    f['ints'] = np.arange(10).reshape(5, 2)\n");
  test::writeFile(dir.file("y.csv"), "id,cls\n1,3\n2,0\n3,\"1\"\n4,3\n5,0\n");
  FeatureArraySpec spec;
  spec.path = dir.file("x.h5");
  spec.h5Dataset = "group/feats";
  spec.labelPath = dir.file("y.csv");
  spec.labelColumn = "cls";
  const RawDataset raw = loadFeatureArray(spec);
  ASSERT_EQ(raw.dim, 2);
  for (std::size_t k = 0; k < 10; ++k) {
    EXPECT_EQ(raw.features[k], static_cast<float>(k) / 8.0F);
  }
  // Integer labels: classes 0..3 (the largest + 1).
  EXPECT_EQ(raw.labels, (Ids{3, 0, 1, 3, 0}));
  EXPECT_EQ(raw.classNames, (Strings{"0", "1", "2", "3"}));

  const auto error = [&](FeatureArraySpec s) { return test::messageOf<InputError>([&] { (void)loadFeatureArray(s); }); };
  FeatureArraySpec ints = spec;
  ints.h5Dataset = "/ints";
  EXPECT_NE(error(ints).find("dataset '/ints' holds int64, not floats"), std::string::npos) << error(ints);
  FeatureArraySpec missing = spec;
  missing.h5Dataset = "/nope";
  EXPECT_NE(error(missing).find("no dataset '/nope'"), std::string::npos) << error(missing);
  FeatureArraySpec column = spec;
  column.labelColumn = "label";
  EXPECT_NE(error(column).find("label file '" + dir.file("y.csv") + "': line 1: field 'label': no such column"),
            std::string::npos)
      << error(column);
  // 4 labels for 5 rows.
  test::writeFile(dir.file("four.txt"), "0\n1\n0\n1\n");
  FeatureArraySpec four = spec;
  four.labelPath = dir.file("four.txt");
  four.labelColumn.clear();
  EXPECT_NE(error(four).find("feature array '" + dir.file("x.h5") + "' has 5 rows but label file '" +
                             dir.file("four.txt") + "' has 4 labels"),
            std::string::npos)
      << error(four);
  // A blank line inside the labels, and a bound on integer labels.
  test::writeFile(dir.file("gap.txt"), "0\n1\n\n1\n0\n");
  FeatureArraySpec gap = four;
  gap.labelPath = dir.file("gap.txt");
  EXPECT_NE(error(gap).find("line 3: empty label"), std::string::npos) << error(gap);
  FeatureArraySpec bounded = spec;
  bounded.numClasses = 3;
  EXPECT_NE(error(bounded).find("line 2: field 'cls': class index 3 is outside 0..2"), std::string::npos)
      << error(bounded);
}

TEST(FeatureArray, ProgressAfterEachBlockAndCancelStopTheRead) {
  const test::TempDir dir("npycancel");
  // 40,000 rows x 8 features: blocks of 65,536 values are 8,192 rows, so 5 blocks.
  python("import numpy as np, h5py\n"
         "a = np.arange(320000, dtype='<f4').reshape(40000, 8)\n"
         "np.save('" + dir.file("x.npy") + "', a)\n"
         "with h5py.File('" + dir.file("x.h5") + "', 'w') as f:\n"
         "    f['x'] = a\n");
  std::string labels;
  for (int i = 0; i < 40000; ++i) {
    labels += i % 2 == 0 ? "a\n" : "b\n";
  }
  test::writeFile(dir.file("y.txt"), labels);
  for (const std::string& dataset : {std::string(), std::string("x")}) {
    SCOPED_TRACE(dataset.empty() ? "npy" : "h5");
    FeatureArraySpec spec;
    spec.path = dir.file(dataset.empty() ? "x.npy" : "x.h5");
    spec.h5Dataset = dataset;
    spec.labelPath = dir.file("y.txt");
    // Progress every 10,000 rows: reported at the first block past each 10,000, and at the end.
    std::vector<std::size_t> seen;
    TaskReadControl control;
    control.rowsPerCheck = 10000;
    control.progress = [&](std::size_t rows, const std::string& path) {
      EXPECT_EQ(path, spec.path);
      seen.push_back(rows);
    };
    const RawDataset raw = loadFeatureArray(spec, control);
    EXPECT_EQ(raw.features.size(), 320000U);
    EXPECT_EQ(seen, (std::vector<std::size_t>{16384, 32768, 40000}));
    // Cancelled at the first report: the read stops there (Cancelled), not at the end.
    const CancelToken cancel;
    std::vector<std::size_t> before;
    TaskReadControl stopping;
    stopping.cancel = &cancel;
    stopping.rowsPerCheck = 1;
    stopping.progress = [&](std::size_t rows, const std::string&) {
      before.push_back(rows);
      cancel.cancel();
    };
    EXPECT_THROW((void)loadFeatureArray(spec, stopping), Cancelled);
    EXPECT_EQ(before, (std::vector<std::size_t>{8192}));
  }
}

TEST(FeatureArray, ArrayTaskThroughLoadTaskIsSplitBySeed) {
  const test::TempDir dir("npytask");
  python("import numpy as np\n"
         "np.save('" + dir.file("x.npy") + "', np.arange(40, dtype='<f4').reshape(20, 2))\n");
  std::string labels;
  for (int i = 0; i < 20; ++i) {
    labels += i % 4 == 0 ? "rare\n" : "common\n"; // 5 rare, 15 common
  }
  test::writeFile(dir.file("y.txt"), labels);
  TaskSpec task;
  task.name = "arr";
  task.file = dir.file("x.npy");
  task.labelFile = dir.file("y.txt");
  task.evalFraction = 0.2;
  const TaskData data = loadTask(task, "", 5);
  EXPECT_EQ(data.kind, TaskKind::Vector);
  EXPECT_EQ(data.dim, 2);
  EXPECT_EQ(data.classNames, (Strings{"common", "rare"}));
  // Stratified: round(0.2 * 15) = 3 common and round(0.2 * 5) = 1 rare in eval.
  ASSERT_EQ(data.eval.size(), 4U);
  EXPECT_EQ(std::count(data.eval.labels.begin(), data.eval.labels.end(), 1), 1);
  // Each row keeps its features: row r is (2r, 2r + 1).
  for (std::size_t i = 0; i < data.eval.size(); ++i) {
    const auto r = static_cast<float>(data.eval.sourceIndex[i]);
    EXPECT_EQ(data.eval.features[2 * i], 2 * r);
    EXPECT_EQ(data.eval.features[2 * i + 1], 2 * r + 1);
    EXPECT_EQ(data.eval.labels[i], data.eval.sourceIndex[i] % 4 == 0 ? 1 : 0);
  }
}

} // namespace
} // namespace kdscope::core
