#include "widgets/main_window.h"

#include <QAction>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QStatusBar>
#include <QTabWidget>
#include <QUrl>
#include <QVBoxLayout>

#include "widgets/examples_view.h"
#include "widgets/heads_view.h"
#include "widgets/job_queue_panel.h"
#include "widgets/knowledge_view.h"
#include "widgets/layers_view.h"
#include "widgets/overview_view.h"
#include "widgets/run_browser.h"
#include "widgets/tasks_view.h"

namespace kdscope::widgets {

namespace {
constexpr int kJobsTab = 0;
} // namespace

MainWindow::MainWindow(JobRunner runner, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("KDScope"));
  setAcceptDrops(true);
  m_queue = new JobQueue(std::move(runner), this);

  m_browser = new RunBrowser(this);
  auto* dock = new QDockWidget(tr("Runs"), this);
  dock->setObjectName(QStringLiteral("runsDock"));
  dock->setWidget(m_browser);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* selectors = new QHBoxLayout;
  selectors->addWidget(new QLabel(tr("Task:"), central));
  m_taskCombo = new QComboBox(central);
  m_taskCombo->setObjectName(QStringLiteral("taskSelector"));
  m_taskCombo->setMinimumContentsLength(14);
  selectors->addWidget(m_taskCombo);
  selectors->addWidget(new QLabel(tr("Student (beside the teacher):"), central));
  m_studentCombo = new QComboBox(central);
  m_studentCombo->setObjectName(QStringLiteral("studentSelector"));
  m_studentCombo->setMinimumContentsLength(14);
  selectors->addWidget(m_studentCombo);
  selectors->addStretch(1);
  layout->addLayout(selectors);

  m_tabs = new QTabWidget(central);
  m_jobs = new JobQueuePanel(m_queue, m_tabs);
  m_overview = new OverviewView(m_tabs);
  m_layers = new LayersView(m_tabs);
  m_heads = new HeadsView(m_tabs);
  m_tasks = new TasksView(m_tabs);
  m_knowledge = new KnowledgeView(m_tabs);
  m_examples = new ExamplesView(m_tabs);
  m_tabs->addTab(m_jobs, tr("Jobs"));
  m_tabs->addTab(m_overview, tr("Overview"));
  m_tabs->addTab(m_layers, tr("Layers"));
  m_tabs->addTab(m_heads, tr("Heads"));
  m_tabs->addTab(m_tasks, tr("Tasks"));
  m_tabs->addTab(m_knowledge, tr("Knowledge"));
  m_tabs->addTab(m_examples, tr("Examples"));
  m_views = {m_overview, m_layers, m_heads, m_tasks, m_knowledge, m_examples};
  m_stale = QVector<bool>(m_views.size(), false);
  layout->addWidget(m_tabs, 1);
  setCentralWidget(central);

  buildMenus();
  statusBar()->showMessage(tr("Open a run file (File > Open run, or drop a .h5 file here), or queue a job."));

  connect(m_browser, &RunBrowser::selectionChanged, this, &MainWindow::onSelectionChanged);
  connect(m_browser, &RunBrowser::recentFilesChanged, this, &MainWindow::rebuildRecentMenu);
  connect(m_taskCombo, &QComboBox::currentIndexChanged, this, &MainWindow::onTaskChanged);
  connect(m_studentCombo, &QComboBox::currentIndexChanged, this, [this] {
    std::fill(m_stale.begin(), m_stale.end(), true);
    refreshCurrentView();
  });
  connect(m_tabs, &QTabWidget::currentChanged, this, [this] { refreshCurrentView(); });
  connect(m_jobs, &JobQueuePanel::openRunRequested, this, [this](const QString& path) { openRun(path); });
  connect(m_queue, &JobQueue::jobFinished, this, &MainWindow::onJobFinished);

  applySettings(Settings::load());
  resize(1280, 800);
}

MainWindow::~MainWindow() {
  // Views hold pointers into the browser's documents: detach them first.
  for (AnalysisView* view : m_views) {
    view->setContext({});
  }
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open run..."), QKeySequence::Open, this, [this] {
    const QStringList paths =
        QFileDialog::getOpenFileNames(this, tr("Open run files"), QString(), tr("KDScope runs (*.h5);;All files (*)"));
    for (const QString& path : paths) {
      openRun(path);
    }
  });
  m_recentMenu = file->addMenu(tr("Open &recent"));
  file->addAction(tr("Re&load run"), QKeySequence::Refresh, this, [this] {
    if (const RunDocument* run = m_browser->currentRun()) {
      m_browser->reloadRun(run->path());
    }
  });
  file->addAction(tr("&Close run"), QKeySequence::Close, this, [this] {
    if (const RunDocument* run = m_browser->currentRun()) {
      m_browser->closeRun(run->path());
    }
  });
  file->addSeparator();
  file->addAction(tr("Add &job file..."), m_jobs, &JobQueuePanel::onAddFile);
  file->addAction(tr("&New job..."), QKeySequence::New, m_jobs, &JobQueuePanel::onNewJob);
  file->addSeparator();
  file->addAction(tr("&Settings..."), this, [this] {
    auto* dialog = new SettingsDialog(m_settings, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] {
      const Settings settings = dialog->settings();
      settings.save();
      applySettings(settings);
    });
    dialog->open();
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  m_recentMenu->clear();
  const QStringList recent = m_browser->recentFiles();
  for (const QString& path : recent) {
    m_recentMenu->addAction(path, this, [this, path] { openRun(path); });
  }
  m_recentMenu->setEnabled(!recent.isEmpty());
}

