// Above 800 lines on purpose: one QCustomPlot wrapper for every plot kind (lines, heatmaps,
// bars, scatter) that the window and the exporter share, so on-screen and exported figures
// are drawn by the same code; its parts share the style and axis state.
#include "widgets/figures/plot_widget.h"

#include <QContextMenuEvent>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFontMetricsF>
#include <QtMath>
#include <QLabel>
#include <QMenu>
#include <QMouseEvent>
#include <QStackedLayout>
#include <QSvgGenerator>
#include <QToolTip>

// qcustomplot.h uses Qt's lower-case keywords (signals, emit, foreach), which
// QT_NO_KEYWORDS (needed for LibTorch's headers) removes. This is the only file that
// includes it, so the keywords are mapped for this one include and removed again.
#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef foreach
#undef emit
#undef slots
#undef signals

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace kdscope::widgets {

namespace {

FigureStyle& styleStorage() {
  static FigureStyle style;
  return style;
}

// A point counts as "under the mouse" within this many pixels.
constexpr double kPickRadiusPixels = 10.0;
// Axis tick labels are text labels up to this many rows or columns; beyond, numbers.
constexpr int kMaxTextTicks = 80;

QString number(double value) {
  if (std::isnan(value)) {
    return QStringLiteral("NaN");
  }
  return QString::number(value, 'g', 6);
}

QCPColorGradient makeGradient(Gradient gradient) {
  QCPColorGradient result;
  result.setColorStops(PlotWidget::gradientStops(gradient));
  result.setColorInterpolation(QCPColorGradient::ciRGB);
  result.setLevelCount(256);
  result.setNanHandling(QCPColorGradient::nhNanColor);
  result.setNanColor(QColor(200, 200, 200));
  return result;
}

QSharedPointer<QCPAxisTicker> makeTicker(const QStringList& labels, int count) {
  if (!labels.isEmpty() && labels.size() == count && count <= kMaxTextTicks) {
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int i = 0; i < count; ++i) {
      ticker->addTick(i, labels[i]);
    }
    return ticker;
  }
  QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
  ticker->setTickStep(1.0);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  return ticker;
}

// The family a style draws with, looked up once per family name (QFontDatabase is slow).
QString drawnFamily(const FigureStyle& style) {
  static std::map<QString, QString> cache;
  auto it = cache.find(style.fontFamily);
  if (it == cache.end()) {
    it = cache.emplace(style.fontFamily, style.resolvedFontFamily()).first;
  }
  return it->second;
}

// Greyscale series: grey level and dash pattern per index; marker shapes for every palette.
const QColor kGreys[] = {QColor(0, 0, 0), QColor(102, 102, 102), QColor(0, 0, 0), QColor(136, 136, 136),
                         QColor(51, 51, 51), QColor(153, 153, 153)};
// Dash patterns (in pen widths) of greyscale series; plain dashes (4 2) and dots (1 2) are
// left to the loss-term lines, which the caller asks for.
const QVector<qreal> kGreyDashes[] = {{}, {7, 2.5}, {4, 1.5, 1, 1.5}, {1.5, 1.5}, {7, 2, 1, 2, 1, 2}, {2.5, 4}};
const QCPScatterStyle::ScatterShape kShapes[] = {QCPScatterStyle::ssCircle,  QCPScatterStyle::ssSquare,
                                                 QCPScatterStyle::ssTriangle, QCPScatterStyle::ssDiamond,
                                                 QCPScatterStyle::ssCross,   QCPScatterStyle::ssTriangleInverted,
                                                 QCPScatterStyle::ssPlus,    QCPScatterStyle::ssStar};

template <typename T, std::size_t N>
const T& cycle(const T (&values)[N], int index) {
  const int n = static_cast<int>(N);
  return values[((index % n) + n) % n];
}

// Markers on a line: about this many per series, so long curves stay lines.
constexpr int kMarkersPerLine = 10;

} // namespace

PlotWidget::PlotWidget(QWidget* parent) : QWidget(parent) {
  m_stack = new QStackedLayout(this);
  m_stack->setContentsMargins(0, 0, 0, 0);
  m_plot = new QCustomPlot(this);
  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  m_plot->setMinimumSize(160, 120);
  m_messageLabel = new QLabel(this);
  m_messageLabel->setAlignment(Qt::AlignCenter);
  m_messageLabel->setWordWrap(true);
  m_messageLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_stack->addWidget(m_plot);
  m_stack->addWidget(m_messageLabel);
  m_plot->legend->setVisible(false);
  m_plot->legend->setBrush(QColor(255, 255, 255, 200));
  m_plot->setContextMenuPolicy(Qt::DefaultContextMenu);
  applyStyle();
}

PlotWidget::~PlotWidget() = default;

double PlotWidget::penScale() const {
  // Export lays out in points; on screen a point is logicalDpi / 72 pixels.
  return m_exportMode ? 1.0 : std::max(1.0, logicalDpiY() / 72.0);
}

