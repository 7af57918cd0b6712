// The "where" part of a run's report (core/report/report_where.h; docs/report.md): on a small
// real run (the tiny polarity corpus, a 2-layer teacher with 2 heads per layer and a 1-layer KD
// student, analysed), every number of the layer and head sentences is read here from the run
// file with H5File (not through AnalysisResults, which the report uses) and written the way
// docs/report.md says: the lowest CKA at matched depth with its bootstrap interval, the table
// of every matched pair, the most important head with its interval, the head whose ablation
// lowers accuracy most with its paired interval and the verdict words, and the count of heads
// with a detectable effect. Copies of the run whose ablation intervals are replaced give both
// verdicts for certain: one head detectable and one whose interval holds 0, and none
// detectable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/engine/run_job.h"
#include "core/record/h5_file.h"
#include "core/report/report.h"
#include "core/report/report_where.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

const std::string kTask = "polarity";
const std::string kAnalysis = "/tasks/polarity/analysis/";
const std::string kWhere = "polarity, student kd: where (layers, heads, classes)";

/// "%.Nf", without a sign on a number that rounds to 0 (as the report writes numbers).
std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  std::string s = b;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) {
    s.erase(0, 1);
  }
  return s;
}
std::string f3(double v) {
  return fixed(v, 3);
}
/// Percentage points with one decimal (accuracy differences).
std::string pts(double fraction) {
  return fixed(100.0 * fraction, 1);
}

std::vector<double> floats(const H5File& f, const std::string& path) {
  const auto v = f.readFloat(path);
  return {v.begin(), v.end()};
}

const fs::path& analysedRun() {
  static const fs::path path = [] {
    const fs::path dir = kdscope::test::freshTempDir("report_where");
    const std::string data =
        kdscope::test::writePolarityCorpus(dir / "data", kdscope::test::PolarityCorpus{240, false, true});
    JobSpec job = kdscope::test::tinyPolarityJob(data, 3);
    job.name = "report-where-test";
    job.analyze = true;
    const auto result = runJob(job, RunOptions{(dir / "run").string()}, CancelToken(), nullptr);
    EXPECT_EQ(result.status, JobStatus::Succeeded) << result.message;
    return dir / "run" / "run.h5";
  }();
  return path;
}

const ReportSection* section(const Report& report, const std::string& heading) {
  for (const auto& s : report.sections) {
    if (s.heading == heading) {
      return &s;
    }
  }
  return nullptr;
}

bool holds(const std::vector<std::string>& lines, const std::string& expected) {
  return std::find(lines.begin(), lines.end(), expected) != lines.end();
}

std::string lines(const std::vector<std::string>& all) {
  std::string out;
  for (const auto& l : all) {
    out += "  " + l + "\n";
  }
  return out;
}

/// The sentences the ablation of kd ([1, 2] heads) must give, from the file's numbers.
struct AblationNumbers {
  std::vector<double> drop;
  std::vector<double> lo;
  std::vector<double> hi;
  std::int64_t resamples = 0;
};

AblationNumbers readAblation(const H5File& f) {
  AblationNumbers a;
  a.drop = floats(f, kAnalysis + "kd/head_ablation_accuracy_drop");
  a.lo = floats(f, kAnalysis + "kd/head_ablation_accuracy_drop_lo");
  a.hi = floats(f, kAnalysis + "kd/head_ablation_accuracy_drop_hi");
  a.resamples = f.attrInt(kAnalysis + "kd/head_ablation_accuracy_drop", "resamples");
  return a;
}

