// Task files: JSON Lines, CSV (RFC 4180 quoting) and TSV; field specs for text, pairs and
// vectors; label and split rules; errors naming file, line and field; a fixed or seeded
// split into a TaskData; a million-row file streamed with bounded memory.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/data/dataset_file.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;

TaskFileSpec textSpec(const std::string& path) {
  TaskFileSpec spec;
  spec.path = path;
  spec.textField = "text";
  return spec;
}

/// The InputError message of loading `spec`.
std::string loadError(const TaskFileSpec& spec) {
  return test::messageOf<InputError>([&] { (void)loadTaskFile(spec); });
}

TEST(DatasetFile, JsonLinesNamesSortedIdsAndLines) {
  test::TempDir dir("taskfile");
  const auto path = test::writeFile(dir.file("a.jsonl"),
                                    "{\"id\": 7, \"text\": \"good film\", \"label\": \"pos\"}\n"
                                    "{\"id\": \"b\", \"text\": \"bad film\", \"label\": \"neg\", \"x\": [1]}\r\n"
                                    "\n"
                                    "{\"label\": \"neutral\", \"text\": \"fine\", \"id\": 9}\n");
  auto spec = textSpec(path);
  spec.idField = "id";
  const TaskFile file = loadTaskFile(spec);
  // Classes sorted by name: neg 0, neutral 1, pos 2 (first-seen order would be pos, neg, ...).
  EXPECT_EQ(file.raw.classNames, (Strings{"neg", "neutral", "pos"}));
  EXPECT_EQ(file.raw.labels, (Ids{2, 0, 1}));
  EXPECT_EQ(file.raw.texts, (Strings{"good film", "bad film", "fine"}));
  EXPECT_EQ(file.ids, (Strings{"7", "b", "9"}));
  EXPECT_EQ(file.lines, (std::vector<std::size_t>{1, 2, 4})); // line 3 is blank
  EXPECT_FALSE(file.fixedSplit());
  EXPECT_TRUE(file.pairTexts.empty());
}

