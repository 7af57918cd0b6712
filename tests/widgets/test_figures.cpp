// Figure export (issue #6): styles and presets, the figure registry, PDF/SVG/PNG output
// (text as text, vector lines, pixel sizes), the CSV beside each figure against the run
// file's numbers, determinism, the window's export path against the headless exporter, and
// the views' figure names and context menu. The command line itself is tested by
// tests/widgets/export_cli.sh (ctest widgets_export_cli).

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QSettings>
#include <QTabWidget>
#include <QContextMenuEvent>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMenu>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "widgets/figures/figure_builders.h"
#include "test_run_file.h"
#include "widgets/figures/export_dialog.h"
#include "widgets/figures/figure_export.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/figures/figure_style.h"
#include "widgets/figures/figure_style_editor.h"
#include "widgets/views/layers_view.h"
#include "widgets/shell/main_window.h"
#include "widgets/views/overview_view.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

QByteArray readAll(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

// Text of every <text> element, and the names of all elements, of an SVG (fails on bad XML).
struct SvgFacts {
  bool wellFormed = false;
  QStringList texts;
  std::map<QString, int> elements;
};

SvgFacts parseSvg(const QByteArray& svg) {
  SvgFacts facts;
  QXmlStreamReader xml(svg);
  QString text;
  bool inText = false;
  while (!xml.atEnd()) {
    xml.readNext();
    if (xml.isStartElement()) {
      ++facts.elements[xml.name().toString()];
      if (xml.name() == QStringLiteral("text")) {
        inText = true;
        text.clear();
      }
    } else if (xml.isCharacters() && inText) {
      text += xml.text();
    } else if (xml.isEndElement() && xml.name() == QStringLiteral("text")) {
      facts.texts << text.trimmed();
      inText = false;
    }
  }
  facts.wellFormed = !xml.hasError();
  return facts;
}

// Data rows of a CSV (comment lines dropped), each split on commas (the test data has no
// quoted fields).
std::vector<QStringList> csvRows(const QByteArray& csv, QStringList* comments = nullptr) {
  std::vector<QStringList> rows;
  for (const QByteArray& line : csv.split('\n')) {
    if (line.isEmpty()) {
      continue;
    }
    if (line.startsWith('#')) {
      if (comments != nullptr) {
        *comments << QString::fromUtf8(line);
      }
      continue;
    }
    rows.push_back(QString::fromUtf8(line).split(QLatin1Char(',')));
  }
  return rows;
}

QString tool(const char* name) { return QStandardPaths::findExecutable(QString::fromLatin1(name)); }

QString runTool(const QString& program, const QStringList& arguments) {
  QProcess process;
  process.start(program, arguments);
  process.waitForFinished(30000);
  return QString::fromUtf8(process.readAllStandardOutput());
}

class FigureTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_dir.isValid());
    m_run = m_dir.filePath(QStringLiteral("analysed.h5"));
    test::writeSmallRun(m_run, /*withAnalysis=*/true);
    qunsetenv("SOURCE_DATE_EPOCH");
  }
  QString out(const QString& name) const { return m_dir.filePath(name); }

  QTemporaryDir m_dir;
  QString m_run;
};

} // namespace

TEST(FigureStyle, PresetsGiveThePaperSizesAndPixelSizes) {
  const FigureStyle single = FigureStyle::fromPreset(QStringLiteral("single-column"));
  EXPECT_DOUBLE_EQ(single.widthInches, 3.5);
  EXPECT_EQ(single.logicalSize(), QSize(252, 189)); // points
  EXPECT_EQ(single.pngPixels(), QSize(1050, 788));  // 3.5 in x 300 dpi, 2.625 in x 300 dpi
  EXPECT_GE(single.fontPointSize, 8);
  EXPECT_LE(single.fontPointSize, 10);
  const FigureStyle wide = FigureStyle::fromPreset(QStringLiteral("double-column"));
  EXPECT_DOUBLE_EQ(wide.widthInches, 7.16);
  EXPECT_EQ(wide.pngPixels(), QSize(2148, 859));
  EXPECT_GE(wide.fontPointSize, 8);
  EXPECT_LE(wide.fontPointSize, 10);
  EXPECT_EQ(FigureStyle::fromPreset(QStringLiteral("slides")).fontPointSize, 14);
}

