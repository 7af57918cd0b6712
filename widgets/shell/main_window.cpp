#include "widgets/shell/main_window.h"

#include <QAction>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QProgressDialog>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <memory>

#include "widgets/views/examples_view.h"
#include "widgets/figures/export_dialog.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/views/heads_view.h"
#include "widgets/jobs/job_queue_panel.h"
#include "widgets/views/knowledge_view.h"
#include "widgets/views/layers_view.h"
#include "widgets/views/overview_view.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/report/report_job.h"
#include "widgets/shell/run_browser.h"
#include "widgets/figures/study_figures.h"
#include "widgets/views/study_view.h"
#include "widgets/views/tasks_view.h"

namespace kdscope::widgets {

namespace {
constexpr int kJobsTab = 0;

// The PNG export of a figure at about screen resolution (the dialog's preview).
QImage previewPng(const FigureSpec& spec, const FigureStyle& style, QString* error) {
  try {
    FigureStyle screen = style;
    screen.dpi = std::max(50, std::min(110, static_cast<int>(360 / style.widthInches)));
    const auto plot = buildExportPlot(spec, screen);
    return QImage::fromData(renderFigure(*plot, spec, screen, FigureFormat::Png, QDateTime(), error), "PNG");
  } catch (const std::exception& e) {
    *error = QString::fromUtf8(e.what());
    return {};
  }
}
} // namespace

bool MainWindow::studyShown() const { return m_tabs->currentWidget() == m_study && m_study->hasSummary(); }

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
  m_study = new StudyView(m_tabs);
  m_tabs->addTab(m_study, tr("Study")); // reads a study summary, not the selected run
  m_views = {m_overview, m_layers, m_heads, m_tasks, m_knowledge, m_examples};
  m_stale = QVector<bool>(m_views.size(), false);
  layout->addWidget(m_tabs, 1);
  setCentralWidget(central);

