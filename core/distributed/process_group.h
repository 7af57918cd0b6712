#pragma once
/// The process group of data-parallel training (private to core: torch types). One Gloo
/// process group and its store (TCPStore or FileStore, both from LibTorch's c10d); the
/// store also carries the abort notice that stops every rank when one fails or is
/// cancelled. docs/distributed.md, "Failures".

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/distributed/distributed.h"

namespace kdscope::core::dist {

/// Thrown on every rank that learns that another rank stopped (failed or was cancelled), or
/// that lost contact with the group (a rank died: no notice). Caught at runJob, which reports it as the job's status.
struct PeerStopped {
  bool cancelled = false; ///< the other rank was cancelled (else it failed)
  std::string message;    ///< names the rank: "rank 1 failed: ..."
};

/// Counters for bench/ and the log: collective calls, bytes reduced, seconds in them.
struct CommStats {
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  double seconds = 0.0;
};

class Group {
public:
  explicit Group(const Rendezvous& rendezvous);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  [[nodiscard]] int rank() const { return m_rank; }
  [[nodiscard]] int worldSize() const { return m_world; }
  [[nodiscard]] bool lead() const { return m_rank == 0; }

  /// Sums each tensor (contiguous, CPU) over the ranks, in place, one collective call per
  /// tensor. Throws PeerStopped when another rank stopped or contact is lost.
  void allreduceSum(std::vector<torch::Tensor>& tensors);
  /// Waits for every rank.
  void barrier();

  /// Tells every rank that this one stopped; the first notice wins (later ones are not
  /// recorded). Never throws (the store may be gone).
  void raiseAbort(bool cancelled, const std::string& message) noexcept;
  /// Throws PeerStopped when some rank has raised an abort notice. Polled between steps.
  void checkAbort();

  [[nodiscard]] const CommStats& stats() const { return m_stats; }
  void resetStats() { m_stats = CommStats{}; }

private:
  /// The abort notice, if any, waiting up to `wait` for one that is being written.
  std::optional<PeerStopped> readAbort(std::chrono::milliseconds wait) noexcept;
  [[noreturn]] void rethrowLost(const std::string& what, const std::exception& e);

  struct Impl;
  std::unique_ptr<Impl> m_impl;
  int m_rank = 0;
  int m_world = 1;
  CommStats m_stats;
};

/// Sums the gradients of `parameters` over the ranks, in place, flattened into buckets of at
/// most `bucketBytes` (one collective call per bucket, not per tensor). Parameters without a
/// gradient are skipped (the same on every rank: they run the same code). The caller weights
/// each rank's loss so that the sum is the global batch's gradient.
void allreduceGradients(Group& group, const std::vector<torch::Tensor>& parameters,
                        std::size_t bucketBytes = std::size_t{16} << 20U);

/// The rows [begin, end) of a global batch of `n` rows that `rank` of `world` trains on:
/// contiguous, sizes differing by at most one, earlier ranks taking the larger shards.
std::pair<std::int64_t, std::int64_t> shardOf(std::int64_t n, int rank, int world);

} // namespace kdscope::core::dist
