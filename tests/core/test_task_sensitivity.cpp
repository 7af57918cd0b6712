// Task sensitivity (core/study/task_sensitivity.h): the least-squares slope against
// hand-worked cases, its bootstrap interval against a re-computation on the same resample
// indices written here independently, the ranking, and a measure the study does not vary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/analysis/stats.h"
#include "core/common/cancel.h"
#include "core/report/report.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"
#include "core/study/task_sensitivity.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

namespace an = analysis;

TEST(TaskSensitivity, LeastSquaresSlopeHandWorked) {
  // x = 1..4, y = (2, 3, 5, 6): mean x 2.5, mean y 4; deviations x (-1.5, -0.5, 0.5, 1.5),
  // y (-2, -1, 1, 2); Sxy = 3 + 0.5 + 0.5 + 3 = 7, Sxx = 2.25 + 0.25 + 0.25 + 2.25 = 5:
  // slope 7/5 = 1.4, intercept 4 - 1.4 * 2.5 = 0.5.
  const SlopeFit fit = leastSquaresSlope({1, 2, 3, 4}, {2, 3, 5, 6});
  EXPECT_NEAR(fit.slope, 1.4, 1e-14);
  EXPECT_NEAR(fit.intercept, 0.5, 1e-14);
  // A line is fitted exactly; y = 3 - 2x.
  const SlopeFit line = leastSquaresSlope({0.1, 0.5, 0.9}, {2.8, 2.0, 1.2});
  EXPECT_NEAR(line.slope, -2.0, 1e-12);
  EXPECT_NEAR(line.intercept, 3.0, 1e-12);
  // Undefined: one point, or every x the same.
  EXPECT_TRUE(std::isnan(leastSquaresSlope({1.0}, {2.0}).slope));
  EXPECT_TRUE(std::isnan(leastSquaresSlope({0.5, 0.5, 0.5}, {1, 2, 3}).slope));
  EXPECT_THROW((void)leastSquaresSlope({1, 2}, {1}), std::invalid_argument);
}

/// A cell whose teacher is right on the first `teacherRight` of n examples and whose
/// student is right on the first `studentRight` (so retained = studentRight / teacherRight).
SensitivityCell cell(const std::string& name, double parameters, double layers, double heads, int n, int teacherRight,
                     int studentRight) {
  SensitivityCell c;
  c.cell = name;
  c.parameterRatio = parameters;
  c.layerRatio = layers;
  c.headRatio = heads;
  for (int i = 0; i < n; ++i) {
    c.teacherCorrect.push_back(i < teacherRight ? 1 : 0);
    c.studentCorrect.push_back(i < studentRight ? 1 : 0);
  }
  return c;
}

