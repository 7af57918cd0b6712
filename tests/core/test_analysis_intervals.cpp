// The intervals, paired tests and loss pattern of the "task" analysis
// (core/analysis/passes/intervals_pass.cpp): on a constructed run whose every count and test
// is worked out by hand below, and on a small real run recomputed from its stored eval
// logits (by the stats library through other routes, and by the NumPy oracle
// tests/python/check_intervals.py on the same resample indices). Also `kdscope info`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/analysis/analysis_results.h"
#include "core/analysis/analyze_run.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/loss_pattern.h"
#include "core/analysis/metrics.h"
#include "core/analysis/stats.h"
#include "core/analysis/task_intervals.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/engine/run_job.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"
#include "tests/core/test_support.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with NumPy and h5py (tests/CMakeLists.txt defines it)"
#endif
#ifndef KDSCOPE_EXECUTABLE
#error "KDSCOPE_EXECUTABLE must name the kdscope executable (tests/CMakeLists.txt defines it)"
#endif

using namespace kdscope::core;
namespace an = kdscope::core::analysis;
namespace fs = std::filesystem;

namespace {

using kdscope::test::runCommand;

// The constructed run: task "t", 2 classes, 12 eval examples, labels 0 1 0 1 ... .
//   teacher: right on 0..10 (margin m_i on the label: 0.1 0.2 0.3 0.4 0.5 for 0..4, then
//            1 2 3 4 5 6 for 5..10), wrong on 11 (margin 0.6 on the other class). So its
//            confidence sigmoid(m) on 0..4 is below that of every other example.
//   student a: wrong on 0..4, right on 5..11   -> lost {0..4}, gained {11}
//   student b: wrong on 0, 1, 11, right on 2..10 -> lost {0, 1}
// McNemar (b = only the first right, c = only the second right, p = 2 P(X <= min) with
// X ~ Bin(b + c, 1/2)):
//   a vs teacher: b = 1 ({11}), c = 5 ({0..4}): p = 2 (1 + 6) / 64 = 0.21875; diff -4/12
//   b vs teacher: b = 0, c = 2 ({0, 1}):         p = 2 / 4 = 0.5;              diff -2/12
//   a vs b:       b = 1 ({11}), c = 3 ({2,3,4}): p = 2 (1 + 4) / 16 = 0.625;   diff -2/12
// Input lengths (tokens after [CLS]): lost {3, 3, 4, 5, 6}, rest {2, 3, 4, 4, 5, 6, 7}.
// Loss pattern of a (n1 = 5 lost, n0 = 7 rest):
//   teacher confidence: every lost value below every other: U = 0, r = -1, no ties, so the
//     exact p = 2 P(U <= 0) = 2 / C(12, 5) = 2 / 792;
//   teacher entropy (2 classes: falls as the confidence rises): U = 35, r = +1, p = 2 / 792;
//   input length: U = 1.5 + 1.5 + 3 + 4.5 + 5.5 = 16 (pairs above + half the ties), r =
//     32 / 35 - 1 = -3 / 35; ties 3 x3, 4 x3, 5 x2, 6 x2: sum(t^3 - t) = 60, variance
//     35 / 12 (13 - 60 / 132), z = (|16 - 17.5| - 0.5) / sd, p = erfc(z / sqrt 2);
//   gold class: lost 3 (class 0), 2 (class 1); rest 3, 4. Chi-square of [[3, 3], [2, 4]] =
//     12 (3 * 4 - 3 * 2)^2 / (6 * 6 * 5 * 7) = 12 / 35, df 1, p = erfc(sqrt(6 / 35)),
//     V = sqrt(1 / 35). Class 0 against class 1: odds ratio 3 * 4 / (3 * 2) = 2, and every
//     table with these margins is at most as likely as the observed (350 / 924 is the
//     largest hypergeometric term), so Fisher's p = 1.
// Loss pattern of b (n1 = 2): confidence U = 0, exact p = 2 / C(12, 2) = 2 / 66.
constexpr std::size_t kN = 12;

void writeConstructedRun(const std::string& path) {
  TaskData task;
  task.name = "t";
  task.kind = TaskKind::Text;
  task.classNames = {"neg", "pos"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "w3", "w4", "w5", "w6", "w7", "w8", "w9"};
  task.seqLen = 8;
  const int lengths[kN] = {3, 3, 4, 5, 6, 2, 3, 4, 4, 5, 6, 7};
  for (std::size_t i = 0; i < kN; ++i) {
    task.eval.labels.push_back(static_cast<std::int64_t>(i % 2));
    for (int p = 0; p < 8; ++p) {
      task.eval.tokens.push_back(p == 0 ? 2 : (p <= lengths[i] ? 3 + (p + static_cast<int>(i)) % 7 : 0));
    }
    task.eval.texts.push_back("example " + std::to_string(i));
  }
  const double margins[kN] = {0.1, 0.2, 0.3, 0.4, 0.5, 1, 2, 3, 4, 5, 6, 0.6};
  std::vector<float> teacher;
  std::vector<float> a;
  std::vector<float> b;
  const auto push = [](std::vector<float>& logits, std::int64_t cls, double margin) {
    logits.push_back(cls == 0 ? static_cast<float>(margin) : 0.0F);
    logits.push_back(cls == 1 ? static_cast<float>(margin) : 0.0F);
  };
  for (std::size_t i = 0; i < kN; ++i) {
    const std::int64_t y = static_cast<std::int64_t>(i % 2);
    push(teacher, i == 11 ? 1 - y : y, margins[i]);
    push(a, i <= 4 ? 1 - y : y, 1.0);
    push(b, i <= 1 || i == 11 ? 1 - y : y, 1.0);
  }
  RunWriter writer(path, R"({"name":"constructed"})");
  writer.writeTask(task);
  const std::string ce = R"({"terms":[{"name":"ce","weight":1.0,"label_smoothing":0.0}]})";
  const std::string arch = R"({"type":"mlp","hidden":[4],"dropout":0.0})";
  const struct {
    const char* name;
    const char* role;
    const std::vector<float>* logits;
  } models[] = {{"teacher", "teacher", &teacher}, {"a", "student", &a}, {"b", "student", &b}};
  for (const auto& m : models) {
    writer.beginModel("t", m.name, m.role, arch, ce, 10);
    RunWriter::EvalShape shape;
    shape.examples = kN;
    shape.classes = 2;
    writer.createEvalOutputs("t", m.name, shape, "mean");
    writer.writeEvalLogits("t", m.name, 0, kN, m.logits->data());
  }
  writer.setStatus("complete", "");
}

AnalyzeOptions taskOnly() {
  AnalyzeOptions options;
  options.only = {"task"};
  return options;
}

std::string constructedRun(const std::string& name) {
  const fs::path dir = kdscope::test::freshTempDir("intervals_" + name);
  const std::string path = (dir / "run.h5").string();
  writeConstructedRun(path);
  const AnalyzeResult result = analyzeRun(path, taskOnly(), CancelToken(), nullptr);
  EXPECT_EQ(result.status, AnalyzeStatus::Succeeded) << result.message;
  return path;
}

const an::Interval& need(const an::Interval* interval, const char* what) {
  static const an::Interval none{std::nan(""), std::nan(""), std::nan(""), 0, "", 0.95, 0};
  EXPECT_NE(interval, nullptr) << what;
  return interval != nullptr ? *interval : none;
}

} // namespace

