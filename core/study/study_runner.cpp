#include "core/study/study_runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>

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
  int cell = -1; ///< index into StudySpec::cells; -1 for the teacher
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
    u.cell = static_cast<int>(&cell - study.cells.data());
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

/// Where cell `index` (into `units`) takes its teacher's analyses from: the teacher job's run
/// file; with a teacher of its own checkpoint (no teacher job), the first other cell whose run
/// file is complete for its job, if any. The analysis checks the file (same checkpoint, data
/// and options) and computes instead when it does not fit. Empty: none.
std::string teacherAnalysesSource(const StudySpec& study, const std::vector<Unit>& units, std::size_t index) {
  if (study.teacherJob) {
    return (fs::path(units.front().dir) / "run.h5").string();
  }
  for (std::size_t k = 0; k < units.size(); ++k) {
    if (k != index && units[k].cell >= 0 && unitState(units[k]) == UnitState::Complete) {
      return (fs::path(units[k].dir) / "run.h5").string();
    }
  }
  return "";
}

/// Writes OUT/study.json beside, then renames it into place: array tasks that start at once
/// never leave (or read) half a file. With `onlyIfMissing`, an existing file is kept.
void writeStudyCopy(const StudySpec& study, const std::string& outDir, bool onlyIfMissing) {
  const fs::path target = fs::path(outDir) / "study.json";
  std::error_code ec;
  if (onlyIfMissing && fs::exists(target, ec)) {
    return;
  }
  const fs::path tmp = target.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << study.normalizedJson << "\n";
    if (!out) {
      fs::remove(tmp, ec);
      return; // a copy for the record only: the run does not depend on it
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
  }
}

} // namespace

namespace {

/// Creates OUT and writes the study's copy there, as every study run starts; false (with
/// `result` set to BadInput, naming --out) when the folder cannot be made.
bool prepareStudyFolder(const StudySpec& study, const StudyRunOptions& options, StudyResult& result) {
  std::error_code ec;
  fs::create_directories(options.outDir, ec);
  if (ec) {
    result.status = JobStatus::BadInput;
    result.message = "--out '" + options.outDir + "': cannot create the folder: " + ec.message();
    return false;
  }
  writeStudyCopy(study, options.outDir, options.scope == StudyScope::Cell);
  return true;
}

/// A replicated study: each replicate is an ordinary study in OUT/rep-<seed> (its own
/// teacher, cells and summary), run in seed order; then the combined summary in OUT.
StudyResult runReplicatedStudy(const StudySpec& study, const StudyRunOptions& options, const CancelToken& cancel,
                               const StudyProgressSink& progress) {
  StudyResult result;
  try {
    if (!prepareStudyFolder(study, options, result)) {
      return result;
    }
    const std::size_t reps = study.replicateSeeds.size();
    std::vector<std::size_t> which; // the replicates this call runs
    StudyRunOptions one = options;
    if (options.scope == StudyScope::Cell) {
      const std::size_t units = studyUnitCount(study);
      if (options.cell >= units) {
        result.status = JobStatus::BadInput;
        result.message = "--cell " + std::to_string(options.cell) + ": the study has " + std::to_string(units) +
                         " cell units (" + std::to_string(study.cells.size()) + " cells x " + std::to_string(reps) +
                         " replicates: 0 to " + std::to_string(units - 1) + ")";
        return result;
      }
      which.push_back(options.cell % reps);
      one.cell = options.cell / reps;
    } else {
      for (std::size_t r = 0; r < reps; ++r) {
        which.push_back(r);
      }
    }
    bool cancelled = false;
    std::size_t done = 0;
    std::string lastMessage; // a unit run alone: its own words (e.g. "needs the study's teacher")
    for (const std::size_t r : which) {
      const std::uint64_t seed = study.replicateSeeds[r];
      one.outDir = studyReplicateDir(options.outDir, seed);
      const std::string tag = "/rep-" + std::to_string(seed);
      const double share = 1.0 / static_cast<double>(which.size());
      const StudyResult part = runStudy(studyReplicate(study, seed), one, cancel, [&](const StudyProgressEvent& e) {
        if (!progress || e.kind == StudyProgressEvent::Kind::Summary) {
          return;
        }
        StudyProgressEvent event = e;
        event.unitName += tag;
        event.fraction = (static_cast<double>(done) + e.fraction) * share;
        if (e.etaSeconds >= 0.0) {
          // This replicate's remaining time plus the later replicates' at its pace.
          event.etaSeconds = e.etaSeconds + (e.elapsedSeconds + e.etaSeconds) *
                                                static_cast<double>(which.size() - done - 1);
        }
        progress(event);
      });
      ++done;
      result.ran += part.ran;
      result.skipped += part.skipped;
      for (const std::string& failure : part.failed) {
        result.failed.push_back(failure + " (replicate seed " + std::to_string(seed) + ")");
      }
      if (part.status != JobStatus::Succeeded && options.scope != StudyScope::All) {
        lastMessage = part.message + " (replicate seed " + std::to_string(seed) + ")";
      }
      if (part.status == JobStatus::BadInput) {
        return part;
      }
      if (part.status == JobStatus::Cancelled) {
        cancelled = true;
        break;
      }
    }
    std::size_t completeCells = 0;
    if (options.scope == StudyScope::All) {
      const StudySummary summary = buildStudySummary(study, options.outDir);
      writeStudySummary(summary, options.outDir);
      completeCells = summary.completeCells();
      result.summaryPath = (fs::path(options.outDir) / "study_summary.json").string();
      if (progress) {
        StudyProgressEvent event;
        event.kind = StudyProgressEvent::Kind::Summary;
        event.units = studyUnitCount(study);
        event.message = result.summaryPath;
        event.fraction = 1.0;
        progress(event);
      }
    }
    if (cancelled) {
      result.status = JobStatus::Cancelled;
      result.message = options.scope == StudyScope::All
                           ? "cancelled; " + std::to_string(completeCells) + " of " +
                                 std::to_string(study.cells.size()) +
                                 " cells complete in every replicate (run the study again to resume)"
                           : "cancelled (run the same command again to resume)";
    } else if (!result.failed.empty()) {
      result.status = JobStatus::Failed;
      result.message = !lastMessage.empty()
                           ? lastMessage
                           : std::to_string(result.failed.size()) + " unit(s) failed: " + result.failed.front();
    } else {
      result.status = JobStatus::Succeeded;
    }
  } catch (const std::exception& e) {
    result.status = JobStatus::Failed;
    result.message = e.what();
  }
  return result;
}

} // namespace

