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
    const std::string best = kAnalysis + "kd/head_js_best_divergence";
    const auto all = floats(f, best);
    double sum = 0.0;
    std::size_t count = 0;
    for (const double v : all) {
      if (std::isfinite(v)) {
        sum += v;
        ++count;
      }
    }
    ASSERT_GT(count, 0U);
    const double mean = f.attrDouble(best, "mean_over_heads");
    EXPECT_NEAR(mean, sum / static_cast<double>(count), 1e-6);
    EXPECT_EQ(f.attrInt(best, "mean_over_heads_count"), static_cast<std::int64_t>(count));
    const double lo = f.attrDouble(best, "mean_over_heads_lo");
    const double hi = f.attrDouble(best, "mean_over_heads_hi");
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
