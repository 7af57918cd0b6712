// The window shows the intervals, paired tests and loss pattern exactly as `kdscope analyze`
// wrote them: the small run of test_run_file.cpp (6 eval examples, worked by hand there),
// analysed ("task"), then every number a view shows compared with the attribute read from the
// file here with H5File, and the hand-worked counts and tests:
//   kd against the teacher: only kd right {4} = 1, only the teacher right {0, 3} = 2, so the
//   exact McNemar p = 2 P(X <= 1 | Bin(3, 1/2)) = 1; kd against ce: 1 ({1}) and 1 ({0}), p = 1.
//   Loss pattern of kd: lost {0, 3}; the teacher's confidence sigmoid(2), sigmoid(3) there and
//   sigmoid(1) x 3, sigmoid(0.5) elsewhere: every lost value above every other, U = 8, r = +1,
//   but with 2 lost examples (and a tie of 3) the normal approximation gives z = 3.5 /
//   sqrt(8/12 (7 - 24/30)), p = 0.085: "no detectable difference" although r's stratified
//   interval is [1, 1]. Every input is 2 tokens long: r = 0 with a [0, 0] interval.
#include <QFont>
#include <QLabel>
#include <QTableWidget>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/analysis/analyze_run.h"
#include "core/analysis/interval_text.h"
#include "core/record/h5_file.h"
#include "test_run_file.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/views/examples_view.h"
#include "widgets/views/overview_view.h"
#include "widgets/views/tasks_view.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

class IntervalViewTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_dir.isValid());
    m_path = m_dir.filePath(QStringLiteral("run.h5"));
    test::writeSmallRun(m_path, false);
    core::AnalyzeOptions options;
    options.only = {"task"};
    const auto result = core::analyzeRun(m_path.toStdString(), options, core::CancelToken{}, {});
    ASSERT_EQ(result.status, core::AnalyzeStatus::Succeeded) << result.message;
  }
  /// An attribute as the file holds it (read here, not through AnalysisResults).
  double attr(const std::string& group, const std::string& name) const {
    const core::H5File f(m_path.toStdString(), core::H5File::Mode::ReadOnly);
    return f.attrDouble("/tasks/polarity/analysis/" + group, name);
  }
  /// "estimate [lo, hi]" with 4 decimals from the file's attributes.
  QString expected(const std::string& group, const std::string& metric, bool sign = false) const {
    const auto n = [sign](double v) {
      return (sign && v > 0 ? QStringLiteral("+") : QString()) + QString::number(v, 'f', 4);
    };
    return QStringLiteral("%1 [%2, %3]")
        .arg(n(attr(group, metric)), n(attr(group, metric + "_lo")), n(attr(group, metric + "_hi")));
  }
  static QString cell(const QTableWidget* table, int row, int column) {
    const QTableWidgetItem* item = table->item(row, column);
    return item == nullptr ? QString() : item->text();
  }
  ViewContext context(const RunDocument& run) const {
    return ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd")};
  }
  QTemporaryDir m_dir;
  QString m_path;
};

} // namespace

