#pragma once
/// Run files that are replicates of one job, and a series summarised over them (issue #14;
/// docs/statistics.md, "Replicates"): what the comparison figures of several open runs use
/// to draw a replicated job as its mean with a 95% Student-t interval (over
/// analysis::kOverReplicates) instead of one line per run. No Qt, no torch, no HDF5.

#include <cstdint>
#include <string>
#include <vector>

namespace kdscope::core {

/// Whether runs are replicates of one job: each run's job JSON (the run file's root attribute
/// "job") equal to the others' once "replicate_seed" is removed, every replicate seed set
/// (non-zero) and different. `why` says what breaks it, naming the run (by index) at fault.
struct ReplicateGroup {
  bool replicates = false;
  std::vector<std::uint64_t> seeds; ///< each run's replicate seed, in the runs' order
  std::string why;                  ///< empty when `replicates`
};
/// Never throws: a job JSON that does not parse makes the runs not a group (`why` says so).
ReplicateGroup replicateGroup(const std::vector<std::string>& jobJsons);

/// Series of the replicates (x, y of each; x need not be aligned) summarised at every x that
/// any replicate has: the mean of the replicates' y there, and, where at least 2 have a
/// finite y, the sample sd's Student-t 95% interval of the mean (NaN ends otherwise). x in
/// ascending order. Throws std::invalid_argument when a replicate's x and y differ in length.
struct ReplicateBand {
  std::vector<double> x;
  std::vector<double> mean;
  std::vector<double> lo;
  std::vector<double> hi;
  std::vector<std::size_t> count; ///< replicates with a finite y at x
};
ReplicateBand replicateBand(const std::vector<std::vector<double>>& xs, const std::vector<std::vector<double>>& ys);

} // namespace kdscope::core
