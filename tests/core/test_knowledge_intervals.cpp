// The knowledge analysis's intervals (core/analysis/knowledge_intervals.h): hand-worked
// degenerate cases, a recomputation on the documented resample indices, and the NumPy oracle
// (tests/python/check_truth_intervals.py) on a tiny real run with the knowledge controls;
// also what AnalysisResults reads back and `kdscope info`'s source of it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/analysis/analysis_results.h"
#include "core/analysis/knowledge.h"
#include "core/analysis/knowledge_intervals.h"
#include "core/analysis/stats.h"
#include "core/common/cancel.h"
#include "core/data/rng.h"
#include "core/engine/run_job.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "tests/core/test_support.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with NumPy and h5py (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core {
namespace {

namespace an = analysis;
namespace fs = std::filesystem;

using kdscope::test::runCommand;

TEST(KnowledgeIntervals, GainsOnConstructedCorrectness) {
  // 10 examples. CE right on none, LS right on all: universe = 1 on every resample, so its
  // interval is exactly [1, 1]. KD-pt = LS: instance 0 on every resample, [0, 0]. KD right on
  // the first 5: domain = -(fraction of resampled rows among 5..9), total = its complement.
  std::vector<std::vector<double>> correct(4, std::vector<double>(10, 0.0));
  std::fill(correct[1].begin(), correct[1].end(), 1.0);
  correct[2] = correct[1];
  std::fill(correct[3].begin(), correct[3].begin() + 5, 1.0);
  an::BootstrapOptions options;
  options.resamples = 500;
  options.seed = 3;
  const an::GainIntervals g = an::gainIntervals(correct, options);
  EXPECT_EQ(g.universe.estimate, 1.0);
  EXPECT_EQ(g.universe.lo, 1.0);
  EXPECT_EQ(g.universe.hi, 1.0);
  EXPECT_EQ(g.instance.lo, 0.0);
  EXPECT_EQ(g.instance.hi, 0.0);
  EXPECT_EQ(g.domain.estimate, -0.5);
  EXPECT_EQ(g.total.estimate, 0.5);
  EXPECT_EQ(g.universe.over, an::kOverExamples);
  EXPECT_EQ(g.universe.count, 10U);
  EXPECT_EQ(g.universe.resamples, 500);
  // LS share = universe / total = 1 / (fraction of KD-right rows), on each resample.
  EXPECT_EQ(g.lsShare.estimate, 2.0);

  // Recomputed here on the documented indices: the domain replicate is minus the share of
  // rows drawn from 5..9; the percentile ends by linear interpolation at q (B - 1).
  const auto indices = an::bootstrapResampleIndices(10, 500, 3);
  std::vector<double> domain;
  for (int b = 0; b < 500; ++b) {
    int late = 0;
    for (int k = 0; k < 10; ++k) {
      late += indices[static_cast<std::size_t>(b * 10 + k)] >= 5 ? 1 : 0;
    }
    domain.push_back(-late / 10.0);
  }
  std::sort(domain.begin(), domain.end());
  const auto quantile = [&](double q) {
    const double pos = q * 499.0;
    const auto lo = static_cast<std::size_t>(pos);
    return domain[lo] + (pos - static_cast<double>(lo)) * (domain[std::min<std::size_t>(lo + 1, 499)] - domain[lo]);
  };
  EXPECT_NEAR(g.domain.lo, quantile(0.025), 1e-15);
  EXPECT_NEAR(g.domain.hi, quantile(0.975), 1e-15);
  EXPECT_THROW((void)an::gainIntervals({{1.0}, {1.0}}), std::invalid_argument);
}

TEST(KnowledgeIntervals, SpearmanAndGeometryOnPerfectCases) {
  // A monotone relation: Spearman 1 on every resample with at least two distinct values.
  std::vector<double> a;
  std::vector<double> b;
  for (int i = 0; i < 30; ++i) {
    a.push_back(i);
    b.push_back(std::exp(0.1 * i));
  }
  const an::Interval s = an::spearmanInterval(a, b);
  EXPECT_NEAR(s.estimate, 1.0, 1e-15);
  EXPECT_NEAR(s.lo, 1.0, 1e-12);
  EXPECT_NEAR(s.hi, 1.0, 1e-12);
  // A student with the teacher's probabilities agrees with it perfectly on every resample
  // where the off-diagonal entries vary.
  std::vector<double> probs;
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 60; ++i) {
    const double p = 0.5 + 0.1 * (i % 5) / 5.0;
    const int y = i % 3;
    for (int k = 0; k < 3; ++k) {
      probs.push_back(k == y ? p : (k == (y + 1) % 3 ? (1 - p) * 0.8 : (1 - p) * 0.2));
    }
    labels.push_back(y);
  }
  const an::Interval geometry = an::geometryAgreementProbsInterval(probs, probs, labels, 3);
  EXPECT_NEAR(geometry.estimate, 1.0, 1e-12);
  EXPECT_NEAR(geometry.lo, 1.0, 1e-9);
  EXPECT_NEAR(geometry.hi, 1.0, 1e-9);
}

