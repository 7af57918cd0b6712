#include "core/distill/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <numeric>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/common/error.h"
#include "core/distributed/process_group.h"
#include "core/engine/precision.h"
#include "core/models/mlp.h"
#include "core/models/transformer.h"
#include "core/record/run_writer.h"

namespace kdscope::core {

namespace {

constexpr std::int64_t kEvalBatch = 128;
// Per-example records: forward passes without gradients, larger batches are cheaper; the
// block written is 4 bytes per example.
constexpr std::int64_t kRecordBatch = 256;

// Fisher-Yates with our own index draw: std::shuffle's algorithm is implementation
// defined, and the same job and seed must give the same batches everywhere.
void shuffleIndices(std::vector<std::int64_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

/// A Step or Epoch event for `target`: epoch of epochs, step of steps, and the loss.
ProgressEvent trainingEvent(ProgressEvent::Kind kind, const TrainTarget& target, int epoch, int epochs, long step,
                            long steps, double loss) {
  ProgressEvent event;
  event.kind = kind;
  event.task = target.task;
  event.model = target.model;
  event.epoch = epoch;
  event.epochs = epochs;
  event.step = step;
  event.steps = steps;
  event.loss = loss;
  return event;
}

double learningRate(const TrainingSpec& spec, long step, long total) {
  const long warmup = static_cast<long>(std::llround(spec.warmupFraction * static_cast<double>(total)));
  if (step <= warmup && warmup > 0) {
    return spec.lr * static_cast<double>(step) / static_cast<double>(warmup);
  }
  const long decay = std::max<long>(1, total - warmup);
  return spec.lr * std::max(0.0, static_cast<double>(total - step + 1) / static_cast<double>(decay));
}

} // namespace

std::uint64_t deriveSeed(std::uint64_t jobSeed, const std::string& task, const std::string& model) {
  // FNV-1a over "task/model", mixed with the job seed by splitmix64.
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : task + "/" + model) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  std::uint64_t z = jobSeed + 0x9e3779b97f4a7c15ULL + h;
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31U)) & 0x7fffffffffffffffULL;
}

Batch makeBatch(const TaskData& task, const Split& split, const std::vector<std::int64_t>& indices) {
  Batch batch;
  const auto n = static_cast<std::int64_t>(indices.size());
  auto labels = torch::empty({n}, torch::kInt64);
  auto* lab = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    lab[i] = split.labels[static_cast<std::size_t>(indices[static_cast<std::size_t>(i)])];
  }
  batch.labels = labels;
  if (task.kind == TaskKind::Text) {
    const std::int64_t len = task.seqLen;
    auto tokens = torch::empty({n, len}, torch::kInt64);
    auto* dst = tokens.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      const auto row = static_cast<std::size_t>(indices[static_cast<std::size_t>(i)]);
      std::copy_n(split.tokens.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(len)),
                  len, dst + i * len);
    }
    batch.tokens = tokens;
    batch.mask = tokens.ne(0);
    if (!split.tokenTypes.empty()) {
      // Sentence pairs as a model's own tokenizer encoded them (retokenizeTask).
      auto types = torch::empty({n, len}, torch::kInt64);
      auto* t = types.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < n; ++i) {
        const auto row = static_cast<std::size_t>(indices[static_cast<std::size_t>(i)]);
        std::copy_n(split.tokenTypes.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(len)),
                    len, t + i * len);
      }
      batch.tokenTypes = types;
    }
  } else {
    const std::int64_t dim = task.dim;
    auto features = torch::empty({n, dim}, torch::kFloat32);
    auto* dst = features.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      const auto row = static_cast<std::size_t>(indices[static_cast<std::size_t>(i)]);
      std::copy_n(split.features.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(dim)),
                  dim, dst + i * dim);
    }
    batch.features = features;
  }
  return batch;
}

bool paddingCanBeCut(ClassifierImpl& model) { return dynamic_cast<TransformerClassifierImpl*>(&model) != nullptr; }

Batch cutPadding(const Batch& batch) {
  if (!batch.mask.defined() || batch.mask.dim() != 2 || batch.mask.size(1) == 0) {
    return batch;
  }
  const auto any = batch.mask.to(torch::kBool).any(0).contiguous();
  const auto* m = any.data_ptr<bool>();
  auto keep = any.size(0);
  while (keep > 1 && !m[keep - 1]) {
    --keep;
  }
  if (keep == any.size(0)) {
    return batch;
  }
  const auto cut = [keep](const torch::Tensor& t) { return t.defined() ? t.narrow(1, 0, keep) : t; };
  Batch out = batch;
  out.tokens = cut(batch.tokens);
  out.mask = cut(batch.mask);
  out.tokenTypes = cut(batch.tokenTypes);
  out.wordEmbeddings = cut(batch.wordEmbeddings);
  return out;
}

