#include "widgets/views/tasks_view.h"

#include <QBrush>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <optional>

#include "core/analysis/interval_text.h"
#include "core/analysis/metrics.h"
#include "core/analysis/task_intervals.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

namespace {

namespace an = core::analysis;

QTableWidget* makeTable(int columns, const QStringList& headers, const QString& name, QWidget* parent) {
  auto* table = new QTableWidget(0, columns, parent);
  table->setObjectName(name);
  table->setHorizontalHeaderLabels(headers);
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  table->verticalHeader()->hide();
  table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table->setSortingEnabled(false);
  return table;
}

/// Italic and grey, with the reason in the tooltip: a difference the data cannot tell from 0.
void markNotDetectable(QTableWidgetItem* item) {
  QFont font = item->font();
  font.setItalic(true);
  item->setFont(font);
  item->setForeground(QBrush(QColor(110, 110, 110)));
  item->setToolTip(item->toolTip() + QObject::tr("\n%1: the 95% interval holds 0").arg(noDetectableDifference()));
}

/// `difference`: marked when not detectable (its interval holds 0, or the test's p beside it
/// is 0.05 or more).
QTableWidgetItem* numberCell(double value, const an::Interval* interval, bool difference = false,
                             double pValue = std::nan("")) {
  auto* cell = new QTableWidgetItem(formatInterval(value, interval));
  cell->setToolTip(interval != nullptr ? intervalTooltip(*interval) : QString::number(value, 'g', 17));
  if (difference && interval != nullptr && !an::detectable(*interval, pValue)) {
    markNotDetectable(cell);
  }
  return cell;
}

} // namespace

TasksView::TasksView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Vertical, body());
  auto* top = new QWidget(split);
  auto* topLayout = new QVBoxLayout(top);
  topLayout->setContentsMargins(0, 0, 0, 0);
  m_table = makeTable(ColumnCount,
                      {tr("Task"), tr("Teacher acc."), tr("Student acc."), tr("Gap"), tr("Retained"), tr("Agreement"),
                       tr("KL(p||q)"), tr("ECE teacher"), tr("ECE student"), tr("vs teacher (McNemar)")},
                      QStringLiteral("tasksTable"), top);
  topLayout->addWidget(m_table, 2);
  m_note = new QLabel(top);
  m_note->setObjectName(QStringLiteral("tasksIntervalNote"));
  m_note->setWordWrap(true);
  topLayout->addWidget(m_note);
  m_paired = makeTable(PairedColumnCount,
                       {tr("Compared with"), tr("Accuracy difference [95% CI]"), tr("Only student right"),
                        tr("Only other right"), tr("McNemar p"), tr("Holm p"), tr("Bootstrap p"), tr("Verdict")},
                       QStringLiteral("tasksPairedTable"), top);
  topLayout->addWidget(m_paired, 1);
  auto* plots = new QSplitter(Qt::Horizontal, split);
  m_accuracy = new PlotWidget(plots);
  m_accuracy->setObjectName(QStringLiteral("tasksAccuracyPlot"));
  m_recall = new PlotWidget(plots);
  m_recall->setObjectName(QStringLiteral("tasksRecallPlot"));
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  split->setSizes({1000, 1000}); // the tables' size hints would leave the plots a strip
  layout->addWidget(split);
}

void TasksView::clearView() {
  m_table->setRowCount(0);
  m_paired->setRowCount(0);
  m_note->clear();
  m_accuracy->clear();
  m_recall->clear();
}

