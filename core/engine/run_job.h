#pragma once
/// Core's entry point: runs a whole job (every task: teacher, then each student), writing
/// one run file. Never throws: failures come back as a status with a message that names
/// the file, field, dataset or layer at fault. Runs on the caller's thread; call it from
/// a worker thread in a GUI.

#include <cstdint>
#include <string>

#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/distributed/distributed.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

struct RunOptions {
  std::string outDir;   ///< the run file is outDir/run.h5, checkpoints under outDir/checkpoints
  int threads = 0;      ///< LibTorch intra-op threads; 0 keeps the process setting
  int blasThreads = -1; ///< OpenBLAS threads; -1 keeps the process setting
  /// Continue the job of outDir (killed, cancelled or failed) from its last checkpoints
  /// instead of starting it: models already complete are skipped, a model cut off resumes
  /// after its last completed epoch, and what was recorded after that is dropped from the
  /// run file first, so nothing is kept twice. `job` must be the run's own
  /// (loadJobForResume).
  bool resume = false;
  /// Limit on the estimated run file size in MiB: > 0 refuses a larger job (BadInput, with
  /// the estimate in the message), 0 means no limit, < 0 takes recording.max_file_mb.
  double maxFileMb = -1.0;
  /// Data-parallel training (docs/distributed.md): this process is one rank of `group`
  /// (core/distributed/distributed.h). Every rank calls runJob with the same job; rank 0
  /// alone writes the run file and checkpoints (in outDir), the others return an empty
  /// runPath. Null: one process. Not with `resume`.
  std::shared_ptr<dist::Group> group{};
  /// When the job is analysed ("analyze": true): an analysed run file of the same teacher
  /// whose teacher "heads" and "probes" results are copied when they were computed from the
  /// same inputs (AnalyzeOptions::teacherAnalysesFrom; a study passes its teacher job's run
  /// file to each cell). Empty: compute them.
  std::string teacherAnalysesFrom{};
};

enum class JobStatus { Succeeded, Cancelled, Failed, BadInput };

struct JobResult {
  JobStatus status = JobStatus::Failed;
  std::string message; ///< empty on success
  std::string runPath; ///< the run file (may exist for failed and cancelled jobs)
  std::uint64_t estimatedBytes = 0; ///< the run file's estimated size (0 when not reached)
  /// Data-parallel: this rank stopped because another rank failed or was cancelled, or
  /// because it lost contact with the group (the message says which).
  bool stoppedByPeer = false;
};

/// The job of the run in `outDir` (its run file's `job` attribute, with the job file's
/// folder that the run recorded for relative paths), for RunOptions::resume. Throws
/// InputError naming the file when there is no run to continue.
JobSpec loadJobForResume(const std::string& outDir);

/// Runs `job`. `cancel` is polled between batches and recording chunks; `progress` is
/// called on this thread (may be empty).
JobResult runJob(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                 const ProgressSink& progress);

const char* toString(JobStatus status);

/// Sets LibTorch's intra-op threads and, when OpenBLAS is the loaded BLAS, its thread
/// count (found at run time; a no-op for other BLAS). Values <= 0 leave a setting alone.
void configureThreads(int torchThreads, int blasThreads);

} // namespace kdscope::core
