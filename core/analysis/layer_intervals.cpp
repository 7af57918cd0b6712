#include "core/analysis/layer_intervals.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <stdexcept>
#include <string>

#include "core/analysis/analysis_common.h"
#include "core/analysis/cka.h"
#include "core/common/blas_threads.h"
#include "core/common/item_threads.h"

namespace kdscope::core::analysis {

namespace {

using detail::layerOf;

/// The linear CKA of bootstrap resamples of one (teacher, student) layer pair. A row drawn c
/// times adds c times to every sum, so a resample's centred cross-products X^T X, Y^T Y and
/// X^T Y are those of its distinct rows (about 63% of them), each centred by the resample's
/// mean and scaled by sqrt(c): the same numbers as linearCka of the gathered rows up to
/// float64 rounding. The distinct rows of X and Y, so centred, are written side by side into
/// one u x (p + q) matrix Z, and one float64 dsyrk gives the lower triangle of Z^T Z, whose
/// blocks are X^T X, Y^T X and Y^T Y: the multiply-adds of the three products, with Z packed
/// once and no temporary tensors (bench/README.md, "Session 13"). The resamples run one per
/// thread (item_threads.h), so each one's bits do not depend on the thread count.
class ResampledCka {
public:
  ResampledCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q, std::size_t n)
      : m_n(n), m_p(p), m_q(q), m_both(n * (p + q)) {
    const std::size_t w = p + q;
    for (std::size_t i = 0; i < n; ++i) {
      std::copy_n(x.begin() + static_cast<std::ptrdiff_t>(i * p), p, m_both.begin() + static_cast<std::ptrdiff_t>(i * w));
      std::copy_n(y.begin() + static_cast<std::ptrdiff_t>(i * q), q,
                  m_both.begin() + static_cast<std::ptrdiff_t>(i * w + p));
    }
  }

  /// CKA of the resample whose n rows are `rows`. Reads only the shared data (each thread its
  /// own scratch): any number of threads may call.
  [[nodiscard]] double operator()(const std::uint32_t* rows) const {
    const std::size_t w = m_p + m_q;
    thread_local std::vector<std::uint32_t> counts;
    thread_local std::vector<double> z;
    thread_local std::vector<double> mean;
    thread_local std::vector<double> gram;
    counts.assign(m_n, 0);
    for (std::size_t k = 0; k < m_n; ++k) {
      ++counts[rows[k]];
    }
    // The resample's column means: sum over distinct rows of c_i a_i, in row order, over n.
    mean.assign(w, 0.0);
    double* __restrict m = mean.data();
    std::size_t u = 0;
    for (std::size_t i = 0; i < m_n; ++i) {
      if (counts[i] == 0) {
        continue;
      }
      ++u;
      const double c = counts[i];
      const float* __restrict a = m_both.data() + i * w;
      for (std::size_t k = 0; k < w; ++k) {
        m[k] += c * static_cast<double>(a[k]);
      }
    }
    for (std::size_t k = 0; k < w; ++k) {
      m[k] /= static_cast<double>(m_n);
    }
    // Z: row r = (a_i - mean) sqrt(c_i) for the r-th distinct row i.
    z.resize(u * w);
    double* __restrict out = z.data();
    for (std::size_t i = 0; i < m_n; ++i) {
      if (counts[i] == 0) {
        continue;
      }
      const double scale = std::sqrt(static_cast<double>(counts[i]));
      const float* __restrict a = m_both.data() + i * w;
      for (std::size_t k = 0; k < w; ++k) {
        out[k] = (static_cast<double>(a[k]) - m[k]) * scale;
      }
      out += w;
    }
    // Z row-major is Z^T column-major (w x u): Z^T Z = A A^T with A = Z^T; lower triangle,
    // column-major: entry (i, j), i >= j, at gram[j * w + i].
    gram.resize(w * w);
    const auto wi = static_cast<int>(w);
    dsyrkLower(false, wi, static_cast<int>(u), 1.0, z.data(), wi, 0.0, gram.data(), wi);
    const auto squaresOf = [&](std::size_t begin, std::size_t end) { // ||block||_F^2 of a diagonal block
      double diagonal = 0.0;
      double below = 0.0;
      for (std::size_t j = begin; j < end; ++j) {
        const double* column = gram.data() + j * w;
        diagonal += column[j] * column[j];
        for (std::size_t i = j + 1; i < end; ++i) {
          below += column[i] * column[i];
        }
      }
      return diagonal + 2.0 * below;
    };
    double cross = 0.0; // ||Y^T X||_F^2: rows p.. of columns 0..p-1
    for (std::size_t j = 0; j < m_p; ++j) {
      const double* column = gram.data() + j * w;
      for (std::size_t i = m_p; i < w; ++i) {
        cross += column[i] * column[i];
      }
    }
    const double selfX = squaresOf(0, m_p);
    const double selfY = squaresOf(m_p, w);
    const double denominator = std::sqrt(selfX) * std::sqrt(selfY);
    if (!(denominator > 0.0) || !std::isfinite(denominator)) {
      return std::numeric_limits<double>::quiet_NaN(); // a constant side, as linearCka says
    }
    return cross / denominator;
  }

private:
  std::size_t m_n;
  std::size_t m_p;
  std::size_t m_q;
  std::vector<float> m_both; ///< n x (p + q), row-major: row i is [x_i, y_i] (float32, as recorded; read as float64)
};

} // namespace

