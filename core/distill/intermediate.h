#pragma once
/// Intermediate-representation objectives (ANALYSES.md "Training objectives";
/// docs/methods.md gives every formula and reduction). Private to core (LibTorch).
///
/// The free functions are the terms themselves, on tensors; IntermediateObjective owns the
/// extra trainable parameters some of them need (the projections W, the critics' encoders,
/// the MI-alpha baseline) and applies every enabled term over the pairs of a layer map.
/// Lives on the job's thread.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/distill/objectives.h"
#include "core/job/job_spec.h"
#include "core/models/classifier.h"

namespace kdscope::core {

struct LayerPair {
  int student = 0;
  int teacher = 0;
};

/// Which teacher layer each student layer learns from. Hidden indices count the embedding
/// output as 0 (a model with L layers has hidden states 0..L); attention indices count the
/// blocks from 0.
struct LayerMap {
  std::vector<LayerPair> hidden;
  std::vector<LayerPair> attention;
};

/// ANALYSES.md's maps, with k = Lt / Ls:
/// - "uniform" (the "skip" map): hidden i <- floor(i * k) for i = 0..Ls; attention block i
///   <- floor((i + 1) * k) - 1;
/// - "last": hidden i <- Lt - Ls + i; attention block i <- Lt - Ls + i;
/// - "list": hidden i <- layerList[i]; attention block i <- layerList[i + 1] - 1.
/// Floors are computed in integers. `withAttention` false leaves `attention` empty. Throws
/// InputError when the map does not fit the two depths (the job parser reports the same
/// cases with their JSON paths first).
LayerMap makeLayerMap(const ObjectiveSpec& objective, int studentLayers, int teacherLayers,
                      bool withAttention);

/// Whether any intermediate term has a positive weight.
bool usesIntermediateTerms(const ObjectiveSpec& objective);
/// Whether any attention term (attention_kl, attention_mse) has a positive weight.
bool usesAttentionTerms(const ObjectiveSpec& objective);

/// Mean over the non-padding tokens of the batch (all tokens counted together) of the mean
/// over features of (hs - ht)^2. hs, ht: [B, Len, D] with mask bool [B, Len], or [B, D]
/// with an undefined mask (then a mean over examples).
torch::Tensor hiddenMseLoss(const torch::Tensor& hs, const torch::Tensor& ht, const torch::Tensor& mask);

/// The same reduction of 1 - cos(hs, ht) per token (cosine over features).
torch::Tensor hiddenCosineLoss(const torch::Tensor& hs, const torch::Tensor& ht, const torch::Tensor& mask);

/// PKD: mean over examples of || hs / |hs| - ht / |ht| ||^2 for [B, D] states.
torch::Tensor pkdLoss(const torch::Tensor& hs, const torch::Tensor& ht);

/// Attention transfer (MiniLM): KL(teacher row || student row) summed over non-padding keys,
/// averaged over non-padding query rows, heads and examples. teacherProbs [B, Ht, Len, Len],
/// studentScores [B, Hs, Len, Len] (pre-softmax, -inf at padding keys), mask bool [B, Len].
/// When Ht != Hs both sides are head-averaged maps (the student's mean of its heads'
/// probabilities, computed in log space).
torch::Tensor attentionKlLoss(const torch::Tensor& teacherProbs, const torch::Tensor& studentScores,
                              const torch::Tensor& mask);

/// TinyBERT's attention-score MSE: (s_s - s_t)^2 averaged over (query, key) pairs where both
/// tokens are real, heads and examples; pre-softmax scores [B, H, Len, Len] (padding keys may
/// hold -inf). When head counts differ both sides are averaged over heads first.
torch::Tensor attentionScoreMseLoss(const torch::Tensor& teacherScores, const torch::Tensor& studentScores,
                                    const torch::Tensor& mask);

/// InfoNCE = log B + mean_i (S[i,i] - logsumexp_j S[i,j]) for a critic matrix
/// S[i,j] = f(student_i, teacher_j), [B, B]. The bound, not the loss.
torch::Tensor infoNceBound(const torch::Tensor& scores);

/// The interpolated bound I_alpha (Poole et al. 2019) on a batch, exactly ANALYSES.md's
/// formula: N[i,j] = log mean_{k != j} e^S[i,k]; A[i,j] = log(alpha e^N[i,j] + (1 - alpha)
/// e^b_i); joint = mean_{i != j} (S[i,i] - A[i,j]); marginal = exp(logmeanexp_{i != j}
/// (S[i,j] - A[i,i])); I_alpha = 1 + joint - marginal. scores [B, B], logBaseline b [B].
/// B < 2 gives 0 (the leave-one-out means are empty). The bound, not the loss.
torch::Tensor miAlphaBound(const torch::Tensor& scores, const torch::Tensor& logBaseline, double alpha);

/// Mean over non-padding tokens of [B, Len, D] states; [B, D] states pass through.
torch::Tensor poolTokens(const torch::Tensor& hidden, const torch::Tensor& mask);

/// Width of each hidden state of a model built from `spec` for a task (transformer: its
/// width everywhere; mlp: the input dimension, then each hidden layer).
std::vector<int> hiddenWidths(const ArchitectureSpec& spec, int inputDim);

/// Dimension of the critics' encoders (InfoNCE, MI-alpha).
inline constexpr int kCriticDim = 64;

/// The enabled intermediate terms of one student, with their trainable parameters:
/// - one projection W (Linear, student width -> teacher width) per mapped hidden pair whose
///   widths differ, shared by hidden_mse, hidden_cosine and pkd (identity when equal);
/// - for infonce and for mi_alpha, separately, a critic per mapped hidden pair:
///   f(s, t) = g_s(s) . g_t(t), g = Linear -> ReLU -> Linear into kCriticDim, on the
///   token-pooled states; mi_alpha's baseline b_i = Linear(g_s(s_i)).
class IntermediateObjectiveImpl : public torch::nn::Module {
public:
  IntermediateObjectiveImpl(const ObjectiveSpec& objective, std::vector<int> studentWidths,
                            std::vector<int> teacherWidths);

