// Each view populated from a small real run file (written with core::RunWriter), asserting
// the numbers worked out by hand in test_run_file.cpp; the plot wrapper; the run browser
// and bad files; the job editor; settings.

#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QSpinBox>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeWidget>

#include <gtest/gtest.h>

#include <cmath>

#include "core/job/job_spec.h"
#include "core/record/h5_file.h"
#include "test_run_file.h"
#include "widgets/views/analysis_view.h"
#include "widgets/views/attention_pane.h"
#include "widgets/views/examples_view.h"
#include "widgets/views/heads_view.h"
#include "widgets/jobs/job_editor.h"
#include "widgets/views/knowledge_view.h"
#include "widgets/views/layers_view.h"
#include "widgets/shell/main_window.h"
#include "widgets/views/overview_view.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_browser.h"
#include "widgets/shell/run_document.h"
#include "widgets/shell/settings_dialog.h"
#include "widgets/views/tasks_view.h"

using namespace kdscope;
using namespace kdscope::widgets;
using kdscope::widgets::test::kJsOneHotUniform3;
using kdscope::widgets::test::kLn3;

namespace {

class ViewTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_dir.isValid());
    m_plain = m_dir.filePath(QStringLiteral("plain.h5"));
    m_analysed = m_dir.filePath(QStringLiteral("analysed.h5"));
    test::writeSmallRun(m_plain, false);
    test::writeSmallRun(m_analysed, true);
  }
  ViewContext context(const RunDocument& run, const QString& student = QStringLiteral("kd")) {
    return ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), student};
  }
  static QString cell(const QTableWidget* table, int row, int column) {
    const QTableWidgetItem* item = table->item(row, column);
    return item == nullptr ? QString() : item->text();
  }
  static double heat(const PlotWidget* plot, int row, int col) {
    const Heatmap& map = plot->heatmap();
    return map.values.at(static_cast<std::size_t>(row * map.cols + col));
  }
  QTemporaryDir m_dir;
  QString m_plain;
  QString m_analysed;
};

} // namespace

TEST(PlotWidget, HeatmapHasNoInterpolationExactTooltipsAndViridisEnds) {
  PlotWidget plot;
  plot.resize(500, 400);
  plot.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&plot));
  Heatmap map;
  map.rows = 2;
  map.cols = 3;
  map.values = {0.0, 0.25, 0.5, 0.75, 0.123456789, 1.0};
  map.rowLabels = {QStringLiteral("r0"), QStringLiteral("r1")};
  map.colLabels = {QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")};
  map.rowTitle = QStringLiteral("layer");
  map.colTitle = QStringLiteral("head");
  map.valueTitle = QStringLiteral("cka");
  map.gradient = Gradient::Viridis;
  plot.setHeatmap(map);
  QTest::qWait(20);
  ASSERT_TRUE(plot.hasHeatmap());
  EXPECT_FALSE(plot.heatmapInterpolated());
  EXPECT_EQ(plot.heatmapColor(0, 0), QColor(0x44, 0x01, 0x54)); // viridis at 0
  EXPECT_EQ(plot.heatmapColor(1, 2), QColor(0xfd, 0xe7, 0x25)); // viridis at 1
  const QString tip = plot.toolTipAt(plot.pixelOfCell(1, 1));
  EXPECT_TRUE(tip.contains(QStringLiteral("layer r1"))) << tip.toStdString();
  EXPECT_TRUE(tip.contains(QStringLiteral("head b"))) << tip.toStdString();
  EXPECT_TRUE(tip.contains(QStringLiteral("cka = 0.123457"))) << tip.toStdString();
  // Row 0 is drawn above row 1 (a matrix reads top-down).
  EXPECT_LT(plot.pixelOfCell(0, 0).y(), plot.pixelOfCell(1, 0).y());

  // Cividis from its stops.
  map.gradient = Gradient::Cividis;
  plot.setHeatmap(map);
  EXPECT_EQ(plot.heatmapColor(0, 0), QColor(0x00, 0x20, 0x4d));
  EXPECT_EQ(plot.heatmapColor(1, 2), QColor(0xff, 0xea, 0x46));

  // Clicking a cell reports it.
  QSignalSpy clicked(&plot, &PlotWidget::cellClicked);
  QWidget* canvas = plot.childAt(plot.pixelOfCell(1, 2));
  ASSERT_NE(canvas, nullptr);
  QTest::mouseClick(canvas, Qt::LeftButton, {}, canvas->mapFrom(&plot, plot.pixelOfCell(1, 2)));
  ASSERT_EQ(clicked.count(), 1);
  EXPECT_EQ(clicked.first().at(0).toInt(), 1);
  EXPECT_EQ(clicked.first().at(1).toInt(), 2);
}

