// Above 800 lines on purpose: one table of hand-written rule cases (JobRule) and the parser's
// hand-counted positions read best in one place; the field tables have their own suite
// (test_job_fields.cpp).
// Tests of the job file parser and validator (core/job/job_spec.h, docs/job-format.md).
// Expected values are written out by hand: field values, JSON paths, and line:column
// positions counted on the documents below.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/core/job_test_support.h"
#include "core/job/diagnostics.h"
#include "core/job/job_spec.h"

namespace kdscope::core {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

std::string describe(const JobParseResult& result) {
  std::string out;
  for (const JobIssue& issue : result.issues) {
    out += "\n  " + issue.str();
  }
  return out.empty() ? "(no issues)" : out;
}

std::vector<std::string> issuePaths(const JobParseResult& result) {
  std::vector<std::string> paths;
  for (const JobIssue& issue : result.issues) {
    paths.push_back(issue.path);
  }
  return paths;
}

/// The result has exactly one issue, at `path`, whose message contains `fragment`.
void expectSingleIssue(const JobParseResult& result, const std::string& path, const std::string& fragment) {
  EXPECT_FALSE(result.job.has_value());
  EXPECT_TRUE(result.normalizedJson.empty());
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, path) << describe(result);
  EXPECT_NE(result.issues[0].message.find(fragment), std::string::npos)
      << "expected fragment: " << fragment << describe(result);
}

void expectValid(const JobParseResult& result) {
  ASSERT_TRUE(result.issues.empty()) << describe(result);
  ASSERT_TRUE(result.job.has_value());
  EXPECT_FALSE(result.normalizedJson.empty());
}

using test::expectSameJob;

// A valid text job and a valid vector job; the rule tests change one value in them.
constexpr const char* kTextJob = R"({
  "name": "base",
  "tasks": ["polarity"],
  "teacher": {"architecture": {"type": "transformer", "layers": 2, "heads": 2, "width": 64, "ffn": 128},
              "training": {"epochs": 1}},
  "students": [{"name": "kd",
                "architecture": {"type": "transformer", "layers": 1, "heads": 2, "width": 32, "ffn": 64},
                "training": {"epochs": 1},
                "objective": {"lambda": 0.5, "temperature": 2.0}}],
  "recording": {"pooling": "mean"}
})";

constexpr const char* kVectorJob = R"({
  "name": "base",
  "tasks": ["digits"],
  "teacher": {"architecture": {"type": "mlp", "hidden": [64]}},
  "students": [{"name": "small", "architecture": {"type": "mlp", "hidden": [16]}}]
})";

constexpr const char* kRemove = "<remove>";

/// The base job with the value at `pointer` replaced by `valueJson` (or removed).
std::string editedJob(const char* base, const char* pointer, const char* valueJson) {
  Json job = Json::parse(base);
  const Json::json_pointer at(pointer);
  if (std::string(valueJson) == kRemove) {
    job.at(at.parent_pointer()).erase(at.back());
  } else {
    job[at] = Json::parse(valueJson);
  }
  return job.dump(2);
}

// ---- valid jobs -------------------------------------------------------------------------

TEST(JobParser, BaseJobsAreValid) {
  expectValid(parseJob(kTextJob));
  expectValid(parseJob(kVectorJob));
}

TEST(JobParser, FullJobParsesToExactValues) {
  const JobParseResult result = parseJob(R"({
    "name": "quickstart",
    "seed": 42,
    "data_dir": "data/cache",
    "cache_teacher_outputs": false,
    "teacher_cache_budget_mb": 64.5,
    "tasks": [
      {"name": "polarity", "eval_fraction": 0.25, "max_examples": 1000, "max_len": 48,
       "vocab_size": 5000, "min_freq": 3, "min_class_size": 100,
       "super_classes": 5, "classes_per_super": 2, "dim": 16, "examples_per_class": 50,
       "super_spread": 2.5, "class_spread": 0.5, "noise": 0.75},
      "hedge"
    ],
    "teacher": {
      "architecture": {"type": "transformer", "layers": 4, "heads": 4, "width": 128, "ffn": 256,
                       "dropout": 0.2},
      "training": {"epochs": 5, "batch_size": 16, "lr": 0.0005, "weight_decay": 0.02,
                   "warmup_fraction": 0.05, "grad_clip": 2.0},
      "checkpoint": "teacher.pt"
    },
    "students": [
      {"name": "kd",
       "architecture": {"type": "transformer", "layers": 1, "heads": 2, "width": 32, "ffn": 64,
                        "dropout": 0.0},
       "training": {"epochs": 7, "batch_size": 8, "lr": 0.002, "weight_decay": 0.0,
                    "warmup_fraction": 0.0, "grad_clip": 0.5},
       "objective": {"lambda": 0.5, "temperature": 4.0, "t_squared": false, "label_smoothing": 0.1,
                     "logit_mse": 0.25, "teacher_targets": "pt"}},
      {"name": "ce-only"}
    ],
    "recording": {"attention_examples": 8, "pooling": "cls", "log_every": 5, "hidden": false}
  })");
  expectValid(result);
  const JobSpec& job = *result.job;
  EXPECT_EQ(job.name, "quickstart");
  EXPECT_EQ(job.seed, 42U);
  EXPECT_EQ(job.dataDir, "data/cache");
  EXPECT_FALSE(job.cacheTeacherOutputs);
  EXPECT_EQ(job.teacherCacheBudgetMb, 64.5);
  EXPECT_EQ(job.baseDir, "");

  ASSERT_EQ(job.tasks.size(), 2U);
  const TaskSpec& task = job.tasks[0];
  EXPECT_EQ(task.name, "polarity");
  EXPECT_EQ(task.evalFraction, 0.25);
  EXPECT_EQ(task.maxExamples, 1000);
  EXPECT_EQ(task.maxLen, 48);
  EXPECT_EQ(task.vocabSize, 5000);
  EXPECT_EQ(task.minFreq, 3);
  EXPECT_EQ(task.minClassSize, 100);
  EXPECT_EQ(task.superClasses, 5);
  EXPECT_EQ(task.classesPerSuper, 2);
  EXPECT_EQ(task.dim, 16);
  EXPECT_EQ(task.examplesPerClass, 50);
  EXPECT_EQ(task.superSpread, 2.5);
  EXPECT_EQ(task.classSpread, 0.5);
  EXPECT_EQ(task.noise, 0.75);
  EXPECT_EQ(job.tasks[1].name, "hedge");
  EXPECT_EQ(job.tasks[1].maxLen, 32);

  const ArchitectureSpec& ta = job.teacher.architecture;
  EXPECT_EQ(ta.type, "transformer");
  EXPECT_EQ(ta.layers, 4);
  EXPECT_EQ(ta.heads, 4);
  EXPECT_EQ(ta.width, 128);
  EXPECT_EQ(ta.ffn, 256);
  EXPECT_EQ(ta.dropout, 0.2);
  EXPECT_TRUE(ta.hidden.empty());
  const TrainingSpec& tt = job.teacher.training;
  EXPECT_EQ(tt.epochs, 5);
  EXPECT_EQ(tt.batchSize, 16);
  EXPECT_EQ(tt.lr, 0.0005);
  EXPECT_EQ(tt.weightDecay, 0.02);
  EXPECT_EQ(tt.warmupFraction, 0.05);
  EXPECT_EQ(tt.gradClip, 2.0);
  EXPECT_EQ(job.teacher.checkpoint, "teacher.pt");

  ASSERT_EQ(job.students.size(), 2U);
  const StudentSpec& kd = job.students[0];
  EXPECT_EQ(kd.name, "kd");
  EXPECT_EQ(kd.architecture.layers, 1);
  EXPECT_EQ(kd.architecture.heads, 2);
  EXPECT_EQ(kd.architecture.width, 32);
  EXPECT_EQ(kd.architecture.ffn, 64);
  EXPECT_EQ(kd.architecture.dropout, 0.0);
  EXPECT_EQ(kd.training.epochs, 7);
  EXPECT_EQ(kd.training.batchSize, 8);
  EXPECT_EQ(kd.training.lr, 0.002);
  EXPECT_EQ(kd.training.weightDecay, 0.0);
  EXPECT_EQ(kd.training.warmupFraction, 0.0);
  EXPECT_EQ(kd.training.gradClip, 0.5);
  EXPECT_EQ(kd.objective.lambda, 0.5);
  EXPECT_EQ(kd.objective.temperature, 4.0);
  EXPECT_FALSE(kd.objective.tSquared);
  EXPECT_EQ(kd.objective.labelSmoothing, 0.1);
  EXPECT_EQ(kd.objective.logitMse, 0.25);
  EXPECT_EQ(kd.objective.teacherTargets, "pt");
  const StudentSpec& ce = job.students[1];
  EXPECT_EQ(ce.name, "ce-only");
  EXPECT_EQ(ce.objective.lambda, 0.0);
  EXPECT_EQ(ce.objective.temperature, 1.0);
  EXPECT_EQ(ce.architecture.width, 64);

  EXPECT_EQ(job.recording.attentionExamples, 8);
  EXPECT_EQ(job.recording.pooling, "cls");
  EXPECT_EQ(job.recording.logEvery, 5);
  EXPECT_FALSE(job.recording.hidden);
}

