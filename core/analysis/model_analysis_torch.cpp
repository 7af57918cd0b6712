#include "core/analysis/model_analysis_torch.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include "core/analysis/knowledge.h"
#include "core/common/error.h"
#include "core/distill/trainer.h"
#include "core/models/model_tokenizer.h"
#include "core/models/torchscript_model.h"
#include "core/models/transformer.h"

namespace kdscope::core::analysis {

namespace {

constexpr std::int64_t kEvalBatch = 128;

/// Sum of the per-example cross-entropy and the number of correct predictions of a batch.
std::pair<double, double> lossAndCorrect(const torch::Tensor& logits, const torch::Tensor& labels) {
  const auto loss = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  return {loss.item<double>(), logits.argmax(1).eq(labels).sum().item<double>()};
}

/// The batch in the model's floating dtype (vector features; token ids stay integers).
Batch inDtype(Batch batch, const torch::Dtype dtype) {
  if (batch.features.defined() && batch.features.scalar_type() != dtype) {
    batch.features = batch.features.to(dtype);
  }
  return batch;
}

torch::Dtype modelDtype(ClassifierImpl& model) {
  const auto params = model.parameters();
  return params.empty() ? torch::kFloat32 : params.front().scalar_type();
}

/// A transformer's forward pass split at its blocks, to rerun only the blocks from an ablated
/// head's layer on. Reaches the blocks through the registered submodules of
/// TransformerClassifierImpl (blocks, final_norm, classifier); the block inputs are the
/// hidden states forward() returns (index l: the input of block l). layerInputs() checks that
/// rerunning the last block from its input reproduces forward()'s logits and reports false
/// (use forward()) when it does not.
class LayeredTransformer {
public:
  explicit LayeredTransformer(ClassifierImpl& model) {
    if (dynamic_cast<TransformerClassifierImpl*>(&model) == nullptr) {
      return;
    }
    for (const auto& child : model.named_children()) {
      if (child.key() == "blocks") {
        if (const auto list = std::dynamic_pointer_cast<torch::nn::ModuleListImpl>(child.value())) {
          for (const auto& block : *list) {
            m_blocks.push_back(std::dynamic_pointer_cast<EncoderBlockImpl>(block));
          }
        }
      } else if (child.key() == "final_norm") {
        m_norm = std::dynamic_pointer_cast<torch::nn::LayerNormImpl>(child.value());
      } else if (child.key() == "classifier") {
        m_classifier = std::dynamic_pointer_cast<torch::nn::LinearImpl>(child.value());
      }
    }
    m_valid = m_norm && m_classifier && !m_blocks.empty() &&
              std::all_of(m_blocks.begin(), m_blocks.end(), [](const auto& b) { return b != nullptr; }) &&
              !model.is_training();
  }

  [[nodiscard]] bool valid() const { return m_valid; }

  /// The input of every block for this batch, from forward()'s output `intact` (computed with
  /// every gate 1); false when the split pass does not reproduce its logits.
  bool layerInputs(const Batch& batch, const ForwardOutput& intact, std::vector<torch::Tensor>& inputs) const {
    if (intact.hidden.size() != m_blocks.size() + 1) {
      return false;
    }
    inputs.assign(intact.hidden.begin(), intact.hidden.end() - 1);
    const auto last = static_cast<int>(m_blocks.size()) - 1;
    const auto mirrored = fromLayer(batch, inputs.back(), last, torch::Tensor());
    const auto& logits = intact.logits;
    const double scale = 1.0 + logits.abs().max().item<double>();
    return mirrored.sizes() == logits.sizes() && (mirrored - logits).abs().max().item<double>() <= 1e-5 * scale;
  }

  /// Logits when block `layer` gets `gate` [H] and its input is `input`.
  torch::Tensor fromLayer(const Batch& batch, const torch::Tensor& input, int layer, const torch::Tensor& gate) const {
    auto x = input;
    for (std::size_t k = static_cast<std::size_t>(layer); k < m_blocks.size(); ++k) {
      x = m_blocks[k]->forward(x, batch.mask, k == static_cast<std::size_t>(layer) ? gate : torch::Tensor(), nullptr);
    }
    return classify(x);
  }

private:
  torch::Tensor classify(const torch::Tensor& x) const {
    return m_classifier->forward(m_norm->forward(x).select(/*dim=*/1, /*index=*/0));
  }

