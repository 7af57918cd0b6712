// core/analysis/stats: every value is checked against something computed another way: a
// hand-worked case or exact fraction (Python's fractions, written here as numbers), a
// closed form, a printed table, NumPy run on the same data and resample indices, or the
// coverage of the interval on simulated data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/analysis/stats.h"
#include "core/data/rng.h"
#include "tests/core/test_support.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with NumPy (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core::analysis {
namespace {

constexpr double kPi = 3.14159265358979323846;

/// Runs `script` with KDSCOPE_PYTHON and returns its stdout; a non-zero exit fails the test.
std::string runPythonScript(const test::TempDir& dir, const std::string& script) {
  const std::string path = test::writeFile(dir.file("oracle.py"), script);
  const std::string command = std::string(KDSCOPE_PYTHON) + " " + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) {
    return "";
  }
  std::string output;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    output.append(buffer, n);
  }
  EXPECT_EQ(::pclose(pipe), 0) << output;
  return output;
}

/// Whitespace-separated doubles of `text`.
std::vector<double> parseDoubles(const std::string& text) {
  std::istringstream in(text);
  std::vector<double> values;
  double v = 0.0;
  while (in >> v) {
    values.push_back(v);
  }
  return values;
}

/// Values as text at full precision, one per line.
template <typename T> std::string lines(const std::vector<T>& values) {
  std::ostringstream out;
  out.precision(17);
  for (const T& v : values) {
    out << v << "\n";
  }
  return out.str();
}

std::vector<double> bernoulli(std::size_t n, double p, Rng& rng) {
  std::vector<double> values(n);
  for (double& v : values) {
    v = rng.uniform01() < p ? 1.0 : 0.0;
  }
  return values;
}

// ----- exact McNemar ----------------------------------------------------------------------

TEST(StatsMcNemar, HandWorkedAndExactFractions) {
  // b = 10, c = 2: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096.
  EXPECT_NEAR(mcnemarExactP(10, 2), 2.0 * 79.0 / 4096.0, 1e-14);
  EXPECT_NEAR(mcnemarExactP(2, 10), 2.0 * 79.0 / 4096.0, 1e-14); // symmetric
  // b = 0, c = 5: 2 / 2^5.
  EXPECT_NEAR(mcnemarExactP(0, 5), 0.0625, 1e-15);
  // b = c = 5: 2 * 638 / 1024 > 1, capped.
  EXPECT_EQ(mcnemarExactP(5, 5), 1.0);
  EXPECT_EQ(mcnemarExactP(0, 0), 1.0);
  // Large counts (exact integer sums in Python: 2 * sum_{j<=k} C(m, j) / 2^m as a Fraction).
  EXPECT_NEAR(mcnemarExactP(60, 40), 0.05688793364098079, 1e-12);
  EXPECT_NEAR(mcnemarExactP(5000, 4800) / 0.04440414879984629, 1.0, 1e-9);
}

TEST(StatsMcNemar, CountsFromCorrectness) {
  const std::vector<std::uint8_t> first{1, 1, 1, 0, 0, 1, 1, 0};
  const std::vector<std::uint8_t> second{1, 0, 0, 1, 0, 0, 1, 0};
  const McNemarResult result = mcnemar(first, second);
  EXPECT_EQ(result.onlyFirst, 3U);  // examples 1, 2, 5
  EXPECT_EQ(result.onlySecond, 1U); // example 3
  EXPECT_EQ(result.n, 8U);
  EXPECT_NEAR(result.pValue, 2.0 * 5.0 / 16.0, 1e-15); // 2 * (1 + 4) / 2^4
}

// ----- t and normal distributions ---------------------------------------------------------

TEST(StatsDistributions, StudentTQuantileMatchesPrintedTable) {
  // t_{0.975, df} for df = 1..30, as printed (three decimals) in standard tables.
  const double table[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                            2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                            2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  for (int df = 1; df <= 30; ++df) {
    EXPECT_NEAR(studentTQuantile(0.975, df), table[df - 1], 0.0005 + 1e-12) << "df " << df;
  }
}

TEST(StatsDistributions, StudentTClosedForms) {
  for (const double p : {0.001, 0.05, 0.3, 0.6, 0.9, 0.975, 0.9995}) {
    // df = 1 (Cauchy): tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)).
    const double cauchy = std::tan(kPi * (p - 0.5));
    EXPECT_NEAR(studentTQuantile(p, 1.0), cauchy, 1e-10 * std::max(1.0, std::fabs(cauchy))) << p;
    EXPECT_NEAR(studentTQuantile(p, 2.0), (2 * p - 1) / std::sqrt(2 * p * (1 - p)), 1e-10) << p;
  }
  for (const double t : {-30.0, -2.0, -0.1, 0.0, 0.7, 5.0}) {
    EXPECT_NEAR(studentTCdf(t, 1.0), 0.5 + std::atan(t) / kPi, 1e-13) << t;
    // df = 3: 1/2 + (1/pi) (t / (sqrt3 (1 + t^2 / 3)) + atan(t / sqrt3)).
    const double s3 = std::sqrt(3.0);
    EXPECT_NEAR(studentTCdf(t, 3.0), 0.5 + (t / (s3 * (1 + t * t / 3)) + std::atan(t / s3)) / kPi, 1e-13) << t;
  }
  // Large df: Fisher's expansion t = z + (z^3 + z) / (4 v) + (5z^5 + 16z^3 + 3z) / (96 v^2) + O(v^-3).
  const double z = 1.959963984540054;
  const double v = 1e5;
  EXPECT_NEAR(studentTQuantile(0.975, v),
              z + (z * z * z + z) / (4 * v) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * v * v), 1e-10);
}