void TasksView::populate() {
  const RunDocument& run = *context().run;
  const QString& student = context().student;
  int row = 0;
  std::optional<core::ModelIntervals> shownIntervals; // the selected task's, else the first task's
  QString shownTask;
  for (const QString& task : run.taskNames()) {
    const QString teacher = run.teacherOf(task);
    if (teacher.isEmpty() || student.isEmpty() || !run.studentsOf(task).contains(student)) {
      continue;
    }
    const std::vector<float>& t = run.logits(task, teacher);
    const std::vector<float>& s = run.logits(task, student);
    if (t.empty() || s.empty()) {
      continue;
    }
    const auto c = core::analysis::compareTask(t, s, run.labels(task), run.numClasses(task));
    const auto intervals = run.intervals(task, student);
    const auto find = [&intervals](const char* metric) {
      return intervals ? intervals->find(metric) : nullptr;
    };
    if (intervals && (!shownIntervals || task == context().task)) {
      shownIntervals = intervals;
      shownTask = task;
    }
    std::optional<core::PairedTest> vsTeacher;
    for (core::PairedTest& test : run.pairedTests(task, student)) {
      if (test.otherRole == "teacher") {
        vsTeacher = std::move(test);
      }
    }
    // Verdicts use the McNemar p Holm-adjusted over the task's paired tests.
    const double mcnemarP = vsTeacher ? an::verdictP(vsTeacher->comparison.mcnemarP, vsTeacher->mcnemarHolm) : std::nan("");
    m_table->insertRow(row);
    m_table->setItem(row, ColTask, new QTableWidgetItem(task));
    m_table->setItem(row, ColTeacher, numberCell(c.teacherAccuracy, find(an::metric::kTeacherAccuracy)));
    m_table->setItem(row, ColStudent, numberCell(c.studentAccuracy, find(an::metric::kAccuracy)));
    m_table->setItem(row, ColGap, numberCell(c.gap, find(an::metric::kGap), /*difference=*/true, mcnemarP));
    m_table->setItem(row, ColRetained, numberCell(c.retainedFraction, find(an::metric::kRetainedFraction)));
    m_table->setItem(row, ColAgreement, numberCell(c.agreement, find(an::metric::kAgreement)));
    m_table->setItem(row, ColKl, numberCell(c.meanKl, find(an::metric::kMeanKl)));
    m_table->setItem(row, ColTeacherEce, numberCell(c.teacherEce, find(an::metric::kTeacherEce)));
    m_table->setItem(row, ColStudentEce, numberCell(c.studentEce, find(an::metric::kEce)));
    QString vsText = QStringLiteral("-");
    bool detectable = true;
    if (vsTeacher) {
      const an::CorrectnessComparison& cmp = vsTeacher->comparison;
      detectable = an::detectable(cmp.accuracyDifference.difference, mcnemarP);
      vsText = tr("p = %1%2 (%3 vs %4)%5")
                   .arg(formatP(cmp.mcnemarP))
                   .arg(std::isfinite(vsTeacher->mcnemarHolm.p) ? tr(", Holm p = %1").arg(formatP(vsTeacher->mcnemarHolm.p))
                                                                : QString())
                   .arg(cmp.onlyFirst)
                   .arg(cmp.onlySecond)
                   .arg(detectable ? QString() : QStringLiteral(", ") + noDetectableDifference());
    }
    auto* vs = new QTableWidgetItem(vsText);
    vs->setToolTip(tr("Exact McNemar test on correctness against the teacher: p (and Holm p, adjusted over the "
                      "task's paired tests), then the examples only the student gets right vs those only the "
                      "teacher gets right"));
    if (!detectable) {
      markNotDetectable(vs);
    }
    m_table->setItem(row, ColVsTeacher, vs);
    ++row;
  }
  if (shownIntervals) {
    m_note->setText(tr("Intervals: 95%, percentile bootstrap over each task's eval examples (%1 on %2; B = %3, "
                       "seed %4). A difference whose interval holds 0, or whose McNemar p (Holm-adjusted over the "
                       "task's paired tests) is 0.05 or more, is marked \"%5\" (italic).")
                        .arg(shownIntervals->bootstrap.examples)
                        .arg(shownTask)
                        .arg(shownIntervals->bootstrap.resamples)
                        .arg(shownIntervals->bootstrap.seed)
                        .arg(noDetectableDifference()));
  } else if (row > 0) {
    m_note->setText(tr("No intervals or paired tests yet: %1").arg(noAnalysisMessage(run)));
  }

  // The selected task: the student against the teacher and every other student.
  const QString& task = context().task;
  int pair = 0;
  for (const core::PairedTest& test : student.isEmpty() ? std::vector<core::PairedTest>{}
                                                        : run.pairedTests(task, student)) {
    const an::CorrectnessComparison& c = test.comparison;
    const an::Interval& d = c.accuracyDifference.difference;
    const double verdictP = an::verdictP(c.mcnemarP, test.mcnemarHolm);
    const bool detectable = an::detectable(d, verdictP);
    m_paired->insertRow(pair);
    const QString other = QString::fromStdString(test.other) +
                          (test.otherRole == "teacher" ? tr(" (teacher)") : QString());
    m_paired->setItem(pair, PairOther, new QTableWidgetItem(other));
    m_paired->setItem(pair, PairDifference, numberCell(d.estimate, &d, /*difference=*/true, verdictP));
    m_paired->item(pair, PairDifference)->setText(formatInterval(d.estimate, &d, 4, /*showSign=*/true));
    m_paired->setItem(pair, PairOnlyStudent, new QTableWidgetItem(QString::number(c.onlyFirst)));
    m_paired->setItem(pair, PairOnlyOther, new QTableWidgetItem(QString::number(c.onlySecond)));
    m_paired->setItem(pair, PairMcNemar, new QTableWidgetItem(formatP(c.mcnemarP)));
    auto* holm = new QTableWidgetItem(std::isfinite(test.mcnemarHolm.p) ? formatP(test.mcnemarHolm.p) : QStringLiteral("-"));
    holm->setToolTip(tr("McNemar p, Holm-Bonferroni adjusted over the %1 paired tests of task %2").arg(test.mcnemarHolm.family).arg(task));
    m_paired->setItem(pair, PairHolm, holm);
    m_paired->setItem(pair, PairBootstrap, new QTableWidgetItem(formatP(c.accuracyDifference.pValue)));
    auto* verdict = new QTableWidgetItem(detectable ? (d.estimate > 0 ? tr("%1 better").arg(student)
                                                                      : tr("%1 better").arg(QString::fromStdString(test.other)))
                                                    : noDetectableDifference());
    if (!detectable) {
      markNotDetectable(verdict);
      markNotDetectable(m_paired->item(pair, PairMcNemar));
      markNotDetectable(holm);
    }
    m_paired->setItem(pair, PairVerdict, verdict);
    ++pair;
  }

  figures::buildTaskAccuracy(*m_accuracy, run, task);
  figures::buildRecall(*m_recall, run, task, context().teacher, student);
}

} // namespace kdscope::widgets
