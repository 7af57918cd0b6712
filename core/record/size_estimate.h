#pragma once
/// The expected size of a job's run file, from the job and its loaded tasks, before any
/// training: `kdscope run` prints it, and recording.max_file_mb (or --max-file-mb) refuses a
/// job above its limit. Every dataset the job will write is sized from its shape and
/// element type, times an assumed compression ratio (docs/run-format.md, "Size estimate",
/// lists them and the measured error).

#include <cstdint>
#include <map>
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

/// A TorchScript model's recordings as its pre-flight check found them (modes "compare" and
/// "distil"), in place of the job's architecture fields, which such a model does not have.
struct RecordedModelSizes {
  std::uint64_t layers = 0;          ///< Lyr (manifest sizes.layers)
  std::uint64_t heads = 0;           ///< H (0: none)
  std::uint64_t width = 0;           ///< D of eval/hidden (manifest sizes.width)
  std::uint64_t classifierWidth = 0; ///< D of the classifier weight [C, D]
  bool hidden = false;     ///< the module returns usable hidden states (else no eval/hidden)
  bool attention = false;  ///< it returns usable attentions (else no eval/attention)
  bool classifier = false; ///< the manifest names its classifier (else no classifier group)
  std::vector<std::string> vocab; ///< a text model's tokenizer vocabulary (<model>/vocab)
};
/// task -> model name ("teacher" or a student's) -> sizes.
using TorchScriptSizes = std::map<std::string, std::map<std::string, RecordedModelSizes>>;

/// Estimates the run file of `job` over `tasks` (as loadTask returned them, in job order).
/// `torchScript`: the sizes of the job's TorchScript models, from their pre-flight checks; a
/// model listed there is sized from them, and it is trained only when it is a student of
/// mode "distil" (a TorchScript teacher and the models of "compare" are recorded as given).
RunSizeEstimate estimateRunFileSize(const JobSpec& job, const std::vector<TaskData>& tasks,
                                    const TorchScriptSizes& torchScript = {});

/// "532 B", "14.2 KiB", "3.10 MiB", "1.25 GiB".
std::string formatBytes(std::uint64_t bytes);

} // namespace kdscope::core