TEST(PlotWidget, LinesUseOkabeItoAndTooltipsGiveExactPoints) {
  EXPECT_EQ(PlotWidget::paletteColor(0), QColor(0, 0, 0));
  EXPECT_EQ(PlotWidget::paletteColor(1), QColor(230, 159, 0));
  EXPECT_EQ(PlotWidget::paletteColor(2), QColor(86, 180, 233));
  EXPECT_EQ(PlotWidget::paletteColor(9), PlotWidget::paletteColor(1));
  PlotWidget plot;
  plot.resize(500, 400);
  plot.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&plot));
  plot.setAxisLabels(QStringLiteral("step"), QStringLiteral("loss"));
  const int line = plot.addLine(QStringLiteral("teacher"), {10, 20, 30}, {1.0, 0.8123456, 0.6}, 0);
  plot.appendPoints(line, {40}, {0.5});
  plot.rescale();
  QTest::qWait(20);
  ASSERT_EQ(plot.lineCount(), 1);
  EXPECT_EQ(plot.lineData(line).size(), 4);
  const QString tip = plot.toolTipAt(plot.pixelOfPoint(line, 1));
  EXPECT_EQ(tip, QStringLiteral("teacher\nstep = 20\nloss = 0.812346"));
  EXPECT_TRUE(plot.toolTipAt(QPoint(1, 1)).isEmpty());
  plot.setMessage(QStringLiteral("nothing"));
  EXPECT_EQ(plot.message(), QStringLiteral("nothing"));
}

TEST_F(ViewTest, OverviewShowsCurvesAndTheAccuracyTableComputedFromTheLogits) {
  RunDocument run(m_plain);
  OverviewView view;
  view.setContext(context(run));
  EXPECT_TRUE(view.errorText().isEmpty()) << view.errorText().toStdString();
  QTableWidget* table = view.accuracyTable();
  ASSERT_EQ(table->rowCount(), 3);
  EXPECT_EQ(cell(table, 0, OverviewView::ColModel), QStringLiteral("teacher"));
  EXPECT_EQ(cell(table, 0, OverviewView::ColAccuracy), QStringLiteral("0.6667")); // 4 of 6 by hand
  EXPECT_EQ(cell(table, 0, OverviewView::ColGap), QStringLiteral("-"));
  EXPECT_EQ(cell(table, 1, OverviewView::ColModel), QStringLiteral("ce"));
  EXPECT_EQ(cell(table, 1, OverviewView::ColAccuracy), QStringLiteral("0.5000")); // 3 of 6
  EXPECT_EQ(cell(table, 2, OverviewView::ColModel), QStringLiteral("kd"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColAccuracy), QStringLiteral("0.5000"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColGap), QStringLiteral("0.1667"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColRetained), QStringLiteral("0.7500"));
  // Not analysed: no interval, and the cell says why.
  EXPECT_EQ(table->item(2, OverviewView::ColGapInterval)->toolTip(),
            QStringLiteral("not analysed: 'kdscope analyze' adds the 95% intervals"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColParameters), QStringLiteral("300"));
  EXPECT_EQ(cell(table, 0, OverviewView::ColFinalLoss), QStringLiteral("0.6000"));

  // Total loss: one line per model.
  PlotWidget* loss = view.lossPlot();
  ASSERT_EQ(loss->lineCount(), 3);
  EXPECT_EQ(loss->lineName(0), QStringLiteral("teacher"));
  EXPECT_EQ(loss->lineData(0), (QVector<QPointF>{{10, 1.0}, {20, 0.8F}, {30, 0.6F}}));
  // One term: only the models that log it.
  view.termSelector()->setCurrentText(QStringLiteral("kd"));
  ASSERT_EQ(loss->lineCount(), 1);
  EXPECT_EQ(loss->lineName(0), QStringLiteral("kd kd"));
  EXPECT_EQ(loss->lineData(0), (QVector<QPointF>{{10, 0.5F}, {20, 0.4F}}));
  // Eval curves: teacher (2 epochs) and kd (1); ce has none.
  PlotWidget* acc = view.accuracyPlot();
  ASSERT_EQ(acc->lineCount(), 2);
  EXPECT_EQ(acc->lineData(0), (QVector<QPointF>{{1, 0.5}, {2, static_cast<float>(4.0 / 6.0)}}));
}

