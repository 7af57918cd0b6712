// The distillation loss report (core/report/report.h; docs/report.md): the sentence forms
// on hand-worked intervals, and a report built from a small real run whose sentences are
// checked against numbers computed here from the run file's logits and labels (correctness,
// McNemar's discordant counts and its exact p by an integer binomial sum, per-class recall),
// the interval ends as the core reader reads them, and the verdict words: "beats" where the
// interval excludes 0 and p < 0.05, "no detectable difference" otherwise (both occur).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "core/analysis/analysis_results.h"
#include "core/common/error.h"
#include "core/engine/run_job.h"
#include "core/record/run_reader.h"
#include "core/report/report.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace an = kdscope::core::analysis;
namespace fs = std::filesystem;

namespace {

/// "%.1f" of 100 x, without a sign on a number that rounds to 0 (as the report writes points).
std::string pts(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", 100.0 * x);
  std::string s = b;
  return s == "-0.0" ? "0.0" : s;
}

/// p as the report writes it: 3 decimals from 0.001 up ("1" for 1), 2 significant digits below.
std::string pText(double p) {
  char b[32];
  if (p >= 0.9995) {
    return "1";
  }
  if (p >= 0.001) {
    std::snprintf(b, sizeof b, "%.3f", p);
  } else {
    std::snprintf(b, sizeof b, "%.1e", p);
  }
  return b;
}

/// Exact two-sided McNemar: min(1, 2 sum_{k <= min(b, c)} C(n, k) / 2^n), n = b + c, in long double.
double mcnemar(std::uint64_t b, std::uint64_t c) {
  const std::uint64_t n = b + c;
  if (n == 0) {
    return 1.0;
  }
  long double term = std::pow(0.5L, static_cast<long double>(n)); // C(n, 0) / 2^n
  long double sum = term;
  for (std::uint64_t k = 1; k <= std::min(b, c); ++k) {
    term = term * static_cast<long double>(n - k + 1) / static_cast<long double>(k);
    sum += term;
  }
  return static_cast<double>(std::min(1.0L, 2.0L * sum));
}

std::vector<bool> correct(const std::vector<float>& z, const std::vector<std::int64_t>& y, std::size_t c) {
  std::vector<bool> out;
  for (std::size_t i = 0; i < y.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < c; ++k) {
      best = z[i * c + k] > z[i * c + best] ? k : best;
    }
    out.push_back(static_cast<std::int64_t>(best) == y[i]);
  }
  return out;
}

std::vector<std::string> allFindings(const Report& r) {
  std::vector<std::string> out;
  for (const auto& s : r.sections) {
    out.insert(out.end(), s.findings.begin(), s.findings.end());
  }
  return out;
}

const fs::path& smallRun() {
  static const fs::path path = [] {
    const fs::path dir = kdscope::test::freshTempDir("report");
    const std::string data = kdscope::test::writePolarityCorpus(dir / "data", kdscope::test::PolarityCorpus{400, false, true});
    JobSpec job = kdscope::test::tinyPolarityJob(data, 3);
    job.name = "report-test";
    StudentSpec ce = job.students[0];
    ce.name = "ce";
    ce.objective.lambda = 0.0;
    // A student that barely trains: the teacher beats it detectably.
    StudentSpec weak = ce;
    weak.name = "weak";
    weak.training.epochs = 1;
    weak.training.lr = 1e-7;
    job.students.push_back(ce);
    job.students.push_back(weak);
    job.analyze = true;
    const auto result = runJob(job, RunOptions{(dir / "run").string()}, CancelToken(), nullptr);
    EXPECT_EQ(result.status, JobStatus::Succeeded) << result.message;
    return dir / "run" / "run.h5";
  }();
  return path;
}

} // namespace