std::vector<std::int64_t> rowsByLength(const TaskData& task, const Split& split) {
  const auto n = static_cast<std::int64_t>(split.size());
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), std::int64_t{0});
  if (task.kind != TaskKind::Text || task.seqLen <= 0) {
    return rows;
  }
  const auto len = static_cast<std::size_t>(task.seqLen);
  std::vector<std::int64_t> length(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < length.size(); ++i) {
    const std::int64_t* row = split.tokens.data() + i * len;
    std::size_t last = len;
    while (last > 0 && row[last - 1] == 0) {
      --last;
    }
    length[i] = static_cast<std::int64_t>(last);
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [&](std::int64_t a, std::int64_t b) { return length[static_cast<std::size_t>(a)] < length[static_cast<std::size_t>(b)]; });
  return rows;
}

std::vector<std::int64_t> passOrder(ClassifierImpl& model, const TaskData& task, const Split& split) {
  if (paddingCanBeCut(model)) {
    return rowsByLength(task, split);
  }
  std::vector<std::int64_t> rows(split.size());
  std::iota(rows.begin(), rows.end(), std::int64_t{0});
  return rows;
}

Batch passBatch(ClassifierImpl& model, const TaskData& task, const Split& split, const std::vector<std::int64_t>& order,
                std::size_t begin, std::size_t end) {
  Batch batch = makeBatch(task, split,
                          std::vector<std::int64_t>(order.begin() + static_cast<std::ptrdiff_t>(begin),
                                                    order.begin() + static_cast<std::ptrdiff_t>(end)));
  return paddingCanBeCut(model) ? cutPadding(batch) : batch;
}

Batch makeBatch(const TaskData& task, const Split& split, std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(end - begin));
  for (std::int64_t i = begin; i < end; ++i) {
    indices[static_cast<std::size_t>(i - begin)] = i;
  }
  return makeBatch(task, split, indices);
}

std::shared_ptr<ClassifierImpl> makeModel(const ArchitectureSpec& spec, const TaskData& task) {
  if (spec.type == "transformer") {
    if (task.kind != TaskKind::Text) {
      throw InputError("task '" + task.name + "' has vector inputs: it needs an 'mlp' architecture");
    }
    TransformerOptions options(static_cast<std::int64_t>(task.vocab.size()), task.seqLen,
                               task.numClasses());
    options.layers(spec.layers).heads(spec.heads).width(spec.width).ffn(spec.ffn).dropout(spec.dropout);
    return std::make_shared<TransformerClassifierImpl>(options);
  }
  if (spec.type == "mlp") {
    if (task.kind != TaskKind::Vector) {
      throw InputError("task '" + task.name + "' has text inputs: it needs a 'transformer' architecture");
    }
    std::vector<std::int64_t> hidden(spec.hidden.begin(), spec.hidden.end());
    MlpOptions options(task.dim, hidden, task.numClasses());
    options.dropout(spec.dropout);
    return std::make_shared<MlpClassifierImpl>(options);
  }
  throw InputError("architecture.type: unknown model type '" + spec.type + "'");
}

ProgressTracker::ProgressTracker(ProgressSink sink, long totalSteps)
    : m_sink(std::move(sink)), m_totalSteps(std::max(1L, totalSteps)),
      m_start(std::chrono::steady_clock::now()) {}

double ProgressTracker::fraction() const {
  return std::min(1.0, static_cast<double>(m_doneSteps) / static_cast<double>(m_totalSteps));
}

double ProgressTracker::elapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
}

void ProgressTracker::emit(ProgressEvent event) {
  if (!m_sink) {
    return;
  }
  event.fraction = fraction();
  event.elapsedSeconds = elapsedSeconds();
  m_sink(event);
}

long plannedSteps(const TrainingSpec& spec, std::size_t trainSize) {
  const auto batches = (static_cast<long>(trainSize) + spec.batchSize - 1) / spec.batchSize;
  return batches * spec.epochs;
}

