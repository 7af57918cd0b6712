// Studies: grid expansion and validation, a real (tiny) study run, resume after a cancel and
// after a kill, and the summary against the cells' own run files; the summary's data
// functions against hand-worked tables.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/common/error.h"
#include "core/engine/run_job.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

fs::path tempDir(const std::string& name) { return kdscope::test::freshTempDir("study_" + name); }

/// The tiny polarity corpus of this file's text jobs.
std::string writePolarityCorpus(const fs::path& dataDir) {
  return kdscope::test::writePolarityCorpus(dataDir, kdscope::test::PolarityCorpus{120, false, false});
}

/// A small text study: teacher 2 layers x 2 heads, width 16, students width 8.
std::string studyJson(const std::string& dataDir, const std::string& grid) {
  return R"({
    "name": "tiny",
    "seed": 3,
    "data_dir": ")" + dataDir + R"(",
    "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
                "training": {"epochs": 2, "batch_size": 16, "lr": 0.003}},
    "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
                "training": {"epochs": 1, "batch_size": 16, "lr": 0.003},
                "objective": {"lambda": 0.5, "temperature": 2.0}},
    "grid": )" + grid + R"(,
    "recording": {"attention_examples": 2, "log_every": 2}
  })";
}

std::string describe(const StudyParseResult& r) {
  std::string out;
  for (const auto& i : r.issues) {
    out += i.str() + "\n";
  }
  return out;
}

/// Accuracy from a run file's eval/logits and eval/labels, counted here.
double countedAccuracy(const RunReader& reader, const std::string& task, const std::string& model) {
  std::int64_t classes = 0;
  const auto logits = reader.evalLogits(task, model, &classes);
  const auto labels = reader.evalLabels(task);
  std::size_t correct = 0;
  for (std::size_t n = 0; n < labels.size(); ++n) {
    const float* row = logits.data() + n * static_cast<std::size_t>(classes);
    const auto best = std::max_element(row, row + classes) - row;
    correct += best == labels[n] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

} // namespace

// ---- grid expansion and validation ------------------------------------------------------------

TEST(StudyGridExpansion, CellsInRowMajorOrderWithDeterministicNames) {
  const auto parsed = parseStudy(studyJson("/data", R"({
      "teacher_epoch": [1, 0],
      "layers": [1, 2],
      "objective": {"kd": {}, "hidden": {"hidden_mse": 1.0, "attention_kl": 0.5}},
      "heads": [1, 2],
      "lambda": [0.5],
      "augmentation": {"none": {}, "mask": {"mask": 0.15}}
    })"),
                                 "tiny.json", "/studies");
  ASSERT_TRUE(parsed.study) << describe(parsed);
  const StudySpec& s = *parsed.study;
  // Factors in the fixed order, whatever the order in the file.
  ASSERT_EQ(s.factors.size(), 6U);
  const std::vector<std::string> names = {"layers", "heads", "objective", "lambda", "augmentation", "teacher_epoch"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(s.factors[i].name, names[i]);
  }
  EXPECT_EQ(s.factors[5].levels, (std::vector<std::string>{"1", "final"}));
  EXPECT_EQ(s.factors[5].values, (std::vector<double>{1.0, 2.0})); // final = the teacher's 2 epochs
  ASSERT_EQ(s.cells.size(), 2U * 2U * 2U * 1U * 2U * 2U);
  EXPECT_EQ(s.cells[0].name, "L1_H1_kd_lam0.5_aug-none_te1");
  EXPECT_EQ(s.cells[1].name, "L1_H1_kd_lam0.5_aug-none_te-final");
  EXPECT_EQ(s.cells[2].name, "L1_H1_kd_lam0.5_aug-mask_te1");
  EXPECT_EQ(s.cells[4].name, "L1_H1_hidden_lam0.5_aug-none_te1");
  EXPECT_EQ(s.cells[8].name, "L1_H2_kd_lam0.5_aug-none_te1");
  EXPECT_EQ(s.cells.back().name, "L2_H2_hidden_lam0.5_aug-mask_te-final");
  // 13 in the mixed radix (2, 2, 2, 1, 2, 2): layers 0, heads 1, objective 1, lambda 0,
  // augmentation 0, teacher_epoch 1.
  EXPECT_EQ(s.cells[13].levels, (std::vector<std::size_t>{0, 1, 1, 0, 0, 1}));
  EXPECT_EQ(s.cells[13].name, "L1_H2_hidden_lam0.5_aug-none_te-final");
  // Each cell's job carries its levels over the study's student.
  const StudentSpec& last = s.cells.back().job.students.front();
  EXPECT_EQ(last.name, "student");
  EXPECT_EQ(last.architecture.layers, 2);
  EXPECT_EQ(last.architecture.heads, 2);
  EXPECT_EQ(last.architecture.width, 8);
  EXPECT_EQ(last.objective.hiddenMse, 1.0);
  EXPECT_EQ(last.objective.attentionKl, 0.5);
  EXPECT_EQ(last.objective.temperature, 2.0); // from the base student, merged under the preset
  EXPECT_EQ(last.objective.lambda, 0.5);
  EXPECT_EQ(last.augmentation.mask, 0.15);
  EXPECT_EQ(last.teacherEpoch, 0);
  EXPECT_EQ(s.cells[0].job.students.front().teacherEpoch, 1);
  EXPECT_EQ(s.cells[0].job.students.front().objective.hiddenMse, 0.0);
  // Every cell loads the study's teacher; the teacher job saves per-epoch checkpoints.
  EXPECT_EQ(s.cells[0].job.teacher.checkpoint, "../../teacher/checkpoints/{task}/teacher.pt");
  ASSERT_TRUE(s.teacherJob);
  EXPECT_TRUE(s.teacherJob->teacher.epochCheckpoints);
  EXPECT_TRUE(s.teacherJob->students.empty());
  EXPECT_EQ(s.tasks, (std::vector<std::string>{"polarity"}));
  // The same study parses to the same cells (names are a function of the levels).
  const auto again = parseStudy(studyJson("/data", R"({"layers": [1, 2], "heads": [1, 2]})"), "a", "/s");
  ASSERT_TRUE(again.study);
  EXPECT_EQ(again.study->cells[3].name, "L2_H2");
}

