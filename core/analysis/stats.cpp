// Above 800 lines on purpose: the statistics library (docs/statistics.md) shares its
// distribution functions, resampling and rank helpers across the tests it implements.
#include "core/analysis/stats.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <tuple>

#include "core/analysis/analysis_common.h"
#include "core/data/rng.h"

namespace kdscope::core::analysis {
namespace {

using detail::kNaN;
using detail::require;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrt2 = 1.41421356237309504880;

void checkOptions(const BootstrapOptions& options, const char* function) {
  require(options.resamples >= 1, function, "resamples must be >= 1");
  require(options.level > 0.0 && options.level < 1.0, function, "level must be in (0, 1)");
}

/// The one stream every example bootstrap draws from, so that the generic path, the fast
/// paths and bootstrapResampleIndices see the same indices.
Rng bootstrapRng(std::uint64_t seed) { return Rng(deriveSeed(seed, "bootstrap")); }

Interval makeInterval(double estimate, std::pair<double, double> ends, int resamples, const char* over,
                      double level, std::size_t count) {
  Interval interval;
  interval.estimate = estimate;
  interval.lo = ends.first;
  interval.hi = ends.second;
  interval.resamples = resamples;
  interval.over = over;
  interval.level = level;
  interval.count = count;
  return interval;
}

Interval nanInterval(const char* over, double level, int resamples) {
  return makeInterval(kNaN, {kNaN, kNaN}, resamples, over, level, 0);
}

double mean(const std::vector<double>& values) {
  double sum = 0.0;
  for (const double v : values) {
    sum += v;
  }
  return sum / static_cast<double>(values.size());
}

/// Sample standard deviation (n - 1), two-pass for accuracy.
double sampleSd(const std::vector<double>& values, double m) {
  double ss = 0.0;
  for (const double v : values) {
    ss += (v - m) * (v - m);
  }
  return std::sqrt(ss / static_cast<double>(values.size() - 1));
}

/// Resample tables of at most this many indices (64 MiB each) are kept for the next bootstraps.
constexpr std::size_t kResampleTableLimit = std::size_t{16} << 20U;

/// The indices of B resamples of n examples (resample b at [b n, (b + 1) n)), drawn from
/// bootstrapRng(seed) in order. An analysis runs dozens of bootstraps over the same eval
/// examples with the same seed and B (every metric on the same resamples), and drawing was
/// most of their time: the last two tables are kept (process-wide, behind a mutex) and handed to
/// the next call with the same n, B and seed. Null above kResampleTableLimit indices: the caller
/// then draws as it goes, the same indices.
std::shared_ptr<const std::vector<std::uint32_t>> sharedResampleTable(std::size_t n, int resamples,
                                                                      std::uint64_t seed) {
  const std::size_t entries = n * static_cast<std::size_t>(resamples);
  if (n == 0 || n > UINT32_MAX || resamples <= 0 || entries / n != static_cast<std::size_t>(resamples) ||
      entries > kResampleTableLimit) {
    return nullptr;
  }
  using Key = std::tuple<std::size_t, int, std::uint64_t>;
  static std::mutex mutex;
  // The two tables last asked for, the newest first: the analysis' two lanes of passes
  // (analyze_run.cpp) bootstrap at once with different B.
  static std::array<std::pair<Key, std::shared_ptr<const std::vector<std::uint32_t>>>, 2> kept;
  const std::lock_guard<std::mutex> lock(mutex);
  const Key key = std::make_tuple(n, resamples, seed);
  if (kept[1].second != nullptr && kept[1].first == key) {
    std::swap(kept[0], kept[1]);
  }
  if (kept[0].second != nullptr && kept[0].first == key) {
    return kept[0].second;
  }
  auto table = std::make_shared<std::vector<std::uint32_t>>(entries);
  Rng rng = bootstrapRng(seed);
  for (std::uint32_t& index : *table) {
    index = static_cast<std::uint32_t>(rng.uniformInt(n));
  }
  kept[1] = std::move(kept[0]);
  kept[0] = {key, std::move(table)};
  return kept[0].second;
}

/// The resamples of bootstrapResampleIndices one after the other: read from the shared
/// table, or (above its limit) drawn from the same stream into a buffer.
class ResampleRows {
public:
  ResampleRows(std::size_t n, int resamples, std::uint64_t seed)
      : m_n(n), m_table(sharedResampleTable(n, resamples, seed)), m_rng(bootstrapRng(seed)) {
    if (m_table == nullptr) {
      m_buffer.resize(n);
    }
  }
  /// The next resample's n indices (valid until the next call).
  const std::uint32_t* next() {
    if (m_table != nullptr) {
      const std::uint32_t* rows = m_table->data() + m_at;
      m_at += m_n;
      return rows;
    }
    for (std::uint32_t& index : m_buffer) {
      index = static_cast<std::uint32_t>(m_rng.uniformInt(m_n));
    }
    return m_buffer.data();
  }

private:
  std::size_t m_n;
  std::shared_ptr<const std::vector<std::uint32_t>> m_table;
  Rng m_rng;
  std::vector<std::uint32_t> m_buffer;
  std::size_t m_at = 0;
};

/// The B bootstrap means of `values` (the draws of bootstrapResampleIndices).
std::vector<double> bootstrapMeans(const std::vector<double>& values, const BootstrapOptions& options) {
  const std::size_t n = values.size();
  std::vector<double> replicates(static_cast<std::size_t>(options.resamples));
  ResampleRows draws(n, options.resamples, options.seed);
  for (double& replicate : replicates) {
    const std::uint32_t* rows = draws.next();
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += values[rows[i]];
    }
    replicate = sum / static_cast<double>(n);
  }
  return replicates;
}

/// log C(n, k) via lgamma (relative error ~1e-15, enough for p-values).
double logChoose(double n, double k) { return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0); }

