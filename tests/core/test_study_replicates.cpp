// Replicated studies (issue #14; docs/studies.md, "Replicates"): the spec fields and their
// refusals, the cell units (cells x replicates) and their names, a tiny real replicated study
// (2 cells x 3 replicates of a tiny transformer on a small polarity corpus) whose summary's
// means, Student-t intervals, paired t tests, effects and sensitivity slopes are recomputed
// here from the per-replicate numbers read back from the run files with closed forms (3
// replicates: t_{0.975, 2} = 4.302652729911275 and the df = 2 two-sided p = 1 - |t| /
// sqrt(t^2 + 2)), the same study run unit by unit and merged, and the Slurm array.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/analysis/interval_text.h"
#include "core/common/error.h"
#include "core/record/run_reader.h"
#include "core/report/report.h"
#include "core/study/slurm_script.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

constexpr double kT975df2 = 4.302652729911275; // scipy.stats.t.ppf(0.975, 2)

std::string repStudyJson(const std::string& dataDir, const std::string& replicates) {
  return R"({
    "name": "reps",
    "seed": 5,
    "data_dir": ")" + dataDir + R"(",
    "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
                "training": {"epochs": 2, "batch_size": 16, "lr": 0.003}},
    "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
                "training": {"epochs": 1, "batch_size": 16, "lr": 0.003},
                "objective": {"temperature": 2.0, "lambda": 0.5}},
    "grid": {"layers": [1, 2]},
    "replicates": )" + replicates + R"(,
    "recording": {"attention_examples": 2, "log_every": 4},
    "analyze": false
  })";
}

std::string issuesOf(const StudyParseResult& r) {
  std::string out;
  for (const auto& i : r.issues) {
    out += i.str() + "\n";
  }
  return out;
}

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Hand {
  double mean = 0.0;
  double lo = 0.0;
  double hi = 0.0;
};

/// Mean and t interval of three values, by hand.
Hand handInterval(const std::vector<double>& v) {
  EXPECT_EQ(v.size(), 3U);
  const double m = (v[0] + v[1] + v[2]) / 3.0;
  const double ss = (v[0] - m) * (v[0] - m) + (v[1] - m) * (v[1] - m) + (v[2] - m) * (v[2] - m);
  const double half = kT975df2 * std::sqrt(ss / 2.0) / std::sqrt(3.0);
  return {m, m - half, m + half};
}

/// Two-sided paired t p-value of three differences (df = 2 closed form).
double handPairedP(const std::vector<double>& d) {
  const Hand h = handInterval(d);
  const double ss = (d[0] - h.mean) * (d[0] - h.mean) + (d[1] - h.mean) * (d[1] - h.mean) +
                    (d[2] - h.mean) * (d[2] - h.mean);
  const double se = std::sqrt(ss / 2.0) / std::sqrt(3.0);
  if (se == 0.0) {
    return h.mean == 0.0 ? 1.0 : 0.0; // no spread: exactly no difference, or a certain one
  }
  const double t = h.mean / se;
  return 1.0 - std::fabs(t) / std::sqrt(t * t + 2.0);
}

void expectInterval(const StudyRepValue& got, const std::vector<double>& values, const std::string& what) {
  const Hand h = handInterval(values);
  EXPECT_NEAR(got.summary.mean, h.mean, 1e-12) << what;
  EXPECT_NEAR(got.summary.interval.lo, h.lo, 1e-9) << what;
  EXPECT_NEAR(got.summary.interval.hi, h.hi, 1e-9) << what;
  EXPECT_EQ(got.summary.interval.count, 3U) << what;
  EXPECT_EQ(got.summary.interval.over, std::string(kdscope::core::analysis::kOverReplicates)) << what;
  ASSERT_EQ(got.values.size(), 3U) << what;
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_NEAR(got.values[r], values[r], 1e-12) << what << " replicate " << r;
  }
}

/// What the run files say, per replicate and cell.
struct RunNumbers {
  double teacher = 0.0;
  double student = 0.0;
  double studentParameters = 0.0;
  double teacherParameters = 0.0;
  std::string jobJson;
  std::int64_t evalExamples = 0;
};

RunNumbers readRun(const fs::path& path) {
  const RunReader reader(path.string());
  const RunSummary s = reader.summary();
  EXPECT_EQ(s.status, "complete") << path;
  RunNumbers n;
  n.jobJson = s.jobJson;
  for (const auto& m : s.tasks.at(0).models) {
    if (m.role == "teacher") {
      n.teacher = m.evalAccuracy;
      n.teacherParameters = static_cast<double>(m.parameterCount);
    } else {
      n.student = m.evalAccuracy;
      n.studentParameters = static_cast<double>(m.parameterCount);
    }
  }
  n.evalExamples = s.tasks.at(0).evalExamples;
  return n;
}

