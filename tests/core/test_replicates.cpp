// Replicates (issue #14; core/study/replicates.h, docs/statistics.md "Replicates"): the job
// fields, a real replicated job of a tiny MLP (the split shared, the models not), the
// summary's means, t intervals and paired t tests against values computed here from the
// run files' logits and closed forms, NumPy on the same files (tests/python/check_replicates.py),
// and the coverage of the intervals on simulated replicates.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/analysis/stats.h"
#include "core/common/error.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "core/record/run_reader.h"
#include "core/study/replicates.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace an = kdscope::core::analysis;
namespace fs = std::filesystem;

namespace {

std::string issuesText(const JobParseResult& r) {
  std::string out;
  for (const auto& i : r.issues) {
    out += i.str() + "\n";
  }
  return out;
}

std::string jobWith(const std::string& replicates) {
  return R"({"seed": 7, "tasks": ["synthetic_hierarchy"], "teacher": {"architecture": {"type": "mlp", "hidden": [8]}},
             "students": [{"name": "s", "architecture": {"type": "mlp", "hidden": [4]}}], "replicates": )" +
         replicates + "}";
}

ArchitectureSpec mlp(std::vector<int> hidden) {
  ArchitectureSpec a;
  a.type = "mlp";
  a.hidden = std::move(hidden);
  a.dropout = 0.0;
  return a;
}

/// A tiny vector job: an MLP teacher and a KD and a CE student, three replicates.
JobSpec tinyReplicatedJob() {
  JobSpec job;
  job.name = "replicates-test";
  job.seed = 3;
  job.tasks.push_back(kdscope::test::syntheticHierarchyTask(8, 50));
  job.teacher.architecture = mlp({16});
  job.teacher.training.epochs = 2;
  job.teacher.training.batchSize = 16;
  StudentSpec kd;
  kd.name = "kd";
  kd.architecture = mlp({4});
  kd.training = job.teacher.training;
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 2.0;
  StudentSpec ce = kd;
  ce.name = "ce";
  ce.objective.lambda = 0.0;
  job.students = {kd, ce};
  job.replicates = {11, 12, 13};
  return job;
}

const fs::path& replicateDir() {
  static const fs::path dir = [] {
    const fs::path d = kdscope::test::freshTempDir("replicates") / "out";
    const JobResult r = runReplicates(tinyReplicatedJob(), RunOptions{d.string()}, CancelToken(), nullptr);
    EXPECT_EQ(r.status, JobStatus::Succeeded) << r.message;
    return d;
  }();
  return dir;
}

double accuracyOf(const std::vector<float>& logits, const std::vector<std::int64_t>& labels, std::size_t classes) {
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < classes; ++k) {
      best = logits[i * classes + k] > logits[i * classes + best] ? k : best;
    }
    right += static_cast<std::int64_t>(best) == labels[i] ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

using kdscope::test::runCommand;

} // namespace

TEST(ReplicateJob, CountListAndBadValues) {
  auto count = parseJob(jobWith("3"));
  ASSERT_TRUE(count.job) << issuesText(count);
  EXPECT_EQ(count.job->replicateSeeds(), (std::vector<std::uint64_t>{7, 8, 9})); // seed, seed + 1, seed + 2
  auto list = parseJob(jobWith("[21, 4]"));
  ASSERT_TRUE(list.job) << issuesText(list);
  EXPECT_EQ(list.job->replicateSeeds(), (std::vector<std::uint64_t>{21, 4}));
  // The normalised job reads back the same.
  auto again = parseJob(list.normalizedJson);
  ASSERT_TRUE(again.job) << issuesText(again);
  EXPECT_EQ(again.job->replicates, list.job->replicates);
  auto none = parseJob(jobWith("0"));
  ASSERT_TRUE(none.job);
  EXPECT_TRUE(none.job->replicateSeeds().empty());
  EXPECT_EQ(none.job->modelSeed(), 7U);

  const auto expectIssue = [](const std::string& value, const std::string& path, const std::string& words) {
    const auto r = parseJob(jobWith(value));
    EXPECT_FALSE(r.job) << value;
    EXPECT_NE(issuesText(r).find(path), std::string::npos) << issuesText(r);
    EXPECT_NE(issuesText(r).find(words), std::string::npos) << issuesText(r);
  };
  expectIssue("[3, 0]", "replicates[1]", "must be positive");
  expectIssue("[3, 3]", "replicates[1]", "listed twice");
  expectIssue("\"five\"", "replicates", "a count of replicates or an array of seeds");
  expectIssue("-2", "replicates", "must be in [0, 1000]");
  expectIssue("[1.5]", "replicates[0]", "integer");
}