MatchedCkaWithRunnerUp matchedCkaWithRunnerUp(const std::vector<float>& hiddenT, std::size_t layersT,
                                              std::size_t widthT, const std::vector<float>& hiddenS,
                                              std::size_t layersS, std::size_t widthS,
                                              const std::vector<int>& teacherOf, const BootstrapOptions& options) {
  if (layersT == 0 || widthT == 0 || layersS == 0 || widthS == 0 || hiddenT.size() % (layersT * widthT) != 0 ||
      hiddenS.size() % (layersS * widthS) != 0) {
    throw std::invalid_argument("matchedCkaIntervals: hidden states are not [N, layers, width]");
  }
  const std::size_t n = hiddenT.size() / (layersT * widthT);
  if (hiddenS.size() / (layersS * widthS) != n) {
    throw std::invalid_argument("matchedCkaIntervals: teacher and student have different numbers of rows");
  }
  if (teacherOf.size() != layersS) {
    throw std::invalid_argument("matchedCkaIntervals: teacherOf needs one entry per student hidden index (" +
                                std::to_string(layersS) + "), got " + std::to_string(teacherOf.size()));
  }
  const std::vector<std::uint32_t> indices = bootstrapResampleIndices(n, options.resamples, options.seed);
  MatchedCkaWithRunnerUp out;
  std::vector<std::vector<double>> replicatesOf(layersS);
  std::vector<double> estimates(layersS, std::numeric_limits<double>::quiet_NaN());
  std::vector<bool> eligible(layersS, false);
  for (std::size_t i = 0; i < layersS; ++i) {
    Interval interval;
    interval.over = kOverExamples;
    interval.level = options.level;
    interval.count = n;
    interval.resamples = options.resamples;
    const int j = teacherOf[i];
    if (j < 0 || static_cast<std::size_t>(j) >= layersT || n < 2) {
      interval.estimate = interval.lo = interval.hi = std::numeric_limits<double>::quiet_NaN();
      out.cka.push_back(interval);
      continue;
    }
    const auto t = static_cast<std::size_t>(j);
    const auto x = layerOf(hiddenT, layersT, widthT, t);
    const auto y = layerOf(hiddenS, layersS, widthS, i);
    interval.estimate = linearCka(x, widthT, y, widthS);
    const ResampledCka resampled(x, widthT, y, widthS, n);
    std::vector<double>& replicates = replicatesOf[i];
    replicates.assign(static_cast<std::size_t>(options.resamples), 0.0);
    forEachItemOnOneThread(options.resamples, [&](std::int64_t b) {
      replicates[static_cast<std::size_t>(b)] = resampled(indices.data() + static_cast<std::size_t>(b) * n);
    });
    const auto [lo, hi] = percentileInterval(replicates, options.level);
    interval.lo = lo;
    interval.hi = hi;
    estimates[i] = interval.estimate;
    eligible[i] = i > 0;
    out.cka.push_back(interval);
  }
  out.lowest = runnerUpFromReplicates(estimates, replicatesOf, Extreme::Lowest, options.level, n, eligible);
  return out;
}

