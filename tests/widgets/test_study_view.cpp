// StudyView on a hand-made study summary: the heatmap, lines and main-effect table show the
// numbers worked out by hand (the same table as tests/core/test_study.cpp), and a bad file
// is refused with the reader's message.

#include <QComboBox>
#include <QFile>
#include <QTableWidget>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <cmath>

#include "core/study/summary.h"
#include "widgets/figures/plot_widget.h"
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
