#include "widgets/study_view.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

#include "core/study/summary.h"
#include "widgets/plot_widget.h"

namespace kdscope::widgets {

namespace {

const core::StudyMetric kMetrics[] = {core::StudyMetric::Gap, core::StudyMetric::StudentAccuracy,
                                      core::StudyMetric::Retained, core::StudyMetric::SourceGap};

QString metricTitle(core::StudyMetric metric) {
  switch (metric) {
  case core::StudyMetric::Gap:
    return QObject::tr("gap (teacher - student accuracy)");
  case core::StudyMetric::StudentAccuracy:
    return QObject::tr("student accuracy");
  case core::StudyMetric::Retained:
    return QObject::tr("retained (student / teacher)");
  case core::StudyMetric::SourceGap:
    return QObject::tr("gap to the teacher it learned from");
  }
  return {};
}

QStringList toQStrings(const std::vector<std::string>& v) {
  QStringList out;
  for (const auto& s : v) {
    out << QString::fromStdString(s);
  }
  return out;
}

QComboBox* labelledCombo(const QString& label, QWidget* parent, QHBoxLayout* row) {
  row->addWidget(new QLabel(label, parent));
  auto* combo = new QComboBox(parent);
  combo->setMinimumContentsLength(10);
  row->addWidget(combo);
  return combo;
}

} // namespace

StudyView::StudyView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* top = new QHBoxLayout();
  auto* open = new QPushButton(tr("Open study summary..."), this);
  top->addWidget(open);
  m_task = labelledCombo(tr("Task:"), this, top);
  m_metric = labelledCombo(tr("Metric:"), this, top);
  for (const auto metric : kMetrics) {
    m_metric->addItem(metricTitle(metric));
  }
  top->addStretch(1);
  layout->addLayout(top);
  m_status = new QLabel(tr("No study loaded: run `kdscope study STUDY.json --out DIR`, then open "
                           "DIR/study_summary.json."),
                        this);
  m_status->setWordWrap(true);
  layout->addWidget(m_status);

  m_tabs = new QTabWidget(this);
  // Heatmap over two factors.
  auto* heat = new QWidget(m_tabs);
  auto* heatLayout = new QVBoxLayout(heat);
  auto* heatRow = new QHBoxLayout();
  m_rowFactor = labelledCombo(tr("Rows:"), heat, heatRow);
  m_colFactor = labelledCombo(tr("Columns:"), heat, heatRow);
  heatRow->addStretch(1);
  heatLayout->addLayout(heatRow);
  m_heatmap = new PlotWidget(heat);
  heatLayout->addWidget(m_heatmap, 1);
  m_tabs->addTab(heat, tr("Heatmap"));
  // Metric against one factor, a line per level of another.
  auto* lines = new QWidget(m_tabs);
  auto* linesLayout = new QVBoxLayout(lines);
  auto* linesRow = new QHBoxLayout();
  m_xFactor = labelledCombo(tr("Against:"), lines, linesRow);
  m_seriesFactor = labelledCombo(tr("One line per:"), lines, linesRow);
  linesRow->addStretch(1);
  linesLayout->addLayout(linesRow);
  m_lines = new PlotWidget(lines);
  linesLayout->addWidget(m_lines, 1);
  m_tabs->addTab(lines, tr("Lines"));
  // Component contributions.
  auto* effects = new QSplitter(Qt::Vertical, m_tabs);
  m_effects = new PlotWidget(effects);
  m_effectsTable = new QTableWidget(effects);
  m_effectsTable->setColumnCount(8);
  m_effectsTable->setHorizontalHeaderLabels(
      {tr("factor"), tr("effect"), tr("spread"), tr("level"), tr("mean"), tr("sd"), tr("min..max"), tr("cells")});
  m_effectsTable->horizontalHeader()->setStretchLastSection(true);
  m_effectsTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_tabs->addTab(effects, tr("Components"));
  // Per-term loss curves across cells.
  auto* curves = new QWidget(m_tabs);
  auto* curvesLayout = new QVBoxLayout(curves);
  auto* curvesRow = new QHBoxLayout();
  m_term = labelledCombo(tr("Term:"), curves, curvesRow);
  curvesRow->addStretch(1);
  curvesLayout->addLayout(curvesRow);
  m_curves = new PlotWidget(curves);
  curvesLayout->addWidget(m_curves, 1);
  m_tabs->addTab(curves, tr("Loss curves"));
  layout->addWidget(m_tabs, 1);

