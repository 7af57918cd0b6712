#pragma once
// Internal to core/analysis (not part of its interface): the argument check, the thread
// count and the small thread pool, the float64 dot product and the run-time choice of
// AVX2 + FMA kernels that cka.cpp, probe.cpp, attention_stats.cpp, residual.cpp,
// knowledge.cpp and metrics.cpp share. Each .cpp brings the names it uses into its own
// unnamed namespace with `using`.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kdscope::core::analysis::detail {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Layer l of a row-major [N, layers, width] array (pooled hidden states, as eval/hidden and
/// the probes' pooled states hold them) as an [N, width] one.
inline std::vector<float> layerOf(const std::vector<float>& stacked, std::size_t layers, std::size_t width,
                                  std::size_t l) {
  const std::size_t n = layers * width == 0 ? 0 : stacked.size() / (layers * width);
  std::vector<float> out;
  out.reserve(n * width);
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = stacked.data() + (i * layers + l) * width;
    out.insert(out.end(), row, row + width);
  }
  return out;
}

/// Throws std::invalid_argument("function: what") unless ok.
inline void require(bool ok, const char* function, const std::string& what) {
  if (!ok) {
    throw std::invalid_argument(std::string(function) + ": " + what);
  }
}

/// Throws naming the first label outside [0, numClasses) and its example; builds the message
/// only then (bootstraps check every resample's labels, and a message per label was most of
/// their time).
inline void requireLabelsInRange(const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                 const char* function) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || static_cast<std::uint64_t>(labels[i]) >= numClasses) {
      require(false, function,
              "label " + std::to_string(labels[i]) + " of example " + std::to_string(i) + " is outside [0, " +
                  std::to_string(numClasses) + ")");
    }
  }
}

/// `requested` threads, or every hardware thread (at least 1) for 0.
inline std::size_t resolveThreads(std::size_t requested) {
  if (requested > 0) {
    return requested;
  }
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

/// Runs task(taskIndex, workerIndex) for every task on up to `threads` workers that take
/// tasks in increasing order from a shared counter. With one worker it runs inline. The
/// first exception is rethrown after every worker has joined.
template <class Task> void parallelTasks(std::size_t numTasks, std::size_t threads, Task&& task) {
  const std::size_t workers = std::min(threads, numTasks);
  if (workers <= 1) {
    for (std::size_t t = 0; t < numTasks; ++t) {
      task(t, 0);
    }
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex errorMutex;
  auto run = [&](std::size_t worker) {
    try {
      for (std::size_t t = next.fetch_add(1); t < numTasks; t = next.fetch_add(1)) {
        task(t, worker);
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(errorMutex);
      if (!error) {
        error = std::current_exception();
      }
      next.store(numTasks); // let the other workers stop early
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) {
    pool.emplace_back(run, w);
  }
  run(0);
  for (std::thread& t : pool) {
    t.join();
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

/// Runs task(index) for every index on up to `threads` workers (inline with one); the first
/// exception is rethrown after all have joined.
template <class Task> void parallelFor(std::size_t count, std::size_t threads, Task&& task) {
  parallelTasks(count, threads, [&task](std::size_t index, std::size_t /*worker*/) { task(index); });
}

/// Bootstrap resamples a worker takes at a time in forEachResampleBlock.
inline constexpr std::size_t kResampleBlock = 64;

/// Calls work(begin, end) for the blocks of kResampleBlock resamples of [0, resamples), the
/// blocks over the hardware threads, where each resample is a small computation of its own
/// (per-head means over the examples): a resample is computed whole by the thread that takes
/// its block, so its bits do not depend on the thread count. work must write only its
/// resamples' results.
template <class Work> void forEachResampleBlock(std::size_t resamples, Work&& work) {
  const std::size_t blocks = (resamples + kResampleBlock - 1) / kResampleBlock;
  parallelFor(blocks, resolveThreads(0), [&](std::size_t block) {
    work(block * kResampleBlock, std::min(resamples, (block + 1) * kResampleBlock));
  });
}

/// Sum of a[i] * b[i] with four independent partial sums, so the additions pipeline without
/// needing -ffast-math to reassociate.
inline double dot(const double* a, const double* b, std::size_t n) {
  double s0 = 0.0;
  double s1 = 0.0;
  double s2 = 0.0;
  double s3 = 0.0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) {
    s0 += a[i] * b[i];
  }
  return (s0 + s1) + (s2 + s3);
}

/// Whether this CPU runs AVX2 and FMA (always false off x86 or without GCC/Clang builtins).
inline bool cpuHasAvx2Fma() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

/// The kernels for this CPU: `Kernels{}` (the portable ones) on request, otherwise
/// `avx2Fma` when the CPU runs AVX2 + FMA. Chosen once per Kernels type (a function-local
/// static, so the CPU probe never runs before the runtime's own constructors).
template <class Kernels> const Kernels& pickKernels(bool portable, const Kernels& avx2Fma) {
  static const Kernels generic;
  if (portable) {
    return generic;
  }
  static const Kernels chosen = cpuHasAvx2Fma() ? avx2Fma : generic;
  return chosen;
}

} // namespace kdscope::core::analysis::detail
