#pragma once
/// ExportDialog: File > Export (the current view's figures, or one figure from a plot's
/// context menu), File > Export figure pack, and a study's figures (the Study tab's Export
/// figures..., MainWindow::openStudyExportDialog). Chooses figures, formats, the CSV, the
/// folder, the style (the settings' style, a preset or a style file) and the pack's index,
/// and previews the first chosen figure as it will be exported. Opened with open(), never
/// exec(). GUI thread.

#include <QDialog>
#include <QImage>

#include <functional>

#include "widgets/figures/figure_export.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QTimer;

namespace kdscope::widgets {

class FigureStyleEditor;

class ExportDialog : public QDialog {
  Q_OBJECT
public:
  enum class Mode { Figures, Pack };
  /// `figures`: the names offered (Figures mode), every one checked; in Pack mode the first
  /// is previewed. `openRuns`: how many
  /// runs are open (Pack mode offers to compare them when there are several).
  ExportDialog(Mode mode, const QStringList& figures, const FigureStyle& style, int openRuns,
               QWidget* parent = nullptr);

  [[nodiscard]] Mode mode() const { return m_mode; }
  /// The checked figure names; {"all"} in Pack mode.
  [[nodiscard]] QStringList selectedFigures() const;
  [[nodiscard]] ExportOptions options() const;
  /// Pack mode: export every open run with the comparison figures.
  [[nodiscard]] bool compareOpenRuns() const;
  void setOutDir(const QString& dir);
  void setFormats(const QList<FigureFormat>& formats);
  void setIndex(IndexFormat index);
  [[nodiscard]] FigureStyleEditor* styleEditor() const { return m_style; }

  /// Draws a preview of a figure at a style (MainWindow renders the PNG export at a screen
  /// resolution); a null image shows the text `error`.
  using Previewer = std::function<QImage(const QString& figure, const FigureStyle& style, QString* error)>;
  void setPreviewer(Previewer previewer);
  [[nodiscard]] QString previewText() const;

private:
  void schedulePreview();
  void updatePreview();

  Mode m_mode;
  QListWidget* m_figures = nullptr;
  QCheckBox* m_compare = nullptr;
  QCheckBox* m_pdf = nullptr;
  QCheckBox* m_svg = nullptr;
  QCheckBox* m_png = nullptr;
  QCheckBox* m_csv = nullptr;
  QLineEdit* m_outDir = nullptr;
  QComboBox* m_index = nullptr;
  FigureStyleEditor* m_style = nullptr;
  QLabel* m_preview = nullptr;
  QTimer* m_previewTimer = nullptr;
  Previewer m_previewer;
  QString m_previewFigure; ///< Pack mode: the figure previewed
};

} // namespace kdscope::widgets
