// The job's validation (job_validation.h): the bounds of the field tables, section by
// section, and the rules between fields. Issues are collected in the reader, which sorts
// them into document order at the end; the order of the checks here only decides between
// issues on the same path.

#include "core/job/job_validation.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <string_view>
#include <utility>

#include "core/data/task_source.h"
#include "core/job/diagnostics.h"
#include "core/job/job_fields.h"

namespace kdscope::core {
namespace {

using json::childPath;
using json::indexPath;
using json::joinNames;
using json::Json;
using json::JsonReader;
using json::singleQuoted;
using jobfields::architectureTable;
using jobfields::augmentationTable;
using jobfields::jobTable;
using jobfields::knowledgeControlsTable;
using jobfields::objectiveTable;
using jobfields::recordingTable;
using jobfields::studentTable;
using jobfields::taskTable;
using jobfields::trainingTable;

constexpr std::array<std::string_view, 6> kTextTasks = {"polarity", "hedge",   "spam",
                                                        "supersense", "fortune", "synthetic_order"};
constexpr std::array<std::string_view, 3> kVectorTasks = {"fashion_mnist", "digits", "synthetic_hierarchy"};
constexpr std::string_view kTransformer = "transformer";
constexpr std::string_view kMlp = "mlp";
constexpr std::string_view kReservedStudentName = "teacher";

enum class TaskKind { Text, Vector, Unknown };

TaskKind taskKind(std::string_view name) {
  if (std::find(kTextTasks.begin(), kTextTasks.end(), name) != kTextTasks.end()) {
    return TaskKind::Text;
  }
  if (std::find(kVectorTasks.begin(), kVectorTasks.end(), name) != kVectorTasks.end()) {
    return TaskKind::Vector;
  }
  return TaskKind::Unknown;
}

bool isArrayFormat(const std::string& format) {
  return format == "npy" || format == "h5";
}

/// A task's kind: built-in by name; from a file by its fields (feature columns or an array
/// are vectors, anything else text).
TaskKind taskKind(const TaskSpec& task) {
  if (!task.fromFile()) {
    return taskKind(task.name);
  }
  return !task.featureFields.empty() || isArrayFormat(taskFileFormat(task)) ? TaskKind::Vector : TaskKind::Text;
}

bool isFileName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string> allTaskNames() {
  std::vector<std::string> names(kTextTasks.begin(), kTextTasks.end());
  names.insert(names.end(), kVectorTasks.begin(), kVectorTasks.end());
  return names;
}

int depthOf(const ArchitectureSpec& arch) {
  return arch.type == kMlp ? static_cast<int>(arch.hidden.size()) : arch.layers;
}

class JobValidator {
public:
  JobValidator(const JobSpec& job, const Json& root, JsonReader& reader) : m_job(job), m_r(reader) {
    // Where each task's name was written: the element itself (a bare name) or its "name".
    const auto tasks = root.find("tasks");
    for (std::size_t i = 0; i < job.tasks.size(); ++i) {
      const std::string at = indexPath("tasks", i);
      const bool bare = tasks != root.end() && tasks->is_array() && i < tasks->size() && (*tasks)[i].is_string();
      m_taskNamePaths.push_back(bare ? at : childPath(at, "name"));
    }
  }