void PlotWidget::applyStyle() {
  const FigureStyle& s = style();
  QFont font(drawnFamily(s));
  if (m_exportMode) {
    // Layout units are points: a pixel-sized font measures the same on every device, and
    // unhinted glyphs scale linearly, so layout and drawing agree at any DPI.
    font.setPixelSize(s.fontPointSize);
    font.setHintingPreference(QFont::PreferNoHinting);
  } else {
    font.setPointSize(s.fontPointSize);
  }
  QList<QCPAxis*> axes = {m_plot->xAxis, m_plot->yAxis};
  if (m_colorScale != nullptr) {
    axes << m_colorScale->axis();
  }
  for (QCPAxis* axis : axes) {
    axis->setLabelFont(font);
    axis->setTickLabelFont(font);
  }
  m_plot->legend->setFont(font);
  QFont titleFont = font;
  if (m_exportMode) {
    titleFont.setPixelSize(s.fontPointSize + 1);
  } else {
    titleFont.setPointSize(s.fontPointSize + 1);
  }
  titleFont.setBold(true);
  m_plot->xAxis2->setLabelFont(titleFont);
  if (!m_exportMode) {
    return;
  }
  m_plot->setAntialiasedElements(QCP::aeAll); // exact (unrounded) coordinates everywhere
  const QPen axisPen(Qt::black, s.axisLineWidth, Qt::SolidLine, Qt::SquareCap);
  const QPen gridPen(QColor(220, 220, 220), std::max(0.3, 0.6 * s.axisLineWidth), Qt::SolidLine, Qt::FlatCap);
  for (QCPAxis* axis : axes) {
    axis->setBasePen(axisPen);
    axis->setTickPen(axisPen);
    axis->setSubTickPen(axisPen);
    axis->setTickLength(0, 3); // outward, as in most journals
    axis->setSubTicks(false);
    axis->setTickLabelPadding(2);
    axis->setLabelPadding(2);
    axis->setPadding(2);
    axis->grid()->setPen(gridPen);
    axis->grid()->setZeroLinePen(gridPen);
    axis->grid()->setSubGridVisible(false);
    axis->grid()->setVisible(s.grid && axis != (m_colorScale != nullptr ? m_colorScale->axis() : nullptr) &&
                             m_colorMap == nullptr);
  }
  m_plot->axisRect()->setMinimumMargins(QMargins(2, 6, 8, 2)); // room for half a tick label
  m_plot->xAxis2->setPadding(2);
  m_plot->xAxis2->setLabelPadding(3);
  if (m_colorScale != nullptr) {
    m_colorScale->setBarWidth(std::max(4, s.fontPointSize));
  }
  m_plot->legend->setIconSize(QSize(3 * s.fontPointSize, s.fontPointSize));
  m_plot->legend->setIconTextPadding(std::max(2, s.fontPointSize / 3));
  m_plot->legend->setColumnSpacing(s.fontPointSize);
  m_plot->legend->setRowSpacing(0);
  m_plot->legend->setMargins(QMargins(2, 1, 2, 1));
  setTitle(m_title); // shown or hidden per style
}

void PlotWidget::setStyle(const FigureStyle& style) {
  m_style = style;
  applyStyle();
}

const FigureStyle& PlotWidget::style() const { return m_style ? *m_style : figureStyle(); }

void PlotWidget::setExportStyle(const FigureStyle& style) {
  m_exportMode = true;
  m_style = style;
  m_plot->setInteractions({});
  applyStyle();
}

QString PlotWidget::xLabel() const { return m_plot->xAxis->label(); }

QString PlotWidget::yLabel() const { return m_plot->yAxis->label(); }

void PlotWidget::clear() {
  m_plot->clearGraphs();
  m_plot->clearPlottables();
  m_colorMap = nullptr;
  if (m_colorScale != nullptr) {
    m_plot->plotLayout()->remove(m_colorScale);
    m_colorScale = nullptr;
    m_plot->plotLayout()->simplify();
  }
  m_heatmap = Heatmap{};
  m_heatmapMarks.clear();
  m_series.clear();
  m_referenceLines.clear();
  m_plot->clearItems();
  m_xTickLabels.clear();
  m_figureName.clear();
  m_plot->legend->setVisible(false);
  m_plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  m_plot->xAxis->setTickLabelRotation(0);
  m_plot->yAxis->setRangeReversed(false);
  m_plot->xAxis->setLabel(QString());
  m_plot->yAxis->setLabel(QString());
  setTitle(QString());
  setMessage(QString());
  applyStyle();
  queueReplot();
}

void PlotWidget::setTitle(const QString& title) {
  m_title = title;
  // The title is the axis rect's top label, so no layout row is added or removed. Exported
  // figures show it only when the style asks (a paper's caption usually says it).
  const bool shown = !title.isEmpty() && (!m_exportMode || style().title);
  m_plot->xAxis2->setVisible(shown);
  m_plot->xAxis2->setTicks(false);
  m_plot->xAxis2->setTickLabels(false);
  m_plot->xAxis2->setBasePen(Qt::NoPen);
  m_plot->xAxis2->grid()->setVisible(false);
  m_plot->xAxis2->setLabel(shown ? title : QString());
}

void PlotWidget::setAxisLabels(const QString& x, const QString& y) {
  m_plot->xAxis->setLabel(x);
  m_plot->yAxis->setLabel(y);
}

void PlotWidget::setXTickLabels(const QStringList& labels) {
  m_xTickLabels = labels;
  if (labels.isEmpty()) {
    m_plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    m_plot->xAxis->setTickLabelRotation(0);
    return;
  }
  m_plot->xAxis->setTicker(makeTicker(labels, static_cast<int>(labels.size())));
  m_plot->xAxis->setTickLabelRotation(labels.size() > 6 ? 45 : 0);
}

void PlotWidget::setMessage(const QString& message) {
  m_messageLabel->setText(message);
  m_stack->setCurrentWidget(message.isEmpty() ? static_cast<QWidget*>(m_plot) : m_messageLabel);
}

QString PlotWidget::message() const { return m_messageLabel->text(); }

int PlotWidget::addLine(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex,
                        LineStyle style) {
  const FigureStyle& s = this->style();
  QCPGraph* graph = m_plot->addGraph();
  const QColor color = paletteColor(s.palette, colorIndex);
  QPen pen(color);
  pen.setWidthF(s.lineWidth * penScale());
  pen.setJoinStyle(Qt::RoundJoin);
  pen.setStyle(style == LineStyle::Dashed ? Qt::DashLine : style == LineStyle::Dotted ? Qt::DotLine : Qt::SolidLine);
  if (s.palette == Palette::Greyscale && style == LineStyle::Solid && !cycle(kGreyDashes, colorIndex).isEmpty()) {
    pen.setDashPattern(cycle(kGreyDashes, colorIndex)); // sets Qt::CustomDashLine
  }
  graph->setPen(pen);
  graph->setName(name);
  graph->setData(x, y, /*alreadySorted=*/false);
  if (m_exportMode) {
    graph->setAdaptiveSampling(false); // draw every point the CSV holds
  }
  const bool markers = s.markers || s.palette == Palette::Greyscale;
  if (markers) {
    QPen markerPen(color, std::max(0.5, 0.75 * s.lineWidth) * penScale());
    graph->setScatterStyle(QCPScatterStyle(cycle(kShapes, colorIndex), markerPen, QBrush(Qt::white),
                                           (2.5 + 2.5 * s.lineWidth) * penScale()));
    graph->setScatterSkip(std::max(0, static_cast<int>(x.size()) / kMarkersPerLine - 1));
  } else if (x.size() == 1) {
    graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5 * penScale()));
  }
  if (name.isEmpty()) {
    graph->removeFromLegend();
  }
  m_plot->legend->setVisible(!name.isEmpty() || m_plot->legend->visible());
  m_series.append(PlotSeries{name, x, y, false, colorIndex, static_cast<int>(style), 0.0, {}, {}});
  return m_plot->graphCount() - 1;
}