TEST(TaskSensitivity, SlopeOfRetainedFractionHandWorkedAndItsIntervalOnTheSameResamples) {
  // 20 eval examples; the teacher is right on all of them; the students on 10, 14 and 20:
  // retained 0.5, 0.7, 1.0 at parameter ratios 1/4, 1/2, 1. By hand (fractions):
  // mean x 7/12, mean y 11/15, Sxy = 23/120, Sxx = 7/24, slope = 23/35, intercept = 7/20.
  // Layers 1/2, 1/2, 1 (2 of 4 layers twice, then 4); heads all 1/2: not varied.
  const std::vector<SensitivityCell> cells{cell("small", 0.25, 0.5, 0.5, 20, 20, 10),
                                           cell("mid", 0.5, 0.5, 0.5, 20, 20, 14),
                                           cell("full", 1.0, 1.0, 0.5, 20, 20, 20)};
  an::BootstrapOptions options;
  options.resamples = 400;
  options.seed = 7;
  const auto slopes = taskSensitivity("t", cells, options);
  ASSERT_EQ(slopes.size(), 3U);
  const TaskSensitivity& p = slopes[0];
  EXPECT_EQ(p.measure, kMeasureParameters);
  EXPECT_NEAR(p.slope.estimate, 23.0 / 35.0, 1e-12);
  EXPECT_NEAR(p.intercept, 7.0 / 20.0, 1e-12);
  EXPECT_EQ(p.cells, 3U);
  EXPECT_EQ(p.retained, (std::vector<double>{0.5, 0.7, 1.0}));
  EXPECT_EQ(p.slope.over, an::kOverExamples);
  EXPECT_EQ(p.slope.count, 20U);
  EXPECT_EQ(p.slope.resamples, 400);
  // Layers: x (1/2, 1/2, 1), y (0.5, 0.7, 1.0): mean x 2/3, mean y 11/15; Sxx = 1/6,
  // Sxy = (-1/6)(-7/30) + (-1/6)(-1/30) + (1/3)(8/30) = 24/180 = 2/15: slope 4/5.
  EXPECT_EQ(slopes[1].measure, kMeasureLayers);
  EXPECT_NEAR(slopes[1].slope.estimate, 0.8, 1e-12);
  // Heads are not varied: no slope, no interval.
  EXPECT_EQ(slopes[2].measure, kMeasureHeads);
  EXPECT_TRUE(std::isnan(slopes[2].slope.estimate));
  EXPECT_TRUE(std::isnan(slopes[2].slope.lo));

  // The interval, recomputed here on the documented resample indices: each row resamples the
  // 20 examples once for all cells; retained = sum student / sum teacher in each cell; the
  // slope by the closed form; the percentile ends by linear interpolation at q (B - 1).
  const auto indices = an::bootstrapResampleIndices(20, options.resamples, options.seed);
  std::vector<double> replicates;
  for (int b = 0; b < options.resamples; ++b) {
    std::vector<double> y;
    for (const SensitivityCell& c : cells) {
      double s = 0.0;
      double t = 0.0;
      for (int k = 0; k < 20; ++k) {
        const auto i = indices[static_cast<std::size_t>(b) * 20 + static_cast<std::size_t>(k)];
        s += c.studentCorrect[i];
        t += c.teacherCorrect[i];
      }
      y.push_back(s / t);
    }
    const double x[3] = {0.25, 0.5, 1.0};
    const double mx = (x[0] + x[1] + x[2]) / 3.0;
    const double my = (y[0] + y[1] + y[2]) / 3.0;
    double sxy = 0.0;
    double sxx = 0.0;
    for (int c = 0; c < 3; ++c) {
      sxy += (x[c] - mx) * (y[static_cast<std::size_t>(c)] - my);
      sxx += (x[c] - mx) * (x[c] - mx);
    }
    replicates.push_back(sxy / sxx);
  }
  std::sort(replicates.begin(), replicates.end());
  const auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(replicates.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(lo + 1, replicates.size() - 1);
    return replicates[lo] + (pos - static_cast<double>(lo)) * (replicates[hi] - replicates[lo]);
  };
  EXPECT_NEAR(p.slope.lo, quantile(0.025), 1e-12);
  EXPECT_NEAR(p.slope.hi, quantile(0.975), 1e-12);
  EXPECT_LT(p.slope.lo, p.slope.estimate);
  EXPECT_GT(p.slope.hi, p.slope.estimate);
}

TEST(TaskSensitivity, RankingSteepestFirstAndAFlatTaskHoldsZero) {
  an::BootstrapOptions options;
  options.resamples = 200;
  // Task "steep": retained 0.4 -> 1.0 over ratios 0.25 -> 1 (slope 0.8); "gentle": 0.85 -> 1.0
  // (slope 0.2); "flat": the student is right wherever the teacher is (retained 1, slope 0
  // in every resample: the interval is exactly [0, 0]).
  std::vector<TaskSensitivity> all;
  for (const auto& [task, small] : std::vector<std::pair<std::string, int>>{{"gentle", 17}, {"steep", 8}}) {
    for (TaskSensitivity& s : taskSensitivity(
             task, {cell("a", 0.25, 0.5, 1, 20, 20, small), cell("b", 1.0, 1.0, 1, 20, 20, 20)}, options)) {
      all.push_back(s);
    }
  }
  for (TaskSensitivity& s :
       taskSensitivity("flat", {cell("a", 0.25, 0.5, 1, 20, 12, 12), cell("b", 1.0, 1.0, 1, 20, 12, 12)}, options)) {
    all.push_back(s);
  }
  rankTaskSensitivity(all);
  const auto ranked = rankedSensitivity(all, kMeasureParameters);
  ASSERT_EQ(ranked.size(), 3U);
  EXPECT_EQ(ranked[0].task, "steep");
  EXPECT_NEAR(ranked[0].slope.estimate, (1.0 - 0.4) / 0.75, 1e-12);
  EXPECT_EQ(ranked[0].rank, 1);
  EXPECT_EQ(ranked[1].task, "gentle");
  EXPECT_NEAR(ranked[1].slope.estimate, 0.15 / 0.75, 1e-12);
  EXPECT_EQ(ranked[2].task, "flat");
  EXPECT_EQ(ranked[2].slope.estimate, 0.0);
  EXPECT_EQ(ranked[2].slope.lo, 0.0);
  EXPECT_EQ(ranked[2].slope.hi, 0.0);
  EXPECT_TRUE(ranked[2].slope.holdsZero());
  // Heads are the same in every cell: unranked.
  for (const TaskSensitivity& s : rankedSensitivity(all, kMeasureHeads)) {
    EXPECT_EQ(s.rank, 0);
  }
  // Cells with different eval sets cannot be resampled together.
  EXPECT_THROW((void)taskSensitivity("t", {cell("a", 0.5, 1, 1, 20, 20, 10), cell("b", 1, 1, 1, 10, 10, 10)}),
               std::invalid_argument);
}

