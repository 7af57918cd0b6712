// StudyView on a hand-made study summary: the heatmap, lines and main-effect table show the
// numbers worked out by hand (the same table as tests/core/test_study.cpp), and a bad file
// is refused with the reader's message.

#include <QComboBox>
#include <QFile>
#include <QTableWidget>
#include <QRegularExpression>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <array>
#include <map>

#include <cmath>

#include "core/study/summary.h"
#include "widgets/figures/study_figures.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/views/study_sensitivity_table.h"
#include "widgets/views/study_view.h"
#include "test_run_file.h"

using namespace kdscope;

namespace {

/// Layers {1, 2} x heads {1, 2} on one task; gaps 0.10, 0.06, 0.04, 0.00 (the study of
/// test_study_export.cpp, with a small run file per cell).
QString writeHandSummary(const QTemporaryDir& dir) {
  widgets::test::writeHandStudy(dir.path());
  return dir.filePath(QStringLiteral("study_summary.json"));
}

} // namespace

TEST(StudyView, HeatmapOverLayersAndHeadsShowsEachCellsGap) {
  QTemporaryDir dir;
  widgets::StudyView view;
  QString error;
  ASSERT_TRUE(view.loadSummary(writeHandSummary(dir), &error)) << error.toStdString();
  const widgets::Heatmap& h = view.heatmapPlot()->heatmap();
  ASSERT_EQ(h.rows, 2);
  ASSERT_EQ(h.cols, 2);
  EXPECT_NEAR(h.values[0], 0.10, 1e-12);
  EXPECT_NEAR(h.values[1], 0.06, 1e-12);
  EXPECT_NEAR(h.values[2], 0.04, 1e-12);
  EXPECT_NEAR(h.values[3], 0.00, 1e-12);
  EXPECT_EQ(h.rowTitle, QStringLiteral("layers"));
  EXPECT_EQ(h.colTitle, QStringLiteral("heads"));
  EXPECT_FALSE(view.heatmapPlot()->heatmapInterpolated());
  // One run per cell: no interval, and the heatmap says why (tooltip, CSV comment).
  EXPECT_TRUE(h.lower.empty());
  EXPECT_TRUE(h.noInterval.startsWith(QStringLiteral("no interval: one run per cell"))) << h.noInterval.toStdString();
}

TEST(StudyView, MainEffectsTableListsEffectAndSpread) {
  QTemporaryDir dir;
  widgets::StudyView view;
  ASSERT_TRUE(view.loadSummary(writeHandSummary(dir)));
  view.findChild<QTabWidget*>()->setCurrentIndex(2);
  QTableWidget* table = view.effectsTable();
  ASSERT_EQ(table->rowCount(), 4); // 2 factors x 2 levels
  // Sorted by effect: layers (0.06) before heads (0.04).
  EXPECT_EQ(table->item(0, 0)->text(), QStringLiteral("layers"));
  EXPECT_EQ(table->item(0, 1)->text(), QStringLiteral("0.0600"));
  EXPECT_EQ(table->item(0, 2)->text(), QStringLiteral("0.0200"));
  EXPECT_EQ(table->item(2, 0)->text(), QStringLiteral("heads"));
  EXPECT_EQ(table->item(2, 1)->text(), QStringLiteral("0.0400"));
  EXPECT_EQ(table->item(1, 4)->text(), QStringLiteral("0.0200")); // layers = 2: mean gap
}

TEST(StudyView, LinesAgainstOneFactor) {
  QTemporaryDir dir;
  widgets::StudyView view;
  ASSERT_TRUE(view.loadSummary(writeHandSummary(dir)));
  view.findChild<QTabWidget*>()->setCurrentIndex(1);
  // Default "against" is the first factor (no temperature here), "one line per" is none.
  widgets::PlotWidget* plot = view.linesPlot();
  ASSERT_EQ(plot->lineCount(), 1);
  const auto points = plot->lineData(0);
  ASSERT_EQ(points.size(), 2);
  EXPECT_NEAR(points[0].y(), 0.08, 1e-12); // layers 1: mean of 0.10 and 0.06
  EXPECT_NEAR(points[1].y(), 0.02, 1e-12);
  // No replicates: no bars, and the axis says why.
  EXPECT_TRUE(plot->content().xLabel.contains(QStringLiteral("no bars: one run per cell")))
      << plot->content().xLabel.toStdString();
}

