#include "core/analysis/model_analysis_torch.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <optional>

#include <c10/util/hash.h>

#include "core/analysis/head_ablation_torch.h"
#include "core/analysis/knowledge.h"
#include "core/common/item_threads.h"
#include "core/common/error.h"
#include "core/distill/trainer.h"
#include "core/models/model_tokenizer.h"
#include "core/models/torchscript_model.h"
#include "core/models/transformer.h"

namespace kdscope::core::analysis {

namespace {

constexpr std::int64_t kEvalBatch = 128;
/// The batched ablation's logits must match forward() with the gate to this (relative to 1 +
/// the largest logit): float32 sums in another order differ by ~1e-6 here.
constexpr double kBatchedAblationTolerance = 1e-4;
/// Rows (the first of the pass) that check it.
constexpr std::int64_t kCheckRows = 16;

/// The batch in the model's floating dtype (vector features; token ids stay integers).
Batch inDtype(Batch batch, const torch::Dtype dtype) {
  if (batch.features.defined() && batch.features.scalar_type() != dtype) {
    batch.features = batch.features.to(dtype);
  }
  return batch;
}

/// Writes row r of a contiguous tensor (rows x width values of the vector's element type) to
/// row order[begin + r] of `to` (rows of the same width).
template <class T>
void placeRows(std::vector<T>& to, const torch::Tensor& t, const std::vector<std::int64_t>& order, std::int64_t begin) {
  const auto rows = t.size(0);
  if (rows == 0) {
    return;
  }
  const auto width = static_cast<std::size_t>(t.numel() / rows);
  const T* from = t.data_ptr<T>();
  for (std::int64_t r = 0; r < rows; ++r) {
    std::copy_n(from + static_cast<std::size_t>(r) * width, width,
                to.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(order[static_cast<std::size_t>(begin + r)]) * width));
  }
}

torch::Dtype modelDtype(ClassifierImpl& model) {
  const auto params = model.parameters();
  return params.empty() ? torch::kFloat32 : params.front().scalar_type();
}

/// Calls work(begin, end) for the batches [begin, end) of kEvalBatch positions out of `count`:
/// with KDScope's transformers one batch per thread (forEachItemOnOneThread; on two cores the
/// forward passes' small products run about 2x faster so than split over both cores, and a
/// batch's bits do not depend on the thread count: bench/README.md, "Session 13"); other
/// models (TorchScript modules, MLPs) one batch after another, as before. work must write only
/// its own rows.
void forEachEvalBatch(ClassifierImpl& model, std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& work) {
  const std::int64_t batches = (count + kEvalBatch - 1) / kEvalBatch;
  const auto one = [&](std::int64_t k) { work(k * kEvalBatch, std::min(count, (k + 1) * kEvalBatch)); };
  if (paddingCanBeCut(model) && batches > 1) {
    // The last batches first: in passOrder they hold the longest rows, and the costliest items
    // handed out first leave the least for one thread to finish alone.
    forEachItemOnOneThread(batches, [&](std::int64_t k) { one(batches - 1 - k); });
  } else {
    for (std::int64_t k = 0; k < batches; ++k) {
      one(k);
    }
  }
}

} // namespace

torch::Tensor headGateGradients(ClassifierImpl& model, const Batch& batch, ForwardOutput* intact) {
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
  if (intact != nullptr) {
    // The same pass with every gate 1: its logits and hidden states, detached.
    intact->logits = out.logits.detach();
    intact->hidden.clear();
    for (const auto& h : out.hidden) {
      intact->hidden.push_back(h.detach());
    }
  }
  return torch::stack(perLayer, /*dim=*/1); // [B, Lyr, H]
}

