#pragma once
/// Writes a distillation loss report (core/report/report.h) to a folder: report.html (CSS
/// and the export's figures inlined as SVG: one self-contained file), report.pdf (the same
/// content through QTextDocument and QPdfWriter, the figures as PNG), and figures/ (the
/// exported figures with their CSVs, as `kdscope export` writes them). Used by `kdscope
/// report` and by File > Report... (docs/report.md).
///
/// Thread: the figures are drawn on widgets, so writeReportFiles runs on the GUI thread;
/// building the Report (core, no Qt) is what runs off it.
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "core/report/report.h"

namespace kdscope::widgets {

struct ReportFiles {
  QString html;
  QString pdf;
  int figures = 0;
  QStringList warnings; ///< figures that could not be drawn, and why
};

/// The export figures a report inlines (patterns of FigureCatalog::select).
QStringList reportFigurePatterns();

/// The same, one figure at a time, for the window (each step on an event-loop pass, so the
/// GUI stays responsive without a nested event loop): start() opens the run and lists the
/// figures, step() exports the next one and returns whether more remain, finish() writes
/// the HTML and the PDF. Lives on the GUI thread. Each throws like writeReportFiles.
class ReportFileWriter {
public:
  ReportFileWriter(core::Report report, QString outDir);
  ~ReportFileWriter();
  ReportFileWriter(const ReportFileWriter&) = delete;
  ReportFileWriter& operator=(const ReportFileWriter&) = delete;
  void start();
  bool step();
  ReportFiles finish();
  [[nodiscard]] int done() const { return m_done; }
  [[nodiscard]] int total() const;
  [[nodiscard]] QString lastFigure() const { return m_last; }

private:
  struct State;
  core::Report m_report;
  QString m_outDir;
  std::unique_ptr<State> m_state;
  int m_done = 0;
  QString m_last;
};

/// Writes the files of `report` into `outDir` (created). `progress(done, total, what)` after
/// each figure; `cancel` is checked between figures (a cancelled report writes nothing more
/// and throws core::JobError "cancelled"). Throws core::InputError / JobError naming the
/// file on failure.
ReportFiles writeReportFiles(const core::Report& report, const QString& outDir,
                             const std::function<void(int, int, const QString&)>& progress = {},
                             const std::atomic<bool>* cancel = nullptr);

/// `kdscope report INPUT --out DIR`: builds the report of INPUT (a run file, a run folder or
/// a replicate folder) and writes its files, creating a QApplication on the "offscreen"
/// platform when none exists. Returns the exit code (0; 1 failed; 2 bad input), with the
/// message on stderr.
int runReportCommand(const std::string& input, const std::string& outDir);

} // namespace kdscope::widgets