/// The study of the real tests, run once: 3 teachers and 2 cells x 3 replicates.
struct RepStudy {
  fs::path dir;
  std::string out;
  StudySpec study;
};

const RepStudy& repStudy() {
  static const RepStudy fixture = [] {
    RepStudy f;
    f.dir = kdscope::test::freshTempDir("study_replicates");
    const std::string data = kdscope::test::writePolarityCorpus(f.dir / "data", {120, false, false});
    const auto parsed = parseStudy(repStudyJson(data, "[3, 4, 5]"), "reps.json", f.dir.string());
    EXPECT_TRUE(parsed.study) << issuesOf(parsed);
    if (parsed.study) {
      f.study = *parsed.study;
    }
    f.out = (f.dir / "one").string();
    const StudyResult run = runStudy(f.study, StudyRunOptions{f.out, 1, 1}, CancelToken(), {});
    EXPECT_EQ(run.status, JobStatus::Succeeded) << run.message;
    EXPECT_EQ(run.ran, 9U); // 3 teachers + 2 cells x 3 replicates
    return f;
  }();
  return fixture;
}

const std::vector<std::uint64_t> kSeeds = {3, 4, 5};
const std::vector<std::string> kCells = {"L1", "L2"};

/// runs[r][c]: replicate r, cell c, from the run files.
std::vector<std::vector<RunNumbers>> readRuns(const std::string& out) {
  std::vector<std::vector<RunNumbers>> runs(3, std::vector<RunNumbers>(2));
  for (std::size_t r = 0; r < 3; ++r) {
    const fs::path rep = fs::path(out) / ("rep-" + std::to_string(kSeeds[r]));
    for (std::size_t c = 0; c < 2; ++c) {
      runs[r][c] = readRun(rep / "cells" / kCells[c] / "run.h5");
    }
  }
  return runs;
}

