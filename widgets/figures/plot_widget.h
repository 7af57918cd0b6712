#pragma once
/// PlotWidget: the one wrapper around QCustomPlot (the only file that includes
/// <qcustomplot.h> is plot_widget.cpp). Line and scatter plots, cell heatmaps with a colour
/// scale, colour-blind-safe and greyscale line palettes, viridis, cividis and greys
/// gradients, tooltips with exact values, zoom and pan, queued replots, a context menu
/// ("Export figure..."), and drawing at a paper size for figure export (figure_export.h).
/// Lives on the GUI (main) thread.

#include <QColor>
#include <QMap>
#include <QPair>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include <optional>
#include <vector>

#include "widgets/figures/figure_style.h"

class QCustomPlot;
class QPaintDevice;
class QCPColorMap;
class QCPColorScale;
class QLabel;
class QStackedLayout;

namespace kdscope::widgets {

/// A cell heatmap: values row-major [rows, cols]; row 0 is drawn at the top.
struct Heatmap {
  int rows = 0;
  int cols = 0;
  std::vector<double> values;
  QStringList rowLabels; ///< empty: row numbers
  QStringList colLabels; ///< empty: column numbers
  QString rowTitle;
  QString colTitle;
  QString valueTitle;
  std::optional<std::pair<double, double>> range; ///< colour range; empty: the data's range
  std::optional<Gradient> gradient;               ///< empty: the figure style's gradient
  /// Each cell's 95% interval (row-major as `values`; empty: none; NaN ends: none for that
  /// cell). Shown in the cell's tooltip, written to the CSV as value_lo and value_hi.
  std::vector<double> lower;
  std::vector<double> upper;
  QString intervalTitle; ///< what the interval is over, e.g. "95% t interval over 5 replicates"
  /// Why a cell has no interval (its tooltip, and the CSV's "# intervals:" comment), e.g.
  /// "no interval: only the matched-depth pairs are bootstrapped"; empty: nothing said.
  QString noInterval;
  /// Cells drawn with the mark `markText` (row-major; empty: none), e.g. a difference whose
  /// interval holds 0; `markTitle` says what the mark means (tooltip, CSV, caption).
  std::vector<char> marked;
  QString markText = QStringLiteral("n.d.");
  QString markTitle;
  /// Each cell's p-value after a multiple-testing adjustment (row-major; empty: none; NaN:
  /// not tested), shown in the tooltip and written to the CSV as p_adjusted; `pTitle` says
  /// which test and adjustment, e.g. "Holm over the 9 entries, one-sample t over replicates".
  std::vector<double> adjustedP;
  QString pTitle;
};

/// One line or scatter series exactly as it was given (before QCustomPlot sorts by x): the
/// numbers a figure's CSV holds.
struct PlotSeries {
  QString name;
  QVector<double> x;
  QVector<double> y;
  bool scatter = false;
  int colorIndex = 0;
  int lineStyle = 0;         ///< PlotWidget::LineStyle as int
  double markerPoints = 0.0; ///< scatter marker size (0: the default)
  /// Error bars: the interval's ends at each point (empty: none); the CSV's y_lo and y_hi.
  QVector<double> lower;
  QVector<double> upper;
  bool band = false; ///< the interval drawn as a shaded band around the line, not as bars
};

/// Everything a plot shows, as data: PlotWidget::content() copies it out and setContent()
/// draws it again, e.g. on a fresh plot in export mode for a plot that no builder of the
/// figure registry made (a study view, live curves).
struct PlotContent {
  QString title;
  QString xLabel;
  QString yLabel;
  QStringList xTickLabels;
  QVector<PlotSeries> series;
  std::optional<Heatmap> heatmap;
  QVector<double> referenceLines; ///< horizontal lines at these y values (e.g. 0 for differences)
};

class PlotWidget : public QWidget {
  Q_OBJECT
public:
  enum class LineStyle { Solid, Dashed, Dotted };

  explicit PlotWidget(QWidget* parent = nullptr);
  ~PlotWidget() override;