/// The expected sentences: the head that lowers accuracy most (first in layer-major order on
/// ties), then the count. kd has one layer, so head c is L1H(c + 1).
std::vector<std::string> ablationSentences(const AblationNumbers& a, std::size_t examples) {
  const std::string basis = "paired bootstrap over " + std::to_string(examples) +
                            " eval examples, B = " + std::to_string(a.resamples);
  std::size_t worst = 0;
  std::size_t detectable = 0;
  std::size_t lowers = 0;
  for (std::size_t c = 0; c < a.drop.size(); ++c) {
    worst = a.drop[c] > a.drop[worst] ? c : worst;
    const bool holdsZero = a.lo[c] <= 0.0 && 0.0 <= a.hi[c];
    detectable += holdsZero ? 0 : 1;
    lowers += !holdsZero && a.drop[c] > 0 ? 1 : 0;
  }
  const std::string head = "L1H" + std::to_string(worst + 1);
  const std::string ci =
      " points (95% CI " + pts(a.lo[worst]) + " to " + pts(a.hi[worst]) + ", " + basis + ")";
  std::vector<std::string> out;
  const bool worstDetectable = !(a.lo[worst] <= 0.0 && 0.0 <= a.hi[worst]);
  if (worstDetectable && a.drop[worst] > 0) {
    out.push_back("ablating head " + head +
                  " of student kd alone lowers its accuracy on polarity the most of its "
                  "heads: by " +
                  pts(a.drop[worst]) + ci);
  } else if (worstDetectable) {
    out.push_back("head " + head +
                  " of student kd, the head whose ablation lowers its accuracy on polarity the most, "
                  "raises it when ablated alone: by " +
                  pts(-a.drop[worst]) + " points (95% CI " + pts(-a.hi[worst]) + " to " + pts(-a.lo[worst]) +
                  ", " + basis + ")");
  } else {
    out.push_back(
        "no detectable difference when head " + head +
        " of student kd, the head whose ablation lowers its accuracy on polarity the most, is ablated "
        "alone: accuracy drop " +
        pts(a.drop[worst]) + ci);
  }
  const std::size_t heads = a.drop.size();
  if (detectable > 0) {
    std::string s = std::to_string(detectable) + " of the " + std::to_string(heads) +
                    " heads of student kd " + (detectable == 1 ? "has" : "have") +
                    " a detectable effect on its accuracy when ablated alone (95% paired "
                    "bootstrap interval of the accuracy drop excluding 0; " +
                    std::to_string(lowers) + " lower it, " + std::to_string(detectable - lowers) +
                    " raise it)";
    if (heads > detectable) {
      s += "; no detectable difference for the other " + std::to_string(heads - detectable);
    }
    out.push_back(s);
  } else {
    out.push_back(
        "none of the " + std::to_string(heads) +
        " heads of student kd has a detectable effect on its accuracy when ablated alone: no detectable "
        "difference for each (every 95% paired bootstrap interval holds 0)");
  }
  return out;
}

/// A copy of the analysed run whose kd ablation drops and intervals are replaced.
fs::path withAblation(const std::string& name, const std::vector<float>& drop, const std::vector<float>& lo,
                      const std::vector<float>& hi) {
  const fs::path dir = kdscope::test::freshTempDir(name);
  const fs::path copy = dir / "run.h5";
  fs::copy_file(analysedRun(), copy);
  H5File f(copy.string(), H5File::Mode::ReadWrite);
  f.writeRows(kAnalysis + "kd/head_ablation_accuracy_drop", 0, 1, drop.data());
  f.writeRows(kAnalysis + "kd/head_ablation_accuracy_drop_lo", 0, 1, lo.data());
  f.writeRows(kAnalysis + "kd/head_ablation_accuracy_drop_hi", 0, 1, hi.data());
  return copy;
}

} // namespace