/// Holm by hand over three raw p-values, in the order given.
std::vector<double> handHolm3(const std::vector<double>& p) {
  std::vector<std::size_t> order = {0, 1, 2};
  std::stable_sort(order.begin(), order.end(), [&p](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> out(3);
  double running = 0.0;
  for (std::size_t k = 0; k < 3; ++k) {
    running = std::max(running, static_cast<double>(3 - k) * p[order[k]]);
    out[order[k]] = std::min(1.0, running);
  }
  return out;
}

} // namespace

TEST(StudyReplicates, FieldsParseAndRefuseNamingTheField) {
  const auto count = parseStudy(repStudyJson("/data", "3"), "s.json", "/studies");
  ASSERT_TRUE(count.study) << issuesOf(count);
  EXPECT_EQ(count.study->replicateSeeds, (std::vector<std::uint64_t>{5, 6, 7})); // seed, seed + 1, seed + 2
  EXPECT_EQ(count.study->cells.front().job.replicateSeeds(), count.study->replicateSeeds);
  const auto list = parseStudy(repStudyJson("/data", "[11, 3, 9]"), "s.json", "/studies");
  ASSERT_TRUE(list.study) << issuesOf(list);
  const StudySpec& s = *list.study;
  EXPECT_EQ(s.replicateSeeds, (std::vector<std::uint64_t>{11, 3, 9}));
  // Units: cell c of replicate r is c * R + r.
  EXPECT_EQ(studyUnitCount(s), 6U);
  EXPECT_EQ(studyUnitName(s, 0), "L1/rep-11");
  EXPECT_EQ(studyUnitName(s, 2), "L1/rep-9");
  EXPECT_EQ(studyUnitName(s, 4), "L2/rep-3");
  EXPECT_EQ(findStudyCell(s, "5"), std::optional<std::size_t>(5));
  EXPECT_EQ(findStudyCell(s, "L2/rep-3"), std::optional<std::size_t>(4));
  EXPECT_FALSE(findStudyCell(s, "6"));
  EXPECT_FALSE(findStudyCell(s, "L2")); // a cell name alone is not a unit in a replicated study
  // One replicate's study: the seed pinned in every job, no replicates left.
  const StudySpec one = studyReplicate(s, 3);
  EXPECT_TRUE(one.replicateSeeds.empty());
  EXPECT_EQ(one.cells[1].job.replicateSeed, 3U);
  EXPECT_TRUE(one.cells[1].job.replicateSeeds().empty());
  ASSERT_TRUE(one.teacherJob);
  EXPECT_EQ(one.teacherJob->replicateSeed, 3U);
  EXPECT_EQ(studyReplicateDir("/out", 3), "/out/rep-3");
  // Without replicates the study is as before; replicate_seed alone pins one run's seed.
  auto seedOnly = parseStudy(R"({"tasks": ["polarity"], "replicate_seed": 42})", "s.json", "/studies");
  ASSERT_TRUE(seedOnly.study) << issuesOf(seedOnly);
  EXPECT_TRUE(seedOnly.study->replicateSeeds.empty());
  EXPECT_EQ(seedOnly.study->cells.front().job.modelSeed(), 42U);
  EXPECT_EQ(studyUnitName(*seedOnly.study, 0), "base");

  // Refusals name the field.
  const auto refused = [](const std::string& replicates, const std::string& field) {
    const auto r = parseStudy(repStudyJson("/data", replicates), "s.json", "/studies");
    EXPECT_FALSE(r.study) << replicates;
    bool named = false;
    for (const auto& i : r.issues) {
      named = named || i.path.rfind(field, 0) == 0;
    }
    EXPECT_TRUE(named) << replicates << ": " << issuesOf(r);
  };
  refused("\"three\"", "replicates");
  refused("[4, 4]", "replicates");
  refused("[-1]", "replicates");
  refused("-2", "replicates");
  const auto badSeed = parseStudy(R"({"tasks": ["polarity"], "replicate_seed": "x"})", "s.json", "/studies");
  EXPECT_FALSE(badSeed.study);
  ASSERT_FALSE(badSeed.issues.empty());
  EXPECT_EQ(badSeed.issues.front().path, "replicate_seed") << issuesOf(badSeed);
  const auto typo = parseStudy(R"({"tasks": ["polarity"], "replicate": 3})", "s.json", "/studies");
  EXPECT_FALSE(typo.study);
  EXPECT_NE(issuesOf(typo).find("did you mean 'replicates'"), std::string::npos) << issuesOf(typo);
}

TEST(StudyReplicates, SlurmArrayHasOneTaskPerCellAndReplicate) {
  const auto r = parseStudy(repStudyJson("/data", "[11, 3, 9]"), "s.json", "/studies");
  ASSERT_TRUE(r.study) << issuesOf(r);
  SlurmOptions options;
  options.executable = "/opt/kd/bin/kdscope";
  options.studyPath = "/home/me/s.json";
  options.outDir = "/scratch/me/reps";
  const auto files = slurmScripts(*r.study, options);
  std::string cells;
  for (const auto& f : files) {
    if (f.name == "cells.sbatch") {
      cells = f.text;
    }
  }
  EXPECT_NE(cells.find("\n#SBATCH --array=0-5\n"), std::string::npos) << cells;
  EXPECT_NE(cells.find("\n#   0  L1/rep-11\n#   1  L1/rep-3\n#   2  L1/rep-9\n#   3  L2/rep-11\n#   4  L2/rep-3\n"
                       "#   5  L2/rep-9\n"),
            std::string::npos)
      << cells;
  EXPECT_NE(slurmSubmitHowTo(*r.study, options).find("x 3 replicates"), std::string::npos);
}

TEST(StudyReplicates, RealStudySummaryMatchesHandWorkedIntervals) {
  const RepStudy& f = repStudy();
  const std::string& out = f.out;
  // The layout: an ordinary study per replicate, and the combined summary.
  const std::vector<std::uint64_t>& seeds = kSeeds;
  const std::vector<std::string>& cells = kCells;
  const auto runs = readRuns(out);
  for (std::size_t r = 0; r < 3; ++r) {
    const fs::path rep = fs::path(out) / ("rep-" + std::to_string(seeds[r]));
    EXPECT_TRUE(fs::exists(rep / "teacher/run.h5"));
    EXPECT_TRUE(fs::exists(rep / "study_summary.json"));
    for (std::size_t c = 0; c < 2; ++c) {
      // The run records its replicate seed; every replicate shares the split.
      EXPECT_NE(runs[r][c].jobJson.find("\"replicate_seed\": " + std::to_string(seeds[r])), std::string::npos)
          << runs[r][c].jobJson;
      EXPECT_EQ(runs[r][c].evalExamples, runs[0][0].evalExamples);
    }
  }
  const StudySummary summary = readStudySummary((fs::path(out) / "study_summary.json").string());
  ASSERT_FALSE(summary.replicates.empty());
  EXPECT_EQ(summary.replicates.seeds, seeds);
  EXPECT_EQ(summary.completeCells(), 2U);

  // Each cell: its numbers in each replicate, their means and t intervals.
  std::vector<double> gaps[2];
  std::vector<double> retained[2];
  for (std::size_t c = 0; c < 2; ++c) {
    std::vector<double> student;
    std::vector<double> teacher;
    for (std::size_t r = 0; r < 3; ++r) {
      student.push_back(runs[r][c].student);
      teacher.push_back(runs[r][c].teacher);
      gaps[c].push_back(runs[r][c].teacher - runs[r][c].student);
      retained[c].push_back(runs[r][c].student / runs[r][c].teacher);
    }
    const StudyRepCell* got = summary.replicates.cell(cells[c], "polarity");
    ASSERT_NE(got, nullptr);
    expectInterval(got->studentAccuracy, student, cells[c] + " student accuracy");
    expectInterval(got->teacherAccuracy, teacher, cells[c] + " teacher accuracy");
    expectInterval(got->gap, gaps[c], cells[c] + " gap");
    expectInterval(got->retained, retained[c], cells[c] + " retained");
    // The paired t of teacher against student is the gap's t interval, with its p.
    EXPECT_NEAR(got->gapTest.difference.estimate, handInterval(gaps[c]).mean, 1e-12);
    EXPECT_NEAR(got->gapTest.difference.lo, handInterval(gaps[c]).lo, 1e-9);
    EXPECT_NEAR(got->gapTest.pValue, handPairedP(gaps[c]), 1e-6) << cells[c];
    // The view's number is the mean over the replicates.
    EXPECT_NEAR(summary.cells[c].tasks[0].gap, handInterval(gaps[c]).mean, 1e-12);
    EXPECT_EQ(summary.cells[c].runFile, "rep-3/cells/" + cells[c] + "/run.h5");
  }
  // The teachers were trained once per replicate, from different seeds: the same teacher in
  // both cells of a replicate.
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(runs[r][0].teacher, runs[r][1].teacher);
  }

  // The layers factor (one cell per level): level means = the cells' gaps, effect = |gap L1 -
  // gap L2| per replicate, spread 0, and L1 against L2 a paired t on the gap differences.
  const StudyRepEffect* effect = summary.replicates.effect("polarity", "gap", "layers");
  ASSERT_NE(effect, nullptr);
  ASSERT_EQ(effect->levels, (std::vector<std::string>{"1", "2"}));
  expectInterval(effect->levelMeans[0], gaps[0], "level L1");
  expectInterval(effect->levelMeans[1], gaps[1], "level L2");
  std::vector<double> absDiff;
  std::vector<double> diff;
  for (std::size_t r = 0; r < 3; ++r) {
    diff.push_back(gaps[0][r] - gaps[1][r]);
    absDiff.push_back(std::fabs(gaps[0][r] - gaps[1][r]));
  }
  expectInterval(effect->effect, absDiff, "effect");
  EXPECT_EQ(effect->spread.summary.mean, 0.0);
  ASSERT_EQ(effect->pairs.size(), 1U);
  EXPECT_EQ(effect->pairs[0].first, "1");
  EXPECT_EQ(effect->pairs[0].second, "2");
  EXPECT_NEAR(effect->pairs[0].test.difference.estimate, handInterval(diff).mean, 1e-12);
  EXPECT_NEAR(effect->pairs[0].test.difference.lo, handInterval(diff).lo, 1e-9);
  EXPECT_NEAR(effect->pairs[0].test.difference.hi, handInterval(diff).hi, 1e-9);
  EXPECT_NEAR(effect->pairs[0].test.pValue, handPairedP(diff), 1e-6);
  EXPECT_EQ(effect->pairs[0].test.test, "paired t");

  // Holm over the gap's family: the two cells against their teacher and L1 against L2 (3
  // tests), the steps by hand: sort the raw p ascending, times 3, 2, 1, running maximum, cap 1.
  {
    const StudyRepCell* l1 = summary.replicates.cell("L1", "polarity");
    const StudyRepCell* l2 = summary.replicates.cell("L2", "polarity");
    const std::vector<double> raw = {l1->gapTest.pValue, l2->gapTest.pValue, effect->pairs[0].test.pValue};
    EXPECT_NEAR(raw[0], handPairedP(gaps[0]), 1e-6);
    EXPECT_NEAR(raw[1], handPairedP(gaps[1]), 1e-6);
    EXPECT_NEAR(raw[2], handPairedP(diff), 1e-6);
    const std::vector<double> holm = handHolm3(raw);
    EXPECT_NEAR(l1->gapHolm.p, holm[0], 1e-12);
    EXPECT_NEAR(l2->gapHolm.p, holm[1], 1e-12);
    EXPECT_NEAR(effect->pairs[0].holm.p, holm[2], 1e-12);
    EXPECT_EQ(l1->gapHolm.family, 3U);
    EXPECT_EQ(effect->pairs[0].holm.family, 3U);
  }

  // Task sensitivity: two cells, so each replicate's least-squares slope is the secant
  // (retained L2 - retained L1) / (x L2 - x L1); x = student / teacher parameters or layers.
  std::vector<double> paramSlopes;
  std::vector<double> layerSlopes;
  for (std::size_t r = 0; r < 3; ++r) {
    const double x1 = runs[r][0].studentParameters / runs[r][0].teacherParameters;
    const double x2 = runs[r][1].studentParameters / runs[r][1].teacherParameters;
    paramSlopes.push_back((retained[1][r] - retained[0][r]) / (x2 - x1));
    layerSlopes.push_back((retained[1][r] - retained[0][r]) / (2.0 / 2.0 - 1.0 / 2.0));
  }
  const StudyRepSlope* ps = summary.replicates.slope("polarity", "parameters");
  const StudyRepSlope* ls = summary.replicates.slope("polarity", "layers");
  ASSERT_NE(ps, nullptr);
  ASSERT_NE(ls, nullptr);
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_NEAR(ps->slope.values[r], paramSlopes[r], 1e-9);
    EXPECT_NEAR(ls->slope.values[r], layerSlopes[r], 1e-9);
  }
  const Hand layerHand = handInterval(layerSlopes);
  EXPECT_NEAR(ls->slope.summary.interval.lo, layerHand.lo, 1e-9);
  // The view's sensitivity rows: the mean slope with its interval over the replicates.
  bool sawLayers = false;
  for (const TaskSensitivity& t : summary.sensitivity) {
    if (t.measure == "layers") {
      sawLayers = true;
      EXPECT_NEAR(t.slope.estimate, layerHand.mean, 1e-9);
      EXPECT_NEAR(t.slope.lo, layerHand.lo, 1e-9);
      EXPECT_NEAR(t.slope.hi, layerHand.hi, 1e-9);
      EXPECT_EQ(t.slope.over, std::string(kdscope::core::analysis::kOverReplicates));
      EXPECT_EQ(t.rank, 1);
    }
  }
  EXPECT_TRUE(sawLayers);

}