namespace {

// Version of the training checkpoint layout below.
constexpr std::int64_t kCheckpointVersion = 1;

torch::Tensor bytesTensor(const std::string& bytes) {
  auto tensor = torch::empty({static_cast<std::int64_t>(bytes.size())}, torch::kUInt8);
  std::copy(bytes.begin(), bytes.end(), tensor.data_ptr<std::uint8_t>());
  return tensor;
}

std::string tensorBytes(const torch::Tensor& tensor) {
  const auto t = tensor.contiguous().to(torch::kUInt8);
  const auto* data = t.data_ptr<std::uint8_t>();
  return std::string(data, data + t.numel());
}

/// fsync of a file or folder: a checkpoint must not be older than the run file it points
/// into after a machine crash.
void syncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

/// The mutable state of a training run, as a checkpoint holds it.
struct TrainState {
  int epoch = 0;
  long step = 0;
  std::vector<std::int64_t> order;
  std::mt19937_64* rng = nullptr;
};

void saveTrainCheckpoint(const std::string& path, ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                         const TrainTarget& target, const TrainState& state, const LogRows& rows) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive modelArchive;
  model.save(modelArchive);
  archive.write("model", modelArchive);
  torch::serialize::OutputArchive optimizerArchive;
  optimizer.save(optimizerArchive);
  archive.write("optimizer", optimizerArchive);
  for (std::size_t i = 0; i < target.extraParameters.size(); ++i) {
    archive.write("extra_" + std::to_string(i), target.extraParameters[i].detach());
  }
  archive.write("state", torch::tensor({kCheckpointVersion, static_cast<std::int64_t>(state.epoch),
                                        static_cast<std::int64_t>(state.step),
                                        static_cast<std::int64_t>(rows.trainSteps),
                                        static_cast<std::int64_t>(rows.evalCurve),
                                        static_cast<std::int64_t>(rows.trainRecords)},
                                       torch::kInt64));
  archive.write("order", torch::from_blob(const_cast<std::int64_t*>(state.order.data()),
                                          {static_cast<std::int64_t>(state.order.size())}, torch::kInt64)
                             .clone());
  std::ostringstream rng;
  rng << *state.rng;
  archive.write("batch_rng", bytesTensor(rng.str()));
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    const std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("torch_rng", generator.get_state());
  }
  if (target.saveStepState) {
    archive.write("step_state", bytesTensor(target.saveStepState()));
  }
  // Written beside and renamed over: a crash while saving leaves the previous checkpoint.
  const std::string temporary = path + ".tmp";
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  archive.save_to(temporary);
  syncPath(temporary, false);
  std::filesystem::rename(temporary, path);
  syncPath(std::filesystem::path(path).parent_path().string(), true);
}

TrainCheckpointInfo infoOf(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::Tensor state;
  archive.read("state", state);
  if (state.dim() != 1 || state.numel() != 6 || state.scalar_type() != torch::kInt64 ||
      state[0].item<std::int64_t>() != kCheckpointVersion) {
    throw InputError(path + ": not a training checkpoint of this KDScope version");
  }
  TrainCheckpointInfo info;
  info.epoch = static_cast<int>(state[1].item<std::int64_t>());
  info.step = static_cast<long>(state[2].item<std::int64_t>());
  info.rows.trainSteps = static_cast<std::uint64_t>(state[3].item<std::int64_t>());
  info.rows.evalCurve = static_cast<std::uint64_t>(state[4].item<std::int64_t>());
  info.rows.trainRecords = static_cast<std::uint64_t>(state[5].item<std::int64_t>());
  return info;
}

/// Restores everything saveTrainCheckpoint saved; returns what it says.
TrainCheckpointInfo loadTrainCheckpoint(const std::string& path, ClassifierImpl& model,
                                        torch::optim::Optimizer& optimizer, const TrainTarget& target,
                                        TrainState& state) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    const TrainCheckpointInfo info = infoOf(archive, path);
    torch::serialize::InputArchive modelArchive;
    archive.read("model", modelArchive);
    model.load(modelArchive);
    torch::serialize::InputArchive optimizerArchive;
    archive.read("optimizer", optimizerArchive);
    optimizer.load(optimizerArchive);
    {
      torch::NoGradGuard noGrad;
      for (std::size_t i = 0; i < target.extraParameters.size(); ++i) {
        torch::Tensor value;
        archive.read("extra_" + std::to_string(i), value);
        target.extraParameters[i].copy_(value);
      }
    }
    torch::Tensor order;
    archive.read("order", order);
    if (order.numel() != static_cast<std::int64_t>(state.order.size())) {
      throw InputError(path + ": the checkpoint's batch order has " + std::to_string(order.numel()) +
                       " examples, the train split " + std::to_string(state.order.size()));
    }
    std::copy_n(order.contiguous().data_ptr<std::int64_t>(), order.numel(), state.order.begin());
    torch::Tensor rng;
    archive.read("batch_rng", rng);
    std::istringstream(tensorBytes(rng)) >> *state.rng;
    torch::Tensor generatorState;
    archive.read("torch_rng", generatorState);
    {
      auto generator = at::detail::getDefaultCPUGenerator();
      const std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(generatorState);
    }
    if (target.restoreStepState) {
      torch::Tensor stepState;
      archive.read("step_state", stepState);
      target.restoreStepState(tensorBytes(stepState));
    }
    state.epoch = info.epoch;
    state.step = info.step;
    return info;
  } catch (const c10::Error& e) {
    throw InputError(path + ": cannot resume from this checkpoint: " + e.msg().substr(0, e.msg().find('\n')));
  }
}

} // namespace

