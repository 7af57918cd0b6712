// The "task" pass: per model accuracy, ECE, calibration bins, recall, confusion and p_y;
// per student the comparison with the teacher and the lost and gained examples.
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/analysis/metrics.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

void taskMetricsPass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const std::vector<std::int64_t>& labels = in.labels;
  const std::size_t classes = in.classes;
  const ModelRecord& teacher = *in.teacher;
  const std::vector<const ModelRecord*>& students = in.students;
  const std::map<std::string, std::vector<double>>& weights = in.weights;
  const std::vector<std::string>& texts = in.texts;
  const std::uint64_t c = classes;
  auto perModel = [&](const ModelRecord& m) {
    const std::string g = layout::analysisOf(task, m.name);
    ctx.out->attr(g, "accuracy", an::accuracy(m.logits, labels, classes));
    const an::CalibrationBins bins = an::calibrationBins(m.logits, labels, classes, 15);
    ctx.out->attr(g, "ece", bins.ece);
    ctx.out->floats(layout::child(g, layout::entry::kRecall), {c}, an::perClassRecall(m.logits, labels, classes));
    ctx.out->ints(layout::child(g, layout::entry::kConfusion), {c, c}, toInt64(an::confusionMatrix(m.logits, labels, classes)));
    const std::uint64_t b = bins.count.size();
    ctx.out->ints(layout::child(g, layout::entry::kCalibrationCount), {b}, sizesToInt64(bins.count));
    ctx.out->floats(layout::child(g, layout::entry::kCalibrationMeanConfidence), {b}, bins.meanConfidence);
    ctx.out->floats(layout::child(g, layout::entry::kCalibrationAccuracy), {b}, bins.accuracy);
    ctx.out->attr(layout::child(g, layout::entry::kCalibration), "bins", "15 equal-width bins of the max softmax probability: bin b holds (b/15, (b+1)/15]");
    ctx.out->floats(layout::child(g, layout::entry::kTrueClassProbability), {labels.size()}, an::trueClassProbabilities(m.probs, labels, classes));
  };
  perModel(teacher);
  for (const ModelRecord* s : students) {
    perModel(*s);
    const std::string g = layout::analysisOf(task, s->name);
    const an::TaskComparison cmp = an::compareTask(teacher.logits, s->logits, labels, classes);
    ctx.out->attr(g, "teacher_accuracy", cmp.teacherAccuracy);
    ctx.out->attr(g, "gap", cmp.gap);
    ctx.out->attr(g, "retained_fraction", cmp.retainedFraction);
    ctx.out->attr(g, "agreement", cmp.agreement);
    ctx.out->attr(g, "mean_kl", cmp.meanKl);
    ctx.out->attr(g, "teacher_ece", cmp.teacherEce);

    const an::LostAndGained lg = an::lostAndGained(teacher.logits, s->logits, labels, classes);
    const auto w = weights.find(s->name);
    auto writeList = [&](const std::string& where, const std::vector<an::ExampleChange>& list) {
      const std::uint64_t k = list.size();
      std::vector<std::int64_t> index;
      std::vector<std::int64_t> label;
      std::vector<std::int64_t> predT;
      std::vector<std::int64_t> predS;
      std::vector<double> pyT;
      std::vector<double> pyS;
      std::vector<double> probsT;
      std::vector<double> probsS;
      std::vector<double> wList;
      std::vector<std::string> textList;
      for (const an::ExampleChange& e : list) {
        index.push_back(static_cast<std::int64_t>(e.index));
        label.push_back(e.label);
        predT.push_back(e.teacherPrediction);
        predS.push_back(e.studentPrediction);
        pyT.push_back(e.teacherTrueProbability);
        pyS.push_back(e.studentTrueProbability);
        probsT.insert(probsT.end(), teacher.probs.begin() + static_cast<std::ptrdiff_t>(e.index * classes),
                      teacher.probs.begin() + static_cast<std::ptrdiff_t>((e.index + 1) * classes));
        probsS.insert(probsS.end(), s->probs.begin() + static_cast<std::ptrdiff_t>(e.index * classes),
                      s->probs.begin() + static_cast<std::ptrdiff_t>((e.index + 1) * classes));
        if (w != weights.end()) {
          wList.push_back(w->second[e.index]);
        }
        if (!texts.empty()) {
          textList.push_back(texts[e.index]);
        }
      }
      const std::string p = layout::child(g, where);
      ctx.out->ints(layout::child(p, layout::entry::kIndex), {k}, index);
      ctx.out->ints(layout::child(p, layout::entry::kLabel), {k}, label);
      ctx.out->ints(layout::child(p, layout::entry::kTeacherPrediction), {k}, predT);
      ctx.out->ints(layout::child(p, layout::entry::kStudentPrediction), {k}, predS);
      ctx.out->floats(layout::child(p, layout::entry::kTeacherTrueProbability), {k}, pyT);
      ctx.out->floats(layout::child(p, layout::entry::kStudentTrueProbability), {k}, pyS);
      ctx.out->floats(layout::child(p, layout::entry::kTeacherProbs), {k, c}, probsT);
      ctx.out->floats(layout::child(p, layout::entry::kStudentProbs), {k, c}, probsS);
      if (w != weights.end()) {
        ctx.out->floats(layout::child(p, layout::entry::kGradRescale), {k}, wList);
      }
      if (!texts.empty()) {
        ctx.out->strings(layout::child(p, layout::entry::kText), textList);
      }
      ctx.out->attr(p, "count", static_cast<std::int64_t>(k));
    };
    writeList(layout::entry::kLost, lg.lost);
    writeList(layout::entry::kGained, lg.gained);
  }
}

} // namespace kdscope::core::passes
