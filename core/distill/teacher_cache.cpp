#include "core/distill/teacher_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/common/item_threads.h"
#include "core/common/error.h"
#include "core/distributed/process_group.h"
#include "core/distill/trainer.h"
#include "core/engine/precision.h"

namespace kdscope::core {

namespace {
constexpr std::int64_t kCacheBatch = 256; // rows gathered per cache fill
constexpr std::int64_t kShardBlock = 32;  // data-parallel: rows a rank computes at a time, dealt round robin

/// Example `i` of every tensor the batch holds, as a batch of one (views, no copies).
Batch exampleOf(const Batch& batch, std::int64_t i) {
  Batch out;
  const auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, i, 1) : t; };
  out.tokens = pick(batch.tokens);
  out.mask = pick(batch.mask);
  out.features = pick(batch.features);
  out.labels = pick(batch.labels);
  out.wordEmbeddings = pick(batch.wordEmbeddings);
  out.tokenTypes = pick(batch.tokenTypes);
  return out;
}

void writeAll(int fd, const float* data, std::size_t bytes, std::uint64_t offset, const std::string& path) {
  const auto* p = reinterpret_cast<const char*>(data);
  while (bytes > 0) {
    const auto n = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw JobError("teacher cache '" + path + "': write failed: " + std::strerror(errno));
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}
} // namespace

torch::Tensor exampleWiseTeacherLogits(ClassifierImpl& teacher, const Batch& batch) {
  // One example per thread, one thread per example: an example's products are small, and
  // waking OpenBLAS's pool for each costs more than the product (30x slower with 2 threads
  // while the other core was busy: bench/README.md). Cache and no cache both come here, so they
  // still agree bit for bit.
  const auto n = batch.size();
  // An example's tokens past its last real one change nothing but the work for KDScope's own
  // transformers: each runs at its own length (a function of the example alone).
  const bool cut = paddingCanBeCut(teacher);
  std::vector<torch::Tensor> rows(static_cast<std::size_t>(n));
  // The examples are shared out over the job's threads, each on one thread of every pool
  // (LibTorch's and OpenBLAS's), so its bits depend neither on the machine's core count nor on
  // which thread took it.
  forEachItemOnOneThread(n, [&](std::int64_t i) {
    // fp32 whatever the training precision: without the cache this runs inside a student's
    // bf16 step, and must give the cache's logits.
    PrecisionScope fp32(Precision::Fp32);
    const Batch one = cut ? cutPadding(exampleOf(batch, i)) : exampleOf(batch, i);
    rows[static_cast<std::size_t>(i)] = teacher.forward(one).logits;
  });
  return torch::cat(rows).contiguous();
}

torch::Tensor trainSetTeacherLogits(ClassifierImpl& teacher, const TaskData& task, const CancelToken& cancel) {
  torch::NoGradGuard noGrad;
  teacher.eval();
  const auto n = static_cast<std::int64_t>(task.train.size());
  std::vector<torch::Tensor> blocks;
  for (std::int64_t begin = 0; begin < n; begin += kCacheBatch) {
    if (cancel.cancelled()) {
      return {};
    }
    blocks.push_back(exampleWiseTeacherLogits(teacher, makeBatch(task, task.train, begin, std::min(n, begin + kCacheBatch))));
  }
  if (blocks.empty()) {
    return torch::empty({0, task.numClasses()}, torch::kFloat32);
  }
  return torch::cat(blocks).contiguous();
}

