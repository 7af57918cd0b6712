// kdscope run ... --nproc N: starts N local ranks of a data-parallel job, each this
// executable with the same arguments (less --nproc) and the rendezvous environment torchrun
// would set (MASTER_ADDR=127.0.0.1, a free MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK), waits
// for them, and names the rank that failed (not one that only stopped because of it). docs/distributed.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "app/commands.h"

namespace kdscope::app {

namespace {

// The children, for the signal handler (which forwards SIGINT and SIGTERM to them).
constexpr int kMaxRanks = 256;
volatile pid_t g_children[kMaxRanks] = {};
volatile int g_childCount = 0;
volatile sig_atomic_t g_cancelled = 0;

extern "C" void cancelRanks(int signal) {
  g_cancelled = 1;
  for (int i = 0; i < g_childCount; ++i) {
    if (g_children[i] > 0) {
      ::kill(g_children[i], signal);
    }
  }
}

void forwardSignal(int signal) {
  for (int i = 0; i < g_childCount; ++i) {
    if (g_children[i] > 0) {
      ::kill(g_children[i], signal);
    }
  }
}

/// This process's own arguments (from /proc/self/cmdline), without --nproc and its value.
std::vector<std::string> ownArgumentsWithoutNproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t begin = 0; begin < all.size();) {
    const auto end = all.find('\0', begin);
    args.push_back(all.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) {
      break;
    }
    begin = end + 1;
  }
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i; // and its value
    } else if (args[i].rfind("--nproc=", 0) != 0) {
      kept.push_back(args[i]);
    }
  }
  return kept;
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0).
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

std::string describeExit(int status) {
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

bool failed(int status) { return WIFSIGNALED(status) || WEXITSTATUS(status) != 0; }
/// Failed on its own account: killed, or any failure but "stopped because another rank did".
bool failedItself(int status) {
  return WIFSIGNALED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != kExitStoppedByPeer);
}

} // namespace

bool launchedByKdscope() { return std::getenv("KDSCOPE_LAUNCHER") != nullptr; }

int launchRanks(int nproc) {
  if (nproc < 1 || nproc > kMaxRanks) {
    std::cerr << "kdscope run: --nproc " << nproc << ": give 1 to " << kMaxRanks << " processes\n";
    return kExitBadInput;
  }
  if (std::getenv("WORLD_SIZE") != nullptr) {
    std::cerr << "kdscope run: --nproc with WORLD_SIZE set: this process is already a rank of a group "
                 "(torchrun or srun set WORLD_SIZE); give one or the other\n";
    return kExitBadInput;
  }
  const auto args = ownArgumentsWithoutNproc();
  const int port = freePort();
  if (args.empty() || port == 0) {
    std::cerr << "kdscope run: --nproc: cannot read this process's arguments or find a free port on 127.0.0.1\n";
    return kExitFailed;
  }
  std::vector<char*> argv;
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);

  struct sigaction action {};
  action.sa_handler = cancelRanks;
  sigemptyset(&action.sa_mask);
  struct sigaction oldInt {};
  struct sigaction oldTerm {};
  ::sigaction(SIGINT, &action, &oldInt);
  ::sigaction(SIGTERM, &action, &oldTerm);

  std::vector<pid_t> pids(static_cast<std::size_t>(nproc), -1);
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0); // the launcher forwards signals; a terminal's Ctrl-C reaches it alone
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("KDSCOPE_LAUNCHER", "1", 1); // a rank stopped by another exits kExitStoppedByPeer
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "kdscope run: rank %d: cannot start /proc/self/exe: %s\n", rank, std::strerror(errno));
      ::_exit(127);
    }
    if (pid < 0) {
      std::cerr << "kdscope run: --nproc: cannot start rank " << rank << ": " << std::strerror(errno) << "\n";
      forwardSignal(SIGTERM);
      break;
    }
    pids[static_cast<std::size_t>(rank)] = pid;
    g_children[rank] = pid;
    g_childCount = rank + 1;
  }

  // Wait for every rank. After the first failure the others get a grace period to stop on
  // their own (they learn of it through the store or a broken connection; rank 0 writes the
  // run file's status), then SIGTERM (cancel), then SIGKILL.
  using Clock = std::chrono::steady_clock;
  constexpr auto kGrace = std::chrono::seconds(60);
  constexpr auto kTermGrace = std::chrono::seconds(15);
  std::vector<int> statuses(static_cast<std::size_t>(nproc), -1);
  int running = 0;
  for (const pid_t pid : pids) {
    running += pid > 0 ? 1 : 0;
  }
  int firstFailed = -1; // the first rank to stop with a failure of any kind (starts the grace period)
  int firstItself = -1; // the first that failed on its own account: the one to name
  Clock::time_point failedAt{};
  bool termSent = false;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int rank = 0; rank < nproc; ++rank) {
        if (pids[static_cast<std::size_t>(rank)] == pid) {
          statuses[static_cast<std::size_t>(rank)] = status;
          g_children[rank] = 0;
          --running;
          if (failed(status) && firstFailed < 0) {
            firstFailed = rank;
            failedAt = Clock::now();
          }
          if (failedItself(status) && firstItself < 0) {
            firstItself = rank;
          }
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) {
      break;
    }
    if (firstFailed >= 0) {
      const auto waited = Clock::now() - failedAt;
      if (!termSent && waited > kGrace) {
        std::cerr << "kdscope run: rank " << firstFailed << " failed and the others have not stopped within "
                  << kGrace.count() << " s: cancelling them\n";
        forwardSignal(SIGTERM);
        termSent = true;
      } else if (termSent && waited > kGrace + kTermGrace) {
        forwardSignal(SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::sigaction(SIGINT, &oldInt, nullptr);
  ::sigaction(SIGTERM, &oldTerm, nullptr);
  g_childCount = 0;

  if (firstFailed < 0) {
    return kExitOk;
  }
  const int named = firstItself >= 0 ? firstItself : firstFailed;
  if (g_cancelled != 0) {
    std::cerr << "kdscope run: cancelled (every rank was told); rank " << named << ": "
              << describeExit(statuses[static_cast<std::size_t>(named)]);
  } else {
    std::cerr << "kdscope run: rank " << named << " of " << nproc << " failed ("
              << describeExit(statuses[static_cast<std::size_t>(named)]) << ")";
  }
  for (int rank = 0; rank < nproc; ++rank) {
    const int status = statuses[static_cast<std::size_t>(rank)];
    if (rank != named && status != -1 && failed(status)) {
      std::cerr << "; rank " << rank << ": "
                << (WIFEXITED(status) && WEXITSTATUS(status) == kExitStoppedByPeer ? std::string("stopped with it")
                                                                                   : describeExit(status));
    }
  }
  std::cerr << "\n";
  const int lead = statuses[0];
  if (g_cancelled != 0 && firstItself < 0) {
    return kExitFailed; // every rank stopped because of the cancel: as a cancelled one-process run
  }
  if (lead != -1 && WIFEXITED(lead) && WEXITSTATUS(lead) == kExitBadInput) {
    return kExitBadInput;
  }
  return kExitFailed;
}

} // namespace kdscope::app