TEST(JobParser, MinimalJobGetsEveryDefault) {
  const JobParseResult result = parseJob(R"({"tasks": ["polarity"]})");
  expectValid(result);
  const JobSpec& job = *result.job;
  EXPECT_EQ(job.name, "job");
  EXPECT_EQ(job.seed, 1U);
  EXPECT_EQ(job.dataDir, "");
  EXPECT_TRUE(job.cacheTeacherOutputs);
  EXPECT_EQ(job.teacherCacheBudgetMb, 256.0);
  ASSERT_EQ(job.tasks.size(), 1U);
  const TaskSpec& task = job.tasks[0];
  EXPECT_EQ(task.name, "polarity");
  EXPECT_EQ(task.evalFraction, 0.2);
  EXPECT_EQ(task.maxExamples, 0);
  EXPECT_EQ(task.maxLen, 32);
  EXPECT_EQ(task.vocabSize, 8000);
  EXPECT_EQ(task.minFreq, 2);
  EXPECT_EQ(task.minClassSize, 500);
  EXPECT_EQ(task.superClasses, 4);
  EXPECT_EQ(task.classesPerSuper, 3);
  EXPECT_EQ(task.dim, 32);
  EXPECT_EQ(task.examplesPerClass, 300);
  EXPECT_EQ(task.superSpread, 3.0);
  EXPECT_EQ(task.classSpread, 1.0);
  EXPECT_EQ(task.noise, 1.0);
  const ArchitectureSpec& arch = job.teacher.architecture;
  EXPECT_EQ(arch.type, "transformer");
  EXPECT_EQ(arch.layers, 2);
  EXPECT_EQ(arch.heads, 2);
  EXPECT_EQ(arch.width, 64);
  EXPECT_EQ(arch.ffn, 128);
  EXPECT_EQ(arch.dropout, 0.1);
  EXPECT_TRUE(arch.hidden.empty());
  const TrainingSpec& training = job.teacher.training;
  EXPECT_EQ(training.epochs, 3);
  EXPECT_EQ(training.batchSize, 32);
  EXPECT_EQ(training.lr, 1e-3);
  EXPECT_EQ(training.weightDecay, 0.01);
  EXPECT_EQ(training.warmupFraction, 0.1);
  EXPECT_EQ(training.gradClip, 1.0);
  EXPECT_EQ(job.teacher.checkpoint, "");
  EXPECT_TRUE(job.students.empty());
  EXPECT_EQ(job.recording.attentionExamples, 16);
  EXPECT_EQ(job.recording.pooling, "mean");
  EXPECT_EQ(job.recording.logEvery, 10);
  EXPECT_TRUE(job.recording.hidden);
}

TEST(JobParser, StudentObjectDefaults) {
  const JobParseResult result = parseJob(R"({"tasks": ["spam"], "students": [{"name": "plain"}]})");
  expectValid(result);
  const ObjectiveSpec& objective = result.job->students.at(0).objective;
  EXPECT_EQ(objective.lambda, 0.0);
  EXPECT_EQ(objective.temperature, 1.0);
  EXPECT_TRUE(objective.tSquared);
  EXPECT_EQ(objective.labelSmoothing, 0.0);
  EXPECT_EQ(objective.logitMse, 0.0);
  EXPECT_EQ(objective.teacherTargets, "full");
}

