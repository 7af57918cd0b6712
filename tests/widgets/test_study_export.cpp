// `kdscope export --study` (widgets/figures/export_command.h, widgets/figures/study_figures.h) on a hand-made
// study: layers {1, 2} x heads {1, 2} on one task with the gaps of test_study_view.cpp, and a
// small run file per cell with a training log. The exported CSVs hold the numbers worked out
// by hand, the PDF and SVG are vector drawings, and bad input exits 2 naming the file.

#include <QAction>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <sstream>

#include "core/data/dataset.h"
#include "core/record/run_writer.h"
#include "core/study/summary.h"
#include "test_run_file.h"
#include "widgets/figures/export_command.h"
#include "widgets/figures/export_dialog.h"
#include "widgets/figures/figure_style_editor.h"
#include "widgets/shell/main_window.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/figures/study_figures.h"
#include "widgets/views/study_view.h"

using namespace kdscope;

namespace {

// Gaps per (layers, heads): 0.10, 0.06 / 0.04, 0.00 (teacher 0.9).
//   heatmap: each entry one cell's gap.
//   main effects: layers 1 -> mean 0.08, sd 0.02; layers 2 -> 0.02, sd 0.02: effect 0.06, spread 0.02
//                 heads 1 -> mean 0.07, sd 0.03; heads 2 -> 0.03, sd 0.03: effect 0.04, spread 0.03
// Training log of cell k (k = 0..3 in cell order): steps 10, 20; loss 1 - 0.1 k, 0.5;
// term ce 0.8, 0.4 in every cell; term kd 0.25, 0.125 only in the cells with 1 layer.
constexpr double kGaps[2][2] = {{0.10, 0.06}, {0.04, 0.00}};

void writeCellRun(const QString& path, int k, bool withKd) {
  QDir().mkpath(QFileInfo(path).path());
  core::TaskData task;
  task.name = "t";
  task.kind = core::TaskKind::Text;
  task.classNames = {"a", "b"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "x"};
  task.seqLen = 2;
  task.eval.labels = {0, 1};
  task.eval.tokens = {2, 3, 2, 3};
  task.eval.texts = {"x", "x"};
  core::RunWriter writer(path.toStdString(), R"({"name":"cell"})");
  writer.writeTask(task);
  writer.beginModel("t", "student", "student", R"({"type":"transformer","layers":1,"heads":1})",
                    R"({"terms":[{"name":"ce","weight":1.0}]})", 100);
  std::vector<std::pair<std::string, std::vector<float>>> terms = {{"ce", {0.8F, 0.4F}}};
  if (withKd) {
    terms.push_back({"kd", {0.25F, 0.125F}});
  }
  writer.appendTrainLog("t", "student", {10, 20}, {1.0F - 0.1F * static_cast<float>(k), 0.5F}, terms);
  writer.setStatus("complete", "");
}

} // namespace

namespace kdscope::widgets::test {

/// Writes DIR/study_summary.json and DIR/cells/<cell>/run.h5.
void writeHandStudy(const QString& path) {
  const QDir dir(path);
  core::StudySummary s;
  s.name = "hand";
  s.tasks = {"t"};
  s.factors = {core::StudyFactor{"layers", {"1", "2"}, {1, 2}, false},
               core::StudyFactor{"heads", {"1", "2"}, {1, 2}, false}};
  int k = 0;
  for (std::size_t l = 0; l < 2; ++l) {
    for (std::size_t h = 0; h < 2; ++h) {
      core::StudyCellResult c;
      c.name = "L" + std::to_string(l + 1) + "_H" + std::to_string(h + 1);
      c.levels = {l, h};
      c.status = "complete";
      c.runFile = "cells/" + c.name + "/run.h5";
      core::StudyTaskResult t;
      t.task = "t";
      t.teacherAccuracy = 0.9;
      t.studentAccuracy = 0.9 - kGaps[l][h];
      t.gap = kGaps[l][h];
      t.retained = t.studentAccuracy / 0.9;
      t.sourceTeacherAccuracy = 0.9;
      c.tasks = {t};
      s.cells.push_back(c);
      writeCellRun(dir.filePath(QString::fromStdString(c.runFile)), k++, l == 0);
    }
  }
  core::writeStudySummary(s, dir.path().toStdString());
}

} // namespace kdscope::widgets::test

