#include "widgets/figures/study_figures.h"

#include <QDir>
#include <QFileInfo>
#include <QLocale>
#include <QObject>

#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "core/record/run_layout.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

namespace {

QString tr(const char* text) { return QObject::tr(text); }

QString q(const std::string& text) { return QString::fromStdString(text); }

QStringList toQStrings(const std::vector<std::string>& values) {
  QStringList out;
  for (const auto& value : values) {
    out << q(value);
  }
  return out;
}

// The shortest decimal that reads back as the same double (as the figure CSVs write).
QString exact(double value) {
  if (std::isnan(value)) {
    return QStringLiteral("nan");
  }
  return QString::number(value, 'g', QLocale::FloatingPointShortest);
}

bool hasFactor(const core::StudySummary& summary, const std::string& name) { return summary.factorIndex(name) >= 0; }

} // namespace

QString studyMetricTitle(core::StudyMetric metric) {
  switch (metric) {
  case core::StudyMetric::Gap:
    return tr("gap (teacher - student accuracy)");
  case core::StudyMetric::StudentAccuracy:
    return tr("student accuracy");
  case core::StudyMetric::Retained:
    return tr("retained (student / teacher)");
  case core::StudyMetric::SourceGap:
    return tr("gap to the teacher it learned from");
  }
  return {};
}

StudyAxes defaultStudyAxes(const core::StudySummary& summary) {
  StudyAxes axes;
  const auto& factors = summary.factors;
  if (factors.empty()) {
    return axes;
  }
  if (hasFactor(summary, "layers") && hasFactor(summary, "heads")) {
    axes.row = "layers";
    axes.col = "heads";
  } else if (hasFactor(summary, "layers")) {
    axes.row = "layers";
    for (const auto& f : factors) {
      if (f.name != axes.row) {
        axes.col = f.name;
        break;
      }
    }
  } else {
    axes.row = factors[0].name;
    axes.col = factors.size() > 1 ? factors[1].name : std::string();
  }
  axes.x = hasFactor(summary, "temperature") ? std::string("temperature") : factors[0].name;
  axes.series = hasFactor(summary, "lambda") && axes.x != "lambda" ? std::string("lambda") : std::string();
  return axes;
}