  void validate() {
    jobTable().checkBounds(m_r, m_job, "");
    validateTasks();
    validateArchitecture(m_job.teacher.architecture, "teacher.architecture");
    trainingTable().checkBounds(m_r, m_job.teacher.training, "teacher.training");
    validateStudents();
    for (std::size_t i = 0; i < m_job.students.size(); ++i) {
      validateStudentTeacher(m_job.students[i], indexPath("students", i));
    }
    recordingTable().checkBounds(m_r, m_job.recording, "recording");
    validateKnowledgeControls();
    validateArchitectureFit();
    validateMode();
  }

private:
  void validateTasks() {
    if (!m_r.isPresent("tasks")) {
      m_r.issue("tasks", "required field is missing (list at least one task)");
      return;
    }
    m_r.check(!m_job.tasks.empty(), "tasks", "must list at least one task");
    std::map<std::string, std::size_t> firstIndex;
    for (std::size_t i = 0; i < m_job.tasks.size(); ++i) {
      const TaskSpec& task = m_job.tasks[i];
      const std::string& namePath = m_taskNamePaths[i];
      if (!m_r.isBad(namePath) && !m_r.isPresent(namePath)) {
        m_r.badValue(namePath, "required field is missing (the task's name, e.g. 'polarity')");
      }
      if (task.fromFile()) {
        if (!isFileName(task.name) && m_r.isPresent(namePath)) {
          m_r.check(false, namePath,
                    "a task read from a file needs a name of letters, digits, '_' and '-', got " +
                        singleQuoted(task.name));
        } else if (const auto [it, inserted] = firstIndex.emplace(task.name, i); !inserted) {
          m_r.check(false, namePath,
                    "duplicate task " + singleQuoted(task.name) + " (also " + indexPath("tasks", it->second) + ")");
        }
        validateTaskFile(task, indexPath("tasks", i));
      } else if (taskKind(task.name) == TaskKind::Unknown) {
        std::string message = "unknown task " + singleQuoted(task.name);
        if (const auto match = closestMatch(task.name, allTaskNames())) {
          message += " (did you mean " + singleQuoted(*match) + "?)";
        }
        m_r.check(false, namePath, message + "; known tasks: " + joinNames(allTaskNames()));
      } else if (const auto [it, inserted] = firstIndex.emplace(task.name, i); !inserted) {
        m_r.check(false, namePath,
                  "duplicate task " + singleQuoted(task.name) + " (also " + indexPath("tasks", it->second) + ")");
      }
      taskTable().checkBounds(m_r, task, indexPath("tasks", i));
      if (!task.fromFile() && taskKind(task.name) == TaskKind::Vector) {
        const std::string vocabPath = childPath(indexPath("tasks", i), "vocab");
        m_r.check(task.vocab.empty(), vocabPath,
                  "a vector task has no tokenizer (a vocabulary applies to text tasks)");
      }
    }
  }

  /// The rules between the fields of a task read from a file (docs/job-format.md): which
  /// fields apply to rows (JSON Lines, CSV, TSV) and which to arrays (.npy, .h5). Whether
  /// the files exist and every row is good is checked where the job file's folder is known
  /// (checkTaskFiles, core/data/dataset_file.h).
  void validateTaskFile(const TaskSpec& task, const std::string& at) {
    const std::string format = taskFileFormat(task);
    const TaskSpec defaults;
    // Judged by value, not by presence: the normalised job writes every key, defaults included.
    const auto refuse = [&](const char* key, bool given, const std::string& why) {
      if (given) {
        m_r.check(false, childPath(at, key), why);
      }
    };
    if (format.empty()) {
      m_r.check(false, childPath(at, "file"),
                "cannot tell the format of " + singleQuoted(task.file) +
                    " from its extension (.jsonl, .csv, .tsv, .npy, .h5); set 'format'");
      return;
    }
    if (isArrayFormat(format)) {
      const std::string why = "does not apply to an ." + format + " array (its rows are the features; "
                              "labels come from 'label_file')";
      refuse("eval_file", !task.evalFile.empty(), why);
      refuse("text_field", task.textField != defaults.textField, why);
      refuse("text_pair_field", !task.textPairField.empty(), why);
      refuse("feature_fields", !task.featureFields.empty(), why);
      refuse("id_field", !task.idField.empty(), why);
      refuse("split_field", !task.splitField.empty(), why);
      refuse("vocab", !task.vocab.empty(), why);
      m_r.check(!task.labelFile.empty(), childPath(at, "label_file"),
                "an ." + format + " array needs a label file (one label per line, or a CSV with 'label_column')");
      if (format == "h5") {
        m_r.check(!task.h5Dataset.empty(), childPath(at, "h5_dataset"),
                  "an .h5 array needs the name of the dataset that holds the [N, D] features");
      } else {
        refuse("h5_dataset", !task.h5Dataset.empty(), "applies to .h5 arrays only");
      }
      return;
    }
    const std::string rowsOnly = "applies to .npy / .h5 arrays only; rows carry their label in 'label_field'";
    refuse("h5_dataset", !task.h5Dataset.empty(), rowsOnly);
    refuse("label_file", !task.labelFile.empty(), rowsOnly);
    refuse("label_column", !task.labelColumn.empty(), rowsOnly);
    if (!task.featureFields.empty()) {
      refuse("text_field", task.textField != defaults.textField,
             "a task has either a text field or feature columns, not both");
      refuse("text_pair_field", !task.textPairField.empty(), "a vector task (feature columns) has no text pair");
      refuse("vocab", !task.vocab.empty(), "a vector task (feature columns) has no tokenizer");
    }
    refuse("split_field", !task.evalFile.empty() && !task.splitField.empty(),
           "the split comes from either a split column or an eval file, not both");
  }