  connect(open, &QPushButton::clicked, this, &StudyView::onOpen);
  for (QComboBox* combo : {m_task, m_metric, m_rowFactor, m_colFactor, m_xFactor, m_seriesFactor}) {
    connect(combo, &QComboBox::currentIndexChanged, this, [this] {
      if (!m_filling) {
        refresh();
      }
    });
  }
  connect(m_term, &QComboBox::currentIndexChanged, this, [this] {
    if (!m_filling) {
      refreshCurves();
    }
  });
  connect(m_tabs, &QTabWidget::currentChanged, this, [this] { refresh(); });
}

StudyView::~StudyView() = default;

void StudyView::onOpen() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open study summary"), QString(),
                                                    tr("Study summaries (study_summary.json);;JSON (*.json)"));
  if (path.isEmpty()) {
    return;
  }
  QString error;
  if (!loadSummary(path, &error)) {
    m_status->setText(error);
  }
}

bool StudyView::loadSummary(const QString& path, QString* error) {
  try {
    auto summary = std::make_unique<core::StudySummary>(core::readStudySummary(path.toStdString()));
    m_summary = std::move(summary);
  } catch (const std::exception& e) {
    if (error != nullptr) {
      *error = QString::fromStdString(e.what());
    }
    return false;
  }
  m_dir = QFileInfo(path).absolutePath();
  m_status->setText(tr("Study '%1': %2 of %3 cells complete, %4 task(s). %5")
                        .arg(QString::fromStdString(m_summary->name))
                        .arg(m_summary->completeCells())
                        .arg(m_summary->cells.size())
                        .arg(m_summary->tasks.size())
                        .arg(QDir::toNativeSeparators(path)));
  fillFactorCombos();
  refresh();
  return true;
}

void StudyView::fillFactorCombos() {
  m_filling = true;
  m_task->clear();
  m_task->addItem(tr("all tasks (mean)"));
  m_task->addItems(toQStrings(m_summary->tasks));
  if (m_summary->tasks.size() == 1) {
    m_task->setCurrentIndex(1);
  }
  QStringList factors;
  for (const auto& f : m_summary->factors) {
    factors << QString::fromStdString(f.name);
  }
  const auto pick = [&factors](QComboBox* combo, const QStringList& preferred, bool withNone, int fallback) {
    combo->clear();
    if (withNone) {
      combo->addItem(QObject::tr("(none)"));
    }
    combo->addItems(factors);
    for (const QString& name : preferred) {
      if (const int i = combo->findText(name); i >= 0) {
        combo->setCurrentIndex(i);
        return;
      }
    }
    combo->setCurrentIndex(std::min(fallback + (withNone ? 1 : 0), combo->count() - 1));
  };
  pick(m_rowFactor, {QStringLiteral("layers")}, false, 0);
  pick(m_colFactor, {QStringLiteral("heads")}, true, 1);
  pick(m_xFactor, {QStringLiteral("temperature")}, false, 0);
  pick(m_seriesFactor, {QStringLiteral("lambda")}, true, -1);
  m_filling = false;
}

std::string StudyView::currentTask() const {
  return m_task->currentIndex() <= 0 ? std::string() : m_task->currentText().toStdString();
}

