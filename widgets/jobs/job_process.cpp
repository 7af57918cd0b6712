#include "widgets/jobs/job_process.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QTimer>

#include <cmath>
#include <csignal>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>

namespace kdscope::widgets {

namespace {

constexpr int kStderrTailBytes = 4096;

double number(const QJsonValue& value) {
  // The child writes NaN and infinities as null (JSON has neither).
  return value.isDouble() ? value.toDouble() : std::numeric_limits<double>::quiet_NaN();
}

core::ProgressEvent::Kind kindOf(const QString& name) {
  using Kind = core::ProgressEvent::Kind;
  if (name == QLatin1String("phase")) {
    return Kind::Phase;
  }
  if (name == QLatin1String("step")) {
    return Kind::Step;
  }
  if (name == QLatin1String("epoch")) {
    return Kind::Epoch;
  }
  if (name == QLatin1String("warning")) {
    return Kind::Warning;
  }
  return Kind::Info;
}

core::ProgressEvent eventOf(const QJsonObject& o) {
  core::ProgressEvent e;
  e.kind = kindOf(o.value(QLatin1String("kind")).toString());
  e.task = o.value(QLatin1String("task")).toString().toStdString();
  e.model = o.value(QLatin1String("model")).toString().toStdString();
  e.message = o.value(QLatin1String("message")).toString().toStdString();
  e.epoch = o.value(QLatin1String("epoch")).toInt();
  e.epochs = o.value(QLatin1String("epochs")).toInt();
  e.step = static_cast<long>(o.value(QLatin1String("step")).toDouble());
  e.steps = static_cast<long>(o.value(QLatin1String("steps")).toDouble());
  e.loss = number(o.value(QLatin1String("loss")));
  const QJsonObject terms = o.value(QLatin1String("terms")).toObject();
  for (auto it = terms.begin(); it != terms.end(); ++it) {
    e.terms[it.key().toStdString()] = number(it.value());
  }
  e.evalAccuracy = o.value(QLatin1String("eval_accuracy")).isDouble() ? o.value(QLatin1String("eval_accuracy")).toDouble()
                                                                       : -1.0;
  e.evalExamples = static_cast<std::uint64_t>(std::max(0.0, o.value(QLatin1String("eval_examples")).toDouble()));
  e.fraction = o.value(QLatin1String("fraction")).toDouble();
  e.elapsedSeconds = o.value(QLatin1String("elapsed_seconds")).toDouble();
  return e;
}

core::JobStatus statusOf(const QString& name) {
  if (name == QLatin1String("succeeded")) {
    return core::JobStatus::Succeeded;
  }
  if (name == QLatin1String("cancelled")) {
    return core::JobStatus::Cancelled;
  }
  if (name == QLatin1String("bad input")) {
    return core::JobStatus::BadInput;
  }
  return core::JobStatus::Failed;
}

QString signalName(int signal) {
  const char* text = ::strsignal(signal);
  return QStringLiteral("signal %1%2").arg(signal).arg(text != nullptr ? QStringLiteral(" (%1)").arg(QString::fromLocal8Bit(text)) : QString());
}

/// A relative path of the job made absolute against its base folder, as core would resolve it.
std::string absoluteAgainst(const std::string& base, const std::string& path) {
  if (path.empty() || base.empty() || QFileInfo(QString::fromStdString(path)).isAbsolute()) {
    return path;
  }
  return QDir::cleanPath(QDir(QString::fromStdString(base)).filePath(QString::fromStdString(path))).toStdString();
}

} // namespace

JobProcess::JobProcess(int jobId, core::JobSpec spec, QString outDir, Options options, QObject* parent)
    : QObject(parent), m_jobId(jobId), m_spec(std::move(spec)), m_outDir(std::move(outDir)),
      m_options(std::move(options)) {}

JobProcess::~JobProcess() {
  if (m_process != nullptr && m_process->state() != QProcess::NotRunning) {
    m_process->disconnect(this);
    m_process->kill();
    m_process->waitForFinished(2000);
  }
}

QString JobProcess::label() const {
  return tr("job %1 '%2'").arg(m_jobId).arg(QString::fromStdString(m_spec.name));
}

QString JobProcess::jobJsonForChild(const core::JobSpec& spec) {
  core::JobSpec copy = spec;
  copy.dataDir = absoluteAgainst(spec.baseDir, spec.dataDir);
  copy.teacher.checkpoint = absoluteAgainst(spec.baseDir, spec.teacher.checkpoint);
  return QString::fromStdString(core::jobToJson(copy));
}

void JobProcess::start() {
  try {
    if (m_options.executable.isEmpty()) {
      finish(core::JobResult{core::JobStatus::Failed, tr("%1: no kdscope executable to run it").arg(label()).toStdString(), ""});
      return;
    }
    if (!QDir().mkpath(m_outDir)) {
      finish(core::JobResult{core::JobStatus::Failed,
                             tr("%1: cannot create the output folder %2").arg(label(), m_outDir).toStdString(), ""});
      return;
    }
    const QString jobPath = QDir(m_outDir).filePath(QStringLiteral("job.json"));
    QSaveFile file(jobPath);
    const QByteArray json = jobJsonForChild(m_spec).toUtf8();
    if (!file.open(QIODevice::WriteOnly) || file.write(json) != json.size() || !file.commit()) {
      finish(core::JobResult{core::JobStatus::Failed,
                             tr("%1: cannot write %2: %3").arg(label(), jobPath, file.errorString()).toStdString(), ""});
      return;
    }

    QStringList arguments{QStringLiteral("run"), jobPath, QStringLiteral("--out"), m_outDir,
                          QStringLiteral("--progress-json")};
    if (m_options.torchThreads > 0) {
      arguments << QStringLiteral("--threads") << QString::number(m_options.torchThreads);
    }
    if (m_options.blasThreads > 0) {
      arguments << QStringLiteral("--blas-threads") << QString::number(m_options.blasThreads);
    }
    m_process = new QProcess(this);
    m_process->setProgram(m_options.executable);
    m_process->setArguments(arguments);
    m_process->setProcessChannelMode(QProcess::SeparateChannels);
    m_process->closeWriteChannel();
    connect(m_process, &QProcess::readyReadStandardOutput, this, &JobProcess::onReadyRead);
    connect(m_process, &QProcess::readyReadStandardError, this, &JobProcess::onStderr);
    connect(m_process, &QProcess::finished, this, &JobProcess::onProcessFinished);
    connect(m_process, &QProcess::errorOccurred, this, &JobProcess::onProcessError);
    m_process->start();
  } catch (const std::exception& error) {
    finish(core::JobResult{core::JobStatus::Failed,
                           tr("%1: could not start: %2").arg(label(), QString::fromUtf8(error.what())).toStdString(), ""});
  }
}

void JobProcess::cancel() {
  m_cancelRequested = true;
  if (m_process == nullptr || m_process->state() == QProcess::NotRunning) {
    return;
  }
  m_process->terminate(); // SIGTERM: `kdscope run` cancels at its next check
  if (m_killTimer == nullptr) {
    m_killTimer = new QTimer(this);
    m_killTimer->setSingleShot(true);
    connect(m_killTimer, &QTimer::timeout, this, [this] {
      if (m_process != nullptr && m_process->state() != QProcess::NotRunning) {
        m_process->kill();
      }
    });
    m_killTimer->start(m_options.killAfterMs);
  }
}

void JobProcess::stopAndWait(int ms) {
  m_cancelRequested = true;
  if (m_process == nullptr || m_process->state() == QProcess::NotRunning) {
    return;
  }
  m_process->terminate();
  if (!m_process->waitForFinished(ms)) {
    m_process->kill();
    m_process->waitForFinished(2000);
  }
}

int JobProcess::parseLine(const QByteArray& line, JobProgress* progress, core::JobResult* result) {
  QJsonParseError error{};
  const QJsonDocument document = QJsonDocument::fromJson(line, &error);
  if (error.error != QJsonParseError::NoError || !document.isObject()) {
    return 0;
  }
  const QJsonObject o = document.object();
  const QString type = o.value(QLatin1String("type")).toString();
  if (type == QLatin1String("progress")) {
    progress->latest = eventOf(o.value(QLatin1String("latest")).toObject());
    progress->final = o.value(QLatin1String("final")).toBool();
    progress->points.clear();
    progress->notices.clear();
    for (const QJsonValue& value : o.value(QLatin1String("points")).toArray()) {
      const QJsonObject p = value.toObject();
      progress->points.push_back(LivePoint{p.value(QLatin1String("task")).toString(),
                                           p.value(QLatin1String("model")).toString(),
                                           static_cast<long>(p.value(QLatin1String("step")).toDouble()),
                                           number(p.value(QLatin1String("loss")))});
    }
    for (const QJsonValue& value : o.value(QLatin1String("notices")).toArray()) {
      progress->notices.push_back(eventOf(value.toObject()));
    }
    return 1;
  }
  if (type == QLatin1String("result")) {
    result->status = statusOf(o.value(QLatin1String("status")).toString());
    result->message = o.value(QLatin1String("message")).toString().toStdString();
    result->runPath = o.value(QLatin1String("run_path")).toString().toStdString();
    result->estimatedBytes = static_cast<std::uint64_t>(o.value(QLatin1String("estimated_bytes")).toDouble());
    return 2;
  }
  return 0;
}

void JobProcess::onReadyRead() {
  try {
    m_stdout += m_process->readAllStandardOutput();
    for (qsizetype end = m_stdout.indexOf('\n'); end >= 0; end = m_stdout.indexOf('\n')) {
      const QByteArray line = m_stdout.left(end);
      m_stdout.remove(0, end + 1);
      JobProgress update;
      core::JobResult result;
      switch (parseLine(line, &update, &result)) {
      case 1:
        m_lastLatest = update.latest;
        m_sawFinal = m_sawFinal || update.final;
        Q_EMIT progress(m_jobId, update);
        break;
      case 2:
        m_result = result;
        m_haveResult = true;
        break;
      default:
        break; // not ours: ignored
      }
    }
  } catch (const std::exception& error) {
    // A failed allocation while reading must not take the window down; the log says so.
    Q_EMIT logLine(tr("job %1: its progress stream could not be read: %2").arg(m_jobId).arg(QString::fromUtf8(error.what())));
  } catch (...) {
    Q_EMIT logLine(tr("job %1: its progress stream could not be read: an unknown error").arg(m_jobId));
  }
}

void JobProcess::onStderr() {
  m_stderrTail += m_process->readAllStandardError();
  if (m_stderrTail.size() > kStderrTailBytes) {
    m_stderrTail = m_stderrTail.right(kStderrTailBytes);
  }
}

void JobProcess::onProcessFinished(int exitCode, QProcess::ExitStatus status) {
  onReadyRead(); // the last lines
  onStderr();
  if (m_killTimer != nullptr) {
    m_killTimer->stop();
  }
  if (m_haveResult) {
    finish(m_result);
    return;
  }
  // No result line: the child died (a signal) or gave up before the job started.
  QString stderrText;
  const QList<QByteArray> lines = m_stderrTail.trimmed().split('\n');
  for (qsizetype i = std::max<qsizetype>(0, lines.size() - 3); i < lines.size(); ++i) {
    if (!lines[i].trimmed().isEmpty()) {
      stderrText += (stderrText.isEmpty() ? QString() : QStringLiteral(" / ")) + QString::fromUtf8(lines[i].trimmed());
    }
  }
  const QString said = stderrText.isEmpty() ? QString() : tr("; it said: %1").arg(stderrText);
  core::JobResult result;
  result.runPath = QDir(m_outDir).filePath(QStringLiteral("run.h5")).toStdString();
  if (status == QProcess::CrashExit) {
    // Qt reports the terminating signal as the exit code of a crashed child.
    if (m_cancelRequested) {
      result.status = core::JobStatus::Cancelled;
      result.message = tr("cancelled; kdscope run was stopped by %1").arg(signalName(exitCode)).toStdString();
    } else {
      result.status = core::JobStatus::Failed;
      result.message =
          tr("%1: kdscope run crashed (%2) without a result%3").arg(label(), signalName(exitCode), said).toStdString();
    }
  } else {
    result.status = exitCode == 2 ? core::JobStatus::BadInput : core::JobStatus::Failed;
    result.message = tr("%1: kdscope run exited with code %2 without a result%3")
                         .arg(label())
                         .arg(exitCode)
                         .arg(said)
                         .toStdString();
  }
  finish(result);
}

void JobProcess::onProcessError(QProcess::ProcessError error) {
  if (error != QProcess::FailedToStart) {
    return; // a crash also arrives as finished(), handled there
  }
  finish(core::JobResult{core::JobStatus::Failed,
                         tr("%1: could not start %2: %3").arg(label(), m_options.executable, m_process->errorString()).toStdString(),
                         ""});
}

void JobProcess::finish(const core::JobResult& result) {
  if (m_finished) {
    return;
  }
  m_finished = true;
  // Queued, so a receiver never runs inside start() or inside a QProcess signal, and may
  // delete this object (deleteLater) when it gets the result.
  QMetaObject::invokeMethod(
      this,
      [this, result] {
        if (!m_sawFinal) {
          // The worker's contract: a final update precedes `finished`. A child that died
          // sent none, so the last state it did send is repeated as the final one.
          JobProgress last;
          last.final = true;
          last.latest = m_lastLatest;
          Q_EMIT progress(m_jobId, last);
        }
        Q_EMIT finished(m_jobId, result);
      },
      Qt::QueuedConnection);
}

} // namespace kdscope::widgets
