#include "widgets/views/heads_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

#include "core/analysis/analysis_results.h"
#include "core/analysis/interval_text.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/attention_pane.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

HeadsView::HeadsView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Per head:"), body()));
  m_metric = new QComboBox(body());
  m_metric->setObjectName(QStringLiteral("headsMetric"));
  m_metric->addItem(tr("importance (Michel et al.)"), static_cast<int>(Metric::Importance));
  m_metric->addItem(tr("attention entropy"), static_cast<int>(Metric::Entropy));
  m_metric->addItem(tr("teacher-student divergence (JS)"), static_cast<int>(Metric::Divergence));
  m_metric->setCurrentIndex(1);
  controls->addWidget(m_metric);
  controls->addWidget(new QLabel(tr("click a cell to browse that head's attention"), body()));
  controls->addStretch(1);
  layout->addLayout(controls);

  auto* split = new QSplitter(Qt::Vertical, body());
  auto* grids = new QSplitter(Qt::Horizontal, split);
  m_teacherGrid = new PlotWidget(grids);
  m_teacherGrid->setObjectName(QStringLiteral("headsTeacherGrid"));
  m_studentGrid = new PlotWidget(grids);
  m_studentGrid->setObjectName(QStringLiteral("headsStudentGrid"));
  auto* intervals = new QTabWidget(split);
  intervals->setObjectName(QStringLiteral("headsIntervalTabs"));
  const auto pair = [&](const QString& title, const QString& name, PlotWidget** teacher, PlotWidget** student) {
    auto* side = new QSplitter(Qt::Horizontal, intervals);
    *teacher = new PlotWidget(side);
    (*teacher)->setObjectName(QStringLiteral("headsTeacher") + name);
    *student = new PlotWidget(side);
    (*student)->setObjectName(QStringLiteral("headsStudent") + name);
    intervals->addTab(side, title);
  };
  pair(tr("Importance, 95% intervals"), QStringLiteral("ImportanceIntervals"), &m_teacherImportance,
       &m_studentImportance);
  pair(tr("Ablation, 95% intervals"), QStringLiteral("Ablation"), &m_teacherAblation, &m_studentAblation);
  m_attention = new AttentionPane(split);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  split->setStretchFactor(2, 2);
  layout->addWidget(split, 1);
  m_importanceIntervals = new QLabel(body());
  m_importanceIntervals->setObjectName(QStringLiteral("headsImportanceIntervals"));
  m_importanceIntervals->setWordWrap(true);
  m_importanceIntervals->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_importanceIntervals);

  connect(m_metric, &QComboBox::currentIndexChanged, this, [this] { fillGrids(); });
  connect(m_teacherGrid, &PlotWidget::cellClicked, this,
          [this](int layer, int head) { m_attention->selectTeacherHead(layer, head); });
  connect(m_studentGrid, &PlotWidget::cellClicked, this, [this](int layer, int head) { studentCellClicked(layer, head); });
}

void HeadsView::studentCellClicked(int layer, int column) {
  if (static_cast<Metric>(m_metric->currentData().toInt()) != Metric::Divergence || context().run == nullptr) {
    m_attention->selectStudentHead(layer, column);
    return;
  }
  // Divergence columns are heads of the mapped teacher layer: show that teacher head beside
  // the student head the analysis matched to it.
  try {
    const auto d = context().run->results().headDivergence(context().task.toStdString(), context().student.toStdString());
    if (!d || layer < 0 || static_cast<std::size_t>(layer) >= d->teacherLayer.size()) {
      return;
    }
    const std::size_t cell = static_cast<std::size_t>(layer) * d->bestDivergence.cols + static_cast<std::size_t>(column);
    const std::int64_t teacherLayer = d->teacherLayer[static_cast<std::size_t>(layer)];
    const std::int64_t studentHead = cell < d->bestMatch.size() ? d->bestMatch[cell] : -1;
    if (teacherLayer >= 0) {
      m_attention->selectTeacherHead(static_cast<int>(teacherLayer), column);
    }
    if (studentHead >= 0) {
      m_attention->selectStudentHead(layer, static_cast<int>(studentHead));
    }
  } catch (const std::exception& error) {
    m_studentGrid->setMessage(QString::fromUtf8(error.what()));
  }
}

