// The cost of computing the teacher's logits one example at a time (exampleWiseTeacherLogits,
// what the teacher cache and cache-off students do since determinism across CPUs needed it:
// docs/architecture.md, "Determinism") against one batched forward pass per 256 rows (what
// the cache did before), on the same teacher and the same rows, interleaved in one process.
// Usage: bench_teacher_logits [--rows N] [--repeats R] [--layers L --width D --heads H --ffn F
//        --len T]; prints one line per method and the ratio. See bench/README.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/distill/teacher_cache.h"
#include "core/engine/run_job.h"
#include "core/models/transformer.h"

using namespace kdscope::core;

int main(int argc, char** argv) {
  std::int64_t rows = 1024, repeats = 3, layers = 4, width = 64, heads = 4, ffn = 128, len = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::int64_t value = std::atoll(argv[i + 1]);
    if (key == "--rows") rows = value;
    else if (key == "--repeats") repeats = value;
    else if (key == "--layers") layers = value;
    else if (key == "--width") width = value;
    else if (key == "--heads") heads = value;
    else if (key == "--ffn") ffn = value;
    else if (key == "--len") len = value;
    else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  configureThreads(0, -1); // kdscope's defaults
  torch::manual_seed(0);
  TransformerOptions options(/*vocab=*/8000, len, /*classes=*/4);
  options.layers(layers).heads(heads).width(width).ffn(ffn).dropout(0.0);
  TransformerClassifier teacher(options);
  teacher->eval();
  Batch batch;
  batch.tokens = torch::randint(3, 8000, {rows, len}, torch::kInt64);
  batch.tokens.slice(1, len / 2, len).zero_(); // half of each row padding
  batch.tokens.select(1, 0).fill_(2);
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::zeros({rows}, torch::kInt64);
  torch::NoGradGuard noGrad;
  const auto batched = [&] {
    for (std::int64_t b = 0; b < rows; b += 256) {
      Batch part;
      const auto n = std::min<std::int64_t>(256, rows - b);
      part.tokens = batch.tokens.narrow(0, b, n);
      part.mask = batch.mask.narrow(0, b, n);
      part.labels = batch.labels.narrow(0, b, n);
      (void)teacher->forward(part).logits.sum().item<float>();
    }
  };
  const auto exampleWise = [&] { (void)exampleWiseTeacherLogits(*teacher, batch).sum().item<float>(); };
  double best[2] = {1e30, 1e30};
  for (std::int64_t r = 0; r < repeats; ++r) {
    for (int m = 0; m < 2; ++m) {
      const auto t0 = std::chrono::steady_clock::now();
      m == 0 ? batched() : exampleWise();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best[m] = std::min(best[m], s);
    }
  }
  std::printf("teacher %lldx%lld (heads %lld, ffn %lld), len %lld, %lld rows, best of %lld\n",
              static_cast<long long>(layers), static_cast<long long>(width), static_cast<long long>(heads),
              static_cast<long long>(ffn), static_cast<long long>(len), static_cast<long long>(rows),
              static_cast<long long>(repeats));
  std::printf("batched (256 rows a pass): %.3f s, examples/s=%.0f\n", best[0], rows / best[0]);
  std::printf("one example a pass:        %.3f s, examples/s=%.0f\n", best[1], rows / best[1]);
  std::printf("ratio one-at-a-time / batched: %.2fx\n", best[1] / best[0]);
  return 0;
}