TEST(ReplicateStats, PairedTCoverageAndSizeOnSimulatedReplicates) {
  // 4000 simulated studies of 5 replicates: two methods share a per-seed effect (sd 0.02) and
  // differ by 0.01 plus independent noise (sd 0.01 each). The paired t interval must cover
  // the true difference about 95% of the time (sd of the estimate sqrt(.95 .05 / 4000) =
  // 0.0034: accept +-4 sd), and with no true difference reject about 5% of the time.
  std::mt19937_64 rng(20260);
  std::normal_distribution<double> shared(0.0, 0.02);
  std::normal_distribution<double> noise(0.0, 0.01);
  const int studies = 4000;
  int covered = 0;
  int rejectedNull = 0;
  for (int s = 0; s < studies; ++s) {
    std::vector<double> a;
    std::vector<double> b;
    std::vector<double> a0;
    for (int r = 0; r < 5; ++r) {
      const double seedEffect = shared(rng);
      a.push_back(0.80 + seedEffect + noise(rng));
      b.push_back(0.79 + seedEffect + noise(rng));
      a0.push_back(0.79 + seedEffect + noise(rng));
    }
    const an::PairedComparison c = an::pairedT(a, b);
    covered += (c.difference.lo <= 0.01 && 0.01 <= c.difference.hi) ? 1 : 0;
    rejectedNull += an::pairedT(a0, b).pValue < 0.05 ? 1 : 0;
  }
  const double coverage = static_cast<double>(covered) / studies;
  const double size = static_cast<double>(rejectedNull) / studies;
  std::printf("paired t coverage %.4f, size %.4f\n", coverage, size);
  EXPECT_GE(coverage, 0.936);
  EXPECT_LE(coverage, 0.964);
  EXPECT_GE(size, 0.036);
  EXPECT_LE(size, 0.064);
}

TEST(ReplicateStats, MetricSkipsMissingReplicatesHandWorked) {
  // values 0.7, NaN, 0.8, 0.9: mean 0.8, sd 0.1, half-width t_{0.975, 2} 0.1 / sqrt(3) with
  // t_{0.975, 2} = 4.302653 (printed table).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const ReplicateMetric m = replicateMetric("accuracy", {0.7, nan, 0.8, 0.9});
  EXPECT_EQ(m.summary.interval.count, 3U);
  EXPECT_NEAR(m.summary.mean, 0.8, 1e-12);
  EXPECT_NEAR(m.summary.sd, 0.1, 1e-12);
  EXPECT_NEAR(m.summary.interval.hi - 0.8, 4.302653 * 0.1 / std::sqrt(3.0), 1e-6);
  EXPECT_EQ(m.summary.interval.over, an::kOverReplicates);
  EXPECT_EQ(m.values.size(), 4U);
}