TEST(JobParser, NormalizedJsonSpellsOutEveryDefault) {
  const JobParseResult result = parseJob(R"({"tasks": ["polarity"], "students": [{"name": "kd"}]})");
  expectValid(result);
  // Two-space indentation, keys in the documented order.
  EXPECT_EQ(result.normalizedJson.rfind("{\n  \"name\": \"job\",\n  \"mode\": \"train\",\n  \"seed\": 1,\n", 0), 0U)
      << result.normalizedJson;
  const Json j = Json::parse(result.normalizedJson);
  EXPECT_EQ(j.size(), 14U); // name, mode, ... recording, knowledge_controls, analyze, replicates, replicate_seed
  EXPECT_EQ(j["mode"], "train");
  EXPECT_EQ(j["replicates"], 0);
  EXPECT_EQ(j["replicate_seed"], 0);
  EXPECT_EQ(j["data_dir"], "");
  EXPECT_EQ(j["cache_teacher_outputs"], true);
  EXPECT_EQ(j["teacher_cache_budget_mb"], 256.0);
  ASSERT_TRUE(j["tasks"][0].is_object()); // bare strings come back as full objects
  EXPECT_EQ(j["tasks"][0].size(), 30U); // 14 task settings and the 16 task-file keys
  EXPECT_EQ(j["tasks"][0]["name"], "polarity");
  EXPECT_EQ(j["tasks"][0]["file"], "");
  EXPECT_EQ(j["tasks"][0]["text_field"], "text");
  EXPECT_EQ(j["tasks"][0]["lower_case"], true);
  EXPECT_EQ(j["tasks"][0]["max_len"], 32);
  EXPECT_EQ(j["tasks"][0]["noise"], 1.0);
  EXPECT_EQ(j["teacher"]["architecture"].size(), 7U);
  EXPECT_EQ(j["teacher"]["architecture"]["hidden"], Json::array());
  EXPECT_EQ(j["teacher"]["training"].size(), 7U);
  EXPECT_EQ(j["teacher"]["training"]["precision"], "auto");
  EXPECT_EQ(j["teacher"]["training"]["lr"], 0.001);
  EXPECT_EQ(j["teacher"]["checkpoint"], "");
  EXPECT_EQ(j["students"][0].size(), 8U); // name, architecture, training, objective, augmentation, teacher_epoch,
                                          // torchscript, manifest
  EXPECT_EQ(j["students"][0]["torchscript"], "");
  EXPECT_EQ(j["students"][0]["objective"].size(), 16U);
  EXPECT_EQ(j["students"][0]["objective"]["teacher_targets"], "full");
  EXPECT_EQ(j["recording"].size(), 9U);
  EXPECT_EQ(j["recording"]["memory_budget_mb"], 1024.0);
  EXPECT_EQ(j["recording"]["log_every"], 10);
  EXPECT_EQ(jobToJson(*result.job), result.normalizedJson);
}

TEST(JobParser, BareStringAndObjectTasksMix) {
  const JobParseResult result =
      parseJob(R"({"tasks": ["polarity", {"name": "spam", "max_len": 64}, "fortune"]})");
  expectValid(result);
  ASSERT_EQ(result.job->tasks.size(), 3U);
  EXPECT_EQ(result.job->tasks[0].name, "polarity");
  EXPECT_EQ(result.job->tasks[0].maxLen, 32);
  EXPECT_EQ(result.job->tasks[1].name, "spam");
  EXPECT_EQ(result.job->tasks[1].maxLen, 64);
  EXPECT_EQ(result.job->tasks[2].name, "fortune");
}

TEST(JobParser, EveryTaskNameIsAccepted) {
  for (const char* name : {"polarity", "hedge", "spam", "supersense", "fortune"}) {
    expectValid(parseJob(std::string(R"({"tasks": [")") + name + R"("]})"));
  }
  for (const char* name : {"fashion_mnist", "digits", "synthetic_hierarchy"}) {
    expectValid(parseJob(std::string(R"({"tasks": [")") + name +
                         R"("], "teacher": {"architecture": {"type": "mlp", "hidden": [8]}}})"));
  }
}

TEST(JobParser, SeveralTasksOfOneKind) {
  expectValid(parseJob(R"({"tasks": ["polarity", "hedge", "spam", "supersense", "fortune"]})"));
  expectValid(parseJob(R"({"tasks": ["digits", "fashion_mnist", "synthetic_hierarchy"],
                           "teacher": {"architecture": {"type": "mlp", "hidden": [8]}}})"));
}

TEST(JobParser, TeacherOnlyJobs) {
  EXPECT_TRUE(parseJob(R"({"tasks": ["polarity"]})").job->students.empty());
  EXPECT_TRUE(parseJob(R"({"tasks": ["polarity"], "students": []})").job->students.empty());
}

TEST(JobParser, IntegralFloatsAreAcceptedForIntegers) {
  const JobParseResult result = parseJob(
      R"({"seed": 7.0, "tasks": [{"name": "polarity", "max_examples": 2e3}],
          "teacher": {"training": {"epochs": 3.0}}})");
  expectValid(result);
  EXPECT_EQ(result.job->seed, 7U);
  EXPECT_EQ(result.job->tasks[0].maxExamples, 2000);
  EXPECT_EQ(result.job->teacher.training.epochs, 3);
}

TEST(JobParser, SeedCoversTheFullUnsigned64BitRange) {
  const JobParseResult top = parseJob(R"({"seed": 18446744073709551615, "tasks": ["hedge"]})");
  expectValid(top);
  EXPECT_EQ(top.job->seed, 18446744073709551615ULL);
  const JobParseResult zero = parseJob(R"({"seed": 0, "tasks": ["hedge"]})");
  expectValid(zero);
  EXPECT_EQ(zero.job->seed, 0U);
  // 2^63 is past int64 but still a valid seed.
  const JobParseResult mid = parseJob(R"({"seed": 9223372036854775808, "tasks": ["hedge"]})");
  expectValid(mid);
  EXPECT_EQ(mid.job->seed, 9223372036854775808ULL);
}

TEST(JobParser, BoundaryValuesAreAccepted) {
  const JobParseResult result = parseJob(R"({
    "teacher_cache_budget_mb": 0,
    "tasks": [{"name": "polarity", "eval_fraction": 0.999, "max_examples": 0, "max_len": 2,
               "vocab_size": 4, "min_freq": 1, "min_class_size": 1, "super_classes": 1,
               "classes_per_super": 1, "dim": 1, "examples_per_class": 1,
               "super_spread": 1e-9, "class_spread": 1e-9, "noise": 1e-9}],
    "teacher": {"architecture": {"layers": 1, "heads": 1, "width": 1, "ffn": 1, "dropout": 0},
                "training": {"epochs": 1, "batch_size": 1, "lr": 1e-12, "weight_decay": 0,
                             "warmup_fraction": 1, "grad_clip": 0}},
    "students": [{"name": "a", "objective": {"lambda": 1, "temperature": 0.01,
                                              "label_smoothing": 0.999, "logit_mse": 0}},
                 {"name": "B_9-x", "objective": {"lambda": 0},
                  "training": {"warmup_fraction": 0}}],
    "recording": {"attention_examples": 0, "log_every": 1}
  })");
  expectValid(result);
}

TEST(JobParser, MlpIgnoresTransformerOnlyFields) {
  // layers/heads/width/ffn mean nothing to an mlp, so values a transformer would reject
  // (and width not divisible by heads) are not errors there.
  const JobParseResult result = parseJob(R"({"tasks": ["digits"],
      "teacher": {"architecture": {"type": "mlp", "hidden": [128, 64], "layers": 0, "heads": 0,
                                   "width": 7, "ffn": 0}}})");
  expectValid(result);
  EXPECT_EQ(result.job->teacher.architecture.hidden, (std::vector<int>{128, 64}));
}

// ---- one rule, one issue ------------------------------------------------------------------