void MainWindow::applySettings(const Settings& settings) {
  m_settings = settings;
  m_queue->setThreads(settings.torchThreads, settings.blasThreads);
  m_queue->setMaxConcurrent(settings.maxConcurrentJobs);
  m_jobs->setSettings(settings);
  PlotWidget::setFigureStyle(settings.figure);
  std::fill(m_stale.begin(), m_stale.end(), true);
  refreshCurrentView();
}

bool MainWindow::openRun(const QString& path, bool quiet) {
  if (!m_browser->openRun(path, quiet)) {
    statusBar()->showMessage(tr("Cannot open %1").arg(path));
    return false;
  }
  statusBar()->showMessage(tr("Opened %1").arg(path));
  if (m_tabs->currentIndex() == kJobsTab) {
    m_tabs->setCurrentWidget(m_overview);
  }
  return true;
}

void MainWindow::onSelectionChanged(const RunDocument* run, const QString& task) {
  const bool sameRun = run == m_run;
  m_run = run;
  if (!sameRun || run == nullptr) {
    // Detach the views before the combo boxes change (a closed run's document is gone).
    for (AnalysisView* view : m_views) {
      view->setContext({});
    }
    const QSignalBlocker block(m_taskCombo);
    m_taskCombo->clear();
    if (run != nullptr) {
      m_taskCombo->addItems(run->taskNames());
    }
  }
  if (!task.isEmpty()) {
    const QSignalBlocker block(m_taskCombo);
    m_taskCombo->setCurrentText(task);
  }
  onTaskChanged();
}

void MainWindow::onTaskChanged() {
  {
    const QSignalBlocker block(m_studentCombo);
    const QString previous = m_studentCombo->currentText();
    m_studentCombo->clear();
    if (m_run != nullptr) {
      m_studentCombo->addItems(m_run->studentsOf(m_taskCombo->currentText()));
      if (!previous.isEmpty() && m_studentCombo->findText(previous) >= 0) {
        m_studentCombo->setCurrentText(previous);
      }
    }
  }
  std::fill(m_stale.begin(), m_stale.end(), true);
  refreshCurrentView();
}

void MainWindow::refreshCurrentView() {
  // Only the visible view is filled; the others when they are shown.
  const int index = m_views.indexOf(qobject_cast<AnalysisView*>(m_tabs->currentWidget()));
  if (index < 0 || !m_stale[index]) {
    return;
  }
  m_stale[index] = false;
  ViewContext context;
  context.run = m_run;
  if (m_run != nullptr) {
    context.task = m_taskCombo->currentText();
    context.teacher = m_run->teacherOf(context.task);
    context.student = m_studentCombo->currentText();
  }
  m_views[index]->setContext(context);
}

void MainWindow::onJobFinished(int jobId, const core::JobResult& result) {
  const JobEntry* job = m_queue->model()->job(jobId);
  const QString name = job != nullptr ? job->name : QString::number(jobId);
  if (result.status == core::JobStatus::Failed || result.status == core::JobStatus::BadInput) {
    auto* box = new QMessageBox(QMessageBox::Warning, tr("Job failed"),
                                tr("Job '%1' failed:\n\n%2").arg(name, QString::fromStdString(result.message)),
                                QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("jobFailedMessage"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  } else if (result.status == core::JobStatus::Succeeded) {
    statusBar()->showMessage(tr("Job '%1' finished: %2").arg(name, QString::fromStdString(result.runPath)));
    if (!result.runPath.empty() && QFileInfo::exists(QString::fromStdString(result.runPath))) {
      m_browser->openRun(QString::fromStdString(result.runPath), /*quiet=*/true);
    }
  }
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) {
    for (const QUrl& url : event->mimeData()->urls()) {
      if (url.isLocalFile() && url.toLocalFile().endsWith(QStringLiteral(".h5"), Qt::CaseInsensitive)) {
        event->acceptProposedAction();
        return;
      }
    }
  }
}

void MainWindow::dropEvent(QDropEvent* event) {
  for (const QUrl& url : event->mimeData()->urls()) {
    if (url.isLocalFile() && url.toLocalFile().endsWith(QStringLiteral(".h5"), Qt::CaseInsensitive)) {
      openRun(url.toLocalFile());
    }
  }
  event->acceptProposedAction();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  // Running jobs are cancelled; JobQueue's destructor waits for them to reach a cancel check.
  // (No confirmation dialog: that would spin a nested event loop.)
  m_queue->cancelAll();
  event->accept();
}

} // namespace kdscope::widgets