TEST(StudyReplicates, UnitByUnitThenMergeGiveTheOneProcessSummary) {
  // What a Slurm array runs: a cell before its replicate's teacher is refused; the teachers;
  // the cell units in another order; the merge gives the same summaries, byte for byte.
  const RepStudy& f = repStudy();
  const StudySpec& study = f.study;
  const std::string& out = f.out;
  const std::string array = (f.dir / "array").string();
  StudyRunOptions cellOptions{array, 1, 1};
  cellOptions.scope = StudyScope::Cell;
  cellOptions.cell = 4; // L2 of replicate seed 4
  const StudyResult early = runStudy(study, cellOptions, CancelToken(), {});
  EXPECT_EQ(early.status, JobStatus::Failed);
  EXPECT_NE(early.message.find("needs the study's teacher"), std::string::npos) << early.message;
  EXPECT_NE(early.message.find("rep-4"), std::string::npos) << early.message;
  EXPECT_FALSE(fs::exists(fs::path(array) / "rep-4/cells"));
  cellOptions.cell = 6;
  EXPECT_EQ(runStudy(study, cellOptions, CancelToken(), {}).status, JobStatus::BadInput);
  StudyRunOptions teacherOptions{array, 1, 1};
  teacherOptions.scope = StudyScope::TeacherOnly;
  const StudyResult teachers = runStudy(study, teacherOptions, CancelToken(), {});
  ASSERT_EQ(teachers.status, JobStatus::Succeeded) << teachers.message;
  EXPECT_EQ(teachers.ran, 3U);
  EXPECT_FALSE(mergeStudy(study, array).complete);
  for (const std::size_t unit : {4U, 0U, 5U, 1U, 3U}) {
    cellOptions.cell = unit;
    const StudyResult one = runStudy(study, cellOptions, CancelToken(), {});
    ASSERT_EQ(one.status, JobStatus::Succeeded) << unit << ": " << one.message;
    EXPECT_EQ(one.ran, 1U);
  }
  EXPECT_TRUE(fs::exists(fs::path(array) / "rep-4/cells/L2/run.h5"));
  const StudyMergeResult partial = mergeStudy(study, array);
  EXPECT_FALSE(partial.complete);
  ASSERT_EQ(partial.notComplete.size(), 1U);
  EXPECT_EQ(partial.notComplete[0].cell, 2);
  EXPECT_EQ(partial.notComplete[0].name, "L1/rep-5");
  cellOptions.cell = 2;
  ASSERT_EQ(runStudy(study, cellOptions, CancelToken(), {}).status, JobStatus::Succeeded);
  const StudyMergeResult merged = mergeStudy(study, array);
  ASSERT_TRUE(merged.complete);
  EXPECT_EQ(readText(fs::path(array) / "study_summary.json"), readText(fs::path(out) / "study_summary.json"));
  EXPECT_EQ(readText(fs::path(array) / "rep-5/study_summary.json"), readText(fs::path(out) / "rep-5/study_summary.json"));
}