struct RuleCase {
  const char* label;
  const char* base;
  const char* pointer;
  const char* value; ///< JSON text, or kRemove
  const char* path;
  const char* fragment;
};

std::ostream& operator<<(std::ostream& out, const RuleCase& c) {
  return out << c.label;
}

class JobRule : public ::testing::TestWithParam<RuleCase> {};

TEST_P(JobRule, ReportsExactlyThisIssue) {
  const RuleCase& c = GetParam();
  const std::string text = editedJob(c.base, c.pointer, c.value);
  expectSingleIssue(parseJob(text), c.path, c.fragment);
}

// clang-format off
const std::vector<RuleCase> kRuleCases = {
  // Job level.
  {"NameEmpty", kTextJob, "/name", R"("")", "name", "must not be empty"},
  {"SeedNegative", kTextJob, "/seed", "-1", "seed", "must be a non-negative integer, got -1"},
  {"SeedPast64Bits", kTextJob, "/seed", "18446744073709551616", "seed", "must be at most 18446744073709551615"},
  {"SeedFractional", kTextJob, "/seed", "1.5", "seed", "must be a non-negative integer, got 1.5"},
  {"CacheBudgetNegative", kTextJob, "/teacher_cache_budget_mb", "-1", "teacher_cache_budget_mb", "must be >= 0, got -1"},
  // Tasks.
  {"TasksMissing", kTextJob, "/tasks", kRemove, "tasks", "required field is missing"},
  {"TasksEmpty", kTextJob, "/tasks", "[]", "tasks", "must list at least one task"},
  {"TasksNotArray", kTextJob, "/tasks", R"("polarity")", "tasks", "must be an array, got string"},
  {"TaskUnknownBare", kTextJob, "/tasks", R"(["polarty"])", "tasks[0]", "unknown task 'polarty' (did you mean 'polarity'?)"},
  {"TaskUnknownListsKnown", kTextJob, "/tasks", R"(["sentiment"])", "tasks[0]", "known tasks: polarity, hedge, spam, supersense, fortune, synthetic_order, fashion_mnist, digits, synthetic_hierarchy"},
  {"TaskUnknownObject", kTextJob, "/tasks", R"([{"name": "imdb"}])", "tasks[0].name", "unknown task 'imdb'"},
  {"TaskNameMissing", kTextJob, "/tasks", R"([{"max_len": 16}])", "tasks[0].name", "required field is missing"},
  {"TaskNameNotString", kTextJob, "/tasks", R"([{"name": 3}])", "tasks[0].name", "must be a string, got number"},
  {"TaskElementWrongType", kTextJob, "/tasks", "[3]", "tasks[0]", "must be a task name or an object, got number"},
  {"TaskDuplicateBare", kTextJob, "/tasks", R"(["polarity", "hedge", "polarity"])", "tasks[2]", "duplicate task 'polarity' (also tasks[0])"},
  {"TaskDuplicateObject", kTextJob, "/tasks", R"(["spam", {"name": "spam"}])", "tasks[1].name", "duplicate task 'spam' (also tasks[0])"},
  {"TaskKindsMixed", kTextJob, "/tasks", R"(["polarity", "hedge", "digits", "fashion_mnist"])", "tasks[2]",
   "'digits' is a vector task (needs an 'mlp') but 'polarity' (tasks[0]) is a text task (needs a 'transformer')"},
  {"TaskKindsMixedVectorFirst", kVectorJob, "/tasks", R"(["synthetic_hierarchy", "fortune"])", "tasks[1]",
   "'fortune' is a text task (needs a 'transformer') but 'synthetic_hierarchy' (tasks[0]) is a vector task"},
  {"EvalFractionZero", kTextJob, "/tasks", R"([{"name": "polarity", "eval_fraction": 0}])", "tasks[0].eval_fraction", "must be in (0, 1), got 0"},
  {"EvalFractionOne", kTextJob, "/tasks", R"([{"name": "polarity", "eval_fraction": 1}])", "tasks[0].eval_fraction", "must be in (0, 1), got 1"},
  {"MaxExamplesNegative", kTextJob, "/tasks", R"([{"name": "polarity", "max_examples": -5}])", "tasks[0].max_examples", "must be >= 0, got -5"},
  {"MaxLenOne", kTextJob, "/tasks", R"(["hedge", {"name": "polarity", "max_len": 1}])", "tasks[1].max_len", "must be >= 2, got 1"},
  {"VocabSizeThree", kTextJob, "/tasks", R"([{"name": "polarity", "vocab_size": 3}])", "tasks[0].vocab_size", "must be >= 4, got 3"},
  {"MinFreqZero", kTextJob, "/tasks", R"([{"name": "polarity", "min_freq": 0}])", "tasks[0].min_freq", "must be >= 1, got 0"},
  {"MinClassSizeZero", kTextJob, "/tasks", R"([{"name": "fortune", "min_class_size": 0}])", "tasks[0].min_class_size", "must be >= 1, got 0"},
  {"SuperClassesZero", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "super_classes": 0}])", "tasks[0].super_classes", "must be >= 1, got 0"},
  {"ClassesPerSuperZero", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "classes_per_super": 0}])", "tasks[0].classes_per_super", "must be >= 1, got 0"},
  {"DimZero", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "dim": 0}])", "tasks[0].dim", "must be >= 1, got 0"},
  {"ExamplesPerClassNegative", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "examples_per_class": -1}])", "tasks[0].examples_per_class", "must be >= 1, got -1"},
  {"SuperSpreadZero", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "super_spread": 0}])", "tasks[0].super_spread", "must be > 0, got 0"},
  {"ClassSpreadNegative", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "class_spread": -0.5}])", "tasks[0].class_spread", "must be > 0, got -0.5"},
  {"NoiseZero", kVectorJob, "/tasks", R"([{"name": "synthetic_hierarchy", "noise": 0.0}])", "tasks[0].noise", "must be > 0, got 0"},
  // Architecture against the tasks.
  {"TextTaskMlpTeacher", kTextJob, "/teacher/architecture", R"({"type": "mlp", "hidden": [32]})", "teacher.architecture.type",
   "text tasks (polarity) need a 'transformer' architecture, got 'mlp'"},
  {"TextTaskMlpStudent", kTextJob, "/students/0/architecture", R"({"type": "mlp", "hidden": [8]})", "students[0].architecture.type",
   "need a 'transformer' architecture, got 'mlp'"},
  {"VectorTaskTransformerTeacher", kVectorJob, "/teacher/architecture", R"({"type": "transformer"})", "teacher.architecture.type",
   "vector tasks (digits) need an 'mlp' architecture, got 'transformer'"},
  {"VectorTaskDefaultArchitecture", kVectorJob, "/students/0/architecture", kRemove, "students[0].architecture.type",
   "need an 'mlp' architecture, got 'transformer' (the default)"},
  // Architecture.
  {"TypeUnknown", kTextJob, "/teacher/architecture/type", R"("transfomer")", "teacher.architecture.type",
   "must be 'transformer' or 'mlp', got 'transfomer' (did you mean 'transformer'?)"},
  {"LayersZero", kTextJob, "/teacher/architecture/layers", "0", "teacher.architecture.layers", "must be >= 1, got 0"},
  {"HeadsZero", kTextJob, "/teacher/architecture/heads", "0", "teacher.architecture.heads", "must be >= 1, got 0"},
  {"WidthZero", kTextJob, "/teacher/architecture/width", "0", "teacher.architecture.width", "must be >= 1, got 0"},
  {"FfnZero", kTextJob, "/students/0/architecture/ffn", "0", "students[0].architecture.ffn", "must be >= 1, got 0"},
  {"WidthNotDivisibleByHeads", kTextJob, "/teacher/architecture", R"({"heads": 4, "width": 130})", "teacher.architecture.width",
   "must be divisible by heads (4), got 130"},
  {"WidthNotDivisibleByDefaultHeads", kTextJob, "/students/0/architecture", R"({"width": 33})", "students[0].architecture.width",
   "must be divisible by heads (2), got 33"},
  {"TransformerWithHidden", kTextJob, "/teacher/architecture/hidden", "[32]", "teacher.architecture.hidden",
   "is only used by an 'mlp' architecture"},
  {"MlpHiddenMissing", kVectorJob, "/teacher/architecture/hidden", kRemove, "teacher.architecture.hidden",
   "an 'mlp' needs at least one hidden layer width"},
  {"MlpHiddenEmpty", kVectorJob, "/students/0/architecture/hidden", "[]", "students[0].architecture.hidden",
   "an 'mlp' needs at least one hidden layer width"},
  {"MlpHiddenZero", kVectorJob, "/teacher/architecture/hidden", "[64, 0]", "teacher.architecture.hidden[1]", "must be >= 1, got 0"},
  {"MlpHiddenNegative", kVectorJob, "/teacher/architecture/hidden", "[-3]", "teacher.architecture.hidden[0]", "must be >= 1, got -3"},
  {"MlpHiddenNotInteger", kVectorJob, "/teacher/architecture/hidden", R"([64, "32"])", "teacher.architecture.hidden[1]",
   "must be an integer, got string"},
  {"MlpHiddenNotArray", kVectorJob, "/teacher/architecture/hidden", "64", "teacher.architecture.hidden",
   "must be an array of layer widths, got number"},
  {"DropoutOne", kTextJob, "/teacher/architecture/dropout", "1.0", "teacher.architecture.dropout", "must be in [0, 1), got 1"},
  {"DropoutNegative", kVectorJob, "/students/0/architecture/dropout", "-0.1", "students[0].architecture.dropout", "must be in [0, 1), got -0.1"},
  // Training.
  {"EpochsZero", kTextJob, "/teacher/training/epochs", "0", "teacher.training.epochs", "must be >= 1, got 0"},
  {"StudentEpochsZero", kTextJob, "/students/0/training/epochs", "0", "students[0].training.epochs", "must be >= 1, got 0"},
  {"BatchSizeZero", kTextJob, "/teacher/training/batch_size", "0", "teacher.training.batch_size", "must be >= 1, got 0"},
  {"LrZero", kTextJob, "/teacher/training/lr", "0", "teacher.training.lr", "must be > 0, got 0"},
  {"LrNegative", kTextJob, "/students/0/training/lr", "-0.001", "students[0].training.lr", "must be > 0, got -0.001"},
  {"WeightDecayNegative", kTextJob, "/teacher/training/weight_decay", "-0.01", "teacher.training.weight_decay", "must be >= 0, got -0.01"},
  {"WarmupAboveOne", kTextJob, "/teacher/training/warmup_fraction", "1.5", "teacher.training.warmup_fraction", "must be in [0, 1], got 1.5"},
  {"WarmupNegative", kTextJob, "/teacher/training/warmup_fraction", "-0.1", "teacher.training.warmup_fraction", "must be in [0, 1], got -0.1"},
  {"GradClipNegative", kTextJob, "/teacher/training/grad_clip", "-1", "teacher.training.grad_clip", "must be >= 0, got -1"},
  // Objective.
  {"LambdaAboveOne", kTextJob, "/students/0/objective/lambda", "1.5", "students[0].objective.lambda", "must be in [0, 1], got 1.5"},
  {"LambdaNegative", kTextJob, "/students/0/objective/lambda", "-0.5", "students[0].objective.lambda", "must be in [0, 1], got -0.5"},
  {"TemperatureZero", kTextJob, "/students/0/objective/temperature", "0", "students[0].objective.temperature", "must be > 0"},
  {"TemperatureNegative", kTextJob, "/students/0/objective/temperature", "-2", "students[0].objective.temperature", "must be > 0, got -2"},
  {"LabelSmoothingOne", kTextJob, "/students/0/objective/label_smoothing", "1", "students[0].objective.label_smoothing", "must be in [0, 1), got 1"},
  {"LogitMseNegative", kTextJob, "/students/0/objective/logit_mse", "-0.1", "students[0].objective.logit_mse", "must be >= 0, got -0.1"},
  {"TeacherTargetsUnknown", kTextJob, "/students/0/objective/teacher_targets", R"("soft")", "students[0].objective.teacher_targets",
   "must be 'full' or 'pt', got 'soft'"},
  // Students.
  {"StudentsNotArray", kTextJob, "/students", R"({"name": "kd"})", "students", "must be an array, got object"},
  {"StudentNotObject", kTextJob, "/students/0", R"("kd")", "students[0]", "must be an object, got string"},
  {"StudentNameMissing", kTextJob, "/students/0/name", kRemove, "students[0].name", "required field is missing"},
  {"StudentNameEmpty", kTextJob, "/students/0/name", R"("")", "students[0].name", "must not be empty"},
  {"StudentNameSpace", kTextJob, "/students/0/name", R"("kd student")", "students[0].name",
   "must use only letters, digits, '_' and '-', got 'kd student'"},
  {"StudentNameSlash", kTextJob, "/students/0/name", R"("../kd")", "students[0].name", "must use only letters, digits"},
  {"StudentNameTeacher", kTextJob, "/students/0/name", R"("teacher")", "students[0].name", "'teacher' is reserved"},
  {"StudentNameDuplicate", kTextJob, "/students/-", R"({"name": "kd"})", "students[1].name",
   "duplicate student name 'kd' (also students[0])"},
  // Recording.
  {"AttentionExamplesNegative", kTextJob, "/recording/attention_examples", "-1", "recording.attention_examples", "must be >= 0, got -1"},
  {"PoolingUnknown", kTextJob, "/recording/pooling", R"("max")", "recording.pooling", "must be 'mean' or 'cls', got 'max'"},
  {"LogEveryZero", kTextJob, "/recording/log_every", "0", "recording.log_every", "must be >= 1, got 0"},
  // Unknown keys.
  {"UnknownObjectiveKey", kTextJob, "/students/0/objective/temprature", "4.0", "students[0].objective.temprature",
   "unknown field (did you mean 'temperature'?)"},
  {"UnknownRootKey", kTextJob, "/task", R"(["hedge"])", "task", "unknown field (did you mean 'tasks'?)"},
  // Keys that path syntax cannot spell plainly are quoted, so every issue names its key
  // (the fuzz campaign's one unnamed refusal was an empty top-level key).
  {"EmptyRootKey", kTextJob, "/", "1", R"("")", "unknown field (known fields: name, mode, seed"},
  {"EmptyNestedKey", kTextJob, "/teacher/training/", "1", R"(teacher.training."")", "unknown field (known fields: epochs"},
  {"DottedKey", kTextJob, "/teacher/training/batch.size", "1", R"(teacher.training."batch.size")", "unknown field"},
  // Wrong JSON types.
  {"EpochsString", kTextJob, "/teacher/training/epochs", R"("3")", "teacher.training.epochs", "must be an integer, got string"},
  {"EpochsFractional", kTextJob, "/teacher/training/epochs", "2.5", "teacher.training.epochs", "must be an integer, got 2.5"},
  {"EpochsPastInt", kTextJob, "/teacher/training/epochs", "10000000000", "teacher.training.epochs", "must be at most 2147483647, got 10000000000"},
  {"EpochsFloatPastInt", kTextJob, "/teacher/training/epochs", "1e12", "teacher.training.epochs", "must be at most 2147483647"},
  {"EpochsNull", kTextJob, "/teacher/training/epochs", "null", "teacher.training.epochs", "must be an integer, got null"},
  {"LrString", kTextJob, "/teacher/training/lr", R"("1e-3")", "teacher.training.lr", "must be a number, got string"},
  {"TSquaredNumber", kTextJob, "/students/0/objective/t_squared", "1", "students[0].objective.t_squared", "must be a boolean, got number"},
  {"CacheFlagString", kTextJob, "/cache_teacher_outputs", R"("yes")", "cache_teacher_outputs", "must be a boolean, got string"},
  {"NameNumber", kTextJob, "/name", "5", "name", "must be a string, got number"},
  {"DataDirArray", kTextJob, "/data_dir", "[]", "data_dir", "must be a string, got array"},
  {"TeacherArray", kTextJob, "/teacher", "[]", "teacher", "must be an object, got array"},
  {"ArchitectureString", kTextJob, "/teacher/architecture", R"("transformer")", "teacher.architecture", "must be an object, got string"},
  {"RecordingNull", kTextJob, "/recording", "null", "recording", "must be an object, got null"},
  {"PoolingNumber", kTextJob, "/recording/pooling", "0", "recording.pooling", "must be a string, got number"},
  {"TypeBoolean", kTextJob, "/students/0/architecture/type", "true", "students[0].architecture.type", "must be a string, got boolean"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Rules, JobRule, ::testing::ValuesIn(kRuleCases),
                         [](const ::testing::TestParamInfo<RuleCase>& param) {
                           return std::string(param.param.label);
                         });

