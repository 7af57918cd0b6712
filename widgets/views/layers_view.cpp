#include "widgets/views/layers_view.h"

#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>

#include "core/analysis/analysis_results.h"
#include "core/analysis/interval_text.h"
#include "widgets/shell/run_document.h"

#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

LayersView::LayersView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Horizontal, body());
  m_cka = new PlotWidget(split);
  m_cka->setObjectName(QStringLiteral("layersCkaPlot"));
  m_probe = new PlotWidget(split);
  m_probe->setObjectName(QStringLiteral("layersProbePlot"));
  m_ckaMatchedPlot = new PlotWidget(split);
  m_ckaMatchedPlot->setObjectName(QStringLiteral("layersCkaMatchedPlot"));
  layout->addWidget(split, 1);
  m_ckaMatched = new QLabel(body());
  m_ckaMatched->setObjectName(QStringLiteral("layersCkaMatched"));
  m_ckaMatched->setWordWrap(true);
  m_ckaMatched->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_ckaMatched);
}

void LayersView::clearView() {
  m_cka->clear();
  m_probe->clear();
  m_ckaMatchedPlot->clear();
  m_ckaMatched->clear();
}

void LayersView::populate() {
  const RunDocument& run = *context().run;
  figures::buildCka(*m_cka, run, context().task, context().teacher, context().student);
  figures::buildProbe(*m_probe, run, context().task, context().teacher, context().student);
  figures::buildCkaMatched(*m_ckaMatchedPlot, run, context().task, context().teacher, context().student);
  m_ckaMatched->setText(matchedCkaText(run, context().task.toStdString(), context().student.toStdString()));
}

QString LayersView::matchedCkaText(const RunDocument& run, const std::string& task, const std::string& student) {
  // The analysis's CKA at matched depth with its interval (analysis/<student>/cka_matched).
  const auto matched = student.empty() ? std::nullopt : run.results().matchedCka(task, student);
  if (!matched) {
    return tr("CKA at matched depth: not analysed (run 'kdscope analyze' to get it with its 95% interval).");
  }
  QStringList parts;
  for (std::size_t i = 0; i < matched->cka.size(); ++i) {
    if (matched->teacherLayer[i] >= 0) {
      parts << tr("student %1 ~ teacher %2: %3")
                   .arg(i)
                   .arg(matched->teacherLayer[i])
                   .arg(QString::fromStdString(core::analysis::intervalText(matched->cka[i], 3)));
    }
  }
  return tr("CKA at matched depth (%1 map; 95% interval %2, B = %3): %4")
      .arg(QString::fromStdString(matched->map), QString::fromLatin1(core::analysis::kOverExamples))
      .arg(matched->cka.empty() ? 0 : matched->cka[0].resamples)
      .arg(parts.join(QStringLiteral("; ")));
}

} // namespace kdscope::widgets