TEST_F(IntervalViewTest, TasksViewShowsTheIntervalsAndPairedTestsTheAnalysisWrote) {
  RunDocument run(m_path);
  TasksView view;
  view.setContext(context(run));
  ASSERT_TRUE(view.errorText().isEmpty()) << view.errorText().toStdString();
  QTableWidget* table = view.table();
  ASSERT_EQ(table->rowCount(), 1);
  EXPECT_EQ(cell(table, 0, TasksView::ColStudent), expected("kd/intervals", "accuracy"));
  EXPECT_TRUE(cell(table, 0, TasksView::ColStudent).startsWith(QStringLiteral("0.5000 ["))); // 3 of 6
  EXPECT_EQ(cell(table, 0, TasksView::ColTeacher), expected("kd/intervals", "teacher_accuracy"));
  EXPECT_EQ(cell(table, 0, TasksView::ColGap), expected("kd/intervals", "gap"));
  EXPECT_EQ(cell(table, 0, TasksView::ColRetained), expected("kd/intervals", "retained_fraction"));
  EXPECT_EQ(cell(table, 0, TasksView::ColAgreement), expected("kd/intervals", "agreement"));
  EXPECT_EQ(cell(table, 0, TasksView::ColKl), expected("kd/intervals", "mean_kl"));
  EXPECT_EQ(cell(table, 0, TasksView::ColStudentEce), expected("kd/intervals", "ece"));
  EXPECT_EQ(cell(table, 0, TasksView::ColTeacherEce), expected("kd/intervals", "teacher_ece"));
  // The gap of 1/6 on 6 examples cannot be told from 0: marked as such.
  ASSERT_LE(attr("kd/intervals", "gap_lo"), 0.0);
  EXPECT_TRUE(table->item(0, TasksView::ColGap)->font().italic());
  EXPECT_TRUE(table->item(0, TasksView::ColGap)->toolTip().contains(QStringLiteral("no detectable difference")));
  EXPECT_FALSE(table->item(0, TasksView::ColStudent)->font().italic());
  // McNemar p = 1 (1 vs 2 discordant); Holm never lowers a p, so its Holm p is 1 as well.
  EXPECT_EQ(cell(table, 0, TasksView::ColVsTeacher), QStringLiteral("p = 1, Holm p = 1 (1 vs 2), no detectable difference"));
  EXPECT_TRUE(view.intervalNote()->text().contains(QStringLiteral("(6 on polarity; B = 2000, seed 14)")))
      << view.intervalNote()->text().toStdString();

  QTableWidget* paired = view.pairedTable();
  ASSERT_EQ(paired->rowCount(), 2);
  EXPECT_EQ(cell(paired, 0, TasksView::PairOther), QStringLiteral("teacher (teacher)"));
  EXPECT_EQ(cell(paired, 0, TasksView::PairDifference), expected("kd/paired/teacher", "accuracy_difference", true));
  EXPECT_EQ(cell(paired, 0, TasksView::PairOnlyStudent), QStringLiteral("1"));
  EXPECT_EQ(cell(paired, 0, TasksView::PairOnlyOther), QStringLiteral("2"));
  EXPECT_EQ(cell(paired, 0, TasksView::PairMcNemar), QStringLiteral("1"));
  EXPECT_EQ(cell(paired, 0, TasksView::PairHolm), QStringLiteral("1"));
  EXPECT_TRUE(paired->item(0, TasksView::PairHolm)->font().italic());
  EXPECT_EQ(cell(paired, 0, TasksView::PairVerdict), QStringLiteral("no detectable difference"));
  EXPECT_TRUE(paired->item(0, TasksView::PairVerdict)->font().italic());
  EXPECT_EQ(cell(paired, 1, TasksView::PairOther), QStringLiteral("ce"));
  EXPECT_EQ(cell(paired, 1, TasksView::PairOnlyStudent), QStringLiteral("1"));
  EXPECT_EQ(cell(paired, 1, TasksView::PairOnlyOther), QStringLiteral("1"));
  EXPECT_EQ(cell(paired, 1, TasksView::PairDifference), expected("kd/paired/ce", "accuracy_difference", true));

  // The accuracy plot: teacher, ce, kd with the file's interval ends as error bars.
  PlotWidget* plot = view.accuracyPlot();
  ASSERT_EQ(plot->series().size(), 1);
  const PlotSeries& s = plot->series()[0];
  ASSERT_EQ(s.y.size(), 3);
  EXPECT_EQ(plot->xTickLabels(), (QStringList{QStringLiteral("teacher"), QStringLiteral("ce"), QStringLiteral("kd")}));
  EXPECT_DOUBLE_EQ(s.y[0], 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.lower[0], attr("teacher/intervals", "accuracy_lo"));
  EXPECT_DOUBLE_EQ(s.upper[0], attr("teacher/intervals", "accuracy_hi"));
  EXPECT_DOUBLE_EQ(s.lower[2], attr("kd/intervals", "accuracy_lo"));
  EXPECT_DOUBLE_EQ(s.upper[2], attr("kd/intervals", "accuracy_hi"));
  EXPECT_EQ(plot->figureName(), QStringLiteral("tasks.accuracy.polarity"));
}

