#include "widgets/jobs/job_worker.h"

#include <QElapsedTimer>

#include <exception>
#include <utility>

namespace kdscope::widgets {

JobRunner coreJobRunner() {
  return [](const core::JobSpec& spec, const core::RunOptions& options, const core::CancelToken& cancel,
            const core::ProgressSink& sink) { return core::runJob(spec, options, cancel, sink); };
}

JobWorker::JobWorker(int jobId, core::JobSpec spec, core::RunOptions options, core::CancelToken cancel,
                     JobRunner runner, int throttleMs)
    : m_jobId(jobId), m_spec(std::move(spec)), m_options(std::move(options)), m_cancel(std::move(cancel)),
      m_runner(std::move(runner)), m_throttleMs(throttleMs) {}

void JobWorker::run() {
  // Everything below runs on the worker thread. The pending update is touched only here.
  JobProgress pending;
  QElapsedTimer sinceEmit;
  sinceEmit.start();
  bool emittedOnce = false;

  const auto flush = [&](bool final) {
    pending.final = final;
    Q_EMIT progress(m_jobId, pending);
    pending.points.clear();
    pending.notices.clear();
    emittedOnce = true;
    sinceEmit.restart();
  };

  const core::ProgressSink sink = [&](const core::ProgressEvent& event) {
    try {
      pending.latest = event;
      if (event.kind == core::ProgressEvent::Kind::Step) {
        pending.points.push_back(
            LivePoint{QString::fromStdString(event.task), QString::fromStdString(event.model), event.step, event.loss});
        if (!emittedOnce || sinceEmit.elapsed() >= m_throttleMs) {
          flush(false);
        }
      } else {
        // Phases, epochs and warnings are rare and belong in the log as they happen.
        pending.notices.push_back(event);
        flush(false);
      }
    } catch (...) {
      // A failed allocation while forwarding must not unwind through core.
    }
  };

  core::JobResult result;
  try {
    if (!m_runner) {
      throw std::runtime_error("no job runner");
    }
    result = m_runner(m_spec, m_options, m_cancel, sink);
  } catch (const std::exception& error) {
    result.status = core::JobStatus::Failed;
    result.message = std::string("job runner threw: ") + error.what();
  } catch (...) {
    result.status = core::JobStatus::Failed;
    result.message = "job runner threw an unknown exception";
  }
  try {
    flush(true); // always the final state
  } catch (...) {
  }
  Q_EMIT finished(m_jobId, result);
}

} // namespace kdscope::widgets
