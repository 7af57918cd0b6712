// The layer and head figures with intervals (widgets/figures/layer_head_figures.cpp;
// docs/figures.md): the small run of test_run_file.cpp, analysed, with hand-made results of
// the "layers" and "heads" analyses added here (CKA at matched depth with its interval and
// teacher layers; the teacher's head importance interval and single-head ablation with its
// paired interval). Each figure's CSV rows (x, x_label, y, y_lo, y_hi) must be the numbers read
// here from the file with H5File, exactly (shortest round-trip decimals of the float32
// values), and each ablated head must be in the series its own interval says: "accuracy drop"
// when the interval excludes 0, "accuracy drop (no detectable difference)" when it holds 0.
#include <QComboBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/record/h5_file.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/main_window.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/heads_view.h"
#include "widgets/views/layers_view.h"

#include "test_run_file.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

const std::string kAnalysis = "/tasks/polarity/analysis/";

/// Data rows of a CSV (comment lines dropped), split on commas outside double quotes.
std::vector<QStringList> csvRows(const QByteArray& csv, QString* header) {
  std::vector<QStringList> rows;
  bool first = true;
  for (const QByteArray& line : csv.split('\n')) {
    if (line.isEmpty() || line.startsWith('#')) {
      continue;
    }
    if (first) {
      *header = QString::fromUtf8(line);
      first = false;
      continue;
    }
    QStringList fields;
    QString field;
    bool quoted = false;
    for (const QChar c : QString::fromUtf8(line)) {
      if (c == QLatin1Char('"')) {
        quoted = !quoted;
      } else if (c == QLatin1Char(',') && !quoted) {
        fields << field;
        field.clear();
      } else {
        field += c;
      }
    }
    fields << field;
    rows.push_back(fields);
  }
  return rows;
}

QString exact(double v) {
  return QString::number(v, 'g', QLocale::FloatingPointShortest);
}

class LayerHeadFigureTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_dir.isValid());
    m_path = m_dir.filePath(QStringLiteral("run.h5"));
    test::writeSmallRun(m_path, /*withAnalysis=*/true);
    core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadWrite);
    // kd: 1 layer; its embeddings matched with the teacher's, its layer 1 with the teacher's 2.
    f.writeFloat(kAnalysis + "kd/cka_matched", {2}, {0.93F, 0.41F});
    f.writeFloat(kAnalysis + "kd/cka_matched_lo", {2}, {0.88F, 0.3F});
    f.writeFloat(kAnalysis + "kd/cka_matched_hi", {2}, {0.97F, 0.52F});
    f.writeInt64(kAnalysis + "kd/cka_matched_teacher_layer", {2}, {0, 2});
    f.setAttr(kAnalysis + "kd/cka_matched", "map", "uniform");
    f.setAttr(kAnalysis + "kd/cka_matched", "resamples", std::int64_t{500});
    // The teacher (2 layers x 2 heads; head_importance 0.1 0.9 / 0.6 0.4 from writeSmallRun).
    f.writeFloat(kAnalysis + "teacher/head_importance_lo", {2, 2}, {0.05F, 0.8F, 0.5F, 0.3F});
    f.writeFloat(kAnalysis + "teacher/head_importance_hi", {2, 2}, {0.2F, 0.95F, 0.7F, 0.5F});
    f.setAttr(kAnalysis + "teacher/head_importance_lo", "resamples", std::int64_t{2000});
    // Ablation, intact accuracy 4/6: heads L1H1 and L2H2 lower it detectably, L1H2 and L2H1 not.
    const double intact = 4.0 / 6.0;
    const std::vector<float> ablated = {0.5F, 4.0F / 6.0F, 0.7F, 0.6F};
    std::vector<float> drop;
    for (const float a : ablated) {
      drop.push_back(static_cast<float>(intact - a));
    }
    f.writeFloat(kAnalysis + "teacher/head_ablation_accuracy", {2, 2}, ablated);
    f.writeFloat(kAnalysis + "teacher/head_ablation_loss", {2, 2}, {0.9F, 0.7F, 0.68F, 0.75F});
    f.setAttr(kAnalysis + "teacher/head_ablation_accuracy", "intact", intact);
    f.setAttr(kAnalysis + "teacher/head_ablation_loss", "intact", 0.7);
    f.writeFloat(kAnalysis + "teacher/head_ablation_accuracy_drop", {2, 2}, drop);
    f.writeFloat(kAnalysis + "teacher/head_ablation_accuracy_drop_lo", {2, 2}, {0.05F, -0.1F, -0.1F, 0.01F});
    f.writeFloat(kAnalysis + "teacher/head_ablation_accuracy_drop_hi", {2, 2}, {0.3F, 0.1F, 0.02F, 0.12F});
    f.setAttr(kAnalysis + "teacher/head_ablation_accuracy_drop", "resamples", std::int64_t{2000});
  }
  /// A dataset as the file holds it, read here (not through AnalysisResults).
  std::vector<double> read(const std::string& path) const {
    const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
    const auto v = f.readFloat(kAnalysis + path);
    return {v.begin(), v.end()};
  }
  std::int64_t attrInt(const std::string& path, const char* name) const {
    const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
    return f.attrInt(kAnalysis + path, name);
  }
  std::size_t examples() const {
    const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
    return f.readInt64("/tasks/polarity/eval/labels").size();
  }
  /// The figure's CSV header and rows, built as `kdscope export` builds it.
  std::vector<QStringList> rowsOf(const FigureCatalog& catalog, const QString& name, QString* header,
                                  QString* caption = nullptr) const {
    const auto spec = catalog.find(name);
    if (!spec) {
      ADD_FAILURE() << "no figure " << name.toStdString();
      return {};
    }
    PlotWidget plot;
    spec->build(plot);
    EXPECT_EQ(plot.figureName(), name) << plot.message().toStdString();
    if (caption != nullptr) {
      *caption = spec->caption;
    }
    return csvRows(figureCsv(plot, *spec), header);
  }

  QTemporaryDir m_dir;
  QString m_path;
};

} // namespace

