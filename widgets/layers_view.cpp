#include "widgets/layers_view.h"

#include <QHBoxLayout>
#include <QSplitter>

#include "widgets/plot_widget.h"

namespace kdscope::widgets {

namespace {

QStringList layerLabels(std::size_t count) {
  QStringList labels;
  for (std::size_t i = 0; i < count; ++i) {
    labels << (i == 0 ? QObject::tr("emb") : QString::number(i));
  }
  return labels;
}

} // namespace

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
  const QString& task = context().task;
  if (context().student.isEmpty()) {
    m_cka->setMessage(tr("the task has no student"));
  } else if (const auto cka = run.readMatrix(RunDocument::analysisPath(task, context().student, QStringLiteral("cka")))) {
    Heatmap map;
    map.rows = static_cast<int>(cka->rows);
    map.cols = static_cast<int>(cka->cols);
    map.values = cka->values;
    map.rowLabels = layerLabels(cka->rows);
    map.colLabels = layerLabels(cka->cols);
    map.rowTitle = tr("%1 layer").arg(context().teacher);
    map.colTitle = tr("%1 layer").arg(context().student);
    map.valueTitle = tr("linear CKA");
    map.range = std::make_pair(0.0, 1.0);
    m_cka->setTitle(tr("Linear CKA, %1 vs %2").arg(context().teacher, context().student));
    m_cka->setHeatmap(map);
  } else {
    m_cka->setMessage(noAnalysisMessage(run));
  }

  m_probe->setTitle(tr("Linear probe accuracy by relative depth"));
  m_probe->setAxisLabels(tr("relative depth (layer / layers)"), tr("probe accuracy"));
  int color = 0;
  for (const QString& model : {context().teacher, context().student}) {
    if (model.isEmpty()) {
      continue;
    }
    if (const auto probe = run.readVector(RunDocument::analysisPath(task, model, QStringLiteral("probe_accuracy")))) {
      QVector<double> x;
      QVector<double> y;
      const double layers = std::max<double>(1.0, static_cast<double>(probe->size()) - 1.0);
      for (std::size_t i = 0; i < probe->size(); ++i) {
        x << static_cast<double>(i) / layers;
        y << (*probe)[i];
      }
      m_probe->addLine(model, x, y, color);
    }
    ++color;
  }
  if (m_probe->lineCount() == 0) {
    m_probe->setMessage(noAnalysisMessage(run));
  }
  m_probe->rescale();
}

} // namespace kdscope::widgets