  /// The table's bounds (type; layers, heads, width, ffn of a transformer; dropout; the
  /// widths of an mlp), then width against heads and "hidden" against the type.
  void validateArchitecture(const ArchitectureSpec& arch, const std::string& path) {
    architectureTable().checkBounds(m_r, arch, path);
    const std::string typePath = childPath(path, "type");
    const std::string hiddenPath = childPath(path, "hidden");
    if (arch.type == kTransformer) {
      const std::string widthPath = childPath(path, "width");
      const std::string headsPath = childPath(path, "heads");
      if (arch.heads >= 1 && arch.width >= 1 && !m_r.isBad(headsPath)) {
        m_r.check(arch.width % arch.heads == 0, widthPath,
                  "must be divisible by heads (" + std::to_string(arch.heads) + "), got " +
                      std::to_string(arch.width));
      }
      // A transformer ignores "hidden": a list there means the type was forgotten.
      m_r.check(arch.hidden.empty(), hiddenPath,
                "is only used by an 'mlp' architecture, but type is 'transformer'" +
                    std::string(m_r.isPresent(typePath) ? "" : " (the default)"));
    } else if (arch.type == kMlp) {
      m_r.check(!arch.hidden.empty(), hiddenPath, "an 'mlp' needs at least one hidden layer width, e.g. [256, 128]");
    }
  }

  void validateStudents() {
    std::map<std::string, std::size_t> firstIndex;
    for (std::size_t i = 0; i < m_job.students.size(); ++i) {
      const StudentSpec& student = m_job.students[i];
      const std::string at = indexPath("students", i);
      const std::string namePath = childPath(at, "name");
      if (!m_r.isBad(namePath) && !m_r.isPresent(namePath)) {
        m_r.badValue(namePath, "required field is missing (a unique name such as 'kd')");
      } else if (student.name.empty()) {
        m_r.check(false, namePath, "must not be empty");
      } else if (!std::all_of(student.name.begin(), student.name.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                          c == '-';
                 })) {
        // Names become run-file groups and file names.
        m_r.check(false, namePath, "must use only letters, digits, '_' and '-', got " + singleQuoted(student.name));
      } else if (student.name == kReservedStudentName) {
        m_r.check(false, namePath, "'teacher' is reserved for the teacher's records");
      } else if (student.name == "knowledge") {
        // The task's knowledge-level results are stored under the name "knowledge".
        m_r.check(false, namePath, "'knowledge' is reserved for the analysis of the knowledge levels");
      } else if (const auto [it, inserted] = firstIndex.emplace(student.name, i); !inserted) {
        m_r.check(false, namePath,
                  "duplicate student name " + singleQuoted(student.name) + " (also " +
                      indexPath("students", it->second) + ")");
      }
      validateArchitecture(student.architecture, childPath(at, "architecture"));
      trainingTable().checkBounds(m_r, student.training, childPath(at, "training"));
      objectiveTable().checkBounds(m_r, student.objective, childPath(at, "objective"));
    }
  }