TEST_F(LayerHeadFigureTest, TheFiguresAreListedInTheirViewsWhenTheRunHasTheirNumbers) {
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  std::map<QString, QString> views;
  for (const FigureSpec& spec : catalog.select({QStringLiteral("all")})) {
    views[spec.name] = spec.view;
  }
  EXPECT_EQ(views[QStringLiteral("layers.cka_matched.polarity.kd")], QStringLiteral("layers"));
  EXPECT_EQ(views[QStringLiteral("heads.importance_intervals.polarity.teacher")], QStringLiteral("heads"));
  EXPECT_EQ(views[QStringLiteral("heads.ablation.polarity.teacher")], QStringLiteral("heads"));
  // kd's head importance has no interval in this file, kd has no ablation, ce no CKA at matched depth.
  EXPECT_EQ(views.count(QStringLiteral("heads.importance_intervals.polarity.kd")), 0U);
  EXPECT_EQ(views.count(QStringLiteral("heads.ablation.polarity.kd")), 0U);
  EXPECT_EQ(views.count(QStringLiteral("layers.cka_matched.polarity.ce")), 0U);
  // In the export order, each sits with its view's other figures (the index groups by view).
  QStringList order;
  for (const FigureSpec& spec : catalog.figures()) {
    order << spec.view;
  }
  const int matched = static_cast<int>(
      std::distance(catalog.figures().begin(),
                    std::find_if(catalog.figures().begin(), catalog.figures().end(), [](const FigureSpec& s) {
                      return s.name == QStringLiteral("layers.cka_matched.polarity.kd");
                    })));
  ASSERT_LT(matched, order.size());
  EXPECT_EQ(order.lastIndexOf(QStringLiteral("layers")), matched); // after layers.cka and layers.probe
  EXPECT_LT(order.lastIndexOf(QStringLiteral("layers")), order.indexOf(QStringLiteral("heads")));

  // A run without these results lists none of them.
  const QString plain = m_dir.filePath(QStringLiteral("plain.h5"));
  test::writeSmallRun(plain, /*withAnalysis=*/true);
  RunDocument plainRun(plain);
  const FigureCatalog plainCatalog({&plainRun});
  for (const FigureSpec& spec : plainCatalog.figures()) {
    EXPECT_FALSE(spec.name.startsWith(QStringLiteral("layers.cka_matched")) ||
                 spec.name.startsWith(QStringLiteral("heads.importance_intervals")) ||
                 spec.name.startsWith(QStringLiteral("heads.ablation")))
        << spec.name.toStdString();
  }
}