/// log(sum exp(terms)), stable.
double logSumExp(const std::vector<double>& terms) {
  if (terms.empty()) {
    return -kInf;
  }
  const double top = *std::max_element(terms.begin(), terms.end());
  if (!std::isfinite(top)) {
    return top;
  }
  double sum = 0.0;
  for (const double t : terms) {
    sum += std::exp(t - top);
  }
  return top + std::log(sum);
}

/// Continued fraction of the incomplete beta (Numerical Recipes' betacf, modified Lentz).
double betaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-16;
  const double qab = a + b;
  const double qap = a + 1.0;
  const double qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) {
    d = kTiny;
  }
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 1000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    d = std::fabs(d) < kTiny ? kTiny : d;
    c = 1.0 + aa / c;
    c = std::fabs(c) < kTiny ? kTiny : c;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    d = std::fabs(d) < kTiny ? kTiny : d;
    c = 1.0 + aa / c;
    c = std::fabs(c) < kTiny ? kTiny : c;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) {
      break;
    }
  }
  return h;
}

/// Upper tail P(T > t) for t >= 0: I_x(df / 2, 1 / 2) / 2 with x = df / (df + t^2), which keeps
/// its relative precision far into the tail (no 1 - cdf).
double studentTUpperTail(double t, double df) {
  const double x = df / (df + t * t);
  return 0.5 * regularizedIncompleteBeta(0.5 * df, 0.5, x);
}

/// Average ranks (1-based) of `values` with ties sharing their mean rank, and the tie
/// correction sum (t^3 - t) over tie groups.
std::vector<double> averageRanks(const std::vector<double>& values, double* tieSum) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(n);
  double ties = 0.0;
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start + 1;
    while (end < n && values[order[end]] == values[order[start]]) {
      ++end;
    }
    // Positions start..end-1 hold rank start+1..end; each gets their mean.
    const double rank = 0.5 * static_cast<double>(start + 1 + end);
    for (std::size_t k = start; k < end; ++k) {
      ranks[order[k]] = rank;
    }
    const double t = static_cast<double>(end - start);
    ties += t * t * t - t;
    start = end;
  }
  if (tieSum != nullptr) {
    *tieSum = ties;
  }
  return ranks;
}

/// U of x1 against x0: #pairs (x1 > x0) + 0.5 #ties, from the rank sum of x1.
double uStatistic(const std::vector<double>& x1, const std::vector<double>& x0, double* tieSum) {
  std::vector<double> all(x1);
  all.insert(all.end(), x0.begin(), x0.end());
  const std::vector<double> ranks = averageRanks(all, tieSum);
  double rankSum = 0.0;
  for (std::size_t i = 0; i < x1.size(); ++i) {
    rankSum += ranks[i];
  }
  const double n1 = static_cast<double>(x1.size());
  return rankSum - n1 * (n1 + 1.0) / 2.0;
}

/// The exact null distribution of U for sizes n1, n0 (no ties): P(U = u), u = 0..n1 n0, by
/// p(u; i, j) = i / (i + j) p(u - j; i - 1, j) + j / (i + j) p(u; i, j - 1) (the largest of
/// the i + j values is in group 1 with probability i / (i + j) and then beats all j others).
std::vector<double> exactUDistribution(std::size_t n1, std::size_t n0) {
  // prev[j] holds the distribution for (i - 1, j); cur[j] for (i, j).
  std::vector<std::vector<double>> prev(n0 + 1);
  for (std::size_t j = 0; j <= n0; ++j) {
    prev[j] = {1.0}; // i = 0: U = 0 surely
  }
  for (std::size_t i = 1; i <= n1; ++i) {
    std::vector<std::vector<double>> cur(n0 + 1);
    cur[0] = {1.0}; // j = 0: U = 0 surely
    for (std::size_t j = 1; j <= n0; ++j) {
      const double total = static_cast<double>(i + j);
      const double pFirst = static_cast<double>(i) / total;
      const double pSecond = static_cast<double>(j) / total;
      std::vector<double> dist(i * j + 1, 0.0);
      for (std::size_t u = 0; u < prev[j].size(); ++u) {
        dist[u + j] += pFirst * prev[j][u];
      }
      for (std::size_t u = 0; u < cur[j - 1].size(); ++u) {
        dist[u] += pSecond * cur[j - 1][u];
      }
      cur[j] = std::move(dist);
    }
    prev = std::move(cur);
  }
  return prev[n0];
}