TEST(ReportWhere, LayerAndHeadSentencesCarryTheFilesNumbersAndIntervals) {
  const fs::path& path = analysedRun();
  const Report rep = buildReport(path.string());
  const ReportSection* where = section(rep, kWhere);
  ASSERT_NE(where, nullptr);
  const H5File f(path.string(), H5File::Mode::ReadOnly);
  const std::size_t n = f.readInt64("/tasks/polarity/eval/labels").size();
  ASSERT_GT(n, 0U);
  const std::string examples = std::to_string(n) + " eval examples";

  // Layers: CKA at matched depth, the lowest encoder layer, with its bootstrap interval.
  const auto cka = floats(f, kAnalysis + "kd/cka_matched");
  const auto ckaLo = floats(f, kAnalysis + "kd/cka_matched_lo");
  const auto ckaHi = floats(f, kAnalysis + "kd/cka_matched_hi");
  const auto teacherLayer = f.readInt64(kAnalysis + "kd/cka_matched_teacher_layer");
  const std::int64_t ckaB = f.attrInt(kAnalysis + "kd/cka_matched", "resamples");
  ASSERT_EQ(cka.size(), 2U); // embeddings and the student's one layer
  std::size_t lowest = 0;
  std::size_t matchedLayers = 0;
  for (std::size_t i = 1; i < cka.size(); ++i) {
    if (teacherLayer[i] >= 0) {
      ++matchedLayers;
      lowest = lowest == 0 || cka[i] < cka[lowest] ? i : lowest;
    }
  }
  ASSERT_GT(lowest, 0U);
  const auto layerName = [](std::int64_t i) {
    return i == 0 ? std::string("embeddings") : "layer " + std::to_string(i);
  };
  const std::string ckaSentence =
      "the lowest CKA at matched depth of student kd: its layer " + std::to_string(lowest) +
      " matches the teacher's " + layerName(teacherLayer[lowest]) + " with linear CKA " + f3(cka[lowest]) +
      " (95% CI " + f3(ckaLo[lowest]) + " to " + f3(ckaHi[lowest]) + ", bootstrap over " + examples +
      ", B = " + std::to_string(ckaB) + ")" +
      (matchedLayers == 1 ? std::string(", its only matched layer")
                          : ", the lowest of its " + std::to_string(matchedLayers) + " matched layers");
  EXPECT_TRUE(holds(where->findings, ckaSentence)) << ckaSentence << "\nfindings:\n"
                                                   << lines(where->findings);
  // The table: every matched pair with its interval, "estimate [lo, hi]".
  bool table = false;
  for (const auto& t : where->tables) {
    if (t.caption.rfind("Linear CKA of each layer of student kd", 0) != 0) {
      continue;
    }
    table = true;
    EXPECT_NE(t.caption.find("percentile bootstrap over " + examples + ", B = " + std::to_string(ckaB)),
              std::string::npos)
        << t.caption;
    ASSERT_EQ(t.rows.size(), cka.size());
    for (std::size_t i = 0; i < cka.size(); ++i) {
      EXPECT_EQ(t.rows[i][0], layerName(static_cast<std::int64_t>(i)));
      EXPECT_EQ(t.rows[i][1], layerName(teacherLayer[i]));
      EXPECT_EQ(t.rows[i][2], f3(cka[i]) + " [" + f3(ckaLo[i]) + ", " + f3(ckaHi[i]) + "]");
    }
  }
  EXPECT_TRUE(table);

  // Heads: the most important head with its interval (the per-layer normalised importance).
  const auto importance = floats(f, kAnalysis + "kd/head_importance");
  const auto importanceLo = floats(f, kAnalysis + "kd/head_importance_lo");
  const auto importanceHi = floats(f, kAnalysis + "kd/head_importance_hi");
  const std::int64_t importanceB = f.attrInt(kAnalysis + "kd/head_importance_lo", "resamples");
  ASSERT_EQ(importance.size(), 2U);
  const std::size_t best = importance[1] > importance[0] ? 1 : 0;
  const std::string importanceSentence =
      "the most important head of student kd is L1H" + std::to_string(best + 1) +
      ": importance (Michel et al., normalised per layer) " + f3(importance[best]) + " (95% CI " +
      f3(importanceLo[best]) + " to " + f3(importanceHi[best]) + ", bootstrap over " + examples +
      ", B = " + std::to_string(importanceB) + ")";
  EXPECT_TRUE(holds(where->findings, importanceSentence)) << importanceSentence << "\nfindings:\n"
                                                          << lines(where->findings);

  // Ablation: the drops are intact minus ablated accuracy (the file's own record of both).
  const AblationNumbers ablation = readAblation(f);
  const double intact = f.attrDouble(kAnalysis + "kd/head_ablation_accuracy", "intact");
  const auto ablated = floats(f, kAnalysis + "kd/head_ablation_accuracy");
  for (std::size_t c = 0; c < ablation.drop.size(); ++c) {
    EXPECT_NEAR(ablation.drop[c], intact - ablated[c], 1e-6);
  }
  for (const std::string& expected : ablationSentences(ablation, n)) {
    EXPECT_TRUE(holds(where->findings, expected)) << expected << "\nfindings:\n" << lines(where->findings);
  }
  // Ablation's cross-entropy: the head whose ablation raises it most, with its paired interval
  // (ablated - intact, nats; the file's own record of both).
  {
    const auto rise = floats(f, kAnalysis + "kd/head_ablation_loss_increase");
    const auto riseLo = floats(f, kAnalysis + "kd/head_ablation_loss_increase_lo");
    const auto riseHi = floats(f, kAnalysis + "kd/head_ablation_loss_increase_hi");
    const auto losses = floats(f, kAnalysis + "kd/head_ablation_loss");
    const double intactLoss = f.attrDouble(kAnalysis + "kd/head_ablation_loss", "intact");
    ASSERT_EQ(rise.size(), losses.size());
    std::size_t top = 0;
    for (std::size_t c = 0; c < rise.size(); ++c) {
      EXPECT_NEAR(rise[c], losses[c] - intactLoss, 1e-5);
      top = rise[c] > rise[top] ? c : top;
    }
    const bool holdsZero = riseLo[top] <= 0.0 && 0.0 <= riseHi[top];
    const std::string value = f3(rise[top]) + " (95% CI " + f3(riseLo[top]) + " to " + f3(riseHi[top]) +
                              ", paired bootstrap over " + examples + ", B = " + std::to_string(ablation.resamples) +
                              ") nats, from " + f3(intactLoss) + " nats intact";
    const std::string head = "L1H" + std::to_string(top + 1);
    const std::string lossSentence =
        !holdsZero && rise[top] > 0
            ? "ablating head " + head + " of student kd alone raises its mean cross-entropy on polarity the most of "
                                        "its heads: by " + value
            : "no detectable difference in the mean cross-entropy of student kd on polarity when head " + head +
                  ", the head whose ablation raises it the most, is ablated alone: " + value;
    EXPECT_TRUE(holds(where->findings, lossSentence)) << lossSentence << "\nfindings:\n" << lines(where->findings);
  }
  // Divergence: the mean over the mapped teacher heads, with its interval from the same
  // resamples; the mean equals the average of head_js_best_divergence's finite entries.
  {
    const std::string bestPath = kAnalysis + "kd/head_js_best_divergence";
    const auto all = floats(f, bestPath);
    double sum = 0.0;
    std::size_t count = 0;
    for (const double v : all) {
      if (std::isfinite(v)) {
        sum += v;
        ++count;
      }
    }
    ASSERT_GT(count, 0U);
    const double mean = f.attrDouble(bestPath, "mean_over_heads");
    EXPECT_NEAR(mean, sum / static_cast<double>(count), 1e-6);
    EXPECT_EQ(f.attrInt(bestPath, "mean_over_heads_count"), static_cast<std::int64_t>(count));
    const double lo = f.attrDouble(bestPath, "mean_over_heads_lo");
    const double hi = f.attrDouble(bestPath, "mean_over_heads_hi");
    EXPECT_LE(lo, mean + 1e-9);
    EXPECT_GE(hi, mean - 1e-9);
    const std::string meanSentence =
        "each teacher head's closest head of student kd differs by a Jensen-Shannon divergence of " + f3(mean) +
        " (95% CI " + f3(lo) + " to " + f3(hi) + ", percentile bootstrap over the kept eval examples, B = " +
        std::to_string(f.attrInt(kAnalysis + "kd/head_js_best_divergence_lo", "resamples")) +
        ", the matches fixed) nats on average over " + std::to_string(count) + " mapped teacher heads";
    EXPECT_TRUE(holds(where->findings, meanSentence)) << meanSentence << "\nfindings:\n" << lines(where->findings);
  }
  // Divergence: the teacher head kd matches least, with its bootstrap interval over the kept
  // examples (analysis "attention"), the largest entry of head_js_best_divergence.
  ASSERT_TRUE(f.isDataset(kAnalysis + "kd/head_js_best_divergence_lo"));
  const auto js = floats(f, kAnalysis + "kd/head_js_best_divergence");
  const auto jsLo = floats(f, kAnalysis + "kd/head_js_best_divergence_lo");
  const auto jsHi = floats(f, kAnalysis + "kd/head_js_best_divergence_hi");
  const auto jsShape = f.shape(kAnalysis + "kd/head_js_best_divergence");
  const auto jsTeacherLayer = f.readInt64(kAnalysis + "kd/head_js_teacher_layer");
  const std::int64_t jsB = f.attrInt(kAnalysis + "kd/head_js_best_divergence_lo", "resamples");
  ASSERT_EQ(jsShape.size(), 2U);
  std::size_t worst = js.size();
  for (std::size_t k = 0; k < js.size(); ++k) {
    if (std::isfinite(js[k]) && (worst == js.size() || js[k] > js[worst])) {
      worst = k;
    }
  }
  ASSERT_LT(worst, js.size());
  const std::size_t wl = worst / jsShape[1];
  const std::size_t wh = worst % jsShape[1];
  const std::string jsSentence =
      "the teacher head student kd matches least is L" + std::to_string(jsTeacherLayer[wl] + 1) + "H" +
      std::to_string(wh + 1) + " (against student layer " + std::to_string(wl + 1) +
      "): Jensen-Shannon divergence " + f3(js[worst]) + " (95% CI " + f3(jsLo[worst]) + " to " + f3(jsHi[worst]) +
      ", percentile bootstrap over the kept eval examples, B = " + std::to_string(jsB) + ", the match fixed) nats";
  EXPECT_TRUE(holds(where->findings, jsSentence)) << jsSentence << "\nfindings:\n" << lines(where->findings);
  EXPECT_LE(jsLo[worst], js[worst] + 1e-6);
  EXPECT_GE(jsHi[worst], js[worst] - 1e-6);

  // What was said before the intervals existed is gone.
  for (const auto& text : where->notes) {
    EXPECT_EQ(text.find("not implemented"), std::string::npos) << text;
  }
  for (const auto& text : where->findings) {
    EXPECT_EQ(text.find("no interval: one ablation pass"), std::string::npos) << text;
  }
}