TEST(StudyGridExpansion, IssuesPointAtTheGridOrTheStudent) {
  const auto parsed = parseStudy(studyJson("/data", R"({
      "heads": [2, 3],
      "lambda": [0.5, 1.5],
      "temprature": [1, 2],
      "objective": {"bad": {"hiden_mse": 1.0}}
    })"),
                                 "s.json", "/studies");
  EXPECT_FALSE(parsed.study);
  const std::string text = describe(parsed);
  EXPECT_NE(text.find("grid.temprature: unknown factor (did you mean 'temperature'?)"), std::string::npos) << text;
  // The first pass stops at the study's own keys; fix them and the cells are checked.
  const auto cells = parseStudy(studyJson("/data", R"({
      "heads": [2, 3],
      "lambda": [0.5, 1.5],
      "objective": {"bad": {"hiden_mse": 1.0}}
    })"),
                                "s.json", "/studies");
  EXPECT_FALSE(cells.study);
  const std::string issues = describe(cells);
  EXPECT_NE(issues.find("student.architecture.width: must be divisible by heads (3), got 8 (in cell H3_bad_lam0.5 "
                        "and 1 more)"),
            std::string::npos)
      << issues;
  EXPECT_NE(issues.find("grid.lambda[1]: must be in [0, 1], got 1.5 (in cell H2_bad_lam1.5 and 1 more)"),
            std::string::npos)
      << issues;
  EXPECT_NE(issues.find("grid.objective.bad.hiden_mse: unknown field (did you mean 'hidden_mse'?)"),
            std::string::npos)
      << issues;
  // Study-level mistakes.
  const auto top = parseStudy(R"({"tasks": ["polarity"], "students": [], "grid": {"layers": []}})", "t.json");
  const std::string topText = describe(top);
  EXPECT_NE(topText.find("students: unknown field (did you mean 'student'?)"), std::string::npos) << topText;
  EXPECT_NE(topText.find("grid.layers: must be a non-empty array of integers"), std::string::npos) << topText;
  const auto dup = parseStudy(R"({"tasks": ["polarity"], "grid": {"layers": [1, 2, 1]}})", "t.json");
  EXPECT_NE(describe(dup).find("grid.layers[2]: duplicate level 1"), std::string::npos) << describe(dup);
  // An attention term with a deeper student than the teacher cannot map layers.
  const auto deep = parseStudy(studyJson("/data", R"({"layers": [1, 4], "objective": {"att": {"attention_kl": 1}}})"),
                               "t.json");
  EXPECT_NE(describe(deep).find("student.objective.layer_map: 'uniform' maps attention layers only for a student "
                                "with at most as many layers as the teacher (student 4, teacher 2) (in cell L4_att)"),
            std::string::npos)
      << describe(deep);
  // A teacher epoch the study's teacher will not reach (it trains for 2).
  const auto epochs = parseStudy(studyJson("/data", R"({"teacher_epoch": [1, 3]})"), "t.json");
  EXPECT_NE(describe(epochs).find("grid.teacher_epoch[1]: the teacher trains for 2 epochs, so there is no "
                                  "checkpoint after epoch 3 (in cell te3)"),
            std::string::npos)
      << describe(epochs);
  // A syntax error keeps the job parser's file:line:column form.
  const auto syntax = parseStudy("{\"tasks\": [\"polarity\",]}", "bad.json");
  ASSERT_EQ(syntax.issues.size(), 1U);
  EXPECT_EQ(syntax.issues[0].path.rfind("bad.json:1:", 0), 0U) << syntax.issues[0].str();
}