TEST(TaskSensitivity, AStudyOverStudentLayersWritesRanksAndReadsBackTheSlopes) {
  // A real study: students of 1 and 2 layers (teacher 2 layers, 2 heads) on a tiny polarity
  // corpus. Two cells, so each slope is the two-point slope (r2 - r1) / (x2 - x1) of the
  // cells' retained fractions, which the summary also holds (computed there from the
  // accuracies of the run files); heads are not varied (2 of 2 in both): no slope.
  const auto dir = kdscope::test::freshTempDir("task_sensitivity_study");
  const std::string data =
      kdscope::test::writePolarityCorpus(dir / "data", kdscope::test::PolarityCorpus{120, false, false});
  const std::string json = R"({
    "name": "sens", "seed": 3, "data_dir": ")" + data + R"(", "analyze": false,
    "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
                "training": {"epochs": 2, "batch_size": 16, "lr": 0.003}},
    "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
                "training": {"epochs": 1, "batch_size": 16, "lr": 0.003},
                "objective": {"lambda": 0.5, "temperature": 2.0}},
    "grid": {"layers": [1, 2]},
    "recording": {"attention_examples": 2, "log_every": 2}
  })";
  const auto parsed = parseStudy(json, "sens.json", dir.string());
  ASSERT_TRUE(parsed.study.has_value());
  const std::string out = (dir / "out").string();
  ASSERT_EQ(runStudy(*parsed.study, StudyRunOptions{out, 0, -1}, CancelToken(), {}).status, JobStatus::Succeeded);
  const StudySummary summary = readStudySummary(out + "/study_summary.json");
  ASSERT_EQ(summary.cells.size(), 2U);
  ASSERT_EQ(summary.sensitivity.size(), 3U);
  const double r1 = summary.cells[0].tasks[0].retained;
  const double r2 = summary.cells[1].tasks[0].retained;
  const TaskSensitivity* layers = nullptr;
  const TaskSensitivity* parameters = nullptr;
  for (const TaskSensitivity& s : summary.sensitivity) {
    EXPECT_EQ(s.task, "polarity");
    if (s.measure == kMeasureLayers) {
      layers = &s;
    } else if (s.measure == kMeasureParameters) {
      parameters = &s;
    } else {
      EXPECT_TRUE(std::isnan(s.slope.estimate)); // heads: 2 of 2 in both cells
      EXPECT_EQ(s.rank, 0);
    }
  }
  ASSERT_NE(layers, nullptr);
  ASSERT_NE(parameters, nullptr);
  EXPECT_EQ(layers->ratios, (std::vector<double>{0.5, 1.0}));
  EXPECT_NEAR(layers->retained[0], r1, 1e-12);
  EXPECT_NEAR(layers->retained[1], r2, 1e-12);
  EXPECT_NEAR(layers->slope.estimate, (r2 - r1) / 0.5, 1e-12);
  EXPECT_EQ(layers->rank, 1); // the only task
  EXPECT_LE(layers->slope.lo, layers->slope.estimate);
  EXPECT_GE(layers->slope.hi, layers->slope.estimate);
  EXPECT_EQ(layers->slope.resamples, 2000);
  // Parameters: the students' counts over the teacher's, from the run files.
  const double p1 = static_cast<double>(summary.cells[0].tasks[0].parameters);
  const double p2 = static_cast<double>(summary.cells[1].tasks[0].parameters);
  ASSERT_EQ(parameters->ratios.size(), 2U);
  EXPECT_NEAR(parameters->ratios[1] / parameters->ratios[0], p2 / p1, 1e-12);
  EXPECT_LT(parameters->ratios[0], parameters->ratios[1]);
  EXPECT_NEAR(parameters->slope.estimate, (r2 - r1) / (parameters->ratios[1] - parameters->ratios[0]), 1e-9);
  std::filesystem::remove_all(dir);
}