TEST_F(ViewTest, LayersViewSaysNoAnalysisYetAndReadsCkaWhenPresent) {
  RunDocument plain(m_plain);
  LayersView view;
  view.setContext(context(plain));
  EXPECT_FALSE(view.ckaPlot()->hasHeatmap());
  EXPECT_EQ(view.ckaPlot()->message(), QStringLiteral("no analysis yet: run `kdscope analyze %1`").arg(m_plain));
  EXPECT_EQ(view.probePlot()->message(), noAnalysisMessage(plain));

  RunDocument analysed(m_analysed);
  view.setContext(context(analysed));
  ASSERT_TRUE(view.ckaPlot()->hasHeatmap());
  EXPECT_TRUE(view.ckaPlot()->message().isEmpty());
  EXPECT_EQ(view.ckaPlot()->heatmap().rows, 3); // teacher layers + 1
  EXPECT_EQ(view.ckaPlot()->heatmap().cols, 2); // student layers + 1
  EXPECT_FLOAT_EQ(heat(view.ckaPlot(), 1, 1), 0.9F);
  EXPECT_FLOAT_EQ(heat(view.ckaPlot(), 2, 0), 0.2F);
  EXPECT_EQ(view.ckaPlot()->heatmap().rowLabels, (QStringList{"emb", "1", "2"}));
}

