#include "core/engine/run_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "core/analysis/analyze_run.h"
#include "core/analysis/model_analysis_torch.h"
#include "core/common/blas_threads.h"
#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/data/task_source.h"
#include "core/distill/objectives.h"
#include "core/distill/student_step.h"
#include "core/distill/teacher_cache.h"
#include "core/distill/trainer.h"
#include "core/distributed/process_group.h"
#include "core/engine/foreign_models.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_writer.h"
#include "core/record/size_estimate.h"

namespace kdscope::core {

namespace fs = std::filesystem;

const char* toString(JobStatus status) {
  switch (status) {
  case JobStatus::Succeeded:
    return "succeeded";
  case JobStatus::Cancelled:
    return "cancelled";
  case JobStatus::Failed:
    return "failed";
  case JobStatus::BadInput:
    return "bad input";
  }
  return "unknown";
}

void configureThreads(int torchThreads, int blasThreads) {
  if (torchThreads > 0) {
    torch::set_num_threads(torchThreads);
  }
  if (blasThreads > 0) {
    setBlasThreads(blasThreads);
  }
}

namespace {

/// Rows of a task file between two "reading" progress messages.
constexpr std::size_t kReadReportRows = 65536;

std::string resolvePath(const std::string& base, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || base.empty()) {
    return path;
  }
  return (fs::path(base) / path).string();
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

void saveCheckpoint(ClassifierImpl& model, const fs::path& path) {
  fs::create_directories(path.parent_path());
  torch::serialize::OutputArchive archive;
  model.save(archive);
  archive.save_to(path.string());
}

void loadCheckpoint(ClassifierImpl& model, const std::string& path, const std::string& field = "teacher.checkpoint") {
  if (!fs::exists(path)) {
    throw InputError(field + ": file '" + path + "' not found");
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    model.load(archive);
  } catch (const c10::Error& e) {
    throw InputError(field + ": cannot load '" + path +
                     "' into this architecture: " + e.msg().substr(0, e.msg().find('\n')));
  }
}

/// What `kdscope run --resume` needs besides the run file and the training checkpoints:
/// checkpoints/resume.json, rewritten (atomically) whenever a task or model is complete. A
/// task or model marked there is in the run file for good: its last write was flushed first.
class ResumeState {
public:
  static constexpr const char* kFormat = "kdscope-resume";

  static fs::path pathIn(const std::string& outDir) { return fs::path(outDir) / "checkpoints" / "resume.json"; }

  /// A fresh job: nothing done yet.
  ResumeState(const std::string& outDir, const std::string& baseDir) : m_path(pathIn(outDir)), m_baseDir(baseDir) {}

  /// Reads the state of an earlier run. Throws InputError.
  static ResumeState load(const std::string& outDir) {
    const fs::path path = pathIn(outDir);
    std::ifstream in(path);
    if (!in) {
      throw InputError(path.string() + ": no such file: the folder has no job to resume (it was not started by "
                                       "this version of kdscope run, or its checkpoints were removed)");
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || j.value("format", "") != kFormat || j.value("version", 0) != 1) {
      throw InputError(path.string() + ": not a resume state this version reads");
    }
    ResumeState state(outDir, j.value("base_dir", ""));
    for (const auto& task : j.value("tasks_written", nlohmann::json::array())) {
      state.m_tasks.insert(task.get<std::string>());
    }
    for (const auto& model : j.value("models_done", nlohmann::json::array())) {
      state.m_models.insert(model.get<std::string>());
    }
    return state;
  }

  [[nodiscard]] const std::string& baseDir() const { return m_baseDir; }
  [[nodiscard]] bool taskWritten(const std::string& task) const { return m_tasks.count(task) > 0; }
  [[nodiscard]] bool modelDone(const std::string& task, const std::string& model) const {
    return m_models.count(task + "/" + model) > 0;
  }
  void markTask(const std::string& task) {
    m_tasks.insert(task);
    save();
  }
  void markModel(const std::string& task, const std::string& model) {
    m_models.insert(task + "/" + model);
    save();
  }

