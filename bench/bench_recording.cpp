// Write throughput of KDScope's recording (RunWriter over H5File and its safe file driver)
// for eval outputs of a realistic size, streamed in blocks of 128 examples as a job writes
// them. It also saves the same arrays as raw float32 files, so that
// bench/recording_h5py.py can write exactly these arrays with h5py, with the same chunks
// and compression, for comparison (bench/run-recording-bench.sh runs both).
//
//   bench_recording OUT_DIR [examples] [repeats]
//
// Prints one JSON line: bytes of raw data, wall and CPU seconds (best of the repeats), MB/s
// by each, file size.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/record/run_writer.h"

namespace {

using kdscope::core::RunWriter;
using kdscope::core::TaskData;
using kdscope::core::TaskKind;

constexpr std::uint64_t kClasses = 10;
constexpr std::uint64_t kLayers = 4; // hidden has kLayers + 1 entries
constexpr std::uint64_t kWidth = 256;
constexpr std::uint64_t kAttentionExamples = 64;
constexpr std::uint64_t kHeads = 4;
constexpr std::uint64_t kLen = 64;
constexpr std::uint64_t kBlock = 128;

struct Arrays {
  std::vector<float> logits;    // [N, C]
  std::vector<float> hidden;    // [N, L + 1, D]
  std::vector<float> attention; // [n_att, L, H, Len, Len]
};

Arrays makeArrays(std::uint64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Arrays a;
  a.logits.resize(n * kClasses);
  for (auto& v : a.logits) {
    v = 3.0f * normal(rng);
  }
  a.hidden.resize(n * (kLayers + 1) * kWidth);
  for (auto& v : a.hidden) {
    v = normal(rng);
  }
  // Softmax rows over the keys, with the last quarter of the keys padding (exact zeros), as
  // in a batch of sentences of different lengths.
  a.attention.resize(kAttentionExamples * kLayers * kHeads * kLen * kLen);
  const std::uint64_t valid = kLen * 3 / 4;
  for (std::uint64_t row = 0; row < a.attention.size() / kLen; ++row) {
    float* r = a.attention.data() + row * kLen;
    float sum = 0.0f;
    for (std::uint64_t k = 0; k < kLen; ++k) {
      r[k] = k < valid ? std::exp(normal(rng)) : 0.0f;
      sum += r[k];
    }
    for (std::uint64_t k = 0; k < kLen; ++k) {
      r[k] /= sum;
    }
  }
  return a;
}

void saveRaw(const std::string& path, const std::vector<float>& values) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
}

/// CPU seconds of this process (user + system): on a shared machine, wall time measures the
/// neighbours as much as the writer.
double cpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

/// Peak resident set size of this process so far, in KiB.
long peakResidentKb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

struct Timing {
  double wall = 0.0;
  double cpu = 0.0;
};

Timing writeRun(const std::string& path, const Arrays& a, std::uint64_t n) {
  TaskData task;
  task.name = "bench";
  task.kind = TaskKind::Vector;
  task.dim = static_cast<int>(kWidth);
  for (std::uint64_t c = 0; c < kClasses; ++c) {
    task.classNames.push_back("class" + std::to_string(c));
  }
  task.eval.labels.resize(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    task.eval.labels[i] = static_cast<std::int64_t>(i % kClasses);
  }
  const auto start = std::chrono::steady_clock::now();
  const double cpuStart = cpuSeconds();
  {
    RunWriter writer(path, "{}");
    writer.writeTask(task);
    writer.beginModel("bench", "teacher", "teacher", "{}", "{}", 0);
    RunWriter::EvalShape shape;
    shape.examples = n;
    shape.classes = kClasses;
    shape.hiddenLayers = kLayers + 1;
    shape.hiddenDim = kWidth;
    shape.attentionExamples = kAttentionExamples;
    shape.layers = kLayers;
    shape.heads = kHeads;
    shape.seqLen = kLen;
    writer.createEvalOutputs("bench", "teacher", shape, "mean");
    const std::uint64_t hiddenRow = (kLayers + 1) * kWidth;
    const std::uint64_t attentionRow = kLayers * kHeads * kLen * kLen;
    for (std::uint64_t begin = 0; begin < n; begin += kBlock) {
      const std::uint64_t rows = std::min(kBlock, n - begin);
      writer.writeEvalLogits("bench", "teacher", begin, rows, a.logits.data() + begin * kClasses);
      writer.writeEvalHidden("bench", "teacher", begin, rows, a.hidden.data() + begin * hiddenRow);
      if (begin < kAttentionExamples) {
        const std::uint64_t keep = std::min(rows, kAttentionExamples - begin);
        writer.writeEvalAttention("bench", "teacher", begin, keep, a.attention.data() + begin * attentionRow);
      }
    }
    writer.setStatus("complete", ""); // flush + fsync
  }
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), cpuSeconds() - cpuStart};
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [examples] [repeats]\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  const std::uint64_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20000;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  const Arrays a = makeArrays(n);
  saveRaw(out + "/logits.f32", a.logits);
  saveRaw(out + "/hidden.f32", a.hidden);
  saveRaw(out + "/attention.f32", a.attention);
  // The writer streams: its memory is a few chunks and HDF5's chunk caches, not the arrays.
  // The peak resident size before and after writing (the arrays are resident before) gives
  // the most the writer ever held on top of them.
  const long peakBeforeKb = peakResidentKb();
  Timing best{1e30, 1e30};
  for (int r = 0; r < repeats; ++r) {
    const Timing t = writeRun(out + "/kdscope.h5", a, n);
    best.wall = std::min(best.wall, t.wall);
    best.cpu = std::min(best.cpu, t.cpu);
  }
  const double writerPeakMb = static_cast<double>(peakResidentKb() - peakBeforeKb) / 1024.0;
  struct stat info {};
  ::stat((out + "/kdscope.h5").c_str(), &info);
  const double bytes = static_cast<double>((a.logits.size() + a.hidden.size() + a.attention.size()) * sizeof(float));
  std::printf("{\"writer\": \"kdscope\", \"examples\": %llu, \"raw_bytes\": %.0f, \"seconds\": %.4f, "
              "\"cpu_seconds\": %.4f, \"mb_per_s\": %.1f, \"cpu_mb_per_s\": %.1f, \"file_bytes\": %lld, "
              "\"writer_peak_extra_mb\": %.1f}\n",
              static_cast<unsigned long long>(n), bytes, best.wall, best.cpu, bytes / best.wall / 1e6,
              bytes / best.cpu / 1e6, static_cast<long long>(info.st_size), writerPeakMb);
  return 0;
}