namespace figures {

QString studyHeatmapName(const QString& task) {
  return QStringLiteral("study.gap_heatmap.") + figureSegment(task);
}

QString studyLinesName(const QString& task) { return QStringLiteral("study.gap_lines.") + figureSegment(task); }

QString studyEffectsName(const QString& task) {
  return QStringLiteral("study.gap_effects.") + figureSegment(task);
}

QString studyLossName(const QString& task, const QString& term) {
  return term == QStringLiteral("loss") ? QStringLiteral("study.loss.") + figureSegment(task)
                                        : QStringLiteral("study.loss_term.%1.%2").arg(figureSegment(task), figureSegment(term));
}

void buildStudyHeatmap(PlotWidget& plot, const core::StudySummary& summary, const std::string& task,
                       const QString& taskLabel, const std::string& row, const std::string& col,
                       core::StudyMetric metric) {
  plot.clear();
  if (summary.factors.empty()) {
    plot.setMessage(tr("this study has no grid factors"));
    return;
  }
  const auto grid = core::studyGrid(summary, task, row, col, metric);
  Heatmap h;
  h.rows = static_cast<int>(grid.rowLevels.size());
  h.cols = static_cast<int>(grid.colLevels.size());
  h.values = grid.mean;
  h.rowLabels = toQStrings(grid.rowLevels);
  h.colLabels = col.empty() ? QStringList{QString()} : toQStrings(grid.colLevels);
  h.rowTitle = q(row);
  h.colTitle = q(col);
  h.valueTitle = studyMetricTitle(metric);
  // A replicated study: each cell's 95% t interval over the replicates (tooltip and CSV). A gap
  // is tested against 0 in each entry (one-sample t over the replicates), Holm over the
  // entries shown; an entry not significant after Holm is marked "n.d.": no detectable gap to
  // the teacher.
  const auto reps = core::studyGridReplicates(summary, grid, task, row, col, metric);
  if (!reps.empty()) {
    const bool gap = metric == core::StudyMetric::Gap || metric == core::StudyMetric::SourceGap;
    for (const core::StudyRepValue& v : reps) {
      h.lower.push_back(v.summary.interval.lo);
      h.upper.push_back(v.summary.interval.hi);
    }
    h.intervalTitle = tr("95% t interval over %1 replicates").arg(summary.replicates.seeds.size());
    h.noInterval = tr("no interval: fewer than 2 replicates gave this entry");
    if (gap) {
      const std::vector<core::analysis::AdjustedP> holm = core::studyGridHolm(reps);
      const std::size_t family = holm.empty() ? 0 : holm.front().family;
      for (const core::analysis::AdjustedP& p : holm) {
        h.adjustedP.push_back(p.p);
        h.marked.push_back(std::isfinite(p.p) && p.p >= 0.05 ? 1 : 0); // NaN (not tested): not marked
      }
      h.pTitle = tr("Holm over the %1 tested entries of this heatmap; one-sample t of the gap over the replicates")
                     .arg(family);
      h.markTitle = tr("no detectable difference from the teacher: the gap's Holm p over the %1 tested entries of "
                       "this heatmap is at least 0.05 (one-sample t over the replicates)")
                        .arg(family);
    }
  } else {
    h.noInterval = tr("no interval: one run per cell (a study with replicates gives each entry its t interval "
                      "over them)");
  }
  plot.setTitle(tr("%1, %2").arg(studyMetricTitle(metric), taskLabel));
  plot.setHeatmap(h);
}

void buildStudyLines(PlotWidget& plot, const core::StudySummary& summary, const std::string& task,
                     const QString& taskLabel, const std::string& x, const std::string& series,
                     core::StudyMetric metric) {
  plot.clear();
  if (summary.factors.empty()) {
    plot.setMessage(tr("this study has no grid factors"));
    return;
  }
  const auto grid = core::studyGrid(summary, task, x, series == x ? std::string() : series, metric);
  const bool named = summary.factors[static_cast<std::size_t>(summary.factorIndex(x))].named;
  // A replicated study with a series factor: each point's t interval over the replicates, the
  // grid entry computed in each replicate (as the heatmap's intervals).
  const std::vector<core::StudyRepValue> entries =
      grid.colFactor.empty() ? std::vector<core::StudyRepValue>{}
                             : core::studyGridReplicates(summary, grid, task, x, grid.colFactor, metric);
  for (std::size_t c = 0; c < grid.colLevels.size(); ++c) {
    QVector<double> xs;
    QVector<double> ys;
    for (std::size_t r = 0; r < grid.rowLevels.size(); ++r) {
      if (std::isfinite(grid.at(r, c))) {
        xs << (named ? static_cast<double>(r) : grid.rowValues[r]);
        ys << grid.at(r, c);
      }
    }
    const QString name = grid.colFactor.empty()
                             ? studyMetricTitle(metric)
                             : QStringLiteral("%1 = %2").arg(q(grid.colFactor), q(grid.colLevels[c]));
    const int line = plot.addLine(name, xs, ys, static_cast<int>(c));
    // A replicated study, one line against one factor: the level means' t intervals.
    const core::StudyRepEffect* rep =
        grid.colFactor.empty() ? summary.replicates.effect(task, core::toString(metric), x) : nullptr;
    if (rep != nullptr) {
      QVector<double> lo;
      QVector<double> hi;
      for (std::size_t r = 0; r < grid.rowLevels.size() && r < rep->levelMeans.size(); ++r) {
        if (std::isfinite(grid.at(r, c))) {
          lo << rep->levelMeans[r].summary.interval.lo;
          hi << rep->levelMeans[r].summary.interval.hi;
        }
      }
      if (lo.size() == xs.size()) {
        plot.setErrorBars(line, lo, hi);
      }
    } else if (!entries.empty()) {
      QVector<double> lo;
      QVector<double> hi;
      for (std::size_t r = 0; r < grid.rowLevels.size(); ++r) {
        if (std::isfinite(grid.at(r, c))) {
          const core::analysis::Interval& i = entries[r * grid.colLevels.size() + c].summary.interval;
          lo << i.lo;
          hi << i.hi;
        }
      }
      plot.setErrorBars(line, lo, hi);
    }
  }
  if (named) {
    plot.setXTickLabels(toQStrings(grid.rowLevels));
  }
  plot.setAxisLabels(summary.replicates.empty() ? tr("%1 (no bars: one run per cell)").arg(q(x))
                                               : tr("%1 (bars: 95% t interval over %2 replicates)")
                                                     .arg(q(x))
                                                     .arg(summary.replicates.seeds.size()),
                     studyMetricTitle(metric));
  plot.setTitle(tr("%1 against %2, %3").arg(studyMetricTitle(metric), q(x), taskLabel));
  plot.rescale();
}

std::vector<core::FactorEffect> buildStudyEffects(PlotWidget& plot, const core::StudySummary& summary,
                                                  const std::string& task, const QString& taskLabel,
                                                  core::StudyMetric metric) {
  plot.clear();
  auto effects = core::mainEffects(summary, task, metric);
  if (effects.empty()) {
    plot.setMessage(tr("this study has no grid factors"));
    return effects;
  }
  // Largest effect first: the components that matter most for this task.
  std::stable_sort(effects.begin(), effects.end(), [](const core::FactorEffect& a, const core::FactorEffect& b) {
    return (std::isnan(a.effect) ? -1.0 : a.effect) > (std::isnan(b.effect) ? -1.0 : b.effect);
  });
  // Each factor's level means at x = factor index + spread offsets, with min..max whiskers
  // drawn as dashed lines, so levels of different factors never share an x position.
  QStringList ticks;
  for (std::size_t f = 0; f < effects.size(); ++f) {
    const auto& effect = effects[f];
    ticks << q(effect.factor);
    QVector<double> xs;
    QVector<double> ys;
    const double n = static_cast<double>(effect.levels.size());
    for (std::size_t l = 0; l < effect.levels.size(); ++l) {
      const auto& level = effect.levels[l];
      const double x = static_cast<double>(f) + (n > 1 ? -0.3 + 0.6 * static_cast<double>(l) / (n - 1) : 0.0);
      if (level.count > 0) {
        xs << x;
        ys << level.mean;
        plot.addLine(QString(), {x, x}, {level.min, level.max}, static_cast<int>(f), PlotWidget::LineStyle::Dashed);
      }
    }
    const int line = plot.addLine(q(effect.factor), xs, ys, static_cast<int>(f));
    // A replicated study: each level mean's 95% Student-t interval over the replicates.
    if (const core::StudyRepEffect* rep = summary.replicates.effect(task, core::toString(metric), effect.factor)) {
      QVector<double> lo;
      QVector<double> hi;
      for (std::size_t l = 0; l < effect.levels.size() && l < rep->levelMeans.size(); ++l) {
        if (effect.levels[l].count > 0) {
          lo << rep->levelMeans[l].summary.interval.lo;
          hi << rep->levelMeans[l].summary.interval.hi;
        }
      }
      if (lo.size() == xs.size()) {
        plot.setErrorBars(line, lo, hi);
      }
    }
  }
  plot.setXTickLabels(ticks);
  // Short enough for a single-column figure; the caption says the rest (levels left to right).
  plot.setAxisLabels(summary.replicates.empty()
                         ? tr("factor (dashed: min..max over the grid)")
                         : tr("factor (bars: 95% t interval over %1 replicates; dashed: min..max over the grid)")
                               .arg(summary.replicates.seeds.size()),
                     studyMetricTitle(metric));
  plot.setTitle(tr("Main effects, %1").arg(taskLabel));
  plot.rescale();
  plot.setXRange(-0.5, static_cast<double>(effects.size()) - 0.5);
  return effects;
}

void buildStudyLossCurves(PlotWidget& plot, const core::StudySummary& summary, const std::string& studyDir,
                          const std::string& task, const std::string& term) {
  plot.clear();
  const QString yTitle = term == "loss" ? tr("loss (weighted total, nats)") : tr("%1 (unweighted, nats)").arg(q(term));
  if (summary.replicates.seeds.size() > 1) {
    // A replicated study: each cell's mean over its replicates, the band its t interval.
    const auto bands = core::termBands(summary, studyDir, task, term);
    for (std::size_t i = 0; i < bands.size(); ++i) {
      const core::ReplicateBand& b = bands[i].band;
      QVector<double> xs;
      QVector<double> ys;
      QVector<double> lo;
      QVector<double> hi;
      for (std::size_t k = 0; k < b.x.size(); ++k) {
        if (std::isfinite(b.mean[k])) {
          xs << b.x[k];
          ys << b.mean[k];
          lo << b.lo[k];
          hi << b.hi[k];
        }
      }
      if (!xs.isEmpty()) {
        const int line = plot.addLine(q(bands[i].cell), xs, ys, static_cast<int>(i));
        plot.setBand(line, lo, hi);
      }
    }
    if (plot.lineCount() == 0) {
      plot.setMessage(tr("no complete cell logged %1 on %2").arg(q(term), q(task)));
      return;
    }
    plot.setAxisLabels(tr("step"), yTitle);
    plot.setTitle(tr("%1 on %2, every complete cell: mean over %3 replicates (band: 95% t interval)")
                      .arg(q(term), q(task))
                      .arg(summary.replicates.seeds.size()));
    plot.rescale();
    return;
  }
  const auto curves = core::termCurves(summary, studyDir, task, term);
  for (std::size_t i = 0; i < curves.size(); ++i) {
    QVector<double> xs;
    QVector<double> ys;
    for (std::size_t k = 0; k < curves[i].steps.size() && k < curves[i].values.size(); ++k) {
      if (!std::isnan(curves[i].values[k])) { // a term not logged on a step is NaN
        xs << static_cast<double>(curves[i].steps[k]);
        ys << static_cast<double>(curves[i].values[k]);
      }
    }
    if (!xs.isEmpty()) {
      plot.addLine(q(curves[i].cell), xs, ys, static_cast<int>(i));
    }
  }
  if (plot.lineCount() == 0) {
    plot.setMessage(tr("no complete cell logged %1 on %2").arg(q(term), q(task)));
    return;
  }
  plot.setAxisLabels(tr("step"), yTitle);
  plot.setTitle(tr("%1 on %2, every complete cell").arg(q(term), q(task)));
  plot.rescale();
}

} // namespace figures

