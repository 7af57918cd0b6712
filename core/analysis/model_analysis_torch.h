#pragma once
/// The LibTorch side of core/analysis/model_analysis.h, on a ClassifierImpl (private to
/// core: includes LibTorch). Used by ModelHandle, by the job engine (the matched
/// label-smoothing epsilon of the knowledge controls) and by the tests.

#include <torch/torch.h>

#include "core/analysis/model_analysis.h"
#include "core/models/classifier.h"

namespace kdscope::core::analysis {

/// Per-example derivatives of the cross-entropy with respect to every head gate at
/// xi = 1: [B, Lyr, H] in the model's dtype, entry (i, l, h) = dL_i / d xi_lh =
/// <A_ilh, dL_i / dA_ilh>_F. One forward and one backward pass; the model must be in eval
/// mode (no dropout) and have attention. `intact`, when given, receives that pass's logits
/// and hidden states (detached): the intact model's, every gate 1.
torch::Tensor headGateGradients(ClassifierImpl& model, const Batch& batch, ForwardOutput* intact = nullptr);

/// HeadScores of `model` on a split, batch by batch (`batchSize` rows): importance from
/// headGateGradients, whose forward pass also gives the intact outputs; ablation of every head
/// alone by HeadAblator (head_ablation_torch.h) on a transformer, checked on the first batch
/// against forward() with the gate (and replaced by it when they differ), else by forward()
/// with each gate. Keeps every example's correctness and loss under each ablation, and the
/// intact logits; with `pooling` (not null) also the split's pooled states (HeadScores::pooled,
/// as computePooledStates pools them).
HeadScores computeHeadScores(ClassifierImpl& model, const TaskData& task, const Split& split,
                             const CancelToken& cancel, int batchSize = 128, const std::string* pooling = nullptr);

/// Pooled states of the given rows of a split, as the recorder pools eval/hidden.
PooledStates computePooledStates(ClassifierImpl& model, const TaskData& task, const Split& split,
                                 const std::vector<std::int64_t>& rows, const std::string& pooling);

/// The label-smoothing epsilon matched to a teacher (ANALYSES.md, universe level):
/// eps = C E[1 - p^T_y] / (C - 1) over the teacher's distribution p^T = softmax(z_t / T) on the
/// train split (T = 1: its plain predictions; T = the KD temperature: the distribution a KD
/// student is trained on, docs/analyses.md "Matched epsilon").
double matchedEpsilonOnTrainSplit(ClassifierImpl& teacher, const TaskData& task, double temperature = 1.0);

} // namespace kdscope::core::analysis
