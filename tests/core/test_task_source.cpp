// Tasks read from the user's own files, as job fields (core/data/task_source.h,
// core/job/job_fields.cpp, core/job/job_validation.cpp): every field read and written back,
// the rules between them, paths relative to the job file's folder, the pre-flight check of
// every row, and the task loaded through loadTask with split and class counts worked out by
// hand from the files written here.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <tuple>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/core/test_support.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/data/task_source.h"
#include "core/job/job_spec.h"

namespace kdscope::core {
namespace {

using Json = nlohmann::json;
using Strings = std::vector<std::string>;

std::string describe(const std::vector<JobIssue>& issues) {
  std::string out;
  for (const JobIssue& issue : issues) {
    out += "\n  " + issue.str();
  }
  return out.empty() ? "(no issues)" : out;
}

/// A small valid text job with `task` as its only task.
Json jobWith(const Json& task) {
  return Json{{"name", "own"},
              {"tasks", Json::array({task})},
              {"teacher", {{"architecture", {{"layers", 1}, {"heads", 1}, {"width", 8}, {"ffn", 16}}}}},
              {"students", Json::array({Json{{"name", "s"}, {"architecture", {{"layers", 1}, {"heads", 1}, {"width", 8}, {"ffn", 16}}}}})}};
}

bool hasIssue(const JobParseResult& parsed, const std::string& path, const std::string& fragment) {
  return std::any_of(parsed.issues.begin(), parsed.issues.end(), [&](const JobIssue& issue) {
    return issue.path == path && issue.message.find(fragment) != std::string::npos;
  });
}

TEST(TaskJobFields, EveryFileFieldIsReadAndWrittenBack) {
  const Json task = {{"name", "nli"},          {"file", "data/train.csv"},  {"eval_file", "data/dev.tsv"},
                     {"format", "csv"},        {"text_field", "premise"},   {"text_pair_field", "hypothesis"},
                     {"label_field", "gold"},  {"id_field", "pair_id"},     {"label_kind", "name"},
                     {"num_classes", 3},       {"vocab", "bert/vocab.txt"}, {"lower_case", false},
                     {"max_len", 24}};
  const JobParseResult parsed = parseJob(jobWith(task).dump());
  ASSERT_TRUE(parsed.job) << describe(parsed.issues);
  const TaskSpec& t = parsed.job->tasks.at(0);
  EXPECT_TRUE(t.fromFile());
  EXPECT_EQ(t.name, "nli");
  EXPECT_EQ(t.file, "data/train.csv");
  EXPECT_EQ(t.evalFile, "data/dev.tsv");
  EXPECT_EQ(t.format, "csv");
  EXPECT_EQ(t.textField, "premise");
  EXPECT_EQ(t.textPairField, "hypothesis");
  EXPECT_EQ(t.labelField, "gold");
  EXPECT_EQ(t.idField, "pair_id");
  EXPECT_EQ(t.labelKind, "name");
  EXPECT_EQ(t.numClasses, 3);
  EXPECT_EQ(t.vocab, "bert/vocab.txt");
  EXPECT_FALSE(t.lowerCase);
  EXPECT_EQ(t.maxLen, 24);
  // Written back under the same keys, and read again to the same normalised job.
  const Json written = Json::parse(parsed.normalizedJson).at("tasks").at(0);
  for (const auto& [key, value] : task.items()) {
    EXPECT_EQ(written.at(key), value) << key;
  }
  const JobParseResult again = parseJob(parsed.normalizedJson);
  ASSERT_TRUE(again.job) << describe(again.issues);
  EXPECT_EQ(again.normalizedJson, parsed.normalizedJson);

  // The TaskFileSpec the loader gets.
  const TaskFileSpec spec = taskFileSpec(t);
  EXPECT_EQ(spec.path, "data/train.csv");
  EXPECT_EQ(spec.evalPath, "data/dev.tsv");
  EXPECT_EQ(spec.format, TaskFileFormat::Csv);
  EXPECT_EQ(spec.textField, "premise");
  EXPECT_EQ(spec.textPairField, "hypothesis");
  EXPECT_EQ(spec.labelField, "gold");
  EXPECT_EQ(spec.idField, "pair_id");
  EXPECT_EQ(spec.labelKind, LabelKind::Name);
  EXPECT_EQ(spec.numClasses, 3);

  // Vector columns and arrays.
  const JobParseResult columns = parseJob(
      Json{{"name", "v"},
           {"tasks", Json::array({Json{{"name", "pts"}, {"file", "p.jsonl"}, {"feature_fields", {"x", "y"}},
                                       {"split_field", "part"}, {"label_kind", "integer"}}})},
           {"teacher", {{"architecture", {{"type", "mlp"}, {"hidden", {8}}}}}},
           {"students", Json::array({Json{{"name", "s"}, {"architecture", {{"type", "mlp"}, {"hidden", {4}}}}}})}}
          .dump());
  ASSERT_TRUE(columns.job) << describe(columns.issues);
  EXPECT_EQ(columns.job->tasks[0].featureFields, (Strings{"x", "y"}));
  const TaskFileSpec vspec = taskFileSpec(columns.job->tasks[0]);
  EXPECT_TRUE(vspec.textField.empty()); // the default "text" does not apply to a vector task
  EXPECT_EQ(vspec.featureFields, (Strings{"x", "y"}));
  EXPECT_EQ(vspec.splitField, "part");
  EXPECT_EQ(vspec.labelKind, LabelKind::Integer);
  EXPECT_EQ(Json::parse(columns.normalizedJson)["tasks"][0]["feature_fields"], Json({"x", "y"}));

  const JobParseResult array = parseJob(
      Json{{"name", "a"},
           {"tasks", Json::array({Json{{"name", "emb"}, {"file", "x.h5"}, {"h5_dataset", "/features"},
                                       {"label_file", "y.csv"}, {"label_column", "cls"}}})},
           {"teacher", {{"architecture", {{"type", "mlp"}, {"hidden", {8}}}}}},
           {"students", Json::array({Json{{"name", "s"}, {"architecture", {{"type", "mlp"}, {"hidden", {4}}}}}})}}
          .dump());
  ASSERT_TRUE(array.job) << describe(array.issues);
  EXPECT_EQ(array.job->tasks[0].h5Dataset, "/features");
  EXPECT_EQ(array.job->tasks[0].labelFile, "y.csv");
  EXPECT_EQ(array.job->tasks[0].labelColumn, "cls");
  EXPECT_EQ(taskFileFormat(array.job->tasks[0]), "h5");
}

TEST(TaskJobFields, RulesBetweenTheFileFields) {
  const auto parse = [](const Json& task) { return parseJob(jobWith(task).dump()); };
  // The format comes from the extension, or must be given.
  auto p = parse({{"name", "t"}, {"file", "data.txt"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].file", "cannot tell the format of 'data.txt'")) << describe(p.issues);
  EXPECT_TRUE(parse({{"name", "t"}, {"file", "data.txt"}, {"format", "tsv"}}).job);
  // A file task's name becomes a run-file group.
  p = parse({{"name", "my task"}, {"file", "a.csv"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].name", "letters, digits")) << describe(p.issues);
  // Any other name is accepted (a file task is not one of the built-in names).
  EXPECT_TRUE(parse({{"name", "my-task_2"}, {"file", "a.csv"}}).job);
  // Text field and feature columns, split column and eval file: one of each.
  p = parse({{"name", "t"}, {"file", "a.csv"}, {"text_field", "s"}, {"feature_fields", {"x"}}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].text_field", "not both")) << describe(p.issues);
  p = parse({{"name", "t"}, {"file", "a.csv"}, {"eval_file", "b.csv"}, {"split_field", "split"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].split_field", "not both")) << describe(p.issues);
  // Array fields apply to arrays, row fields to rows.
  p = parse({{"name", "t"}, {"file", "a.csv"}, {"label_file", "y.txt"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].label_file", "applies to .npy / .h5 arrays only")) << describe(p.issues);
  p = parse({{"name", "t"}, {"file", "x.npy"}, {"text_field", "s"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].text_field", "does not apply to an .npy array")) << describe(p.issues);
  EXPECT_TRUE(hasIssue(p, "tasks[0].label_file", "needs a label file")) << describe(p.issues);
  p = parse({{"name", "t"}, {"file", "x.h5"}, {"label_file", "y.txt"}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].h5_dataset", "needs the name of the dataset")) << describe(p.issues);
  // An array is a vector task: the job's transformer does not fit it.
  p = parse({{"name", "t"}, {"file", "x.npy"}, {"label_file", "y.txt"}});
  EXPECT_TRUE(hasIssue(p, "teacher.architecture.type", "vector tasks (t) need an 'mlp'")) << describe(p.issues);
  // Bounds of the table: an empty label field, an unknown format, a negative class count.
  p = parse({{"name", "t"}, {"file", "a.csv"}, {"label_field", ""}, {"format", "xml"}, {"num_classes", -1}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].label_field", "must not be empty")) << describe(p.issues);
  EXPECT_TRUE(hasIssue(p, "tasks[0].format", "must be 'auto', 'jsonl', 'csv', 'tsv', 'npy' or 'h5', got 'xml'"))
      << describe(p.issues);
  EXPECT_TRUE(hasIssue(p, "tasks[0].num_classes", "must be")) << describe(p.issues);
  p = parse({{"name", "t"}, {"file", "a.csv"}, {"feature_fields", {"x", 3}}});
  EXPECT_TRUE(hasIssue(p, "tasks[0].feature_fields[1]", "must be a string")) << describe(p.issues);
  // A vocabulary on a built-in vector task.
  p = parseJob(Json{{"name", "v"},
                    {"tasks", Json::array({Json{{"name", "digits"}, {"vocab", "v.txt"}}})},
                    {"teacher", {{"architecture", {{"type", "mlp"}, {"hidden", {8}}}}}},
                    {"students", Json::array({Json{{"name", "s"}, {"architecture", {{"type", "mlp"}, {"hidden", {4}}}}}})}}
                   .dump());
  EXPECT_TRUE(hasIssue(p, "tasks[0].vocab", "a vector task has no tokenizer")) << describe(p.issues);
}

TEST(TaskJobFields, PathsResolveAgainstTheJobFileFolder) {
  const test::TempDir dir("taskjob");
  test::writeFile(dir.file("jobs/data/train.jsonl"), "{\"text\": \"a b\", \"label\": \"x\"}\n");
  Json task = {{"name", "t"}, {"file", "data/train.jsonl"}, {"vocab", "data/vocab.txt"}};
  test::writeFile(dir.file("jobs/job.json"), jobWith(task).dump());
  // From another working directory: the job's folder decides, not the current one.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  JobParseResult parsed = loadJobFile("jobs/job.json");
  std::filesystem::current_path(cwd);
  ASSERT_FALSE(parsed.job);
  ASSERT_EQ(parsed.issues.size(), 1U) << describe(parsed.issues);
  const std::string jobDir = dir.file("jobs");
  EXPECT_EQ(parsed.issues[0].path, "tasks[0].vocab");
  EXPECT_NE(parsed.issues[0].message.find("no such file '" + jobDir + "/data/vocab.txt'"), std::string::npos)
      << parsed.issues[0].message;

  test::writeFile(dir.file("jobs/data/vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n");
  parsed = loadJobFile(dir.file("jobs/job.json"));
  ASSERT_TRUE(parsed.job) << describe(parsed.issues);
  // The job keeps what was written; resolveTaskFilePaths makes the paths absolute for a run.
  EXPECT_EQ(parsed.job->tasks[0].file, "data/train.jsonl");
  JobSpec resolved = *parsed.job;
  resolveTaskFilePaths(resolved);
  EXPECT_EQ(resolved.tasks[0].file, (std::filesystem::path(parsed.job->baseDir) / "data/train.jsonl").string());
  EXPECT_EQ(resolved.tasks[0].vocab, (std::filesystem::path(parsed.job->baseDir) / "data/vocab.txt").string());
  EXPECT_TRUE(resolved.tasks[0].evalFile.empty());

  // A folder is not a file.
  std::filesystem::create_directories(dir.file("jobs/folder.csv"));
  task["file"] = "folder.csv";
  test::writeFile(dir.file("jobs/job2.json"), jobWith(task).dump());
  parsed = loadJobFile(dir.file("jobs/job2.json"));
  ASSERT_FALSE(parsed.job);
  EXPECT_TRUE(hasIssue(parsed, "tasks[0].file", "is a folder, not a file")) << describe(parsed.issues);
}

TEST(TaskJobFields, CheckTaskFilesReadsEveryRowAndNamesFileLineAndField) {
  const test::TempDir dir("taskjob");
  const std::string path = test::writeFile(dir.file("rows.csv"), "text,label\ngood one,pos\nbad,\nfine,neg\n");
  JobParseResult parsed = parseJob(jobWith({{"name", "t"}, {"file", "rows.csv"}}).dump());
  ASSERT_TRUE(parsed.job) << describe(parsed.issues);
  parsed.job->baseDir = dir.path();
  // Existence only: fine. Every row: line 3's empty label is named.
  EXPECT_TRUE(checkTaskFiles(*parsed.job, /*readRows=*/false).empty());
  const std::vector<JobIssue> issues = checkTaskFiles(*parsed.job, /*readRows=*/true);
  ASSERT_EQ(issues.size(), 1U) << describe(issues);
  EXPECT_EQ(issues[0].path, "tasks[0].file");
  EXPECT_NE(issues[0].message.find("task file '" + path + "': line 3: field 'label'"), std::string::npos)
      << issues[0].message;
  // The engine's loadTask refuses it the same way, before any training.
  JobSpec resolved = *parsed.job;
  resolveTaskFilePaths(resolved);
  const std::string message =
      test::messageOf<InputError>([&] { (void)loadTask(resolved.tasks[0], "", resolved.seed); });
  EXPECT_NE(message.find("line 3: field 'label'"), std::string::npos) << message;
}

TEST(TaskJobFields, LoadTaskReadsTheFileWithItsSplitAndClasses) {
  const test::TempDir dir("taskjob");
  // 10 rows: split column with 3 dev rows (lines 4, 7, 11); classes by sorted name:
  // "neg" = 0 (rows 2, 4, 5, 9), "pos" = 1 (the other 6).
  std::string rows = "{\"t\": \"first text\", \"y\": \"pos\", \"s\": \"train\"}\n"
                     "{\"t\": \"second\", \"y\": \"neg\", \"s\": \"train\"}\n"
                     "{\"t\": \"third\", \"y\": \"pos\", \"s\": \"dev\"}\n"
                     "{\"t\": \"fourth\", \"y\": \"neg\", \"s\": \"train\"}\n"
                     "{\"t\": \"fifth\", \"y\": \"neg\", \"s\": \"train\"}\n"
                     "{\"t\": \"sixth\", \"y\": \"pos\", \"s\": \"dev\"}\n"
                     "{\"t\": \"seventh\", \"y\": \"pos\", \"s\": \"train\"}\n"
                     "{\"t\": \"eighth\", \"y\": \"pos\", \"s\": \"train\"}\n"
                     "\n"
                     "{\"t\": \"ninth\", \"y\": \"neg\", \"s\": \"test\"}\n"
                     "{\"t\": \"tenth\", \"y\": \"pos\", \"s\": \"train\"}\n";
  test::writeFile(dir.file("d.jsonl"), rows);
  TaskSpec task;
  task.name = "mine";
  task.file = dir.file("d.jsonl");
  task.textField = "t";
  task.labelField = "y";
  task.splitField = "s";
  task.maxLen = 4;
  task.minFreq = 1;
  const TaskData data = loadTask(task, "/nonexistent-data-dir", 3);
  EXPECT_EQ(data.kind, TaskKind::Text);
  EXPECT_EQ(data.classNames, (Strings{"neg", "pos"}));
  ASSERT_EQ(data.train.size(), 7U);
  ASSERT_EQ(data.eval.size(), 3U);
  const auto count = [](const std::vector<std::int64_t>& labels, std::int64_t c) {
    return std::count(labels.begin(), labels.end(), c);
  };
  EXPECT_EQ(count(data.train.labels, 0), 3); // second, fourth, fifth
  EXPECT_EQ(count(data.eval.labels, 0), 1);  // ninth
  Strings evalTexts = data.eval.texts;
  std::sort(evalTexts.begin(), evalTexts.end());
  EXPECT_EQ(evalTexts, (Strings{"ninth", "sixth", "third"}));
  // The word tokenizer was built from the train texts only: "ninth" is [UNK] (id 1).
  const auto ninth = static_cast<std::size_t>(
      std::find(data.eval.texts.begin(), data.eval.texts.end(), "ninth") - data.eval.texts.begin());
  EXPECT_EQ(data.eval.tokens[ninth * 4 + 1], 1);
  EXPECT_EQ(std::count(data.vocab.begin(), data.vocab.end(), "ninth"), 0);
  EXPECT_EQ(std::count(data.vocab.begin(), data.vocab.end(), "seventh"), 1);
}

using kdscope::test::runCommand;

TEST(TaskJobFields, OwnDataSampleReadsWhatTheSetUpScriptWrites) {
  const test::TempDir dir("owndata");
  // A stand-in for the fetched hedge CSV: a byte order mark, 11 sentences (1 certain, -1
  // uncertain), quoting with a comma, and one malformed record the script skips.
  std::string csv = "\xEF\xBB\xBF";
  for (int i = 1; i <= 11; ++i) {
    csv += std::string(i % 3 == 0 ? "\"-1\"" : "\"1\"") + ",\"Sentence " + std::to_string(i) + ", with a comma.\"\n";
  }
  csv += "\"x\",\"not a label\"\n";
  test::writeFile(dir.file("data/python3-pattern/usr/share/doc/python3-pattern/test/corpora/uncertainty-conll2010.csv"),
                  csv);
  const std::string script = std::string(KDSCOPE_SOURCE_DIR) + "/scripts/make-own-data.py";
  auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " '" + script + "' '" + dir.file("data") + "'");
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("(11 sentences, 2 dev)"), std::string::npos) << output; // rows 5 and 10
  const std::string jsonl = dir.file("data/own-data/hedge.jsonl");
  const auto written = std::filesystem::last_write_time(jsonl);
  // Idempotent: a second run leaves the file alone.
  std::tie(status, output) = runCommand(std::string(KDSCOPE_PYTHON) + " '" + script + "' '" + dir.file("data") + "'");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("already there (skipped)"), std::string::npos) << output;
  EXPECT_EQ(std::filesystem::last_write_time(jsonl), written);

  // The sample job, with its data folder pointed at the stand-in: valid, and its task is the
  // file's 9 train and 2 dev sentences, classes by sorted name.
  std::ifstream in(std::string(KDSCOPE_SOURCE_DIR) + "/samples/own-data/hedge-jsonl.json");
  Json sample = Json::parse(in);
  sample["data_dir"] = dir.file("data");
  const std::string jobPath = test::writeFile(dir.file("job.json"), sample.dump());
  const JobParseResult parsed = loadJobFile(jobPath);
  ASSERT_TRUE(parsed.job) << describe(parsed.issues);
  JobSpec job = *parsed.job;
  resolveTaskFilePaths(job);
  EXPECT_EQ(job.tasks[0].file, jsonl);
  TaskSpec task = job.tasks[0];
  task.minFreq = 1;
  const TaskData data = loadTask(task, "", job.seed);
  EXPECT_EQ(data.classNames, (Strings{"certain", "uncertain"}));
  EXPECT_EQ(data.train.size(), 9U);
  EXPECT_EQ(data.eval.size(), 2U);
  // Rows 5 (certain) and 10 (certain: 10 % 3 != 0) are dev.
  EXPECT_EQ(data.eval.labels, (std::vector<std::int64_t>{0, 0}));
  EXPECT_EQ(std::count(data.train.labels.begin(), data.train.labels.end(), 1), 3); // rows 3, 6, 9
}

} // namespace
} // namespace kdscope::core
