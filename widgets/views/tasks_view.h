#pragma once
/// TasksView: per task of the run, the selected student against the teacher (accuracy gap,
/// retained fraction, top-1 agreement, mean KL at T = 1, ECE with 15 bins), each with its 95%
/// bootstrap interval once the run is analysed ("0.8120 [0.7810, 0.8420]"), and the McNemar
/// test against the teacher; on the selected task, the paired tests of the student against
/// the teacher and every other student, the models' accuracies with error bars, and per-class
/// recall. A difference whose interval holds 0 is shown as "no detectable difference"
/// (italic, grey). Point estimates from eval/logits; intervals and tests as the analysis wrote
/// them. GUI thread.

#include "widgets/views/analysis_view.h"

class QLabel;
class QTableWidget;

namespace kdscope::widgets {

class PlotWidget;

class TasksView : public AnalysisView {
  Q_OBJECT
public:
  explicit TasksView(QWidget* parent = nullptr);

  enum Column {
    ColTask, ColTeacher, ColStudent, ColGap, ColRetained, ColAgreement, ColKl, ColTeacherEce, ColStudentEce,
    ColVsTeacher, ColumnCount
  };
  enum PairedColumn {
    PairOther, PairDifference, PairOnlyStudent, PairOnlyOther, PairMcNemar, PairHolm, PairBootstrap, PairVerdict,
    PairedColumnCount
  };
  [[nodiscard]] QTableWidget* table() const { return m_table; }
  /// The selected student against the teacher and the other students of the selected task.
  [[nodiscard]] QTableWidget* pairedTable() const { return m_paired; }
  /// What the intervals are over (or why there are none).
  [[nodiscard]] QLabel* intervalNote() const { return m_note; }
  [[nodiscard]] PlotWidget* accuracyPlot() const { return m_accuracy; }
  [[nodiscard]] PlotWidget* recallPlot() const { return m_recall; }

protected:
  void populate() override;
  void clearView() override;

private:
  QTableWidget* m_table = nullptr;
  QLabel* m_note = nullptr;
  QTableWidget* m_paired = nullptr;
  PlotWidget* m_accuracy = nullptr;
  PlotWidget* m_recall = nullptr;
};

} // namespace kdscope::widgets