TEST(AnalysisIntervals, HandWorkedPairedTestsOnAConstructedRun) {
  const std::string path = constructedRun("paired");
  const RunReader reader(path);
  const AnalysisResults results(reader);
  const auto pa = results.pairedTests("t", "a");
  ASSERT_EQ(pa.size(), 2U); // the teacher first, then b
  EXPECT_EQ(pa[0].other, "teacher");
  EXPECT_EQ(pa[0].otherRole, "teacher");
  EXPECT_EQ(pa[0].comparison.onlyFirst, 1U);
  EXPECT_EQ(pa[0].comparison.onlySecond, 5U);
  EXPECT_EQ(pa[0].comparison.bothRight, 6U);
  EXPECT_EQ(pa[0].comparison.bothWrong, 0U);
  EXPECT_NEAR(pa[0].comparison.mcnemarP, 14.0 / 64.0, 1e-14);
  EXPECT_NEAR(pa[0].comparison.accuracyDifference.difference.estimate, -4.0 / 12.0, 1e-15);
  EXPECT_EQ(pa[1].other, "b");
  EXPECT_EQ(pa[1].otherRole, "student");
  EXPECT_EQ(pa[1].comparison.onlyFirst, 1U);
  EXPECT_EQ(pa[1].comparison.onlySecond, 3U);
  EXPECT_NEAR(pa[1].comparison.mcnemarP, 10.0 / 16.0, 1e-14);
  EXPECT_NEAR(pa[1].comparison.accuracyDifference.difference.estimate, -2.0 / 12.0, 1e-15);
  const auto pb = results.pairedTests("t", "b");
  ASSERT_EQ(pb.size(), 2U);
  EXPECT_EQ(pb[0].comparison.onlyFirst, 0U);
  EXPECT_EQ(pb[0].comparison.onlySecond, 2U);
  EXPECT_NEAR(pb[0].comparison.mcnemarP, 0.5, 1e-14);
  // b against a is a against b mirrored: the same resamples, so the interval is negated.
  EXPECT_EQ(pb[1].other, "a");
  EXPECT_EQ(pb[1].comparison.onlyFirst, 3U);
  EXPECT_EQ(pb[1].comparison.onlySecond, 1U);
  EXPECT_NEAR(pb[1].comparison.accuracyDifference.difference.lo, -pa[1].comparison.accuracyDifference.difference.hi,
              1e-15);
  EXPECT_NEAR(pb[1].comparison.accuracyDifference.difference.hi, -pa[1].comparison.accuracyDifference.difference.lo,
              1e-15);
  EXPECT_EQ(pb[1].comparison.accuracyDifference.pValue, pa[1].comparison.accuracyDifference.pValue);
  // 4 discordant examples of 12: neither test can tell a from b.
  EXPECT_TRUE(pa[1].comparison.accuracyDifference.difference.holdsZero());
  EXPECT_EQ(pa[0].bootstrap.resamples, 2000);
  EXPECT_EQ(pa[0].bootstrap.seed, 14U);
  EXPECT_EQ(pa[0].bootstrap.examples, kN);
}