TEST_F(LayerHeadFigureTest, TheLayersAndHeadsViewsShowThemAndExportThemAsTheirViewsFigures) {
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  window.resize(1200, 900);
  window.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&window));
  ASSERT_TRUE(window.openRun(m_path, true));
  window.studentSelector()->setCurrentText(QStringLiteral("kd"));
  window.tabs()->setCurrentWidget(window.layers());
  EXPECT_EQ(window.layers()->ckaMatchedPlot()->figureName(), QStringLiteral("layers.cka_matched.polarity.kd"));
  EXPECT_TRUE(window.currentViewFigures().contains(QStringLiteral("layers.cka_matched.polarity.kd")))
      << window.currentViewFigures().join(' ').toStdString();
  window.tabs()->setCurrentWidget(window.heads());
  HeadsView* heads = window.heads();
  EXPECT_EQ(heads->importanceIntervalsPlot(false)->figureName(),
            QStringLiteral("heads.importance_intervals.polarity.teacher"));
  EXPECT_EQ(heads->ablationPlot(false)->figureName(), QStringLiteral("heads.ablation.polarity.teacher"));
  // kd has neither in this file: the plots say so and are not exported.
  EXPECT_TRUE(heads->importanceIntervalsPlot(true)->figureName().isEmpty());
  EXPECT_FALSE(heads->importanceIntervalsPlot(true)->message().isEmpty());
  EXPECT_TRUE(heads->ablationPlot(true)->figureName().isEmpty());
  const QStringList exported = window.currentViewFigures();
  EXPECT_TRUE(exported.contains(QStringLiteral("heads.importance_intervals.polarity.teacher")))
      << exported.join(' ').toStdString();
  EXPECT_TRUE(exported.contains(QStringLiteral("heads.ablation.polarity.teacher"))) << exported.join(' ').toStdString();
  EXPECT_FALSE(exported.contains(QStringLiteral("heads.ablation.polarity.kd")));
  // The view's plot is the export's figure: the same points as the catalog's build.
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  const auto spec = catalog.find(QStringLiteral("heads.ablation.polarity.teacher"));
  ASSERT_TRUE(spec.has_value());
  PlotWidget built;
  spec->build(built);
  EXPECT_EQ(figureCsv(*heads->ablationPlot(false), *spec), figureCsv(built, *spec));
}

TEST_F(LayerHeadFigureTest, CkaAtMatchedDepthCsvHoldsTheFilesIntervals) {
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  QString header;
  QString caption;
  const auto rows = rowsOf(catalog, QStringLiteral("layers.cka_matched.polarity.kd"), &header, &caption);
  EXPECT_EQ(header, QStringLiteral("series,index,x,x_label,y,y_lo,y_hi"));
  const auto cka = read("kd/cka_matched");
  const auto lo = read("kd/cka_matched_lo");
  const auto hi = read("kd/cka_matched_hi");
  ASSERT_EQ(rows.size(), cka.size());
  for (std::size_t i = 0; i < cka.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(rows[i].size(), 7);
    EXPECT_EQ(rows[i][2], exact(static_cast<double>(i))); // x = the student layer
    EXPECT_EQ(rows[i][3], i == 0 ? QStringLiteral("emb") : QString::number(i));
    EXPECT_EQ(rows[i][4], exact(cka[i]));
    EXPECT_EQ(rows[i][5], exact(lo[i]));
    EXPECT_EQ(rows[i][6], exact(hi[i]));
  }
  // The caption says which interval: over how many eval examples, and B as the file records it.
  const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
  const auto b = f.attrInt(kAnalysis + "kd/cka_matched", "resamples");
  const auto n = f.readInt64("/tasks/polarity/eval/labels").size();
  EXPECT_TRUE(caption.contains(
      QStringLiteral("95% percentile bootstrap interval over the %1 eval examples, B = %2").arg(n).arg(b)))
      << caption.toStdString();
  EXPECT_TRUE(caption.contains(QStringLiteral("emb~emb, 1~2"))) << caption.toStdString();
}

