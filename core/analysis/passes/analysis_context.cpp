// The shared context of the analysis passes (analysis_context.h).
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace fs = std::filesystem;

ParsedObjective parseObjective(const std::string& text, const std::string& where) {
  const layout::RecordedObjective r = layout::decodeObjective(text, where);
  ParsedObjective out;
  out.logit.labelSmoothing = r.labelSmoothing;
  out.logit.lambda = r.lambda;
  out.logit.temperature = r.temperature;
  out.logit.tSquared = r.tSquared;
  out.logit.ptTargets = r.ptTargets;
  out.logit.logitMse = r.logitMse;
  out.hasKd = r.hasKd;
  out.pure = r.pure;
  out.labelSmoothingMatchTemperature = r.labelSmoothingMatchTemperature;
  out.known = true;
  return out;
}

std::vector<std::int64_t> toInt64(const an::Matrix& m) {
  std::vector<std::int64_t> out(m.values.size());
  std::transform(m.values.begin(), m.values.end(), out.begin(),
                 [](double v) { return static_cast<std::int64_t>(std::llround(v)); });
  return out;
}

std::vector<std::int64_t> sizesToInt64(const std::vector<std::size_t>& v) {
  return std::vector<std::int64_t>(v.begin(), v.end());
}

void writeRunnerUp(ResultWriter& out, const std::string& path, const an::RunnerUp& r) {
  if (!r.valid()) {
    return;
  }
  out.attr(path, "extreme_index", static_cast<std::int64_t>(r.first));
  out.attr(path, "runner_up_index", static_cast<std::int64_t>(r.second));
  out.attr(path, "runner_up_difference", r.difference.estimate);
  out.attr(path, "runner_up_difference_lo", r.difference.lo);
  out.attr(path, "runner_up_difference_hi", r.difference.hi);
  out.attr(path, "runner_up_resamples", static_cast<std::int64_t>(r.difference.resamples));
}

std::string formatNumber(double v) {
  std::ostringstream out;
  out.precision(4);
  out << v;
  return out.str();
}

bool AnalysisContext::wants(const std::string& name) const {
  return options.only.empty() || std::find(options.only.begin(), options.only.end(), name) != options.only.end();
}

void AnalysisContext::checkCancel() const { throwIfCancelled(cancel); }

namespace {

/// Whether the calling thread runs the model lane of a task (ModelLane).
thread_local bool t_modelLane = false;

} // namespace

ModelLane::ModelLane() : m_previous(t_modelLane) { t_modelLane = true; }

ModelLane::~ModelLane() { t_modelLane = m_previous; }

void AnalysisContext::emit(ProgressEvent::Kind kind, const std::string& task, const std::string& model,
                           const std::string& message) {
  const std::lock_guard<std::mutex> lock(mutex);
  if (!sink) {
    return;
  }
  ProgressEvent e;
  e.kind = kind;
  e.task = task;
  e.model = model;
  e.message = message;
  e.fraction = fraction;
  e.elapsedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sink(e);
}

void AnalysisContext::phase(const std::string& task, const std::string& model, const std::string& message) {
  emit(ProgressEvent::Kind::Phase, task, model, message);
}

void AnalysisContext::skip(const std::string& task, const std::string& what, const std::string& why) {
  const std::string line = what + ": " + why;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (t_modelLane) {
      taskSkipped.push_back(line);
      warnings.push_back(task + ": " + line);
      ++modelSkips;
      ++modelWarnings;
    } else {
      // Before the model lane's: the order of the passes run one after another.
      taskSkipped.insert(taskSkipped.end() - static_cast<std::ptrdiff_t>(modelSkips), line);
      warnings.insert(warnings.end() - static_cast<std::ptrdiff_t>(modelWarnings), task + ": " + line);
    }
  }
  emit(ProgressEvent::Kind::Warning, task, "", "skipped " + line);
}

void AnalysisContext::beginTask() {
  {
    const std::lock_guard<std::mutex> lock(mutex);
    taskSkipped.clear();
    recordedStage = 0.0;
    modelStage = kModelStage;
    modelSkips = 0;
    modelWarnings = 0;
  }
  advance(0.0);
}

void AnalysisContext::advance(double stageFraction) {
  const std::lock_guard<std::mutex> lock(mutex);
  if (stageFraction >= 1.0) {
    recordedStage = kModelStage;
    modelStage = 1.0;
  } else if (t_modelLane) {
    modelStage = std::max(modelStage, stageFraction);
  } else {
    recordedStage = std::max(recordedStage, std::min(stageFraction, kModelStage));
  }
  const double stage = recordedStage + modelStage - kModelStage;
  fraction = std::min(1.0, (static_cast<double>(taskIndex) + stage) / static_cast<double>(taskCount));
}

std::string AnalysisContext::dataDir() const {
  if (!options.dataDir.empty()) {
    return options.dataDir;
  }
  if (job && !job->dataDir.empty()) {
    const fs::path dir(job->dataDir);
    if (dir.is_absolute()) {
      return dir.string();
    }
    // The job file's folder is not recorded; try beside the run file.
    const fs::path besideRun = fs::path(path).parent_path() / dir;
    std::error_code ec;
    if (fs::exists(besideRun, ec)) {
      return besideRun.string();
    }
  }
  return resolveDataDir("");
}

std::string AnalysisContext::checkpointFor(const std::string& task, const std::string& model) const {
  const fs::path runDir = fs::absolute(fs::path(path)).parent_path();
  const fs::path beside = runDir / "checkpoints" / task / (model + ".pt");
  std::error_code ec;
  if (fs::exists(beside, ec) || model != "teacher" || !job || job->teacher.checkpoint.empty()) {
    return beside.string();
  }
  // A loaded teacher is not copied beside the run: use the job's checkpoint path.
  std::string path = job->teacher.checkpoint;
  for (auto pos = path.find("{task}"); pos != std::string::npos; pos = path.find("{task}", pos + task.size())) {
    path.replace(pos, 6, task);
  }
  if (fs::path(path).is_absolute() || fs::exists(path, ec)) {
    return path;
  }
  return (runDir / path).string();
}

std::pair<std::string, std::vector<int>> AnalysisContext::layerMapOf(const std::string& student) const {
  std::pair<std::string, std::vector<int>> out{"uniform", {}};
  if (job) {
    for (const StudentSpec& spec : allStudents(*job)) {
      if (spec.name == student) {
        out = {spec.objective.layerMap, spec.objective.layerList};
      }
    }
  }
  return out;
}

} // namespace kdscope::core::passes