namespace {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs the command as `kdscope export` does, capturing what it prints.
Result runExport(const widgets::ExportCommandLine& line) {
  std::ostringstream out;
  std::ostringstream err;
  std::streambuf* oldOut = std::cout.rdbuf(out.rdbuf());
  std::streambuf* oldErr = std::cerr.rdbuf(err.rdbuf());
  Result result;
  result.code = widgets::runExportCommand(line);
  std::cout.rdbuf(oldOut);
  std::cerr.rdbuf(oldErr);
  result.out = out.str();
  result.err = err.str();
  return result;
}

QString readText(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    return {};
  }
  return QString::fromUtf8(file.readAll());
}

/// The data rows of a figure CSV (after the # comments and the header), split at commas.
std::vector<QStringList> csvRows(const QString& text, QString* header = nullptr) {
  std::vector<QStringList> rows;
  bool seenHeader = false;
  for (const QString& line : text.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
    if (line.startsWith(QLatin1Char('#'))) {
      continue;
    }
    if (!seenHeader) {
      seenHeader = true;
      if (header != nullptr) {
        *header = line;
      }
      continue;
    }
    rows.push_back(line.split(QLatin1Char(',')));
  }
  return rows;
}

class StudyExport : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_study.isValid());
    ASSERT_TRUE(m_out.isValid());
    widgets::test::writeHandStudy(m_study.path());
  }
  widgets::ExportCommandLine line() const {
    widgets::ExportCommandLine l;
    l.study = m_study.path().toStdString();
    l.outDir = m_out.path().toStdString();
    l.formats = {"pdf", "svg"};
    return l;
  }
  QString out(const QString& file) const { return m_out.filePath(file); }

  QTemporaryDir m_study;
  QTemporaryDir m_out;
};

} // namespace

TEST_F(StudyExport, ListNamesEveryStudyFigure) {
  widgets::ExportCommandLine l = line();
  l.study.clear();
  l.runs = {m_study.path().toStdString()}; // a positional folder is a study too
  l.list = true;
  const Result r = runExport(l);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "study.gap_heatmap.t\nstudy.gap_lines.t\nstudy.gap_effects.t\nstudy.loss.t\n"
                   "study.loss_term.t.ce\nstudy.loss_term.t.kd\n");
}

TEST_F(StudyExport, HeatmapCsvHoldsEachCellsGap) {
  widgets::ExportCommandLine l = line();
  l.figures = {"study.gap_heatmap.*"};
  const Result r = runExport(l);
  ASSERT_EQ(r.code, 0) << r.err;
  const QString csv = readText(out(QStringLiteral("study.gap_heatmap.t.csv")));
  QString header;
  const auto rows = csvRows(csv, &header);
  EXPECT_EQ(header, QStringLiteral("row,row_label,column,column_label,value"));
  ASSERT_EQ(rows.size(), 4U) << csv.toStdString();
  for (const QStringList& row : rows) {
    ASSERT_EQ(row.size(), 5);
    const int layer = row[0].toInt();
    const int h = row[2].toInt();
    EXPECT_EQ(row[1], QString::number(layer + 1));
    EXPECT_EQ(row[3], QString::number(h + 1));
    EXPECT_NEAR(row[4].toDouble(), kGaps[layer][h], 1e-12) << row.join(QLatin1Char(',')).toStdString();
  }
  EXPECT_TRUE(csv.contains(QStringLiteral("# run: ") + QFileInfo(m_study.filePath("study_summary.json")).canonicalFilePath()))
      << csv.toStdString();
  EXPECT_TRUE(csv.contains(QStringLiteral("rows (layers)"))) << csv.toStdString();
  EXPECT_TRUE(csv.contains(QStringLiteral("columns (heads)"))) << csv.toStdString();
  // Only the figures asked for, no index without --figure all.
  EXPECT_FALSE(QFileInfo::exists(out(QStringLiteral("study.gap_lines.t.csv"))));
  EXPECT_FALSE(QFileInfo::exists(out(QStringLiteral("index.md"))));
}

