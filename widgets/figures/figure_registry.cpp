#include "widgets/figures/figure_registry.h"

#include <QDir>
#include <QFileInfo>
#include <QObject>
#include <QRegularExpression>

#include <map>
#include <optional>
#include <set>

#include "core/record/run_layout.h"
#include "core/study/replicate_group.h"
#include "widgets/figures/layer_head_figures.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"

namespace kdscope::widgets {

namespace {

std::vector<FigureProvider>& providers() {
  static std::vector<FigureProvider> list;
  return list;
}

QString tr(const char* text) { return QObject::tr(text); }

QString listNames(const QStringList& names) {
  if (names.size() <= 1) {
    return names.join(QString());
  }
  return names.mid(0, names.size() - 1).join(QStringLiteral(", ")) + QStringLiteral(" and ") + names.last();
}

// A figure's sources: run-file paths, built by the run file's layout.
std::string str(const QString& text) { return text.toStdString(); }
QString qstr(const std::string& text) { return QString::fromStdString(text); }
QString analysisPath(const QString& task, const QString& who, const QString& what) {
  return qstr(core::layout::analysisEntry(str(task), str(who), str(what)));
}

// What one task of a run holds, read once for the enumeration.
struct TaskFacts {
  QString name;
  QString teacher;
  QStringList students;
  QStringList models; ///< teacher first
  QStringList trained; ///< models with a training log
  QStringList evaluatedCurves; ///< models with an eval curve
  QStringList terms; ///< loss terms of any model, sorted
  QStringList withLogits;
  QStringList withAttention;
  QStringList withClassifier;
};

TaskFacts factsOf(const RunDocument& run, const QString& task) {
  TaskFacts facts;
  facts.name = task;
  facts.teacher = run.teacherOf(task);
  facts.students = run.studentsOf(task);
  std::set<QString> terms;
  if (const core::TaskSummary* t = run.task(task)) {
    for (const core::ModelSummary& m : t->models) {
      const QString model = QString::fromStdString(m.name);
      facts.models << model;
      if (run.hasTrainLog(task, model)) {
        const core::TrainLog log = run.reader().trainLog(t->name, m.name);
        if (!log.steps.empty()) {
          facts.trained << model;
        }
        for (const auto& [term, values] : log.terms) {
          terms.insert(QString::fromStdString(term));
        }
      }
      if (run.hasEvalCurve(task, model) && !run.reader().evalCurve(t->name, m.name).epoch.empty()) {
        facts.evaluatedCurves << model;
      }
      if (!run.logits(task, model).empty()) {
        facts.withLogits << model;
      }
      if (run.attentionShape(task, model)) {
        facts.withAttention << model;
      }
      if (run.hasClassifier(task, model)) {
        facts.withClassifier << model;
      }
    }
  }
  for (const QString& term : terms) {
    facts.terms << term;
  }
  return facts;
}

FigureSpec spec(const RunDocument& run, const QString& name, const QString& view, const QString& caption,
                const QStringList& objects, const QString& analysis, std::function<void(PlotWidget&)> build) {
  return runFigureSpec(run, name, view, caption, objects, analysis, std::move(build));
}

const QString kFromReader = QStringLiteral("read from the run file as recorded during training");
const QString kFromAnalyze = fromAnalyzeText();
const QString kFromLogits = QStringLiteral("computed by KDScope from eval/logits and eval/labels (core/analysis/metrics)");

FigureSpec attentionSpec(const RunDocument& run, const QString& task, const QString& model, int example, int layer,
                         int head) {
  const RunDocument* doc = &run;
  QString text = run.exampleText(task, example).simplified();
  if (text.size() > 100) {
    text = text.left(97) + QStringLiteral("...");
  }
  const QStringList classes = run.classNames(task);
  const auto& labels = run.labels(task);
  const QString label = example >= 0 && static_cast<std::size_t>(example) < labels.size()
                            ? classes.value(static_cast<int>(labels[static_cast<std::size_t>(example)]))
                            : QString();
  const QString caption =
      tr("Attention of %1, layer %2, %3, on eval example %4 of task %5 (label %6%7): each row is a query token's "
         "attention distribution over the key tokens (columns), padding left out.")
          .arg(model)
          .arg(layer)
          .arg(head < 0 ? tr("averaged over its heads") : tr("head %1").arg(head))
          .arg(example)
          .arg(task, label, text.isEmpty() ? QString() : QStringLiteral(", \"%1\"").arg(text));
  return spec(run, figures::attentionName(task, model, example, layer, head), QStringLiteral("heads"), caption,
              run.hasModelTokens(task, model)
                  ? QStringList{qstr(core::layout::evalAttention(str(task), str(model))),
                                qstr(core::layout::evalModelTokens(str(task), str(model))),
                                qstr(core::layout::modelVocab(str(task), str(model)))}
                  : QStringList{qstr(core::layout::evalAttention(str(task), str(model))),
                                qstr(core::layout::evalTokens(str(task)))},
              kFromReader, [doc, task, model, example, layer, head](PlotWidget& plot) {
                figures::buildAttention(plot, *doc, task, model, example, layer, head);
              });
}

// Glob with * and ? over the whole name ('*' also crosses the '/' of "LABEL/name").
bool globMatch(const QString& pattern, const QString& name) {
  QString re;
  for (const QChar c : pattern) {
    re += c == QLatin1Char('*') ? QStringLiteral(".*")
          : c == QLatin1Char('?') ? QStringLiteral(".")
                                  : QRegularExpression::escape(QString(c));
  }
  return QRegularExpression(QRegularExpression::anchoredPattern(re)).match(name).hasMatch();
}

} // namespace

void registerFigureProvider(FigureProvider provider) { providers().push_back(std::move(provider)); }

FigureSpec contentFigure(const PlotWidget& plot) {
  const PlotContent content = plot.content();
  const QString base = !plot.objectName().isEmpty() ? plot.objectName()
                       : !content.title.isEmpty()   ? content.title
                                                    : QStringLiteral("plot");
  FigureSpec figure;
  figure.name = QStringLiteral("window.") + figureSegment(base);
  figure.view = QStringLiteral("window");
  figure.caption = tr("%1, as shown in the KDScope window (drawn again from the plot's own numbers, which the CSV "
                      "holds; not rebuilt from a run file).")
                       .arg(content.title.isEmpty() ? tr("A plot") : content.title);
  figure.provenance.analysis = tr("the numbers the plot in the window showed");
  figure.build = [content](PlotWidget& target) { target.setContent(content); };
  return figure;
}

FigureSpec runFigureSpec(const RunDocument& run, const QString& name, const QString& view, const QString& caption,
                         const QStringList& objects, const QString& analysis, std::function<void(PlotWidget&)> build) {
  FigureSpec s;
  s.name = name;
  s.view = view;
  s.caption = caption;
  s.runPaths = QStringList{canonicalRunPath(run)};
  s.provenance.objects = objects;
  s.provenance.analysis = analysis;
  s.build = std::move(build);
  return s;
}

QString fromAnalyzeText() { return QStringLiteral("written by `kdscope analyze` (core/analysis)"); }

QString canonicalRunPath(const RunDocument& run) {
  const QFileInfo info(run.path());
  const QString canonical = info.canonicalFilePath();
  return canonical.isEmpty() ? info.absoluteFilePath() : canonical;
}

std::vector<FigureSpec> runFigures(const RunDocument& run) {
  const RunDocument* doc = &run;
  std::vector<TaskFacts> tasks;
  for (const QString& task : run.taskNames()) {
    tasks.push_back(factsOf(run, task));
  }
  std::vector<FigureSpec> out;

  // Overview: training loss and eval accuracy.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    if (!t.trained.isEmpty()) {
      out.push_back(spec(run, figures::lossName(task, {}), QStringLiteral("overview"),
                         tr("Training loss on task %1: the total objective (nats; the weighted sum of the "
                            "objective's terms) at each logged optimizer step, for %2.")
                             .arg(task, listNames(t.trained)),
                         {qstr(core::layout::trainStep(str(task), str(QStringLiteral("*")))),
                          qstr(core::layout::trainLoss(str(task), str(QStringLiteral("*"))))},
                         kFromReader,
                         [doc, task](PlotWidget& plot) { figures::buildLoss(plot, *doc, task, {}); }));
      if (!t.terms.isEmpty()) {
        const LossSelection all{LossSelection::Kind::AllTerms, {}};
        out.push_back(spec(run, figures::lossName(task, all), QStringLiteral("overview"),
                           tr("Training loss on task %1, every model: the total objective (solid) and each "
                              "unweighted term of it (dashed, dotted; %2), nats per logged step.")
                               .arg(task, t.terms.join(QStringLiteral(", "))),
                           {qstr(core::layout::trainLoss(str(task), str(QStringLiteral("*")))),
                            qstr(core::layout::trainTerm(str(task), str(QStringLiteral("*")), "*"))},
                           kFromReader,
                           [doc, task, all](PlotWidget& plot) { figures::buildLoss(plot, *doc, task, all); }));
        for (const QString& term : t.terms) {
          const LossSelection one{LossSelection::Kind::Term, term};
          out.push_back(spec(run, figures::lossName(task, one), QStringLiteral("overview"),
                             tr("The unweighted loss term \"%1\" (nats) at each logged step on task %2, for the "
                                "models whose objective has it.")
                                 .arg(term, task),
                             {qstr(core::layout::trainTerm(str(task), "*", str(term)))},
                             kFromReader,
                             [doc, task, one](PlotWidget& plot) { figures::buildLoss(plot, *doc, task, one); }));
        }
      }
    }
    if (!t.evaluatedCurves.isEmpty()) {
      out.push_back(spec(run, figures::accuracyName(task), QStringLiteral("overview"),
                         tr("Eval accuracy (fraction of eval examples whose highest logit is the label) after each "
                            "epoch of training on task %1, for %2. Error bars: the 95% Wilson score interval of each "
                            "point as a proportion of the task's eval examples (the curve records the fraction only; "
                            "it says nothing about another seed).")
                             .arg(task, listNames(t.evaluatedCurves)),
                         {qstr(core::layout::evalCurveColumn(str(task), str(QStringLiteral("*")), "epoch")),
                          qstr(core::layout::evalCurveColumn(str(task), str(QStringLiteral("*")), "accuracy"))},
                         kFromReader, [doc, task](PlotWidget& plot) { figures::buildEvalAccuracy(plot, *doc, task); }));
    }
  }

  // Layers: CKA and probes.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    const QString teacher = t.teacher;
    for (const QString& student : t.students) {
      if (run.hasResult(task, student, QStringLiteral("cka"))) {
        out.push_back(spec(run, figures::ckaName(task, student), QStringLiteral("layers"),
                           tr("Linear CKA between the pooled hidden states of each layer of %1 (rows) and of "
                              "student %2 (columns) on the eval split of task %3; \"emb\" is the embedding "
                              "output. 1 means the same representation up to rotation and scale.")
                               .arg(teacher, student, task),
                           {analysisPath(task, student, QStringLiteral("cka"))}, kFromAnalyze + tr(", linear CKA"),
                           [doc, task, teacher, student](PlotWidget& plot) {
                             figures::buildCka(plot, *doc, task, teacher, student);
                           }));
      }
    }
    QStringList probeOwners = t.students;
    if (probeOwners.isEmpty()) {
      probeOwners << QString();
    }
    for (const QString& student : probeOwners) {
      QStringList objects;
      for (const QString& model : {teacher, student}) {
        if (!model.isEmpty() &&
            run.hasResult(task, model, QStringLiteral("probe_accuracy"))) {
          objects << analysisPath(task, model, QStringLiteral("probe_accuracy"));
        }
      }
      if (!objects.isEmpty()) {
        out.push_back(spec(run, figures::probeName(task, student), QStringLiteral("layers"),
                           tr("Accuracy of a linear probe on each layer's pooled hidden state against the "
                              "layer's relative depth (layer / number of layers; 0 is the embedding output), "
                              "%1, task %2. %3")
                               .arg(student.isEmpty() ? teacher : tr("%1 and student %2").arg(teacher, student), task,
                                    run.hasResult(task, student.isEmpty() ? teacher : student,
                                                  QString::fromLatin1(core::layout::entry::kProbeAccuracyLo))
                                        ? tr("Error bars: the 95% percentile bootstrap interval over the eval "
                                             "examples of each probe's held-out predictions (the probe fixed; "
                                             "y_lo, y_hi in the CSV).")
                                        : tr("No error bars: the run was analysed before the probes' intervals "
                                             "were recorded ('kdscope analyze --only probes' adds them).")),
                           objects, kFromAnalyze + tr(", linear probes"), [doc, task, teacher, student](PlotWidget& plot) {
                             figures::buildProbe(plot, *doc, task, teacher, student);
                           }));
      }
    }
  }

  appendLayerIntervalFigures(run, out); // layers.cka_matched (layer_head_figures.cpp)

  // Heads: importance, entropy, divergence, and one attention map per model.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    const QString teacher = t.teacher;
    for (const QString& model : t.models) {
      if (run.hasResult(task, model, QStringLiteral("head_importance"))) {
        out.push_back(spec(run, figures::headsName(task, model, figures::HeadMetric::Importance), QStringLiteral("heads"),
                           tr("Importance of each attention head of %1 on task %2 (Michel et al. 2019), "
                              "normalised per layer: layers (rows) by heads (columns).")
                               .arg(model, task),
                           {analysisPath(task, model, QStringLiteral("head_importance"))},
                           kFromAnalyze + tr(", head importance"), [doc, task, teacher, model](PlotWidget& plot) {
                             figures::buildHeadGrid(plot, *doc, task, teacher, model, figures::HeadMetric::Importance);
                           }));
      }
    }
    // Entropy and divergence: the analysis's numbers (analysis "attention"), listed once analysed.
    for (const QString& model : t.withAttention) {
      if (!run.hasResult(task, model, QStringLiteral("attention_entropy"))) {
        continue;
      }
      const auto shape = run.attentionShape(task, model);
      out.push_back(spec(run, figures::headsName(task, model, figures::HeadMetric::Entropy), QStringLiteral("heads"),
                         tr("Mean entropy (nats) of the attention distributions of each head of %1 (layers by "
                            "heads), over the %2 eval examples whose attention was kept and their non-padding "
                            "query positions, task %3. 0 is a head that attends to one token.")
                             .arg(model)
                             .arg(shape->examples)
                             .arg(task),
                         {analysisPath(task, model, QStringLiteral("attention_entropy"))},
                         kFromAnalyze + tr(", attention entropy"), [doc, task, teacher, model](PlotWidget& plot) {
                           figures::buildHeadGrid(plot, *doc, task, teacher, model, figures::HeadMetric::Entropy);
                         }));
    }
    for (const QString& student : t.students) {
      if (!run.hasResult(task, student, QStringLiteral("head_js_best_divergence"))) {
        continue;
      }
      out.push_back(spec(run, figures::headsName(task, student, figures::HeadMetric::Divergence),
                         QStringLiteral("heads"),
                         tr("For each head of the layer of %2 mapped to each layer of student %1 (student layers "
                            "by teacher heads): the smallest Jensen-Shannon divergence (nats) between its "
                            "attention and that of any head of the student layer, averaged over the kept eval "
                            "examples and their non-padding queries, task %3.")
                             .arg(student, teacher, task),
                         {analysisPath(task, student, QStringLiteral("head_js_best_divergence")),
                          analysisPath(task, student, QStringLiteral("head_js_best_match"))},
                         kFromAnalyze + tr(", head divergence"), [doc, task, teacher, student](PlotWidget& plot) {
                           figures::buildHeadGrid(plot, *doc, task, teacher, student, figures::HeadMetric::Divergence);
                         }));
    }
    for (const QString& model : t.withAttention) {
      const auto shape = run.attentionShape(task, model);
      if (shape->examples > 0 && shape->layers > 0) {
        out.push_back(attentionSpec(run, task, model, 0, shape->layers - 1, -1));
      }
    }
  }

  appendHeadIntervalFigures(run, out); // heads.importance_intervals, heads.ablation

  // Tasks: accuracy and gap with their 95% intervals (analysis "task").
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    const QString intervals = QString::fromLatin1(core::layout::entry::kIntervals);
    QStringList models;
    QStringList students;
    QStringList objects;
    std::optional<core::BootstrapInfo> bootstrap;
    for (const QString& model : t.models) {
      if (!run.hasResult(task, model, intervals)) {
        continue;
      }
      models << model;
      if (model != t.teacher) {
        students << model;
      }
      objects << analysisPath(task, model, intervals);
      try {
        const auto i = run.intervals(task, model);
        bootstrap = bootstrap || !i ? bootstrap : i->bootstrap;
      } catch (const std::exception&) {
        // A damaged group: listed all the same; building the figure reports the error.
      }
    }
    if (models.isEmpty()) {
      continue;
    }
    const QString over =
        bootstrap ? tr("95% percentile bootstrap interval over the %1 eval examples (B = %2, seed %3)")
                        .arg(bootstrap->examples)
                        .arg(bootstrap->resamples)
                        .arg(bootstrap->seed)
                  : tr("95% percentile bootstrap interval over the eval examples");
    out.push_back(spec(run, figures::taskAccuracyName(task), QStringLiteral("tasks"),
                       tr("Eval accuracy of %1 on task %2, each with its %3.").arg(listNames(models), task, over),
                       objects, kFromAnalyze + tr(", %1").arg(over),
                       [doc, task](PlotWidget& plot) { figures::buildTaskAccuracy(plot, *doc, task); }));
    if (!students.isEmpty()) {
      QStringList gapObjects = objects;
      for (const QString& student : students) {
        gapObjects << qstr(core::layout::child(
            core::layout::analysisEntry(str(task), str(student), core::layout::entry::kPaired), str(t.teacher)));
      }
      out.push_back(spec(run, figures::taskGapName(task), QStringLiteral("tasks"),
                         tr("Gap to the teacher (teacher accuracy minus student accuracy, on the same eval "
                            "examples) of %1 on task %2, each with its %3 (paired: both accuracies on each "
                            "resample). A gap whose interval holds 0, or whose exact McNemar p against the teacher "
                            "(Holm-adjusted over the task's paired tests) is 0.05 or more, is drawn as \"no "
                            "detectable difference\".")
                             .arg(listNames(students), task, over),
                         gapObjects, kFromAnalyze + tr(", %1").arg(over),
                         [doc, task](PlotWidget& plot) { figures::buildTaskGap(plot, *doc, task); }));
    }
  }

  // Examples: where each student's lost examples are.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    for (const QString& student : t.students) {
      const QString entry = QString::fromLatin1(core::layout::entry::kLossPattern);
      if (!run.hasResult(task, student, entry)) {
        continue;
      }
      QString caption = tr("Where the examples student %1 loses on task %2 are (the loss pattern in the file could "
                           "not be read: building the figure says why).")
                            .arg(student, task);
      try {
        const auto lp = run.lossPattern(task, student);
        if (!lp || lp->factors.empty()) {
          continue; // nothing was tested (no lost example)
        }
        QStringList factors;
        for (const auto& f : lp->factors) {
          factors << QString::fromStdString(f.name).replace(QLatin1Char('_'), QLatin1Char(' '));
        }
        caption = tr("Where the examples student %1 loses on task %2 are: for each factor (%3), the rank-biserial "
                     "r of its %4 lost examples (teacher right, student wrong) against the other %5 eval "
                     "examples, P(lost > rest) - P(lost < rest), with a 95% stratified bootstrap interval; an r "
                     "whose interval holds 0, or whose Mann-Whitney p (Holm-adjusted over the pattern's tests) is "
                     "0.05 or more, is drawn as \"no detectable difference\".")
                      .arg(student, task, factors.join(QStringLiteral(", ")))
                      .arg(lp->lost)
                      .arg(lp->examples - lp->lost);
      } catch (const std::exception&) {
        // A damaged group: listed all the same; building the figure reports the error.
      }
      out.push_back(spec(run, figures::lossPatternName(task, student), QStringLiteral("examples"), caption,
                         {analysisPath(task, student, entry)},
                         kFromAnalyze + tr(", loss pattern (Mann-Whitney U, rank-biserial r)"),
                         [doc, task, student](PlotWidget& plot) { figures::buildLossPattern(plot, *doc, task, student); }));
    }
  }

  // Tasks: per-class recall.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    const QString teacher = t.teacher;
    QStringList owners;
    for (const QString& student : t.students) {
      if (t.withLogits.contains(student)) {
        owners << student;
      }
    }
    if (owners.isEmpty() && t.withLogits.contains(teacher)) {
      owners << QString();
    }
    for (const QString& student : owners) {
      out.push_back(spec(run, figures::recallName(task, student), QStringLiteral("tasks"),
                         tr("Recall of each class of task %1 (correct predictions among the eval examples of the "
                            "class) for %2. %3")
                             .arg(task, student.isEmpty() ? teacher : tr("%1 and student %2").arg(teacher, student),
                                  run.labels(task).size() <= figures::kRecallIntervalExamples
                                      ? tr("Error bars: the 95% percentile bootstrap interval over the class's eval "
                                           "examples (B = 2000, seed 14; the report's per-class table).")
                                      : tr("No error bars: over %L1 eval examples the window does not bootstrap "
                                           "per-class recall (the report does).")
                                            .arg(figures::kRecallIntervalExamples)),
                         {qstr(core::layout::evalLogits(str(task), str(QStringLiteral("*")))),
                          qstr(core::layout::evalLabels(str(task)))},
                         kFromLogits, [doc, task, teacher, student](PlotWidget& plot) {
                           figures::buildRecall(plot, *doc, task, teacher, student);
                         }));
    }
  }

  // Knowledge: class similarity and instance weights.
  for (const TaskFacts& t : tasks) {
    const QString task = t.name;
    const QString teacher = t.teacher;
    for (const QString& model : t.withClassifier) {
      out.push_back(spec(run, figures::similarityName(task, model, figures::SimilarityKind::ClassifierCosine),
                         QStringLiteral("knowledge"),
                         tr("Cosine similarity between the rows of %1's classifier weight (one row per class of "
                            "task %2): the class geometry the model learned (domain knowledge in Tang et al. 2020).")
                             .arg(model, task),
                         {qstr(core::layout::classifierWeight(str(task), str(model)))},
                         tr("computed by KDScope from classifier/weight (widgets/views/knowledge_view.cpp)"),
                         [doc, task, model](PlotWidget& plot) {
                           figures::buildSimilarity(plot, *doc, task, model, figures::SimilarityKind::ClassifierCosine);
                         }));
    }
    for (const QString& model : t.withLogits) {
      out.push_back(spec(run, figures::similarityName(task, model, figures::SimilarityKind::MeanProbability),
                         QStringLiteral("knowledge"),
                         tr("Mean softmax probability (T = 1) that %1 gives class j (columns) over the eval "
                            "examples of class i (rows), task %2.")
                             .arg(model, task),
                         {qstr(core::layout::evalLogits(str(task), str(model))),
                          qstr(core::layout::evalLabels(str(task)))},
                         kFromLogits, [doc, task, model](PlotWidget& plot) {
                           figures::buildSimilarity(plot, *doc, task, model, figures::SimilarityKind::MeanProbability);
                         }));
    }
    for (const QString& student : t.students) {
      if (t.withLogits.contains(teacher) &&
          run.hasResult(task, student, QStringLiteral("grad_rescale"))) {
        out.push_back(spec(run, figures::gradRescaleName(task, student), QStringLiteral("knowledge"),
                           tr("Instance-level knowledge (Tang et al. 2020): the gradient rescaling weight w of "
                              "each eval example for student %1, against %2's probability of the true class "
                              "p_y (T = 1), task %3. One point per eval example.")
                               .arg(student, teacher, task),
                           {analysisPath(task, student, QStringLiteral("grad_rescale")),
                            qstr(core::layout::evalLogits(str(task), str(teacher)))},
                           kFromAnalyze + tr(" (w); p_y from the teacher's eval/logits"),
                           [doc, task, teacher, student](PlotWidget& plot) {
                             figures::buildGradRescale(plot, *doc, task, teacher, student);
                           }));
      }
    }
  }

  for (const FigureProvider& provider : providers()) {
    provider(run, out);
  }
  return out;
}