int PlotWidget::addScatter(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex,
                           double markerPoints) {
  const FigureStyle& s = style();
  const int index = addLine(name, x, y, colorIndex);
  QCPGraph* graph = m_plot->graph(index);
  graph->setLineStyle(QCPGraph::lsNone);
  graph->setScatterSkip(0);
  const QColor color = paletteColor(s.palette, colorIndex);
  QColor fill = color;
  fill.setAlpha(140);
  const bool shapes = s.markers || s.palette == Palette::Greyscale;
  const double size = !m_exportMode ? (markerPoints > 0.0 ? 7.0 : 5.0)
                     : markerPoints > 0.0 ? markerPoints
                                          : 2.0 + 1.5 * s.lineWidth;
  graph->setScatterStyle(QCPScatterStyle(shapes ? cycle(kShapes, colorIndex) : QCPScatterStyle::ssDisc,
                                         QPen(color, std::max(0.5, 0.6 * s.lineWidth) * penScale()), QBrush(fill),
                                         size));
  m_series.last().scatter = true;
  m_series.last().markerPoints = markerPoints;
  return index;
}

PlotSeries* PlotWidget::withInterval(int line, const QVector<double>& lower, const QVector<double>& upper) {
  if (line < 0 || line >= m_plot->graphCount() || line >= m_series.size() || lower.size() != m_series[line].y.size() ||
      upper.size() != lower.size()) {
    return nullptr;
  }
  PlotSeries& series = m_series[line];
  series.lower = lower;
  series.upper = upper;
  return &series;
}

void PlotWidget::setErrorBars(int line, const QVector<double>& lower, const QVector<double>& upper) {
  PlotSeries* at = withInterval(line, lower, upper);
  if (at == nullptr) {
    return;
  }
  const PlotSeries& series = *at;
  auto* bars = new QCPErrorBars(m_plot->xAxis, m_plot->yAxis);
  bars->removeFromLegend();
  QVector<double> minus(lower.size());
  QVector<double> plus(lower.size());
  const QVector<double>& keys = series.x;
  for (int i = 0; i < lower.size(); ++i) {
    const bool known = std::isfinite(lower[i]) && std::isfinite(upper[i]);
    minus[i] = known ? std::max(0.0, series.y[i] - lower[i]) : 0.0;
    plus[i] = known ? std::max(0.0, upper[i] - series.y[i]) : 0.0;
  }
  // QCPErrorBars pairs its data with the graph's by index, and the graph sorts by key: sort
  // the bars the same way.
  QVector<int> order(lower.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&keys](int a, int b) { return keys[a] < keys[b]; });
  QVector<double> sortedMinus;
  QVector<double> sortedPlus;
  for (const int i : order) {
    sortedMinus << minus[i];
    sortedPlus << plus[i];
  }
  bars->setData(sortedMinus, sortedPlus);
  bars->setDataPlottable(m_plot->graph(line));
  const FigureStyle& s = style();
  bars->setPen(QPen(paletteColor(s.palette, series.colorIndex), std::max(0.5, 0.75 * s.lineWidth) * penScale()));
  bars->setWhiskerWidth((m_exportMode ? 4.0 : 6.0) * penScale());
}

void PlotWidget::setBand(int line, const QVector<double>& lower, const QVector<double>& upper) {
  PlotSeries* at = withInterval(line, lower, upper);
  if (at == nullptr) {
    return;
  }
  PlotSeries& series = *at;
  series.band = true;
  // One closed polygon per run of points with both ends known, in x order: along the upper
  // ends forward, then the lower ends back. A QCPCurve, not a graph, so graph indices stay
  // the series' indices.
  QVector<int> order(lower.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&series](int a, int b) { return series.x[a] < series.x[b]; });
  const QColor color = paletteColor(style().palette, series.colorIndex);
  QColor fill = color;
  fill.setAlphaF(0.22);
  const auto flush = [&](const QVector<int>& run) {
    if (run.size() < 2) {
      return;
    }
    auto* curve = new QCPCurve(m_plot->xAxis, m_plot->yAxis);
    curve->removeFromLegend();
    QVector<double> t;
    QVector<double> xs;
    QVector<double> ys;
    for (const int i : run) {
      t << t.size();
      xs << series.x[i];
      ys << upper[i];
    }
    for (auto it = run.crbegin(); it != run.crend(); ++it) {
      t << t.size();
      xs << series.x[*it];
      ys << lower[*it];
    }
    curve->setData(t, xs, ys, /*alreadySorted=*/true);
    curve->setPen(Qt::NoPen);
    curve->setBrush(fill);
    curve->setLineStyle(QCPCurve::lsLine);
    curve->setScatterStyle(QCPScatterStyle::ssNone);
    curve->setSelectable(QCP::stNone);
    curve->setLayer(QStringLiteral("grid"));
  };
  QVector<int> run;
  for (const int i : order) {
    if (std::isfinite(lower[i]) && std::isfinite(upper[i])) {
      run << i;
    } else {
      flush(run);
      run.clear();
    }
  }
  flush(run);
}

