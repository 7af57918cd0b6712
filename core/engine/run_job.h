#pragma once
/// Core's entry point: runs a whole job (every task: teacher, then each student), writing
/// one run file. Never throws: failures come back as a status with a message that names
/// the file, field, dataset or layer at fault. Runs on the caller's thread; call it from
/// a worker thread in a GUI.

#include <string>

#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

struct RunOptions {
  std::string outDir;   ///< the run file is outDir/run.h5, checkpoints under outDir/checkpoints
  int threads = 0;      ///< LibTorch intra-op threads; 0 keeps the process setting
  int blasThreads = -1; ///< OpenBLAS threads; -1 keeps the process setting
};

enum class JobStatus { Succeeded, Cancelled, Failed, BadInput };

struct JobResult {
  JobStatus status = JobStatus::Failed;
  std::string message; ///< empty on success
  std::string runPath; ///< the run file (may exist for failed and cancelled jobs)
};

/// Runs `job`. `cancel` is polled between batches and recording chunks; `progress` is
/// called on this thread (may be empty).
JobResult runJob(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                 const ProgressSink& progress);

const char* toString(JobStatus status);

/// Sets LibTorch's intra-op threads and, when OpenBLAS is the loaded BLAS, its thread
/// count (found at run time; a no-op for other BLAS). Values <= 0 leave a setting alone.
void configureThreads(int torchThreads, int blasThreads);

} // namespace kdscope::core