// ---- running, resuming, summarising -----------------------------------------------------------

TEST(StudyRun, RunsResumesAfterCancelAndKillAndSummarisesTheRunFiles) {
  const auto dir = tempDir("run");
  const std::string data = writePolarityCorpus(dir / "data");
  const std::string out = (dir / "out").string();
  const auto parsed = parseStudy(
      studyJson(data, R"({"objective": {"kd": {}, "hid": {"hidden_mse": 1.0, "attention_kl": 1.0}},
                         "teacher_epoch": [1, 0]})"),
      "tiny.json", dir.string());
  ASSERT_TRUE(parsed.study) << describe(parsed);
  const StudySpec& study = *parsed.study;
  ASSERT_EQ(study.cells.size(), 4U);

  // First call: cancel as soon as the third unit (second cell) trains.
  CancelToken cancel;
  std::vector<StudyProgressEvent> events;
  const auto first = runStudy(study, StudyRunOptions{out, 0, -1}, cancel, [&](const StudyProgressEvent& e) {
    events.push_back(e);
    if (e.kind == StudyProgressEvent::Kind::Job && e.unit == 3 && e.job.kind == ProgressEvent::Kind::Step) {
      cancel.cancel();
    }
  });
  ASSERT_EQ(first.status, JobStatus::Cancelled) << first.message;
  EXPECT_EQ(first.ran, 3U);
  auto status = studyStatus(study, out);
  ASSERT_EQ(status.size(), 5U);
  EXPECT_EQ(status[0].name, "teacher");
  EXPECT_EQ(status[0].state, UnitState::Complete);
  EXPECT_EQ(status[1].state, UnitState::Complete);
  EXPECT_EQ(status[2].state, UnitState::Incomplete); // recorded "cancelled"
  EXPECT_EQ(status[3].state, UnitState::Missing);
  // Overall progress never went backwards while units ran, and stayed in [0, 1]. (The
  // final Summary event reports the completed share, which excludes the cancelled unit.)
  double last = 0.0;
  for (const auto& e : events) {
    if (e.kind == StudyProgressEvent::Kind::Summary) {
      EXPECT_NEAR(e.fraction, (2.0 / 16 + 1.0 / 16) / (2.0 / 16 + 4.0 / 16), 1e-12); // teacher + 1 cell done
      continue;
    }
    EXPECT_GE(e.fraction, last - 1e-12);
    EXPECT_LE(e.fraction, 1.0);
    last = e.fraction;
  }
  // The teacher job saved the epoch-1 checkpoint a cell distils from.
  EXPECT_TRUE(fs::exists(fs::path(out) / "teacher/checkpoints/polarity/teacher_epoch1.pt"));

  // A kill leaves a run file whose status is "running": write one for the last cell.
  {
    fs::create_directories(studyCellDir(out, study.cells[3].name));
    RunWriter killed((fs::path(studyCellDir(out, study.cells[3].name)) / "run.h5").string(),
                     jobToJson(cellJobForRun(study, study.cells[3], out)));
  }
  EXPECT_EQ(studyStatus(study, out)[4].state, UnitState::Incomplete);

  const auto firstCellFile = fs::path(status[1].runPath);
  const auto stamp = fs::last_write_time(firstCellFile);
  const auto second = runStudy(study, StudyRunOptions{out, 0, -1}, CancelToken(), {});
  ASSERT_EQ(second.status, JobStatus::Succeeded) << second.message;
  EXPECT_EQ(second.skipped, 2U); // the teacher and the first cell
  EXPECT_EQ(second.ran, 3U);
  EXPECT_EQ(fs::last_write_time(firstCellFile), stamp); // not rerun
  for (const auto& unit : studyStatus(study, out)) {
    EXPECT_EQ(unit.state, UnitState::Complete) << unit.name;
  }
  // A third call runs nothing.
  const auto third = runStudy(study, StudyRunOptions{out, 0, -1}, CancelToken(), {});
  EXPECT_EQ(third.ran, 0U);
  EXPECT_EQ(third.skipped, 5U);

  // The summary against each cell's own run file.
  const StudySummary summary = readStudySummary((fs::path(out) / "study_summary.json").string());
  ASSERT_EQ(summary.cells.size(), 4U);
  EXPECT_EQ(summary.completeCells(), 4U);
  for (const StudyCellResult& cell : summary.cells) {
    const RunReader reader((fs::path(out) / cell.runFile).string());
    const double teacher = countedAccuracy(reader, "polarity", "teacher");
    const double student = countedAccuracy(reader, "polarity", "student");
    ASSERT_EQ(cell.tasks.size(), 1U);
    const StudyTaskResult& t = cell.tasks[0];
    EXPECT_NEAR(t.teacherAccuracy, teacher, 1e-12) << cell.name;
    EXPECT_NEAR(t.studentAccuracy, student, 1e-12) << cell.name;
    EXPECT_NEAR(t.gap, teacher - student, 1e-12) << cell.name;
    EXPECT_NEAR(t.retained, student / teacher, 1e-12) << cell.name;
    const TrainLog log = reader.trainLog("polarity", "student");
    EXPECT_NEAR(t.finalLoss, log.loss.back(), 1e-6);
    EXPECT_EQ(t.trainSteps, log.steps.back());
    // Every term is logged, unweighted: the hidden cells log the intermediate terms too.
    const bool hid = summary.factors[0].levels[cell.levels[0]] == "hid";
    EXPECT_EQ(t.finalTerms.count("hidden_mse"), hid ? 1U : 0U) << cell.name;
    EXPECT_EQ(t.finalTerms.count("attention_kl"), hid ? 1U : 0U) << cell.name;
    EXPECT_EQ(t.finalTerms.count("kd"), 1U);
    EXPECT_NEAR(t.finalTerms.at("kd"), log.terms.at("kd").back(), 1e-6);
  }
  // Every cell's teacher is the study's teacher: the same accuracy everywhere, and equal to
  // the teacher job's own run file.
  const RunReader teacherRun((fs::path(out) / "teacher/run.h5").string());
  const double teacherAccuracy = countedAccuracy(teacherRun, "polarity", "teacher");
  for (const StudyCellResult& cell : summary.cells) {
    EXPECT_NEAR(cell.tasks[0].teacherAccuracy, teacherAccuracy, 1e-12);
  }
  // An epoch-1 student records the epoch-1 teacher it learned from.
  const StudyCellResult& early = summary.cells[0];
  ASSERT_EQ(summary.factors[1].levels[early.levels[1]], "1");
  const RunReader earlyRun((fs::path(out) / early.runFile).string());
  std::string objective;
  const RunSummary earlySummary = earlyRun.summary();
  for (const auto& m : earlySummary.tasks[0].models) {
    if (m.name == "student") {
      objective = m.objectiveJson;
    }
  }
  EXPECT_NE(objective.find("\"epoch\":1"), std::string::npos) << objective;
  EXPECT_NE(objective.find("teacher_epoch1.pt"), std::string::npos) << objective;
  EXPECT_EQ(objective.find("\"intermediate\"") != std::string::npos,
            summary.factors[0].levels[early.levels[0]] == "hid")
      << objective;
  EXPECT_GE(early.tasks[0].sourceTeacherAccuracy, 0.0);
  EXPECT_LE(early.tasks[0].sourceTeacherAccuracy, 1.0);

  // The CSV has a header and one row per cell and task.
  std::ifstream csv(fs::path(out) / "study_summary.csv");
  std::string line;
  std::size_t rows = 0;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("cell,objective,teacher_epoch,task,status,teacher_accuracy,student_accuracy,gap", 0), 0U)
      << line;
  while (std::getline(csv, line)) {
    ++rows;
  }
  EXPECT_EQ(rows, 4U);

  // Loss curves per term, compared across cells, come from the run files.
  const auto curves = termCurves(summary, out, "polarity", "kd");
  ASSERT_EQ(curves.size(), 4U);
  const auto hiddenCurves = termCurves(summary, out, "polarity", "hidden_mse");
  EXPECT_EQ(hiddenCurves.size(), 2U);
  const auto names = termNames(summary, out, "polarity");
  EXPECT_EQ(names.front(), "loss");
  EXPECT_NE(std::find(names.begin(), names.end(), "attention_kl"), names.end());
  fs::remove_all(dir);
}