void TeacherCache::adopt(const torch::Tensor& logits) {
  const auto l = logits.to(torch::kFloat32).contiguous();
  m_rows = static_cast<std::uint64_t>(l.size(0));
  m_classes = static_cast<std::uint64_t>(l.size(1));
  m_memory.assign(l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
}

TeacherCache::~TeacherCache() {
  if (m_fd >= 0) {
    ::close(m_fd);
    ::unlink(m_path.c_str());
  }
}

bool TeacherCache::build(ClassifierImpl& teacher, const TaskData& task, std::uint64_t budgetBytes,
                         const std::string& spillPath, const CancelToken& cancel, dist::Group* group) {
  if (group != nullptr && group->worldSize() <= 1) {
    group = nullptr;
  }
  torch::NoGradGuard noGrad;
  teacher.eval();
  m_rows = task.train.size();
  m_classes = static_cast<std::uint64_t>(task.numClasses());
  if (group == nullptr && bytes() <= budgetBytes) {
    const auto logits = trainSetTeacherLogits(teacher, task, cancel);
    if (!logits.defined()) {
      return false;
    }
    adopt(logits);
    return true;
  }
  if (bytes() > budgetBytes) {
    m_path = spillPath;
    m_fd = ::open(spillPath.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (m_fd < 0) {
      throw JobError("teacher cache '" + spillPath + "': cannot create: " + std::strerror(errno));
    }
  } else {
    m_memory.resize(m_rows * m_classes);
  }
  const auto n = static_cast<std::int64_t>(m_rows);
  for (std::int64_t begin = 0; begin < n; begin += kCacheBatch) {
    if (cancel.cancelled()) {
      return false;
    }
    const auto end = std::min(n, begin + kCacheBatch);
    torch::Tensor logits;
    if (group == nullptr) {
      logits = exampleWiseTeacherLogits(teacher, makeBatch(task, task.train, begin, end));
    } else {
      // Within the chunk, block b of kShardBlock rows is rank (b mod world)'s; the others leave
      // zeros, and x + 0 = x exactly, so the chunk's sum over the ranks is each owner's logits.
      group->checkAbort();
      logits = torch::zeros({end - begin, static_cast<std::int64_t>(m_classes)}, torch::kFloat32);
      for (std::int64_t first = begin; first < end; first += kShardBlock) {
        if ((first / kShardBlock) % group->worldSize() == group->rank()) {
          const auto last = std::min(end, first + kShardBlock);
          logits.narrow(0, first - begin, last - first)
              .copy_(exampleWiseTeacherLogits(teacher, makeBatch(task, task.train, first, last)));
        }
      }
      std::vector<torch::Tensor> block{logits};
      group->allreduceSum(block); // one collective per chunk
    }
    const auto offset = static_cast<std::uint64_t>(begin) * m_classes;
    if (m_fd >= 0) {
      writeAll(m_fd, logits.data_ptr<float>(), static_cast<std::size_t>(logits.numel()) * sizeof(float),
               offset * sizeof(float), m_path);
    } else {
      std::memcpy(m_memory.data() + offset, logits.data_ptr<float>(),
                  static_cast<std::size_t>(logits.numel()) * sizeof(float));
    }
  }
  return true;
}

torch::Tensor TeacherCache::logits(const std::vector<std::int64_t>& rows) const {
  auto out = torch::empty({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(m_classes)},
                          torch::kFloat32);
  auto* dst = out.data_ptr<float>();
  const std::size_t rowBytes = m_classes * sizeof(float);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto row = static_cast<std::uint64_t>(rows[i]);
    if (m_fd >= 0) {
      auto* p = reinterpret_cast<char*>(dst + i * m_classes);
      std::size_t left = rowBytes;
      auto offset = static_cast<off_t>(row * rowBytes);
      while (left > 0) {
        const auto got = ::pread(m_fd, p, left, offset);
        if (got <= 0) {
          if (got < 0 && errno == EINTR) {
            continue;
          }
          throw JobError("teacher cache '" + m_path + "': read failed at row " + std::to_string(row));
        }
        p += got;
        left -= static_cast<std::size_t>(got);
        offset += got;
      }
    } else {
      std::memcpy(dst + i * m_classes, m_memory.data() + row * m_classes, rowBytes);
    }
  }
  return out;
}

} // namespace kdscope::core
