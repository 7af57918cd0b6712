// The "cka" and "residual" passes: layer similarity (linear, RBF, minibatch CKA) and the
// distillation residual of the mapped layer pairs, from the pooled eval/hidden.
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/analysis/cka.h"
#include "core/analysis/layer_intervals.h"
#include "core/analysis/residual.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace {

/// At most this many resamples for the CKA intervals: each recomputes every matched pair's
/// CKA on N rows (O(N d^2)), so B = 2000 would make the analysis of a large run minutes
/// longer; 500 keeps the Monte-Carlo error of a 2.5% end small next to the width
/// (docs/statistics.md, "Layers").
constexpr int kCkaResamples = 500;

/// cka_matched and its interval: CKA of each student hidden index with its mapped teacher
/// index (the student's layer map, else uniform), bootstrap over eval examples.
void writeMatchedCka(AnalysisContext& ctx, const std::string& task, const ModelRecord& s,
                     const std::vector<float>& hiddenT, std::size_t lt, std::size_t dt,
                     const std::vector<float>& hiddenS, std::size_t ls, std::size_t ds) {
  ctx.checkCancel();
  const auto [map, list] = ctx.layerMapOf(s.name);
  const an::LayerPairing pairing = an::layerPairing(map, static_cast<int>(lt) - 1, static_cast<int>(ls) - 1, list);
  const an::BootstrapOptions options{std::min(ctx.options.bootstrapResamples, kCkaResamples), 0.95,
                                     ctx.options.bootstrapSeed};
  ctx.phase(task, s.name, "CKA at matched depth with its bootstrap interval (B = " +
                              std::to_string(options.resamples) + ")");
  const auto matched = an::matchedCkaWithRunnerUp(hiddenT, lt, dt, hiddenS, ls, ds, pairing.hidden, options);
  const std::vector<an::Interval>& intervals = matched.cka;
  std::vector<double> value;
  std::vector<double> lo;
  std::vector<double> hi;
  std::vector<std::int64_t> teacherLayer(pairing.hidden.begin(), pairing.hidden.end());
  for (const an::Interval& i : intervals) {
    value.push_back(i.estimate);
    lo.push_back(i.lo);
    hi.push_back(i.hi);
  }
  const std::uint64_t k = value.size();
  const std::string g = layout::analysisOf(task, s.name);
  const std::string v = layout::child(g, layout::entry::kCkaMatched);
  ctx.out->floats(v, {k}, value);
  ctx.out->floats(layout::child(g, layout::entry::kCkaMatchedLo), {k}, lo);
  ctx.out->floats(layout::child(g, layout::entry::kCkaMatchedHi), {k}, hi);
  ctx.out->ints(layout::child(g, layout::entry::kCkaMatchedTeacherLayer), {k}, teacherLayer);
  ctx.out->attr(v, "map", map);
  ctx.out->attr(v, "over", std::string(an::kOverExamples));
  ctx.out->attr(v, "resamples", static_cast<std::int64_t>(options.resamples));
  ctx.out->attr(v, "seed", static_cast<std::int64_t>(options.seed));
  ctx.out->attr(v, "level", options.level);
  // The lowest encoder pair against the next-lowest, from the same resamples.
  writeRunnerUp(*ctx.out, v, matched.lowest);
}

} // namespace

