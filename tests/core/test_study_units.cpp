// A study run unit by unit, as a Slurm array runs it (docs/studies.md, "Running on Slurm"):
// the teacher alone, each cell alone (in any order, a complete one skipped, a broken one
// redone), the merge, and its summary against the one-process study's; the follower the
// window polls; the Slurm scripts' text and their refusals. The same path through the real
// executable and a stand-in sbatch is ctest app_study_slurm_standin (tests/slurm/).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/common/error.h"
#include "core/record/run_writer.h"
#include "core/study/slurm_script.h"
#include "core/study/study_follow.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

/// A small text study of 4 cells, lambda {0.2, 0.8} x teacher_epoch {1, final}: the cells
/// load both the final teacher and its epoch-1 checkpoint.
std::string unitStudyJson(const std::string& dataDir, const std::string& teacherEpochs = "2") {
  return R"({
    "name": "units",
    "seed": 5,
    "data_dir": ")" + dataDir + R"(",
    "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
                "training": {"epochs": )" + teacherEpochs + R"(, "batch_size": 16, "lr": 0.003}},
    "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
                "training": {"epochs": 1, "batch_size": 16, "lr": 0.003},
                "objective": {"temperature": 2.0}},
    "grid": {"lambda": [0.2, 0.8], "teacher_epoch": [1, 0]},
    "recording": {"attention_examples": 2, "log_every": 2},
    "analyze": false
  })";
}

StudySpec parsed(const std::string& json, const std::string& base = "/studies") {
  auto r = parseStudy(json, "units.json", base);
  std::string issues;
  for (const auto& i : r.issues) {
    issues += i.str() + "\n";
  }
  EXPECT_TRUE(r.study) << issues;
  return r.study ? *r.study : StudySpec{};
}

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

StudyRunOptions unitOptions(const std::string& out, StudyScope scope, std::size_t cell = 0) {
  StudyRunOptions o{out, 1, 1};
  o.scope = scope;
  o.cell = cell;
  return o;
}

} // namespace

// ---- teacher, cells, merge ----------------------------------------------------------------------

