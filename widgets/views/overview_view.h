#pragma once
/// OverviewView: training curves per loss term, eval accuracy curves, and the accuracy
/// table (teacher and students, gap and retained fraction), and what was skipped and why.
/// GUI thread.

#include "widgets/views/analysis_view.h"

class QComboBox;
class QPlainTextEdit;
class QTableWidget;

namespace kdscope::widgets {

class PlotWidget;

class OverviewView : public AnalysisView {
  Q_OBJECT
public:
  explicit OverviewView(QWidget* parent = nullptr);

  /// The interval columns hold the analysis's 95% bootstrap intervals ("[lo, hi]"; "-" when
  /// not analysed; a gap whose interval holds 0 says "no detectable difference").
  enum Column {
    ColModel, ColRole, ColParameters, ColAccuracy, ColGap, ColRetained, ColFinalLoss, ColAccuracyInterval,
    ColGapInterval, ColumnCount
  };

  [[nodiscard]] QTableWidget* accuracyTable() const { return m_table; }
  [[nodiscard]] PlotWidget* lossPlot() const { return m_lossPlot; }
  [[nodiscard]] PlotWidget* accuracyPlot() const { return m_accuracyPlot; }
  [[nodiscard]] QComboBox* termSelector() const { return m_term; }
  /// What the task's models lack (their pre-flight check) and the analyses skipped and why;
  /// hidden when there is nothing to say.
  [[nodiscard]] QPlainTextEdit* skippedNotes() const { return m_skipped; }

protected:
  void populate() override;
  void clearView() override;

private:
  void fillLossPlot();

  QComboBox* m_term = nullptr;
  PlotWidget* m_lossPlot = nullptr;
  PlotWidget* m_accuracyPlot = nullptr;
  QTableWidget* m_table = nullptr;
  QPlainTextEdit* m_skipped = nullptr;
};

} // namespace kdscope::widgets
