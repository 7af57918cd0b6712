// The resources compiled into kdscope_widgets (resources/kdscope.qrc): the figure-style
// presets load from their JSON with the values the docs give (docs/figures.md; numbers
// written out here, not read from the same file), a style file naming a preset gets those
// values, and the icon renders.
#include <gtest/gtest.h>

#include <QFile>
#include <QIcon>
#include <QImage>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPixmap>

#include "widgets/figures/figure_style.h"

namespace kdscope::widgets {
namespace {

TEST(ResourcesTest, EveryPresetIsAJsonResourceWithItsDocumentedValues) {
  initResources();
  for (const QString& name : FigureStyle::presetNames()) {
    QFile file(QStringLiteral(":/kdscope/styles/%1.json").arg(name));
    ASSERT_TRUE(file.open(QIODevice::ReadOnly)) << name.toStdString();
    EXPECT_TRUE(QJsonDocument::fromJson(file.readAll()).isObject()) << name.toStdString();
  }
  const FigureStyle single = FigureStyle::fromPreset(QStringLiteral("single-column"));
  EXPECT_EQ(single.preset, QStringLiteral("single-column"));
  EXPECT_DOUBLE_EQ(single.widthInches, 3.5);
  EXPECT_DOUBLE_EQ(single.aspect, 0.75);
  EXPECT_EQ(single.fontPointSize, 8);
  EXPECT_EQ(single.dpi, 300);
  EXPECT_FALSE(single.title);

  const FigureStyle wide = FigureStyle::fromPreset(QStringLiteral("double-column"));
  EXPECT_EQ(wide.preset, QStringLiteral("double-column"));
  EXPECT_DOUBLE_EQ(wide.widthInches, 7.16);
  EXPECT_DOUBLE_EQ(wide.aspect, 0.4);
  EXPECT_EQ(wide.fontPointSize, 9);
  EXPECT_DOUBLE_EQ(wide.lineWidth, 1.2);
  EXPECT_DOUBLE_EQ(wide.axisLineWidth, 0.7);

  const FigureStyle slides = FigureStyle::fromPreset(QStringLiteral("slides"));
  EXPECT_DOUBLE_EQ(slides.widthInches, 6.0);
  EXPECT_DOUBLE_EQ(slides.aspect, 0.5625);
  EXPECT_EQ(slides.fontPointSize, 14);
  EXPECT_DOUBLE_EQ(slides.lineWidth, 2.0);
  EXPECT_EQ(slides.dpi, 200);
  EXPECT_TRUE(slides.title);
  // 6 in x 0.5625 at 200 dpi: 1200 x 675 pixels.
  EXPECT_EQ(slides.pngPixels(), QSize(1200, 675));
}

TEST(ResourcesTest, LoadByNameIsTheResourcePresetAndAFileCanStartFromIt) {
  EXPECT_TRUE(FigureStyle::load(QStringLiteral("slides")) == FigureStyle::fromPreset(QStringLiteral("slides")));
  QJsonObject json;
  json.insert(QStringLiteral("preset"), QStringLiteral("double-column"));
  json.insert(QStringLiteral("font_size_pt"), 11);
  const FigureStyle edited = FigureStyle::fromJson(json, QStringLiteral("test"));
  EXPECT_DOUBLE_EQ(edited.widthInches, 7.16);
  EXPECT_EQ(edited.fontPointSize, 11);
}

TEST(ResourcesTest, TheIconRenders) {
  initResources();
  const QIcon icon(QStringLiteral(":/kdscope/icons/kdscope.svg"));
  ASSERT_FALSE(icon.isNull());
  const QImage image = icon.pixmap(QSize(64, 64)).toImage();
  ASSERT_EQ(image.width(), 64);
  // The background square is Okabe-Ito blue (#0072B2) in the icon's corner region.
  const QColor corner = image.pixelColor(8, 58);
  EXPECT_EQ(corner.red(), 0x00);
  EXPECT_EQ(corner.green(), 0x72);
  EXPECT_EQ(corner.blue(), 0xB2);
}

} // namespace
} // namespace kdscope::widgets
