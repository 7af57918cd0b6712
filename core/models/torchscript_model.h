#pragma once
/// A classifier over a TorchScript module (torch.jit.save from Python; torch.jit.trace or
/// torch.jit.script), described by its manifest (model_manifest.h, docs/models.md). Private
/// to core (LibTorch). Lives on the job's thread like every model.
///
/// Inputs. forward(batch) fills the module's positional arguments in the manifest's order:
/// input_ids = batch.tokens; attention_mask = batch.mask as 1/0 (or padding_mask = its
/// negation); token_type_ids = batch.tokenTypes, or zeros; position_ids = 0..L-1 per row;
/// head_mask = the head gate [layers, heads], or ones; features = batch.features. Each is
/// converted to the manifest's dtype.
///
/// Outputs. The logits [B, C], and the hidden states and attentions where the manifest says
/// they sit, each checked against the manifest's sizes. Pre-softmax attention scores are never
/// available (modules return probabilities), so ForwardOutput::scores stays empty; neither is
/// Batch::wordEmbeddings (embedding mixup). unavailable() says so, with the reason.
///
/// The head gate. When the module takes head_mask, the gate [layers, heads] goes in as
/// head_mask, so gradients reach it and head importance and ablation work as for KDScope's own
/// models (Hugging Face multiplies the attention probabilities by it, which for a gate equals
/// multiplying the head's output). When it does not, unavailable(ModelFeature::HeadGate)
/// gives the reason, head importance and ablation must be skipped with that reason, and
/// forward() with a defined gate throws InputError saying so (never silently ignores it).
///
/// The classifier. classifier() is a Linear whose weight and bias ARE the module's parameters
/// named by the manifest's classifier.weight and classifier.bias (same tensors: reading them
/// reads the module's current values), so the class geometry of the knowledge analysis can be
/// computed. No classifier.bias: the bias reads as zeros. No classifier field: classifier()
/// throws InputError, and unavailable(ModelFeature::Classifier) says why.
///
/// Training. Every parameter of the module (named_parameters, recursively) is registered as a
/// parameter of this classifier, the same tensors, so parameters() gives them to an optimiser
/// and a TorchScript student trains in C++ through them; train()/eval() switch the module's
/// mode too (a traced module keeps the mode it was traced in: dropout traced in eval mode is
/// absent). Buffers are registered the same way. saveTorchScript writes the trained module.
///
/// Determinism. forward runs with the graph executor's optimisations off (no fusion, no
/// specialisation after profiling runs), so every call executes the same ATen operations and
/// repeated calls on the same input give the same bits on one machine.

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/models/classifier.h"
#include "core/models/model_manifest.h"

namespace kdscope::core {

/// Loads a TorchScript module for inference or training on the CPU. Throws InputError naming
/// the file: missing, unreadable, or not TorchScript (a torch.save'd state_dict or pickled
/// model is not: the message says to export with torch.jit.trace/script and torch.jit.save).
torch::jit::Module loadTorchScriptModule(const std::string& modelPath);

/// One problem found in a module's outputs: which output ("logits", "hidden_states",
/// "attentions") and the message, starting with where it sits and naming the shape got and
/// the shape expected, e.g. "outputs[2][1]: attentions of layer 1: got [2, 4, 16, 16],
/// expected [2, 12, 16, 16] (manifest heads = 12)".
struct OutputProblem {
  std::string output;
  std::string message;
};

class TorchScriptClassifierImpl : public ClassifierImpl {
public:
  /// Loads the module and checks the manifest against it (the classifier parameters must
  /// exist with 2-D weight [C, D] and bias [C], C = the number of class names). Throws
  /// InputError naming the model file or the manifest file and field.
  TorchScriptClassifierImpl(const std::string& modelPath, ModelManifest manifest);
  /// The same, reading the manifest (empty: defaultManifestPath(modelPath)).
  explicit TorchScriptClassifierImpl(const std::string& modelPath, const std::string& manifestPath = "");