std::vector<FigureSpec> comparisonFigures(const std::vector<const RunDocument*>& runs, const QStringList& labels) {
  std::vector<FigureSpec> out;
  if (runs.size() < 2) {
    return out;
  }
  QStringList paths;
  for (const RunDocument* run : runs) {
    paths << canonicalRunPath(*run);
  }
  const QString runList = listNames(labels);
  // Replicates of one job (the same job but for its replicate seed) also get their mean with
  // a t interval over the replicates.
  std::vector<std::string> jobs;
  for (const RunDocument* run : runs) {
    jobs.push_back(run->summary().jobJson);
  }
  const core::ReplicateGroup group = core::replicateGroup(jobs);
  const QString overReplicates =
      group.replicates ? tr("the %1 runs are replicates of one job (replicate seeds %2)")
                             .arg(runs.size())
                             .arg(QString::fromStdString([&group] {
                               std::string list;
                               for (const std::uint64_t seed : group.seeds) {
                                 list += (list.empty() ? "" : ", ") + std::to_string(seed);
                               }
                               return list;
                             }()))
                       : QString();
  // Tasks in the order they first appear; each compared when two runs or more have it.
  QStringList tasks;
  std::map<QString, int> taskRuns;
  for (const RunDocument* run : runs) {
    for (const QString& task : run->taskNames()) {
      if (!tasks.contains(task)) {
        tasks << task;
      }
      ++taskRuns[task];
    }
  }
  for (const QString& task : tasks) {
    if (taskRuns[task] < 2) {
      continue;
    }
    QStringList models;
    std::map<QString, int> modelRuns;
    std::map<QString, int> trainedRuns;
    std::map<QString, int> curveRuns;
    bool anyAccuracy = false;
    for (const RunDocument* run : runs) {
      if (const core::TaskSummary* t = run->task(task)) {
        for (const core::ModelSummary& m : t->models) {
          const QString model = QString::fromStdString(m.name);
          if (!models.contains(model)) {
            models << model;
          }
          ++modelRuns[model];
          anyAccuracy = anyAccuracy || m.evalAccuracy >= 0.0;
          if (m.trainSteps > 0) {
            ++trainedRuns[model];
          }
          if (run->hasEvalCurve(task, model) &&
              !run->reader().evalCurve(t->name, m.name).epoch.empty()) {
            ++curveRuns[model];
          }
        }
      }
    }
    const auto make = [&](const QString& name, const QString& caption, const QStringList& objects,
                          const QString& analysis, std::function<void(PlotWidget&)> build) {
      FigureSpec s;
      s.name = name;
      s.view = QStringLiteral("compare");
      s.caption = caption;
      s.runPaths = paths;
      s.provenance.objects = objects;
      s.provenance.analysis = analysis;
      s.build = std::move(build);
      out.push_back(std::move(s));
    };
    if (anyAccuracy) {
      make(figures::compareAccuracyName(task),
           tr("Final eval accuracy of each model on task %1, one marker per run (%2): how the same models "
              "compare across runs. Error bars: each run's 95% Wilson interval over its eval examples (within "
              "one run; for the spread over seeds, run the job with replicates: kdscope info REPLICATE_DIR).")
               .arg(task, runList),
           {qstr(core::layout::evalLogits(str(task), str(QStringLiteral("*")))),
            qstr(core::layout::evalLabels(str(task)))},
           kFromLogits, [runs, labels, task](PlotWidget& plot) { figures::buildCompareAccuracy(plot, runs, labels, task); });
      if (group.replicates) {
        make(figures::replicateAccuracyName(task),
             tr("Final eval accuracy of each model on task %1: the mean over the replicates with its 95% Student-t "
                "interval over them (error bars; %2), and each replicate's own value beside it.")
                 .arg(task, overReplicates),
             {qstr(core::layout::evalLogits(str(task), str(QStringLiteral("*")))),
              qstr(core::layout::evalLabels(str(task)))},
             kFromLogits, [runs, task](PlotWidget& plot) { figures::buildReplicateAccuracy(plot, runs, task); });
      }
    }
    for (const QString& model : models) {
      if (curveRuns[model] >= 2) {
        make(figures::compareEvalCurveName(task, model),
             tr("Eval accuracy of %1 after each epoch on task %2, one line per run (%3). Error bars: each "
                "point's 95% Wilson interval over the run's eval examples.")
                 .arg(model, task, runList),
             {qstr(core::layout::evalCurveColumn(str(task), str(model), "accuracy"))}, kFromReader,
             [runs, labels, task, model](PlotWidget& plot) {
               figures::buildCompareEvalCurve(plot, runs, labels, task, model);
             });
        if (group.replicates) {
          make(figures::replicateEvalCurveName(task, model),
               tr("Eval accuracy of %1 after each epoch on task %2: the mean over the replicates, the band its 95% "
                  "Student-t interval over them at each epoch (%3).")
                   .arg(model, task, overReplicates),
               {qstr(core::layout::evalCurveColumn(str(task), str(model), "accuracy"))}, kFromReader,
               [runs, task, model](PlotWidget& plot) { figures::buildReplicateEvalCurve(plot, runs, task, model); });
        }
      }
      if (trainedRuns[model] >= 2) {
        make(figures::compareLossName(task, model),
             tr("Training loss (total objective, nats) of %1 at each logged step on task %2, one line per run (%3).")
                 .arg(model, task, runList),
             {qstr(core::layout::trainLoss(str(task), str(model)))}, kFromReader,
             [runs, labels, task, model](PlotWidget& plot) { figures::buildCompareLoss(plot, runs, labels, task, model); });
        if (group.replicates) {
          make(figures::replicateLossName(task, model),
               tr("Training loss (total objective, nats) of %1 at each logged step on task %2: the mean over the "
                  "replicates, the band its 95% Student-t interval over them at each step (%3).")
                   .arg(model, task, overReplicates),
               {qstr(core::layout::trainLoss(str(task), str(model)))}, kFromReader,
               [runs, task, model](PlotWidget& plot) { figures::buildReplicateLoss(plot, runs, task, model); });
        }
      }
    }
  }
  return out;
}