// ---- several issues ------------------------------------------------------------------------

TEST(JobParser, AllIssuesAreReportedInDocumentOrder) {
  // Keys are deliberately out of the struct's order ("students" first, "width" before
  // "layers"), and the width/heads rule is checked after the per-field ones.
  const JobParseResult result = parseJob(R"({
    "name": "order",
    "students": [
      {"name": "a", "objective": {"temperature": 0, "lambda": 2}},
      {"name": "a", "training": {"epochs": "x"}}
    ],
    "teacher": {"architecture": {"width": 130, "heads": 4, "layers": 0}},
    "bogus": 1,
    "tasks": ["polarity", "nope"]
  })");
  EXPECT_FALSE(result.job.has_value());
  const std::vector<std::string> expected = {
      "students[0].objective.temperature",
      "students[0].objective.lambda",
      "students[1].name",
      "students[1].training.epochs",
      "teacher.architecture.width",
      "teacher.architecture.layers",
      "bogus",
      "tasks[1]",
  };
  EXPECT_EQ(issuePaths(result), expected) << describe(result);
  ASSERT_EQ(result.issues.size(), expected.size());
  EXPECT_EQ(result.issues[0].str(), "students[0].objective.temperature: must be > 0, got 0");
  EXPECT_EQ(result.issues[1].str(), "students[0].objective.lambda: must be in [0, 1], got 2");
  EXPECT_EQ(result.issues[3].str(), "students[1].training.epochs: must be an integer, got string");
  EXPECT_EQ(result.issues[4].str(), "teacher.architecture.width: must be divisible by heads (4), got 130");
}

