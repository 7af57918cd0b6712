#include "widgets/jobs/job_queue_panel.h"

#include <QApplication>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QMessageBox>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QVBoxLayout>

#include "widgets/jobs/job_editor.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

namespace {

/// Draws the progress column as a progress bar.
class ProgressDelegate : public QStyledItemDelegate {
public:
  using QStyledItemDelegate::QStyledItemDelegate;
  void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    QStyleOptionProgressBar bar;
    bar.rect = option.rect.adjusted(2, 2, -2, -2);
    bar.minimum = 0;
    bar.maximum = 1000;
    bar.progress = static_cast<int>(index.data(JobQueueModel::kFractionRole).toDouble() * 1000.0);
    bar.text = index.data().toString();
    bar.textVisible = true;
    bar.state = option.state | QStyle::State_Horizontal;
    QApplication::style()->drawControl(QStyle::CE_ProgressBar, &bar, painter);
  }
};

} // namespace

JobQueuePanel::JobQueuePanel(JobQueue* queue, QWidget* parent) : QWidget(parent), m_queue(queue) {
  m_settings.outputRoot = Settings::defaultOutputRoot();
  auto* layout = new QVBoxLayout(this);
  auto* buttons = new QHBoxLayout;
  auto* addFile = new QPushButton(tr("Add job file..."), this);
  auto* newJob = new QPushButton(tr("New job..."), this);
  m_up = new QPushButton(tr("Up"), this);
  m_down = new QPushButton(tr("Down"), this);
  m_remove = new QPushButton(tr("Remove"), this);
  m_start = new QPushButton(tr("Start queue"), this);
  m_cancel = new QPushButton(tr("Cancel job"), this);
  m_start->setObjectName(QStringLiteral("jobsStart"));
  m_cancel->setObjectName(QStringLiteral("jobsCancel"));
  for (QPushButton* button : {addFile, newJob, m_up, m_down, m_remove, m_start, m_cancel}) {
    buttons->addWidget(button);
  }
  buttons->addStretch(1);
  layout->addLayout(buttons);

  auto* split = new QSplitter(Qt::Vertical, this);
  m_table = new QTableView(split);
  m_table->setObjectName(QStringLiteral("jobsTable"));
  m_table->setModel(queue->model());
  m_table->setItemDelegateForColumn(JobQueueModel::ColProgress, new ProgressDelegate(m_table));
  m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_table->setSelectionMode(QAbstractItemView::SingleSelection);
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  auto* bottom = new QSplitter(Qt::Horizontal, split);
  m_log = new QPlainTextEdit(bottom);
  m_log->setObjectName(QStringLiteral("jobsLog"));
  m_log->setReadOnly(true);
  m_log->setMaximumBlockCount(5000);
  m_live = new PlotWidget(bottom);
  m_live->setObjectName(QStringLiteral("jobsLivePlot"));
  m_live->setMessage(tr("Live training curves appear here while a job runs."));
  layout->addWidget(split, 1);

  connect(addFile, &QPushButton::clicked, this, &JobQueuePanel::onAddFile);
  connect(newJob, &QPushButton::clicked, this, &JobQueuePanel::onNewJob);
  connect(m_up, &QPushButton::clicked, this, &JobQueuePanel::onMoveUp);
  connect(m_down, &QPushButton::clicked, this, &JobQueuePanel::onMoveDown);
  connect(m_remove, &QPushButton::clicked, this, &JobQueuePanel::onRemove);
  connect(m_start, &QPushButton::clicked, this, &JobQueuePanel::onStart);
  connect(m_cancel, &QPushButton::clicked, this, &JobQueuePanel::onCancel);
  connect(queue, &JobQueue::logLine, this, &JobQueuePanel::appendLog);
  connect(queue, &JobQueue::jobStarted, this, &JobQueuePanel::onJobStarted);
  connect(queue, &JobQueue::jobProgress, this, &JobQueuePanel::onJobProgress);
  connect(queue, &JobQueue::jobFinished, this, [this] { updateButtons(); });
  connect(queue->model(), &QAbstractItemModel::dataChanged, this, [this] { updateButtons(); });
  connect(queue->model(), &QAbstractItemModel::rowsInserted, this, [this] { updateButtons(); });
  connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] { updateButtons(); });
  connect(m_table, &QTableView::doubleClicked, this, [this](const QModelIndex& index) {
    const JobEntry& job = m_queue->model()->at(index.row());
    if (!job.runPath.isEmpty() && QFileInfo::exists(job.runPath)) {
      Q_EMIT openRunRequested(job.runPath);
    }
  });
  updateButtons();
}

QString JobQueuePanel::logText() const { return m_log->toPlainText(); }

void JobQueuePanel::appendLog(const QString& line) {
  m_log->appendPlainText(QDateTime::currentDateTime().toString(QStringLiteral("hh:mm:ss ")) + line);
}

