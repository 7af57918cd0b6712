#pragma once
/// FigureStyleEditor: edits a FigureStyle (preset, size, font, lines, palettes, DPI, legend)
/// and loads or saves it as a JSON style file, the same file `kdscope export --style` reads.
/// Used by the settings dialog and the export dialog. GUI thread.

#include <QGroupBox>

#include "widgets/figures/figure_style.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QSpinBox;

namespace kdscope::widgets {

class FigureStyleEditor : public QGroupBox {
  Q_OBJECT
public:
  explicit FigureStyleEditor(const FigureStyle& style, QWidget* parent = nullptr);

  [[nodiscard]] FigureStyle style() const;
  void setStyle(const FigureStyle& style);
  /// Loads a style file into the editor; false with `error` set when it is not a valid one.
  bool loadFile(const QString& path, QString* error = nullptr);

Q_SIGNALS:
  void styleChanged();

private:
  void updateSummary();

  bool m_updating = false;
  QComboBox* m_preset = nullptr;
  QDoubleSpinBox* m_width = nullptr;
  QDoubleSpinBox* m_aspect = nullptr;
  QComboBox* m_family = nullptr;
  QSpinBox* m_fontSize = nullptr;
  QDoubleSpinBox* m_lineWidth = nullptr;
  QDoubleSpinBox* m_axisWidth = nullptr;
  QComboBox* m_palette = nullptr;
  QComboBox* m_gradient = nullptr;
  QSpinBox* m_dpi = nullptr;
  QComboBox* m_legend = nullptr;
  QCheckBox* m_title = nullptr;
  QCheckBox* m_grid = nullptr;
  QCheckBox* m_markers = nullptr;
  QLabel* m_summary = nullptr;
};

} // namespace kdscope::widgets
