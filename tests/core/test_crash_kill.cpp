// Crash safety of the real executable: `kdscope run` killed with SIGKILL in the middle of a
// job leaves a run file that opens, says "running" and holds every epoch flushed before
// the kill; `kdscope run --resume` then finishes it with exactly the results of a run that
// was never interrupted. A file size limit (RLIMIT_FSIZE: the write fails with EFBIG, as on
// a full disk) stops the job with a clear error and status "failed", keeping what was
// flushed, and the job resumes once the limit is gone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "tests/core/crash_test_support.h"

namespace kdscope::core {
namespace {

using test::Child;
using test::TempDir;

const std::string kTask = "synthetic_hierarchy";

/// Everything a run records for one model, to compare two runs.
struct ModelRecord {
  TrainLog log;
  EvalCurve curve;
  TrainRecords records;
  std::vector<float> logits;
};

ModelRecord recordOf(const RunReader& reader, const std::string& model) {
  ModelRecord r;
  r.log = reader.trainLog(kTask, model);
  r.curve = reader.evalCurve(kTask, model);
  r.records = reader.trainRecords(kTask, model);
  if (reader.file().exists("/tasks/" + kTask + "/models/" + model + "/eval/logits")) {
    r.logits = reader.evalLogits(kTask, model);
  }
  return r;
}

/// NaN-aware equality of float sequences (term columns may hold NaN by design).
bool sameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) {
           return (std::isnan(x) && std::isnan(y)) || x == y;
         });
}

/// `part` is what `full` holds in its first rows.
void expectPrefix(const ModelRecord& part, const ModelRecord& full, const std::string& model) {
  SCOPED_TRACE(model);
  const auto n = part.log.steps.size();
  ASSERT_LE(n, full.log.steps.size());
  EXPECT_TRUE(std::equal(part.log.steps.begin(), part.log.steps.end(), full.log.steps.begin()));
  EXPECT_TRUE(
      sameFloats(part.log.loss, std::vector<float>(full.log.loss.begin(), full.log.loss.begin() + n)));
  const auto e = part.curve.epoch.size();
  ASSERT_LE(e, full.curve.epoch.size());
  EXPECT_TRUE(std::equal(part.curve.epoch.begin(), part.curve.epoch.end(), full.curve.epoch.begin()));
  EXPECT_TRUE(sameFloats(part.curve.accuracy,
                         std::vector<float>(full.curve.accuracy.begin(), full.curve.accuracy.begin() + e)));
  const auto r = part.records.epoch.size();
  ASSERT_LE(r, full.records.epoch.size());
  EXPECT_TRUE(std::equal(part.records.epoch.begin(), part.records.epoch.end(), full.records.epoch.begin()));
  const auto values = r * part.records.examples;
  ASSERT_LE(values, full.records.values.size());
  EXPECT_TRUE(sameFloats(part.records.values, std::vector<float>(full.records.values.begin(),
                                                                 full.records.values.begin() + values)));
}

void expectSame(const ModelRecord& a, const ModelRecord& b, const std::string& model) {
  SCOPED_TRACE(model);
  EXPECT_EQ(a.log.steps, b.log.steps);
  EXPECT_TRUE(sameFloats(a.log.loss, b.log.loss));
  ASSERT_EQ(a.log.terms.size(), b.log.terms.size());
  for (const auto& [name, values] : a.log.terms) {
    EXPECT_TRUE(sameFloats(values, b.log.terms.at(name))) << name;
  }
  EXPECT_EQ(a.curve.epoch, b.curve.epoch);
  EXPECT_EQ(a.curve.step, b.curve.step);
  EXPECT_TRUE(sameFloats(a.curve.accuracy, b.curve.accuracy));
  EXPECT_TRUE(sameFloats(a.curve.loss, b.curve.loss));
  EXPECT_EQ(a.records.epoch, b.records.epoch);
  EXPECT_TRUE(sameFloats(a.records.values, b.records.values));
  ASSERT_EQ(a.logits.size(), b.logits.size());
  float worst = 0.0f;
  for (std::size_t i = 0; i < a.logits.size(); ++i) {
    worst = std::max(worst, std::fabs(a.logits[i] - b.logits[i]));
  }
  EXPECT_LE(worst, 1e-6f) << "largest difference of eval logits";
}

