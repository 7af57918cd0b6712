#pragma once
/// MainWindow: the workbench. The run browser (dock), the job queue, and the views of the
/// selected run (Overview, Layers, Heads, Tasks, Knowledge, Examples) under one task and
/// student selector, and the Study tab (a study summary, not the selected run). Accepts
/// dropped .h5 files. GUI thread.

#include <QMainWindow>
#include <QVector>

#include "widgets/figures/figure_export.h"
#include "widgets/jobs/job_queue.h"
#include "widgets/shell/settings_dialog.h"

class QComboBox;
class QMenu;
class QTabWidget;

namespace kdscope::widgets {

class AnalysisView;
class ExamplesView;
class ExportDialog;
class HeadsView;
class JobQueuePanel;
class ReportJob;
class KnowledgeView;
class LayersView;
class OverviewView;
class PlotWidget;
class RunBrowser;
class RunDocument;
class StudyView;
class TasksView;

class MainWindow : public QMainWindow {
  Q_OBJECT
public:
  /// `runner` runs jobs (core::runJob by default; tests inject a fake).
  explicit MainWindow(JobRunner runner = coreJobRunner(), QWidget* parent = nullptr);
  ~MainWindow() override;

  [[nodiscard]] RunBrowser* runBrowser() const { return m_browser; }
  [[nodiscard]] JobQueue* jobQueue() const { return m_queue; }
  [[nodiscard]] JobQueuePanel* jobPanel() const { return m_jobs; }
  [[nodiscard]] QTabWidget* tabs() const { return m_tabs; }
  [[nodiscard]] OverviewView* overview() const { return m_overview; }
  [[nodiscard]] LayersView* layers() const { return m_layers; }
  [[nodiscard]] HeadsView* heads() const { return m_heads; }
  [[nodiscard]] TasksView* tasksView() const { return m_tasks; }
  [[nodiscard]] KnowledgeView* knowledge() const { return m_knowledge; }
  [[nodiscard]] ExamplesView* examples() const { return m_examples; }
  [[nodiscard]] StudyView* studyView() const { return m_study; }
  [[nodiscard]] QComboBox* taskSelector() const { return m_taskCombo; }
  [[nodiscard]] QComboBox* studentSelector() const { return m_studentCombo; }

  /// Opens a run file and shows its Overview. False (with a message box unless quiet) for a
  /// bad file.
  bool openRun(const QString& path, bool quiet = false);
  void applySettings(const Settings& settings);
  [[nodiscard]] const Settings& settings() const { return m_settings; }

  /// The figure names of the plots of the current view (what File > Export offers).
  [[nodiscard]] QStringList currentViewFigures() const;
  /// File > Export (pack = false) or File > Export figure pack (pack = true): opens the
  /// export dialog (open(), not exec()) for `figures` of the current run; returns it, or
  /// null when no run is open. Accepting it starts exportFigures.
  ExportDialog* openExportDialog(const QStringList& figures, bool pack);
  /// "Export figure..." on a plot that is no figure of a run (the study view, live curves):
  /// the dialog for contentFigure(plot), exported from the plot's own numbers.
  ExportDialog* openContentExportDialog(const PlotWidget* plot);
  /// The Study tab's "Export figures..." (also File > Export... while the Study tab shows a
  /// study): the dialog on the study's figures, the catalog and names of `kdscope export
  /// --study` (study_figures.h), every one ticked, a Markdown index by default. Accepting it
  /// exports the ticked ones with exportFigures (one per event-loop pass), the index naming
  /// the study and its command as the command line's does. Null (with a status message)
  /// when no study is loaded or it cannot be opened.
  ExportDialog* openStudyExportDialog();
  /// Exports figures of run files (FigureExportJob, one figure per event-loop pass) and
  /// reports in the status bar; figuresExported when done. Null while another export runs.
  FigureExportJob* exportFigures(const QStringList& runPaths, const QStringList& names, const ExportOptions& options);
  FigureExportJob* exportFigures(const std::vector<FigureSpec>& figures, const ExportOptions& options);
  [[nodiscard]] bool exportRunning() const { return m_exportJob != nullptr; }
  /// File > Report...: writes the distillation loss report of `input` (a run file or a
  /// replicate folder) into `outDir` (widgets/report/report_job.h) with a progress dialog
  /// that can cancel; the result in the status bar (and a message box on error). Null while
  /// another report runs.
  ReportJob* writeReport(const QString& input, const QString& outDir);

Q_SIGNALS:
  void reportWritten(const QString& htmlPath, const QString& error);
  void figuresExported(const kdscope::widgets::ExportSummary& summary, const QString& error);

protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  void closeEvent(QCloseEvent* event) override;

private:
  void buildMenus();
  void rebuildRecentMenu();
  void onSelectionChanged(const RunDocument* run, const QString& task);
  void onTaskChanged();
  void refreshCurrentView();
  void onJobFinished(int jobId, const core::JobResult& result);
  FigureExportJob* startExport(FigureExportJob* job, const ExportOptions& options);
  /// The Study tab is shown with a study loaded (File > Export... then exports the study).
  [[nodiscard]] bool studyShown() const;
  [[nodiscard]] QImage previewFigure(const QString& name, const FigureStyle& style, QString* error) const;

  JobQueue* m_queue = nullptr;
  Settings m_settings;
  RunBrowser* m_browser = nullptr;
  JobQueuePanel* m_jobs = nullptr;
  QTabWidget* m_tabs = nullptr;
  QComboBox* m_taskCombo = nullptr;
  QComboBox* m_studentCombo = nullptr;
  QMenu* m_recentMenu = nullptr;
  OverviewView* m_overview = nullptr;
  LayersView* m_layers = nullptr;
  HeadsView* m_heads = nullptr;
  TasksView* m_tasks = nullptr;
  KnowledgeView* m_knowledge = nullptr;
  ExamplesView* m_examples = nullptr;
  StudyView* m_study = nullptr;
  QVector<AnalysisView*> m_views;
  QVector<bool> m_stale; ///< per view: its context changed since it was last filled
  const RunDocument* m_run = nullptr;
  FigureExportJob* m_exportJob = nullptr;
  ReportJob* m_reportJob = nullptr;
};

} // namespace kdscope::widgets