TEST(StatsDistributions, NormalQuantileAndGammaClosedForms) {
  EXPECT_NEAR(normalQuantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_NEAR(normalQuantile(0.995), 2.5758293035489004, 1e-12);
  EXPECT_NEAR(normalQuantile(0.5), 0.0, 1e-15);
  EXPECT_NEAR(normalQuantile(1e-10), -6.361340902404056, 1e-9);
  for (const double x : {0.01, 0.5, 2.0, 7.5, 40.0}) {
    // Chi-square survival with 2 df is exp(-x / 2); with 1 df it is erfc(sqrt(x / 2)).
    EXPECT_NEAR(regularizedUpperGamma(1.0, x / 2), std::exp(-x / 2), 1e-14) << x;
    EXPECT_NEAR(regularizedUpperGamma(0.5, x / 2) / std::erfc(std::sqrt(x / 2)), 1.0, 1e-12) << x;
  }
  // I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b.
  EXPECT_NEAR(regularizedIncompleteBeta(3.5, 1.0, 0.3), std::pow(0.3, 3.5), 1e-15);
  EXPECT_NEAR(regularizedIncompleteBeta(1.0, 4.0, 0.8), 1.0 - std::pow(0.2, 4.0), 1e-14);
}

// ----- replicates -------------------------------------------------------------------------

TEST(StatsReplicates, TIntervalHandWorked) {
  // 0.70, 0.72, 0.74, 0.76: mean 0.73, sd = sqrt((0.0009 + 0.0001) * 2 / 3) = 0.0258199,
  // half-width = t_{0.975, 3} (3.182446305284263) * sd / 2.
  const ReplicateSummary summary = summarizeReplicates({0.70, 0.72, 0.74, 0.76});
  const double sd = std::sqrt(0.002 / 3.0);
  EXPECT_NEAR(summary.mean, 0.73, 1e-15);
  EXPECT_NEAR(summary.sd, sd, 1e-15);
  EXPECT_NEAR(summary.interval.hi - summary.mean, 3.182446305284263 * sd / 2.0, 1e-12);
  EXPECT_NEAR(summary.mean - summary.interval.lo, 3.182446305284263 * sd / 2.0, 1e-12);
  EXPECT_EQ(summary.interval.over, kOverReplicates);
  EXPECT_EQ(summary.interval.count, 4U);
  // One replicate: a value, no interval.
  const ReplicateSummary one = summarizeReplicates({0.5});
  EXPECT_EQ(one.mean, 0.5);
  EXPECT_TRUE(std::isnan(one.interval.lo) && std::isnan(one.interval.hi));
}

TEST(StatsReplicates, PairedTAgainstClosedFormDf3) {
  // d = {1, 2, 2, 3}: mean 2, sd sqrt(2/3), se sqrt(2/3)/2, t = 2 / se = sqrt(24), df 3; the
  // two-sided p from the closed-form df = 3 CDF.
  const PairedComparison result = pairedT({1.5, 2.0, 3.0, 4.0}, {0.5, 0.0, 1.0, 1.0});
  const double t = std::sqrt(24.0);
  const double s3 = std::sqrt(3.0);
  const double upper = 0.5 - (t / (s3 * (1 + t * t / 3)) + std::atan(t / s3)) / kPi;
  EXPECT_NEAR(result.pValue, 2.0 * upper, 1e-13);
  EXPECT_NEAR(result.difference.estimate, 2.0, 1e-15);
  EXPECT_NEAR(result.difference.hi - 2.0, 3.182446305284263 * std::sqrt(2.0 / 3.0) / 2.0, 1e-12);
  EXPECT_EQ(result.test, "paired t");
  // Identical series: no difference, p = 1.
  EXPECT_EQ(pairedT({0.1, 0.2}, {0.1, 0.2}).pValue, 1.0);
}

TEST(StatsReplicates, TIntervalCoverageOnSimulatedNormals) {
  // 4000 studies of 5 replicates from N(0.7, 0.02^2). The t interval covers the mean with
  // probability exactly 0.95; the coverage estimate's sd is sqrt(0.95 * 0.05 / 4000) = 0.0034,
  // so [0.936, 0.964] is +-4 sd. A normal 1.96 interval would cover only ~0.878 here.
  Rng rng(deriveSeed(14, "test:t-coverage"));
  int covered = 0;
  constexpr int kStudies = 4000;
  for (int s = 0; s < kStudies; ++s) {
    std::vector<double> values(5);
    for (double& v : values) {
      v = rng.normal(0.7, 0.02);
    }
    const Interval interval = summarizeReplicates(values).interval;
    covered += (interval.lo <= 0.7 && 0.7 <= interval.hi) ? 1 : 0;
  }
  const double coverage = static_cast<double>(covered) / kStudies;
  std::printf("[ coverage ] t interval, 5 replicates: %.4f\n", coverage);
  EXPECT_GE(coverage, 0.936);
  EXPECT_LE(coverage, 0.964);
}

// ----- bootstrap over examples ------------------------------------------------------------

TEST(StatsBootstrap, FastMeanEqualsGenericOverTheSameDraws) {
  Rng rng(3);
  const std::vector<double> values = bernoulli(157, 0.62, rng);
  const BootstrapOptions options{500, 0.9, 77};
  // The generic path with the mean written out as a plain loop over the drawn indices.
  const auto plainMean = [&](const std::vector<std::uint32_t>& indices) {
    double sum = 0.0;
    for (const std::uint32_t i : indices) {
      sum += values[i];
    }
    return sum / static_cast<double>(indices.size());
  };
  const Interval generic = bootstrapInterval(values.size(), plainMean, options);
  const Interval fast = bootstrapMean(values, options);
  EXPECT_EQ(fast.estimate, generic.estimate);
  EXPECT_EQ(fast.lo, generic.lo);
  EXPECT_EQ(fast.hi, generic.hi);
  EXPECT_EQ(fast.resamples, 500);
  EXPECT_EQ(fast.over, kOverExamples);
  EXPECT_EQ(fast.count, 157U);
  // The replicates are the statistic on the rows of bootstrapResampleIndices.
  const std::vector<std::uint32_t> indices = bootstrapResampleIndices(values.size(), 500, 77);
  const std::vector<double> replicates = bootstrapReplicates(values.size(), plainMean, options);
  for (const std::size_t b : {0UL, 1UL, 250UL, 499UL}) {
    const std::vector<std::uint32_t> row(indices.begin() + long(b * values.size()),
                                         indices.begin() + long((b + 1) * values.size()));
    EXPECT_EQ(replicates[b], plainMean(row)) << b;
  }
  // Same seed, same draws; another seed, other draws.
  EXPECT_EQ(bootstrapReplicates(values.size(), plainMean, options), replicates);
  EXPECT_NE(bootstrapReplicates(values.size(), plainMean, {500, 0.9, 78}), replicates);
  EXPECT_NE(bootstrapResampleIndices(values.size(), 500, 78), indices);
}

TEST(StatsBootstrap, MeanRatioAndBcaMatchNumPyOnTheSameIndices) {
  Rng rng(5);
  const std::size_t n = 120;
  const int resamples = 300;
  const std::vector<double> student = bernoulli(n, 0.6, rng);
  const std::vector<double> teacher = bernoulli(n, 0.8, rng);
  std::vector<double> kl(n);
  for (double& v : kl) {
    v = -std::log(1.0 - rng.uniform01()) * 0.3; // skewed, like per-example KL
  }
  const BootstrapOptions options{resamples, 0.95, 2024};
  const test::TempDir dir("stats");
  test::writeFile(dir.file("student.txt"), lines(student));
  test::writeFile(dir.file("teacher.txt"), lines(teacher));
  test::writeFile(dir.file("kl.txt"), lines(kl));
  test::writeFile(dir.file("indices.txt"), lines(bootstrapResampleIndices(n, resamples, options.seed)));
  // NumPy: the statistic on each row of indices, then np.percentile (linear); BCa written out
  // from Efron & Tibshirani (14.14-14.15) with the standard library's NormalDist.
  const std::string script = "import numpy as np\n"
                             "from statistics import NormalDist\n"
                             "d = '" + dir.path() + "/'\n"
                             "s = np.loadtxt(d + 'student.txt'); t = np.loadtxt(d + 'teacher.txt')\n"
                             "kl = np.loadtxt(d + 'kl.txt')\n"
                             "idx = np.loadtxt(d + 'indices.txt').astype(int).reshape(" +
                             std::to_string(resamples) + ", " + std::to_string(n) + ")\n"
                             "def pct(r): return np.percentile(r, [2.5, 97.5])\n"
                             "out = list(pct(kl[idx].mean(axis=1)))\n"
                             "out += list(pct(s[idx].sum(axis=1) / t[idx].sum(axis=1)))\n"
                             "reps = kl[idx].mean(axis=1); est = kl.mean(); N = NormalDist()\n"
                             "z0 = N.inv_cdf((reps < est).mean())\n"
                             "jack = (kl.sum() - kl) / (len(kl) - 1); dj = jack.mean() - jack\n"
                             "a = (dj**3).sum() / (6 * ((dj**2).sum())**1.5)\n"
                             "adj = lambda al: N.cdf(z0 + (z0 + N.inv_cdf(al)) / (1 - a * (z0 + N.inv_cdf(al))))\n"
                             "out += list(np.percentile(reps, [100 * adj(0.025), 100 * adj(0.975)]))\n"
                             "print(' '.join(repr(float(v)) for v in out))\n";
  const std::vector<double> numpy = parseDoubles(runPythonScript(dir, script));
  ASSERT_EQ(numpy.size(), 6U);
  const Interval mean = bootstrapMean(kl, options);
  EXPECT_NEAR(mean.lo, numpy[0], 1e-12);
  EXPECT_NEAR(mean.hi, numpy[1], 1e-12);
  const Interval ratio = bootstrapRatio(student, teacher, options);
  EXPECT_NEAR(ratio.lo, numpy[2], 1e-12);
  EXPECT_NEAR(ratio.hi, numpy[3], 1e-12);
  double s = 0.0;
  double t = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    s += student[i];
    t += teacher[i];
  }
  EXPECT_EQ(ratio.estimate, s / t);
  const Interval bca = bootstrapMeanBca(kl, options);
  EXPECT_NEAR(bca.lo, numpy[4], 1e-9);
  EXPECT_NEAR(bca.hi, numpy[5], 1e-9);
  EXPECT_EQ(bca.estimate, mean.estimate);
}