TEST_F(StudyExport, MainEffectCsvHoldsEffectAndSpread) {
  widgets::ExportCommandLine l = line();
  l.figures = {"study.gap_effects.t"};
  const Result r = runExport(l);
  ASSERT_EQ(r.code, 0) << r.err;
  const QString csv = readText(out(QStringLiteral("study.gap_effects.t.csv")));
  // "# analysis: ...: layers effect=E spread=S; heads effect=E spread=S", largest effect first.
  static const QRegularExpression kEffect(QStringLiteral("(\\w+) effect=([-0-9.e]+) spread=([-0-9.e]+)"));
  std::map<QString, std::pair<double, double>> effects;
  QStringList order;
  const qsizetype analysis = csv.indexOf(QStringLiteral("# analysis:"));
  ASSERT_GE(analysis, 0) << csv.toStdString();
  const QString analysisLine = csv.mid(analysis, csv.indexOf(QLatin1Char('\n'), analysis) - analysis);
  for (auto it = kEffect.globalMatch(analysisLine); it.hasNext();) {
    const auto m = it.next();
    order << m.captured(1);
    effects[m.captured(1)] = {m.captured(2).toDouble(), m.captured(3).toDouble()};
  }
  ASSERT_EQ(order, (QStringList{QStringLiteral("layers"), QStringLiteral("heads")})) << analysisLine.toStdString();
  EXPECT_NEAR(effects[QStringLiteral("layers")].first, 0.06, 1e-12);
  EXPECT_NEAR(effects[QStringLiteral("layers")].second, 0.02, 1e-12);
  EXPECT_NEAR(effects[QStringLiteral("heads")].first, 0.04, 1e-12);
  EXPECT_NEAR(effects[QStringLiteral("heads")].second, 0.03, 1e-12);
  // The rows: each factor's level means (series named by the factor) and the min..max
  // whiskers (unnamed series).
  QString header;
  std::map<QString, std::vector<double>> means;
  std::vector<std::vector<double>> whiskers;
  for (const QStringList& row : csvRows(csv, &header)) {
    ASSERT_EQ(row.size(), 5) << row.join(QLatin1Char(',')).toStdString();
    if (row[0].isEmpty()) {
      if (row[1] == QStringLiteral("0")) {
        whiskers.emplace_back();
      }
      whiskers.back().push_back(row[4].toDouble());
    } else {
      means[row[0]].push_back(row[4].toDouble());
    }
  }
  EXPECT_EQ(header, QStringLiteral("series,index,x,x_label,y"));
  ASSERT_EQ(means[QStringLiteral("layers")].size(), 2U);
  EXPECT_NEAR(means[QStringLiteral("layers")][0], 0.08, 1e-12);
  EXPECT_NEAR(means[QStringLiteral("layers")][1], 0.02, 1e-12);
  ASSERT_EQ(means[QStringLiteral("heads")].size(), 2U);
  EXPECT_NEAR(means[QStringLiteral("heads")][0], 0.07, 1e-12);
  EXPECT_NEAR(means[QStringLiteral("heads")][1], 0.03, 1e-12);
  ASSERT_EQ(whiskers.size(), 4U);
  EXPECT_NEAR(whiskers[0][0], 0.06, 1e-12); // layers 1: min..max 0.06..0.10
  EXPECT_NEAR(whiskers[0][1], 0.10, 1e-12);
}