/// Solves the symmetric positive definite system A x = b (Cholesky), A k x k row-major.
/// Returns false when A is not positive definite (to working precision); also fills the
/// inverse when `inverse` is given.
bool choleskySolve(std::vector<double> a, std::size_t k, const std::vector<double>& b, std::vector<double>* x,
                   std::vector<double>* inverse) {
  // In place: the lower triangle becomes L with A = L L^T.
  for (std::size_t j = 0; j < k; ++j) {
    double diag = a[j * k + j];
    for (std::size_t p = 0; p < j; ++p) {
      diag -= a[j * k + p] * a[j * k + p];
    }
    if (!(diag > 1e-300)) {
      return false;
    }
    const double ljj = std::sqrt(diag);
    a[j * k + j] = ljj;
    for (std::size_t i = j + 1; i < k; ++i) {
      double s = a[i * k + j];
      for (std::size_t p = 0; p < j; ++p) {
        s -= a[i * k + p] * a[j * k + p];
      }
      a[i * k + j] = s / ljj;
    }
  }
  auto solve = [&](std::vector<double> rhs) {
    for (std::size_t i = 0; i < k; ++i) { // L y = rhs
      for (std::size_t p = 0; p < i; ++p) {
        rhs[i] -= a[i * k + p] * rhs[p];
      }
      rhs[i] /= a[i * k + i];
    }
    for (std::size_t ii = k; ii-- > 0;) { // L^T x = y
      for (std::size_t p = ii + 1; p < k; ++p) {
        rhs[ii] -= a[p * k + ii] * rhs[p];
      }
      rhs[ii] /= a[ii * k + ii];
    }
    return rhs;
  };
  if (x != nullptr) {
    *x = solve(b);
  }
  if (inverse != nullptr) {
    inverse->assign(k * k, 0.0);
    for (std::size_t col = 0; col < k; ++col) {
      std::vector<double> e(k, 0.0);
      e[col] = 1.0;
      const std::vector<double> column = solve(e);
      for (std::size_t row = 0; row < k; ++row) {
        (*inverse)[row * k + col] = column[row];
      }
    }
  }
  return true;
}

Coefficient waldCoefficient(double estimate, double se, double level, std::size_t n) {
  Coefficient coefficient;
  const double zq = normalQuantile(0.5 * (1.0 + level));
  coefficient.value = makeInterval(estimate, {estimate - zq * se, estimate + zq * se}, 0, "eval examples (Wald)",
                                   level, n);
  coefficient.se = se;
  coefficient.z = estimate / se;
  coefficient.pValue = std::erfc(std::fabs(coefficient.z) / kSqrt2);
  return coefficient;
}

Coefficient nanCoefficient(double level, std::size_t n) {
  Coefficient coefficient = waldCoefficient(kNaN, kNaN, level, n);
  coefficient.pValue = kNaN;
  return coefficient;
}

} // namespace

// ----- bootstrap over examples -------------------------------------------------------------

std::vector<std::uint32_t> bootstrapResampleIndices(std::size_t n, int resamples, std::uint64_t seed) {
  require(resamples >= 0, "bootstrapResampleIndices", "resamples must be >= 0");
  require(n <= UINT32_MAX, "bootstrapResampleIndices", "n must fit 32 bits");
  std::vector<std::uint32_t> indices(n * static_cast<std::size_t>(resamples));
  ResampleRows draws(n, resamples, seed);
  for (int b = 0; b < resamples; ++b) {
    std::copy_n(draws.next(), n, indices.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(b) * n));
  }
  return indices;
}

std::pair<double, double> percentileInterval(std::vector<double> replicates, double level) {
  require(level > 0.0 && level < 1.0, "percentileInterval", "level must be in (0, 1)");
  replicates.erase(std::remove_if(replicates.begin(), replicates.end(), [](double v) { return std::isnan(v); }),
                   replicates.end());
  if (replicates.empty()) {
    return {kNaN, kNaN};
  }
  std::sort(replicates.begin(), replicates.end());
  auto quantile = [&](double q) {
    const double position = q * static_cast<double>(replicates.size() - 1);
    const auto below = static_cast<std::size_t>(std::floor(position));
    const std::size_t above = std::min(below + 1, replicates.size() - 1);
    const double fraction = position - static_cast<double>(below);
    // NumPy's "linear" form: x[below] + fraction * (x[above] - x[below]).
    return replicates[below] + fraction * (replicates[above] - replicates[below]);
  };
  return {quantile(0.5 * (1.0 - level)), quantile(0.5 * (1.0 + level))};
}

std::vector<double> bootstrapReplicates(std::size_t n, const IndexStatistic& statistic,
                                        const BootstrapOptions& options) {
  checkOptions(options, "bootstrapReplicates");
  std::vector<double> replicates(static_cast<std::size_t>(options.resamples), kNaN);
  if (n == 0) {
    return replicates;
  }
  std::vector<std::uint32_t> indices(n);
  ResampleRows draws(n, options.resamples, options.seed);
  for (double& replicate : replicates) {
    std::copy_n(draws.next(), n, indices.begin());
    replicate = statistic(indices);
  }
  return replicates;
}

