#include "core/models/torchscript_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <filesystem>
#include <functional>
#include <sstream>

#include "core/common/error.h"
#include "core/models/torchscript_outputs.h"

namespace kdscope::core {

namespace {

namespace ts = torchscript;

/// A Linear whose weight and bias are given tensors (the module's own parameters), so that
/// reading classifier()->weight reads the module's current values and gradients reach them.
class ModuleLinearImpl : public torch::nn::LinearImpl {
public:
  ModuleLinearImpl(const torch::Tensor& weight, const torch::Tensor& bias)
      : LinearImpl(torch::nn::LinearOptions(weight.size(1), weight.size(0)).bias(true)) {
    parameters_["weight"] = weight;
    this->weight = weight;
    parameters_["bias"] = bias;
    this->bias = bias;
  }
};

/// Builds the Linear without consuming draws of the global generator (LinearImpl's
/// constructor initialises a weight we then replace): loading a model must not shift the
/// seeded draws that follow it.
torch::nn::Linear aliasLinear(const torch::Tensor& weight, const torch::Tensor& bias) {
  auto generator = at::detail::getDefaultCPUGenerator();
  const auto state = generator.get_state();
  auto impl = std::make_shared<ModuleLinearImpl>(weight, bias);
  generator.set_state(state);
  return torch::nn::Linear(std::static_pointer_cast<torch::nn::LinearImpl>(impl));
}

/// A parameter or buffer name torch::nn::Module accepts (no '.'), unique among `taken`.
std::string registeredName(const std::string& name, const std::function<bool(const std::string&)>& taken) {
  std::string out = name;
  for (auto& c : out) {
    if (c == '.') {
      c = '_';
    }
  }
  if (out.empty()) {
    out = "_";
  }
  std::string candidate = out;
  for (int i = 2; taken(candidate); ++i) {
    candidate = out + "_" + std::to_string(i);
  }
  return candidate;
}

torch::Tensor toDType(const torch::Tensor& t, InputDType dtype) {
  switch (dtype) {
  case InputDType::Int64:
    return t.to(torch::kLong);
  case InputDType::Float32:
    return t.to(torch::kFloat);
  case InputDType::Bool:
    return t.to(torch::kBool);
  }
  return t;
}

} // namespace

torch::jit::Module loadTorchScriptModule(const std::string& modelPath) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(modelPath, ec)) {
    throw InputError("model file '" + modelPath + "': no such file");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(modelPath, torch::kCPU);
  } catch (const std::exception& e) {
    throw InputError("model file '" + modelPath +
                     "': not a TorchScript module (export the model with torch.jit.trace or torch.jit.script, then "
                     "torch.jit.save; a file of torch.save, such as a state_dict, cannot be loaded without its "
                     "Python code; docs/models.md): " + ts::summarizeError(e));
  }
  if (!module.find_method("forward")) {
    throw InputError("model file '" + modelPath + "': the TorchScript module has no forward method");
  }
  return module;
}

TorchScriptClassifierImpl::TorchScriptClassifierImpl(const std::string& modelPath, const std::string& manifestPath)
    : TorchScriptClassifierImpl(modelPath,
                                loadModelManifest(manifestPath.empty() ? defaultManifestPath(modelPath) : manifestPath)) {}

TorchScriptClassifierImpl::TorchScriptClassifierImpl(const std::string& modelPath, ModelManifest manifest)
    : m_modelPath(modelPath), m_manifest(std::move(manifest)), m_module(loadTorchScriptModule(modelPath)) {
  setUp();
}

