// The job's field tables (core/job/job_fields.h) drive both reading (parseJob) and writing
// (jobToJson): every field of every section, set to a value other than its default, comes
// back through the writer and the reader; every bound in a table is enforced by parseJob;
// the keys of each table, of each written section and of "known fields" in messages are the
// documented keys, listed here by hand (docs/job-format.md) so that a field missing from a
// table is caught; and a job with every member changed by hand survives jobToJson/parseJob.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tests/core/job_test_support.h"
#include "core/job/job_fields.h"
#include "core/job/job_spec.h"
#include "core/job/json_reader.h"

namespace kdscope::core {
namespace {

using test::expectSameArchitecture;
using test::expectSameJob;
using test::expectSameStudent;
using test::expectSameTraining;
using json::Bound;
using json::Json;
using json::JsonReader;
using jobfields::Field;
using jobfields::FieldKind;
using jobfields::Table;

std::string describe(const std::vector<JobIssue>& issues) {
  std::string out;
  for (const JobIssue& issue : issues) {
    out += "\n  " + issue.str();
  }
  return out.empty() ? "(no issues)" : out;
}

// ---- the documented keys, by hand --------------------------------------------------------------

const std::vector<std::string> kJobKeys = {"name",     "mode",     "seed",     "data_dir", "cache_teacher_outputs",
                                           "teacher_cache_budget_mb", "tasks", "teacher",  "students",
                                           "recording", "knowledge_controls", "analyze",
                                           "replicates", "replicate_seed"};
const std::vector<std::string> kTaskKeys = {"name",           "eval_fraction", "max_examples",      "max_len",
                                            "vocab_size",     "min_freq",      "min_class_size",    "super_classes",
                                            "classes_per_super", "dim",        "examples_per_class", "super_spread",
                                            "class_spread",   "noise",         "file",              "eval_file",
                                            "format",         "text_field",    "text_pair_field",   "feature_fields",
                                            "label_field",    "id_field",      "split_field",       "label_kind",
                                            "num_classes",    "h5_dataset",    "label_file",        "label_column",
                                            "vocab",          "lower_case"};
const std::vector<std::string> kArchitectureKeys = {"type", "layers", "heads", "width", "ffn", "dropout", "hidden"};
const std::vector<std::string> kTrainingKeys = {"epochs",          "batch_size", "lr", "weight_decay",
                                                "warmup_fraction", "grad_clip", "precision"};
const std::vector<std::string> kObjectiveKeys = {
    "lambda",     "temperature",  "t_squared",     "label_smoothing", "label_smoothing_temperature",
    "logit_mse",  "teacher_targets", "hidden_mse", "hidden_cosine",   "pkd",
    "attention_kl", "attention_mse", "infonce",   "mi_alpha",        "alpha",
    "layer_map"};
const std::vector<std::string> kAugmentationKeys = {"mask", "replace", "swap", "delete", "mixup", "mixup_alpha"};
const std::vector<std::string> kTeacherKeys = {"architecture", "training", "checkpoint", "epoch_checkpoints",
                                               "torchscript", "manifest"};
const std::vector<std::string> kStudentKeys = {"name",      "architecture", "training",
                                               "objective", "augmentation", "teacher_epoch",
                                               "torchscript", "manifest"};
const std::vector<std::string> kRecordingKeys = {"attention_examples",    "pooling", "log_every",       "hidden",
                                                 "token_hidden_examples", "float16", "example_records", "max_file_mb",
                                                 "memory_budget_mb"};
const std::vector<std::string> kKnowledgeControlsKeys = {"enabled", "architecture", "training", "lambda",
                                                         "temperature", "ls_match"};

// ---- two valid base jobs: every section present (one task, one student, controls on) ----------

JobSpec textBase() {
  JobSpec job;
  job.name = "base";
  job.tasks.resize(1);
  job.tasks[0].name = "polarity";
  job.teacher.architecture = ArchitectureSpec{"transformer", 2, 2, 64, 128, 0.1, {}};
  job.teacher.training.epochs = 1;
  StudentSpec student;
  student.name = "kd";
  student.architecture = ArchitectureSpec{"transformer", 1, 2, 32, 64, 0.1, {}};
  student.training.epochs = 1;
  student.objective.lambda = 0.5;
  student.objective.temperature = 2.0;
  job.students = {student};
  job.knowledgeControls.enabled = true;
  return job;
}

JobSpec vectorBase() {
  JobSpec job;
  job.name = "base";
  job.tasks.resize(1);
  job.tasks[0].name = "digits";
  job.teacher.architecture.type = "mlp";
  job.teacher.architecture.hidden = {64};
  StudentSpec student;
  student.name = "small";
  student.architecture.type = "mlp";
  student.architecture.hidden = {16};
  job.students = {student};
  job.knowledgeControls.enabled = true;
  job.knowledgeControls.architecture.type = "mlp";
  job.knowledgeControls.architecture.hidden = {8};
  return job;
}

/// A job of mode "distil" with TorchScript teacher and student (the fields "mode" and
/// "torchscript" are refused in the two bases above, which are of mode "train").
JobSpec ownModelsBase() {
  JobSpec job = textBase();
  job.mode = "distil";
  job.knowledgeControls.enabled = false;
  job.teacher.torchscript = "teacher.pt";
  job.students[0].torchscript = "student.pt";
  return job;
}

/// Where a section sits in a job: its path, its JSON pointer, its table, its struct.
template <class S> struct Place {
  std::string path;    ///< as issues name it: "students[0].objective"
  std::string pointer; ///< "/students/0/objective"
  const Table<S>& table;
  std::function<S&(JobSpec&)> get;
  const std::vector<std::string>& documentedKeys;
};

template <class S> std::string childOf(const Place<S>& place, const std::string& key) {
  return place.path.empty() ? key : place.path + "." + key;
}

/// Valid values other than the default, from the field's kind, bound and default; the
/// fields whose valid values depend on more than that are listed by hand.
template <class S> std::vector<Json> nonDefaultValues(const Field<S>& field) {
  const S defaults; // default-initialised: brace-initialising JobSpec here trips -Wmaybe-uninitialized in GCC 12
  const Json fallback = field.write(defaults);
  if (field.key == "label_smoothing") {
    return {"matched", 0.25};
  }
  if (field.key == "layer_map") {
    return {"last", Json::array({0, 2})};
  }
  if (field.key == "replicates") { // a count or a list of seeds
    return {3, Json::array({5, 9})};
  }
  if constexpr (std::is_same_v<S, TaskSpec>) {
    if (field.key == "name") {
      return {"spam", "fashion_mnist"};
    }
    if (field.key == "file") {
      return {"data.csv"}; // a format the extension names
    }
    if (field.key == "feature_fields") {
      return {Json::array({"a", "b"})};
    }
  }
  const Bound& bound = field.bound;
  switch (field.kind) {
  case FieldKind::Boolean:
    return {!fallback.get<bool>()};
  case FieldKind::Integer: {
    const auto d = fallback.get<double>();
    return {d > 0 ? 2 * d : (bound.kind == Bound::Kind::AtLeast ? std::max(bound.low, 0.0) + 1 : 1.0)};
  }
  case FieldKind::Number: {
    const auto d = fallback.get<double>();
    return {d != 0 ? d / 2 : (bound.kind == Bound::Kind::Interval ? (bound.low + bound.high) / 2 : 0.25)};
  }
  case FieldKind::String:
    if (bound.kind == Bound::Kind::OneOf) {
      for (const std::string& choice : bound.choices) {
        if (choice != fallback.get<std::string>()) {
          return {choice};
        }
      }
    }
    return {fallback.get<std::string>() + "x"};
  case FieldKind::IntegerList:
    return {Json::array({3, 2})};
  case FieldKind::Object:
  case FieldKind::ObjectList:
  case FieldKind::Special:
    break;
  }
  ADD_FAILURE() << "no value for " << field.key;
  return {};
}

/// A value outside the field's bound, and the path its issue names.
template <class S> std::pair<Json, std::string> outOfBound(const Field<S>& field, const std::string& path) {
  const Bound& bound = field.bound;
  const std::string at = field.kind == FieldKind::IntegerList ? path + "[0]" : path;
  Json bad;
  switch (bound.kind) {
  case Bound::Kind::AtLeast:
    bad = bound.low - 1;
    break;
  case Bound::Kind::Positive:
    bad = 0.0;
    break;
  case Bound::Kind::Interval:
    bad = bound.high + 1;
    break;
  case Bound::Kind::NotEmpty:
    bad = "";
    break;
  case Bound::Kind::OneOf:
    bad = "zzzzzz";
    break;
  case Bound::Kind::None:
    break;
  }
  if (field.kind == FieldKind::IntegerList) {
    bad = Json::array({bad});
  } else if (field.kind == FieldKind::Integer) {
    bad = bad.get<long long>();
  }
  return {bad, at};
}

/// Sets one field of the section from JSON through the table's reader, which must accept it.
template <class S> void setField(const Field<S>& field, const Json& value, S& section) {
  JsonReader reader;
  field.read(reader, value, field.key, section);
  const std::vector<JobIssue> issues = reader.takeIssues();
  ASSERT_TRUE(issues.empty()) << field.key << " = " << value.dump() << describe(issues);
}

/// The job as parseJob returns it: with the control students added.
JobSpec withControls(JobSpec job) {
  job.students = allStudents(job);
  return job;
}

/// For every field of the section that is not itself a section: each non-default value,
/// set through the table on one of the base jobs that accepts it, is written by jobToJson at
/// the field's key and read back by parseJob to the same job.
template <class S> void roundTripEveryField(const Place<S>& place) {
  for (const Field<S>& field : place.table.fields()) {
    if (field.kind == FieldKind::Object || field.kind == FieldKind::ObjectList) {
      continue; // a section of its own
    }
    for (const Json& sample : nonDefaultValues(field)) {
      SCOPED_TRACE(childOf(place, field.key) + " = " + sample.dump());
      int accepted = 0;
      for (JobSpec job : {textBase(), vectorBase(), ownModelsBase()}) {
        S& section = place.get(job);
        setField(field, sample, section);
        ASSERT_FALSE(field.same(section, S{})) << "the value is the default";
        const std::string text = jobToJson(job);
        const Json written = Json::parse(text).at(Json::json_pointer(place.pointer));
        ASSERT_TRUE(written.contains(field.key)) << text;
        EXPECT_EQ(written[field.key], field.write(section));
        EXPECT_NE(written[field.key], field.write(S{}));
        JobParseResult parsed = parseJob(text);
        if (!parsed.job) {
          continue; // the value does not fit this base job's other fields
        }
        ++accepted;
        const JobSpec expected = withControls(job);
        EXPECT_TRUE(field.same(place.get(*parsed.job), section));
        EXPECT_TRUE(jobfields::jobTable().same(*parsed.job, expected));
        expectSameJob(*parsed.job, expected);
        EXPECT_EQ(parsed.normalizedJson, jobToJson(expected));
      }
      EXPECT_GE(accepted, 1) << "neither base job accepts the value";
    }
  }
}

/// For every field with a bound: a value outside it is reported at the field by parseJob in
/// every base job the bound applies to, and is the job's one issue in at least one of them
/// (token augmentation in a vector job is a second issue at the same path).
template <class S> void checkEveryBound(const Place<S>& place) {
  for (const Field<S>& field : place.table.fields()) {
    if (field.bound.kind == Bound::Kind::None) {
      continue;
    }
    const auto [bad, at] = outOfBound(field, childOf(place, field.key));
    SCOPED_TRACE(at + " = " + bad.dump());
    int alone = 0;
    int applied = 0;
    for (JobSpec job : {textBase(), vectorBase()}) {
      S& section = place.get(job);
      setField(field, bad, section);
      if (field.applies && !field.applies(section)) {
        continue; // the bound does not apply in this base job
      }
      ++applied;
      const JobParseResult parsed = parseJob(jobToJson(job));
      EXPECT_FALSE(parsed.job.has_value());
      const bool found = std::any_of(parsed.issues.begin(), parsed.issues.end(), [&](const JobIssue& issue) {
        return issue.path == at && issue.message.rfind("must ", 0) == 0;
      });
      EXPECT_TRUE(found) << describe(parsed.issues);
      alone += parsed.issues.size() == 1 && found ? 1 : 0;
    }
    EXPECT_GE(applied, 1);
    EXPECT_GE(alone, 1);
  }
}

/// A key no table knows, in the section: its issue lists the table's keys, which are the
/// documented keys.
template <class S> void unknownKeyListsTheTable(const Place<S>& place) {
  SCOPED_TRACE(place.pointer);
  const JobSpec base = textBase();
  Json document = Json::parse(jobToJson(base));
  document[Json::json_pointer(place.pointer + "/zzzzzz")] = 1;
  const JobParseResult parsed = parseJob(document.dump());
  ASSERT_EQ(parsed.issues.size(), 1U) << describe(parsed.issues);
  EXPECT_EQ(parsed.issues[0].path, childOf(place, "zzzzzz"));
  EXPECT_EQ(parsed.issues[0].message, "unknown field (known fields: " + json::joinNames(place.table.keys()) + ")");
  EXPECT_EQ(parsed.issues[0].message, "unknown field (known fields: " + json::joinNames(place.documentedKeys) + ")");
}

/// Runs `check` on every section of a job.
template <class Check> void forEverySection(Check&& check) {
  using namespace jobfields;
  check(Place<JobSpec>{"", "", jobTable(), [](JobSpec& j) -> JobSpec& { return j; }, kJobKeys});
  check(Place<TaskSpec>{"tasks[0]", "/tasks/0", taskTable(), [](JobSpec& j) -> TaskSpec& { return j.tasks[0]; },
                        kTaskKeys});
  check(Place<TeacherSpec>{"teacher", "/teacher", teacherTable(), [](JobSpec& j) -> TeacherSpec& { return j.teacher; },
                           kTeacherKeys});
  check(Place<ArchitectureSpec>{"teacher.architecture", "/teacher/architecture", architectureTable(),
                                [](JobSpec& j) -> ArchitectureSpec& { return j.teacher.architecture; },
                                kArchitectureKeys});
  check(Place<TrainingSpec>{"teacher.training", "/teacher/training", trainingTable(),
                            [](JobSpec& j) -> TrainingSpec& { return j.teacher.training; }, kTrainingKeys});
  check(Place<StudentSpec>{"students[0]", "/students/0", studentTable(),
                           [](JobSpec& j) -> StudentSpec& { return j.students[0]; }, kStudentKeys});
  check(Place<ArchitectureSpec>{"students[0].architecture", "/students/0/architecture", architectureTable(),
                                [](JobSpec& j) -> ArchitectureSpec& { return j.students[0].architecture; },
                                kArchitectureKeys});
  check(Place<TrainingSpec>{"students[0].training", "/students/0/training", trainingTable(),
                            [](JobSpec& j) -> TrainingSpec& { return j.students[0].training; }, kTrainingKeys});
  check(Place<ObjectiveSpec>{"students[0].objective", "/students/0/objective", objectiveTable(),
                             [](JobSpec& j) -> ObjectiveSpec& { return j.students[0].objective; }, kObjectiveKeys});
  check(Place<AugmentationSpec>{"students[0].augmentation", "/students/0/augmentation", augmentationTable(),
                                [](JobSpec& j) -> AugmentationSpec& { return j.students[0].augmentation; },
                                kAugmentationKeys});
  check(Place<RecordingSpec>{"recording", "/recording", recordingTable(),
                             [](JobSpec& j) -> RecordingSpec& { return j.recording; }, kRecordingKeys});
  check(Place<KnowledgeControlsSpec>{"knowledge_controls", "/knowledge_controls", knowledgeControlsTable(),
                                     [](JobSpec& j) -> KnowledgeControlsSpec& { return j.knowledgeControls; },
                                     kKnowledgeControlsKeys});
  check(Place<ArchitectureSpec>{"knowledge_controls.architecture", "/knowledge_controls/architecture",
                                architectureTable(),
                                [](JobSpec& j) -> ArchitectureSpec& { return j.knowledgeControls.architecture; },
                                kArchitectureKeys});
  check(Place<TrainingSpec>{"knowledge_controls.training", "/knowledge_controls/training", trainingTable(),
                            [](JobSpec& j) -> TrainingSpec& { return j.knowledgeControls.training; },
                            kTrainingKeys});
}

// ---- tests --------------------------------------------------------------------------------------

TEST(JobFieldTable, TablesHoldTheDocumentedKeys) {
  forEverySection([](const auto& place) { EXPECT_EQ(place.table.keys(), place.documentedKeys) << place.pointer; });
}

TEST(JobFieldTable, WriterWritesTheDocumentedKeysInOrder) {
  for (const JobSpec& job : {textBase(), vectorBase()}) {
    const Json written = Json::parse(jobToJson(job));
    forEverySection([&written](const auto& place) {
      std::vector<std::string> keys;
      for (const auto& item : written.at(Json::json_pointer(place.pointer)).items()) {
        keys.push_back(item.key());
      }
      EXPECT_EQ(keys, place.documentedKeys) << place.pointer;
    });
  }
}

TEST(JobFieldTable, BaseJobsAreValidAndRoundTrip) {
  for (const JobSpec& job : {textBase(), vectorBase()}) {
    const JobParseResult parsed = parseJob(jobToJson(job));
    ASSERT_TRUE(parsed.job.has_value()) << describe(parsed.issues);
    expectSameJob(*parsed.job, withControls(job));
  }
}

TEST(JobFieldTable, EveryFieldRoundTripsThroughWriterAndReader) {
  forEverySection([](const auto& place) { roundTripEveryField(place); });
}

TEST(JobFieldTable, EveryBoundIsEnforced) {
  forEverySection([](const auto& place) { checkEveryBound(place); });
}

TEST(JobFieldTable, UnknownKeyListsTheTableKeys) {
  forEverySection([](const auto& place) { unknownKeyListsTheTable(place); });
}

TEST(JobFieldTable, SectionTablesRoundTripWithoutAJob) {
  // The table alone, below any rule between fields: write a section, read it back.
  forEverySection([](const auto& place) {
    using S = std::decay_t<decltype(place.get(std::declval<JobSpec&>()))>;
    for (const auto& field : place.table.fields()) {
      if (field.kind == FieldKind::Object || field.kind == FieldKind::ObjectList) {
        continue;
      }
      for (const Json& sample : nonDefaultValues(field)) {
        SCOPED_TRACE(childOf(place, field.key) + " = " + sample.dump());
        S section{};
        setField(field, sample, section);
        const Json written = place.table.write(section);
        EXPECT_EQ(written[field.key], field.write(section));
        S back{};
        JsonReader reader;
        place.table.read(reader, written, "", back);
        EXPECT_TRUE(reader.takeIssues().empty());
        EXPECT_TRUE(place.table.same(back, section));
        EXPECT_TRUE(field.same(back, section));
      }
    }
  });
}

/// Every member of every struct set by hand to a value other than its default.
TEST(JobFieldTable, EveryMemberChangedByHandSurvivesTheWriter) {
  JobSpec text = textBase();
  text.name = "every-member";
  text.seed = 77;
  text.dataDir = "data/dir";
  text.cacheTeacherOutputs = false;
  text.teacherCacheBudgetMb = 3.5;
  text.analyze = false;
  TaskSpec& task = text.tasks[0];
  task.evalFraction = 0.125;
  task.maxExamples = 5000000000L;
  task.maxLen = 40;
  task.vocabSize = 700;
  task.minFreq = 5;
  task.minClassSize = 11;
  task.superClasses = 6;
  task.classesPerSuper = 7;
  task.dim = 9;
  task.examplesPerClass = 13;
  task.superSpread = 0.75;
  task.classSpread = 0.375;
  task.noise = 1.5;
  // Task-file members (a text task read from a CSV; array-only fields are ignored by it).
  task.file = "own/data.csv";
  task.evalFile = "own/dev.csv";
  task.format = "csv";
  task.textField = "premise";
  task.textPairField = "hypothesis";
  task.labelField = "gold";
  task.idField = "pair";
  task.labelKind = "integer";
  task.numClasses = 3;
  task.vocab = "own/vocab.txt";
  task.lowerCase = false;
  text.teacher.architecture = ArchitectureSpec{"transformer", 3, 4, 48, 96, 0.25, {}};
  text.teacher.training = TrainingSpec{4, 8, 0.003, 0.02, 0.3, 2.5};
  text.teacher.checkpoint = "";
  text.teacher.epochCheckpoints = true;
  StudentSpec& s = text.students[0];
  s.architecture = ArchitectureSpec{"transformer", 2, 1, 24, 40, 0.0, {}};
  s.training = TrainingSpec{5, 4, 0.01, 0.0, 0.5, 0.0};
  s.objective.tSquared = false;
  s.objective.labelSmoothing = 0.2;
  s.objective.logitMse = 0.5;
  s.objective.teacherTargets = "pt";
  s.objective.hiddenMse = 0.1;
  s.objective.hiddenCosine = 0.2;
  s.objective.pkd = 0.3;
  s.objective.attentionKl = 0.4;
  s.objective.attentionMse = 0.6;
  s.objective.infoNce = 0.7;
  s.objective.miAlpha = 0.8;
  s.objective.alpha = 0.9;
  s.objective.layerMap = "list";
  s.objective.layerList = {0, 2, 3}; // embeddings, then teacher layers 2 and 3
  s.augmentation = AugmentationSpec{0.05, 0.1, 0.15, 0.2, true, 0.7};
  s.teacherEpoch = 3;
  StudentSpec matched;
  matched.name = "ls_matched";
  matched.architecture = s.architecture;
  matched.objective.labelSmoothingMatched = true;
  matched.objective.labelSmoothingTemperature = 3.0;
  matched.objective.layerMap = "last";
  text.students.push_back(matched);
  text.recording = RecordingSpec{5, "cls", 2, false, 3, true, false, 64.0};
  KnowledgeControlsSpec& kc = text.knowledgeControls;
  kc.architecture = ArchitectureSpec{"transformer", 1, 1, 8, 16, 0.05, {}};
  kc.training = TrainingSpec{2, 16, 0.004, 0.03, 0.0, 3.0};
  kc.lambda = 0.6;
  kc.temperature = 5.0;
  kc.lsMatch = "t1";

  JobSpec vector = vectorBase();
  vector.teacher.architecture.hidden = {40, 30, 20};
  vector.teacher.architecture.dropout = 0.2;
  vector.students[0].architecture.hidden = {12, 6};
  vector.knowledgeControls.architecture.hidden = {5};

  for (const JobSpec& job : {text, vector}) {
    const std::string written = jobToJson(job);
    const JobParseResult parsed = parseJob(written);
    ASSERT_TRUE(parsed.job.has_value()) << describe(parsed.issues);
    expectSameJob(*parsed.job, withControls(job));
  }
  // A few values as they stand in the text, spelled by hand.
  const Json j = Json::parse(jobToJson(text));
  EXPECT_EQ(j["students"][0]["augmentation"]["delete"], 0.2);
  EXPECT_EQ(j["students"][0]["objective"]["infonce"], 0.7);
  EXPECT_EQ(j["students"][0]["objective"]["layer_map"], Json::array({0, 2, 3}));
  EXPECT_EQ(j["students"][1]["objective"]["label_smoothing"], "matched");
  EXPECT_EQ(j["students"][1]["objective"]["layer_map"], "last");
  EXPECT_EQ(j["tasks"][0]["max_examples"], 5000000000LL);
  EXPECT_EQ(j["recording"]["max_file_mb"], 64.0);
  EXPECT_EQ(j["knowledge_controls"]["temperature"], 5.0);
  EXPECT_EQ(j["knowledge_controls"]["ls_match"], "t1");
  EXPECT_EQ(j["students"][1]["objective"]["label_smoothing_temperature"], 3.0);
  EXPECT_EQ(j["teacher"]["epoch_checkpoints"], true);
  EXPECT_EQ(j["analyze"], false);
}

TEST(JobFieldTable, KnowledgeControlsArePresentMeansEnabled) {
  // Read through the table: the section's presence switches it on, "enabled": false off.
  const JobParseResult on = parseJob(R"({"tasks": ["polarity"], "knowledge_controls": {}})");
  ASSERT_TRUE(on.job.has_value()) << describe(on.issues);
  EXPECT_TRUE(on.job->knowledgeControls.enabled);
  EXPECT_EQ(on.job->students.size(), 4U); // ctl-ce, ctl-ls, ctl-kdpt, ctl-kd
  const JobParseResult off = parseJob(R"({"tasks": ["polarity"], "knowledge_controls": {"enabled": false}})");
  ASSERT_TRUE(off.job.has_value()) << describe(off.issues);
  EXPECT_FALSE(off.job->knowledgeControls.enabled);
  EXPECT_TRUE(off.job->students.empty());
  const JobParseResult absent = parseJob(R"({"tasks": ["polarity"]})");
  ASSERT_TRUE(absent.job.has_value());
  EXPECT_FALSE(absent.job->knowledgeControls.enabled);
}

} // namespace
} // namespace kdscope::core