Interval bootstrapInterval(std::size_t n, const IndexStatistic& statistic, const BootstrapOptions& options) {
  checkOptions(options, "bootstrapInterval");
  if (n == 0) {
    return nanInterval(kOverExamples, options.level, options.resamples);
  }
  std::vector<std::uint32_t> all(n);
  std::iota(all.begin(), all.end(), std::uint32_t{0});
  const double estimate = statistic(all);
  return makeInterval(estimate, percentileInterval(bootstrapReplicates(n, statistic, options), options.level),
                      options.resamples, kOverExamples, options.level, n);
}

ResampleRanks::ResampleRanks(const std::vector<double>& values) : m_level(values.size()) {
  std::vector<std::uint32_t> order(values.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  std::sort(order.begin(), order.end(), [&](std::uint32_t i, std::uint32_t j) { return values[i] < values[j]; });
  std::uint32_t level = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (k > 0 && values[order[k]] != values[order[k - 1]]) {
      ++level;
    }
    m_level[order[k]] = level;
  }
  m_count.assign(values.empty() ? 0 : level + 1, 0);
  m_rank.assign(m_count.size(), 0.0);
}

void ResampleRanks::ranks(const std::uint32_t* rows, std::size_t count, std::vector<double>& out) {
  std::fill(m_count.begin(), m_count.end(), 0);
  for (std::size_t k = 0; k < count; ++k) {
    ++m_count[m_level[rows[k]]];
  }
  // A value held t times after `start` smaller ones spans ranks start + 1 .. start + t.
  std::size_t start = 0;
  for (std::size_t l = 0; l < m_count.size(); ++l) {
    const std::size_t end = start + m_count[l];
    m_rank[l] = 0.5 * static_cast<double>(start + 1 + end);
    start = end;
  }
  out.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    out[k] = m_rank[m_level[rows[k]]];
  }
}

Interval bootstrapMean(const std::vector<double>& values, const BootstrapOptions& options) {
  checkOptions(options, "bootstrapMean");
  if (values.empty()) {
    return nanInterval(kOverExamples, options.level, options.resamples);
  }
  return makeInterval(mean(values), percentileInterval(bootstrapMeans(values, options), options.level),
                      options.resamples, kOverExamples, options.level, values.size());
}

Interval bootstrapMeanBca(const std::vector<double>& values, const BootstrapOptions& options) {
  checkOptions(options, "bootstrapMeanBca");
  if (values.empty()) {
    return nanInterval(kOverExamples, options.level, options.resamples);
  }
  const std::size_t n = values.size();
  const double estimate = mean(values);
  std::vector<double> replicates = bootstrapMeans(values, options);
  Interval interval = makeInterval(estimate, {estimate, estimate}, options.resamples,
                                   "eval examples (bootstrap, BCa)", options.level, n);
  const auto below = static_cast<double>(
      std::count_if(replicates.begin(), replicates.end(), [&](double r) { return r < estimate; }));
  // Every replicate on one side (constant data): no spread to correct; the interval is the point.
  if (below == 0.0 || below == static_cast<double>(replicates.size()) || n < 2) {
    return interval;
  }
  const double z0 = normalQuantile(below / static_cast<double>(replicates.size()));
  // Jackknife acceleration: leave-one-out means (sum - x_i) / (n - 1).
  double sum = 0.0;
  for (const double v : values) {
    sum += v;
  }
  std::vector<double> jack(n);
  for (std::size_t i = 0; i < n; ++i) {
    jack[i] = (sum - values[i]) / static_cast<double>(n - 1);
  }
  const double jackMean = mean(jack);
  double num = 0.0;
  double den = 0.0;
  for (const double j : jack) {
    const double d = jackMean - j;
    num += d * d * d;
    den += d * d;
  }
  const double a = den > 0.0 ? num / (6.0 * std::pow(den, 1.5)) : 0.0;
  auto adjusted = [&](double alpha) {
    const double z = normalQuantile(alpha);
    return normalCdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)));
  };
  const double alphaLo = adjusted(0.5 * (1.0 - options.level));
  const double alphaHi = adjusted(0.5 * (1.0 + options.level));
  // percentileInterval at level L reads the (1 -+ L) / 2 quantiles; read each end on its own.
  std::sort(replicates.begin(), replicates.end());
  auto quantile = [&](double q) {
    const double position = q * static_cast<double>(replicates.size() - 1);
    const auto lower = static_cast<std::size_t>(std::floor(position));
    const std::size_t upper = std::min(lower + 1, replicates.size() - 1);
    return replicates[lower] + (position - static_cast<double>(lower)) * (replicates[upper] - replicates[lower]);
  };
  interval.lo = quantile(alphaLo);
  interval.hi = quantile(alphaHi);
  return interval;
}

