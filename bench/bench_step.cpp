// One distillation step at any size, from the command line: teacher forward without
// gradient, student forward and backward, AdamW step, KD objective (T = 2, lambda = 0.5 by
// default), no dropout. bench/distill_step.py takes the same arguments and runs the same
// models in PyTorch from Python, so the two can be compared at any size without a rebuild:
//
//   bench_step --teacher 4,256,4,1024 --student 2,128,2,512 --len 64 --batch 32 --steps 60
//              [--warmup 5] [--threads N] [--blas-threads M] [--precision fp32|bf16|auto]
//              [--profile FILE.json]
//
// Sizes are layers,width,heads,ffn. Half the batch is padded past len/2 tokens. The last
// line printed ends with `examples/s=N`. See bench/README.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "core/distill/objectives.h"
#include "core/engine/precision.h"
#include "core/engine/run_job.h"
#include "core/models/transformer.h"

using namespace kdscope::core;

namespace {

struct ModelSize {
  std::int64_t layers = 0, width = 0, heads = 0, ffn = 0;
};

ModelSize parseSize(const std::string& text, const char* flag) {
  ModelSize size;
  char c1 = 0, c2 = 0, c3 = 0;
  std::istringstream in(text);
  in >> size.layers >> c1 >> size.width >> c2 >> size.heads >> c3 >> size.ffn;
  if (!in || c1 != ',' || c2 != ',' || c3 != ',' || size.layers < 1 || size.width < 1 || size.heads < 1 ||
      size.ffn < 1 || size.width % size.heads != 0) {
    std::cerr << "bench_step: " << flag << " wants layers,width,heads,ffn with width divisible by heads, got '"
              << text << "'\n";
    std::exit(2);
  }
  return size;
}

std::string describe(const ModelSize& s) {
  std::ostringstream out;
  out << s.layers << "," << s.width << "," << s.heads << "," << s.ffn;
  return out.str();
}

} // namespace

int main(int argc, char** argv) {
  ModelSize teacherSize{4, 256, 4, 1024};
  ModelSize studentSize{2, 128, 2, 512};
  std::int64_t len = 64, batchSize = 32, steps = 60, warmup = 5, vocab = 8000, classes = 2;
  int threads = 0, blasThreads = 0;
  double lambda = 0.5, temperature = 2.0;
  std::string precisionName = "fp32";
  std::string profilePath;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "bench_step: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--teacher") teacherSize = parseSize(value(), "--teacher");
    else if (arg == "--student") studentSize = parseSize(value(), "--student");
    else if (arg == "--len") len = std::stoll(value());
    else if (arg == "--batch") batchSize = std::stoll(value());
    else if (arg == "--steps") steps = std::stoll(value());
    else if (arg == "--warmup") warmup = std::stoll(value());
    else if (arg == "--vocab") vocab = std::stoll(value());
    else if (arg == "--threads") threads = std::stoi(value());
    else if (arg == "--blas-threads") blasThreads = std::stoi(value());
    else if (arg == "--precision") precisionName = value();
    else if (arg == "--lambda") lambda = std::stod(value());
    else if (arg == "--temperature") temperature = std::stod(value());
    else if (arg == "--profile") profilePath = value();
    else {
      std::cerr << "bench_step: unknown argument '" << arg << "'\n";
      return 2;
    }
  }
  Precision precision = Precision::Fp32;
  try {
    precision = resolvePrecision(parsePrecision(precisionName));
  } catch (const std::exception& e) {
    std::cerr << "bench_step: " << e.what() << "\n";
    return 2;
  }
  if (threads > 0 || blasThreads > 0) {
    configureThreads(threads, blasThreads);
  }
  torch::manual_seed(0);
  const auto make = [&](const ModelSize& s) {
    TransformerOptions options(vocab, len, classes);
    options.layers(s.layers).heads(s.heads).width(s.width).ffn(s.ffn).dropout(0.0);
    return TransformerClassifier(options);
  };
  auto teacher = make(teacherSize);
  auto student = make(studentSize);
  teacher->eval();
  student->train();
  torch::optim::AdamW optimizer(student->parameters(), torch::optim::AdamWOptions(1e-3));
  Batch batch;
  batch.tokens = torch::randint(3, vocab, {batchSize, len}, torch::kInt64);
  batch.tokens.slice(0, 0, batchSize / 2).slice(1, len / 2, len).zero_(); // half the batch padded
  batch.tokens.select(1, 0).fill_(2);
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::randint(0, classes, {batchSize}, torch::kInt64);
  ObjectiveSpec objective;
  objective.lambda = lambda;
  objective.temperature = temperature;
  const auto step = [&]() {
    PrecisionScope scope(precision);
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
    return loss.item<double>();
  };
  for (std::int64_t i = 0; i < warmup; ++i) {
    step();
  }
  double lastLoss = 0.0;
  const auto start = std::chrono::steady_clock::now();
  {
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    if (!profilePath.empty()) {
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profilePath);
    }
    for (std::int64_t i = 0; i < steps; ++i) {
      lastLoss = step();
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double perSecond = static_cast<double>(steps * batchSize) / seconds;
  std::printf("cpp teacher=%s student=%s len=%lld batch=%lld steps=%lld precision=%s threads=%d "
              "blas_threads=%d loss=%.4f ms/step=%.2f examples/s=%.1f\n",
              describe(teacherSize).c_str(), describe(studentSize).c_str(), static_cast<long long>(len),
              static_cast<long long>(batchSize), static_cast<long long>(steps), precisionLabel(precision),
              at::get_num_threads(), blasThreads, lastLoss, 1000.0 * seconds / static_cast<double>(steps),
              perSecond);
  return 0;
}
