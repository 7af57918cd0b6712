#pragma once
/// JobQueue: runs the jobs of a JobQueueModel in row order, one at a time by default. Lives
/// on the GUI thread.
///
/// One job at a time runs in this process, on a QThread of its own with a JobWorker;
/// cancelling sets the job's atomic token directly (never QThread::terminate) and the job
/// stops at its next check. With more than one job at once, every job runs as a child
/// process, `kdscope run --progress-json` (JobProcess): the seed and the LibTorch and
/// OpenBLAS thread pools are process-wide, so two jobs in one process would change each
/// other's results; in processes of their own they compute exactly what they would alone,
/// and a crash fails only its own job. Cancelling sends the child SIGTERM (it cancels
/// cleanly), and SIGKILL if it has not ended after a grace period.

#include <QObject>
#include <QString>

#include <map>

#include "core/common/cancel.h"
#include "widgets/jobs/job_queue_model.h"
#include "widgets/jobs/job_worker.h"

class QThread;

namespace kdscope::widgets {

class JobProcess;

/// Where jobs run.
enum class ProcessMode {
  WhenConcurrent, ///< in this process when one job runs at a time, else each as a child process
  Always,         ///< always each job as a child process
};

class JobQueue : public QObject {
  Q_OBJECT
public:
  explicit JobQueue(JobRunner runner = coreJobRunner(), QObject* parent = nullptr);
  /// Cancels running jobs and waits for their threads.
  ~JobQueue() override;

  [[nodiscard]] JobQueueModel* model() const { return m_model; }
  void setRunner(JobRunner runner) { m_runner = std::move(runner); }
  void setMaxConcurrent(int jobs);
  [[nodiscard]] int maxConcurrent() const { return m_maxConcurrent; }
  void setThreads(int torchThreads, int blasThreads);
  void setThrottleMs(int ms) { m_throttleMs = ms; }
  void setProcessMode(ProcessMode mode) { m_processMode = mode; }
  [[nodiscard]] ProcessMode processMode() const { return m_processMode; }
  /// The `kdscope` executable that child processes run. Empty: jobs run one at a time in
  /// this process whatever maxConcurrent says (never two in one process).
  void setExecutable(const QString& path) { m_executable = path; }
  [[nodiscard]] QString executable() const { return m_executable; }
  /// After a cancel, a child still running after this long is killed.
  void setKillAfterMs(int ms) { m_killAfterMs = ms; }
  /// executableFor(this application's file): the window's `kdscope`; empty in the widget
  /// tests, whose binary must not be started with `run` arguments.
  static QString defaultExecutable();
  /// The `kdscope` command for an application file: itself when named kdscope; for the
  /// program (libexec/kdscope-program) the command that starts it (../kdscope in a build tree,
  /// installedCommandFromProgram() installed), else the program itself; empty for any other
  /// binary.
  static QString executableFor(const QString& applicationFile);
  /// Where `cmake --install` puts the command relative to the program's folder, from the
  /// configured CMAKE_INSTALL_BINDIR and CMAKE_INSTALL_LIBEXECDIR (../../bin/kdscope by default).
  static QString installedCommandFromProgram();

  /// Queues a job; it runs when the queue is started and earlier jobs are done.
  int addJob(const core::JobSpec& spec, const QString& outDir);
  /// Starts processing queued jobs (and keeps starting them until paused).
  void start();
  /// Stops starting new jobs; running ones continue.
  void pause();
  [[nodiscard]] bool isProcessing() const { return m_processing; }
  /// A queued job becomes Cancelled at once; a running one is asked to stop.
  void cancel(int jobId);
  void cancelAll();
  [[nodiscard]] int runningCount() const { return static_cast<int>(m_running.size()); }

Q_SIGNALS:
  void jobStarted(int jobId);
  void jobProgress(int jobId, const kdscope::widgets::JobProgress& progress);
  void jobFinished(int jobId, const kdscope::core::JobResult& result);
  void logLine(const QString& line);
  /// Nothing is running and nothing more will start.
  void idle();

private Q_SLOTS:
  void onProgress(int jobId, const kdscope::widgets::JobProgress& progress);
  void onFinished(int jobId, const kdscope::core::JobResult& result);

private:
  void schedule();
  void startJob(int jobId);
  /// maxConcurrent, or 1 when there is no executable for child processes.
  [[nodiscard]] int effectiveMaxConcurrent();

  struct Running {
    QThread* thread = nullptr;   ///< in-process jobs
    JobWorker* worker = nullptr;
    JobProcess* process = nullptr; ///< child-process jobs
    core::CancelToken cancel;
  };

  JobQueueModel* m_model;
  JobRunner m_runner;
  std::map<int, Running> m_running;
  int m_maxConcurrent = 1;
  int m_torchThreads = 0;
  int m_blasThreads = -1;
  int m_throttleMs = JobWorker::kDefaultThrottleMs;
  ProcessMode m_processMode = ProcessMode::WhenConcurrent;
  QString m_executable;
  int m_killAfterMs = 5000;
  bool m_processing = false;
  bool m_warnedNoExecutable = false;
};

} // namespace kdscope::widgets