TEST_F(StudyExport, FigurePackIsVectorWithIndexAndLossCurves) {
  widgets::ExportCommandLine l = line();
  l.figures = {"all"};
  l.index = "html";
  const Result r = runExport(l);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 6 of 6 figures"), std::string::npos) << r.out;
  for (const char* name : {"study.gap_heatmap.t", "study.gap_lines.t", "study.gap_effects.t", "study.loss.t",
                           "study.loss_term.t.ce", "study.loss_term.t.kd"}) {
    for (const char* suffix : {".pdf", ".svg", ".csv"}) {
      EXPECT_TRUE(QFileInfo::exists(out(QString::fromLatin1(name) + QString::fromLatin1(suffix)))) << name << suffix;
    }
    EXPECT_FALSE(QFileInfo::exists(out(QString::fromLatin1(name) + QStringLiteral(".png")))) << name;
  }
  // SVG: lines as vector shapes (Qt writes them as <polyline> or <path>) and text; the lines
  // plot embeds no image, and its axis is labelled with its factor.
  const QString svg = readText(out(QStringLiteral("study.gap_lines.t.svg")));
  EXPECT_TRUE(svg.contains(QStringLiteral("<polyline")) || svg.contains(QStringLiteral("<path")))
      << "no vector line in the SVG";
  EXPECT_TRUE(svg.contains(QStringLiteral("<text"))) << "no <text in the SVG";
  EXPECT_TRUE(svg.contains(QStringLiteral(">layers (no bars: one run per cell)<")))
      << "no axis label 'layers (no bars: one run per cell)' in the SVG";
  EXPECT_FALSE(svg.contains(QStringLiteral("<image")));
  // PDF: a PDF, and its axis labels are text (pdftotext, when installed, finds them).
  QFile pdf(out(QStringLiteral("study.loss.t.pdf")));
  ASSERT_TRUE(pdf.open(QIODevice::ReadOnly));
  EXPECT_TRUE(pdf.read(5) == "%PDF-");
  pdf.close();
  const QString pdftotext = QStandardPaths::findExecutable(QStringLiteral("pdftotext"));
  if (!pdftotext.isEmpty()) {
    QProcess process;
    process.start(pdftotext, {out(QStringLiteral("study.loss.t.pdf")), QStringLiteral("-")});
    ASSERT_TRUE(process.waitForFinished(30000));
    const QString text = QString::fromUtf8(process.readAllStandardOutput());
    EXPECT_TRUE(text.contains(QStringLiteral("step"))) << text.toStdString();
    EXPECT_TRUE(text.contains(QStringLiteral("L1_H1"))) << text.toStdString();
  }
  // Loss curves: one series per complete cell, the run files' values.
  const auto loss = csvRows(readText(out(QStringLiteral("study.loss.t.csv"))));
  ASSERT_EQ(loss.size(), 8U);
  EXPECT_EQ(loss[0], (QStringList{QStringLiteral("L1_H1"), QStringLiteral("0"), QStringLiteral("10"), QStringLiteral("1")}));
  EXPECT_EQ(loss[6][0], QStringLiteral("L2_H2"));
  EXPECT_EQ(loss[6][3].toFloat(), 1.0F - 0.3F);
  // The kd term: only the cells with 1 layer logged it.
  const auto kd = csvRows(readText(out(QStringLiteral("study.loss_term.t.kd.csv"))));
  ASSERT_EQ(kd.size(), 4U);
  EXPECT_EQ(kd[0][0], QStringLiteral("L1_H1"));
  EXPECT_EQ(kd[2][0], QStringLiteral("L1_H2"));
  EXPECT_EQ(kd[3][3], QStringLiteral("0.125"));
  const QString kdCsv = readText(out(QStringLiteral("study.loss_term.t.kd.csv")));
  EXPECT_TRUE(kdCsv.contains(QStringLiteral("cells/L2_H2/run.h5"))) << "the CSV names the cells' run files";
  // The index names the study and the command that remakes the pack.
  const QString index = readText(out(QStringLiteral("index.html")));
  EXPECT_TRUE(index.contains(QStringLiteral("Study: hand"))) << index.toStdString();
  EXPECT_TRUE(index.contains(QStringLiteral("kdscope export --study "))) << index.toStdString();
  EXPECT_TRUE(index.contains(QStringLiteral("study.gap_effects.t.pdf")));
  EXPECT_TRUE(QFileInfo::exists(out(QStringLiteral("style.json"))));
}

TEST_F(StudyExport, MarkdownIndexAndPositionalSummaryFile) {
  widgets::ExportCommandLine l = line();
  l.study.clear();
  l.runs = {m_study.filePath(QStringLiteral("study_summary.json")).toStdString()};
  l.formats = {"svg"};
  const Result r = runExport(l); // --figure defaults to all, --index to md
  ASSERT_EQ(r.code, 0) << r.err;
  const QString index = readText(out(QStringLiteral("index.md")));
  EXPECT_TRUE(index.contains(QStringLiteral("- Study: hand\n"))) << index.toStdString();
  EXPECT_TRUE(index.contains(QStringLiteral("## Study 'hand'"))) << index.toStdString();
  EXPECT_TRUE(index.contains(QStringLiteral("[SVG](study.gap_heatmap.t.svg)"))) << index.toStdString();
}