Interval bootstrapRatio(const std::vector<double>& numerator, const std::vector<double>& denominator,
                        const BootstrapOptions& options) {
  checkOptions(options, "bootstrapRatio");
  require(numerator.size() == denominator.size(), "bootstrapRatio", "numerator and denominator sizes differ");
  const std::size_t n = numerator.size();
  if (n == 0) {
    return nanInterval(kOverExamples, options.level, options.resamples);
  }
  auto ratio = [](double top, double bottom) { return bottom == 0.0 ? kNaN : top / bottom; };
  double top = 0.0;
  double bottom = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    top += numerator[i];
    bottom += denominator[i];
  }
  const double estimate = ratio(top, bottom);
  std::vector<double> replicates(static_cast<std::size_t>(options.resamples));
  ResampleRows draws(n, options.resamples, options.seed);
  for (double& replicate : replicates) {
    const std::uint32_t* rows = draws.next();
    double s = 0.0;
    double t = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      s += numerator[rows[i]];
      t += denominator[rows[i]];
    }
    replicate = ratio(s, t);
  }
  return makeInterval(estimate, percentileInterval(std::move(replicates), options.level), options.resamples,
                      kOverExamples, options.level, n);
}

// ----- paired comparisons ------------------------------------------------------------------

PairedComparison pairedBootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                 const BootstrapOptions& options) {
  checkOptions(options, "pairedBootstrap");
  require(a.size() == b.size(), "pairedBootstrap", "the two series have different sizes");
  PairedComparison result;
  result.test = "paired bootstrap (centred)";
  if (a.empty()) {
    result.difference = nanInterval(kOverExamples, options.level, options.resamples);
    result.pValue = kNaN;
    return result;
  }
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    d[i] = a[i] - b[i];
  }
  const double observed = mean(d);
  const std::vector<double> replicates = bootstrapMeans(d, options);
  // Centred null: d* - d has the bootstrap's spread around 0; count as extreme as |d|.
  std::size_t extreme = 0;
  for (const double r : replicates) {
    if (std::fabs(r - observed) >= std::fabs(observed)) {
      ++extreme;
    }
  }
  result.pValue = static_cast<double>(1 + extreme) / static_cast<double>(replicates.size() + 1);
  result.difference = makeInterval(observed, percentileInterval(replicates, options.level), options.resamples,
                                   kOverExamples, options.level, a.size());
  return result;
}

double mcnemarExactP(std::uint64_t b, std::uint64_t c) {
  const std::uint64_t m = b + c;
  if (m == 0) {
    return 1.0;
  }
  const std::uint64_t k = std::min(b, c);
  const auto md = static_cast<double>(m);
  std::vector<double> terms;
  terms.reserve(k + 1);
  for (std::uint64_t j = 0; j <= k; ++j) {
    terms.push_back(logChoose(md, static_cast<double>(j)) - md * std::log(2.0));
  }
  return std::min(1.0, 2.0 * std::exp(logSumExp(terms)));
}

McNemarResult mcnemar(const std::vector<std::uint8_t>& firstCorrect, const std::vector<std::uint8_t>& secondCorrect) {
  require(firstCorrect.size() == secondCorrect.size(), "mcnemar", "the two series have different sizes");
  McNemarResult result;
  result.n = firstCorrect.size();
  for (std::size_t i = 0; i < firstCorrect.size(); ++i) {
    const bool first = firstCorrect[i] != 0;
    const bool second = secondCorrect[i] != 0;
    result.onlyFirst += (first && !second) ? 1U : 0U;
    result.onlySecond += (!first && second) ? 1U : 0U;
  }
  result.pValue = mcnemarExactP(result.onlyFirst, result.onlySecond);
  return result;
}

// ----- distributions -----------------------------------------------------------------------

double regularizedIncompleteBeta(double a, double b, double x) {
  require(a > 0.0 && b > 0.0, "regularizedIncompleteBeta", "a and b must be > 0");
  require(x >= 0.0 && x <= 1.0, "regularizedIncompleteBeta", "x must be in [0, 1]");
  if (x == 0.0 || x == 1.0) {
    return x;
  }
  const double logFront =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use the
  // symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return std::exp(logFront) * betaContinuedFraction(a, b, x) / a;
  }
  return 1.0 - std::exp(logFront) * betaContinuedFraction(b, a, 1.0 - x) / b;
}

double studentTCdf(double t, double df) {
  require(df > 0.0, "studentTCdf", "df must be > 0");
  if (std::isnan(t)) {
    return kNaN;
  }
  if (std::isinf(t)) {
    return t > 0 ? 1.0 : 0.0;
  }
  const double upper = studentTUpperTail(std::fabs(t), df);
  return t >= 0.0 ? 1.0 - upper : upper;
}

double studentTQuantile(double p, double df) {
  require(df > 0.0, "studentTQuantile", "df must be > 0");
  require(p > 0.0 && p < 1.0, "studentTQuantile", "p must be in (0, 1)");
  if (p == 0.5) {
    return 0.0;
  }
  // Solve on the upper tail q = min(p, 1 - p) for t > 0, then restore the sign.
  const double q = p > 0.5 ? 1.0 - p : p;
  double lo = 0.0;
  double hi = 1.0;
  while (studentTUpperTail(hi, df) > q) {
    hi *= 2.0;
  }
  for (int i = 0; i < 300 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (studentTUpperTail(mid, df) > q ? lo : hi) = mid;
  }
  const double t = 0.5 * (lo + hi);
  return p > 0.5 ? t : -t;
}

double normalCdf(double z) { return 0.5 * std::erfc(-z / kSqrt2); }