FigureCatalog::FigureCatalog(std::vector<const RunDocument*> runs) : m_runs(std::move(runs)) {
  for (const RunDocument* run : m_runs) {
    const QFileInfo info(run->path());
    QString label = info.fileName() == QStringLiteral("run.h5") ? info.absoluteDir().dirName() : info.completeBaseName();
    label = figureSegment(label);
    QString unique = label;
    for (int n = 2; m_labels.contains(unique); ++n) {
      unique = QStringLiteral("%1-%2").arg(label).arg(n);
    }
    m_labels << unique;
  }
  for (std::size_t r = 0; r < m_runs.size(); ++r) {
    for (FigureSpec& figure : runFigures(*m_runs[r])) {
      figure.name = prefix(r) + figure.name;
      m_figures.push_back(std::move(figure));
    }
  }
  for (FigureSpec& figure : comparisonFigures(m_runs, m_labels)) {
    m_figures.push_back(std::move(figure));
  }
}

FigureCatalog::FigureCatalog(std::vector<FigureSpec> figures) : m_figures(std::move(figures)) {}

QString FigureCatalog::prefix(std::size_t run) const {
  return m_runs.size() < 2 ? QString() : m_labels.value(static_cast<int>(run)) + QLatin1Char('/');
}

std::optional<FigureSpec> FigureCatalog::find(const QString& name) const {
  for (const FigureSpec& figure : m_figures) {
    if (figure.name == name) {
      return figure;
    }
  }
  // heads.attention.TASK.MODEL.eE.lL.(hH|mean), with the run prefix when there are several.
  for (std::size_t r = 0; r < m_runs.size(); ++r) {
    const QString p = prefix(r);
    if (!name.startsWith(p)) {
      continue;
    }
    static const QRegularExpression kAttention(
        QStringLiteral("^heads\\.attention\\.([A-Za-z0-9_-]+)\\.([A-Za-z0-9_-]+)\\.e(\\d+)\\.l(\\d+)\\.(mean|h(\\d+))$"));
    const QRegularExpressionMatch match = kAttention.match(name.mid(p.size()));
    if (!match.hasMatch()) {
      continue;
    }
    const RunDocument& run = *m_runs[r];
    for (const QString& task : run.taskNames()) {
      if (figureSegment(task) != match.captured(1)) {
        continue;
      }
      QStringList models = run.studentsOf(task);
      models.prepend(run.teacherOf(task));
      for (const QString& model : models) {
        if (model.isEmpty() || figureSegment(model) != match.captured(2)) {
          continue;
        }
        const auto shape = run.attentionShape(task, model);
        const int example = match.captured(3).toInt();
        const int layer = match.captured(4).toInt();
        const int head = match.captured(5) == QStringLiteral("mean") ? -1 : match.captured(6).toInt();
        if (!shape || example >= shape->examples || layer >= shape->layers || head >= shape->heads) {
          return std::nullopt;
        }
        FigureSpec figure = attentionSpec(run, task, model, example, layer, head);
        figure.name = p + figure.name;
        return figure;
      }
    }
  }
  return std::nullopt;
}

