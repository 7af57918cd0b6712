#pragma once
/// StudyView: the views of a study (docs/studies.md): the per-task gap as a heatmap over two
/// factors (layers x heads by default), the metric against one factor with one line per level
/// of another (temperature and lambda), each factor's contribution (main effect with its
/// spread over the rest of the grid), and one training term's curves compared across cells.
/// Reads OUT/study_summary.json and, for the curves, the cells' run files; every number comes
/// from core/study/summary.h. GUI thread (the reads are small: a JSON file and train logs).

#include <QString>
#include <QWidget>

#include <memory>

class QComboBox;
class QLabel;
class QPushButton;
class QTableWidget;
class QTabWidget;

namespace kdscope::core {
struct StudySummary;
}

namespace kdscope::widgets {

class PlotWidget;

class StudyView : public QWidget {
  Q_OBJECT
public:
  explicit StudyView(QWidget* parent = nullptr);
  ~StudyView() override;

  /// Loads a study_summary.json (its folder holds the cells' run files). False, with the
  /// reader's message (file and field at fault) in `error`, when it cannot be read.
  bool loadSummary(const QString& path, QString* error = nullptr);
  [[nodiscard]] bool hasSummary() const { return static_cast<bool>(m_summary); }
  /// The loaded study_summary.json (absolute); empty when none is loaded.
  [[nodiscard]] const QString& summaryPath() const { return m_path; }
  /// "Export figures...": enabled once a study is loaded; emits exportFiguresRequested.
  [[nodiscard]] QPushButton* exportButton() const { return m_export; }

  [[nodiscard]] QComboBox* taskSelector() const { return m_task; }
  [[nodiscard]] QComboBox* metricSelector() const { return m_metric; }
  [[nodiscard]] PlotWidget* heatmapPlot() const { return m_heatmap; }
  [[nodiscard]] PlotWidget* linesPlot() const { return m_lines; }
  [[nodiscard]] PlotWidget* effectsPlot() const { return m_effects; }
  [[nodiscard]] QTableWidget* effectsTable() const { return m_effectsTable; }
  [[nodiscard]] PlotWidget* curvesPlot() const { return m_curves; }

public Q_SLOTS:
  /// Asks for a summary file and loads it.
  void onOpen();

Q_SIGNALS:
  /// The user asked to export the study's figures (`kdscope export --study`'s catalog);
  /// MainWindow opens the export dialog on them.
  void exportFiguresRequested();

private:
  void refresh();
  void fillFactorCombos();
  void refreshHeatmap();
  void refreshLines();
  void refreshEffects();
  void refreshCurves();
  [[nodiscard]] std::string currentTask() const;

  std::unique_ptr<core::StudySummary> m_summary;
  QString m_dir;
  QString m_path;
  QPushButton* m_export = nullptr;
  QLabel* m_status = nullptr;
  QComboBox* m_task = nullptr;
  QComboBox* m_metric = nullptr;
  QTabWidget* m_tabs = nullptr;
  QComboBox* m_rowFactor = nullptr;
  QComboBox* m_colFactor = nullptr;
  PlotWidget* m_heatmap = nullptr;
  QComboBox* m_xFactor = nullptr;
  QComboBox* m_seriesFactor = nullptr;
  PlotWidget* m_lines = nullptr;
  PlotWidget* m_effects = nullptr;
  QTableWidget* m_effectsTable = nullptr;
  QComboBox* m_term = nullptr;
  PlotWidget* m_curves = nullptr;
  bool m_filling = false;
};

} // namespace kdscope::widgets