TEST(StudyRun, AChangedStudyReRunsOnlyTheCellsItChanges) {
  const auto dir = tempDir("stale");
  const std::string data = writePolarityCorpus(dir / "data");
  const std::string out = (dir / "out").string();
  const auto a = parseStudy(studyJson(data, R"({"lambda": [0.0, 0.5]})"), "a.json", dir.string());
  ASSERT_TRUE(a.study) << describe(a);
  ASSERT_EQ(runStudy(*a.study, StudyRunOptions{out, 0, -1}, CancelToken(), {}).status, JobStatus::Succeeded);
  // Same grid, the second level changed: its cell gets a new name; the first is reused.
  const auto b = parseStudy(studyJson(data, R"({"lambda": [0.0, 0.9]})"), "a.json", dir.string());
  ASSERT_TRUE(b.study);
  const auto result = runStudy(*b.study, StudyRunOptions{out, 0, -1}, CancelToken(), {});
  EXPECT_EQ(result.status, JobStatus::Succeeded);
  EXPECT_EQ(result.skipped, 2U); // teacher + lam0
  EXPECT_EQ(result.ran, 1U);
  // A change outside the grid (the student's epochs) makes every cell stale, not the teacher.
  auto changed = studyJson(data, R"({"lambda": [0.0, 0.9]})");
  changed.replace(changed.find("\"epochs\": 1"), 11, "\"epochs\": 2");
  const auto c = parseStudy(changed, "a.json", dir.string());
  ASSERT_TRUE(c.study);
  const auto states = studyStatus(*c.study, out);
  EXPECT_EQ(states[0].state, UnitState::Complete);
  EXPECT_EQ(states[1].state, UnitState::Stale);
  EXPECT_EQ(states[2].state, UnitState::Stale);
  fs::remove_all(dir);
}