// The index is written by FigureExporter from ExportOptions (indexSources, remakeInputs,
// indexViewTitles; describeStudyExport fills them), in both formats.
TEST_F(StudyExport, IndexNamesTheStudyAndTheRemakeCommandInMarkdownAndHtml) {
  const QString summary = QFileInfo(m_study.filePath(QStringLiteral("study_summary.json"))).canonicalFilePath();
  const QString dir = QFileInfo(summary).absolutePath();
  for (const char* format : {"md", "html"}) {
    SCOPED_TRACE(format);
    QTemporaryDir pack;
    ASSERT_TRUE(pack.isValid());
    widgets::ExportCommandLine l = line();
    l.outDir = pack.path().toStdString();
    l.formats = {"svg"};
    l.index = format;
    const Result r = runExport(l);
    ASSERT_EQ(r.code, 0) << r.err;
    const bool html = std::string(format) == "html";
    const QString index = readText(pack.filePath(html ? QStringLiteral("index.html") : QStringLiteral("index.md")));
    const QString command =
        QStringLiteral("kdscope export --study %1 --figure all --style style.json --format svg --out DIR --index %2")
            .arg(dir, QString::fromLatin1(format));
    const QString heading = QStringLiteral("Study 'hand': gaps over the grid and training curves");
    if (html) {
      EXPECT_TRUE(index.contains(QStringLiteral("<li>Study: hand</li>\n<li>Summary: <code>%1</code></li>\n"
                                                "<li>Cells: 4 of 4 complete</li>\n<li>Style: ")
                                     .arg(summary.toHtmlEscaped())))
          << index.toStdString();
      EXPECT_TRUE(index.contains(QStringLiteral("remade by <code>%1</code>").arg(command.toHtmlEscaped())))
          << index.toStdString();
      EXPECT_TRUE(index.contains(QStringLiteral("<h2>%1</h2>").arg(heading))) << index.toStdString();
      EXPECT_FALSE(index.contains(QStringLiteral("<li>Run:"))) << index.toStdString();
      EXPECT_FALSE(index.contains(QStringLiteral("<h2>study</h2>"))) << index.toStdString();
    } else {
      EXPECT_TRUE(index.startsWith(QStringLiteral("# KDScope figures\n\n- Study: hand\n- Summary: `%1`\n"
                                                  "- Cells: 4 of 4 complete\n- Style: ")
                                       .arg(summary)))
          << index.toStdString();
      EXPECT_TRUE(index.contains(QStringLiteral("remade by `%1`").arg(command))) << index.toStdString();
      EXPECT_TRUE(index.contains(QStringLiteral("\n## %1\n").arg(heading))) << index.toStdString();
      EXPECT_FALSE(index.contains(QStringLiteral("- Run:"))) << index.toStdString();
    }
  }
}