TEST(ReportWhere, AnAblationIntervalHoldingZeroIsNoDetectableDifference) {
  const H5File original(analysedRun().string(), H5File::Mode::ReadOnly);
  const std::size_t n = original.readInt64("/tasks/polarity/eval/labels").size();
  // Head 1 lowers accuracy detectably; head 2's interval holds 0.
  {
    const fs::path copy =
        withAblation("report_where_one", {0.05F, -0.0125F}, {0.02F, -0.04F}, {0.08F, 0.01F});
    const Report rep = buildReport(copy.string());
    const ReportSection* where = section(rep, kWhere);
    ASSERT_NE(where, nullptr);
    const AblationNumbers a = readAblation(H5File(copy.string(), H5File::Mode::ReadOnly));
    const auto expected = ablationSentences(a, n);
    EXPECT_EQ(expected[0].rfind("ablating head L1H1 of student kd alone lowers", 0), 0U) << expected[0];
    EXPECT_NE(expected[1].find("no detectable difference for the other 1"), std::string::npos) << expected[1];
    for (const std::string& e : expected) {
      EXPECT_TRUE(holds(where->findings, e)) << e << "\nfindings:\n" << lines(where->findings);
    }
    // kdscope info marks the head whose interval holds 0, and only it.
    const auto [status, output] =
        kdscope::test::runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + copy.string() + "'");
    ASSERT_EQ(status, 0) << output;
    EXPECT_NE(output.find("h0 +0.0500 [+0.0200, +0.0800]; h1 -0.0125 [-0.0400, +0.0100] n.d.\n"), std::string::npos)
        << output;
  }
  // Every interval holds 0: the most hurtful head is "no detectable difference", and none counts.
  {
    const fs::path copy = withAblation("report_where_none", {0.01F, 0.0F}, {-0.01F, -0.02F}, {0.03F, 0.02F});
    const Report rep = buildReport(copy.string());
    const ReportSection* where = section(rep, kWhere);
    ASSERT_NE(where, nullptr);
    const AblationNumbers a = readAblation(H5File(copy.string(), H5File::Mode::ReadOnly));
    const auto expected = ablationSentences(a, n);
    EXPECT_EQ(expected[0].rfind("no detectable difference when head L1H1", 0), 0U) << expected[0];
    EXPECT_EQ(expected[1].rfind("none of the 2 heads", 0), 0U) << expected[1];
    for (const std::string& e : expected) {
      EXPECT_TRUE(holds(where->findings, e)) << e << "\nfindings:\n" << lines(where->findings);
    }
  }
  EXPECT_EQ(report::headLabel(0, 1), "L1H2");
  EXPECT_EQ(report::headLabel(2, 0), "L3H1");
}