  using ClassifierImpl::forward;
  /// Runs the module and returns its checked outputs. Throws InputError naming the manifest
  /// field and shapes when an output the manifest declares (and that markUnavailable has not
  /// turned off) is missing or has the wrong shape; the module's own exceptions propagate
  /// (c10::Error, torch::jit::JITException); the pre-flight check (model_check.h) turns both
  /// into a report.
  ForwardOutput forward(const Batch& batch, const torch::Tensor& headGate) override;

  /// The module's raw return value on `batch` (inputs as described above). Throws InputError
  /// when the batch lacks what the module takes (tokens or features) or the gate cannot go in.
  c10::IValue runModule(const Batch& batch, const torch::Tensor& headGate);
  /// The outputs of a raw return value for a batch of `batchSize` rows of `length` tokens (0
  /// for vector models). Every problem goes to `problems`, and an output with a problem is left
  /// empty (undefined logits, empty hidden/attention); outputs turned off are not looked at.
  ForwardOutput extractOutputs(const c10::IValue& value, std::int64_t batchSize, std::int64_t length,
                               std::vector<OutputProblem>& problems) const;

  [[nodiscard]] int numLayers() const override { return m_manifest.layers; }
  [[nodiscard]] int numHeads() const override { return m_manifest.heads; }
  [[nodiscard]] int hiddenWidth() const override { return m_manifest.width; }
  /// The module's final linear layer (see above). Throws InputError when the manifest names none.
  torch::nn::Linear& classifier() override;
  [[nodiscard]] std::string unavailable(ModelFeature feature) const override;
  /// Turns an output or input off with the reason (e.g. the pre-flight check found the
  /// attentions of the wrong shape): forward no longer reads it and unavailable() gives the
  /// reason. Logits cannot be turned off.
  void markUnavailable(ModelFeature feature, const std::string& reason);

  void train(bool on = true) override;

  [[nodiscard]] const ModelManifest& manifest() const { return m_manifest; }
  [[nodiscard]] const std::string& modelPath() const { return m_modelPath; }
  [[nodiscard]] torch::jit::Module& module() { return m_module; }
  /// The module with its current parameters, as a TorchScript file Python loads with
  /// torch.jit.load. Throws JobError naming the file when it cannot be written.
  void saveTorchScript(const std::string& path) const;

private:
  void setUp();

  std::string m_modelPath;
  ModelManifest m_manifest;
  torch::jit::Module m_module;
  torch::nn::Linear m_classifier{nullptr};
  std::string m_hiddenOff;    ///< why hidden states are off ("" = on when the manifest has them)
  std::string m_attentionOff; ///< why attentions are off
  std::string m_headGateOff;  ///< why the head gate is off
  std::string m_classifierOff;
};
TORCH_MODULE(TorchScriptClassifier);

} // namespace kdscope::core

#include "core/models/model_check.h"

namespace kdscope::core {

class ModelTokenizer;

/// The pre-flight check of a loaded model on `batch` (model_check.h describes the report;
/// `batchDescription` goes into it). Every output the check finds missing or wrong is turned
/// off on the model (markUnavailable, with the check's message as the reason), so that later
/// forwards return what works and unavailable() says why the rest is skipped. The model's
/// train/eval mode is left as it was. Never throws; the model is usable when report.usable.
ModelCheckReport preflightTorchScript(TorchScriptClassifierImpl& model, const Batch& batch,
                                      const std::string& batchDescription);

/// A text batch for a TorchScript model: each text (and its pair, when `pairTexts` is not
/// empty) encoded with the model's tokenizer to `length` tokens; tokens, mask and tokenTypes
/// set, labels left undefined. Throws InputError on invalid UTF-8 (naming the row) or a length
/// below 2 (3 for pairs).
Batch encodeTextBatch(const ModelTokenizer& tokenizer, const std::vector<std::string>& texts,
                      const std::vector<std::string>& pairTexts, int length);

} // namespace kdscope::core