  /// Removes every line, the heatmap, the title and the message.
  void clear();
  void setTitle(const QString& title);
  [[nodiscard]] QString title() const { return m_title; }
  [[nodiscard]] QString xLabel() const;
  [[nodiscard]] QString yLabel() const;
  [[nodiscard]] QStringList xTickLabels() const { return m_xTickLabels; }
  void setAxisLabels(const QString& x, const QString& y);
  /// Text tick labels on the x axis at 0, 1, 2, ... (e.g. class names); empty: numbers.
  void setXTickLabels(const QStringList& labels);
  /// Shows a centred message instead of the plot (e.g. "no analysis yet"); empty: the plot.
  void setMessage(const QString& message);
  [[nodiscard]] QString message() const;

  /// Adds a line; returns its index. `colorIndex` picks from the Okabe-Ito palette.
  int addLine(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex,
              LineStyle style = LineStyle::Solid);
  /// Adds points without lines (markers only); returns the index. `markerPoints`: the
  /// marker size in points when exported (0: a size for many points).
  int addScatter(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex,
                 double markerPoints = 0.0);
  /// Error bars on a line or scatter series: the interval [lower[i], upper[i]] at each of its
  /// points, in the series' colour (NaN ends: no bar at that point). Sizes must match the
  /// series'; the numbers go into the figure's CSV (y_lo, y_hi) and the tooltips.
  void setErrorBars(int line, const QVector<double>& lower, const QVector<double>& upper);
  /// The same interval drawn as a translucent band in the line's colour between the ends
  /// (points with a NaN end leave a gap); the numbers go to the CSV as error bars' do.
  void setBand(int line, const QVector<double>& lower, const QVector<double>& upper);
  /// A thin dashed horizontal line across the plot at y (not a series: not in the CSV's rows).
  void addReferenceLine(double y);
  [[nodiscard]] const QVector<double>& referenceLines() const { return m_referenceLines; }
  /// Appends points to a line (live curves).
  void appendPoints(int line, const QVector<double>& x, const QVector<double>& y);
  [[nodiscard]] int lineCount() const;
  [[nodiscard]] QString lineName(int line) const;
  [[nodiscard]] QVector<QPointF> lineData(int line) const;
  /// Every line and scatter series as given (the CSV of an exported figure).
  [[nodiscard]] const QVector<PlotSeries>& series() const { return m_series; }
  [[nodiscard]] PlotContent content() const;
  /// Replaces the plot's content (clear(), then the series or heatmap, then rescale()).
  void setContent(const PlotContent& content);

  /// Replaces the plot content with a heatmap (lines are removed), interpolation off.
  void setHeatmap(const Heatmap& heatmap);
  [[nodiscard]] bool hasHeatmap() const;
  /// Whether the colour map smooths between cells (always false: cells are data).
  [[nodiscard]] bool heatmapInterpolated() const;
  [[nodiscard]] const Heatmap& heatmap() const { return m_heatmap; }
  /// The colour at the centre of a cell as drawn by the colour map's gradient.
  [[nodiscard]] QColor heatmapColor(int row, int col) const;
  /// The cells drawn with the heatmap's mark, as (row, column), in row-major order.
  [[nodiscard]] QVector<QPair<int, int>> heatmapMarks() const { return m_heatmapMarks; }

  /// Fits the axes to the data.
  void rescale();
  /// Sets the x range (after rescale; e.g. half a category of room at each end).
  void setXRange(double lower, double upper);
  /// Schedules one replot on the next event-loop pass (QCustomPlot::rpQueuedReplot).
  void queueReplot();

  /// The tooltip text for a pixel: nearest point (within a few pixels) or heatmap cell,
  /// with exact values; empty when nothing is near.
  [[nodiscard]] QString toolTipAt(const QPoint& pixel) const;
  /// Pixel of a heatmap cell's centre or a line point (for tests and for keyboard use).
  [[nodiscard]] QPoint pixelOfCell(int row, int col) const;
  [[nodiscard]] QPoint pixelOfPoint(int line, int index) const;

