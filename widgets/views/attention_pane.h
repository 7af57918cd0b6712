#pragma once
/// AttentionPane: one example's attention maps, the teacher's beside the student's, each
/// for a chosen layer and head (or the mean over heads), with the example's tokens on both
/// axes (query rows, key columns). Reads eval/attention of the run file. GUI thread.

#include <QWidget>

#include "widgets/views/analysis_view.h"

class QComboBox;
class QLabel;
class QSpinBox;

namespace kdscope::widgets {

class PlotWidget;

class AttentionPane : public QWidget {
  Q_OBJECT
public:
  explicit AttentionPane(QWidget* parent = nullptr);

  /// Resets the selectors for a run and task. May throw core::InputError.
  void setContext(const ViewContext& context);
  /// Shows an example (kept examples only: 0 .. n_att - 1).
  void setExample(int example);
  /// Selects a layer and head (-1: mean over heads) on one side.
  void selectTeacherHead(int layer, int head);
  void selectStudentHead(int layer, int head);

  [[nodiscard]] PlotWidget* teacherPlot() const { return m_teacherPlot; }
  [[nodiscard]] PlotWidget* studentPlot() const { return m_studentPlot; }
  [[nodiscard]] int example() const;

private:
  struct Side {
    QComboBox* layer = nullptr;
    QComboBox* head = nullptr;
    PlotWidget* plot = nullptr;
  };
  void refresh();
  void fillSide(const Side& side, const QString& model);
  void resetSelectors(const Side& side, const QString& model);

  ViewContext m_context;
  QSpinBox* m_example = nullptr;
  QLabel* m_note = nullptr;
  Side m_teacher;
  Side m_student;
  PlotWidget* m_teacherPlot = nullptr;
  PlotWidget* m_studentPlot = nullptr;
};

} // namespace kdscope::widgets
