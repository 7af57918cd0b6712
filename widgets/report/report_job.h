#pragma once
/// File > Report... in the window: builds the report (core, no Qt) on a worker QThread, then
/// writes its figures one per event-loop pass on the GUI thread (they are drawn on widgets),
/// then the HTML and PDF (widgets/report/report_writer.h). Progress and the end come as
/// signals; cancel() stops it between figures or as soon as the build returns. Lives on the
/// GUI thread; no exception leaves it (errors come in finished()).
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

#include "widgets/report/report_writer.h"

class QThread;

namespace kdscope::widgets {

class ReportJob : public QObject {
  Q_OBJECT
public:
  /// `input`: a run file, run folder or replicate folder; `outDir`: where the files go.
  ReportJob(QString input, QString outDir, QObject* parent = nullptr);
  ~ReportJob() override;
  void start();
  /// Set directly (an atomic flag), never through a queued call.
  void cancel() { m_cancelled.store(true); }

Q_SIGNALS:
  /// `done` of `total` steps; the build is step 0 of an unknown total (total 0).
  void progress(int done, int total, const QString& what);
  /// `error` is empty on success, "cancelled" when cancelled.
  void finished(const kdscope::widgets::ReportFiles& files, const QString& error);

private:
  void onBuilt();
  void stepOnce();
  void end(const ReportFiles& files, const QString& error);

  struct Built;
  QString m_input;
  QString m_outDir;
  std::shared_ptr<Built> m_built;
  QThread* m_thread = nullptr;
  std::unique_ptr<ReportFileWriter> m_writer;
  std::atomic<bool> m_cancelled{false};
  bool m_ended = false;
};

} // namespace kdscope::widgets
