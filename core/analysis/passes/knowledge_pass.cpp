// The "knowledge" pass (docs/analyses.md, knowledge levels): the gradient rescaling weight w
// against the teacher's confidence (instance), class-similarity geometry (domain), and the
// gain decomposition from the four control students (universe, instance, domain).
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/analysis/knowledge.h"
#include "core/analysis/knowledge_intervals.h"
#include "core/analysis/metrics.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace {

/// The four control students of the knowledge levels, by role.
struct ControlStudents {
  std::string ce;
  std::string ls;
  std::string kdpt;
  std::string kd;
  std::string source;
};

std::optional<ControlStudents> findControls(const std::vector<const ModelRecord*>& students) {
  std::map<std::string, const ModelRecord*> byName;
  for (const ModelRecord* s : students) {
    byName[s->name] = s;
  }
  if (byName.count("ctl-ce") && byName.count("ctl-ls") && byName.count("ctl-kdpt") && byName.count("ctl-kd")) {
    return ControlStudents{"ctl-ce", "ctl-ls", "ctl-kdpt", "ctl-kd", "knowledge_controls"};
  }
  // Otherwise recognise them by objective, among students of one architecture.
  std::vector<std::string> architectures;
  for (const ModelRecord* s : students) {
    if (std::find(architectures.begin(), architectures.end(), s->architectureJson) == architectures.end()) {
      architectures.push_back(s->architectureJson);
    }
  }
  for (const std::string& arch : architectures) {
    ControlStudents c;
    for (const ModelRecord* s : students) {
      const ParsedObjective& o = s->objective;
      if (s->architectureJson != arch || !o.known || !o.pure) {
        continue;
      }
      const an::LogitObjective& l = o.logit;
      if (!o.hasKd && l.labelSmoothing == 0.0 && c.ce.empty()) {
        c.ce = s->name;
      } else if (!o.hasKd && l.labelSmoothing > 0.0 && c.ls.empty()) {
        c.ls = s->name;
      } else if (o.hasKd && l.lambda > 0.0 && l.ptTargets && l.labelSmoothing == 0.0 && c.kdpt.empty()) {
        c.kdpt = s->name;
      } else if (o.hasKd && l.lambda > 0.0 && !l.ptTargets && l.labelSmoothing == 0.0 && c.kd.empty()) {
        c.kd = s->name;
      }
    }
    if (!c.ce.empty() && !c.ls.empty() && !c.kdpt.empty() && !c.kd.empty()) {
      c.source = "recognised from the students' objectives (same architecture; CE, LS, KD-pt, KD)";
      return c;
    }
  }
  return std::nullopt;
}

/// `<name>_lo`, `<name>_hi` and `<name>_interval` (what the interval is over, B and the level)
/// beside the estimate attribute `<name>` the pass writes.
void writeIntervalAttrs(AnalysisContext& ctx, const std::string& g, const std::string& name, const an::Interval& i) {
  ctx.out->attr(g, name + "_lo", i.lo);
  ctx.out->attr(g, name + "_hi", i.hi);
  ctx.out->attr(g, name + "_interval",
                std::string(i.over) + ", B = " + std::to_string(i.resamples) + ", 95%, " + std::to_string(i.count) +
                    " examples");
}

} // namespace

