#include "widgets/views/heads_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>

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
  m_attention = new AttentionPane(split);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 2);
  layout->addWidget(split, 1);

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
  m_attention->setContext({});
}

void HeadsView::populate() {
  fillGrids();
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

} // namespace kdscope::widgets