StudyDocument openStudy(const QString& path) {
  const QFileInfo given(path);
  if (!given.exists()) {
    throw core::InputError(QStringLiteral("%1: no such study folder or summary file").arg(path).toStdString());
  }
  QString summaryPath = given.absoluteFilePath();
  if (given.isDir()) {
    summaryPath = QDir(given.absoluteFilePath()).filePath(QStringLiteral("study_summary.json"));
    if (!QFileInfo::exists(summaryPath)) {
      throw core::InputError(QStringLiteral("%1: no study summary in %2 (kdscope study STUDY.json --out %2 writes it)")
                                 .arg(summaryPath, path)
                                 .toStdString());
    }
  }
  StudyDocument study;
  study.summaryPath = QFileInfo(summaryPath).canonicalFilePath();
  study.dir = QFileInfo(study.summaryPath).absolutePath();
  // Throws InputError naming the file and field at fault.
  study.summary = std::make_shared<const core::StudySummary>(core::readStudySummary(study.summaryPath.toStdString()));
  const QDir dir(study.dir);
  for (const core::StudyCellResult& cell : study.summary->cells) {
    if (cell.status != "complete") {
      continue;
    }
    const QString runFile = QDir::cleanPath(dir.absoluteFilePath(q(cell.runFile)));
    if (!QFileInfo(runFile).isFile()) {
      throw core::InputError(QStringLiteral("%1: run file of cell %2 is missing (%3 lists the cell as complete)")
                                 .arg(runFile, q(cell.name), study.summaryPath)
                                 .toStdString());
    }
    study.runFiles << runFile;
  }
  return study;
}

