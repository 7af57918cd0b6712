#include "core/analysis/residual.h"

#include <algorithm>
#include <cmath>

#include "core/analysis/analysis_common.h"

namespace kdscope::core::analysis {
namespace {

using detail::kNaN;
using detail::parallelFor;
using detail::require;
using detail::resolveThreads;

/// Examples per chunk: a chunk of X is converted to float64 and transposed once, so that the
/// products read it as contiguous runs (p x 64 doubles stay in L2 for widths up to ~1000).
constexpr std::size_t kChunk = 64;

/// A strided float matrix: row r is data + r * stride, `width` columns.
struct View {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t width = 0;
  std::size_t stride = 0;
  [[nodiscard]] const float* row(std::size_t r) const { return data + r * stride; }
};

std::vector<double> means(const View& v) {
  std::vector<double> m(v.width, 0.0);
  for (std::size_t r = 0; r < v.rows; ++r) {
    const float* row = v.row(r);
    for (std::size_t k = 0; k < v.width; ++k) {
      m[k] += row[k];
    }
  }
  for (double& x : m) {
    x /= static_cast<double>(v.rows);
  }
  return m;
}

/// Rows [r0, r0 + m) of v, centred, transposed into out (width x kChunk, zero beyond m).
void loadTransposed(const View& v, const std::vector<double>& mean, std::size_t r0, std::size_t m, double* out) {
  std::fill(out, out + v.width * kChunk, 0.0);
  for (std::size_t r = 0; r < m; ++r) {
    const float* row = v.row(r0 + r);
    for (std::size_t k = 0; k < v.width; ++k) {
      out[k * kChunk + r] = static_cast<double>(row[k]) - mean[k];
    }
  }
}

/// Four partial sums (reduced in a fixed order) so that the compiler can keep two SSE2
/// lanes busy without reassociating a single sum.
double dotChunk(const double* a, const double* b) {
  double s0 = 0.0;
  double s1 = 0.0;
  double s2 = 0.0;
  double s3 = 0.0;
  for (std::size_t r = 0; r < kChunk; r += 4) {
    s0 += a[r] * b[r];
    s1 += a[r + 1] * b[r + 1];
    s2 += a[r + 2] * b[r + 2];
    s3 += a[r + 3] * b[r + 3];
  }
  return (s0 + s1) + (s2 + s3);
}

/// In-place Cholesky of the p x p symmetric positive definite matrix a (lower triangle used).
/// Returns false when a pivot is not positive.
bool cholesky(std::vector<double>& a, std::size_t p) {
  for (std::size_t j = 0; j < p; ++j) {
    double d = a[j * p + j];
    for (std::size_t k = 0; k < j; ++k) {
      d -= a[j * p + k] * a[j * p + k];
    }
    if (!(d > 0.0) || !std::isfinite(d)) {
      return false;
    }
    const double l = std::sqrt(d);
    a[j * p + j] = l;
    for (std::size_t i = j + 1; i < p; ++i) {
      double s = a[i * p + j];
      for (std::size_t k = 0; k < j; ++k) {
        s -= a[i * p + k] * a[j * p + k];
      }
      a[i * p + j] = s / l;
    }
  }
  return true;
}

/// Solves L L' w = b for one column b (length p) in place.
void choleskySolve(const std::vector<double>& l, std::size_t p, double* b) {
  for (std::size_t i = 0; i < p; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) {
      s -= l[i * p + k] * b[k];
    }
    b[i] = s / l[i * p + i];
  }
  for (std::size_t i = p; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < p; ++k) {
      s -= l[k * p + i] * b[k];
    }
    b[i] = s / l[i * p + i];
  }
}

