// Figures of the intervals and tests the "task" analysis writes (docs/statistics.md): each
// model's accuracy with its 95% error bar, each student's gap to the teacher (a gap whose
// interval holds 0 in its own series, "no detectable difference"), and where a student's
// lost examples are (rank-biserial r of each factor). Declared in figure_builders.h; their
// CSVs carry the interval's ends (y_lo, y_hi).
#include <QObject>

#include <cmath>

#include "core/analysis/interval_text.h"
#include "core/analysis/loss_pattern.h"
#include "core/analysis/task_intervals.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/analysis_view.h"

namespace kdscope::widgets::figures {

namespace {

namespace an = core::analysis;

QString tr(const char* text) { return QObject::tr(text); }

/// A difference at a category, with the p of the test beside it (NaN: none).
struct Difference {
  int at = 0;
  an::Interval interval;
  double pValue = std::nan("");
};

/// Differences: those not detectable (interval holds 0, or p >= 0.05) go to their own
/// series, named as such.
void addDifferences(PlotWidget& plot, const QString& name, const std::vector<Difference>& values) {
  IntervalPoints detectable;
  IntervalPoints not_;
  for (const Difference& d : values) {
    (an::detectable(d.interval, d.pValue) ? detectable : not_).add(d.at, d.interval);
  }
  addIntervalPoints(plot, name, detectable, 1);
  addIntervalPoints(plot, tr("%1 (%2)").arg(name, noDetectableDifference()), not_, 2);
  plot.addReferenceLine(0.0);
}

} // namespace

void addIntervalPoints(PlotWidget& plot, const QString& name, const IntervalPoints& points, int color) {
  if (points.x.isEmpty()) {
    return;
  }
  const int line = plot.addScatter(name, points.x, points.y, color, 5.0);
  plot.setErrorBars(line, points.lo, points.hi);
}

QString taskAccuracyName(const QString& task) {
  return QStringLiteral("tasks.accuracy.") + figureSegment(task);
}

void buildTaskAccuracy(PlotWidget& plot, const RunDocument& run, const QString& task) {
  plot.clear();
  plot.setTitle(tr("Eval accuracy with 95% intervals, %1").arg(task));
  plot.setAxisLabels(tr("model"), tr("accuracy"));
  QStringList models{run.teacherOf(task)};
  models << run.studentsOf(task);
  IntervalPoints points;
  QStringList labels;
  for (const QString& model : models) {
    const auto intervals = model.isEmpty() ? std::nullopt : run.intervals(task, model);
    const an::Interval* accuracy = intervals ? intervals->find(an::metric::kAccuracy) : nullptr;
    if (accuracy != nullptr) {
      points.add(static_cast<int>(labels.size()), *accuracy);
      labels << model;
    }
  }
  if (labels.isEmpty()) {
    plot.setMessage(tr("no intervals yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  addIntervalPoints(plot, tr("accuracy, 95% interval"), points, 0);
  plot.setXTickLabels(labels);
  plot.rescale();
  plot.setFigureName(taskAccuracyName(task));
}

QString taskGapName(const QString& task) { return QStringLiteral("tasks.gap.") + figureSegment(task); }

void buildTaskGap(PlotWidget& plot, const RunDocument& run, const QString& task) {
  plot.clear();
  plot.setTitle(tr("Gap to the teacher with 95% intervals, %1").arg(task));
  plot.setAxisLabels(tr("student"), tr("teacher accuracy - student accuracy"));
  std::vector<Difference> gaps;
  QStringList labels;
  for (const QString& student : run.studentsOf(task)) {
    const auto intervals = run.intervals(task, student);
    const an::Interval* gap = intervals ? intervals->find(an::metric::kGap) : nullptr;
    if (gap != nullptr) {
      Difference d{static_cast<int>(labels.size()), *gap};
      for (const core::PairedTest& test : run.pairedTests(task, student)) {
        d.pValue = test.otherRole == "teacher" ? an::verdictP(test.comparison.mcnemarP, test.mcnemarHolm) : d.pValue;
      }
      gaps.push_back(d);
      labels << student;
    }
  }
  if (labels.isEmpty()) {
    plot.setMessage(tr("no intervals yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  addDifferences(plot, tr("gap"), gaps);
  plot.setXTickLabels(labels);
  plot.rescale();
  plot.setFigureName(taskGapName(task));
}

QString lossPatternName(const QString& task, const QString& student) {
  return QStringLiteral("examples.loss_pattern.") + figureSegment(task) + QLatin1Char('.') + figureSegment(student);
}

void buildLossPattern(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& student) {
  plot.clear();
  plot.setTitle(tr("Lost examples (teacher right, %1 wrong) against the rest, %2").arg(student, task));
  plot.setAxisLabels(tr("factor"), tr("rank-biserial r (lost vs rest)"));
  const auto lp = student.isEmpty() ? std::nullopt : run.lossPattern(task, student);
  if (!lp) {
    plot.setMessage(tr("no loss pattern yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  if (lp->factors.empty()) {
    plot.setMessage(QString::fromStdString(lp->note));
    return;
  }
  std::vector<Difference> effects;
  QStringList labels;
  for (const an::ContinuousFactor& f : lp->factors) {
    effects.push_back({static_cast<int>(labels.size()), f.test.rankBiserial, an::verdictP(f.test.pValue, f.holm)});
    labels << QString::fromStdString(f.name).replace(QLatin1Char('_'), QLatin1Char(' '));
  }
  addDifferences(plot, tr("rank-biserial r"), effects);
  plot.setXTickLabels(labels);
  plot.rescale();
  plot.setFigureName(lossPatternName(task, student));
}

} // namespace kdscope::widgets::figures