  /// Written beside and renamed over, then synced, so a crash leaves the old or the new.
  void save() const {
    nlohmann::json j;
    j["format"] = kFormat;
    j["version"] = 1;
    j["base_dir"] = m_baseDir;
    j["tasks_written"] = std::vector<std::string>(m_tasks.begin(), m_tasks.end());
    j["models_done"] = std::vector<std::string>(m_models.begin(), m_models.end());
    std::error_code ec;
    fs::create_directories(m_path.parent_path(), ec);
    const fs::path temporary = m_path.string() + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << j.dump(2) << "\n";
      out.flush();
      if (!out) {
        throw JobError(temporary.string() + ": cannot write the resume state");
      }
    }
    const int fd = ::open(temporary.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    fs::rename(temporary, m_path, ec);
    if (ec) {
      throw JobError(m_path.string() + ": cannot write the resume state: " + ec.message());
    }
  }

private:
  fs::path m_path;
  std::string m_baseDir;
  std::set<std::string> m_tasks;
  std::set<std::string> m_models; ///< "task/model"
};

/// A student whose label smoothing is "matched" gets the epsilon matched to the teacher
/// (knowledge controls; computed on the first such student of the task).
StudentSpec withMatchedLabelSmoothing(const StudentSpec& student, ClassifierImpl& teacher, const TaskData& task,
                                      std::map<double, double>& epsilonByTemperature) {
  if (!student.objective.labelSmoothingMatched) {
    return student;
  }
  const double temperature = student.objective.labelSmoothingTemperature;
  auto found = epsilonByTemperature.find(temperature);
  if (found == epsilonByTemperature.end()) {
    found = epsilonByTemperature
                .emplace(temperature, analysis::matchedEpsilonOnTrainSplit(teacher, task, temperature))
                .first;
  }
  StudentSpec matched = student;
  matched.objective.labelSmoothing = std::clamp(found->second, 0.0, 0.999999);
  return matched;
}

/// The architecture attribute of a model of `task` (the codec of core/record/run_layout.h,
/// which the analysis decodes).
std::string recordedArchitecture(const ArchitectureSpec& spec, const TaskData& task) {
  layout::ArchitectureContext context;
  context.classes = task.numClasses();
  context.vocab = static_cast<std::int64_t>(task.vocab.size());
  context.maxLen = task.seqLen;
  context.inputDim = task.dim;
  return layout::encodeArchitecture(spec, context);
}

/// Records in the student's objective attribute that its epsilon was matched to the teacher.
void noteMatchedLabelSmoothing(RunWriter& writer, const std::string& task, const std::string& model, double epsilon,
                               double temperature) {
  H5File& file = writer.file();
  const std::string path = RunWriter::modelPath(task, model);
  file.setAttr(path, layout::attr::kObjective,
               layout::withMatchedLabelSmoothing(file.attrString(path, layout::attr::kObjective), epsilon,
                                                 temperature, path));
}

/// `kdscope analyze` on the finished run (the job's "analyze" setting). The job has
/// succeeded whatever happens here: a failed or cancelled analysis is reported, not fatal.
void analyzeAfterJob(const JobSpec& job, const RunOptions& options, JobResult& result, const CancelToken& cancel,
                     const ProgressSink& progress) {
  AnalyzeOptions analyze;
  analyze.threads = options.threads > 0 ? static_cast<std::size_t>(options.threads) : 0;
  // The data folder as the job resolved it (relative to the job file, which the run file does not record).
  analyze.dataDir = resolveDataDir(job.dataDir.empty() ? "" : resolvePath(job.baseDir, job.dataDir));
  analyze.teacherAnalysesFrom = options.teacherAnalysesFrom;
  const AnalyzeResult analysed = analyzeRun(result.runPath, analyze, cancel, progress);
  if (analysed.status != AnalyzeStatus::Succeeded) {
    const std::string what = analysed.status == AnalyzeStatus::Cancelled ? "was cancelled"
                                                                           : "failed: " + analysed.message;
    result.message = "the job completed, but its analysis " + what + " (run 'kdscope analyze " + result.runPath +
                     "' to retry)";
    if (progress) {
      ProgressEvent event;
      event.kind = ProgressEvent::Kind::Warning;
      event.message = result.message;
      event.fraction = 1.0;
      progress(event);
    }
  }
}

class JobRunner {
public:
  JobRunner(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
            const ProgressSink& sink)
      : m_job(job), m_options(options), m_cancel(cancel), m_sink(sink),
        m_group(options.group && options.group->worldSize() > 1 ? options.group.get() : nullptr) {}

  JobResult run();

private:
  void runTask(const TaskData& task);
  /// Modes "compare" and "distil": the task's TorchScript models (loaded and checked by
  /// checkForeignModels), recorded, and in "distil" its students trained from the teacher's
  /// cached logits.
  void runForeignTask(const TaskData& task);
  /// Loads every TorchScript model of every task and runs its pre-flight check, before any
  /// work; prints each report. Throws InputError when one cannot be used.
  void checkForeignModels(const std::vector<TaskData>& tasks);
  /// Starts a model's group afresh (a group left by a cut-off run is removed first).
  void beginForeign(const TaskData& task, const ForeignModel& f, const std::string& role, const std::string& objective);
  void info(const std::string& task, const std::string& model, const std::string& message);
  /// The job's time by phase (docs/architecture.md, "Where the time goes"): wall seconds since
  /// `from` added to `phase`; the parts of a model's training added under `who`.
  void addTime(const std::string& phase, std::chrono::steady_clock::time_point from);
  void addTime(const std::string& phase, double seconds);
  void addTrainTimings(const std::string& who, const TrainTimings& timings);
  /// "time by phase (wall s): loading data 0.52; ...; sum 25.30", emitted when the job ends.
  [[nodiscard]] std::string profileText() const;
  /// Gets a model's group ready for training. Returns true when training continues from the
  /// checkpoint at `checkpoint` (resuming, the group and its logs stay); otherwise a group
  /// left by the earlier run is removed and `begin` writes it anew.
  bool startModel(const std::string& task, const std::string& model, const fs::path& checkpoint,
                  const std::function<void()>& begin);
  /// Records a model's eval outputs (afresh when resuming), then marks it complete.
  void finishModel(ClassifierImpl& model, const TaskData& task, const std::string& name);
  void checkCancel() const {
    if (m_group != nullptr) {
      m_group->checkAbort();
    }
    if (m_cancel.cancelled()) {
      throw Cancelled{};
    }
  }
  /// Rank 0 of a data-parallel job, or the one process: the rank that writes.
  [[nodiscard]] bool lead() const { return m_group == nullptr || m_group->lead(); }
  [[nodiscard]] bool modelDone(const std::string& task, const std::string& model) const {
    return m_state && m_state->modelDone(task, model);
  }

