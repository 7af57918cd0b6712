#pragma once
/// The expected size of a job's run file, from the job and its loaded tasks, before any
/// training: `kdscope run` prints it, and recording.max_file_mb (or --max-file-mb) refuses a
/// job above its limit. Every dataset the job will write is sized from its shape and
/// element type, times an assumed compression ratio (docs/run-format.md, "Size estimate",
/// lists them and the measured error).

#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

struct RunSizeEstimate {
  std::uint64_t bytes = 0; ///< the whole file
  struct Part {
    std::string what; ///< "eval/hidden of every model", ...
    std::uint64_t bytes = 0;
  };
  std::vector<Part> parts; ///< largest first
  /// "12.3 MiB (eval/attention 8.1 MiB, eval/hidden 3.0 MiB, ...)"
  [[nodiscard]] std::string describe(std::size_t largestParts = 3) const;
};

/// Estimates the run file of `job` over `tasks` (as loadTask returned them, in job order).
RunSizeEstimate estimateRunFileSize(const JobSpec& job, const std::vector<TaskData>& tasks);

/// "532 B", "14.2 KiB", "3.10 MiB", "1.25 GiB".
std::string formatBytes(std::uint64_t bytes);

} // namespace kdscope::core
