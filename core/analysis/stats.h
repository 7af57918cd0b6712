#pragma once
/// Intervals and tests for the headline numbers (issue #14, "Numbers you can trust";
/// docs/statistics.md): bootstrap intervals over eval examples within one run, Student-t
/// intervals over replicates across runs, paired comparisons (exact McNemar, paired
/// bootstrap, paired t) and the tests of whether the examples a student loses are
/// concentrated somewhere (Mann-Whitney, logistic regression, Fisher, chi-square).
///
/// Plain std::vector in and out; no torch, Qt or HDF5. Every random draw comes from
/// core::Rng (core/data/rng.h) seeded from the caller's seed, so the same inputs and seed
/// give the same interval on every platform. A shape error throws std::invalid_argument;
/// a value that is undefined for the data (no examples, one replicate) is a quiet NaN.
/// Thread-safety: every function is pure and may run on any thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kdscope::core::analysis {

/// What a bootstrap interval is over, as shown next to the number.
inline constexpr const char* kOverExamples = "eval examples (bootstrap)";
/// What a Student-t interval is over.
inline constexpr const char* kOverReplicates = "replicates (t)";

/// A number with its interval and what the interval is over. The DESIGN.md rule: a
/// headline number is never shown without one of these.
struct Interval {
  double estimate = 0.0; ///< the statistic on the data as observed (not a bootstrap mean)
  double lo = 0.0;       ///< lower end of the interval
  double hi = 0.0;       ///< upper end of the interval
  int resamples = 0;     ///< bootstrap resamples B; 0 for an analytic (t, Wald) interval
  std::string over;      ///< kOverExamples, kOverReplicates, ...
  double level = 0.95;   ///< coverage the interval is built for
  std::size_t count = 0; ///< examples or replicates the estimate is over

  /// True when lo <= 0 <= hi: the wording is then "no detectable difference".
  [[nodiscard]] bool holdsZero() const { return lo <= 0.0 && 0.0 <= hi; }
};

/// Bootstrap settings. The defaults are the ones the analysis uses (docs/statistics.md).
struct BootstrapOptions {
  int resamples = 2000;     ///< B
  double level = 0.95;      ///< two-sided coverage
  std::uint64_t seed = 14;  ///< the stream is Rng(deriveSeed(seed, "bootstrap"))
};

// ----- bootstrap over examples -------------------------------------------------------------

/// The resample indices every bootstrap here draws: B rows of n indices, row-major
/// (resample b is indices[b * n .. b * n + n)), each uniform in [0, n) with replacement,
/// from Rng(deriveSeed(seed, "bootstrap")).uniformInt(n) in that order. Exposed so that a
/// test or an outside tool can recompute any bootstrap from the same draws.
[[nodiscard]] std::vector<std::uint32_t> bootstrapResampleIndices(std::size_t n, int resamples,
                                                                  std::uint64_t seed);

/// The percentile interval of bootstrap replicates: the (1 - level) / 2 and
/// (1 + level) / 2 quantiles with linear interpolation between order statistics (NumPy's
/// default "linear" percentile: position q * (B - 1)). NaN replicates are dropped; NaN
/// ends when none is left. Returns {lo, hi}.
[[nodiscard]] std::pair<double, double> percentileInterval(std::vector<double> replicates, double level);

/// A statistic of the examples at `indices` (a resample, with repeats).
using IndexStatistic = std::function<double(const std::vector<std::uint32_t>& indices)>;

/// Percentile bootstrap interval of any statistic of n examples: estimate = statistic on
/// 0..n-1, replicates = statistic on each resample of bootstrapResampleIndices. n = 0 gives
/// NaN throughout.
[[nodiscard]] Interval bootstrapInterval(std::size_t n, const IndexStatistic& statistic,
                                         const BootstrapOptions& options = {});

/// The B replicates bootstrapInterval computes (same draws), for tests and histograms.
[[nodiscard]] std::vector<double> bootstrapReplicates(std::size_t n, const IndexStatistic& statistic,
                                                      const BootstrapOptions& options = {});

/// Average ranks (1-based; ties share the mean of the ranks they span) within bootstrap
/// resamples of one series, by counting: built once from the series (its distinct values
/// sorted), each resample's ranks then cost O(resample + distinct values) instead of a sort.
/// The ranks are half-integers, exact in float64, so they are bit for bit those of sorting the
/// resample's values (Spearman's and Mann-Whitney's bootstraps use it). Values must not be NaN.
class ResampleRanks {
public:
  explicit ResampleRanks(const std::vector<double>& values);
  /// out[k] = the average rank of values[rows[k]] among values[rows[0]], ..., values[rows[count - 1]].
  void ranks(const std::uint32_t* rows, std::size_t count, std::vector<double>& out);

private:
  std::vector<std::uint32_t> m_level; ///< per value: its rank among the distinct values (0-based)
  std::vector<std::uint32_t> m_count; ///< per distinct value: how often the resample holds it
  std::vector<double> m_rank;         ///< per distinct value: its average rank in the resample
};