double normalQuantile(double p) {
  require(p > 0.0 && p < 1.0, "normalQuantile", "p must be in (0, 1)");
  if (p > 0.5) {
    return -normalQuantile(1.0 - p);
  }
  // Lower half: bisection on the lower tail, computed without cancellation by erfc.
  double lo = -40.0;
  double hi = 0.0;
  for (int i = 0; i < 200 && hi - lo > 1e-15 * std::max(1.0, std::fabs(lo)); ++i) {
    const double mid = 0.5 * (lo + hi);
    (normalCdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double regularizedUpperGamma(double a, double x) {
  require(a > 0.0, "regularizedUpperGamma", "a must be > 0");
  require(x >= 0.0, "regularizedUpperGamma", "x must be >= 0");
  if (x == 0.0) {
    return 1.0;
  }
  const double logFront = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    // Series for P(a, x); Q = 1 - P.
    double term = 1.0 / a;
    double sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-16) {
        break;
      }
    }
    return 1.0 - sum * std::exp(logFront);
  }
  // Continued fraction for Q(a, x) (modified Lentz).
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    d = std::fabs(d) < kTiny ? kTiny : d;
    c = b + an / c;
    c = std::fabs(c) < kTiny ? kTiny : c;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < 1e-16) {
      break;
    }
  }
  return std::exp(logFront) * h;
}

// ----- across replicates -------------------------------------------------------------------

ReplicateSummary summarizeReplicates(const std::vector<double>& values, double level) {
  require(level > 0.0 && level < 1.0, "summarizeReplicates", "level must be in (0, 1)");
  ReplicateSummary summary;
  const std::size_t n = values.size();
  if (n == 0) {
    summary.mean = summary.sd = kNaN;
    summary.interval = nanInterval(kOverReplicates, level, 0);
    return summary;
  }
  summary.mean = mean(values);
  if (n < 2) {
    summary.sd = kNaN;
    summary.interval = makeInterval(summary.mean, {kNaN, kNaN}, 0, kOverReplicates, level, n);
    return summary;
  }
  summary.sd = sampleSd(values, summary.mean);
  const double half =
      studentTQuantile(0.5 * (1.0 + level), static_cast<double>(n - 1)) * summary.sd / std::sqrt(double(n));
  summary.interval =
      makeInterval(summary.mean, {summary.mean - half, summary.mean + half}, 0, kOverReplicates, level, n);
  return summary;
}

PairedComparison pairedT(const std::vector<double>& a, const std::vector<double>& b, double level) {
  require(a.size() == b.size(), "pairedT", "the two series have different sizes");
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    d[i] = a[i] - b[i];
  }
  const ReplicateSummary summary = summarizeReplicates(d, level);
  PairedComparison result;
  result.test = "paired t";
  result.difference = summary.interval;
  if (d.size() < 2) {
    result.pValue = kNaN;
    return result;
  }
  const double se = summary.sd / std::sqrt(static_cast<double>(d.size()));
  if (se == 0.0) {
    // Every difference equal: no spread, so either exactly no difference or a certain one.
    result.pValue = summary.mean == 0.0 ? 1.0 : 0.0;
    return result;
  }
  const double t = summary.mean / se;
  result.pValue = 2.0 * studentTUpperTail(std::fabs(t), static_cast<double>(d.size() - 1));
  return result;
}

// ----- where the lost examples are ---------------------------------------------------------

std::vector<std::uint8_t> lostMask(const std::vector<std::uint8_t>& teacherCorrect,
                                   const std::vector<std::uint8_t>& studentCorrect) {
  require(teacherCorrect.size() == studentCorrect.size(), "lostMask", "the two series have different sizes");
  std::vector<std::uint8_t> lost(teacherCorrect.size());
  for (std::size_t i = 0; i < lost.size(); ++i) {
    lost[i] = (teacherCorrect[i] != 0 && studentCorrect[i] == 0) ? 1 : 0;
  }
  return lost;
}

