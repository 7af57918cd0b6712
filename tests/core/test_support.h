#pragma once
// Shared by the tests in tests/core: temporary folders, the message of an expected
// exception, small files written in one call, and the synthetic_hierarchy task and tiny
// polarity corpus and job that tests run real jobs on (no downloaded data). The crash tests
// add the child-process helpers of crash_test_support.h.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::test {

/// Runs a shell command; its exit status (-1 when it did not exit normally) and what it
/// printed on stdout and stderr.
inline std::pair<int, std::string> runCommand(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return {-1, "popen failed"};
  }
  std::string output;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// A fresh folder kdscope_TAG_XXXXXX under the system temp folder, removed with everything
/// in it.
class TempDir {
public:
  explicit TempDir(const std::string& tag = "test") {
    std::string pattern = (std::filesystem::temp_directory_path() / ("kdscope_" + tag + "_XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    m_path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The folder, or `name` inside it.
  [[nodiscard]] std::string path(const std::string& name = "") const {
    return name.empty() ? m_path.string() : (m_path / name).string();
  }
  /// `name` (a relative path) inside the folder.
  [[nodiscard]] std::string file(const std::string& name) const { return (m_path / name).string(); }

private:
  std::filesystem::path m_path;
};

/// An empty folder kdscope_NAME_PID under the system temp folder (emptied if it was there);
/// not removed afterwards, so that a failing test leaves its files to look at.
inline std::filesystem::path freshTempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("kdscope_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The message of the exception of type E that `f` throws ("" and a failure otherwise).
template <typename E, typename F> std::string messageOf(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

/// Writes `bytes` to `path` (creating its folders) and returns the path; a failed write is
/// a fatal failure of the test.
inline std::string writeFile(const std::string& path, const std::string& bytes) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent);
  }
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  [&] { ASSERT_TRUE(out.good()) << path; }();
  return path;
}

/// A synthetic_hierarchy task (generated, no download): 2 super-classes of 2 classes each.
inline core::TaskSpec syntheticHierarchyTask(int dim, int examplesPerClass) {
  core::TaskSpec task;
  task.name = "synthetic_hierarchy";
  task.superClasses = 2;
  task.classesPerSuper = 2;
  task.dim = dim;
  task.examplesPerClass = examplesPerClass;
  return task;
}

/// A text job on the polarity corpus of writePolarityCorpus in `dataDir`: a transformer
/// teacher (2 layers x 2 heads, width 16) trained `teacherEpochs` epochs and a 1-layer KD
/// student, recording the attention of 5 examples.
inline core::JobSpec tinyPolarityJob(const std::string& dataDir, int teacherEpochs) {
  core::JobSpec job;
  job.seed = 2;
  job.dataDir = dataDir;
  core::TaskSpec task;
  task.name = "polarity";
  task.maxLen = 12;
  task.minFreq = 1;
  job.tasks.push_back(task);
  job.teacher.architecture.type = "transformer";
  job.teacher.architecture.layers = 2;
  job.teacher.architecture.heads = 2;
  job.teacher.architecture.width = 16;
  job.teacher.architecture.ffn = 32;
  job.teacher.training.epochs = teacherEpochs;
  job.teacher.training.batchSize = 16;
  job.teacher.training.lr = 3e-3;
  core::StudentSpec kd;
  kd.name = "kd";
  kd.architecture = job.teacher.architecture;
  kd.architecture.layers = 1;
  kd.training = job.teacher.training;
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 3.0;
  job.students = {kd};
  job.recording.attentionExamples = 5;
  return job;
}

/// The tiny polarity corpus of writePolarityCorpus.
struct PolarityCorpus {
  int lines = 160;             ///< examples, alternately positive and negative
  bool byteOrderMark = false;  ///< start the file with a UTF-8 byte order mark
  bool varyingLength = false;  ///< 4 to 9 words a line instead of 8
};

/// A tiny polarity corpus laid out like the fetched Debian package under `dataDir`, so that
/// the real loader and tokenizer run on it; returns dataDir. Every third word carries the
/// sentiment, the rest are filler, all drawn from a fixed-seed generator.
inline std::string writePolarityCorpus(const std::filesystem::path& dataDir, const PolarityCorpus& corpus = {}) {
  const auto dir = dataDir / "python3-pattern/usr/share/doc/python3-pattern/test/corpora";
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / "polarity-en-pang&lee2.csv", std::ios::binary);
  if (corpus.byteOrderMark) {
    out << "\xEF\xBB\xBF";
  }
  std::mt19937 rng(3);
  const std::vector<std::string> good = {"good", "great", "fine", "lovely", "superb"};
  const std::vector<std::string> bad = {"bad", "awful", "dull", "poor", "boring"};
  const std::vector<std::string> filler = {"the", "film", "was", "a", "plot", "and", "acting"};
  for (int i = 0; i < corpus.lines; ++i) {
    const bool positive = i % 2 == 0;
    std::string text;
    const int words = corpus.varyingLength ? 4 + static_cast<int>(rng() % 6) : 8;
    for (int w = 0; w < words; ++w) {
      const auto& pool = (w % 3 == 1) ? (positive ? good : bad) : filler;
      text += (w ? " " : "") + pool[rng() % pool.size()];
    }
    out << "\"" << (positive ? "1" : "-1") << "\",\"" << text << "\"\n";
  }
  return dataDir.string();
}

} // namespace kdscope::test
