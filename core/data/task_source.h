#pragma once
/// A job's task read from the user's own file (TaskSpec::fromFile()): the job fields turned
/// into a TaskFileSpec, paths resolved against the job file's folder, the pre-flight check
/// of the files (every row, before any training), and the provenance the run file records.
/// docs/job-format.md ("Tasks from your own files") and docs/data.md ("Your own data").

#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/dataset_file.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

/// The TaskFileSpec of a row-file task (JSON Lines, CSV, TSV): format, fields, label kind.
/// Throws InputError naming the task when `format` is unknown.
TaskFileSpec taskFileSpec(const TaskSpec& task);

/// "jsonl", "csv", "tsv", "npy" or "h5": the task's `format`, or from its file's extension
/// when "auto" ("" when the extension says nothing).
std::string taskFileFormat(const TaskSpec& task);

/// Makes the task paths of every task (file, eval_file, label_file, vocab) absolute against
/// job.baseDir, so that a job recorded in a run file still finds them (analysis reloads).
/// A path that starts with "{data_dir}" starts in the job's data folder instead (data_dir,
/// $KDSCOPE_DATA_DIR or ~/.cache/kdscope/data). Absolute paths, empty paths and an empty
/// baseDir are left as they are.
void resolveTaskFilePaths(JobSpec& job);

/// Checks the files a job's tasks read, with paths resolved against job.baseDir: that each
/// exists and is a file (always), and, when `readRows`, that every row reads (the whole
/// load, as the run will do it). Issues name the task field ("tasks[0].file") and the
/// loader's message names the file, line and field. `control`: progress and cancel of the
/// row reads (dataset.h); a cancelled check returns at the reader's next poll with the
/// issues found so far (the caller sees its token set). Never throws.
std::vector<JobIssue> checkTaskFiles(const JobSpec& job, bool readRows, const TaskReadControl& control = {});

/// Loads a task read from a file (loadTask calls this when spec.fromFile()). Paths are used
/// as they are (resolveTaskFilePaths first). Throws InputError naming the file.
/// `control`: cancel and progress of the row reader (dataset.h).
TaskData loadFileTask(const TaskSpec& spec, std::uint64_t seed, const TaskReadControl& control = {});

/// The provenance of a task spec (sizes read from the file system now).
TaskProvenance taskProvenance(const TaskSpec& spec);

} // namespace kdscope::core