TEST(AnalysisIntervals, HandWorkedLossPatternOnAConstructedRun) {
  const std::string path = constructedRun("loss");
  const RunReader reader(path);
  const AnalysisResults results(reader);
  const auto lp = results.lossPattern("t", "a");
  ASSERT_TRUE(lp.has_value());
  EXPECT_EQ(lp->examples, kN);
  EXPECT_EQ(lp->lost, 5U);
  ASSERT_EQ(lp->factors.size(), 3U);
  EXPECT_EQ(lp->factors[0].name, an::factor::kTeacherConfidence);
  EXPECT_EQ(lp->factors[1].name, an::factor::kTeacherEntropy);
  EXPECT_EQ(lp->factors[2].name, an::factor::kInputLength);
  const auto& confidence = lp->factors[0].test;
  EXPECT_EQ(confidence.u, 0.0);
  EXPECT_EQ(confidence.rankBiserial.estimate, -1.0);
  EXPECT_TRUE(confidence.exact);
  EXPECT_NEAR(confidence.pValue, 2.0 / 792.0, 1e-14);
  const auto& entropy = lp->factors[1].test;
  EXPECT_EQ(entropy.u, 35.0);
  EXPECT_EQ(entropy.rankBiserial.estimate, 1.0);
  EXPECT_NEAR(entropy.pValue, 2.0 / 792.0, 1e-14);
  const auto& length = lp->factors[2].test;
  EXPECT_EQ(length.u, 16.0);
  EXPECT_NEAR(length.rankBiserial.estimate, -3.0 / 35.0, 1e-15);
  EXPECT_FALSE(length.exact);
  const double z = 1.0 / std::sqrt(35.0 / 12.0 * (13.0 - 60.0 / 132.0));
  EXPECT_NEAR(length.pValue, std::erfc(z / std::sqrt(2.0)), 1e-14);
  EXPECT_EQ(lp->factors[2].medianLost, 4.0);
  EXPECT_EQ(lp->factors[2].medianRest, 4.0);
  EXPECT_NEAR(lp->factors[2].meanLost, 21.0 / 5.0, 1e-15);
  EXPECT_NEAR(lp->factors[2].meanRest, 31.0 / 7.0, 1e-15);
  // A bounded rank-biserial interval for the factor with overlap.
  EXPECT_LE(-1.0, length.rankBiserial.lo);
  EXPECT_LT(length.rankBiserial.lo, length.rankBiserial.hi);
  EXPECT_LE(length.rankBiserial.hi, 1.0);

  const an::ClassFactor& c = lp->goldClass;
  EXPECT_EQ(c.lost, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(c.rest, (std::vector<std::uint64_t>{3, 4}));
  EXPECT_NEAR(c.chiSquare.chiSquare, 12.0 / 35.0, 1e-14);
  EXPECT_EQ(c.chiSquare.df, 1);
  EXPECT_NEAR(c.chiSquare.pValue, std::erfc(std::sqrt(6.0 / 35.0)), 1e-12);
  EXPECT_NEAR(c.cramersV.estimate, std::sqrt(1.0 / 35.0), 1e-14);
  ASSERT_EQ(c.fisher.size(), 2U);
  EXPECT_NEAR(c.fisher[0].pValue, 1.0, 1e-7); // float32 in the file
  EXPECT_NEAR(c.oddsRatio[0].estimate, 2.0, 1e-7);
  EXPECT_NEAR(c.oddsRatio[1].estimate, 0.5, 1e-7);
  // Woolf: exp(ln 2 -+ 1.959964 sqrt(1/3 + 1/3 + 1/2 + 1/4)).
  const double half = 1.959963984540054 * std::sqrt(1.0 / 3 + 1.0 / 3 + 0.5 + 0.25);
  EXPECT_NEAR(c.oddsRatio[0].lo, std::exp(std::log(2.0) - half), 1e-6);
  EXPECT_NEAR(c.oddsRatio[0].hi, std::exp(std::log(2.0) + half), 1e-5);

  // The teacher's confidence separates the lost examples completely, so the logistic
  // regression has no finite maximum: it says so (NaN values), with and without the class.
  // With 2 classes the entropy is a function of the confidence: not in the regression.
  const an::LossLogistic& fit = lp->logistic;
  ASSERT_EQ(fit.terms.size(), 3U);
  EXPECT_EQ(fit.terms[0].name, "intercept");
  EXPECT_EQ(fit.terms[1].name, an::factor::kTeacherConfidence);
  EXPECT_EQ(fit.terms[2].name, an::factor::kInputLength);
  EXPECT_NE(fit.note.find("teacher_entropy left out"), std::string::npos) << fit.note;
  EXPECT_FALSE(fit.converged);
  EXPECT_FALSE(fit.includesClass);
  EXPECT_TRUE(std::isnan(fit.terms[1].coefficient.value.estimate));
  EXPECT_NE(fit.note.find("gold class left out"), std::string::npos) << fit.note;

  const auto lb = results.lossPattern("t", "b");
  ASSERT_TRUE(lb.has_value());
  EXPECT_EQ(lb->lost, 2U);
  EXPECT_EQ(lb->factors[0].test.u, 0.0);
  EXPECT_NEAR(lb->factors[0].test.pValue, 2.0 / 66.0, 1e-14);
}

TEST(AnalysisIntervals, IntervalsHoldTheEstimatesAndReanalysisGivesTheSameNumbers) {
  const std::string path = constructedRun("determinism");
  const auto read = [&path] {
    const RunReader reader(path);
    return AnalysisResults(reader).headlines();
  };
  const auto first = read();
  ASSERT_EQ(first.size(), 1U);
  ASSERT_TRUE(first[0].teacherIntervals.has_value());
  const an::Interval& teacherAccuracy = need(first[0].teacherIntervals->find(an::metric::kAccuracy), "teacher accuracy");
  EXPECT_NEAR(teacherAccuracy.estimate, 11.0 / 12.0, 1e-15);
  EXPECT_LE(teacherAccuracy.lo, teacherAccuracy.estimate);
  EXPECT_LE(teacherAccuracy.estimate, teacherAccuracy.hi);
  EXPECT_EQ(teacherAccuracy.hi, 1.0); // a resample can hold no example the teacher gets wrong
  ASSERT_EQ(first[0].students.size(), 2U);
  const StudentHeadline& a = first[0].students[0];
  ASSERT_TRUE(a.vsTeacher.has_value());
  ASSERT_EQ(a.vsStudents.size(), 1U);
  for (const char* m : {an::metric::kAccuracy, an::metric::kTeacherAccuracy, an::metric::kGap,
                        an::metric::kRetainedFraction, an::metric::kAgreement, an::metric::kMeanKl}) {
    const an::Interval& i = need(a.interval(m), m);
    EXPECT_LE(i.lo, i.estimate) << m;
    EXPECT_LE(i.estimate, i.hi) << m;
    EXPECT_LT(i.lo, i.hi) << m;
  }
  EXPECT_NEAR(need(a.interval(an::metric::kAccuracy), "accuracy").estimate, a.accuracy, 1e-15);
  EXPECT_NEAR(need(a.interval(an::metric::kGap), "gap").estimate, a.gap, 1e-14);
  EXPECT_NEAR(need(a.interval(an::metric::kRetainedFraction), "retained").estimate, a.retainedFraction, 1e-14);
  EXPECT_NEAR(need(a.interval(an::metric::kAgreement), "agreement").estimate, a.agreement, 1e-15);
  EXPECT_NEAR(need(a.interval(an::metric::kMeanKl), "kl").estimate, a.meanKl, 1e-12);
  EXPECT_NEAR(need(a.interval(an::metric::kEce), "ece").estimate, a.ece, 1e-12);
  EXPECT_NEAR(need(a.interval(an::metric::kTeacherEce), "teacher ece").estimate, a.teacherEce, 1e-12);

  // A full analysis again: the same bits.
  ASSERT_EQ(analyzeRun(path, AnalyzeOptions{}, CancelToken(), nullptr).status, AnalyzeStatus::Succeeded);
  const auto second = read();
  const StudentHeadline& a2 = second[0].students[0];
  for (std::size_t k = 0; k < a.intervals->metrics.size(); ++k) {
    const an::Interval& x = a.intervals->metrics[k].interval;
    const an::Interval& y = a2.intervals->metrics[k].interval;
    EXPECT_EQ(x.lo, y.lo) << a.intervals->metrics[k].name;
    EXPECT_EQ(x.hi, y.hi) << a.intervals->metrics[k].name;
  }
  EXPECT_EQ(a.vsTeacher->comparison.accuracyDifference.pValue, a2.vsTeacher->comparison.accuracyDifference.pValue);
  EXPECT_EQ(a.lossPattern->factors[2].test.rankBiserial.lo, a2.lossPattern->factors[2].test.rankBiserial.lo);

  // Another seed: the same estimates, other draws.
  AnalyzeOptions seeded = taskOnly();
  seeded.bootstrapSeed = 15;
  seeded.bootstrapResamples = 500;
  ASSERT_EQ(analyzeRun(path, seeded, CancelToken(), nullptr).status, AnalyzeStatus::Succeeded);
  const auto third = read();
  const StudentHeadline& a3 = third[0].students[0];
  EXPECT_EQ(a3.intervals->bootstrap.seed, 15U);
  EXPECT_EQ(a3.intervals->bootstrap.resamples, 500);
  bool anyEndMoved = false;
  for (std::size_t k = 0; k < a.intervals->metrics.size(); ++k) {
    EXPECT_EQ(a.intervals->metrics[k].interval.estimate, a3.intervals->metrics[k].interval.estimate);
    anyEndMoved = anyEndMoved || a.intervals->metrics[k].interval.lo != a3.intervals->metrics[k].interval.lo ||
                  a.intervals->metrics[k].interval.hi != a3.intervals->metrics[k].interval.hi;
  }
  EXPECT_TRUE(anyEndMoved);

  // Fewer than 100 resamples is refused before anything is written.
  AnalyzeOptions tooFew = taskOnly();
  tooFew.bootstrapResamples = 50;
  const AnalyzeResult refused = analyzeRun(path, tooFew, CancelToken(), nullptr);
  EXPECT_EQ(refused.status, AnalyzeStatus::BadInput);
  EXPECT_NE(refused.message.find("resamples"), std::string::npos) << refused.message;
}

TEST(AnalysisIntervals, InfoPrintsTheIntervalsTestsAndLossPattern) {
  const std::string path = constructedRun("info");
  const auto [status, output] = runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + path + "'");
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("95% intervals: percentile bootstrap over the 12 eval examples (B = 2000, seed 14)"),
            std::string::npos)
      << output;
  // a - teacher: -4/12 with its paired-bootstrap interval, the hand-worked McNemar p, counts.
  const RunReader reader(path);
  const auto tests = AnalysisResults(reader).pairedTests("t", "a");
  ASSERT_FALSE(tests.empty());
  // Holm over the task's 3 McNemar tests (0.21875, 0.5, 0.625), by hand: 3 x 0.21875 =
  // 0.65625; max(0.65625, 2 x 0.5) = 1; max(1, 0.625) = 1.
  const std::string expected = "a - teacher: " + an::intervalText(tests[0].comparison.accuracyDifference.difference, 4, true) +
                               ", McNemar p = 0.219, Holm p = 0.656 of 3 tests (1 only a, 5 only teacher)";
  EXPECT_NE(output.find(expected), std::string::npos) << expected << "\n" << output;
  EXPECT_NE(output.find("a - b: -0.1667 ["), std::string::npos) << output;
  EXPECT_NE(output.find("McNemar p = 0.625, Holm p = 1 of 3 tests (1 only a, 3 only b)"), std::string::npos) << output;
  EXPECT_NEAR(tests[0].mcnemarHolm.p, 3 * 0.21875, 1e-12);
  EXPECT_EQ(tests[0].mcnemarHolm.family, 3U);
  // Each pair of students once.
  EXPECT_EQ(output.find("b - a:"), std::string::npos) << output;
  EXPECT_NE(output.find(an::kNoDetectableDifference), std::string::npos) << output;
  EXPECT_NE(output.find("loss pattern of a: 5 lost (teacher right, student wrong) against the 7 other eval examples"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("rank-biserial r -1.000 ["), std::string::npos) << output;
  // Holm over a's loss-pattern family: the 3 Mann-Whitney tests, the chi-square and the
  // converged fit's factor slopes; the smallest raw p (2 / 792, confidence and entropy tied)
  // times the family's size.
  const auto lp = AnalysisResults(reader).lossPattern("t", "a");
  ASSERT_TRUE(lp.has_value());
  std::size_t family = 4;
  for (const an::LogisticTerm& t : lp->logistic.terms) {
    family += lp->logistic.converged && t.name != "intercept" && t.name.rfind("class:", 0) != 0 ? 1 : 0;
  }
  EXPECT_EQ(lp->factors[0].holm.family, family);
  EXPECT_NEAR(lp->factors[0].holm.p, static_cast<double>(family) * 2.0 / 792.0, 1e-12);
  const std::string mw = "Mann-Whitney p = 0.003, Holm p = " + an::pValueText(static_cast<double>(family) * 2.0 / 792.0) +
                         " of " + std::to_string(family) + " tests"; // 2 / 792 = 0.00253
  EXPECT_NE(output.find(mw), std::string::npos) << mw << "\n" << output;
  // Each slope of the converged fit, marked "no detectable difference" when its interval holds
  // 0 or its Holm p is not below 0.05 (decided here from the file's numbers).
  // (This file's fit separates, so info says so; a converged fit's slopes are checked the same way.)
  if (!lp->logistic.converged) {
    EXPECT_NE(output.find("logistic regression of lost: did not converge"), std::string::npos) << output;
  }
  for (const an::LogisticTerm& t : lp->logistic.converged ? lp->logistic.terms : std::vector<an::LogisticTerm>{}) {
    if (t.name == "intercept" || t.name.rfind("class:", 0) == 0) {
      continue;
    }
    std::string title = t.name;
    std::replace(title.begin(), title.end(), '_', ' ');
    const bool nd = (t.coefficient.value.lo <= 0.0 && 0.0 <= t.coefficient.value.hi) || !(t.holm.p < 0.05);
    const std::string slope = title + " " + an::intervalText(t.coefficient.value, 2, true) + " " +
                              an::pValuesText(t.coefficient.pValue, t.holm) +
                              (nd ? std::string(", ") + an::kNoDetectableDifference : std::string());
    EXPECT_NE(output.find(slope + (nd ? "" : ";")), std::string::npos) << slope << "\n" << output;
  }
  // The headline table gives each gap its interval beside it (the file's, read here), with
  // "n.d." when it holds 0, and says the table's numbers are point estimates.
  for (const std::string student : {"a", "b"}) {
    const auto intervals = AnalysisResults(reader).intervals("t", student);
    ASSERT_TRUE(intervals.has_value());
    const an::Interval* gap = intervals->find(an::metric::kGap);
    ASSERT_NE(gap, nullptr);
    const std::string cell = "[" + an::numberText(gap->lo, 4) + ", " + an::numberText(gap->hi, 4) + "]" +
                             (gap->lo <= 0.0 && 0.0 <= gap->hi ? " n.d." : "");
    const std::size_t table = output.find("gap 95% CI");
    ASSERT_NE(table, std::string::npos) << output;
    const std::size_t row = output.find("\n  " + student + " ", table);
    ASSERT_NE(row, std::string::npos) << output;
    const std::string line = output.substr(row + 1, output.find('\n', row + 1) - row - 1);
    EXPECT_NE(line.find("  " + cell), std::string::npos) << cell << "\n" << line;
  }
  EXPECT_NE(output.find("point estimates on the eval split; their 95% intervals"), std::string::npos) << output;
}