  /// Rules between a student and its teacher: the layer map of the intermediate terms,
  /// attention terms on transformers only, token augmentation on text tasks only, and a
  /// teacher epoch the teacher will have.
  void validateStudentTeacher(const StudentSpec& student, const std::string& at) {
    const ObjectiveSpec& objective = student.objective;
    const std::string objectivePath = childPath(at, "objective");
    const std::string mapPath = childPath(objectivePath, "layer_map");
    const ArchitectureSpec& teacher = m_job.teacher.architecture;
    const bool knownTypes = (student.architecture.type == kTransformer || student.architecture.type == kMlp) &&
                            (teacher.type == kTransformer || teacher.type == kMlp);
    const bool attentionTerms = objective.attentionKl > 0 || objective.attentionMse > 0;
    const bool intermediate = attentionTerms || objective.hiddenMse > 0 || objective.hiddenCosine > 0 ||
                              objective.pkd > 0 || objective.infoNce > 0 || objective.miAlpha > 0;
    if (knownTypes && attentionTerms) {
      for (const auto& [key, weight] : {std::pair<const char*, double>{"attention_kl", objective.attentionKl},
                                        {"attention_mse", objective.attentionMse}}) {
        if (weight > 0 && (student.architecture.type != kTransformer || teacher.type != kTransformer)) {
          m_r.check(false, childPath(objectivePath, key),
                    "needs attention maps: the student and the teacher must both be transformers");
        }
      }
    }
    const int ls = depthOf(student.architecture);
    const int lt = depthOf(teacher);
    if (knownTypes && intermediate && ls >= 1 && lt >= 1 && !m_job.teacher.isTorchScript() &&
        !student.isTorchScript()) {
      validateLayerMap(objective, mapPath, ls, lt, attentionTerms);
    }
    studentTable().checkBounds(m_r, student, at); // teacher_epoch >= 0
    const std::string epochPath = childPath(at, "teacher_epoch");
    if (m_job.teacher.checkpoint.empty() && student.teacherEpoch > m_job.teacher.training.epochs) {
      m_r.check(false, epochPath,
                "the teacher trains for " + std::to_string(m_job.teacher.training.epochs) +
                    " epochs, so there is no checkpoint after epoch " + std::to_string(student.teacherEpoch));
    }
    const std::string augmentationPath = childPath(at, "augmentation");
    augmentationTable().checkBounds(m_r, student.augmentation, augmentationPath);
    const bool vectorJob = std::any_of(m_job.tasks.begin(), m_job.tasks.end(),
                                       [](const TaskSpec& task) { return taskKind(task) == TaskKind::Vector; });
    if (vectorJob) {
      for (const auto& [key, rate] : {std::pair<const char*, double>{"mask", student.augmentation.mask},
                                      {"replace", student.augmentation.replace},
                                      {"swap", student.augmentation.swap},
                                      {"delete", student.augmentation.deletion}}) {
        m_r.check(rate == 0.0, childPath(augmentationPath, key),
                  "token augmentation needs a text task (vector tasks can use mixup only)");
      }
    }
  }

  /// A student of `ls` layers against a teacher of `lt` (both >= 1).
  void validateLayerMap(const ObjectiveSpec& objective, const std::string& mapPath, int ls, int lt,
                        bool attentionTerms) {
    const std::string counts = " (student " + std::to_string(ls) + ", teacher " + std::to_string(lt) + ")";
    if (objective.layerMap == "last") {
      m_r.check(ls <= lt, mapPath, "'last' needs a student with at most as many layers as the teacher" + counts);
    } else if (objective.layerMap == "uniform" && attentionTerms) {
      m_r.check(ls <= lt, mapPath,
                "'uniform' maps attention layers only for a student with at most as many layers as the "
                "teacher" + counts);
    } else if (objective.layerMap == "list") {
      if (static_cast<int>(objective.layerList.size()) != ls + 1) {
        m_r.check(false, mapPath,
                  "must list one teacher hidden state (0.." + std::to_string(lt) + ") for each of the student's " +
                      std::to_string(ls + 1) + " hidden states (index 0 = embeddings), got " +
                      std::to_string(objective.layerList.size()));
        return;
      }
      for (std::size_t i = 0; i < objective.layerList.size(); ++i) {
        const int j = objective.layerList[i];
        const std::string itemPath = indexPath(mapPath, i);
        if (j < 0 || j > lt) {
          m_r.check(false, itemPath,
                    "must be in [0, " + std::to_string(lt) + "] (the teacher's hidden states), got " +
                        std::to_string(j));
        } else if (i > 0 && j == 0 && attentionTerms) {
          m_r.check(false, itemPath,
                    "student layer " + std::to_string(i) +
                        " maps to the teacher's embeddings, which have no attention map to transfer");
        }
      }
    }
  }