  /// Adds each enabled term (unweighted, in the order hidden_mse, hidden_cosine, pkd,
  /// attention_kl, attention_mse, infonce, mi_alpha) to `out.terms` and its weighted value
  /// to `out.total`. Each term is the mean over the mapped pairs. `mask` bool [B, Len] for
  /// text models, undefined for vectors. The teacher's outputs carry no gradient.
  void addTerms(const ForwardOutput& student, const ForwardOutput& teacher, const torch::Tensor& mask,
                LossTerms& out);

  [[nodiscard]] const LayerMap& layerMap() const { return m_map; }
  /// The pairs, projections and critics as JSON for the run file's objective attribute.
  [[nodiscard]] std::string describeJson() const;

private:
  torch::Tensor project(std::size_t pair, const torch::Tensor& hs);
  torch::Tensor criticScores(torch::nn::ModuleList& studentEncoders, torch::nn::ModuleList& teacherEncoders,
                             std::size_t pair, const torch::Tensor& s, const torch::Tensor& t,
                             torch::Tensor* studentCode);

  ObjectiveSpec m_objective;
  std::vector<int> m_studentWidths;
  std::vector<int> m_teacherWidths;
  LayerMap m_map;
  std::vector<int> m_projectionIndex; ///< per hidden pair: index into m_projections, -1 = identity
  torch::nn::ModuleList m_projections;
  torch::nn::ModuleList m_nceStudent;
  torch::nn::ModuleList m_nceTeacher;
  torch::nn::ModuleList m_miStudent;
  torch::nn::ModuleList m_miTeacher;
  torch::nn::ModuleList m_miBaseline;
};
TORCH_MODULE(IntermediateObjective);

} // namespace kdscope::core
