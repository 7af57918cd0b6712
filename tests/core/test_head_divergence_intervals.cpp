// The head divergence's 95% interval (analysis "attention"; docs/statistics.md, "Heads"): a
// percentile bootstrap over the kept eval examples of the row-weighted mean JS divergence of
// each teacher head and its best-matching student head, the match fixed. A hand-made run:
// one layer and one head each, 3 tokens (all real), 3 kept examples:
//   example 0: teacher and student both attend one-hot to key 0 -> JS 0 on every row
//   example 1: teacher one-hot on key 0, student one-hot on key 1 -> JS ln 2 on every row
//   example 2: as example 0                                      -> JS 0
// The estimate is ln 2 / 3; a resample's value is ln 2 x (times example 1 was drawn) / 3.
// The ends are recomputed here from the same draws (bootstrapResampleIndices) with NumPy's
// linear percentile written out, and the reader's matrices and shape checks are exercised.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/analysis/analysis_results.h"
#include "core/analysis/analyze_run.h"
#include "core/analysis/stats.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

/// `teacherHeads` 2: the teacher's second head attends one-hot to key 2 in every example.
std::string writeRun(const fs::path& dir, int teacherHeads = 1) {
  const std::string path = (dir / "run.h5").string();
  TaskData task;
  task.name = "t";
  task.kind = TaskKind::Text;
  task.classNames = {"a", "b"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "x", "y"};
  task.seqLen = 3;
  task.eval.labels = {0, 1, 0};
  task.eval.tokens = {2, 3, 4, 2, 4, 3, 2, 3, 3};
  task.eval.texts = {"x y", "y x", "x x"};
  RunWriter writer(path, R"({"name":"divergence"})");
  writer.writeTask(task);
  const std::vector<float> logits = {1, 0, 0, 1, 1, 0};
  const std::string ce = R"({"terms":[{"name":"ce","weight":1.0,"label_smoothing":0.0}]})";
  writer.beginModel("t", "teacher", "teacher",
                    R"({"type":"transformer","layers":1,"heads":)" + std::to_string(teacherHeads) +
                        R"(,"width":4,"ffn":8})",
                    ce, 10);
  writer.beginModel("t", "kd", "student", R"({"type":"transformer","layers":1,"heads":1,"width":4,"ffn":8})", ce, 10);
  for (const char* name : {"teacher", "kd"}) {
    const bool student = std::string(name) == "kd";
    const int heads = student ? 1 : teacherHeads;
    RunWriter::EvalShape shape;
    shape.examples = 3;
    shape.classes = 2;
    shape.attentionExamples = 3;
    shape.layers = 1;
    shape.heads = static_cast<std::uint64_t>(heads);
    shape.seqLen = 3;
    writer.createEvalOutputs("t", name, shape, "mean");
    writer.writeEvalLogits("t", name, 0, 3, logits.data());
    // [3 examples, 1 layer, heads, 3 queries, 3 keys], one-hot rows.
    std::vector<float> a(static_cast<std::size_t>(27 * heads), 0.0F);
    for (int e = 0; e < 3; ++e) {
      for (int h = 0; h < heads; ++h) {
        const int key = student && e == 1 ? 1 : (h == 1 ? 2 : 0);
        for (int q = 0; q < 3; ++q) {
          a[static_cast<std::size_t>(((e * heads + h) * 3 + q) * 3 + key)] = 1.0F;
        }
      }
    }
    writer.writeEvalAttention("t", name, 0, 3, a.data());
  }
  writer.setStatus("complete", "");
  return path;
}