TEST(FigureStyle, JsonRoundTripsAndNamesTheBadKey) {
  FigureStyle style = FigureStyle::fromPreset(QStringLiteral("double-column"));
  style.palette = Palette::Greyscale;
  style.gradient = Gradient::Cividis;
  style.dpi = 600;
  style.legend = LegendPlacement::Right;
  EXPECT_EQ(FigureStyle::fromJson(style.toJson()), style);

  QJsonObject json{{QStringLiteral("preset"), QStringLiteral("single-column")},
                   {QStringLiteral("height_in"), 3.5},
                   {QStringLiteral("font_size_pt"), 9}};
  const FigureStyle square = FigureStyle::fromJson(json);
  EXPECT_DOUBLE_EQ(square.aspect, 1.0);
  EXPECT_EQ(square.fontPointSize, 9);

  try {
    (void)FigureStyle::fromJson(QJsonObject{{QStringLiteral("font_sise_pt"), 9}}, QStringLiteral("s.json"));
    FAIL() << "an unknown key is an error";
  } catch (const core::InputError& error) {
    EXPECT_NE(std::string(error.what()).find("s.json: unknown key \"font_sise_pt\""), std::string::npos) << error.what();
  }
  EXPECT_THROW((void)FigureStyle::fromJson(QJsonObject{{QStringLiteral("font_size_pt"), 8.5}}), core::InputError);
  EXPECT_THROW((void)FigureStyle::fromJson(QJsonObject{{QStringLiteral("palette"), QStringLiteral("rainbow")}}),
               core::InputError);
  EXPECT_THROW((void)FigureStyle::load(QStringLiteral("/no/such/style.json")), core::InputError);

  // The settings dialog's store holds the same struct.
  QTemporaryDir dir;
  QSettings store(dir.filePath(QStringLiteral("s.ini")), QSettings::IniFormat);
  style.toSettings(store);
  EXPECT_EQ(FigureStyle::fromSettings(store), style);
  FigureStyleEditor editor(style);
  EXPECT_EQ(editor.style(), style);
}

TEST(FigureStyle, AMissingFontFallsBackToDejaVuWithAWarning) {
  FigureStyle style;
  style.fontFamily = QStringLiteral("No Such Font Family");
  QString warning;
  EXPECT_EQ(style.resolvedFontFamily(&warning), QStringLiteral("DejaVu Sans"));
  EXPECT_TRUE(warning.contains(QStringLiteral("not installed"))) << warning.toStdString();
}

