#include "widgets/figures/figure_style.h"

#include <QFile>
#include <QFileInfo>
#include <QFontDatabase>
#include <QJsonDocument>
#include <QJsonParseError>
#include <QSaveFile>
#include <QSettings>

#include <cmath>

#include "core/common/error.h"

// Q_INIT_RESOURCE declares a function, so it must be called outside any namespace. The
// resources live in the static kdscope_widgets library, which a linker keeps only when
// something refers to them: this call is that reference.
static void registerKdscopeResources() { Q_INIT_RESOURCE(kdscope); }

namespace kdscope::widgets {

namespace {

const QString kFallbackFamily = QStringLiteral("DejaVu Sans");

[[noreturn]] void fail(const QString& origin, const QString& message) {
  throw core::InputError((origin.isEmpty() ? message : origin + QStringLiteral(": ") + message).toStdString());
}

template <typename Enum>
struct Named {
  Enum value;
  const char* name;
};

const Named<Gradient> kGradients[] = {
    {Gradient::Viridis, "viridis"}, {Gradient::Cividis, "cividis"}, {Gradient::Greys, "greys"}};
const Named<Palette> kPalettes[] = {
    {Palette::OkabeIto, "okabe-ito"}, {Palette::TolBright, "tol-bright"}, {Palette::Greyscale, "greyscale"}};
const Named<LegendPlacement> kLegends[] = {{LegendPlacement::Below, "below"},
                                           {LegendPlacement::Right, "right"},
                                           {LegendPlacement::Inside, "inside"},
                                           {LegendPlacement::None, "none"}};

template <typename Enum, std::size_t N>
QString nameOf(const Named<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table) {
    if (entry.value == value) {
      return QString::fromLatin1(entry.name);
    }
  }
  return QString::fromLatin1(table[0].name);
}

template <typename Enum, std::size_t N>
bool parseName(const Named<Enum> (&table)[N], const QString& text, Enum* value) {
  for (const auto& entry : table) {
    if (text.compare(QLatin1String(entry.name), Qt::CaseInsensitive) == 0) {
      *value = entry.value;
      return true;
    }
  }
  return false;
}

template <typename Enum, std::size_t N>
QString choices(const Named<Enum> (&table)[N]) {
  QStringList names;
  for (const auto& entry : table) {
    names << QString::fromLatin1(entry.name);
  }
  return names.join(QStringLiteral(", "));
}

// Keys of the style file, in the order toJson writes them.
const char* const kKeys[] = {"preset",       "width_in", "aspect", "height_in", "font_family", "font_size_pt",
                             "line_width_pt", "axis_line_width_pt", "palette", "gradient", "dpi", "legend",
                             "title",        "grid",     "markers"};

double number(const QJsonObject& json, const char* key, double lo, double hi, const QString& origin) {
  const QJsonValue value = json.value(QLatin1String(key));
  if (!value.isDouble() || !std::isfinite(value.toDouble()) || value.toDouble() < lo || value.toDouble() > hi) {
    fail(origin, QStringLiteral("\"%1\" must be a number from %2 to %3").arg(QLatin1String(key)).arg(lo).arg(hi));
  }
  return value.toDouble();
}

int whole(const QJsonObject& json, const char* key, int lo, int hi, const QString& origin) {
  const double value = number(json, key, lo, hi, origin);
  if (value != std::floor(value)) {
    fail(origin, QStringLiteral("\"%1\" must be a whole number from %2 to %3 (found %4)")
                     .arg(QLatin1String(key))
                     .arg(lo)
                     .arg(hi)
                     .arg(value));
  }
  return static_cast<int>(value);
}

bool boolean(const QJsonObject& json, const char* key, const QString& origin) {
  const QJsonValue value = json.value(QLatin1String(key));
  if (!value.isBool()) {
    fail(origin, QStringLiteral("\"%1\" must be true or false").arg(QLatin1String(key)));
  }
  return value.toBool();
}

QString text(const QJsonObject& json, const char* key, const QString& origin) {
  const QJsonValue value = json.value(QLatin1String(key));
  if (!value.isString() || value.toString().trimmed().isEmpty()) {
    fail(origin, QStringLiteral("\"%1\" must be a non-empty string").arg(QLatin1String(key)));
  }
  return value.toString().trimmed();
}

} // namespace