std::vector<StudyUnitStatus> studyStatus(const StudySpec& study, const std::string& outDir) {
  if (!study.replicateSeeds.empty()) {
    // Each replicate's teacher, then the cell units in index order (cell c of replicate r
    // is unit c * R + r).
    const std::size_t reps = study.replicateSeeds.size();
    std::vector<StudyUnitStatus> teachers;
    std::vector<StudyUnitStatus> cells(study.cells.size() * reps);
    for (std::size_t r = 0; r < reps; ++r) {
      const std::uint64_t seed = study.replicateSeeds[r];
      for (StudyUnitStatus unit : studyStatus(studyReplicate(study, seed), studyReplicateDir(outDir, seed))) {
        unit.name += "/rep-" + std::to_string(seed);
        if (unit.cell < 0) {
          teachers.push_back(std::move(unit));
        } else {
          const std::size_t index = static_cast<std::size_t>(unit.cell) * reps + r;
          unit.cell = static_cast<int>(index);
          cells[index] = std::move(unit);
        }
      }
    }
    teachers.insert(teachers.end(), cells.begin(), cells.end());
    return teachers;
  }
  std::vector<StudyUnitStatus> out;
  for (const Unit& unit : studyUnits(study, outDir)) {
    out.push_back({unit.name, unit.cell, (fs::path(unit.dir) / "run.h5").string(), unitState(unit)});
  }
  return out;
}