MannWhitneyResult mannWhitney(const std::vector<double>& values, const std::vector<std::uint8_t>& group,
                              const BootstrapOptions& options) {
  checkOptions(options, "mannWhitney");
  require(values.size() == group.size(), "mannWhitney", "values and group sizes differ");
  std::vector<double> x1;
  std::vector<double> x0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    (group[i] != 0 ? x1 : x0).push_back(values[i]);
  }
  MannWhitneyResult result;
  result.n1 = x1.size();
  result.n0 = x0.size();
  if (x1.empty() || x0.empty()) {
    result.u = kNaN;
    result.pValue = kNaN;
    result.rankBiserial = nanInterval("eval examples (stratified bootstrap)", options.level, options.resamples);
    return result;
  }
  double tieSum = 0.0;
  result.u = uStatistic(x1, x0, &tieSum);
  const double n1 = static_cast<double>(x1.size());
  const double n0 = static_cast<double>(x0.size());
  const double pairs = n1 * n0;
  if (tieSum == 0.0 && pairs <= 2500.0) {
    const std::vector<double> dist = exactUDistribution(x1.size(), x0.size());
    const auto u = static_cast<std::size_t>(std::llround(result.u));
    double atOrBelow = 0.0;
    double atOrAbove = 0.0;
    for (std::size_t k = 0; k < dist.size(); ++k) {
      atOrBelow += k <= u ? dist[k] : 0.0;
      atOrAbove += k >= u ? dist[k] : 0.0;
    }
    result.pValue = std::min(1.0, 2.0 * std::min(atOrBelow, atOrAbove));
    result.exact = true;
  } else {
    const double total = n1 + n0;
    const double variance = pairs / 12.0 * ((total + 1.0) - tieSum / (total * (total - 1.0)));
    const double z = std::max(0.0, std::fabs(result.u - pairs / 2.0) - 0.5) / std::sqrt(variance);
    result.pValue = variance > 0.0 ? std::erfc(z / kSqrt2) : 1.0;
  }
  // Stratified bootstrap of r: the group sizes are part of the design (which examples were
  // lost is the outcome, not resampled away), and an empty group would leave r undefined.
  // Each resample's U from the rank sum of its first group, the ranks counted over the levels
  // of x1 and x0 together (ResampleRanks: the numbers of sorting each resample, exactly).
  Rng rng(deriveSeed(options.seed, "bootstrap:stratified"));
  std::vector<double> replicates(static_cast<std::size_t>(options.resamples));
  std::vector<double> all(x1);
  all.insert(all.end(), x0.begin(), x0.end());
  const bool anyNaN = std::any_of(all.begin(), all.end(), [](double v) { return std::isnan(v); });
  std::optional<ResampleRanks> levels;
  if (!anyNaN) {
    levels.emplace(all);
  }
  // rows: the resample as indices into `all`, group 1's draws first, then group 0's.
  std::vector<std::uint32_t> rows(all.size());
  std::vector<double> ranks;
  for (double& replicate : replicates) {
    for (std::size_t k = 0; k < x1.size(); ++k) {
      rows[k] = static_cast<std::uint32_t>(rng.uniformInt(x1.size()));
    }
    for (std::size_t k = x1.size(); k < rows.size(); ++k) {
      rows[k] = static_cast<std::uint32_t>(x1.size() + rng.uniformInt(x0.size()));
    }
    double u = 0.0;
    if (levels) {
      levels->ranks(rows.data(), rows.size(), ranks);
      double rankSum = 0.0;
      for (std::size_t k = 0; k < x1.size(); ++k) {
        rankSum += ranks[k];
      }
      u = rankSum - n1 * (n1 + 1.0) / 2.0; // as uStatistic
    } else {
      std::vector<double> s1(x1.size());
      std::vector<double> s0(x0.size());
      for (std::size_t k = 0; k < rows.size(); ++k) {
        (k < x1.size() ? s1[k] : s0[k - x1.size()]) = all[rows[k]];
      }
      u = uStatistic(s1, s0, nullptr);
    }
    replicate = 2.0 * u / pairs - 1.0;
  }
  result.rankBiserial = makeInterval(2.0 * result.u / pairs - 1.0, percentileInterval(replicates, options.level),
                                     options.resamples, "eval examples (stratified bootstrap)", options.level,
                                     values.size());
  return result;
}

LogisticFit logisticRegression(const std::vector<std::vector<double>>& covariates,
                               const std::vector<std::uint8_t>& outcome, bool standardize, double level) {
  require(level > 0.0 && level < 1.0, "logisticRegression", "level must be in (0, 1)");
  const std::size_t n = outcome.size();
  const std::size_t p = covariates.size();
  const std::size_t k = p + 1;
  for (const auto& column : covariates) {
    require(column.size() == n, "logisticRegression", "a covariate's size differs from the outcome's");
  }
  // Design matrix, row-major n x k, intercept first.
  std::vector<double> x(n * k, 1.0);
  for (std::size_t j = 0; j < p; ++j) {
    double centre = 0.0;
    double scale = 1.0;
    if (standardize) {
      require(n >= 2, "logisticRegression", "standardizing needs at least 2 examples");
      centre = mean(covariates[j]);
      scale = sampleSd(covariates[j], centre);
      require(scale > 0.0, "logisticRegression", "covariate " + std::to_string(j) + " is constant");
    }
    for (std::size_t i = 0; i < n; ++i) {
      x[i * k + j + 1] = (covariates[j][i] - centre) / scale;
    }
  }
  LogisticFit fit;
  std::vector<double> beta(k, 0.0);
  std::vector<double> hessian(k * k);
  std::vector<double> gradient(k);
  // Fills gradient = X^T (y - mu) and hessian = X^T W X at beta.
  auto evaluate = [&] {
    std::fill(hessian.begin(), hessian.end(), 0.0);
    std::fill(gradient.begin(), gradient.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double eta = 0.0;
      for (std::size_t c = 0; c < k; ++c) {
        eta += x[i * k + c] * beta[c];
      }
      const double mu = 1.0 / (1.0 + std::exp(-eta));
      const double w = mu * (1.0 - mu);
      const double residual = (outcome[i] != 0 ? 1.0 : 0.0) - mu;
      for (std::size_t r = 0; r < k; ++r) {
        gradient[r] += x[i * k + r] * residual;
        for (std::size_t c = 0; c <= r; ++c) {
          hessian[r * k + c] += w * x[i * k + r] * x[i * k + c];
        }
      }
    }
    for (std::size_t r = 0; r < k; ++r) {
      for (std::size_t c = r + 1; c < k; ++c) {
        hessian[r * k + c] = hessian[c * k + r];
      }
    }
  };
  for (int iteration = 1; iteration <= 100 && n > 0; ++iteration) {
    evaluate();
    std::vector<double> step;
    if (!choleskySolve(hessian, k, gradient, &step, nullptr)) {
      break;
    }
    double largest = 0.0;
    for (std::size_t c = 0; c < k; ++c) {
      beta[c] += step[c];
      largest = std::max(largest, std::fabs(step[c]));
    }
    fit.iterations = iteration;
    if (largest < 1e-10) {
      fit.converged = true;
      break;
    }
  }
  std::vector<double> covariance;
  if (fit.converged) {
    evaluate();
    fit.converged = choleskySolve(hessian, k, gradient, nullptr, &covariance);
  }
  if (!fit.converged) {
    fit.intercept = nanCoefficient(level, n);
    fit.slopes.assign(p, nanCoefficient(level, n));
    return fit;
  }
  fit.intercept = waldCoefficient(beta[0], std::sqrt(covariance[0]), level, n);
  for (std::size_t j = 1; j < k; ++j) {
    fit.slopes.push_back(waldCoefficient(beta[j], std::sqrt(covariance[j * k + j]), level, n));
  }
  return fit;
}