TEST(ReportSentences, DifferenceWordsFollowTheIntervalAndTheTest) {
  an::Interval d;
  d.estimate = 0.017;
  d.lo = 0.004;
  d.hi = 0.030;
  d.count = 5;
  EXPECT_EQ(report::differenceSentence("kd", "ce", "hedge", d, 0.01, "McNemar", "5 replicates"),
            "student kd beats student ce on hedge by 1.7 points (95% CI 0.4 to 3.0, McNemar p = 0.010, 5 replicates)");
  // The same difference the other way round names the better one first.
  an::Interval m;
  m.estimate = -0.017;
  m.lo = -0.030;
  m.hi = -0.004;
  EXPECT_EQ(report::differenceSentence("ce", "kd", "hedge", m, 0.01, "McNemar", "5 replicates"),
            "student kd beats student ce on hedge by 1.7 points (95% CI 0.4 to 3.0, McNemar p = 0.010, 5 replicates)");
  // An interval holding 0: no detectable difference.
  an::Interval z;
  z.estimate = 0.0075;
  z.lo = -0.018;
  z.hi = 0.033;
  EXPECT_EQ(report::differenceSentence("ce", "kd", "polarity", z, 0.645, "McNemar", "400 eval examples"),
            "no detectable difference between student ce and student kd on polarity: student ce minus student kd "
            "0.8 points (95% CI -1.8 to 3.3, McNemar p = 0.645, 400 eval examples)");
  // An interval that excludes 0 with a test that does not reject: no detectable difference.
  EXPECT_EQ(report::differenceSentence("teacher", "kd", "spam", d, 0.22, "McNemar", "120 eval examples")
                .rfind("no detectable difference between the teacher and student kd", 0),
            0U);
  // A number without an interval says why.
  an::Interval one;
  one.estimate = 0.8;
  one.lo = one.hi = std::nan("");
  one.count = 1;
  EXPECT_EQ(report::valueWithInterval(one, "1 replicates"), "0.800 (1 replicates; no interval: a single value)");
}

