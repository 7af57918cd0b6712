#include "widgets/views/tasks_view.h"

#include <QHeaderView>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "core/analysis/metrics.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

TasksView::TasksView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Vertical, body());
  m_table = new QTableWidget(0, ColumnCount, split);
  m_table->setObjectName(QStringLiteral("tasksTable"));
  m_table->setHorizontalHeaderLabels({tr("Task"), tr("Teacher acc."), tr("Student acc."), tr("Gap"), tr("Retained"),
                                      tr("Agreement"), tr("KL(p||q)"), tr("ECE teacher"), tr("ECE student")});
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_table->verticalHeader()->hide();
  m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_table->setSortingEnabled(false);
  m_recall = new PlotWidget(split);
  m_recall->setObjectName(QStringLiteral("tasksRecallPlot"));
  layout->addWidget(split);
}

void TasksView::clearView() {
  m_table->setRowCount(0);
  m_recall->clear();
}

void TasksView::populate() {
  const RunDocument& run = *context().run;
  const QString& student = context().student;
  int row = 0;
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
    m_table->insertRow(row);
    const double values[] = {c.teacherAccuracy, c.studentAccuracy, c.gap, c.retainedFraction,
                             c.agreement,       c.meanKl,          c.teacherEce, c.studentEce};
    auto* name = new QTableWidgetItem(task);
    m_table->setItem(row, ColTask, name);
    for (int i = 0; i < 8; ++i) {
      auto* cell = new QTableWidgetItem(formatNumber(values[i]));
      cell->setToolTip(QString::number(values[i], 'g', 17));
      m_table->setItem(row, ColTeacher + i, cell);
    }
    ++row;
  }

  figures::buildRecall(*m_recall, run, context().task, context().teacher, student);
}

} // namespace kdscope::widgets
