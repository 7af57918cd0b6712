// Part of the "task" analysis (run right after taskMetricsPass): the 95% bootstrap interval
// of every task metric, the paired tests of each student against its teacher and against
// every other student of the task, and the loss pattern (core/analysis/task_intervals.h,
// core/analysis/loss_pattern.h; what is written: docs/run-format.md; how to read it:
// docs/statistics.md).
#include "core/analysis/passes/analysis_context.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/analysis/loss_pattern.h"
#include "core/analysis/stats.h"
#include "core/analysis/task_intervals.h"
#include "core/common/error.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace {

/// What every group of this pass records about its bootstrap.
void bootstrapAttrs(AnalysisContext& ctx, const std::string& g, const an::BootstrapOptions& options, std::size_t n) {
  ctx.out->attr(g, "resamples", static_cast<std::int64_t>(options.resamples));
  ctx.out->attr(g, "seed", static_cast<std::int64_t>(options.seed));
  ctx.out->attr(g, "level", options.level);
  ctx.out->attr(g, "examples", static_cast<std::int64_t>(n));
}

void writeIntervals(AnalysisContext& ctx, const std::string& g, const std::vector<an::NamedInterval>& intervals,
                    const an::BootstrapOptions& options, std::size_t n) {
  ctx.out->clear(g);
  ctx.out->group(g);
  bootstrapAttrs(ctx, g, options, n);
  ctx.out->attr(g, "method", std::string("percentile bootstrap over eval examples (every metric on the same "
                                         "resamples; retained_fraction as a ratio of sums, ece with its 15 bins "
                                         "recomputed on each resample)"));
  ctx.out->attr(g, "over", std::string(an::kOverExamples));
  std::vector<std::string> names;
  for (const an::NamedInterval& m : intervals) {
    names.push_back(m.name);
    ctx.out->attr(g, m.name, m.interval.estimate);
    ctx.out->attr(g, m.name + "_lo", m.interval.lo);
    ctx.out->attr(g, m.name + "_hi", m.interval.hi);
  }
  ctx.out->attr(g, "metrics", names);
}

void writePaired(AnalysisContext& ctx, const std::string& g, const std::string& otherRole,
                 const an::CorrectnessComparison& c, const an::BootstrapOptions& options) {
  ctx.out->clear(g);
  ctx.out->group(g);
  bootstrapAttrs(ctx, g, options, c.examples);
  ctx.out->attr(g, "other_role", otherRole);
  ctx.out->attr(g, "only_this", static_cast<std::int64_t>(c.onlyFirst));
  ctx.out->attr(g, "only_other", static_cast<std::int64_t>(c.onlySecond));
  ctx.out->attr(g, "both_right", static_cast<std::int64_t>(c.bothRight));
  ctx.out->attr(g, "both_wrong", static_cast<std::int64_t>(c.bothWrong));
  ctx.out->attr(g, "mcnemar_p", c.mcnemarP);
  ctx.out->attr(g, "accuracy_difference", c.accuracyDifference.difference.estimate);
  ctx.out->attr(g, "accuracy_difference_lo", c.accuracyDifference.difference.lo);
  ctx.out->attr(g, "accuracy_difference_hi", c.accuracyDifference.difference.hi);
  ctx.out->attr(g, "bootstrap_p", c.accuracyDifference.pValue);
  ctx.out->attr(g, "tests", std::string("exact McNemar on correctness (only_this vs only_other); paired "
                                        "bootstrap (centred) of accuracy(this) - accuracy(other)"));
}

/// Input length of each eval example: the non-padding tokens after [CLS] (eval/tokens).
std::vector<double> inputLengths(AnalysisContext& ctx, const std::string& task, std::size_t n) {
  const std::string path = layout::evalTokens(task);
  if (!ctx.file->isDataset(path)) {
    return {};
  }
  const auto shape = ctx.file->shape(path);
  if (shape.size() != 2 || shape[0] != n) {
    throw InputError(ctx.path + ": " + path + ": expected [N, Len] with N = " + std::to_string(n) +
                     " eval examples");
  }
  const std::vector<std::int64_t> tokens = ctx.file->readInt64(path);
  std::vector<double> out(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t count = 0;
    for (std::size_t t = 0; t < shape[1]; ++t) {
      count += tokens[i * shape[1] + t] != 0 ? 1 : 0;
    }
    out[i] = static_cast<double>(count > 0 ? count - 1 : 0);
  }
  return out;
}