  bool m_valid = false;
  std::vector<std::shared_ptr<EncoderBlockImpl>> m_blocks;
  std::shared_ptr<torch::nn::LayerNormImpl> m_norm;
  std::shared_ptr<torch::nn::LinearImpl> m_classifier;
};

} // namespace

torch::Tensor headGateGradients(ClassifierImpl& model, const Batch& batch) {
  TORCH_CHECK(model.numHeads() > 0, "headGateGradients: the model has no attention heads");
  const torch::AutoGradMode gradMode(/*enabled=*/true);
  const auto out = model.forward(inDtype(batch, modelDtype(model)));
  // Per-example losses summed: examples do not interact, so dL/dA of example i is dL_i/dA_i.
  const auto loss = torch::nn::functional::cross_entropy(
      out.logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  const auto grads = torch::autograd::grad({loss}, out.attention, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  std::vector<torch::Tensor> perLayer;
  perLayer.reserve(grads.size());
  for (std::size_t l = 0; l < grads.size(); ++l) {
    const auto& a = out.attention[l]; // [B, H, Len, Len]
    perLayer.push_back(grads[l].defined() ? (a.detach() * grads[l]).sum({2, 3})
                                          : torch::zeros({a.size(0), a.size(1)}, a.options()));
  }
  return torch::stack(perLayer, /*dim=*/1); // [B, Lyr, H]
}

HeadScores computeHeadScores(ClassifierImpl& model, const TaskData& task, const Split& split,
                             const CancelToken& cancel, int batchSize) {
  HeadScores scores;
  const int layers = model.numLayers();
  const int heads = model.numHeads();
  if (heads <= 0 || split.size() == 0) {
    return scores;
  }
  model.eval();
  const auto n = static_cast<std::int64_t>(split.size());
  const auto cells = static_cast<std::size_t>(layers * heads);
  const auto dtype = modelDtype(model);

  // Importance: mean over examples of |dL_i / d xi|, accumulated in float64.
  auto sumAbs = torch::zeros({layers, heads}, torch::kFloat64);
  for (std::int64_t begin = 0; begin < n; begin += batchSize) {
    if (cancel.cancelled()) {
      return HeadScores{};
    }
    const auto end = std::min<std::int64_t>(n, begin + batchSize);
    const auto g = headGateGradients(model, makeBatch(task, split, begin, end));
    const auto absolute = g.to(torch::kFloat64).abs().contiguous();
    sumAbs += absolute.sum(0);
    scores.perExampleImportance.insert(scores.perExampleImportance.end(), absolute.data_ptr<double>(),
                                       absolute.data_ptr<double>() + absolute.numel());
  }
  const auto importance = (sumAbs / static_cast<double>(n)).contiguous();
  scores.layers = static_cast<std::size_t>(layers);
  scores.heads = static_cast<std::size_t>(heads);
  scores.importance.assign(importance.data_ptr<double>(), importance.data_ptr<double>() + cells);
  scores.normalisedImportance.resize(cells);
  for (int l = 0; l < layers; ++l) {
    double norm = 0.0;
    for (int h = 0; h < heads; ++h) {
      norm += scores.importance[static_cast<std::size_t>(l * heads + h)] *
              scores.importance[static_cast<std::size_t>(l * heads + h)];
    }
    norm = std::sqrt(norm);
    for (int h = 0; h < heads; ++h) {
      const auto i = static_cast<std::size_t>(l * heads + h);
      scores.normalisedImportance[i] = norm > 0.0 ? scores.importance[i] / norm
                                                  : std::numeric_limits<double>::quiet_NaN();
    }
  }

  // Ablation: one evaluation per head, that head's gate at 0 alone; and the intact model.
  // Layers below the ablated one are unchanged, so each batch's layer inputs are computed once
  // and every ablation runs only the layers from its own on (a transformer's blocks are
  // reached through its registered submodules; the result is checked against forward()).
  const c10::InferenceMode inference;
  const auto ones = torch::ones({layers, heads}, torch::TensorOptions().dtype(dtype));
  std::vector<double> lossSum(cells + 1, 0.0); // the last slot: intact
  std::vector<double> correctSum(cells + 1, 0.0);
  const LayeredTransformer layered(model);
  bool allLayered = true;
  for (std::int64_t begin = 0; begin < n; begin += kEvalBatch) {
    if (cancel.cancelled()) {
      return HeadScores{};
    }
    const auto end = std::min<std::int64_t>(n, begin + kEvalBatch);
    const Batch batch = inDtype(makeBatch(task, split, begin, end), dtype);
    auto add = [&](std::size_t slot, const torch::Tensor& logits) {
      const auto [l, c] = lossAndCorrect(logits, batch.labels);
      lossSum[slot] += l;
      correctSum[slot] += c;
    };
    const ForwardOutput intact = model.forward(batch, ones);
    add(cells, intact.logits);
    std::vector<torch::Tensor> inputs;
    const bool useLayers = layered.valid() && layered.layerInputs(batch, intact, inputs);
    allLayered = allLayered && useLayers;
    for (int l = 0; l < layers; ++l) {
      for (int h = 0; h < heads; ++h) {
        auto gate = ones.clone();
        gate[l][h] = 0.0;
        const auto i = static_cast<std::size_t>(l * heads + h);
        add(i, useLayers ? layered.fromLayer(batch, inputs[static_cast<std::size_t>(l)], l, gate[l])
                         : model.forward(batch, gate).logits);
      }
    }
  }
  scores.layeredAblation = allLayered;
  scores.accuracy = correctSum[cells] / static_cast<double>(n);
  scores.loss = lossSum[cells] / static_cast<double>(n);
  scores.ablationAccuracy.resize(cells);
  scores.ablationLoss.resize(cells);
  for (std::size_t i = 0; i < cells; ++i) {
    scores.ablationAccuracy[i] = correctSum[i] / static_cast<double>(n);
    scores.ablationLoss[i] = lossSum[i] / static_cast<double>(n);
  }
  return scores;
}

PooledStates computePooledStates(ClassifierImpl& model, const TaskData& task, const Split& split,
                                 const std::vector<std::int64_t>& rows, const std::string& pooling) {
  const torch::NoGradGuard noGrad;
  model.eval();
  PooledStates states;
  states.rows = rows.size();
  states.layers = static_cast<std::size_t>(model.numLayers() + 1);
  states.width = static_cast<std::size_t>(model.hiddenWidth());
  states.values.resize(states.rows * states.layers * states.width);
  const auto width = static_cast<std::int64_t>(states.width);
  const auto dtype = modelDtype(model);
  for (std::size_t begin = 0; begin < rows.size(); begin += kEvalBatch) {
    const auto end = std::min<std::size_t>(rows.size(), begin + kEvalBatch);
    const std::vector<std::int64_t> indices(rows.begin() + static_cast<std::ptrdiff_t>(begin),
                                            rows.begin() + static_cast<std::ptrdiff_t>(end));
    const Batch batch = inDtype(makeBatch(task, split, indices), dtype);
    const auto out = model.forward(batch);
    // The recorder's pooling, so that these states are the ones a run file records.
    const auto block = poolHiddenStates(out.hidden, batch, pooling, width).to(torch::kFloat32).contiguous();
    std::copy_n(block.data_ptr<float>(), block.numel(),
                states.values.begin() + static_cast<std::ptrdiff_t>(begin * states.layers * states.width));
  }
  return states;
}

double matchedEpsilonOnTrainSplit(ClassifierImpl& teacher, const TaskData& task, double temperature) {
  if (!(temperature > 0.0)) {
    throw std::invalid_argument("matchedEpsilonOnTrainSplit: the temperature must be positive");
  }
  const torch::NoGradGuard noGrad;
  teacher.eval();
  const auto n = static_cast<std::int64_t>(task.train.size());
  const auto classes = static_cast<std::size_t>(task.numClasses());
  std::vector<double> probs;
  probs.reserve(static_cast<std::size_t>(n) * classes);
  const auto dtype = modelDtype(teacher);
  for (std::int64_t begin = 0; begin < n; begin += kEvalBatch) {
    const auto end = std::min<std::int64_t>(n, begin + kEvalBatch);
    const auto logits = teacher.forward(inDtype(makeBatch(task, task.train, begin, end), dtype)).logits;
    const auto p = torch::softmax(logits.to(torch::kFloat64) / temperature, /*dim=*/1).contiguous();
    probs.insert(probs.end(), p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
  }
  return matchedLabelSmoothingEpsilon(probs, task.train.labels, classes);
}

// ---- ModelHandle ---------------------------------------------------------------------

struct ModelHandle::Impl {
  std::shared_ptr<ClassifierImpl> model;
  std::optional<TaskData> view; ///< a TorchScript text model's re-tokenized task
};

ModelHandle::ModelHandle(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

ModelHandle ModelHandle::torchScript(const std::string& modelPath, const std::string& manifestPath,
                                     const TaskData& task) {
  auto impl = std::make_unique<Impl>();
  const ModelManifest manifest = loadModelManifest(manifestPath);
  if (manifest.numClasses() != task.numClasses()) {
    throw InputError("manifest '" + manifestPath + "': field 'class_names': " + std::to_string(manifest.numClasses()) +
                     " classes, but task '" + task.name + "' has " + std::to_string(task.numClasses()));
  }
  auto model = std::make_shared<TorchScriptClassifierImpl>(modelPath, manifest);
  if (task.kind == TaskKind::Text) {
    impl->view = retokenizeTask(task, ModelTokenizer::fromManifest(manifest), "TorchScript model '" + modelPath + "'");
  }
  model->eval();
  impl->model = std::move(model);
  return ModelHandle(std::move(impl));
}

std::pair<const TaskData*, const Split*> ModelHandle::view(const TaskData& task, const Split& split) const {
  if (!m_impl->view) {
    return {&task, &split};
  }
  const TaskData& v = *m_impl->view;
  if (&split == &task.eval) {
    return {&v, &v.eval};
  }
  if (&split == &task.train) {
    return {&v, &v.train};
  }
  throw InputError("task '" + task.name + "': a TorchScript model reads only the task's own train and eval splits");
}

std::string ModelHandle::headGateUnavailable() const { return m_impl->model->unavailable(ModelFeature::HeadGate); }
std::string ModelHandle::hiddenUnavailable() const { return m_impl->model->unavailable(ModelFeature::HiddenStates); }

ModelHandle::ModelHandle(const ArchitectureSpec& architecture, const TaskData& task, const std::string& checkpointPath)
    : m_impl(std::make_unique<Impl>()) {
  if (!std::filesystem::exists(checkpointPath)) {
    throw InputError("checkpoint '" + checkpointPath + "' not found");
  }
  m_impl->model = makeModel(architecture, task);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(checkpointPath);
    m_impl->model->load(archive);
  } catch (const c10::Error& e) {
    throw InputError("checkpoint '" + checkpointPath +
                     "' does not load into the recorded architecture: " + e.msg().substr(0, e.msg().find('\n')));
  }
  m_impl->model->eval();
}

ModelHandle::~ModelHandle() = default;
ModelHandle::ModelHandle(ModelHandle&&) noexcept = default;
ModelHandle& ModelHandle::operator=(ModelHandle&&) noexcept = default;

int ModelHandle::layers() const { return m_impl->model->numLayers(); }
int ModelHandle::heads() const { return m_impl->model->numHeads(); }

std::vector<float> ModelHandle::logits(const TaskData& taskIn, const Split& splitIn) const {
  const auto [taskPtr, splitPtr] = view(taskIn, splitIn);
  const TaskData& task = *taskPtr;
  const Split& split = *splitPtr;
  const torch::NoGradGuard noGrad;
  auto& model = *m_impl->model;
  model.eval();
  const auto n = static_cast<std::int64_t>(split.size());
  std::vector<float> out;
  out.reserve(split.size() * static_cast<std::size_t>(task.numClasses()));
  for (std::int64_t begin = 0; begin < n; begin += kEvalBatch) {
    const auto end = std::min<std::int64_t>(n, begin + kEvalBatch);
    const auto l = model.forward(makeBatch(task, split, begin, end)).logits.to(torch::kFloat32).contiguous();
    out.insert(out.end(), l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
  }
  return out;
}

HeadScores ModelHandle::headScores(const TaskData& task, const Split& split, const CancelToken& cancel) const {
  const auto [t, sp] = view(task, split);
  return computeHeadScores(*m_impl->model, *t, *sp, cancel);
}

PooledStates ModelHandle::pooledStates(const TaskData& task, const Split& split, const std::vector<std::int64_t>& rows,
                                       const std::string& pooling) const {
  const auto [t, sp] = view(task, split);
  return computePooledStates(*m_impl->model, *t, *sp, rows, pooling);
}

ExampleAttention ModelHandle::attention(const TaskData& taskIn, const Split& splitIn, std::size_t example) const {
  const auto [taskPtr, splitPtr] = view(taskIn, splitIn);
  const TaskData& task = *taskPtr;
  const Split& split = *splitPtr;
  auto& model = *m_impl->model;
  if (model.numHeads() <= 0 || task.kind != TaskKind::Text) {
    throw InputError("task '" + task.name + "': this model has no attention maps");
  }
  if (example >= split.size()) {
    throw InputError("task '" + task.name + "': example " + std::to_string(example) + " is outside the split (" +
                     std::to_string(split.size()) + " examples)");
  }
  const torch::NoGradGuard noGrad;
  model.eval();
  const Batch batch = makeBatch(task, split, std::vector<std::int64_t>{static_cast<std::int64_t>(example)});
  const auto out = model.forward(batch);
  const auto maps = torch::stack(out.attention, /*dim=*/1).to(torch::kFloat32).contiguous(); // [1, L, H, Len, Len]
  ExampleAttention result;
  result.layers = static_cast<std::size_t>(maps.size(1));
  result.heads = static_cast<std::size_t>(maps.size(2));
  result.length = static_cast<std::size_t>(maps.size(3));
  result.maps.assign(maps.data_ptr<float>(), maps.data_ptr<float>() + maps.numel());
  const auto len = static_cast<std::size_t>(task.seqLen);
  result.tokens.assign(split.tokens.begin() + static_cast<std::ptrdiff_t>(example * len),
                       split.tokens.begin() + static_cast<std::ptrdiff_t>((example + 1) * len));
  result.realTokens = static_cast<std::size_t>(
      std::count_if(result.tokens.begin(), result.tokens.end(), [](std::int64_t t) { return t != 0; }));
  return result;
}

} // namespace kdscope::core::analysis