// The intervals rank by counting and sum resampled rows in place; their ends must be those of
// the plain definition: each resample's rows copied out and given to spearmanCorrelation (NaN
// pairs dropped, ties) and classSimilarityFromProbs, on the same draws.
TEST(KnowledgeIntervals, SpearmanAndGeometryEqualTheirDefinitionOnCopiedResamples) {
  Rng rng(31);
  const std::size_t n = 90;
  const std::size_t classes = 4;
  std::vector<double> a(n);
  std::vector<double> b(n);
  std::vector<double> teacher(n * classes);
  std::vector<double> student(n * classes);
  std::vector<std::int64_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = static_cast<double>(rng.uniformInt(9));                   // ties
    b[i] = a[i] * 0.5 + static_cast<double>(rng.uniformInt(5));     // ties, correlated
    labels[i] = static_cast<std::int64_t>(rng.uniformInt(classes));
    double st = 0.0;
    double ss = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      teacher[i * classes + c] = 0.1 + rng.uniform01();
      student[i * classes + c] = 0.1 + rng.uniform01();
      st += teacher[i * classes + c];
      ss += student[i * classes + c];
    }
    for (std::size_t c = 0; c < classes; ++c) {
      teacher[i * classes + c] /= st;
      student[i * classes + c] /= ss;
    }
  }
  a[3] = std::nan("");
  b[10] = std::nan("");
  const an::BootstrapOptions options{400, 0.9, 13};
  const std::vector<std::uint32_t> indices = an::bootstrapResampleIndices(n, options.resamples, options.seed);
  std::vector<double> spearman;
  std::vector<double> geometry;
  for (int r = 0; r < options.resamples; ++r) {
    std::vector<double> x;
    std::vector<double> y;
    std::vector<double> t;
    std::vector<double> u;
    std::vector<std::int64_t> l;
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint32_t i = indices[static_cast<std::size_t>(r) * n + k];
      x.push_back(a[i]);
      y.push_back(b[i]);
      t.insert(t.end(), teacher.begin() + static_cast<long>(i * classes), teacher.begin() + static_cast<long>((i + 1) * classes));
      u.insert(u.end(), student.begin() + static_cast<long>(i * classes), student.begin() + static_cast<long>((i + 1) * classes));
      l.push_back(labels[i]);
    }
    spearman.push_back(an::spearmanCorrelation(x, y));
    geometry.push_back(an::offDiagonalCorrelation(an::classSimilarityFromProbs(t, l, classes),
                                                  an::classSimilarityFromProbs(u, l, classes)));
  }
  const auto [sLo, sHi] = an::percentileInterval(spearman, options.level);
  const an::Interval s = an::spearmanInterval(a, b, options);
  EXPECT_EQ(s.lo, sLo);
  EXPECT_EQ(s.hi, sHi);
  EXPECT_EQ(s.estimate, an::spearmanCorrelation(a, b));
  EXPECT_LT(sLo, sHi);
  const auto [gLo, gHi] = an::percentileInterval(geometry, options.level);
  const an::Interval g = an::geometryAgreementProbsInterval(teacher, student, labels, classes, options);
  EXPECT_EQ(g.lo, gLo);
  EXPECT_EQ(g.hi, gHi);
  EXPECT_LT(gLo, gHi);
}