TEST(AnalysisIntervals, IntervalTextWritesEndsSignsAndPValues) {
  an::Interval i;
  i.estimate = 0.812;
  i.lo = 0.78125;
  i.hi = 0.842;
  EXPECT_EQ(an::intervalText(i, 3), "0.812 [0.781, 0.842]");
  i.estimate = -0.02;
  i.lo = -0.05;
  i.hi = 0.00001;
  EXPECT_EQ(an::intervalText(i, 3, true), "-0.020 [-0.050, 0.000]");
  EXPECT_FALSE(an::detectable(i));
  i.hi = -0.001;
  EXPECT_TRUE(an::detectable(i));
  // With a test beside it, both must agree.
  EXPECT_TRUE(an::detectable(i, 0.01));
  EXPECT_FALSE(an::detectable(i, 0.278));
  EXPECT_EQ(an::numberText(-0.00001, 4), "0.0000");
  EXPECT_EQ(an::numberText(0.25, 2, true), "+0.25");
  EXPECT_EQ(an::numberText(-0.25, 2, true), "-0.25");
  EXPECT_EQ(an::pValueText(0.21875), "0.219");
  EXPECT_EQ(an::pValueText(2.0 / 792.0), "0.003");
  EXPECT_EQ(an::pValueText(3.2e-5), "3.2e-05");
  EXPECT_EQ(an::pValueText(1.0), "1");
  EXPECT_EQ(an::pValueText(std::nan("")), "-");
}