TEST_F(ViewTest, HeadsViewGridsAndClickingACellOpensThatHeadsAttention) {
  RunDocument plain(m_plain);
  HeadsView view;
  view.resize(1000, 800);
  view.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&view));
  view.setContext(context(plain));
  EXPECT_TRUE(view.errorText().isEmpty()) << view.errorText().toStdString();
  // Every metric is an analysis result: a run not analysed says so, it is never recomputed here.
  EXPECT_FALSE(view.teacherGrid()->hasHeatmap());
  EXPECT_EQ(view.teacherGrid()->message(), noAnalysisMessage(plain));
  view.setMetric(HeadsView::Metric::Divergence);
  EXPECT_EQ(view.studentGrid()->message(), noAnalysisMessage(plain));
  view.setMetric(HeadsView::Metric::Importance);
  EXPECT_EQ(view.teacherGrid()->message(), noAnalysisMessage(plain));

  RunDocument analysed(m_analysed);
  view.setContext(context(analysed));
  // Entropy: head 0 uniform over 3 keys, head 1 one-hot.
  view.setMetric(HeadsView::Metric::Entropy);
  ASSERT_TRUE(view.teacherGrid()->hasHeatmap());
  EXPECT_EQ(view.teacherGrid()->heatmap().rows, 2);
  EXPECT_EQ(view.teacherGrid()->heatmap().cols, 2);
  EXPECT_NEAR(heat(view.teacherGrid(), 0, 0), kLn3, 1e-6);
  EXPECT_NEAR(heat(view.teacherGrid(), 1, 1), 0.0, 1e-6);
  EXPECT_NEAR(heat(view.studentGrid(), 0, 0), kLn3, 1e-6);
  // The entropy has no interval and says why, in each cell's tooltip.
  {
    QTest::qWait(20);
    const QString tip = view.teacherGrid()->toolTipAt(view.teacherGrid()->pixelOfCell(0, 0));
    EXPECT_TRUE(tip.contains(QStringLiteral("no interval: the entropy describes the attention maps"))) << tip.toStdString();
  }
  // Divergence (kd layer 0 by the heads of teacher layer 1): teacher head 0 (uniform) matches
  // kd head 0 exactly; teacher head 1 (one-hot on key 1) is closest to the uniform kd head 0.
  view.setMetric(HeadsView::Metric::Divergence);
  ASSERT_TRUE(view.studentGrid()->hasHeatmap());
  EXPECT_NEAR(heat(view.studentGrid(), 0, 0), 0.0, 1e-6);
  EXPECT_NEAR(heat(view.studentGrid(), 0, 1), kJsOneHotUniform3, 1e-6);
  view.setMetric(HeadsView::Metric::Importance);
  ASSERT_TRUE(view.teacherGrid()->hasHeatmap());
  EXPECT_FLOAT_EQ(heat(view.teacherGrid(), 0, 1), 0.9F);
  EXPECT_FLOAT_EQ(heat(view.studentGrid(), 0, 0), 0.7F);

  // Click teacher layer 1, head 1: its map is one-hot on key 1, tokens on the axes.
  view.setMetric(HeadsView::Metric::Entropy);
  QTest::qWait(30);
  PlotWidget* grid = view.teacherGrid();
  QWidget* canvas = grid->childAt(grid->pixelOfCell(1, 1));
  ASSERT_NE(canvas, nullptr);
  QTest::mouseClick(canvas, Qt::LeftButton, {}, canvas->mapFrom(grid, grid->pixelOfCell(1, 1)));
  PlotWidget* teacherMap = view.attentionPane()->teacherPlot();
  ASSERT_TRUE(teacherMap->hasHeatmap());
  EXPECT_EQ(teacherMap->heatmap().rowLabels, (QStringList{"[CLS]", "good", "movie"}));
  EXPECT_EQ(teacherMap->heatmap().colLabels, (QStringList{"[CLS]", "good", "movie"}));
  EXPECT_DOUBLE_EQ(heat(teacherMap, 0, 1), 1.0);
  EXPECT_DOUBLE_EQ(heat(teacherMap, 0, 0), 0.0);
  // The student beside it: layer 0 head 0 by default (uniform), then head 1 (one-hot on key 0).
  PlotWidget* studentMap = view.attentionPane()->studentPlot();
  ASSERT_TRUE(studentMap->hasHeatmap());
  EXPECT_NEAR(heat(studentMap, 2, 1), 1.0 / 3.0, 1e-6);
  view.attentionPane()->selectStudentHead(0, 1);
  ASSERT_TRUE(studentMap->hasHeatmap());
  EXPECT_DOUBLE_EQ(heat(studentMap, 2, 0), 1.0);
  // Example 1's tokens; example 4 has no attention kept.
  view.attentionPane()->setExample(1);
  EXPECT_EQ(teacherMap->heatmap().rowLabels, (QStringList{"[CLS]", "bad", "plot"}));
  view.attentionPane()->setExample(4);
  EXPECT_FALSE(teacherMap->hasHeatmap());
  EXPECT_EQ(teacherMap->message(), QStringLiteral("no attention kept for example 4"));
}