TrainCheckpointInfo readTrainCheckpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw InputError(path + ": no such checkpoint");
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    return infoOf(archive, path);
  } catch (const c10::Error& e) {
    throw InputError(path + ": not a readable training checkpoint: " + e.msg().substr(0, e.msg().find('\n')));
  }
}

torch::Tensor poolHiddenStates(const std::vector<torch::Tensor>& hidden, const Batch& batch,
                               const std::string& pooling, std::int64_t width) {
  std::vector<torch::Tensor> pooled;
  pooled.reserve(hidden.size());
  for (const auto& h : hidden) {
    torch::Tensor p;
    if (h.dim() == 3) {
      if (pooling == "cls") {
        p = h.select(1, 0);
      } else {
        auto mask = batch.mask.unsqueeze(-1).to(h.dtype());
        p = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0);
      }
    } else {
      p = torch::nn::functional::pad(h, torch::nn::functional::PadFuncOptions({0, width - h.size(1)}));
    }
    pooled.push_back(p);
  }
  return torch::stack(pooled, /*dim=*/1).contiguous();
}

namespace {
/// Each row's softmax probability of its label, float32.
torch::Tensor trueClassProbability(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::softmax(logits, /*dim=*/1).gather(1, labels.unsqueeze(1)).squeeze(1).to(torch::kFloat32).contiguous();
}
} // namespace

bool recordTrainRecords(ClassifierImpl& model, const TaskData& task, const std::string& modelName,
                        const std::string& recordName, std::int64_t epoch, std::int64_t step, RunWriter& writer,
                        const CancelToken& cancel, const torch::Tensor& trainLogits) {
  torch::NoGradGuard noGrad;
  model.eval();
  const auto row = writer.appendTrainRecordRow(task.name, modelName, recordName, epoch, step);
  const auto n = static_cast<std::int64_t>(task.train.size());
  std::vector<float> trueClass(static_cast<std::size_t>(n));
  if (trainLogits.defined()) {
    if (trainLogits.dim() != 2 || trainLogits.size(0) != n) {
      throw JobError("task '" + task.name + "', model '" + modelName +
                     "': the train-set logits given to the per-example records have the wrong shape");
    }
    const auto labels = torch::from_blob(const_cast<std::int64_t*>(task.train.labels.data()), {n}, torch::kInt64);
    const auto p = trueClassProbability(trainLogits, labels);
    std::memcpy(trueClass.data(), p.data_ptr<float>(), trueClass.size() * sizeof(float));
  } else {
    // Only the logits are needed: for KDScope's transformers the rows go in order of length and
    // each batch loses its padding (passOrder, passBatch), the same numbers for a fraction of
    // the work.
    const std::vector<std::int64_t> order = passOrder(model, task, task.train);
    for (std::int64_t begin = 0; begin < n; begin += kRecordBatch) {
      if (cancel.cancelled()) {
        return false;
      }
      const auto end = std::min<std::int64_t>(n, begin + kRecordBatch);
      const Batch batch =
          passBatch(model, task, task.train, order, static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
      const auto p = trueClassProbability(model.forward(batch).logits, batch.labels);
      const auto* src = p.data_ptr<float>();
      for (std::int64_t k = begin; k < end; ++k) {
        trueClass[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])] = src[k - begin];
      }
    }
  }
  if (n > 0) {
    writer.writeTrainRecordBlock(task.name, modelName, recordName, row, 0, static_cast<std::uint64_t>(n),
                                 trueClass.data());
  }
  return true;
}