void PlotWidget::addReferenceLine(double y) {
  auto* line = new QCPItemStraightLine(m_plot);
  line->point1->setCoords(0.0, y);
  line->point2->setCoords(1.0, y);
  QPen pen(QColor(110, 110, 110), std::max(0.5, 0.5 * style().lineWidth) * penScale(), Qt::DashLine);
  line->setPen(pen);
  line->setLayer(QStringLiteral("grid"));
  m_referenceLines << y;
}

PlotContent PlotWidget::content() const {
  PlotContent content;
  content.title = m_title;
  content.xLabel = xLabel();
  content.yLabel = yLabel();
  content.xTickLabels = m_xTickLabels;
  content.series = m_series;
  content.referenceLines = m_referenceLines;
  if (m_colorMap != nullptr) {
    content.heatmap = m_heatmap;
  }
  return content;
}

void PlotWidget::setContent(const PlotContent& content) {
  clear();
  setTitle(content.title);
  if (content.heatmap) {
    setHeatmap(*content.heatmap);
    return;
  }
  setAxisLabels(content.xLabel, content.yLabel);
  for (const PlotSeries& series : content.series) {
    if (series.scatter) {
      addScatter(series.name, series.x, series.y, series.colorIndex, series.markerPoints);
    } else {
      addLine(series.name, series.x, series.y, series.colorIndex, static_cast<LineStyle>(series.lineStyle));
    }
    if (!series.lower.isEmpty()) {
      if (series.band) {
        setBand(lineCount() - 1, series.lower, series.upper);
      } else {
        setErrorBars(lineCount() - 1, series.lower, series.upper);
      }
    }
  }
  for (const double y : content.referenceLines) {
    addReferenceLine(y);
  }
  setXTickLabels(content.xTickLabels);
  rescale();
}

void PlotWidget::appendPoints(int line, const QVector<double>& x, const QVector<double>& y) {
  if (line < 0 || line >= m_plot->graphCount()) {
    return;
  }
  m_plot->graph(line)->addData(x, y, /*alreadySorted=*/true);
  if (line < m_series.size()) {
    m_series[line].x += x;
    m_series[line].y += y;
  }
}

int PlotWidget::lineCount() const { return m_plot->graphCount(); }

QString PlotWidget::lineName(int line) const {
  return line >= 0 && line < m_plot->graphCount() ? m_plot->graph(line)->name() : QString();
}

QVector<QPointF> PlotWidget::lineData(int line) const {
  QVector<QPointF> points;
  if (line < 0 || line >= m_plot->graphCount()) {
    return points;
  }
  const auto data = m_plot->graph(line)->data();
  for (auto it = data->constBegin(); it != data->constEnd(); ++it) {
    points.append(QPointF(it->key, it->value));
  }
  return points;
}

