#pragma once
/// Studies: a grid of student configurations run against one teacher per task
/// (docs/studies.md). A study file expands into one job per cell; every cell job is
/// validated by the job parser, and its issues come back with study paths. Plain structs,
/// no torch.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::core {

/// One axis of the grid. Factors appear in this fixed order when present:
/// layers, heads, objective, temperature, lambda, augmentation, teacher_epoch.
struct StudyFactor {
  std::string name;                ///< the grid key, e.g. "layers"
  std::vector<std::string> levels; ///< display text of each level ("4", "0.5", "kd", "final")
  /// Each level as a number for plots (the integer or number itself; the final teacher's
  /// epoch count for teacher_epoch 0; the level's index for named presets).
  std::vector<double> values;
  bool named = false;              ///< objective and augmentation: presets with names
};

/// One grid point: its job (one student, the study's teacher loaded from a checkpoint).
struct StudyCell {
  std::string name;                ///< deterministic, e.g. "L2_H4_kd_T4_lam0.5_aug-mask_te-final"
  std::vector<std::size_t> levels; ///< index of the level of each factor, in factor order
  JobSpec job;                     ///< relative paths resolve against the cell's folder
};

struct StudySpec {
  std::string name = "study";
  std::string studentName = "student"; ///< the student's name in every cell's run file
  std::vector<std::string> tasks;
  std::vector<StudyFactor> factors;
  std::vector<StudyCell> cells;        ///< the grid in row-major order (last factor fastest)
  /// The teacher-only job that trains every task's teacher once, with its per-epoch
  /// checkpoints when a cell distils from an earlier epoch. Unset when the study's teacher
  /// has a checkpoint of its own.
  std::optional<JobSpec> teacherJob;
  /// "replicates" (a count or a list of seeds, as in a job): every cell and the teacher job
  /// run once per seed into OUT/rep-<seed>/ (docs/studies.md, "Replicates"); empty: one run.
  /// "replicate_seed" alone sets every job's JobSpec::replicateSeed (one run).
  std::vector<std::uint64_t> replicateSeeds;
  /// "reuse_teacher_analyses" (default true): each cell's analysis copies the teacher's heads
  /// and probes results from the study's teacher job's run file (or, with teacher.checkpoint,
  /// from the first complete cell) when computed from the same inputs, instead of computing
  /// them again (docs/studies.md, "Teacher analyses, once per study").
  bool reuseTeacherAnalyses = true;
  std::string normalizedJson; ///< the study as read, pretty-printed (kept with the results)
  std::string baseDir;        ///< folder of the study file
};

struct StudyParseResult {
  std::optional<StudySpec> study; ///< set when there are no issues
  std::vector<JobIssue> issues;   ///< every problem, with a study JSON path
};

/// Parses, validates and expands a study. Never throws. Each cell's job is built from the
/// study's job fields, its `student` (named `student.name`, default "student") and the
/// cell's levels, then checked by parseJob: an issue found in some cells only names the
/// first of them. Relative `data_dir` and `teacher.checkpoint` resolve against `baseDir`.
StudyParseResult parseStudy(const std::string& jsonText, const std::string& sourceName = "study",
                            const std::string& baseDir = "");

/// Reads and parses a study file (its folder is the base for relative paths).
StudyParseResult loadStudyFile(const std::string& path);

/// Folder of a cell under the study's output folder: OUT/cells/<name>.
std::string studyCellDir(const std::string& outDir, const std::string& cellName);
/// Folder of the teacher-only job: OUT/teacher.
std::string studyTeacherDir(const std::string& outDir);

/// Folder of one replicate of a replicated study: OUT/rep-<seed> (it holds an ordinary
/// study's teacher/, cells/ and study_summary.json).
std::string studyReplicateDir(const std::string& outDir, std::uint64_t seed);

/// The study of one replicate: replicateSeeds empty, every job's replicates cleared and its
/// replicateSeed set to `seed` (so its run files record the seed and resume per seed).
StudySpec studyReplicate(const StudySpec& study, std::uint64_t seed);

/// The cell units a study runs one at a time (--cell, the Slurm array): cells x replicates,
/// unit i = cell i / R of replicate seed i % R (R = replicateSeeds.size(), 1 without).
std::size_t studyUnitCount(const StudySpec& study);
/// Unit i's name: the cell's name, or "<cell>/rep-<seed>" in a replicated study.
std::string studyUnitName(const StudySpec& study, std::size_t index);

/// The cell unit `indexOrName` names: a decimal index (0-based: the Slurm array task id;
/// studyUnitCount units) or a unit's name (studyUnitName). Empty when there is no such unit.
std::optional<std::size_t> findStudyCell(const StudySpec& study, const std::string& indexOrName);

/// A cell's job as it runs under `outDir`: its checkpoint path made to point at the
/// study's teacher and baseDir set to the cell's folder.
JobSpec cellJobForRun(const StudySpec& study, const StudyCell& cell, const std::string& outDir);

} // namespace kdscope::core
