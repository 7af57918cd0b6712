#pragma once
/// HeadsView: layers x heads grids (importance from /analysis, entropy and teacher-student
/// divergence from eval/attention), teacher beside student; clicking a cell opens that
/// head's attention maps for a chosen example in the attention pane below. GUI thread.

#include "widgets/views/analysis_view.h"

class QComboBox;

namespace kdscope::widgets {

class AttentionPane;
class PlotWidget;

class HeadsView : public AnalysisView {
  Q_OBJECT
public:
  explicit HeadsView(QWidget* parent = nullptr);

  enum class Metric { Importance, Entropy, Divergence };
  void setMetric(Metric metric);

  [[nodiscard]] PlotWidget* teacherGrid() const { return m_teacherGrid; }
  [[nodiscard]] PlotWidget* studentGrid() const { return m_studentGrid; }
  [[nodiscard]] AttentionPane* attentionPane() const { return m_attention; }

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
};

} // namespace kdscope::widgets