void PlotWidget::setHeatmap(const Heatmap& heatmap) {
  const QString title = m_title;
  clear();
  setTitle(title);
  if (heatmap.rows <= 0 || heatmap.cols <= 0 ||
      heatmap.values.size() != static_cast<std::size_t>(heatmap.rows) * static_cast<std::size_t>(heatmap.cols)) {
    setMessage(tr("empty matrix"));
    return;
  }
  m_heatmap = heatmap;
  m_colorMap = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
  m_colorMap->setInterpolate(false); // cells, not a smooth field
  m_colorMap->setTightBoundary(false);
  m_colorMap->data()->setSize(heatmap.cols, heatmap.rows);
  m_colorMap->data()->setRange(QCPRange(0, std::max(1, heatmap.cols - 1)), QCPRange(0, std::max(1, heatmap.rows - 1)));
  // A 1-wide range would stretch a single cell; setRange needs distinct bounds, so a
  // single row or column is laid out at index 0 and 1 with the second cell unused.
  if (heatmap.cols == 1 || heatmap.rows == 1) {
    m_colorMap->data()->setSize(std::max(2, heatmap.cols), std::max(2, heatmap.rows));
    m_colorMap->data()->fill(std::numeric_limits<double>::quiet_NaN());
  }
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (int r = 0; r < heatmap.rows; ++r) {
    for (int c = 0; c < heatmap.cols; ++c) {
      const double v = heatmap.values[static_cast<std::size_t>(r) * heatmap.cols + c];
      m_colorMap->data()->setCell(c, r, v);
      if (!std::isnan(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  if (heatmap.range) {
    lo = heatmap.range->first;
    hi = heatmap.range->second;
  } else if (!(lo <= hi)) {
    lo = 0.0;
    hi = 1.0;
  }
  if (lo == hi) {
    hi = lo + 1e-9;
  }
  m_colorScale = new QCPColorScale(m_plot);
  m_plot->plotLayout()->addElement(0, 1, m_colorScale);
  m_colorScale->setType(QCPAxis::atRight);
  m_colorScale->axis()->setLabel(heatmap.valueTitle);
  m_colorMap->setColorScale(m_colorScale);
  m_colorMap->setGradient(makeGradient(heatmap.gradient.value_or(style().gradient)));
  m_colorMap->setDataRange(QCPRange(lo, hi));
  // Keep the colour scale as tall as the plot.
  auto* group = new QCPMarginGroup(m_plot);
  m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  m_colorScale->setMarginGroup(QCP::msBottom | QCP::msTop, group);

  m_plot->xAxis->setTicker(makeTicker(heatmap.colLabels, heatmap.cols));
  m_plot->yAxis->setTicker(makeTicker(heatmap.rowLabels, heatmap.rows));
  if (!heatmap.colLabels.isEmpty() && heatmap.cols > 6) {
    m_plot->xAxis->setTickLabelRotation(60);
  }
  m_plot->xAxis->setLabel(heatmap.colTitle);
  m_plot->yAxis->setLabel(heatmap.rowTitle);
  m_plot->yAxis->setRangeReversed(true); // row 0 at the top, as a matrix reads
  applyStyle(); // the colour scale's axis takes the fonts and pens
  drawHeatmapMarks();
  rescale();
}

void PlotWidget::drawHeatmapMarks() {
  const std::size_t cells = static_cast<std::size_t>(m_heatmap.rows) * static_cast<std::size_t>(m_heatmap.cols);
  if (m_heatmap.marked.size() != cells) {
    return;
  }
  QFont font(drawnFamily(style()));
  const int size = std::max(5, style().fontPointSize - 2);
  if (m_exportMode) {
    font.setPixelSize(size);
    font.setHintingPreference(QFont::PreferNoHinting);
  } else {
    font.setPointSize(size);
  }
  for (int r = 0; r < m_heatmap.rows; ++r) {
    for (int c = 0; c < m_heatmap.cols; ++c) {
      if (m_heatmap.marked[static_cast<std::size_t>(r) * m_heatmap.cols + c] == 0) {
        continue;
      }
      // Black or white, whichever reads better on the cell's colour.
      const QColor fill = heatmapColor(r, c);
      auto* mark = new QCPItemText(m_plot);
      mark->position->setCoords(c, r);
      mark->setPositionAlignment(Qt::AlignCenter);
      mark->setText(m_heatmap.markText);
      mark->setFont(font);
      mark->setColor(fill.isValid() && fill.lightnessF() < 0.5 ? Qt::white : Qt::black);
      mark->setClipToAxisRect(true);
      m_heatmapMarks.append({r, c});
    }
  }
}

bool PlotWidget::hasHeatmap() const { return m_colorMap != nullptr; }

bool PlotWidget::heatmapInterpolated() const { return m_colorMap != nullptr && m_colorMap->interpolate(); }

QColor PlotWidget::heatmapColor(int row, int col) const {
  if (m_colorMap == nullptr || row < 0 || col < 0 || row >= m_heatmap.rows || col >= m_heatmap.cols) {
    return {};
  }
  QCPColorGradient gradient = m_colorMap->gradient();
  return QColor::fromRgba(
      gradient.color(m_heatmap.values[static_cast<std::size_t>(row) * m_heatmap.cols + col], m_colorMap->dataRange()));
}

void PlotWidget::rescale() {
  if (m_colorMap != nullptr) {
    m_plot->xAxis->setRange(-0.5, m_heatmap.cols - 0.5);
    m_plot->yAxis->setRange(-0.5, m_heatmap.rows - 0.5);
  } else {
    m_plot->rescaleAxes();
    // A flat line would get a zero-height range: centre it with a little room.
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    for (const PlotSeries& series : m_series) {
      for (const QVector<double>* values : {&series.y, &series.lower, &series.upper}) {
        for (const double v : *values) {
          if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
          }
        }
      }
    }
    for (const double v : m_referenceLines) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (lo <= hi) {
      // rescaleAxes knows the graphs; the error bars and reference lines may reach further.
      const QCPRange fitted = m_plot->yAxis->range();
      m_plot->yAxis->setRange(std::min(fitted.lower, lo), std::max(fitted.upper, hi));
    }
    const QCPRange y = m_plot->yAxis->range();
    if (lo <= hi && hi - lo < 1e-12) {
      const double pad = std::max(0.05, 0.05 * std::abs(lo));
      m_plot->yAxis->setRange(lo - pad, hi + pad);
    } else if (y.size() < 1e-12) {
      m_plot->yAxis->setRange(y.lower - 0.5, y.upper + 0.5);
    } else {
      m_plot->yAxis->scaleRange(1.05, y.center());
    }
    // Steps, epochs and categories are whole numbers: no ticks at 1.2, 1.4, ...
    bool integral = !m_series.isEmpty();
    for (const PlotSeries& series : m_series) {
      for (const double x : series.x) {
        integral = integral && std::isfinite(x) && x == std::floor(x);
      }
    }
    if (integral && m_xTickLabels.isEmpty()) {
      QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
      ticker->setTickStep(1.0);
      ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
      m_plot->xAxis->setTicker(ticker);
    }
    if (!m_xTickLabels.isEmpty()) {
      // Categories: half a category of room at each end.
      m_plot->xAxis->setRange(-0.5, m_xTickLabels.size() - 0.5);
    } else if (m_exportMode) {
      // Room for markers and line ends at the edges (matplotlib's margins do the same).
      const QCPRange x = m_plot->xAxis->range();
      m_plot->xAxis->setRange(x.size() < 1e-12 ? QCPRange(x.lower - 0.5, x.upper + 0.5)
                                               : QCPRange(x.lower - 0.03 * x.size(), x.upper + 0.03 * x.size()));
    }
  }
  queueReplot();
}

void PlotWidget::setXRange(double lower, double upper) {
  m_plot->xAxis->setRange(lower, upper);
  queueReplot();
}

void PlotWidget::queueReplot() { m_plot->replot(QCustomPlot::rpQueuedReplot); }

bool PlotWidget::cellAt(const QPoint& pixel, int* row, int* col) const {
  if (m_colorMap == nullptr || !m_plot->axisRect()->rect().contains(pixel)) {
    return false;
  }
  const double x = m_plot->xAxis->pixelToCoord(pixel.x());
  const double y = m_plot->yAxis->pixelToCoord(pixel.y());
  const int c = static_cast<int>(std::floor(x + 0.5));
  const int r = static_cast<int>(std::floor(y + 0.5));
  if (r < 0 || c < 0 || r >= m_heatmap.rows || c >= m_heatmap.cols) {
    return false;
  }
  *row = r;
  *col = c;
  return true;
}

QString PlotWidget::toolTipAt(const QPoint& pixel) const {
  int row = 0;
  int col = 0;
  if (cellAt(pixel, &row, &col)) {
    const QString rowName = row < m_heatmap.rowLabels.size() ? m_heatmap.rowLabels[row] : QString::number(row);
    const QString colName = col < m_heatmap.colLabels.size() ? m_heatmap.colLabels[col] : QString::number(col);
    const std::size_t at = static_cast<std::size_t>(row) * m_heatmap.cols + col;
    const double v = m_heatmap.values[at];
    QString text = QStringLiteral("%1 %2, %3 %4\n%5 = %6")
                       .arg(m_heatmap.rowTitle.isEmpty() ? tr("row") : m_heatmap.rowTitle, rowName,
                            m_heatmap.colTitle.isEmpty() ? tr("column") : m_heatmap.colTitle, colName,
                            m_heatmap.valueTitle.isEmpty() ? tr("value") : m_heatmap.valueTitle, number(v));
    if (at < m_heatmap.lower.size() && at < m_heatmap.upper.size() && !std::isnan(m_heatmap.lower[at]) &&
        !std::isnan(m_heatmap.upper[at])) {
      text += QStringLiteral(" [%1, %2]").arg(number(m_heatmap.lower[at]), number(m_heatmap.upper[at]));
      if (!m_heatmap.intervalTitle.isEmpty()) {
        text += QStringLiteral("\n") + m_heatmap.intervalTitle;
      }
    } else if (!m_heatmap.noInterval.isEmpty()) {
      text += QStringLiteral("\n") + m_heatmap.noInterval;
    }
    if (at < m_heatmap.adjustedP.size() && std::isfinite(m_heatmap.adjustedP[at])) {
      text += QStringLiteral("\np = %1 (%2)").arg(number(m_heatmap.adjustedP[at]), m_heatmap.pTitle);
    }
    if (at < m_heatmap.marked.size() && m_heatmap.marked[at] != 0) {
      text += QStringLiteral("\n%1: %2").arg(m_heatmap.markText, m_heatmap.markTitle);
    }
    return text;
  }
  double best = kPickRadiusPixels;
  QString text;
  for (int g = 0; g < m_plot->graphCount(); ++g) {
    QCPGraph* graph = m_plot->graph(g);
    if (!graph->visible()) {
      continue;
    }
    const auto data = graph->data();
    for (auto it = data->constBegin(); it != data->constEnd(); ++it) {
      const double px = m_plot->xAxis->coordToPixel(it->key);
      const double py = m_plot->yAxis->coordToPixel(it->value);
      const double d = std::hypot(px - pixel.x(), py - pixel.y());
      if (d < best) {
        best = d;
        text = QStringLiteral("%1\n%2 = %3\n%4 = %5")
                   .arg(graph->name(), m_plot->xAxis->label().isEmpty() ? QStringLiteral("x") : m_plot->xAxis->label(),
                        number(it->key),
                        m_plot->yAxis->label().isEmpty() ? QStringLiteral("y") : m_plot->yAxis->label(),
                        number(it->value));
        if (g < m_series.size() && !m_series[g].lower.isEmpty()) {
          const PlotSeries& series = m_series[g];
          for (int i = 0; i < series.x.size(); ++i) {
            if (series.x[i] == it->key && series.y[i] == it->value) {
              text += QStringLiteral("\n95% interval [%1, %2]").arg(number(series.lower[i]), number(series.upper[i]));
              break;
            }
          }
        }
      }
    }
  }
  return text;
}

QPoint PlotWidget::pixelOfCell(int row, int col) const {
  return QPoint(static_cast<int>(std::lround(m_plot->xAxis->coordToPixel(col))),
                static_cast<int>(std::lround(m_plot->yAxis->coordToPixel(row))));
}

QPoint PlotWidget::pixelOfPoint(int line, int index) const {
  const QVector<QPointF> points = lineData(line);
  if (index < 0 || index >= points.size()) {
    return {};
  }
  return QPoint(static_cast<int>(std::lround(m_plot->xAxis->coordToPixel(points[index].x()))),
                static_cast<int>(std::lround(m_plot->yAxis->coordToPixel(points[index].y()))));
}

bool PlotWidget::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot) {
    if (event->type() == QEvent::MouseMove) {
      const auto* mouse = static_cast<QMouseEvent*>(event);
      const QString text = toolTipAt(mouse->position().toPoint());
      if (text.isEmpty()) {
        QToolTip::hideText();
      } else {
        QToolTip::showText(mouse->globalPosition().toPoint(), text, m_plot);
      }
    } else if (event->type() == QEvent::ContextMenu) {
      const auto* menu = static_cast<QContextMenuEvent*>(event);
      showContextMenu(menu->pos(), menu->globalPos());
      return true;
    } else if (event->type() == QEvent::MouseButtonDblClick) {
      rescale(); // double-click resets zoom and pan
      return true;
    } else if (event->type() == QEvent::MouseButtonRelease) {
      const auto* mouse = static_cast<QMouseEvent*>(event);
      int row = 0;
      int col = 0;
      if (mouse->button() == Qt::LeftButton && cellAt(mouse->position().toPoint(), &row, &col)) {
        Q_EMIT cellClicked(row, col);
      }
    }
  }
  return QWidget::eventFilter(watched, event);
}

void PlotWidget::showContextMenu(const QPoint& pixel, const QPoint& global) {
  Q_UNUSED(pixel);
  auto* menu = new QMenu(this);
  menu->setAttribute(Qt::WA_DeleteOnClose);
  if (!m_figureName.isEmpty()) {
    QAction* exportAction = menu->addAction(tr("Export figure %1...").arg(m_figureName));
    exportAction->setObjectName(QStringLiteral("exportFigureAction"));
    const QString name = m_figureName;
    connect(exportAction, &QAction::triggered, this, [this, name] { Q_EMIT exportFigureRequested(name); });
  } else if (m_stack->currentWidget() == m_plot && (!m_series.isEmpty() || m_colorMap != nullptr)) {
    QAction* exportAction = menu->addAction(tr("Export figure..."));
    exportAction->setObjectName(QStringLiteral("exportFigureAction"));
    connect(exportAction, &QAction::triggered, this, [this] { Q_EMIT exportContentRequested(); });
  }
  QAction* saveAction = menu->addAction(tr("Save plot as shown (PNG, PDF, SVG)..."));
  connect(saveAction, &QAction::triggered, this, [this] {
    auto* dialog = new QFileDialog(this, tr("Save plot"), QString(), tr("PNG (*.png);;PDF (*.pdf);;SVG (*.svg)"));
    dialog->setAcceptMode(QFileDialog::AcceptSave);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString& path) {
      if (path.endsWith(QStringLiteral(".pdf"), Qt::CaseInsensitive)) {
        savePdf(path);
      } else if (path.endsWith(QStringLiteral(".svg"), Qt::CaseInsensitive)) {
        saveSvg(path);
      } else {
        savePng(path);
      }
    });
    dialog->open();
  });
  QAction* resetAction = menu->addAction(tr("Reset zoom"));
  connect(resetAction, &QAction::triggered, this, [this] { rescale(); });
  menu->popup(global);
}