void HeadsView::setMetric(Metric metric) { m_metric->setCurrentIndex(m_metric->findData(static_cast<int>(metric))); }

void HeadsView::clearView() {
  m_teacherGrid->clear();
  m_studentGrid->clear();
  m_importanceIntervals->clear();
  for (PlotWidget* plot : {m_teacherImportance, m_studentImportance, m_teacherAblation, m_studentAblation}) {
    plot->clear();
  }
  m_attention->setContext({});
}

void HeadsView::populate() {
  fillGrids();
  try {
    const RunDocument& run = *context().run;
    figures::buildHeadImportanceIntervals(*m_teacherImportance, run, context().task, context().teacher);
    figures::buildHeadImportanceIntervals(*m_studentImportance, run, context().task, context().student);
    figures::buildHeadAblation(*m_teacherAblation, run, context().task, context().teacher);
    figures::buildHeadAblation(*m_studentAblation, run, context().task, context().student);
    const std::string task = context().task.toStdString();
    QStringList lines;
    for (const QString& model : {context().teacher, context().student}) {
      if (!model.isEmpty()) {
        lines << importanceIntervalText(run, task, model.toStdString());
      }
    }
    m_importanceIntervals->setText(lines.join(QStringLiteral("\n")));
  } catch (const std::exception& error) {
    m_importanceIntervals->setText(QString::fromUtf8(error.what()));
  }
  m_attention->setContext(context());
}

void HeadsView::fillGrids() {
  try {
    fillGrid(m_teacherGrid, context().teacher, false);
    fillGrid(m_studentGrid, context().student, true);
  } catch (const std::exception& error) {
    m_teacherGrid->clear();
    m_teacherGrid->setMessage(QString::fromUtf8(error.what()));
  }
}

void HeadsView::fillGrid(PlotWidget* plot, const QString& model, bool student) {
  Q_UNUSED(student);
  if (context().run == nullptr) {
    plot->clear();
    plot->setMessage(tr("no model"));
    return;
  }
  const auto metric = static_cast<Metric>(m_metric->currentData().toInt());
  const figures::HeadMetric which = metric == Metric::Importance   ? figures::HeadMetric::Importance
                                    : metric == Metric::Divergence ? figures::HeadMetric::Divergence
                                                                   : figures::HeadMetric::Entropy;
  figures::buildHeadGrid(*plot, *context().run, context().task, context().teacher, model, which);
}

QString HeadsView::importanceIntervalText(const RunDocument& run, const std::string& task, const std::string& model) {
  const auto importance = run.results().headImportance(task, model);
  const auto interval = run.results().headImportanceInterval(task, model);
  if (!importance || !interval) {
    return tr("%1: head importance with its interval not analysed").arg(QString::fromStdString(model));
  }
  // The three most important heads (normalised per layer, Michel et al.) with their 95%
  // intervals: bootstrap over eval examples of the per-example gate gradients.
  std::vector<std::size_t> order(importance->values.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double x = importance->values[a];
    const double y = importance->values[b];
    return (std::isnan(y) && !std::isnan(x)) || x > y;
  });
  QStringList parts;
  for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k) {
    const std::size_t c = order[k];
    core::analysis::Interval i;
    i.estimate = importance->values[c];
    i.lo = interval->first.values[c];
    i.hi = interval->second.values[c];
    parts << tr("layer %1 head %2: %3")
                 .arg(c / importance->cols)
                 .arg(c % importance->cols)
                 .arg(QString::fromStdString(core::analysis::intervalText(i, 3)));
  }
  return tr("%1, most important heads (importance normalised per layer; 95% interval over eval examples, "
            "bootstrap): %2")
      .arg(QString::fromStdString(model), parts.join(QStringLiteral("; ")));
}

} // namespace kdscope::widgets
