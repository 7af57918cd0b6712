#pragma once
/// MLP classifier for vector tasks: Linear-ReLU-Dropout blocks, then a linear classifier.
/// hidden[0] is the input, hidden[i] the i-th block's activation. Private to core.

#include "core/models/classifier.h"

namespace kdscope::core {

struct MlpOptions {
  MlpOptions(std::int64_t inputDim, std::vector<std::int64_t> hidden, std::int64_t classes)
      : input_dim_(inputDim), hidden_(std::move(hidden)), classes_(classes) {}
  TORCH_ARG(std::int64_t, input_dim);
  TORCH_ARG(std::vector<std::int64_t>, hidden);
  TORCH_ARG(std::int64_t, classes);
  TORCH_ARG(double, dropout) = 0.1;
};

class MlpClassifierImpl : public ClassifierImpl {
public:
  explicit MlpClassifierImpl(const MlpOptions& options);
  using ClassifierImpl::forward;
  ForwardOutput forward(const Batch& batch, const torch::Tensor& headGate) override;
  [[nodiscard]] int numLayers() const override { return static_cast<int>(m_options.hidden().size()); }
  [[nodiscard]] int numHeads() const override { return 0; }
  /// The widest of the input and the hidden layers: recorded hidden states are zero-padded
  /// to it (zero columns leave linear CKA unchanged).
  [[nodiscard]] int hiddenWidth() const override;
  torch::nn::Linear& classifier() override { return m_classifier; }

private:
  MlpOptions m_options;
  torch::nn::ModuleList m_layers;
  torch::nn::Dropout m_dropout{nullptr};
  torch::nn::Linear m_classifier{nullptr};
};
TORCH_MODULE(MlpClassifier);

} // namespace kdscope::core
