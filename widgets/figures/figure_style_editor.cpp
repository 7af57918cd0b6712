#include "widgets/figures/figure_style_editor.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>

#include <exception>

namespace kdscope::widgets {

namespace {
const QString kCustom = QStringLiteral("custom");
} // namespace

FigureStyleEditor::FigureStyleEditor(const FigureStyle& style, QWidget* parent)
    : QGroupBox(tr("Figure style (plots and exported figures)"), parent) {
  setObjectName(QStringLiteral("figureStyleEditor"));
  auto* form = new QFormLayout(this);
  m_preset = new QComboBox(this);
  m_preset->setObjectName(QStringLiteral("figurePreset"));
  m_preset->addItems(FigureStyle::presetNames());
  m_preset->addItem(kCustom);
  form->addRow(tr("Preset"), m_preset);

  auto* size = new QHBoxLayout;
  m_width = new QDoubleSpinBox(this);
  m_width->setRange(1.0, 20.0);
  m_width->setDecimals(2);
  m_width->setSingleStep(0.1);
  m_width->setSuffix(tr(" in"));
  m_aspect = new QDoubleSpinBox(this);
  m_aspect->setRange(0.1, 3.0);
  m_aspect->setDecimals(3);
  m_aspect->setSingleStep(0.05);
  size->addWidget(m_width);
  size->addWidget(new QLabel(tr("height / width"), this));
  size->addWidget(m_aspect);
  form->addRow(tr("Width"), size);

  auto* font = new QHBoxLayout;
  m_family = new QComboBox(this);
  m_family->setEditable(true);
  m_family->addItems(QFontDatabase::families());
  m_fontSize = new QSpinBox(this);
  m_fontSize->setObjectName(QStringLiteral("figureFontSize"));
  m_fontSize->setRange(5, 36);
  m_fontSize->setSuffix(tr(" pt"));
  font->addWidget(m_family, 1);
  font->addWidget(m_fontSize);
  form->addRow(tr("Font"), font);

  auto* lines = new QHBoxLayout;
  m_lineWidth = new QDoubleSpinBox(this);
  m_lineWidth->setRange(0.1, 10.0);
  m_lineWidth->setSingleStep(0.25);
  m_lineWidth->setSuffix(tr(" pt"));
  m_axisWidth = new QDoubleSpinBox(this);
  m_axisWidth->setRange(0.1, 5.0);
  m_axisWidth->setSingleStep(0.1);
  m_axisWidth->setSuffix(tr(" pt"));
  lines->addWidget(new QLabel(tr("data"), this));
  lines->addWidget(m_lineWidth);
  lines->addWidget(new QLabel(tr("axes"), this));
  lines->addWidget(m_axisWidth);
  form->addRow(tr("Line widths"), lines);

  m_palette = new QComboBox(this);
  m_palette->addItem(tr("Okabe-Ito (colour-blind safe)"), static_cast<int>(Palette::OkabeIto));
  m_palette->addItem(tr("Tol bright (colour-blind safe)"), static_cast<int>(Palette::TolBright));
  m_palette->addItem(tr("greyscale (grey levels, dashes, markers)"), static_cast<int>(Palette::Greyscale));
  form->addRow(tr("Line colours"), m_palette);
  m_gradient = new QComboBox(this);
  m_gradient->setObjectName(QStringLiteral("figureGradient"));
  m_gradient->addItem(QStringLiteral("viridis"), static_cast<int>(Gradient::Viridis));
  m_gradient->addItem(QStringLiteral("cividis"), static_cast<int>(Gradient::Cividis));
  m_gradient->addItem(tr("greys"), static_cast<int>(Gradient::Greys));
  form->addRow(tr("Heatmap colours"), m_gradient);
  m_dpi = new QSpinBox(this);
  m_dpi->setRange(50, 2400);
  m_dpi->setSuffix(tr(" dpi"));
  form->addRow(tr("PNG resolution"), m_dpi);
  m_legend = new QComboBox(this);
  m_legend->addItem(tr("below the plot"), static_cast<int>(LegendPlacement::Below));
  m_legend->addItem(tr("right of the plot"), static_cast<int>(LegendPlacement::Right));
  m_legend->addItem(tr("inside, top right"), static_cast<int>(LegendPlacement::Inside));
  m_legend->addItem(tr("none"), static_cast<int>(LegendPlacement::None));
  form->addRow(tr("Legend"), m_legend);
  auto* flags = new QHBoxLayout;
  m_title = new QCheckBox(tr("title"), this);
  m_grid = new QCheckBox(tr("grid"), this);
  m_markers = new QCheckBox(tr("markers"), this);
  flags->addWidget(m_title);
  flags->addWidget(m_grid);
  flags->addWidget(m_markers);
  flags->addStretch(1);
  form->addRow(tr("Show"), flags);

  auto* files = new QHBoxLayout;
  auto* load = new QPushButton(tr("Load style file..."), this);
  auto* save = new QPushButton(tr("Save style file..."), this);
  files->addWidget(load);
  files->addWidget(save);
  files->addStretch(1);
  form->addRow(QString(), files);
  m_summary = new QLabel(this);
  m_summary->setWordWrap(true);
  form->addRow(QString(), m_summary);

  setStyle(style);

  connect(m_preset, &QComboBox::currentTextChanged, this, [this](const QString& name) {
    if (!m_updating && FigureStyle::isPreset(name)) {
      setStyle(FigureStyle::fromPreset(name));
      Q_EMIT styleChanged();
    }
  });
  const auto edited = [this] {
    if (m_updating) {
      return;
    }
    // Any change by hand makes the style a custom one (it no longer equals its preset).
    const QSignalBlocker block(m_preset);
    FigureStyle current = this->style();
    current.preset = m_preset->currentText();
    if (FigureStyle::isPreset(current.preset) && current != FigureStyle::fromPreset(current.preset)) {
      m_preset->setCurrentText(kCustom);
    }
    updateSummary();
    Q_EMIT styleChanged();
  };
  for (QDoubleSpinBox* box : {m_width, m_aspect, m_lineWidth, m_axisWidth}) {
    connect(box, &QDoubleSpinBox::valueChanged, this, edited);
  }
  for (QSpinBox* box : {m_fontSize, m_dpi}) {
    connect(box, &QSpinBox::valueChanged, this, edited);
  }
  for (QComboBox* box : {m_palette, m_gradient, m_legend}) {
    connect(box, &QComboBox::currentIndexChanged, this, edited);
  }
  connect(m_family, &QComboBox::currentTextChanged, this, edited);
  for (QCheckBox* box : {m_title, m_grid, m_markers}) {
    connect(box, &QCheckBox::toggled, this, edited);
  }
  connect(load, &QPushButton::clicked, this, [this] {
    auto* dialog = new QFileDialog(this, tr("Load figure style"), QString(), tr("Style files (*.json);;All files (*)"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString& path) {
      QString error;
      if (!loadFile(path, &error)) {
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Figure style"), error, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
      }
    });
    dialog->open();
  });
  connect(save, &QPushButton::clicked, this, [this] {
    auto* dialog = new QFileDialog(this, tr("Save figure style"), QStringLiteral("style.json"),
                                   tr("Style files (*.json)"));
    dialog->setAcceptMode(QFileDialog::AcceptSave);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString& path) {
      QString error;
      if (!this->style().saveFile(path, &error)) {
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Figure style"), error, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
      }
    });
    dialog->open();
  });
}

