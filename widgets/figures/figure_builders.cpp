#include "widgets/figures/figure_builders.h"

#include <QObject>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "core/analysis/class_recall.h"
#include "core/analysis/metrics.h"
#include "core/analysis/proportion.h"
#include "core/record/run_layout.h"
#include "core/study/replicate_group.h"
#include "widgets/views/analysis_view.h"
#include "widgets/views/knowledge_view.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"

namespace kdscope::widgets {

QString figureSegment(const QString& text) {
  QString out;
  out.reserve(text.size());
  for (const QChar c : text) {
    const bool keep = (c >= QLatin1Char('a') && c <= QLatin1Char('z')) || (c >= QLatin1Char('A') && c <= QLatin1Char('Z')) ||
                      (c >= QLatin1Char('0') && c <= QLatin1Char('9')) || c == QLatin1Char('-') || c == QLatin1Char('_');
    out += keep ? c : QLatin1Char('_');
  }
  return out.isEmpty() ? QStringLiteral("_") : out;
}

namespace figures {

namespace {

QString tr(const char* text) { return QObject::tr(text); }

QString join(std::initializer_list<QString> parts) {
  QStringList segments;
  for (const QString& part : parts) {
    segments << part;
  }
  return segments.join(QLatin1Char('.'));
}

QStringList layerLabels(std::size_t count) {
  QStringList labels;
  for (std::size_t i = 0; i < count; ++i) {
    labels << (i == 0 ? tr("emb") : QString::number(i));
  }
  return labels;
}

Heatmap gridOf(const Matrix& m, const QString& value) {
  Heatmap map;
  map.rows = static_cast<int>(m.rows);
  map.cols = static_cast<int>(m.cols);
  map.values = m.values;
  map.rowTitle = tr("layer");
  map.colTitle = tr("head");
  map.valueTitle = value;
  return map;
}

const core::ModelSummary* modelOf(const RunDocument& run, const QString& task, const QString& model) {
  if (const core::TaskSummary* t = run.task(task)) {
    for (const core::ModelSummary& m : t->models) {
      if (QString::fromStdString(m.name) == model) {
        return &m;
      }
    }
  }
  return nullptr;
}

} // namespace

QString lossName(const QString& task, const LossSelection& selection) {
  switch (selection.kind) {
  case LossSelection::Kind::AllTerms:
    return join({QStringLiteral("overview"), QStringLiteral("loss_all"), figureSegment(task)});
  case LossSelection::Kind::Term:
    return join({QStringLiteral("overview"), QStringLiteral("loss_term"), figureSegment(task), figureSegment(selection.term)});
  case LossSelection::Kind::Total:
    break;
  }
  return join({QStringLiteral("overview"), QStringLiteral("loss"), figureSegment(task)});
}

void buildLoss(PlotWidget& plot, const RunDocument& run, const QString& taskName, const LossSelection& selection) {
  plot.clear();
  const core::TaskSummary* task = run.task(taskName);
  if (task == nullptr) {
    plot.setMessage(tr("no task %1").arg(taskName));
    return;
  }
  plot.setTitle(selection.kind == LossSelection::Kind::Total      ? tr("Training loss")
                : selection.kind == LossSelection::Kind::AllTerms ? tr("Training loss: total and every term")
                                                                  : tr("Training loss: %1").arg(selection.term));
  plot.setAxisLabels(tr("step"), tr("loss (nats)"));
  int color = 0;
  for (const core::ModelSummary& model : task->models) {
    const core::TrainLog log = run.reader().trainLog(task->name, model.name);
    QVector<double> x;
    for (const std::int64_t step : log.steps) {
      x << static_cast<double>(step);
    }
    const QString name = QString::fromStdString(model.name);
    const auto addSeries = [&](const QString& label, const std::vector<float>& values, PlotWidget::LineStyle style) {
      QVector<double> xs;
      QVector<double> ys;
      for (std::size_t i = 0; i < values.size() && i < static_cast<std::size_t>(x.size()); ++i) {
        if (!std::isnan(values[i])) { // a term not logged on a step is NaN
          xs << x[static_cast<int>(i)];
          ys << values[i];
        }
      }
      if (!xs.isEmpty()) {
        plot.addLine(label, xs, ys, color, style);
      }
    };
    if (selection.kind != LossSelection::Kind::Term) {
      addSeries(name, log.loss, PlotWidget::LineStyle::Solid);
    }
    int termIndex = 0;
    for (const auto& [term, values] : log.terms) {
      const QString termName = QString::fromStdString(term);
      if (selection.kind == LossSelection::Kind::AllTerms) {
        addSeries(name + QStringLiteral(" ") + termName, values,
                  termIndex % 2 == 0 ? PlotWidget::LineStyle::Dashed : PlotWidget::LineStyle::Dotted);
      } else if (selection.kind == LossSelection::Kind::Term && selection.term == termName) {
        addSeries(name + QStringLiteral(" ") + termName, values, PlotWidget::LineStyle::Solid);
      }
      ++termIndex;
    }
    ++color;
  }
  if (plot.lineCount() == 0) {
    plot.setMessage(tr("no training log recorded"));
    return;
  }
  plot.rescale();
  plot.setFigureName(lossName(taskName, selection));
}

namespace {

/// The 95% Wilson interval of an accuracy recorded as a fraction of `n` eval examples
/// (round(accuracy x n) successes; core/analysis/proportion.h), appended to lo and hi.
void appendWilson(double accuracy, std::uint64_t n, QVector<double>& lo, QVector<double>& hi) {
  const core::analysis::Interval w = core::analysis::wilsonIntervalOfFraction(accuracy, n);
  lo << w.lo;
  hi << w.hi;
}

std::uint64_t evalExamplesOf(const RunDocument& run, const QString& task) {
  const core::TaskSummary* t = run.task(task);
  return t == nullptr ? 0 : static_cast<std::uint64_t>(std::max<std::int64_t>(0, t->evalExamples));
}

} // namespace

QString accuracyName(const QString& task) {
  return join({QStringLiteral("overview"), QStringLiteral("accuracy"), figureSegment(task)});
}

void buildEvalAccuracy(PlotWidget& plot, const RunDocument& run, const QString& taskName) {
  plot.clear();
  const core::TaskSummary* task = run.task(taskName);
  if (task == nullptr) {
    plot.setMessage(tr("no task %1").arg(taskName));
    return;
  }
  plot.setTitle(tr("Eval accuracy"));
  plot.setAxisLabels(tr("epoch"), tr("accuracy (95% Wilson interval)"));
  const auto n = static_cast<std::uint64_t>(std::max<std::int64_t>(0, task->evalExamples));
  int color = 0;
  for (const core::ModelSummary& model : task->models) {
    const core::EvalCurve curve = run.reader().evalCurve(task->name, model.name);
    QVector<double> x;
    QVector<double> y;
    QVector<double> lo;
    QVector<double> hi;
    for (std::size_t i = 0; i < curve.epoch.size(); ++i) {
      x << static_cast<double>(curve.epoch[i]);
      y << curve.accuracy[i];
      // Only the fraction is recorded per epoch: the interval of a proportion of n examples.
      appendWilson(curve.accuracy[i], n, lo, hi);
    }
    if (!x.isEmpty()) {
      const int line = plot.addLine(QString::fromStdString(model.name), x, y, color);
      plot.setErrorBars(line, lo, hi);
    }
    ++color;
  }
  if (plot.lineCount() == 0) {
    plot.setMessage(tr("no eval curve recorded"));
    return;
  }
  plot.rescale();
  plot.setFigureName(accuracyName(taskName));
}

QString ckaName(const QString& task, const QString& student) {
  return join({QStringLiteral("layers"), QStringLiteral("cka"), figureSegment(task), figureSegment(student)});
}

void buildCka(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
              const QString& student) {
  plot.clear();
  if (student.isEmpty()) {
    plot.setMessage(tr("the task has no student"));
    return;
  }
  const auto cka = run.resultMatrix(task, student, QStringLiteral("cka"));
  if (!cka) {
    plot.setMessage(noAnalysisMessage(run));
    return;
  }
  Heatmap map;
  map.rows = static_cast<int>(cka->rows);
  map.cols = static_cast<int>(cka->cols);
  map.values = cka->values;
  map.rowLabels = layerLabels(cka->rows);
  map.colLabels = layerLabels(cka->cols);
  map.rowTitle = tr("%1 layer").arg(teacher);
  map.colTitle = tr("%1 layer").arg(student);
  map.valueTitle = tr("linear CKA");
  map.range = std::make_pair(0.0, 1.0);
  // The matched-depth pairs (the layer map's teacher layer of each student layer) carry the
  // analysis's 95% bootstrap interval over eval examples; other entries have none (NaN).
  if (const auto matched = run.results().matchedCka(task.toStdString(), student.toStdString())) {
    const std::size_t cells = cka->rows * cka->cols;
    map.lower.assign(cells, std::nan(""));
    map.upper.assign(cells, std::nan(""));
    for (std::size_t j = 0; j < matched->cka.size() && j < matched->teacherLayer.size() && j < cka->cols; ++j) {
      const std::int64_t i = matched->teacherLayer[j];
      if (i >= 0 && static_cast<std::size_t>(i) < cka->rows) {
        map.lower[static_cast<std::size_t>(i) * cka->cols + j] = matched->cka[j].lo;
        map.upper[static_cast<std::size_t>(i) * cka->cols + j] = matched->cka[j].hi;
      }
    }
    const int resamples = matched->cka.empty() ? 0 : matched->cka.front().resamples;
    map.intervalTitle = tr("95% percentile bootstrap over eval examples (B = %1), matched-depth pairs only (layer "
                           "map %2)")
                            .arg(resamples)
                            .arg(QString::fromStdString(matched->map));
    map.noInterval = tr("no interval: only the matched-depth pairs (the layer map) are bootstrapped");
  } else {
    map.noInterval = tr("no interval: the run was analysed before CKA at matched depth was recorded (run 'kdscope "
                        "analyze' again)");
  }
  plot.setTitle(tr("Linear CKA, %1 vs %2").arg(teacher, student));
  plot.setHeatmap(map);
  plot.setFigureName(ckaName(task, student));
}

QString probeName(const QString& task, const QString& student) {
  return join({QStringLiteral("layers"), QStringLiteral("probe"), figureSegment(task),
               figureSegment(student.isEmpty() ? QStringLiteral("teacher") : student)});
}

void buildProbe(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                const QString& student) {
  plot.clear();
  plot.setTitle(tr("Linear probe accuracy by relative depth"));
  plot.setAxisLabels(tr("relative depth (layer / layers)"), tr("probe accuracy"));
  int color = 0;
  for (const QString& model : {teacher, student}) {
    if (model.isEmpty()) {
      continue;
    }
    if (const auto probe = run.resultVector(task, model, QStringLiteral("probe_accuracy"))) {
      QVector<double> x;
      QVector<double> y;
      const double layers = std::max<double>(1.0, static_cast<double>(probe->size()) - 1.0);
      for (std::size_t i = 0; i < probe->size(); ++i) {
        x << static_cast<double>(i) / layers;
        y << (*probe)[i];
      }
      plot.addLine(model, x, y, color);
      // The 95% interval of each layer's probe accuracy (bootstrap over eval examples of the
      // held-out predictions), when the analysis wrote it: error bars, and y_lo, y_hi in the CSV.
      const auto lo = run.resultVector(task, model, QString::fromLatin1(core::layout::entry::kProbeAccuracyLo));
      const auto hi = run.resultVector(task, model, QString::fromLatin1(core::layout::entry::kProbeAccuracyHi));
      if (lo && hi && lo->size() == probe->size() && hi->size() == probe->size()) {
        plot.setErrorBars(plot.lineCount() - 1, QVector<double>(lo->begin(), lo->end()),
                          QVector<double>(hi->begin(), hi->end()));
      }
    }
    ++color;
  }
  if (plot.lineCount() == 0) {
    plot.setMessage(noAnalysisMessage(run));
    return;
  }
  plot.rescale();
  plot.setFigureName(probeName(task, student));
}

QString headMetricKey(HeadMetric metric) {
  switch (metric) {
  case HeadMetric::Importance:
    return QStringLiteral("importance");
  case HeadMetric::Divergence:
    return QStringLiteral("divergence");
  case HeadMetric::Entropy:
    break;
  }
  return QStringLiteral("entropy");
}

QString headsName(const QString& task, const QString& model, HeadMetric metric) {
  return join({QStringLiteral("heads"), headMetricKey(metric), figureSegment(task), figureSegment(model)});
}

void buildHeadGrid(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                   const QString& model, HeadMetric metric) {
  plot.clear();
  if (model.isEmpty()) {
    plot.setMessage(tr("no model"));
    return;
  }
  std::optional<Matrix> grid;
  std::optional<core::HeadDivergence> div; // read once: the grid and its interval ends
  QString value;
  switch (metric) {
  case HeadMetric::Importance:
    grid = run.resultMatrix(task, model, QStringLiteral("head_importance"));
    value = tr("importance");
    if (!grid) {
      plot.setMessage(noAnalysisMessage(run));
      return;
    }
    break;
  case HeadMetric::Entropy:
    grid = run.headEntropy(task, model);
    value = tr("entropy (nats)");
    break;
  case HeadMetric::Divergence:
    if (model == teacher) {
      plot.setMessage(tr("divergence is shown per student (right): for each head of the mapped teacher layer, the "
                         "smallest Jensen-Shannon divergence to any head of the student layer"));
      return;
    }
    div = run.results().headDivergence(task.toStdString(), model.toStdString());
    if (div) {
      grid = div->bestDivergence;
    }
    value = tr("JS divergence (nats)");
    break;
  }
  // Entropy and divergence are the analysis's numbers (analysis "attention"), never recomputed here.
  if (!grid) {
    plot.setMessage(noAnalysisMessage(run));
    return;
  }
  Heatmap map = gridOf(*grid, value);
  if (metric == HeadMetric::Entropy) {
    map.noInterval = tr("no interval: the entropy describes the attention maps of the kept eval examples as "
                        "recorded; no bootstrap is run for it (importance and divergence have one)");
  }
  if (metric == HeadMetric::Importance) {
    // Each head's 95% bootstrap interval over eval examples, when the analysis wrote one.
    if (const auto ends = run.results().headImportanceInterval(task.toStdString(), model.toStdString());
        ends && ends->first.values.size() == map.values.size() && ends->second.values.size() == map.values.size()) {
      map.lower = ends->first.values;
      map.upper = ends->second.values;
      map.intervalTitle = tr("95% percentile bootstrap over eval examples (normalised per layer in each resample)");
    }
  }
  if (metric == HeadMetric::Divergence) {
    // Each entry's 95% bootstrap interval over the kept examples, when the analysis wrote one.
    if (div && div->bestLo && div->bestLo->values.size() == map.values.size()) {
      map.lower = div->bestLo->values;
      map.upper = div->bestHi->values;
      map.intervalTitle = tr("95% percentile bootstrap over the kept eval examples (B = %1; the match fixed)")
                              .arg(div->resamples);
    }
    // head_js_best_divergence: rows are the student's layers, columns the heads of the
    // teacher layer mapped to each (the analysis matches each teacher head to a student head).
    map.rowTitle = tr("%1 layer").arg(model);
    map.colTitle = tr("%1 head (mapped layer)").arg(teacher);
  }
  if (metric != HeadMetric::Entropy) {
    // With the analysis's intervals, a cell without one has no value (e.g. a teacher head
    // with no mapped student layer); without them, the file predates them.
    map.noInterval = map.lower.empty() ? tr("no interval: the run was analysed before this interval was recorded "
                                            "(run 'kdscope analyze' again)")
                                       : tr("no interval: this cell has no value");
  }
  plot.setTitle(model);
  plot.setHeatmap(map);
  plot.setFigureName(headsName(task, model, metric));
}

QString recallName(const QString& task, const QString& student) {
  return student.isEmpty() ? join({QStringLiteral("tasks"), QStringLiteral("recall"), figureSegment(task)})
                           : join({QStringLiteral("tasks"), QStringLiteral("recall"), figureSegment(task),
                                   figureSegment(student)});
}

void buildRecall(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                 const QString& student) {
  plot.clear();
  const std::size_t classes = run.numClasses(task);
  plot.setTitle(tr("Per-class recall, %1").arg(task));
  const bool bars = run.labels(task).size() <= kRecallIntervalExamples;
  plot.setAxisLabels(tr("class"), bars ? tr("recall (95% interval)")
                                       : tr("recall (no interval: over %L1 eval examples)").arg(kRecallIntervalExamples));
  int color = 0;
  for (const QString& model : {teacher, student}) {
    if (!model.isEmpty() && !run.logits(task, model).empty()) {
      QVector<double> x;
      QVector<double> y;
      QVector<double> lo;
      QVector<double> hi;
      if (bars) {
        // The report's numbers: bootstrap over the class's eval examples (B = 2000, seed 14).
        const auto recall = core::analysis::classRecallIntervals(run.logits(task, model), run.labels(task), classes);
        for (std::size_t i = 0; i < recall.size(); ++i) {
          x << static_cast<double>(i);
          y << recall[i].recall.estimate;
          lo << recall[i].recall.lo;
          hi << recall[i].recall.hi;
        }
      } else {
        const auto recall = core::analysis::perClassRecall(run.logits(task, model), run.labels(task), classes);
        for (std::size_t i = 0; i < recall.size(); ++i) {
          x << static_cast<double>(i);
          y << recall[i];
        }
      }
      const int line = plot.addLine(model, x, y, color);
      if (bars) {
        plot.setErrorBars(line, lo, hi);
      }
    }
    ++color;
  }
  plot.setXTickLabels(run.classNames(task));
  if (plot.lineCount() == 0) {
    plot.setMessage(tr("no eval/logits recorded"));
    return;
  }
  plot.rescale();
  plot.setFigureName(recallName(task, student));
}

QString similarityName(const QString& task, const QString& model, SimilarityKind kind) {
  return join({QStringLiteral("knowledge"),
               kind == SimilarityKind::ClassifierCosine ? QStringLiteral("cosine") : QStringLiteral("probability"),
               figureSegment(task), figureSegment(model)});
}

void buildSimilarity(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model,
                     SimilarityKind kind) {
  plot.clear();
  if (model.isEmpty()) {
    plot.setMessage(tr("no model"));
    return;
  }
  std::optional<Matrix> matrix;
  if (kind == SimilarityKind::ClassifierCosine) {
    if (const auto weight = run.classifierWeight(task, model)) {
      const std::vector<float> values(weight->values.begin(), weight->values.end());
      matrix = rowCosine(values, weight->rows, weight->cols);
    }
  } else if (const std::vector<float>& logits = run.logits(task, model); !logits.empty()) {
    matrix = meanClassProbability(logits, run.labels(task), run.numClasses(task));
  }
  if (!matrix) {
    plot.setMessage(tr("%1: not recorded (classifier/weight or eval/logits)").arg(model));
    return;
  }
  const QStringList classes = run.classNames(task);
  Heatmap map;
  map.rows = static_cast<int>(matrix->rows);
  map.cols = static_cast<int>(matrix->cols);
  map.values = matrix->values;
  map.rowLabels = classes;
  map.colLabels = classes;
  map.rowTitle = tr("class i");
  map.colTitle = tr("class j");
  map.valueTitle = kind == SimilarityKind::ClassifierCosine ? tr("cosine") : tr("mean probability");
  map.range = kind == SimilarityKind::ClassifierCosine ? std::make_pair(-1.0, 1.0) : std::make_pair(0.0, 1.0);
  plot.setTitle(model);
  plot.setHeatmap(map);
  plot.setFigureName(similarityName(task, model, kind));
}

QString gradRescaleName(const QString& task, const QString& student) {
  return join({QStringLiteral("knowledge"), QStringLiteral("grad_rescale"), figureSegment(task), figureSegment(student)});
}

void buildGradRescale(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                      const QString& student) {
  plot.clear();
  plot.setTitle(tr("Instance level: w against the teacher's confidence"));
  plot.setAxisLabels(tr("teacher p_y"), tr("w = g_KD / g_CE"));
  if (student.isEmpty()) {
    plot.setMessage(tr("the task has no student"));
    return;
  }
  const auto w = run.resultVector(task, student, QStringLiteral("grad_rescale"));
  if (!w) {
    plot.setMessage(noAnalysisMessage(run));
    return;
  }
  const std::vector<float>& logits = run.logits(task, teacher);
  const std::vector<std::int64_t>& labels = run.labels(task);
  const std::size_t classes = run.numClasses(task);
  if (logits.empty() || w->size() != labels.size()) {
    plot.setMessage(tr("grad_rescale has %1 values for %2 eval examples").arg(w->size()).arg(labels.size()));
    return;
  }
  const std::vector<double> p = core::analysis::softmax(logits, classes);
  QVector<double> x;
  QVector<double> y;
  for (std::size_t n = 0; n < labels.size(); ++n) {
    x << p[n * classes + static_cast<std::size_t>(labels[n])];
    y << (*w)[n];
  }
  plot.addScatter(student, x, y, 2);
  plot.rescale();
  plot.setFigureName(gradRescaleName(task, student));
}

QString attentionName(const QString& task, const QString& model, int example, int layer, int head) {
  return join({QStringLiteral("heads"), QStringLiteral("attention"), figureSegment(task), figureSegment(model),
               QStringLiteral("e%1").arg(example), QStringLiteral("l%1").arg(layer),
               head < 0 ? QStringLiteral("mean") : QStringLiteral("h%1").arg(head)});
}

void buildAttention(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model,
                    int example, int layer, int head) {
  plot.clear();
  if (model.isEmpty()) {
    plot.setMessage(tr("no model"));
    return;
  }
  const auto shape = run.attentionShape(task, model);
  if (!shape) {
    plot.setMessage(tr("%1 has no eval/attention (a model without attention, or a vector task)").arg(model));
    return;
  }
  if (example < 0 || example >= shape->examples) {
    plot.setMessage(tr("no attention kept for example %1").arg(example));
    return;
  }
  if (layer < 0 || layer >= shape->layers || head >= shape->heads) {
    plot.setMessage(tr("%1 has no layer %2 head %3").arg(model).arg(layer).arg(head));
    return;
  }
  const std::vector<float> all = run.attention(task, model, example);
  const int len = shape->length;
  QStringList tokens = run.exampleTokens(task, example, model);
  const int shown = tokens.isEmpty() ? len : static_cast<int>(std::min<qsizetype>(tokens.size(), len));
  Heatmap map;
  map.rows = shown;
  map.cols = shown;
  map.values.assign(static_cast<std::size_t>(shown) * shown, 0.0);
  const int first = head < 0 ? 0 : head;
  const int last = head < 0 ? shape->heads - 1 : head;
  for (int h = first; h <= last; ++h) {
    const float* values = all.data() + (static_cast<std::size_t>(layer) * shape->heads + h) * len * len;
    for (int q = 0; q < shown; ++q) {
      for (int k = 0; k < shown; ++k) {
        map.values[static_cast<std::size_t>(q) * shown + k] += values[static_cast<std::size_t>(q) * len + k];
      }
    }
  }
  const double count = last - first + 1;
  for (double& v : map.values) {
    v /= count;
  }
  tokens = tokens.mid(0, shown);
  map.rowLabels = tokens;
  map.colLabels = tokens;
  map.rowTitle = tr("query");
  map.colTitle = tr("key");
  map.valueTitle = tr("attention");
  map.range = std::make_pair(0.0, 1.0);
  plot.setTitle(QStringLiteral("%1, layer %2, %3")
                    .arg(model)
                    .arg(layer)
                    .arg(head < 0 ? tr("mean over heads") : tr("head %1").arg(head)));
  plot.setHeatmap(map);
  plot.setFigureName(attentionName(task, model, example, layer, head));
}

namespace {

/// The models of `task` in the order the runs list them (teacher first), each once.
QStringList modelsOfRuns(const std::vector<const RunDocument*>& runs, const QString& task) {
  QStringList models;
  for (const RunDocument* run : runs) {
    if (const core::TaskSummary* t = run->task(task)) {
      for (const core::ModelSummary& m : t->models) {
        const QString name = QString::fromStdString(m.name);
        if (!models.contains(name)) {
          models << name;
        }
      }
    }
  }
  return models;
}

} // namespace

QString compareAccuracyName(const QString& task) {
  return join({QStringLiteral("compare"), QStringLiteral("accuracy"), figureSegment(task)});
}

void buildCompareAccuracy(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QStringList& labels,
                          const QString& task) {
  plot.clear();
  const QStringList models = modelsOfRuns(runs, task);
  plot.setTitle(tr("Eval accuracy by model, %1").arg(task));
  plot.setAxisLabels(tr("model"), tr("accuracy (95% Wilson interval)"));
  // Runs side by side within each model's slot (dodged), so equal accuracies stay visible.
  const double slot = std::min(0.6, 0.15 * static_cast<double>(runs.size() - 1));
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const double offset = runs.size() < 2 ? 0.0 : slot * (static_cast<double>(r) / (runs.size() - 1) - 0.5);
    QVector<double> x;
    QVector<double> y;
    QVector<double> lo;
    QVector<double> hi;
    for (int i = 0; i < models.size(); ++i) {
      const core::ModelSummary* m = modelOf(*runs[r], task, models[i]);
      if (m != nullptr && m->evalAccuracy >= 0.0) {
        x << i + offset;
        y << m->evalAccuracy;
        appendWilson(m->evalAccuracy, evalExamplesOf(*runs[r], task), lo, hi);
      }
    }
    if (!x.isEmpty()) {
      const int line =
          plot.addScatter(labels.value(static_cast<int>(r)), x, y, static_cast<int>(r), /*markerPoints=*/5.0);
      plot.setErrorBars(line, lo, hi);
    }
  }
  plot.setXTickLabels(models);
  if (plot.lineCount() == 0) {
    plot.setMessage(tr("no evaluated model of %1 in these runs").arg(task));
    return;
  }
  plot.rescale();
  plot.setFigureName(compareAccuracyName(task));
}

namespace {

/// One line per run that has `model` in `task`, from `series` (x and y of that run; no line
/// when x is empty); then the empty message, or the rescale and the figure's name.
void plotRunLines(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QStringList& labels,
                  const QString& task, const QString& model,
                  const std::function<void(const RunDocument&, QVector<double>&, QVector<double>&,
                                           QVector<double>&, QVector<double>&)>& series,
                  const QString& emptyMessage, const QString& figureName) {
  for (std::size_t r = 0; r < runs.size(); ++r) {
    if (modelOf(*runs[r], task, model) == nullptr) {
      continue;
    }
    QVector<double> x;
    QVector<double> y;
    QVector<double> lo; // error bars, when the series gives them
    QVector<double> hi;
    series(*runs[r], x, y, lo, hi);
    if (!x.isEmpty()) {
      const int line = plot.addLine(labels.value(static_cast<int>(r)), x, y, static_cast<int>(r));
      if (lo.size() == x.size()) {
        plot.setErrorBars(line, lo, hi);
      }
    }
  }
  if (plot.lineCount() == 0) {
    plot.setMessage(emptyMessage);
    return;
  }
  plot.rescale();
  plot.setFigureName(figureName);
}

} // namespace

QString compareEvalCurveName(const QString& task, const QString& model) {
  return join({QStringLiteral("compare"), QStringLiteral("eval_curve"), figureSegment(task), figureSegment(model)});
}

void buildCompareEvalCurve(PlotWidget& plot, const std::vector<const RunDocument*>& runs,
                           const QStringList& labels, const QString& task, const QString& model) {
  plot.clear();
  plot.setTitle(tr("Eval accuracy of %1, %2").arg(model, task));
  plot.setAxisLabels(tr("epoch"), tr("accuracy (95% Wilson interval)"));
  plotRunLines(
      plot, runs, labels, task, model,
      [&](const RunDocument& run, QVector<double>& x, QVector<double>& y, QVector<double>& lo, QVector<double>& hi) {
        const core::EvalCurve curve = run.reader().evalCurve(task.toStdString(), model.toStdString());
        const std::uint64_t n = evalExamplesOf(run, task);
        for (std::size_t i = 0; i < curve.epoch.size(); ++i) {
          x << static_cast<double>(curve.epoch[i]);
          y << curve.accuracy[i];
          appendWilson(curve.accuracy[i], n, lo, hi);
        }
      },
      tr("no eval curve of %1 in these runs").arg(model), compareEvalCurveName(task, model));
}

QString compareLossName(const QString& task, const QString& model) {
  return join({QStringLiteral("compare"), QStringLiteral("loss"), figureSegment(task), figureSegment(model)});
}

void buildCompareLoss(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QStringList& labels,
                      const QString& task, const QString& model) {
  plot.clear();
  plot.setTitle(tr("Training loss of %1, %2").arg(model, task));
  plot.setAxisLabels(tr("step"), tr("loss (nats)"));
  plotRunLines(
      plot, runs, labels, task, model,
      [&](const RunDocument& run, QVector<double>& x, QVector<double>& y, QVector<double>&, QVector<double>&) {
        const core::TrainLog log = run.reader().trainLog(task.toStdString(), model.toStdString());
        for (std::size_t i = 0; i < log.steps.size() && i < log.loss.size(); ++i) {
          if (!std::isnan(log.loss[i])) {
            x << static_cast<double>(log.steps[i]);
            y << log.loss[i];
          }
        }
      },
      tr("no training log of %1 in these runs").arg(model), compareLossName(task, model));
}

namespace {

/// The mean over the replicates as a line with its t band, and the empty message otherwise.
void plotReplicateBand(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task,
                       const QString& model, const QString& title, const QString& xLabel, const QString& yLabel,
                       const std::function<void(const RunDocument&, std::vector<double>&, std::vector<double>&)>& series,
                       const QString& emptyMessage, const QString& figureName) {
  plot.clear();
  plot.setTitle(title);
  plot.setAxisLabels(xLabel, yLabel);
  std::vector<std::vector<double>> xs;
  std::vector<std::vector<double>> ys;
  for (const RunDocument* run : runs) {
    if (modelOf(*run, task, model) == nullptr) {
      continue;
    }
    std::vector<double> x;
    std::vector<double> y;
    series(*run, x, y);
    if (!x.empty()) {
      xs.push_back(std::move(x));
      ys.push_back(std::move(y));
    }
  }
  if (xs.size() < 2) {
    plot.setMessage(emptyMessage);
    return;
  }
  const core::ReplicateBand band = core::replicateBand(xs, ys);
  const auto vec = [](const std::vector<double>& v) { return QVector<double>(v.begin(), v.end()); };
  const int line = plot.addLine(tr("mean over %1 replicates").arg(xs.size()), vec(band.x), vec(band.mean), 0);
  plot.setBand(line, vec(band.lo), vec(band.hi));
  plot.rescale();
  plot.setFigureName(figureName);
}

} // namespace

QString replicateAccuracyName(const QString& task) {
  return join({QStringLiteral("compare"), QStringLiteral("replicates"), QStringLiteral("accuracy"), figureSegment(task)});
}

void buildReplicateAccuracy(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task) {
  plot.clear();
  const QStringList models = modelsOfRuns(runs, task);
  plot.setTitle(tr("Eval accuracy by model over %1 replicates, %2").arg(runs.size()).arg(task));
  plot.setAxisLabels(tr("model"), tr("accuracy (mean, 95% t CI)"));
  QVector<double> x;
  QVector<double> mean;
  QVector<double> lo;
  QVector<double> hi;
  QVector<double> eachX;
  QVector<double> eachY;
  for (int i = 0; i < models.size(); ++i) {
    std::vector<double> values;
    for (const RunDocument* run : runs) {
      const core::ModelSummary* m = modelOf(*run, task, models[i]);
      if (m != nullptr && m->evalAccuracy >= 0.0) {
        values.push_back(m->evalAccuracy);
      }
    }
    if (values.empty()) {
      continue;
    }
    const core::ReplicateBand one = core::replicateBand({std::vector<double>(values.size(), 0.0)}, {values});
    x << i;
    mean << one.mean[0];
    lo << one.lo[0];
    hi << one.hi[0];
    for (std::size_t r = 0; r < values.size(); ++r) {
      // Each replicate a little to the right of the mean, spread so equal values stay visible.
      eachX << i + 0.12 + 0.16 * static_cast<double>(r) / static_cast<double>(std::max<std::size_t>(1, values.size() - 1));
      eachY << values[r];
    }
  }
  if (x.isEmpty()) {
    plot.setMessage(tr("no evaluated model of %1 in these runs").arg(task));
    return;
  }
  const int line = plot.addScatter(tr("mean over %1 replicates").arg(runs.size()), x, mean, 0, /*markerPoints=*/6.0);
  plot.setErrorBars(line, lo, hi);
  plot.addScatter(tr("each replicate"), eachX, eachY, 1, /*markerPoints=*/3.0);
  plot.setXTickLabels(models);
  plot.rescale();
  plot.setXRange(-0.5, models.size() - 0.5);
  plot.setFigureName(replicateAccuracyName(task));
}

QString replicateEvalCurveName(const QString& task, const QString& model) {
  return join({QStringLiteral("compare"), QStringLiteral("replicates"), QStringLiteral("eval_curve"),
               figureSegment(task), figureSegment(model)});
}

void buildReplicateEvalCurve(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task,
                             const QString& model) {
  plotReplicateBand(
      plot, runs, task, model, tr("Eval accuracy of %1 over %2 replicates, %3").arg(model).arg(runs.size()).arg(task),
      tr("epoch"), tr("accuracy (mean; band: 95% t CI)"),
      [&](const RunDocument& run, std::vector<double>& x, std::vector<double>& y) {
        const core::EvalCurve curve = run.reader().evalCurve(task.toStdString(), model.toStdString());
        for (std::size_t i = 0; i < curve.epoch.size(); ++i) {
          x.push_back(static_cast<double>(curve.epoch[i]));
          y.push_back(curve.accuracy[i]);
        }
      },
      tr("fewer than 2 replicates have an eval curve of %1").arg(model), replicateEvalCurveName(task, model));
}

QString replicateLossName(const QString& task, const QString& model) {
  return join({QStringLiteral("compare"), QStringLiteral("replicates"), QStringLiteral("loss"), figureSegment(task),
               figureSegment(model)});
}

void buildReplicateLoss(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task,
                        const QString& model) {
  plotReplicateBand(
      plot, runs, task, model, tr("Training loss of %1 over %2 replicates, %3").arg(model).arg(runs.size()).arg(task),
      tr("step"), tr("loss (nats; mean, band: 95% t CI)"),
      [&](const RunDocument& run, std::vector<double>& x, std::vector<double>& y) {
        const core::TrainLog log = run.reader().trainLog(task.toStdString(), model.toStdString());
        for (std::size_t i = 0; i < log.steps.size() && i < log.loss.size(); ++i) {
          x.push_back(static_cast<double>(log.steps[i]));
          y.push_back(log.loss[i]); // NaN (a skipped step): left out of that step's mean
        }
      },
      tr("fewer than 2 replicates have a training log of %1").arg(model), replicateLossName(task, model));
}

} // namespace figures

} // namespace kdscope::widgets
