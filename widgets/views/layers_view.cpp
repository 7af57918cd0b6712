#include "widgets/views/layers_view.h"

#include <QHBoxLayout>
#include <QSplitter>

#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

LayersView::LayersView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QHBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Horizontal, body());
  m_cka = new PlotWidget(split);
  m_cka->setObjectName(QStringLiteral("layersCkaPlot"));
  m_probe = new PlotWidget(split);
  m_probe->setObjectName(QStringLiteral("layersProbePlot"));
  layout->addWidget(split);
}

void LayersView::clearView() {
  m_cka->clear();
  m_probe->clear();
}

void LayersView::populate() {
  const RunDocument& run = *context().run;
  figures::buildCka(*m_cka, run, context().task, context().teacher, context().student);
  figures::buildProbe(*m_probe, run, context().task, context().teacher, context().student);
}

} // namespace kdscope::widgets