  void validateKnowledgeControls() {
    const KnowledgeControlsSpec& kc = m_job.knowledgeControls;
    if (!kc.enabled) {
      return;
    }
    validateArchitecture(kc.architecture, "knowledge_controls.architecture");
    trainingTable().checkBounds(m_r, kc.training, "knowledge_controls.training");
    knowledgeControlsTable().checkBounds(m_r, kc, "knowledge_controls"); // lambda, temperature
  }

  /// Text tasks need a transformer, vector tasks an mlp, and one job's architectures
  /// serve all its tasks: so one kind of task per job, and architectures to match it.
  void validateArchitectureFit() {
    const std::vector<TaskSpec>& tasks = m_job.tasks;
    std::vector<std::string> kindTasks;
    TaskKind kind = TaskKind::Unknown;
    std::size_t firstIndex = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const TaskKind k = taskKind(tasks[i]);
      if (k == TaskKind::Unknown || m_r.isBad(m_taskNamePaths[i])) {
        continue;
      }
      if (kind == TaskKind::Unknown) {
        kind = k;
        firstIndex = i;
      } else if (k != kind) {
        const auto describe = [](TaskKind t) {
          return t == TaskKind::Text ? std::string("a text task (needs a 'transformer')")
                                     : std::string("a vector task (needs an 'mlp')");
        };
        m_r.issue(indexPath("tasks", i),
                  singleQuoted(tasks[i].name) + " is " + describe(k) + " but " + singleQuoted(tasks[firstIndex].name) +
                      " (" + indexPath("tasks", firstIndex) + ") is " + describe(kind) +
                      "; a job's architectures apply to all its tasks, so put text and vector "
                      "tasks in separate jobs");
        return;
      }
      if (std::find(kindTasks.begin(), kindTasks.end(), tasks[i].name) == kindTasks.end()) {
        kindTasks.push_back(tasks[i].name);
      }
    }
    if (kind == TaskKind::Unknown) {
      return;
    }
    const std::string_view required = kind == TaskKind::Text ? kTransformer : kMlp;
    const auto fit = [&](const ArchitectureSpec& arch, const std::string& path, bool torchScript = false) {
      if (torchScript) {
        return; // the module's manifest says what it is (checked when the job starts)
      }
      const std::string typePath = childPath(path, "type");
      if ((arch.type != kTransformer && arch.type != kMlp) || arch.type == required) {
        return; // an unknown type is reported on its own
      }
      std::string message = std::string(kind == TaskKind::Text ? "text tasks (" : "vector tasks (") +
                            joinNames(kindTasks) + ") need " + (kind == TaskKind::Text ? "a " : "an ") +
                            singleQuoted(required) + " architecture, got " + singleQuoted(arch.type);
      if (!m_r.isPresent(typePath)) {
        message += " (the default)";
      }
      if (kind == TaskKind::Vector) {
        message += R"(; set "type": "mlp" and "hidden": [...])";
      }
      m_r.check(false, typePath, message);
    };
    fit(m_job.teacher.architecture, "teacher.architecture", m_job.teacher.isTorchScript());
    for (std::size_t i = 0; i < m_job.students.size(); ++i) {
      fit(m_job.students[i].architecture, childPath(indexPath("students", i), "architecture"),
          m_job.students[i].isTorchScript());
    }
    if (m_job.knowledgeControls.enabled) {
      fit(m_job.knowledgeControls.architecture, "knowledge_controls.architecture");
    }
  }