namespace {

/// A finding's comparison with its runner-up as the analysis recorded it (attributes of the
/// dataset; docs/run-format.md, "Against the runner-up"), read with H5File.
struct RunnerUpAttrs {
  std::int64_t first = -1;
  std::int64_t second = -1;
  double d = 0.0;
  double lo = 0.0;
  double hi = 0.0;
  std::int64_t resamples = 0;
};

RunnerUpAttrs readRunnerUp(const H5File& f, const std::string& dataset) {
  RunnerUpAttrs r;
  EXPECT_TRUE(f.hasAttr(dataset, "runner_up_index")) << dataset;
  r.first = f.attrInt(dataset, "extreme_index");
  r.second = f.attrInt(dataset, "runner_up_index");
  r.d = f.attrDouble(dataset, "runner_up_difference");
  r.lo = f.attrDouble(dataset, "runner_up_difference_lo");
  r.hi = f.attrDouble(dataset, "runner_up_difference_hi");
  r.resamples = f.attrInt(dataset, "runner_up_resamples");
  return r;
}

void setRunnerUp(H5File& f, const std::string& dataset, const RunnerUpAttrs& r) {
  f.setAttr(dataset, "extreme_index", r.first);
  f.setAttr(dataset, "runner_up_index", r.second);
  f.setAttr(dataset, "runner_up_difference", r.d);
  f.setAttr(dataset, "runner_up_difference_lo", r.lo);
  f.setAttr(dataset, "runner_up_difference_hi", r.hi);
  f.setAttr(dataset, "runner_up_resamples", r.resamples);
}

/// The sentence docs/report.md gives for a finding against its runner-up: detectable when the
/// interval lies above 0, else "no detectable difference" (`scale` 100 writes points).
std::string expectedRunnerUp(const RunnerUpAttrs& r, const std::string& subject, const std::string& comparative,
                             const std::string& runnerUp, std::size_t examples, const std::string& unit = "",
                             double scale = 1.0, const std::string& basis = "") {
  const int decimals = scale == 1.0 ? 3 : 1;
  const std::string b = !basis.empty() ? basis
                                       : "paired bootstrap over " + std::to_string(examples) +
                                             " eval examples, the same B = " + std::to_string(r.resamples) +
                                             " resamples";
  const std::string value = fixed(scale * r.d, decimals) + unit + " (95% CI " + fixed(scale * r.lo, decimals) +
                            " to " + fixed(scale * r.hi, decimals) + ", " + b + ")";
  if (r.lo > 0.0) {
    return subject + " is " + comparative + " than the runner-up, " + runnerUp + ", by " + value;
  }
  return subject + ": no detectable difference from " + runnerUp + ", the runner-up (difference " + value + ")";
}

} // namespace