TEST(JobParser, MissingFieldsAreReportedWhereTheirObjectEnds) {
  const JobParseResult result = parseJob(R"({
    "name": "",
    "students": [{"objective": {"lambda": 2}}, {"name": "teacher"}],
    "recording": {"log_every": 0}
  })");
  const std::vector<std::string> expected = {
      "name",  "students[0].objective.lambda", "students[0].name", "students[1].name", "recording.log_every",
      "tasks",
  };
  EXPECT_EQ(issuePaths(result), expected) << describe(result);
}

TEST(JobParser, TypeErrorsSuppressFollowOnIssues) {
  // heads is unreadable, so "width must be divisible by heads" would only add noise.
  const JobParseResult result =
      parseJob(R"({"tasks": ["polarity"], "teacher": {"architecture": {"heads": "four", "width": 30}}})");
  expectSingleIssue(result, "teacher.architecture.heads", "must be an integer, got string");
}

TEST(JobParser, DuplicateKeysAreErrors) {
  const JobParseResult result = parseJob(R"({
    "tasks": ["polarity"],
    "students": [{"name": "kd", "objective": {"lambda": 0.5, "temperature": 2, "lambda": 0.9}}]
  })");
  expectSingleIssue(result, "students[0].objective.lambda", "duplicate key");
}

// ---- unknown keys -------------------------------------------------------------------------

TEST(JobParser, UnknownKeysSuggestTheClosestField) {
  const JobParseResult result = parseJob(R"({
    "tasks": [{"name": "polarity", "maxlen": 16}],
    "teacher": {"training": {"batchSize": 8, "epoch": 2}},
    "students": [{"name": "kd", "lr": 0.1, "objective": {"temprature": 4, "lamda": 0.5}}],
    "recording": {"zzzz": 1}
  })");
  ASSERT_EQ(result.issues.size(), 7U) << describe(result);
  EXPECT_EQ(result.issues[0].str(), "tasks[0].maxlen: unknown field (did you mean 'max_len'?)");
  EXPECT_EQ(result.issues[1].str(), "teacher.training.batchSize: unknown field (did you mean 'batch_size'?)");
  EXPECT_EQ(result.issues[2].str(), "teacher.training.epoch: unknown field (did you mean 'epochs'?)");
  // A field one level too high points into the section it belongs to.
  EXPECT_EQ(result.issues[3].str(), "students[0].lr: unknown field (did you mean 'training.lr'?)");
  EXPECT_EQ(result.issues[4].str(),
            "students[0].objective.temprature: unknown field (did you mean 'temperature'?)");
  EXPECT_EQ(result.issues[5].str(), "students[0].objective.lamda: unknown field (did you mean 'lambda'?)");
  EXPECT_EQ(result.issues[6].str(),
            "recording.zzzz: unknown field (known fields: attention_examples, pooling, "
            "log_every, hidden, token_hidden_examples, float16, example_records, max_file_mb, memory_budget_mb)");
}

