#pragma once
/// StudyView: the views of a study (docs/studies.md): the per-task gap as a heatmap over two
/// factors (layers x heads by default), the metric against one factor with one line per level
/// of another (temperature and lambda), each factor's contribution (main effect with its
/// spread over the rest of the grid), and one training term's curves compared across cells.
/// Reads OUT/study_summary.json and, for the curves, the cells' run files; every number comes
/// from core/study/summary.h. GUI thread (the reads are small: a JSON file and train logs).
///
/// It also follows a study folder whose cells other processes are writing (a Slurm array,
/// docs/studies.md): the summary of what is on disk, rebuilt off the GUI thread from the
/// cells' run files (StudyFolderFollower) at every poll or Reload, with "N of M cells
/// complete" above the plots. "Slurm scripts..." writes a study's job-array scripts.

#include <QString>
#include <QWidget>

#include <memory>
#include <utility>

class QCheckBox;
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
class StudyFolderFollower;

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

  /// Follows the study in `dir` (its --out folder, which holds study.json): the plots show the
  /// cells complete so far and follow as others complete, polled every followInterval() ms
  /// while "Follow" is checked. False, with the reason in `error`, when `dir` holds no
  /// study.json; a study.json that is not valid shows its issues in the status line.
  bool followStudy(const QString& dir, QString* error = nullptr);
  [[nodiscard]] bool following() const { return m_follower != nullptr; }
  /// The poll interval while following (default 5000 ms: cells on other machines appear
  /// within seconds; each poll re-reads only the run files that changed).
  void setFollowInterval(int ms);
  [[nodiscard]] int followInterval() const { return m_followInterval; }
  /// Reload now: the followed folder, or the summary file again.
  void reload();
  /// Cells complete and in all of the study shown (0, 0 when none is).
  [[nodiscard]] std::pair<int, int> cellsDone() const;
  [[nodiscard]] QString statusText() const;
  [[nodiscard]] QPushButton* reloadButton() const { return m_reload; }
  [[nodiscard]] QCheckBox* followCheck() const { return m_followCheck; }
  [[nodiscard]] QPushButton* slurmButton() const { return m_slurm; }

  [[nodiscard]] QComboBox* taskSelector() const { return m_task; }
  [[nodiscard]] QComboBox* metricSelector() const { return m_metric; }
  [[nodiscard]] PlotWidget* heatmapPlot() const { return m_heatmap; }
  [[nodiscard]] PlotWidget* linesPlot() const { return m_lines; }
  [[nodiscard]] PlotWidget* effectsPlot() const { return m_effects; }
  [[nodiscard]] QTableWidget* effectsTable() const { return m_effectsTable; }
  [[nodiscard]] PlotWidget* curvesPlot() const { return m_curves; }
  /// The "Task sensitivity" tab's table (tab 4; study_sensitivity_table.h).
  [[nodiscard]] QTableWidget* sensitivityTable() const { return m_sensitivity; }

public Q_SLOTS:
  /// Asks for a summary file and loads it.
  void onOpen();
  /// Asks for a study folder and follows it.
  void onFollowFolder();
  /// Opens the Slurm scripts dialog (StudySlurmDialog) for a study file.
  void onSlurmScripts();

Q_SIGNALS:
  /// A followed folder was read again (after each poll or Reload): cells complete, in all.
  void followed(int complete, int total);
  /// A followed folder could not be read (no study.json, or not a valid study): the message.
  void followFailed(const QString& message);
  /// The user asked to export the study's figures (`kdscope export --study`'s catalog);
  /// MainWindow opens the export dialog on them.
  void exportFiguresRequested();

private:
  /// Shows a summary; keeps the factor and task choices when the study's shape is unchanged
  /// (a poll while following).
  void showSummary(std::unique_ptr<core::StudySummary> summary);
  void onFollowed(const std::shared_ptr<const core::StudySummary>& summary);
  void stopFollowing();
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
  QPushButton* m_reload = nullptr;
  QCheckBox* m_followCheck = nullptr;
  QPushButton* m_slurm = nullptr;
  StudyFolderFollower* m_follower = nullptr;
  int m_followInterval = 5000;
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
  QTableWidget* m_sensitivity = nullptr;
  bool m_filling = false;
};

} // namespace kdscope::widgets