TEST_F(FigureTest, TheRegistryNamesEveryFigureOfTheRunAndTheViewsUseThoseNames) {
  RunDocument run(m_run);
  const FigureCatalog catalog({&run});
  std::set<QString> names;
  for (const FigureSpec& figure : catalog.figures()) {
    names.insert(figure.name);
    EXPECT_FALSE(figure.caption.isEmpty()) << figure.name.toStdString();
    EXPECT_FALSE(figure.provenance.objects.isEmpty()) << figure.name.toStdString();
    EXPECT_EQ(figure.runPaths, QStringList{QFileInfo(m_run).canonicalFilePath()});
  }
  for (const char* expected :
       {"overview.loss.polarity", "overview.loss_all.polarity", "overview.loss_term.polarity.ce",
        "overview.loss_term.polarity.kd", "overview.accuracy.polarity", "layers.cka.polarity.kd",
        "layers.probe.polarity.kd", "layers.probe.polarity.ce", "heads.importance.polarity.teacher",
        "heads.importance.polarity.kd", "heads.entropy.polarity.teacher", "heads.entropy.polarity.kd",
        "heads.divergence.polarity.kd", "heads.attention.polarity.teacher.e0.l1.mean", "tasks.recall.polarity.kd",
        "knowledge.cosine.polarity.teacher", "knowledge.probability.polarity.ce", "knowledge.grad_rescale.polarity.kd"}) {
    EXPECT_EQ(names.count(QString::fromLatin1(expected)), 1U) << expected;
  }
  EXPECT_EQ(names.count(QStringLiteral("layers.cka.polarity.ce")), 0U); // no analysis for ce
  // The attention family is found by name beyond the listed figures.
  ASSERT_TRUE(catalog.find(QStringLiteral("heads.attention.polarity.kd.e1.l0.h1")).has_value());
  EXPECT_FALSE(catalog.find(QStringLiteral("heads.attention.polarity.kd.e5.l0.h1")).has_value()); // 2 kept
  QStringList unmatched;
  const auto layers = catalog.select({QStringLiteral("layers.*"), QStringLiteral("nope")}, &unmatched);
  EXPECT_EQ(layers.size(), 3U);
  EXPECT_EQ(unmatched, QStringList{QStringLiteral("nope")});

  // The views name what they show, with the same names.
  OverviewView overview;
  overview.setContext(ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd")});
  EXPECT_EQ(overview.lossPlot()->figureName(), QStringLiteral("overview.loss.polarity"));
  EXPECT_EQ(overview.accuracyPlot()->figureName(), QStringLiteral("overview.accuracy.polarity"));
  LayersView layersView;
  layersView.setContext(ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd")});
  EXPECT_EQ(layersView.ckaPlot()->figureName(), QStringLiteral("layers.cka.polarity.kd"));
  // A plot that shows a message is no figure.
  PlotWidget empty;
  figures::buildCka(empty, run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("ce"));
  EXPECT_TRUE(empty.figureName().isEmpty());
  EXPECT_FALSE(empty.message().isEmpty());
}

TEST_F(FigureTest, PngHasThePresetsPixelSizeAndDpi) {
  FigureExporter exporter({m_run}, ExportOptions{out(QStringLiteral("png")), FigureStyle{}, {FigureFormat::Png}, false,
                                                 IndexFormat::None});
  const auto spec = exporter.catalog().find(QStringLiteral("overview.accuracy.polarity"));
  ASSERT_TRUE(spec.has_value());
  const ExportedFigure result = exporter.exportFigure(*spec);
  ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
  ASSERT_EQ(result.files, QStringList{QStringLiteral("overview.accuracy.polarity.png")});
  const QImage image(out(QStringLiteral("png/overview.accuracy.polarity.png")));
  EXPECT_EQ(image.size(), QSize(1050, 788)); // single-column, 300 dpi
  EXPECT_NEAR(image.dotsPerMeterX() * 0.0254, 300.0, 0.01);
  // Not blank: the plot is drawn.
  std::set<QRgb> colours;
  for (int y = 0; y < image.height(); y += 3) {
    for (int x = 0; x < image.width(); x += 3) {
      colours.insert(image.pixel(x, y));
    }
  }
  EXPECT_GT(colours.size(), 20U);

  // Another preset and DPI.
  ExportOptions options{out(QStringLiteral("png2")), FigureStyle::fromPreset(QStringLiteral("double-column")),
                        {FigureFormat::Png}, false, IndexFormat::None};
  options.style.dpi = 150;
  FigureExporter wide({m_run}, options);
  ASSERT_TRUE(wide.exportFigure(*spec).error.isEmpty());
  EXPECT_EQ(QImage(out(QStringLiteral("png2/overview.accuracy.polarity.png"))).size(), QSize(1074, 430));
}

TEST_F(FigureTest, SvgKeepsTextAsTextAndLinePlotsHaveNoImages) {
  FigureExporter exporter({m_run}, ExportOptions{out(QStringLiteral("svg")), FigureStyle{}, {FigureFormat::Svg}, false,
                                                 IndexFormat::None});
  for (const QString& name : {QStringLiteral("overview.accuracy.polarity"), QStringLiteral("layers.cka.polarity.kd")}) {
    const ExportedFigure result = exporter.exportFigure(*exporter.catalog().find(name));
    ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
  }
  SvgFacts line = parseSvg(readAll(out(QStringLiteral("svg/overview.accuracy.polarity.svg"))));
  ASSERT_TRUE(line.wellFormed);
  EXPECT_TRUE(line.texts.contains(QStringLiteral("epoch"))) << line.texts.join('|').toStdString();
  EXPECT_TRUE(line.texts.contains(QStringLiteral("accuracy (95% Wilson interval)"))) << line.texts.join('|').toStdString();
  EXPECT_TRUE(line.texts.contains(QStringLiteral("teacher"))); // the legend
  EXPECT_TRUE(line.texts.contains(QStringLiteral("kd")));
  EXPECT_EQ(line.elements[QStringLiteral("image")], 0) << "a line plot is all vector";
  EXPECT_GT(line.elements[QStringLiteral("path")] + line.elements[QStringLiteral("polyline")], 0) << "lines are paths";
  // The SVG's size is the preset's: 3.5 in = 88.9 mm.
  EXPECT_TRUE(readAll(out(QStringLiteral("svg/overview.accuracy.polarity.svg"))).contains("width=\"88.9mm\""));

  SvgFacts heat = parseSvg(readAll(out(QStringLiteral("svg/layers.cka.polarity.kd.svg"))));
  ASSERT_TRUE(heat.wellFormed);
  EXPECT_TRUE(heat.texts.contains(QStringLiteral("linear CKA"))) << "the colour scale's label";
  EXPECT_TRUE(heat.texts.contains(QStringLiteral("teacher layer")));
  EXPECT_TRUE(heat.texts.contains(QStringLiteral("emb")));
  EXPECT_TRUE(heat.texts.contains(QStringLiteral("0.2")) && heat.texts.contains(QStringLiteral("0.8")))
      << "the colour scale's ticks: " << heat.texts.join('|').toStdString();
  EXPECT_EQ(heat.elements[QStringLiteral("image")], 2) << "cells and colour bar are images";
}

TEST_F(FigureTest, PdfHasItsLabelsInTheTextLayerAndThePresetsPageSize) {
  const QString pdftotext = tool("pdftotext");
  const QString pdfinfo = tool("pdfinfo");
  if (pdftotext.isEmpty() || pdfinfo.isEmpty()) {
    GTEST_SKIP() << "poppler-utils (pdftotext, pdfinfo) not installed";
  }
  FigureExporter exporter({m_run}, ExportOptions{out(QStringLiteral("pdf")), FigureStyle{}, {FigureFormat::Pdf}, false,
                                                 IndexFormat::None});
  for (const QString& name : {QStringLiteral("overview.loss.polarity"), QStringLiteral("layers.cka.polarity.kd")}) {
    const ExportedFigure result = exporter.exportFigure(*exporter.catalog().find(name));
    ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
  }
  const QString loss = runTool(pdftotext, {out(QStringLiteral("pdf/overview.loss.polarity.pdf")), QStringLiteral("-")});
  for (const char* word : {"step", "loss (nats)", "teacher", "ce", "kd"}) {
    EXPECT_TRUE(loss.contains(QString::fromLatin1(word))) << word << " not in: " << loss.toStdString();
  }
  const QString cka = runTool(pdftotext, {out(QStringLiteral("pdf/layers.cka.polarity.kd.pdf")), QStringLiteral("-")});
  for (const char* word : {"linear CKA", "teacher layer", "kd layer", "emb"}) {
    EXPECT_TRUE(cka.contains(QString::fromLatin1(word))) << word << " not in: " << cka.toStdString();
  }
  const QString info = runTool(pdfinfo, {out(QStringLiteral("pdf/overview.loss.polarity.pdf"))});
  EXPECT_TRUE(info.contains(QStringLiteral("Page size:       252 x 189 pts"))) << info.toStdString();
  EXPECT_TRUE(info.contains(QStringLiteral("Pages:           1")));
  // A line plot's PDF holds no image; the heatmap's holds its cells and colour bar.
  const QString pdfimages = tool("pdfimages");
  if (!pdfimages.isEmpty()) {
    const auto imageLines = [&](const QString& file) {
      return runTool(pdfimages, {QStringLiteral("-list"), file}).trimmed().split(QLatin1Char('\n')).size() - 2;
    };
    EXPECT_EQ(imageLines(out(QStringLiteral("pdf/overview.loss.polarity.pdf"))), 0);
    EXPECT_GE(imageLines(out(QStringLiteral("pdf/layers.cka.polarity.kd.pdf"))), 1);
  }
}

TEST_F(FigureTest, CsvHoldsTheRunFilesNumbersExactly) {
  FigureExporter exporter({m_run}, ExportOptions{out(QStringLiteral("csv")), FigureStyle{}, {FigureFormat::Svg}, true,
                                                 IndexFormat::None});
  for (const QString& name : {QStringLiteral("overview.accuracy.polarity"), QStringLiteral("layers.cka.polarity.kd"),
                              QStringLiteral("tasks.recall.polarity.kd")}) {
    const ExportedFigure result = exporter.exportFigure(*exporter.catalog().find(name));
    ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
    EXPECT_TRUE(result.files.contains(name + QStringLiteral(".csv")));
  }
  const core::RunReader reader(m_run.toStdString());
  QStringList comments;
  const auto accuracy = csvRows(readAll(out(QStringLiteral("csv/overview.accuracy.polarity.csv"))), &comments);
  EXPECT_TRUE(comments.contains(QStringLiteral("# run: ") + QFileInfo(m_run).canonicalFilePath()))
      << comments.join('\n').toStdString();
  EXPECT_TRUE(comments.join('\n').contains(QStringLiteral("/eval_curve/accuracy")));
  ASSERT_EQ(accuracy.front(), (QStringList{"series", "index", "x", "y", "y_lo", "y_hi"}));
  std::map<QString, std::vector<std::pair<double, double>>> bySeries;
  const double n = static_cast<double>(reader.evalLabels("polarity").size());
  for (std::size_t i = 1; i < accuracy.size(); ++i) {
    bySeries[accuracy[i][0]].emplace_back(accuracy[i][2].toDouble(), accuracy[i][3].toDouble());
    // The Wilson interval of round(accuracy x n) of n, worked here from its closed form.
    const double z = 1.959963984540054;
    const double k = std::round(accuracy[i][3].toDouble() * n);
    const double centre = (k + z * z / 2) / (n + z * z);
    const double half = z / (n + z * z) * std::sqrt(k * (n - k) / n + z * z / 4);
    EXPECT_NEAR(accuracy[i][4].toDouble(), k == 0 ? 0.0 : centre - half, 1e-12) << accuracy[i].join(',').toStdString();
    EXPECT_NEAR(accuracy[i][5].toDouble(), k == n ? 1.0 : centre + half, 1e-12) << accuracy[i].join(',').toStdString();
  }
  ASSERT_EQ(bySeries.size(), 2U); // teacher and kd; ce has no eval curve
  for (const auto& [model, points] : bySeries) {
    const core::EvalCurve curve = reader.evalCurve("polarity", model.toStdString());
    ASSERT_EQ(points.size(), curve.accuracy.size());
    for (std::size_t i = 0; i < points.size(); ++i) {
      EXPECT_EQ(points[i].first, static_cast<double>(curve.epoch[i]));
      EXPECT_EQ(points[i].second, static_cast<double>(curve.accuracy[i])); // exact, not approximate
    }
  }
  const auto cka = csvRows(readAll(out(QStringLiteral("csv/layers.cka.polarity.kd.csv"))));
  ASSERT_EQ(cka.front(), (QStringList{"row", "row_label", "column", "column_label", "value"}));
  const std::vector<float> expected = {1.0F, 0.5F, 0.4F, 0.9F, 0.2F, 0.8F};
  ASSERT_EQ(cka.size(), expected.size() + 1);
  for (std::size_t i = 1; i < cka.size(); ++i) {
    EXPECT_EQ(cka[i][4].toDouble(), static_cast<double>(expected[i - 1])) << cka[i].join(',').toStdString();
  }
  EXPECT_EQ(cka[1][1], QStringLiteral("emb"));
  const auto recall = csvRows(readAll(out(QStringLiteral("csv/tasks.recall.polarity.kd.csv"))));
  // With the 95% bootstrap interval over the class's examples (its values: suite ClassRecall).
  ASSERT_EQ(recall.front(), (QStringList{"series", "index", "x", "x_label", "y", "y_lo", "y_hi"}));
  ASSERT_EQ(recall[4].size(), 7);
  EXPECT_EQ(recall[4].mid(0, 5),
            (QStringList{"kd", "1", "1", "pos", QString::number(1.0 / 3.0, 'g', QLocale::FloatingPointShortest)}));
  EXPECT_LE(recall[4][5].toDouble(), 1.0 / 3.0);
  EXPECT_GE(recall[4][6].toDouble(), 1.0 / 3.0);
  EXPECT_LT(recall[4][5].toDouble(), recall[4][6].toDouble());
}

TEST_F(FigureTest, TheSameStyleGivesTheSameBytesEveryTimeAndGreyscaleHasNoColour) {
  const auto exportAll = [&](const QString& dir, const FigureStyle& style) {
    FigureExporter exporter({m_run}, ExportOptions{out(dir), style,
                                                   {FigureFormat::Pdf, FigureFormat::Svg, FigureFormat::Png}, true,
                                                   IndexFormat::Markdown});
    const ExportSummary summary = exporter.exportAll(exporter.catalog().select({QStringLiteral("all")}));
    EXPECT_EQ(summary.failures(), 0);
    EXPECT_EQ(summary.indexFile, QStringLiteral("index.md"));
    return summary;
  };
  const ExportSummary first = exportAll(QStringLiteral("a"), FigureStyle{});
  const ExportSummary second = exportAll(QStringLiteral("b"), FigureStyle{});
  ASSERT_EQ(first.figures.size(), second.figures.size());
  int compared = 0;
  for (const ExportedFigure& figure : first.figures) {
    for (const QString& file : figure.files) {
      EXPECT_EQ(readAll(out(QStringLiteral("a/") + file)), readAll(out(QStringLiteral("b/") + file))) << file.toStdString();
      ++compared;
    }
  }
  EXPECT_EQ(compared, static_cast<int>(first.figures.size()) * 4);
  const QString index = QString::fromUtf8(readAll(out(QStringLiteral("a/index.md"))));
  for (const ExportedFigure& figure : first.figures) {
    EXPECT_TRUE(index.contains(figure.caption)) << figure.name.toStdString();
    EXPECT_TRUE(index.contains(QStringLiteral("](%1.png)").arg(figure.name))) << figure.name.toStdString();
  }
  EXPECT_TRUE(QFileInfo::exists(out(QStringLiteral("a/style.json"))));
  // The PDF's creation date is the run file's modification time, not the clock.
  EXPECT_TRUE(readAll(out(QStringLiteral("a/overview.loss.polarity.pdf")))
                  .contains("/CreationDate (D:" +
                            QFileInfo(m_run).lastModified().toUTC().toString(QStringLiteral("yyyyMMddHHmmss")).toLatin1()));

  FigureStyle grey;
  grey.palette = Palette::Greyscale;
  grey.gradient = Gradient::Greys;
  exportAll(QStringLiteral("grey"), grey);
  for (const QString& name : {QStringLiteral("overview.loss_all.polarity"), QStringLiteral("layers.cka.polarity.kd"),
                              QStringLiteral("knowledge.grad_rescale.polarity.kd")}) {
    const QImage image(out(QStringLiteral("grey/%1.png").arg(name)));
    ASSERT_FALSE(image.isNull());
    int coloured = 0;
    for (int y = 0; y < image.height(); ++y) {
      for (int x = 0; x < image.width(); ++x) {
        const QRgb p = image.pixel(x, y);
        coloured += (std::abs(qRed(p) - qGreen(p)) > 2 || std::abs(qGreen(p) - qBlue(p)) > 2) ? 1 : 0;
      }
    }
    EXPECT_EQ(coloured, 0) << name.toStdString();
  }
}

TEST_F(FigureTest, TheWindowsExportDialogWritesTheSameFilesAsTheHeadlessExporter) {
  FigureStyle style = FigureStyle::fromPreset(QStringLiteral("double-column"));
  style.palette = Palette::TolBright;
  const QString styleFile = out(QStringLiteral("style.json"));
  ASSERT_TRUE(style.saveFile(styleFile));

  // Headless, as `kdscope export RUN --figure all --style style.json` does.
  FigureExporter headless({m_run}, ExportOptions{out(QStringLiteral("cli")), FigureStyle::load(styleFile),
                                                 {FigureFormat::Pdf, FigureFormat::Svg, FigureFormat::Png}, true,
                                                 IndexFormat::Markdown});
  const ExportSummary expected = headless.exportAll(headless.catalog().select({QStringLiteral("all")}));
  ASSERT_EQ(expected.failures(), 0);

  // The window: File > Export figure pack, the style file loaded in the dialog.
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  window.show();
  ASSERT_TRUE(window.openRun(m_run, true));
  auto* action = window.findChild<QAction*>(QStringLiteral("exportPackAction"));
  ASSERT_NE(action, nullptr);
  action->trigger();
  auto* dialog = window.findChild<ExportDialog*>(QStringLiteral("exportDialog"));
  ASSERT_NE(dialog, nullptr);
  EXPECT_TRUE(dialog->isVisible());
  ASSERT_TRUE(dialog->styleEditor()->loadFile(styleFile));
  EXPECT_EQ(dialog->options().style, style);
  dialog->setOutDir(out(QStringLiteral("window")));
  QSignalSpy done(&window, &MainWindow::figuresExported);
  dialog->accept();
  ASSERT_TRUE(done.wait(60000));
  ASSERT_EQ(expected.figures.size(), 
            QDir(out(QStringLiteral("window"))).entryList({QStringLiteral("*.csv")}, QDir::Files).size());
  for (const ExportedFigure& figure : expected.figures) {
    for (const QString& file : figure.files) {
      EXPECT_EQ(readAll(out(QStringLiteral("cli/") + file)), readAll(out(QStringLiteral("window/") + file)))
          << file.toStdString();
    }
  }
}

TEST_F(FigureTest, APlotsContextMenuOffersExportFigureAndFileExportListsTheViewsFigures) {
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  window.resize(1200, 800);
  window.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&window));
  ASSERT_TRUE(window.openRun(m_run, true));
  window.studentSelector()->setCurrentText(QStringLiteral("kd"));
  window.tabs()->setCurrentWidget(window.layers());
  EXPECT_EQ(window.currentViewFigures(),
            (QStringList{QStringLiteral("layers.cka.polarity.kd"), QStringLiteral("layers.probe.polarity.kd")}));

  PlotWidget* cka = window.layers()->ckaPlot();
  QSignalSpy requested(cka, &PlotWidget::exportFigureRequested);
  QWidget* canvas = cka->childAt(cka->pixelOfCell(0, 0));
  ASSERT_NE(canvas, nullptr);
  QContextMenuEvent event(QContextMenuEvent::Mouse, QPoint(20, 20), canvas->mapToGlobal(QPoint(20, 20)));
  QApplication::sendEvent(canvas, &event);
  auto* menu = cka->findChild<QMenu*>();
  ASSERT_NE(menu, nullptr);
  auto* exportAction = menu->findChild<QAction*>(QStringLiteral("exportFigureAction"));
  ASSERT_NE(exportAction, nullptr);
  exportAction->trigger();
  ASSERT_EQ(requested.count(), 1);
  EXPECT_EQ(requested.first().at(0).toString(), QStringLiteral("layers.cka.polarity.kd"));
  menu->close();
  // The window answered with the export dialog for that one figure, and its preview.
  auto* dialog = window.findChild<ExportDialog*>(QStringLiteral("exportDialog"));
  ASSERT_NE(dialog, nullptr);
  EXPECT_EQ(dialog->selectedFigures(), QStringList{QStringLiteral("layers.cka.polarity.kd")});
  QTest::qWait(50);
  EXPECT_TRUE(dialog->previewText().isEmpty()) << dialog->previewText().toStdString();
  dialog->reject();
}