TEST(ReplicateRun, SplitSharedModelsDifferAndTheSummaryMatchesTheRuns) {
  const fs::path& dir = replicateDir();
  ASSERT_TRUE(isReplicateDir(dir.string()));
  ASSERT_TRUE(fs::exists(replicateSummaryPath(dir.string())));
  const ReplicateSet set = summarizeReplicateSet(dir.string());
  ASSERT_EQ(set.seeds, (std::vector<std::uint64_t>{11, 12, 13}));
  const std::string task = "synthetic_hierarchy";
  std::vector<std::vector<std::int64_t>> labels;
  std::map<std::string, std::vector<double>> acc;
  std::vector<std::vector<float>> teacherLogits;
  std::size_t classes = 0;
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(set.runs[r], replicateRunDir(dir.string(), set.seeds[r]) + "/run.h5");
    const RunReader reader(set.runs[r]);
    classes = static_cast<std::size_t>(reader.summary().tasks.at(0).numClasses);
    labels.push_back(reader.evalLabels(task));
    teacherLogits.push_back(reader.evalLogits(task, "teacher"));
    for (const std::string model : {"teacher", "kd", "ce"}) {
      acc[model].push_back(accuracyOf(reader.evalLogits(task, model), labels.back(), classes));
    }
  }
  // The split follows the job seed: the same eval examples in every replicate; the models
  // follow the replicate seed: different teachers.
  EXPECT_EQ(labels[0], labels[1]);
  EXPECT_EQ(labels[0], labels[2]);
  EXPECT_NE(teacherLogits[0], teacherLogits[1]);
  EXPECT_NE(teacherLogits[1], teacherLogits[2]);

  ASSERT_EQ(set.tasks.size(), 1U);
  const ReplicateTask& t = set.tasks[0];
  const double t975df2 = 4.302653; // printed table
  const auto expectSummary = [&](const ReplicateMetric* m, const std::vector<double>& v) {
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(m->values.size(), 3U);
    const double mean = (v[0] + v[1] + v[2]) / 3.0;
    const double sd = std::sqrt(((v[0] - mean) * (v[0] - mean) + (v[1] - mean) * (v[1] - mean) +
                                 (v[2] - mean) * (v[2] - mean)) / 2.0);
    for (std::size_t r = 0; r < 3; ++r) {
      EXPECT_NEAR(m->values[r], v[r], 1e-12);
    }
    EXPECT_NEAR(m->summary.mean, mean, 1e-12);
    EXPECT_NEAR(m->summary.interval.lo, mean - t975df2 * sd / std::sqrt(3.0), 1e-6);
    EXPECT_NEAR(m->summary.interval.hi, mean + t975df2 * sd / std::sqrt(3.0), 1e-6);
    EXPECT_EQ(m->summary.interval.count, 3U);
  };
  expectSummary(&t.teacher[0], acc["teacher"]);
  ASSERT_EQ(t.students.size(), 2U);
  for (const ReplicateStudent& s : t.students) {
    SCOPED_TRACE(s.name);
    expectSummary(s.find("accuracy"), acc[s.name]);
    expectSummary(s.find("gap"), {acc["teacher"][0] - acc[s.name][0], acc["teacher"][1] - acc[s.name][1],
                                  acc["teacher"][2] - acc[s.name][2]});
  }
  // Pairs: kd - teacher, ce - teacher, kd - ce; paired t with df = 2, whose two-sided p has
  // the closed form 1 - |t| / sqrt(2 + t^2).
  ASSERT_EQ(t.pairs.size(), 3U);
  const ReplicatePair& p = t.pairs[2];
  EXPECT_EQ(p.first, "kd");
  EXPECT_EQ(p.second, "ce");
  std::vector<double> d;
  for (std::size_t r = 0; r < 3; ++r) {
    d.push_back(acc["kd"][r] - acc["ce"][r]);
    EXPECT_NEAR(p.differences[r], d[r], 1e-12);
  }
  const double mean = (d[0] + d[1] + d[2]) / 3.0;
  const double sd = std::sqrt(((d[0] - mean) * (d[0] - mean) + (d[1] - mean) * (d[1] - mean) +
                               (d[2] - mean) * (d[2] - mean)) / 2.0);
  EXPECT_EQ(p.test.test, "paired t");
  EXPECT_NEAR(p.test.difference.estimate, mean, 1e-12);
  if (sd > 0) {
    const double tStat = mean / (sd / std::sqrt(3.0));
    EXPECT_NEAR(p.test.pValue, 1.0 - std::fabs(tStat) / std::sqrt(2.0 + tStat * tStat), 1e-9);
  }
  EXPECT_EQ(t.pairs[0].second, "teacher");
}

TEST(ReplicateRun, ReplicateSeedDefaultsToTheJobSeedBitForBit) {
  // A job without replicate_seed and one with replicate_seed = seed draw the same models.
  const fs::path dir = kdscope::test::freshTempDir("replicate_seed");
  JobSpec plain = tinyReplicatedJob();
  plain.replicates.clear();
  plain.students.resize(1);
  plain.analyze = false;
  JobSpec explicitSeed = plain;
  explicitSeed.replicateSeed = plain.seed;
  ASSERT_EQ(runJob(plain, RunOptions{(dir / "a").string()}, CancelToken(), nullptr).status, JobStatus::Succeeded);
  ASSERT_EQ(runJob(explicitSeed, RunOptions{(dir / "b").string()}, CancelToken(), nullptr).status,
            JobStatus::Succeeded);
  const RunReader a((dir / "a" / "run.h5").string());
  const RunReader b((dir / "b" / "run.h5").string());
  EXPECT_EQ(a.evalLogits("synthetic_hierarchy", "kd"), b.evalLogits("synthetic_hierarchy", "kd"));
}

TEST(ReplicateRun, NumPyOracleAgreesOnTheSummary) {
  const fs::path& dir = replicateDir();
  const auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR +
                                    "/tests/python/check_replicates.py '" + dir.string() + "'");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("check_replicates: ok"), std::string::npos) << output;
}

TEST(ReplicateRun, BadManifestIsRefusedByName) {
  const fs::path dir = kdscope::test::freshTempDir("replicates_bad");
  kdscope::test::writeFile((dir / "replicates.json").string(), R"({"format": "kdscope-replicates", "seeds": [1], "runs": ["rep-1/run.h5"]})");
  const std::string missing = kdscope::test::messageOf<InputError>([&] { (void)summarizeReplicateSet(dir.string()); });
  EXPECT_NE(missing.find("rep-1/run.h5"), std::string::npos) << missing;
  EXPECT_NE(missing.find("missing"), std::string::npos) << missing;
  kdscope::test::writeFile((dir / "replicates.json").string(), R"({"format": "kdscope-replicates", "seeds": [1, 2], "runs": ["x"]})");
  const std::string mismatch = kdscope::test::messageOf<InputError>([&] { (void)summarizeReplicateSet(dir.string()); });
  EXPECT_NE(mismatch.find("replicates.json"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("'seeds' and 'runs'"), std::string::npos) << mismatch;
}
