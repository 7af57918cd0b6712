#pragma once
/// Training objectives of ANALYSES.md (private to core: LibTorch). Every term is returned
/// unweighted, so that each can be logged per step; the weights live in ObjectiveSpec.
/// Reduction: every term is a mean over the examples of the batch ("batchmean").

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::core {

/// Hard-label cross-entropy against (1 - eps) * onehot(y) + eps / C, mean over the batch.
torch::Tensor hardLabelLoss(const torch::Tensor& logits, const torch::Tensor& labels, double epsilon);

/// Hinton's KD term: factor * KL(p^T || q^T), mean over the batch, where p^T are the given
/// teacher probabilities at temperature T and q^T = softmax(z_s / T); factor = T^2 when
/// `tSquared`, else 1. 0 * log 0 counts as 0.
torch::Tensor kdLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherProbsT,
                     double temperature, bool tSquared);

/// Mean over classes and examples of (z_s - z_t)^2.
torch::Tensor logitMseLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherLogits);

/// Tang et al.'s KD-pt control: keep p_y, spread 1 - p_y evenly over the other C - 1 classes.
torch::Tensor ptTargets(const torch::Tensor& teacherProbs, const torch::Tensor& labels);

/// Teacher targets at temperature T as the objective uses them ("full" or "pt").
torch::Tensor teacherTargets(const torch::Tensor& teacherLogits, const torch::Tensor& labels,
                             const ObjectiveSpec& objective);

struct LossTerms {
  torch::Tensor total;
  std::vector<std::pair<std::string, torch::Tensor>> terms; ///< unweighted, in a fixed order
};

/// Whether an objective needs the teacher at all (its logits, or its hidden states and
/// attention for the intermediate terms).
bool needsTeacher(const ObjectiveSpec& objective);

/// (1 - lambda) * CE_eps + lambda * KD_T + logitMse * MSE. `teacherLogits` may be
/// undefined when needsTeacher() is false. Terms: "ce", then "kd" when lambda > 0, then
/// "logit_mse" when its weight > 0.
/// A loss term as the total sums it: bf16 and fp16 widened to fp32 (under bf16 autocast a bf16
/// term times a scalar stays bf16, and the total would carry a rounding the logged term does
/// not show); fp32 and fp64 unchanged.
torch::Tensor widenedTerm(const torch::Tensor& term);

LossTerms studentObjective(const ObjectiveSpec& objective, const torch::Tensor& studentLogits,
                           const torch::Tensor& teacherLogits, const torch::Tensor& labels);

/// The objective as JSON for the run file: every term, weight, temperature, the T^2
/// convention and the reduction (the intermediate terms too, with their formulas).
std::string objectiveJson(const ObjectiveSpec& objective);

/// A student's objective JSON: objectiveJson plus, when they apply, "intermediate" (the
/// resolved layer map and parameters: IntermediateObjective::describeJson), "augmentation"
/// (the rates and how augmented examples are labelled) and "teacher" (a JSON object
/// describing the teacher the student learns from, e.g. its epoch and eval accuracy).
/// Empty strings leave a part out.
std::string studentObjectiveJson(const StudentSpec& student, const std::string& intermediateJson,
                                 const std::string& teacherJson);

/// The "teacher" part of a student's objective JSON for a student of an earlier teacher
/// checkpoint: {"epoch", "checkpoint", "eval_accuracy"}.
std::string teacherSourceJson(int epoch, const std::string& checkpoint, double evalAccuracy);
/// The teacher's objective (plain cross-entropy) as JSON.
std::string teacherObjectiveJson();

} // namespace kdscope::core