/// Fast path for the mean of per-example values (accuracy from 0/1 correctness, agreement,
/// per-example KL): the same draws and the same result as bootstrapInterval with the mean.
[[nodiscard]] Interval bootstrapMean(const std::vector<double>& values, const BootstrapOptions& options = {});

/// Bias-corrected and accelerated (BCa; Efron 1987) interval of the mean: the percentile
/// levels are moved by the bias z0 = Phi^-1(share of replicates below the estimate) and the
/// acceleration from the jackknife. Same draws as bootstrapMean.
[[nodiscard]] Interval bootstrapMeanBca(const std::vector<double>& values, const BootstrapOptions& options = {});

/// Fast path for a ratio of means over the same examples, resampled jointly (retained
/// fraction = student accuracy / teacher accuracy: numerator = student correctness,
/// denominator = teacher correctness). A resample whose denominator sums to 0 gives a NaN
/// replicate, which percentileInterval drops.
[[nodiscard]] Interval bootstrapRatio(const std::vector<double>& numerator, const std::vector<double>& denominator,
                                      const BootstrapOptions& options = {});

// ----- paired comparisons ------------------------------------------------------------------

/// A paired comparison of two series on the same units (examples or seeds).
struct PairedComparison {
  Interval difference; ///< mean(a) - mean(b) with its interval
  double pValue = 1.0; ///< two-sided, for "no difference"
  std::string test;    ///< "paired bootstrap (centred)", "paired t", "exact McNemar"
};

/// Paired bootstrap of mean(a - b) over the same examples (a[i], b[i] from example i).
/// Interval: percentile. p-value: the centred bootstrap (Efron & Tibshirani 1993, 16.4):
/// under the null the replicates are shifted to mean 0, p = (1 + #{|d*_b - d| >= |d|}) /
/// (B + 1), so the smallest reportable p is 1 / (B + 1).
[[nodiscard]] PairedComparison pairedBootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                               const BootstrapOptions& options = {});

/// Exact two-sided McNemar p from the discordant counts (b = only the first right, c =
/// only the second right): min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2), summed in log
/// space (exact for any count). b + c = 0 gives 1.
[[nodiscard]] double mcnemarExactP(std::uint64_t b, std::uint64_t c);

/// McNemar counts and test of two 0/1 correctness series on the same examples.
struct McNemarResult {
  std::uint64_t onlyFirst = 0;  ///< b: first right, second wrong
  std::uint64_t onlySecond = 0; ///< c: first wrong, second right
  std::uint64_t n = 0;          ///< examples
  double pValue = 1.0;          ///< mcnemarExactP(b, c)
};
[[nodiscard]] McNemarResult mcnemar(const std::vector<std::uint8_t>& firstCorrect,
                                    const std::vector<std::uint8_t>& secondCorrect);

// ----- across replicates -------------------------------------------------------------------

/// Regularized incomplete beta I_x(a, b) (continued fraction, Lentz), a, b > 0, x in [0,1].
[[nodiscard]] double regularizedIncompleteBeta(double a, double b, double x);

/// Student-t CDF P(T <= t) with df > 0 degrees of freedom (via the incomplete beta).
[[nodiscard]] double studentTCdf(double t, double df);

/// Student-t quantile: the t with studentTCdf(t, df) = p, p in (0, 1) (bisection on the
/// CDF to ~1e-12 relative). t_{0.975, 1} = 12.7062...
[[nodiscard]] double studentTQuantile(double p, double df);

/// Standard normal CDF and quantile (the quantile by Newton on the CDF).
[[nodiscard]] double normalCdf(double z);
[[nodiscard]] double normalQuantile(double p);

/// Mean, sample sd (n - 1) and the Student-t interval mean +- t_{(1+level)/2, n-1} sd / sqrt(n)
/// of replicate values (one per seed). n < 2 gives NaN ends (the estimate is the value).
struct ReplicateSummary {
  double mean = 0.0;
  double sd = 0.0;
  Interval interval; ///< over kOverReplicates
};
[[nodiscard]] ReplicateSummary summarizeReplicates(const std::vector<double>& values, double level = 0.95);