TEST(StatsBootstrap, PercentileIntervalHandWorked) {
  // 0..10 (11 values): the 2.5% point sits at position 0.25 -> 0.25; the 97.5% at 9.75 -> 9.75.
  std::vector<double> values{10, 3, 7, 0, 1, 2, 9, 4, 5, 6, 8};
  const auto [lo, hi] = percentileInterval(values, 0.95);
  EXPECT_DOUBLE_EQ(lo, 0.25);
  EXPECT_DOUBLE_EQ(hi, 9.75);
  values.push_back(std::nan("")); // dropped
  EXPECT_DOUBLE_EQ(percentileInterval(values, 0.8).first, 1.0);
  EXPECT_TRUE(std::isnan(bootstrapMean({}).estimate));
}

TEST(StatsBootstrap, PercentileCoverageOnSimulatedBernoulli) {
  // 400 eval sets of 200 Bernoulli(0.7) examples, B = 1000: the 95% percentile interval of
  // the accuracy should cover 0.7 in about 95% of them. The coverage estimate's sd is
  // sqrt(0.95 * 0.05 / 400) = 0.011, so [0.92, 0.98] is about +-2.75 sd (the percentile
  // interval of a binomial mean runs slightly below nominal at n = 200).
  Rng rng(deriveSeed(14, "test:bootstrap-coverage"));
  int covered = 0;
  constexpr int kDatasets = 400;
  for (int d = 0; d < kDatasets; ++d) {
    const std::vector<double> values = bernoulli(200, 0.7, rng);
    const Interval interval = bootstrapMean(values, {1000, 0.95, static_cast<std::uint64_t>(d)});
    covered += (interval.lo <= 0.7 && 0.7 <= interval.hi) ? 1 : 0;
  }
  const double coverage = static_cast<double>(covered) / kDatasets;
  std::printf("[ coverage ] percentile bootstrap, n = 200, Bernoulli(0.7): %.4f\n", coverage);
  EXPECT_GE(coverage, 0.92);
  EXPECT_LE(coverage, 0.98);
}