TEST(JobParser, TeacherHasNoObjective) {
  const JobParseResult result =
      parseJob(R"({"tasks": ["polarity"], "teacher": {"objective": {"lambda": 0.5}}})");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "teacher.objective");
  EXPECT_EQ(result.issues[0].message.find("did you mean"), std::string::npos);
  EXPECT_NE(result.issues[0].message.find("known fields: architecture, training, checkpoint"),
            std::string::npos);
}

// ---- syntax errors ----------------------------------------------------------------------------

TEST(JobParser, SyntaxErrorGivesSourceLineAndColumn) {
  // Line 4 starts with two spaces, so the unexpected "tasks" key begins at column 3: the
  // comma after "seed": 1 on line 3 is missing.
  const std::string text = "{\n"
                           "  \"name\": \"x\",\n"
                           "  \"seed\": 1\n"
                           "  \"tasks\": [\"polarity\"]\n"
                           "}\n";
  const JobParseResult result = parseJob(text, "jobs/quick.json");
  EXPECT_FALSE(result.job.has_value());
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "jobs/quick.json:4:3");
  EXPECT_NE(result.issues[0].message.find("unexpected string literal"), std::string::npos)
      << result.issues[0].message;
  EXPECT_NE(result.issues[0].message.find("missing ','"), std::string::npos) << result.issues[0].message;
  EXPECT_EQ(result.issues[0].str().rfind("jobs/quick.json:4:3: syntax error", 0), 0U)
      << result.issues[0].str();
}

TEST(JobParser, MissingCommaInAnArrayPointsAtTheNextElement) {
  // { is column 1; the second string starts at column 23.
  const JobParseResult result = parseJob(R"({"tasks": ["polarity" "hedge"]})");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "job:1:23");
  EXPECT_NE(result.issues[0].message.find("missing ','"), std::string::npos) << result.issues[0].message;
}

TEST(JobParser, InvalidLiteralIsPointedAt) {
  // Python's True: the T is column 28 of line 2 (2 spaces, 23 for the quoted key, ": ").
  const JobParseResult result = parseJob("{\n  \"cache_teacher_outputs\": True,\n  \"tasks\": [\"spam\"]\n}");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "job:2:28");
  EXPECT_NE(result.issues[0].message.find("invalid literal"), std::string::npos);
}

TEST(JobParser, TrailingCommaIsPointedAt) {
  // The ']' that follows the comma is line 4, column 3.
  const JobParseResult result = parseJob("{\n"
                                         "  \"tasks\": [\n"
                                         "    \"polarity\",\n"
                                         "  ]\n"
                                         "}\n",
                                         "t.json");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "t.json:4:3");
  EXPECT_NE(result.issues[0].message.find("comma before a closing bracket"), std::string::npos)
      << result.issues[0].message;
}

TEST(JobParser, CommentsAreSyntaxErrors) {
  const JobParseResult result = parseJob("{\n  // the teacher\n  \"tasks\": [\"spam\"]\n}");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "job:2:3");
  EXPECT_NE(result.issues[0].message.find("comments"), std::string::npos);
}

TEST(JobParser, SyntaxErrorColumnsCountCharactersNotBytes) {
  // "é" is two bytes but one column: the stray x is character 18 (byte 19).
  const JobParseResult result = parseJob("{\"name\": \"h\xC3\xA9llo\" x}");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "job:1:18");
}

TEST(JobParser, NumberOverflowIsASyntaxErrorWithPosition) {
  const JobParseResult result = parseJob("{\"tasks\": [\"polarity\"],\n \"lr\": 1e400}", "o.json");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "o.json:2:8");
  EXPECT_NE(result.issues[0].message.find("number overflow"), std::string::npos);
}

TEST(JobParser, EmptyAndNonObjectDocuments) {
  const JobParseResult empty = parseJob("", "e.json");
  ASSERT_EQ(empty.issues.size(), 1U) << describe(empty);
  EXPECT_EQ(empty.issues[0].path, "e.json:1:1");
  EXPECT_NE(empty.issues[0].message.find("unexpected end of input"), std::string::npos);

  const JobParseResult truncated = parseJob("{\n  \"tasks\": [\"polarity\"]\n", "t.json");
  ASSERT_EQ(truncated.issues.size(), 1U) << describe(truncated);
  EXPECT_EQ(truncated.issues[0].path, "t.json:3:1");

  expectSingleIssue(parseJob(R"(["polarity"])", "a.json"), "a.json",
                    "a job must be a JSON object, got array");
}

TEST(JobParser, ByteOrderMarkIsAccepted) {
  expectValid(parseJob("\xEF\xBB\xBF{\"tasks\": [\"polarity\"]}"));
  const JobParseResult result = parseJob("\xEF\xBB\xBF{\"tasks\" [");
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, "job:1:10");
}

// ---- round trip ---------------------------------------------------------------------------

JobSpec nonDefaultJob() {
  JobSpec job;
  job.name = "round-trip";
  job.seed = 18446744073709551557ULL; // the largest 64-bit prime: beyond int64 and 2^53
  job.dataDir = "/data/kd";
  job.cacheTeacherOutputs = false;
  job.teacherCacheBudgetMb = 12.75;
  TaskSpec a;
  a.name = "synthetic_hierarchy";
  a.evalFraction = 0.3;
  a.maxExamples = 12345678901L;
  a.maxLen = 17;
  a.vocabSize = 999;
  a.minFreq = 4;
  a.minClassSize = 7;
  a.superClasses = 6;
  a.classesPerSuper = 5;
  a.dim = 20;
  a.examplesPerClass = 40;
  a.superSpread = 0.1;
  a.classSpread = 1.0 / 3.0;
  a.noise = 2.5e-3;
  TaskSpec b;
  b.name = "digits";
  job.tasks = {a, b};
  job.teacher.architecture.type = "mlp";
  job.teacher.architecture.hidden = {256, 128, 64};
  job.teacher.architecture.layers = 9;
  job.teacher.architecture.dropout = 0.3;
  job.teacher.training = TrainingSpec{11, 64, 3e-4, 0.05, 0.25, 0.0};
  job.teacher.checkpoint = "ckpt/teacher.pt";
  StudentSpec s;
  s.name = "kd_T4";
  s.architecture.type = "mlp";
  s.architecture.hidden = {32};
  s.architecture.dropout = 0.0;
  s.training = TrainingSpec{2, 7, 0.1, 0.0, 1.0, 5.0};
  s.objective.lambda = 0.9;
  s.objective.temperature = 4.0;
  s.objective.tSquared = false;
  s.objective.labelSmoothing = 0.05;
  s.objective.logitMse = 0.125;
  s.objective.teacherTargets = "pt";
  StudentSpec t;
  t.name = "ce";
  t.architecture.type = "mlp";
  t.architecture.hidden = {8, 8};
  job.students = {s, t};
  job.recording = RecordingSpec{0, "cls", 3, false};
  return job;
}