TEST(DatasetFile, CsvQuotingEmbeddedNewlinesIntegerLabelsAndSplitColumn) {
  test::TempDir dir("taskfile");
  const auto path = test::writeFile(dir.file("a.csv"),
                                    "text,label,split\n"
                                    "\"Hello, \"\"world\"\"\",1,train\n"
                                    "\"two\nlines\",0,eval\n"
                                    "plain,3,dev\n"
                                    "x,0,validation\n");
  auto spec = textSpec(path);
  spec.splitField = "split";
  const TaskFile file = loadTaskFile(spec);
  EXPECT_EQ(file.raw.texts, (Strings{"Hello, \"world\"", "two\nlines", "plain", "x"}));
  // Integer labels: classes 0..max, named by their index; class 2 has no example.
  EXPECT_EQ(file.raw.labels, (Ids{1, 0, 3, 0}));
  EXPECT_EQ(file.raw.classNames, (Strings{"0", "1", "2", "3"}));
  EXPECT_EQ(file.inEval, (std::vector<std::uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(file.lines, (std::vector<std::size_t>{2, 3, 5, 6})); // the quoted record spans 3-4
  // numClasses widens the class list.
  spec.numClasses = 5;
  EXPECT_EQ(loadTaskFile(spec).raw.classNames.size(), 5U);
  // LabelKind::Name: "1" is a class name; sorted as text.
  spec.numClasses = 0;
  spec.labelKind = LabelKind::Name;
  const auto named = loadTaskFile(spec);
  EXPECT_EQ(named.raw.classNames, (Strings{"0", "1", "3"}));
  EXPECT_EQ(named.raw.labels, (Ids{1, 0, 2, 0}));
}

TEST(DatasetFile, TsvPairsJoinForTheWordTokenizer) {
  test::TempDir dir("taskfile");
  const auto path = test::writeFile(dir.file("nli.tsv"),
                                    "premise\thypothesis\tlabel\n"
                                    "a man sleeps\tsomeone rests\tentailment\n"
                                    "\"quoted\" stays\tas is\tcontradiction\n");
  auto spec = textSpec(path);
  spec.textField = "premise";
  spec.textPairField = "hypothesis";
  const TaskFile file = loadTaskFile(spec);
  EXPECT_EQ(file.raw.texts, (Strings{"a man sleeps", "\"quoted\" stays"})); // TSV has no quoting
  EXPECT_EQ(file.pairTexts, (Strings{"someone rests", "as is"}));
  EXPECT_EQ(file.raw.classNames, (Strings{"contradiction", "entailment"}));
  EXPECT_EQ(file.raw.labels, (Ids{1, 0}));
}

TEST(DatasetFile, VectorColumns) {
  test::TempDir dir("taskfile");
  const auto path = test::writeFile(dir.file("v.csv"), "y,x1,x2\na,0.5,-1\nb, 2 ,1e-3\na,3,4\n");
  TaskFileSpec spec;
  spec.path = path;
  spec.labelField = "y";
  spec.featureFields = {"x2", "x1"}; // in the spec's order, not the file's
  const TaskFile file = loadTaskFile(spec);
  EXPECT_EQ(file.raw.kind, TaskKind::Vector);
  EXPECT_EQ(file.raw.dim, 2);
  EXPECT_EQ(file.raw.features, (std::vector<float>{-1.0F, 0.5F, 0.001F, 2.0F, 4.0F, 3.0F}));
  EXPECT_EQ(file.raw.labels, (Ids{0, 1, 0}));
  // JSON numbers; a string is not a number there.
  const auto json = test::writeFile(dir.file("v.jsonl"), "{\"y\": 1, \"x1\": 2, \"x2\": 0.25}\n"
                                                         "{\"y\": 0, \"x1\": \"3\", \"x2\": 1}\n");
  spec.path = json;
  const auto message = loadError(spec);
  EXPECT_NE(message.find("'" + json + "': line 2: field 'x1': must be a number, got '3'"), std::string::npos)
      << message;
}

struct BadCase {
  const char* name;
  const char* contents;
  const char* expected; ///< after "task file 'PATH': "
};

TEST(DatasetFile, BadRowsNameFileLineAndField) {
  const BadCase cases[] = {
      {"a.jsonl", "{\"text\": \"x\", \"label\": 1}\n{\"text\": \"y\"}\n", "line 2: field 'label': missing"},
      {"b.jsonl", "{\"text\": \"x\", \"label\": 1.5}\n",
       "line 1: field 'label': must be a class name or an integer, got the number 1.5"},
      {"c.csv", "text,label\nx,1\ny,2.5\n",
       "line 3: field 'label': must be a class name or an integer, got the number '2.5'"},
      {"d.jsonl", "{\"text\": 5, \"label\": \"a\"}\n", "line 1: field 'text': must be a string, got an integer"},
      {"e.jsonl", "{\"text\": \"x\", \"label\": [1]}\n",
       "line 1: field 'label': must be a class name or an integer, got a JSON array"},
      {"f.csv", "text,label\nx,a\n  ,b\n", "line 3: field 'text': is empty"},
      {"g.csv", "text,label\nx,a\n\"never closed,b\ny,a\n",
       "line 3: quoted field is never closed (the file ends inside the quotes)"},
      {"h.csv", "text,label\nx,a\ny,b,extra\n", "line 3: expected 2 fields as in the header, got 3"},
      {"i.tsv", "text\tlabel\nx\ta\nonly one\n", "line 3: expected 2 fields as in the header, got 1"},
      {"j.csv", "text,label\nab\xC3(,a\n", "line 2: field 'text': invalid UTF-8 at byte 3 of the field"},
      {"k.jsonl", "{\"text\": \"\xFF\", \"label\": 1}\n", "line 1: invalid UTF-8 at byte 11 of the line"},
      {"l.csv", "text,label\nx,1\ny,1\nz,pos\n",
       "line 4: field 'label': is a name but the first label"},
      {"m.csv", "body,label\nx,1\n", "line 1: field 'text': no such column in the header (columns: body, label)"},
      {"n.jsonl", "{\"text\": \"x\", \"label\": 1}\nnot json\n", "line 2: not valid JSON"},
      {"o.csv", "text,label\n\"a\"b,1\n", "line 2: unexpected text after a closing quote"},
      {"p.csv", "text,label\nx,-1\n", "line 2: field 'label': class index -1 is negative"},
  };
  test::TempDir dir("taskfile");
  for (const auto& c : cases) {
    const auto path = test::writeFile(dir.file(c.name), c.contents);
    const auto message = loadError(textSpec(path));
    EXPECT_NE(message.find("task file '" + path + "': " + c.expected), std::string::npos)
        << c.name << ": " << message;
  }
}

TEST(DatasetFile, SplitAndClassCountErrors) {
  test::TempDir dir("taskfile");
  const auto path = test::writeFile(dir.file("s.csv"), "text,label,split\nx,0,train\ny,2,training\n");
  auto spec = textSpec(path);
  spec.splitField = "split";
  auto message = loadError(spec);
  EXPECT_NE(message.find("line 3: field 'split': unknown split 'training'"), std::string::npos) << message;
  spec.splitField.clear();
  spec.numClasses = 2;
  message = loadError(spec);
  EXPECT_NE(message.find("line 3: field 'label': class index 2 is out of range 0..1 (numClasses 2)"),
            std::string::npos)
      << message;
  // Spec errors.
  spec.numClasses = 0;
  spec.featureFields = {"x"};
  EXPECT_NE(loadError(spec).find("not both"), std::string::npos);
  spec.featureFields.clear();
  spec.idField = "text";
  EXPECT_NE(loadError(spec).find("field 'text' is given for two roles"), std::string::npos);
  spec.idField.clear();
  spec.path = dir.file("s.txt");
  test::writeFile(spec.path, "x");
  EXPECT_NE(loadError(spec).find("cannot tell the format from the extension 'txt'"), std::string::npos);
}

TEST(DatasetFile, SplitFilesGiveTheirOwnSplitAndTrainOnlyVocabulary) {
  test::TempDir dir("taskfile");
  auto spec = textSpec(test::writeFile(dir.file("train.csv"),
                                       "text,label\ngood good,pos\nbad bad,neg\ngood film,pos\nbad film,neg\n"));
  spec.evalPath = test::writeFile(dir.file("eval.jsonl"), "{\"text\": \"good unseen\", \"label\": \"pos\"}\n"
                                                          "{\"text\": \"bad\", \"label\": \"neg\"}\n");
  const TaskFile file = loadTaskFile(spec);
  EXPECT_EQ(file.inEval, (std::vector<std::uint8_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(file.raw.classNames, (Strings{"neg", "pos"}));
  TaskSpec task;
  task.name = "mine";
  task.maxLen = 4;
  task.minFreq = 1;
  const TaskData data = buildTaskFromFile(task, file, 3);
  ASSERT_EQ(data.train.size(), 4U);
  ASSERT_EQ(data.eval.size(), 2U);
  // Train words: good 3, bad 3, film 2 -> ids by frequency then alphabet: bad 3, good 4, film 5.
  EXPECT_EQ(data.vocab, (Strings{"[PAD]", "[UNK]", "[CLS]", "bad", "good", "film"}));
  // Eval rows in a seeded order; "unseen" is not in the train vocabulary -> [UNK] 1.
  for (std::size_t e = 0; e < 2; ++e) {
    const Ids row(data.eval.tokens.begin() + static_cast<std::ptrdiff_t>(4 * e),
                  data.eval.tokens.begin() + static_cast<std::ptrdiff_t>(4 * e + 4));
    if (data.eval.texts[e] == "good unseen") {
      EXPECT_EQ(row, (Ids{2, 4, 1, 0}));
      EXPECT_EQ(data.eval.labels[e], 1);
    } else {
      EXPECT_EQ(row, (Ids{2, 3, 0, 0}));
      EXPECT_EQ(data.eval.labels[e], 0);
    }
  }
}

TEST(DatasetFile, WithoutASplitTheSeededStratifiedSplitApplies) {
  test::TempDir dir("taskfile");
  std::string rows = "text,label\n";
  for (int i = 0; i < 10; ++i) {
    rows += "w" + std::to_string(i) + (i % 2 == 0 ? ",even\n" : ",odd\n");
  }
  const TaskFile file = loadTaskFile(textSpec(test::writeFile(dir.file("t.csv"), rows)));
  TaskSpec task;
  task.name = "mine";
  task.evalFraction = 0.2;
  task.minFreq = 1;
  // 5 per class, round(0.2 * 5) = 1 each to eval: 2 eval, 8 train, one of each class.
  const TaskData data = buildTaskFromFile(task, file, 11);
  ASSERT_EQ(data.eval.size(), 2U);
  EXPECT_EQ(data.train.size(), 8U);
  EXPECT_NE(data.eval.labels[0], data.eval.labels[1]);
  // Deterministic in the seed.
  EXPECT_EQ(buildTaskFromFile(task, file, 11).eval.texts, data.eval.texts);
}

/// Resets the peak resident set (VmHWM) to the current one; false where the kernel cannot.
bool resetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

/// A /proc/self/status value in bytes ("VmHWM", "VmRSS").
long long statusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      return std::stoll(line.substr(key.size() + 1)) * 1024;
    }
  }
  return -1;
}

/// Heap bytes that the kept data occupies (vector capacities; long strings' buffers).
long long keptBytes(const TaskFile& file) {
  long long bytes = static_cast<long long>(file.raw.labels.capacity() * sizeof(std::int64_t) +
                                           file.raw.features.capacity() * sizeof(float) +
                                           file.lines.capacity() * sizeof(std::size_t) +
                                           file.raw.texts.capacity() * sizeof(std::string));
  for (const auto& text : file.raw.texts) {
    if (text.capacity() > 15) { // libstdc++ keeps up to 15 characters inside the string
      bytes += static_cast<long long>(text.capacity() + 1);
    }
  }
  return bytes;
}

constexpr int kMillion = 1000000;

/// Writes `rows` rows made by `row(i)` after `header`; returns the file's size.
template <typename RowFn> long long writeRows(const std::string& path, const std::string& header, RowFn row) {
  std::ofstream out(path, std::ios::binary);
  std::string chunk = header;
  for (int i = 0; i < kMillion; ++i) {
    chunk += row(i);
    if (chunk.size() > (1U << 20U)) {
      out << chunk;
      chunk.clear();
    }
  }
  out << chunk;
  out.flush();
  return static_cast<long long>(out.tellp());
}

/// Loads `spec`, requiring peak RSS growth <= kept bytes + 16 MiB (kept counts the vectors'
/// whole capacities, which cover the pages touched while they double; 16 MiB covers the
/// reader's buffers and the old buffer of the last doubling). Holding the file's bytes would
/// break it: both files are over 30 MB, more than the 16 MiB slack plus what was measured
/// under the capacity (text 51.7 of 48 + 16 MiB, vector 9.6 of 20 + 16 MiB).
TaskFile loadMeasured(const TaskFileSpec& spec, long long fileBytes) {
  const bool reset = resetPeakRss();
  const long long before = reset ? statusBytes("VmRSS") : statusBytes("VmHWM");
  const auto start = std::chrono::steady_clock::now();
  TaskFile file = loadTaskFile(spec);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long long growth = statusBytes("VmHWM") - before;
  const long long kept = keptBytes(file);
  std::cout << "[ measured ] " << spec.path << ": " << fileBytes / 1000000.0 << " MB, " << seconds
            << " s, peak RSS growth " << growth / 1048576.0 << " MiB, kept " << kept / 1048576.0 << " MiB"
            << (reset ? "" : " (VmHWM could not be reset)") << "\n";
  EXPECT_TRUE(reset) << "could not reset VmHWM via /proc/self/clear_refs";
  EXPECT_LE(growth, kept + (16LL << 20U));
  return file;
}

TEST(DatasetFile, MillionTextRowsStreamWithBoundedMemory) {
  test::TempDir dir("taskfile_big");
  const auto path = dir.file("big.csv");
  // ~33 bytes a row, of which only the short text and the label are kept.
  const long long size = writeRows(path, "text,label,note\n", [](int i) {
    return "w" + std::to_string(i % 1000) + " w" + std::to_string(i % 7) + (i % 3 == 0 ? ",pos" : ",neg") +
           ",unused-padding-xyz\n";
  });
  const TaskFile file = loadMeasured(textSpec(path), size);
  ASSERT_EQ(file.raw.labels.size(), static_cast<std::size_t>(kMillion));
  EXPECT_EQ(file.raw.classNames, (Strings{"neg", "pos"}));
  // Row 999,999 (0-based) is on line 1,000,001: 999999 % 1000 = 999, 999999 = 7 x 142857 so
  // % 7 = 0 -> "w999 w0"; 999999 = 3 x 333333 -> pos.
  EXPECT_EQ(file.raw.texts.back(), "w999 w0");
  EXPECT_EQ(file.raw.labels.back(), 1);
  EXPECT_EQ(file.lines.back(), 1000001U);
}

TEST(DatasetFile, MillionVectorRowsStreamWithBoundedMemory) {
  test::TempDir dir("taskfile_big");
  const auto path = dir.file("big.csv");
  // ~40 bytes a row; kept: one float, the label and the line (20 bytes).
  const long long size = writeRows(path, "x,y,note\n", [](int i) {
    return std::to_string(i % 100) + ".25," + (i % 2 == 0 ? "a" : "b") + ",padding-not-kept-0123456789ab\n";
  });
  TaskFileSpec spec;
  spec.path = path;
  spec.labelField = "y";
  spec.featureFields = {"x"};
  const TaskFile file = loadMeasured(spec, size);
  ASSERT_EQ(file.raw.features.size(), static_cast<std::size_t>(kMillion));
  EXPECT_EQ(file.raw.features[123457], 57.25F); // 123457 % 100 = 57
  EXPECT_EQ(file.raw.labels[123457], 1);        // odd -> "b"
}

TEST(DatasetFile, BadRowNearTheEndOfAMillionIsReportedByLine) {
  test::TempDir dir("taskfile_big");
  const auto path = dir.file("big.jsonl");
  // Line n holds row n - 1; line 999,999 has a float label.
  writeRows(path, "", [](int i) {
    return i == 999998 ? std::string("{\"text\": \"w\", \"label\": 0.5}\n")
                       : "{\"text\": \"w" + std::to_string(i % 50) + "\", \"label\": " + std::to_string(i % 2) + "}\n";
  });
  const auto message = loadError(textSpec(path));
  EXPECT_NE(message.find("task file '" + path + "': line 999999: field 'label': must be a class name or an integer"),
            std::string::npos)
      << message;
}

} // namespace
} // namespace kdscope::core