// ----- paired bootstrap against McNemar ---------------------------------------------------

/// n examples with `onlyA` where only A is right, `onlyB` where only B is right, `both`
/// where both are right (the rest: both wrong), in a shuffled order.
void pairedCorrectness(std::size_t n, std::size_t onlyA, std::size_t onlyB, std::size_t both,
                       std::vector<double>& a, std::vector<double>& b) {
  a.assign(n, 0.0);
  b.assign(n, 0.0);
  Rng rng(99);
  const std::vector<std::int64_t> order = rng.permutation(n);
  for (std::size_t k = 0; k < onlyA + onlyB + both; ++k) {
    const auto i = static_cast<std::size_t>(order[k]);
    a[i] = (k < onlyA || k >= onlyA + onlyB) ? 1.0 : 0.0;
    b[i] = k >= onlyA ? 1.0 : 0.0;
  }
}

TEST(StatsPaired, BootstrapAgreesWithMcNemarOnClearCases) {
  std::vector<double> a;
  std::vector<double> b;
  // 25 vs 10 discordant of 200: exact McNemar p = 0.0167; the bootstrap's normal-like
  // p for z = 0.075 / 0.0291 is ~0.01. Same side, same order of magnitude.
  pairedCorrectness(200, 25, 10, 120, a, b);
  const PairedComparison clear = pairedBootstrap(a, b);
  const double exact = mcnemarExactP(25, 10);
  EXPECT_NEAR(exact, 0.01667384780012071, 1e-14); // 2 sum_{j<=10} C(35, j) / 2^35 (Python)
  EXPECT_NEAR(clear.difference.estimate, 15.0 / 200.0, 1e-15);
  EXPECT_GT(clear.difference.lo, 0.0); // A better: the interval is above 0
  EXPECT_FALSE(clear.difference.holdsZero());
  EXPECT_LT(clear.pValue, 0.05);
  EXPECT_GT(clear.pValue / exact, 0.3);
  EXPECT_LT(clear.pValue / exact, 3.0);
  EXPECT_EQ(clear.test, "paired bootstrap (centred)");
  // The mirror image: the difference flips sign; the p-value stays small.
  const PairedComparison mirrored = pairedBootstrap(b, a);
  EXPECT_NEAR(mirrored.difference.estimate, -15.0 / 200.0, 1e-15);
  EXPECT_LT(mirrored.difference.hi, 0.0);
  EXPECT_LT(mirrored.pValue, 0.05);
  // 12 vs 12: McNemar p = 1, no detectable difference either way.
  pairedCorrectness(200, 12, 12, 120, a, b);
  const PairedComparison null = pairedBootstrap(a, b);
  EXPECT_EQ(mcnemarExactP(12, 12), 1.0);
  EXPECT_EQ(null.difference.estimate, 0.0);
  EXPECT_TRUE(null.difference.holdsZero());
  EXPECT_EQ(null.pValue, 1.0); // every |d* - 0| >= 0
  // 40 vs 5: far beyond the bootstrap's resolution: p at its floor 1 / (B + 1).
  pairedCorrectness(200, 40, 5, 100, a, b);
  EXPECT_EQ(pairedBootstrap(a, b).pValue, 1.0 / 2001.0);
  EXPECT_LT(mcnemarExactP(40, 5), 1e-6);
}