void knowledgePass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const std::vector<std::int64_t>& labels = in.labels;
  const std::size_t classes = in.classes;
  const ModelRecord& teacher = *in.teacher;
  const std::vector<const ModelRecord*>& students = in.students;
  const std::map<std::string, std::vector<double>>& weights = in.weights;
  const std::map<std::string, std::string>& weightSources = in.weightSources;
  // The objective each student's w was computed with, and the students without one.
  for (const auto& [name, objective] : in.weightObjectives) {
    const std::string g = layout::analysisOf(task, name);
    ctx.out->attr(g, "w_lambda", objective.lambda);
    ctx.out->attr(g, "w_temperature", objective.temperature);
    ctx.out->attr(g, "w_t_squared", static_cast<std::int64_t>(objective.tSquared ? 1 : 0));
    ctx.out->attr(g, "w_label_smoothing", objective.labelSmoothing);
    ctx.out->attr(g, "w_logit_mse", objective.logitMse);
  }
  for (const ModelRecord* s : students) {
    if (weights.count(s->name) == 0) {
      ctx.skip(task, "knowledge/" + layout::child(s->name, layout::entry::kGradRescale),
           "the student has no KD term and the job has no knowledge_controls or KD student to take lambda and T from");
    }
  }
  const std::string a = layout::analysis(task);
  const std::uint64_t c = classes;
  const an::BootstrapOptions boot{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
  const std::vector<double> py = an::trueClassProbabilities(teacher.probs, labels, classes);
  ctx.out->floats(layout::analysisEntry(task, "teacher", layout::entry::kTrueClassProbability), {labels.size()}, py);

  // Domain: class-similarity matrices of every model, geometry agreement with the teacher.
  std::map<std::string, an::Matrix> byWeights;
  std::map<std::string, an::Matrix> byProbs;
  std::vector<const ModelRecord*> all{&teacher};
  all.insert(all.end(), students.begin(), students.end());
  for (const ModelRecord* m : all) {
    const std::string g = layout::analysisOf(task, m->name);
    if (m->hasClassifier) {
      const auto weight = ctx.file->readFloat(layout::classifierWeight(task, m->name));
      byWeights[m->name] = an::classSimilarityFromWeights(weight, classes, m->classifierWidth);
      ctx.out->matrix(layout::child(g, layout::entry::kClassSimilarityWeights), byWeights[m->name]);
    } else {
      ctx.skip(task, "knowledge/" + layout::child(m->name, layout::entry::kClassSimilarityWeights), "the model has no classifier/weight");
    }
    byProbs[m->name] = an::classSimilarityFromProbs(m->probs, labels, classes);
    ctx.out->matrix(layout::child(g, layout::entry::kClassSimilarityProbs), byProbs[m->name]);
  }
  for (const ModelRecord* s : students) {
    const std::string g = layout::analysisOf(task, s->name);
    double agreementWeights = kNaN;
    if (byWeights.count("teacher") && byWeights.count(s->name)) {
      agreementWeights = an::offDiagonalCorrelation(byWeights["teacher"], byWeights[s->name]);
    }
    ctx.out->attr(g, "geometry_agreement_weights", agreementWeights);
    ctx.out->attr(g, "geometry_agreement_probs", an::offDiagonalCorrelation(byProbs["teacher"], byProbs[s->name]));
    writeIntervalAttrs(ctx, g, "geometry_agreement_probs",
                       an::geometryAgreementProbsInterval(teacher.probs, s->probs, labels, classes, boot));

    // Instance: w and its relation to the teacher's confidence.
    const auto w = weights.find(s->name);
    if (w == weights.end()) {
      continue;
    }
    ctx.out->floats(layout::child(g, layout::entry::kGradRescale), {labels.size()}, w->second);
    ctx.out->attr(layout::child(g, layout::entry::kGradRescale), "source", weightSources.at(s->name));
    ctx.out->attr(layout::child(g, layout::entry::kGradRescale), "formula",
                "w = g / g_CE, g = d objective_i / d z_y = (1 - lambda)(q_y - 1 + eps (C-1)/C) + lambda (f/T)(q^T_y - "
                "p^T_y) + logit_mse 2 (z_s,y - z_t,y)/C, f = T^2 (t_squared) or 1, g_CE = q_y - 1; NaN where q_y = 1");
    const an::ConfidenceBins bins = an::binByConfidence(w->second, py, ctx.options.confidenceBins);
    const std::uint64_t b = bins.count.size();
    const std::string wb = layout::child(g, layout::entry::kWByConfidence);
    ctx.out->floats(layout::child(wb, layout::entry::kLower), {b}, bins.lower);
    ctx.out->floats(layout::child(wb, layout::entry::kUpper), {b}, bins.upper);
    ctx.out->ints(layout::child(wb, layout::entry::kCount), {b}, sizesToInt64(bins.count));
    ctx.out->floats(layout::child(wb, layout::entry::kMeanW), {b}, bins.meanValue);
    ctx.out->floats(layout::child(wb, layout::entry::kMeanConfidence), {b}, bins.meanConfidence);
    ctx.out->attr(wb, "confidence", "the teacher's p_y (T = 1); bin b holds (b/B, (b+1)/B]");
    ctx.out->floats(layout::child(g, layout::entry::kWPerClass), {c}, an::perClassMean(w->second, labels, classes));
    ctx.out->attr(g, "spearman_w_confidence", an::spearmanCorrelation(w->second, py));
    writeIntervalAttrs(ctx, g, "spearman_w_confidence", an::spearmanInterval(w->second, py, boot));
    ctx.out->attr(g, "pearson_w_confidence", an::pearsonCorrelation(w->second, py));
    double sum = 0.0;
    std::size_t count = 0;
    for (double v : w->second) {
      if (!std::isnan(v)) {
        sum += v;
        ++count;
      }
    }
    ctx.out->attr(g, "w_mean", count > 0 ? sum / static_cast<double>(count) : kNaN);
  }

  // Universe, instance, domain: the gain decomposition from the four control students.
  const auto controls = findControls(students);
  const std::string k = layout::knowledge(task);
  if (!controls) {
    ctx.out->clear(k);
    ctx.skip(task, "knowledge/gain decomposition",
         "needs CE, LS, KD-pt and KD students of one architecture (set knowledge_controls in the job)");
    return;
  }
  std::map<std::string, const ModelRecord*> byName;
  for (const ModelRecord* s : students) {
    byName[s->name] = s;
  }
  const std::vector<std::string> names{controls->ce, controls->ls, controls->kdpt, controls->kd};
  std::vector<std::int64_t> correct;
  for (const std::string& name : names) {
    const auto pred = an::predictions(byName[name]->logits, classes);
    std::int64_t right = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      right += pred[i] == labels[i] ? 1 : 0;
    }
    correct.push_back(right);
  }
  const auto nd = static_cast<double>(labels.size());
  const an::GainDecomposition gains = an::gainDecomposition(
      static_cast<double>(correct[0]) / nd, static_cast<double>(correct[1]) / nd, static_cast<double>(correct[2]) / nd,
      static_cast<double>(correct[3]) / nd);
  ctx.out->clear(k);
  ctx.out->group(k);
  ctx.out->attr(k, "students", names);
  ctx.out->attr(k, "roles", std::vector<std::string>{"CE", "LS", "KD-pt", "KD"});
  ctx.out->attr(k, "source", controls->source);
  ctx.out->attr(k, "acc_ce", static_cast<double>(correct[0]) / nd);
  ctx.out->attr(k, "acc_ls", static_cast<double>(correct[1]) / nd);
  ctx.out->attr(k, "acc_kdpt", static_cast<double>(correct[2]) / nd);
  ctx.out->attr(k, "acc_kd", static_cast<double>(correct[3]) / nd);
  ctx.out->attr(k, "universe", gains.universe);
  ctx.out->attr(k, "instance", gains.instance);
  ctx.out->attr(k, "domain", gains.domain);
  ctx.out->attr(k, "total", gains.total);
  ctx.out->attr(k, "ls_share_of_kd_gain", gains.lsShareOfKdGain);
  {
    // 95% intervals of the levels: a paired bootstrap over the eval examples (every student
    // scored on the same resample; core/analysis/knowledge_intervals.h).
    std::vector<std::vector<double>> correctness;
    for (const std::string& name : names) {
      const auto pred = an::predictions(byName[name]->logits, classes);
      std::vector<double> right(labels.size());
      for (std::size_t i = 0; i < labels.size(); ++i) {
        right[i] = pred[i] == labels[i] ? 1.0 : 0.0;
      }
      correctness.push_back(std::move(right));
    }
    const an::GainIntervals gi = an::gainIntervals(correctness, boot);
    writeIntervalAttrs(ctx, k, "universe", gi.universe);
    writeIntervalAttrs(ctx, k, "instance", gi.instance);
    writeIntervalAttrs(ctx, k, "domain", gi.domain);
    writeIntervalAttrs(ctx, k, "total", gi.total);
    writeIntervalAttrs(ctx, k, "ls_share_of_kd_gain", gi.lsShare);
  }
  // Exact integer forms: correct examples, so that the levels add up with no rounding.
  ctx.out->attr(k, "examples", static_cast<std::int64_t>(labels.size()));
  ctx.out->attr(k, "correct_ce", correct[0]);
  ctx.out->attr(k, "correct_ls", correct[1]);
  ctx.out->attr(k, "correct_kdpt", correct[2]);
  ctx.out->attr(k, "correct_kd", correct[3]);
  ctx.out->attr(k, "universe_examples", correct[1] - correct[0]);
  ctx.out->attr(k, "instance_examples", correct[2] - correct[1]);
  ctx.out->attr(k, "domain_examples", correct[3] - correct[2]);
  ctx.out->attr(k, "total_examples", correct[3] - correct[0]);
  ctx.out->attr(k, "ls_epsilon", byName[controls->ls]->objective.logit.labelSmoothing);
  // The temperature ctl-ls's epsilon was matched at, as its objective attribute records it
  // (NaN when the LS student's epsilon was set by hand), and the same matching on the eval split.
  const double lsMatchT = byName[controls->ls]->objective.labelSmoothingMatchTemperature;
  ctx.out->attr(k, "ls_match_temperature", lsMatchT);
  ctx.out->attr(k, "matched_epsilon_eval",
                an::matchedLabelSmoothingEpsilonAt(teacher.logits, labels, classes, std::isnan(lsMatchT) ? 1.0 : lsMatchT));
  std::vector<double> agreementWeights;
  std::vector<double> agreementProbs;
  std::vector<double> spearman;
  for (const std::string& name : names) {
    agreementWeights.push_back(byWeights.count("teacher") && byWeights.count(name)
                                   ? an::offDiagonalCorrelation(byWeights["teacher"], byWeights[name])
                                   : kNaN);
    agreementProbs.push_back(an::offDiagonalCorrelation(byProbs["teacher"], byProbs[name]));
    const auto w = weights.find(name);
    spearman.push_back(w != weights.end() ? an::spearmanCorrelation(w->second, py) : kNaN);
  }
  ctx.out->floats(layout::child(k, layout::entry::kGeometryAgreementWeights), {4}, agreementWeights);
  ctx.out->floats(layout::child(k, layout::entry::kGeometryAgreementProbs), {4}, agreementProbs);
  ctx.out->floats(layout::child(k, layout::entry::kSpearmanWConfidence), {4}, spearman);
}

} // namespace kdscope::core::passes