/// Paired t over replicates with the same seeds: t = mean(d) / (sd(d) / sqrt(n)), d = a - b,
/// df = n - 1, two-sided p, and the t interval of mean(d).
[[nodiscard]] PairedComparison pairedT(const std::vector<double>& a, const std::vector<double>& b,
                                       double level = 0.95);

// ----- where the lost examples are ---------------------------------------------------------

/// 1 where the teacher is right and the student wrong ("lost"), else 0.
[[nodiscard]] std::vector<std::uint8_t> lostMask(const std::vector<std::uint8_t>& teacherCorrect,
                                                 const std::vector<std::uint8_t>& studentCorrect);

/// Mann-Whitney U of a continuous factor between the examples with group = 1 and the rest.
struct MannWhitneyResult {
  double u = 0.0;          ///< #pairs (x1 > x0) + 0.5 #ties, x1 from group 1
  std::size_t n1 = 0;      ///< examples in group 1
  std::size_t n0 = 0;      ///< examples in group 0
  double pValue = 1.0;     ///< two-sided
  bool exact = false;      ///< true: exact null distribution (no ties, n1 * n0 <= 2500)
  Interval rankBiserial;   ///< r = 2U / (n1 n0) - 1 = P(x1 > x0) - P(x1 < x0), stratified bootstrap
};
/// Exact p when there are no ties and n1 * n0 <= 2500 (2 min(P(U <= u), P(U >= u)), capped at
/// 1); otherwise the normal approximation with the tie-corrected variance and a 0.5
/// continuity correction. The r interval resamples within each group (group sizes fixed).
[[nodiscard]] MannWhitneyResult mannWhitney(const std::vector<double>& values, const std::vector<std::uint8_t>& group,
                                            const BootstrapOptions& options = {});

/// One coefficient of a logistic regression with its Wald interval and test.
struct Coefficient {
  Interval value;      ///< estimate and Wald interval estimate +- z se (resamples 0)
  double se = 0.0;
  double z = 0.0;
  double pValue = 1.0; ///< two-sided Wald
};

/// A logistic regression of a 0/1 outcome on covariates, by IRLS (Newton on the
/// log-likelihood).
struct LogisticFit {
  Coefficient intercept;
  std::vector<Coefficient> slopes; ///< one per covariate, in the order given
  bool converged = false;          ///< false on (quasi-)separation: every value is then NaN
  int iterations = 0;
};
/// covariates: one column of n values per covariate. With standardize, each covariate is
/// centred and divided by its sample sd first, so a slope is the change in log odds per sd
/// (comparable across factors); a constant covariate then throws. Stops when the largest
/// Newton step is < 1e-10, or after 100 iterations (not converged).
[[nodiscard]] LogisticFit logisticRegression(const std::vector<std::vector<double>>& covariates,
                                             const std::vector<std::uint8_t>& outcome, bool standardize = true,
                                             double level = 0.95);

/// Fisher's exact test of the 2x2 table [[a, b], [c, d]]: two-sided p = sum of the
/// hypergeometric probabilities (margins fixed) that are <= that of the table (with a 1e-7
/// relative tolerance, as R and SciPy), and the sample odds ratio ad / (bc) (inf or NaN when
/// a denominator is 0).
struct FisherResult {
  double pValue = 1.0;
  double oddsRatio = 0.0;
};
[[nodiscard]] FisherResult fisherExact(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d);

/// Pearson chi-square test of independence of an r x k table of counts (row-major), with
/// Cramér's V = sqrt(chi2 / (n (min(r, k) - 1))). Rows or columns that sum to 0 are dropped.
struct ChiSquareResult {
  double chiSquare = 0.0;
  int df = 0;
  double pValue = 1.0;
  double cramersV = 0.0;
  double minExpected = 0.0; ///< smallest expected count: below 5 the chi-square p is rough
};
[[nodiscard]] ChiSquareResult chiSquareIndependence(const std::vector<std::uint64_t>& counts, std::size_t rows,
                                                    std::size_t cols);

/// Regularized upper incomplete gamma Q(a, x) (series / continued fraction); the chi-square
/// survival function is Q(df / 2, x / 2).
[[nodiscard]] double regularizedUpperGamma(double a, double x);

/// The categories x outcome table of counts (rows in increasing category value, columns
/// outcome 0 then 1) and the category of each row, for chiSquareIndependence.
struct CategoryTable {
  std::vector<std::int64_t> categories;
  std::vector<std::uint64_t> counts; ///< categories.size() x 2, row-major
};
[[nodiscard]] CategoryTable categoryTable(const std::vector<std::int64_t>& category,
                                          const std::vector<std::uint8_t>& outcome);

} // namespace kdscope::core::analysis
