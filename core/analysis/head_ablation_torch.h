#pragma once
/// Single-head ablation of a transformer, all heads of a batch at once (issue #15). Private to
/// core (LibTorch); used by computeHeadScores (model_analysis_torch.cpp) and the tests.
///
/// Ablating head h of layer l (its gate xi_lh = 0, Michel et al.) leaves every layer below l
/// unchanged, so each batch's intact forward pass gives the input of block l, and block l's
/// attention (normalisation, Q K V, the attention probabilities) is the same for every head of
/// that layer. The gate multiplies the head's context before the output projection, which is
/// linear: out(ctx * gate) = b + sum_j W_j ctx_j, with W_j the head's columns of the
/// projection. So block l computes its attention once and each head's contribution
/// c_j = W_j ctx_j once; the ablation of head h is then x + b + sum_{j != h} c_j, followed by
/// the block's feed-forward part, for the H heads stacked as H copies of the batch
/// ([H * B, Len, D]) that run through the remaining blocks in one pass each. The classifier
/// reads only the [CLS] state (position 0) of the last block, so the last block computes keys
/// and values for every position but its query, attention, projection and feed-forward at
/// position 0 only. Same arithmetic as forward() up to float rounding (sums in another order);
/// computeHeadScores checks it against forward() with a gate on its first batch.

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "core/models/classifier.h"

namespace kdscope::core::analysis {

class HeadAblator {
public:
  /// Reaches the blocks of a TransformerClassifierImpl in eval mode through its registered
  /// submodules; fast() is false for any other model (or one in training mode).
  explicit HeadAblator(ClassifierImpl& model);
  ~HeadAblator();
  HeadAblator(const HeadAblator&) = delete;
  HeadAblator& operator=(const HeadAblator&) = delete;

  [[nodiscard]] bool fast() const;

  /// Logits with each head gated to 0 alone: [layers * heads, B, C] (index l * heads + h).
  /// `hidden` are the intact forward pass's hidden states (hidden[l] is the input of block
  /// l; at least `layers` entries). Requires fast(). Call without gradient recording.
  [[nodiscard]] torch::Tensor ablatedLogits(const Batch& batch, const std::vector<torch::Tensor>& hidden) const;

  struct Parts;

private:
  ClassifierImpl& m_model;
  std::unique_ptr<Parts> m_parts;
};

/// The same logits the plain way, one head at a time: forward() with a [layers, heads] gate of
/// ones and a 0 at (l, h), for every (l, h). [layers * heads, B, C]. For any model with heads.
[[nodiscard]] torch::Tensor ablatedLogitsOneAtATime(ClassifierImpl& model, const Batch& batch);

} // namespace kdscope::core::analysis
