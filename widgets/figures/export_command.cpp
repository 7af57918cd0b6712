#include "widgets/figures/export_command.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QLoggingCategory>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "core/common/error.h"
#include "core/study/replicates.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/study_figures.h"

namespace kdscope::widgets {

namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kBadInput = 2;

QString q(const std::string& text) { return QString::fromStdString(text); }

void printError(const QString& message) { std::cerr << "kdscope export: " << message.toStdString() << "\n"; }

QtMessageHandler previousHandler = nullptr;

// Headless, Qt's notes about the missing desktop session are noise on a terminal.
void filterMessages(QtMsgType type, const QMessageLogContext& context, const QString& message) {
  if (type != QtCriticalMsg && type != QtFatalMsg &&
      message.startsWith(QStringLiteral("QStandardPaths: XDG_RUNTIME_DIR not set"))) {
    return;
  }
  if (previousHandler != nullptr) {
    previousHandler(type, context, message);
  }
}

// The offscreen platform has no window system; say nothing about what it cannot do.
void quietOffscreen() {
  QLoggingCategory::setFilterRules(QStringLiteral("qt.qpa.*=false"));
  previousHandler = qInstallMessageHandler(filterMessages);
}

int run(const ExportCommandLine& line) {
  FigureStyle style;
  try {
    style = FigureStyle::load(q(line.style));
  } catch (const core::InputError& error) {
    printError(QString::fromUtf8(error.what()));
    return kBadInput;
  }
  if (line.dpi) {
    if (*line.dpi < 50 || *line.dpi > 2400) {
      printError(QStringLiteral("--dpi %1: must be from 50 to 2400").arg(*line.dpi));
      return kBadInput;
    }
    style.dpi = *line.dpi;
  }
  if (line.printStyle) {
    std::cout << QJsonDocument(style.toJson()).toJson(QJsonDocument::Indented).toStdString();
    if (line.runs.empty() && line.study.empty()) {
      return kOk;
    }
  }
  // A study: --study PATH, or a single positional folder or .json file.
  std::string studyPath = line.study;
  std::vector<std::string> runPaths = line.runs;
  if (studyPath.empty() && runPaths.size() == 1 && core::isReplicateDir(runPaths.front())) {
    // A replicated job's folder: its replicates' run files, compared (compare.replicates.*).
    try {
      runPaths = core::readReplicateManifest(runPaths.front()).runs;
    } catch (const core::InputError& e) {
      printError(QString::fromUtf8(e.what()));
      return kBadInput;
    }
  } else if (studyPath.empty() && runPaths.size() == 1) {
    const QFileInfo info(q(runPaths.front()));
    if (info.isDir() || info.suffix().compare(QStringLiteral("json"), Qt::CaseInsensitive) == 0) {
      studyPath = runPaths.front();
      runPaths.clear();
    }
  }
  if (!studyPath.empty() && !runPaths.empty()) {
    printError(QStringLiteral("give run files or --study, not both"));
    return kBadInput;
  }
  if (runPaths.empty() && studyPath.empty()) {
    printError(QStringLiteral("name a run file or a study (kdscope export RUN.h5 ... or --study DIR; see --help)"));
    return kBadInput;
  }

  ExportOptions options;
  options.style = style;
  options.csv = line.csv;
  if (!line.formats.empty()) {
    options.formats.clear();
    for (const std::string& text : line.formats) {
      FigureFormat format{};
      if (!parseFigureFormat(q(text), &format)) {
        printError(QStringLiteral("--format %1: expected pdf, svg or png").arg(q(text)));
        return kBadInput;
      }
      if (!options.formats.contains(format)) {
        options.formats << format;
      }
    }
  }
  QStringList patterns;
  for (const std::string& figure : line.figures) {
    patterns << q(figure);
  }
  if (patterns.isEmpty()) {
    patterns << QStringLiteral("all");
  }
  const QString index = q(line.index);
  if (index == QStringLiteral("md") || index == QStringLiteral("markdown")) {
    options.index = IndexFormat::Markdown;
  } else if (index == QStringLiteral("html")) {
    options.index = IndexFormat::Html;
  } else if (index == QStringLiteral("auto")) {
    options.index = patterns.contains(QStringLiteral("all")) ? IndexFormat::Markdown : IndexFormat::None;
  } else if (index != QStringLiteral("none")) {
    printError(QStringLiteral("--index %1: expected md, html or none").arg(index));
    return kBadInput;
  }

  QStringList runs;
  for (const std::string& path : runPaths) {
    runs << q(path);
  }
  if (!line.list && line.outDir.empty()) {
    printError(QStringLiteral("--out DIR is required (or --list)"));
    return kBadInput;
  }
  options.outDir = QDir::cleanPath(QDir::current().absoluteFilePath(q(line.outDir)));

  // A study's figures belong to no run: the exporter opens no run file and draws the
  // study's figures (study_figures.h) from a catalog of them.
  std::optional<StudyDocument> study;
  std::vector<FigureSpec> studySpecs;
  if (!studyPath.empty()) {
    try {
      study = openStudy(q(studyPath));
      studySpecs = studyFigures(*study);
      describeStudyExport(*study, &options); // the index names the study and its command
    } catch (const std::exception& error) {
      // A summary or cell run file that cannot be read is bad input, whatever threw.
      printError(QString::fromUtf8(error.what()));
      return kBadInput;
    }
    runs.clear();
  }
  const QString inputs = study ? study->summaryPath : runs.join(QStringLiteral(", "));
  const QString listCommand =
      study ? QStringLiteral("kdscope export --study %1 --list").arg(q(studyPath))
            : QStringLiteral("kdscope export %1 --list").arg(runs.join(QLatin1Char(' ')));

  std::unique_ptr<FigureExporter> exporter;
  try {
    exporter = std::make_unique<FigureExporter>(runs, options);
  } catch (const core::InputError& error) {
    printError(QString::fromUtf8(error.what()));
    return kBadInput;
  }
  for (const QString& warning : exporter->warnings()) {
    std::cerr << "kdscope export: warning: " << warning.toStdString() << "\n";
  }
  const FigureCatalog studyCatalog(std::move(studySpecs));
  const FigureCatalog& catalog = study ? studyCatalog : exporter->catalog();
  if (line.list) {
    for (const FigureSpec& figure : catalog.figures()) {
      std::cout << figure.name.toStdString() << "\n";
    }
    for (const QString& family : catalog.families()) {
      std::cout << "# " << family.toStdString() << "\n";
    }
    return kOk;
  }
  QStringList unmatched;
  const std::vector<FigureSpec> specs = catalog.select(patterns, &unmatched);
  if (!unmatched.isEmpty()) {
    printError(QStringLiteral("no figure named %1 in %2 (%3 names them)")
                   .arg(unmatched.join(QStringLiteral(", ")), inputs, listCommand));
    return kBadInput;
  }
  if (specs.empty()) {
    printError(QStringLiteral("%1 has no figures to export").arg(inputs));
    return kBadInput;
  }
  std::cout << "style: " << style.summary().toStdString() << "\n";
  const ExportSummary summary =
      exporter->exportAll(specs, [](const ExportedFigure& figure, int done, int total) {
        if (figure.error.isEmpty()) {
          QStringList suffixes;
          for (const QString& file : figure.files) {
            suffixes << file.section(QLatin1Char('.'), -1);
          }
          std::cout << "[" << done << "/" << total << "] " << figure.name.toStdString() << " ("
                    << suffixes.join(QStringLiteral(", ")).toStdString() << ")\n";
        } else {
          std::cout << "[" << done << "/" << total << "] " << figure.name.toStdString() << ": FAILED\n";
          printError(figure.error);
        }
        std::cout.flush();
      });
  for (const QString& warning : summary.warnings) {
    std::cerr << "kdscope export: warning: " << warning.toStdString() << "\n";
  }
  if (!summary.indexFile.isEmpty()) {
    std::cout << "index: " << QDir(options.outDir).filePath(summary.indexFile).toStdString() << "\n";
  }
  std::cout << "wrote " << (summary.figures.size() - static_cast<std::size_t>(summary.failures())) << " of "
            << summary.figures.size() << " figures to " << options.outDir.toStdString() << "\n";
  return summary.failures() == 0 ? kOk : kFailed;
}

} // namespace

int runExportCommand(const ExportCommandLine& line) {
  std::unique_ptr<QApplication> app;
  if (QCoreApplication::instance() == nullptr) {
    // No display needed: the offscreen platform renders widgets, PDF, SVG and images.
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
      qputenv("QT_QPA_PLATFORM", "offscreen");
      quietOffscreen();
    }
    static int argc = 1;
    static char name[] = "kdscope";
    static char* argv[] = {name, nullptr};
    app = std::make_unique<QApplication>(argc, argv);
  }
  try {
    return run(line);
  } catch (const core::InputError& error) {
    printError(QString::fromUtf8(error.what()));
    return kBadInput;
  } catch (const std::exception& error) {
    printError(QString::fromUtf8(error.what()));
    return kFailed;
  }
}

} // namespace kdscope::widgets
