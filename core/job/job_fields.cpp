// The job file's field tables (job_fields.h): one per section, each field once. The
// order of a table is the order of the normalised job's keys (jobToJson) and of "known
// fields" in messages; docs/job-format.md documents each field.

#include "core/job/job_fields.h"

namespace kdscope::core::jobfields {
namespace {

using json::atLeast;
using json::closed;
using json::closedOpen;
using json::openOpen;
using json::openClosed;
using json::positive;

bool isTransformer(const ArchitectureSpec& arch) {
  return arch.type == "transformer";
}

bool isMlp(const ArchitectureSpec& arch) {
  return arch.type == "mlp";
}

/// A field whose JSON has more than one form.
template <class S>
Field<S> special(std::string key, Bound bound,
                 std::function<void(JsonReader&, const Json&, const std::string&, S&)> read,
                 std::function<Json(const S&)> write,
                 std::function<void(JsonReader&, const S&, const std::string&)> check,
                 std::function<bool(const S&, const S&)> same) {
  Field<S> f;
  f.key = std::move(key);
  f.kind = FieldKind::Special;
  f.bound = std::move(bound);
  f.read = std::move(read);
  f.write = std::move(write);
  f.check = std::move(check);
  f.same = std::move(same);
  return f;
}

/// "label_smoothing": a number in [0, 1), or "matched" (the epsilon matched to the teacher,
/// computed by the engine).
Field<ObjectiveSpec> labelSmoothingField() {
  const Bound bound = closedOpen(0, 1);
  return special<ObjectiveSpec>(
      "label_smoothing", bound,
      [](JsonReader& r, const Json& value, const std::string& path, ObjectiveSpec& objective) {
        if (value.is_string()) {
          if (value.get<std::string>() == "matched") {
            objective.labelSmoothingMatched = true;
            objective.labelSmoothing = 0.0;
          } else {
            r.badValue(path, "must be a number in [0, 1) or 'matched', got " +
                                 json::singleQuoted(value.get<std::string>()));
          }
          return;
        }
        objective.labelSmoothingMatched = false;
        r.readValue(value, path, objective.labelSmoothing);
      },
      [](const ObjectiveSpec& objective) {
        return objective.labelSmoothingMatched ? Json("matched") : Json(objective.labelSmoothing);
      },
      [bound](JsonReader& r, const ObjectiveSpec& objective, const std::string& path) {
        r.checkBound(path, objective.labelSmoothing, bound);
      },
      [](const ObjectiveSpec& a, const ObjectiveSpec& b) {
        return a.labelSmoothing == b.labelSmoothing && a.labelSmoothingMatched == b.labelSmoothingMatched;
      });
}

/// "layer_map": "uniform", "last", or an explicit list of teacher hidden-state indices
/// (layerMap "list"; whether the list fits the models is job_validation's).
Field<ObjectiveSpec> layerMapField() {
  const Bound bound = json::oneOf({"uniform", "last"});
  Field<ObjectiveSpec> f = special<ObjectiveSpec>(
      "layer_map", bound,
      [](JsonReader& r, const Json& value, const std::string& path, ObjectiveSpec& objective) {
        if (value.is_string()) {
          objective.layerMap = value.get<std::string>();
          objective.layerList.clear();
          return;
        }
        if (!value.is_array()) {
          r.typeError(path, "'uniform', 'last' or an array of teacher layer indices", value);
          return;
        }
        objective.layerMap = "list";
        r.readIntegers(value, path, objective.layerList, "an array of layer widths");
      },
      [](const ObjectiveSpec& objective) {
        return objective.layerMap == "list" ? Json(objective.layerList) : Json(objective.layerMap);
      },
      [bound](JsonReader& r, const ObjectiveSpec& objective, const std::string& path) {
        r.checkBound(path, objective.layerMap, bound);
      },
      [](const ObjectiveSpec& a, const ObjectiveSpec& b) {
        return a.layerMap == b.layerMap && a.layerList == b.layerList;
      });
  return std::move(f).when([](const ObjectiveSpec& objective) { return objective.layerMap != "list"; });
}

/// A task is an object, or just its name.
void readTask(JsonReader& r, const Json& element, const std::string& path, TaskSpec& task) {
  if (element.is_string()) {
    task.name = element.get<std::string>();
  } else if (element.is_object()) {
    taskTable().read(r, element, path, task);
  } else {
    r.typeError(path, "a task name or an object", element);
  }
}

/// knowledge_controls: present means enabled (unless it says "enabled": false).
void enableWhenPresent(KnowledgeControlsSpec& controls) {
  controls.enabled = true;
}

} // namespace

const Table<TaskSpec>& taskTable() {
  static const Table<TaskSpec> table({
      value("name", &TaskSpec::name), // checked against the known tasks by job_validation
      value("eval_fraction", &TaskSpec::evalFraction, openOpen(0, 1)),
      value("max_examples", &TaskSpec::maxExamples, atLeast(0)),
      value("max_len", &TaskSpec::maxLen, atLeast(2)),
      value("vocab_size", &TaskSpec::vocabSize, atLeast(4)),
      value("min_freq", &TaskSpec::minFreq, atLeast(1)),
      value("min_class_size", &TaskSpec::minClassSize, atLeast(1)),
      value("super_classes", &TaskSpec::superClasses, atLeast(1)),
      value("classes_per_super", &TaskSpec::classesPerSuper, atLeast(1)),
      value("dim", &TaskSpec::dim, atLeast(1)),
      value("examples_per_class", &TaskSpec::examplesPerClass, atLeast(1)),
      value("super_spread", &TaskSpec::superSpread, positive()),
      value("class_spread", &TaskSpec::classSpread, positive()),
      value("noise", &TaskSpec::noise, positive()),
  });
  return table;
}

const Table<ArchitectureSpec>& architectureTable() {
  static const Table<ArchitectureSpec> table({
      choice("type", &ArchitectureSpec::type, {"transformer", "mlp"}),
      value("layers", &ArchitectureSpec::layers, atLeast(1)).when(isTransformer),
      value("heads", &ArchitectureSpec::heads, atLeast(1)).when(isTransformer),
      value("width", &ArchitectureSpec::width, atLeast(1)).when(isTransformer),
      value("ffn", &ArchitectureSpec::ffn, atLeast(1)).when(isTransformer),
      value("dropout", &ArchitectureSpec::dropout, closedOpen(0, 1)),
      integers("hidden", &ArchitectureSpec::hidden, "an array of layer widths", atLeast(1)).when(isMlp),
  });
  return table;
}

const Table<TrainingSpec>& trainingTable() {
  static const Table<TrainingSpec> table({
      value("epochs", &TrainingSpec::epochs, atLeast(1)),
      value("batch_size", &TrainingSpec::batchSize, atLeast(1)),
      value("lr", &TrainingSpec::lr, positive()),
      value("weight_decay", &TrainingSpec::weightDecay, atLeast(0)),
      value("warmup_fraction", &TrainingSpec::warmupFraction, closed(0, 1)),
      value("grad_clip", &TrainingSpec::gradClip, atLeast(0)),
  });
  return table;
}

const Table<ObjectiveSpec>& objectiveTable() {
  static const Table<ObjectiveSpec> table({
      value("lambda", &ObjectiveSpec::lambda, closed(0, 1)),
      value("temperature", &ObjectiveSpec::temperature, positive()),
      value("t_squared", &ObjectiveSpec::tSquared),
      labelSmoothingField(),
      value("logit_mse", &ObjectiveSpec::logitMse, atLeast(0)),
      choice("teacher_targets", &ObjectiveSpec::teacherTargets, {"full", "pt"}),
      value("hidden_mse", &ObjectiveSpec::hiddenMse, atLeast(0)),
      value("hidden_cosine", &ObjectiveSpec::hiddenCosine, atLeast(0)),
      value("pkd", &ObjectiveSpec::pkd, atLeast(0)),
      value("attention_kl", &ObjectiveSpec::attentionKl, atLeast(0)),
      value("attention_mse", &ObjectiveSpec::attentionMse, atLeast(0)),
      value("infonce", &ObjectiveSpec::infoNce, atLeast(0)),
      value("mi_alpha", &ObjectiveSpec::miAlpha, atLeast(0)),
      value("alpha", &ObjectiveSpec::alpha, closed(0, 1)),
      layerMapField(),
  });
  return table;
}

const Table<AugmentationSpec>& augmentationTable() {
  static const Table<AugmentationSpec> table({
      value("mask", &AugmentationSpec::mask, closed(0, 1)),
      value("replace", &AugmentationSpec::replace, closed(0, 1)),
      value("swap", &AugmentationSpec::swap, closed(0, 1)),
      value("delete", &AugmentationSpec::deletion, closed(0, 1)),
      value("mixup", &AugmentationSpec::mixup),
      value("mixup_alpha", &AugmentationSpec::mixupAlpha, positive()),
  });
  return table;
}

const Table<TeacherSpec>& teacherTable() {
  static const Table<TeacherSpec> table(
      {
          section("architecture", &TeacherSpec::architecture, architectureTable()),
          section("training", &TeacherSpec::training, trainingTable()),
          value("checkpoint", &TeacherSpec::checkpoint),
          value("epoch_checkpoints", &TeacherSpec::epochCheckpoints),
          value("torchscript", &TeacherSpec::torchscript), // modes: job_validation
          value("manifest", &TeacherSpec::manifest),
      },
      /*suggestNested=*/true);
  return table;
}

const Table<StudentSpec>& studentTable() {
  static const Table<StudentSpec> table(
      {
          value("name", &StudentSpec::name), // required, unique, a file name: job_validation
          section("architecture", &StudentSpec::architecture, architectureTable()),
          section("training", &StudentSpec::training, trainingTable()),
          section("objective", &StudentSpec::objective, objectiveTable()),
          section("augmentation", &StudentSpec::augmentation, augmentationTable()),
          value("teacher_epoch", &StudentSpec::teacherEpoch, atLeast(0)),
          value("torchscript", &StudentSpec::torchscript), // modes: job_validation
          value("manifest", &StudentSpec::manifest),
      },
      /*suggestNested=*/true);
  return table;
}

const Table<RecordingSpec>& recordingTable() {
  static const Table<RecordingSpec> table({
      value("attention_examples", &RecordingSpec::attentionExamples, atLeast(0)),
      choice("pooling", &RecordingSpec::pooling, {"mean", "cls"}),
      value("log_every", &RecordingSpec::logEvery, atLeast(1)),
      value("hidden", &RecordingSpec::hidden),
      value("token_hidden_examples", &RecordingSpec::tokenHiddenExamples, atLeast(0)),
      value("float16", &RecordingSpec::float16),
      value("example_records", &RecordingSpec::exampleRecords),
      value("max_file_mb", &RecordingSpec::maxFileMb, atLeast(0)),
      value("memory_budget_mb", &RecordingSpec::memoryBudgetMb, atLeast(0)),
  });
  return table;
}

const Table<KnowledgeControlsSpec>& knowledgeControlsTable() {
  static const Table<KnowledgeControlsSpec> table(
      {
          value("enabled", &KnowledgeControlsSpec::enabled),
          section("architecture", &KnowledgeControlsSpec::architecture, architectureTable()),
          section("training", &KnowledgeControlsSpec::training, trainingTable()),
          value("lambda", &KnowledgeControlsSpec::lambda, openClosed(0, 1)),
          value("temperature", &KnowledgeControlsSpec::temperature, positive()),
      },
      /*suggestNested=*/true);
  return table;
}

const Table<JobSpec>& jobTable() {
  static const Table<JobSpec> table({
      value("name", &JobSpec::name, json::notEmpty()),
      choice("mode", &JobSpec::mode, {"train", "compare", "distil"}),
      value("seed", &JobSpec::seed),
      value("data_dir", &JobSpec::dataDir),
      value("cache_teacher_outputs", &JobSpec::cacheTeacherOutputs),
      value("teacher_cache_budget_mb", &JobSpec::teacherCacheBudgetMb, atLeast(0)),
      sections<JobSpec, TaskSpec>("tasks", &JobSpec::tasks, taskTable(), readTask),
      section("teacher", &JobSpec::teacher, teacherTable()),
      sections("students", &JobSpec::students, studentTable()),
      section("recording", &JobSpec::recording, recordingTable()),
      section("knowledge_controls", &JobSpec::knowledgeControls, knowledgeControlsTable(), enableWhenPresent),
      value("analyze", &JobSpec::analyze),
  });
  return table;
}

JobSpec readJob(JsonReader& reader, const Json& root) {
  JobSpec job;
  reader.enter("");
  jobTable().read(reader, root, "", job);
  reader.leave("");
  return job;
}

Json writeJob(const JobSpec& job) {
  return jobTable().write(job);
}

} // namespace kdscope::core::jobfields