  /// "mode" against the TorchScript models (docs/job-format.md, "Modes"): "train" takes none;
  /// "compare" records given modules only; "distil" distils a TorchScript teacher's cached
  /// logits, which it computes on its own tokens, so nothing may need the teacher on the
  /// student's inputs (intermediate terms, augmentation, a weaker teacher).
  void validateMode() {
    const std::string& mode = m_job.mode;
    const JobSpec& job = m_job;
    if (mode != "train" && mode != "compare" && mode != "distil") {
      return; // the field's bound reports it
    }
    if (mode == "train") {
      const std::string why = "a TorchScript model needs \"mode\": \"compare\" (record it, no training) or "
                              "\"distil\" (a TorchScript teacher); mode is 'train'" +
                              std::string(m_r.isPresent("mode") ? "" : " (the default)");
      m_r.check(!job.teacher.isTorchScript(), "teacher.torchscript", why);
      for (std::size_t i = 0; i < job.students.size(); ++i) {
        m_r.check(!job.students[i].isTorchScript(), childPath(indexPath("students", i), "torchscript"), why);
      }
      return;
    }
    const std::string in = " in mode " + singleQuoted(mode);
    if (!job.teacher.isTorchScript()) {
      m_r.issue("teacher.torchscript", "required" + in + " (the teacher is a TorchScript module: docs/models.md)");
    }
    m_r.check(job.teacher.checkpoint.empty(), "teacher.checkpoint",
              "not used" + in + ": the teacher is teacher.torchscript");
    m_r.check(!job.knowledgeControls.enabled, "knowledge_controls", "not supported" + in + " (only in mode 'train')");
    for (std::size_t i = 0; i < job.students.size(); ++i) {
      const StudentSpec& s = job.students[i];
      const std::string at = indexPath("students", i);
      if (mode == "compare") {
        if (!s.isTorchScript()) {
          m_r.issue(childPath(at, "torchscript"),
                    "required in mode 'compare' (nothing is trained: every model is a TorchScript module)");
        }
        continue;
      }
      const ObjectiveSpec& o = s.objective;
      const std::string objectivePath = childPath(at, "objective");
      for (const auto& [key, weight] : {std::pair<const char*, double>{"hidden_mse", o.hiddenMse},
                                        {"hidden_cosine", o.hiddenCosine},
                                        {"pkd", o.pkd},
                                        {"attention_kl", o.attentionKl},
                                        {"attention_mse", o.attentionMse},
                                        {"infonce", o.infoNce},
                                        {"mi_alpha", o.miAlpha}}) {
        m_r.check(weight == 0.0, childPath(objectivePath, key),
                  "not available in mode 'distil': a TorchScript teacher runs on its own tokenizer's tokens, so "
                  "only its logits (the teacher cache) are distilled");
      }
      const std::string augmentationPath = childPath(at, "augmentation");
      for (const auto& [key, on] : {std::pair<const char*, bool>{"mask", s.augmentation.mask > 0},
                                    {"replace", s.augmentation.replace > 0},
                                    {"swap", s.augmentation.swap > 0},
                                    {"delete", s.augmentation.deletion > 0},
                                    {"mixup", s.augmentation.mixup}}) {
        m_r.check(!on, childPath(augmentationPath, key),
                  "not available in mode 'distil': augmentation makes KDScope token ids (or word embeddings), "
                  "which a TorchScript teacher cannot read; turn it off");
      }
      m_r.check(s.teacherEpoch == 0, childPath(at, "teacher_epoch"),
                "not available in mode 'distil' (a TorchScript teacher has no earlier epochs)");
    }
    if (mode == "distil") {
      m_r.check(job.cacheTeacherOutputs, "cache_teacher_outputs",
                "must be true in mode 'distil': the TorchScript teacher's logits are computed once on its own "
                "tokens and read from the cache");
    }
  }

  const JobSpec& m_job;
  JsonReader& m_r;
  std::vector<std::string> m_taskNamePaths; // "tasks[i]" (a bare name) or "tasks[i].name"
};

} // namespace

void validateJob(const JobSpec& job, const Json& root, JsonReader& reader) {
  JobValidator(job, root, reader).validate();
}

} // namespace kdscope::core
