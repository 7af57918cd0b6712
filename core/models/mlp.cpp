#include "core/models/mlp.h"

#include <algorithm>

namespace kdscope::core {

std::int64_t ClassifierImpl::parameterCount() const {
  std::int64_t count = 0;
  for (const auto& p : parameters()) {
    count += p.numel();
  }
  return count;
}

MlpClassifierImpl::MlpClassifierImpl(const MlpOptions& options) : m_options(options) {
  m_layers = register_module("layers", torch::nn::ModuleList());
  std::int64_t in = options.input_dim();
  for (auto width : options.hidden()) {
    m_layers->push_back(torch::nn::Linear(in, width));
    in = width;
  }
  m_dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  m_classifier = register_module("classifier", torch::nn::Linear(in, options.classes()));
}

int MlpClassifierImpl::hiddenWidth() const {
  std::int64_t width = m_options.input_dim();
  for (auto w : m_options.hidden()) {
    width = std::max(width, w);
  }
  return static_cast<int>(width);
}

ForwardOutput MlpClassifierImpl::forward(const Batch& batch, const torch::Tensor& /*headGate*/) {
  ForwardOutput out;
  auto x = batch.features;
  out.hidden.push_back(x);
  for (const auto& layer : *m_layers) {
    x = torch::relu(layer->as<torch::nn::Linear>()->forward(x));
    out.hidden.push_back(x);
    x = m_dropout(x);
  }
  out.logits = m_classifier(x);
  return out;
}

} // namespace kdscope::core