FisherResult fisherExact(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) {
  FisherResult result;
  const double ad = static_cast<double>(a) * static_cast<double>(d);
  const double bc = static_cast<double>(b) * static_cast<double>(c);
  result.oddsRatio = bc == 0.0 ? (ad == 0.0 ? kNaN : kInf) : ad / bc;
  const std::uint64_t row1 = a + b;
  const std::uint64_t col1 = a + c;
  const std::uint64_t total = a + b + c + d;
  if (total == 0) {
    return result;
  }
  const std::uint64_t low = row1 + col1 > total ? row1 + col1 - total : 0;
  const std::uint64_t high = std::min(row1, col1);
  const auto logP = [&](std::uint64_t cell) {
    return logChoose(double(col1), double(cell)) + logChoose(double(total - col1), double(row1 - cell)) -
           logChoose(double(total), double(row1));
  };
  const double observed = logP(a);
  std::vector<double> terms;
  for (std::uint64_t cell = low; cell <= high; ++cell) {
    const double lp = logP(cell);
    // Tables as likely as the observed one count too; the tolerance absorbs lgamma's rounding.
    if (lp <= observed + std::log1p(1e-7)) {
      terms.push_back(lp);
    }
  }
  result.pValue = std::min(1.0, std::exp(logSumExp(terms)));
  return result;
}

ChiSquareResult chiSquareIndependence(const std::vector<std::uint64_t>& counts, std::size_t rows, std::size_t cols) {
  require(counts.size() == rows * cols, "chiSquareIndependence", "counts size is not rows x cols");
  std::vector<double> rowSum(rows, 0.0);
  std::vector<double> colSum(cols, 0.0);
  double total = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const auto v = static_cast<double>(counts[r * cols + c]);
      rowSum[r] += v;
      colSum[c] += v;
      total += v;
    }
  }
  const auto keptRows = static_cast<std::size_t>(std::count_if(rowSum.begin(), rowSum.end(), [](double s) { return s > 0; }));
  const auto keptCols = static_cast<std::size_t>(std::count_if(colSum.begin(), colSum.end(), [](double s) { return s > 0; }));
  ChiSquareResult result;
  if (keptRows < 2 || keptCols < 2) {
    result.pValue = kNaN;
    result.cramersV = kNaN;
    result.minExpected = kNaN;
    return result;
  }
  result.minExpected = kInf;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      if (rowSum[r] == 0.0 || colSum[c] == 0.0) {
        continue;
      }
      const double expected = rowSum[r] * colSum[c] / total;
      const double diff = static_cast<double>(counts[r * cols + c]) - expected;
      result.chiSquare += diff * diff / expected;
      result.minExpected = std::min(result.minExpected, expected);
    }
  }
  result.df = static_cast<int>((keptRows - 1) * (keptCols - 1));
  result.pValue = regularizedUpperGamma(0.5 * result.df, 0.5 * result.chiSquare);
  result.cramersV =
      std::sqrt(result.chiSquare / (total * static_cast<double>(std::min(keptRows, keptCols) - 1)));
  return result;
}

CategoryTable categoryTable(const std::vector<std::int64_t>& category, const std::vector<std::uint8_t>& outcome) {
  require(category.size() == outcome.size(), "categoryTable", "category and outcome sizes differ");
  std::map<std::int64_t, std::pair<std::uint64_t, std::uint64_t>> tally;
  for (std::size_t i = 0; i < category.size(); ++i) {
    auto& cell = tally[category[i]];
    (outcome[i] != 0 ? cell.second : cell.first) += 1;
  }
  CategoryTable table;
  for (const auto& [value, cell] : tally) {
    table.categories.push_back(value);
    table.counts.push_back(cell.first);
    table.counts.push_back(cell.second);
  }
  return table;
}

} // namespace kdscope::core::analysis
