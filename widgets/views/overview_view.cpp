#include "widgets/views/overview_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <set>

#include "core/analysis/interval_text.h"
#include "core/analysis/task_intervals.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

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
      {tr("Model"), tr("Role"), tr("Parameters"), tr("Accuracy"), tr("Gap"), tr("Retained"), tr("Final loss"),
       tr("Accuracy 95% CI"), tr("Gap 95% CI")});
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_table->verticalHeader()->hide();
  m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_skipped = new QPlainTextEdit(split);
  m_skipped->setObjectName(QStringLiteral("overviewSkipped"));
  m_skipped->setReadOnly(true);
  m_skipped->setVisible(false);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  split->setStretchFactor(2, 0);
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
  m_skipped->clear();
  m_skipped->setVisible(false);
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
  figures::buildEvalAccuracy(*m_accuracyPlot, run, context().task);

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
    // The analysis's intervals (percentile bootstrap over the eval examples); a cell without
    // one says why in its tooltip.
    const auto intervals = run.intervals(context().task, QString::fromStdString(model.name));
    const QString noInterval = intervals ? tr("the analysis wrote no interval of this number")
                                         : tr("not analysed: 'kdscope analyze' adds the 95% intervals");
    const QString whyNone = student ? noInterval : tr("the teacher has no gap or retained fraction");
    const core::analysis::Interval* retained =
        intervals ? intervals->find(core::analysis::metric::kRetainedFraction) : nullptr;
    m_table->setItem(row, ColRetained,
                     item(comparable && teacherAccuracy > 0.0
                              ? formatNumber(model.evalAccuracy / teacherAccuracy) +
                                    (retained != nullptr ? QStringLiteral(" [%1, %2]").arg(formatNumber(retained->lo),
                                                                                         formatNumber(retained->hi))
                                                         : QString())
                              : QStringLiteral("-"),
                          retained != nullptr ? intervalTooltip(*retained) : whyNone));
    m_table->setItem(row, ColFinalLoss, item(model.trainSteps > 0 ? formatNumber(model.finalLoss) : QStringLiteral("-")));
    const auto ends = [](const core::analysis::Interval* i) {
      return QStringLiteral("[%1, %2]").arg(formatNumber(i->lo), formatNumber(i->hi));
    };
    const core::analysis::Interval* accuracy = intervals ? intervals->find(core::analysis::metric::kAccuracy) : nullptr;
    const core::analysis::Interval* gap = intervals ? intervals->find(core::analysis::metric::kGap) : nullptr;
    m_table->setItem(row, ColAccuracyInterval,
                     accuracy != nullptr ? item(ends(accuracy), intervalTooltip(*accuracy))
                                         : item(QStringLiteral("-"), noInterval));
    double mcnemarP = std::nan("");
    for (const core::PairedTest& test : gap == nullptr ? std::vector<core::PairedTest>{}
                                                       : run.pairedTests(context().task, QString::fromStdString(model.name))) {
      mcnemarP = test.otherRole == "teacher" ? core::analysis::verdictP(test.comparison.mcnemarP, test.mcnemarHolm)
                                             : mcnemarP;
    }
    m_table->setItem(row, ColGapInterval,
                     gap == nullptr ? item(QStringLiteral("-"), whyNone)
                                    : item(ends(gap) + (core::analysis::detectable(*gap, mcnemarP)
                                                            ? QString()
                                                            : QStringLiteral(" ") + noDetectableDifference()),
                                           intervalTooltip(*gap)));
    ++row;
  }

  // Models from elsewhere may lack outputs (their pre-flight check), and analyses that need
  // them were skipped: said here with the reasons, as the analysis recorded them.
  const QStringList lacks = run.modelLacks(context().task);
  const QStringList skipped = run.skippedAnalyses(context().task);
  QString notes;
  if (!lacks.isEmpty()) {
    notes += tr("Pre-flight check:\n  ") + lacks.join(QStringLiteral("\n  ")) + QStringLiteral("\n");
  }
  if (!skipped.isEmpty()) {
    notes += tr("Analyses skipped:\n  ") + skipped.join(QStringLiteral("\n  "));
  }
  m_skipped->setPlainText(notes);
  m_skipped->setVisible(!notes.isEmpty());
}

void OverviewView::fillLossPlot() {
  m_lossPlot->clear();
  if (context().run == nullptr || context().run->task(context().task) == nullptr) {
    return;
  }
  const QString selected = m_term->currentText().isEmpty() ? kTotal : m_term->currentText();
  LossSelection selection;
  if (selected == kAllTerms) {
    selection.kind = LossSelection::Kind::AllTerms;
  } else if (selected != kTotal) {
    selection.kind = LossSelection::Kind::Term;
    selection.term = selected;
  }
  figures::buildLoss(*m_lossPlot, *context().run, context().task, selection);
}

} // namespace kdscope::widgets