/// Steps strictly increase: nothing was logged twice.
void expectNoDuplicates(const ModelRecord& r, const std::string& model) {
  SCOPED_TRACE(model);
  EXPECT_TRUE(std::adjacent_find(r.log.steps.begin(), r.log.steps.end(), std::greater_equal<>()) ==
              r.log.steps.end());
  EXPECT_TRUE(std::adjacent_find(r.curve.epoch.begin(), r.curve.epoch.end(), std::greater_equal<>()) ==
              r.curve.epoch.end());
  EXPECT_TRUE(std::adjacent_find(r.records.epoch.begin(), r.records.epoch.end(), std::greater_equal<>()) ==
              r.records.epoch.end());
}

class CrashKill : public ::testing::Test {
protected:
  static constexpr int kStudentEpochs = 40;

  /// The uninterrupted reference run, made once for the suite.
  static void SetUpTestSuite() {
    s_dir = new TempDir("crash_ref");
    test::writeFile(s_dir->path("job.json"), test::syntheticJobJson(kStudentEpochs));
    std::string output;
    const int code = test::runKdscope(
        {"run", s_dir->path("job.json"), "--out", s_dir->path("out"), "--threads", "1"}, &output);
    ASSERT_EQ(code, 0) << output;
  }
  static void TearDownTestSuite() {
    delete s_dir;
    s_dir = nullptr;
  }
  static std::string referenceRun() { return s_dir->path("out/run.h5"); }

  static TempDir* s_dir;
};

TempDir* CrashKill::s_dir = nullptr;

TEST_F(CrashKill, SigkillMidJobLeavesARunningFileWithEveryFlushedEpochThenResumeMatchesAnUninterruptedRun) {
  TempDir dir;
  test::writeFile(dir.path("job.json"), test::syntheticJobJson(kStudentEpochs));
  const std::string out = dir.path("out");
  {
    Child child({"run", dir.path("job.json"), "--out", out, "--threads", "1"});
    // The epoch line is printed after that epoch was flushed and checkpointed.
    ASSERT_TRUE(child.waitForLine("kd epoch 3/" + std::to_string(kStudentEpochs), 120)) << child.output();
    child.kill(SIGKILL);
    ASSERT_EQ(child.wait(), -SIGKILL) << "the job ended before the kill:\n" << child.output();
  }

  const RunReader reference(referenceRun());
  {
    const RunReader killed(out + "/run.h5");
    const RunSummary summary = killed.summary();
    EXPECT_EQ(summary.status, "running");
    ASSERT_EQ(summary.tasks.size(), 1U);
    ASSERT_EQ(summary.tasks[0].models.size(), 2U);
    // The teacher finished before the kill: all of it is there, and equal to the reference.
    expectSame(recordOf(killed, "teacher"), recordOf(reference, "teacher"), "teacher");
    // The student was cut off: at least the three epochs seen are there, and they are what
    // the uninterrupted run recorded.
    const ModelRecord kd = recordOf(killed, "kd");
    EXPECT_GE(kd.curve.epoch.size(), 3U);
    EXPECT_LT(kd.curve.epoch.size(), static_cast<std::size_t>(kStudentEpochs));
    EXPECT_GE(kd.records.epoch.size(), 3U);
    EXPECT_TRUE(kd.logits.empty()) << "the student never reached its eval outputs";
    EXPECT_EQ(summary.tasks[0].models[1].evalAccuracy, -1.0);
    expectPrefix(kd, recordOf(reference, "kd"), "kd");
  }

  std::string output;
  ASSERT_EQ(test::runKdscope({"run", "--resume", out, "--threads", "1"}, &output), 0) << output;
  EXPECT_NE(output.find("teacher: complete in the run file"), std::string::npos) << output;
  EXPECT_NE(output.find("kd: resuming after epoch"), std::string::npos) << output;
  const RunReader resumed(out + "/run.h5");
  EXPECT_EQ(resumed.summary().status, "complete");
  for (const char* model : {"teacher", "kd"}) {
    const ModelRecord r = recordOf(resumed, model);
    expectNoDuplicates(r, model);
    expectSame(r, recordOf(reference, model), model);
  }
}