TEST(StudyView, RefusesAFileThatIsNotASummary) {
  QTemporaryDir dir;
  const QString path = dir.filePath(QStringLiteral("x.json"));
  QFile file(path);
  ASSERT_TRUE(file.open(QIODevice::WriteOnly));
  file.write("{\"format\": \"something-else\"}");
  file.close();
  widgets::StudyView view;
  QString error;
  EXPECT_FALSE(view.loadSummary(path, &error));
  EXPECT_TRUE(error.contains(QStringLiteral("not a KDScope study summary"))) << error.toStdString();
  EXPECT_FALSE(view.hasSummary());
}

namespace {

/// A replicated study by hand: layers {1, 2} on one task, 3 replicates, one cell per level;
/// gaps (L1, L2) per replicate (0.10, 0.04), (0.12, 0.05), (0.08, 0.03).
QString writeReplicatedSummary(const QTemporaryDir& dir,
                               const std::vector<std::array<double, 2>>& gaps = {{0.10, 0.04}, {0.12, 0.05}, {0.08, 0.03}}) {
  std::vector<core::StudySummary> reps;
  for (const auto& g : gaps) {
    core::StudySummary s;
    s.name = "reps";
    s.tasks = {"t"};
    s.factors = {core::StudyFactor{"layers", {"1", "2"}, {1, 2}, false}};
    for (std::size_t l = 0; l < 2; ++l) {
      core::StudyCellResult c;
      c.name = "L" + std::to_string(l + 1);
      c.levels = {l};
      c.status = "complete";
      c.runFile = "cells/" + c.name + "/run.h5";
      core::StudyTaskResult t;
      t.task = "t";
      t.teacherAccuracy = 0.9;
      t.studentAccuracy = 0.9 - g[l];
      t.gap = g[l];
      t.retained = t.studentAccuracy / 0.9;
      t.sourceTeacherAccuracy = 0.9;
      c.tasks = {t};
      s.cells.push_back(c);
    }
    reps.push_back(s);
  }
  core::writeStudySummary(core::combineStudyReplicates({1, 2, 3}, reps), dir.path().toStdString());
  return dir.filePath(QStringLiteral("study_summary.json"));
}

} // namespace

TEST(StudyView, ReplicatedStudyShowsErrorBarsOverReplicatesAndSaysSo) {
  QTemporaryDir dir;
  widgets::StudyView view;
  QString error;
  ASSERT_TRUE(view.loadSummary(writeReplicatedSummary(dir), &error)) << error.toStdString();
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("3 replicates"))) << view.statusText().toStdString();
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("Student-t"))) << view.statusText().toStdString();
  view.findChild<QTabWidget*>()->setCurrentIndex(2);
  // Level means 0.10 and 0.04 over the replicates; sd 0.02 and 0.01; the t interval's
  // half-width t_{0.975,2} sd / sqrt(3), t_{0.975,2} = 4.302652729911275.
  const double t = 4.302652729911275;
  const double half1 = t * 0.02 / std::sqrt(3.0);
  const double half2 = t * 0.01 / std::sqrt(3.0);
  const widgets::PlotContent content = view.effectsPlot()->content();
  const widgets::PlotSeries* means = nullptr;
  for (const auto& series : content.series) {
    if (series.name == QStringLiteral("layers")) {
      means = &series;
    }
  }
  ASSERT_NE(means, nullptr);
  ASSERT_EQ(means->y.size(), 2);
  EXPECT_NEAR(means->y[0], 0.10, 1e-12);
  ASSERT_EQ(means->lower.size(), 2);
  EXPECT_NEAR(means->lower[0], 0.10 - half1, 1e-9);
  EXPECT_NEAR(means->upper[0], 0.10 + half1, 1e-9);
  EXPECT_NEAR(means->lower[1], 0.04 - half2, 1e-9);
  EXPECT_NEAR(means->upper[1], 0.04 + half2, 1e-9);
  EXPECT_TRUE(content.xLabel.contains(QStringLiteral("95% t interval over 3 replicates")))
      << content.xLabel.toStdString();
  // The table: each level's interval, and layers 2 against layers 1 by a paired t: the
  // differences 0.06, 0.07, 0.05 (mean 0.06, sd 0.01): t = 0.06 / (0.01 / sqrt 3) = 10.392,
  // p = 1 - t / sqrt(t^2 + 2) = 0.00913; the gap family holds the two cells against their
  // teacher and this pair.
  QTableWidget* table = view.effectsTable();
  ASSERT_EQ(table->rowCount(), 2);
  EXPECT_TRUE(table->item(0, 8)->text().startsWith(QStringLiteral("0.1000 [")))
      << table->item(0, 8)->text().toStdString();
  // The effect and the spread each with their t interval over the replicates.
  const QRegularExpression withInterval(QStringLiteral("^-?[0-9.]+ \\[-?[0-9.]+, -?[0-9.]+\\]$"));
  EXPECT_TRUE(withInterval.match(table->item(0, 1)->text()).hasMatch()) << table->item(0, 1)->text().toStdString();
  EXPECT_TRUE(withInterval.match(table->item(0, 2)->text()).hasMatch()) << table->item(0, 2)->text().toStdString();
  const QString pair = table->item(1, 9)->text();
  EXPECT_TRUE(pair.startsWith(QStringLiteral("1 - 2: +0.0600 ["))) << pair.toStdString();
  EXPECT_TRUE(pair.contains(QStringLiteral("p = 0.009, Holm p = "))) << pair.toStdString();
  EXPECT_TRUE(pair.contains(QStringLiteral("of 3 tests"))) << pair.toStdString();
}

