#pragma once
/// TasksView: per task of the run, the selected student against the teacher (accuracy gap,
/// retained fraction, top-1 agreement, mean KL at T = 1, ECE with 15 bins), and per-class
/// recall of both models on the selected task. Computed from eval/logits. GUI thread.

#include "widgets/views/analysis_view.h"

class QTableWidget;

namespace kdscope::widgets {

class PlotWidget;

class TasksView : public AnalysisView {
  Q_OBJECT
public:
  explicit TasksView(QWidget* parent = nullptr);

  enum Column {
    ColTask, ColTeacher, ColStudent, ColGap, ColRetained, ColAgreement, ColKl, ColTeacherEce, ColStudentEce,
    ColumnCount
  };
  [[nodiscard]] QTableWidget* table() const { return m_table; }
  [[nodiscard]] PlotWidget* recallPlot() const { return m_recall; }

protected:
  void populate() override;
  void clearView() override;

private:
  QTableWidget* m_table = nullptr;
  PlotWidget* m_recall = nullptr;
};

} // namespace kdscope::widgets
