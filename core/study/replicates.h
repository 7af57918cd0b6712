#pragma once
/// Replicates of a job (issue #14; docs/statistics.md, "Replicates"): the same job run once
/// per replicate seed, the split fixed by the job seed and every model draw (initialisation,
/// dropout, augmentation, batch order) by the replicate's seed (JobSpec::modelSeed). The out
/// dir holds
///
///   DIR/replicates.json                 the manifest: the job, the seeds, each run's path
///   DIR/rep-<seed>/run.h5               each replicate's run file (and its checkpoints)
///   DIR/replicate_summary.json          the summary below, written when all runs completed
///
/// The summary is computed from the run files through AnalysisResults (one truth per number):
/// each headline number of each run, then across replicates its mean, sample sd and Student-t
/// 95% interval ("over N replicates"), and for every pair of students of a task a paired t on
/// the per-replicate accuracy differences. No Qt, no torch in this header.
#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/multiple_testing.h"
#include "core/analysis/stats.h"
#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

/// One headline metric across replicates: the value of each replicate (in seed order; NaN
/// where a run has none) and its summary over the finite values.
struct ReplicateMetric {
  std::string name;            ///< "accuracy", "gap", ... (task_intervals.h metric names and the rest below)
  std::vector<double> values;  ///< one per replicate
  analysis::ReplicateSummary summary; ///< mean, sd, t interval (over kOverReplicates; count = finite values)
};

/// One student's metrics: accuracy, teacher_accuracy, gap, retained_fraction, agreement,
/// mean_kl, ece, teacher_ece, geometry_agreement, w_confidence_spearman.
struct ReplicateStudent {
  std::string name;
  std::vector<ReplicateMetric> metrics;
  [[nodiscard]] const ReplicateMetric* find(const std::string& metric) const;
};

/// Two models of a task compared on the same seeds: d_r = accuracy(first) - accuracy(second)
/// in replicate r; paired t on d (test "paired t"), and the McNemar discordant counts summed
/// over the replicates (for information: the replicates share their eval examples, so the
/// sums are not an independent test).
struct ReplicatePair {
  std::string metric = "accuracy"; ///< the metric compared (metricPairs: geometry_agreement, w_confidence_spearman)
  std::string first;
  std::string second; ///< another student, or "teacher"
  std::vector<double> differences;
  analysis::PairedComparison test;
  analysis::AdjustedP holm; ///< Holm over the set's family (ReplicateSet)
  std::uint64_t onlyFirst = 0;
  std::uint64_t onlySecond = 0;
};

struct ReplicateTask {
  std::string task;
  std::vector<ReplicateMetric> teacher; ///< accuracy, ece
  std::vector<ReplicateStudent> students;
  std::vector<ReplicatePair> pairs;     ///< each student against the teacher, then each pair of students once
  /// Each pair of students once on the per-replicate geometry_agreement, then on
  /// w_confidence_spearman (paired t; only pairs where both students have values; no
  /// McNemar counts). docs/reproduction.md rows 5 and 6.
  std::vector<ReplicatePair> metricPairs;
  /// The knowledge-level gains when the four control students ran: universe, instance,
  /// domain, total (KD gain); empty otherwise.
  std::vector<ReplicateMetric> knowledge;
};

struct ReplicateSet {
  std::string dir;
  std::string jobName;
  std::vector<std::uint64_t> seeds;
  std::vector<std::string> runs; ///< run file paths, in seed order
  std::vector<ReplicateTask> tasks;
  /// Every paired test above (pairs and metricPairs of every task) is one family: each
  /// test's ReplicatePair::holm is Holm over it (core/analysis/multiple_testing.h).
};

/// DIR/rep-<seed>: the folder of one replicate's run.
std::string replicateRunDir(const std::string& outDir, std::uint64_t seed);
/// DIR/replicates.json.
std::string replicateManifestPath(const std::string& dir);
/// DIR/replicate_summary.json.
std::string replicateSummaryPath(const std::string& dir);
/// `path` is a folder holding replicates.json.
bool isReplicateDir(const std::string& path);

/// Runs every replicate of `job` (job.replicateSeeds(), at least one) into
/// options.outDir/rep-<seed>, writing the manifest first and the summary when all completed.
/// A replicate whose run file is complete is kept; one cut off is resumed. Never throws.
/// The result's runPath is the manifest; its status is the first replicate's that did not
/// succeed, or Succeeded.
JobResult runReplicates(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                        const ProgressSink& progress);

/// DIR/replicates.json as written: the job's name and each replicate's seed and run file
/// path (resolved against DIR), in seed order. Throws InputError naming the manifest and the
/// field at fault.
struct ReplicateManifest {
  std::string jobName;
  std::vector<std::uint64_t> seeds;
  std::vector<std::string> runs;
};
ReplicateManifest readReplicateManifest(const std::string& dir);

/// Reads DIR/replicates.json and each run file it lists and summarises them. Throws
/// InputError naming the file (and field) when the manifest or a run cannot be read, or
/// when the runs disagree on their tasks or eval examples.
ReplicateSet summarizeReplicateSet(const std::string& dir);

/// The summary as JSON text (replicate_summary.json; docs/statistics.md lists its fields).
std::string replicateSummaryJson(const ReplicateSet& set);

/// Summarises values of one metric: the mean, sd and t interval of the finite ones.
ReplicateMetric replicateMetric(const std::string& name, const std::vector<double>& values);

} // namespace kdscope::core