std::vector<FigureSpec> studyFigures(const StudyDocument& study) {
  std::vector<FigureSpec> out;
  const auto summary = study.summary;
  const StudyAxes axes = defaultStudyAxes(*summary);
  const std::string dir = study.dir.toStdString();
  const QString summaryFile = QFileInfo(study.summaryPath).fileName();
  const QString complete = tr("%1 of %2 cells complete").arg(summary->completeCells()).arg(summary->cells.size());
  const auto spec = [&](const QString& name, const QString& caption, const QStringList& objects,
                        const QString& analysis, QStringList files, std::function<void(PlotWidget&)> build) {
    FigureSpec figure;
    figure.name = name;
    figure.view = QStringLiteral("study");
    figure.caption = caption;
    figure.runPaths = std::move(files);
    figure.provenance.objects = objects;
    figure.provenance.analysis = analysis;
    figure.build = std::move(build);
    out.push_back(std::move(figure));
  };
  constexpr auto kGap = core::StudyMetric::Gap;
  const QString gap = studyMetricTitle(kGap);
  for (const std::string& task : summary->tasks) {
    const QString t = q(task);
    const QString gapField = QStringLiteral("%1: cells[].tasks.%2.gap").arg(summaryFile, t);
    if (!summary->factors.empty()) {
      const QString over = axes.col.empty() ? q(axes.row) : QStringLiteral("%1 x %2").arg(q(axes.row), q(axes.col));
      spec(figures::studyHeatmapName(t),
           tr("Study '%1', task %2: the %3 over %4, each entry the mean over the complete cells at those levels "
              "(averaged over the other factors; empty where no cell is complete; %5).%6")
               .arg(q(summary->name), t, gap, over, complete,
                    summary->replicates.empty()
                        ? QString()
                        : tr(" Over %1 replicates: the CSV's value_lo and value_hi are each entry's 95% Student-t "
                             "interval over the replicates (the entry computed in each replicate), and an entry "
                             "whose gap is not significant after Holm over the heatmap's entries (one-sample t over the "
                             "replicates; the CSV's p_adjusted) is marked \"n.d.\" (no detectable difference from "
                             "the teacher).")
                              .arg(summary->replicates.seeds.size())),
           {gapField}, tr("core::studyGrid: mean gap per (%1) over the complete cells").arg(over), {study.summaryPath},
           [summary, task, axes](PlotWidget& plot) {
             figures::buildStudyHeatmap(plot, *summary, task, q(task), axes.row, axes.col, kGap);
           });
      const QString lines = axes.series.empty()
                                ? tr("against %1").arg(q(axes.x))
                                : tr("against %1, one line per %2").arg(q(axes.x), q(axes.series));
      spec(figures::studyLinesName(t),
           tr("Study '%1', task %2: the %3 %4, each point the mean over the complete cells at those levels "
              "(averaged over the other factors; %5).")
               .arg(q(summary->name), t, gap, lines, complete),
           {gapField}, tr("core::studyGrid: mean gap %1 over the complete cells").arg(lines), {study.summaryPath},
           [summary, task, axes](PlotWidget& plot) {
             figures::buildStudyLines(plot, *summary, task, q(task), axes.x, axes.series, kGap);
           });
      // The effect and spread of each factor go into the caption's analysis line, so the
      // CSV holds them exactly (its rows hold the level means and the min..max whiskers).
      auto effects = core::mainEffects(*summary, task, kGap);
      std::stable_sort(effects.begin(), effects.end(), [](const core::FactorEffect& a, const core::FactorEffect& b) {
        return (std::isnan(a.effect) ? -1.0 : a.effect) > (std::isnan(b.effect) ? -1.0 : b.effect);
      });
      QStringList numbers;
      for (const core::FactorEffect& effect : effects) {
        numbers << QStringLiteral("%1 effect=%2 spread=%3").arg(q(effect.factor), exact(effect.effect), exact(effect.spread));
      }
      spec(figures::studyEffectsName(t),
           tr("Study '%1', task %2: each factor's main effect on the %3: the mean over the complete cells at each "
              "level (solid, levels left to right) and the min..max over the rest of the grid (dashed); factors "
              "sorted by effect (max - min of the level means). An effect smaller than its spread (the mean "
              "within-level standard deviation) is noise against the rest of the grid (%4).%5")
               .arg(q(summary->name), t, gap, complete,
                    summary->replicates.empty()
                        ? QString()
                        : tr(" Each level mean is the mean over %1 replicates; the bars are its 95% Student-t "
                             "interval over the replicates.")
                              .arg(summary->replicates.seeds.size())),
           {gapField},
           tr("core::mainEffects (effect = max - min of the level means; spread = mean within-level standard "
              "deviation): %1")
               .arg(numbers.join(QStringLiteral("; "))),
           {study.summaryPath}, [summary, task](PlotWidget& plot) {
             static_cast<void>(figures::buildStudyEffects(plot, *summary, task, q(task), kGap));
           });
    }
    // Loss curves: the run files of the complete cells.
    QStringList files{study.summaryPath};
    files << study.runFiles;
    const bool replicated = summary->replicates.seeds.size() > 1;
    const QString overReplicates =
        replicated ? tr(" Each line is the cell's mean over the %1 replicates at each step, the band its 95% "
                        "Student-t interval over them (the CSV's y_lo, y_hi).")
                         .arg(summary->replicates.seeds.size())
                   : QString();
    for (const std::string& term : core::termNames(*summary, dir, task)) {
      const QString object = q(term == "loss" ? core::layout::trainLoss(task, summary->studentName)
                                              : core::layout::trainTerm(task, summary->studentName, term));
      spec(figures::studyLossName(t, q(term)),
           (term == "loss" ? tr("Study '%1', task %2: the student's training loss (the weighted objective) per "
                                "logged step, one line per complete cell.")
                                 .arg(q(summary->name), t)
                           : tr("Study '%1', task %2: the student's unweighted %3 term per logged step, one line per "
                                "complete cell that logged it.")
                                 .arg(q(summary->name), t, q(term))) +
               overReplicates,
           {QStringLiteral("cells/*/run.h5:") + object},
           replicated ? tr("as logged during training, summarised over the replicates (core::termBands)")
                      : tr("as logged during training (core::termCurves)"),
           files,
           [summary, dir, task, term](PlotWidget& plot) { figures::buildStudyLossCurves(plot, *summary, dir, task, term); });
    }
  }
  return out;
}

void describeStudyExport(const StudyDocument& study, ExportOptions* options) {
  const QString name = q(study.summary->name);
  options->indexSources = {
      {tr("Study"), name, false},
      {tr("Summary"), study.summaryPath, true},
      {tr("Cells"), tr("%1 of %2 complete").arg(study.summary->completeCells()).arg(study.summary->cells.size()), false}};
  options->remakeInputs = QStringLiteral("--study %1").arg(study.dir);
  options->indexViewTitles[QStringLiteral("study")] =
      tr("Study '%1': gaps over the grid and training curves").arg(name);
}

} // namespace kdscope::widgets