TEST(ReportSentences, HtmlIsSelfContainedAndEscaped) {
  Report r;
  r.title = "T <1>";
  r.source = "a&b.h5";
  ReportSection s;
  s.heading = "h";
  s.findings = {"x < y"};
  s.tables.push_back(ReportTable{"cap", {"a"}, {{"<b>"}}});
  r.sections.push_back(s);
  ReportFigure f;
  f.name = "tasks.accuracy";
  f.caption = "c";
  f.svg = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg width=\"1\"></svg>";
  const std::string html = reportHtml(r, {f});
  EXPECT_NE(html.find("<title>T &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<li>x &lt; y</li>"), std::string::npos);
  EXPECT_NE(html.find("<td>&lt;b&gt;</td>"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("<svg width=\"1\"></svg>"), std::string::npos);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);       // no prolog inside HTML
  EXPECT_EQ(html.find("<link"), std::string::npos);       // nothing loaded from elsewhere
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(ReportRun, SentencesMatchTheNumbersOfTheRunFile) {
  const fs::path& path = smallRun();
  const Report rep = buildReport(path.string());
  const std::vector<std::string> findings = allFindings(rep);
  ASSERT_FALSE(findings.empty());

  const RunReader reader(path.string());
  const AnalysisResults results(reader);
  const auto labels = reader.evalLabels("polarity");
  std::int64_t classes = 0;
  const auto teacherLogits = reader.evalLogits("polarity", "teacher", &classes); // sets classes first
  const auto teacherCorrect = correct(teacherLogits, labels, static_cast<std::size_t>(classes));
  const std::size_t n = labels.size();
  const std::string basis = std::to_string(n) + " eval examples";
  int detectableSeen = 0;
  int notDetectableSeen = 0;
  // Every pair of the task's models the analysis compared: (first, second, first's correctness,
  // second's, the difference's interval as the file holds it). The report's verdicts use the
  // McNemar p Holm-adjusted over these 6 tests, worked out below by hand.
  struct Pair {
    std::string first, second;
    std::vector<bool> a, b;
    an::Interval interval;
    double p = 0.0;
    double holm = 0.0;
  };
  std::vector<Pair> pairs;
  const std::vector<std::string> students = {"kd", "ce", "weak"};
  std::map<std::string, std::vector<bool>> correctOf;
  for (const auto& s : students) {
    correctOf[s] = correct(reader.evalLogits("polarity", s), labels, static_cast<std::size_t>(classes));
  }
  for (const auto& s : students) {
    const auto intervals = results.intervals("polarity", s);
    ASSERT_TRUE(intervals.has_value());
    const an::Interval* gap = intervals->find(an::metric::kGap); // teacher - student
    ASSERT_NE(gap, nullptr);
    pairs.push_back({"teacher", s, teacherCorrect, correctOf[s], *gap});
  }
  for (std::size_t i = 0; i < students.size(); ++i) {
    for (std::size_t j = i + 1; j < students.size(); ++j) {
      for (const PairedTest& t : results.pairedTests("polarity", students[i])) {
        if (t.other == students[j]) {
          pairs.push_back({students[i], students[j], correctOf[students[i]], correctOf[students[j]],
                           t.comparison.accuracyDifference.difference});
        }
      }
    }
  }
  ASSERT_EQ(pairs.size(), 6U);
  for (Pair& pr : pairs) {
    std::uint64_t onlyA = 0;
    std::uint64_t onlyB = 0;
    for (std::size_t i = 0; i < n; ++i) {
      onlyA += pr.a[i] && !pr.b[i] ? 1 : 0;
      onlyB += pr.b[i] && !pr.a[i] ? 1 : 0;
    }
    pr.p = mcnemar(onlyA, onlyB);
    EXPECT_NEAR(pr.interval.estimate, (static_cast<double>(onlyA) - static_cast<double>(onlyB)) / static_cast<double>(n),
                1e-12);
  }
  // Holm by hand: sort ascending, multiply the k-th smallest (k from 0) by 6 - k, keep the
  // running maximum, cap at 1.
  std::vector<Pair*> order;
  for (Pair& pr : pairs) {
    order.push_back(&pr);
  }
  std::stable_sort(order.begin(), order.end(), [](const Pair* x, const Pair* y) { return x->p < y->p; });
  double running = 0.0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    running = std::max(running, static_cast<double>(order.size() - k) * order[k]->p);
    order[k]->holm = std::min(1.0, running);
  }
  for (const Pair& pr : pairs) {
    SCOPED_TRACE(pr.first + " vs " + pr.second);
    const double diff = pr.interval.estimate;
    const an::Interval& fileInterval = pr.interval;
    const std::string whoA = pr.first == "teacher" ? "the teacher" : "student " + pr.first;
    const std::string whoB = pr.second == "teacher" ? "the teacher" : "student " + pr.second;
    const bool detect = !(fileInterval.lo <= 0 && 0 <= fileInterval.hi) && pr.holm < 0.05;
    const std::string tests = "McNemar p = " + pText(pr.p) + ", Holm p = " + pText(pr.holm) + " of 6 tests";
    std::string expected;
    if (detect) {
      const bool aBetter = diff > 0;
      expected = (aBetter ? whoA : whoB) + " beats " + (aBetter ? whoB : whoA) + " on polarity by " +
                 pts(std::fabs(diff)) + " points (95% CI " + pts(aBetter ? fileInterval.lo : -fileInterval.hi) +
                 " to " + pts(aBetter ? fileInterval.hi : -fileInterval.lo) + ", " + tests + ", " + basis + ")";
      ++detectableSeen;
    } else {
      expected = "no detectable difference between " + whoA + " and " + whoB + " on polarity: " + whoA + " minus " +
                 whoB + " " + pts(diff) + " points (95% CI " + pts(fileInterval.lo) + " to " + pts(fileInterval.hi) +
                 ", " + tests + ", " + basis + ")";
      ++notDetectableSeen;
    }
    const bool found = std::any_of(findings.begin(), findings.end(),
                                   [&](const std::string& f) { return f.find(expected) != std::string::npos; });
    EXPECT_TRUE(found) << "expected: " << expected;
    // The reader's adjustment, seen from either model of a student pair.
    for (const std::string& from : {pr.first, pr.second}) {
      if (from == "teacher") {
        continue;
      }
      for (const PairedTest& t : results.pairedTests("polarity", from)) {
        if (t.other == (from == pr.first ? pr.second : pr.first)) {
          EXPECT_NEAR(t.mcnemarHolm.p, pr.holm, 1e-12);
          EXPECT_EQ(t.mcnemarHolm.family, 6U);
        }
      }
    }
  }
  EXPECT_GE(detectableSeen, 1);    // the teacher against the barely trained student
  EXPECT_GE(notDetectableSeen, 1); // the words where the interval holds 0
  // The retained fraction of kd: the estimate is student / teacher correct counts.
  std::size_t kdRight = 0;
  std::size_t teacherRight = 0;
  for (std::size_t i = 0; i < n; ++i) {
    kdRight += correctOf["kd"][i] ? 1 : 0;
    teacherRight += teacherCorrect[i] ? 1 : 0;
  }
  char retained[32];
  std::snprintf(retained, sizeof retained, "%.3f", static_cast<double>(kdRight) / static_cast<double>(teacherRight));
  const std::string keeps = "student kd keeps a fraction " + std::string(retained) + " (95% CI ";
  EXPECT_TRUE(std::any_of(findings.begin(), findings.end(),
                          [&](const std::string& f) { return f.rfind(keeps, 0) == 0; }))
      << keeps;
  // Lost examples: the table lists exactly the examples where the teacher is right and kd wrong.
  std::size_t lost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    lost += teacherCorrect[i] && !correctOf["kd"][i] ? 1 : 0;
  }
  bool lostTable = false;
  for (const auto& s : rep.sections) {
    for (const auto& t : s.tables) {
      if (s.heading == "polarity, student kd: which examples" && t.caption.rfind("Lost examples", 0) == 0) {
        lostTable = true;
        EXPECT_NE(t.caption.find("(" + std::to_string(lost) + " in all"), std::string::npos) << t.caption;
        EXPECT_EQ(t.rows.size(), std::min<std::size_t>(lost, 5));
        for (const auto& row : t.rows) {
          const std::size_t i = std::stoul(row[0]);
          EXPECT_TRUE(teacherCorrect[i] && !correctOf["kd"][i]) << i;
          EXPECT_FALSE(row.back().empty()); // the example's text
        }
      }
    }
  }
  EXPECT_TRUE(lostTable);
  const std::string html = reportHtml(rep, {});
  EXPECT_NE(html.find("no detectable difference"), std::string::npos);
}