std::vector<FigureSpec> FigureCatalog::select(const QStringList& patterns, QStringList* unmatched) const {
  std::vector<FigureSpec> out;
  std::set<QString> taken;
  const auto take = [&](const FigureSpec& figure) {
    if (taken.insert(figure.name).second) {
      out.push_back(figure);
    }
  };
  for (const QString& pattern : patterns) {
    bool matched = false;
    if (pattern == QStringLiteral("all")) {
      for (const FigureSpec& figure : m_figures) {
        take(figure);
      }
      matched = !m_figures.empty();
    } else if (pattern.contains(QLatin1Char('*')) || pattern.contains(QLatin1Char('?'))) {
      for (const FigureSpec& figure : m_figures) {
        if (globMatch(pattern, figure.name)) {
          take(figure);
          matched = true;
        }
      }
    } else if (const auto figure = find(pattern)) {
      take(*figure);
      matched = true;
    }
    if (!matched && unmatched != nullptr) {
      *unmatched << pattern;
    }
  }
  return out;
}

QStringList FigureCatalog::families() const {
  QStringList lines;
  for (std::size_t r = 0; r < m_runs.size(); ++r) {
    const RunDocument& run = *m_runs[r];
    for (const QString& task : run.taskNames()) {
      QStringList models = run.studentsOf(task);
      models.prepend(run.teacherOf(task));
      for (const QString& model : models) {
        if (model.isEmpty()) {
          continue;
        }
        if (const auto shape = run.attentionShape(task, model)) {
          lines << QStringLiteral("%1heads.attention.%2.%3.eE.lL.hH|mean  (E 0..%4, L 0..%5, H 0..%6)")
                       .arg(prefix(r), figureSegment(task), figureSegment(model))
                       .arg(shape->examples - 1)
                       .arg(shape->layers - 1)
                       .arg(shape->heads - 1);
        }
      }
    }
  }
  return lines;
}

} // namespace kdscope::widgets