TEST(StudyReplicates, ReportAndInfoSayWhatTheNumbersSay) {
  // The report's sentences of the study, against the numbers worked by hand from the run
  // files: each cell's gap (teacher minus student, in points) with its t interval, the raw
  // paired t p and the Holm p over the gap's family of 3 tests, and the verdict they give.
  const RepStudy& f = repStudy();
  const auto runs = readRuns(f.out);
  std::vector<double> gaps[2];
  for (std::size_t c = 0; c < 2; ++c) {
    for (std::size_t r = 0; r < 3; ++r) {
      gaps[c].push_back(runs[r][c].teacher - runs[r][c].student);
    }
  }
  std::vector<double> levelDiff;
  for (std::size_t r = 0; r < 3; ++r) {
    levelDiff.push_back(gaps[0][r] - gaps[1][r]);
  }
  const std::vector<double> raw = {handPairedP(gaps[0]), handPairedP(gaps[1]), handPairedP(levelDiff)};
  const std::vector<double> holm = handHolm3(raw);
  namespace an = kdscope::core::analysis;
  const auto pts = [](double fraction) { return an::numberText(100.0 * fraction, 1); };
  const Report report = buildReport(f.out);
  EXPECT_EQ(report.studyDir, f.out);
  std::string all;
  for (const auto& section : report.sections) {
    for (const auto& finding : section.findings) {
      all += finding + "\n";
    }
  }
  for (std::size_t c = 0; c < 2; ++c) {
    const Hand h = handInterval(gaps[c]);
    const std::string tests = "paired t p = " + an::pValueText(raw[c]) + ", Holm p = " + an::pValueText(holm[c]) +
                              " of 3 tests, 3 replicates)";
    const bool detect = (h.lo > 0.0 || h.hi < 0.0) && holm[c] < 0.05;
    std::string expected;
    if (!detect) {
      expected = "no detectable difference between the teacher and student " + kCells[c] +
                 " on polarity: the teacher minus student " + kCells[c] + " " + pts(h.mean) + " points (95% CI " +
                 pts(h.lo) + " to " + pts(h.hi) + ", " + tests;
    } else if (h.mean > 0) {
      expected = "the teacher beats student " + kCells[c] + " on polarity by " + pts(h.mean) + " points (95% CI " +
                 pts(h.lo) + " to " + pts(h.hi) + ", " + tests;
    } else {
      expected = "student " + kCells[c] + " beats the teacher on polarity by " + pts(-h.mean) + " points (95% CI " +
                 pts(-h.hi) + " to " + pts(-h.lo) + ", " + tests;
    }
    EXPECT_NE(all.find(expected), std::string::npos) << "want: " << expected << "\nreport:\n" << all;
  }
  {
    const Hand h = handInterval(levelDiff);
    const std::string tests = "paired t p = " + an::pValueText(raw[2]) + ", Holm p = " + an::pValueText(holm[2]) +
                              " of 3 tests, 3 replicates)";
    const bool detect = (h.lo > 0.0 || h.hi < 0.0) && holm[2] < 0.05;
    const std::string expected =
        detect ? "on polarity, the gap with layers " + std::string(h.mean > 0 ? "1" : "2") + " is larger than with layers " +
                     (h.mean > 0 ? "2" : "1") + " by " + pts(std::fabs(h.mean)) + " points"
               : "no detectable difference in the gap between layers 1 and layers 2 on polarity: layers 1 minus "
                 "layers 2 " + pts(h.mean) + " points (95% CI " + pts(h.lo) + " to " + pts(h.hi) + ", " + tests;
    EXPECT_NE(all.find(expected), std::string::npos) << "want: " << expected << "\nreport:\n" << all;
  }
  EXPECT_NE(all.find("retained fraction's slope against the student / teacher layers ratio"), std::string::npos)
      << all;
  EXPECT_NE(all.find("t over 3 replicates"), std::string::npos) << all;

  // `kdscope report STUDY_DIR` writes the HTML (figures inline) and the PDF; `kdscope info
  // STUDY_DIR` prints the intervals and both p-values.
  const std::string reportDir = (f.dir / "report").string();
  const auto [status, output] = kdscope::test::runCommand(std::string(KDSCOPE_EXECUTABLE) + " report '" + f.out +
                                                          "' --out '" + reportDir + "'");
  ASSERT_EQ(status, 0) << output;
  const std::string html = readText(fs::path(reportDir) / "report.html");
  EXPECT_NE(html.find("Distillation loss report: study reps"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos) << "the study's figures inline";
  EXPECT_NE(html.find("of 3 tests, 3 replicates"), std::string::npos);
  EXPECT_GT(fs::file_size(fs::path(reportDir) / "report.pdf"), 1000U);
  EXPECT_TRUE(fs::exists(fs::path(reportDir) / "figures"));
  const auto [infoStatus, info] =
      kdscope::test::runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + f.out + "'");
  ASSERT_EQ(infoStatus, 0) << info;
  EXPECT_NE(info.find("replicates: 3 (seeds 3 4 5"), std::string::npos) << info;
  EXPECT_NE(info.find("paired t p = " + an::pValueText(raw[0]) + ", Holm p = " + an::pValueText(holm[0]) +
                      " of 3 tests"),
            std::string::npos)
      << info;
  EXPECT_NE(info.find("95% Student-t interval over 3 replicates"), std::string::npos) << info;
}

