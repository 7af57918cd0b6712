#include "core/analysis/head_ablation_torch.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/models/transformer.h"

namespace kdscope::core::analysis {

namespace {

template <typename T>
std::shared_ptr<T> childOf(torch::nn::Module& module, const std::string& name) {
  for (const auto& child : module.named_children()) {
    if (child.key() == name) {
      return std::dynamic_pointer_cast<T>(child.value());
    }
  }
  return nullptr;
}

} // namespace

/// The submodules of one encoder block (transformer.cpp's EncoderBlockImpl and
/// SelfAttentionImpl, by their registered names).
struct BlockParts {
  std::shared_ptr<EncoderBlockImpl> block;
  std::shared_ptr<torch::nn::LayerNormImpl> norm1;
  std::shared_ptr<torch::nn::LayerNormImpl> norm2;
  std::shared_ptr<torch::nn::LinearImpl> qkv;
  std::shared_ptr<torch::nn::LinearImpl> out;
  std::shared_ptr<torch::nn::LinearImpl> ffnIn;
  std::shared_ptr<torch::nn::LinearImpl> ffnOut;
  [[nodiscard]] bool complete() const { return block && norm1 && norm2 && qkv && out && ffnIn && ffnOut; }
};

struct HeadAblator::Parts {
  std::vector<BlockParts> blocks;
  std::shared_ptr<torch::nn::LayerNormImpl> finalNorm;
  std::shared_ptr<torch::nn::LinearImpl> classifier;
  std::int64_t heads = 0;
  std::int64_t width = 0;
  bool valid = false;

  [[nodiscard]] std::int64_t headDim() const { return width / heads; }

  /// Each head's output-projection columns, [H, dh, D]: c_h = ctx_h . W_h^T = ctx_h @ this[h].
  [[nodiscard]] torch::Tensor headColumns(const BlockParts& p) const {
    return p.out->weight.view({width, heads, headDim()}).permute({1, 2, 0});
  }

  /// y = r + FFN(norm2(r)): the block's second half.
  static torch::Tensor feedForward(const BlockParts& p, const torch::Tensor& r) {
    return r + p.ffnOut->forward(torch::gelu(p.ffnIn->forward(p.norm2->forward(r))));
  }

  /// The [CLS] state's attention context of block `p` for input x [B', Len, D]: [B', H, dh],
  /// from the keys and values of every position and the query of position 0 alone.
  [[nodiscard]] torch::Tensor clsContext(const BlockParts& p, const torch::Tensor& x, const torch::Tensor& mask) const {
    const auto rows = x.size(0);
    const auto len = x.size(1);
    const auto dh = headDim();
    const auto xn = p.norm1->forward(x);
    const auto& weight = p.qkv->weight; // [3D, D]: rows of q, then k, then v (head-major)
    const auto& bias = p.qkv->bias;
    const auto q = torch::nn::functional::linear(xn.select(1, 0), weight.slice(0, 0, width), bias.slice(0, 0, width))
                       .view({rows, heads, 1, dh});
    const auto kv = torch::nn::functional::linear(xn, weight.slice(0, width, 3 * width), bias.slice(0, width, 3 * width))
                        .view({rows, len, 2, heads, dh})
                        .permute({2, 0, 3, 1, 4}); // [2, B', H, Len, dh]
    auto scores = torch::matmul(q, kv[0].transpose(-2, -1)) / std::sqrt(static_cast<double>(dh)); // [B', H, 1, Len]
    if (mask.defined()) {
      scores = scores.masked_fill(mask.logical_not().view({rows, 1, 1, len}), -std::numeric_limits<float>::infinity());
    }
    return torch::matmul(torch::softmax(scores, -1), kv[1]).squeeze(2); // [B', H, dh]
  }

  /// Logits from the final block's [CLS] state y0 [B', D].
  [[nodiscard]] torch::Tensor classify(const torch::Tensor& y0) const {
    return classifier->forward(finalNorm->forward(y0));
  }