namespace {

/// A polarity corpus laid out like writePolarityCorpus's, but noisy, so that the models err
/// and the students lose examples: 3 to 12 words, every third word a sentiment word drawn from
/// the label's pool with probability 0.7 and from the other pool otherwise (short inputs
/// carry little evidence).
std::string writeNoisyPolarityCorpus(const fs::path& dataDir, int lines) {
  const fs::path dir = dataDir / "python3-pattern/usr/share/doc/python3-pattern/test/corpora";
  fs::create_directories(dir);
  std::ofstream out(dir / "polarity-en-pang&lee2.csv", std::ios::binary);
  std::mt19937 rng(14);
  const std::vector<std::string> good = {"good", "great", "fine", "lovely", "superb"};
  const std::vector<std::string> bad = {"bad", "awful", "dull", "poor", "boring"};
  const std::vector<std::string> filler = {"the", "film", "was", "a", "plot", "and", "acting"};
  for (int i = 0; i < lines; ++i) {
    const bool positive = i % 2 == 0;
    std::string text;
    const int words = 3 + static_cast<int>(rng() % 10);
    for (int w = 0; w < words; ++w) {
      const bool agrees = rng() % 10 < 7;
      const auto& pool = (w % 3 == 1) ? ((positive == agrees) ? good : bad) : filler;
      text += (w ? " " : "") + pool[rng() % pool.size()];
    }
    out << "\"" << (positive ? "1" : "-1") << "\",\"" << text << "\"\n";
  }
  return dataDir.string();
}

/// A small real run: the noisy polarity corpus (800 lines), a transformer teacher and two
/// 1-layer students (KD and CE), analysed ("task" only) by the test.
const fs::path& realRun() {
  static const fs::path run = [] {
    const fs::path dir = kdscope::test::freshTempDir("intervals_real");
    const std::string data = writeNoisyPolarityCorpus(dir / "data", 800);
    JobSpec job = kdscope::test::tinyPolarityJob(data, 3);
    job.analyze = false;
    job.recording.attentionExamples = 0;
    StudentSpec ce = job.students[0];
    ce.name = "ce";
    ce.objective.lambda = 0.0;
    job.students.push_back(ce);
    const auto result = runJob(job, RunOptions{(dir / "run").string()}, CancelToken(), nullptr);
    EXPECT_EQ(result.status, JobStatus::Succeeded) << result.message;
    const fs::path path = dir / "run" / "run.h5";
    const AnalyzeResult analysed = analyzeRun(path.string(), taskOnly(), CancelToken(), nullptr);
    EXPECT_EQ(analysed.status, AnalyzeStatus::Succeeded) << analysed.message;
    return path;
  }();
  return run;
}

/// The rows `indices` of an N x C array.
std::vector<float> gatherRows(const std::vector<float>& values, std::size_t cols, const std::vector<std::uint32_t>& indices) {
  std::vector<float> out;
  out.reserve(indices.size() * cols);
  for (const std::uint32_t i : indices) {
    out.insert(out.end(), values.begin() + static_cast<std::ptrdiff_t>(i * cols),
               values.begin() + static_cast<std::ptrdiff_t>((i + 1) * cols));
  }
  return out;
}

std::vector<std::int64_t> gather(const std::vector<std::int64_t>& values, const std::vector<std::uint32_t>& indices) {
  std::vector<std::int64_t> out;
  for (const std::uint32_t i : indices) {
    out.push_back(values[i]);
  }
  return out;
}

} // namespace

