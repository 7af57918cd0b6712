#pragma once
/// Transformer encoder classifier: token + position embeddings, pre-LayerNorm blocks of
/// multi-head self-attention and feed-forward, final LayerNorm, the [CLS] state (position
/// 0) to a linear classifier. Private to core (LibTorch).

#include "core/models/classifier.h"

namespace kdscope::core {

struct TransformerOptions {
  TransformerOptions(std::int64_t vocab, std::int64_t maxLen, std::int64_t classes)
      : vocab_(vocab), max_len_(maxLen), classes_(classes) {}
  TORCH_ARG(std::int64_t, vocab);
  TORCH_ARG(std::int64_t, max_len);
  TORCH_ARG(std::int64_t, classes);
  TORCH_ARG(std::int64_t, layers) = 2;
  TORCH_ARG(std::int64_t, heads) = 2;
  TORCH_ARG(std::int64_t, width) = 64;
  TORCH_ARG(std::int64_t, ffn) = 128;
  TORCH_ARG(double, dropout) = 0.1;
};

/// Multi-head self-attention that returns its probabilities and takes a per-head gate.
class SelfAttentionImpl : public torch::nn::Module {
public:
  SelfAttentionImpl(std::int64_t width, std::int64_t heads, double dropout);
  /// x [B, Len, D], keyMask bool [B, Len]; gate float [H] or undefined. Returns the output
  /// [B, Len, D]; `probs` receives [B, H, Len, Len] (rows sum to 1 over non-padding keys);
  /// `scores`, when non-null, the masked pre-softmax scores (-inf at padding keys).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keyMask,
                        const torch::Tensor& gate, torch::Tensor* probs,
                        torch::Tensor* scores = nullptr);

private:
  std::int64_t m_heads;
  std::int64_t m_headDim;
  torch::nn::Linear m_qkv{nullptr};
  torch::nn::Linear m_out{nullptr};
  torch::nn::Dropout m_dropout{nullptr};
};
TORCH_MODULE(SelfAttention);

class EncoderBlockImpl : public torch::nn::Module {
public:
  EncoderBlockImpl(std::int64_t width, std::int64_t heads, std::int64_t ffn, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keyMask,
                        const torch::Tensor& gate, torch::Tensor* probs,
                        torch::Tensor* scores = nullptr);

private:
  torch::nn::LayerNorm m_norm1{nullptr};
  torch::nn::LayerNorm m_norm2{nullptr};
  SelfAttention m_attention{nullptr};
  torch::nn::Linear m_ffnIn{nullptr};
  torch::nn::Linear m_ffnOut{nullptr};
  torch::nn::Dropout m_dropout{nullptr};
};
TORCH_MODULE(EncoderBlock);

class TransformerClassifierImpl : public ClassifierImpl {
public:
  explicit TransformerClassifierImpl(const TransformerOptions& options);
  using ClassifierImpl::forward;
  ForwardOutput forward(const Batch& batch, const torch::Tensor& headGate) override;
  [[nodiscard]] int numLayers() const override { return static_cast<int>(m_options.layers()); }
  [[nodiscard]] int numHeads() const override { return static_cast<int>(m_options.heads()); }
  [[nodiscard]] int hiddenWidth() const override { return static_cast<int>(m_options.width()); }
  torch::nn::Linear& classifier() override { return m_classifier; }
  [[nodiscard]] const TransformerOptions& options() const { return m_options; }
  /// The token-embedding lookup alone, [B, Len, D] (no positions, no dropout): what
  /// Batch::wordEmbeddings replaces, so embedding mixup mixes these.
  torch::Tensor embedTokens(const torch::Tensor& tokens) { return m_tokenEmbedding(tokens); }

private:
  TransformerOptions m_options;
  torch::nn::Embedding m_tokenEmbedding{nullptr};
  torch::nn::Embedding m_positionEmbedding{nullptr};
  torch::nn::Dropout m_dropout{nullptr};
  torch::nn::ModuleList m_blocks;
  torch::nn::LayerNorm m_finalNorm{nullptr};
  torch::nn::Linear m_classifier{nullptr};
};
TORCH_MODULE(TransformerClassifier);

} // namespace kdscope::core
