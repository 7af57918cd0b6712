// Bounded memory on huge task files, measured in a child process: a 1,000,000-row CSV of
// short texts (loadTaskFile) and a 1,000,000 x 8 float32 .npy array with a 1,000,000-line
// label file written by NumPy (loadFeatureArray). Each load runs in a forked child; its peak
// resident set (wait4's ru_maxrss) less its resident set when it started loading must stay
// under what the loader keeps (its vectors' capacities, long strings' buffers) plus 16 MiB
// for buffers and the old block of the last vector doubling. Holding the file's bytes as
// well would break it (checked). Not a timing test.

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include "tests/core/test_support.h"
#include "core/data/dataset_file.h"
#include "core/data/feature_array.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with numpy (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core {
namespace {

constexpr int kRows = 1000000;
constexpr long long kSlack = 16LL << 20U;

struct ChildRun {
  long long peakBytes = -1;  ///< wait4's ru_maxrss of the child
  long long startBytes = -1; ///< the child's resident set when it started loading
  long long kept = -1;       ///< what the child's loader kept (its report), or < 0 on failure
};

/// A /proc/self/status value in bytes ("VmRSS").
long long statusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      return std::stoll(line.substr(key.size() + 1)) * 1024;
    }
  }
  return -1;
}

/// Runs `load` in a forked child. A forked child's peak starts as its parent's (the memory
/// map is copied with its high-water mark), so the child first resets its high-water mark to
/// its current resident set (/proc/self/clear_refs "5") and reports that set and the bytes
/// its loader keeps through a pipe; the peak is wait4's ru_maxrss, taken after it exits.
ChildRun inChild(const std::function<long long()>& load) {
  int fds[2] = {-1, -1};
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    long long report[2] = {-1, -1};
    {
      std::ofstream reset("/proc/self/clear_refs");
      reset << "5";
      reset.flush();
      if (reset.good()) {
        report[1] = statusBytes("VmRSS");
      }
    }
    try {
      report[0] = load();
    } catch (const std::exception& e) {
      std::cerr << "child: " << e.what() << "\n";
    }
    const ssize_t written = ::write(fds[1], report, sizeof report);
    ::_exit(written == sizeof report ? 0 : 3);
  }
  ::close(fds[1]);
  ChildRun result;
  long long report[2] = {-1, -1};
  if (::read(fds[0], report, sizeof report) == sizeof report) {
    result.kept = report[0];
    result.startBytes = report[1];
  }
  ::close(fds[0]);
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  result.peakBytes = static_cast<long long>(usage.ru_maxrss) * 1024; // Linux: kilobytes
  return result;
}

/// Peak growth of a child running `load` over its resident set at the start, checked against
/// kept + slack.
void expectBounded(const std::string& what, long long fileBytes, const std::function<long long()>& load) {
  const ChildRun loaded = inChild(load);
  ASSERT_GE(loaded.kept, 0) << what << ": the child's load failed (see its message above)";
  ASSERT_GT(loaded.startBytes, 0) << what << ": the child could not reset its peak (/proc/self/clear_refs)";
  const long long growth = loaded.peakBytes - loaded.startBytes;
  std::cout << "[ measured ] " << what << ": file " << fileBytes / 1048576.0 << " MiB, child peak RSS "
            << loaded.peakBytes / 1048576.0 << " MiB from " << loaded.startBytes / 1048576.0 << " MiB, growth "
            << growth / 1048576.0 << " MiB, kept " << loaded.kept / 1048576.0 << " MiB\n";
  EXPECT_LE(growth, loaded.kept + kSlack) << what;
  // Keeping the file's bytes as well would have broken the bound.
  EXPECT_GT(growth + fileBytes, loaded.kept + kSlack) << what << ": the file is too small to tell";
}

TEST(TaskFileMemory, MillionCsvTextRowsInAChildStayUnderTheKeptBound) {
  const test::TempDir dir("taskmem");
  const std::string path = dir.file("big.csv");
  long long fileBytes = 0;
  {
    std::ofstream out(path, std::ios::binary);
    std::string chunk = "id,text,label,note\n";
    for (int i = 0; i < kRows; ++i) {
      chunk += std::to_string(i) + ",w" + std::to_string(i % 997) + " x" + std::to_string(i % 13) +
               (i % 4 == 0 ? ",yes" : ",no") + ",padding-that-is-not-kept\n";
      if (chunk.size() > (1U << 20U)) {
        out << chunk;
        chunk.clear();
      }
    }
    out << chunk;
    fileBytes = static_cast<long long>(out.tellp());
  }
  expectBounded("1M CSV text rows", fileBytes, [&]() -> long long {
    TaskFileSpec spec;
    spec.path = path;
    spec.textField = "text";
    const TaskFile file = loadTaskFile(spec);
    // Row 999,999: 999999 % 997 = 8 (997 x 1003 = 999991), % 13 = 0 (13 x 76923), odd -> "no" = 0.
    if (file.raw.labels.size() != static_cast<std::size_t>(kRows) || file.raw.texts.back() != "w8 x0" ||
        file.raw.labels.back() != 0 || file.raw.classNames != std::vector<std::string>{"no", "yes"}) {
      return -2;
    }
    long long kept = static_cast<long long>(file.raw.labels.capacity() * sizeof(std::int64_t) +
                                            file.lines.capacity() * sizeof(std::size_t) +
                                            file.raw.texts.capacity() * sizeof(std::string));
    for (const auto& text : file.raw.texts) {
      kept += text.capacity() > 15 ? static_cast<long long>(text.capacity() + 1) : 0; // libstdc++'s SSO
    }
    return kept;
  });
}

TEST(TaskFileMemory, MillionRowNpyArrayWithLabelFileInAChildStayUnderTheKeptBound) {
  const test::TempDir dir("taskmem");
  const std::string script = test::writeFile(
      dir.file("make.py"), "import numpy as np\n"
                           "n = 1000000\n"
                           "a = (np.arange(n * 8, dtype=np.float64) % 1000).reshape(n, 8) / 4.0\n"
                           "np.save('" + dir.file("x.npy") + "', a.astype('<f4'))\n"
                           "open('" + dir.file("y.txt") + "', 'w').write(''.join(('odd\\n', 'even\\n')[i % 2 == 0] "
                           "for i in range(n)))\n");
  ASSERT_EQ(std::system((std::string(KDSCOPE_PYTHON) + " '" + script + "'").c_str()), 0);
  const long long fileBytes = static_cast<long long>(std::filesystem::file_size(dir.file("x.npy")) +
                                                     std::filesystem::file_size(dir.file("y.txt")));
  expectBounded("1M x 8 .npy + labels", fileBytes, [&]() -> long long {
    FeatureArraySpec spec;
    spec.path = dir.file("x.npy");
    spec.labelPath = dir.file("y.txt");
    const RawDataset raw = loadFeatureArray(spec);
    // Value k = 8 * 123457 + 2 = 987658: (987658 % 1000) / 4 = 164.5; row 123457 is odd -> "odd" = 1.
    if (raw.dim != 8 || raw.features.size() != 8U * kRows || raw.features[987658] != 164.5F ||
        raw.labels[123457] != 1 || raw.classNames != std::vector<std::string>{"even", "odd"}) {
      return -2;
    }
    return static_cast<long long>(raw.features.capacity() * sizeof(float) +
                                  raw.labels.capacity() * sizeof(std::int64_t));
  });
}

} // namespace
} // namespace kdscope::core