bool PlotWidget::savePng(const QString& path, int width, int height) {
  return m_plot->savePng(path, width, height, /*scale=*/2.0);
}

bool PlotWidget::savePdf(const QString& path, int width, int height) {
  return m_plot->savePdf(path, width, height); // text stays text
}

bool PlotWidget::saveSvg(const QString& path, int width, int height) {
  const int w = width > 0 ? width : m_plot->width();
  const int h = height > 0 ? height : m_plot->height();
  QSvgGenerator generator;
  generator.setFileName(path);
  generator.setSize(QSize(w, h));
  generator.setViewBox(QRect(0, 0, w, h));
  QCPPainter painter;
  if (!painter.begin(&generator)) {
    return false;
  }
  m_plot->toPainter(&painter, w, h);
  return painter.end();
}

void PlotWidget::placeLegend() {
  QCPLegend* legend = m_plot->legend;
  bool named = false;
  for (int g = 0; g < m_plot->graphCount(); ++g) {
    named = named || !m_plot->graph(g)->name().isEmpty();
  }
  m_plot->axisRect()->insetLayout()->take(legend); // from the inset: placed per style below
  const LegendPlacement where = named && m_colorMap == nullptr ? style().legend : LegendPlacement::None;
  legend->setVisible(where != LegendPlacement::None);
  legend->setFillOrder(QCPLayoutGrid::foRowsFirst, true);
  legend->setWrap(0);
  if (where == LegendPlacement::None || where == LegendPlacement::Inside) {
    legend->setBorderPen(QPen(QColor(160, 160, 160), 0.5));
    legend->setBrush(QColor(255, 255, 255, 220));
    m_plot->axisRect()->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
    return;
  }
  legend->setBorderPen(Qt::NoPen);
  legend->setBrush(Qt::NoBrush);
  if (where == LegendPlacement::Right) {
    // In a column of its own, at the top: an empty element below takes the rest.
    auto* side = new QCPLayoutGrid;
    const int column = m_plot->plotLayout()->columnCount();
    m_plot->plotLayout()->addElement(0, column, side);
    m_plot->plotLayout()->setColumnStretchFactor(column, 0.001);
    side->addElement(0, 0, legend);
    side->addElement(1, 0, new QCPLayoutElement(m_plot)); // empty, takes the height left
    side->setRowStretchFactor(0, 0.001);
    return;
  }
  // Below, aligned with the axis rect; wrapLegend() fills its rows.
  auto* group = new QCPMarginGroup(m_plot);
  m_plot->axisRect()->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  legend->setAutoMargins(QCP::msLeft | QCP::msRight);
  legend->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
  const int row = m_plot->plotLayout()->rowCount();
  m_plot->plotLayout()->addElement(row, 0, legend);
  m_plot->plotLayout()->setRowStretchFactor(row, 0.001);
}