/// NumPy's default percentile: position q (B - 1), linear between order statistics.
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(at));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (at - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Runs the "attention" analysis (B = 2000, seed 21) and reads kd's head divergence.
std::optional<HeadDivergence> analysedDivergence(const std::string& path) {
  AnalyzeOptions options;
  options.only = {"attention"};
  options.bootstrapResamples = 2000;
  options.bootstrapSeed = 21;
  const AnalyzeResult result = analyzeRun(path, options, CancelToken{}, {});
  EXPECT_EQ(result.status, AnalyzeStatus::Succeeded) << result.message;
  const RunReader reader(path);
  return AnalysisResults(reader).headDivergence("t", "kd");
}

/// value(k) for each of the analysis's 2000 resamples of the 3 kept examples, k = the times
/// example 1 was drawn (the same draws: bootstrapResampleIndices(3, 2000, 21)).
std::vector<double> replicatesByDrawsOfExample1(const std::function<double(int)>& value) {
  const auto indices = analysis::bootstrapResampleIndices(3, 2000, 21);
  EXPECT_EQ(indices.size(), 3U * 2000U);
  std::vector<double> replicates;
  for (std::size_t b = 0; b < 2000; ++b) {
    int ones = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      ones += indices[b * 3 + k] == 1 ? 1 : 0;
    }
    replicates.push_back(value(ones));
  }
  return replicates;
}

} // namespace

TEST(HeadDivergenceIntervals, BootstrapOverKeptExamplesHandWorked) {
  const fs::path dir = kdscope::test::freshTempDir("head-divergence-intervals");
  const std::string path = writeRun(dir);
  const auto div = analysedDivergence(path);
  ASSERT_TRUE(div.has_value());
  const double ln2 = std::log(2.0);
  EXPECT_NEAR(div->bestDivergence(0, 0), ln2 / 3.0, 1e-6);
  ASSERT_TRUE(div->bestLo.has_value());
  ASSERT_TRUE(div->bestHi.has_value());
  EXPECT_EQ(div->resamples, 2000);

  const std::vector<double> replicates = replicatesByDrawsOfExample1([&](int ones) { return ln2 * ones / 3.0; });
  // float32 in the file
  EXPECT_NEAR((*div->bestLo)(0, 0), percentile(replicates, 0.025), 1e-6);
  EXPECT_NEAR((*div->bestHi)(0, 0), percentile(replicates, 0.975), 1e-6);
  // With these draws: 0 (no example 1 in at least 2.5% of resamples: P = 8/27) and ln 2 (all
  // three draws example 1 in more than 2.5%: P = 1/27 = 3.7%).
  EXPECT_NEAR((*div->bestLo)(0, 0), 0.0, 1e-6);
  EXPECT_NEAR((*div->bestHi)(0, 0), ln2, 1e-6);

  // A file whose _hi is missing beside _lo is refused naming the dataset.
  {
    H5File f(path, H5File::Mode::ReadWrite);
    f.remove("/tasks/t/analysis/kd/head_js_best_divergence_hi");
  }
  const RunReader broken(path);
  try {
    (void)AnalysisResults(broken).headDivergence("t", "kd");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("head_js_best_divergence_lo"), std::string::npos) << e.what();
  }
}

// Two teacher heads, one student head. Teacher head 1 attends to key 2 everywhere, so against
// the student it diverges by ln 2 on every row of every example; head 0 as above (0, ln 2, 0).
// The mean over the two heads is (ln 2 / 3 + ln 2) / 2 = 2 ln 2 / 3; its resamples are the
// row-weighted means of each example's mean over the heads (ln 2 / 2, ln 2, ln 2 / 2), i.e.
// ln 2 / 2 + ln 2 x (times example 1 was drawn) / 6, percentiles from the same draws.
TEST(HeadDivergenceIntervals, MeanOverHeadsHandWorkedFromTheSameResamples) {
  const fs::path dir = kdscope::test::freshTempDir("head-divergence-mean");
  const std::string path = writeRun(dir, /*teacherHeads=*/2);
  const auto div = analysedDivergence(path);
  ASSERT_TRUE(div.has_value());
  const double ln2 = std::log(2.0);
  EXPECT_NEAR(div->bestDivergence(0, 0), ln2 / 3.0, 1e-6);
  EXPECT_NEAR(div->bestDivergence(0, 1), ln2, 1e-6);
  ASSERT_TRUE(div->meanOverHeads.has_value());
  EXPECT_EQ(div->meanOverHeadsCount, 2U);
  EXPECT_EQ(div->meanOverHeads->count, 3U); // kept examples
  EXPECT_EQ(div->meanOverHeads->resamples, 2000);
  EXPECT_NEAR(div->meanOverHeads->estimate, 2.0 * ln2 / 3.0, 1e-9);

  const std::vector<double> replicates =
      replicatesByDrawsOfExample1([&](int ones) { return ln2 / 2.0 + ln2 * ones / 6.0; });
  // Attributes are double; the per-example JS comes from float32 maps (exact for one-hot rows).
  EXPECT_NEAR(div->meanOverHeads->lo, percentile(replicates, 0.025), 1e-9);
  EXPECT_NEAR(div->meanOverHeads->hi, percentile(replicates, 0.975), 1e-9);
  EXPECT_NEAR(div->meanOverHeads->lo, ln2 / 2.0, 1e-9); // no example 1 drawn: P = 8/27
  EXPECT_NEAR(div->meanOverHeads->hi, ln2, 1e-9);       // all three example 1: P = 1/27 > 2.5%
}

