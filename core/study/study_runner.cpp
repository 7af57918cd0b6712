#include "core/study/study_runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/record/run_reader.h"
#include "core/study/summary.h"

namespace kdscope::core {

namespace fs = std::filesystem;

const char* toString(UnitState state) {
  switch (state) {
  case UnitState::Complete:
    return "complete";
  case UnitState::Stale:
    return "stale";
  case UnitState::Incomplete:
    return "incomplete";
  case UnitState::Missing:
    return "missing";
  }
  return "unknown";
}

namespace {

struct Unit {
  std::string name;
  std::string dir;
  JobSpec job;
  double weight = 0.0;
};

double trainingWeight(const TrainingSpec& t) {
  return static_cast<double>(t.epochs) / static_cast<double>(std::max(1, t.batchSize));
}

std::vector<Unit> studyUnits(const StudySpec& study, const std::string& outDir) {
  std::vector<Unit> units;
  if (study.teacherJob) {
    Unit u;
    u.name = "teacher";
    u.dir = studyTeacherDir(outDir);
    u.job = *study.teacherJob;
    std::error_code ec;
    const auto dir = fs::absolute(u.dir, ec);
    u.job.baseDir = (ec ? fs::path(u.dir) : dir).lexically_normal().string();
    u.weight = trainingWeight(u.job.teacher.training);
    units.push_back(std::move(u));
  }
  for (const StudyCell& cell : study.cells) {
    Unit u;
    u.name = cell.name;
    u.dir = studyCellDir(outDir, cell.name);
    u.job = cellJobForRun(study, cell, outDir);
    for (const auto& s : u.job.students) {
      u.weight += trainingWeight(s.training);
    }
    units.push_back(std::move(u));
  }
  return units;
}

UnitState unitState(const Unit& unit) {
  const std::string path = (fs::path(unit.dir) / "run.h5").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return UnitState::Missing;
  }
  try {
    const RunReader reader(path);
    const RunSummary summary = reader.summary();
    if (summary.status != "complete") {
      return UnitState::Incomplete;
    }
    return summary.jobJson == jobToJson(unit.job) ? UnitState::Complete : UnitState::Stale;
  } catch (const std::exception&) {
    return UnitState::Incomplete; // a file cut short by a kill, or not a run file
  }
}

} // namespace

std::vector<StudyUnitStatus> studyStatus(const StudySpec& study, const std::string& outDir) {
  std::vector<StudyUnitStatus> out;
  for (const Unit& unit : studyUnits(study, outDir)) {
    out.push_back({unit.name, (fs::path(unit.dir) / "run.h5").string(), unitState(unit)});
  }
  return out;
}

