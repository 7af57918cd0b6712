#include "widgets/views/study_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QTime>
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

#include "core/study/study_follow.h"
#include "core/study/summary.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/figures/study_figures.h"
#include "widgets/views/study_folder_follower.h"
#include "widgets/views/study_slurm_dialog.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/multiple_testing.h"
#include "widgets/views/study_sensitivity_table.h"

namespace kdscope::widgets {

namespace {

namespace an = core::analysis;

const core::StudyMetric kMetrics[] = {core::StudyMetric::Gap, core::StudyMetric::StudentAccuracy,
                                      core::StudyMetric::Retained, core::StudyMetric::SourceGap};

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
  // A study whose cells other processes are writing (a Slurm array): follow its folder.
  auto* follow = new QPushButton(tr("Follow study folder..."), this);
  follow->setToolTip(tr("Show a study while its cells are being run elsewhere (e.g. a Slurm job array): "
                        "the cells complete so far, polled"));
  top->addWidget(follow);
  m_reload = new QPushButton(tr("Reload"), this);
  m_reload->setToolTip(tr("Read the study again from its files"));
  m_reload->setEnabled(false);
  top->addWidget(m_reload);
  m_followCheck = new QCheckBox(tr("Follow"), this);
  m_followCheck->setToolTip(tr("Poll the followed folder for cells that completed"));
  m_followCheck->setChecked(true);
  m_followCheck->setEnabled(false);
  top->addWidget(m_followCheck);
  m_slurm = new QPushButton(tr("Slurm scripts..."), this);
  m_slurm->setToolTip(tr("Write the sbatch scripts that run a study as a Slurm job array"));
  top->addWidget(m_slurm);
  // The study's figures as `kdscope export --study` writes them (the gap with the default
  // factors, the loss curves), each with its CSV; the plots' context menus export what they show.
  m_export = new QPushButton(tr("Export figures..."), this);
  m_export->setObjectName(QStringLiteral("studyExportButton"));
  m_export->setToolTip(tr("Export the study's figures (study.gap_heatmap.TASK, ...), as kdscope export --study does"));
  m_export->setEnabled(false);
  top->addWidget(m_export);
  m_task = labelledCombo(tr("Task:"), this, top);
  m_metric = labelledCombo(tr("Metric:"), this, top);
  for (const auto metric : kMetrics) {
    m_metric->addItem(studyMetricTitle(metric));
  }
  top->addStretch(1);
  layout->addLayout(top);
  m_status = new QLabel(tr("No study loaded: run `kdscope study STUDY.json --out DIR`, then open "
                           "DIR/study_summary.json, or follow DIR while its cells run."),
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
  m_effectsTable->setColumnCount(10);
  m_effectsTable->setHorizontalHeaderLabels({tr("factor"), tr("effect"), tr("spread"), tr("level"), tr("mean"),
                                             tr("sd"), tr("min..max"), tr("cells"),
                                             tr("95% interval (Student-t over replicates)"),
                                             tr("vs first level (paired t over replicates)")});
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
  // Task sensitivity: the slope of retained fraction against compression, per task.
  m_sensitivity = new QTableWidget(m_tabs);
  setUpSensitivityTable(*m_sensitivity);
  m_tabs->addTab(m_sensitivity, tr("Task sensitivity"));
  layout->addWidget(m_tabs, 1);

  connect(open, &QPushButton::clicked, this, &StudyView::onOpen);
  connect(follow, &QPushButton::clicked, this, &StudyView::onFollowFolder);
  connect(m_reload, &QPushButton::clicked, this, &StudyView::reload);
  connect(m_slurm, &QPushButton::clicked, this, &StudyView::onSlurmScripts);
  connect(m_followCheck, &QCheckBox::toggled, this, [this](bool on) {
    if (m_follower != nullptr) {
      m_follower->setInterval(on ? m_followInterval : 0);
    }
  });
  connect(m_export, &QPushButton::clicked, this, &StudyView::exportFiguresRequested);
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
  std::unique_ptr<core::StudySummary> summary;
  try {
    summary = std::make_unique<core::StudySummary>(core::readStudySummary(path.toStdString()));
  } catch (const std::exception& e) {
    if (error != nullptr) {
      *error = QString::fromStdString(e.what());
    }
    return false;
  }
  stopFollowing();
  m_dir = QFileInfo(path).absolutePath();
  m_path = QFileInfo(path).absoluteFilePath();
  showSummary(std::move(summary));
  m_status->setText(tr("Study '%1': %2 of %3 cells complete, %4 task(s)%5. %6")
                        .arg(QString::fromStdString(m_summary->name))
                        .arg(m_summary->completeCells())
                        .arg(m_summary->cells.size())
                        .arg(m_summary->tasks.size())
                        .arg(m_summary->replicates.empty()
                                 ? QString()
                                 : tr(", %1 replicates: numbers are means over the replicates, intervals and "
                                      "error bars 95% Student-t over the replicates")
                                       .arg(m_summary->replicates.seeds.size()))
                        .arg(QDir::toNativeSeparators(path)));
  return true;
}

void StudyView::showSummary(std::unique_ptr<core::StudySummary> summary) {
  const auto shape = [](const core::StudySummary& s) {
    std::vector<std::string> parts = s.tasks;
    for (const auto& f : s.factors) {
      parts.push_back(f.name + ":" + std::to_string(f.levels.size()));
    }
    return parts;
  };
  const bool sameShape = m_summary && shape(*m_summary) == shape(*summary);
  m_summary = std::move(summary);
  // The export reads a summary file; a followed folder has one once the study is merged.
  m_export->setEnabled(!m_path.isEmpty());
  m_reload->setEnabled(true);
  if (!sameShape) {
    fillFactorCombos();
  }
  refresh();
}

bool StudyView::followStudy(const QString& dir, QString* error) {
  const QString studyFile = QDir(dir).filePath(QStringLiteral("study.json"));
  if (!QFileInfo::exists(studyFile)) {
    if (error != nullptr) {
      *error = tr("%1: no study here (kdscope study writes study.json into its --out folder when it starts)")
                   .arg(QDir::toNativeSeparators(studyFile));
    }
    return false;
  }
  stopFollowing();
  m_summary.reset();
  m_dir = QFileInfo(dir).absoluteFilePath();
  m_path.clear();
  m_follower = new StudyFolderFollower(m_dir, this);
  connect(m_follower, &StudyFolderFollower::refreshed, this, &StudyView::onFollowed);
  connect(m_follower, &StudyFolderFollower::failed, this, [this](const QString& message) {
    m_status->setText(message);
    Q_EMIT followFailed(message);
  });
  m_followCheck->setEnabled(true);
  m_reload->setEnabled(true);
  m_follower->setInterval(m_followCheck->isChecked() ? m_followInterval : 0);
  m_status->setText(tr("Reading %1...").arg(QDir::toNativeSeparators(m_dir)));
  m_follower->refreshNow();
  return true;
}

void StudyView::stopFollowing() {
  if (m_follower != nullptr) {
    m_follower->setInterval(0);
    m_follower->disconnect(this);
    m_follower->deleteLater(); // it may be delivering a result right now
    m_follower = nullptr;
  }
  m_followCheck->setEnabled(false);
}

void StudyView::onFollowed(const std::shared_ptr<const core::StudySummary>& summary) {
  showSummary(std::make_unique<core::StudySummary>(*summary));
  const core::StudyProgressCounts counts = core::studyProgressCounts(*m_summary);
  m_status->setText(tr("Study '%1': %2 of %3 cells complete (%4 running, %5 failed, %6 not started), "
                       "%7 task(s). Following %8, read %9.")
                        .arg(QString::fromStdString(m_summary->name))
                        .arg(counts.complete)
                        .arg(counts.total)
                        .arg(counts.running)
                        .arg(counts.failed)
                        .arg(counts.missing)
                        .arg(m_summary->tasks.size())
                        .arg(QDir::toNativeSeparators(m_dir))
                        .arg(QTime::currentTime().toString(QStringLiteral("HH:mm:ss"))));
  Q_EMIT followed(static_cast<int>(counts.complete), static_cast<int>(counts.total));
}

void StudyView::setFollowInterval(int ms) {
  m_followInterval = std::max(1, ms);
  if (m_follower != nullptr && m_followCheck->isChecked()) {
    m_follower->setInterval(m_followInterval);
  }
}

void StudyView::reload() {
  if (m_follower != nullptr) {
    m_follower->refreshNow();
  } else if (!m_path.isEmpty()) {
    QString error;
    if (!loadSummary(m_path, &error)) {
      m_status->setText(error);
    }
  }
}

std::pair<int, int> StudyView::cellsDone() const {
  if (!m_summary) {
    return {0, 0};
  }
  return {static_cast<int>(m_summary->completeCells()), static_cast<int>(m_summary->cells.size())};
}

QString StudyView::statusText() const { return m_status->text(); }

void StudyView::onFollowFolder() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Follow study folder (its --out folder)"));
  if (dir.isEmpty()) {
    return;
  }
  QString error;
  if (!followStudy(dir, &error)) {
    m_status->setText(error);
  }
}

void StudyView::onSlurmScripts() {
  auto* dialog = new StudySlurmDialog(this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  if (!m_dir.isEmpty()) {
    dialog->setOutDir(m_dir);
  }
  dialog->open();
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
  // The same default factors as `kdscope export --study` draws (study_figures.h).
  const StudyAxes axes = defaultStudyAxes(*m_summary);
  const auto pick = [&factors](QComboBox* combo, const std::string& name, bool withNone) {
    combo->clear();
    if (withNone) {
      combo->addItem(QObject::tr("(none)"));
    }
    combo->addItems(factors);
    combo->setCurrentIndex(std::max(0, combo->findText(QString::fromStdString(name))));
  };
  pick(m_rowFactor, axes.row, false);
  pick(m_colFactor, axes.col, true);
  pick(m_xFactor, axes.x, false);
  pick(m_seriesFactor, axes.series, true);
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
  case 4:
    fillSensitivityTable(*m_sensitivity, *m_summary);
    break;
  default:
    refreshCurves();
    break;
  }
}

void StudyView::refreshHeatmap() {
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  const std::string row = m_rowFactor->currentText().toStdString();
  const std::string col = m_colFactor->currentIndex() <= 0 ? std::string() : m_colFactor->currentText().toStdString();
  figures::buildStudyHeatmap(*m_heatmap, *m_summary, currentTask(), m_task->currentText(), row, col, metric);
  m_heatmap->queueReplot();
}

void StudyView::refreshLines() {
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  const std::string x = m_xFactor->currentText().toStdString();
  const std::string series =
      m_seriesFactor->currentIndex() <= 0 ? std::string() : m_seriesFactor->currentText().toStdString();
  figures::buildStudyLines(*m_lines, *m_summary, currentTask(), m_task->currentText(), x, series, metric);
  m_lines->queueReplot();
}

void StudyView::refreshEffects() {
  m_effectsTable->setRowCount(0);
  const auto metric = kMetrics[std::max(0, m_metric->currentIndex())];
  // The plot and the table list the factors in the same order: largest effect first.
  const auto effects = figures::buildStudyEffects(*m_effects, *m_summary, currentTask(), m_task->currentText(), metric);
  const auto number = [](double v) { return std::isfinite(v) ? QString::number(v, 'f', 4) : QStringLiteral("-"); };
  for (const auto& effect : effects) {
    for (std::size_t l = 0; l < effect.levels.size(); ++l) {
      const auto& level = effect.levels[l];
      const int row = m_effectsTable->rowCount();
      m_effectsTable->insertRow(row);
      const auto cell = [this, row](int col, const QString& text) {
        m_effectsTable->setItem(row, col, new QTableWidgetItem(text));
      };
      cell(0, l == 0 ? QString::fromStdString(effect.factor) : QString());
      cell(1, l == 0 ? number(effect.effect) : QString());
      cell(2, l == 0 ? number(effect.spread) : QString());
      cell(3, QString::fromStdString(level.level));
      cell(4, number(level.mean));
      cell(5, number(level.stddev));
      cell(6, number(level.min) + QStringLiteral(" .. ") + number(level.max));
      cell(7, QString::number(level.count));
      // A replicated study: the level mean's t interval over the replicates, and the paired t
      // of this level against the first one (same seeds).
      const core::StudyRepEffect* rep =
          m_summary->replicates.effect(currentTask(), core::toString(metric), effect.factor);
      if (rep == nullptr || l >= rep->levelMeans.size()) {
        cell(8, tr("- (one run per cell)"));
        continue;
      }
      an::Interval mean = rep->levelMeans[l].summary.interval;
      mean.estimate = rep->levelMeans[l].summary.mean;
      cell(8, QString::fromStdString(an::intervalText(mean)));
      if (l == 0) {
        an::Interval e = rep->effect.summary.interval;
        e.estimate = rep->effect.summary.mean;
        cell(1, QString::fromStdString(an::intervalText(e)));
        an::Interval spread = rep->spread.summary.interval;
        spread.estimate = rep->spread.summary.mean;
        cell(2, QString::fromStdString(an::intervalText(spread)));
        continue;
      }
      for (const core::StudyRepLevelPair& pair : rep->pairs) {
        if (pair.first == rep->levels[0] && pair.second == level.level) {
          const bool seen = an::detectable(pair.test.difference, an::verdictP(pair.test.pValue, pair.holm));
          cell(9, tr("%1 - %2: %3, %4%5")
                      .arg(QString::fromStdString(pair.first), QString::fromStdString(pair.second),
                           QString::fromStdString(an::intervalText(pair.test.difference, 4, true)),
                           QString::fromStdString(an::pValuesText(pair.test.pValue, pair.holm)),
                           seen ? QString() : tr(" (%1)").arg(QString::fromUtf8(an::kNoDetectableDifference))));
        }
      }
    }
  }
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
    figures::buildStudyLossCurves(*m_curves, *m_summary, m_dir.toStdString(), task,
                                  m_term->currentText().toStdString());
    m_curves->queueReplot();
  } catch (const std::exception& e) {
    m_filling = false;
    m_curves->setMessage(QString::fromStdString(e.what()));
  }
}

} // namespace kdscope::widgets