void layersPass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const ModelRecord& teacher = *in.teacher;
  const std::vector<const ModelRecord*>& students = in.students;
  if (!teacher.hasHidden) {
    ctx.skip(task, "cka, residual", lackReason(teacher, "cka", "the teacher has no eval/hidden (recording.hidden was off)"));
    return;
  }
  const std::vector<float> hiddenT = ctx.file->readFloat(layout::evalHidden(task, "teacher"));
  const std::size_t lt = teacher.hiddenLayers;
  const std::size_t dt = teacher.hiddenWidth;
  std::size_t done = 0;
  for (const ModelRecord* s : students) {
    ctx.checkCancel();
    ctx.advance(0.2 + 0.25 * static_cast<double>(done++) / static_cast<double>(std::max<std::size_t>(1, students.size())));
    if (!s->hasHidden) {
      ctx.skip(task, "cka, residual/" + s->name, lackReason(*s, "cka", "the student has no eval/hidden"));
      continue;
    }
    const std::vector<float> hiddenS = ctx.file->readFloat(layout::evalHidden(task, s->name));
    const std::size_t ls = s->hiddenLayers;
    const std::size_t ds = s->hiddenWidth;
    const std::string g = layout::analysisOf(task, s->name);
    const std::string pooling = teacher.pooling.empty() ? "as recorded" : teacher.pooling;
    if (ctx.wants("cka")) {
      ctx.phase(task, s->name, "linear CKA, " + std::to_string(lt) + " x " + std::to_string(ls) + " layer pairs");
      ctx.out->matrix(layout::child(g, layout::entry::kCka), an::ckaMatrix(hiddenT, lt, dt, hiddenS, ls, ds, ctx.numeric));
      ctx.out->attr(layout::child(g, layout::entry::kCka), "pooling", pooling);
      ctx.out->attr(layout::child(g, layout::entry::kCka), "layer0", "embedding output");
      ctx.out->attr(layout::child(g, layout::entry::kCka), "formula", "||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F), columns centred, float64");
      const std::size_t n = hiddenT.size() / (lt * dt);
      writeMatchedCka(ctx, task, *s, hiddenT, lt, dt, hiddenS, ls, ds);
      if (ctx.options.rbfExamples > 0) {
        ctx.checkCancel();
        const std::size_t used = std::min(n, ctx.options.rbfExamples);
        ctx.phase(task, s->name, "RBF CKA on " + std::to_string(used) + " examples");
        ctx.out->matrix(layout::child(g, layout::entry::kCkaRbf), an::rbfCkaMatrix(hiddenT, lt, dt, hiddenS, ls, ds, ctx.options.rbfSigmaFraction,
                                                       ctx.options.rbfExamples, ctx.numeric));
        ctx.out->attr(layout::child(g, layout::entry::kCkaRbf), "sigma_fraction", ctx.options.rbfSigmaFraction);
        ctx.out->attr(layout::child(g, layout::entry::kCkaRbf), "examples", static_cast<std::int64_t>(used));
        ctx.out->attr(layout::child(g, layout::entry::kCkaRbf), "rows", "the first eval examples (the eval split is in shuffled order)");
      }
      if (ctx.options.minibatchSize >= 4 && n >= ctx.options.minibatchSize) {
        ctx.checkCancel();
        ctx.phase(task, s->name, "minibatch CKA (unbiased HSIC), batches of " + std::to_string(ctx.options.minibatchSize));
        ctx.out->matrix(layout::child(g, layout::entry::kCkaMinibatch), an::minibatchCkaMatrix(hiddenT, lt, dt, hiddenS, ls, ds,
                                                                   ctx.options.minibatchSize, ctx.numeric));
        ctx.out->attr(layout::child(g, layout::entry::kCkaMinibatch), "batch_size", static_cast<std::int64_t>(ctx.options.minibatchSize));
        ctx.out->attr(layout::child(g, layout::entry::kCkaMinibatch), "batches", static_cast<std::int64_t>(n / ctx.options.minibatchSize));
      } else if (ctx.options.minibatchSize > 0) {
        ctx.skip(task, "cka_minibatch/" + s->name, "fewer eval examples than one minibatch");
      }
    }
    if (ctx.wants("residual")) {
      ctx.checkCancel();
      const auto [map, list] = ctx.layerMapOf(s->name);
      const an::LayerPairing pairing =
          an::layerPairing(map, static_cast<int>(lt) - 1, static_cast<int>(ls) - 1, list);
      ctx.phase(task, s->name, "distillation residual of the mapped layer pairs (" + map + " map)");
      std::vector<std::int64_t> teacherLayer;
      std::vector<double> mse;
      std::vector<double> unexplained;
      std::vector<double> cosine;
      std::vector<double> directMse;
      std::vector<double> directCosine;
      an::ResidualOptions ro;
      ro.threads = ctx.options.threads;
      for (std::size_t i = 0; i < pairing.hidden.size(); ++i) {
        const int j = pairing.hidden[i];
        teacherLayer.push_back(j);
        an::LayerResidual r;
        if (j >= 0) {
          r = an::layerResidual(hiddenS, ls, ds, i, hiddenT, lt, dt, static_cast<std::size_t>(j), ro);
        }
        mse.push_back(r.mse);
        unexplained.push_back(r.unexplained);
        cosine.push_back(r.cosineDistance);
        directMse.push_back(r.directMse);
        directCosine.push_back(r.directCosineDistance);
      }
      const std::uint64_t k = teacherLayer.size();
      const std::string r = layout::child(g, layout::entry::kResidual);
      ctx.out->ints(layout::child(r, layout::entry::kTeacherLayer), {k}, teacherLayer);
      ctx.out->floats(layout::child(r, layout::entry::kMse), {k}, mse);
      ctx.out->floats(layout::child(r, layout::entry::kUnexplained), {k}, unexplained);
      ctx.out->floats(layout::child(r, layout::entry::kCosineDistance), {k}, cosine);
      if (ds == dt) {
        ctx.out->floats(layout::child(r, layout::entry::kDirectMse), {k}, directMse);
        ctx.out->floats(layout::child(r, layout::entry::kDirectCosineDistance), {k}, directCosine);
      }
      ctx.out->attr(r, "map", map);
      ctx.out->attr(r, "fit", "least-squares affine map from the student's pooled eval/hidden layer to the teacher's "
                            "mapped layer, fitted on the eval examples themselves (in-sample)");
    }
  }
}

} // namespace kdscope::core::passes
