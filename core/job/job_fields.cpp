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

/// "feature_fields": an array of column names (a task read from a file).
Field<TaskSpec> featureFieldsField() {
  return special<TaskSpec>(
      "feature_fields", Bound{},
      [](JsonReader& r, const Json& value, const std::string& path, TaskSpec& task) {
        if (!value.is_array()) {
          r.typeError(path, "an array of column names", value);
          return;
        }
        task.featureFields.clear();
        r.readArray(value, path, "an array of column names", [&](const Json& element, const std::string& at) {
          r.readValue(element, at, task.featureFields.emplace_back());
        });
      },
      [](const TaskSpec& task) { return Json(task.featureFields); },
      [](JsonReader& r, const TaskSpec& task, const std::string& path) {
        for (std::size_t i = 0; i < task.featureFields.size(); ++i) {
          r.checkBound(json::indexPath(path, i), task.featureFields[i], json::notEmpty());
        }
      },
      [](const TaskSpec& a, const TaskSpec& b) { return a.featureFields == b.featureFields; });
}

/// "replicates": a count (0: one run) or a list of distinct positive seeds.
Field<JobSpec> replicatesField() {
  return special<JobSpec>(
      "replicates", Bound{},
      [](JsonReader& r, const Json& value, const std::string& path, JobSpec& job) {
        job.replicates.clear();
        job.replicateCount = 0;
        if (value.is_number()) {
          r.readValue(value, path, job.replicateCount);
          return;
        }
        if (!value.is_array()) {
          r.typeError(path, "a count of replicates or an array of seeds", value);
          return;
        }
        for (std::size_t i = 0; i < value.size(); ++i) {
          std::uint64_t seed = 0;
          const std::string at = json::indexPath(path, i);
          r.readValue(value[i], at, seed);
          if (seed == 0) {
            r.badValue(at, "a replicate seed must be positive (0 means the job seed)");
          } else if (std::find(job.replicates.begin(), job.replicates.end(), seed) != job.replicates.end()) {
            r.badValue(at, "replicate seed " + std::to_string(seed) + " is listed twice");
          }
          job.replicates.push_back(seed);
        }
      },
      [](const JobSpec& job) {
        return job.replicates.empty() ? Json(job.replicateCount) : Json(job.replicates);
      },
      [](JsonReader& r, const JobSpec& job, const std::string& path) {
        if (job.replicates.empty()) {
          r.checkInterval(path, job.replicateCount, 0, true, 1000, true);
        }
      },
      [](const JobSpec& a, const JobSpec& b) {
        return a.replicates == b.replicates && a.replicateCount == b.replicateCount;
      });
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
      // A task read from a file (rules between these: job_validation's validateTaskFile).
      value("file", &TaskSpec::file),
      value("eval_file", &TaskSpec::evalFile),
      choice("format", &TaskSpec::format, {"auto", "jsonl", "csv", "tsv", "npy", "h5"}),
      value("text_field", &TaskSpec::textField, json::notEmpty()),
      value("text_pair_field", &TaskSpec::textPairField),
      featureFieldsField(),
      value("label_field", &TaskSpec::labelField, json::notEmpty()),
      value("id_field", &TaskSpec::idField),
      value("split_field", &TaskSpec::splitField),
      choice("label_kind", &TaskSpec::labelKind, {"auto", "name", "integer"}),
      value("num_classes", &TaskSpec::numClasses, atLeast(0)),
      value("h5_dataset", &TaskSpec::h5Dataset),
      value("label_file", &TaskSpec::labelFile),
      value("label_column", &TaskSpec::labelColumn),
      value("vocab", &TaskSpec::vocab),
      value("lower_case", &TaskSpec::lowerCase),
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
      choice("precision", &TrainingSpec::precision, {"fp32", "bf16", "auto"}),
  });
  return table;
}

const Table<ObjectiveSpec>& objectiveTable() {
  static const Table<ObjectiveSpec> table({
      value("lambda", &ObjectiveSpec::lambda, closed(0, 1)),
      value("temperature", &ObjectiveSpec::temperature, positive()),
      value("t_squared", &ObjectiveSpec::tSquared),
      labelSmoothingField(),
      value("label_smoothing_temperature", &ObjectiveSpec::labelSmoothingTemperature, positive()),
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
          choice("ls_match", &KnowledgeControlsSpec::lsMatch, {"kd_temperature", "t1"}),
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
      replicatesField(),
      value("replicate_seed", &JobSpec::replicateSeed),
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