// ----- where the lost examples are --------------------------------------------------------

TEST(StatsLossPattern, LostMask) {
  EXPECT_EQ(lostMask({1, 1, 0, 0}, {1, 0, 1, 0}), (std::vector<std::uint8_t>{0, 1, 0, 0}));
}

TEST(StatsLossPattern, MannWhitneyHandCounts) {
  // {1, 2, 3} against {4, 5, 6}: no pair of group 1 wins, U = 0; exactly 1 of the C(6,3) = 20
  // equally likely splits gives U = 0 and 1 gives U = 9, so p = 2 / 20.
  const MannWhitneyResult separated = mannWhitney({1, 2, 3, 4, 5, 6}, {1, 1, 1, 0, 0, 0}, {200, 0.95, 1});
  EXPECT_EQ(separated.u, 0.0);
  EXPECT_TRUE(separated.exact);
  EXPECT_NEAR(separated.pValue, 0.1, 1e-14);
  EXPECT_EQ(separated.rankBiserial.estimate, -1.0);
  EXPECT_EQ(separated.rankBiserial.lo, -1.0); // every resample is separated too
  EXPECT_EQ(separated.rankBiserial.hi, -1.0);
  // Ties: group 1 = {5, 6, 7, 7, 8, 9}, group 0 = {1, 2, 3, 7, 4}. Wins against group 0: 4, 4,
  // 4 + 1/2, 4 + 1/2, 5, 5 -> U = 27 of 30 pairs, r = 2 * 27 / 30 - 1 = 0.8. Normal: mean 15,
  // variance 30/12 * (12 - (3^3 - 3) / (11 * 10)), continuity 0.5.
  const MannWhitneyResult tied =
      mannWhitney({5, 1, 6, 2, 7, 3, 7, 7, 8, 4, 9}, {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
  EXPECT_EQ(tied.n1, 6U);
  EXPECT_EQ(tied.n0, 5U);
  EXPECT_DOUBLE_EQ(tied.u, 27.0);
  EXPECT_FALSE(tied.exact);
  const double z = (12.0 - 0.5) / std::sqrt(2.5 * (12.0 - 24.0 / 110.0));
  EXPECT_NEAR(tied.pValue, std::erfc(z / std::sqrt(2.0)), 1e-14);
  EXPECT_NEAR(tied.rankBiserial.estimate, 0.8, 1e-15);
  EXPECT_LE(tied.rankBiserial.lo, 0.8);
  EXPECT_GE(tied.rankBiserial.hi, 0.8);
  EXPECT_LE(tied.rankBiserial.hi, 1.0);
}

TEST(StatsLossPattern, RankBiserialCoverageOnSimulatedShift) {
  // 300 eval sets: 40 "lost" examples with factor ~ N(0.5, 1), 160 others ~ N(0, 1). The true
  // r = P(X1 > X0) - P(X1 < X0) = 2 Phi(0.5 / sqrt 2) - 1. The coverage estimate's sd is
  // sqrt(0.95 * 0.05 / 300) = 0.0126, so [0.91, 0.99] is about +-3 sd.
  const double truth = 2.0 * normalCdf(0.5 / std::sqrt(2.0)) - 1.0;
  Rng rng(deriveSeed(14, "test:rank-biserial-coverage"));
  int covered = 0;
  constexpr int kDatasets = 300;
  std::vector<double> values(200);
  std::vector<std::uint8_t> group(200);
  for (int d = 0; d < kDatasets; ++d) {
    for (std::size_t i = 0; i < 200; ++i) {
      group[i] = i < 40 ? 1 : 0;
      values[i] = rng.normal(i < 40 ? 0.5 : 0.0, 1.0);
    }
    const Interval r = mannWhitney(values, group, {400, 0.95, static_cast<std::uint64_t>(d)}).rankBiserial;
    covered += (r.lo <= truth && truth <= r.hi) ? 1 : 0;
  }
  const double coverage = static_cast<double>(covered) / kDatasets;
  std::printf("[ coverage ] rank-biserial, stratified bootstrap, 40 vs 160: %.4f\n", coverage);
  EXPECT_GE(coverage, 0.91);
  EXPECT_LE(coverage, 0.99);
}

TEST(StatsLossPattern, MannWhitneyExactAgainstEnumeration) {
  // 4 + 5 distinct values: enumerate all C(9, 4) = 126 group assignments, count U by pairs,
  // and compare the two-sided p of an observed split with the exact one.
  const std::vector<double> values{0.3, 1.7, 2.2, 0.9, 4.1, 3.3, 0.1, 2.9, 5.0};
  const std::vector<std::uint8_t> group{1, 0, 1, 1, 0, 0, 1, 0, 0};
  auto pairU = [&](const std::vector<std::uint8_t>& g) {
    double u = 0.0;
    for (std::size_t i = 0; i < 9; ++i) {
      for (std::size_t j = 0; j < 9; ++j) {
        u += (g[i] != 0 && g[j] == 0 && values[i] > values[j]) ? 1.0 : 0.0;
      }
    }
    return u;
  };
  const double observed = pairU(group);
  int atOrBelow = 0;
  int atOrAbove = 0;
  int total = 0;
  for (unsigned mask = 0; mask < 512; ++mask) {
    if (__builtin_popcount(mask) != 4) {
      continue;
    }
    std::vector<std::uint8_t> g(9);
    for (unsigned i = 0; i < 9; ++i) {
      g[i] = (mask >> i) & 1U;
    }
    const double u = pairU(g);
    atOrBelow += u <= observed ? 1 : 0;
    atOrAbove += u >= observed ? 1 : 0;
    ++total;
  }
  ASSERT_EQ(total, 126);
  const MannWhitneyResult result = mannWhitney(values, group);
  EXPECT_EQ(result.u, observed);
  EXPECT_TRUE(result.exact);
  EXPECT_NEAR(result.pValue, std::min(1.0, 2.0 * std::min(atOrBelow, atOrAbove) / 126.0), 1e-14);
}

TEST(StatsLossPattern, LogisticTwoGroupsIsTheLogOddsRatio) {
  // x = 0: 30 lost of 100 (a = 30, b = 70); x = 1: 45 lost of 80 (c = 45, d = 35). The MLE
  // slope is log((45 / 35) / (30 / 70)) and its se is Woolf's sqrt(1/30 + 1/70 + 1/45 + 1/35).
  std::vector<double> x;
  std::vector<std::uint8_t> lost;
  auto add = [&](double value, int lostCount, int keptCount) {
    for (int i = 0; i < lostCount; ++i) {
      x.push_back(value);
      lost.push_back(1);
    }
    for (int i = 0; i < keptCount; ++i) {
      x.push_back(value);
      lost.push_back(0);
    }
  };
  add(0.0, 30, 70);
  add(1.0, 45, 35);
  const LogisticFit raw = logisticRegression({x}, lost, /*standardize=*/false);
  ASSERT_TRUE(raw.converged);
  const double slope = std::log((45.0 / 35.0) / (30.0 / 70.0));
  const double se = std::sqrt(1.0 / 30 + 1.0 / 70 + 1.0 / 45 + 1.0 / 35);
  EXPECT_NEAR(raw.slopes.at(0).value.estimate, slope, 1e-10);
  EXPECT_NEAR(raw.slopes.at(0).se, se, 1e-10);
  EXPECT_NEAR(raw.intercept.value.estimate, std::log(30.0 / 70.0), 1e-10);
  EXPECT_NEAR(raw.slopes.at(0).value.lo, slope - 1.959963984540054 * se, 1e-9);
  EXPECT_NEAR(raw.slopes.at(0).pValue, std::erfc(slope / se / std::sqrt(2.0)), 1e-10);
  // Standardized: the same fit per sd of x, so slope and se both scale by sd(x).
  double m = 0.0;
  for (const double v : x) {
    m += v;
  }
  m /= double(x.size());
  double ss = 0.0;
  for (const double v : x) {
    ss += (v - m) * (v - m);
  }
  const double sd = std::sqrt(ss / double(x.size() - 1));
  const LogisticFit standardized = logisticRegression({x}, lost);
  EXPECT_NEAR(standardized.slopes.at(0).value.estimate, slope * sd, 1e-10);
  EXPECT_NEAR(standardized.slopes.at(0).pValue, raw.slopes.at(0).pValue, 1e-10);
  // Perfect separation has no MLE.
  const LogisticFit separated = logisticRegression({{1, 2, 3, 4, 5, 6}}, {0, 0, 0, 1, 1, 1});
  EXPECT_FALSE(separated.converged);
  EXPECT_TRUE(std::isnan(separated.slopes.at(0).value.estimate));
}

TEST(StatsLossPattern, LogisticMatchesNumPyIrls) {
  // Three covariates (teacher confidence, entropy, length), the outcome drawn from a known
  // logistic model; NumPy fits the same standardized design by its own IRLS (lstsq steps).
  Rng rng(11);
  const std::size_t n = 400;
  std::vector<std::vector<double>> covariates(3, std::vector<double>(n));
  std::vector<std::uint8_t> lost(n);
  for (std::size_t i = 0; i < n; ++i) {
    covariates[0][i] = 0.5 + 0.5 * rng.uniform01();
    covariates[1][i] = rng.normal(1.0, 0.3);
    covariates[2][i] = static_cast<double>(5 + rng.uniformInt(40));
    const double eta = -1.0 - 3.0 * (covariates[0][i] - 0.75) + 0.8 * (covariates[1][i] - 1.0);
    lost[i] = rng.uniform01() < 1.0 / (1.0 + std::exp(-eta)) ? 1 : 0;
  }
  const test::TempDir dir("stats");
  std::ostringstream data;
  data.precision(17);
  for (std::size_t i = 0; i < n; ++i) {
    data << covariates[0][i] << " " << covariates[1][i] << " " << covariates[2][i] << " " << int(lost[i]) << "\n";
  }
  test::writeFile(dir.file("data.txt"), data.str());
  const std::string script = "import numpy as np\n"
                             "D = np.loadtxt('" + dir.file("data.txt") + "')\n"
                             "X = D[:, :3]; y = D[:, 3]\n"
                             "X = (X - X.mean(0)) / X.std(0, ddof=1)\n"
                             "X = np.hstack([np.ones((len(y), 1)), X]); b = np.zeros(4)\n"
                             "for _ in range(50):\n"
                             "    mu = 1 / (1 + np.exp(-X @ b)); w = mu * (1 - mu)\n"
                             "    z = X @ b + (y - mu) / w\n"
                             "    sw = np.sqrt(w)\n"
                             "    b = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]\n"
                             "mu = 1 / (1 + np.exp(-X @ b)); w = mu * (1 - mu)\n"
                             "se = np.sqrt(np.diag(np.linalg.inv(X.T @ (X * w[:, None]))))\n"
                             "print(' '.join(repr(float(v)) for v in list(b) + list(se)))\n";
  const std::vector<double> numpy = parseDoubles(runPythonScript(dir, script));
  ASSERT_EQ(numpy.size(), 8U);
  const LogisticFit fit = logisticRegression(covariates, lost);
  ASSERT_TRUE(fit.converged);
  EXPECT_NEAR(fit.intercept.value.estimate, numpy[0], 1e-9);
  EXPECT_NEAR(fit.intercept.se, numpy[4], 1e-9);
  for (std::size_t j = 0; j < 3; ++j) {
    EXPECT_NEAR(fit.slopes[j].value.estimate, numpy[1 + j], 1e-9) << j;
    EXPECT_NEAR(fit.slopes[j].se, numpy[5 + j], 1e-9) << j;
  }
  // The simulated effects: confidence lowers the loss odds, entropy raises them, length none.
  EXPECT_LT(fit.slopes[0].value.hi, 0.0);
  EXPECT_GT(fit.slopes[1].value.lo, 0.0);
}

TEST(StatsLossPattern, FisherExactHandWorked) {
  // Fisher's tea tasting [[3, 1], [1, 3]]: tables at least as extreme have a = 0, 1, 3, 4 with
  // probabilities 1, 16, 16, 1 over C(8, 4) = 70: p = 34 / 70.
  const FisherResult tea = fisherExact(3, 1, 1, 3);
  EXPECT_NEAR(tea.pValue, 34.0 / 70.0, 1e-13);
  EXPECT_EQ(tea.oddsRatio, 9.0);
  // [[0, 5], [5, 0]]: only the two extreme tables, 1 / C(10, 5) each.
  EXPECT_NEAR(fisherExact(0, 5, 5, 0).pValue, 2.0 / 252.0, 1e-15);
  EXPECT_EQ(fisherExact(0, 5, 5, 0).oddsRatio, 0.0);             // 0 / 25
  EXPECT_TRUE(std::isnan(fisherExact(0, 5, 0, 5).oddsRatio));     // 0 / 0
  EXPECT_TRUE(std::isinf(fisherExact(5, 0, 0, 5).oddsRatio));     // 25 / 0
  // Exact fractions from Python's fractions.Fraction over the hypergeometric probabilities.
  EXPECT_NEAR(fisherExact(1, 9, 11, 3).pValue, 41.0 / 14858.0, 1e-13);
  EXPECT_NEAR(fisherExact(7, 2, 3, 8).pValue, 293.0 / 4199.0, 1e-13);
  EXPECT_EQ(fisherExact(0, 0, 0, 0).pValue, 1.0);
}

TEST(StatsLossPattern, ChiSquareAndCramersV) {
  // 3 x 2 [[10, 10], [20, 5], [5, 15]]: chi2 = 767 / 56 exactly (Python fractions), df 2, so
  // p = exp(-chi2 / 2); N = 65, V = sqrt(chi2 / 65); the smallest expected count is
  // row 20 x column 30 / 65.
  const ChiSquareResult r3 = chiSquareIndependence({10, 10, 20, 5, 5, 15}, 3, 2);
  EXPECT_NEAR(r3.chiSquare, 767.0 / 56.0, 1e-12);
  EXPECT_EQ(r3.df, 2);
  EXPECT_NEAR(r3.pValue, std::exp(-767.0 / 112.0), 1e-14);
  EXPECT_NEAR(r3.cramersV, std::sqrt(767.0 / 56.0 / 65.0), 1e-14);
  EXPECT_NEAR(r3.minExpected, 20.0 * 30.0 / 65.0, 1e-14);
  // 2 x 2 closed form: chi2 = N (ad - bc)^2 / (r1 r2 c1 c2), V = |phi|; a zero row is dropped.
  const ChiSquareResult r2 = chiSquareIndependence({12, 8, 0, 0, 5, 15}, 3, 2);
  const double chi2 = 40.0 * std::pow(12.0 * 15 - 8.0 * 5, 2) / (20.0 * 20 * 17 * 23);
  EXPECT_NEAR(r2.chiSquare, chi2, 1e-12);
  EXPECT_EQ(r2.df, 1);
  EXPECT_NEAR(r2.pValue, std::erfc(std::sqrt(chi2 / 2)), 1e-13);
  EXPECT_NEAR(r2.cramersV, std::sqrt(chi2 / 40.0), 1e-14);
}

TEST(StatsLossPattern, CategoryTableCounts) {
  const CategoryTable table = categoryTable({2, 0, 2, 1, 0, 2}, {1, 0, 0, 1, 1, 1});
  EXPECT_EQ(table.categories, (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(table.counts, (std::vector<std::uint64_t>{1, 1, 0, 1, 1, 2}));
}

// ResampleRanks counts instead of sorting: hand-worked, then against ranks written out as
// "values below plus (values equal + 1) / 2" over the resample (O(n^2), no sort), on random
// resamples of a series with many ties.
TEST(StatsBootstrap, ResampleRanksHandWorkedAndAgainstPairCounting) {
  // values 3, 1, 3, 2; rows 0, 0, 1, 3, 2 hold 3, 3, 1, 2, 3: sorted 1, 2, 3, 3, 3, so 1 has
  // rank 1, 2 rank 2 and each 3 the mean of ranks 3, 4, 5.
  ResampleRanks hand({3.0, 1.0, 3.0, 2.0});
  const std::vector<std::uint32_t> rows{0, 0, 1, 3, 2};
  std::vector<double> out;
  hand.ranks(rows.data(), rows.size(), out);
  EXPECT_EQ(out, (std::vector<double>{4.0, 4.0, 1.0, 2.0, 4.0}));
  // A resample of rows 1, 3 (values 1, 2; the 3s not drawn): ranks 1 and 2.
  hand.ranks(rows.data() + 2, 2, out);
  EXPECT_EQ(out, (std::vector<double>{1.0, 2.0}));

  Rng rng(17);
  std::vector<double> values(300);
  for (double& v : values) {
    v = static_cast<double>(rng.uniformInt(40)) * 0.25 - 3.0; // 40 levels, ~7.5 ties each
  }
  values[5] = -0.0; // equal to 0.0, as a sort's comparisons have it
  values[6] = 0.0;
  ResampleRanks ranks(values);
  for (int r = 0; r < 20; ++r) {
    std::vector<std::uint32_t> resample(1 + rng.uniformInt(values.size()));
    for (auto& i : resample) {
      i = static_cast<std::uint32_t>(rng.uniformInt(values.size()));
    }
    ranks.ranks(resample.data(), resample.size(), out);
    ASSERT_EQ(out.size(), resample.size());
    for (std::size_t k = 0; k < resample.size(); ++k) {
      double below = 0.0;
      double equal = 0.0;
      for (const std::uint32_t j : resample) {
        below += values[j] < values[resample[k]] ? 1.0 : 0.0;
        equal += values[j] == values[resample[k]] ? 1.0 : 0.0;
      }
      ASSERT_EQ(out[k], below + (equal + 1.0) / 2.0) << "resample " << r << ", position " << k;
    }
  }
}

// The rank-biserial interval's replicates are U counted pair by pair on the same stratified
// draws (the test draws them itself from the documented stream), with ties.
TEST(StatsLossPattern, RankBiserialReplicatesAreUCountedPairByPair) {
  Rng data(23);
  std::vector<double> values(120);
  std::vector<std::uint8_t> group(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    group[i] = i % 4 == 0 ? 1 : 0;
    values[i] = static_cast<double>(data.uniformInt(12)) + (group[i] != 0 ? 2.0 : 0.0);
  }
  const BootstrapOptions options{300, 0.95, 41};
  const MannWhitneyResult result = mannWhitney(values, group, options);
  std::vector<double> x1;
  std::vector<double> x0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    (group[i] != 0 ? x1 : x0).push_back(values[i]);
  }
  Rng rng(deriveSeed(options.seed, "bootstrap:stratified"));
  std::vector<double> replicates;
  for (int b = 0; b < options.resamples; ++b) {
    std::vector<double> s1(x1.size());
    std::vector<double> s0(x0.size());
    for (double& v : s1) {
      v = x1[rng.uniformInt(x1.size())];
    }
    for (double& v : s0) {
      v = x0[rng.uniformInt(x0.size())];
    }
    double u = 0.0;
    for (const double a : s1) {
      for (const double c : s0) {
        u += a > c ? 1.0 : (a == c ? 0.5 : 0.0);
      }
    }
    replicates.push_back(2.0 * u / (static_cast<double>(x1.size()) * static_cast<double>(x0.size())) - 1.0);
  }
  const auto [lo, hi] = percentileInterval(replicates, options.level);
  EXPECT_EQ(result.rankBiserial.lo, lo);
  EXPECT_EQ(result.rankBiserial.hi, hi);
  EXPECT_LT(lo, hi);
}

// Bootstraps over the same examples share one table of draws (kept between calls): the
// indices must be the documented stream's, below and above the table's size limit (16M
// indices), and a second call must give the same as the first.
TEST(StatsBootstrap, SharedResampleTableHoldsTheStreamsDraws) {
  for (const auto& [n, resamples] : {std::pair<std::size_t, int>{211, 300}, std::pair<std::size_t, int>{17000, 1000}}) {
    Rng data(29);
    const std::vector<double> values = bernoulli(n, 0.4, data);
    const BootstrapOptions options{resamples, 0.95, 5};
    Rng rng(deriveSeed(options.seed, "bootstrap"));
    std::vector<double> means(static_cast<std::size_t>(resamples));
    for (double& m : means) {
      double sum = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        sum += values[rng.uniformInt(n)];
      }
      m = sum / static_cast<double>(n);
    }
    const auto [lo, hi] = percentileInterval(means, options.level);
    for (int call = 0; call < 2; ++call) {
      const Interval interval = bootstrapMean(values, options);
      EXPECT_EQ(interval.lo, lo) << "n " << n << ", call " << call;
      EXPECT_EQ(interval.hi, hi) << "n " << n << ", call " << call;
    }
    if (n < 1000) {
      Rng again(deriveSeed(options.seed, "bootstrap"));
      const std::vector<std::uint32_t> indices = bootstrapResampleIndices(n, resamples, options.seed);
      ASSERT_EQ(indices.size(), n * static_cast<std::size_t>(resamples));
      for (const std::uint32_t i : indices) {
        ASSERT_EQ(i, again.uniformInt(n));
      }
    }
  }
}

} // namespace
} // namespace kdscope::core::analysis
