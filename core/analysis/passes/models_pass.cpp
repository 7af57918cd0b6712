// The "heads" and "probes" passes: they reload the checkpoints and the task's data (the
// stored job, same seed), check the reloaded model reproduces eval/logits, then compute head
// importance and ablation, and linear probes per layer. The teacher's results are copied
// instead from AnalyzeOptions::teacherAnalysesFrom when that run computed them from the same
// inputs (a study's cells share one teacher: docs/analyses.md, "Reusing a study's teacher
// analyses").
#include "core/analysis/passes/analysis_context.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/analysis/analysis_common.h"
#include "core/analysis/head_ablation_intervals.h"
#include "core/analysis/layer_intervals.h"
#include "core/analysis/model_analysis.h"
#include "core/analysis/probe.h"
#include "core/common/error.h"
#include "core/common/side_by_side.h"
#include "core/common/version.h"
#include "core/data/dataset.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core::passes {

namespace fs = std::filesystem;
using Json = nlohmann::json;

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

/// The heads' results of one model: importance with its bootstrap intervals and runner-up,
/// ablation accuracy and loss with theirs (analysis/<model>/head_*).
void writeHeadResults(AnalysisContext& ctx, const std::string& g, const std::string& headsKey,
                      const an::HeadScores& heads) {
  const std::vector<std::uint64_t> dims{heads.layers, heads.heads};
  ctx.out->floats(layout::child(g, layout::entry::kHeadImportance), dims, heads.normalisedImportance);
  ctx.out->attr(layout::child(g, layout::entry::kHeadImportance), "normalisation", "each layer divided by its L2 norm (Michel et al. 2019)");
  if (!headsKey.empty()) {
    ctx.out->attr(layout::child(g, layout::entry::kHeadImportance), "inputs", headsKey);
  }
  ctx.out->floats(layout::child(g, layout::entry::kHeadImportanceRaw), dims, heads.importance);
  ctx.out->attr(layout::child(g, layout::entry::kHeadImportanceRaw), "formula",
              "mean over eval examples of |dL_i/d xi_h|, L_i cross-entropy in nats, gates xi = 1");
  {
    // Their 95% intervals: bootstrap over eval examples of the per-example gradients.
    const an::BootstrapOptions boot{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
    const an::HeadImportanceIntervals bands =
        an::headImportanceIntervals(heads.perExampleImportance, heads.layers, heads.heads, boot);
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
  ctx.out->floats(layout::child(g, layout::entry::kHeadAblationAccuracy), dims, heads.ablationAccuracy);
  ctx.out->floats(layout::child(g, layout::entry::kHeadAblationLoss), dims, heads.ablationLoss);
  ctx.out->attr(layout::child(g, layout::entry::kHeadAblationAccuracy), "intact", heads.accuracy);
  ctx.out->attr(layout::child(g, layout::entry::kHeadAblationLoss), "intact", heads.loss);
  writeHeadAblationIntervals(ctx, g, heads);
}

/// The datasets of analysis/<model>/ that the "heads" and "probes" passes write; the first of
/// each carries the inputs key (attribute "inputs") and, when copied, "reused_from".
const std::vector<const char*>& headEntries() {
  static const std::vector<const char*> names{
      layout::entry::kHeadImportance,           layout::entry::kHeadImportanceRaw,
      layout::entry::kHeadImportanceLo,         layout::entry::kHeadImportanceHi,
      layout::entry::kHeadImportanceRawLo,      layout::entry::kHeadImportanceRawHi,
      layout::entry::kHeadAblationAccuracy,     layout::entry::kHeadAblationLoss,
      layout::entry::kHeadAblationAccuracyDrop, layout::entry::kHeadAblationAccuracyDropLo,
      layout::entry::kHeadAblationAccuracyDropHi, layout::entry::kHeadAblationLossIncrease,
      layout::entry::kHeadAblationLossIncreaseLo, layout::entry::kHeadAblationLossIncreaseHi};
  return names;
}
const std::vector<const char*>& probeEntries() {
  static const std::vector<const char*> names{
      layout::entry::kProbeAccuracy,      layout::entry::kProbeAccuracyLo,     layout::entry::kProbeAccuracyHi,
      layout::entry::kProbeTrainAccuracy, layout::entry::kProbeRelativeDepth, layout::entry::kProbeConverged};
  return names;
}

/// FNV-1a (64 bits) over the bytes of values, continuing from `h`.
template <class T> std::uint64_t fnv(std::uint64_t h, const T* values, std::size_t count) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(values);
  for (std::size_t i = 0; i < count * sizeof(T); ++i) {
    h ^= bytes[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/// A fingerprint of rows [0, rows) of a split as a model reads them (labels, tokens, features,
/// segment ids) and of the task's shape: equal fingerprints, the same inputs to the heads and
/// probes passes.
std::string splitFingerprint(const TaskData& data, const Split& split, std::size_t rows) {
  std::uint64_t h = 1469598103934665603ULL;
  const std::int64_t shape[] = {static_cast<std::int64_t>(rows), data.seqLen, data.dim, data.numClasses()};
  h = fnv(h, shape, 4);
  h = fnv(h, split.labels.data(), std::min(rows, split.labels.size()));
  const auto rowsOf = [&](const auto& values) {
    const std::size_t per = split.size() > 0 ? values.size() / split.size() : 0;
    h = fnv(h, values.data(), std::min(values.size(), per * rows));
  };
  rowsOf(split.tokens);
  rowsOf(split.features);
  rowsOf(split.tokenTypes);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

/// The names of the fields two inputs keys (JSON objects) disagree on, for the log line.
std::string keyDifference(const std::string& mine, const std::string& theirs) {
  const Json a = Json::parse(mine, nullptr, /*allow_exceptions=*/false);
  const Json b = Json::parse(theirs, nullptr, /*allow_exceptions=*/false);
  if (!a.is_object() || !b.is_object()) {
    return "unreadable inputs key";
  }
  std::string out;
  for (const auto& [k, v] : a.items()) {
    if (!b.contains(k) || b[k] != v) {
      out += (out.empty() ? "" : ", ") + k;
    }
  }
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k)) {
      out += (out.empty() ? "" : ", ") + k;
    }
  }
  return out.empty() ? "the same fields, other text" : out;
}

/// The source run file of options.teacherAnalysesFrom, opened (read-only, checked by the
/// run reader, status complete) on first use; null with ctx.teacherSourceProblem set otherwise.
const RunReader* teacherSource(AnalysisContext& ctx) {
  if (!ctx.teacherSourceTried) {
    ctx.teacherSourceTried = true;
    const std::string& from = ctx.options.teacherAnalysesFrom;
    std::error_code ec;
    try {
      if (!fs::exists(from, ec)) {
        throw InputError("it does not exist");
      }
      if (fs::equivalent(from, ctx.path, ec)) {
        throw InputError("it is the file being analysed");
      }
      auto reader = std::make_unique<RunReader>(from);
      reader->validate();
      const std::string status = reader->file().attrString(layout::root(), layout::attr::kStatus);
      if (status != "complete") {
        throw InputError("its status is '" + status + "'");
      }
      ctx.teacherSource = std::move(reader);
    } catch (const std::exception& e) {
      ctx.teacherSourceProblem = e.what();
    }
  }
  return ctx.teacherSource.get();
}

/// Copies one family ("heads" or "probes") of model m's results from the source run file when
/// the source computed them from the same inputs (`key`). Returns "" when copied, else why not
/// (nothing is left half copied).
std::string reuseFamily(AnalysisContext& ctx, const RunReader& source, const std::string& task, const ModelRecord& m,
                        const std::string& family, const std::string& key, const std::vector<const char*>& entries) {
  const H5File& src = source.file();
  const std::string g = layout::analysisOf(task, m.name);
  const std::string keyPath = layout::child(g, entries.front());
  if (!src.exists(keyPath)) {
    return "it has no " + keyPath;
  }
  if (!src.hasAttr(keyPath, "inputs")) {
    return "its " + keyPath + " records no inputs key (analysed by an older kdscope)";
  }
  const std::string theirs = src.attrString(keyPath, "inputs");
  if (theirs != key) {
    return "its " + family + " results were computed from other inputs (" + keyDifference(key, theirs) + ")";
  }
  for (const char* name : entries) {
    if (!src.isDataset(layout::child(g, name))) {
      return "it has no " + layout::child(g, name);
    }
  }
  try {
    for (const char* name : entries) {
      const std::string path = layout::child(g, name);
      ctx.out->clear(path);
      ctx.file->copyFrom(src, path, path);
    }
    ctx.file->setAttr(keyPath, "reused_from", fs::absolute(ctx.options.teacherAnalysesFrom).lexically_normal().string());
  } catch (const std::exception& e) {
    if (ctx.file->writeFailed()) {
      throw; // this file cannot be written: computing would fail the same way
    }
    for (const char* name : entries) {
      ctx.out->clear(layout::child(g, name));
    }
    return std::string("copying failed: ") + e.what();
  }
  return "";
}

/// One model's probe inputs: its pooled train and eval states.
struct ProbeWork {
  std::string group;   ///< analysis/<model>
  std::string pooling;
  std::string key;     ///< the probes' inputs key ("" for TorchScript models)
  an::PooledStates train;
  an::PooledStates eval;
};

/// Layer l of pooled states, rows x width.
std::vector<float> layerOf(const an::PooledStates& states, std::size_t l) {
  return an::detail::layerOf(states.values, states.layers, states.width, l);
}

/// Fits every layer's probe of every model in `work` in one fitProbes call (the widest
/// models' deepest layers first: they take the most iterations), then writes each model's
/// probe_* datasets.
void writeProbes(AnalysisContext& ctx, const std::string& task, const std::vector<ProbeWork>& work, const std::vector<std::int64_t>& trainLabels,
                 const std::vector<std::int64_t>& evalLabels, std::size_t classes, std::size_t trainCount) {
  struct Set {
    std::size_t model;
    std::size_t layer;
  };
  std::vector<Set> sets;
  for (std::size_t w = 0; w < work.size(); ++w) {
    for (std::size_t l = 0; l < work[w].train.layers; ++l) {
      sets.push_back({w, l});
    }
  }
  std::stable_sort(sets.begin(), sets.end(), [&](const Set& a, const Set& b) {
    const std::size_t wa = work[a.model].train.width;
    const std::size_t wb = work[b.model].train.width;
    return wa != wb ? wa > wb : a.layer > b.layer;
  });
  std::vector<std::vector<float>> features;
  std::vector<std::size_t> widths;
  for (const Set& set : sets) {
    features.push_back(layerOf(work[set.model].train, set.layer));
    widths.push_back(work[set.model].train.width);
  }
  an::ProbeOptions po;
  po.l2 = ctx.options.probeL2;
  po.threads = ctx.options.threads;
  ctx.checkCancel();
  ctx.phase(task, "", "fitting " + std::to_string(sets.size()) + " linear probes (every layer of " +
                          std::to_string(work.size()) + (work.size() == 1 ? " model)" : " models)"));
  const std::vector<an::LinearProbe> fitted = an::fitProbes(features, widths, trainLabels, classes, po);
  // Each probe's held-out accuracy with its interval and its train accuracy, the probes side by
  // side (each probe's numbers are computed as alone).
  struct Scored {
    double accuracy = kNaN;
    double lo = kNaN;
    double hi = kNaN;
    double train = kNaN;
  };
  std::vector<Scored> scored(sets.size());
  ctx.checkCancel();
  an::detail::parallelFor(sets.size(), an::detail::resolveThreads(ctx.options.threads), [&](std::size_t k) {
    const an::LinearProbe& probe = fitted[k];
    const std::vector<float> xEval = layerOf(work[sets[k].model].eval, sets[k].layer);
    // Its 95% interval: bootstrap of the held-out predictions (the fitted probe fixed;
    // refitting per resample would cost B fits per layer; docs/statistics.md, "Probes").
    const auto predicted = an::predictProbe(probe, xEval);
    std::vector<double> right(predicted.size());
    std::size_t correct = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      const bool hit = predicted[i] == evalLabels[i];
      right[i] = hit ? 1.0 : 0.0;
      correct += hit ? 1 : 0;
    }
    // probeAccuracy's value, from these predictions (not a second pass over the rows).
    scored[k].accuracy = predicted.empty() ? kNaN : static_cast<double>(correct) / static_cast<double>(predicted.size());
    const an::Interval band =
        an::bootstrapMean(right, an::BootstrapOptions{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed});
    scored[k].lo = band.lo;
    scored[k].hi = band.hi;
    scored[k].train = an::probeAccuracy(probe, features[k], trainLabels);
  });
  for (std::size_t w = 0; w < work.size(); ++w) {
    ctx.checkCancel();
    const ProbeWork& one = work[w];
    const std::string& g = one.group;
    const std::size_t L = one.train.layers;
    std::vector<double> accuracy(L, kNaN);
    std::vector<double> accuracyLo(L, kNaN);
    std::vector<double> accuracyHi(L, kNaN);
    std::vector<double> trainAccuracy(L, kNaN);
    std::vector<double> depth(L, 0.0);
    std::vector<std::int64_t> converged(L, 0);
    for (std::size_t k = 0; k < sets.size(); ++k) {
      if (sets[k].model != w) {
        continue;
      }
      const std::size_t l = sets[k].layer;
      accuracy[l] = scored[k].accuracy;
      accuracyLo[l] = scored[k].lo;
      accuracyHi[l] = scored[k].hi;
      trainAccuracy[l] = scored[k].train;
      depth[l] = L > 1 ? static_cast<double>(l) / static_cast<double>(L - 1) : 0.0;
      converged[l] = fitted[k].converged ? 1 : 0;
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
    ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "solver", std::string(an::kProbeSolver));
    ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "train_examples", static_cast<std::int64_t>(trainCount));
    ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "pooling", one.pooling);
    ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "layer0", "embedding output");
    if (!one.key.empty()) {
      ctx.out->attr(layout::child(g, layout::entry::kProbeAccuracy), "inputs", one.key);
    }
  }
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

  // The inputs keys: what each family's result depends on (docs/analyses.md, "Reusing a
  // study's teacher analyses"). The data part is the same for every model of the task.
  const std::string evalPrint = splitFingerprint(data, data.eval, data.eval.size());
  const std::string trainPrint = splitFingerprint(data, data.train, trainCount);

  std::vector<ProbeWork> probeWork; // the probes' inputs, model by model; fitted after the loop
  std::size_t done = 0;
  for (const auto& [m, path] : available) {
    ctx.checkCancel();
    ctx.advance(0.55 + 0.45 * static_cast<double>(done++) / static_cast<double>(available.size()));
    const std::string g = layout::analysisOf(task, m->name);
    const std::string pooling = m->pooling.empty() ? (ctx.job ? ctx.job->recording.pooling : "mean") : m->pooling;
    std::string headsKey;
    std::string probesKey;
    if (!m->torchScript) {
      std::string checkpointHash;
      try {
        checkpointHash = an::fileSha1(path);
      } catch (const InputError&) {
        checkpointHash.clear(); // no key: loading it below says what is wrong
      }
      if (!checkpointHash.empty()) {
        Json common = {{"kdscope_version", kdscopeVersion()},
                       {"checkpoint_sha1", checkpointHash},
                       {"architecture", m->architectureJson},
                       {"eval_data", evalPrint},
                       {"bootstrap_resamples", ctx.options.bootstrapResamples},
                       {"bootstrap_seed", ctx.options.bootstrapSeed}};
        Json heads = common;
        heads["analysis"] = "heads";
        headsKey = heads.dump();
        Json probes = common;
        probes["analysis"] = "probes";
        probes["train_data"] = trainPrint;
        probes["probe_train_examples"] = trainCount;
        probes["probe_l2"] = ctx.options.probeL2;
        probes["probe_solver"] = an::kProbeSolver;
        probes["pooling"] = pooling;
        probesKey = probes.dump();
      }
    }
    // The teacher's results copied from the source run file, when it computed them from the
    // same inputs; else computed below.
    bool headsDone = !ctx.wants("heads");
    bool probesDone = !ctx.wants("probes");
    if (m->role == "teacher" && !ctx.options.teacherAnalysesFrom.empty() && !headsKey.empty()) {
      const std::string& from = ctx.options.teacherAnalysesFrom;
      std::string why;
      const RunReader* source = teacherSource(ctx);
      if (source == nullptr) {
        why = ctx.teacherSourceProblem;
      } else {
        try {
          const H5File& src = source->file();
          const std::string a = layout::analysis(task);
          if (!src.exists(a) || !src.hasAttr(a, "status") || src.attrString(a, "status") != "complete") {
            why = "its task '" + task + "' is not analysed (no complete " + a + ")";
          } else if (!src.isDataset(layout::evalLogits(task, m->name))) {
            why = "it has no " + layout::evalLogits(task, m->name);
          } else {
            // The checkpoints agree (the key); so must what each run recorded of the model.
            const std::vector<float> theirs = src.readFloat(layout::evalLogits(task, m->name));
            double worst = theirs.size() == m->logits.size() ? 0.0 : kNaN;
            for (std::size_t i = 0; i < theirs.size() && i < m->logits.size(); ++i) {
              const double d = std::abs(static_cast<double>(theirs[i]) - m->logits[i]);
              worst = std::max(worst, d / (1.0 + std::abs(static_cast<double>(m->logits[i]))));
            }
            if (!(worst <= kLogitTolerance)) {
              why = "its " + layout::evalLogits(task, m->name) + " differ from this run's (relative difference " +
                    formatNumber(worst) + ")";
            }
          }
        } catch (const std::exception& e) {
          why = e.what();
        }
      }
      std::vector<std::string> reused;
      std::vector<std::string> notReused;
      if (why.empty()) {
        for (const auto& [family, key, entries, flag] :
             {std::tuple<const char*, const std::string*, const std::vector<const char*>*, bool*>{
                  "heads", &headsKey, &headEntries(), &headsDone},
              std::tuple<const char*, const std::string*, const std::vector<const char*>*, bool*>{
                  "probes", &probesKey, &probeEntries(), &probesDone}}) {
          if (*flag) {
            continue;
          }
          const std::string reason = reuseFamily(ctx, *source, task, *m, family, *key, *entries);
          if (reason.empty()) {
            *flag = true;
            reused.emplace_back(family);
          } else {
            notReused.push_back(std::string(family) + ": " + reason);
          }
        }
      }
      if (!reused.empty()) {
        std::string list;
        for (const auto& r : reused) {
          list += (list.empty() ? "" : " and ") + r;
        }
        ctx.phase(task, m->name, list + " reused from " + from + " (same checkpoint, data and options)");
      }
      if (!why.empty()) {
        ctx.phase(task, m->name, "not reusing the teacher's analyses of " + from + ": " + why + "; computing them");
      }
      for (const auto& line : notReused) {
        ctx.phase(task, m->name, "not reusing the teacher's " + line + " (from " + from + "); computing them");
      }
    }
    if (headsDone && probesDone) {
      continue;
    }
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
    // One pass over the eval split for everything that reads it: the head scores' forward
    // passes also give the logits the checkpoint check reads and, when the probes run, their
    // pooled eval states; without heads, the probes' eval states give the logits.
    const bool probesRun =
        !probesDone && handle->hiddenUnavailable().empty() && m->checkSkipped.count("probes") == 0;
    const bool headsRun = !headsDone && handle->heads() > 0 && handle->headGateUnavailable().empty() &&
                          m->checkSkipped.count("heads") == 0;
    std::optional<an::HeadScores> scores;
    std::optional<an::PooledStates> evalStates;
    if (headsRun) {
      ctx.phase(task, m->name, "head importance (gradient of a head gate) and single-head ablation");
      scores = handle->headScores(data, data.eval, ctx.cancel, probesRun ? &pooling : nullptr);
      ctx.checkCancel();
      if (probesRun) {
        evalStates = std::move(scores->pooled);
      }
    } else if (probesRun) {
      evalStates = handle->pooledStates(data, data.eval, evalRows, pooling);
    }
    // The checkpoint must be the model the run recorded.
    const std::vector<float> logits =
        scores ? std::move(scores->logits) : (evalStates ? std::move(evalStates->logits) : handle->logits(data, data.eval));
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
    // The heads' results (their bootstrap intervals) are computed and written beside the
    // probes' pass over the train split (runSideBySide), which needs every core.
    std::function<void()> headResults;
    if (!headsDone) {
      if (handle->heads() <= 0) {
        if (anyHeads) {
          ctx.skip(task, "heads/" + m->name, "the model has no attention heads");
        }
      } else if (const std::string why = handle->headGateUnavailable(); !why.empty() || m->checkSkipped.count("heads") > 0) {
        ctx.skip(task, "heads/" + m->name, lackReason(*m, "heads", "no head gate: " + why));
      } else {
        headResults = [&] {
          const ModelLane lane; // on a thread of its own, still the model lane's reports
          writeHeadResults(ctx, g, headsKey, *scores);
        };
      }
    }
    std::optional<ProbeWork> probe;
    if (!probesDone && !probesRun) {
      ctx.skip(task, "probes/" + m->name, lackReason(*m, "probes", "no hidden states: " + handle->hiddenUnavailable()));
    } else if (!probesDone) {
      ctx.phase(task, m->name, "linear probes per layer (" + std::to_string(trainCount) + " train examples)");
      probe.emplace();
      probe->group = g;
      probe->pooling = pooling;
      probe->key = probesKey;
      probe->eval = std::move(*evalStates);
    }
    const auto trainStates = [&] {
      if (probe) {
        probe->train = handle->pooledStates(data, data.train, trainRows, pooling);
      }
    };
    if (headResults && probe) {
      runSideBySide(headResults, trainStates, ctx.cancel);
    } else {
      if (headResults) {
        headResults();
      }
      trainStates();
    }
    if (probe) {
      probeWork.push_back(std::move(*probe));
    }
  }
  // Every model's probes of this task fitted together (fitProbes: side by side, one thread
  // each, the longest first, each bit for bit fitProbe's), then written model by model.
  if (!probeWork.empty()) {
    writeProbes(ctx, task, probeWork, trainLabels, data.eval.labels, classes, trainCount);
  }
}

} // namespace kdscope::core::passes
