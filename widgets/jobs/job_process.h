#pragma once
/// JobProcess: runs one job as a child process, `kdscope run JOB.json --out DIR
/// --progress-json`, and turns the child's JSON progress lines into the same JobProgress and
/// JobResult signals a JobWorker emits, so JobQueue, the model and the panel treat both
/// alike. A child has its own seed, LibTorch and OpenBLAS pools, so what it computes does
/// not depend on what else runs, and a child that crashes fails only its own job.
/// Lives on the GUI thread; QProcess does the waiting, so nothing blocks.

#include <QObject>
#include <QProcess>
#include <QString>

#include "widgets/jobs/job_worker.h"

class QTimer;

namespace kdscope::widgets {

class JobProcess : public QObject {
  Q_OBJECT
public:
  struct Options {
    QString executable;   ///< the `kdscope` executable
    int torchThreads = 0; ///< --threads when > 0
    int blasThreads = 0;  ///< --blas-threads when > 0
    int killAfterMs = kDefaultKillAfterMs; ///< after a cancel, SIGKILL if still running by then
  };
  static constexpr int kDefaultKillAfterMs = 5000;

  JobProcess(int jobId, core::JobSpec spec, QString outDir, Options options, QObject* parent = nullptr);
  /// Kills a child that is still running (the queue cancels and waits first).
  ~JobProcess() override;

  /// Writes the job file into the output folder and starts the child. Any failure to do so
  /// comes back as a Failed `finished`, queued, never as an exception.
  void start();
  /// SIGTERM: the child cancels cleanly (its run file says "cancelled"); SIGKILL follows if
  /// it has not ended after killAfterMs.
  void cancel();
  /// Cancels and waits up to `ms` for the child, then kills it (for the queue's destructor).
  void stopAndWait(int ms);

  /// The job file written for the child: the spec's JSON with the data folder and teacher
  /// checkpoint made absolute against the spec's base folder (the file sits in the output
  /// folder, not beside the original job file).
  [[nodiscard]] static QString jobJsonForChild(const core::JobSpec& spec);

  /// Parses one line of `kdscope run --progress-json`. Returns 1 for a progress line (into
  /// `progress`), 2 for the result line (into `result`), 0 for anything else.
  static int parseLine(const QByteArray& line, JobProgress* progress, core::JobResult* result);

Q_SIGNALS:
  void progress(int jobId, const kdscope::widgets::JobProgress& progress);
  void finished(int jobId, const kdscope::core::JobResult& result);
  /// A line for the window's log pane (an error this object caught in one of its slots).
  void logLine(const QString& line);

private:
  void onReadyRead();
  void onStderr();
  void onProcessFinished(int exitCode, QProcess::ExitStatus status);
  void onProcessError(QProcess::ProcessError error);
  void finish(const core::JobResult& result);
  [[nodiscard]] QString label() const;

  int m_jobId;
  core::JobSpec m_spec;
  QString m_outDir;
  Options m_options;
  QProcess* m_process = nullptr;
  QTimer* m_killTimer = nullptr;
  QByteArray m_stdout;    ///< an incomplete line
  QByteArray m_stderrTail; ///< the last few KiB, for a crash message
  core::ProgressEvent m_lastLatest; ///< the newest event the child reported
  bool m_sawFinal = false;
  bool m_haveResult = false;
  core::JobResult m_result;
  bool m_cancelRequested = false;
  bool m_finished = false;
};

} // namespace kdscope::widgets