// The teacher head matched least against the runner-up, from the same resamples, the matches
// fixed. Head 1 (ln 2 on every example) is matched least, head 0 (0, ln 2, 0) is the runner-up;
// per example head 1 minus head 0 is (ln 2, 0, ln 2), so a resample drawing example 1 k times
// gives ln 2 (3 - k) / 3: the estimate 2 ln 2 / 3, the 2.5% end 0 (k = 3: P = 1/27 > 2.5%)
// and the 97.5% end ln 2 (k = 0: P = 8/27): the interval holds 0.
TEST(HeadDivergenceIntervals, WorstMatchedHeadAgainstTheRunnerUpHandWorked) {
  const fs::path dir = kdscope::test::freshTempDir("head-divergence-runner-up");
  const std::string path = writeRun(dir, /*teacherHeads=*/2);
  ASSERT_TRUE(analysedDivergence(path).has_value());
  const auto r = [&] {
    const RunReader reader(path); // closed before the file is edited below
    return AnalysisResults(reader).runnerUp("t", "kd", "head_js_best_divergence");
  }();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 1U); // [student layer 0, teacher head 1], row-major
  EXPECT_EQ(r->second, 0U);
  const double ln2 = std::log(2.0);
  EXPECT_NEAR(r->difference.estimate, 2.0 * ln2 / 3.0, 1e-9);
  EXPECT_EQ(r->difference.resamples, 2000);
  const std::vector<double> replicates =
      replicatesByDrawsOfExample1([&](int ones) { return ln2 * (3 - ones) / 3.0; });
  EXPECT_NEAR(r->difference.lo, percentile(replicates, 0.025), 1e-9);
  EXPECT_NEAR(r->difference.hi, percentile(replicates, 0.975), 1e-9);
  EXPECT_NEAR(r->difference.lo, 0.0, 1e-9);
  EXPECT_NEAR(r->difference.hi, ln2, 1e-9);
  EXPECT_TRUE(r->difference.holdsZero());

  // One teacher head: no runner-up, nothing recorded. A half-written record is refused by name.
  {
    const fs::path one = kdscope::test::freshTempDir("head-divergence-runner-up-one");
    const std::string p1 = writeRun(one);
    ASSERT_TRUE(analysedDivergence(p1).has_value());
    const RunReader r1(p1);
    EXPECT_FALSE(AnalysisResults(r1).runnerUp("t", "kd", "head_js_best_divergence").has_value());
  }
  {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    EXPECT_GE(H5Adelete_by_name(f, "/tasks/t/analysis/kd/head_js_best_divergence", "runner_up_difference_hi",
                                H5P_DEFAULT),
              0);
    H5Fclose(f);
  }
  const RunReader broken(path);
  try {
    (void)AnalysisResults(broken).runnerUp("t", "kd", "head_js_best_divergence");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("runner_up_difference_hi"), std::string::npos) << e.what();
  }
}
