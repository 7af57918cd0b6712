#pragma once
/// Figure builders: each fills a PlotWidget with one figure of a run, exactly as the views
/// show it and as `kdscope export` draws it (the views call these; the figure registry,
/// figure_registry.h, wraps them with a name, a caption and the HDF5 objects they read).
/// On success a builder sets the plot's figure name; when the run lacks the data it leaves
/// a message on the plot (and no figure name). They may throw core::InputError for a bad
/// file. GUI (main) thread.

#include <QString>
#include <QVector>
#include <QStringList>

#include <cstddef>
#include <vector>

#include "core/analysis/stats.h"

class QObject;

namespace kdscope::widgets {

class PlotWidget;
class RunDocument;

/// The figure-name segment for a task, model or term: characters other than letters,
/// digits, '-' and '_' become '_' (names are "view.metric.task[.model]", files NAME.pdf).
QString figureSegment(const QString& text);

/// Which training loss the Overview shows: the total objective, the total and every term,
/// or one (unweighted) term.
struct LossSelection {
  enum class Kind { Total, AllTerms, Term };
  Kind kind = Kind::Total;
  QString term;
};

/// Where the numbers of a figure come from: the run file and its HDF5 objects.
struct FigureProvenance {
  QStringList objects; ///< HDF5 object paths ("/tasks/t/analysis/kd/cka"); "*" stands for each model
  QString analysis;    ///< which computation made the numbers, in words
};

namespace figures {

/// Points with 95% interval ends, one per category (x = its index): the series the interval
/// figures draw as error bars (interval_figures.cpp, layer_head_figures.cpp).
struct IntervalPoints {
  QVector<double> x;
  QVector<double> y;
  QVector<double> lo;
  QVector<double> hi;
  void add(double at, const core::analysis::Interval& i) {
    x << at;
    y << i.estimate;
    lo << i.lo;
    hi << i.hi;
  }
};
/// A scatter of `points` named `name` in colour `color` with their intervals as error bars;
/// nothing when there are no points.
void addIntervalPoints(PlotWidget& plot, const QString& name, const IntervalPoints& points, int color);

QString lossName(const QString& task, const LossSelection& selection);
void buildLoss(PlotWidget& plot, const RunDocument& run, const QString& task, const LossSelection& selection);

QString accuracyName(const QString& task);
void buildEvalAccuracy(PlotWidget& plot, const RunDocument& run, const QString& task);

QString ckaName(const QString& task, const QString& student);
void buildCka(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
              const QString& student);

QString probeName(const QString& task, const QString& student);
void buildProbe(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                const QString& student);

enum class HeadMetric { Importance, Entropy, Divergence };
QString headMetricKey(HeadMetric metric);
QString headsName(const QString& task, const QString& model, HeadMetric metric);
/// `model` is the teacher or a student; Divergence needs a student (and shows a note for
/// the teacher).
void buildHeadGrid(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                   const QString& model, HeadMetric metric);

QString recallName(const QString& task, const QString& student);
/// Eval examples up to which the recall figure bootstraps each class's recall on the GUI
/// thread (B = 2000 per class; above it the figure says it has no interval).
inline constexpr std::size_t kRecallIntervalExamples = 50000;
void buildRecall(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                 const QString& student);

/// Intervals and tests of the "task" analysis (interval_figures.cpp): each model's accuracy
/// with its 95% error bar; each student's gap to the teacher (gaps whose interval holds 0 in
/// a series of their own, "no detectable difference"); the rank-biserial r of each factor
/// of a student's lost examples against the rest. A message when not analysed.
QString taskAccuracyName(const QString& task);
void buildTaskAccuracy(PlotWidget& plot, const RunDocument& run, const QString& task);
QString taskGapName(const QString& task);
void buildTaskGap(PlotWidget& plot, const RunDocument& run, const QString& task);
QString lossPatternName(const QString& task, const QString& student);
void buildLossPattern(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& student);

/// Layers and heads with their 95% intervals (layer_head_figures.cpp; the analysis's numbers,
/// never recomputed): the linear CKA of each student layer with its matched teacher layer
/// (x = student layer, "emb", 1..Ls; error bars = the bootstrap interval over eval examples);
/// each head's normalised importance with its bootstrap interval (x = heads in layer-major
/// order, "L1H1", "L1H2", ...); each head's accuracy drop when ablated alone with its paired
/// bootstrap interval (drops whose interval holds 0 in a series of their own, "no detectable
/// difference"). A message when not analysed.
QString ckaMatchedName(const QString& task, const QString& student);
void buildCkaMatched(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                     const QString& student);
QString headImportanceIntervalsName(const QString& task, const QString& model);
void buildHeadImportanceIntervals(PlotWidget& plot, const RunDocument& run, const QString& task,
                                  const QString& model);
QString headAblationName(const QString& task, const QString& model);
void buildHeadAblation(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model);
/// The head labels of a [layers, heads] grid in layer-major order: "L1H1", "L1H2", ...
QStringList headLabels(std::size_t layers, std::size_t heads);

enum class SimilarityKind { ClassifierCosine, MeanProbability };
QString similarityName(const QString& task, const QString& model, SimilarityKind kind);
void buildSimilarity(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model,
                     SimilarityKind kind);

QString gradRescaleName(const QString& task, const QString& student);
void buildGradRescale(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& teacher,
                      const QString& student);

/// head < 0: the mean over heads.
QString attentionName(const QString& task, const QString& model, int example, int layer, int head);
void buildAttention(PlotWidget& plot, const RunDocument& run, const QString& task, const QString& model,
                    int example, int layer, int head);

/// Comparisons of several runs (labels name the runs in legends and ticks).
QString compareAccuracyName(const QString& task);
void buildCompareAccuracy(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QStringList& labels,
                          const QString& task);
QString compareEvalCurveName(const QString& task, const QString& model);
void buildCompareEvalCurve(PlotWidget& plot, const std::vector<const RunDocument*>& runs,
                           const QStringList& labels, const QString& task, const QString& model);
/// Runs that are replicates of one job (core::replicateGroup): each model's accuracy as the
/// mean over the replicates with its 95% Student-t interval (error bars), beside each
/// replicate's own value; each model's eval curve and training loss as the mean over the
/// replicates at each epoch or logged step with the t interval as a band. The CSVs carry the
/// ends as y_lo, y_hi.
QString replicateAccuracyName(const QString& task);
void buildReplicateAccuracy(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task);
QString replicateEvalCurveName(const QString& task, const QString& model);
void buildReplicateEvalCurve(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task,
                             const QString& model);
QString replicateLossName(const QString& task, const QString& model);
void buildReplicateLoss(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QString& task,
                        const QString& model);

QString compareLossName(const QString& task, const QString& model);
void buildCompareLoss(PlotWidget& plot, const std::vector<const RunDocument*>& runs, const QStringList& labels,
                      const QString& task, const QString& model);

} // namespace figures

} // namespace kdscope::widgets