TEST_F(IntervalViewTest, OverviewTableHasTheIntervalColumns) {
  RunDocument run(m_path);
  OverviewView view;
  view.setContext(context(run));
  QTableWidget* table = view.accuracyTable();
  ASSERT_EQ(table->rowCount(), 3);
  const auto ends = [this](const std::string& group, const std::string& metric) {
    return QStringLiteral("[%1, %2]")
        .arg(QString::number(attr(group, metric + "_lo"), 'f', 4), QString::number(attr(group, metric + "_hi"), 'f', 4));
  };
  EXPECT_EQ(cell(table, 0, OverviewView::ColAccuracyInterval), ends("teacher/intervals", "accuracy"));
  EXPECT_EQ(cell(table, 0, OverviewView::ColGapInterval), QStringLiteral("-"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColAccuracyInterval), ends("kd/intervals", "accuracy"));
  EXPECT_EQ(cell(table, 2, OverviewView::ColGapInterval), ends("kd/intervals", "gap") + " no detectable difference");
  // The retained fraction carries its interval; the teacher's empty cells say why.
  EXPECT_EQ(cell(table, 2, OverviewView::ColRetained),
            QString::number(attr("kd/intervals", "retained_fraction"), 'f', 4) + " " + ends("kd/intervals", "retained_fraction"));
  EXPECT_EQ(table->item(0, OverviewView::ColGapInterval)->toolTip(), QStringLiteral("the teacher has no gap or retained fraction"));
}

