#include "core/models/transformer.h"

#include <cmath>

namespace kdscope::core {

namespace {
/// ATen's linear rather than torch::nn::Linear's forward: LibTorch 1.13's C++ module runs a
/// 3-D input as matmul and then an in-place bias add (two kernels and a second pass over the
/// output, forward and backward), where ATen's own linear folds [B, Len, D] to 2-D and fuses
/// the bias into one addmm, as PyTorch's Python nn.Linear does (bench/README.md, "Per
/// operator"). Same parameters, same result up to float rounding.
torch::Tensor linear3d(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return torch::linear(x.contiguous(), layer->weight, layer->bias);
}
} // namespace

SelfAttentionImpl::SelfAttentionImpl(std::int64_t width, std::int64_t heads, double dropout)
    : m_heads(heads), m_headDim(width / heads) {
  m_qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  m_out = register_module("out", torch::nn::Linear(width, width));
  m_dropout = register_module("dropout", torch::nn::Dropout(dropout));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& keyMask,
                                         const torch::Tensor& gate, torch::Tensor* probs,
                                         torch::Tensor* maskedScores) {
  const auto batch = x.size(0);
  const auto len = x.size(1);
  // [B, Len, 3, H, dh] -> 3 x [B, H, Len, dh]
  auto qkv = linear3d(m_qkv, x).view({batch, len, 3, m_heads, m_headDim}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0];
  auto k = qkv[1];
  auto v = qkv[2];
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(m_headDim));
  // Padding keys get -inf so that each row's probabilities sum to 1 over non-padding keys.
  // Position 0 ([CLS]) is never padding, so no row is all -inf.
  if (keyMask.defined()) {
    scores = scores.masked_fill(keyMask.logical_not().view({batch, 1, 1, len}),
                                -std::numeric_limits<float>::infinity());
  }
  if (maskedScores != nullptr) {
    *maskedScores = scores;
  }
  auto attention = torch::softmax(scores, /*dim=*/-1);
  if (probs != nullptr) {
    *probs = attention;
  }
  auto context = torch::matmul(m_dropout(attention), v); // [B, H, Len, dh]
  if (gate.defined()) {
    // A gate of 0 removes the head's contribution before the output projection (Michel et al.).
    context = context * gate.view({1, m_heads, 1, 1});
  }
  context = context.transpose(1, 2).reshape({batch, len, m_heads * m_headDim});
  return linear3d(m_out, context);
}

EncoderBlockImpl::EncoderBlockImpl(std::int64_t width, std::int64_t heads, std::int64_t ffn,
                                   double dropout) {
  m_norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  m_attention = register_module("attention", SelfAttention(width, heads, dropout));
  m_norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  m_ffnIn = register_module("ffn_in", torch::nn::Linear(width, ffn));
  m_ffnOut = register_module("ffn_out", torch::nn::Linear(ffn, width));
  m_dropout = register_module("dropout", torch::nn::Dropout(dropout));
}

torch::Tensor EncoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& keyMask,
                                        const torch::Tensor& gate, torch::Tensor* probs,
                                        torch::Tensor* scores) {
  auto h = x + m_dropout(m_attention->forward(m_norm1(x), keyMask, gate, probs, scores));
  return h + m_dropout(linear3d(m_ffnOut, torch::gelu(linear3d(m_ffnIn, m_norm2(h)))));
}

TransformerClassifierImpl::TransformerClassifierImpl(const TransformerOptions& options)
    : m_options(options) {
  m_tokenEmbedding =
      register_module("token_embedding", torch::nn::Embedding(options.vocab(), options.width()));
  m_positionEmbedding = register_module(
      "position_embedding", torch::nn::Embedding(options.max_len(), options.width()));
  m_dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  m_blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < options.layers(); ++i) {
    m_blocks->push_back(EncoderBlock(options.width(), options.heads(), options.ffn(), options.dropout()));
  }
  m_finalNorm = register_module("final_norm",
                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.width()})));
  m_classifier = register_module("classifier", torch::nn::Linear(options.width(), options.classes()));
  // Small initial embeddings keep the residual stream well scaled for tiny models.
  torch::NoGradGuard noGrad;
  torch::nn::init::normal_(m_tokenEmbedding->weight, /*mean=*/0.0, /*std=*/0.02);
  torch::nn::init::normal_(m_positionEmbedding->weight, /*mean=*/0.0, /*std=*/0.02);
}

ForwardOutput TransformerClassifierImpl::forward(const Batch& batch, const torch::Tensor& headGate) {
  const auto& tokens = batch.tokens;
  const auto len = tokens.size(1);
  TORCH_CHECK(len <= m_options.max_len(), "sequence length ", len, " exceeds max_len ",
              m_options.max_len());
  auto positions = torch::arange(len, tokens.options()).unsqueeze(0);
  const auto words = batch.wordEmbeddings.defined() ? batch.wordEmbeddings : m_tokenEmbedding(tokens);
  auto x = m_dropout(words + m_positionEmbedding(positions));
  ForwardOutput out;
  out.hidden.reserve(static_cast<std::size_t>(m_options.layers() + 1));
  out.attention.reserve(static_cast<std::size_t>(m_options.layers()));
  out.scores.reserve(static_cast<std::size_t>(m_options.layers()));
  out.hidden.push_back(x);
  for (std::size_t i = 0; i < m_blocks->size(); ++i) {
    torch::Tensor gate;
    if (headGate.defined()) {
      gate = headGate[static_cast<std::int64_t>(i)];
    }
    torch::Tensor probs;
    torch::Tensor scores;
    x = m_blocks[i]->as<EncoderBlock>()->forward(x, batch.mask, gate, &probs, &scores);
    out.hidden.push_back(x);
    out.attention.push_back(probs);
    out.scores.push_back(scores);
  }
  auto pooled = m_finalNorm(x).select(/*dim=*/1, /*index=*/0);
  out.logits = m_classifier(pooled);
  return out;
}

} // namespace kdscope::core
