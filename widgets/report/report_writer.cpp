#include "widgets/report/report_writer.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QPageSize>
#include <QPdfWriter>
#include <QTextDocument>
#include <QUrl>

#include <unistd.h>

#include <iostream>
#include <memory>

#include "core/common/error.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/figures/figure_style.h"
#include "widgets/figures/study_figures.h"

namespace kdscope::widgets {

namespace {

void writeBytes(const QString& path, const QByteArray& bytes) {
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) || file.write(bytes) != bytes.size()) {
    throw core::JobError(path.toStdString() + ": cannot write (" + file.errorString().toStdString() + ")");
  }
}

} // namespace

QStringList reportFigurePatterns() {
  // What the report's sections talk about: accuracy and gap with their intervals, the loss
  // pattern, the layers (CKA, and at matched depth with its intervals) and the heads
  // (importance, with its intervals, and the single-head ablation).
  return {"tasks.*", "examples.loss_pattern*", "layers.cka.*", "layers.cka_matched.*", "heads.importance*",
          "heads.ablation.*"};
}

struct ReportFileWriter::State {
  std::unique_ptr<FigureExporter> exporter;
  /// A replicate folder's runs together: the replicates' mean with its t interval over them
  /// (compare.replicates.*), the specs from `replicateFrom` on.
  std::unique_ptr<FigureExporter> replicateExporter;
  std::size_t replicateFrom = 0;
  QString figuresDir;
  std::vector<FigureSpec> specs;
  std::vector<core::ReportFigure> svgFigures;
  std::vector<core::ReportFigure> pngFigures;
  std::vector<std::pair<QString, QString>> pngResources; // (relative to the page, absolute)
  QStringList warnings;
};

ReportFileWriter::ReportFileWriter(core::Report report, QString outDir)
    : m_report(std::move(report)), m_outDir(std::move(outDir)), m_state(std::make_unique<State>()) {}

ReportFileWriter::~ReportFileWriter() = default;

int ReportFileWriter::total() const { return static_cast<int>(m_state->specs.size()); }

void ReportFileWriter::start() {
  if (!QDir().mkpath(m_outDir)) {
    throw core::JobError(m_outDir.toStdString() + ": cannot create the folder");
  }
  if (!m_report.studyDir.empty()) {
    // A study: the study export's gap figures (heatmap, lines, main effects with their
    // intervals over replicates), drawn from the summary; no run is opened.
    ExportOptions options;
    m_state->figuresDir = QDir(m_outDir).filePath("figures");
    options.outDir = m_state->figuresDir;
    options.style = FigureStyle::fromPreset("single-column");
    options.formats = {FigureFormat::Svg, FigureFormat::Png};
    options.csv = true;
    const StudyDocument study = openStudy(QString::fromStdString(m_report.studyDir));
    m_state->specs = FigureCatalog(studyFigures(study)).select({QStringLiteral("study.gap_*")});
    m_state->exporter = std::make_unique<FigureExporter>(QStringList{}, options);
    return;
  }
  if (m_report.runs.empty()) {
    return;
  }
  ExportOptions options;
  m_state->figuresDir = QDir(m_outDir).filePath("figures");
  options.outDir = m_state->figuresDir;
  options.style = FigureStyle::fromPreset("single-column");
  options.formats = {FigureFormat::Svg, FigureFormat::Png};
  options.csv = true;
  // The figures of the run the detailed sections are of (the first replicate's for a
  // replicate folder).
  m_state->exporter =
      std::make_unique<FigureExporter>(QStringList{QString::fromStdString(m_report.runs.front())}, options);
  m_state->specs = m_state->exporter->catalog().select(reportFigurePatterns());
  if (m_report.runs.size() >= 2) {
    QStringList runs;
    for (const std::string& run : m_report.runs) {
      runs << QString::fromStdString(run);
    }
    m_state->replicateExporter = std::make_unique<FigureExporter>(runs, options);
    m_state->replicateFrom = m_state->specs.size();
    for (FigureSpec& spec : m_state->replicateExporter->catalog().select({QStringLiteral("compare.replicates.*")})) {
      m_state->specs.push_back(std::move(spec));
    }
  }
}