TEST_F(IntervalViewTest, ExamplesViewShowsTheLossPattern) {
  RunDocument run(m_path);
  ExamplesView view;
  view.resize(1200, 800);
  view.setContext(context(run));
  ASSERT_TRUE(view.errorText().isEmpty()) << view.errorText().toStdString();
  EXPECT_TRUE(view.lossPatternSummary()->text().contains(QStringLiteral("2 lost examples")))
      << view.lossPatternSummary()->text().toStdString();
  QTableWidget* table = view.lossPatternTable();
  // Three factors, the gold class, then one row per class.
  ASSERT_EQ(table->rowCount(), 6);
  EXPECT_EQ(cell(table, 0, ExamplesView::LossFactor), QStringLiteral("teacher confidence"));
  const auto r = [this](const std::string& factor) {
    const std::string g = "kd/loss_pattern/" + factor;
    const auto n = [](double v) { return (v > 0 ? QStringLiteral("+") : QString()) + QString::number(v, 'f', 3); };
    return QStringLiteral("r = %1 [%2, %3]")
        .arg(n(attr(g, "rank_biserial")), n(attr(g, "rank_biserial_lo")), n(attr(g, "rank_biserial_hi")));
  };
  EXPECT_EQ(cell(table, 0, ExamplesView::LossEffect), r("teacher_confidence"));
  EXPECT_TRUE(cell(table, 0, ExamplesView::LossEffect).startsWith(QStringLiteral("r = +1.000 ["))); // U = 8 by hand
  const double z = 3.5 / std::sqrt(8.0 / 12.0 * (7.0 - 24.0 / 30.0));
  EXPECT_EQ(cell(table, 0, ExamplesView::LossP), QString::number(std::erfc(z / std::sqrt(2.0)), 'f', 3));
  EXPECT_EQ(cell(table, 0, ExamplesView::LossP), QStringLiteral("0.085"));
  EXPECT_EQ(cell(table, 0, ExamplesView::LossVerdict), QStringLiteral("no detectable difference"));
  EXPECT_EQ(cell(table, 2, ExamplesView::LossFactor), QStringLiteral("input length"));
  EXPECT_EQ(cell(table, 2, ExamplesView::LossEffect), QStringLiteral("r = 0.000 [0.000, 0.000]"));
  EXPECT_EQ(cell(table, 2, ExamplesView::LossVerdict), QStringLiteral("no detectable difference"));
  EXPECT_TRUE(table->item(2, ExamplesView::LossVerdict)->font().italic());
  EXPECT_EQ(cell(table, 3, ExamplesView::LossFactor), QStringLiteral("gold class"));
  EXPECT_EQ(cell(table, 4, ExamplesView::LossFactor), QStringLiteral("class neg"));
  EXPECT_EQ(cell(table, 4, ExamplesView::LossLost), QStringLiteral("1")); // example 0
  EXPECT_EQ(cell(table, 4, ExamplesView::LossRest), QStringLiteral("2")); // 2, 4
  EXPECT_EQ(cell(table, 5, ExamplesView::LossLost), QStringLiteral("1")); // example 3
  EXPECT_EQ(cell(table, 5, ExamplesView::LossRest), QStringLiteral("2")); // 1, 5
  // Holm p: the pattern's family (3 Mann-Whitney tests, the chi-square, the converged fit's
  // factor slopes) adjusted here by hand from the raw p's; the per-class Fisher rows are not in it.
  {
    const auto lp = run.lossPattern(QStringLiteral("polarity"), QStringLiteral("kd"));
    ASSERT_TRUE(lp.has_value());
    std::vector<double> raw;
    for (const auto& f : lp->factors) {
      raw.push_back(f.test.pValue);
    }
    raw.push_back(lp->goldClass.chiSquare.pValue);
    for (const auto& t : lp->logistic.terms) {
      if (lp->logistic.converged && t.name != "intercept" && t.name.rfind("class:", 0) != 0) {
        raw.push_back(t.coefficient.pValue);
      }
    }
    std::vector<double> sorted = raw;
    std::sort(sorted.begin(), sorted.end());
    std::vector<double> adjusted;
    double running = 0.0;
    for (std::size_t k = 0; k < sorted.size(); ++k) {
      running = std::max(running, static_cast<double>(sorted.size() - k) * sorted[k]);
      adjusted.push_back(std::min(1.0, running));
    }
    for (int row = 0; row < 4; ++row) {
      const double p = raw[static_cast<std::size_t>(row)];
      const auto at = std::find(sorted.begin(), sorted.end(), p) - sorted.begin();
      EXPECT_EQ(cell(table, row, ExamplesView::LossHolmP),
                QString::fromStdString(kdscope::core::analysis::pValueText(adjusted[static_cast<std::size_t>(at)])))
          << row;
      EXPECT_TRUE(table->item(row, ExamplesView::LossHolmP)
                      ->toolTip()
                      .startsWith(QStringLiteral("Holm-adjusted over %1 tests").arg(raw.size())));
    }
    EXPECT_EQ(cell(table, 4, ExamplesView::LossHolmP), QStringLiteral("-"));
    EXPECT_EQ(cell(table, 5, ExamplesView::LossHolmP), QStringLiteral("-"));
    // A logistic slope is marked "n.d." exactly when its interval holds 0 or its Holm p (over
    // the family above) is not below 0.05; decided here from the file's numbers.
    for (int row = 0; row < 3; ++row) {
      const std::string name = lp->factors[static_cast<std::size_t>(row)].name;
      const auto term = std::find_if(lp->logistic.terms.begin(), lp->logistic.terms.end(),
                                     [&](const auto& t) { return t.name == name; });
      if (!lp->logistic.converged || term == lp->logistic.terms.end()) {
        EXPECT_EQ(cell(table, row, ExamplesView::LossLogistic), QStringLiteral("-")) << row;
        continue;
      }
      const auto& c = term->coefficient;
      const auto at = std::find(sorted.begin(), sorted.end(), c.pValue) - sorted.begin();
      const double holm = adjusted[static_cast<std::size_t>(at)];
      const bool holdsZero = c.value.lo <= 0.0 && 0.0 <= c.value.hi;
      const bool nd = holdsZero || !(holm < 0.05);
      EXPECT_EQ(cell(table, row, ExamplesView::LossLogistic).endsWith(QStringLiteral(" n.d.")), nd)
          << row << " " << cell(table, row, ExamplesView::LossLogistic).toStdString();
      EXPECT_EQ(table->item(row, ExamplesView::LossLogistic)->font().italic(), nd) << row;
    }
  }
  // The plot: one point per factor with the file's interval, all three in the series of
  // effects that are not detectable.
  PlotWidget* plot = view.lossPatternPlot();
  EXPECT_EQ(plot->figureName(), QStringLiteral("examples.loss_pattern.polarity.kd"));
  ASSERT_EQ(plot->series().size(), 1);
  EXPECT_EQ(plot->series()[0].name, QStringLiteral("rank-biserial r (no detectable difference)"));
  ASSERT_EQ(plot->series()[0].y.size(), 3);
  EXPECT_EQ(plot->series()[0].y[0], 1.0);
  EXPECT_EQ(plot->series()[0].lower[0], attr("kd/loss_pattern/teacher_confidence", "rank_biserial_lo"));
  EXPECT_EQ(plot->series()[0].upper[2], attr("kd/loss_pattern/input_length", "rank_biserial_hi"));
  EXPECT_EQ(plot->referenceLines(), QVector<double>{0.0});
  EXPECT_TRUE(view.lossPatternSummary()->text().contains(QStringLiteral("Few lost examples")));
}

