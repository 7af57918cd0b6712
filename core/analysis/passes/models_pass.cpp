// The "heads" and "probes" passes: they reload the checkpoints and the task's data (the
// stored job, same seed), check the reloaded model reproduces eval/logits, then compute head
// importance and ablation, and linear probes per layer.
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/analysis/head_ablation_intervals.h"
#include "core/analysis/layer_intervals.h"
#include "core/analysis/model_analysis.h"
#include "core/analysis/probe.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace fs = std::filesystem;

namespace {

/// Reloaded logits must reproduce eval/logits to this (absolute + relative) tolerance.
constexpr double kLogitTolerance = 1e-3;

/// Each head's accuracy drop and loss increase under ablation with their paired bootstrap
/// intervals over eval examples (head_ablation_intervals.h).
void writeHeadAblationIntervals(AnalysisContext& ctx, const std::string& g, const an::HeadScores& scores) {
  const an::BootstrapOptions boot{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
  const an::HeadAblationIntervals bands =
      an::headAblationIntervals(scores.perExampleCorrect, scores.perExampleLoss, scores.perExampleAblationCorrect,
                                scores.perExampleAblationLoss, scores.layers * scores.heads, boot);
  const std::vector<std::uint64_t> dims{scores.layers, scores.heads};
  const std::pair<const char*, const std::vector<double>*> entries[] = {
      {layout::entry::kHeadAblationAccuracyDrop, &bands.accuracyDrop},
      {layout::entry::kHeadAblationAccuracyDropLo, &bands.accuracyDropLo},
      {layout::entry::kHeadAblationAccuracyDropHi, &bands.accuracyDropHi},
      {layout::entry::kHeadAblationLossIncrease, &bands.lossIncrease},
      {layout::entry::kHeadAblationLossIncreaseLo, &bands.lossIncreaseLo},
      {layout::entry::kHeadAblationLossIncreaseHi, &bands.lossIncreaseHi}};
  for (const auto& [name, values] : entries) {
    ctx.out->floats(layout::child(g, name), dims, *values);
  }
  for (const char* name : {layout::entry::kHeadAblationAccuracyDrop, layout::entry::kHeadAblationLossIncrease}) {
    ctx.out->attr(layout::child(g, name), "over", std::string(an::kOverExamples) + ", paired");
    ctx.out->attr(layout::child(g, name), "resamples", static_cast<std::int64_t>(boot.resamples));
    ctx.out->attr(layout::child(g, name), "seed", static_cast<std::int64_t>(boot.seed));
  }
  // The most hurtful head against the runner-up, paired over examples (the same resamples).
  writeRunnerUp(*ctx.out, layout::child(g, layout::entry::kHeadAblationAccuracyDrop), bands.accuracyTop);
  writeRunnerUp(*ctx.out, layout::child(g, layout::entry::kHeadAblationLossIncrease), bands.lossTop);
}

} // namespace

void modelsPass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const std::vector<std::int64_t>& labels = in.labels;
  const std::vector<const ModelRecord*>& models = in.models;
  const std::string what = ctx.wants("heads") && ctx.wants("probes") ? "heads, probes" : (ctx.wants("heads") ? "heads" : "probes");
  if (!ctx.job) {
    ctx.skip(task, what, "the job stored in the file cannot be read (" + ctx.jobProblem + "), so the data cannot be reloaded");
    return;
  }
  const auto spec = std::find_if(ctx.job->tasks.begin(), ctx.job->tasks.end(),
                                 [&](const TaskSpec& t) { return t.name == task; });
  if (spec == ctx.job->tasks.end()) {
    ctx.skip(task, what, "the job has no task of this name");
    return;
  }
  // Models without attention (MLPs) have no heads: one line for a task where none has any.
  const bool anyHeads = std::any_of(models.begin(), models.end(), [](const ModelRecord* m) {
    return (m->architecture && m->architecture->type == "transformer") ||
           (m->torchScript && m->checkSkipped.count("heads") == 0);
  });
  if (ctx.wants("heads") && !anyHeads) {
    ctx.skip(task, "heads", "no model has attention heads (MLP models)");
  }
  // Reload the task only when some model has a checkpoint.
  std::vector<std::pair<const ModelRecord*, std::string>> available;
  for (const ModelRecord* m : models) {
    // A TorchScript model is reloaded from its module (the trained one for a student of mode
    // 'distil'), as its architecture attribute names it.
    const std::string path = m->torchScript ? m->torchScriptPath : ctx.checkpointFor(task, m->name);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      ctx.skip(task, what + "/" + m->name, (m->torchScript ? "TorchScript module '" : "checkpoint '") + path + "' not found");
    } else if (!m->architecture && !m->torchScript) {
      ctx.skip(task, what + "/" + m->name, "the model's architecture attribute cannot be read");
    } else {
      available.emplace_back(m, path);
    }
  }
  if (available.empty()) {
    return;
  }
  ctx.phase(task, "", "reloading the task's data");
  TaskData data;
  try {
    data = loadTask(*spec, ctx.dataDir(), ctx.job->seed);
  } catch (const InputError& e) {
    ctx.skip(task, what, std::string("the data cannot be reloaded: ") + e.what());
    return;
  }
  if (data.eval.labels != labels) {
    std::size_t first = 0;
    while (first < labels.size() && first < data.eval.labels.size() && data.eval.labels[first] == labels[first]) {
      ++first;
    }
    ctx.skip(task, what,
         "the reloaded eval split differs from the run's (eval labels differ at example " + std::to_string(first) +
             "; " + std::to_string(data.eval.labels.size()) + " vs " + std::to_string(labels.size()) + " examples)");
    return;
  }
  if (data.kind == TaskKind::Text && ctx.file->exists(layout::evalTokens(task)) &&
      ctx.file->readInt64(layout::evalTokens(task)) != data.eval.tokens) {
    ctx.skip(task, what, "the reloaded eval split's tokens differ from the run's eval/tokens");
    return;
  }
  // Probes train on the first rows of the (shuffled) train split.
  std::vector<std::int64_t> trainRows;
  const std::size_t trainCount = ctx.options.probeTrainExamples > 0
                                     ? std::min(data.train.size(), ctx.options.probeTrainExamples)
                                     : data.train.size();
  for (std::size_t i = 0; i < trainCount; ++i) {
    trainRows.push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> trainLabels(data.train.labels.begin(),
                                        data.train.labels.begin() + static_cast<std::ptrdiff_t>(trainCount));
  std::vector<std::int64_t> evalRows;
  for (std::size_t i = 0; i < data.eval.size(); ++i) {
    evalRows.push_back(static_cast<std::int64_t>(i));
  }
  const std::size_t classes = static_cast<std::size_t>(data.numClasses());

  std::size_t done = 0;
  for (const auto& [m, path] : available) {
    ctx.checkCancel();
    ctx.advance(0.55 + 0.45 * static_cast<double>(done++) / static_cast<double>(available.size()));
    const std::string g = layout::analysisOf(task, m->name);
    std::optional<an::ModelHandle> handle;
    try {
      if (m->torchScript) {
        handle.emplace(an::ModelHandle::torchScript(path, m->manifestPath, data));
      } else {
        handle.emplace(*m->architecture, data, path);
      }
    } catch (const InputError& e) {
      ctx.skip(task, what + "/" + m->name, e.what());
      continue;
    }
    // The checkpoint must be the model the run recorded.
    const std::vector<float> logits = handle->logits(data, data.eval);
    double worst = 0.0;
    for (std::size_t i = 0; i < logits.size() && i < m->logits.size(); ++i) {
      const double d = std::abs(static_cast<double>(logits[i]) - m->logits[i]);
      worst = std::max(worst, d / (1.0 + std::abs(static_cast<double>(m->logits[i]))));
    }
    if (logits.size() != m->logits.size() || !(worst <= kLogitTolerance)) {
      ctx.skip(task, what + "/" + m->name,
           "checkpoint '" + path + "' does not reproduce the recorded eval/logits (relative difference up to " +
               formatNumber(worst) + ")");
      continue;
    }
    if (ctx.wants("heads")) {
      if (handle->heads() <= 0) {
        if (anyHeads) {
          ctx.skip(task, "heads/" + m->name, "the model has no attention heads");
        }
      } else if (const std::string why = handle->headGateUnavailable(); !why.empty() || m->checkSkipped.count("heads") > 0) {
        ctx.skip(task, "heads/" + m->name, lackReason(*m, "heads", "no head gate: " + why));
      } else {
        ctx.phase(task, m->name, "head importance (gradient of a head gate) and single-head ablation");
        const an::HeadScores scores = handle->headScores(data, data.eval, ctx.cancel);
        ctx.checkCancel();
        const std::vector<std::uint64_t> dims{scores.layers, scores.heads};
        ctx.out->floats(layout::child(g, layout::entry::kHeadImportance), dims, scores.normalisedImportance);
        ctx.out->attr(layout::child(g, layout::entry::kHeadImportance), "normalisation", "each layer divided by its L2 norm (Michel et al. 2019)");
        ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceRaw), dims, scores.importance);
        ctx.out->attr(layout::child(g, layout::entry::kHeadImportanceRaw), "formula",
                    "mean over eval examples of |dL_i/d xi_h|, L_i cross-entropy in nats, gates xi = 1");
        {
          // Their 95% intervals: bootstrap over eval examples of the per-example gradients.
          const an::BootstrapOptions boot{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
          const an::HeadImportanceIntervals bands =
              an::headImportanceIntervals(scores.perExampleImportance, scores.layers, scores.heads, boot);
          ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceLo), dims, bands.normalisedLo);
          ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceHi), dims, bands.normalisedHi);
          ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceRawLo), dims, bands.rawLo);
          ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceRawHi), dims, bands.rawHi);
          ctx.out->attr(layout::child(g, layout::entry::kHeadImportanceLo), "over", std::string(an::kOverExamples));
          ctx.out->attr(layout::child(g, layout::entry::kHeadImportanceLo), "resamples",
                        static_cast<std::int64_t>(boot.resamples));
          // The most important head against the runner-up, from the same resamples.
          writeRunnerUp(*ctx.out, layout::child(g, layout::entry::kHeadImportance), bands.top);
        }
        ctx.out->floats(layout::child(g, layout::entry::kHeadAblationAccuracy), dims, scores.ablationAccuracy);
        ctx.out->floats(layout::child(g, layout::entry::kHeadAblationLoss), dims, scores.ablationLoss);
        ctx.out->attr(layout::child(g, layout::entry::kHeadAblationAccuracy), "intact", scores.accuracy);
        ctx.out->attr(layout::child(g, layout::entry::kHeadAblationLoss), "intact", scores.loss);
        writeHeadAblationIntervals(ctx, g, scores);
      }
    }
    if (ctx.wants("probes") && (!handle->hiddenUnavailable().empty() || m->checkSkipped.count("probes") > 0)) {
      ctx.skip(task, "probes/" + m->name, lackReason(*m, "probes", "no hidden states: " + handle->hiddenUnavailable()));
    } else if (ctx.wants("probes")) {
      ctx.phase(task, m->name, "linear probes per layer (" + std::to_string(trainCount) + " train examples)");
      const std::string pooling = m->pooling.empty() ? (ctx.job ? ctx.job->recording.pooling : "mean") : m->pooling;
      const an::PooledStates train = handle->pooledStates(data, data.train, trainRows, pooling);
      const an::PooledStates eval = handle->pooledStates(data, data.eval, evalRows, pooling);
      const std::size_t L = train.layers;
      const std::size_t D = train.width;
      std::vector<double> accuracy(L, kNaN);
      std::vector<double> accuracyLo(L, kNaN);
      std::vector<double> accuracyHi(L, kNaN);
      std::vector<double> trainAccuracy(L, kNaN);
      std::vector<double> depth(L, 0.0);
      std::vector<std::int64_t> converged(L, 0);
      an::ProbeOptions po;
      po.l2 = ctx.options.probeL2;
      po.threads = ctx.options.threads;
      auto layerOf = [&](const an::PooledStates& states, std::size_t l) {
        std::vector<float> out(states.rows * D);
        for (std::size_t r = 0; r < states.rows; ++r) {
          std::copy_n(states.values.begin() + static_cast<std::ptrdiff_t>((r * L + l) * D), D,
                      out.begin() + static_cast<std::ptrdiff_t>(r * D));
        }
        return out;
      };
      for (std::size_t l = 0; l < L; ++l) {
        ctx.checkCancel();
        const std::vector<float> xTrain = layerOf(train, l);
        const std::vector<float> xEval = layerOf(eval, l);
        const an::LinearProbe probe = an::fitProbe(xTrain, D, trainLabels, classes, po);
        accuracy[l] = an::probeAccuracy(probe, xEval, data.eval.labels);
        {
          // Its 95% interval: bootstrap of the held-out predictions (the fitted probe fixed;
          // refitting per resample would cost B fits per layer; docs/statistics.md, "Probes").
          const auto predicted = an::predictProbe(probe, xEval);
          std::vector<double> right(predicted.size());
          for (std::size_t i = 0; i < predicted.size(); ++i) {
            right[i] = predicted[i] == data.eval.labels[i] ? 1.0 : 0.0;
          }
          const an::Interval band = an::bootstrapMean(
              right, an::BootstrapOptions{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed});
          accuracyLo[l] = band.lo;
          accuracyHi[l] = band.hi;
        }
        trainAccuracy[l] = an::probeAccuracy(probe, xTrain, trainLabels);
        depth[l] = L > 1 ? static_cast<double>(l) / static_cast<double>(L - 1) : 0.0;
        converged[l] = probe.converged ? 1 : 0;
      }
      ctx.out->floats(layout::child(g, layout::entry::kProbeAccuracy), {L}, accuracy);
      ctx.out->floats(layout::child(g, layout::entry::kProbeAccuracyLo), {L}, accuracyLo);
      ctx.out->floats(layout::child(g, layout::entry::kProbeAccuracyHi), {L}, accuracyHi);
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracyLo), "over",
                    std::string("eval examples (bootstrap of the held-out predictions, probe fixed)"));
      ctx.out->floats(layout::child(g, layout::entry::kProbeTrainAccuracy), {L}, trainAccuracy);
      ctx.out->floats(layout::child(g, layout::entry::kProbeRelativeDepth), {L}, depth);
      ctx.out->ints(layout::child(g, layout::entry::kProbeConverged), {L}, converged);
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "l2", ctx.options.probeL2);
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "train_examples", static_cast<std::int64_t>(trainCount));
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "pooling", pooling);
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "layer0", "embedding output");
    }
  }
}

} // namespace kdscope::core::passes