// One truth per number: every cell the Heads view shows is the number the analysis engine
// wrote to /analysis (read here straight from the file, by its documented path).
TEST_F(ViewTest, HeadsViewShowsExactlyWhatTheAnalysisWrote) {
  RunDocument analysed(m_analysed);
  HeadsView view;
  view.resize(1000, 800);
  view.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&view));
  const core::H5File file(m_analysed.toStdString(), core::H5File::Mode::ReadOnly);
  const auto expectGrid = [&](PlotWidget* grid, const std::string& path) {
    ASSERT_TRUE(file.isDataset(path)) << path;
    const auto shape = file.shape(path);
    const std::vector<float> values = file.readFloat(path);
    ASSERT_TRUE(grid->hasHeatmap()) << path << ": " << grid->message().toStdString();
    ASSERT_EQ(grid->heatmap().rows, static_cast<int>(shape[0])) << path;
    ASSERT_EQ(grid->heatmap().cols, static_cast<int>(shape[1])) << path;
    for (std::size_t r = 0; r < shape[0]; ++r) {
      for (std::size_t c = 0; c < shape[1]; ++c) {
        EXPECT_EQ(heat(grid, static_cast<int>(r), static_cast<int>(c)), static_cast<double>(values[r * shape[1] + c]))
            << path << " [" << r << ", " << c << "]";
      }
    }
  };
  for (const QString& student : {QStringLiteral("kd"), QStringLiteral("ce")}) {
    ViewContext c = context(analysed);
    c.student = student;
    view.setContext(c);
    view.setMetric(HeadsView::Metric::Entropy);
    expectGrid(view.teacherGrid(), "/tasks/polarity/analysis/teacher/attention_entropy");
    expectGrid(view.studentGrid(), "/tasks/polarity/analysis/" + student.toStdString() + "/attention_entropy");
    view.setMetric(HeadsView::Metric::Divergence);
    expectGrid(view.studentGrid(), "/tasks/polarity/analysis/" + student.toStdString() + "/head_js_best_divergence");
  }
  // Clicking a divergence cell (kd layer 0, teacher head 1) opens teacher layer 1 head 1 and
  // the kd head the analysis matched to it (head 0, uniform).
  ViewContext c = context(analysed);
  view.setContext(c);
  view.setMetric(HeadsView::Metric::Divergence);
  QTest::qWait(30);
  PlotWidget* grid = view.studentGrid();
  QWidget* canvas = grid->childAt(grid->pixelOfCell(0, 1));
  ASSERT_NE(canvas, nullptr);
  QTest::mouseClick(canvas, Qt::LeftButton, {}, canvas->mapFrom(grid, grid->pixelOfCell(0, 1)));
  ASSERT_TRUE(view.attentionPane()->teacherPlot()->hasHeatmap());
  EXPECT_DOUBLE_EQ(heat(view.attentionPane()->teacherPlot(), 0, 1), 1.0); // one-hot on key 1
  ASSERT_TRUE(view.attentionPane()->studentPlot()->hasHeatmap());
  EXPECT_NEAR(heat(view.attentionPane()->studentPlot(), 2, 1), 1.0 / 3.0, 1e-6); // uniform
}