// The study heatmap's intervals (core::studyGridReplicates): three hand-made replicate
// summaries of a 2 x 2 grid (layers 1, 2 x heads 1, 2) on two tasks, combined as a replicated
// study is; each grid value recomputed here from the replicates' own numbers, with the t
// interval of 3 values, mean -+ t(0.975, 2) sd / sqrt 3, t = 4.302653.
TEST(StudyReplicates, GridIntervalsAreOverTheReplicatesOwnGrids) {
  const auto summaryOf = [](const std::vector<double>& gapsA, const std::vector<double>& gapsB) {
    StudySummary s;
    s.name = "grid";
    s.factors = {StudyFactor{"layers", {"1", "2"}, {1.0, 2.0}, false}, StudyFactor{"heads", {"1", "2"}, {1.0, 2.0}, false}};
    s.tasks = {"a", "b"};
    for (std::size_t k = 0; k < 4; ++k) {
      StudyCellResult cell;
      cell.name = "c" + std::to_string(k);
      cell.levels = {k / 2, k % 2};
      cell.status = "complete";
      for (const auto& [task, gap] : {std::pair{"a", gapsA[k]}, std::pair{"b", gapsB[k]}}) {
        StudyTaskResult t;
        t.task = task;
        t.teacherAccuracy = 0.9;
        t.studentAccuracy = 0.9 - gap;
        t.gap = gap;
        t.retained = t.studentAccuracy / t.teacherAccuracy;
        t.sourceTeacherAccuracy = 0.9;
        cell.tasks.push_back(t);
      }
      s.cells.push_back(cell);
    }
    return s;
  };
  // gaps[replicate][cell] on task a and b
  const std::vector<std::vector<double>> a = {{0.10, 0.02, 0.05, 0.01}, {0.12, -0.01, 0.07, 0.00}, {0.08, 0.01, 0.06, 0.02}};
  const std::vector<std::vector<double>> b = {{0.20, 0.04, 0.03, 0.02}, {0.18, 0.02, 0.05, 0.01}, {0.25, 0.00, 0.04, 0.03}};
  std::vector<StudySummary> reps;
  for (std::size_t r = 0; r < 3; ++r) {
    reps.push_back(summaryOf(a[r], b[r]));
  }
  const StudySummary combined = combineStudyReplicates({1, 2, 3}, reps);
  ASSERT_FALSE(combined.replicates.empty());
  const auto tInterval = [](const std::vector<double>& v, double* lo, double* hi) {
    const double m = (v[0] + v[1] + v[2]) / 3.0;
    double ss = 0.0;
    for (const double x : v) {
      ss += (x - m) * (x - m);
    }
    const double half = 4.302653 * std::sqrt(ss / 2.0) / std::sqrt(3.0);
    *lo = m - half;
    *hi = m + half;
    return m;
  };
  // One task, both factors: each entry is one cell, its three gaps.
  const auto grid = studyGridReplicates(combined, "a", "layers", "heads", StudyMetric::Gap);
  ASSERT_EQ(grid.size(), 4U);
  for (std::size_t k = 0; k < 4; ++k) {
    SCOPED_TRACE(k);
    double lo = 0.0;
    double hi = 0.0;
    const double m = tInterval({a[0][k], a[1][k], a[2][k]}, &lo, &hi);
    EXPECT_NEAR(grid[k].summary.mean, m, 1e-12);
    EXPECT_NEAR(grid[k].summary.interval.lo, lo, 1e-5);
    EXPECT_NEAR(grid[k].summary.interval.hi, hi, 1e-5);
    // The grid's own value (the mean over the replicates) is the interval's centre.
    EXPECT_NEAR(studyGrid(combined, "a", "layers", "heads", StudyMetric::Gap).mean[k], m, 1e-12);
  }
  // Cell c1 (layers 1, heads 2) on a: 0.02, -0.01, 0.01 - its interval holds 0.
  EXPECT_LT(grid[1].summary.interval.lo, 0.0);
  EXPECT_GT(grid[0].summary.interval.lo, 0.0);
  // Mean over the tasks, one factor: each replicate's value is the mean over the two cells at
  // the level of the mean of each cell's two tasks.
  const auto rows = studyGridReplicates(combined, "", "layers", "", StudyMetric::Gap);
  ASSERT_EQ(rows.size(), 2U);
  for (std::size_t level = 0; level < 2; ++level) {
    std::vector<double> perRep;
    for (std::size_t r = 0; r < 3; ++r) {
      const std::size_t c0 = 2 * level;
      const std::size_t c1 = 2 * level + 1;
      perRep.push_back(((a[r][c0] + b[r][c0]) / 2.0 + (a[r][c1] + b[r][c1]) / 2.0) / 2.0);
    }
    double lo = 0.0;
    double hi = 0.0;
    EXPECT_NEAR(rows[level].summary.mean, tInterval(perRep, &lo, &hi), 1e-12) << level;
    EXPECT_NEAR(rows[level].summary.interval.lo, lo, 1e-5) << level;
    EXPECT_NEAR(rows[level].summary.interval.hi, hi, 1e-5) << level;
    ASSERT_EQ(rows[level].values.size(), 3U);
    EXPECT_NEAR(rows[level].values[2], perRep[2], 1e-12);
  }
  // Student accuracy: 0.9 - gap in each replicate, the same sd.
  const auto acc = studyGridReplicates(combined, "b", "layers", "heads", StudyMetric::StudentAccuracy);
  EXPECT_NEAR(acc[0].summary.mean, 0.9 - (0.20 + 0.18 + 0.25) / 3.0, 1e-12);
  double lo = 0.0;
  double hi = 0.0;
  tInterval({0.9 - 0.20, 0.9 - 0.18, 0.9 - 0.25}, &lo, &hi);
  EXPECT_NEAR(acc[0].summary.interval.lo, lo, 1e-5);
  EXPECT_NEAR(acc[0].summary.interval.hi, hi, 1e-5);
  // A study of one run per cell has none; an unknown factor is refused as studyGrid does.
  EXPECT_TRUE(studyGridReplicates(reps[0], "a", "layers", "heads", StudyMetric::Gap).empty());
  EXPECT_THROW((void)studyGridReplicates(combined, "a", "width", "", StudyMetric::Gap), InputError);
}