QString gradientName(Gradient gradient) { return nameOf(kGradients, gradient); }
QString paletteName(Palette palette) { return nameOf(kPalettes, palette); }
QString legendName(LegendPlacement legend) { return nameOf(kLegends, legend); }

QSize FigureStyle::logicalSize() const {
  return QSize(static_cast<int>(std::lround(widthInches * 72.0)), static_cast<int>(std::lround(heightInches() * 72.0)));
}

QSize FigureStyle::pngPixels() const {
  return QSize(static_cast<int>(std::lround(widthInches * dpi)), static_cast<int>(std::lround(heightInches() * dpi)));
}

QString FigureStyle::summary() const {
  const QSize px = pngPixels();
  return QStringLiteral("%1: %2 x %3 in, %4 %5 pt, lines %6 pt, %7 palette, %8, legend %9, PNG %10 dpi (%11 x %12 px)")
      .arg(preset)
      .arg(widthInches, 0, 'g', 4)
      .arg(heightInches(), 0, 'g', 3)
      .arg(fontFamily)
      .arg(fontPointSize)
      .arg(lineWidth, 0, 'g', 3)
      .arg(paletteName(palette), gradientName(gradient), legendName(legend))
      .arg(dpi)
      .arg(px.width())
      .arg(px.height());
}

void initResources() {
  static const bool registered = (registerKdscopeResources(), true);
  static_cast<void>(registered);
}

QStringList FigureStyle::presetNames() {
  return {QStringLiteral("single-column"), QStringLiteral("double-column"), QStringLiteral("slides")};
}

bool FigureStyle::isPreset(const QString& name) { return presetNames().contains(name); }

// The presets are JSON resources (resources/styles/<name>.json in resources/kdscope.qrc),
// read by the same fromJson as a user's style file, so `kdscope export --style NAME` and the
// window's style editor load the same values. single-column: a 3.5 in column of a two-column
// paper, 8 pt text; double-column: the full text width of a two-column paper (7.16 in in IEEE
// and ACM templates); slides: half of a 16:9 slide, text readable from the back of a room.
FigureStyle FigureStyle::fromPreset(const QString& name) {
  if (!isPreset(name)) {
    return FigureStyle{};
  }
  initResources();
  const QString path = QStringLiteral(":/kdscope/styles/%1.json").arg(name);
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    fail(path, QStringLiteral("the preset's resource cannot be read: %1").arg(file.errorString()));
  }
  QJsonParseError error{};
  const QJsonDocument document = QJsonDocument::fromJson(file.readAll(), &error);
  if (document.isNull() || !document.isObject()) {
    fail(path, QStringLiteral("not a JSON object (offset %1: %2)").arg(error.offset).arg(error.errorString()));
  }
  FigureStyle style = fromJson(document.object(), path);
  style.preset = name;
  return style;
}

QJsonObject FigureStyle::toJson() const {
  QJsonObject json;
  json.insert(QStringLiteral("preset"), preset);
  json.insert(QStringLiteral("width_in"), widthInches);
  json.insert(QStringLiteral("aspect"), aspect);
  json.insert(QStringLiteral("font_family"), fontFamily);
  json.insert(QStringLiteral("font_size_pt"), fontPointSize);
  json.insert(QStringLiteral("line_width_pt"), lineWidth);
  json.insert(QStringLiteral("axis_line_width_pt"), axisLineWidth);
  json.insert(QStringLiteral("palette"), paletteName(palette));
  json.insert(QStringLiteral("gradient"), gradientName(gradient));
  json.insert(QStringLiteral("dpi"), dpi);
  json.insert(QStringLiteral("legend"), legendName(legend));
  json.insert(QStringLiteral("title"), title);
  json.insert(QStringLiteral("grid"), grid);
  json.insert(QStringLiteral("markers"), markers);
  return json;
}