TEST(AnalysisIntervals, RealRunIntervalsMatchARecomputationFromTheStoredLogits) {
  const fs::path& path = realRun();
  const RunReader reader(path.string());
  const H5File& f = reader.file();
  const AnalysisResults results(reader);
  const auto labels = reader.evalLabels("polarity");
  const std::size_t n = labels.size();
  ASSERT_GE(n, 50U);
  const auto teacher = reader.evalLogits("polarity", "teacher");
  const an::BootstrapOptions options; // the analysis's defaults: B = 2000, seed 14
  for (const std::string model : {"teacher", "kd", "ce"}) {
    SCOPED_TRACE(model);
    const auto intervals = results.intervals("polarity", model);
    ASSERT_TRUE(intervals.has_value());
    EXPECT_EQ(intervals->bootstrap.examples, n);
    EXPECT_EQ(intervals->metrics.size(), model == "teacher" ? 2U : 8U);
    const auto logits = reader.evalLogits("polarity", model);
    // The estimates are the task pass's own numbers.
    const std::string g = "/tasks/polarity/analysis/" + model;
    const an::Interval& accuracy = need(intervals->find(an::metric::kAccuracy), "accuracy");
    EXPECT_EQ(accuracy.estimate, f.attrDouble(g, "accuracy"));
    EXPECT_NEAR(need(intervals->find(an::metric::kEce), "ece").estimate, f.attrDouble(g, "ece"), 1e-12);
    // Another route to the same draws: each resample's rows gathered and the metric recomputed
    // by core/analysis/metrics.h on them (accuracy, expectedCalibrationError).
    const auto accuracyOf = [&](const std::vector<std::uint32_t>& rows) {
      return an::accuracy(gatherRows(logits, 2, rows), gather(labels, rows), 2);
    };
    const auto eceOf = [&](const std::vector<std::uint32_t>& rows) {
      return an::expectedCalibrationError(gatherRows(logits, 2, rows), gather(labels, rows), 2);
    };
    const an::Interval acc = an::bootstrapInterval(n, accuracyOf, options);
    EXPECT_NEAR(accuracy.lo, acc.lo, 1e-12);
    EXPECT_NEAR(accuracy.hi, acc.hi, 1e-12);
    const an::Interval ece = an::bootstrapInterval(n, eceOf, options);
    EXPECT_NEAR(need(intervals->find(an::metric::kEce), "ece").lo, ece.lo, 1e-12);
    EXPECT_NEAR(need(intervals->find(an::metric::kEce), "ece").hi, ece.hi, 1e-12);
    if (model == "teacher") {
      continue;
    }
    for (const char* m : {an::metric::kAccuracy, an::metric::kTeacherAccuracy, an::metric::kGap,
                          an::metric::kRetainedFraction, an::metric::kAgreement, an::metric::kMeanKl}) {
      const an::Interval& i = need(intervals->find(m), m);
      EXPECT_LE(i.lo, i.estimate) << m;
      EXPECT_LE(i.estimate, i.hi) << m;
    }
    // (t - s) / n against t / n - s / n, and sums against means: equal up to rounding.
    EXPECT_NEAR(need(intervals->find(an::metric::kGap), "gap").estimate, f.attrDouble(g, "gap"), 1e-14);
    EXPECT_NEAR(need(intervals->find(an::metric::kRetainedFraction), "retained").estimate,
                f.attrDouble(g, "retained_fraction"), 1e-14);
    EXPECT_EQ(need(intervals->find(an::metric::kAgreement), "agreement").estimate, f.attrDouble(g, "agreement"));
    EXPECT_NEAR(need(intervals->find(an::metric::kMeanKl), "kl").estimate, f.attrDouble(g, "mean_kl"), 1e-12);
    // The teacher's accuracy interval in a student's group is the teacher's own (same draws).
    const auto t = results.intervals("polarity", "teacher");
    EXPECT_EQ(need(intervals->find(an::metric::kTeacherAccuracy), "t").lo, need(t->find(an::metric::kAccuracy), "t").lo);
    // The gap through the metrics library: teacher accuracy minus student accuracy per resample.
    const auto gapOf = [&](const std::vector<std::uint32_t>& rows) {
      return an::accuracy(gatherRows(teacher, 2, rows), gather(labels, rows), 2) - accuracyOf(rows);
    };
    const an::Interval gap = an::bootstrapInterval(n, gapOf, options);
    EXPECT_NEAR(need(intervals->find(an::metric::kGap), "gap").lo, gap.lo, 1e-12);
    EXPECT_NEAR(need(intervals->find(an::metric::kGap), "gap").hi, gap.hi, 1e-12);
    // The lost examples of the loss pattern are those of the lost list.
    const auto lp = results.lossPattern("polarity", model);
    ASSERT_TRUE(lp.has_value());
    EXPECT_EQ(static_cast<std::int64_t>(lp->lost), f.attrInt(g + "/lost", "count"));
  }
}