LayerResidual residual(const View& x, const View& y, const ResidualOptions& options) {
  const std::size_t n = x.rows;
  const std::size_t p = x.width;
  const std::size_t q = y.width;
  LayerResidual out;
  if (n == 0) {
    return out;
  }
  const std::size_t threads = resolveThreads(options.threads);
  const std::vector<double> mx = means(x);
  const std::vector<double> my = means(y);
  const std::size_t chunks = (n + kChunk - 1) / kChunk;

  // G = Xc'Xc (lower triangle) and B = Xc'Yc. Workers own blocks of rows of G and B and walk
  // all chunks in order, so every entry is summed in the same order for any thread count.
  std::vector<double> g(p * p, 0.0);
  std::vector<double> b(p * q, 0.0);
  constexpr std::size_t kRowsPerTask = 16;
  const std::size_t tasks = (p + kRowsPerTask - 1) / kRowsPerTask;
  parallelFor(tasks, threads, [&](std::size_t task) {
    const std::size_t i0 = task * kRowsPerTask;
    const std::size_t i1 = std::min(p, i0 + kRowsPerTask);
    std::vector<double> xt(p * kChunk);
    std::vector<double> yt(q * kChunk);
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t r0 = c * kChunk;
      const std::size_t m = std::min(kChunk, n - r0);
      loadTransposed(x, mx, r0, m, xt.data());
      loadTransposed(y, my, r0, m, yt.data());
      for (std::size_t i = i0; i < i1; ++i) {
        const double* xi = xt.data() + i * kChunk;
        for (std::size_t j = 0; j <= i; ++j) {
          g[i * p + j] += dotChunk(xi, xt.data() + j * kChunk);
        }
        for (std::size_t k = 0; k < q; ++k) {
          b[i * q + k] += dotChunk(xi, yt.data() + k * kChunk);
        }
      }
    }
  });

  // W = (G + rho I)^-1 B; W = 0 when X is constant (the fit is then the mean of Y).
  std::vector<double> w(p * q, 0.0);
  double trace = 0.0;
  for (std::size_t i = 0; i < p; ++i) {
    trace += g[i * p + i];
  }
  if (trace > 0.0 && std::isfinite(trace)) {
    double rho = options.ridge * trace / static_cast<double>(p);
    std::vector<double> l;
    bool ok = false;
    for (int attempt = 0; attempt < 6 && !ok; ++attempt, rho = std::max(rho * 1e3, 1e-12 * trace)) {
      l = g;
      for (std::size_t i = 0; i < p; ++i) {
        l[i * p + i] += rho;
      }
      ok = cholesky(l, p);
    }
    if (ok) {
      std::vector<double> column(p);
      for (std::size_t k = 0; k < q; ++k) {
        for (std::size_t i = 0; i < p; ++i) {
          column[i] = b[i * q + k];
        }
        choleskySolve(l, p, column.data());
        for (std::size_t i = 0; i < p; ++i) {
          w[i * q + k] = column[i];
        }
      }
    }
  }

  // Residuals row by row: per chunk partial sums, reduced in chunk order.
  struct Partial {
    double sse = 0.0;
    double total = 0.0;
    double cosine = 0.0;
    std::size_t cosineRows = 0;
    double directSq = 0.0;
    double directCosine = 0.0;
    std::size_t directRows = 0;
  };
  std::vector<Partial> partial(chunks);
  const bool sameWidth = p == q;
  parallelFor(chunks, threads, [&](std::size_t c) {
    const std::size_t r0 = c * kChunk;
    const std::size_t m = std::min(kChunk, n - r0);
    std::vector<double> xc(m * p);
    std::vector<double> pred(m * q, 0.0);
    for (std::size_t r = 0; r < m; ++r) {
      const float* row = x.row(r0 + r);
      for (std::size_t i = 0; i < p; ++i) {
        xc[r * p + i] = static_cast<double>(row[i]) - mx[i];
      }
    }
    for (std::size_t i = 0; i < p; ++i) {
      const double* wi = w.data() + i * q;
      for (std::size_t r = 0; r < m; ++r) {
        const double xi = xc[r * p + i];
        double* pr = pred.data() + r * q;
        for (std::size_t k = 0; k < q; ++k) {
          pr[k] += xi * wi[k];
        }
      }
    }
    Partial& part = partial[c];
    for (std::size_t r = 0; r < m; ++r) {
      const float* yr = y.row(r0 + r);
      const float* xr = x.row(r0 + r);
      double dotFit = 0.0;
      double normFit = 0.0;
      double normY = 0.0;
      for (std::size_t k = 0; k < q; ++k) {
        const double yk = static_cast<double>(yr[k]);
        const double fit = pred[r * q + k] + my[k]; // x W + b, b = mean(Y) - mean(X) W
        const double e = yk - fit;
        part.sse += e * e;
        const double centred = yk - my[k];
        part.total += centred * centred;
        dotFit += fit * yk;
        normFit += fit * fit;
        normY += yk * yk;
      }
      if (normFit > 0.0 && normY > 0.0) {
        part.cosine += 1.0 - dotFit / std::sqrt(normFit * normY);
        ++part.cosineRows;
      }
      if (sameWidth) {
        double dotXY = 0.0;
        double normX = 0.0;
        for (std::size_t k = 0; k < q; ++k) {
          const double xk = static_cast<double>(xr[k]);
          const double yk = static_cast<double>(yr[k]);
          part.directSq += (xk - yk) * (xk - yk);
          dotXY += xk * yk;
          normX += xk * xk;
        }
        if (normX > 0.0 && normY > 0.0) {
          part.directCosine += 1.0 - dotXY / std::sqrt(normX * normY);
          ++part.directRows;
        }
      }
    }
  });
  Partial sum;
  for (const Partial& part : partial) {
    sum.sse += part.sse;
    sum.total += part.total;
    sum.cosine += part.cosine;
    sum.cosineRows += part.cosineRows;
    sum.directSq += part.directSq;
    sum.directCosine += part.directCosine;
    sum.directRows += part.directRows;
  }
  const double elements = static_cast<double>(n) * static_cast<double>(q);
  out.mse = sum.sse / elements;
  out.unexplained = sum.total > 0.0 ? sum.sse / sum.total : kNaN;
  out.cosineDistance = sum.cosineRows > 0 ? sum.cosine / static_cast<double>(sum.cosineRows) : kNaN;
  if (sameWidth) {
    out.directMse = sum.directSq / elements;
    out.directCosineDistance = sum.directRows > 0 ? sum.directCosine / static_cast<double>(sum.directRows) : kNaN;
  }
  return out;
}

} // namespace

