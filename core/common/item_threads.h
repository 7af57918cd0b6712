#pragma once
/// Independent items (examples, bootstrap resamples) shared out over the process's threads,
/// each item computed on one thread of every pool (docs/architecture.md, "Threads").

#include <cstdint>
#include <functional>

namespace kdscope::core {

/// Calls work(i) for every i in [0, n), on up to LibTorch's intra-op thread count of threads
/// at once, handing out the items in order as threads free up. Inside work, LibTorch's ops,
/// oneDNN and OpenBLAS each run on the calling thread alone and no gradient is recorded, so an
/// item's bits depend on the item alone: not on the machine's cores, on how many threads
/// there are or on which took it. For many small computations, where one item per thread
/// beats splitting each item's small products (bench/README.md, "OpenBLAS's pool and small
/// products"). work must not touch another item's state. The first exception thrown is
/// rethrown here after every thread has stopped; the items not yet started are skipped.
void forEachItemOnOneThread(std::int64_t n, const std::function<void(std::int64_t)>& work);

} // namespace kdscope::core
