#include "widgets/views/study_sensitivity_table.h"

#include <QHeaderView>
#include <QTableWidget>

#include <cmath>

#include "core/analysis/interval_text.h"
#include "core/analysis/multiple_testing.h"
#include "core/study/summary.h"
#include "core/study/task_sensitivity.h"

namespace kdscope::widgets {

void setUpSensitivityTable(QTableWidget& table) {
  table.setColumnCount(SensColumns);
  table.setHorizontalHeaderLabels({QObject::tr("compression"), QObject::tr("rank"), QObject::tr("task"),
                                   QObject::tr("slope"), QObject::tr("95% interval"), QObject::tr("cells"),
                                   QObject::tr("interval over"), QObject::tr("against the next rank")});
  table.horizontalHeader()->setStretchLastSection(true);
  table.setEditTriggers(QAbstractItemView::NoEditTriggers);
  table.setToolTip(QObject::tr("Slope of the retained fraction (student / teacher accuracy) per unit of the "
                               "compression ratio (student / teacher parameters, layers or heads per layer), "
                               "least squares over the complete cells. Rank 1 = steepest = most sensitive."));
}

void fillSensitivityTable(QTableWidget& table, const core::StudySummary& summary) {
  table.setRowCount(0);
  const auto number = [](double v) { return std::isfinite(v) ? QString::number(v, 'f', 4) : QStringLiteral("-"); };
  // Each rank against the next (paired over replicates; Holm within each measure).
  const bool replicated = !summary.replicates.empty();
  const std::vector<core::AdjacentRankComparison> comparisons = core::adjacentRankComparisons(summary);
  const auto againstNext = [&](const core::TaskSensitivity& s) -> QString {
    if (s.rank <= 0) {
      return QStringLiteral("-");
    }
    if (!replicated) {
      return QObject::tr("not tested: one run per cell, the ranks are point estimates");
    }
    for (const core::AdjacentRankComparison& c : comparisons) {
      if (c.measure == s.measure && c.rank == s.rank) {
        const core::analysis::Interval& d = c.difference.difference;
        const QString numbers =
            QStringLiteral("%1 %2, %3")
                .arg(QString::fromStdString(core::analysis::intervalText(d, 4, true)))
                .arg(QObject::tr("over %1 replicates").arg(d.count))
                .arg(QString::fromStdString(core::analysis::pValuesText(c.difference.pValue, c.holm, "paired t p")));
        return c.distinguishable
                   ? QObject::tr("steeper than %1 by %2").arg(QString::fromStdString(c.next), numbers)
                   : QObject::tr("no detectable difference from %1: %2").arg(QString::fromStdString(c.next), numbers);
      }
    }
    return QObject::tr("- (the last rank)");
  };
  for (const std::string& measure : core::compressionMeasures()) {
    for (const core::TaskSensitivity& s : core::rankedSensitivity(summary.sensitivity, measure)) {
      const int row = table.rowCount();
      table.insertRow(row);
      const auto cell = [&](int col, const QString& text) { table.setItem(row, col, new QTableWidgetItem(text)); };
      cell(SensMeasure, QString::fromStdString(s.measure));
      cell(SensRank, s.rank > 0 ? QString::number(s.rank) : QStringLiteral("-"));
      cell(SensTask, QString::fromStdString(s.task));
      cell(SensSlope, std::isfinite(s.slope.estimate) ? number(s.slope.estimate)
                                                      : QObject::tr("- (not varied by the study)"));
      QString interval = QStringLiteral("%1 to %2").arg(number(s.slope.lo), number(s.slope.hi));
      if (std::isfinite(s.slope.lo) && s.slope.holdsZero()) {
        interval += QObject::tr(" (holds 0: no detectable slope)");
      }
      cell(SensInterval, interval);
      cell(SensCells, QString::number(s.cells));
      cell(SensOver, s.slope.resamples > 0 ? QStringLiteral("%1, B = %2, %3 examples")
                                                 .arg(QString::fromStdString(s.slope.over))
                                                 .arg(s.slope.resamples)
                                                 .arg(s.slope.count)
                                           : QObject::tr("%1, %2 replicates")
                                                 .arg(QString::fromStdString(s.slope.over))
                                                 .arg(s.slope.count));
      cell(SensNext, againstNext(s));
    }
  }
}

} // namespace kdscope::widgets