// Each finding chosen by a point estimate is tested against its runner-up from the same
// resamples (docs/statistics.md, "Against the runner-up"): kd's two heads give the most
// important head, the most hurtful ablation (accuracy and cross-entropy) and, against the
// teacher's two heads of the mapped layer, the worst-matched head each a comparison, read
// here from the file and written as the report must write it.
TEST(ReportWhere, RunnerUpSentencesCarryTheFilesComparisons) {
  const fs::path& path = analysedRun();
  const Report rep = buildReport(path.string());
  const ReportSection* where = section(rep, kWhere);
  ASSERT_NE(where, nullptr);
  const H5File f(path.string(), H5File::Mode::ReadOnly);
  const std::size_t n = f.readInt64("/tasks/polarity/eval/labels").size();
  const auto check = [&](const std::string& sentence) {
    EXPECT_TRUE(holds(where->findings, sentence)) << sentence << "\nfindings:\n" << lines(where->findings);
  };
  const auto head = [](std::int64_t c) { return "L1H" + std::to_string(c + 1); }; // kd: one layer

  // Importance: the two heads, the analysis's top the larger in the file.
  {
    const auto importance = floats(f, kAnalysis + "kd/head_importance");
    const RunnerUpAttrs r = readRunnerUp(f, kAnalysis + "kd/head_importance");
    ASSERT_EQ(importance.size(), 2U);
    EXPECT_EQ(r.first + r.second, 1);
    EXPECT_GE(importance[r.first], importance[r.second]);
    // The estimate is the difference of the two normalised importances (float32 in the file).
    EXPECT_NEAR(r.d, importance[r.first] - importance[r.second], 1e-5);
    EXPECT_LE(r.lo, r.d + 1e-12);
    EXPECT_GE(r.hi, r.d - 1e-12);
    EXPECT_EQ(r.resamples, f.attrInt(kAnalysis + "kd/head_importance_lo", "resamples"));
    check(expectedRunnerUp(r, "the most important head of student kd (" + head(r.first) + ")", "more important",
                           head(r.second) + " (importance " + f3(importance[r.second]) + ")", n));
  }
  // Ablation: accuracy drop (points) and loss increase (nats), paired over examples.
  {
    const auto drop = floats(f, kAnalysis + "kd/head_ablation_accuracy_drop");
    const RunnerUpAttrs r = readRunnerUp(f, kAnalysis + "kd/head_ablation_accuracy_drop");
    EXPECT_GE(drop[r.first], drop[r.second]);
    EXPECT_NEAR(r.d, drop[r.first] - drop[r.second], 1e-6);
    check(expectedRunnerUp(r, "the head whose ablation alone lowers the accuracy of student kd on polarity most (" +
                                  head(r.first) + ")",
                           "more hurtful", head(r.second) + " (drop " + pts(drop[r.second]) + " points)", n, " points",
                           100.0));
    const auto rise = floats(f, kAnalysis + "kd/head_ablation_loss_increase");
    const RunnerUpAttrs l = readRunnerUp(f, kAnalysis + "kd/head_ablation_loss_increase");
    EXPECT_GE(rise[l.first], rise[l.second]);
    EXPECT_NEAR(l.d, rise[l.first] - rise[l.second], 1e-5);
    check(expectedRunnerUp(
        l, "the head whose ablation alone raises the mean cross-entropy of student kd on polarity most (" +
               head(l.first) + ")",
        "more hurtful", head(l.second) + " (rise " + f3(rise[l.second]) + " nats)", n, " nats"));
  }
  // Divergence: [student layers, teacher heads] cells; the largest best-match divergence
  // against the next.
  {
    const std::string best = kAnalysis + "kd/head_js_best_divergence";
    const auto js = floats(f, best);
    const auto shape = f.shape(best);
    const auto teacherLayer = f.readInt64(kAnalysis + "kd/head_js_teacher_layer");
    const RunnerUpAttrs r = readRunnerUp(f, best);
    EXPECT_GE(js[r.first], js[r.second]);
    EXPECT_NEAR(r.d, js[r.first] - js[r.second], 1e-5);
    const auto name = [&](std::int64_t c, const std::string& extra) {
      const auto l = static_cast<std::size_t>(c) / shape[1];
      return "L" + std::to_string(teacherLayer[l] + 1) + "H" + std::to_string(static_cast<std::size_t>(c) % shape[1] + 1) +
             " (" + extra + "against student layer " + std::to_string(l + 1) + ")";
    };
    check(expectedRunnerUp(r, "the teacher head student kd matches least, " + name(r.first, ""),
                           "matched less well", name(r.second, "divergence " + f3(js[r.second]) + " nats, "), n, " nats",
                           1.0,
                           "paired percentile bootstrap over the kept eval examples, the same B = " +
                               std::to_string(r.resamples) + " resamples, the matches fixed"));
  }
}