TEST(FigureContent, APlotThatIsNoFigureOfARunExportsWhatItShows) {
  // E.g. the study view or the live training curves: no registry builder, so the export
  // draws a copy of the plot's own content, and the CSV holds its numbers.
  PlotWidget plot;
  plot.setObjectName(QStringLiteral("studyLinesPlot"));
  plot.setTitle(QStringLiteral("Gap by temperature"));
  plot.setAxisLabels(QStringLiteral("temperature"), QStringLiteral("gap"));
  plot.addLine(QStringLiteral("lambda 0.5"), {1, 2, 4}, {0.1, 0.05, 0.125}, 1);
  plot.addScatter(QStringLiteral("cells"), {1, 4}, {0.2, 0.3}, 2);
  plot.rescale();
  const FigureSpec figure = contentFigure(plot);
  EXPECT_EQ(figure.name, QStringLiteral("window.studyLinesPlot"));
  EXPECT_TRUE(figure.caption.startsWith(QStringLiteral("Gap by temperature")));

  QTemporaryDir dir;
  FigureExporter exporter({}, ExportOptions{dir.path(), FigureStyle{}, {FigureFormat::Svg, FigureFormat::Png}, true,
                                            IndexFormat::None});
  const ExportedFigure result = exporter.exportFigure(figure);
  ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
  EXPECT_EQ(result.files.size(), 3);
  EXPECT_EQ(QImage(dir.filePath(QStringLiteral("window.studyLinesPlot.png"))).size(), QSize(1050, 788));
  const SvgFacts svg = parseSvg(readAll(dir.filePath(QStringLiteral("window.studyLinesPlot.svg"))));
  EXPECT_TRUE(svg.texts.contains(QStringLiteral("temperature")));
  EXPECT_TRUE(svg.texts.contains(QStringLiteral("lambda 0.5")));
  const auto rows = csvRows(readAll(dir.filePath(QStringLiteral("window.studyLinesPlot.csv"))));
  ASSERT_EQ(rows.size(), 6U);
  EXPECT_EQ(rows[3], (QStringList{"lambda 0.5", "2", "4", "0.125"}));
  EXPECT_EQ(rows[5], (QStringList{"cells", "1", "4", "0.3"}));

  // Its context menu offers the export too.
  plot.resize(400, 300);
  plot.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&plot));
  QSignalSpy requested(&plot, &PlotWidget::exportContentRequested);
  QWidget* canvas = plot.childAt(QPoint(200, 150));
  ASSERT_NE(canvas, nullptr);
  QContextMenuEvent event(QContextMenuEvent::Mouse, QPoint(20, 20), canvas->mapToGlobal(QPoint(20, 20)));
  QApplication::sendEvent(canvas, &event);
  auto* menu = plot.findChild<QMenu*>();
  ASSERT_NE(menu, nullptr);
  auto* action = menu->findChild<QAction*>(QStringLiteral("exportFigureAction"));
  ASSERT_NE(action, nullptr);
  action->trigger();
  EXPECT_EQ(requested.count(), 1);
  menu->close();
}

