#include "widgets/overview_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <set>

#include "widgets/plot_widget.h"

namespace kdscope::widgets {

namespace {

const QString kTotal = QStringLiteral("total");
const QString kAllTerms = QStringLiteral("total and every term");

QTableWidgetItem* item(const QString& text, const QString& tip = {}) {
  auto* cell = new QTableWidgetItem(text);
  cell->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
  cell->setToolTip(tip.isEmpty() ? text : tip);
  return cell;
}

} // namespace

OverviewView::OverviewView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Training loss:"), body()));
  m_term = new QComboBox(body());
  m_term->setObjectName(QStringLiteral("overviewTerm"));
  controls->addWidget(m_term);
  controls->addStretch(1);
  layout->addLayout(controls);

  auto* split = new QSplitter(Qt::Vertical, body());
  auto* plots = new QSplitter(Qt::Horizontal, split);
  m_lossPlot = new PlotWidget(plots);
  m_lossPlot->setObjectName(QStringLiteral("overviewLossPlot"));
  m_accuracyPlot = new PlotWidget(plots);
  m_accuracyPlot->setObjectName(QStringLiteral("overviewAccuracyPlot"));
  m_table = new QTableWidget(0, ColumnCount, split);
  m_table->setObjectName(QStringLiteral("overviewAccuracyTable"));
  m_table->setHorizontalHeaderLabels(
      {tr("Model"), tr("Role"), tr("Parameters"), tr("Accuracy"), tr("Gap"), tr("Retained"), tr("Final loss")});
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_table->verticalHeader()->hide();
  m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  layout->addWidget(split, 1);

  connect(m_term, &QComboBox::currentTextChanged, this, [this] {
    try {
      fillLossPlot();
    } catch (const std::exception& error) {
      m_lossPlot->clear();
      m_lossPlot->setMessage(QString::fromUtf8(error.what()));
    }
  });
}

void OverviewView::clearView() {
  m_lossPlot->clear();
  m_accuracyPlot->clear();
  m_table->setRowCount(0);
  const QSignalBlocker block(m_term);
  m_term->clear();
}

void OverviewView::populate() {
  const RunDocument& run = *context().run;
  const core::TaskSummary* task = run.task(context().task);
  if (task == nullptr) {
    return;
  }
  // Terms across every model of the task, for the selector.
  std::set<QString> terms;
  for (const core::ModelSummary& model : task->models) {
    for (const auto& [name, values] : run.reader().trainLog(task->name, model.name).terms) {
      terms.insert(QString::fromStdString(name));
    }
  }
  {
    const QSignalBlocker block(m_term);
    m_term->addItem(kTotal);
    if (!terms.empty()) {
      m_term->addItem(kAllTerms);
    }
    for (const QString& term : terms) {
      m_term->addItem(term);
    }
  }
  fillLossPlot();

  // Eval accuracy per epoch.
  m_accuracyPlot->setTitle(tr("Eval accuracy"));
  m_accuracyPlot->setAxisLabels(tr("epoch"), tr("accuracy"));
  int color = 0;
  for (const core::ModelSummary& model : task->models) {
    const core::EvalCurve curve = run.reader().evalCurve(task->name, model.name);
    QVector<double> x;
    QVector<double> y;
    for (std::size_t i = 0; i < curve.epoch.size(); ++i) {
      x << static_cast<double>(curve.epoch[i]);
      y << curve.accuracy[i];
    }
    if (!x.isEmpty()) {
      m_accuracyPlot->addLine(QString::fromStdString(model.name), x, y, color);
    }
    ++color;
  }
  if (m_accuracyPlot->lineCount() == 0) {
    m_accuracyPlot->setMessage(tr("no eval curve recorded"));
  }
  m_accuracyPlot->rescale();

  // The table: teacher first, then students with gap and retained fraction.
  double teacherAccuracy = -1.0;
  for (const core::ModelSummary& model : task->models) {
    if (model.role == "teacher") {
      teacherAccuracy = model.evalAccuracy;
    }
  }
  m_table->setRowCount(static_cast<int>(task->models.size()));
  int row = 0;
  for (const core::ModelSummary& model : task->models) {
    const bool student = model.role != "teacher";
    const bool comparable = student && teacherAccuracy >= 0.0 && model.evalAccuracy >= 0.0;
    m_table->setItem(row, ColModel, item(QString::fromStdString(model.name), QString::fromStdString(model.architectureJson)));
    m_table->setItem(row, ColRole, item(QString::fromStdString(model.role), QString::fromStdString(model.objectiveJson)));
    m_table->setItem(row, ColParameters, item(QString::number(model.parameterCount)));
    m_table->setItem(row, ColAccuracy,
                     item(model.evalAccuracy >= 0.0 ? formatNumber(model.evalAccuracy) : QStringLiteral("-"),
                          QString::number(model.evalAccuracy, 'g', 17)));
    m_table->setItem(row, ColGap, item(comparable ? formatNumber(teacherAccuracy - model.evalAccuracy) : QStringLiteral("-")));
    m_table->setItem(row, ColRetained,
                     item(comparable && teacherAccuracy > 0.0 ? formatNumber(model.evalAccuracy / teacherAccuracy)
                                                              : QStringLiteral("-")));
    m_table->setItem(row, ColFinalLoss, item(model.trainSteps > 0 ? formatNumber(model.finalLoss) : QStringLiteral("-")));
    ++row;
  }
}

