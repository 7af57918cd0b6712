#include "widgets/figures/figure_export.h"

#include <QBuffer>
#include <QDir>
#include <QFileInfo>
#include <QImage>
#include <QPageLayout>
#include <QPageSize>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QTimer>

#include <cmath>
#include <map>

#include "core/common/error.h"
#include "core/common/version.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"

namespace kdscope::widgets {

namespace {

QString version() { return QString::fromLatin1(core::kdscopeVersion()); }

// The shortest decimal that reads back as the same double; nan, inf, -inf otherwise.
QString exact(double value) {
  if (std::isnan(value)) {
    return QStringLiteral("nan");
  }
  if (std::isinf(value)) {
    return value > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
  }
  return QString::number(value, 'g', QLocale::FloatingPointShortest);
}

// RFC 4180: quote a field that holds a comma, quote or line break.
QString csvField(const QString& text) {
  if (text.contains(QLatin1Char(',')) || text.contains(QLatin1Char('"')) || text.contains(QLatin1Char('\n')) ||
      text.contains(QLatin1Char('\r'))) {
    QString quoted = text;
    quoted.replace(QLatin1Char('"'), QStringLiteral("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
  }
  return text;
}

QString oneLine(const QString& text) { return text.simplified(); }

// Qt's PDF engine writes the current time as /CreationDate. Replace it, in place and with
// the same number of bytes (so the cross-reference offsets stay right), by `date` in UTC.
void fixPdfDate(QByteArray& pdf, const QDateTime& date) {
  const QByteArray key = "/CreationDate (";
  const qsizetype start = pdf.indexOf(key);
  if (start < 0) {
    return;
  }
  const qsizetype open = start + key.size();
  const qsizetype close = pdf.indexOf(')', open);
  if (close < 0) {
    return;
  }
  const qsizetype length = close - open;
  const QDateTime utc = date.toUTC();
  QByteArray value = "D:" + utc.toString(QStringLiteral("yyyyMMddHHmmss")).toLatin1();
  // "Z" or "+HH'mm'" after the time: keep the original's length.
  const qsizetype rest = length - value.size();
  if (rest == 1) {
    value += "Z";
  } else if (rest == 7) {
    value += "+00'00'";
  } else {
    return; // an unknown layout: leave it
  }
  pdf.replace(open, length, value);
}

bool writeFile(const QString& path, const QByteArray& bytes, QString* error) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
    *error = QStringLiteral("%1: %2").arg(path, file.errorString());
    return false;
  }
  return true;
}

QString htmlEscape(const QString& text) { return text.toHtmlEscaped(); }

QString viewTitle(const QString& view) {
  static const std::map<QString, QString> kTitles = {
      {QStringLiteral("overview"), QStringLiteral("Overview: training and evaluation")},
      {QStringLiteral("layers"), QStringLiteral("Layers: representation similarity and probes")},
      {QStringLiteral("heads"), QStringLiteral("Attention heads")},
      {QStringLiteral("tasks"), QStringLiteral("Tasks: accuracy and gap with 95% intervals, per-class results")},
      {QStringLiteral("examples"), QStringLiteral("Examples: where the lost examples are")},
      {QStringLiteral("knowledge"), QStringLiteral("Knowledge: class geometry and instance weights")},
      {QStringLiteral("compare"), QStringLiteral("Comparison of runs")}};
  const auto it = kTitles.find(view);
  return it == kTitles.end() ? view : it->second;
}

// The file a figure pack's index shows for a figure: PNG, else SVG; empty if neither.
QString shownFile(const ExportedFigure& figure) {
  for (const QString& suffix : {QStringLiteral(".png"), QStringLiteral(".svg")}) {
    for (const QString& file : figure.files) {
      if (file.endsWith(suffix)) {
        return file;
      }
    }
  }
  return {};
}

QString linkLabel(const QString& file) {
  const QString suffix = QFileInfo(file).suffix().toLower();
  return suffix == QStringLiteral("csv") ? QStringLiteral("data (CSV)") : suffix.toUpper();
}

} // namespace

QString formatSuffix(FigureFormat format) {
  switch (format) {
  case FigureFormat::Svg:
    return QStringLiteral("svg");
  case FigureFormat::Png:
    return QStringLiteral("png");
  case FigureFormat::Pdf:
    break;
  }
  return QStringLiteral("pdf");
}

bool parseFigureFormat(const QString& text, FigureFormat* format) {
  for (const FigureFormat f : {FigureFormat::Pdf, FigureFormat::Svg, FigureFormat::Png}) {
    if (text.compare(formatSuffix(f), Qt::CaseInsensitive) == 0) {
      *format = f;
      return true;
    }
  }
  return false;
}

int ExportSummary::failures() const {
  int count = 0;
  for (const ExportedFigure& figure : figures) {
    count += figure.error.isEmpty() ? 0 : 1;
  }
  return count;
}

std::unique_ptr<PlotWidget> buildExportPlot(const FigureSpec& spec, const FigureStyle& style) {
  auto plot = std::make_unique<PlotWidget>();
  plot->setAttribute(Qt::WA_DontShowOnScreen);
  plot->setExportStyle(style);
  spec.build(*plot);
  if (!plot->message().isEmpty()) {
    throw core::InputError(QStringLiteral("%1: %2").arg(spec.name, plot->message()).toStdString());
  }
  if (plot->lineCount() == 0 && !plot->hasHeatmap()) {
    throw core::InputError(QStringLiteral("%1: nothing to plot").arg(spec.name).toStdString());
  }
  return plot;
}

QByteArray renderFigure(PlotWidget& plot, const FigureSpec& spec, const FigureStyle& style, FigureFormat format,
                        const QDateTime& created, QString* error) {
  const QSize layout = style.logicalSize();
  QByteArray bytes;
  bool painted = false;
  switch (format) {
  case FigureFormat::Pdf: {
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    {
      QPdfWriter writer(&buffer);
      writer.setCreator(QStringLiteral("KDScope %1").arg(version()));
      writer.setTitle(spec.name);
      writer.setResolution(72); // device pixels are points
      const QPageSize page(QSizeF(style.widthInches, style.heightInches()), QPageSize::Inch, QString(),
                           QPageSize::ExactMatch);
      writer.setPageLayout(QPageLayout(page, QPageLayout::Portrait, QMarginsF(0, 0, 0, 0)));
      painted = plot.paintFigure(&writer, layout, QSizeF(style.widthInches * 72.0, style.heightInches() * 72.0),
                                 /*vector=*/true);
    }
    fixPdfDate(bytes, created);
    break;
  }
  case FigureFormat::Svg: {
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    QSvgGenerator generator;
    generator.setOutputDevice(&buffer);
    generator.setResolution(72); // user units are points: width and height in mm follow
    generator.setSize(layout);
    generator.setViewBox(QRect(QPoint(0, 0), layout));
    generator.setTitle(spec.name);
    generator.setDescription(oneLine(spec.caption));
    painted = plot.paintFigure(&generator, layout, QSizeF(layout), /*vector=*/true);
    break;
  }
  case FigureFormat::Png: {
    const QSize pixels = style.pngPixels();
    QImage image(pixels, QImage::Format_ARGB32_Premultiplied);
    image.fill(Qt::white);
    painted = plot.paintFigure(&image, layout, QSizeF(pixels), /*vector=*/false);
    QImage rgb = image.convertToFormat(QImage::Format_RGB32);
    const int dotsPerMeter = static_cast<int>(std::lround(style.dpi / 0.0254));
    rgb.setDotsPerMeterX(dotsPerMeter);
    rgb.setDotsPerMeterY(dotsPerMeter);
    rgb.setText(QStringLiteral("Title"), spec.name);
    rgb.setText(QStringLiteral("Software"), QStringLiteral("KDScope %1").arg(version()));
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    painted = painted && rgb.save(&buffer, "PNG");
    break;
  }
  }
  if (!painted || bytes.isEmpty()) {
    if (error != nullptr) {
      *error = QStringLiteral("%1: could not draw the %2").arg(spec.name, formatSuffix(format).toUpper());
    }
    return {};
  }
  return bytes;
}

QByteArray figureCsv(const PlotWidget& plot, const FigureSpec& spec) {
  QString out;
  const auto comment = [&out](const QString& key, const QString& value) {
    out += QStringLiteral("# %1: %2\n").arg(key, oneLine(value));
  };
  comment(QStringLiteral("figure"), spec.name);
  comment(QStringLiteral("caption"), spec.caption);
  for (const QString& run : spec.runPaths) {
    comment(QStringLiteral("run"), run);
  }
  comment(QStringLiteral("objects"), spec.provenance.objects.join(QStringLiteral(" ")));
  comment(QStringLiteral("analysis"), spec.provenance.analysis);
  if (plot.hasHeatmap()) {
    const Heatmap& map = plot.heatmap();
    QString range = QStringLiteral("the data's range");
    if (map.range) {
      range = QStringLiteral("%1 to %2").arg(exact(map.range->first), exact(map.range->second));
    }
    comment(QStringLiteral("plot"),
            QStringLiteral("heatmap, %1 rows (%2) x %3 columns (%4); value: %5; colour scale %6 over %7")
                .arg(map.rows)
                .arg(map.rowTitle)
                .arg(map.cols)
                .arg(map.colTitle, map.valueTitle, gradientName(map.gradient.value_or(plot.style().gradient)), range));
    if (!map.lower.empty()) {
      comment(QStringLiteral("intervals"),
              QStringLiteral("value_lo, value_hi: %1%2")
                  .arg(map.intervalTitle,
                       map.noInterval.isEmpty() ? QString() : QStringLiteral("; cells without: ") + map.noInterval));
    } else if (!map.noInterval.isEmpty()) {
      comment(QStringLiteral("intervals"), map.noInterval);
    }
    if (!map.adjustedP.empty()) {
      comment(QStringLiteral("p-values"), QStringLiteral("p_adjusted: %1 (nan: not tested)").arg(map.pTitle));
    }
    if (!map.marked.empty()) {
      comment(QStringLiteral("marks"), QStringLiteral("marked = 1: drawn \"%1\", %2").arg(map.markText, map.markTitle));
    }
  } else {
    comment(QStringLiteral("plot"), QStringLiteral("%1 series; x: %2; y: %3")
                                        .arg(plot.series().size())
                                        .arg(plot.xLabel(), plot.yLabel()));
  }
  comment(QStringLiteral("written by"), QStringLiteral("KDScope %1 (kdscope export)").arg(version()));
  if (plot.hasHeatmap()) {
    const Heatmap& map = plot.heatmap();
    const std::size_t cells = static_cast<std::size_t>(map.rows) * static_cast<std::size_t>(map.cols);
    const bool intervals = map.lower.size() == cells && map.upper.size() == cells;
    const bool marks = map.marked.size() == cells;
    const bool pValues = map.adjustedP.size() == cells;
    out += QStringLiteral("row,row_label,column,column_label,value");
    out += intervals ? QStringLiteral(",value_lo,value_hi") : QString();
    out += pValues ? QStringLiteral(",p_adjusted") : QString();
    out += marks ? QStringLiteral(",marked\n") : QStringLiteral("\n");
    for (int r = 0; r < map.rows; ++r) {
      for (int c = 0; c < map.cols; ++c) {
        const std::size_t at = static_cast<std::size_t>(r) * map.cols + c;
        out += QStringLiteral("%1,%2,%3,%4,%5")
                   .arg(r)
                   .arg(csvField(map.rowLabels.value(r, QString::number(r))))
                   .arg(c)
                   .arg(csvField(map.colLabels.value(c, QString::number(c))), exact(map.values[at]));
        if (intervals) {
          out += QStringLiteral(",%1,%2").arg(exact(map.lower[at]), exact(map.upper[at])); // nan: none for the cell
        }
        if (pValues) {
          out += QStringLiteral(",%1").arg(exact(map.adjustedP[at]));
        }
        out += marks ? QStringLiteral(",%1\n").arg(map.marked[at] != 0 ? 1 : 0) : QStringLiteral("\n");
      }
    }
  } else {
    const QStringList ticks = plot.xTickLabels();
    // Error bars: two more columns, the interval's ends (empty for a series without them).
    bool intervals = false;
    for (const PlotSeries& series : plot.series()) {
      intervals = intervals || !series.lower.isEmpty();
    }
    out += ticks.isEmpty() ? QStringLiteral("series,index,x,y") : QStringLiteral("series,index,x,x_label,y");
    out += intervals ? QStringLiteral(",y_lo,y_hi\n") : QStringLiteral("\n");
    for (const PlotSeries& series : plot.series()) {
      for (int i = 0; i < series.x.size() && i < series.y.size(); ++i) {
        QString label;
        if (!ticks.isEmpty()) {
          // The category a point belongs to (points of several runs sit side by side in it).
          const double x = series.x[i];
          const int at = static_cast<int>(std::lround(x));
          label = QStringLiteral(",") + csvField(std::abs(x - at) < 0.4 ? ticks.value(at) : QString());
        }
        QString ends;
        if (intervals) {
          const bool has = i < series.lower.size() && i < series.upper.size();
          ends = has ? QStringLiteral(",%1,%2").arg(exact(series.lower[i]), exact(series.upper[i])) : QStringLiteral(",,");
        }
        out += QStringLiteral("%1,%2,%3%4,%5%6\n")
                   .arg(csvField(series.name))
                   .arg(i)
                   .arg(exact(series.x[i]), label, exact(series.y[i]), ends);
      }
    }
  }
  return out.toUtf8();
}

QDateTime figureDate(const FigureSpec& spec) {
  bool ok = false;
  const qint64 epoch = qEnvironmentVariable("SOURCE_DATE_EPOCH").toLongLong(&ok);
  if (ok) {
    return QDateTime::fromSecsSinceEpoch(epoch, Qt::UTC);
  }
  QDateTime newest;
  for (const QString& path : spec.runPaths) {
    const QDateTime modified = QFileInfo(path).lastModified().toUTC();
    if (!newest.isValid() || modified > newest) {
      newest = modified;
    }
  }
  if (!newest.isValid()) {
    newest = QDateTime::fromSecsSinceEpoch(0, Qt::UTC);
  }
  return QDateTime::fromSecsSinceEpoch(newest.toSecsSinceEpoch(), Qt::UTC);
}

QString figureFileStem(const QString& name) { return name; }

FigureExporter::FigureExporter(const QStringList& runPaths, ExportOptions options) : m_options(std::move(options)) {
  std::vector<const RunDocument*> runs;
  for (const QString& path : runPaths) {
    m_documents.push_back(std::make_unique<RunDocument>(path));
    runs.push_back(m_documents.back().get());
  }
  m_catalog = std::make_unique<FigureCatalog>(runs);
  QString warning;
  static_cast<void>(m_options.style.resolvedFontFamily(&warning));
  if (!warning.isEmpty()) {
    m_warnings << warning;
  }
}

FigureExporter::~FigureExporter() = default;

ExportedFigure FigureExporter::exportFigure(const FigureSpec& spec) {
  ExportedFigure result;
  result.name = spec.name;
  result.view = spec.view;
  result.caption = spec.caption;
  try {
    const std::unique_ptr<PlotWidget> plot = buildExportPlot(spec, m_options.style);
    const QDir out(m_options.outDir);
    const QString stem = figureFileStem(spec.name);
    if (!out.mkpath(QFileInfo(out.filePath(stem)).path())) {
      result.error = QStringLiteral("%1: cannot create the folder").arg(QFileInfo(out.filePath(stem)).path());
      return result;
    }
    const QDateTime created = figureDate(spec);
    for (const FigureFormat format : m_options.formats) {
      QString error;
      const QByteArray bytes = renderFigure(*plot, spec, m_options.style, format, created, &error);
      const QString file = stem + QLatin1Char('.') + formatSuffix(format);
      if (bytes.isEmpty() || !writeFile(out.filePath(file), bytes, &error)) {
        result.error = error;
        return result;
      }
      result.files << file;
    }
    if (m_options.csv) {
      QString error;
      const QString file = stem + QStringLiteral(".csv");
      if (!writeFile(out.filePath(file), figureCsv(*plot, spec), &error)) {
        result.error = error;
        return result;
      }
      result.files << file;
    }
  } catch (const std::exception& error) {
    result.error = QString::fromUtf8(error.what());
  }
  return result;
}

QString FigureExporter::writeIndex(const std::vector<ExportedFigure>& figures, QString* error) const {
  if (m_options.index == IndexFormat::None) {
    return {};
  }
  const bool html = m_options.index == IndexFormat::Html;
  const QDir out(m_options.outDir);
  QString styleError;
  if (!out.mkpath(QStringLiteral(".")) || !m_options.style.saveFile(out.filePath(QStringLiteral("style.json")), &styleError)) {
    if (error != nullptr) {
      *error = styleError.isEmpty() ? QStringLiteral("%1: cannot create the folder").arg(m_options.outDir) : styleError;
    }
    return {};
  }
  // What the pack is of: the options' source lines, else the run files.
  std::vector<IndexSource> sources = m_options.indexSources;
  if (sources.empty()) {
    for (std::size_t r = 0; r < m_catalog->runs().size(); ++r) {
      sources.push_back({QStringLiteral("Run"),
                         QStringLiteral("%1 (%2)").arg(canonicalRunPath(*m_catalog->runs()[r]),
                                                       m_catalog->runLabels().value(static_cast<int>(r))),
                         true});
    }
  }
  QString formats;
  for (const FigureFormat format : m_options.formats) {
    formats += QLatin1Char(' ') + formatSuffix(format);
  }
  QString runArguments;
  if (!m_options.remakeInputs.isEmpty()) {
    runArguments = QLatin1Char(' ') + m_options.remakeInputs;
  } else {
    for (const RunDocument* run : m_catalog->runs()) {
      runArguments += QLatin1Char(' ') + canonicalRunPath(*run);
    }
  }
  const QString command = QStringLiteral("kdscope export%1 --figure all --style style.json --format%2 --out DIR --index %3")
                              .arg(runArguments, formats.replace(QLatin1Char(' '), QLatin1Char(',')).replace(0, 1, QLatin1Char(' ')),
                                   html ? QStringLiteral("html") : QStringLiteral("md"));

  QString text;
  if (html) {
    text += QStringLiteral("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                           "<title>KDScope figures</title>\n<style>\n"
                           "body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }\n"
                           "figure { margin: 2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }\n"
                           "figcaption { margin-top: 0.5em; } code { font-size: 90%; }\n"
                           "</style>\n</head>\n<body>\n<h1>KDScope figures</h1>\n<ul>\n");
    for (const IndexSource& source : sources) {
      text += source.code ? QStringLiteral("<li>%1: <code>%2</code></li>\n").arg(htmlEscape(source.label), htmlEscape(source.value))
                          : QStringLiteral("<li>%1: %2</li>\n").arg(htmlEscape(source.label), htmlEscape(source.value));
    }
    text += QStringLiteral("<li>Style: %1 (<a href=\"style.json\">style.json</a>)</li>\n"
                           "<li>Written by KDScope %2; remade by <code>%3</code></li>\n</ul>\n")
                .arg(htmlEscape(m_options.style.summary()), version(), htmlEscape(command));
  } else {
    text += QStringLiteral("# KDScope figures\n\n");
    for (const IndexSource& source : sources) {
      text += source.code ? QStringLiteral("- %1: `%2`\n").arg(source.label, source.value)
                          : QStringLiteral("- %1: %2\n").arg(source.label, source.value);
    }
    text += QStringLiteral("- Style: %1 ([style.json](style.json))\n- Written by KDScope %2; remade by `%3`\n")
                .arg(m_options.style.summary(), version(), command);
  }
  QString view;
  int number = 0;
  for (const ExportedFigure& figure : figures) {
    if (figure.view != view) {
      view = figure.view;
      const QString title = m_options.indexViewTitles.value(view, viewTitle(view));
      text += html ? QStringLiteral("<h2>%1</h2>\n").arg(htmlEscape(title)) : QStringLiteral("\n## %1\n").arg(title);
    }
    ++number;
    const QString shown = shownFile(figure);
    QStringList links;
    for (const QString& file : figure.files) {
      links << (html ? QStringLiteral("<a href=\"%1\">%2</a>").arg(htmlEscape(file), linkLabel(file))
                     : QStringLiteral("[%1](%2)").arg(linkLabel(file), file));
    }
    if (html) {
      text += QStringLiteral("<figure id=\"%1\">\n").arg(htmlEscape(figure.name));
      if (!shown.isEmpty()) {
        text += QStringLiteral("<img src=\"%1\" alt=\"%2\">\n").arg(htmlEscape(shown), htmlEscape(figure.name));
      }
      text += QStringLiteral("<figcaption><b>Figure %1</b> (<code>%2</code>). %3%4%5</figcaption>\n</figure>\n")
                  .arg(number)
                  .arg(htmlEscape(figure.name), htmlEscape(figure.caption),
                       figure.error.isEmpty() ? QString() : QStringLiteral(" <b>Not exported:</b> ") + htmlEscape(figure.error),
                       links.isEmpty() ? QString() : QStringLiteral("<br>") + links.join(QStringLiteral(" &middot; ")));
    } else {
      text += QStringLiteral("\n### Figure %1: `%2`\n\n").arg(number).arg(figure.name);
      if (!shown.isEmpty()) {
        text += QStringLiteral("![%1](%2)\n\n").arg(figure.name, shown);
      }
      text += QStringLiteral("*Figure %1.* %2\n").arg(number).arg(figure.caption);
      if (!figure.error.isEmpty()) {
        text += QStringLiteral("\n**Not exported:** %1\n").arg(figure.error);
      }
      if (!links.isEmpty()) {
        text += QStringLiteral("\n%1\n").arg(links.join(QStringLiteral(" · ")));
      }
    }
  }
  if (html) {
    text += QStringLiteral("</body>\n</html>\n");
  }
  const QString file = html ? QStringLiteral("index.html") : QStringLiteral("index.md");
  QString writeError;
  if (!writeFile(out.filePath(file), text.toUtf8(), &writeError)) {
    if (error != nullptr) {
      *error = writeError;
    }
    return {};
  }
  return file;
}

ExportSummary FigureExporter::exportAll(const std::vector<FigureSpec>& specs,
                                        const std::function<void(const ExportedFigure&, int, int)>& progress) {
  ExportSummary summary;
  summary.warnings = m_warnings;
  const int total = static_cast<int>(specs.size());
  for (const FigureSpec& spec : specs) {
    summary.figures.push_back(exportFigure(spec));
    if (progress) {
      progress(summary.figures.back(), static_cast<int>(summary.figures.size()), total);
    }
  }
  QString error;
  summary.indexFile = writeIndex(summary.figures, &error);
  if (!error.isEmpty()) {
    summary.warnings << error;
  }
  return summary;
}

FigureExportJob::FigureExportJob(const QStringList& runPaths, const QStringList& names, ExportOptions options,
                                 QObject* parent)
    : QObject(parent), m_runPaths(runPaths), m_names(names), m_options(std::move(options)) {}

FigureExportJob::FigureExportJob(std::vector<FigureSpec> figures, ExportOptions options, QObject* parent)
    : QObject(parent), m_options(std::move(options)), m_specs(std::move(figures)), m_given(true) {}

FigureExportJob::~FigureExportJob() = default;

void FigureExportJob::start() {
  try {
    m_exporter = std::make_unique<FigureExporter>(m_runPaths, m_options);
    QStringList unmatched;
    if (!m_given) {
      m_specs = m_exporter->catalog().select(m_names, &unmatched);
    }
    m_summary.warnings = m_exporter->warnings();
    for (const QString& name : unmatched) {
      m_summary.warnings << tr("no figure %1 in these runs").arg(name);
    }
  } catch (const std::exception& error) {
    const QString message = QString::fromUtf8(error.what());
    QTimer::singleShot(0, this, [this, message] { Q_EMIT finished(m_summary, message); });
    return;
  }
  QTimer::singleShot(0, this, &FigureExportJob::step);
}

void FigureExportJob::step() {
  if (m_cancelled || m_next >= m_specs.size()) {
    QString error;
    if (!m_cancelled) {
      m_summary.indexFile = m_exporter->writeIndex(m_summary.figures, &error);
    }
    Q_EMIT finished(m_summary, m_cancelled ? tr("cancelled") : error);
    return;
  }
  const FigureSpec& spec = m_specs[m_next++];
  m_summary.figures.push_back(m_exporter->exportFigure(spec));
  Q_EMIT progress(static_cast<int>(m_next), static_cast<int>(m_specs.size()), spec.name);
  QTimer::singleShot(0, this, &FigureExportJob::step);
}

} // namespace kdscope::widgets