int JobQueuePanel::selectedRow() const {
  const QModelIndexList rows = m_table->selectionModel()->selectedRows();
  return rows.isEmpty() ? -1 : rows.first().row();
}

void JobQueuePanel::updateButtons() {
  const int row = selectedRow();
  const JobQueueModel* model = m_queue->model();
  const bool has = row >= 0 && row < model->rowCount();
  const bool running = has && model->at(row).state == JobState::Running;
  const bool queued = has && model->at(row).state == JobState::Queued;
  m_up->setEnabled(has && row > 0);
  m_down->setEnabled(has && row + 1 < model->rowCount());
  m_remove->setEnabled(has && !running);
  m_cancel->setEnabled(running || queued);
  m_start->setEnabled(model->nextQueued() >= 0);
}

int JobQueuePanel::queueJob(const core::JobSpec& spec) {
  const QString stamp = QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-hhmmss"));
  const QString dir = QDir(m_settings.outputRoot).filePath(QString::fromStdString(spec.name) + QLatin1Char('-') + stamp);
  return m_queue->addJob(spec, dir);
}

int JobQueuePanel::addJobFile(const QString& path, bool quiet) {
  const core::JobParseResult parsed = core::loadJobFile(path.toStdString());
  if (!parsed.job) {
    QStringList lines;
    for (const core::JobIssue& issue : parsed.issues) {
      lines << QStringLiteral("  ") + QString::fromStdString(issue.str());
    }
    const QString text = tr("%1 is not a valid job:\n%2").arg(path, lines.join(QLatin1Char('\n')));
    appendLog(text);
    if (!quiet) {
      auto* box = new QMessageBox(QMessageBox::Warning, tr("Invalid job"), text, QMessageBox::Ok, this);
      box->setAttribute(Qt::WA_DeleteOnClose);
      box->open(); // window-modal, no nested event loop
    }
    return -1;
  }
  return queueJob(*parsed.job);
}

void JobQueuePanel::onAddFile() {
  const QStringList paths = QFileDialog::getOpenFileNames(this, tr("Add job files"), QString(), tr("Job files (*.json)"));
  for (const QString& path : paths) {
    addJobFile(path);
  }
}

void JobQueuePanel::onNewJob() {
  auto* editor = new JobEditor(this);
  editor->setAttribute(Qt::WA_DeleteOnClose);
  editor->setJsonText(JobEditor::templateJson(m_settings.attentionExamples, m_settings.logEvery, m_settings.pooling));
  connect(editor, &QDialog::accepted, this, [this, editor] {
    if (const auto job = editor->job()) {
      queueJob(*job);
    }
  });
  editor->open();
}

void JobQueuePanel::onMoveUp() {
  const int row = selectedRow();
  if (row > 0 && m_queue->model()->moveJob(row, row - 1)) {
    m_table->selectRow(row - 1);
  }
}

void JobQueuePanel::onMoveDown() {
  const int row = selectedRow();
  if (row >= 0 && m_queue->model()->moveJob(row, row + 1)) {
    m_table->selectRow(row + 1);
  }
}

void JobQueuePanel::onRemove() {
  const int row = selectedRow();
  if (row >= 0) {
    m_queue->model()->removeJob(row);
  }
  updateButtons();
}

void JobQueuePanel::onStart() { m_queue->start(); }

void JobQueuePanel::onCancel() {
  const int row = selectedRow();
  if (row >= 0) {
    m_queue->cancel(m_queue->model()->at(row).id);
  }
}

void JobQueuePanel::onJobStarted(int jobId) {
  m_liveJob = jobId;
  m_liveLines.clear();
  m_liveOrder.clear();
  m_live->clear();
  const JobEntry* job = m_queue->model()->job(jobId);
  m_live->setTitle(tr("Live: %1").arg(job != nullptr ? job->name : QString::number(jobId)));
  m_live->setAxisLabels(tr("step"), tr("loss"));
  m_live->setMessage(tr("waiting for the first logged step..."));
  updateButtons();
}

void JobQueuePanel::onJobProgress(int jobId, const JobProgress& progress) {
  if (jobId != m_liveJob || progress.points.empty()) {
    return;
  }
  // Group the batch's points per series, then append: one replot per update (<= ~10/s).
  QMap<QString, QPair<QVector<double>, QVector<double>>> batches;
  for (const LivePoint& point : progress.points) {
    auto& batch = batches[point.task + QLatin1Char('/') + point.model];
    batch.first << static_cast<double>(point.step);
    batch.second << point.loss;
  }
  for (auto it = batches.begin(); it != batches.end(); ++it) {
    if (!m_liveLines.contains(it.key())) {
      m_liveLines.insert(it.key(), m_live->addLine(it.key(), {}, {}, static_cast<int>(m_liveOrder.size())));
      m_liveOrder << it.key();
    }
    m_live->appendPoints(m_liveLines.value(it.key()), it.value().first, it.value().second);
  }
  m_live->setMessage(QString());
  m_live->rescale(); // queued replot
}

} // namespace kdscope::widgets