namespace {

/// Tests only (tests/app/distributed_failure.sh): KDSCOPE_TEST_FAIL_RANK=R and
/// KDSCOPE_TEST_FAIL_STEP=S make rank R of a data-parallel job fail before step S of every
/// model (or of model KDSCOPE_TEST_FAIL_MODEL only), with a JobError, or, with
/// KDSCOPE_TEST_FAIL_MODE=kill, by killing itself (SIGKILL).
void injectedFailure(int rank, const std::string& model, long step) {
  static const char* failRank = std::getenv("KDSCOPE_TEST_FAIL_RANK");
  static const char* failStep = std::getenv("KDSCOPE_TEST_FAIL_STEP");
  static const char* failModel = std::getenv("KDSCOPE_TEST_FAIL_MODEL");
  if (failRank == nullptr || failStep == nullptr || std::atoi(failRank) != rank || std::atol(failStep) != step ||
      (failModel != nullptr && model != failModel)) {
    return;
  }
  const char* mode = std::getenv("KDSCOPE_TEST_FAIL_MODE");
  if (mode != nullptr && std::string(mode) == "kill") {
    ::kill(::getpid(), SIGKILL);
  }
  throw JobError("model '" + model + "': injected failure at step " + std::to_string(step) +
                 " (KDSCOPE_TEST_FAIL_RANK, tests only)");
}

/// One data-parallel step's backward pass and sums: this rank's share of the loss (weight =
/// shard rows / batch rows) is back-propagated, the gradients summed over the ranks in
/// buckets, and the weighted loss and terms summed too, so that every rank returns the global
/// batch's loss and holds its gradient. Returns [total, term 1, ...].
std::vector<double> dataParallelBackward(dist::Group& group, const LossTerms& terms, double weight,
                                         const std::vector<torch::Tensor>& parameters) {
  (terms.total * weight).backward();
  dist::allreduceGradients(group, parameters);
  auto values = torch::empty({static_cast<std::int64_t>(terms.terms.size()) + 1}, torch::kFloat64);
  auto* v = values.data_ptr<double>();
  v[0] = terms.total.item<double>() * weight;
  for (std::size_t t = 0; t < terms.terms.size(); ++t) {
    v[t + 1] = terms.terms[t].second.item<double>() * weight;
  }
  std::vector<torch::Tensor> sums{values};
  group.allreduceSum(sums);
  return std::vector<double>(v, v + values.numel());
}

} // namespace