// The heatmap of a replicated study: each entry's 95% t interval over the replicates, in the
// plot's content and the tooltip, and the entry whose interval holds 0 marked "n.d.".
// Gaps (L1, L2) per replicate (0.10, 0.01), (0.12, -0.02), (0.08, 0.02): L1 0.10 -+ t 0.02 /
// sqrt 3; L2 mean 0.01 / 3, sd sqrt(((0.02 / 3)^2 + (0.07 / 3)^2 + (0.05 / 3)^2) / 2).
TEST(StudyView, ReplicatedHeatmapCarriesIntervalsAndMarksWhatHoldsZero) {
  QTemporaryDir dir;
  widgets::StudyView view;
  QString error;
  ASSERT_TRUE(view.loadSummary(writeReplicatedSummary(dir, {{0.10, 0.01}, {0.12, -0.02}, {0.08, 0.02}}), &error))
      << error.toStdString();
  const double t = 4.302652729911275;
  const widgets::PlotContent content = view.heatmapPlot()->content();
  ASSERT_TRUE(content.heatmap.has_value());
  const widgets::Heatmap& h = *content.heatmap;
  ASSERT_EQ(h.values.size(), 2U); // layers 1, 2 (one column)
  ASSERT_EQ(h.lower.size(), 2U);
  ASSERT_EQ(h.upper.size(), 2U);
  const double half1 = t * 0.02 / std::sqrt(3.0);
  EXPECT_NEAR(h.lower[0], 0.10 - half1, 1e-9);
  EXPECT_NEAR(h.upper[0], 0.10 + half1, 1e-9);
  const double m2 = 0.01 / 3.0;
  const double sd2 = std::sqrt((std::pow(0.02 / 3.0, 2) + std::pow(0.07 / 3.0, 2) + std::pow(0.05 / 3.0, 2)) / 2.0);
  EXPECT_NEAR(h.values[1], m2, 1e-12);
  EXPECT_NEAR(h.lower[1], m2 - t * sd2 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(h.upper[1], m2 + t * sd2 / std::sqrt(3.0), 1e-9);
  EXPECT_TRUE(h.intervalTitle.contains(QStringLiteral("95% t interval over 3 replicates"))) << h.intervalTitle.toStdString();
  ASSERT_EQ(h.marked.size(), 2U);
  EXPECT_EQ(h.marked[0], 0);
  EXPECT_EQ(h.marked[1], 1);
  const auto marks = view.heatmapPlot()->heatmapMarks();
  ASSERT_EQ(marks.size(), 1);
  EXPECT_EQ(marks[0], qMakePair(1, 0));
}

// The n.d. mark is decided after Holm over the heatmap's entries: gaps (L1, L2) per replicate
// (0.07, 0.10), (0.10, 0.13), (0.13, 0.07). Each entry: mean 0.10, sd 0.03, so its t interval
// 0.10 -+ t 0.03 / sqrt 3 excludes 0, and its one-sample t = 0.10 sqrt 3 / 0.03 = 5.7735 on
// 2 df gives p = 1 - t / sqrt(t^2 + 2) = 0.0287 (the closed form for 2 df). Holm over the two
// entries: both 2 p = 0.0574 >= 0.05, so both are "n.d." although neither interval holds 0.
TEST(StudyView, HeatmapMarksNoDetectableGapAfterHolmOverItsEntries) {
  QTemporaryDir dir;
  widgets::StudyView view;
  QString error;
  ASSERT_TRUE(view.loadSummary(writeReplicatedSummary(dir, {{0.07, 0.10}, {0.10, 0.13}, {0.13, 0.07}}), &error))
      << error.toStdString();
  const widgets::PlotContent content = view.heatmapPlot()->content();
  ASSERT_TRUE(content.heatmap.has_value());
  const widgets::Heatmap& h = *content.heatmap;
  const double t = 0.10 * std::sqrt(3.0) / 0.03;
  const double p = 1.0 - t / std::sqrt(t * t + 2.0);
  EXPECT_NEAR(p, 0.0287, 1e-4);
  ASSERT_EQ(h.adjustedP.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_GT(h.lower[i], 0.0) << i; // the interval alone would not mark it
    EXPECT_NEAR(h.adjustedP[i], 2.0 * p, 1e-9) << i;
    EXPECT_EQ(h.marked[i], 1) << i;
  }
  EXPECT_TRUE(h.markTitle.contains(QStringLiteral("Holm p over the 2 tested entries"))) << h.markTitle.toStdString();
  EXPECT_EQ(view.heatmapPlot()->heatmapMarks().size(), 2);
  // One entry clearer (L1 0.08, 0.10, 0.12: t = 8.660, p = 0.01307): Holm steps down, L1's
  // 2 p = 0.0261 and L2's max(0.0261, 1 x 0.0287) = 0.0287: neither is marked now.
  QTemporaryDir dir2;
  ASSERT_TRUE(view.loadSummary(writeReplicatedSummary(dir2, {{0.08, 0.10}, {0.10, 0.13}, {0.12, 0.07}}), &error))
      << error.toStdString();
  const widgets::Heatmap h2 = *view.heatmapPlot()->content().heatmap;
  const double t1 = 0.10 * std::sqrt(3.0) / 0.02;
  const double p1 = 1.0 - t1 / std::sqrt(t1 * t1 + 2.0);
  EXPECT_NEAR(h2.adjustedP[0], 2.0 * p1, 1e-9);
  EXPECT_NEAR(h2.adjustedP[1], p, 1e-9);
  EXPECT_EQ(h2.marked[0], 0);
  EXPECT_EQ(h2.marked[1], 0);
}

// With a series factor the line plot carries each point's t interval over the replicates:
// layers {1, 2} x heads {1, 2}, 3 replicates, cell (l, h)'s gap in replicate k is
// base(l, h) + (k - 1) * step(l, h), so each point's mean is base and its sd step; the bar is
// base -+ t_{0.975,2} step / sqrt 3.
TEST(StudyView, LinesWithASeriesFactorCarryEachPointsIntervalOverReplicates) {
  const double base[2][2] = {{0.10, 0.06}, {0.04, 0.00}};
  const double step[2][2] = {{0.01, 0.02}, {0.03, 0.04}};
  std::vector<core::StudySummary> reps;
  for (int k = 0; k < 3; ++k) {
    core::StudySummary s;
    s.name = "reps";
    s.tasks = {"t"};
    s.factors = {core::StudyFactor{"layers", {"1", "2"}, {1, 2}, false},
                 core::StudyFactor{"heads", {"1", "2"}, {1, 2}, false}};
    for (std::size_t l = 0; l < 2; ++l) {
      for (std::size_t hd = 0; hd < 2; ++hd) {
        core::StudyCellResult c;
        c.name = "L" + std::to_string(l + 1) + "H" + std::to_string(hd + 1);
        c.levels = {l, hd};
        c.status = "complete";
        c.runFile = "cells/" + c.name + "/run.h5";
        core::StudyTaskResult t;
        t.task = "t";
        t.teacherAccuracy = 0.9;
        t.gap = base[l][hd] + (k - 1) * step[l][hd];
        t.studentAccuracy = 0.9 - t.gap;
        t.retained = t.studentAccuracy / 0.9;
        t.sourceTeacherAccuracy = 0.9;
        c.tasks = {t};
        s.cells.push_back(c);
      }
    }
    reps.push_back(s);
  }
  const core::StudySummary summary = core::combineStudyReplicates({1, 2, 3}, reps);
  widgets::PlotWidget plot;
  widgets::figures::buildStudyLines(plot, summary, "t", QStringLiteral("t"), "layers", "heads", core::StudyMetric::Gap);
  const widgets::PlotContent content = plot.content();
  ASSERT_EQ(content.series.size(), 2); // heads = 1, heads = 2
  const double tq = 4.302652729911275;
  for (int hd = 0; hd < 2; ++hd) {
    const widgets::PlotSeries& line = content.series[hd];
    ASSERT_EQ(line.y.size(), 2) << hd;
    ASSERT_EQ(line.lower.size(), 2) << hd;
    for (int l = 0; l < 2; ++l) {
      const double half = tq * step[l][hd] / std::sqrt(3.0);
      EXPECT_NEAR(line.y[l], base[l][hd], 1e-12) << l << hd;
      EXPECT_NEAR(line.lower[l], base[l][hd] - half, 1e-9) << l << hd;
      EXPECT_NEAR(line.upper[l], base[l][hd] + half, 1e-9) << l << hd;
    }
  }
  EXPECT_TRUE(content.xLabel.contains(QStringLiteral("bars: 95% t interval over 3 replicates")))
      << content.xLabel.toStdString();
}

// The sensitivity table says, for each rank, how it compares with the next one: with
// replicates, the paired t over them (Holm within the measure); without, that the ranks are
// point estimates. Slopes per replicate: a 0.30, 0.31, 0.29; b 0.20, 0.21, 0.19; c 0.19, 0.22,
// 0.16. a - b = 0.10 in every replicate (sd 0: p = 0, distinguishable); b - c = 0.01, -0.01,
// 0.03 (mean 0.01, sd 0.02, t = 0.866 on 2 df, p = 1 - t / sqrt(t^2 + 2) = 0.478: not).
TEST(StudyView, SensitivityTableComparesEachRankWithTheNext) {
  core::StudySummary summary;
  summary.tasks = {"a", "b", "c"};
  const std::vector<std::pair<std::string, std::vector<double>>> slopes = {
      {"a", {0.30, 0.31, 0.29}}, {"b", {0.20, 0.21, 0.19}}, {"c", {0.19, 0.22, 0.16}}};
  for (const auto& [task, values] : slopes) {
    core::TaskSensitivity s;
    s.task = task;
    s.measure = core::kMeasureLayers;
    s.slope.estimate = (values[0] + values[1] + values[2]) / 3.0;
    s.slope.lo = s.slope.estimate - 0.05;
    s.slope.hi = s.slope.estimate + 0.05;
    s.slope.over = core::analysis::kOverReplicates;
    s.slope.count = 3;
    s.cells = 2;
    summary.sensitivity.push_back(s);
    summary.replicates.slopes.push_back({task, core::kMeasureLayers, core::studyRepValue(values)});
  }
  core::rankTaskSensitivity(summary.sensitivity);
  summary.replicates.seeds = {1, 2, 3};
  QTableWidget table;
  widgets::setUpSensitivityTable(table);
  widgets::fillSensitivityTable(table, summary);
  std::map<int, QString> next;
  for (int r = 0; r < table.rowCount(); ++r) {
    if (table.item(r, widgets::SensMeasure)->text() == QStringLiteral("layers")) {
      next[table.item(r, widgets::SensRank)->text().toInt()] = table.item(r, widgets::SensNext)->text();
    }
  }
  ASSERT_EQ(next.size(), 3U);
  EXPECT_TRUE(next[1].startsWith(QStringLiteral("steeper than b by +0.1000"))) << next[1].toStdString();
  EXPECT_TRUE(next[1].contains(QStringLiteral("over 3 replicates"))) << next[1].toStdString();
  EXPECT_TRUE(next[2].startsWith(QStringLiteral("no detectable difference from c: +0.0100"))) << next[2].toStdString();
  const double t = 0.01 * std::sqrt(3.0) / 0.02;
  const QString p = QString::number(1.0 - t / std::sqrt(t * t + 2.0), 'f', 3);
  EXPECT_TRUE(next[2].contains(QStringLiteral("paired t p = ") + p)) << next[2].toStdString() << " want p " << p.toStdString();
  EXPECT_EQ(next[3], QStringLiteral("- (the last rank)"));

  summary.replicates = core::StudyReplicateStats{};
  widgets::fillSensitivityTable(table, summary);
  for (int r = 0; r < table.rowCount(); ++r) {
    if (table.item(r, widgets::SensRank)->text() != QStringLiteral("-")) {
      EXPECT_TRUE(table.item(r, widgets::SensNext)->text().startsWith(QStringLiteral("not tested: one run per cell")))
          << table.item(r, widgets::SensNext)->text().toStdString();
    }
  }
}
