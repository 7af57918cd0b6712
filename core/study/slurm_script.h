#pragma once
/// Slurm job-array scripts for a study (docs/studies.md, "Running on Slurm"): the teacher job,
/// an array of one task per cell that waits for it (--dependency=afterok), and a merge job
/// that waits for the array, plus submit.sh, which submits the three in that order. Nothing
/// about the cluster is assumed beyond Slurm's sbatch: the resources are the options given
/// (else the cluster's defaults), and every job runs the same kdscope executable on the same
/// study file and output folder, which the nodes must see at the same paths. Plain strings,
/// no torch or Qt: `kdscope study --slurm` and the window's Study tab both write them.

#include <string>
#include <vector>

#include "core/study/study_spec.h"

namespace kdscope::core {

struct SlurmOptions {
  std::string executable; ///< the kdscope the jobs run (made absolute)
  std::string studyPath;  ///< the study file (made absolute)
  std::string outDir;     ///< the study's output folder (made absolute)
  std::string partition;  ///< --partition; empty: the cluster's default
  std::string time;       ///< --time of each job (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); empty: default
  std::string mem;        ///< --mem of each job (a number of MB, or with a K, M, G or T suffix); empty: default
  std::string account;    ///< --account; empty: the user's default
  int cpusPerTask = 1;    ///< --cpus-per-task of the teacher job and of each array task
  /// kdscope --threads and --blas-threads of each job; 0: the CPUs Slurm allocated
  /// (SLURM_CPUS_PER_TASK). Runs compare bit for bit only at the same thread settings
  /// (docs/architecture.md, "Determinism").
  int threads = 0;
  int blasThreads = 0;
  int arrayLimit = 0;     ///< at most this many cells at once (--array=0-N%K); 0: no limit
};

/// One file of the set.
struct SlurmFile {
  std::string name; ///< teacher.sbatch, cells.sbatch, merge.sbatch or submit.sh
  std::string path; ///< OUT/slurm/<name>
  std::string text;
};

/// OUT/slurm: the scripts; OUT/slurm/logs: the jobs' output.
std::string studySlurmDir(const std::string& outDir);

/// The scripts for a study: teacher.sbatch (only when the study trains its teacher),
/// cells.sbatch (array 0..cells-1), merge.sbatch and submit.sh. Throws InputError naming the
/// option at fault: a time, memory size, partition or account Slurm would refuse, a CPU count
/// below 1, or an output folder that #SBATCH lines cannot hold (white space, quotes, '%').
std::vector<SlurmFile> slurmScripts(const StudySpec& study, const SlurmOptions& options);

/// Writes slurmScripts() (executable), creating OUT/slurm/logs, which sbatch does not
/// create. Throws InputError naming the option or the file that could not be written.
std::vector<SlurmFile> writeSlurmScripts(const StudySpec& study, const SlurmOptions& options);

/// What to type to submit them, for the terminal or a dialog.
std::string slurmSubmitHowTo(const StudySpec& study, const SlurmOptions& options);

} // namespace kdscope::core
