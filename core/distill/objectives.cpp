#include "core/distill/objectives.h"

#include <nlohmann/json.hpp>

#include "core/record/run_layout.h"

namespace kdscope::core {

torch::Tensor hardLabelLoss(const torch::Tensor& logits, const torch::Tensor& labels, double epsilon) {
  auto logq = torch::log_softmax(logits, /*dim=*/1);
  auto nll = -logq.gather(1, labels.unsqueeze(1)).squeeze(1);
  if (epsilon == 0.0) {
    return nll.mean();
  }
  // Target (1 - eps) onehot + eps / C: the loss splits into the NLL and the mean -log q.
  auto uniform = -logq.mean(/*dim=*/1);
  return ((1.0 - epsilon) * nll + epsilon * uniform).mean();
}

torch::Tensor kdLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherProbsT,
                     double temperature, bool tSquared) {
  auto logq = torch::log_softmax(studentLogits / temperature, /*dim=*/1);
  // xlogy gives 0 where p = 0, so a teacher with exact zeros contributes nothing there.
  auto kl = (torch::xlogy(teacherProbsT, teacherProbsT) - teacherProbsT * logq).sum(/*dim=*/1);
  const double factor = tSquared ? temperature * temperature : 1.0;
  return factor * kl.mean();
}

torch::Tensor logitMseLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherLogits) {
  return (studentLogits - teacherLogits).pow(2).mean();
}

torch::Tensor ptTargets(const torch::Tensor& teacherProbs, const torch::Tensor& labels) {
  const auto classes = teacherProbs.size(1);
  auto py = teacherProbs.gather(1, labels.unsqueeze(1)); // [B, 1]
  auto rest = (1.0 - py) / static_cast<double>(classes - 1);
  auto targets = rest.expand({teacherProbs.size(0), classes}).clone();
  targets.scatter_(1, labels.unsqueeze(1), py);
  return targets;
}

torch::Tensor teacherTargets(const torch::Tensor& teacherLogits, const torch::Tensor& labels,
                             const ObjectiveSpec& objective) {
  auto p = torch::softmax(teacherLogits / objective.temperature, /*dim=*/1);
  if (objective.teacherTargets == "pt") {
    return ptTargets(p, labels);
  }
  return p;
}

bool needsTeacher(const ObjectiveSpec& objective) {
  return objective.lambda > 0.0 || objective.logitMse > 0.0 || objective.hiddenMse > 0.0 ||
         objective.hiddenCosine > 0.0 || objective.pkd > 0.0 || objective.attentionKl > 0.0 ||
         objective.attentionMse > 0.0 || objective.infoNce > 0.0 || objective.miAlpha > 0.0;
}

torch::Tensor widenedTerm(const torch::Tensor& term) {
  const auto type = term.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? term.to(torch::kFloat) : term;
}

LossTerms studentObjective(const ObjectiveSpec& objective, const torch::Tensor& studentLogits,
                           const torch::Tensor& teacherLogits, const torch::Tensor& labels) {
  LossTerms out;
  auto ce = hardLabelLoss(studentLogits, labels, objective.labelSmoothing);
  out.terms.emplace_back("ce", ce);
  out.total = (1.0 - objective.lambda) * widenedTerm(ce);
  if (objective.lambda > 0.0) {
    auto targets = teacherTargets(teacherLogits, labels, objective);
    auto kd = kdLoss(studentLogits, targets, objective.temperature, objective.tSquared);
    out.terms.emplace_back("kd", kd);
    out.total = out.total + objective.lambda * widenedTerm(kd);
  }
  if (objective.logitMse > 0.0) {
    auto mse = logitMseLoss(studentLogits, teacherLogits);
    out.terms.emplace_back("logit_mse", mse);
    out.total = out.total + objective.logitMse * widenedTerm(mse);
  }
  return out;
}

std::string objectiveJson(const ObjectiveSpec& objective) {
  // The codec lives with the run file's layout: the analysis reads it back with the same
  // field names (layout::decodeObjective).
  return layout::encodeObjective(objective);
}

std::string studentObjectiveJson(const StudentSpec& student, const std::string& intermediateJson,
                                 const std::string& teacherJson) {
  auto j = nlohmann::json::parse(objectiveJson(student.objective));
  if (!intermediateJson.empty()) {
    j["intermediate"] = nlohmann::json::parse(intermediateJson);
  }
  const AugmentationSpec& a = student.augmentation;
  if (a.any()) {
    j["augmentation"] = {{"mask", a.mask},
                         {"replace", a.replace},
                         {"swap", a.swap},
                         {"delete", a.deletion},
                         {"mixup", a.mixup},
                         {"mixup_alpha", a.mixupAlpha},
                         {"mask_token", "[UNK] (id 1)"},
                         {"batch", "original, then one token-augmented copy, then one mixup copy, concatenated"},
                         {"labels", "augmented examples take the teacher's soft targets and, for the "
                                    "hard-label term, its top-1 class"}};
  }
  if (!teacherJson.empty()) {
    j["teacher"] = nlohmann::json::parse(teacherJson);
  }
  return j.dump();
}

std::string teacherObjectiveJson() {
  ObjectiveSpec plain;
  return objectiveJson(plain);
}

std::string teacherSourceJson(int epoch, const std::string& checkpoint, double evalAccuracy) {
  return nlohmann::json{{"epoch", epoch}, {"checkpoint", checkpoint}, {"eval_accuracy", evalAccuracy}}.dump();
}

} // namespace kdscope::core