TEST(ReportRun, LossPatternHolmFamilyByHand) {
  const RunReader reader(smallRun().string());
  const AnalysisResults results(reader);
  int adjustedPatterns = 0;
  for (const std::string student : {"kd", "ce", "weak"}) {
    SCOPED_TRACE(student);
    const auto lp = results.lossPattern("polarity", student);
    ASSERT_TRUE(lp.has_value());
    if (lp->factors.empty()) {
      continue;
    }
    // The family: each factor's Mann-Whitney p, the class chi-square p, and the converged
    // logistic fit's factor slopes (not the intercept, not class:*).
    std::vector<std::pair<double, const an::AdjustedP*>> family;
    for (const an::ContinuousFactor& f : lp->factors) {
      family.emplace_back(f.test.pValue, &f.holm);
    }
    family.emplace_back(lp->goldClass.chiSquare.pValue, &lp->goldClass.chiSquareHolm);
    for (const an::LogisticTerm& t : lp->logistic.terms) {
      if (lp->logistic.converged && t.name != "intercept" && t.name.rfind("class:", 0) != 0) {
        family.emplace_back(t.coefficient.pValue, &t.holm);
      } else {
        EXPECT_TRUE(std::isnan(t.holm.p)) << t.name;
      }
    }
    std::vector<std::size_t> order(family.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      order[k] = k;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return family[x].first < family[y].first; });
    double running = 0.0;
    for (std::size_t k = 0; k < order.size(); ++k) {
      running = std::max(running, static_cast<double>(order.size() - k) * family[order[k]].first);
      EXPECT_NEAR(family[order[k]].second->p, std::min(1.0, running), 1e-12);
      EXPECT_EQ(family[order[k]].second->family, family.size());
      EXPECT_GE(family[order[k]].second->p, family[order[k]].first); // never below the raw p
    }
    ++adjustedPatterns;
  }
  EXPECT_GE(adjustedPatterns, 1);
}

TEST(ReportRun, AnythingElseIsRefusedByName) {
  const fs::path dir = kdscope::test::freshTempDir("report_bad");
  const std::string missing = kdscope::test::messageOf<InputError>([&] { (void)buildReport((dir / "nope.h5").string()); });
  EXPECT_NE(missing.find("nope.h5"), std::string::npos) << missing;
  const std::string folder = kdscope::test::messageOf<InputError>([&] { (void)buildReport(dir.string()); });
  EXPECT_NE(folder.find("neither a replicate folder"), std::string::npos) << folder;
}
