// Training throughput of one distillation step (teacher forward without gradient, student
// forward and backward, AdamW step, KD objective) at two model sizes and several thread
// settings. bench/distill_step.py runs the same models in PyTorch; bench/run-bench.sh
// runs both in one session and prints the C++/Python ratio. See bench/README.md.
#include <benchmark/benchmark.h>

#include "core/distill/objectives.h"
#include "core/engine/run_job.h"
#include "core/models/transformer.h"

using namespace kdscope::core;

namespace {

constexpr std::int64_t kVocab = 8000;
constexpr std::int64_t kLen = 40;
constexpr std::int64_t kBatch = 32;
constexpr std::int64_t kClasses = 2;

struct Size {
  std::int64_t tLayers, tHeads, tWidth, tFfn, sLayers, sHeads, sWidth, sFfn;
};
// 0: the quickstart sizes; 1: the study's 4-layer 4-head teacher and a 2-layer student.
constexpr Size kSizes[] = {{2, 4, 64, 128, 1, 2, 32, 64}, {4, 4, 128, 256, 2, 2, 64, 128}};

TransformerClassifier makeTransformer(std::int64_t layers, std::int64_t heads, std::int64_t width,
                                      std::int64_t ffn) {
  TransformerOptions options(kVocab, kLen, kClasses);
  options.layers(layers).heads(heads).width(width).ffn(ffn).dropout(0.1);
  return TransformerClassifier(options);
}

void distillStep(benchmark::State& state) {
  const auto& size = kSizes[state.range(0)];
  configureThreads(static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
  torch::manual_seed(0);
  auto teacher = makeTransformer(size.tLayers, size.tHeads, size.tWidth, size.tFfn);
  auto student = makeTransformer(size.sLayers, size.sHeads, size.sWidth, size.sFfn);
  teacher->eval();
  student->train();
  torch::optim::AdamW optimizer(student->parameters(), torch::optim::AdamWOptions(1e-3));
  Batch batch;
  batch.tokens = torch::randint(3, kVocab, {kBatch, kLen}, torch::kInt64);
  batch.tokens.slice(1, 30, kLen).zero_(); // some padding, as in real batches
  batch.tokens.select(1, 0).fill_(2);
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::randint(0, kClasses, {kBatch}, torch::kInt64);
  ObjectiveSpec objective;
  objective.lambda = 0.7;
  objective.temperature = 4.0;
  for (auto _ : state) {
    torch::Tensor teacherLogits;
    {
      torch::NoGradGuard noGrad;
      teacherLogits = teacher->forward(batch).logits;
    }
    optimizer.zero_grad();
    auto out = student->forward(batch);
    auto loss = studentObjective(objective, out.logits, teacherLogits, batch.labels).total;
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["examples_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
}

} // namespace

// Args: size index, torch intra-op threads, OpenBLAS threads.
BENCHMARK(distillStep)
    ->ArgNames({"size", "torch_threads", "blas_threads"})
    ->Args({0, 1, 1})
    ->Args({0, 2, 1})
    ->Args({0, 2, 2})
    ->Args({1, 1, 1})
    ->Args({1, 2, 1})
    ->Args({1, 2, 2})
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