// A replicated study's loss curves: each cell's mean over its replicates' own run files at
// each logged step, with the Student-t interval (t_{0.975,2} = 4.302653 for 3 replicates),
// recomputed here from the three run files read directly.
TEST(StudyReplicates, TermBandsAreEachCellsMeanAndTIntervalOverTheReplicatesRunFiles) {
  const RepStudy& f = repStudy();
  const StudySummary summary = readStudySummary((fs::path(f.out) / "study_summary.json").string());
  const std::vector<TermBand> bands = termBands(summary, f.out, "polarity", "loss");
  ASSERT_EQ(bands.size(), 2U);
  for (std::size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(bands[c].cell, kCells[c]);
    EXPECT_EQ(bands[c].replicates, 3U);
    std::vector<TrainLog> logs;
    for (const std::uint64_t seed : kSeeds) {
      const fs::path run = fs::path(f.out) / ("rep-" + std::to_string(seed)) / "cells" / kCells[c] / "run.h5";
      logs.push_back(RunReader(run.string()).trainLog("polarity", summary.studentName));
    }
    ASSERT_EQ(bands[c].band.x.size(), logs[0].steps.size());
    for (std::size_t k = 0; k < logs[0].steps.size(); ++k) {
      ASSERT_EQ(logs[1].steps[k], logs[0].steps[k]);
      ASSERT_EQ(logs[2].steps[k], logs[0].steps[k]);
      EXPECT_EQ(bands[c].band.x[k], static_cast<double>(logs[0].steps[k]));
      const double v[3] = {logs[0].loss[k], logs[1].loss[k], logs[2].loss[k]};
      const double mean = (v[0] + v[1] + v[2]) / 3.0;
      const double sd = std::sqrt(((v[0] - mean) * (v[0] - mean) + (v[1] - mean) * (v[1] - mean) +
                                   (v[2] - mean) * (v[2] - mean)) / 2.0);
      const double half = 4.302652729911275 * sd / std::sqrt(3.0);
      EXPECT_NEAR(bands[c].band.mean[k], mean, 1e-12) << kCells[c] << " step " << logs[0].steps[k];
      EXPECT_NEAR(bands[c].band.lo[k], mean - half, 1e-9) << kCells[c] << " step " << logs[0].steps[k];
      EXPECT_NEAR(bands[c].band.hi[k], mean + half, 1e-9) << kCells[c] << " step " << logs[0].steps[k];
    }
  }
  // Not a replicated study: no bands.
  StudySummary single = summary;
  single.replicates = StudyReplicateStats{};
  EXPECT_TRUE(termBands(single, f.out, "polarity", "loss").empty());
}