void writeLossPattern(AnalysisContext& ctx, const std::string& g, const an::LossPattern& lp,
                      const an::BootstrapOptions& options) {
  ctx.out->clear(g);
  ctx.out->group(g);
  bootstrapAttrs(ctx, g, options, lp.examples);
  ctx.out->attr(g, "lost", static_cast<std::int64_t>(lp.lost));
  ctx.out->attr(g, "rest", static_cast<std::int64_t>(lp.examples - lp.lost));
  ctx.out->attr(g, "note", lp.note);
  std::vector<std::string> factors;
  for (const an::ContinuousFactor& f : lp.factors) {
    factors.push_back(f.name);
    const std::string fg = layout::child(g, f.name);
    ctx.out->group(fg);
    ctx.out->attr(fg, "definition", f.definition);
    ctx.out->attr(fg, "mean_lost", f.meanLost);
    ctx.out->attr(fg, "mean_rest", f.meanRest);
    ctx.out->attr(fg, "median_lost", f.medianLost);
    ctx.out->attr(fg, "median_rest", f.medianRest);
    ctx.out->attr(fg, "u", f.test.u);
    ctx.out->attr(fg, "p_value", f.test.pValue);
    ctx.out->attr(fg, "test", std::string(f.test.exact ? "Mann-Whitney U, exact"
                                                       : "Mann-Whitney U, normal approximation (tie-corrected, "
                                                         "continuity-corrected)"));
    ctx.out->attr(fg, "rank_biserial", f.test.rankBiserial.estimate);
    ctx.out->attr(fg, "rank_biserial_lo", f.test.rankBiserial.lo);
    ctx.out->attr(fg, "rank_biserial_hi", f.test.rankBiserial.hi);
  }
  ctx.out->attr(g, "factors", factors);
  if (lp.factors.empty()) {
    return; // nothing was tested (lp.note says why)
  }
  const an::ClassFactor& c = lp.goldClass;
  const std::string cg = layout::child(g, layout::entry::kGoldClass);
  const std::uint64_t classes = c.lost.size();
  std::vector<std::int64_t> lost(c.lost.begin(), c.lost.end());
  std::vector<std::int64_t> rest(c.rest.begin(), c.rest.end());
  std::vector<double> fisherP;
  std::vector<double> odds;
  std::vector<double> oddsLo;
  std::vector<double> oddsHi;
  for (std::size_t k = 0; k < classes; ++k) {
    fisherP.push_back(c.fisher[k].pValue);
    odds.push_back(c.oddsRatio[k].estimate);
    oddsLo.push_back(c.oddsRatio[k].lo);
    oddsHi.push_back(c.oddsRatio[k].hi);
  }
  ctx.out->ints(layout::child(cg, layout::entry::kLost), {classes}, lost);
  ctx.out->ints(layout::child(cg, layout::entry::kRest), {classes}, rest);
  ctx.out->floats(layout::child(cg, layout::entry::kFisherP), {classes}, fisherP);
  ctx.out->floats(layout::child(cg, layout::entry::kOddsRatio), {classes}, odds);
  ctx.out->floats(layout::child(cg, layout::entry::kOddsRatioLo), {classes}, oddsLo);
  ctx.out->floats(layout::child(cg, layout::entry::kOddsRatioHi), {classes}, oddsHi);
  ctx.out->attr(cg, "chi_square", c.chiSquare.chiSquare);
  ctx.out->attr(cg, "df", static_cast<std::int64_t>(c.chiSquare.df));
  ctx.out->attr(cg, "p_value", c.chiSquare.pValue);
  ctx.out->attr(cg, "min_expected", c.chiSquare.minExpected);
  ctx.out->attr(cg, "cramers_v", c.cramersV.estimate);
  ctx.out->attr(cg, "cramers_v_lo", c.cramersV.lo);
  ctx.out->attr(cg, "cramers_v_hi", c.cramersV.hi);
  ctx.out->attr(cg, "test", std::string("Pearson chi-square of the class x lost table; per class, Fisher's exact "
                                        "test and Woolf's odds-ratio interval against the other classes"));

  const an::LossLogistic& fit = lp.logistic;
  const std::string lg = layout::child(g, layout::entry::kLogistic);
  std::vector<std::string> terms;
  std::vector<double> coefficient;
  std::vector<double> lo;
  std::vector<double> hi;
  std::vector<double> se;
  std::vector<double> p;
  for (const an::LogisticTerm& t : fit.terms) {
    terms.push_back(t.name);
    coefficient.push_back(t.coefficient.value.estimate);
    lo.push_back(t.coefficient.value.lo);
    hi.push_back(t.coefficient.value.hi);
    se.push_back(t.coefficient.se);
    p.push_back(t.coefficient.pValue);
  }
  const std::uint64_t k = terms.size();
  ctx.out->strings(layout::child(lg, layout::entry::kTerm), terms);
  ctx.out->floats(layout::child(lg, layout::entry::kCoefficient), {k}, coefficient);
  ctx.out->floats(layout::child(lg, layout::entry::kCoefficientLo), {k}, lo);
  ctx.out->floats(layout::child(lg, layout::entry::kCoefficientHi), {k}, hi);
  ctx.out->floats(layout::child(lg, layout::entry::kStandardError), {k}, se);
  ctx.out->floats(layout::child(lg, layout::entry::kPValue), {k}, p);
  ctx.out->attr(lg, "converged", static_cast<std::int64_t>(fit.converged ? 1 : 0));
  ctx.out->attr(lg, "iterations", static_cast<std::int64_t>(fit.iterations));
  ctx.out->attr(lg, "includes_gold_class", static_cast<std::int64_t>(fit.includesClass ? 1 : 0));
  ctx.out->attr(lg, "reference_class", fit.referenceClass);
  ctx.out->attr(lg, "note", fit.note);
  ctx.out->attr(lg, "scale", std::string("log odds of lost; continuous factors standardised (per sample sd), "
                                         "class:<c> = indicator of gold class c against reference_class; Wald "
                                         "intervals and p-values"));
}

} // namespace