std::vector<Interval> matchedCkaIntervals(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                                          const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                                          const std::vector<int>& teacherOf, const BootstrapOptions& options) {
  return matchedCkaWithRunnerUp(hiddenT, layersT, widthT, hiddenS, layersS, widthS, teacherOf, options).cka;
}

HeadImportanceIntervals headImportanceIntervals(const std::vector<double>& perExample, std::size_t layers,
                                                std::size_t heads, const BootstrapOptions& options) {
  const std::size_t cells = layers * heads;
  if (cells == 0 || perExample.size() % cells != 0) {
    throw std::invalid_argument("headImportanceIntervals: per-example importances are not [N, layers * heads]");
  }
  const std::size_t n = perExample.size() / cells;
  HeadImportanceIntervals out;
  out.resamples = options.resamples;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.rawLo.assign(cells, nan);
  out.rawHi.assign(cells, nan);
  out.normalisedLo.assign(cells, nan);
  out.normalisedHi.assign(cells, nan);
  if (n == 0) {
    return out;
  }
  // The estimate: the mean over every example, each layer divided by its L2 norm.
  out.normalised.assign(cells, nan);
  {
    std::vector<double> mean(cells, 0.0);
    for (std::size_t k = 0; k < n; ++k) {
      for (std::size_t c = 0; c < cells; ++c) {
        mean[c] += perExample[k * cells + c];
      }
    }
    for (std::size_t l = 0; l < layers; ++l) {
      double norm = 0.0;
      for (std::size_t h = 0; h < heads; ++h) {
        mean[l * heads + h] /= static_cast<double>(n);
        norm += mean[l * heads + h] * mean[l * heads + h];
      }
      norm = std::sqrt(norm);
      for (std::size_t h = 0; h < heads; ++h) {
        out.normalised[l * heads + h] = norm > 0.0 ? mean[l * heads + h] / norm : nan;
      }
    }
  }
  const std::vector<std::uint32_t> indices = bootstrapResampleIndices(n, options.resamples, options.seed);
  const auto b = static_cast<std::size_t>(options.resamples);
  std::vector<std::vector<double>> raw(cells, std::vector<double>(b));
  std::vector<std::vector<double>> normalised(cells, std::vector<double>(b));
  detail::forEachResampleBlock(b, [&](std::size_t begin, std::size_t end) {
    std::vector<double> mean(cells);
    for (std::size_t r = begin; r < end; ++r) {
      std::fill(mean.begin(), mean.end(), 0.0);
      const std::uint32_t* rows = indices.data() + r * n;
      for (std::size_t k = 0; k < n; ++k) {
        const double* row = perExample.data() + static_cast<std::size_t>(rows[k]) * cells;
        for (std::size_t c = 0; c < cells; ++c) {
          mean[c] += row[c];
        }
      }
      for (std::size_t l = 0; l < layers; ++l) {
        double norm = 0.0;
        for (std::size_t h = 0; h < heads; ++h) {
          const std::size_t c = l * heads + h;
          mean[c] /= static_cast<double>(n);
          norm += mean[c] * mean[c];
        }
        norm = std::sqrt(norm);
        for (std::size_t h = 0; h < heads; ++h) {
          const std::size_t c = l * heads + h;
          raw[c][r] = mean[c];
          normalised[c][r] = norm > 0.0 ? mean[c] / norm : nan;
        }
      }
    }
  });
  out.top = runnerUpFromReplicates(out.normalised, normalised, Extreme::Highest, options.level, n);
  for (std::size_t c = 0; c < cells; ++c) {
    std::tie(out.rawLo[c], out.rawHi[c]) = percentileInterval(std::move(raw[c]), options.level);
    std::tie(out.normalisedLo[c], out.normalisedHi[c]) = percentileInterval(std::move(normalised[c]), options.level);
  }
  return out;
}

} // namespace kdscope::core::analysis
