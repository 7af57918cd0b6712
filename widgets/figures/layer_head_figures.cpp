// Figures of the layer and head numbers with their 95% intervals (issue #14; docs/figures.md):
// CKA at matched depth, head importance and single-head ablation, exactly as `kdscope analyze`
// wrote them (read through core::AnalysisResults, never recomputed). Declared in
// figure_builders.h; their registry entries in layer_head_figures.h. Their CSVs carry the
// interval's ends (y_lo, y_hi), as the task figures' do (interval_figures.cpp). GUI thread.
#include "widgets/figures/layer_head_figures.h"

#include <QObject>

#include <cmath>
#include <optional>
#include <string>

#include "core/analysis/interval_text.h"
#include "core/record/run_layout.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/analysis_view.h"

namespace kdscope::widgets {

namespace {

namespace an = core::analysis;

QString tr(const char* text) {
  return QObject::tr(text);
}
std::string str(const QString& text) {
  return text.toStdString();
}
QString qstr(const std::string& text) {
  return QString::fromStdString(text);
}

QString join(std::initializer_list<QString> parts) {
  QStringList segments;
  for (const QString& part : parts) {
    segments << part;
  }
  return segments.join(QLatin1Char('.'));
}

an::Interval intervalOf(double estimate, double lo, double hi) {
  an::Interval i;
  i.estimate = estimate;
  i.lo = lo;
  i.hi = hi;
  return i;
}

/// One category per entry: the points of a series with their interval's ends.
QString layerLabel(std::int64_t index) {
  return index == 0 ? tr("emb") : QString::number(index);
}

} // namespace

namespace figures {

QStringList headLabels(std::size_t layers, std::size_t heads) {
  QStringList labels;
  for (std::size_t l = 0; l < layers; ++l) {
    for (std::size_t h = 0; h < heads; ++h) {
      labels << QStringLiteral("L%1H%2").arg(l + 1).arg(h + 1);
    }
  }
  return labels;
}

QString ckaMatchedName(const QString& task, const QString& student) {
  return join(
      {QStringLiteral("layers"), QStringLiteral("cka_matched"), figureSegment(task), figureSegment(student)});
}

void buildCkaMatched(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                     const QString& student) {
  plot.clear();
  if (student.isEmpty()) {
    plot.setMessage(tr("the task has no student"));
    return;
  }
  plot.setTitle(tr("Linear CKA at matched depth with 95% intervals, %1 vs %2").arg(student, teacher));
  plot.setAxisLabels(tr("%1 layer").arg(student), tr("linear CKA"));
  const auto matched = run.results().matchedCka(str(task), str(student));
  if (!matched) {
    plot.setMessage(tr("no CKA at matched depth yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  IntervalPoints points;
  QStringList labels;
  for (std::size_t i = 0; i < matched->cka.size(); ++i) {
    labels << layerLabel(static_cast<std::int64_t>(i));
    if (matched->teacherLayer[i] >= 0) {
      points.add(i, matched->cka[i]);
    }
  }
  if (points.x.isEmpty()) {
    plot.setMessage(tr("no layer of %1 is matched to a layer of %2").arg(student, teacher));
    return;
  }
  addIntervalPoints(plot, tr("linear CKA, 95% interval"), points, 0);
  plot.setXTickLabels(labels);
  plot.rescale();
  plot.setFigureName(ckaMatchedName(task, student));
}

QString headImportanceIntervalsName(const QString& task, const QString& model) {
  return join({QStringLiteral("heads"), QStringLiteral("importance_intervals"), figureSegment(task),
               figureSegment(model)});
}

void buildHeadImportanceIntervals(PlotWidget& plot, const RunDocument& run, const QString& task,
                                  const QString& model) {
  plot.clear();
  if (model.isEmpty()) {
    plot.setMessage(tr("no model"));
    return;
  }
  plot.setTitle(tr("Head importance with 95% intervals, %1").arg(model));
  plot.setAxisLabels(tr("head (layer, head)"), tr("importance (normalised per layer)"));
  const auto importance = run.results().headImportance(str(task), str(model));
  const auto band = run.results().headImportanceInterval(str(task), str(model));
  if (!importance || !band) {
    plot.setMessage(tr("no head importance intervals yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  if (band->first.values.size() != importance->values.size() ||
      band->second.values.size() != importance->values.size()) {
    plot.setMessage(tr("head_importance and its interval differ in shape in %1").arg(run.path()));
    return;
  }
  IntervalPoints points;
  for (std::size_t c = 0; c < importance->values.size(); ++c) {
    points.add(c, intervalOf(importance->values[c], band->first.values[c], band->second.values[c]));
  }
  addIntervalPoints(plot, tr("importance, 95% interval"), points, 0);
  plot.setXTickLabels(headLabels(importance->rows, importance->cols));
  plot.rescale();
  plot.setFigureName(headImportanceIntervalsName(task, model));
}

QString headAblationName(const QString& task, const QString& model) {
  return join(
      {QStringLiteral("heads"), QStringLiteral("ablation"), figureSegment(task), figureSegment(model)});
}

void buildHeadAblation(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model) {
  plot.clear();
  if (model.isEmpty()) {
    plot.setMessage(tr("no model"));
    return;
  }
  plot.setTitle(tr("Accuracy drop when one head is ablated, with 95% intervals, %1").arg(model));
  plot.setAxisLabels(tr("ablated head (layer, head)"), tr("accuracy drop (intact - ablated)"));
  const auto ablation = run.results().headAblation(str(task), str(model));
  if (!ablation || !ablation->accuracyDrop || !ablation->accuracyDropLo || !ablation->accuracyDropHi) {
    plot.setMessage(tr("no ablation intervals yet: %1").arg(noAnalysisMessage(run)));
    return;
  }
  const an::Matrix& drop = *ablation->accuracyDrop;
  // Drops whose interval holds 0 (or has no ends) go to their own series, named as such.
  IntervalPoints detectable;
  IntervalPoints notDetectable;
  for (std::size_t c = 0; c < drop.values.size(); ++c) {
    const an::Interval i =
        intervalOf(drop.values[c], ablation->accuracyDropLo->values[c], ablation->accuracyDropHi->values[c]);
    (an::detectable(i) ? detectable : notDetectable).add(c, i);
  }
  const QString name = tr("accuracy drop");
  addIntervalPoints(plot, name, detectable, 1);
  addIntervalPoints(plot, tr("%1 (%2)").arg(name, noDetectableDifference()), notDetectable, 2);
  plot.addReferenceLine(0.0);
  plot.setXTickLabels(headLabels(drop.rows, drop.cols));
  plot.rescale();
  plot.setFigureName(headAblationName(task, model));
}

} // namespace figures

namespace {

const QString kFromAnalyze = fromAnalyzeText();

QString entryPath(const QString& task, const QString& who, const char* entry) {
  return qstr(core::layout::analysisEntry(str(task), str(who), entry));
}

FigureSpec spec(const RunDocument& run, const QString& name, const QString& view, const QString& caption,
                const QStringList& objects, const QString& analysis, std::function<void(PlotWidget&)> build) {
  return runFigureSpec(run, name, view, caption, objects, analysis, std::move(build));
}

QString examplesOf(const RunDocument& run, const QString& task) {
  const core::TaskSummary* t = run.task(task);
  return t == nullptr ? tr("the") : tr("the %1").arg(t->evalExamples);
}

QString resamplesText(int resamples) {
  return resamples > 0 ? tr(", B = %1").arg(resamples) : QString();
}

QStringList modelsOf(const RunDocument& run, const QString& task) {
  QStringList models;
  if (!run.teacherOf(task).isEmpty()) {
    models << run.teacherOf(task);
  }
  models << run.studentsOf(task);
  return models;
}

} // namespace

void appendLayerIntervalFigures(const RunDocument& run, std::vector<FigureSpec>& out) {
  namespace entry = core::layout::entry;
  const RunDocument* doc = &run;
  for (const QString& task : run.taskNames()) {
    const QString teacher = run.teacherOf(task);
    for (const QString& student : run.studentsOf(task)) {
      if (!run.hasResult(task, student, QString::fromLatin1(entry::kCkaMatched))) {
        continue;
      }
      QString caption =
          tr("Linear CKA of each layer of student %1 with the layer of %2 matched to it at the same "
             "depth, task %3, with 95% intervals (the CKA at matched depth in the file could not be "
             "read: building the figure says why).")
              .arg(student, teacher, task);
      try {
        if (const auto matched = run.results().matchedCka(str(task), str(student))) {
          QStringList pairs;
          for (std::size_t i = 0; i < matched->cka.size(); ++i) {
            if (matched->teacherLayer[i] >= 0) {
              pairs << QStringLiteral("%1~%2").arg(layerLabel(static_cast<std::int64_t>(i)),
                                                   layerLabel(matched->teacherLayer[i]));
            }
          }
          caption =
              tr("Linear CKA of each layer of student %1 (x; \"emb\" is the embedding output) with the layer "
                 "of %2 matched to it at the same depth (%3 layer map; student~teacher: %4), pooled hidden "
                 "states of the eval split of task %5. Error bars: the 95% percentile bootstrap interval "
                 "over "
                 "%6 eval examples%7 (each resample recomputes the CKA of the resampled rows).")
                  .arg(student, teacher,
                       matched->map.empty() ? tr("unrecorded") : QString::fromStdString(matched->map),
                       pairs.join(QStringLiteral(", ")), task, examplesOf(run, task),
                       resamplesText(matched->cka.empty() ? 0 : matched->cka.front().resamples));
        } else {
          continue; // not all four datasets: the file predates them
        }
      } catch (const std::exception&) {
        // A damaged group: listed all the same; building the figure reports the error.
      }
      out.push_back(
          spec(run, figures::ckaMatchedName(task, student), QStringLiteral("layers"), caption,
               {entryPath(task, student, entry::kCkaMatched), entryPath(task, student, entry::kCkaMatchedLo),
                entryPath(task, student, entry::kCkaMatchedHi),
                entryPath(task, student, entry::kCkaMatchedTeacherLayer)},
               kFromAnalyze + tr(", linear CKA at matched depth with its bootstrap interval"),
               [doc, task, teacher, student](PlotWidget& plot) {
                 figures::buildCkaMatched(plot, *doc, task, teacher, student);
               }));
    }
  }
}

void appendHeadIntervalFigures(const RunDocument& run, std::vector<FigureSpec>& out) {
  namespace entry = core::layout::entry;
  const RunDocument* doc = &run;
  for (const QString& task : run.taskNames()) {
    const QStringList models = modelsOf(run, task);
    for (const QString& model : models) {
      if (!run.hasResult(task, model, QString::fromLatin1(entry::kHeadImportance)) ||
          !run.hasResult(task, model, QString::fromLatin1(entry::kHeadImportanceLo)) ||
          !run.hasResult(task, model, QString::fromLatin1(entry::kHeadImportanceHi))) {
        continue;
      }
      int resamples = 0;
      try {
        resamples = run.results().headImportanceResamples(str(task), str(model));
      } catch (const std::exception&) {
        // Said without B; building the figure reports a damaged file.
      }
      out.push_back(spec(
          run, figures::headImportanceIntervalsName(task, model), QStringLiteral("heads"),
          tr("Importance of each attention head of %1 on task %2 (Michel et al. 2019: the mean over eval "
             "examples of "
             "|dL/d gate| of the head, normalised per layer by its L2 norm), heads in layer-major order "
             "(L1H2 is "
             "layer 1, head 2). Error bars: the 95% percentile bootstrap interval over %3 eval examples%4 "
             "(each "
             "resample averages the resampled examples' gradients and normalises as the estimate does).")
              .arg(model, task, examplesOf(run, task), resamplesText(resamples)),
          {entryPath(task, model, entry::kHeadImportance), entryPath(task, model, entry::kHeadImportanceLo),
           entryPath(task, model, entry::kHeadImportanceHi)},
          kFromAnalyze + tr(", head importance with its bootstrap interval"),
          [doc, task, model](PlotWidget& plot) {
            figures::buildHeadImportanceIntervals(plot, *doc, task, model);
          }));
    }
    for (const QString& model : models) {
      if (!run.hasResult(task, model, QString::fromLatin1(entry::kHeadAblationAccuracyDrop)) ||
          !run.hasResult(task, model, QString::fromLatin1(entry::kHeadAblationAccuracyDropLo)) ||
          !run.hasResult(task, model, QString::fromLatin1(entry::kHeadAblationAccuracyDropHi))) {
        continue;
      }
      int resamples = 0;
      try {
        if (const auto ablation = run.results().headAblation(str(task), str(model))) {
          resamples = ablation->resamples;
        }
      } catch (const std::exception&) {
        // Said without B; building the figure reports a damaged file.
      }
      out.push_back(spec(
          run, figures::headAblationName(task, model), QStringLiteral("heads"),
          tr("Accuracy drop of %1 on task %2 when one attention head is gated to 0 alone (intact accuracy "
             "minus the "
             "accuracy with that head ablated, on the same eval examples), heads in layer-major order (L1H2 "
             "is "
             "layer 1, head 2). Error bars: the 95% paired percentile bootstrap interval over %3 eval "
             "examples%4 "
             "(each resample draws the examples once for every head). A drop whose interval holds 0 is drawn "
             "as "
             "\"no detectable difference\"; a dashed line at 0.")
              .arg(model, task, examplesOf(run, task), resamplesText(resamples)),
          {entryPath(task, model, entry::kHeadAblationAccuracyDrop),
           entryPath(task, model, entry::kHeadAblationAccuracyDropLo),
           entryPath(task, model, entry::kHeadAblationAccuracyDropHi)},
          kFromAnalyze + tr(", single-head ablation with its paired bootstrap interval"),
          [doc, task, model](PlotWidget& plot) { figures::buildHeadAblation(plot, *doc, task, model); }));
    }
  }
}

} // namespace kdscope::widgets