// Adjacent ranks against each other over replicates (issue #14, "against the runner-up"):
// three tasks' layer slopes in 3 replicates, a (0.5, 0.6, 0.7), b (0.2, 0.2, 0.2) and
// c (0.1, 0.3, -0.1); by mean slope a (0.6), b (0.2), c (0.1) rank 1, 2, 3.
//   a - b per replicate: 0.3, 0.4, 0.5: mean 0.4, sd 0.1, t = 0.4 / (0.1 / sqrt 3) = 4 sqrt 3;
//     df 2: p = 1 - t / sqrt(2 + t^2) = 1 - 6.9282 / 7.0711 = 0.020204; interval
//     0.4 -+ 4.302653 x 0.1 / sqrt 3 = [0.151586, 0.648414].
//   b - c: 0.1, -0.1, 0.3: mean 0.1, sd 0.2, t = sqrt 3 / 2 = 0.866025, p = 1 - 0.866025 /
//     sqrt 2.75 = 0.477767; interval 0.1 -+ 0.496828: holds 0.
//   Holm over the two: 2 x 0.020204 = 0.040408 and max(0.040408, 0.477767) = 0.477767.
StudySummary handRankedSummary(bool replicated) {
  StudySummary s;
  s.name = "ranks";
  s.tasks = {"a", "b", "c"};
  const std::vector<std::vector<double>> values = {{0.5, 0.6, 0.7}, {0.2, 0.2, 0.2}, {0.1, 0.3, -0.1}};
  for (std::size_t k = 0; k < 3; ++k) {
    TaskSensitivity t;
    t.task = s.tasks[k];
    t.measure = kMeasureLayers;
    const an::ReplicateSummary r = an::summarizeReplicates(values[k]);
    t.slope = r.interval;
    t.slope.estimate = r.mean;
    t.cells = 2;
    t.ratios = {0.5, 1.0};
    t.retained = {0.8, 0.9};
    s.sensitivity.push_back(t);
    if (replicated) {
      s.replicates.slopes.push_back({t.task, kMeasureLayers, studyRepValue(values[k])});
    }
  }
  if (replicated) {
    s.replicates.seeds = {1, 2, 3};
    s.replicates.dirs = {"rep-1", "rep-2", "rep-3"};
  }
  rankTaskSensitivity(s.sensitivity);
  return s;
}

