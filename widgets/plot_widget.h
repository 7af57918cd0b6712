#pragma once
/// PlotWidget: the one wrapper around QCustomPlot (the only file that includes
/// <qcustomplot.h> is plot_widget.cpp). Line and scatter plots, cell heatmaps with a colour
/// scale, the Okabe-Ito line palette, viridis and cividis gradients, tooltips with exact
/// values, zoom and pan, queued replots, and figure export. Lives on the GUI thread.

#include <QColor>
#include <QMap>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include <optional>
#include <vector>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QLabel;
class QStackedLayout;

namespace kdscope::widgets {

/// Colour-blind-safe gradients (QCustomPlot 2.1 has no gpViridis; built from published stops).
enum class Gradient { Viridis, Cividis };

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
};

/// Figure style shared by every plot (from the settings dialog).
struct FigureStyle {
  Gradient gradient = Gradient::Viridis;
  double lineWidth = 1.5;
  int fontPointSize = 9;
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
  void setAxisLabels(const QString& x, const QString& y);
  /// Text tick labels on the x axis at 0, 1, 2, ... (e.g. class names); empty: numbers.
  void setXTickLabels(const QStringList& labels);
  /// Shows a centred message instead of the plot (e.g. "no analysis yet"); empty: the plot.
  void setMessage(const QString& message);
  [[nodiscard]] QString message() const;

  /// Adds a line; returns its index. `colorIndex` picks from the Okabe-Ito palette.
  int addLine(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex,
              LineStyle style = LineStyle::Solid);
  /// Adds points without lines (markers only); returns the index.
  int addScatter(const QString& name, const QVector<double>& x, const QVector<double>& y, int colorIndex);
  /// Appends points to a line (live curves).
  void appendPoints(int line, const QVector<double>& x, const QVector<double>& y);
  [[nodiscard]] int lineCount() const;
  [[nodiscard]] QString lineName(int line) const;
  [[nodiscard]] QVector<QPointF> lineData(int line) const;

  /// Replaces the plot content with a heatmap (lines are removed), interpolation off.
  void setHeatmap(const Heatmap& heatmap);
  [[nodiscard]] bool hasHeatmap() const;
  /// Whether the colour map smooths between cells (always false: cells are data).
  [[nodiscard]] bool heatmapInterpolated() const;
  [[nodiscard]] const Heatmap& heatmap() const { return m_heatmap; }
  /// The colour at the centre of a cell as drawn by the colour map's gradient.
  [[nodiscard]] QColor heatmapColor(int row, int col) const;

  /// Fits the axes to the data.
  void rescale();
  /// Schedules one replot on the next event-loop pass (QCustomPlot::rpQueuedReplot).
  void queueReplot();

  /// The tooltip text for a pixel: nearest point (within a few pixels) or heatmap cell,
  /// with exact values; empty when nothing is near.
  [[nodiscard]] QString toolTipAt(const QPoint& pixel) const;
  /// Pixel of a heatmap cell's centre or a line point (for tests and for keyboard use).
  [[nodiscard]] QPoint pixelOfCell(int row, int col) const;
  [[nodiscard]] QPoint pixelOfPoint(int line, int index) const;

  bool savePng(const QString& path, int width = 0, int height = 0);
  bool savePdf(const QString& path, int width = 0, int height = 0);
  bool saveSvg(const QString& path, int width = 0, int height = 0);

  /// Okabe-Ito palette: black, orange, sky blue, bluish green, blue, vermillion, reddish
  /// purple, yellow (index wraps).
  static QColor paletteColor(int index);
  static QMap<double, QColor> gradientStops(Gradient gradient);
  static void setFigureStyle(const FigureStyle& style);
  static const FigureStyle& figureStyle();

Q_SIGNALS:
  void cellClicked(int row, int col);
  void pointClicked(int line, int index);

protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

private:
  [[nodiscard]] bool cellAt(const QPoint& pixel, int* row, int* col) const;
  void applyStyle();

  QStackedLayout* m_stack = nullptr;
  QCustomPlot* m_plot = nullptr;
  QLabel* m_messageLabel = nullptr;
  QCPColorMap* m_colorMap = nullptr;
  QCPColorScale* m_colorScale = nullptr;
  Heatmap m_heatmap;
  QString m_title;
};

} // namespace kdscope::widgets