TEST(JobParser, JobToJsonRoundTrips) {
  const JobSpec original = nonDefaultJob();
  const std::string text = jobToJson(original);
  const JobParseResult result = parseJob(text);
  expectValid(result);
  expectSameJob(*result.job, original);
  EXPECT_EQ(result.normalizedJson, text);
}

TEST(JobParser, TextJobRoundTrips) {
  JobSpec original;
  original.name = "text";
  TaskSpec task;
  task.name = "supersense";
  task.maxLen = 24;
  original.tasks = {task};
  original.teacher.architecture = ArchitectureSpec{"transformer", 6, 8, 256, 1024, 0.15, {}};
  StudentSpec student;
  student.name = "tiny";
  student.architecture = ArchitectureSpec{"transformer", 1, 1, 16, 32, 0.0, {}};
  student.objective.lambda = 1.0;
  student.objective.temperature = 0.5;
  original.students = {student};
  const JobParseResult result = parseJob(jobToJson(original));
  expectValid(result);
  expectSameJob(*result.job, original);
}

TEST(JobParser, NormalizedJsonIsAFixedPoint) {
  const JobParseResult first = parseJob(kTextJob);
  expectValid(first);
  const JobParseResult second = parseJob(first.normalizedJson);
  expectValid(second);
  EXPECT_EQ(second.normalizedJson, first.normalizedJson);
  expectSameJob(*second.job, *first.job);
}

// ---- files --------------------------------------------------------------------------------

/// A fresh folder under the system temp folder, removed at the end of the test.
class TempFolder {
public:
  TempFolder() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    m_path = fs::temp_directory_path() /
             ("kdscope_job_test_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    fs::create_directories(m_path);
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  TempFolder(TempFolder&&) = delete;
  TempFolder& operator=(TempFolder&&) = delete;

  [[nodiscard]] const fs::path& path() const { return m_path; }

  [[nodiscard]] std::string write(const std::string& name, const std::string& text) const {
    const fs::path file = m_path / name;
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }

private:
  fs::path m_path;
};

TEST(LoadJobFile, MissingFileIsAnIssue) {
  const TempFolder folder;
  const std::string path = (folder.path() / "nope.json").string();
  const JobParseResult result = loadJobFile(path);
  EXPECT_FALSE(result.job.has_value());
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_EQ(result.issues[0].path, path);
  EXPECT_EQ(result.issues[0].str().rfind(path + ": cannot read file", 0), 0U) << result.issues[0].str();
}

TEST(LoadJobFile, FolderIsAnIssue) {
  const TempFolder folder;
  const JobParseResult result = loadJobFile(folder.path().string());
  ASSERT_EQ(result.issues.size(), 1U) << describe(result);
  EXPECT_NE(result.issues[0].message.find("cannot read file"), std::string::npos);
}

TEST(LoadJobFile, ReadsAFileAndSetsItsFolder) {
  const TempFolder folder;
  const std::string path = folder.write("quick.json", R"({"name": "from-file", "tasks": ["hedge"],
      "teacher": {"checkpoint": "teacher.pt"}})");
  const JobParseResult result = loadJobFile(path);
  expectValid(result);
  EXPECT_EQ(result.job->name, "from-file");
  EXPECT_EQ(result.job->teacher.checkpoint, "teacher.pt");
  EXPECT_EQ(fs::path(result.job->baseDir), fs::absolute(folder.path()).lexically_normal());
  EXPECT_TRUE(fs::path(result.job->baseDir).is_absolute());
}

TEST(LoadJobFile, IssuesNameTheFile) {
  const TempFolder folder;
  const std::string bad = folder.write("bad.json", "{\n  \"tasks\": [\"polarity\"],\n  oops\n}");
  const JobParseResult syntax = loadJobFile(bad);
  ASSERT_EQ(syntax.issues.size(), 1U) << describe(syntax);
  EXPECT_EQ(syntax.issues[0].path, bad + ":3:3");

  const std::string invalid = folder.write("invalid.json", R"({"tasks": []})");
  expectSingleIssue(loadJobFile(invalid), "tasks", "must list at least one task");
}

// ---- helpers ------------------------------------------------------------------------------

TEST(JobDiagnostics, TextPosition) {
  const std::string text = "ab\ncd\n\xC3\xA9x";
  EXPECT_EQ(textPositionAt(text, 0).line, 1U);
  EXPECT_EQ(textPositionAt(text, 0).column, 1U);
  EXPECT_EQ(textPositionAt(text, 2).column, 3U); // the newline itself ends line 1
  EXPECT_EQ(textPositionAt(text, 4).line, 2U);
  EXPECT_EQ(textPositionAt(text, 4).column, 2U);
  EXPECT_EQ(textPositionAt(text, 8).line, 3U);
  EXPECT_EQ(textPositionAt(text, 8).column, 2U);   // after the two-byte é
  EXPECT_EQ(textPositionAt(text, 100).column, 3U); // past the end: after the last character
}

TEST(JobDiagnostics, EditDistance) {
  EXPECT_EQ(editDistance("", ""), 0U);
  EXPECT_EQ(editDistance("abc", ""), 3U);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3U);
  EXPECT_EQ(editDistance("temprature", "temperature"), 1U);
  EXPECT_EQ(editDistance("ehads", "heads"), 1U); // a swap is one edit
}

TEST(JobDiagnostics, ClosestMatch) {
  const std::vector<std::string> keys = {"epochs", "batch_size", "lr", "weight_decay"};
  EXPECT_EQ(closestMatch("epoch", keys), std::optional<std::string>("epochs"));
  EXPECT_EQ(closestMatch("BatchSize", keys), std::optional<std::string>("batch_size"));
  EXPECT_EQ(closestMatch("weight-decay", keys), std::optional<std::string>("weight_decay"));
  EXPECT_EQ(closestMatch("lt", keys), std::optional<std::string>("lr"));
  EXPECT_EQ(closestMatch("x", keys), std::nullopt);
  EXPECT_EQ(closestMatch("momentum", keys), std::nullopt);
}

} // namespace
} // namespace kdscope::core
