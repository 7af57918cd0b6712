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

class TeacherCache {
public:
  /// Runs the teacher (eval mode, no gradient) over the train split. `spillPath` is used
  /// when rows * classes * 4 bytes exceed `budgetBytes`. Returns false if cancelled.
  bool build(ClassifierImpl& teacher, const TaskData& task, std::uint64_t budgetBytes,
             const std::string& spillPath, const CancelToken& cancel);
  ~TeacherCache();

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
