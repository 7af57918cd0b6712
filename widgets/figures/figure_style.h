#pragma once
/// FigureStyle: how every plot looks, on screen and exported. One struct behind the
/// settings dialog (QSettings "figures/..."), the JSON style file (`kdscope export --style
/// FILE`) and the presets, so the same style gives the same figure from the window and the
/// command line (docs/figures.md). Plain value type; used on the GUI (main) thread.

#include <QJsonObject>
#include <QSize>
#include <QString>
#include <QStringList>

class QSettings;

namespace kdscope::widgets {

/// Heatmap colour maps. Viridis and cividis are colour-blind safe and their lightness rises
/// monotonically, so they also survive greyscale printing; Greys is plain white to black.
/// (QCustomPlot 2.1 has no gpViridis; they are built from published stops.)
enum class Gradient { Viridis, Cividis, Greys };

/// Line palettes. OkabeIto (Okabe and Ito 2008) and TolBright (Paul Tol's "bright") are
/// colour-blind safe; Greyscale tells series apart by grey level, dash pattern and marker,
/// so it survives printing in black and white.
enum class Palette { OkabeIto, TolBright, Greyscale };

/// Where an exported figure's legend goes. Below and Right keep it off the data.
enum class LegendPlacement { Below, Right, Inside, None };

/// Registers the resources compiled into kdscope_widgets (resources/kdscope.qrc: the icon,
/// the style presets). Idempotent; fromPreset calls it, and the application at start-up.
void initResources();

struct FigureStyle {
  QString preset = QStringLiteral("single-column"); ///< the preset the values started from
  double widthInches = 3.5;                          ///< exported width
  double aspect = 0.75;                              ///< exported height / width
  QString fontFamily = QStringLiteral("DejaVu Sans");
  int fontPointSize = 8;  ///< every text but the title (title: +1, bold); whole points
  double lineWidth = 1.0; ///< data lines, points (on screen: points at the screen's DPI)
  double axisLineWidth = 0.6; ///< axes and ticks, points
  Palette palette = Palette::OkabeIto;
  Gradient gradient = Gradient::Viridis;
  int dpi = 300; ///< PNG resolution
  LegendPlacement legend = LegendPlacement::Below;
  bool title = false; ///< draw the title above an exported plot (papers: the caption says it)
  bool grid = true;   ///< light major grid lines
  bool markers = false; ///< a marker shape per series (always on with the greyscale palette)

  [[nodiscard]] double heightInches() const { return widthInches * aspect; }
  /// Layout size of an exported figure in points (1/72 in), rounded to whole points.
  [[nodiscard]] QSize logicalSize() const;
  /// Pixel size of the PNG: round(width * dpi) x round(height * dpi).
  [[nodiscard]] QSize pngPixels() const;
  /// One line for people: "single-column: 3.5 x 2.63 in, DejaVu Sans 8 pt, ...".
  [[nodiscard]] QString summary() const;

  /// The preset names: single-column, double-column, slides.
  static QStringList presetNames();
  /// A preset by name; nothing when there is no such preset.
  static bool isPreset(const QString& name);
  static FigureStyle fromPreset(const QString& name);

  /// The style as JSON (every field; the keys of docs/figures.md).
  [[nodiscard]] QJsonObject toJson() const;
  /// A style from JSON: "preset" first (default single-column), then each key overrides.
  /// Throws core::InputError naming the key for an unknown key or a bad value.
  static FigureStyle fromJson(const QJsonObject& json, const QString& origin = QString());
  /// `presetOrFile` is a preset name or a JSON style file. Throws core::InputError.
  static FigureStyle load(const QString& presetOrFile);
  /// Writes toJson() to a file; false with `error` set when it cannot be written.
  bool saveFile(const QString& path, QString* error = nullptr) const;

  /// The QSettings keys under "figures/".
  static FigureStyle fromSettings(QSettings& store);
  void toSettings(QSettings& store) const;

  /// The family that is drawn: fontFamily if installed, else DejaVu Sans; `warning` gets a
  /// sentence when it falls back. Needs a Q(Gui)Application.
  [[nodiscard]] QString resolvedFontFamily(QString* warning = nullptr) const;

  friend bool operator==(const FigureStyle& a, const FigureStyle& b);
  friend bool operator!=(const FigureStyle& a, const FigureStyle& b) { return !(a == b); }
};

QString gradientName(Gradient gradient);
QString paletteName(Palette palette);
QString legendName(LegendPlacement legend);

} // namespace kdscope::widgets
