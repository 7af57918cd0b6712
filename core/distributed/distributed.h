#pragma once
/// Data-parallel training over torch.distributed (c10d): the rendezvous a process reads from
/// its environment (as torchrun, `kdscope run --nproc` or a Slurm script set it) and the
/// process group it joins. Public and free of torch: the app layer holds a Group through
/// this header; what core does with it is in core/distributed/process_group.h (private).
/// docs/distributed.md says how to use it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace kdscope::core::dist {

/// Where and who: one process of a group of `worldSize`.
struct Rendezvous {
  int rank = 0;
  int worldSize = 1;
  int localRank = 0;
  /// TCPStore rendezvous: MASTER_ADDR:MASTER_PORT. Rank 0 hosts the store unless
  /// `agentStore` (torchrun's agent hosts it: TORCHELASTIC_USE_AGENT_STORE=True).
  std::string masterAddr;
  int masterPort = 0;
  bool agentStore = false;
  /// FileStore rendezvous instead (KDSCOPE_RENDEZVOUS_FILE): a file on a folder every rank sees.
  std::string fileStore;
  /// Timeout of the store and of every collective (KDSCOPE_DIST_TIMEOUT, seconds): a rank
  /// that stops answering without exiting stops the others after this long.
  std::chrono::seconds timeout{1800};
};

/// The rendezvous of the environment, or nothing when WORLD_SIZE is not set. Reads RANK,
/// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
/// KDSCOPE_RENDEZVOUS_FILE and KDSCOPE_DIST_TIMEOUT. Throws InputError naming the variable
/// that is missing or malformed.
std::optional<Rendezvous> rendezvousFromEnvironment();

/// A joined process group (Gloo over TCP) and its store. Defined in process_group.h.
class Group;

/// Joins the group: connects to the store and builds the Gloo process group (every rank
/// must call it). Throws JobError naming the address or file when the rendezvous fails.
std::shared_ptr<Group> connect(const Rendezvous& rendezvous);

int rankOf(const Group& group);
int worldSizeOf(const Group& group);

} // namespace kdscope::core::dist