TEST(StudyUnits, TeacherThenEachCellThenMergeGiveTheOneProcessSummary) {
  const auto dir = kdscope::test::freshTempDir("study_units");
  const std::string data = kdscope::test::writePolarityCorpus(dir / "data", {120, false, false});
  const StudySpec study = parsed(unitStudyJson(data), dir.string());
  ASSERT_EQ(study.cells.size(), 4U);
  EXPECT_EQ(study.cells[1].name, "lam0.2_te-final");
  const std::string local = (dir / "local").string();
  const std::string array = (dir / "array").string();

  // The one-process study, one thread per pool (as the units below).
  ASSERT_EQ(runStudy(study, StudyRunOptions{local, 1, 1}, CancelToken(), {}).status, JobStatus::Succeeded);

  // Nothing yet: the merge names every cell by its array index and writes nothing.
  StudyMergeResult merge = mergeStudy(study, array);
  EXPECT_FALSE(merge.complete);
  ASSERT_EQ(merge.notComplete.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(merge.notComplete[i].cell, static_cast<int>(i));
    EXPECT_EQ(merge.notComplete[i].name, study.cells[i].name);
    EXPECT_EQ(merge.notComplete[i].state, UnitState::Missing);
  }
  EXPECT_TRUE(merge.summaryPath.empty());
  EXPECT_FALSE(fs::exists(fs::path(array) / "study_summary.json"));

  // A cell before its teacher is refused, naming the teacher's run file; it trains nothing.
  StudyResult early = runStudy(study, unitOptions(array, StudyScope::Cell, 0), CancelToken(), {});
  EXPECT_EQ(early.status, JobStatus::Failed);
  EXPECT_NE(early.message.find("needs the study's teacher"), std::string::npos) << early.message;
  EXPECT_NE(early.message.find((fs::path(array) / "teacher" / "run.h5").string() + " is missing"), std::string::npos)
      << early.message;
  EXPECT_FALSE(fs::exists(fs::path(array) / "cells"));
  // An index past the grid is bad input.
  EXPECT_EQ(runStudy(study, unitOptions(array, StudyScope::Cell, 4), CancelToken(), {}).status, JobStatus::BadInput);

  // The teacher alone: its run file and checkpoints, no cell, no summary.
  StudyResult teacher = runStudy(study, unitOptions(array, StudyScope::TeacherOnly), CancelToken(), {});
  ASSERT_EQ(teacher.status, JobStatus::Succeeded) << teacher.message;
  EXPECT_EQ(teacher.ran, 1U);
  auto states = studyStatus(study, array);
  EXPECT_EQ(states[0].state, UnitState::Complete);
  EXPECT_EQ(states[0].cell, -1);
  for (std::size_t i = 1; i < states.size(); ++i) {
    EXPECT_EQ(states[i].state, UnitState::Missing);
    EXPECT_EQ(states[i].cell, static_cast<int>(i - 1));
  }
  EXPECT_TRUE(fs::exists(fs::path(array) / "teacher/checkpoints/polarity/teacher_epoch1.pt"));
  EXPECT_TRUE(fs::exists(fs::path(array) / "study.json"));
  EXPECT_FALSE(fs::exists(fs::path(array) / "study_summary.json"));

  // Cells in another order than the grid's, one left out: the merge names it alone.
  StudyFollower follower(array);
  for (const std::size_t i : {3U, 1U, 0U}) {
    StudyResult cell = runStudy(study, unitOptions(array, StudyScope::Cell, i), CancelToken(), {});
    ASSERT_EQ(cell.status, JobStatus::Succeeded) << study.cells[i].name << ": " << cell.message;
    EXPECT_EQ(cell.ran, 1U);
    EXPECT_TRUE(cell.summaryPath.empty()); // a unit alone writes no summary
  }
  EXPECT_FALSE(fs::exists(fs::path(array) / "study_summary.json"));
  merge = mergeStudy(study, array);
  EXPECT_FALSE(merge.complete);
  ASSERT_EQ(merge.notComplete.size(), 1U);
  EXPECT_EQ(merge.notComplete[0].cell, 2);
  EXPECT_EQ(merge.notComplete[0].name, "lam0.8_te1");
  StudySummary seen = follower.refresh();
  StudyProgressCounts counts = studyProgressCounts(seen);
  EXPECT_EQ(counts.total, 4U);
  EXPECT_EQ(counts.complete, 3U);
  EXPECT_EQ(counts.missing, 1U);
  EXPECT_EQ(seen.cells[2].status, "missing");

  // A killed task leaves its cell "running": the follower says so, the merge still waits,
  // and running the cell again redoes it.
  {
    fs::create_directories(studyCellDir(array, study.cells[2].name));
    RunWriter killed((fs::path(studyCellDir(array, study.cells[2].name)) / "run.h5").string(),
                     jobToJson(cellJobForRun(study, study.cells[2], array)));
    // While its writer holds it, the cell is "running" without being opened.
    EXPECT_TRUE(runFileBeingWritten((fs::path(studyCellDir(array, study.cells[2].name)) / "run.h5").string()));
    EXPECT_EQ(readStudyCell(study, study.cells[2], array).status, "running");
  }
  EXPECT_FALSE(runFileBeingWritten((fs::path(studyCellDir(array, study.cells[2].name)) / "run.h5").string()));
  seen = follower.refresh();
  EXPECT_EQ(seen.cells[2].status, "running"); // the status the dead writer left
  EXPECT_EQ(follower.lastReads(), 1U);        // the three complete cells came from the cache
  EXPECT_EQ(mergeStudy(study, array).notComplete.size(), 1U);
  const auto firstCell = fs::path(studyCellDir(array, study.cells[0].name)) / "run.h5";
  const auto stamp = fs::last_write_time(firstCell);
  StudyResult redo = runStudy(study, unitOptions(array, StudyScope::Cell, 2), CancelToken(), {});
  ASSERT_EQ(redo.status, JobStatus::Succeeded) << redo.message;
  EXPECT_EQ(redo.ran, 1U);
  // A complete cell is skipped, its file untouched.
  StudyResult again = runStudy(study, unitOptions(array, StudyScope::Cell, 0), CancelToken(), {});
  EXPECT_EQ(again.status, JobStatus::Succeeded);
  EXPECT_EQ(again.ran, 0U);
  EXPECT_EQ(again.skipped, 1U);
  EXPECT_EQ(fs::last_write_time(firstCell), stamp);
  seen = follower.refresh();
  EXPECT_EQ(studyProgressCounts(seen).complete, 4U);
  EXPECT_EQ(follower.lastReads(), 1U); // only the redone cell

  merge = mergeStudy(study, array);
  ASSERT_TRUE(merge.complete);
  EXPECT_TRUE(merge.notComplete.empty());
  EXPECT_EQ(merge.summaryPath, (fs::path(array) / "study_summary.json").string());

  // The same summary, byte for byte. Each unit ran through runJob with the same job, seeds,
  // kernels and thread settings as in the one-process study, which docs/architecture.md
  // ("Determinism") promises to be bit-identical: no tolerance is needed, and one would hide
  // a unit that ran with another teacher or job.
  EXPECT_EQ(readText(fs::path(array) / "study_summary.json"), readText(fs::path(local) / "study_summary.json"));
  EXPECT_EQ(readText(fs::path(array) / "study_summary.csv"), readText(fs::path(local) / "study_summary.csv"));
  const StudySummary summary = readStudySummary(merge.summaryPath);
  EXPECT_EQ(summary.completeCells(), 4U);
  // The follower's view of the folder is the merged summary.
  ASSERT_EQ(seen.cells.size(), summary.cells.size());
  for (std::size_t i = 0; i < seen.cells.size(); ++i) {
    EXPECT_EQ(seen.cells[i].name, summary.cells[i].name);
    EXPECT_EQ(seen.cells[i].tasks[0].studentAccuracy, summary.cells[i].tasks[0].studentAccuracy);
    EXPECT_EQ(seen.cells[i].tasks[0].gap, summary.cells[i].tasks[0].gap);
  }

  // The teacher changed (3 epochs): a cell no longer runs on the old one.
  const StudySpec changed = parsed(unitStudyJson(data, "3"), dir.string());
  StudyResult stale = runStudy(changed, unitOptions(array, StudyScope::Cell, 1), CancelToken(), {});
  EXPECT_EQ(stale.status, JobStatus::Failed);
  EXPECT_NE(stale.message.find("is stale (written for another study)"), std::string::npos) << stale.message;
  EXPECT_FALSE(mergeStudy(changed, array).complete); // every cell is stale for the changed study
  fs::remove_all(dir);
}