  buildMenus();
  // Every plot of a view offers "Export figure..." in its context menu once it shows a
  // figure of the run (its builder names it).
  // Plots that are no figure of a run (study view, live curves) export what they show.
  for (PlotWidget* plot : findChildren<PlotWidget*>()) {
    connect(plot, &PlotWidget::exportFigureRequested, this,
            [this](const QString& name) { openExportDialog({name}, /*pack=*/false); });
    connect(plot, &PlotWidget::exportContentRequested, this, [this, plot] { openContentExportDialog(plot); });
  }
  connect(m_study, &StudyView::exportFiguresRequested, this, [this] { openStudyExportDialog(); });
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
  QAction* exportView = file->addAction(tr("&Export figures of this view..."), QKeySequence(tr("Ctrl+E")), this,
                                        [this] {
                                          if (studyShown()) {
                                            openStudyExportDialog();
                                          } else {
                                            openExportDialog(currentViewFigures(), /*pack=*/false);
                                          }
                                        });
  exportView->setObjectName(QStringLiteral("exportViewAction"));
  QAction* exportPack = file->addAction(tr("Export figure &pack..."), QKeySequence(tr("Ctrl+Shift+E")), this,
                                        [this] {
                                          if (studyShown()) {
                                            openStudyExportDialog();
                                          } else {
                                            openExportDialog({}, /*pack=*/true);
                                          }
                                        });
  exportPack->setObjectName(QStringLiteral("exportPackAction"));
  QAction* report = file->addAction(tr("&Report..."), this, [this] {
    if (studyShown()) { // the Study tab with a summary open: the study's report
      const QString dir = QFileDialog::getExistingDirectory(this, tr("Write the study's report into"));
      if (!dir.isEmpty()) {
        writeReport(QFileInfo(m_study->summaryPath()).absolutePath(), dir);
      }
      return;
    }
    const RunDocument* run = m_browser->currentRun();
    if (run == nullptr) {
      statusBar()->showMessage(tr("Open a run first: the report is of the current run"), 5000);
      return;
    }
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Write the report into"));
    if (!dir.isEmpty()) {
      writeReport(run->path(), dir);
    }
  });
  report->setObjectName(QStringLiteral("reportAction"));
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

QStringList MainWindow::currentViewFigures() const {
  QStringList names;
  auto* view = qobject_cast<AnalysisView*>(m_tabs->currentWidget());
  if (view == nullptr) {
    return names;
  }
  for (const PlotWidget* plot : view->findChildren<PlotWidget*>()) {
    if (!plot->figureName().isEmpty() && !names.contains(plot->figureName())) {
      names << plot->figureName();
    }
  }
  names.sort();
  return names;
}

QImage MainWindow::previewFigure(const QString& name, const FigureStyle& style, QString* error) const {
  if (m_run == nullptr) {
    *error = tr("no run open");
    return {};
  }
  try {
    const FigureCatalog catalog({m_run});
    const auto spec = catalog.find(name);
    if (!spec) {
      *error = tr("no figure %1 in %2").arg(name, m_run->path());
      return {};
    }
    // The PNG export itself, at about screen resolution.
    FigureStyle screen = style;
    screen.dpi = std::max(50, std::min(110, static_cast<int>(360 / style.widthInches)));
    const auto plot = buildExportPlot(*spec, screen);
    const QByteArray png = renderFigure(*plot, *spec, screen, FigureFormat::Png, QDateTime(), error);
    return QImage::fromData(png, "PNG");
  } catch (const std::exception& e) {
    *error = QString::fromUtf8(e.what());
    return {};
  }
}

ExportDialog* MainWindow::openExportDialog(const QStringList& figures, bool pack) {
  if (m_run == nullptr) {
    statusBar()->showMessage(tr("Open a run to export its figures."));
    return nullptr;
  }
  QStringList offered = figures;
  if (pack) {
    const FigureCatalog catalog({m_run});
    offered.clear();
    if (!catalog.figures().empty()) {
      offered << catalog.figures().front().name;
    }
  }
  if (!pack && offered.isEmpty()) {
    statusBar()->showMessage(tr("This view shows no figure to export."));
    return nullptr;
  }
  auto* dialog = new ExportDialog(pack ? ExportDialog::Mode::Pack : ExportDialog::Mode::Figures, offered,
                                  m_settings.figure, m_browser->runCount(), this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  QSettings store;
  dialog->setOutDir(store.value(QStringLiteral("export/last_folder"),
                                QDir(m_settings.outputRoot).filePath(QStringLiteral("figures")))
                        .toString());
  dialog->setPreviewer([this](const QString& name, const FigureStyle& style, QString* error) {
    return previewFigure(name, style, error);
  });
  const QString runPath = m_run->path();
  connect(dialog, &QDialog::accepted, this, [this, dialog, runPath] {
    const ExportOptions options = dialog->options();
    if (options.outDir.isEmpty()) {
      statusBar()->showMessage(tr("Choose a folder to export to."));
      return;
    }
    QSettings remembered;
    remembered.setValue(QStringLiteral("export/last_folder"), options.outDir);
    QStringList runs{runPath};
    if (dialog->compareOpenRuns()) {
      runs.clear();
      for (int i = 0; i < m_browser->runCount(); ++i) {
        runs << m_browser->run(i)->path();
      }
    }
    exportFigures(runs, dialog->selectedFigures(), options);
  });
  dialog->open();
  return dialog;
}

ExportDialog* MainWindow::openContentExportDialog(const PlotWidget* plot) {
  const FigureSpec figure = contentFigure(*plot);
  auto* dialog = new ExportDialog(ExportDialog::Mode::Figures, {figure.name}, m_settings.figure, 1, this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  QSettings store;
  dialog->setOutDir(store.value(QStringLiteral("export/last_folder"),
                                QDir(m_settings.outputRoot).filePath(QStringLiteral("figures")))
                        .toString());
  dialog->setPreviewer([figure](const QString&, const FigureStyle& style, QString* error) {
    try {
      FigureStyle screen = style;
      screen.dpi = std::max(50, std::min(110, static_cast<int>(360 / style.widthInches)));
      const auto built = buildExportPlot(figure, screen);
      return QImage::fromData(renderFigure(*built, figure, screen, FigureFormat::Png, QDateTime(), error), "PNG");
    } catch (const std::exception& e) {
      *error = QString::fromUtf8(e.what());
      return QImage();
    }
  });
  connect(dialog, &QDialog::accepted, this, [this, dialog, figure] {
    const ExportOptions options = dialog->options();
    if (options.outDir.isEmpty()) {
      statusBar()->showMessage(tr("Choose a folder to export to."));
      return;
    }
    if (dialog->selectedFigures().isEmpty()) {
      return;
    }
    QSettings remembered;
    remembered.setValue(QStringLiteral("export/last_folder"), options.outDir);
    exportFigures(std::vector<FigureSpec>{figure}, options);
  });
  dialog->open();
  return dialog;
}

ExportDialog* MainWindow::openStudyExportDialog() {
  if (!m_study->hasSummary()) {
    statusBar()->showMessage(tr("Open a study summary in the Study tab to export its figures."));
    return nullptr;
  }
  // The same study, catalog and names as `kdscope export --study` (re-read from the files,
  // so a complete cell whose run file is missing is reported as there).
  auto study = std::make_shared<StudyDocument>();
  std::shared_ptr<const FigureCatalog> catalog;
  try {
    *study = openStudy(m_study->summaryPath());
    catalog = std::make_shared<const FigureCatalog>(studyFigures(*study));
  } catch (const std::exception& e) {
    statusBar()->showMessage(tr("Cannot export the study: %1").arg(QString::fromUtf8(e.what())));
    return nullptr;
  }
  QStringList names;
  for (const FigureSpec& spec : catalog->figures()) {
    names << spec.name;
  }
  if (names.isEmpty()) {
    statusBar()->showMessage(tr("Study '%1' has no figures to export.").arg(QString::fromStdString(study->summary->name)));
    return nullptr;
  }
  auto* dialog = new ExportDialog(ExportDialog::Mode::Figures, names, m_settings.figure, 1, this);
  dialog->setWindowTitle(tr("Export figures of study '%1'").arg(QString::fromStdString(study->summary->name)));
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  dialog->setIndex(IndexFormat::Markdown);
  QSettings store;
  dialog->setOutDir(store.value(QStringLiteral("export/last_folder"),
                                QDir(m_settings.outputRoot).filePath(QStringLiteral("figures")))
                        .toString());
  dialog->setPreviewer([catalog](const QString& name, const FigureStyle& style, QString* error) {
    const auto spec = catalog->find(name);
    if (!spec) {
      *error = tr("no figure %1").arg(name);
      return QImage();
    }
    return previewPng(*spec, style, error);
  });
  connect(dialog, &QDialog::accepted, this, [this, dialog, study, catalog] {
    ExportOptions options = dialog->options();
    if (options.outDir.isEmpty()) {
      statusBar()->showMessage(tr("Choose a folder to export to."));
      return;
    }
    const QStringList chosen = dialog->selectedFigures();
    if (chosen.isEmpty()) {
      return;
    }
    QSettings remembered;
    remembered.setValue(QStringLiteral("export/last_folder"), options.outDir);
    describeStudyExport(*study, &options);
    exportFigures(catalog->select(chosen), options);
  });
  dialog->open();
  return dialog;
}

FigureExportJob* MainWindow::exportFigures(const std::vector<FigureSpec>& figures, const ExportOptions& options) {
  if (m_exportJob != nullptr) {
    statusBar()->showMessage(tr("An export is running."));
    return nullptr;
  }
  return startExport(new FigureExportJob(figures, options, this), options);
}

FigureExportJob* MainWindow::exportFigures(const QStringList& runPaths, const QStringList& names,
                                           const ExportOptions& options) {
  if (m_exportJob != nullptr) {
    statusBar()->showMessage(tr("An export is running."));
    return nullptr;
  }
  return startExport(new FigureExportJob(runPaths, names, options, this), options);
}

FigureExportJob* MainWindow::startExport(FigureExportJob* job, const ExportOptions& options) {
  m_exportJob = job;
  connect(m_exportJob, &FigureExportJob::progress, this, [this](int done, int total, const QString& name) {
    statusBar()->showMessage(tr("Exporting figures %1 of %2: %3").arg(done).arg(total).arg(name));
  });
  connect(m_exportJob, &FigureExportJob::finished, this,
          [this, options](const ExportSummary& summary, const QString& error) {
            const int written = static_cast<int>(summary.figures.size()) - summary.failures();
            QString text = error.isEmpty()
                               ? tr("Exported %1 of %2 figures to %3").arg(written).arg(summary.figures.size()).arg(options.outDir)
                               : tr("Export failed: %1").arg(error);
            QStringList problems = summary.warnings;
            for (const ExportedFigure& figure : summary.figures) {
              if (!figure.error.isEmpty()) {
                problems << figure.error;
              }
            }
            if (!problems.isEmpty()) {
              text += QStringLiteral(" (") + problems.join(QStringLiteral("; ")) + QStringLiteral(")");
            }
            statusBar()->showMessage(text);
            m_exportJob->deleteLater();
            m_exportJob = nullptr;
            Q_EMIT figuresExported(summary, error);
          });
  m_exportJob->start();
  return m_exportJob;
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

ReportJob* MainWindow::writeReport(const QString& input, const QString& outDir) {
  if (m_reportJob != nullptr) {
    statusBar()->showMessage(tr("A report is being written"), 5000);
    return nullptr;
  }
  auto* job = new ReportJob(input, outDir, this);
  m_reportJob = job;
  // A QPointer: the user may close the dialog (which deletes it) before the job ends.
  const QPointer<QProgressDialog> dialog = new QProgressDialog(tr("Writing the report..."), tr("Cancel"), 0, 0, this);
  dialog->setWindowTitle(tr("Report"));
  dialog->setMinimumDuration(300);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog.data(), &QProgressDialog::canceled, job, [job] { job->cancel(); });
  connect(job, &ReportJob::progress, dialog.data(), [dialog](int done, int total, const QString& what) {
    dialog->setMaximum(total);
    dialog->setValue(done);
    dialog->setLabelText(total == 0 ? tr("Reading the run and computing the report...")
                                    : tr("Figure %1 of %2: %3").arg(done).arg(total).arg(what));
  });
  connect(job, &ReportJob::finished, this, [this, job, dialog](const ReportFiles& files, const QString& error) {
    if (dialog) {
      dialog->close();
    }
    m_reportJob = nullptr;
    job->deleteLater();
    if (error.isEmpty()) {
      statusBar()->showMessage(tr("Report written: %1 and %2").arg(files.html, files.pdf), 10000);
    } else if (error == QLatin1String("cancelled")) {
      statusBar()->showMessage(tr("Report cancelled"), 5000);
    } else {
      statusBar()->showMessage(tr("Report failed: %1").arg(error), 10000);
      if (isVisible()) {
        QMessageBox::warning(this, tr("Report"), error);
      }
    }
    Q_EMIT reportWritten(files.html, error);
  });
  job->start();
  return job;
}

} // namespace kdscope::widgets
