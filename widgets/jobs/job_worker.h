#pragma once
/// JobWorker: runs one job on a worker thread. It is created on the GUI thread, moved to a
/// QThread of its own by JobQueue, and its run() slot executes there. Progress events from
/// core arrive on that thread; the worker batches them and forwards them as value structs
/// through queued signals, throttled to about 10 per second, always with the final state.
/// No exception leaves run(): an exception becomes a Failed result.

#include <QMetaType>
#include <QObject>
#include <QString>

#include <functional>
#include <vector>

#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"

namespace kdscope::widgets {

/// One logged training step, for the live curves.
struct LivePoint {
  QString task;
  QString model;
  long step = 0;
  double loss = 0.0;
};

/// What the GUI receives from a running job, at most about 10 times a second.
struct JobProgress {
  core::ProgressEvent latest;              ///< the newest event (any kind)
  std::vector<LivePoint> points;           ///< every Step event since the previous update
  std::vector<core::ProgressEvent> notices; ///< every non-Step event since the previous update
  bool final = false;                      ///< the last update before `finished`
};

/// The function that runs a job: the real one wraps core::runJob; tests inject fakes.
/// It is called on the worker thread and must honour the cancel token.
using JobRunner = std::function<core::JobResult(const core::JobSpec&, const core::RunOptions&,
                                                const core::CancelToken&, const core::ProgressSink&)>;

/// The runner that calls core::runJob.
JobRunner coreJobRunner();

/// Lives on its job's QThread after JobQueue moves it there.
class JobWorker : public QObject {
  Q_OBJECT
public:
  JobWorker(int jobId, core::JobSpec spec, core::RunOptions options, core::CancelToken cancel, JobRunner runner,
            int throttleMs = kDefaultThrottleMs);

  static constexpr int kDefaultThrottleMs = 100;

public Q_SLOTS:
  /// Runs the job on the calling (worker) thread; emits progress and then finished once.
  void run();

Q_SIGNALS:
  void progress(int jobId, const kdscope::widgets::JobProgress& progress);
  void finished(int jobId, const kdscope::core::JobResult& result);

private:
  int m_jobId;
  core::JobSpec m_spec;
  core::RunOptions m_options;
  core::CancelToken m_cancel;
  JobRunner m_runner;
  int m_throttleMs;
};

} // namespace kdscope::widgets

Q_DECLARE_METATYPE(kdscope::widgets::JobProgress)
Q_DECLARE_METATYPE(kdscope::core::JobResult)