TEST(AnalysisIntervals, NumPyOracleAgreesOnTheRealRun) {
  const fs::path& path = realRun();
  const RunReader reader(path.string());
  const std::size_t n = reader.evalLabels("polarity").size();
  // The resample indices every interval of the analysis drew (B = 2000, seed 14), for NumPy.
  const std::vector<std::uint32_t> indices = an::bootstrapResampleIndices(n, 2000, 14);
  const std::string file = (path.parent_path() / "indices.u32").string();
  {
    std::ofstream out(file, std::ios::binary);
    for (const std::uint32_t i : indices) {
      const unsigned char bytes[4] = {static_cast<unsigned char>(i), static_cast<unsigned char>(i >> 8),
                                      static_cast<unsigned char>(i >> 16), static_cast<unsigned char>(i >> 24)};
      out.write(reinterpret_cast<const char*>(bytes), 4);
    }
    ASSERT_TRUE(out.good());
  }
  const auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR +
                                    "/tests/python/check_intervals.py '" + path.string() + "' '" + file +
                                    "' --task polarity");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("check_intervals: ok"), std::string::npos) << output;
}

TEST(AnalysisIntervals, WoolfOddsRatioHandWorked) {
  // [[2, 3], [4, 6]]: OR = 12 / 12 = 1, se = sqrt(1/2 + 1/3 + 1/4 + 1/6) = sqrt(5/4).
  const an::Interval even = an::woolfOddsRatio(2, 3, 4, 6);
  EXPECT_NEAR(even.estimate, 1.0, 1e-15);
  EXPECT_NEAR(even.lo, std::exp(-1.959963984540054 * std::sqrt(1.25)), 1e-12);
  EXPECT_NEAR(even.hi, std::exp(1.959963984540054 * std::sqrt(1.25)), 1e-12);
  // A zero cell: 0.5 added to every cell, (0.5 * 5.5) / (4.5 * 3.5) = 11 / 63, finite and
  // inside its interval.
  const an::Interval zero = an::woolfOddsRatio(0, 4, 3, 5);
  EXPECT_NEAR(zero.estimate, 11.0 / 63.0, 1e-15);
  const double se = std::sqrt(1 / 0.5 + 1 / 4.5 + 1 / 3.5 + 1 / 5.5);
  EXPECT_NEAR(zero.lo, 11.0 / 63.0 * std::exp(-1.959963984540054 * se), 1e-12);
  EXPECT_NEAR(zero.hi, 11.0 / 63.0 * std::exp(1.959963984540054 * se), 1e-12);
}

