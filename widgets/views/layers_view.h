#pragma once
/// LayersView: the linear-CKA heatmap of teacher layers against student layers (from
/// /tasks/<task>/analysis/<student>/cka) and linear-probe accuracy by relative depth (from
/// /tasks/<task>/analysis/<model>/probe_accuracy [Lyr + 1], when the analysis wrote it), and
/// the CKA at matched depth with its bootstrap intervals (analysis/<student>/cka_matched).
/// GUI thread.

#include <string>

#include "widgets/views/analysis_view.h"

class QLabel;

namespace kdscope::widgets {

class PlotWidget;
class RunDocument;

class LayersView : public AnalysisView {
  Q_OBJECT
public:
  explicit LayersView(QWidget* parent = nullptr);

  [[nodiscard]] PlotWidget* ckaPlot() const { return m_cka; }
  [[nodiscard]] PlotWidget* probePlot() const { return m_probe; }
  /// The student's CKA at matched depth with its 95% intervals (figure layers.cka_matched).
  [[nodiscard]] PlotWidget* ckaMatchedPlot() const { return m_ckaMatchedPlot; }
  /// The line under the plots: CKA at matched depth with its 95% interval.
  [[nodiscard]] QLabel* ckaMatchedLabel() const { return m_ckaMatched; }
  /// That line's text for a student of a run ("not analysed" without cka_matched).
  [[nodiscard]] static QString matchedCkaText(const RunDocument& run, const std::string& task,
                                              const std::string& student);

protected:
  void populate() override;
  void clearView() override;

private:
  PlotWidget* m_cka = nullptr;
  PlotWidget* m_probe = nullptr;
  PlotWidget* m_ckaMatchedPlot = nullptr;
  QLabel* m_ckaMatched = nullptr;
};

} // namespace kdscope::widgets
