#pragma once
/// LayersView: the linear-CKA heatmap of teacher layers against student layers (from
/// /tasks/<task>/analysis/<student>/cka) and linear-probe accuracy by relative depth (from
/// /tasks/<task>/analysis/<model>/probe_accuracy [Lyr + 1], when the analysis wrote it).
/// GUI thread.

#include "widgets/views/analysis_view.h"

namespace kdscope::widgets {

class PlotWidget;

class LayersView : public AnalysisView {
  Q_OBJECT
public:
  explicit LayersView(QWidget* parent = nullptr);

  [[nodiscard]] PlotWidget* ckaPlot() const { return m_cka; }
  [[nodiscard]] PlotWidget* probePlot() const { return m_probe; }

protected:
  void populate() override;
  void clearView() override;

private:
  PlotWidget* m_cka = nullptr;
  PlotWidget* m_probe = nullptr;
};

} // namespace kdscope::widgets