TEST(KnowledgeIntervals, NumPyOracleOnARunWithTheControls) {
  const fs::path out = kdscope::test::freshTempDir("knowledge_intervals");
  JobSpec job;
  job.name = "knowledge-intervals";
  job.seed = 5;
  job.tasks.push_back(kdscope::test::syntheticHierarchyTask(8, 60));
  ArchitectureSpec mlp;
  mlp.type = "mlp";
  mlp.hidden = {16};
  mlp.dropout = 0.0;
  job.teacher.architecture = mlp;
  job.teacher.architecture.hidden = {32, 16};
  job.teacher.training.epochs = 3;
  job.teacher.training.batchSize = 16;
  StudentSpec kd;
  kd.name = "kd";
  kd.architecture = mlp;
  kd.training = job.teacher.training;
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 2.0;
  job.students = {kd};
  job.knowledgeControls.enabled = true;
  job.knowledgeControls.architecture = mlp;
  job.knowledgeControls.training = job.teacher.training;
  job.recording.hidden = true;
  const auto result = runJob(job, RunOptions{out.string()}, CancelToken(), nullptr);
  ASSERT_EQ(result.status, JobStatus::Succeeded) << result.message;
  const RunReader reader(result.runPath);
  const std::string task = "synthetic_hierarchy";
  const std::size_t n = reader.evalLabels(task).size();

  // AnalysisResults reads the intervals back, each holding its estimate.
  const AnalysisResults results(reader);
  const auto headlines = results.headlines();
  ASSERT_EQ(headlines.size(), 1U);
  const TaskHeadline& h = headlines[0];
  ASSERT_TRUE(h.universeInterval.has_value());
  for (const auto* i : {&h.universeInterval, &h.instanceInterval, &h.domainInterval, &h.totalInterval}) {
    ASSERT_TRUE(i->has_value());
    EXPECT_LE((*i)->lo, (*i)->estimate);
    EXPECT_GE((*i)->hi, (*i)->estimate);
    EXPECT_EQ((*i)->resamples, 2000);
  }
  EXPECT_EQ(h.universeInterval->estimate, h.universe);
  EXPECT_EQ(h.lsMatchTemperature, 2.0); // knowledge_controls' default temperature, ls_match "kd_temperature"
  for (const StudentHeadline& s : h.students) {
    ASSERT_TRUE(s.geometryAgreementProbs.has_value()) << s.name;
    if (s.wConfidenceSpearmanInterval) {
      EXPECT_EQ(s.wConfidenceSpearmanInterval->estimate, s.wConfidenceSpearman) << s.name;
    }
  }

  // NumPy, on the same resample indices (B = 2000, seed 14: kdscope analyze's defaults).
  const std::vector<std::uint32_t> indices = an::bootstrapResampleIndices(n, 2000, 14);
  const std::string file = (out / "indices.u32").string();
  {
    std::ofstream os(file, std::ios::binary);
    for (const std::uint32_t i : indices) {
      const unsigned char bytes[4] = {static_cast<unsigned char>(i), static_cast<unsigned char>(i >> 8),
                                      static_cast<unsigned char>(i >> 16), static_cast<unsigned char>(i >> 24)};
      os.write(reinterpret_cast<const char*>(bytes), 4);
    }
    ASSERT_TRUE(os.good());
  }
  const auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR +
                                    "/tests/python/check_truth_intervals.py '" + result.runPath + "' '" + file +
                                    "' --task " + task);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("check_truth_intervals: ok"), std::string::npos) << output;
}

} // namespace
} // namespace kdscope::core