void intervalsPass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const std::vector<std::int64_t>& labels = in.labels;
  const std::size_t classes = in.classes;
  const ModelRecord& teacher = *in.teacher;
  const an::BootstrapOptions options{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
  const std::size_t n = labels.size();

  writeIntervals(ctx, layout::child(layout::analysisOf(task, teacher.name), layout::entry::kIntervals),
                 an::modelIntervals(teacher.logits, labels, classes, options), options, n);
  for (const ModelRecord* s : in.students) {
    ctx.checkCancel();
    const std::string g = layout::analysisOf(task, s->name);
    writeIntervals(ctx, layout::child(g, layout::entry::kIntervals),
                   an::studentIntervals(teacher.logits, s->logits, labels, classes, options), options, n);
    const std::string paired = layout::child(g, layout::entry::kPaired);
    ctx.out->clear(paired);
    ctx.out->group(paired);
    writePaired(ctx, layout::child(paired, teacher.name), "teacher",
                an::compareCorrectness(s->logits, teacher.logits, labels, classes, options), options);
    for (const ModelRecord* other : in.students) {
      if (other != s) {
        writePaired(ctx, layout::child(paired, other->name), "student",
                    an::compareCorrectness(s->logits, other->logits, labels, classes, options), options);
      }
    }
  }

  const std::vector<double> lengths = inputLengths(ctx, task, n);
  for (const ModelRecord* s : in.students) {
    ctx.checkCancel();
    writeLossPattern(ctx, layout::child(layout::analysisOf(task, s->name), layout::entry::kLossPattern),
                     an::lossPattern(teacher.logits, s->logits, labels, classes, lengths, options), options);
  }
}

} // namespace kdscope::core::passes