TEST_F(IntervalViewTest, ExportedFiguresCarryTheIntervalsInTheirCsv) {
  RunDocument run(m_path);
  const FigureCatalog catalog({&run});
  for (const QString& name : {QStringLiteral("tasks.accuracy.polarity"), QStringLiteral("tasks.gap.polarity"),
                              QStringLiteral("examples.loss_pattern.polarity.kd")}) {
    SCOPED_TRACE(name.toStdString());
    const auto spec = catalog.find(name);
    ASSERT_TRUE(spec.has_value());
    PlotWidget plot;
    spec->build(plot);
    const QString csv = QString::fromUtf8(figureCsv(plot, *spec));
    EXPECT_TRUE(csv.contains(QStringLiteral("series,index,x,x_label,y,y_lo,y_hi\n"))) << csv.toStdString();
  }
  // The accuracy rows: the file's ends, exactly (shortest round-trip decimals).
  const auto spec = catalog.find(QStringLiteral("tasks.accuracy.polarity"));
  PlotWidget plot;
  spec->build(plot);
  const QString csv = QString::fromUtf8(figureCsv(plot, *spec));
  const QString teacherRow = QStringLiteral(",0,0,teacher,%1,%2,%3\n")
                                 .arg(QString::number(attr("teacher/intervals", "accuracy"), 'g', QLocale::FloatingPointShortest),
                                      QString::number(attr("teacher/intervals", "accuracy_lo"), 'g', QLocale::FloatingPointShortest),
                                      QString::number(attr("teacher/intervals", "accuracy_hi"), 'g', QLocale::FloatingPointShortest));
  EXPECT_TRUE(csv.contains(teacherRow)) << teacherRow.toStdString() << "\n" << csv.toStdString();
  EXPECT_TRUE(spec->caption.contains(QStringLiteral("95% percentile bootstrap interval over the 6 eval examples")))
      << spec->caption.toStdString();
  // The gap: kd's and ce's gaps both hold 0 on 6 examples, drawn in the series named so.
  const auto gap = catalog.find(QStringLiteral("tasks.gap.polarity"));
  PlotWidget gapPlot;
  gap->build(gapPlot);
  ASSERT_EQ(gapPlot.series().size(), 1);
  EXPECT_EQ(gapPlot.series()[0].name, QStringLiteral("gap (no detectable difference)"));
}
