#pragma once
// Shared by tests/core/test_crash_*.cpp: the real `kdscope` executable run as a child
// process (its output read line by line, killed with SIGKILL, or run under a file size
// limit), and small jobs that need no downloaded data. Temporary folders and files come
// from test_support.h.

#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/core/test_support.h"

#ifndef KDSCOPE_EXECUTABLE
#error "KDSCOPE_EXECUTABLE must name the kdscope executable (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::test {

/// A child process running the real executable, its stdout and stderr on one pipe.
class Child {
public:
  /// Starts `args` (after the executable). `fileSizeLimit` > 0 sets RLIMIT_FSIZE in the child,
  /// with SIGXFSZ ignored, so that a write past it fails with EFBIG as on a full disk.
  explicit Child(const std::vector<std::string>& args, std::uint64_t fileSizeLimit = 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> argv{KDSCOPE_EXECUTABLE};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> pointers;
    for (auto& a : argv) {
      pointers.push_back(a.data());
    }
    pointers.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid < 0) {
      throw std::runtime_error("fork failed");
    }
    if (m_pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      if (fileSizeLimit > 0) {
        ::signal(SIGXFSZ, SIG_IGN); // stays ignored across exec
        const rlimit limit{fileSizeLimit, fileSizeLimit};
        ::setrlimit(RLIMIT_FSIZE, &limit);
      }
      ::execv(pointers[0], pointers.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    m_fd = fds[0];
  }
  ~Child() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      wait();
    }
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  /// Reads output until a line contains `needle`; false at the end of output or after
  /// `timeoutSeconds`. Everything read is kept in output().
  bool waitForLine(const std::string& needle, double timeoutSeconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeoutSeconds);
    std::size_t scanned = 0;
    while (true) {
      const auto end = m_output.find('\n', scanned);
      if (end != std::string::npos) {
        if (m_output.compare(scanned, end - scanned, needle) == 0 ||
            m_output.substr(scanned, end - scanned).find(needle) != std::string::npos) {
          return true;
        }
        scanned = end + 1;
        continue;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !readSome(static_cast<int>(left.count()))) {
        return false;
      }
    }
  }

  void kill(int signal) { ::kill(m_pid, signal); }

  /// Waits for the exit, reading the rest of the output. Returns the exit code, or -signal.
  int wait() {
    while (m_fd >= 0 && readSome(-1)) {
    }
    int status = 0;
    if (m_pid > 0 && ::waitpid(m_pid, &status, 0) == m_pid) {
      m_pid = -1;
      m_status = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1000;
    }
    return m_status;
  }

  [[nodiscard]] const std::string& output() const { return m_output; }

private:
  bool readSome(int timeoutMs) {
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, timeoutMs) <= 0) {
      return false;
    }
    char buffer[4096];
    const ssize_t n = ::read(m_fd, buffer, sizeof buffer);
    if (n <= 0) {
      ::close(m_fd);
      m_fd = -1;
      return false;
    }
    m_output.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  pid_t m_pid = -1;
  int m_fd = -1;
  int m_status = -1000;
  std::string m_output;
};

/// Runs the executable to the end.
inline int runKdscope(const std::vector<std::string>& args, std::string* output = nullptr,
                      std::uint64_t fileSizeLimit = 0) {
  Child child(args, fileSizeLimit);
  const int code = child.wait();
  if (output != nullptr) {
    *output = child.output();
  }
  return code;
}

/// A vector job on generated data (no download): an MLP teacher and a KD student, with
/// dropout, so that a resumed job must restore torch's generator to match.
inline std::string syntheticJobJson(int studentEpochs, int examplesPerClass = 600, int dim = 64,
                                    const std::string& extraRecording = "") {
  return R"({
  "name": "crash-test",
  "seed": 3,
  "analyze": false,
  "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": )" +
         std::to_string(dim) + R"(, "examples_per_class": )" + std::to_string(examplesPerClass) + R"(}],
  "teacher": {"architecture": {"type": "mlp", "hidden": [32, 16]},
              "training": {"epochs": 3, "batch_size": 16}},
  "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [8]},
                "training": {"epochs": )" +
         std::to_string(studentEpochs) + R"(, "batch_size": 16},
                "objective": {"lambda": 0.5, "temperature": 2.0}}],
  "recording": {"log_every": 2)" +
         extraRecording + R"(}
})";
}

} // namespace kdscope::test