void PlotWidget::wrapLegend(const QSize& layout) {
  QCPLegend* legend = m_plot->legend;
  if (!legend->visible() || style().legend != LegendPlacement::Below) {
    return;
  }
  // As many columns as fit the axis rect's width, filled row by row.
  legend->setWrap(0);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
  layoutAt(layout);
  QVector<int> widths;
  for (int i = 0; i < legend->itemCount(); ++i) {
    // A wrapped legend grid has empty cells: item() is null there.
    if (const QCPAbstractLegendItem* item = legend->item(i)) {
      widths << item->minimumOuterSizeHint().width();
    }
  }
  const int available = std::max(20, m_plot->axisRect()->width());
  int columns = std::max(1, static_cast<int>(widths.size()));
  for (; columns > 1; --columns) {
    int total = (columns - 1) * legend->columnSpacing();
    for (int c = 0; c < columns; ++c) {
      int widest = 0;
      for (int i = c; i < widths.size(); i += columns) {
        widest = std::max(widest, widths[i]);
      }
      total += widest;
    }
    if (total <= available) {
      break;
    }
  }
  legend->setWrap(columns);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true); // rearranges into the wrap
}

void PlotWidget::layoutAt(const QSize& layout) {
  m_plot->setViewport(QRect(QPoint(0, 0), layout));
  for (const auto phase : {QCPLayoutElement::upPreparation, QCPLayoutElement::upMargins, QCPLayoutElement::upLayout}) {
    m_plot->plotLayout()->update(phase);
  }
}

void PlotWidget::fitCategoryLabels(bool horizontal) {
  // Text ticks (classes, tokens, layers) that would overlap get a smaller font (down to
  // 2 pt below the style's, at least 5 pt), then only every k-th label.
  QCPAxis* axis = horizontal ? m_plot->xAxis : m_plot->yAxis;
  QStringList labels;
  if (m_colorMap != nullptr) {
    labels = horizontal ? m_heatmap.colLabels : m_heatmap.rowLabels;
  } else if (horizontal) {
    labels = m_xTickLabels;
  }
  if (labels.size() < 2 || labels.size() > kMaxTextTicks) {
    return;
  }
  const double spacing = std::abs(axis->coordToPixel(1.0) - axis->coordToPixel(0.0));
  const double rotation = qDegreesToRadians(std::abs(axis->tickLabelRotation()));
  const auto required = [&](const QFont& font) {
    const QFontMetricsF metrics(font);
    if (!horizontal) {
      return metrics.height();
    }
    if (rotation > 0.01) {
      return metrics.height() / std::sin(rotation);
    }
    double widest = 0.0;
    for (const QString& label : labels) {
      widest = std::max(widest, metrics.horizontalAdvance(label));
    }
    return widest + 2.0;
  };
  QFont font = axis->tickLabelFont();
  const int largest = style().fontPointSize;
  const int smallest = std::max(5, largest - 2);
  int size = largest;
  for (; size > smallest; --size) {
    font.setPixelSize(size);
    if (required(font) <= spacing * 1.02) {
      break;
    }
  }
  font.setPixelSize(size);
  axis->setTickLabelFont(font);
  const int every = std::max(1, static_cast<int>(std::ceil(required(font) / std::max(1.0, spacing) - 0.02)));
  if (every > 1) {
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int i = 0; i < labels.size(); ++i) {
      ticker->addTick(i, i % every == 0 ? labels[i] : QString());
    }
    axis->setTicker(ticker);
  }
}