FigureStyle FigureStyleEditor::style() const {
  FigureStyle s;
  s.preset = m_preset->currentText();
  s.widthInches = m_width->value();
  s.aspect = m_aspect->value();
  s.fontFamily = m_family->currentText().trimmed().isEmpty() ? s.fontFamily : m_family->currentText().trimmed();
  s.fontPointSize = m_fontSize->value();
  s.lineWidth = m_lineWidth->value();
  s.axisLineWidth = m_axisWidth->value();
  s.palette = static_cast<Palette>(m_palette->currentData().toInt());
  s.gradient = static_cast<Gradient>(m_gradient->currentData().toInt());
  s.dpi = m_dpi->value();
  s.legend = static_cast<LegendPlacement>(m_legend->currentData().toInt());
  s.title = m_title->isChecked();
  s.grid = m_grid->isChecked();
  s.markers = m_markers->isChecked();
  return s;
}

void FigureStyleEditor::setStyle(const FigureStyle& style) {
  m_updating = true;
  const QString preset = FigureStyle::isPreset(style.preset) ? style.preset : kCustom;
  m_preset->setCurrentText(preset);
  m_width->setValue(style.widthInches);
  m_aspect->setValue(style.aspect);
  m_family->setCurrentText(style.fontFamily);
  m_fontSize->setValue(style.fontPointSize);
  m_lineWidth->setValue(style.lineWidth);
  m_axisWidth->setValue(style.axisLineWidth);
  m_palette->setCurrentIndex(m_palette->findData(static_cast<int>(style.palette)));
  m_gradient->setCurrentIndex(m_gradient->findData(static_cast<int>(style.gradient)));
  m_dpi->setValue(style.dpi);
  m_legend->setCurrentIndex(m_legend->findData(static_cast<int>(style.legend)));
  m_title->setChecked(style.title);
  m_grid->setChecked(style.grid);
  m_markers->setChecked(style.markers);
  m_updating = false;
  updateSummary();
}

bool FigureStyleEditor::loadFile(const QString& path, QString* error) {
  try {
    setStyle(FigureStyle::load(path));
    Q_EMIT styleChanged();
    return true;
  } catch (const std::exception& e) {
    if (error != nullptr) {
      *error = QString::fromUtf8(e.what());
    }
    return false;
  }
}

void FigureStyleEditor::updateSummary() {
  const FigureStyle s = style();
  QString warning;
  static_cast<void>(s.resolvedFontFamily(&warning));
  const QSize layout = s.logicalSize();
  const QSize pixels = s.pngPixels();
  m_summary->setText(tr("%1 x %2 in (%3 x %4 pt); PNG %5 x %6 px")
                         .arg(s.widthInches, 0, 'g', 4)
                         .arg(s.heightInches(), 0, 'g', 3)
                         .arg(layout.width())
                         .arg(layout.height())
                         .arg(pixels.width())
                         .arg(pixels.height()) +
                     (warning.isEmpty() ? QString() : QStringLiteral("\n") + warning));
}

} // namespace kdscope::widgets