HeadScores computeHeadScores(ClassifierImpl& model, const TaskData& task, const Split& split,
                             const CancelToken& cancel, int batchSize, const std::string* pooling) {
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
  const HeadAblator ablator(model);
  bool fast = ablator.fast();
  scores.perExampleImportance.resize(static_cast<std::size_t>(n) * cells);
  scores.perExampleAblationCorrect.resize(static_cast<std::size_t>(n) * cells);
  scores.perExampleAblationLoss.resize(static_cast<std::size_t>(n) * cells);
  scores.perExampleLoss.resize(static_cast<std::size_t>(n));
  scores.perExampleCorrect.resize(static_cast<std::size_t>(n));
  scores.logits.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(task.numClasses()));
  const auto width = static_cast<std::int64_t>(model.hiddenWidth());
  if (pooling != nullptr) {
    scores.pooled.rows = static_cast<std::size_t>(n);
    scores.pooled.layers = static_cast<std::size_t>(layers + 1);
    scores.pooled.width = static_cast<std::size_t>(width);
    scores.pooled.values.resize(scores.pooled.rows * scores.pooled.layers * scores.pooled.width);
  }
  // Batches of examples in passOrder; every per-example result is written at its example's place.
  const std::vector<std::int64_t> order = passOrder(model, task, split);

  // One pass per batch: the forward and backward pass of the gate gradients (importance) also
  // gives the intact logits and the block inputs the ablations start from. A batch's results
  // are kept per batch, then placed at their examples' places in batch order.
  struct BatchScores {
    torch::Tensor absolute;    // [B, Lyr, H] float64: |gate gradient| per example
    torch::Tensor intactLoss;  // [B] float64
    torch::Tensor intactRight; // [B] uint8
    torch::Tensor loss;        // [B, cells] float64: with each head ablated
    torch::Tensor right;       // [B, cells] uint8
    torch::Tensor logits;      // [B, C] float32: intact
    torch::Tensor pooled;      // [B, Lyr + 1, D] float32: intact, when a pooling is given
  };
  const auto scoreBatch = [&](std::int64_t begin, bool batchedAblation) {
    const auto end = std::min<std::int64_t>(n, begin + batchSize);
    const Batch batch = inDtype(passBatch(model, task, split, order, static_cast<std::size_t>(begin),
                                          static_cast<std::size_t>(end)),
                                dtype);
    BatchScores out;
    ForwardOutput intact;
    const auto g = headGateGradients(model, batch, &intact);
    out.absolute = g.to(torch::kFloat64).abs().contiguous();

    // Ablation: every head gated to 0 alone, [cells, B, C].
    const torch::NoGradGuard noGrad;
    const torch::Tensor ablated =
        batchedAblation ? ablator.ablatedLogits(batch, intact.hidden) : ablatedLogitsOneAtATime(model, batch);
    const auto rows = batch.labels.size(0);
    const auto ce = torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone);
    out.intactLoss = torch::nn::functional::cross_entropy(intact.logits, batch.labels, ce).to(torch::kFloat64).contiguous();
    out.intactRight = intact.logits.argmax(1).eq(batch.labels).to(torch::kUInt8).contiguous();
    out.logits = intact.logits.to(torch::kFloat32).contiguous();
    if (pooling != nullptr) {
      out.pooled = poolHiddenStates(intact.hidden, batch, *pooling, width).to(torch::kFloat32).contiguous();
    }
    const auto flat = ablated.reshape({static_cast<std::int64_t>(cells) * rows, ablated.size(2)});
    const auto labels = batch.labels.repeat({static_cast<std::int64_t>(cells)});
    // [cells, B] -> [B, cells]: rows are examples, as in perExampleImportance.
    out.loss = torch::nn::functional::cross_entropy(flat, labels, ce)
                   .view({static_cast<std::int64_t>(cells), rows})
                   .t()
                   .to(torch::kFloat64)
                   .contiguous();
    out.right = flat.argmax(1).eq(labels).view({static_cast<std::int64_t>(cells), rows}).t().to(torch::kUInt8).contiguous();
    return out;
  };
  auto sumAbs = torch::zeros({layers, heads}, torch::kFloat64);
  // Batch k holds the examples order[k * batchSize ...].
  const auto place = [&](const BatchScores& b, std::int64_t begin) {
    sumAbs += b.absolute.sum(0);
    placeRows(scores.perExampleImportance, b.absolute, order, begin);
    placeRows(scores.perExampleLoss, b.intactLoss, order, begin);
    placeRows(scores.perExampleCorrect, b.intactRight, order, begin);
    placeRows(scores.perExampleAblationLoss, b.loss, order, begin);
    placeRows(scores.perExampleAblationCorrect, b.right, order, begin);
    placeRows(scores.logits, b.logits, order, begin);
    if (pooling != nullptr) {
      placeRows(scores.pooled.values, b.pooled, order, begin);
    }
  };
  if (cancel.cancelled()) {
    return HeadScores{};
  }
  // The batched ablation must reproduce forward() with the gate (float rounding aside): checked
  // first, on the first rows of the pass; else every batch takes the one-at-a-time path.
  if (fast) {
    const auto rows = std::min<std::int64_t>(kCheckRows, n);
    const Batch head = inDtype(passBatch(model, task, split, order, 0, static_cast<std::size_t>(rows)), dtype);
    ForwardOutput intact;
    (void)headGateGradients(model, head, &intact);
    const torch::NoGradGuard noGrad;
    const auto mine = ablator.ablatedLogits(head, intact.hidden);
    const auto reference = ablatedLogitsOneAtATime(model, head);
    const double scale = 1.0 + reference.abs().max().item<double>();
    fast = mine.sizes() == reference.sizes() &&
           (mine - reference).abs().max().item<double>() <= kBatchedAblationTolerance * scale;
  }
  // With KDScope's transformers, one batch per thread, each on one thread of every pool
  // (forEachItemOnOneThread: no pool woken per product, and a batch's numbers do not depend on
  // the thread count); other models one batch after another.
  const std::int64_t batches = (n + batchSize - 1) / batchSize;
  if (fast && batches > 1) {
    std::vector<BatchScores> all(static_cast<std::size_t>(batches));
    // The last batches first: in passOrder they hold the longest rows, and the costliest items
    // handed out first leave the least for one thread to finish alone.
    forEachItemOnOneThread(batches, [&](std::int64_t item) {
      const std::int64_t k = batches - 1 - item;
      if (!cancel.cancelled()) {
        all[static_cast<std::size_t>(k)] = scoreBatch(k * batchSize, /*batchedAblation=*/true);
      }
    });
    if (cancel.cancelled()) {
      return HeadScores{};
    }
    for (std::size_t k = 0; k < all.size(); ++k) {
      place(all[k], static_cast<std::int64_t>(k) * batchSize);
    }
  } else {
    for (std::int64_t begin = 0; begin < n; begin += batchSize) {
      if (cancel.cancelled()) {
        return HeadScores{};
      }
      place(scoreBatch(begin, fast), begin);
    }
  }
  scores.layeredAblation = fast;

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
  // Means over examples, in float64.
  double lossSum = 0.0;
  double correctSum = 0.0;
  std::vector<double> ablationLossSum(cells, 0.0);
  std::vector<double> ablationCorrectSum(cells, 0.0);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    lossSum += scores.perExampleLoss[i];
    correctSum += scores.perExampleCorrect[i];
    for (std::size_t c = 0; c < cells; ++c) {
      ablationLossSum[c] += scores.perExampleAblationLoss[i * cells + c];
      ablationCorrectSum[c] += scores.perExampleAblationCorrect[i * cells + c];
    }
  }
  const auto count = static_cast<double>(n);
  scores.accuracy = correctSum / count;
  scores.loss = lossSum / count;
  scores.ablationAccuracy.resize(cells);
  scores.ablationLoss.resize(cells);
  for (std::size_t c = 0; c < cells; ++c) {
    scores.ablationAccuracy[c] = ablationCorrectSum[c] / count;
    scores.ablationLoss[c] = ablationLossSum[c] / count;
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
  // `rows` in passOrder: position k of `order` is the k-th to run, `rows[order[k]]` its row.
  std::vector<std::size_t> rank(split.size());
  {
    const std::vector<std::int64_t> all = passOrder(model, task, split);
    for (std::size_t i = 0; i < all.size(); ++i) {
      rank[static_cast<std::size_t>(all[i])] = i;
    }
  }
  std::vector<std::int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return rank[static_cast<std::size_t>(rows[static_cast<std::size_t>(a)])] <
           rank[static_cast<std::size_t>(rows[static_cast<std::size_t>(b)])];
  });
  std::vector<std::int64_t> inOrder(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k) {
    inOrder[k] = rows[static_cast<std::size_t>(order[k])];
  }
  states.logits.resize(states.rows * static_cast<std::size_t>(task.numClasses()));
  forEachEvalBatch(model, static_cast<std::int64_t>(rows.size()), [&](std::int64_t begin, std::int64_t end) {
    const torch::NoGradGuard noGradHere;
    const Batch batch = inDtype(
        passBatch(model, task, split, inOrder, static_cast<std::size_t>(begin), static_cast<std::size_t>(end)), dtype);
    const auto out = model.forward(batch);
    // The recorder's pooling, so that these states are the ones a run file records.
    const auto block = poolHiddenStates(out.hidden, batch, pooling, width).to(torch::kFloat32).contiguous();
    placeRows(states.values, block, order, begin);
    placeRows(states.logits, out.logits.to(torch::kFloat32).contiguous(), order, begin);
  });
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
  const auto classes = static_cast<std::size_t>(task.numClasses());
  std::vector<float> out(split.size() * classes);
  const std::vector<std::int64_t> order = passOrder(model, task, split);
  forEachEvalBatch(model, n, [&](std::int64_t begin, std::int64_t end) {
    const torch::NoGradGuard noGradHere;
    const Batch batch =
        passBatch(model, task, split, order, static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
    placeRows(out, model.forward(batch).logits.to(torch::kFloat32).contiguous(), order, begin);
  });
  return out;
}

HeadScores ModelHandle::headScores(const TaskData& task, const Split& split, const CancelToken& cancel,
                                   const std::string* pooling) const {
  const auto [t, sp] = view(task, split);
  return computeHeadScores(*m_impl->model, *t, *sp, cancel, kEvalBatch, pooling);
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

std::string fileSha1(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError("'" + path + "': cannot be read (to hash it)");
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    throw InputError("'" + path + "': read error (to hash it)");
  }
  return c10::sha1(bytes).str();
}

} // namespace kdscope::core::analysis
