#pragma once
/// JobQueuePanel: the job queue UI. A table of jobs with a progress bar per job (epoch, step,
/// loss and time left in their columns), buttons to add (from a job file or the editor),
/// reorder, remove, start and cancel, a log pane, and live training curves per (task, model)
/// that update in place while a job runs. GUI thread.

#include <QMap>
#include <QString>
#include <QWidget>

#include "widgets/jobs/job_queue.h"
#include "widgets/shell/settings_dialog.h"

class QPlainTextEdit;
class QPushButton;
class QTableView;

namespace kdscope::widgets {

class PlotWidget;

class JobQueuePanel : public QWidget {
  Q_OBJECT
public:
  explicit JobQueuePanel(JobQueue* queue, QWidget* parent = nullptr);

  void setSettings(const Settings& settings) { m_settings = settings; }
  /// Queues a validated job with an output folder under the settings' output root.
  int queueJob(const core::JobSpec& spec);
  /// Reads a job file and queues it; shows the issues (as `kdscope run` prints them) when it
  /// is not valid. Returns the job id or -1.
  int addJobFile(const QString& path, bool quiet = false);

  [[nodiscard]] QTableView* table() const { return m_table; }
  [[nodiscard]] PlotWidget* livePlot() const { return m_live; }
  [[nodiscard]] QString logText() const;
  /// The live series shown, "task/model", in order of appearance.
  [[nodiscard]] QStringList liveSeries() const { return m_liveOrder; }

Q_SIGNALS:
  void openRunRequested(const QString& path);

public Q_SLOTS:
  void appendLog(const QString& line);
  void onAddFile();
  void onNewJob();
  void onMoveUp();
  void onMoveDown();
  void onRemove();
  void onStart();
  void onCancel();

private:
  void onJobStarted(int jobId);
  void onJobProgress(int jobId, const JobProgress& progress);
  void updateButtons();
  [[nodiscard]] int selectedRow() const;

  JobQueue* m_queue;
  Settings m_settings;
  QTableView* m_table = nullptr;
  QPlainTextEdit* m_log = nullptr;
  PlotWidget* m_live = nullptr;
  QPushButton* m_up = nullptr;
  QPushButton* m_down = nullptr;
  QPushButton* m_remove = nullptr;
  QPushButton* m_start = nullptr;
  QPushButton* m_cancel = nullptr;
  QMap<QString, int> m_liveLines; ///< "task/model" -> line of m_live
  QStringList m_liveOrder;
  int m_liveJob = -1;
};

} // namespace kdscope::widgets
