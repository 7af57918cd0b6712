#pragma once
/// Runs a study: the teacher job once, then every cell's job, each writing its own run
/// file, then the study summary (docs/studies.md). Resumable: a unit whose run file is
/// complete and was written for the same job is not run again. Never throws. Runs on the
/// caller's thread, like runJob.
///
/// The same units run one at a time in separate processes (a Slurm job array, docs/studies.md
/// "Running on Slurm"): the teacher alone (StudyScope::TeacherOnly), then each cell alone
/// (StudyScope::Cell), then mergeStudy writes the summary once every cell is complete.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/engine/run_job.h"
#include "core/study/study_spec.h"

namespace kdscope::core {

/// Which units one call runs.
enum class StudyScope {
  All,         ///< the teacher job, every cell, then the summary
  TeacherOnly, ///< the teacher job alone (nothing when the study's teacher has a checkpoint); no summary
  Cell         ///< one cell (StudyRunOptions::cell) alone; its teacher must be complete; no summary
};

struct StudyRunOptions {
  std::string outDir;   ///< OUT: study.json, teacher/, cells/<cell>/, study_summary.{json,csv}
  int threads = 0;      ///< as RunOptions
  int blasThreads = -1; ///< as RunOptions
  StudyScope scope = StudyScope::All;
  std::size_t cell = 0; ///< StudyScope::Cell: the index into StudySpec::cells
  /// false: every cell computes its teacher's analyses itself, whatever the study's
  /// reuse_teacher_analyses (`kdscope study --no-teacher-reuse`).
  bool reuseTeacherAnalyses = true;
};

/// Where a unit (the teacher job or a cell) stands on disk.
enum class UnitState {
  Complete,   ///< its run file is complete and records the same job: it will be skipped
  Stale,      ///< complete, but for a different job (the study changed): it will run again
  Incomplete, ///< running (the process died), cancelled or failed: it will run again
  Missing     ///< no run file yet
};
const char* toString(UnitState state);

struct StudyUnitStatus {
  std::string name;    ///< "teacher" or the cell's name
  int cell = -1;       ///< the index into StudySpec::cells (the array task id); -1 for the teacher
  std::string runPath; ///< OUT/teacher/run.h5 or OUT/cells/<cell>/run.h5
  UnitState state = UnitState::Missing;
};

/// The teacher unit (when the study trains its teacher) and every cell, in run order.
std::vector<StudyUnitStatus> studyStatus(const StudySpec& study, const std::string& outDir);

struct StudyProgressEvent {
  enum class Kind {
    UnitStarted,  ///< a unit begins (message: why it runs, e.g. "stale")
    UnitSkipped,  ///< a unit was complete already
    UnitFinished, ///< a unit's job succeeded
    UnitFailed,   ///< a unit's job failed or was cancelled (message says why)
    Job,          ///< a progress event of the running unit's job (`job`)
    Summary       ///< the summary was written (message: its path)
  };
  Kind kind = Kind::Job;
  std::size_t unit = 0;  ///< 1-based index of the unit in run order
  std::size_t units = 0; ///< teacher unit + cells
  std::string unitName;
  std::string message;
  /// Overall progress in [0, 1]: units weighted by their planned optimiser steps per
  /// example (epochs / batch_size of each model the unit trains); skipped units count done.
  double fraction = 0.0;
  double elapsedSeconds = 0.0;
  double etaSeconds = -1.0; ///< from the units run so far in this call; -1 before any progress
  ProgressEvent job;        ///< Kind::Job only
};
using StudyProgressSink = std::function<void(const StudyProgressEvent&)>;

struct StudyResult {
  JobStatus status = JobStatus::Failed; ///< Succeeded only when every unit is complete
  std::string message;
  std::size_t ran = 0;
  std::size_t skipped = 0;
  std::vector<std::string> failed; ///< "cell: message" for each unit that failed
  std::string summaryPath;         ///< OUT/study_summary.json (also written after a failure)
};

/// Runs every unit that is not complete, then writes the summary. A failed cell does not
/// stop the others; a failed teacher stops the study (every cell needs it); cancelling
/// stops after the running unit records "cancelled", and the summary lists what is done.
StudyResult runStudy(const StudySpec& study, const StudyRunOptions& options, const CancelToken& cancel,
                     const StudyProgressSink& progress);

struct StudyMergeResult {
  bool complete = false;                     ///< every cell is complete for this study
  std::vector<StudyUnitStatus> notComplete;  ///< the cells that are not (missing, incomplete, stale)
  std::string summaryPath;                   ///< OUT/study_summary.json; empty when not written
};

/// The last step of a study run unit by unit: when every cell's run file is complete and
/// records the cell's job (as studyStatus says), writes OUT/study_summary.{json,csv} (the
/// same buildStudySummary as runStudy) and says so; otherwise writes nothing and lists the
/// cells that are not complete. Throws InputError naming the file when the summary cannot
/// be written.
StudyMergeResult mergeStudy(const StudySpec& study, const std::string& outDir);

} // namespace kdscope::core