TEST_F(CrashKill, FileSizeLimitStopsTheJobWithStatusFailedAndKeepsWhatWasFlushed) {
  const auto fullSize = std::filesystem::file_size(referenceRun());
  // A limit met while the teacher's eval outputs are written, and one met part way through
  // the student (a flush needs room for what it writes plus a reserve, see h5_driver.h).
  for (const double fraction : {0.8, 0.95}) {
    SCOPED_TRACE("limit at " + std::to_string(fraction) + " of the final size");
    TempDir dir;
    test::writeFile(dir.path("job.json"), test::syntheticJobJson(kStudentEpochs));
    const std::string out = dir.path("out");
    const auto limit = static_cast<std::uint64_t>(static_cast<double>(fullSize) * fraction);
    std::string output;
    const int code =
        test::runKdscope({"run", dir.path("job.json"), "--out", out, "--threads", "1"}, &output, limit);
    ASSERT_EQ(code, 1) << output;
    EXPECT_NE(output.find("File too large"), std::string::npos) << output;
    EXPECT_NE(output.find(out + "/run.h5"), std::string::npos) << "the message names the file:\n" << output;

    std::size_t studentEpochs = 0;
    {
      const RunReader reader(out + "/run.h5");
      const RunSummary summary = reader.summary();
      EXPECT_EQ(summary.status, "failed");
      EXPECT_NE(summary.statusMessage.find("File too large"), std::string::npos) << summary.statusMessage;
      EXPECT_LE(std::filesystem::file_size(out + "/run.h5"), limit);
      const RunReader reference(referenceRun());
      // What the file kept is what the uninterrupted run recorded, up to the last flush.
      for (const auto& model : reader.models(kTask)) {
        const ModelRecord kept = recordOf(reader, model);
        expectPrefix(kept, recordOf(reference, model), model);
        if (model == "kd") {
          studentEpochs = kept.curve.epoch.size();
        }
      }
    } // the reader closes: a job cannot write a file that is open
    if (fraction > 0.9) {
      EXPECT_GT(studentEpochs, 0U) << "the limit was meant to be met during the student's training";
    }

    // Space is back: the job continues and ends as if nothing had happened.
    ASSERT_EQ(test::runKdscope({"run", "--resume", out, "--threads", "1"}, &output), 0) << output;
    const RunReader resumed(out + "/run.h5");
    EXPECT_EQ(resumed.summary().status, "complete");
    const RunReader reference(referenceRun());
    for (const char* model : {"teacher", "kd"}) {
      expectSame(recordOf(resumed, model), recordOf(reference, model), model);
    }
  }
}

TEST_F(CrashKill, ResumeRefusesAFolderWithoutARunAndUsageErrorsExitTwo) {
  TempDir dir;
  std::string output;
  EXPECT_EQ(test::runKdscope({"run", "--resume", dir.path()}, &output), 2) << output;
  EXPECT_NE(output.find("resume.json: no such file"), std::string::npos) << output;
  EXPECT_EQ(test::runKdscope({"run", dir.path("job.json"), "--resume", dir.path()}, &output), 2) << output;
  EXPECT_EQ(test::runKdscope({"run"}, &output), 2) << output;
}

TEST_F(CrashKill, SizeLimitRefusesTheJobBeforeItStartsWithTheEstimateInTheMessage) {
  TempDir dir;
  test::writeFile(dir.path("job.json"), test::syntheticJobJson(kStudentEpochs));
  std::string output;
  EXPECT_EQ(test::runKdscope({"run", dir.path("job.json"), "--out", dir.path("out"), "--max-file-mb", "0.01"},
                             &output),
            2)
      << output;
  EXPECT_NE(output.find("the run file would be about"), std::string::npos) << output;
  EXPECT_NE(output.find("above the limit of 10.2 KiB"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(dir.path("out/run.h5"))) << "nothing is written";
}

} // namespace
} // namespace kdscope::core