void TorchScriptClassifierImpl::setUp() {
  const std::string where = "manifest '" + m_manifest.path + "'";
  // The module's forward must take as many positional arguments as the manifest lists.
  const auto& schema = m_module.get_method("forward").function().getSchema();
  std::size_t required = 0;
  std::size_t total = 0;
  std::string names;
  for (std::size_t i = 1; i < schema.arguments().size(); ++i) { // 0 is self
    const auto& arg = schema.arguments()[i];
    ++total;
    required += arg.default_value() ? 0 : 1;
    names += (names.empty() ? "" : ", ") + arg.name();
  }
  const std::size_t given = m_manifest.inputs.size();
  if (given < required || given > total) {
    throw InputError(where + ": field 'inputs': lists " + std::to_string(given) + " inputs, but the module's forward of '" +
                     m_modelPath + "' takes " + (required == total ? std::to_string(total) : std::to_string(required) + " to " + std::to_string(total)) +
                     " (" + names + ")");
  }

  // The module's parameters and buffers become this classifier's, the same tensors.
  for (const auto& p : m_module.named_parameters(/*recurse=*/true)) {
    const auto name = registeredName(p.name, [this](const std::string& n) { return named_parameters(false).contains(n); });
    register_parameter(name, p.value, /*requires_grad=*/true);
  }
  for (const auto& b : m_module.named_buffers(/*recurse=*/true)) {
    const auto name = registeredName(b.name, [this](const std::string& n) { return named_buffers(false).contains(n); });
    register_buffer(name, b.value);
  }

  if (m_manifest.classifierWeight.empty()) {
    m_classifierOff = where + " names no classifier (field 'classifier': {\"weight\": NAME, \"bias\": NAME})";
    return;
  }
  const auto find = [&](const std::string& name, const char* field) {
    for (const auto& p : m_module.named_parameters(/*recurse=*/true)) {
      if (p.name == name) {
        return p.value;
      }
    }
    std::string some;
    int count = 0;
    for (const auto& p : m_module.named_parameters(/*recurse=*/true)) {
      if (++count <= 8) {
        some += (some.empty() ? "" : ", ") + p.name;
      }
    }
    throw InputError(where + ": field '" + field + "': the module '" + m_modelPath + "' has no parameter '" + name +
                     "' (" + (count == 0 ? std::string("it has no parameters: a frozen module?")
                                         : "it has " + std::to_string(count) + ": " + some + (count > 8 ? ", ..." : "")) +
                     ")");
  };
  const torch::Tensor weight = find(m_manifest.classifierWeight, "classifier.weight");
  const auto classes = static_cast<std::int64_t>(m_manifest.numClasses());
  if (weight.dim() != 2 || weight.size(0) != classes) {
    throw InputError(where + ": field 'classifier.weight': parameter '" + m_manifest.classifierWeight + "' is " +
                     ts::shapeString(weight) + ", expected [" + std::to_string(classes) +
                     ", D] (one row per class; class_names has " + std::to_string(classes) + ")");
  }
  torch::Tensor bias;
  if (m_manifest.classifierBias.empty()) {
    bias = torch::zeros({classes}, weight.options().requires_grad(false));
  } else {
    bias = find(m_manifest.classifierBias, "classifier.bias");
    if (bias.dim() != 1 || bias.size(0) != classes) {
      throw InputError(where + ": field 'classifier.bias': parameter '" + m_manifest.classifierBias + "' is " +
                       ts::shapeString(bias) + ", expected [" + std::to_string(classes) + "]");
    }
  }
  m_classifier = aliasLinear(weight, bias);
}

torch::nn::Linear& TorchScriptClassifierImpl::classifier() {
  if (!m_classifierOff.empty()) {
    throw InputError(m_classifierOff);
  }
  return m_classifier;
}

std::string TorchScriptClassifierImpl::unavailable(ModelFeature feature) const {
  const std::string where = "manifest '" + m_manifest.path + "'";
  switch (feature) {
  case ModelFeature::HiddenStates:
    if (!m_manifest.hiddenStates) {
      return where + " declares no outputs.hidden_states";
    }
    return m_hiddenOff;
  case ModelFeature::Attention:
    if (m_manifest.isVector()) {
      return "a vector model has no attention";
    }
    if (!m_manifest.attentions) {
      return where + " declares no outputs.attentions";
    }
    return m_attentionOff;
  case ModelFeature::AttentionScores:
    return "a TorchScript module returns attention probabilities, not the pre-softmax scores";
  case ModelFeature::HeadGate:
    if (m_manifest.isVector()) {
      return "a vector model has no attention heads";
    }
    if (!m_manifest.takes(ModelInput::HeadMask)) {
      return "the module takes no head_mask (" + where + ", field 'inputs')";
    }
    return m_headGateOff;
  case ModelFeature::Classifier:
    return m_classifierOff;
  case ModelFeature::WordEmbeddings:
    return "a TorchScript module takes token ids, not word embeddings";
  }
  return {};
}

void TorchScriptClassifierImpl::markUnavailable(ModelFeature feature, const std::string& reason) {
  const std::string why = reason.empty() ? "turned off" : reason;
  switch (feature) {
  case ModelFeature::HiddenStates:
    m_hiddenOff = why;
    break;
  case ModelFeature::Attention:
    m_attentionOff = why;
    break;
  case ModelFeature::HeadGate:
    m_headGateOff = why;
    break;
  case ModelFeature::Classifier:
    m_classifierOff = why;
    break;
  case ModelFeature::AttentionScores:
  case ModelFeature::WordEmbeddings:
    break; // never available
  }
}

void TorchScriptClassifierImpl::train(bool on) {
  ClassifierImpl::train(on);
  m_module.train(on);
}

void TorchScriptClassifierImpl::saveTorchScript(const std::string& path) const {
  try {
    m_module.save(path);
  } catch (const std::exception& e) {
    throw JobError("model file '" + path + "': cannot be written: " + ts::summarizeError(e));
  }
}