void PlotWidget::fitTickLabels(const QSize& layout) {
  layoutAt(layout);
  fitCategoryLabels(/*horizontal=*/true);
  fitCategoryLabels(/*horizontal=*/false);
  // QCustomPlot leaves out a tick label that would stick out of the figure: widen the axis
  // rect's right margin until the last x tick label fits.
  QMargins margins = m_plot->axisRect()->minimumMargins();
  for (int pass = 0; pass < 2; ++pass) {
    layoutAt(layout);
    const QVector<double> ticks = m_plot->xAxis->tickVector();
    const QVector<QString> labels = m_plot->xAxis->tickVectorLabels();
    const QCPRange range = m_plot->xAxis->range();
    double overhang = 0.0;
    const QFontMetricsF metrics(m_plot->xAxis->tickLabelFont());
    const double rotation = qDegreesToRadians(std::abs(m_plot->xAxis->tickLabelRotation()));
    for (int i = 0; i < ticks.size() && i < labels.size(); ++i) {
      if (!range.contains(ticks[i])) {
        continue;
      }
      const double width = metrics.horizontalAdvance(labels[i]);
      const double extent = rotation > 0.0 ? width * std::cos(rotation) + metrics.height() * std::sin(rotation)
                                           : width / 2.0;
      overhang = std::max(overhang, m_plot->xAxis->coordToPixel(ticks[i]) + extent + 1.0 - layout.width());
    }
    if (overhang <= 0.0) {
      return;
    }
    margins.setRight(m_plot->axisRect()->margins().right() + static_cast<int>(std::ceil(overhang)));
    m_plot->axisRect()->setMinimumMargins(margins);
  }
}

void PlotWidget::prepareExportLayout(const QSize& layout) {
  if (m_preparedLayout == layout) {
    return; // once per plot and size: every format draws the same layout
  }
  m_preparedLayout = layout;
  placeLegend();
  fitTickLabels(layout);
  wrapLegend(layout);
}

bool PlotWidget::paintFigure(QPaintDevice* device, const QSize& layout, const QSizeF& deviceSize, bool vector) {
  if (layout.isEmpty() || deviceSize.isEmpty()) {
    return false;
  }
  if (m_exportMode) {
    prepareExportLayout(layout);
  }
  QCPPainter painter;
  if (!painter.begin(device)) {
    return false;
  }
  painter.setMode(QCPPainter::pmNoCaching); // tick labels as text, never cached pixmaps
  painter.setMode(QCPPainter::pmNonCosmetic); // hairlines have a real width in print
  // Heatmap cells and colour bars go into PDFs as images: Flate, not JPEG (exact colours).
  painter.setRenderHint(QPainter::LosslessImageRendering);
  if (vector) {
    painter.setMode(QCPPainter::pmVectorized);
  }
  painter.scale(deviceSize.width() / layout.width(), deviceSize.height() / layout.height());
  m_plot->toPainter(&painter, layout.width(), layout.height());
  return painter.end();
}

QColor PlotWidget::paletteColor(int index) {
  // Okabe and Ito (2008), "Color Universal Design"; black first for the teacher.
  static const QColor kPalette[] = {QColor(0, 0, 0),       QColor(230, 159, 0),  QColor(86, 180, 233),
                                    QColor(0, 158, 115),   QColor(0, 114, 178),  QColor(213, 94, 0),
                                    QColor(204, 121, 167), QColor(240, 228, 66)};
  return cycle(kPalette, index);
}

QColor PlotWidget::paletteColor(Palette palette, int index) {
  if (palette == Palette::Greyscale) {
    return cycle(kGreys, index);
  }
  if (palette == Palette::TolBright) {
    // Paul Tol's "bright" qualitative scheme (colour-blind safe), black first for the teacher.
    static const QColor kTol[] = {QColor(0, 0, 0),      QColor(0x44, 0x77, 0xAA), QColor(0xEE, 0x66, 0x77),
                                  QColor(0x22, 0x88, 0x33), QColor(0xCC, 0xBB, 0x44), QColor(0x66, 0xCC, 0xEE),
                                  QColor(0xAA, 0x33, 0x77), QColor(0xBB, 0xBB, 0xBB)};
    return cycle(kTol, index);
  }
  return paletteColor(index);
}

QMap<double, QColor> PlotWidget::gradientStops(Gradient gradient) {
  QMap<double, QColor> stops;
  if (gradient == Gradient::Viridis) {
    // matplotlib's viridis (van der Walt and Smith) sampled at 0, 0.1, ..., 1.
    static const char* kViridis[] = {"#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
                                     "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"};
    for (int i = 0; i < 11; ++i) {
      stops.insert(i / 10.0, QColor(kViridis[i]));
    }
  } else if (gradient == Gradient::Greys) {
    // White (low) to black (high): lightness falls linearly, for greyscale printing.
    stops.insert(0.0, QColor(255, 255, 255));
    stops.insert(1.0, QColor(0, 0, 0));
  } else {
    // cividis (Nuñez, Anderton and Renslow 2018) as published in viridisLite, 10 stops.
    static const char* kCividis[] = {"#00204d", "#00336f", "#39486b", "#575c6d", "#707173",
                                     "#8a8779", "#a69d75", "#c4b56c", "#e4cf5b", "#ffea46"};
    for (int i = 0; i < 10; ++i) {
      stops.insert(i / 9.0, QColor(kCividis[i]));
    }
  }
  return stops;
}

void PlotWidget::setFigureStyle(const FigureStyle& style) { styleStorage() = style; }

const FigureStyle& PlotWidget::figureStyle() { return styleStorage(); }

} // namespace kdscope::widgets