void StudyView::refresh() {
  if (!m_summary) {
    return;
  }
  switch (m_tabs->currentIndex()) {
  case 0:
    refreshHeatmap();
    break;
  case 1:
    refreshLines();
    break;
  case 2:
    refreshEffects();
    break;
  default:
    refreshCurves();
    break;
  }
}

void StudyView::refreshHeatmap() {
  m_heatmap->clear();
  if (m_summary->factors.empty()) {
    m_heatmap->setMessage(tr("this study has no grid factors"));
    return;
  }
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  const std::string row = m_rowFactor->currentText().toStdString();
  const std::string col = m_colFactor->currentIndex() <= 0 ? std::string() : m_colFactor->currentText().toStdString();
  const auto grid = core::studyGrid(*m_summary, currentTask(), row, col, metric);
  Heatmap h;
  h.rows = static_cast<int>(grid.rowLevels.size());
  h.cols = static_cast<int>(grid.colLevels.size());
  h.values = grid.mean;
  h.rowLabels = toQStrings(grid.rowLevels);
  h.colLabels = col.empty() ? QStringList{QString()} : toQStrings(grid.colLevels);
  h.rowTitle = QString::fromStdString(row);
  h.colTitle = QString::fromStdString(col);
  h.valueTitle = metricTitle(metric);
  m_heatmap->setTitle(tr("%1, %2").arg(metricTitle(metric), m_task->currentText()));
  m_heatmap->setHeatmap(h);
  m_heatmap->queueReplot();
}

void StudyView::refreshLines() {
  m_lines->clear();
  if (m_summary->factors.empty()) {
    m_lines->setMessage(tr("this study has no grid factors"));
    return;
  }
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  const std::string x = m_xFactor->currentText().toStdString();
  const std::string series =
      m_seriesFactor->currentIndex() <= 0 ? std::string() : m_seriesFactor->currentText().toStdString();
  const auto grid = core::studyGrid(*m_summary, currentTask(), x, series == x ? std::string() : series, metric);
  const bool named = m_summary->factors[static_cast<std::size_t>(m_summary->factorIndex(x))].named;
  for (std::size_t c = 0; c < grid.colLevels.size(); ++c) {
    QVector<double> xs;
    QVector<double> ys;
    for (std::size_t r = 0; r < grid.rowLevels.size(); ++r) {
      if (std::isfinite(grid.at(r, c))) {
        xs << (named ? static_cast<double>(r) : grid.rowValues[r]);
        ys << grid.at(r, c);
      }
    }
    const QString name = grid.colFactor.empty()
                             ? metricTitle(metric)
                             : QStringLiteral("%1 = %2").arg(QString::fromStdString(grid.colFactor),
                                                             QString::fromStdString(grid.colLevels[c]));
    m_lines->addLine(name, xs, ys, static_cast<int>(c));
  }
  if (named) {
    m_lines->setXTickLabels(toQStrings(grid.rowLevels));
  }
  m_lines->setAxisLabels(QString::fromStdString(x), metricTitle(metric));
  m_lines->setTitle(tr("%1 against %2, %3").arg(metricTitle(metric), QString::fromStdString(x), m_task->currentText()));
  m_lines->rescale();
  m_lines->queueReplot();
}