  /// Logits of the intact last block on input x [B', Len, D] (its [CLS] row only).
  [[nodiscard]] torch::Tensor lastBlock(const BlockParts& p, const torch::Tensor& x, const torch::Tensor& mask) const {
    const auto ctx = clsContext(p, x, mask);
    const auto h0 = x.select(1, 0) + p.out->forward(ctx.reshape({x.size(0), width}));
    return classify(feedForward(p, h0));
  }
};

HeadAblator::HeadAblator(ClassifierImpl& model) : m_model(model), m_parts(std::make_unique<Parts>()) {
  auto* transformer = dynamic_cast<TransformerClassifierImpl*>(&model);
  if (transformer == nullptr || model.is_training()) {
    return;
  }
  Parts& parts = *m_parts;
  parts.heads = transformer->options().heads();
  parts.width = transformer->options().width();
  parts.finalNorm = childOf<torch::nn::LayerNormImpl>(model, "final_norm");
  parts.classifier = childOf<torch::nn::LinearImpl>(model, "classifier");
  const auto list = childOf<torch::nn::ModuleListImpl>(model, "blocks");
  if (!list || !parts.finalNorm || !parts.classifier || parts.heads <= 0 || parts.width % parts.heads != 0) {
    return;
  }
  for (const auto& module : *list) {
    BlockParts p;
    p.block = std::dynamic_pointer_cast<EncoderBlockImpl>(module);
    if (!p.block) {
      return;
    }
    p.norm1 = childOf<torch::nn::LayerNormImpl>(*p.block, "norm1");
    p.norm2 = childOf<torch::nn::LayerNormImpl>(*p.block, "norm2");
    p.ffnIn = childOf<torch::nn::LinearImpl>(*p.block, "ffn_in");
    p.ffnOut = childOf<torch::nn::LinearImpl>(*p.block, "ffn_out");
    if (const auto attention = childOf<SelfAttentionImpl>(*p.block, "attention")) {
      p.qkv = childOf<torch::nn::LinearImpl>(*attention, "qkv");
      p.out = childOf<torch::nn::LinearImpl>(*attention, "out");
    }
    if (!p.complete()) {
      return;
    }
    parts.blocks.push_back(std::move(p));
  }
  parts.valid = !parts.blocks.empty() && static_cast<int>(parts.blocks.size()) == model.numLayers();
}

HeadAblator::~HeadAblator() = default;

bool HeadAblator::fast() const { return m_parts->valid; }

torch::Tensor HeadAblator::ablatedLogits(const Batch& batch, const std::vector<torch::Tensor>& hidden) const {
  TORCH_CHECK(fast(), "HeadAblator: not a transformer in eval mode");
  const Parts& parts = *m_parts;
  const auto layers = static_cast<std::int64_t>(parts.blocks.size());
  TORCH_CHECK(static_cast<std::int64_t>(hidden.size()) >= layers, "HeadAblator: too few hidden states");
  const std::int64_t H = parts.heads;
  const std::int64_t D = parts.width;
  const auto rows = hidden.front().size(0);
  const auto len = hidden.front().size(1);
  const auto& mask = batch.mask;
  const torch::Tensor stackedMask = mask.defined() ? mask.repeat({H, 1}) : torch::Tensor();
  std::vector<torch::Tensor> perLayer;
  perLayer.reserve(static_cast<std::size_t>(layers));
  for (std::int64_t l = 0; l < layers; ++l) {
    const BlockParts& p = parts.blocks[static_cast<std::size_t>(l)];
    const auto& x = hidden[static_cast<std::size_t>(l)];
    const auto columns = parts.headColumns(p); // [H, dh, D]
    if (l == layers - 1) {
      // The last block: only the [CLS] row reaches the classifier.
      const auto ctx = parts.clsContext(p, x, mask);                   // [B, H, dh]
      const auto c = torch::matmul(ctx.unsqueeze(2), columns).squeeze(2); // [B, H, D]
      const auto base = x.select(1, 0) + c.sum(1) + p.out->bias;       // [B, D]
      const auto r = (base.unsqueeze(0) - c.permute({1, 0, 2})).reshape({H * rows, D});
      perLayer.push_back(parts.classify(Parts::feedForward(p, r)).view({H, rows, -1}));
      continue;
    }
    // Block l's attention once: the per-head context of every position, [B, H, Len, dh].
    const auto dh = parts.headDim();
    const auto qkv = p.qkv->forward(p.norm1->forward(x)).view({rows, len, 3, H, dh}).permute({2, 0, 3, 1, 4});
    auto scores = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(dh));
    if (mask.defined()) {
      scores = scores.masked_fill(mask.logical_not().view({rows, 1, 1, len}), -std::numeric_limits<float>::infinity());
    }
    const auto ctx = torch::matmul(torch::softmax(scores, -1), qkv[2]); // [B, H, Len, dh]
    const auto c = torch::matmul(ctx, columns);                         // [B, H, Len, D]
    const auto base = x + c.sum(1) + p.out->bias;                       // the intact attention residual
    auto y = Parts::feedForward(p, (base.unsqueeze(0) - c.permute({1, 0, 2, 3})).reshape({H * rows, len, D}));
    for (std::int64_t k = l + 1; k < layers - 1; ++k) {
      y = parts.blocks[static_cast<std::size_t>(k)].block->forward(y, stackedMask, torch::Tensor(), nullptr);
    }
    perLayer.push_back(parts.lastBlock(parts.blocks.back(), y, stackedMask).view({H, rows, -1}));
  }
  return torch::cat(perLayer, 0); // [L * H, B, C]
}

torch::Tensor ablatedLogitsOneAtATime(ClassifierImpl& model, const Batch& batch) {
  const int layers = model.numLayers();
  const int heads = model.numHeads();
  const auto params = model.parameters();
  const auto dtype = params.empty() ? torch::kFloat32 : params.front().scalar_type();
  const auto ones = torch::ones({layers, heads}, torch::TensorOptions().dtype(dtype));
  std::vector<torch::Tensor> out;
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < heads; ++h) {
      auto gate = ones.clone();
      gate[l][h] = 0.0;
      out.push_back(model.forward(batch, gate).logits);
    }
  }
  return torch::stack(out, 0);
}

} // namespace kdscope::core::analysis
