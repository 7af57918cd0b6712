#pragma once
/// The teacher's outputs on the training set, computed once and reused across epochs and
/// students when training sees no augmentation (most of a distillation step's FLOPs are the
/// teacher's forward pass). Kept in memory within a budget; above it, in a file.
/// Lives on the job's thread.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/data/dataset.h"
#include "core/models/classifier.h"

namespace kdscope::core {

namespace dist {
class Group;
}

/// The teacher's logits [B, C] for `batch` when a student needs nothing else from it (no
/// gradient; the caller sets eval mode), computed one example at a time, so that an example's
/// logits are a function of that example alone. BLAS picks kernels and tilings by a product's
/// shape and a row's position in it: with OpenBLAS's Haswell kernels even two products of the
/// same shape round a row differently when it sits at another position (measured: 50 of 50
/// random 32-row batches differ in some bit from their reversed order at width 64), so neither
/// a batch nor a fixed-size block gives the same bits in every composition. The cache is
/// filled this way, and without the cache each training batch is, so cache in memory, on disk
/// and off train bit-identical students (docs/architecture.md, "Determinism"). A transformer
/// still multiplies [Len, D] matrices per example; the cost is in bench/README.md. It runs in
/// fp32 whatever the training precision (core/engine/precision.h).
[[nodiscard]] torch::Tensor exampleWiseTeacherLogits(ClassifierImpl& teacher, const Batch& batch);

/// The teacher's logits [N, C] on the whole train split in row order, as the cache holds them
/// (exampleWiseTeacherLogits, a block of rows at a time; no gradient, eval mode). An undefined
/// tensor if cancelled between blocks. run_job computes them once for the teacher's last
/// per-example records and the cache (TeacherCache::adopt).
[[nodiscard]] torch::Tensor trainSetTeacherLogits(ClassifierImpl& teacher, const TaskData& task,
                                                  const CancelToken& cancel);

class TeacherCache {
public:
  /// Runs the teacher (eval mode, no gradient) over the train split. `spillPath` is used
  /// when rows * classes * 4 bytes exceed `budgetBytes`. Returns false if cancelled.
  /// Data-parallel (`group` of more than one rank): the rows are dealt out in blocks of 32,
  /// each rank runs the teacher on its blocks only, and every 256 rows are then summed over
  /// the ranks
  /// (the others contribute zeros, so the sum is exact): every rank ends with the whole
  /// cache, bit-identical to one process's. `spillPath` must then differ between ranks.
  bool build(ClassifierImpl& teacher, const TaskData& task, std::uint64_t budgetBytes,
             const std::string& spillPath, const CancelToken& cancel, dist::Group* group = nullptr);
  ~TeacherCache();
  /// Holds logits already computed by trainSetTeacherLogits (in memory; the caller checks
  /// the budget): the same cache as build() would fill, without a second pass.
  void adopt(const torch::Tensor& logits);

  /// Teacher logits [B, C] for these train-split rows.
  [[nodiscard]] torch::Tensor logits(const std::vector<std::int64_t>& rows) const;
  [[nodiscard]] bool onDisk() const { return m_fd >= 0; }
  [[nodiscard]] std::uint64_t bytes() const { return m_rows * m_classes * sizeof(float); }

private:
  std::uint64_t m_rows = 0;
  std::uint64_t m_classes = 0;
  std::vector<float> m_memory;
  int m_fd = -1;
  std::string m_path;
};

} // namespace kdscope::core
