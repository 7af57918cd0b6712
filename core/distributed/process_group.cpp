// The c10d side of data-parallel training: rendezvous, the Gloo process group, the abort
// notice in the store, bucketed gradient sums. Debian's libtorch_cpu is built with Gloo
// (USE_C10D_GLOO); its headers need the macro and libgloo-dev's headers.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include "core/distributed/process_group.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/common/error.h"

namespace kdscope::core::dist {

namespace {

// Keys in the store, under the "kdscope/" prefix.
constexpr const char* kAbortCount = "abort_count";
constexpr const char* kAbortNotice = "abort";

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

long envInteger(const char* name, long low, long high) {
  const auto value = env(name);
  if (!value) {
    throw InputError(std::string("environment variable ") + name +
                     " is not set (WORLD_SIZE is: a data-parallel process needs RANK, WORLD_SIZE and "
                     "MASTER_ADDR/MASTER_PORT or KDSCOPE_RENDEZVOUS_FILE; docs/distributed.md)");
  }
  char* end = nullptr;
  const long parsed = std::strtol(value->c_str(), &end, 10);
  if (end == value->c_str() || *end != '\0' || parsed < low || parsed > high) {
    throw InputError(std::string("environment variable ") + name + "='" + *value + "': expected an integer from " +
                     std::to_string(low) + " to " + std::to_string(high));
  }
  return parsed;
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

} // namespace

std::optional<Rendezvous> rendezvousFromEnvironment() {
  if (!env("WORLD_SIZE")) {
    return std::nullopt;
  }
  Rendezvous r;
  r.worldSize = static_cast<int>(envInteger("WORLD_SIZE", 1, 65536));
  r.rank = static_cast<int>(envInteger("RANK", 0, r.worldSize - 1));
  r.localRank = env("LOCAL_RANK") ? static_cast<int>(envInteger("LOCAL_RANK", 0, 65535)) : 0;
  if (env("KDSCOPE_DIST_TIMEOUT")) {
    r.timeout = std::chrono::seconds(envInteger("KDSCOPE_DIST_TIMEOUT", 1, 7L * 24 * 3600));
  }
  if (const auto file = env("KDSCOPE_RENDEZVOUS_FILE")) {
    r.fileStore = *file;
    return r;
  }
  const auto addr = env("MASTER_ADDR");
  if (!addr) {
    throw InputError("environment variable MASTER_ADDR is not set (WORLD_SIZE is: give MASTER_ADDR and MASTER_PORT, "
                     "or KDSCOPE_RENDEZVOUS_FILE; docs/distributed.md)");
  }
  r.masterAddr = *addr;
  r.masterPort = static_cast<int>(envInteger("MASTER_PORT", 1, 65535));
  r.agentStore = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  return r;
}

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

Group::Group(const Rendezvous& r) : m_impl(std::make_unique<Impl>()), m_rank(r.rank), m_world(r.worldSize) {
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(r.timeout);
  std::string where;
  try {
    c10::intrusive_ptr<c10d::Store> base;
    std::string host = "127.0.0.1";
    if (!r.fileStore.empty()) {
      where = "the rendezvous file '" + r.fileStore + "' (KDSCOPE_RENDEZVOUS_FILE)";
      base = c10::make_intrusive<c10d::FileStore>(r.fileStore, r.worldSize);
      base->setTimeout(timeout);
    } else {
      where = "the store at " + r.masterAddr + ":" + std::to_string(r.masterPort) + " (MASTER_ADDR, MASTER_PORT)";
      c10d::TCPStoreOptions options;
      options.port = static_cast<std::uint16_t>(r.masterPort);
      options.isServer = r.rank == 0 && !r.agentStore;
      options.numWorkers = r.agentStore ? c10::nullopt : c10::optional<std::size_t>(r.worldSize);
      options.waitWorkers = !r.agentStore;
      options.timeout = timeout;
      base = c10::make_intrusive<c10d::TCPStore>(r.masterAddr, options);
      host = r.masterAddr;
    }
    m_impl->store = c10::make_intrusive<c10d::PrefixStore>("kdscope", base);
    where = "the Gloo process group (rank " + std::to_string(r.rank) + " of " + std::to_string(r.worldSize) + ")";
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const auto iface = env("GLOO_SOCKET_IFNAME")) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*iface));
    } else if (isLoopback(host)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 1;
    m_impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", m_impl->store), r.rank, r.worldSize, options);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw JobError("rank " + std::to_string(r.rank) + ": cannot join " + where + ": " +
                   what.substr(0, what.find('\n')));
  }
}