  /// The plot as it is on screen (widget size), format from the suffix handling of each.
  bool savePng(const QString& path, int width = 0, int height = 0);
  bool savePdf(const QString& path, int width = 0, int height = 0);
  bool saveSvg(const QString& path, int width = 0, int height = 0);

  /// The registry name of the figure this plot shows ("layers.cka.polarity.kd"), set by the
  /// figure builders; empty for plots that are not a figure of a run (live curves). clear()
  /// empties it. The context menu offers "Export figure..." when it is set.
  void setFigureName(const QString& name) { m_figureName = name; }
  [[nodiscard]] QString figureName() const { return m_figureName; }

  /// This plot's own style (export builds a fresh plot with the export style); without one
  /// the plot follows the application-wide figureStyle(). Set it before adding content.
  void setStyle(const FigureStyle& style);
  [[nodiscard]] const FigureStyle& style() const;
  /// Export mode: fonts sized in layout units of 1 pt (setPixelSize, unhinted, so the
  /// layout does not depend on a screen's DPI or hinting), pens in points, outward ticks,
  /// the legend placed per style, adaptive sampling off (every point is drawn). Implies
  /// setStyle(style).
  void setExportStyle(const FigureStyle& style);
  [[nodiscard]] bool exportMode() const { return m_exportMode; }
  /// Draws the plot laid out at `layout` (units of 1 pt) onto `device`, scaled to fill
  /// `deviceSize` device pixels. `vector`: the device is PDF or SVG (text stays text, lines
  /// stay paths; heatmap cells and the colour bar are images). False if painting fails.
  bool paintFigure(QPaintDevice* device, const QSize& layout, const QSizeF& deviceSize, bool vector);

  /// Okabe-Ito palette: black, orange, sky blue, bluish green, blue, vermillion, reddish
  /// purple, yellow (index wraps).
  static QColor paletteColor(int index);
  /// A palette's colour for a series index (index wraps). Greyscale: grey levels.
  static QColor paletteColor(Palette palette, int index);
  static QMap<double, QColor> gradientStops(Gradient gradient);
  static void setFigureStyle(const FigureStyle& style);
  static const FigureStyle& figureStyle();

Q_SIGNALS:
  void cellClicked(int row, int col);
  void pointClicked(int line, int index);
  /// "Export figure..." was chosen in the context menu of a plot with a figure name.
  void exportFigureRequested(const QString& figureName);
  /// "Export figure..." was chosen on a plot without a figure name: export what it shows.
  void exportContentRequested();

protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

private:
  /// The series `line` with the interval's ends stored (sizes checked); null when they do not fit.
  PlotSeries* withInterval(int line, const QVector<double>& lower, const QVector<double>& upper);
  [[nodiscard]] bool cellAt(const QPoint& pixel, int* row, int* col) const;
  void applyStyle();
  /// Puts the heatmap's mark on each marked cell (setHeatmap).
  void drawHeatmapMarks();
  // Export layout, once per size (prepareExportLayout): legend per style, category labels
  // that fit, no tick label left out at the right edge, legend rows that fit the width.
  void prepareExportLayout(const QSize& layout);
  void placeLegend();
  void wrapLegend(const QSize& layout);
  void layoutAt(const QSize& layout);
  void fitCategoryLabels(bool horizontal);
  void fitTickLabels(const QSize& layout);
  void showContextMenu(const QPoint& pixel, const QPoint& global);
  [[nodiscard]] double penScale() const;

  QStackedLayout* m_stack = nullptr;
  QCustomPlot* m_plot = nullptr;
  QLabel* m_messageLabel = nullptr;
  QCPColorMap* m_colorMap = nullptr;
  QCPColorScale* m_colorScale = nullptr;
  Heatmap m_heatmap;
  QVector<QPair<int, int>> m_heatmapMarks;
  QString m_title;
  QStringList m_xTickLabels;
  QVector<PlotSeries> m_series;
  QVector<double> m_referenceLines;
  QString m_figureName;
  std::optional<FigureStyle> m_style;
  bool m_exportMode = false;
  QSize m_preparedLayout;
};

} // namespace kdscope::widgets