TEST(TaskSensitivity, AdjacentRanksPairedByReplicateHandWorked) {
  const StudySummary s = handRankedSummary(true);
  const auto c = adjacentRankComparisons(s);
  ASSERT_EQ(c.size(), 2U);
  EXPECT_EQ(c[0].rank, 1);
  EXPECT_EQ(c[0].steeper, "a");
  EXPECT_EQ(c[0].next, "b");
  EXPECT_NEAR(c[0].difference.difference.estimate, 0.4, 1e-12);
  EXPECT_NEAR(c[0].difference.difference.lo, 0.151586, 1e-6);
  EXPECT_NEAR(c[0].difference.difference.hi, 0.648414, 1e-6);
  EXPECT_EQ(c[0].difference.difference.count, 3U);
  EXPECT_NEAR(c[0].difference.pValue, 1.0 - 4.0 * std::sqrt(3.0) / std::sqrt(50.0), 1e-9);
  EXPECT_NEAR(c[0].holm.p, 2.0 * (1.0 - 4.0 * std::sqrt(3.0) / std::sqrt(50.0)), 1e-9);
  EXPECT_EQ(c[0].holm.family, 2U);
  EXPECT_TRUE(c[0].distinguishable);
  EXPECT_EQ(c[1].rank, 2);
  EXPECT_EQ(c[1].steeper, "b");
  EXPECT_EQ(c[1].next, "c");
  EXPECT_NEAR(c[1].difference.difference.estimate, 0.1, 1e-12);
  EXPECT_NEAR(c[1].difference.difference.lo, 0.1 - 4.302653 * 0.2 / std::sqrt(3.0), 1e-6);
  EXPECT_NEAR(c[1].difference.pValue, 1.0 - (std::sqrt(3.0) / 2.0) / std::sqrt(2.75), 1e-9);
  EXPECT_NEAR(c[1].holm.p, c[1].difference.pValue, 1e-12);
  EXPECT_FALSE(c[1].distinguishable);

  // A replicate without c's slope is left out of that pair only: b - c over 0.1 and -0.1
  // (mean 0, p = 1), a - b still over 3.
  std::vector<ReplicateSlopes> per;
  for (const StudyRepSlope& r : s.replicates.slopes) {
    per.push_back({r.task, r.measure, r.slope.values});
  }
  per[2].values[2] = std::nan("");
  const auto missing = adjacentRankComparisons(s.sensitivity, per);
  ASSERT_EQ(missing.size(), 2U);
  EXPECT_EQ(missing[0].difference.difference.count, 3U);
  EXPECT_EQ(missing[1].difference.difference.count, 2U);
  EXPECT_NEAR(missing[1].difference.difference.estimate, 0.0, 1e-12);
  EXPECT_NEAR(missing[1].difference.pValue, 1.0, 1e-12);
  per[2].values.pop_back();
  EXPECT_THROW((void)adjacentRankComparisons(s.sensitivity, per), std::invalid_argument);
  // No replicates: nothing to compare.
  EXPECT_TRUE(adjacentRankComparisons(handRankedSummary(false)).empty());
}

// The words, in the study report and `kdscope info STUDY_DIR`: with replicates, which
// adjacent ranks are distinguishable (the numbers above); without, that the ranks are point
// estimates.
TEST(TaskSensitivity, RankReadingSaysPointEstimatesOrWhichRanksDiffer) {
  const auto dir = kdscope::test::freshTempDir("task_sensitivity_ranks");
  for (const bool replicated : {true, false}) {
    const std::string out = (dir / (replicated ? "rep" : "one")).string();
    std::filesystem::create_directories(out);
    writeStudySummary(handRankedSummary(replicated), out);
    const Report report = buildReport(out);
    std::string all;
    for (const auto& section : report.sections) {
      if (section.heading == "Task sensitivity") {
        for (const auto& finding : section.findings) {
          all += finding + "\n";
        }
      }
    }
    const auto [status, info] = kdscope::test::runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + out + "'");
    ASSERT_EQ(status, 0) << info;
    std::vector<std::string> expected;
    if (replicated) {
      expected = {"the ranks on the layers ratio against the next rank, paired by replicate: rank 1 (a) and rank 2 (b): "
                  "distinguishable, slope difference +0.400 [+0.152, +0.648] over 3 replicates, paired t p = 0.020, "
                  "Holm p = 0.040 of 2 tests; rank 2 (b) and rank 3 (c): no detectable difference, slope difference "
                  "+0.100 [-0.397, +0.597] over 3 replicates, paired t p = 0.478, Holm p = 0.478 of 2 tests"};
    } else {
      expected = {"the ranks on the layers ratio are point estimates: each task's slope has its own interval over "
                  "its own eval examples, but the tasks do not share examples, so no paired test says whether "
                  "adjacent ranks differ"};
    }
    for (const std::string& e : expected) {
      EXPECT_NE(all.find(e), std::string::npos) << "want: " << e << "\nreport:\n" << all;
      EXPECT_NE(info.find(e), std::string::npos) << "want: " << e << "\ninfo:\n" << info;
    }
  }
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace kdscope::core