FigureStyle FigureStyle::fromJson(const QJsonObject& json, const QString& origin) {
  for (auto it = json.begin(); it != json.end(); ++it) {
    bool known = false;
    for (const char* key : kKeys) {
      known = known || it.key() == QLatin1String(key);
    }
    if (!known) {
      QStringList keys;
      for (const char* key : kKeys) {
        keys << QString::fromLatin1(key);
      }
      fail(origin, QStringLiteral("unknown key \"%1\" (known: %2)").arg(it.key(), keys.join(QStringLiteral(", "))));
    }
  }
  FigureStyle style;
  if (json.contains(QStringLiteral("preset"))) {
    const QString name = text(json, "preset", origin);
    if (name == QStringLiteral("custom")) {
      style.preset = name; // edited in the window: single-column's values, then every key below
    } else if (!isPreset(name)) {
      fail(origin, QStringLiteral("\"preset\": no preset \"%1\" (known: %2, or custom)")
                       .arg(name, presetNames().join(QStringLiteral(", "))));
    } else {
      style = fromPreset(name);
    }
  }
  if (json.contains(QStringLiteral("width_in"))) {
    style.widthInches = number(json, "width_in", 1.0, 20.0, origin);
  }
  if (json.contains(QStringLiteral("aspect")) && json.contains(QStringLiteral("height_in"))) {
    fail(origin, QStringLiteral("give \"aspect\" or \"height_in\", not both"));
  }
  if (json.contains(QStringLiteral("aspect"))) {
    style.aspect = number(json, "aspect", 0.1, 3.0, origin);
  }
  if (json.contains(QStringLiteral("height_in"))) {
    style.aspect = number(json, "height_in", 0.5, 20.0, origin) / style.widthInches;
  }
  if (json.contains(QStringLiteral("font_family"))) {
    style.fontFamily = text(json, "font_family", origin);
  }
  if (json.contains(QStringLiteral("font_size_pt"))) {
    style.fontPointSize = whole(json, "font_size_pt", 5, 36, origin);
  }
  if (json.contains(QStringLiteral("line_width_pt"))) {
    style.lineWidth = number(json, "line_width_pt", 0.1, 10.0, origin);
  }
  if (json.contains(QStringLiteral("axis_line_width_pt"))) {
    style.axisLineWidth = number(json, "axis_line_width_pt", 0.1, 5.0, origin);
  }
  if (json.contains(QStringLiteral("palette")) &&
      !parseName(kPalettes, text(json, "palette", origin), &style.palette)) {
    fail(origin, QStringLiteral("\"palette\" must be one of %1").arg(choices(kPalettes)));
  }
  if (json.contains(QStringLiteral("gradient")) &&
      !parseName(kGradients, text(json, "gradient", origin), &style.gradient)) {
    fail(origin, QStringLiteral("\"gradient\" must be one of %1").arg(choices(kGradients)));
  }
  if (json.contains(QStringLiteral("dpi"))) {
    style.dpi = whole(json, "dpi", 50, 2400, origin);
  }
  if (json.contains(QStringLiteral("legend")) && !parseName(kLegends, text(json, "legend", origin), &style.legend)) {
    fail(origin, QStringLiteral("\"legend\" must be one of %1").arg(choices(kLegends)));
  }
  if (json.contains(QStringLiteral("title"))) {
    style.title = boolean(json, "title", origin);
  }
  if (json.contains(QStringLiteral("grid"))) {
    style.grid = boolean(json, "grid", origin);
  }
  if (json.contains(QStringLiteral("markers"))) {
    style.markers = boolean(json, "markers", origin);
  }
  return style;
}

FigureStyle FigureStyle::load(const QString& presetOrFile) {
  if (isPreset(presetOrFile)) {
    return fromPreset(presetOrFile);
  }
  QFile file(presetOrFile);
  if (!QFileInfo(presetOrFile).isFile()) {
    fail(presetOrFile, QStringLiteral("no such style file, and not a preset (%1)")
                           .arg(presetNames().join(QStringLiteral(", "))));
  }
  if (!file.open(QIODevice::ReadOnly)) {
    fail(presetOrFile, QStringLiteral("cannot read: %1").arg(file.errorString()));
  }
  QJsonParseError error{};
  const QJsonDocument document = QJsonDocument::fromJson(file.readAll(), &error);
  if (error.error != QJsonParseError::NoError) {
    fail(presetOrFile, QStringLiteral("not valid JSON at offset %1: %2").arg(error.offset).arg(error.errorString()));
  }
  if (!document.isObject()) {
    fail(presetOrFile, QStringLiteral("a style file holds one JSON object"));
  }
  return fromJson(document.object(), presetOrFile);
}