void OverviewView::fillLossPlot() {
  m_lossPlot->clear();
  if (context().run == nullptr) {
    return;
  }
  const RunDocument& run = *context().run;
  const core::TaskSummary* task = run.task(context().task);
  if (task == nullptr) {
    return;
  }
  const QString selected = m_term->currentText().isEmpty() ? kTotal : m_term->currentText();
  m_lossPlot->setTitle(selected == kTotal ? tr("Training loss") : tr("Training loss: %1").arg(selected));
  m_lossPlot->setAxisLabels(tr("step"), tr("loss"));
  int color = 0;
  for (const core::ModelSummary& model : task->models) {
    const core::TrainLog log = run.reader().trainLog(task->name, model.name);
    QVector<double> x;
    for (const std::int64_t step : log.steps) {
      x << static_cast<double>(step);
    }
    const QString name = QString::fromStdString(model.name);
    const auto addSeries = [&](const QString& label, const std::vector<float>& values, PlotWidget::LineStyle style) {
      QVector<double> xs;
      QVector<double> ys;
      for (std::size_t i = 0; i < values.size() && i < static_cast<std::size_t>(x.size()); ++i) {
        if (!std::isnan(values[i])) { // a term not logged on a step is NaN
          xs << x[static_cast<int>(i)];
          ys << values[i];
        }
      }
      if (!xs.isEmpty()) {
        m_lossPlot->addLine(label, xs, ys, color, style);
      }
    };
    if (selected == kTotal || selected == kAllTerms) {
      addSeries(name, log.loss, PlotWidget::LineStyle::Solid);
    }
    int termIndex = 0;
    for (const auto& [term, values] : log.terms) {
      const QString termName = QString::fromStdString(term);
      if (selected == kAllTerms || selected == termName) {
        addSeries(name + QStringLiteral(" ") + termName, values,
                  selected == termName ? PlotWidget::LineStyle::Solid
                                       : (termIndex % 2 == 0 ? PlotWidget::LineStyle::Dashed
                                                             : PlotWidget::LineStyle::Dotted));
      }
      ++termIndex;
    }
    ++color;
  }
  if (m_lossPlot->lineCount() == 0) {
    m_lossPlot->setMessage(tr("no training log recorded"));
  }
  m_lossPlot->rescale();
}

} // namespace kdscope::widgets
