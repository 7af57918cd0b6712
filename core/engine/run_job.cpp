#include "core/engine/run_job.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/distill/objectives.h"
#include "core/distill/student_step.h"
#include "core/distill/teacher_cache.h"
#include "core/distill/trainer.h"
#include "core/record/run_writer.h"

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
    // Looked up at run time: Debian picks the BLAS through alternatives, and only OpenBLAS
    // has this entry point.
    using SetThreads = void (*)(int);
    if (auto* fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      fn(blasThreads);
    }
  }
}

namespace {

struct Cancelled {};

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

class JobRunner {
public:
  JobRunner(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
            const ProgressSink& sink)
      : m_job(job), m_options(options), m_cancel(cancel), m_sink(sink) {}

  JobResult run();

private:
  void runTask(const TaskData& task);
  void info(const std::string& task, const std::string& model, const std::string& message);
  void checkCancel() const {
    if (m_cancel.cancelled()) {
      throw Cancelled{};
    }
  }

  const JobSpec& m_job;
  const RunOptions& m_options;
  const CancelToken& m_cancel;
  const ProgressSink& m_sink;
  std::unique_ptr<RunWriter> m_writer;
  std::unique_ptr<ProgressTracker> m_progress;
  std::string m_where; // "task 'x', model 'y'" for messages
};

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
  m_writer->writeTask(task);
  const auto checkpointDir = fs::path(m_options.outDir) / "checkpoints" / task.name;

  // Teacher: train (plain cross-entropy) or load.
  m_where = "task '" + task.name + "', model 'teacher'";
  torch::manual_seed(deriveSeed(m_job.seed, task.name, "teacher"));
  auto teacher = makeModel(m_job.teacher.architecture, task);
  m_writer->beginModel(task.name, "teacher", "teacher", architectureJson(m_job.teacher.architecture, task),
                       teacherObjectiveJson(), teacher->parameterCount());
  // Earlier teacher checkpoints (teacher_epoch<k>.pt, for students' teacher_epoch) sit
  // beside the final one.
  fs::path teacherDir = checkpointDir;
  if (!m_job.teacher.checkpoint.empty()) {
    const auto path = resolvePath(m_job.baseDir, replaceAll(m_job.teacher.checkpoint, "{task}", task.name));
    info(task.name, "teacher", "loading checkpoint " + path);
    loadCheckpoint(*teacher, path);
    teacherDir = fs::path(path).parent_path();
  } else {
    info(task.name, "teacher", "training");
    TrainTarget target{task.name, "teacher", deriveSeed(m_job.seed, task.name, "teacher"),
                       m_job.recording.logEvery};
    target.afterEpoch = [this, &checkpointDir](int epoch, ClassifierImpl& model) {
      bool wanted = m_job.teacher.epochCheckpoints;
      for (const auto& s : m_job.students) {
        wanted = wanted || s.teacherEpoch == epoch;
      }
      if (wanted) {
        saveCheckpoint(model, checkpointDir / ("teacher_epoch" + std::to_string(epoch) + ".pt"));
      }
    };
    if (trainModel(*teacher, task, m_job.teacher.training, makeTeacherStep(), target, *m_writer, m_cancel,
                   *m_progress) == TrainOutcome::Cancelled) {
      throw Cancelled{};
    }
    saveCheckpoint(*teacher, checkpointDir / "teacher.pt");
  }
  info(task.name, "teacher", "recording eval outputs");
  if (!recordEvalOutputs(*teacher, task, m_job.recording, "teacher", *m_writer, m_cancel)) {
    throw Cancelled{};
  }

  bool anyNeedsTeacher = false;
  for (const auto& s : m_job.students) {
    anyNeedsTeacher = anyNeedsTeacher || studentUsesTeacherCache(s);
  }
  std::optional<TeacherCache> cache;
  if (anyNeedsTeacher && m_job.cacheTeacherOutputs) {
    cache.emplace();
    const auto budget = static_cast<std::uint64_t>(m_job.teacherCacheBudgetMb * 1024.0 * 1024.0);
    if (!cache->build(*teacher, task, budget, (checkpointDir / "teacher_cache.bin").string(), m_cancel)) {
      throw Cancelled{};
    }
    info(task.name, "teacher",
         "cached train-set outputs (" + std::to_string(cache->bytes()) + " bytes, " +
             (cache->onDisk() ? "on disk" : "in memory") + ")");
  }
  teacher->eval();

  std::map<int, std::shared_ptr<ClassifierImpl>> weakTeachers; // teacher_epoch -> checkpoint
  for (const auto& student : m_job.students) {
    checkCancel();
    m_where = "task '" + task.name + "', model '" + student.name + "'";
    // A weaker teacher: the teacher's checkpoint after an earlier epoch (loaded once per epoch).
    ClassifierImpl* studentTeacher = teacher.get();
    std::string teacherJson;
    if (student.teacherEpoch > 0) {
      const auto path = (teacherDir / ("teacher_epoch" + std::to_string(student.teacherEpoch) + ".pt")).string();
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
    const auto seed = deriveSeed(m_job.seed, task.name, student.name);
    torch::manual_seed(seed);
    auto model = makeModel(student.architecture, task);
    const auto step = makeStudentStep(student, *studentTeacher, m_job.teacher.architecture, task,
                                      cache ? &*cache : nullptr, deriveSeed(m_job.seed, task.name, student.name + "/augment"));
    m_writer->beginModel(task.name, student.name, "student", architectureJson(student.architecture, task),
                         studentObjectiveJson(student, step.intermediateJson, teacherJson), model->parameterCount());
    info(task.name, student.name, "training");
    TrainTarget target{task.name, student.name, seed, m_job.recording.logEvery};
    target.extraParameters = step.parameters;
    if (trainModel(*model, task, student.training, step.step, target, *m_writer, m_cancel, *m_progress) ==
        TrainOutcome::Cancelled) {
      throw Cancelled{};
    }
    saveCheckpoint(*model, checkpointDir / (student.name + ".pt"));
    info(task.name, student.name, "recording eval outputs");
    if (!recordEvalOutputs(*model, task, m_job.recording, student.name, *m_writer, m_cancel)) {
      throw Cancelled{};
    }
  }
}

JobResult JobRunner::run() {
  JobResult result;
  const auto runPath = fs::path(m_options.outDir) / "run.h5";
  result.runPath = runPath.string();
  auto finish = [&](JobStatus status, const std::string& message) {
    result.status = status;
    result.message = message;
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
    for (const auto& spec : m_job.tasks) {
      info(spec.name, "", "loading data");
      tasks.push_back(loadTask(spec, dataDir, m_job.seed));
      const auto n = tasks.back().train.size();
      if (m_job.teacher.checkpoint.empty()) {
        totalSteps += plannedSteps(m_job.teacher.training, n);
      }
      for (const auto& s : m_job.students) {
        totalSteps += plannedSteps(s.training, n);
      }
      checkCancel();
    }
    m_progress = std::make_unique<ProgressTracker>(m_sink, totalSteps);
    m_writer = std::make_unique<RunWriter>(runPath.string(), jobToJson(m_job));
    for (const auto& task : tasks) {
      runTask(task);
    }
    return finish(JobStatus::Succeeded, "");
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

JobResult runJob(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                 const ProgressSink& progress) {
  JobRunner runner(job, options, cancel, progress);
  return runner.run();
}

} // namespace kdscope::core