TEST(StudyUnits, CellsByIndexOrName) {
  const StudySpec study = parsed(unitStudyJson("/data"));
  ASSERT_EQ(study.cells.size(), 4U);
  EXPECT_EQ(findStudyCell(study, "0"), 0U);
  EXPECT_EQ(findStudyCell(study, "3"), 3U);
  EXPECT_EQ(findStudyCell(study, "lam0.8_te1"), 2U);
  EXPECT_FALSE(findStudyCell(study, "4"));
  EXPECT_FALSE(findStudyCell(study, "-1"));
  EXPECT_FALSE(findStudyCell(study, ""));
  EXPECT_FALSE(findStudyCell(study, "lam0.5_te1"));
  EXPECT_FALSE(findStudyCell(study, "99999999999999999999"));
}

TEST(StudyUnits, FollowerNeedsTheStudyFile) {
  const auto dir = kdscope::test::freshTempDir("study_follow_none");
  StudyFollower follower(dir.string());
  const std::string message = kdscope::test::messageOf<InputError>([&] { follower.refresh(); });
  EXPECT_NE(message.find((dir / "study.json").string() + ": no study here yet"), std::string::npos) << message;
  kdscope::test::writeFile((dir / "study.json").string(), R"({"tasks": ["polarity"], "grid": {"layers": [0]}})");
  const std::string invalid = kdscope::test::messageOf<InputError>([&] { follower.refresh(); });
  EXPECT_NE(invalid.find("is not a valid study"), std::string::npos) << invalid;
  EXPECT_NE(invalid.find("grid.layers[0]"), std::string::npos) << invalid;
  fs::remove_all(dir);
}