TEST_F(ViewTest, TasksViewComparesTeacherAndStudentPerTask) {
  RunDocument run(m_plain);
  TasksView view;
  view.setContext(context(run));
  QTableWidget* table = view.table();
  ASSERT_EQ(table->rowCount(), 1);
  EXPECT_EQ(cell(table, 0, TasksView::ColTask), QStringLiteral("polarity"));
  EXPECT_EQ(cell(table, 0, TasksView::ColTeacher), QStringLiteral("0.6667"));
  EXPECT_EQ(cell(table, 0, TasksView::ColStudent), QStringLiteral("0.5000"));
  EXPECT_EQ(cell(table, 0, TasksView::ColGap), QStringLiteral("0.1667"));
  EXPECT_EQ(cell(table, 0, TasksView::ColAgreement), QStringLiteral("0.5000")); // agree on 1, 2, 5
  EXPECT_EQ(cell(table, 0, TasksView::ColRetained), QStringLiteral("0.7500"));
  // Per-class recall: teacher 2/3 and 2/3, kd 2/3 and 1/3.
  PlotWidget* recall = view.recallPlot();
  ASSERT_EQ(recall->lineCount(), 2);
  EXPECT_NEAR(recall->lineData(0)[0].y(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(recall->lineData(0)[1].y(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(recall->lineData(1)[0].y(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(recall->lineData(1)[1].y(), 1.0 / 3.0, 1e-12);
}

TEST_F(ViewTest, KnowledgeViewGainsSimilarityAndInstanceWeights) {
  EXPECT_EQ(controlKind(R"({"terms":[{"name":"ce","weight":1,"label_smoothing":0}]})"), QStringLiteral("CE"));
  EXPECT_EQ(controlKind(R"({"terms":[{"name":"ce","weight":1,"label_smoothing":0.1}]})"), QStringLiteral("LS"));
  EXPECT_EQ(controlKind(R"({"terms":[{"name":"ce"},{"name":"kd","weight":0.5,"teacher_targets":"pt"}]})"),
            QStringLiteral("KD-pt"));

  RunDocument plain(m_plain);
  KnowledgeView view;
  view.setContext(context(plain));
  EXPECT_TRUE(view.errorText().isEmpty()) << view.errorText().toStdString();
  QTableWidget* gains = view.gainTable();
  ASSERT_EQ(gains->rowCount(), 8);
  EXPECT_EQ(cell(gains, 0, 1), QStringLiteral("ce"));
  EXPECT_EQ(cell(gains, 0, 2), QStringLiteral("0.5000"));
  EXPECT_EQ(cell(gains, 1, 2), QStringLiteral("-")); // no LS control
  EXPECT_EQ(cell(gains, 3, 1), QStringLiteral("kd"));
  // Each accuracy row's interval column says why it is empty: not analysed, or no control.
  EXPECT_EQ(cell(gains, 0, 3), QStringLiteral("not analysed"));
  EXPECT_EQ(cell(gains, 1, 3), QStringLiteral("no such control"));
  // Cosine of classifier rows: teacher orthogonal (0), kd 45 degrees (1 / sqrt 2).
  ASSERT_TRUE(view.teacherSimilarity()->hasHeatmap());
  EXPECT_NEAR(heat(view.teacherSimilarity(), 0, 1), 0.0, 1e-12);
  EXPECT_NEAR(heat(view.studentSimilarity(), 0, 1), 1.0 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(heat(view.studentSimilarity(), 1, 1), 1.0, 1e-6);
  // The cosine kind's agreement says why it has no interval within one run.
  EXPECT_TRUE(view.geometryText().contains(QStringLiteral("no interval: the classifier weights are fixed in one run")))
      << view.geometryText().toStdString();
  EXPECT_EQ(view.weightPlot()->message(), noAnalysisMessage(plain));

  RunDocument analysed(m_analysed);
  view.setContext(context(analysed));
  ASSERT_EQ(view.weightPlot()->lineCount(), 1);
  const QVector<QPointF> points = view.weightPlot()->lineData(0);
  ASSERT_EQ(points.size(), 6);
  // Sorted by x (teacher p_y): example 3 has the highest, softmax([0, 3])[1].
  const double p3 = 1.0 / (1.0 + std::exp(-3.0));
  EXPECT_NEAR(points.last().x(), p3, 1e-6);
  EXPECT_NEAR(points.last().y(), 0.6, 1e-6); // grad_rescale of example 3
}

TEST_F(ViewTest, ExamplesViewListsLostAndGainedAndShowsTheSelectedExample) {
  RunDocument run(m_plain);
  ExamplesView view;
  view.resize(1000, 800);
  view.setContext(context(run));
  QSortFilterProxyModel* proxy = view.proxy();
  const auto shownIndices = [&] {
    QList<int> indices;
    for (int r = 0; r < proxy->rowCount(); ++r) {
      indices << proxy->index(r, ExamplesView::ColIndex).data().toInt();
    }
    std::sort(indices.begin(), indices.end());
    return indices;
  };
  EXPECT_EQ(shownIndices(), (QList<int>{0, 3, 4}));
  view.setFilter(ExamplesView::Filter::Lost);
  EXPECT_EQ(shownIndices(), (QList<int>{0, 3}));
  view.setFilter(ExamplesView::Filter::Gained);
  EXPECT_EQ(shownIndices(), (QList<int>{4}));
  view.setFilter(ExamplesView::Filter::All);
  EXPECT_EQ(proxy->rowCount(), 6);
  view.setTextFilter(QStringLiteral("plot"));
  EXPECT_EQ(shownIndices(), (QList<int>{1, 2, 5}));
  view.setTextFilter(QString());

  // Sorting by the teacher's p(y), descending: example 3 first (softmax([0, 3])[1]).
  view.table()->sortByColumn(ExamplesView::ColTeacherTrue, Qt::DescendingOrder);
  EXPECT_EQ(proxy->index(0, ExamplesView::ColIndex).data().toInt(), 3);

  ASSERT_TRUE(view.selectExample(0));
  EXPECT_TRUE(view.shownText().contains(QStringLiteral("good movie"))) << view.shownText().toStdString();
  EXPECT_TRUE(view.shownText().contains(QStringLiteral("label: neg")));
  QTableWidget* probabilities = view.probabilityTable();
  ASSERT_EQ(probabilities->rowCount(), 2);
  EXPECT_EQ(cell(probabilities, 0, 1), QStringLiteral("0.8808")); // softmax([2, 0])[0]
  EXPECT_EQ(cell(probabilities, 0, 2), QStringLiteral("0.2689")); // softmax([0, 1])[0]
  EXPECT_EQ(view.attentionPane()->example(), 0);
  EXPECT_TRUE(view.attentionPane()->teacherPlot()->hasHeatmap());
}

TEST_F(ViewTest, BadRunFilesShowTheReadersMessageAndStayClosed) {
  const QString notHdf5 = m_dir.filePath(QStringLiteral("text.h5"));
  {
    QFile file(notHdf5);
    ASSERT_TRUE(file.open(QIODevice::WriteOnly));
    file.write("this is not HDF5");
  }
  const QString foreign = m_dir.filePath(QStringLiteral("foreign.h5"));
  {
    core::H5File file(foreign.toStdString(), core::H5File::Mode::Create);
    file.setAttr("/", "format", "something-else");
  }
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  RunBrowser* browser = window.runBrowser();
  EXPECT_FALSE(window.openRun(notHdf5));
  EXPECT_EQ(browser->runCount(), 0);
  EXPECT_TRUE(browser->lastError().contains(notHdf5)) << browser->lastError().toStdString();
  auto* box = browser->findChild<QMessageBox*>(QStringLiteral("openRunError"));
  ASSERT_NE(box, nullptr);
  EXPECT_TRUE(box->text().contains(browser->lastError()));
  box->close();

  EXPECT_FALSE(window.openRun(foreign, /*quiet=*/true));
  EXPECT_TRUE(browser->lastError().contains(QStringLiteral("not a KDScope run file")))
      << browser->lastError().toStdString();
  EXPECT_EQ(browser->runCount(), 0);
  EXPECT_FALSE(window.openRun(m_dir.filePath(QStringLiteral("missing.h5")), true));

  // Good files: several open at once; the selectors follow the selected run.
  EXPECT_TRUE(window.openRun(m_plain, true));
  EXPECT_TRUE(window.openRun(m_analysed, true));
  EXPECT_EQ(browser->runCount(), 2);
  EXPECT_EQ(browser->currentRun()->path(), m_analysed);
  EXPECT_EQ(window.taskSelector()->currentText(), QStringLiteral("polarity"));
  EXPECT_EQ(window.studentSelector()->count(), 2);
  EXPECT_EQ(window.studentSelector()->itemText(0), QStringLiteral("ce"));
  EXPECT_EQ(browser->recentFiles().first(), QFileInfo(m_analysed).absoluteFilePath());
  // A model's accuracy in the browser is a point estimate and says where its interval is.
  {
    QTreeWidgetItem* model = browser->tree()->topLevelItem(1)->child(0)->child(0);
    ASSERT_NE(model, nullptr);
    EXPECT_TRUE(model->toolTip(1).contains(QStringLiteral("point estimate; its 95% interval"))) << model->toolTip(1).toStdString();
  }
  // The Overview is shown and filled.
  EXPECT_EQ(window.tabs()->currentWidget(), window.overview());
  EXPECT_EQ(window.overview()->accuracyTable()->rowCount(), 3);
  window.studentSelector()->setCurrentText(QStringLiteral("kd"));
  window.tabs()->setCurrentWidget(window.layers());
  EXPECT_TRUE(window.layers()->ckaPlot()->hasHeatmap());
  browser->closeRun(m_analysed);
  EXPECT_EQ(browser->runCount(), 1);
  EXPECT_EQ(browser->currentRun()->path(), m_plain);
}

TEST(JobEditor, ValidatesAsTheUserTypesWithTheCommandLinesMessages) {
  JobEditor editor;
  EXPECT_TRUE(editor.validateNow()) << editor.issueLines().join('\n').toStdString();
  EXPECT_TRUE(editor.issueLines().isEmpty());
  ASSERT_TRUE(editor.job().has_value());
  EXPECT_EQ(editor.job()->students.size(), 2U);
  EXPECT_EQ(editor.studentTable()->rowCount(), 2);
  EXPECT_EQ(editor.nameEdit()->text(), QStringLiteral("new-job"));

  // Typing in the JSON validates after the debounce, with parseJob's own messages.
  QString bad = editor.jsonText();
  bad.replace(QStringLiteral("\"temperature\": 4"), QStringLiteral("\"temperature\": -4"));
  bad.replace(QStringLiteral("\"epochs\": 3"), QStringLiteral("\"epoch\": 3"));
  QSignalSpy validated(&editor, &JobEditor::validated);
  auto* text = editor.findChild<QPlainTextEdit*>(QStringLiteral("jobJson"));
  ASSERT_NE(text, nullptr);
  text->setPlainText(bad);
  EXPECT_EQ(validated.count(), 0); // not yet: debounced
  ASSERT_TRUE(validated.wait(2000));
  EXPECT_FALSE(validated.last().at(0).toBool());
  const core::JobParseResult expected = core::parseJob(bad.toStdString(), "editor");
  ASSERT_FALSE(expected.issues.empty());
  QStringList expectedLines;
  for (const core::JobIssue& issue : expected.issues) {
    expectedLines << QString::fromStdString(issue.str());
  }
  EXPECT_EQ(editor.issueLines(), expectedLines);
  EXPECT_FALSE(editor.job().has_value());

  // The form edits the JSON: a new name and the teacher's layers.
  editor.setJsonText(JobEditor::templateJson());
  editor.nameEdit()->setText(QStringLiteral("renamed"));
  Q_EMIT editor.nameEdit()->textEdited(QStringLiteral("renamed"));
  editor.teacherLayers()->setValue(3);
  EXPECT_TRUE(editor.validateNow());
  EXPECT_EQ(editor.job()->name, "renamed");
  EXPECT_EQ(editor.job()->teacher.architecture.layers, 3);
  // A student's lambda from the table.
  editor.studentTable()->item(0, JobEditor::SLambda)->setText(QStringLiteral("0.25"));
  EXPECT_TRUE(editor.validateNow());
  EXPECT_DOUBLE_EQ(editor.job()->students[0].objective.lambda, 0.25);

  // Save and load.
  QTemporaryDir dir;
  const QString path = dir.filePath(QStringLiteral("job.json"));
  ASSERT_TRUE(editor.saveFile(path));
  JobEditor other;
  ASSERT_TRUE(other.loadFile(path, true));
  EXPECT_TRUE(other.validateNow());
  EXPECT_EQ(other.job()->name, "renamed");
  EXPECT_EQ(other.job()->baseDir, QFileInfo(path).absolutePath().toStdString());
  EXPECT_EQ(core::loadJobFile(path.toStdString()).issues.size(), 0U);
}

TEST(Settings, PersistThroughQSettings) {
  QTemporaryDir dir;
  QSettings store(dir.filePath(QStringLiteral("s.ini")), QSettings::IniFormat);
  Settings settings;
  settings.torchThreads = 2;
  settings.blasThreads = 3;
  settings.maxConcurrentJobs = 2;
  settings.outputRoot = QStringLiteral("/data/runs");
  settings.attentionExamples = 64;
  settings.logEvery = 5;
  settings.pooling = QStringLiteral("cls");
  settings.figure.gradient = Gradient::Cividis;
  settings.figure.lineWidth = 2.5;
  settings.figure.fontPointSize = 11;
  settings.save(&store);
  QSettings again(dir.filePath(QStringLiteral("s.ini")), QSettings::IniFormat);
  const Settings loaded = Settings::load(&again);
  EXPECT_EQ(loaded.torchThreads, 2);
  EXPECT_EQ(loaded.blasThreads, 3);
  EXPECT_EQ(loaded.maxConcurrentJobs, 2);
  EXPECT_EQ(loaded.outputRoot, QStringLiteral("/data/runs"));
  EXPECT_EQ(loaded.attentionExamples, 64);
  EXPECT_EQ(loaded.logEvery, 5);
  EXPECT_EQ(loaded.pooling, QStringLiteral("cls"));
  EXPECT_EQ(loaded.figure.gradient, Gradient::Cividis);
  EXPECT_DOUBLE_EQ(loaded.figure.lineWidth, 2.5);
  EXPECT_EQ(loaded.figure.fontPointSize, 11);
  SettingsDialog dialog(loaded);
  const Settings fromDialog = dialog.settings();
  EXPECT_EQ(fromDialog.outputRoot, loaded.outputRoot);
  EXPECT_EQ(fromDialog.figure.gradient, Gradient::Cividis);
  EXPECT_EQ(fromDialog.attentionExamples, 64);
}
