#pragma once
/// AnalysisView: the base of the views of a finished run (Overview, Layers, Heads, Tasks,
/// Knowledge, Examples). Each shows one task of one run, the teacher beside the selected
/// student. Views read the run file only, never a job's live state. GUI thread.

#include <QString>
#include <QWidget>

#include "widgets/shell/run_document.h"

class QLabel;

namespace kdscope::widgets {

/// What a view shows: a run, a task in it, its teacher and the selected student.
struct ViewContext {
  const RunDocument* run = nullptr;
  QString task;
  QString teacher;
  QString student; ///< empty when the task has no student
};

/// The text a view shows where an analysis result is missing from the run file.
QString noAnalysisMessage(const RunDocument& run);

/// "%.4f", or "-" for NaN.
QString formatNumber(double value, int decimals = 4);

/// "0.8120 [0.7810, 0.8420]" when the analysis wrote the interval, else formatNumber(value).
QString formatInterval(double value, const core::analysis::Interval* interval, int decimals = 4,
                       bool showSign = false);
/// A p-value as `kdscope info` writes it ("0.219", "3.2e-05", "-").
QString formatP(double p);
/// What an interval is over, for a tooltip: "95% interval: eval examples (bootstrap), B = 2000".
QString intervalTooltip(const core::analysis::Interval& interval);
/// The words for a difference whose 95% interval holds 0 ("no detectable difference").
QString noDetectableDifference();

class AnalysisView : public QWidget {
  Q_OBJECT
public:
  explicit AnalysisView(QWidget* parent = nullptr);

  /// Shows a context; catches every exception and shows its message instead of crashing.
  void setContext(const ViewContext& context);
  [[nodiscard]] const ViewContext& context() const { return m_context; }
  /// The error shown by the last setContext, or empty.
  [[nodiscard]] QString errorText() const;

protected:
  /// Fills the view from context(); may throw (core::InputError for a bad file).
  virtual void populate() = 0;
  /// Empties the view (no run).
  virtual void clearView() = 0;
  /// Derived classes put their content in this widget's layout.
  [[nodiscard]] QWidget* body() const { return m_body; }

private:
  ViewContext m_context;
  QLabel* m_error = nullptr;
  QWidget* m_body = nullptr;
};

} // namespace kdscope::widgets