TEST_F(LayerHeadFigureTest, HeadImportanceCsvHoldsTheFilesIntervalsInLayerMajorOrder) {
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  QString header;
  QString caption;
  const auto rows =
      rowsOf(catalog, QStringLiteral("heads.importance_intervals.polarity.teacher"), &header, &caption);
  EXPECT_EQ(header, QStringLiteral("series,index,x,x_label,y,y_lo,y_hi"));
  const auto importance = read("teacher/head_importance");
  const auto lo = read("teacher/head_importance_lo");
  const auto hi = read("teacher/head_importance_hi");
  const QStringList labels = {QStringLiteral("L1H1"), QStringLiteral("L1H2"), QStringLiteral("L2H1"),
                              QStringLiteral("L2H2")};
  ASSERT_EQ(rows.size(), 4U);
  for (std::size_t c = 0; c < 4; ++c) {
    SCOPED_TRACE(c);
    ASSERT_EQ(rows[c].size(), 7);
    EXPECT_EQ(rows[c][2], exact(static_cast<double>(c)));
    EXPECT_EQ(rows[c][3], labels[static_cast<int>(c)]);
    EXPECT_EQ(rows[c][4], exact(importance[c]));
    EXPECT_EQ(rows[c][5], exact(lo[c]));
    EXPECT_EQ(rows[c][6], exact(hi[c]));
  }
  EXPECT_TRUE(caption.contains(QStringLiteral("bootstrap interval over the %1 eval examples, B = %2")
                                   .arg(examples())
                                   .arg(attrInt("teacher/head_importance_lo", "resamples"))))
      << caption.toStdString();
}

TEST_F(LayerHeadFigureTest, AblationPutsAHeadWhoseIntervalHoldsZeroInTheNoDetectableDifferenceSeries) {
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  QString header;
  QString caption;
  const auto rows = rowsOf(catalog, QStringLiteral("heads.ablation.polarity.teacher"), &header, &caption);
  EXPECT_EQ(header, QStringLiteral("series,index,x,x_label,y,y_lo,y_hi"));
  const auto drop = read("teacher/head_ablation_accuracy_drop");
  const auto lo = read("teacher/head_ablation_accuracy_drop_lo");
  const auto hi = read("teacher/head_ablation_accuracy_drop_hi");
  const QStringList labels = {QStringLiteral("L1H1"), QStringLiteral("L1H2"), QStringLiteral("L2H1"),
                              QStringLiteral("L2H2")};
  ASSERT_EQ(rows.size(), 4U);
  int notDetectable = 0;
  for (std::size_t c = 0; c < 4; ++c) {
    SCOPED_TRACE(c);
    // The row of head c, wherever its series put it.
    const auto row = std::find_if(rows.begin(), rows.end(), [&](const QStringList& r) {
      return r.size() == 7 && r[2] == exact(double(c));
    });
    ASSERT_NE(row, rows.end());
    EXPECT_EQ((*row)[3], labels[static_cast<int>(c)]);
    EXPECT_EQ((*row)[4], exact(drop[c]));
    EXPECT_EQ((*row)[5], exact(lo[c]));
    EXPECT_EQ((*row)[6], exact(hi[c]));
    const bool holdsZero = lo[c] <= 0.0 && 0.0 <= hi[c];
    notDetectable += holdsZero ? 1 : 0;
    EXPECT_EQ((*row)[0], holdsZero ? QStringLiteral("accuracy drop (no detectable difference)")
                                   : QStringLiteral("accuracy drop"));
  }
  EXPECT_EQ(notDetectable, 2); // L1H2 and L2H1, as written in SetUp
  EXPECT_TRUE(caption.contains(
      QStringLiteral("paired percentile bootstrap interval over the %1 eval examples, B = %2")
          .arg(examples())
          .arg(attrInt("teacher/head_ablation_accuracy_drop", "resamples"))))
      << caption.toStdString();
  // The drop is the file's intact minus ablated accuracy.
  const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
  const double intact = f.attrDouble(kAnalysis + "teacher/head_ablation_accuracy", "intact");
  const auto ablated = read("teacher/head_ablation_accuracy");
  for (std::size_t c = 0; c < 4; ++c) {
    EXPECT_NEAR(drop[c], intact - ablated[c], 1e-6);
  }
  // The plot draws the dashed line at 0 (not a CSV row).
  PlotWidget plot;
  catalog.find(QStringLiteral("heads.ablation.polarity.teacher"))->build(plot);
  EXPECT_EQ(plot.referenceLines(), QVector<double>{0.0});
}
