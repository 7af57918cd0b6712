#pragma once
/// HeadsView: layers x heads grids (importance from /analysis, entropy and teacher-student
/// divergence from eval/attention), teacher beside student; clicking a cell opens that
/// head's attention maps for a chosen example in the attention pane below. GUI thread.

#include <string>

#include "widgets/views/analysis_view.h"

class QComboBox;
class QLabel;

namespace kdscope::widgets {

class AttentionPane;
class PlotWidget;
class RunDocument;

class HeadsView : public AnalysisView {
  Q_OBJECT
public:
  explicit HeadsView(QWidget* parent = nullptr);

  enum class Metric { Importance, Entropy, Divergence };
  void setMetric(Metric metric);

  [[nodiscard]] PlotWidget* teacherGrid() const { return m_teacherGrid; }
  [[nodiscard]] PlotWidget* studentGrid() const { return m_studentGrid; }
  [[nodiscard]] AttentionPane* attentionPane() const { return m_attention; }
  /// Under the grids, one tab each: head importance with its 95% intervals and the accuracy
  /// drop of single-head ablation with its intervals, teacher and student side by side
  /// (figures heads.importance_intervals and heads.ablation).
  [[nodiscard]] PlotWidget* importanceIntervalsPlot(bool student) const {
    return student ? m_studentImportance : m_teacherImportance;
  }
  [[nodiscard]] PlotWidget* ablationPlot(bool student) const { return student ? m_studentAblation : m_teacherAblation; }
  /// The line under the grids: each model's most important heads with their 95% intervals.
  [[nodiscard]] QLabel* importanceIntervalsLabel() const { return m_importanceIntervals; }
  /// One model's part of that line ("not analysed" without head_importance_lo/_hi).
  [[nodiscard]] static QString importanceIntervalText(const RunDocument& run, const std::string& task,
                                                      const std::string& model);

protected:
  void populate() override;
  void clearView() override;

private:
  void fillGrids();
  void fillGrid(PlotWidget* plot, const QString& model, bool student);
  /// Opens the clicked head's attention; in the divergence grid (columns: heads of the mapped
  /// teacher layer) that teacher head and the student head the analysis matched to it.
  void studentCellClicked(int layer, int column);

  QComboBox* m_metric = nullptr;
  PlotWidget* m_teacherGrid = nullptr;
  PlotWidget* m_studentGrid = nullptr;
  AttentionPane* m_attention = nullptr;
  PlotWidget* m_teacherImportance = nullptr;
  PlotWidget* m_studentImportance = nullptr;
  PlotWidget* m_teacherAblation = nullptr;
  PlotWidget* m_studentAblation = nullptr;
  QLabel* m_importanceIntervals = nullptr;
};

} // namespace kdscope::widgets