// The window: the Study tab's "Export figures..." opens the export dialog on the study's
// figures (the names `kdscope export --study --list` prints); exporting them writes the same
// bytes as the command line, index included, one figure per event-loop pass.
TEST_F(StudyExport, StudyTabExportWritesTheSameFilesAsTheCommandLine) {
  const QString styleFile = m_out.filePath(QStringLiteral("paper.json"));
  ASSERT_TRUE(widgets::FigureStyle::load(QStringLiteral("single-column")).saveFile(styleFile));
  QTemporaryDir cliDir;
  QTemporaryDir windowDir;
  ASSERT_TRUE(cliDir.isValid() && windowDir.isValid());
  widgets::ExportCommandLine l = line();
  l.outDir = cliDir.path().toStdString();
  l.style = styleFile.toStdString();
  const Result r = runExport(l); // --figure all, --index md
  ASSERT_EQ(r.code, 0) << r.err;

  widgets::MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                                const core::ProgressSink&) { return core::JobResult{}; });
  window.show();
  widgets::StudyView* view = window.studyView();
  ASSERT_NE(view, nullptr);
  EXPECT_FALSE(view->exportButton()->isEnabled()); // nothing loaded yet
  EXPECT_EQ(window.openStudyExportDialog(), nullptr);
  QString error;
  ASSERT_TRUE(view->loadSummary(m_study.filePath(QStringLiteral("study_summary.json")), &error)) << error.toStdString();
  window.tabs()->setCurrentWidget(view);
  ASSERT_TRUE(view->exportButton()->isEnabled());
  view->exportButton()->click();
  auto* dialog = window.findChild<widgets::ExportDialog*>(QStringLiteral("exportDialog"));
  ASSERT_NE(dialog, nullptr);
  EXPECT_TRUE(dialog->isVisible());
  EXPECT_EQ(dialog->selectedFigures(),
            (QStringList{QStringLiteral("study.gap_heatmap.t"), QStringLiteral("study.gap_lines.t"),
                         QStringLiteral("study.gap_effects.t"), QStringLiteral("study.loss.t"),
                         QStringLiteral("study.loss_term.t.ce"), QStringLiteral("study.loss_term.t.kd")}));
  EXPECT_EQ(dialog->options().index, widgets::IndexFormat::Markdown);
  ASSERT_TRUE(dialog->styleEditor()->loadFile(styleFile));
  dialog->setFormats({widgets::FigureFormat::Pdf, widgets::FigureFormat::Svg});
  dialog->setOutDir(windowDir.path());
  QSignalSpy progress(&window, &widgets::MainWindow::figuresExported);
  widgets::ExportSummary summary;
  QString exportError;
  QObject::connect(&window, &widgets::MainWindow::figuresExported, &window,
                   [&](const widgets::ExportSummary& s, const QString& e) {
                     summary = s;
                     exportError = e;
                   });
  QElapsedTimer clock;
  clock.start();
  dialog->accept();
  // Nothing is drawn inside accept(): the figures are exported on later event-loop passes.
  EXPECT_TRUE(window.exportRunning());
  EXPECT_FALSE(QFileInfo::exists(QDir(windowDir.path()).filePath(QStringLiteral("study.gap_heatmap.t.csv"))));
  ASSERT_TRUE(progress.wait(60000));
  std::cout << "[ timing ] the Study tab's export of 6 figures (PDF, SVG, CSV) of a 4-cell study: "
            << clock.elapsed() << " ms\n";
  EXPECT_TRUE(exportError.isEmpty()) << exportError.toStdString();
  EXPECT_EQ(summary.figures.size(), 6U);
  EXPECT_EQ(summary.failures(), 0);
  EXPECT_EQ(summary.indexFile, QStringLiteral("index.md"));

  // Every file, byte for byte: CSVs, PDFs, SVGs, the index and style.json.
  const QStringList cliFiles = QDir(cliDir.path()).entryList(QDir::Files, QDir::Name);
  EXPECT_EQ(QDir(windowDir.path()).entryList(QDir::Files, QDir::Name), cliFiles);
  EXPECT_EQ(cliFiles.size(), 6 * 3 + 2);
  for (const QString& file : cliFiles) {
    QFile a(QDir(cliDir.path()).filePath(file));
    QFile b(QDir(windowDir.path()).filePath(file));
    ASSERT_TRUE(a.open(QIODevice::ReadOnly) && b.open(QIODevice::ReadOnly)) << file.toStdString();
    EXPECT_TRUE(a.readAll() == b.readAll()) << file.toStdString() << " differs";
  }
  const QString csv = readText(QDir(windowDir.path()).filePath(QStringLiteral("study.gap_heatmap.t.csv")));
  EXPECT_FALSE(csvRows(csv).empty());
  EXPECT_TRUE(readText(QDir(windowDir.path()).filePath(QStringLiteral("index.md")))
                  .contains(QStringLiteral("- Study: hand\n")));
}

// File > Export figures of this view and File > Export figure pack export the study's
// figures while the Study tab shows one; on other tabs they stay the run's.
TEST_F(StudyExport, FileExportOnTheStudyTabOffersTheStudysFigures) {
  widgets::MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                                const core::ProgressSink&) { return core::JobResult{}; });
  window.show();
  ASSERT_TRUE(window.studyView()->loadSummary(m_study.filePath(QStringLiteral("study_summary.json"))));
  window.tabs()->setCurrentIndex(1); // Overview: no run open, so no dialog
  auto* pack = window.findChild<QAction*>(QStringLiteral("exportPackAction"));
  auto* viewAction = window.findChild<QAction*>(QStringLiteral("exportViewAction"));
  ASSERT_NE(pack, nullptr);
  ASSERT_NE(viewAction, nullptr);
  pack->trigger();
  EXPECT_EQ(window.findChild<widgets::ExportDialog*>(QStringLiteral("exportDialog")), nullptr);
  window.tabs()->setCurrentWidget(window.studyView());
  for (QAction* action : {pack, viewAction}) {
    action->trigger();
    auto* dialog = window.findChild<widgets::ExportDialog*>(QStringLiteral("exportDialog"));
    ASSERT_NE(dialog, nullptr);
    EXPECT_EQ(dialog->selectedFigures().value(0), QStringLiteral("study.gap_heatmap.t"));
    EXPECT_EQ(dialog->selectedFigures().size(), 6);
    dialog->reject();
    delete dialog; // WA_DeleteOnClose deletes it later; the next findChild must not see it
  }
}