  const JobSpec& m_job;
  const RunOptions& m_options;
  const CancelToken& m_cancel;
  const ProgressSink& m_sink;
  std::unique_ptr<RunWriter> m_writer;
  std::unique_ptr<ProgressTracker> m_progress;
  std::optional<ResumeState> m_state;
  std::string m_where; // "task 'x', model 'y'" for messages
  dist::Group* m_group = nullptr; // more than one rank, else null
  std::map<std::string, std::vector<ForeignModel>> m_foreign; // task -> teacher, then TorchScript students
  std::vector<std::pair<std::string, double>> m_profile;      // phase -> wall seconds, in the order first met
};

void JobRunner::addTime(const std::string& phase, double seconds) {
  for (auto& [name, total] : m_profile) {
    if (name == phase) {
      total += seconds;
      return;
    }
  }
  m_profile.emplace_back(phase, seconds);
}

void JobRunner::addTime(const std::string& phase, std::chrono::steady_clock::time_point from) {
  addTime(phase, std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count());
}

void JobRunner::addTrainTimings(const std::string& who, const TrainTimings& timings) {
  addTime(who + ": optimiser steps", timings.steps);
  addTime(who + ": eval passes", timings.eval);
  if (timings.records > 0.0) {
    addTime(who + ": per-example records", timings.records);
  }
  addTime(who + ": saving (flush, checkpoints)", timings.save);
}

std::string JobRunner::profileText() const {
  std::ostringstream text;
  text << std::fixed << std::setprecision(2) << "time by phase (wall s): ";
  double sum = 0.0;
  for (const auto& [name, seconds] : m_profile) {
    text << name << " " << seconds << "; ";
    sum += seconds;
  }
  text << "sum " << sum;
  return text.str();
}

bool JobRunner::startModel(const std::string& task, const std::string& model, const fs::path& checkpoint,
                           const std::function<void()>& begin) {
  if (m_options.resume && m_writer->hasModel(task, model)) {
    if (!checkpoint.empty() && fs::exists(checkpoint)) {
      const auto saved = readTrainCheckpoint(checkpoint.string());
      info(task, model, "resuming after epoch " + std::to_string(saved.epoch) + " (step " +
                            std::to_string(saved.step) + ")");
      return true;
    }
    info(task, model, "restarting (cut off before its first checkpoint)");
    m_writer->removeModel(task, model);
  }
  begin();
  return false;
}

void JobRunner::finishModel(ClassifierImpl& model, const TaskData& task, const std::string& name) {
  if (!lead()) {
    m_group->barrier(); // while rank 0 records: a later model may load what it saved
    return;
  }
  if (m_options.resume) {
    m_writer->removeEvalOutputs(task.name, name); // a run cut off while recording them
  }
  info(task.name, name, "recording eval outputs");
  const auto start = std::chrono::steady_clock::now();
  if (!recordEvalOutputs(model, task, m_job.recording, name, *m_writer, m_cancel)) {
    throw Cancelled{};
  }
  addTime("recording eval outputs", start);
  m_state->markModel(task.name, name); // after recordEvalOutputs' flush
  if (m_group != nullptr) {
    m_group->barrier();
  }
}

void JobRunner::info(const std::string& task, const std::string& model, const std::string& message) {
  ProgressEvent event;
  event.kind = ProgressEvent::Kind::Phase;
  event.task = task;
  event.model = model;
  event.message = message;
  if (m_progress) {
    m_progress->emit(event);
  } else if (m_sink) {
    m_sink(event);
  }
}

void JobRunner::runTask(const TaskData& task) {
  const bool records = m_job.recording.exampleRecords;
  if (lead() && m_options.resume && m_writer->hasTask(task.name) && !m_state->taskWritten(task.name)) {
    m_writer->removeTask(task.name); // cut off while it was being written
  }
  if (lead() && !m_writer->hasTask(task.name)) {
    m_writer->writeTask(task, /*trainLabels=*/records);
    m_state->markTask(task.name);
  }
  if (m_job.mode != "train") {
    runForeignTask(task);
    return;
  }
  const auto checkpointDir = fs::path(m_options.outDir) / "checkpoints" / task.name;

  // Teacher: train (plain cross-entropy) or load.
  m_where = "task '" + task.name + "', model 'teacher'";
  torch::manual_seed(deriveSeed(m_job.modelSeed(), task.name, "teacher"));
  auto teacher = makeModel(m_job.teacher.architecture, task);
  const bool teacherDone = modelDone(task.name, "teacher");
  const fs::path teacherState = checkpointDir / "teacher.state.pt";
  bool resumeTeacher = false;
  if (!teacherDone && lead()) {
    resumeTeacher = startModel(task.name, "teacher", m_job.teacher.checkpoint.empty() ? teacherState : fs::path(),
                               [&] {
                                 m_writer->beginModel(task.name, "teacher", "teacher",
                                                      recordedArchitecture(m_job.teacher.architecture, task),
                                                      teacherObjectiveJson(), teacher->parameterCount());
                               });
  }
  // Earlier teacher checkpoints (teacher_epoch<k>.pt, for students' teacher_epoch) sit
  // beside the final one.
  fs::path teacherDir = checkpointDir;
  const bool anyNeedsTeacher =
      std::any_of(m_job.students.begin(), m_job.students.end(), [](const StudentSpec& s) { return studentUsesTeacherCache(s); });
  const auto cacheBudget = static_cast<std::uint64_t>(m_job.teacherCacheBudgetMb * 1024.0 * 1024.0);
  // The final teacher's per-example records and the cache need its logits on the train split:
  // one example-wise pass gives both (in memory, one process), instead of a batched pass for
  // the records and the cache's own.
  const bool shareTrainLogits =
      anyNeedsTeacher && m_job.cacheTeacherOutputs && records && (m_group == nullptr || m_group->worldSize() <= 1) &&
      static_cast<std::uint64_t>(task.train.size()) * static_cast<std::uint64_t>(task.numClasses()) * sizeof(float) <=
          cacheBudget;
  torch::Tensor sharedTrainLogits; // set by the teacher's last records when shareTrainLogits
  const auto teacherTrainLogits = [&](ClassifierImpl& model) {
    sharedTrainLogits = trainSetTeacherLogits(model, task, m_cancel);
    return sharedTrainLogits;
  };
  if (!m_job.teacher.checkpoint.empty()) {
    const auto path = resolvePath(m_job.baseDir, replaceAll(m_job.teacher.checkpoint, "{task}", task.name));
    info(task.name, "teacher", "loading checkpoint " + path);
    const auto loadStart = std::chrono::steady_clock::now();
    loadCheckpoint(*teacher, path);
    addTime("teacher: loading its checkpoint", loadStart);
    teacherDir = fs::path(path).parent_path();
    if (!teacherDone && records && lead()) {
      const auto recordsStart = std::chrono::steady_clock::now();
      if (shareTrainLogits && !teacherTrainLogits(*teacher).defined()) {
        throw Cancelled{};
      }
      if (!recordTrainRecords(*teacher, task, "teacher", "p_true", /*epoch=*/0, /*step=*/0, *m_writer, m_cancel,
                              sharedTrainLogits)) {
        throw Cancelled{};
      }
      addTime("teacher: per-example records", recordsStart);
    }
  } else if (teacherDone) {
    info(task.name, "teacher", "complete in the run file; loading its checkpoint");
    loadCheckpoint(*teacher, (checkpointDir / "teacher.pt").string(), "--resume");
    m_progress->advance(plannedSteps(m_job.teacher.training, task.train.size()));
  } else {
    info(task.name, "teacher", "training");
    TrainTarget target;
    target.task = task.name;
    target.model = "teacher";
    target.seed = deriveSeed(m_job.modelSeed(), task.name, "teacher");
    target.logEvery = m_job.recording.logEvery;
    target.recordName = records ? "p_true" : "";
    target.checkpointPath = teacherState.string();
    target.resume = resumeTeacher;
    target.group = m_group;
    if (shareTrainLogits) {
      target.lastEpochTrainLogits = teacherTrainLogits;
    }
    TrainTimings timings;
    target.timings = &timings;
    target.afterEpoch = [this, &checkpointDir](int epoch, ClassifierImpl& model) {
      bool wanted = m_job.teacher.epochCheckpoints;
      for (const auto& s : m_job.students) {
        wanted = wanted || s.teacherEpoch == epoch;
      }
      if (wanted) {
        saveCheckpoint(model, checkpointDir / ("teacher_epoch" + std::to_string(epoch) + ".pt"));
      }
    };
    if (trainModel(*teacher, task, m_job.teacher.training, makeTeacherStep(), target, m_writer.get(), m_cancel,
                   *m_progress) == TrainOutcome::Cancelled) {
      throw Cancelled{};
    }
    const auto saveStart = std::chrono::steady_clock::now();
    if (lead()) {
      saveCheckpoint(*teacher, checkpointDir / "teacher.pt");
    }
    timings.save += std::chrono::duration<double>(std::chrono::steady_clock::now() - saveStart).count();
    addTrainTimings("teacher", timings);
  }
  if (!teacherDone) {
    finishModel(*teacher, task, "teacher");
  }

  std::optional<TeacherCache> cache;
  if (anyNeedsTeacher && m_job.cacheTeacherOutputs) {
    cache.emplace();
    const auto cacheStart = std::chrono::steady_clock::now();
    std::string from;
    if (sharedTrainLogits.defined()) {
      cache->adopt(sharedTrainLogits); // the teacher's last per-example records computed them
      sharedTrainLogits = torch::Tensor();
      from = ", from the pass of the teacher's per-example records";
    } else {
      // Data-parallel: each rank computes its share of the rows (TeacherCache::build).
      const std::string spill = m_group != nullptr && !lead()
                                    ? "teacher_cache.rank" + std::to_string(m_group->rank()) + ".bin"
                                    : "teacher_cache.bin";
      if (!cache->build(*teacher, task, cacheBudget, (checkpointDir / spill).string(), m_cancel, m_group)) {
        throw Cancelled{};
      }
    }
    addTime("teacher cache (its train-set outputs)", cacheStart);
    info(task.name, "teacher",
         "cached train-set outputs (" + std::to_string(cache->bytes()) + " bytes, " +
             (cache->onDisk() ? "on disk" : "in memory") + from + ")");
  }
  teacher->eval();

  std::map<int, std::shared_ptr<ClassifierImpl>> weakTeachers; // teacher_epoch -> checkpoint
  std::map<double, double> matchedEpsilon; // "label_smoothing": "matched", once per task and temperature
  for (const auto& listed : m_job.students) {
    const StudentSpec student = withMatchedLabelSmoothing(listed, *teacher, task, matchedEpsilon);
    checkCancel();
    m_where = "task '" + task.name + "', model '" + student.name + "'";
    if (modelDone(task.name, student.name)) {
      info(task.name, student.name, "complete in the run file; skipped");
      m_progress->advance(plannedSteps(student.training, task.train.size()));
      continue;
    }
    // A weaker teacher: the teacher's checkpoint after an earlier epoch (loaded once per epoch).
    ClassifierImpl* studentTeacher = teacher.get();
    std::string teacherJson;
    if (student.teacherEpoch > 0) {
      const auto path =
          (teacherDir / ("teacher_epoch" + std::to_string(student.teacherEpoch) + ".pt")).lexically_normal().string();
      auto& weak = weakTeachers[student.teacherEpoch];
      if (!weak) {
        info(task.name, student.name, "loading the teacher's epoch-" + std::to_string(student.teacherEpoch) +
                                          " checkpoint " + path);
        weak = makeModel(m_job.teacher.architecture, task);
        loadCheckpoint(*weak, path, "students: teacher_epoch " + std::to_string(student.teacherEpoch));
        weak->eval();
      }
      teacherJson = teacherSourceJson(student.teacherEpoch, path, evaluate(*weak, task, task.eval, 128).accuracy);
      studentTeacher = weak.get();
    }
    const auto seed = deriveSeed(m_job.modelSeed(), task.name, student.name);
    torch::manual_seed(seed);
    auto model = makeModel(student.architecture, task);
    // Augmentation: rank 0 draws what one process draws, the other ranks their own.
    const std::string augmentKey =
        student.name + "/augment" + (lead() ? std::string() : "/rank" + std::to_string(m_group->rank()));
    const auto step = makeStudentStep(student, *studentTeacher, m_job.teacher.architecture, task,
                                      cache ? &*cache : nullptr, deriveSeed(m_job.modelSeed(), task.name, augmentKey));
    const fs::path studentState = checkpointDir / (student.name + ".state.pt");
    const bool resumeStudent = lead() && startModel(task.name, student.name, studentState, [&] {
      m_writer->beginModel(task.name, student.name, "student", recordedArchitecture(student.architecture, task),
                           studentObjectiveJson(student, step.intermediateJson, teacherJson), model->parameterCount());
    });
    if (student.objective.labelSmoothingMatched && lead()) {
      noteMatchedLabelSmoothing(*m_writer, task.name, student.name, student.objective.labelSmoothing,
                                student.objective.labelSmoothingTemperature);
    }
    info(task.name, student.name, "training");
    TrainTarget target;
    target.task = task.name;
    target.model = student.name;
    target.seed = seed;
    target.logEvery = m_job.recording.logEvery;
    target.extraParameters = step.parameters;
    target.recordName = records ? "q_true" : "";
    target.checkpointPath = studentState.string();
    target.resume = resumeStudent;
    target.group = m_group;
    TrainTimings timings;
    target.timings = &timings;
    if (trainModel(*model, task, student.training, step.step, target, m_writer.get(), m_cancel, *m_progress) ==
        TrainOutcome::Cancelled) {
      throw Cancelled{};
    }
    const auto saveStart = std::chrono::steady_clock::now();
    if (lead()) {
      saveCheckpoint(*model, checkpointDir / (student.name + ".pt"));
    }
    timings.save += std::chrono::duration<double>(std::chrono::steady_clock::now() - saveStart).count();
    addTrainTimings("students", timings);
    finishModel(*model, task, student.name);
  }
}

void JobRunner::checkForeignModels(const std::vector<TaskData>& tasks) {
  for (const auto& task : tasks) {
    auto& list = m_foreign[task.name];
    const auto load = [&](const std::string& name, const std::string& field, const std::string& module,
                          const std::string& manifest) {
      m_where = "task '" + task.name + "', model '" + name + "'";
      info(task.name, name, "pre-flight check of " + module);
      list.push_back(loadForeignModel(name, field, module, manifest, m_job.baseDir, task));
      const ForeignModel& f = list.back();
      info(task.name, name, formatModelCheck(f.report));
      if (f.model->manifest().classNames != task.classNames) {
        std::string names;
        for (const auto& c : f.model->manifest().classNames) {
          names += (names.empty() ? "" : ", ") + c;
        }
        info(task.name, name, "note: the manifest's class names (" + names +
                                  ") differ from the task's; logit k is taken as the task's class k");
      }
      checkCancel();
    };
    load("teacher", "teacher.torchscript", m_job.teacher.torchscript, m_job.teacher.manifest);
    for (std::size_t i = 0; i < m_job.students.size(); ++i) {
      const StudentSpec& s = m_job.students[i];
      if (!s.isTorchScript()) {
        continue;
      }
      const std::string field = "students[" + std::to_string(i) + "].torchscript";
      load(s.name, field, s.torchscript, s.manifest);
      if (m_job.mode == "distil" && !list.back().report.trainable) {
        throw InputError(field + " '" + list.back().modelPath +
                         "': mode 'distil' trains this student, but the module has no parameters an optimiser can "
                         "update (frozen with torch.jit.freeze?)");
      }
    }
  }
  m_where.clear();
}

void JobRunner::beginForeign(const TaskData& task, const ForeignModel& f, const std::string& role,
                             const std::string& objective) {
  if (m_writer->hasModel(task.name, f.name)) {
    m_writer->removeModel(task.name, f.name); // cut off before it was complete
  }
  m_writer->beginModel(task.name, f.name, role, foreignArchitectureJson(f), objective, f.model->parameterCount());
  m_writer->file().setAttr(RunWriter::modelPath(task.name, f.name), layout::attr::kModelCheck, modelCheckJson(f.report));
  if (task.kind == TaskKind::Text) {
    // The module's own token count per eval example (its attention mask: tokens other than
    // [PAD] = 0), which the attention analysis counts rows by.
    const std::vector<std::int64_t> counts = modelTokenCounts(f.view);
    m_writer->file().writeInt64(layout::evalTokenCounts(task.name, f.name), {counts.size()}, counts, /*compress=*/true);
    // Its own tokens of the examples whose attention is kept, and its vocabulary: what the
    // window labels its attention maps' positions with.
    const bool attention = f.model->numHeads() > 0 && f.model->unavailable(ModelFeature::Attention).empty();
    const auto kept = attention ? static_cast<std::size_t>(std::max(0, m_job.recording.attentionExamples)) : 0;
    const std::vector<std::int64_t> rows = modelTokenRows(f.view, kept);
    if (!rows.empty() && !f.vocab.empty()) {
      const auto len = static_cast<std::uint64_t>(f.view.seqLen);
      m_writer->file().writeInt64(layout::evalModelTokens(task.name, f.name), {rows.size() / len, len}, rows,
                                  /*compress=*/true);
      m_writer->file().writeStrings(layout::modelVocab(task.name, f.name), f.vocab);
    }
  }
}

void JobRunner::runForeignTask(const TaskData& task) {
  auto& models = m_foreign.at(task.name);
  ForeignModel& teacher = models.front();
  const bool records = m_job.recording.exampleRecords;
  const std::string notTrained =
      R"json({"terms": [], "trained": "elsewhere: a TorchScript module recorded as given (mode 'compare' or a teacher of mode 'distil')"})json";
  const auto checkpointDir = fs::path(m_options.outDir) / "checkpoints" / task.name;
  if (!modelDone(task.name, "teacher")) {
    m_where = "task '" + task.name + "', model 'teacher'";
    beginForeign(task, teacher, "teacher", notTrained);
    if (records && !recordTrainRecords(*teacher.model, teacher.view, "teacher", "p_true", /*epoch=*/0, /*step=*/0,
                                       *m_writer, m_cancel)) {
      throw Cancelled{};
    }
    finishModel(*teacher.model, teacher.view, "teacher");
  }
  teacher.model->eval();

  // The teacher's logits on the train split, on its own tokens: the only thing a student of a
  // TorchScript teacher reads from it (job_validation refuses the rest).
  std::optional<TeacherCache> cache;
  const bool anyNeedsTeacher = m_job.mode == "distil" && std::any_of(m_job.students.begin(), m_job.students.end(),
                                                                       [](const StudentSpec& s) { return studentUsesTeacherCache(s); });
  if (anyNeedsTeacher) {
    cache.emplace();
    const auto budget = static_cast<std::uint64_t>(m_job.teacherCacheBudgetMb * 1024.0 * 1024.0);
    info(task.name, "teacher", "computing its train-set logits for the teacher cache");
    const auto cacheStart = std::chrono::steady_clock::now();
    if (!cache->build(*teacher.model, teacher.view, budget, (checkpointDir / "teacher_cache.bin").string(), m_cancel)) {
      throw Cancelled{};
    }
    addTime("teacher cache (its train-set outputs)", cacheStart);
  }
  std::map<double, double> matchedEpsilon; // "label_smoothing": "matched", once per task and temperature
  std::size_t next = 1;
  for (const auto& listed : m_job.students) {
    checkCancel();
    ForeignModel* f = listed.isTorchScript() ? &models.at(next++) : nullptr;
    m_where = "task '" + task.name + "', model '" + listed.name + "'";
    if (modelDone(task.name, listed.name)) {
      info(task.name, listed.name, "complete in the run file; skipped");
      m_progress->advance(m_job.mode == "compare" ? 0 : plannedSteps(listed.training, task.train.size()));
      continue;
    }
    if (m_job.mode == "compare") {
      beginForeign(task, *f, "student", notTrained);
      finishModel(*f->model, f->view, listed.name);
      continue;
    }
    const StudentSpec student = withMatchedLabelSmoothing(listed, *teacher.model, teacher.view, matchedEpsilon);
    const auto seed = deriveSeed(m_job.modelSeed(), task.name, student.name);
    torch::manual_seed(seed);
    std::shared_ptr<ClassifierImpl> model = f ? std::shared_ptr<ClassifierImpl>(f->model.ptr()) : makeModel(student.architecture, task);
    const TaskData& studentTask = f ? f->view : task;
    const auto step = makeStudentStep(student, *teacher.model, m_job.teacher.architecture, studentTask,
                                      cache ? &*cache : nullptr, deriveSeed(m_job.modelSeed(), task.name, student.name + "/augment"));
    const fs::path studentState = checkpointDir / (student.name + ".state.pt");
    const std::string objective = studentObjectiveJson(student, step.intermediateJson, "");
    const bool resumeStudent = startModel(task.name, student.name, studentState, [&] {
      if (f) {
        beginForeign(task, *f, "student", objective);
      } else {
        m_writer->beginModel(task.name, student.name, "student", recordedArchitecture(student.architecture, task),
                             objective, model->parameterCount());
      }
    });
    if (student.objective.labelSmoothingMatched) {
      noteMatchedLabelSmoothing(*m_writer, task.name, student.name, student.objective.labelSmoothing,
                                student.objective.labelSmoothingTemperature);
    }
    info(task.name, student.name, f ? "training the TorchScript module through its parameters" : "training");
    TrainTarget target;
    target.task = task.name;
    target.model = student.name;
    target.seed = seed;
    target.logEvery = m_job.recording.logEvery;
    target.extraParameters = step.parameters;
    target.recordName = records ? "q_true" : "";
    target.checkpointPath = studentState.string();
    target.resume = resumeStudent;
    TrainTimings timings;
    target.timings = &timings;
    if (trainModel(*model, studentTask, student.training, step.step, target, m_writer.get(), m_cancel, *m_progress) ==
        TrainOutcome::Cancelled) {
      throw Cancelled{};
    }
    addTrainTimings("students", timings);
    if (f) {
      // The trained module, which the analysis reloads (heads, probes) and Python can load.
      const fs::path saved = checkpointDir / (student.name + ".torchscript.pt");
      fs::create_directories(saved.parent_path());
      f->model->saveTorchScript(saved.string());
      m_writer->file().setAttr(RunWriter::modelPath(task.name, student.name), layout::attr::kArchitecture,
                               foreignArchitectureJson(*f, saved.string()));
    } else {
      saveCheckpoint(*model, checkpointDir / (student.name + ".pt"));
    }
    finishModel(*model, studentTask, student.name);
  }
}

JobResult JobRunner::run() {
  JobResult result;
  const auto runPath = fs::path(m_options.outDir) / "run.h5";
  result.runPath = runPath.string();
  auto finish = [&](JobStatus status, const std::string& message, bool fromPeer = false) {
    result.status = status;
    result.message = message;
    if (m_group != nullptr && status != JobStatus::Succeeded && !fromPeer) {
      m_group->raiseAbort(status == JobStatus::Cancelled, message); // stops the other ranks
    }
    if (!lead()) {
      result.runPath.clear();
    }
    if (m_writer) {
      try {
        const char* fileStatus = status == JobStatus::Succeeded   ? "complete"
                                 : status == JobStatus::Cancelled ? "cancelled"
                                                                  : "failed";
        m_writer->setStatus(fileStatus, message);
      } catch (const std::exception& e) {
        result.message += (result.message.empty() ? "" : "; ") +
                          std::string("could not record the final status: ") + e.what();
      }
    }
    return result;
  };
  try {
    if (m_group != nullptr && m_options.resume) {
      throw InputError("--resume: a data-parallel job cannot be resumed yet; resume it in one process "
                       "(kdscope run --resume DIR, without --nproc or WORLD_SIZE)");
    }
    configureThreads(m_options.threads, m_options.blasThreads);
    std::error_code ec;
    fs::create_directories(m_options.outDir, ec);
    if (ec) {
      throw InputError("--out '" + m_options.outDir + "': cannot create the folder: " + ec.message());
    }
    // Load every task first, so that a missing dataset fails before any training.
    const auto dataDir = resolveDataDir(m_job.dataDir.empty() ? "" : resolvePath(m_job.baseDir, m_job.dataDir));
    std::vector<TaskData> tasks;
    long totalSteps = 0;
    const auto loadStart = std::chrono::steady_clock::now();
    for (const auto& spec : m_job.tasks) {
      info(spec.name, "", "loading data");
      // A task file is read with the job's cancel token, and says how far it got every
      // kReadReportRows rows.
      TaskReadControl control;
      control.cancel = &m_cancel;
      std::size_t nextReport = kReadReportRows;
      control.progress = [&](std::size_t rows, const std::string& path) {
        if (rows >= nextReport) {
          nextReport += kReadReportRows;
          info(spec.name, "", "reading '" + path + "': " + std::to_string(rows) + " rows");
        }
      };
      tasks.push_back(loadTask(spec, dataDir, m_job.seed, control));
      const auto n = tasks.back().train.size();
      if (m_job.mode == "train" && m_job.teacher.checkpoint.empty()) {
        totalSteps += plannedSteps(m_job.teacher.training, n);
      }
      for (const auto& s : m_job.students) {
        totalSteps += m_job.mode == "compare" ? 0 : plannedSteps(s.training, n);
      }
      checkCancel();
    }
    addTime("loading data", loadStart);
    const auto setupStart = std::chrono::steady_clock::now();
    m_progress = std::make_unique<ProgressTracker>(m_sink, totalSteps);
    if (m_job.mode != "train") {
      if (m_group != nullptr) {
        throw JobError("mode '" + m_job.mode +
                       "' runs in one process: data-parallel training (--nproc, WORLD_SIZE) covers mode 'train' only");
      }
      checkForeignModels(tasks); // before anything is written
    }

    // The size the run file will have, checked against the limit before anything is written.
    // TorchScript models are sized from what their pre-flight check found.
    const RunSizeEstimate estimate = estimateRunFileSize(m_job, tasks, recordedSizes(m_foreign));
    result.estimatedBytes = estimate.bytes;
    const double limitMb = m_options.maxFileMb >= 0.0 ? m_options.maxFileMb : m_job.recording.maxFileMb;
    const auto limitBytes = static_cast<std::uint64_t>(limitMb * 1024.0 * 1024.0);
    info("", "", "estimated run file size: " + estimate.describe() +
                     (limitMb > 0.0 ? ", limit " + formatBytes(limitBytes) : std::string()));
    if (limitMb > 0.0 && estimate.bytes > limitBytes) {
      throw InputError("the run file would be about " + estimate.describe() + ", above the limit of " +
                       formatBytes(limitBytes) +
                       " (recording.max_file_mb, or --max-file-mb); record less (recording.hidden, "
                       "attention_examples, token_hidden_examples, example_records, float16) or raise the limit");
    }

    if (!lead()) {
      // Rank > 0: trains its shards, writes nothing.
    } else if (m_options.resume) {
      m_state = ResumeState::load(m_options.outDir);
      if (!fs::exists(runPath)) {
        throw InputError(runPath.string() + ": no such file: nothing to resume");
      }
      m_writer = std::make_unique<RunWriter>(runPath.string(), RunWriter::Continue{});
    } else {
      // Training checkpoints of an earlier job in this folder must not be taken for this
      // job's by a later --resume.
      for (const auto& task : tasks) {
        const auto dir = fs::path(m_options.outDir) / "checkpoints" / task.name;
        std::error_code ignored;
        for (const auto& entry : fs::directory_iterator(dir, ignored)) {
          const std::string name = entry.path().filename().string();
          if (name.size() > 9 && name.compare(name.size() - 9, 9, ".state.pt") == 0) {
            fs::remove(entry.path(), ignored);
          }
        }
      }
      m_writer = std::make_unique<RunWriter>(runPath.string(), jobToJson(m_job));
      m_writer->file().setAttr(layout::root(), layout::attr::kWorldSize,
                               static_cast<std::int64_t>(m_group != nullptr ? m_group->worldSize() : 1));
      m_state.emplace(m_options.outDir, m_job.baseDir);
      m_state->save();
    }
    addTime("set-up (model checks, size estimate, run file)", setupStart);
    for (const auto& task : tasks) {
      runTask(task);
    }
    if (lead()) {
      info("", "", profileText());
    }
    return finish(JobStatus::Succeeded, "");
  } catch (const dist::PeerStopped& e) {
    result.stoppedByPeer = true;
    return finish(e.cancelled ? JobStatus::Cancelled : JobStatus::Failed, e.message, /*fromPeer=*/true);
  } catch (const Cancelled&) {
    return finish(JobStatus::Cancelled, "cancelled during " + (m_where.empty() ? std::string("set-up") : m_where));
  } catch (const InputError& e) {
    return finish(JobStatus::BadInput, e.what());
  } catch (const JobError& e) {
    return finish(JobStatus::Failed, e.what());
  } catch (const c10::Error& e) {
    return finish(JobStatus::Failed, m_where + ": " + e.msg().substr(0, e.msg().find('\n')));
  } catch (const std::exception& e) {
    return finish(JobStatus::Failed, (m_where.empty() ? std::string() : m_where + ": ") + e.what());
  } catch (...) {
    return finish(JobStatus::Failed, m_where + ": unknown error");
  }
}

} // namespace

JobSpec loadJobForResume(const std::string& outDir) {
  const ResumeState state = ResumeState::load(outDir);
  const std::string runPath = (fs::path(outDir) / "run.h5").string();
  std::string jobJson;
  {
    probeHdf5File(runPath);
    const H5File file(runPath, H5File::Mode::ReadOnly);
    if (!file.hasAttr(layout::root(), layout::attr::kFormat) || file.attrString(layout::root(), layout::attr::kFormat) != layout::kFormatName) {
      throw InputError(runPath + ": not a KDScope run file (attribute 'format' is not 'kdscope-run')");
    }
    if (!file.hasAttr(layout::root(), layout::attr::kJob)) {
      throw InputError(runPath + ": attribute 'job' is missing: the run does not say what it ran");
    }
    jobJson = file.attrString(layout::root(), layout::attr::kJob);
  }
  JobParseResult parsed = parseJob(jobJson, runPath + " (attribute 'job')");
  if (!parsed.job) {
    std::string message = runPath + ": its job no longer parses:";
    for (const auto& issue : parsed.issues) {
      message += "\n  " + issue.str();
    }
    throw InputError(message);
  }
  parsed.job->baseDir = state.baseDir();
  return *parsed.job;
}

JobResult runJob(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                 const ProgressSink& progress) {
  // knowledge_controls' students (the parser adds them too; a spec built in code may not have).
  JobSpec expanded = job;
  expanded.students = allStudents(job);
  // Task files as absolute paths, so that the job recorded in the run file finds them again
  // (analysis reloads the data; --resume).
  resolveTaskFilePaths(expanded);
  JobResult result;
  {
    JobRunner runner(expanded, options, cancel, progress);
    result = runner.run();
  } // the writer closes the run file here
  if (result.status == JobStatus::Succeeded && expanded.analyze && !result.runPath.empty()) {
    analyzeAfterJob(expanded, options, result, cancel, progress);
  }
  return result;
}

} // namespace kdscope::core