// ---- data functions for the views -------------------------------------------------------------

namespace {

/// Layers {1, 2} x heads {1, 2}, one task, gaps chosen by hand; a fifth (incomplete) cell
/// must be ignored.
StudySummary handSummary() {
  StudySummary s;
  s.name = "hand";
  s.tasks = {"t"};
  s.factors = {StudyFactor{"layers", {"1", "2"}, {1, 2}, false}, StudyFactor{"heads", {"1", "2"}, {1, 2}, false}};
  const std::vector<std::pair<std::vector<std::size_t>, double>> gaps = {
      {{0, 0}, 0.10}, {{0, 1}, 0.06}, {{1, 0}, 0.04}, {{1, 1}, 0.00}};
  for (const auto& [levels, gap] : gaps) {
    StudyCellResult c;
    c.name = "c" + std::to_string(levels[0]) + std::to_string(levels[1]);
    c.levels = levels;
    c.status = "complete";
    StudyTaskResult t;
    t.task = "t";
    t.teacherAccuracy = 0.9;
    t.studentAccuracy = 0.9 - gap;
    t.gap = gap;
    t.retained = t.studentAccuracy / 0.9;
    t.sourceTeacherAccuracy = 0.9;
    c.tasks = {t};
    s.cells.push_back(c);
  }
  StudyCellResult broken;
  broken.name = "broken";
  broken.levels = {0, 0};
  broken.status = "cancelled";
  StudyTaskResult t;
  t.task = "t";
  t.gap = 5.0;
  broken.tasks = {t};
  s.cells.push_back(broken);
  return s;
}

} // namespace