TEST_F(StudyExport, MissingFolderExitsTwoNamingIt) {
  widgets::ExportCommandLine l = line();
  l.study = m_study.filePath(QStringLiteral("nowhere")).toStdString();
  const Result r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(l.study), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no such study folder"), std::string::npos) << r.err;
}

TEST_F(StudyExport, FolderWithoutSummaryExitsTwoNamingTheFile) {
  widgets::ExportCommandLine l = line();
  l.study = m_study.filePath(QStringLiteral("cells")).toStdString();
  const Result r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(QDir(m_study.filePath(QStringLiteral("cells"))).filePath(QStringLiteral("study_summary.json")).toStdString()),
            std::string::npos)
      << r.err;
}

TEST_F(StudyExport, FileThatIsNotASummaryExitsTwo) {
  const QString path = m_study.filePath(QStringLiteral("other.json"));
  QFile file(path);
  ASSERT_TRUE(file.open(QIODevice::WriteOnly));
  file.write("{\"format\": \"something-else\"}");
  file.close();
  widgets::ExportCommandLine l = line();
  l.study = path.toStdString();
  const Result r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a KDScope study summary"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("other.json"), std::string::npos) << r.err;
}

TEST_F(StudyExport, MissingCellRunFileExitsTwoNamingIt) {
  const QString runFile = m_study.filePath(QStringLiteral("cells/L2_H1/run.h5"));
  ASSERT_TRUE(QFile::remove(runFile));
  widgets::ExportCommandLine l = line();
  const Result r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("cells/L2_H1/run.h5"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("L2_H1"), std::string::npos) << r.err;
  EXPECT_FALSE(QFileInfo::exists(out(QStringLiteral("study.gap_heatmap.t.pdf"))));
}

TEST_F(StudyExport, UnknownFigureAndMixedInputsExitTwo) {
  widgets::ExportCommandLine l = line();
  l.figures = {"study.nothing.t"};
  Result r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no figure named study.nothing.t"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--list"), std::string::npos) << r.err;
  l = line();
  l.runs = {"some/run.h5"};
  r = runExport(l);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not both"), std::string::npos) << r.err;
}

TEST(StudyFigures, DefaultAxesPreferLayersHeadsTemperatureLambda) {
  core::StudySummary s;
  s.factors = {core::StudyFactor{"objective", {"kd", "ce"}, {0, 1}, true},
               core::StudyFactor{"temperature", {"2", "4"}, {2, 4}, false},
               core::StudyFactor{"lambda", {"0.5", "0.9"}, {0.5, 0.9}, false}};
  widgets::StudyAxes axes = widgets::defaultStudyAxes(s);
  EXPECT_EQ(axes.row, "objective");
  EXPECT_EQ(axes.col, "temperature");
  EXPECT_EQ(axes.x, "temperature");
  EXPECT_EQ(axes.series, "lambda");
  s.factors = {core::StudyFactor{"heads", {"1"}, {1}, false}, core::StudyFactor{"layers", {"1"}, {1}, false}};
  axes = widgets::defaultStudyAxes(s);
  EXPECT_EQ(axes.row, "layers");
  EXPECT_EQ(axes.col, "heads");
  EXPECT_EQ(axes.x, "heads");
  EXPECT_EQ(axes.series, "");
  s.factors = {core::StudyFactor{"lambda", {"0.5"}, {0.5}, false}};
  axes = widgets::defaultStudyAxes(s);
  EXPECT_EQ(axes.row, "lambda");
  EXPECT_EQ(axes.col, "");
  EXPECT_EQ(axes.series, "");
}
