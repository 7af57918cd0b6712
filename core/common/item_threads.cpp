#include "core/common/item_threads.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/common/blas_threads.h"

namespace kdscope::core {

void forEachItemOnOneThread(std::int64_t n, const std::function<void(std::int64_t)>& work) {
  if (n <= 0) {
    return;
  }
  // OpenBLAS's count is process-wide: one for the duration (restored after).
  SingleBlasThread oneBlasThread;
  const auto threads = static_cast<int>(std::min<std::int64_t>(n, std::max(1, at::get_num_threads())));
  std::atomic<std::int64_t> next{0};
  std::mutex failedMutex;
  std::exception_ptr failed;
  const auto worker = [&] {
    try {
      // LibTorch sets a new thread's OpenMP count on its first parallel call; after it, this
      // thread's own count goes to 1 (OpenMP keeps it per thread).
      (void)at::get_num_threads();
      setOpenMpThreadsOfThisThread(1);
      torch::NoGradGuard noGrad;
      for (auto i = next++; i < n; i = next++) {
        work(i);
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failedMutex);
      if (!failed) {
        failed = std::current_exception();
      }
      next = n;
    }
  };
  // Always on threads of our own, even for one: the caller's thread keeps its pools' counts.
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(worker);
  }
  for (auto& t : pool) {
    t.join();
  }
  if (failed) {
    std::rethrow_exception(failed);
  }
}

} // namespace kdscope::core