TrainOutcome trainModel(ClassifierImpl& model, const TaskData& task, const TrainingSpec& spec,
                        const StepFunction& objectiveStep, const TrainTarget& target, RunWriter* writer,
                        const CancelToken& cancel, ProgressTracker& progress) {
  dist::Group* group = target.group != nullptr && target.group->worldSize() > 1 ? target.group : nullptr;
  const bool lead = group == nullptr || group->lead();
  if (lead && writer == nullptr) {
    throw JobError("trainModel: no run writer on the recording rank");
  }
  // Rank 0 draws what one process draws (dropout); the other ranks draw their own.
  torch::manual_seed(lead ? target.seed
                          : deriveSeed(target.seed, "rank", std::to_string(group->rank())));
  std::mt19937_64 rng(target.seed); // the batch order: the same on every rank
  std::vector<torch::Tensor> parameters = model.parameters();
  parameters.insert(parameters.end(), target.extraParameters.begin(), target.extraParameters.end());
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(spec.lr).weight_decay(spec.weightDecay));
  const long total = plannedSteps(spec, task.train.size());
  TrainState state;
  state.rng = &rng;
  state.order.resize(task.train.size());
  for (std::size_t i = 0; i < state.order.size(); ++i) {
    state.order[i] = static_cast<std::int64_t>(i);
  }
  if (target.resume) {
    if (writer == nullptr) {
      throw JobError("trainModel: resuming needs the run writer");
    }
    const TrainCheckpointInfo info = loadTrainCheckpoint(target.checkpointPath, model, optimizer, target, state);
    // What was recorded after the checkpoint is recorded again below: drop it first.
    writer->truncateLogs(target.task, target.model, info.rows);
    progress.advance(info.step);
  }
  std::vector<std::int64_t>& order = state.order;

  std::vector<std::int64_t> logSteps;
  std::vector<float> logLoss;
  std::vector<std::pair<std::string, std::vector<float>>> logTerms;
  auto flushLog = [&]() {
    if (!logSteps.empty() && writer != nullptr) {
      writer->appendTrainLog(target.task, target.model, logSteps, logLoss, logTerms);
    }
    logSteps.clear();
    logLoss.clear();
    for (auto& [name, values] : logTerms) {
      values.clear();
    }
  };

  const Precision precision = resolvePrecision(parsePrecision(spec.precision));
  if (writer != nullptr) {
    writer->notePrecision(target.task, target.model, precisionLabel(precision));
  }
  long step = state.step;
  if (group != nullptr) {
    group->resetStats();
  }
  const auto trainStart = std::chrono::steady_clock::now();
  const long firstStep = step;
  // The time-by-phase profile (target.timings): seconds since `from`, added to a part.
  using Clock = std::chrono::steady_clock;
  const auto addTime = [&target](double TrainTimings::*part, Clock::time_point from) {
    if (target.timings != nullptr) {
      target.timings->*part += std::chrono::duration<double>(Clock::now() - from).count();
    }
  };
  for (int epoch = state.epoch + 1; epoch <= spec.epochs; ++epoch) {
    const auto epochStart = Clock::now();
    model.train();
    shuffleIndices(order, rng);
    for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(spec.batchSize)) {
      if (group != nullptr) {
        group->checkAbort(); // another rank failed or was cancelled: PeerStopped
      }
      if (cancel.cancelled()) {
        flushLog();
        if (group != nullptr) {
          group->raiseAbort(/*cancelled=*/true, "");
        }
        return TrainOutcome::Cancelled;
      }
      const auto end = std::min(order.size(), begin + static_cast<std::size_t>(spec.batchSize));
      std::vector<std::int64_t> indices(order.begin() + static_cast<std::ptrdiff_t>(begin),
                                        order.begin() + static_cast<std::ptrdiff_t>(end));
      double weight = 1.0;
      if (group != nullptr) {
        const auto rows = static_cast<std::int64_t>(indices.size());
        auto [first, last] = dist::shardOf(rows, group->rank(), group->worldSize());
        weight = static_cast<double>(last - first) / static_cast<double>(rows);
        if (first == last) { // a batch smaller than the group: one row at weight 0 (same graph, no gradient)
          first = 0;
          last = 1;
        }
        indices = std::vector<std::int64_t>(indices.begin() + first, indices.begin() + last);
        injectedFailure(group->rank(), target.model, step + 1);
      }
      const Batch batch = makeBatch(task, task.train, indices);
      ++step;
      const double lr = learningRate(spec, step, total);
      for (auto& paramGroup : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(paramGroup.options()).lr(lr);
      }
      optimizer.zero_grad();
      // The forward passes and the loss at the job's precision; backward follows the
      // forward's dtypes, and the optimiser updates fp32 weights.
      auto terms = [&] {
        PrecisionScope scope(precision);
        return objectiveStep(model, batch, indices);
      }();
      std::vector<double> summed; // data-parallel: [total, terms...] of the global batch
      double value = 0.0;
      if (group != nullptr) {
        summed = dataParallelBackward(*group, terms, weight, parameters);
        value = summed[0];
      } else {
        value = terms.total.item<double>();
      }
      if (!std::isfinite(value)) {
        flushLog();
        std::ostringstream msg;
        msg << "task '" << target.task << "', model '" << target.model << "': the loss became "
            << (std::isnan(value) ? "NaN" : "infinite") << " at step " << step << " (epoch " << epoch
            << "); try a lower training.lr (now " << spec.lr << ")";
        throw JobError(msg.str());
      }
      if (group == nullptr) {
        terms.total.backward();
      }
      if (spec.gradClip > 0.0) {
        torch::nn::utils::clip_grad_norm_(parameters, spec.gradClip);
      }
      optimizer.step();
      progress.advance(1);

      if (step % target.logEvery == 0 || step == total) {
        logSteps.push_back(step);
        logLoss.push_back(static_cast<float>(value));
        ProgressEvent event =
            trainingEvent(ProgressEvent::Kind::Step, target, epoch, spec.epochs, step, total, value);
        if (logTerms.empty()) {
          for (const auto& [name, tensor] : terms.terms) {
            logTerms.emplace_back(name, std::vector<float>{});
          }
        }
        for (std::size_t t = 0; t < terms.terms.size(); ++t) {
          const double termValue = group != nullptr ? summed[t + 1] : terms.terms[t].second.item<double>();
          logTerms[t].second.push_back(static_cast<float>(termValue));
          event.terms[terms.terms[t].first] = termValue;
        }
        progress.emit(event);
      }
    }
    flushLog();
    addTime(&TrainTimings::steps, epochStart);
    if (!lead) {
      continue; // rank 0 evaluates and records; the others go on to the next epoch's first sum
    }
    const auto evalStart = Clock::now();
    const auto stats = evaluate(model, task, task.eval, static_cast<int>(kEvalBatch));
    writer->appendEvalCurve(target.task, target.model, epoch, step, stats.accuracy, stats.loss);
    addTime(&TrainTimings::eval, evalStart);
    const auto recordsStart = Clock::now();
    torch::Tensor sharedLogits;
    if (!target.recordName.empty() && epoch == spec.epochs && target.lastEpochTrainLogits) {
      sharedLogits = target.lastEpochTrainLogits(model);
      if (!sharedLogits.defined()) {
        return TrainOutcome::Cancelled; // lead only, one process (run_job shares only then)
      }
    }
    if (!target.recordName.empty() &&
        !recordTrainRecords(model, task, target.model, target.recordName, epoch, step, *writer, cancel,
                            sharedLogits)) {
      if (group != nullptr) {
        group->raiseAbort(/*cancelled=*/true, "");
      }
      return TrainOutcome::Cancelled;
    }
    addTime(&TrainTimings::records, recordsStart);
    const auto saveStart = Clock::now();
    writer->flush();
    if (target.afterEpoch) {
      target.afterEpoch(epoch, model);
    }
    if (!target.checkpointPath.empty()) {
      // After the flush: the checkpoint never points past what the file holds on disk.
      state.epoch = epoch;
      state.step = step;
      saveTrainCheckpoint(target.checkpointPath, model, optimizer, target, state,
                          writer->logRows(target.task, target.model));
    }
    addTime(&TrainTimings::save, saveStart);
    ProgressEvent event =
        trainingEvent(ProgressEvent::Kind::Epoch, target, epoch, spec.epochs, step, total, stats.loss);
    event.evalAccuracy = stats.accuracy;
    event.evalExamples = static_cast<std::uint64_t>(task.eval.size());
    progress.emit(event);
  }
  if (group != nullptr && lead) {
    // What bench/run-distributed-bench.sh reads: the collectives' share of the training time.
    const auto& comm = group->stats();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - trainStart).count();
    std::ostringstream msg;
    msg << "data-parallel over " << group->worldSize() << " ranks: " << (step - firstStep) << " steps in "
        << seconds << " s; rank 0 spent " << comm.seconds << " s in " << comm.calls << " allreduce calls of "
        << comm.bytes << " bytes in all";
    ProgressEvent event;
    event.kind = ProgressEvent::Kind::Info;
    event.task = target.task;
    event.model = target.model;
    event.message = msg.str();
    progress.emit(event);
  }
  return TrainOutcome::Completed;
}

