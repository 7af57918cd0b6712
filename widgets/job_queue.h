#pragma once
/// JobQueue: runs the jobs of a JobQueueModel in row order, one at a time by default, each
/// on its own QThread with a JobWorker. Lives on the GUI thread. Cancelling sets the job's
/// atomic token directly (never QThread::terminate); the job stops at its next check.

#include <QObject>
#include <QString>

#include <map>

#include "core/common/cancel.h"
#include "widgets/job_queue_model.h"
#include "widgets/job_worker.h"

class QThread;

namespace kdscope::widgets {

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

  struct Running {
    QThread* thread = nullptr;
    JobWorker* worker = nullptr;
    core::CancelToken cancel;
  };

  JobQueueModel* m_model;
  JobRunner m_runner;
  std::map<int, Running> m_running;
  int m_maxConcurrent = 1;
  int m_torchThreads = 0;
  int m_blasThreads = -1;
  int m_throttleMs = JobWorker::kDefaultThrottleMs;
  bool m_processing = false;
};

} // namespace kdscope::widgets