// ---- Slurm scripts ------------------------------------------------------------------------------

namespace {

SlurmOptions clusterOptions() {
  SlurmOptions o;
  o.executable = "/opt/kd/bin/kdscope";
  o.studyPath = "/home/me/studies/units.json";
  o.outDir = "/scratch/me/units/";
  o.partition = "cpu";
  o.time = "1:30:00";
  o.mem = "4G";
  o.account = "proj-17";
  o.cpusPerTask = 2;
  o.arrayLimit = 3;
  return o;
}

const SlurmFile& fileNamed(const std::vector<SlurmFile>& files, const std::string& name) {
  for (const auto& f : files) {
    if (f.name == name) {
      return f;
    }
  }
  static const SlurmFile none;
  ADD_FAILURE() << "no " << name;
  return none;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace

TEST(StudySlurm, ScriptsForAnArrayOfOneTaskPerCellAfterTheTeacher) {
  const StudySpec study = parsed(unitStudyJson("/data"));
  const auto files = slurmScripts(study, clusterOptions());
  ASSERT_EQ(files.size(), 4U);
  EXPECT_EQ(files[0].path, "/scratch/me/units/slurm/teacher.sbatch");
  const std::string& teacher = fileNamed(files, "teacher.sbatch").text;
  const std::string& cells = fileNamed(files, "cells.sbatch").text;
  const std::string& merge = fileNamed(files, "merge.sbatch").text;
  const std::string& submit = fileNamed(files, "submit.sh").text;
  // The array: one task per cell (4 cells: 0-3), at most 3 at once; each task is its cell.
  EXPECT_TRUE(has(cells, "\n#SBATCH --array=0-3%3\n")) << cells;
  EXPECT_TRUE(has(cells, "\n#   0  lam0.2_te1\n#   1  lam0.2_te-final\n#   2  lam0.8_te1\n#   3  lam0.8_te-final\n"))
      << cells;
  EXPECT_TRUE(has(cells, "exec /opt/kd/bin/kdscope study /home/me/studies/units.json --out /scratch/me/units "
                         "--cell \"$SLURM_ARRAY_TASK_ID\" --threads \"$CPUS\" --blas-threads \"$CPUS\"\n"))
      << cells;
  EXPECT_TRUE(has(cells, "CPUS=\"${SLURM_CPUS_PER_TASK:-2}\"\n"));
  // Resources from the options, log paths under DIR/slurm/logs, in the #SBATCH block.
  for (const std::string* script : {&teacher, &cells}) {
    EXPECT_TRUE(has(*script, "\n#SBATCH --cpus-per-task=2\n")) << *script;
    EXPECT_TRUE(has(*script, "\n#SBATCH --partition=cpu\n"));
    EXPECT_TRUE(has(*script, "\n#SBATCH --account=proj-17\n"));
    EXPECT_TRUE(has(*script, "\n#SBATCH --time=1:30:00\n"));
    EXPECT_TRUE(has(*script, "\n#SBATCH --mem=4G\n"));
    // sbatch reads #SBATCH lines only before the first command.
    EXPECT_LT(script->rfind("#SBATCH"), script->find("\nset -eu\n"));
  }
  EXPECT_TRUE(has(cells, "\n#SBATCH --output=/scratch/me/units/slurm/logs/cell-%a-%A.out\n"));
  EXPECT_TRUE(has(teacher, "\n#SBATCH --output=/scratch/me/units/slurm/logs/teacher-%j.out\n"));
  EXPECT_TRUE(has(merge, "\n#SBATCH --output=/scratch/me/units/slurm/logs/merge-%j.out\n"));
  EXPECT_TRUE(has(teacher, " --teacher-only --threads \"$CPUS\""));
  EXPECT_FALSE(has(teacher, "--array"));
  EXPECT_TRUE(has(merge, "\n#SBATCH --cpus-per-task=1\n"));
  EXPECT_TRUE(has(merge, "exec /opt/kd/bin/kdscope study /home/me/studies/units.json --out /scratch/me/units --merge\n"));
  // submit.sh: the teacher, the array after it, the merge after the array.
  const auto teacherLine = submit.find("teacher=$(sbatch --parsable \"$@\" \"$dir/teacher.sbatch\")");
  const auto cellsLine = submit.find("cells=$(sbatch --parsable --dependency=afterok:\"$teacher\" "
                                     "--kill-on-invalid-dep=yes \"$@\" \"$dir/cells.sbatch\")");
  const auto mergeLine = submit.find("merge=$(sbatch --parsable --dependency=afterok:\"$cells\" "
                                     "--kill-on-invalid-dep=yes \"$@\" \"$dir/merge.sbatch\")");
  ASSERT_NE(teacherLine, std::string::npos) << submit;
  ASSERT_NE(cellsLine, std::string::npos) << submit;
  ASSERT_NE(mergeLine, std::string::npos) << submit;
  EXPECT_LT(teacherLine, cellsLine);
  EXPECT_LT(cellsLine, mergeLine);
  EXPECT_TRUE(has(submit, "\ndir=/scratch/me/units/slurm\n"));
  // How to submit names the script and the manual order.
  const std::string howTo = slurmSubmitHowTo(study, clusterOptions());
  EXPECT_TRUE(has(howTo, "  sh /scratch/me/units/slurm/submit.sh\n")) << howTo;
  EXPECT_TRUE(has(howTo, "--dependency=afterok:T /scratch/me/units/slurm/cells.sbatch")) << howTo;

  // No resources given: no such lines (the cluster's defaults); threads as given.
  SlurmOptions plain = clusterOptions();
  plain.partition = plain.time = plain.mem = plain.account = "";
  plain.arrayLimit = 0;
  plain.cpusPerTask = 1;
  plain.threads = 1;
  plain.blasThreads = 2;
  const auto bare = slurmScripts(study, plain);
  for (const auto& f : bare) {
    EXPECT_FALSE(has(f.text, "--partition") || has(f.text, "--time") || has(f.text, "--mem=") ||
                 has(f.text, "--account"))
        << f.name;
  }
  EXPECT_TRUE(has(fileNamed(bare, "cells.sbatch").text, "\n#SBATCH --array=0-3\n"));
  EXPECT_TRUE(has(fileNamed(bare, "cells.sbatch").text, "--threads 1 --blas-threads 2\n"));
}

TEST(StudySlurm, AStudyWithATeacherCheckpointHasNoTeacherJob) {
  auto json = unitStudyJson("/data");
  const auto replace = [&json](const std::string& from, const std::string& to) {
    ASSERT_NE(json.find(from), std::string::npos) << from;
    json.replace(json.find(from), from.size(), to);
  };
  replace("\"teacher\": {", "\"teacher\": {\"checkpoint\": \"/models/{task}/t.pt\", ");
  replace(", \"teacher_epoch\": [1, 0]", "");
  const StudySpec study = parsed(json);
  ASSERT_FALSE(study.teacherJob);
  const auto files = slurmScripts(study, clusterOptions());
  ASSERT_EQ(files.size(), 3U);
  EXPECT_EQ(files[0].name, "cells.sbatch");
  const std::string& submit = fileNamed(files, "submit.sh").text;
  EXPECT_FALSE(has(submit, "teacher"));
  EXPECT_TRUE(has(submit, "cells=$(sbatch --parsable \"$@\" \"$dir/cells.sbatch\")")) << submit;
  EXPECT_TRUE(has(fileNamed(files, "cells.sbatch").text, "\n#SBATCH --array=0-1%3\n"));
}

TEST(StudySlurm, ScriptsAreValidShellAndQuoteOddPaths) {
  const auto dir = kdscope::test::freshTempDir("study_slurm_write");
  const StudySpec study = parsed(unitStudyJson("/data"));
  SlurmOptions o = clusterOptions();
  o.outDir = (dir / "out").string();
  o.studyPath = (dir / "it's a study.json").string(); // a quote and spaces: quoted for the shell
  const auto files = writeSlurmScripts(study, o);
  ASSERT_EQ(files.size(), 4U);
  EXPECT_TRUE(fs::is_directory(dir / "out/slurm/logs")); // sbatch does not create it
  for (const auto& f : files) {
    EXPECT_EQ(readText(f.path), f.text);
    EXPECT_NE(fs::status(f.path).permissions() & fs::perms::owner_exec, fs::perms::none) << f.path;
    const std::string check = "bash -n '" + f.path + "'";
    EXPECT_EQ(std::system(check.c_str()), 0) << f.path;
  }
  const std::string quoted = "'" + (dir / "it'\\''s a study.json").string() + "'";
  EXPECT_TRUE(has(fileNamed(files, "cells.sbatch").text, " study " + quoted + " --out ")) << quoted;
  // Running the quoted command line through the shell gives back the path.
  const std::string echo = "sh -c 'printf %s \"$0\"' " + quoted + " > '" + (dir / "echo.txt").string() + "'";
  ASSERT_EQ(std::system(echo.c_str()), 0) << echo;
  EXPECT_EQ(readText(dir / "echo.txt"), o.studyPath);
  fs::remove_all(dir);
}

TEST(StudySlurm, RefusesWhatSlurmWouldNot) {
  const StudySpec study = parsed(unitStudyJson("/data"));
  const auto refused = [&](void (*change)(SlurmOptions&)) {
    SlurmOptions o = clusterOptions();
    change(o);
    return kdscope::test::messageOf<InputError>([&] { slurmScripts(study, o); });
  };
  EXPECT_EQ(refused([](SlurmOptions& o) { o.time = "2 hours"; }),
            "--time '2 hours': not a Slurm time limit (minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. 2:00:00)");
  EXPECT_EQ(refused([](SlurmOptions& o) { o.mem = "4GB"; }),
            "--mem '4GB': not a Slurm memory size (a number of MB, or with a K, M, G or T suffix, e.g. 4G)");
  EXPECT_EQ(refused([](SlurmOptions& o) { o.partition = "cpu\n#SBATCH --x"; }).rfind("--partition 'cpu", 0), 0U);
  EXPECT_EQ(refused([](SlurmOptions& o) { o.account = "a b"; }).rfind("--account 'a b'", 0), 0U);
  EXPECT_EQ(refused([](SlurmOptions& o) { o.cpusPerTask = 0; }), "--cpus-per-task 0: must be at least 1");
  const std::string spaced = refused([](SlurmOptions& o) { o.outDir = "/scratch/my study"; });
  EXPECT_EQ(spaced.rfind("--out '/scratch/my study': the Slurm scripts name their log files", 0), 0U) << spaced;
  EXPECT_NE(refused([](SlurmOptions& o) { o.outDir = "/scratch/100%"; }).find("'%'"), std::string::npos);
  // Slurm's other time forms pass.
  for (const char* t : {"30", "30:00", "2-0", "2-12:00", "1-00:00:00", "UNLIMITED"}) {
    SlurmOptions o = clusterOptions();
    o.time = t;
    EXPECT_NO_THROW(slurmScripts(study, o)) << t;
  }
}