TEST(AnalysisIntervals, AGroupMissingAnAttributeItListsIsRefusedByName) {
  const std::string path = constructedRun("bad");
  {
    H5File f(path, H5File::Mode::ReadWrite);
    f.setAttr("/tasks/t/analysis/a/intervals", "metrics", std::vector<std::string>{"accuracy", "bogus"});
    f.setAttr("/tasks/t/analysis/b/paired/teacher", "only_this", static_cast<std::int64_t>(7)); // counts no longer add up
  }
  const RunReader reader(path);
  const AnalysisResults results(reader);
  const std::string intervals = kdscope::test::messageOf<InputError>([&] { (void)results.intervals("t", "a"); });
  EXPECT_NE(intervals.find(path), std::string::npos) << intervals;
  EXPECT_NE(intervals.find("/tasks/t/analysis/a/intervals: attribute 'bogus' is missing"), std::string::npos)
      << intervals;
  const std::string paired = kdscope::test::messageOf<InputError>([&] { (void)results.pairedTests("t", "b"); });
  EXPECT_NE(paired.find("/tasks/t/analysis/b/paired/teacher: only_this + only_other + both_right + both_wrong"),
            std::string::npos)
      << paired;
  // kdscope info says the same and exits 2 (bad input), without a crash.
  const auto [status, output] = runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + path + "'");
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("attribute 'bogus' is missing"), std::string::npos) << output;
}
