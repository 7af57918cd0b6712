#include "widgets/jobs/job_queue.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QThread>
#include <QTimer>

#include "core/analysis/proportion.h"
#include "widgets/jobs/job_process.h"

#include <exception>

namespace kdscope::widgets {

namespace {

QString noticeText(const core::ProgressEvent& event) {
  QString where;
  if (!event.task.empty()) {
    where = QStringLiteral("[%1/%2] ").arg(QString::fromStdString(event.task), QString::fromStdString(event.model));
  }
  switch (event.kind) {
  case core::ProgressEvent::Kind::Epoch:
    return where + QStringLiteral("epoch %1/%2").arg(event.epoch).arg(event.epochs) +
           (event.evalAccuracy >= 0
                ? QStringLiteral(": eval accuracy %1")
                      .arg(QString::fromStdString(core::analysis::fractionWithWilsonText(event.evalAccuracy, event.evalExamples)))
                : QString()) +
           (event.message.empty() ? QString() : QStringLiteral(" ") + QString::fromStdString(event.message));
  case core::ProgressEvent::Kind::Warning:
    return where + QStringLiteral("warning: ") + QString::fromStdString(event.message);
  default:
    return where + QString::fromStdString(event.message);
  }
}

} // namespace

JobQueue::JobQueue(JobRunner runner, QObject* parent)
    : QObject(parent), m_model(new JobQueueModel(this)), m_runner(std::move(runner)),
      m_executable(defaultExecutable()) {
  qRegisterMetaType<kdscope::widgets::JobProgress>("kdscope::widgets::JobProgress");
  qRegisterMetaType<kdscope::core::JobResult>("kdscope::core::JobResult");
}

JobQueue::~JobQueue() {
  for (auto& [id, running] : m_running) {
    running.cancel.cancel();
    if (running.process != nullptr) {
      running.process->disconnect(this); // no finished() into a queue being destroyed
      running.process->cancel();         // SIGTERM to every child first, then wait for each
    }
  }
  for (auto& [id, running] : m_running) {
    if (running.process != nullptr) {
      running.process->stopAndWait(m_killAfterMs);
      delete running.process;
      continue;
    }
    running.thread->quit();
    running.thread->wait(); // the job returns at its next cancel check
    delete running.worker;
    delete running.thread;
  }
  m_running.clear();
}

QString JobQueue::defaultExecutable() { return executableFor(QCoreApplication::applicationFilePath()); }

QString JobQueue::installedCommandFromProgram() { return QStringLiteral(KDSCOPE_COMMAND_FROM_PROGRAM); }

QString JobQueue::executableFor(const QString& applicationFile) {
  const QFileInfo self(applicationFile);
  if (self.fileName() == QLatin1String("kdscope")) {
    return self.filePath();
  }
  if (self.fileName() != QLatin1String("kdscope-program")) {
    return {};
  }
  for (const QString& relative : {QStringLiteral("../kdscope"), installedCommandFromProgram()}) {
    const QFileInfo command(self.dir().filePath(relative));
    if (command.isFile() && command.isExecutable()) {
      return command.canonicalFilePath();
    }
  }
  return self.filePath();
}

void JobQueue::setMaxConcurrent(int jobs) {
  m_maxConcurrent = std::max(1, jobs);
  schedule();
}

void JobQueue::setThreads(int torchThreads, int blasThreads) {
  m_torchThreads = torchThreads;
  m_blasThreads = blasThreads;
}

int JobQueue::addJob(const core::JobSpec& spec, const QString& outDir) {
  const int id = m_model->addJob(spec, outDir);
  Q_EMIT logLine(tr("queued job %1 '%2' (output %3)").arg(id).arg(QString::fromStdString(spec.name), outDir));
  schedule();
  return id;
}

void JobQueue::start() {
  m_processing = true;
  schedule();
}

void JobQueue::pause() { m_processing = false; }

void JobQueue::cancel(int jobId) {
  const auto running = m_running.find(jobId);
  if (running != m_running.end()) {
    running->second.cancel.cancel(); // directly, from the GUI thread: the flag is atomic
    if (running->second.process != nullptr) {
      running->second.process->cancel();
    }
    Q_EMIT logLine(tr("cancelling job %1").arg(jobId));
    return;
  }
  if (const JobEntry* job = m_model->job(jobId); job != nullptr && job->state == JobState::Queued) {
    JobEntry entry = *job;
    entry.state = JobState::Cancelled;
    m_model->update(entry);
    Q_EMIT logLine(tr("job %1 '%2' removed from the queue").arg(jobId).arg(entry.name));
  }
}

void JobQueue::cancelAll() {
  pause();
  for (int row = 0; row < m_model->rowCount(); ++row) {
    cancel(m_model->at(row).id);
  }
}

void JobQueue::schedule() {
  if (!m_processing) {
    return;
  }
  while (static_cast<int>(m_running.size()) < effectiveMaxConcurrent()) {
    const int next = m_model->nextQueued();
    if (next < 0) {
      break;
    }
    startJob(next);
  }
  if (m_running.empty() && m_model->nextQueued() < 0) {
    m_processing = false;
    Q_EMIT idle();
  }
}

int JobQueue::effectiveMaxConcurrent() {
  if (m_maxConcurrent > 1 && m_executable.isEmpty()) {
    if (!m_warnedNoExecutable) {
      m_warnedNoExecutable = true;
      Q_EMIT logLine(tr("jobs run one at a time: running several at once needs the kdscope executable "
                        "for their child processes"));
    }
    return 1;
  }
  return m_maxConcurrent;
}

void JobQueue::startJob(int jobId) {
  JobEntry entry = *m_model->job(jobId);
  entry.state = JobState::Running;
  entry.message.clear();
  m_model->update(entry);

  // In this process only when it is the only job: see the class comment.
  const bool child = !m_executable.isEmpty() &&
                     (m_processMode == ProcessMode::Always || m_maxConcurrent > 1 || !m_running.empty());
  if (child) {
    JobProcess::Options options;
    options.executable = m_executable;
    options.torchThreads = m_torchThreads;
    options.blasThreads = m_blasThreads;
    options.killAfterMs = m_killAfterMs;
    Running running;
    running.process = new JobProcess(jobId, entry.spec, entry.outDir, options, this);
    connect(running.process, &JobProcess::progress, this, &JobQueue::onProgress);
    connect(running.process, &JobProcess::finished, this, &JobQueue::onFinished);
    connect(running.process, &JobProcess::logLine, this, &JobQueue::logLine);
    m_running.emplace(jobId, running);
    Q_EMIT logLine(tr("started job %1 '%2' in a child process (kdscope run)").arg(jobId).arg(entry.name));
    Q_EMIT jobStarted(jobId);
    running.process->start(); // failures arrive as a queued finished()
    return;
  }

  core::RunOptions options;
  options.outDir = entry.outDir.toStdString();
  options.threads = m_torchThreads;
  options.blasThreads = m_blasThreads;
  Running running;
  running.thread = new QThread;
  running.thread->setObjectName(QStringLiteral("job-%1").arg(jobId));
  running.worker = new JobWorker(jobId, entry.spec, options, running.cancel, m_runner, m_throttleMs);
  running.worker->moveToThread(running.thread);
  connect(running.thread, &QThread::started, running.worker, &JobWorker::run);
  connect(running.worker, &JobWorker::progress, this, &JobQueue::onProgress, Qt::QueuedConnection);
  connect(running.worker, &JobWorker::finished, this, &JobQueue::onFinished, Qt::QueuedConnection);
  m_running.emplace(jobId, running);
  Q_EMIT logLine(tr("started job %1 '%2'").arg(jobId).arg(entry.name));
  Q_EMIT jobStarted(jobId);
  running.thread->start();
}

void JobQueue::onProgress(int jobId, const JobProgress& progress) {
  try {
    const JobEntry* current = m_model->job(jobId);
    if (current == nullptr) {
      return;
    }
    JobEntry entry = *current;
    const core::ProgressEvent& event = progress.latest;
    entry.fraction = std::clamp(event.fraction, 0.0, 1.0);
    entry.task = QString::fromStdString(event.task);
    entry.model = QString::fromStdString(event.model);
    entry.epoch = event.epoch;
    entry.epochs = event.epochs;
    entry.step = event.step;
    entry.steps = event.steps;
    if (!progress.points.empty()) {
      entry.loss = progress.points.back().loss;
      entry.hasLoss = true;
    } else if (event.kind == core::ProgressEvent::Kind::Step) {
      entry.loss = event.loss;
      entry.hasLoss = true;
    }
    entry.elapsedSeconds = event.elapsedSeconds;
    entry.timeLeftSeconds = entry.fraction > 0.005 && entry.fraction < 1.0
                                ? event.elapsedSeconds * (1.0 - entry.fraction) / entry.fraction
                                : (entry.fraction >= 1.0 ? 0.0 : -1.0);
    if (event.kind == core::ProgressEvent::Kind::Phase) {
      entry.message = QString::fromStdString(event.message);
    }
    m_model->update(entry);
    for (const core::ProgressEvent& notice : progress.notices) {
      Q_EMIT logLine(tr("job %1: %2").arg(jobId).arg(noticeText(notice)));
    }
    Q_EMIT jobProgress(jobId, progress);
  } catch (const std::exception& error) {
    Q_EMIT logLine(tr("job %1: progress could not be shown: %2").arg(jobId).arg(QString::fromUtf8(error.what())));
  } catch (...) {
    Q_EMIT logLine(tr("job %1: progress could not be shown: an unknown error").arg(jobId));
  }
}

void JobQueue::onFinished(int jobId, const core::JobResult& result) {
  try {
    const auto running = m_running.find(jobId);
    if (running != m_running.end() && running->second.process != nullptr) {
      running->second.process->deleteLater(); // we are inside its signal
      m_running.erase(running);
    } else if (running != m_running.end()) {
      running->second.thread->quit();
      running->second.thread->wait(); // run() has returned; this is the event loop's exit
      delete running->second.worker;
      delete running->second.thread;
      m_running.erase(running);
    }
    if (const JobEntry* current = m_model->job(jobId); current != nullptr) {
      JobEntry entry = *current;
      switch (result.status) {
      case core::JobStatus::Succeeded:
        entry.state = JobState::Succeeded;
        entry.fraction = 1.0;
        break;
      case core::JobStatus::Cancelled:
        entry.state = JobState::Cancelled;
        break;
      case core::JobStatus::Failed:
      case core::JobStatus::BadInput:
        entry.state = JobState::Failed;
        break;
      }
      entry.timeLeftSeconds = -1.0;
      entry.message = QString::fromStdString(result.message);
      entry.runPath = QString::fromStdString(result.runPath);
      m_model->update(entry);
      Q_EMIT logLine(tr("job %1 '%2' %3%4")
                         .arg(jobId)
                         .arg(entry.name, toString(entry.state).toLower(),
                              result.message.empty() ? QString() : QStringLiteral(": ") + entry.message));
    }
    Q_EMIT jobFinished(jobId, result);
  } catch (const std::exception& error) {
    Q_EMIT logLine(tr("job %1: %2").arg(jobId).arg(QString::fromUtf8(error.what())));
  } catch (...) {
    Q_EMIT logLine(tr("job %1: its end could not be recorded: an unknown error").arg(jobId));
  }
  // Start the next one after the current event finishes, outside this slot's stack.
  QTimer::singleShot(0, this, [this] { schedule(); });
}

} // namespace kdscope::widgets