c10::IValue TorchScriptClassifierImpl::runModule(const Batch& batch, const torch::Tensor& headGate) {
  const std::string where = "model '" + m_modelPath + "'";
  if (headGate.defined()) {
    const std::string off = unavailable(ModelFeature::HeadGate);
    if (!off.empty()) {
      throw InputError(where + ": a head gate cannot be applied: " + off +
                       "; head importance and ablation are skipped for it");
    }
    if (headGate.dim() != 2 || headGate.size(0) != m_manifest.layers || headGate.size(1) != m_manifest.heads) {
      throw InputError(where + ": head gate " + ts::shapeString(headGate) + ", expected [" +
                       std::to_string(m_manifest.layers) + ", " + std::to_string(m_manifest.heads) +
                       "] (manifest layers, heads)");
    }
  }
  std::int64_t rows = 0;
  std::int64_t length = 0;
  if (m_manifest.isVector()) {
    if (!batch.features.defined() || batch.features.dim() != 2) {
      throw InputError(where + ": takes \"features\" [B, " + std::to_string(m_manifest.features) +
                       "]: the batch has no feature rows (a text task given to a vector model?)");
    }
    if (batch.features.size(1) != m_manifest.features) {
      throw InputError(where + ": the batch has " + std::to_string(batch.features.size(1)) +
                       " features per example, the manifest's sizes.features is " + std::to_string(m_manifest.features));
    }
    rows = batch.features.size(0);
  } else {
    if (!batch.tokens.defined() || batch.tokens.dim() != 2) {
      throw InputError(where + ": takes token ids [B, L]: the batch has none (a vector task given to a text model?)");
    }
    rows = batch.tokens.size(0);
    length = batch.tokens.size(1);
    if (m_manifest.maxLength > 0 && length > m_manifest.maxLength) {
      throw InputError(where + ": inputs of " + std::to_string(length) + " tokens exceed the manifest's sizes.max_length " +
                       std::to_string(m_manifest.maxLength));
    }
  }
  std::vector<c10::IValue> args;
  args.reserve(m_manifest.inputs.size());
  const auto mask = batch.mask.defined() ? batch.mask.to(torch::kBool)
                                         : torch::ones({rows, length}, torch::TensorOptions().dtype(torch::kBool));
  for (const auto& in : m_manifest.inputs) {
    switch (in.kind) {
    case ModelInput::InputIds:
      args.emplace_back(batch.tokens.to(torch::kLong));
      break;
    case ModelInput::AttentionMask:
      args.emplace_back(toDType(mask, in.dtype));
      break;
    case ModelInput::PaddingMask:
      args.emplace_back(toDType(mask.logical_not(), in.dtype));
      break;
    case ModelInput::TokenTypeIds:
      args.emplace_back(batch.tokenTypes.defined() ? batch.tokenTypes.to(torch::kLong) : torch::zeros_like(batch.tokens, torch::kLong));
      break;
    case ModelInput::PositionIds:
      args.emplace_back(torch::arange(length, torch::TensorOptions().dtype(torch::kLong)).unsqueeze(0).expand({rows, length}).contiguous());
      break;
    case ModelInput::HeadMask:
      args.emplace_back(headGate.defined() ? headGate.to(torch::kFloat) : torch::ones({m_manifest.layers, m_manifest.heads}));
      break;
    case ModelInput::Features:
      args.emplace_back(batch.features.to(torch::kFloat));
      break;
    }
  }
  // No fusion or shape specialisation: the same ATen operations on every call (see header).
  torch::jit::GraphOptimizerEnabledGuard plainExecution(false);
  return m_module.forward(std::move(args));
}

ForwardOutput TorchScriptClassifierImpl::extractOutputs(const c10::IValue& value, std::int64_t batchSize,
                                                        std::int64_t length, std::vector<OutputProblem>& problems) const {
  ts::ExpectedSizes sizes;
  sizes.batch = batchSize;
  sizes.length = length;
  sizes.classes = m_manifest.numClasses();
  sizes.layers = m_manifest.layers;
  sizes.heads = m_manifest.heads;
  sizes.width = m_manifest.width;
  sizes.vector = m_manifest.isVector();
  ForwardOutput out;
  out.logits = ts::extractLogits(value, m_manifest.logits, sizes, problems);
  if (m_manifest.hiddenStates && m_hiddenOff.empty()) {
    out.hidden = ts::extractHidden(value, *m_manifest.hiddenStates, sizes, problems);
  }
  if (m_manifest.attentions && m_attentionOff.empty()) {
    out.attention = ts::extractAttentions(value, *m_manifest.attentions, sizes, problems);
  }
  return out;
}

ForwardOutput TorchScriptClassifierImpl::forward(const Batch& batch, const torch::Tensor& headGate) {
  const auto value = runModule(batch, headGate);
  const bool vector = m_manifest.isVector();
  const auto rows = vector ? batch.features.size(0) : batch.tokens.size(0);
  const auto length = vector ? 0 : batch.tokens.size(1);
  std::vector<OutputProblem> problems;
  auto out = extractOutputs(value, rows, length, problems);
  if (!problems.empty()) {
    std::string message = "model '" + m_modelPath + "' (manifest '" + m_manifest.path + "'): ";
    for (std::size_t i = 0; i < problems.size(); ++i) {
      message += (i == 0 ? "" : "; ") + problems[i].message;
    }
    throw InputError(message);
  }
  return out;
}

} // namespace kdscope::core