StudyResult runStudy(const StudySpec& study, const StudyRunOptions& options, const CancelToken& cancel,
                     const StudyProgressSink& progress) {
  StudyResult result;
  const auto start = std::chrono::steady_clock::now();
  try {
    std::error_code ec;
    fs::create_directories(options.outDir, ec);
    if (ec) {
      result.status = JobStatus::BadInput;
      result.message = "--out '" + options.outDir + "': cannot create the folder: " + ec.message();
      return result;
    }
    {
      std::ofstream out(fs::path(options.outDir) / "study.json", std::ios::binary | std::ios::trunc);
      out << study.normalizedJson << "\n";
    }
    const std::vector<Unit> units = studyUnits(study, options.outDir);
    double totalWeight = 0.0;
    for (const Unit& u : units) {
      totalWeight += u.weight;
    }
    totalWeight = std::max(totalWeight, 1e-12);
    double doneWeight = 0.0;    // complete units, skipped or run
    double ranWeight = 0.0;     // units run in this call (for the ETA)
    double ranSeconds = 0.0;
    const auto elapsed = [&start]() {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const auto emit = [&](StudyProgressEvent event, std::size_t index, const Unit& unit, double unitFraction,
                          double unitSeconds) {
      if (!progress) {
        return;
      }
      event.unit = index + 1;
      event.units = units.size();
      event.unitName = unit.name;
      event.fraction = std::min(1.0, (doneWeight + unit.weight * unitFraction) / totalWeight);
      event.elapsedSeconds = elapsed();
      const double workDone = ranWeight + unit.weight * unitFraction;
      const double workSeconds = ranSeconds + unitSeconds;
      if (workDone > 0.0 && workSeconds > 0.0) {
        const double remaining = totalWeight - doneWeight - unit.weight * unitFraction;
        event.etaSeconds = std::max(0.0, workSeconds * remaining / workDone);
      }
      progress(event);
    };
    bool cancelled = false;
    bool teacherFailed = false;
    for (std::size_t i = 0; i < units.size() && !cancelled && !teacherFailed; ++i) {
      const Unit& unit = units[i];
      const UnitState state = unitState(unit);
      if (state == UnitState::Complete) {
        ++result.skipped;
        StudyProgressEvent event;
        event.kind = StudyProgressEvent::Kind::UnitSkipped;
        event.message = "complete already";
        doneWeight += unit.weight;
        emit(event, i, unit, 0.0, 0.0);
        continue;
      }
      if (cancel.cancelled()) {
        cancelled = true;
        break;
      }
      StudyProgressEvent started;
      started.kind = StudyProgressEvent::Kind::UnitStarted;
      started.message = std::string("run file ") + toString(state);
      emit(started, i, unit, 0.0, 0.0);
      const auto unitStart = std::chrono::steady_clock::now();
      const auto unitSeconds = [&unitStart]() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - unitStart).count();
      };
      RunOptions runOptions;
      runOptions.outDir = unit.dir;
      runOptions.threads = options.threads;
      runOptions.blasThreads = options.blasThreads;
      double lastFraction = 0.0;
      const JobResult job = runJob(unit.job, runOptions, cancel, [&](const ProgressEvent& e) {
        StudyProgressEvent event;
        event.kind = StudyProgressEvent::Kind::Job;
        event.job = e;
        lastFraction = std::max(lastFraction, e.fraction);
        emit(event, i, unit, lastFraction, unitSeconds());
      });
      ++result.ran;
      StudyProgressEvent finished;
      if (job.status == JobStatus::Succeeded) {
        ranWeight += unit.weight;
        ranSeconds += unitSeconds();
        doneWeight += unit.weight;
        finished.kind = StudyProgressEvent::Kind::UnitFinished;
        emit(finished, i, unit, 0.0, 0.0);
        continue;
      }
      finished.kind = StudyProgressEvent::Kind::UnitFailed;
      finished.message = std::string(toString(job.status)) + (job.message.empty() ? "" : ": " + job.message);
      emit(finished, i, unit, lastFraction, unitSeconds()); // the unit runs again next time
      if (job.status == JobStatus::Cancelled) {
        cancelled = true;
      } else {
        result.failed.push_back(unit.name + ": " + job.message);
        teacherFailed = unit.name == "teacher" && study.teacherJob.has_value() && i == 0;
      }
    }
    // The summary reflects whatever is on disk now, finished or not.
    const StudySummary summary = buildStudySummary(study, options.outDir);
    writeStudySummary(summary, options.outDir);
    result.summaryPath = (fs::path(options.outDir) / "study_summary.json").string();
    if (progress) {
      StudyProgressEvent event;
      event.kind = StudyProgressEvent::Kind::Summary;
      event.units = units.size();
      event.message = result.summaryPath;
      event.fraction = std::min(1.0, doneWeight / totalWeight);
      event.elapsedSeconds = elapsed();
      progress(event);
    }
    if (cancelled) {
      result.status = JobStatus::Cancelled;
      result.message = "cancelled; " + std::to_string(summary.completeCells()) + " of " +
                       std::to_string(summary.cells.size()) + " cells complete (run the study again to resume)";
    } else if (!result.failed.empty()) {
      result.status = JobStatus::Failed;
      result.message = teacherFailed ? "the teacher job failed, so no cell could run: " + result.failed.front()
                                     : std::to_string(result.failed.size()) + " unit(s) failed: " + result.failed.front();
    } else {
      result.status = JobStatus::Succeeded;
    }
  } catch (const std::exception& e) {
    result.status = JobStatus::Failed;
    result.message = e.what();
  } catch (...) {
    result.status = JobStatus::Failed;
    result.message = "unknown error";
  }
  return result;
}

} // namespace kdscope::core
