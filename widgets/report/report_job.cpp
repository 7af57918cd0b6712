#include "widgets/report/report_job.h"

#include <QThread>
#include <QTimer>

namespace kdscope::widgets {

/// What the worker thread hands back (written there, read on the GUI thread after the
/// thread's finished(), which orders the two).
struct ReportJob::Built {
  core::Report report;
  QString error;
};

ReportJob::ReportJob(QString input, QString outDir, QObject* parent)
    : QObject(parent), m_input(std::move(input)), m_outDir(std::move(outDir)), m_built(std::make_shared<Built>()) {}

ReportJob::~ReportJob() {
  if (m_thread != nullptr) {
    m_thread->wait(); // the build has no cancellation point; it is short (seconds)
  }
}

void ReportJob::start() {
  const std::string input = m_input.toStdString();
  auto built = m_built;
  m_thread = QThread::create([input, built] {
    try {
      built->report = core::buildReport(input);
    } catch (const std::exception& e) {
      built->error = QString::fromUtf8(e.what());
    } catch (...) {
      built->error = QStringLiteral("unknown error while building the report");
    }
  });
  m_thread->setParent(this);
  connect(m_thread, &QThread::finished, this, &ReportJob::onBuilt);
  Q_EMIT progress(0, 0, tr("reading %1").arg(m_input));
  m_thread->start();
}

void ReportJob::onBuilt() {
  m_thread->deleteLater();
  m_thread = nullptr;
  if (m_cancelled.load()) {
    end({}, QStringLiteral("cancelled"));
    return;
  }
  if (!m_built->error.isEmpty()) {
    end({}, m_built->error);
    return;
  }
  try {
    m_writer = std::make_unique<ReportFileWriter>(std::move(m_built->report), m_outDir);
    m_writer->start();
  } catch (const std::exception& e) {
    end({}, QString::fromUtf8(e.what()));
    return;
  }
  QTimer::singleShot(0, this, &ReportJob::stepOnce);
}

void ReportJob::stepOnce() {
  if (m_cancelled.load()) {
    end({}, QStringLiteral("cancelled"));
    return;
  }
  try {
    const bool more = m_writer->total() > 0 && m_writer->step();
    Q_EMIT progress(m_writer->done(), m_writer->total(), m_writer->lastFigure());
    if (more) {
      QTimer::singleShot(0, this, &ReportJob::stepOnce);
      return;
    }
    end(m_writer->finish(), QString());
  } catch (const std::exception& e) {
    end({}, QString::fromUtf8(e.what()));
  }
}

void ReportJob::end(const ReportFiles& files, const QString& error) {
  if (m_ended) {
    return;
  }
  m_ended = true;
  Q_EMIT finished(files, error);
}

} // namespace kdscope::widgets