StudyResult runStudy(const StudySpec& study, const StudyRunOptions& options, const CancelToken& cancel,
                     const StudyProgressSink& progress) {
  if (!study.replicateSeeds.empty()) {
    return runReplicatedStudy(study, options, cancel, progress);
  }
  StudyResult result;
  const auto start = std::chrono::steady_clock::now();
  try {
    if (!prepareStudyFolder(study, options, result)) {
      return result;
    }
    const std::vector<Unit> units = studyUnits(study, options.outDir);
    // The units this call runs (indices into `units`, whose numbering progress reports).
    std::vector<std::size_t> selected;
    const std::size_t firstCell = study.teacherJob ? 1 : 0;
    switch (options.scope) {
    case StudyScope::All:
      for (std::size_t i = 0; i < units.size(); ++i) {
        selected.push_back(i);
      }
      break;
    case StudyScope::TeacherOnly:
      if (study.teacherJob) {
        selected.push_back(0);
      }
      break;
    case StudyScope::Cell: {
      if (options.cell >= study.cells.size()) {
        result.status = JobStatus::BadInput;
        result.message = "--cell " + std::to_string(options.cell) + ": the study has " +
                         std::to_string(study.cells.size()) + " cells (0 to " +
                         std::to_string(study.cells.size() - 1) + ")";
        return result;
      }
      // A cell alone never trains the teacher: array tasks would all train it at once into
      // the same folder. It must be complete (the Slurm array depends on the teacher job).
      if (study.teacherJob) {
        const UnitState teacher = unitState(units[0]);
        if (teacher != UnitState::Complete) {
          result.status = JobStatus::Failed;
          result.message = "cell " + std::to_string(options.cell) + " (" + study.cells[options.cell].name +
                           ") needs the study's teacher, and " + (fs::path(units[0].dir) / "run.h5").string() +
                           " is " + toString(teacher) +
                           (teacher == UnitState::Stale ? " (written for another study)" : "") +
                           ": run the teacher first (kdscope study STUDY --out DIR --teacher-only)";
          result.failed.push_back(units[0].name + ": " + toString(teacher));
          return result;
        }
      }
      selected.push_back(firstCell + options.cell);
      break;
    }
    }
    double totalWeight = 0.0;
    for (const std::size_t i : selected) {
      totalWeight += units[i].weight;
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
    for (std::size_t k = 0; k < selected.size() && !cancelled && !teacherFailed; ++k) {
      const std::size_t i = selected[k];
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
      if (state != UnitState::Missing) {
        // A new file, not the old one truncated: a reader that holds the old one open (the
        // window following the study, another --list) cannot make this unit's writer fail.
        std::error_code removeError;
        fs::remove(fs::path(unit.dir) / "run.h5", removeError);
      }
      RunOptions runOptions;
      runOptions.outDir = unit.dir;
      runOptions.threads = options.threads;
      runOptions.blasThreads = options.blasThreads;
      if (unit.cell >= 0 && study.reuseTeacherAnalyses && options.reuseTeacherAnalyses) {
        runOptions.teacherAnalysesFrom = teacherAnalysesSource(study, units, i);
      }
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
    // The summary reflects whatever is on disk now, finished or not. A unit run alone leaves
    // it to mergeStudy: array tasks finishing at once would each rewrite it.
    std::size_t completeCells = 0;
    if (options.scope == StudyScope::All) {
      const StudySummary summary = buildStudySummary(study, options.outDir);
      writeStudySummary(summary, options.outDir);
      completeCells = summary.completeCells();
      result.summaryPath = (fs::path(options.outDir) / "study_summary.json").string();
    }
    if (progress && options.scope == StudyScope::All) {
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
      result.message = options.scope == StudyScope::All
                           ? "cancelled; " + std::to_string(completeCells) + " of " +
                                 std::to_string(study.cells.size()) + " cells complete (run the study again to resume)"
                           : "cancelled (run the same command again to resume)";
    } else if (!result.failed.empty()) {
      result.status = JobStatus::Failed;
      result.message = teacherFailed && options.scope == StudyScope::All
                           ? "the teacher job failed, so no cell could run: " + result.failed.front()
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

StudyMergeResult mergeStudy(const StudySpec& study, const std::string& outDir) {
  StudyMergeResult result;
  for (const StudyUnitStatus& unit : studyStatus(study, outDir)) {
    if (unit.cell >= 0 && unit.state != UnitState::Complete) {
      result.notComplete.push_back(unit);
    }
  }
  result.complete = result.notComplete.empty();
  if (result.complete) {
    for (const auto seed : study.replicateSeeds) { // each replicate's own summary too
      const std::string dir = studyReplicateDir(outDir, seed);
      writeStudySummary(buildStudySummary(studyReplicate(study, seed), dir), dir);
    }
    writeStudySummary(buildStudySummary(study, outDir), outDir);
    result.summaryPath = (fs::path(outDir) / "study_summary.json").string();
  }
  return result;
}

} // namespace kdscope::core