bool ReportFileWriter::step() {
  if (m_done >= total()) {
    return false;
  }
  const auto at = static_cast<std::size_t>(m_done);
  FigureExporter& exporter =
      m_state->replicateExporter && at >= m_state->replicateFrom ? *m_state->replicateExporter : *m_state->exporter;
  const ExportedFigure exported = exporter.exportFigure(m_state->specs[at]);
  ++m_done;
  m_last = exported.name;
  if (!exported.error.isEmpty()) {
    m_state->warnings << exported.name + ": " + exported.error;
    return m_done < total();
  }
  core::ReportFigure svg;
  svg.name = exported.name.toStdString();
  svg.caption = exported.caption.toStdString();
  core::ReportFigure png = svg;
  for (const QString& rel : exported.files) {
    const QString abs = QDir(m_state->figuresDir).filePath(rel);
    if (rel.endsWith(".svg")) {
      QFile file(abs);
      if (file.open(QIODevice::ReadOnly)) {
        svg.svg = file.readAll().toStdString();
      }
    } else if (rel.endsWith(".png")) {
      png.imageFile = QStringLiteral("figures/%1").arg(rel).toStdString();
      m_state->pngResources.emplace_back(QString::fromStdString(png.imageFile), abs);
    }
  }
  if (!svg.svg.empty()) {
    m_state->svgFigures.push_back(std::move(svg));
  }
  if (!png.imageFile.empty()) {
    m_state->pngFigures.push_back(std::move(png));
  }
  return m_done < total();
}

ReportFiles ReportFileWriter::finish() {
  ReportFiles files;
  files.warnings = m_state->warnings;
  files.figures = static_cast<int>(m_state->svgFigures.size());
  files.html = QDir(m_outDir).filePath("report.html");
  writeBytes(files.html, QByteArray::fromStdString(core::reportHtml(m_report, m_state->svgFigures)));

  // The PDF: the same page through QTextDocument (which draws no SVG, so the PNGs).
  files.pdf = QDir(m_outDir).filePath("report.pdf");
  QTextDocument document;
  for (const auto& [rel, abs] : m_state->pngResources) {
    const QImage image(abs);
    if (!image.isNull()) {
      document.addResource(QTextDocument::ImageResource, QUrl(rel), image);
    }
  }
  document.setHtml(QString::fromStdString(core::reportHtml(m_report, m_state->pngFigures)));
  {
    QPdfWriter writer(files.pdf);
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setTitle(QString::fromStdString(m_report.title));
    writer.setCreator(QStringLiteral("KDScope"));
    document.print(&writer);
  }
  if (!QFileInfo(files.pdf).exists() || QFileInfo(files.pdf).size() == 0) {
    throw core::JobError(files.pdf.toStdString() + ": the PDF was not written");
  }
  return files;
}

ReportFiles writeReportFiles(const core::Report& report, const QString& outDir,
                             const std::function<void(int, int, const QString&)>& progress,
                             const std::atomic<bool>* cancel) {
  ReportFileWriter writer(report, outDir);
  writer.start();
  while (writer.done() < writer.total()) {
    if (cancel != nullptr && cancel->load()) {
      throw core::JobError("cancelled");
    }
    writer.step();
    if (progress) {
      progress(writer.done(), writer.total(), writer.lastFigure());
    }
  }
  return writer.finish();
}

int runReportCommand(const std::string& input, const std::string& outDir) {
  std::unique_ptr<QApplication> app;
  if (QCoreApplication::instance() == nullptr) {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
      qputenv("QT_QPA_PLATFORM", "offscreen"); // no display needed
    }
    static int argc = 1;
    static char name[] = "kdscope";
    static char* argv[] = {name, nullptr};
    app = std::make_unique<QApplication>(argc, argv);
  }
  try {
    const core::Report report = core::buildReport(input);
    const ReportFiles files = writeReportFiles(report, QString::fromStdString(outDir),
                                               [](int done, int total, const QString& name) {
                                                 if (::isatty(STDERR_FILENO) == 0) {
                                                   return; // an updating line only on a terminal
                                                 }
                                                 std::cerr << "\rkdscope report: figure " << done << "/" << total
                                                           << " " << name.toStdString() << "\x1b[K" << std::flush;
                                               });
    if (::isatty(STDERR_FILENO) != 0) {
      std::cerr << "\n";
    }
    for (const QString& w : files.warnings) {
      std::cerr << "kdscope report: warning: " << w.toStdString() << "\n";
    }
    std::cerr << "kdscope report: " << report.sections.size() << " sections, " << files.figures << " figures: "
              << files.html.toStdString() << ", " << files.pdf.toStdString() << "\n";
    return 0;
  } catch (const core::InputError& e) {
    std::cerr << "kdscope report: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kdscope report: failed: " << e.what() << "\n";
    return 1;
  }
}

} // namespace kdscope::widgets