Group::~Group() = default;

std::shared_ptr<Group> connect(const Rendezvous& rendezvous) { return std::make_shared<Group>(rendezvous); }
int rankOf(const Group& group) { return group.rank(); }
int worldSizeOf(const Group& group) { return group.worldSize(); }

void Group::raiseAbort(bool cancelled, const std::string& message) noexcept {
  try {
    if (m_impl->store->add(kAbortCount, 1) == 1) {
      const std::string notice = std::string(cancelled ? "C" : "F") + "rank " + std::to_string(m_rank) +
                                 (cancelled ? " was cancelled" : " failed") +
                                 (message.empty() ? std::string() : ": " + message);
      m_impl->store->set(kAbortNotice, std::vector<std::uint8_t>(notice.begin(), notice.end()));
    }
  } catch (...) { // NOLINT(bugprone-empty-catch): the store may be gone with rank 0; the others then lose contact
  }
}

std::optional<PeerStopped> Group::readAbort(std::chrono::milliseconds wait) noexcept {
  try {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      if (m_impl->store->check({kAbortNotice})) {
        const auto bytes = m_impl->store->get(kAbortNotice);
        PeerStopped stopped;
        stopped.cancelled = !bytes.empty() && bytes[0] == 'C';
        stopped.message = bytes.empty() ? std::string() : std::string(bytes.begin() + 1, bytes.end());
        return stopped;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (...) {
    return std::nullopt;
  }
}

void Group::checkAbort() {
  bool noticed = false;
  try {
    noticed = m_impl->store->check({kAbortNotice});
  } catch (const std::exception& e) {
    rethrowLost("reading the store", e);
  }
  if (noticed) {
    if (auto stopped = readAbort(std::chrono::milliseconds(0))) {
      throw *stopped;
    }
  }
}

void Group::rethrowLost(const std::string& what, const std::exception& e) {
  // A rank that stopped on purpose wrote its notice before it left: wait briefly for it.
  if (auto stopped = readAbort(std::chrono::milliseconds(2000))) {
    throw *stopped;
  }
  const std::string message = e.what();
  PeerStopped lost;
  lost.message = "rank " + std::to_string(m_rank) + " lost contact with the other ranks while " + what +
                 " (a process died, or the network or rank 0's store failed): " +
                 message.substr(0, message.find('\n'));
  throw lost;
}

void Group::allreduceSum(std::vector<torch::Tensor>& tensors) {
  const auto start = std::chrono::steady_clock::now();
  for (auto& tensor : tensors) {
    std::vector<at::Tensor> one{tensor};
    try {
      m_impl->group->allreduce(one)->wait();
    } catch (const std::exception& e) {
      rethrowLost("summing gradients (allreduce)", e);
    }
    ++m_stats.calls;
    m_stats.bytes += static_cast<std::uint64_t>(tensor.numel() * tensor.element_size());
  }
  m_stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Group::barrier() {
  try {
    m_impl->group->barrier()->wait();
  } catch (const std::exception& e) {
    rethrowLost("waiting for the other ranks (barrier)", e);
  }
}

void allreduceGradients(Group& group, const std::vector<torch::Tensor>& parameters, std::size_t bucketBytes) {
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) {
    if (p.grad().defined()) {
      grads.push_back(p.grad());
    }
  }
  std::size_t first = 0;
  while (first < grads.size()) {
    // One bucket: consecutive gradients up to bucketBytes (at least one).
    std::size_t last = first;
    std::size_t bytes = 0;
    std::vector<torch::Tensor> flat;
    while (last < grads.size() &&
           (last == first || bytes + static_cast<std::size_t>(grads[last].numel()) * sizeof(float) <= bucketBytes)) {
      bytes += static_cast<std::size_t>(grads[last].numel()) * sizeof(float);
      flat.push_back(grads[last].reshape({-1}));
      ++last;
    }
    std::vector<torch::Tensor> bucket{torch::cat(flat)};
    group.allreduceSum(bucket);
    std::int64_t offset = 0;
    for (std::size_t i = first; i < last; ++i) {
      const auto n = grads[i].numel();
      grads[i].copy_(bucket[0].narrow(0, offset, n).view_as(grads[i]));
      offset += n;
    }
    first = last;
  }
}

std::pair<std::int64_t, std::int64_t> shardOf(std::int64_t n, int rank, int world) {
  const std::int64_t base = n / world;
  const std::int64_t extra = n % world;
  const std::int64_t begin = rank * base + std::min<std::int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

} // namespace kdscope::core::dist