TEST(StudySummaryViews, MainEffectsWithTheirSpread) {
  const auto effects = mainEffects(handSummary(), "t", StudyMetric::Gap);
  ASSERT_EQ(effects.size(), 2U);
  // layers: level 1 gaps {0.10, 0.06} mean 0.08 sd 0.02; level 2 {0.04, 0.00} mean 0.02 sd 0.02.
  EXPECT_EQ(effects[0].factor, "layers");
  EXPECT_EQ(effects[0].levels[0].count, 2U);
  EXPECT_NEAR(effects[0].levels[0].mean, 0.08, 1e-12);
  EXPECT_NEAR(effects[0].levels[0].stddev, 0.02, 1e-12);
  EXPECT_NEAR(effects[0].levels[1].mean, 0.02, 1e-12);
  EXPECT_NEAR(effects[0].levels[1].min, 0.00, 1e-12);
  EXPECT_NEAR(effects[0].levels[1].max, 0.04, 1e-12);
  EXPECT_NEAR(effects[0].effect, 0.06, 1e-12);
  EXPECT_NEAR(effects[0].spread, 0.02, 1e-12);
  // heads: level 1 {0.10, 0.04} mean 0.07 sd 0.03; level 2 {0.06, 0.00} mean 0.03 sd 0.03.
  EXPECT_NEAR(effects[1].effect, 0.04, 1e-12);
  EXPECT_NEAR(effects[1].spread, 0.03, 1e-12);
  // Accuracy is the mirror image: the same effect sizes.
  const auto acc = mainEffects(handSummary(), "", StudyMetric::StudentAccuracy);
  EXPECT_NEAR(acc[0].effect, 0.06, 1e-12);
}

TEST(StudySummaryViews, HeatmapGridOverTwoFactors) {
  const auto grid = studyGrid(handSummary(), "t", "layers", "heads", StudyMetric::Gap);
  ASSERT_EQ(grid.mean.size(), 4U);
  EXPECT_NEAR(grid.at(0, 0), 0.10, 1e-12); // the cancelled cell at (0, 0) is not averaged in
  EXPECT_EQ(grid.count[0], 1U);
  EXPECT_NEAR(grid.at(0, 1), 0.06, 1e-12);
  EXPECT_NEAR(grid.at(1, 0), 0.04, 1e-12);
  EXPECT_NEAR(grid.at(1, 1), 0.00, 1e-12);
  // One factor: averaged over the other.
  const auto line = studyGrid(handSummary(), "t", "heads", "", StudyMetric::Gap);
  ASSERT_EQ(line.mean.size(), 2U);
  EXPECT_NEAR(line.mean[0], 0.07, 1e-12);
  EXPECT_NEAR(line.mean[1], 0.03, 1e-12);
  EXPECT_THROW(studyGrid(handSummary(), "t", "width", "", StudyMetric::Gap), InputError);
}

TEST(StudySummaryViews, SummaryFileRoundTrips) {
  const auto dir = tempDir("roundtrip");
  const StudySummary s = handSummary();
  writeStudySummary(s, dir.string());
  const StudySummary back = readStudySummary((dir / "study_summary.json").string());
  ASSERT_EQ(back.cells.size(), s.cells.size());
  for (std::size_t c = 0; c < s.cells.size(); ++c) {
    EXPECT_EQ(back.cells[c].name, s.cells[c].name);
    EXPECT_EQ(back.cells[c].levels, s.cells[c].levels);
    EXPECT_EQ(back.cells[c].status, s.cells[c].status);
    const double a = s.cells[c].tasks[0].gap;
    const double b = back.cells[c].tasks[0].gap;
    EXPECT_TRUE((std::isnan(a) && std::isnan(b)) || a == b);
  }
  EXPECT_THROW(readStudySummary((dir / "nothing.json").string()), InputError);
  fs::remove_all(dir);
}

TEST(StudySamples, EverySampleStudyValidates) {
  const fs::path dir = fs::path(KDSCOPE_SOURCE_DIR) / "samples";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json" || name.rfind("study-", 0) != 0) {
      continue;
    }
    const auto parsed = loadStudyFile(entry.path().string());
    EXPECT_TRUE(parsed.study.has_value()) << entry.path() << ":\n" << describe(parsed);
    ++checked;
  }
  EXPECT_GE(checked, 2);
  const auto lh = loadStudyFile((dir / "study-layers-heads.json").string());
  ASSERT_TRUE(lh.study);
  EXPECT_EQ(lh.study->cells.size(), 9U);
  EXPECT_EQ(lh.study->tasks, (std::vector<std::string>{"polarity", "hedge", "spam", "supersense"}));
}