LayerResidual affineResidual(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q,
                             const ResidualOptions& options) {
  require(p > 0 && q > 0, "affineResidual", "widths must be positive");
  require(x.size() % p == 0 && y.size() % q == 0, "affineResidual", "array sizes are not multiples of the widths");
  const std::size_t n = x.size() / p;
  require(y.size() / q == n, "affineResidual", "x and y have different numbers of rows");
  return residual(View{x.data(), n, p, p}, View{y.data(), n, q, q}, options);
}

LayerResidual layerResidual(const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                            std::size_t studentLayer, const std::vector<float>& hiddenT, std::size_t layersT,
                            std::size_t widthT, std::size_t teacherLayer, const ResidualOptions& options) {
  const char* fn = "layerResidual";
  require(layersS > 0 && widthS > 0 && layersT > 0 && widthT > 0, fn, "layer counts and widths must be positive");
  require(studentLayer < layersS && teacherLayer < layersT, fn, "layer index out of range");
  require(hiddenS.size() % (layersS * widthS) == 0 && hiddenT.size() % (layersT * widthT) == 0, fn,
          "array sizes do not match their layers and widths");
  const std::size_t n = hiddenS.size() / (layersS * widthS);
  require(hiddenT.size() / (layersT * widthT) == n, fn, "student and teacher have different numbers of rows");
  const View x{hiddenS.data() + studentLayer * widthS, n, widthS, layersS * widthS};
  const View y{hiddenT.data() + teacherLayer * widthT, n, widthT, layersT * widthT};
  return residual(x, y, options);
}

LayerPairing layerPairing(const std::string& map, int teacherLayers, int studentLayers, const std::vector<int>& list) {
  const int lt = teacherLayers;
  const int ls = studentLayers;
  LayerPairing out;
  if (lt < 1 || ls < 1) {
    return out;
  }
  out.hidden.assign(static_cast<std::size_t>(ls) + 1, -1);
  out.attention.assign(static_cast<std::size_t>(ls), -1);
  for (int i = 0; i <= ls; ++i) {
    int hidden = -1;
    if (map == "last") {
      hidden = lt - ls + i;
    } else if (map == "list") {
      hidden = static_cast<int>(list.size()) == ls + 1 ? list[static_cast<std::size_t>(i)] : -1;
    } else { // "uniform", the default
      hidden = (i * lt) / ls;
    }
    out.hidden[static_cast<std::size_t>(i)] = hidden >= 0 && hidden <= lt ? hidden : -1;
  }
  for (int i = 0; i < ls; ++i) {
    int block = -1;
    if (map == "last") {
      block = lt - ls + i;
    } else if (map == "list") {
      block = out.hidden[static_cast<std::size_t>(i) + 1] - 1;
    } else {
      block = ((i + 1) * lt) / ls - 1;
    }
    out.attention[static_cast<std::size_t>(i)] = block >= 0 && block < lt ? block : -1;
  }
  return out;
}

} // namespace kdscope::core::analysis