TEST(FigureContent, AHeatmapWithIntervalsAndMarksCarriesThemToTooltipSvgAndCsv) {
  // A 2 x 2 heatmap with an interval on three entries (one without: NaN) and one entry
  // marked, as the study heatmap of a replicated study draws a gap whose interval holds 0.
  PlotWidget plot;
  plot.setObjectName(QStringLiteral("markedHeatmap"));
  plot.resize(500, 400);
  plot.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&plot));
  Heatmap map;
  map.rows = 2;
  map.cols = 2;
  map.values = {0.1, 0.004, 0.05, 0.2};
  map.lower = {0.05, -0.01, std::nan(""), 0.15};
  map.upper = {0.15, 0.02, std::nan(""), 0.25};
  map.intervalTitle = QStringLiteral("95% t interval over 3 replicates");
  map.noInterval = QStringLiteral("no interval: fewer than 2 replicates");
  map.marked = {0, 1, 0, 0};
  map.markTitle = QStringLiteral("no detectable difference");
  map.adjustedP = {0.01, 0.3, std::nan(""), 0.02};
  map.pTitle = QStringLiteral("Holm over the 3 tested entries");
  map.rowTitle = QStringLiteral("layers");
  map.colTitle = QStringLiteral("heads");
  map.valueTitle = QStringLiteral("gap");
  plot.setHeatmap(map);
  QTest::qWait(20);
  ASSERT_EQ(plot.heatmapMarks().size(), 1);
  EXPECT_EQ(plot.heatmapMarks()[0], qMakePair(0, 1));
  const QString marked = plot.toolTipAt(plot.pixelOfCell(0, 1));
  EXPECT_TRUE(marked.contains(QStringLiteral("gap = 0.004 [-0.01, 0.02]"))) << marked.toStdString();
  EXPECT_TRUE(marked.contains(QStringLiteral("95% t interval over 3 replicates"))) << marked.toStdString();
  EXPECT_TRUE(marked.contains(QStringLiteral("n.d.: no detectable difference"))) << marked.toStdString();
  EXPECT_TRUE(marked.contains(QStringLiteral("p = 0.3 (Holm over the 3 tested entries)"))) << marked.toStdString();
  const QString none = plot.toolTipAt(plot.pixelOfCell(1, 0));
  EXPECT_FALSE(none.contains(QLatin1Char('['))) << none.toStdString();
  EXPECT_FALSE(none.contains(QStringLiteral("n.d."))) << none.toStdString();
  // The cell without an interval says why; one with an interval does not.
  EXPECT_TRUE(none.contains(QStringLiteral("no interval: fewer than 2 replicates"))) << none.toStdString();
  EXPECT_FALSE(marked.contains(QStringLiteral("no interval"))) << marked.toStdString();

  QTemporaryDir dir;
  FigureExporter exporter({}, ExportOptions{dir.path(), FigureStyle{}, {FigureFormat::Svg}, true, IndexFormat::None});
  const ExportedFigure result = exporter.exportFigure(contentFigure(plot));
  ASSERT_TRUE(result.error.isEmpty()) << result.error.toStdString();
  const SvgFacts svg = parseSvg(readAll(dir.filePath(QStringLiteral("window.markedHeatmap.svg"))));
  EXPECT_EQ(svg.texts.count(QStringLiteral("n.d.")), 1);
  QStringList comments;
  const auto rows = csvRows(readAll(dir.filePath(QStringLiteral("window.markedHeatmap.csv"))), &comments);
  ASSERT_EQ(rows.size(), 5U);
  EXPECT_EQ(rows[0], (QStringList{"row", "row_label", "column", "column_label", "value", "value_lo", "value_hi",
                                  "p_adjusted", "marked"}));
  EXPECT_EQ(rows[1], (QStringList{"0", "0", "0", "0", "0.1", "0.05", "0.15", "0.01", "0"}));
  EXPECT_EQ(rows[2], (QStringList{"0", "0", "1", "1", "0.004", "-0.01", "0.02", "0.3", "1"}));
  EXPECT_EQ(rows[3], (QStringList{"1", "1", "0", "0", "0.05", "nan", "nan", "nan", "0"}));
  EXPECT_TRUE(comments.join(QLatin1Char('\n')).contains(QStringLiteral("p_adjusted: Holm over the 3 tested entries")))
      << comments.join(QLatin1Char('\n')).toStdString();
  EXPECT_TRUE(comments.join(QLatin1Char('\n')).contains(QStringLiteral("95% t interval over 3 replicates")));
  EXPECT_TRUE(comments.join(QLatin1Char('\n')).contains(QStringLiteral("cells without: no interval: fewer than 2 replicates")))
      << comments.join(QLatin1Char('\n')).toStdString();
}