void StudyView::refreshEffects() {
  m_effects->clear();
  m_effectsTable->setRowCount(0);
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  auto effects = core::mainEffects(*m_summary, currentTask(), metric);
  if (effects.empty()) {
    m_effects->setMessage(tr("this study has no grid factors"));
    return;
  }
  // Largest effect first: the components that matter most for this task.
  std::stable_sort(effects.begin(), effects.end(), [](const core::FactorEffect& a, const core::FactorEffect& b) {
    return (std::isnan(a.effect) ? -1.0 : a.effect) > (std::isnan(b.effect) ? -1.0 : b.effect);
  });
  // Each factor's level means at x = factor index + spread offsets, with min..max whiskers
  // drawn as dashed lines, so levels of different factors never share an x position.
  QStringList ticks;
  for (std::size_t f = 0; f < effects.size(); ++f) {
    const auto& effect = effects[f];
    ticks << QString::fromStdString(effect.factor);
    QVector<double> xs;
    QVector<double> ys;
    const double n = static_cast<double>(effect.levels.size());
    for (std::size_t l = 0; l < effect.levels.size(); ++l) {
      const auto& level = effect.levels[l];
      const double x = static_cast<double>(f) + (n > 1 ? -0.3 + 0.6 * static_cast<double>(l) / (n - 1) : 0.0);
      if (level.count > 0) {
        xs << x;
        ys << level.mean;
        m_effects->addLine(QString(), {x, x}, {level.min, level.max}, static_cast<int>(f), PlotWidget::LineStyle::Dashed);
      }
      const int row = m_effectsTable->rowCount();
      m_effectsTable->insertRow(row);
      const auto cell = [this, row](int col, const QString& text) {
        m_effectsTable->setItem(row, col, new QTableWidgetItem(text));
      };
      const auto number = [](double v) { return std::isfinite(v) ? QString::number(v, 'f', 4) : QStringLiteral("-"); };
      cell(0, l == 0 ? QString::fromStdString(effect.factor) : QString());
      cell(1, l == 0 ? number(effect.effect) : QString());
      cell(2, l == 0 ? number(effect.spread) : QString());
      cell(3, QString::fromStdString(level.level));
      cell(4, number(level.mean));
      cell(5, number(level.stddev));
      cell(6, number(level.min) + QStringLiteral(" .. ") + number(level.max));
      cell(7, QString::number(level.count));
    }
    m_effects->addLine(QString::fromStdString(effect.factor), xs, ys, static_cast<int>(f));
  }
  m_effects->setXTickLabels(ticks);
  m_effects->setAxisLabels(tr("factor (levels left to right; dashed: min..max over the rest of the grid)"),
                           metricTitle(metric));
  m_effects->setTitle(tr("Main effects, %1").arg(m_task->currentText()));
  m_effects->rescale();
  m_effects->setXRange(-0.5, static_cast<double>(effects.size()) - 0.5);
  m_effects->queueReplot();
}

void StudyView::refreshCurves() {
  m_curves->clear();
  if (!m_summary || m_summary->tasks.empty()) {
    return;
  }
  // Loss curves are per task: "all tasks" shows the first.
  const std::string task = currentTask().empty() ? m_summary->tasks.front() : currentTask();
  try {
    const QString previous = m_term->currentText();
    m_filling = true;
    m_term->clear();
    m_term->addItems(toQStrings(core::termNames(*m_summary, m_dir.toStdString(), task)));
    const int keep = m_term->findText(previous);
    m_term->setCurrentIndex(keep >= 0 ? keep : 0);
    m_filling = false;
    const std::string term = m_term->currentText().toStdString();
    const auto curves = core::termCurves(*m_summary, m_dir.toStdString(), task, term);
    for (std::size_t i = 0; i < curves.size(); ++i) {
      QVector<double> xs;
      QVector<double> ys;
      for (std::size_t k = 0; k < curves[i].steps.size() && k < curves[i].values.size(); ++k) {
        xs << static_cast<double>(curves[i].steps[k]);
        ys << static_cast<double>(curves[i].values[k]);
      }
      m_curves->addLine(QString::fromStdString(curves[i].cell), xs, ys, static_cast<int>(i));
    }
    m_curves->setAxisLabels(tr("step"), tr("%1 (unweighted, nats)").arg(QString::fromStdString(term)));
    m_curves->setTitle(tr("%1 on %2, every complete cell").arg(QString::fromStdString(term), QString::fromStdString(task)));
    m_curves->rescale();
    m_curves->queueReplot();
  } catch (const std::exception& e) {
    m_filling = false;
    m_curves->setMessage(QString::fromStdString(e.what()));
  }
}

} // namespace kdscope::widgets