// Both verdicts, and a file analysed before the comparison was recorded: copies of the run
// whose kd CKA at matched depth is given three pairs (so that there is a runner-up) and whose
// comparisons are replaced.
TEST(ReportWhere, RunnerUpVerdictsBothWaysAndOlderFilesSayNotTested) {
  const H5File original(analysedRun().string(), H5File::Mode::ReadOnly);
  const std::size_t n = original.readInt64("/tasks/polarity/eval/labels").size();
  const std::string examples = std::to_string(n) + " eval examples";
  const std::string cka = kAnalysis + "kd/cka_matched";
  const std::string importance = kAnalysis + "kd/head_importance";
  const auto importanceValues = floats(original, importance);
  const RunnerUpAttrs recorded = readRunnerUp(original, importance);
  // variant: 0 detectable, 1 holding 0, 2 no comparison recorded.
  for (int variant = 0; variant < 3; ++variant) {
    const fs::path dir = kdscope::test::freshTempDir("report_where_runner_up_" + std::to_string(variant));
    const fs::path copy = dir / "run.h5";
    fs::copy_file(analysedRun(), copy);
    {
      H5File f(copy.string(), H5File::Mode::ReadWrite);
      // Three pairs: the embeddings and student layers 1 and 2 (to teacher layers 1 and 2).
      for (const char* suffix : {"", "_lo", "_hi", "_teacher_layer"}) {
        f.remove(cka + suffix);
      }
      f.writeFloat(cka, {3}, std::vector<float>{0.95F, 0.6F, 0.7F}, false);
      f.writeFloat(cka + "_lo", {3}, std::vector<float>{0.9F, 0.5F, 0.6F}, false);
      f.writeFloat(cka + "_hi", {3}, std::vector<float>{0.99F, 0.7F, 0.8F}, false);
      f.writeInt64(cka + "_teacher_layer", {3}, std::vector<std::int64_t>{0, 1, 2}, false);
      f.setAttr(cka, "resamples", std::int64_t{500});
      f.setAttr(cka, "map", std::string("uniform"));
      if (variant < 2) {
        setRunnerUp(f, cka, {1, 2, 0.1, variant == 0 ? 0.04 : -0.02, 0.16, 500});
        RunnerUpAttrs r = recorded;
        r.lo = variant == 0 ? 0.01 : -0.01;
        r.hi = 0.3;
        setRunnerUp(f, importance, r);
      } else {
        // The importance as an older file has it: the dataset without the comparison.
        f.remove(importance);
        f.writeFloat(importance, {1, 2}, std::vector<float>(importanceValues.begin(), importanceValues.end()), false);
      }
    }
    const Report rep = buildReport(copy.string());
    const ReportSection* where = section(rep, kWhere);
    ASSERT_NE(where, nullptr);
    const std::string lowest = "the lowest CKA at matched depth of student kd (layer 1)";
    const std::string top = "the most important head of student kd (L1H" + std::to_string(recorded.first + 1) + ")";
    const std::string runner = "L1H" + std::to_string(recorded.second + 1) + " (importance " +
                               f3(importanceValues[static_cast<std::size_t>(recorded.second)]) + ")";
    std::vector<std::string> expected;
    if (variant == 0) {
      expected = {lowest + " is lower than the runner-up, layer 2 (CKA 0.700), by 0.100 (95% CI 0.040 to 0.160, "
                           "paired bootstrap over " + examples + ", the same B = 500 resamples)",
                  top + " is more important than the runner-up, " + runner + ", by " + f3(recorded.d) +
                      " (95% CI 0.010 to 0.300, paired bootstrap over " + examples + ", the same B = " +
                      std::to_string(recorded.resamples) + " resamples)"};
    } else if (variant == 1) {
      expected = {lowest + ": no detectable difference from layer 2 (CKA 0.700), the runner-up (difference 0.100 "
                           "(95% CI -0.020 to 0.160, paired bootstrap over " + examples + ", the same B = 500 resamples))",
                  top + ": no detectable difference from " + runner + ", the runner-up (difference " + f3(recorded.d) +
                      " (95% CI -0.010 to 0.300, paired bootstrap over " + examples + ", the same B = " +
                      std::to_string(recorded.resamples) + " resamples))"};
    } else {
      const std::string why = " is not tested against the runner-up: analysed before the comparison was recorded "
                              "(run 'kdscope analyze' again for it)";
      expected = {lowest + why, "the most important head of student kd" + why};
    }
    for (const std::string& e : expected) {
      EXPECT_TRUE(holds(where->findings, e)) << e << "\nfindings:\n" << lines(where->findings);
    }
    // The CKA finding itself names the lowest of the two encoder pairs.
    EXPECT_TRUE(holds(where->findings, "the lowest CKA at matched depth of student kd: its layer 1 matches the "
                                       "teacher's layer 1 with linear CKA 0.600 (95% CI 0.500 to 0.700, bootstrap over " +
                                           examples + ", B = 500), the lowest of its 2 matched layers"))
        << lines(where->findings);
  }
}