// The head-divergence grid says why a cell has no interval: with the analysis's intervals in
// the file, a cell without a value (no mapped teacher layer) "has no value"; without them, the
// run was analysed before they existed. Built from the small run's real attention analysis,
// one cell then blanked (value and ends NaN) and, in a copy, the ends removed.
TEST_F(FigureTest, HeadDivergenceGridSaysWhyACellHasNoInterval) {
  const std::string base = "/tasks/polarity/analysis/kd/";
  {
    core::H5File f(m_run.toStdString(), core::H5File::Mode::ReadWrite);
    ASSERT_TRUE(f.exists(base + "head_js_best_divergence_lo"));
    const float nan = std::nanf("");
    for (const char* name : {"head_js_best_divergence", "head_js_best_divergence_lo", "head_js_best_divergence_hi"}) {
      std::vector<float> values = f.readFloat(base + name);
      ASSERT_EQ(values.size(), 2U) << name; // 1 student layer x 2 teacher heads
      values[1] = nan;
      f.remove(base + name);
      f.writeFloat(base + name, {1, 2}, values);
    }
  }
  const auto tooltipOf = [](const QString& path, int col) {
    RunDocument run(path);
    PlotWidget plot;
    plot.resize(500, 400);
    plot.show();
    EXPECT_TRUE(QTest::qWaitForWindowExposed(&plot));
    figures::buildHeadGrid(plot, run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd"),
                           figures::HeadMetric::Divergence);
    QTest::qWait(20);
    EXPECT_TRUE(plot.hasHeatmap());
    return plot.toolTipAt(plot.pixelOfCell(0, col));
  };
  const QString valued = tooltipOf(m_run, 0);
  EXPECT_TRUE(valued.contains(QStringLiteral("95% percentile bootstrap over the kept eval examples"))) << valued.toStdString();
  const QString blank = tooltipOf(m_run, 1);
  EXPECT_TRUE(blank.contains(QStringLiteral("no interval: this cell has no value"))) << blank.toStdString();

  const QString old = out(QStringLiteral("before-intervals.h5"));
  ASSERT_TRUE(QFile::copy(m_run, old));
  {
    core::H5File f(old.toStdString(), core::H5File::Mode::ReadWrite);
    f.remove(base + "head_js_best_divergence_lo");
    f.remove(base + "head_js_best_divergence_hi");
  }
  const QString before = tooltipOf(old, 0);
  EXPECT_TRUE(before.contains(QStringLiteral("analysed before this interval was recorded"))) << before.toStdString();
}