EvalStats evaluate(ClassifierImpl& model, const TaskData& task, const Split& split, int batchSize) {
  torch::NoGradGuard noGrad; // thread-local: created on the job's thread
  model.eval();
  const auto n = static_cast<std::int64_t>(split.size());
  // Only the logits: rows in order of length, each batch without its padding (as the records).
  const std::vector<std::int64_t> order = passOrder(model, task, split);
  double correct = 0.0;
  double lossSum = 0.0;
  for (std::int64_t begin = 0; begin < n; begin += batchSize) {
    const auto end = std::min<std::int64_t>(n, begin + batchSize);
    const Batch batch = passBatch(model, task, split, order, static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
    auto logits = model.forward(batch).logits;
    correct += logits.argmax(1).eq(batch.labels).sum().item<double>();
    lossSum += torch::nn::functional::cross_entropy(
                   logits, batch.labels,
                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .item<double>();
  }
  EvalStats stats;
  if (n > 0) {
    stats.accuracy = correct / static_cast<double>(n);
    stats.loss = lossSum / static_cast<double>(n);
  }
  return stats;
}

int evalBatchRows(int layers, int heads, int width, int length, double budgetMb, int cap) {
  if (budgetMb <= 0.0) {
    return cap;
  }
  const double len = std::max(1, length);
  const double hidden = static_cast<double>(layers + 1) * len * width;
  const double ffn = static_cast<double>(layers) * len * 4.0 * width;
  const double attention = 2.0 * static_cast<double>(layers) * heads * len * len;
  const double bytesPerRow = 2.0 * 4.0 * (hidden + ffn + attention);
  const double rows = budgetMb * 1024.0 * 1024.0 / std::max(1.0, bytesPerRow);
  return static_cast<int>(std::clamp(rows, 1.0, static_cast<double>(cap)));
}

bool recordEvalOutputs(ClassifierImpl& model, const TaskData& task, const RecordingSpec& recording,
                       const std::string& modelName, RunWriter& writer, const CancelToken& cancel) {
  torch::NoGradGuard noGrad;
  model.eval();
  const auto n = static_cast<std::int64_t>(task.eval.size());
  const std::int64_t layers = model.numLayers();
  const std::int64_t heads = model.numHeads();
  const std::int64_t width = model.hiddenWidth();
  // A model from elsewhere may lack hidden states, attentions or its classifier (the
  // pre-flight check turned them off, with the reason recorded in the model's model_check
  // attribute): what it lacks is not recorded, and the analyses that need it are skipped.
  const bool hasHidden = model.unavailable(ModelFeature::HiddenStates).empty();
  const bool hasAttention = heads > 0 && model.unavailable(ModelFeature::Attention).empty();
  const bool hasClassifier = model.unavailable(ModelFeature::Classifier).empty();
  const bool recordHidden = recording.hidden && hasHidden;
  const std::int64_t nAtt = hasAttention ? std::min<std::int64_t>(recording.attentionExamples, n) : 0;
  // Rows per forward: within recording.memory_budget_mb (never above kEvalBatch, so small
  // models record as they always have).
  const std::int64_t evalRows =
      evalBatchRows(static_cast<int>(layers), static_cast<int>(heads), static_cast<int>(width),
                    task.kind == TaskKind::Text ? task.seqLen : 0, recording.memoryBudgetMb, static_cast<int>(kEvalBatch));

  RunWriter::EvalShape shape;
  shape.examples = static_cast<std::uint64_t>(n);
  shape.classes = static_cast<std::uint64_t>(task.numClasses());
  shape.hiddenLayers = recordHidden ? static_cast<std::uint64_t>(layers + 1) : 0;
  shape.hiddenDim = static_cast<std::uint64_t>(width);
  shape.attentionExamples = static_cast<std::uint64_t>(nAtt);
  shape.layers = static_cast<std::uint64_t>(layers);
  shape.heads = static_cast<std::uint64_t>(heads);
  shape.seqLen = static_cast<std::uint64_t>(task.seqLen);
  const std::int64_t nTok =
      heads > 0 && hasHidden && task.kind == TaskKind::Text ? std::min<std::int64_t>(recording.tokenHiddenExamples, n) : 0;
  shape.tokenHiddenExamples = static_cast<std::uint64_t>(nTok);
  shape.float16 = recording.float16;
  writer.createEvalOutputs(task.name, modelName, shape, recording.pooling);

  for (std::int64_t begin = 0; begin < n; begin += evalRows) {
    if (cancel.cancelled()) {
      return false;
    }
    const auto end = std::min<std::int64_t>(n, begin + evalRows);
    const auto rows = end - begin;
    const Batch batch = makeBatch(task, task.eval, begin, end);
    auto out = model.forward(batch);
    auto logits = out.logits.to(torch::kFloat32).contiguous();
    writer.writeEvalLogits(task.name, modelName, static_cast<std::uint64_t>(begin),
                           static_cast<std::uint64_t>(rows), logits.data_ptr<float>());
    if (recordHidden) {
      auto hidden = poolHiddenStates(out.hidden, batch, recording.pooling, width); // [B, Lyr+1, D]
      writer.writeEvalHidden(task.name, modelName, static_cast<std::uint64_t>(begin),
                             static_cast<std::uint64_t>(rows), hidden.data_ptr<float>());
    }
    if (begin < nAtt) {
      const auto keep = std::min(rows, nAtt - begin);
      auto attention = torch::stack(out.attention, /*dim=*/1).slice(0, 0, keep).contiguous();
      writer.writeEvalAttention(task.name, modelName, static_cast<std::uint64_t>(begin),
                                static_cast<std::uint64_t>(keep), attention.data_ptr<float>());
    }
    // Token-level states, one example at a time: a copy of [Lyr + 1, Len, D], not of the
    // batch's.
    for (std::int64_t i = 0; begin + i < nTok && i < rows; ++i) {
      std::vector<torch::Tensor> perLayer;
      perLayer.reserve(out.hidden.size());
      for (const auto& h : out.hidden) {
        perLayer.push_back(h.select(0, i));
      }
      auto states = torch::stack(perLayer, /*dim=*/0).contiguous(); // [Lyr + 1, Len, D]
      writer.writeEvalTokenHidden(task.name, modelName, static_cast<std::uint64_t>(begin + i), 1,
                                  states.data_ptr<float>());
    }
  }
  if (!hasClassifier) {
    writer.flush();
    return true;
  }
  auto weight = model.classifier()->weight.detach().to(torch::kFloat32).contiguous();
  auto bias = model.classifier()->bias.detach().to(torch::kFloat32).contiguous();
  writer.writeClassifier(task.name, modelName,
                         std::vector<float>(weight.data_ptr<float>(), weight.data_ptr<float>() + weight.numel()),
                         std::vector<float>(bias.data_ptr<float>(), bias.data_ptr<float>() + bias.numel()),
                         static_cast<std::uint64_t>(weight.size(0)), static_cast<std::uint64_t>(weight.size(1)));
  writer.flush();
  return true;
}

} // namespace kdscope::core
