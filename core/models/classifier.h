#pragma once
/// Torch-side model interface (private to core: includes LibTorch). Every classifier's
/// forward returns the logits AND the per-layer hidden states and per-head attention,
/// because LibTorch C++ has no forward hooks to collect them afterwards.

#include <torch/torch.h>

#include <string>
#include <vector>

namespace kdscope::core {

/// One batch on the model's device. Text tasks fill tokens and mask; vector tasks fill
/// features.
struct Batch {
  torch::Tensor tokens;   ///< int64 [B, Len]
  torch::Tensor mask;     ///< bool [B, Len], true at non-padding tokens
  torch::Tensor features; ///< float [B, dim]
  torch::Tensor labels;   ///< int64 [B]
  /// Optional float [B, Len, D]: word embeddings that replace the token-embedding lookup
  /// (embedding mixup). Specific to one model's embedding width; `tokens` still gives Len.
  torch::Tensor wordEmbeddings;
  /// Optional int64 [B, Len]: segment ids of sentence pairs (0 for the first text, 1 for the
  /// second). Only models that take token_type_ids read it (TorchScript modules, see
  /// torchscript_model.h); undefined means all 0.
  torch::Tensor tokenTypes;
  [[nodiscard]] std::int64_t size() const { return labels.size(0); }
};

struct ForwardOutput {
  torch::Tensor logits;                 ///< [B, C]
  std::vector<torch::Tensor> hidden;    ///< Lyr + 1 entries: [B, Len, D] (text) or [B, D_i] (mlp)
  std::vector<torch::Tensor> attention; ///< Lyr entries of [B, H, Len, Len] (text models only)
  /// Lyr entries of [B, H, Len, Len]: pre-softmax attention scores q.k / sqrt(d_h), -inf at
  /// padding keys (text models only; TinyBERT-style attention-score MSE needs them).
  std::vector<torch::Tensor> scores;
};

/// Parts of a model's outputs and inputs that a model from elsewhere may lack.
enum class ModelFeature {
  HiddenStates,    ///< ForwardOutput::hidden
  Attention,       ///< ForwardOutput::attention
  AttentionScores, ///< ForwardOutput::scores
  HeadGate,        ///< forward's headGate argument
  Classifier,      ///< classifier(): the final linear layer's weight and bias
  WordEmbeddings,  ///< Batch::wordEmbeddings (embedding mixup)
};

/// Base of every classifier. Not copyable; held by shared_ptr like torch modules.
class ClassifierImpl : public torch::nn::Module {
public:
  /// `headGate` is optional: float [Lyr, H] multiplying each head's output (1 = unchanged,
  /// 0 = the head contributes nothing). Ignored by models without attention.
  virtual ForwardOutput forward(const Batch& batch, const torch::Tensor& headGate) = 0;
  ForwardOutput forward(const Batch& batch) { return forward(batch, torch::Tensor()); }

  [[nodiscard]] virtual int numLayers() const = 0;  ///< Lyr
  [[nodiscard]] virtual int numHeads() const = 0;   ///< 0 without attention
  [[nodiscard]] virtual int hiddenWidth() const = 0; ///< D of the recorded hidden states
  /// The final linear layer: weight [C, D_last], bias [C].
  [[nodiscard]] virtual torch::nn::Linear& classifier() = 0;
  [[nodiscard]] std::int64_t parameterCount() const;
  /// Empty when the model provides `feature`; otherwise why it does not, in words for the
  /// user (naming the manifest field at fault). KDScope's own models provide everything their
  /// kind has (an MLP has no attention: numHeads() == 0 says so); TorchScript modules provide
  /// what their manifest declares and the pre-flight check confirmed (torchscript_model.h).
  [[nodiscard]] virtual std::string unavailable(ModelFeature /*feature*/) const { return {}; }
};

} // namespace kdscope::core