bool FigureStyle::saveFile(const QString& path, QString* error) const {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    if (error != nullptr) {
      *error = QStringLiteral("%1: %2").arg(path, file.errorString());
    }
    return false;
  }
  file.write(QJsonDocument(toJson()).toJson(QJsonDocument::Indented));
  if (!file.commit()) {
    if (error != nullptr) {
      *error = QStringLiteral("%1: %2").arg(path, file.errorString());
    }
    return false;
  }
  return true;
}

FigureStyle FigureStyle::fromSettings(QSettings& store) {
  // Stored as the JSON object's keys under figures/; a bad stored value falls back to the
  // preset's (settings are not user input to reject, and the dialog shows what is used).
  QJsonObject json;
  store.beginGroup(QStringLiteral("figures"));
  const QStringList keys = store.childKeys();
  for (const QString& key : keys) {
    const QVariant value = store.value(key);
    if (key == QStringLiteral("font_size")) { // key of KDScope 0.1's settings
      json.insert(QStringLiteral("font_size_pt"), value.toInt());
    } else if (key == QStringLiteral("line_width")) {
      json.insert(QStringLiteral("line_width_pt"), value.toDouble());
    } else if (key == QStringLiteral("title") || key == QStringLiteral("grid") || key == QStringLiteral("markers")) {
      json.insert(key, value.toBool());
    } else if (key == QStringLiteral("width_in") || key == QStringLiteral("aspect") ||
               key == QStringLiteral("font_size_pt") || key == QStringLiteral("line_width_pt") ||
               key == QStringLiteral("axis_line_width_pt") || key == QStringLiteral("dpi")) {
      json.insert(key, value.toDouble());
    } else {
      json.insert(key, value.toString());
    }
  }
  store.endGroup();
  FigureStyle style;
  if (json.isEmpty()) {
    return style;
  }
  try {
    return fromJson(json, QStringLiteral("settings"));
  } catch (const core::InputError&) {
    // Take what parses, key by key, over the stored preset.
    QJsonObject base;
    if (json.contains(QStringLiteral("preset"))) {
      base.insert(QStringLiteral("preset"), json.value(QStringLiteral("preset")));
    }
    try {
      style = fromJson(base);
    } catch (const core::InputError&) {
    }
    for (auto it = json.begin(); it != json.end(); ++it) {
      QJsonObject one = style.toJson();
      one.insert(it.key(), it.value());
      try {
        style = fromJson(one);
      } catch (const core::InputError&) {
      }
    }
    return style;
  }
}

void FigureStyle::toSettings(QSettings& store) const {
  store.beginGroup(QStringLiteral("figures"));
  store.remove(QString()); // the whole group: no stale keys of older versions
  const QJsonObject json = toJson();
  for (auto it = json.begin(); it != json.end(); ++it) {
    store.setValue(it.key(), it.value().toVariant());
  }
  store.endGroup();
}

QString FigureStyle::resolvedFontFamily(QString* warning) const {
  const QStringList families = QFontDatabase::families();
  for (const QString& family : families) {
    if (family.compare(fontFamily, Qt::CaseInsensitive) == 0) {
      return family;
    }
  }
  QString fallback = kFallbackFamily;
  if (!families.contains(fallback)) {
    fallback = QFontDatabase::systemFont(QFontDatabase::GeneralFont).family();
  }
  if (warning != nullptr) {
    *warning = QStringLiteral("font family \"%1\" is not installed; using %2").arg(fontFamily, fallback);
  }
  return fallback;
}

bool operator==(const FigureStyle& a, const FigureStyle& b) { return a.toJson() == b.toJson(); }

} // namespace kdscope::widgets
