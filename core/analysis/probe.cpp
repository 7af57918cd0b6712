#include "core/analysis/probe.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <deque>
#include <limits>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "core/analysis/analysis_common.h"
#include "core/common/blas_threads.h"
#include "core/common/item_threads.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KDSCOPE_PROBE_X86_KERNELS 1
/// glibc's vector exp for AVX2 (libmvec: what GCC calls where it vectorises std::exp; at most
/// 4 ulp from the exact value). Called only where the CPU runs AVX2.
extern "C" __m256d _ZGVdN4v_exp(__m256d x); // NOLINT(bugprone-reserved-identifier)
#endif

namespace kdscope::core::analysis {
namespace {

using detail::dot;
using detail::kNaN;
using detail::parallelFor;
using detail::require;
using detail::requireLabelsInRange;
using detail::resolveThreads;

// The objective's per-example sums are split into this many fixed row blocks whatever the
// thread count, and the block partials are added in block order: that is what makes the
// fit bit-for-bit independent of the number of threads.
constexpr std::size_t kBlocks = 16;
constexpr double kArmijo = 1e-4;
constexpr std::size_t kMaxHalvings = 60;
// Iterations in a row without progress (J not lower, and the gradient not down to 0.9 of its
// best) after which the fit stops: it is then at the resolution of float64.
constexpr std::size_t kMaxStalls = 20;
// |J' - J| below this many units of J's rounding counts as "no change" in the line search.
constexpr double kFlatUlps = 8.0;
// The preconditioner's shrinkage: the fit runs on features whitened by the Cholesky factor of
// their covariance plus this multiple of the identity (standardised features: the covariance's
// mean eigenvalue is 1). It keeps the factor well conditioned when features are nearly
// collinear (or more than the examples); any value gives the same optimum.
constexpr double kPreconditionShrink = 0.05;

double dot(const std::vector<double>& a, const std::vector<double>& b) { return dot(a.data(), b.data(), a.size()); }

double maxAbs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) {
    m = std::max(m, std::abs(x));
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// The objective's exponentials: glibc's vector exp, 4 at a time, where the CPU runs AVX2, else
// (or on request) std::exp. The two differ in the last bits; on one machine the fit is
// reproducible. The matrix products are OpenBLAS's dgemm, whose kernels OpenBLAS picks for
// the CPU (OPENBLAS_CORETYPE chooses others).

/// v[k] = exp(v[k]) for k < n.
using ExpInPlace = void (*)(double* v, std::size_t n);

void expInPlaceGeneric(double* v, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    v[k] = std::exp(v[k]);
  }
}

#ifdef KDSCOPE_PROBE_X86_KERNELS
__attribute__((target("avx2,fma"))) void expInPlaceAvx2(double* v, std::size_t n) {
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    _mm256_storeu_pd(v + k, _ZGVdN4v_exp(_mm256_loadu_pd(v + k)));
  }
  for (; k < n; ++k) {
    v[k] = std::exp(v[k]);
  }
}
#endif

struct Kernels {
  ExpInPlace expInPlace = expInPlaceGeneric;
};

/// The kernels for this CPU (chosen once), or the portable ones on request.
const Kernels& kernelsFor(bool portable) {
#ifdef KDSCOPE_PROBE_X86_KERNELS
  return detail::pickKernels(portable, Kernels{expInPlaceAvx2});
#else
  return detail::pickKernels(portable, Kernels{});
#endif
}

/// Row r of the standardised design, float64.
void standardiseRow(const float* row, const LinearProbe& probe, double* out) {
  for (std::size_t k = 0; k < probe.numFeatures; ++k) {
    out[k] = (static_cast<double>(row[k]) - probe.mean[k]) / probe.scale[k];
  }
}

/// z = W x + b for one standardised row.
void logitsOf(const double* x, const double* weight, const double* bias, std::size_t classes, std::size_t features,
              double* z) {
  for (std::size_t c = 0; c < classes; ++c) {
    z[c] = bias[c] + dot(weight + c * features, x, features);
  }
}

/// The change of variables the fit runs in. With Sigma = X~^T X~ / N + shrink I = L L^T (X~ the
/// standardised design), the fit's parameters are V = W L on the design X' = X~ L^-T, so that
/// V x' = W x~ and X'^T X' / N is about I: L-BFGS then needs 2-4x fewer steps on the
/// anisotropic hidden states of a transformer. W = V L^-1; the penalty (l2 / 2) ||W||^2 and the
/// convergence test (max |dJ/dW|, |dJ/db|) stay in the original variables. Empty: identity.
struct Preconditioner {
  std::size_t features = 0;
  std::vector<double> lower;        ///< L, D x D row-major, lower-triangular
  std::vector<double> lowerInverse; ///< L^-1, D x D row-major, lower-triangular

  [[nodiscard]] bool identity() const { return lower.empty(); }

  /// W = V L^-1 for C rows of V (row-major C x D; in BLAS's column-major terms W^T = L^-T V^T).
  void weightOf(const double* v, std::size_t classes, double* w) const {
    const auto d = static_cast<int>(features);
    dgemm(false, false, d, static_cast<int>(classes), d, 1.0, lowerInverse.data(), d, v, d, 0.0, w, d);
  }

  /// out = A M^T for C rows of A (row-major C x D) and M = L or L^-1.
  void timesTransposed(const double* a, std::size_t classes, const std::vector<double>& m, double* out) const {
    const auto d = static_cast<int>(features);
    dgemm(true, false, d, static_cast<int>(classes), d, 1.0, m.data(), d, a, d, 0.0, out, d);
  }
};

/// The preconditioner of a standardised N x D design (pure; float64 products of LibTorch).
Preconditioner preconditionerOf(const std::vector<double>& design, std::size_t n, std::size_t features) {
  Preconditioner p;
  p.features = features;
  const auto x = torch::from_blob(const_cast<double*>(design.data()),
                                  {static_cast<std::int64_t>(n), static_cast<std::int64_t>(features)},
                                  torch::kFloat64);
  const auto sigma = torch::mm(x.t(), x) / static_cast<double>(n) +
                     kPreconditionShrink * torch::eye(static_cast<std::int64_t>(features), torch::kFloat64);
  const auto lower = torch::linalg_cholesky(sigma).contiguous();
  const auto inverse =
      torch::linalg_solve_triangular(lower, torch::eye(static_cast<std::int64_t>(features), torch::kFloat64),
                                     /*upper=*/false)
          .tril()
          .contiguous();
  p.lower.assign(lower.data_ptr<double>(), lower.data_ptr<double>() + features * features);
  p.lowerInverse.assign(inverse.data_ptr<double>(), inverse.data_ptr<double>() + features * features);
  return p;
}

/// X' = X~ L^-T: row i of X' is L^-1 x~_i.
std::vector<double> preconditionedDesign(const std::vector<double>& design, std::size_t n, const Preconditioner& p) {
  const auto d = static_cast<std::int64_t>(p.features);
  const auto x = torch::from_blob(const_cast<double*>(design.data()), {static_cast<std::int64_t>(n), d}, torch::kFloat64);
  const auto inverse = torch::from_blob(const_cast<double*>(p.lowerInverse.data()), {d, d}, torch::kFloat64);
  const auto out = torch::mm(x, inverse.t()).contiguous();
  return std::vector<double>(out.data_ptr<double>(), out.data_ptr<double>() + n * p.features);
}

/// The objective and its gradient on a fixed standardised design.
class Objective {
public:
  /// design: the preconditioned design X' (X~ itself when `pre` is the identity).
  Objective(const std::vector<double>& design, const std::vector<std::int64_t>& labels, std::size_t features,
            std::size_t classes, double l2, std::size_t threads, const std::atomic<std::size_t>* spareThreads,
            const Kernels& kernels, const Preconditioner& pre)
      : m_design(design), m_labels(labels), m_features(features), m_classes(classes), m_l2(l2), m_threads(threads),
        m_spareThreads(spareThreads), m_kernels(kernels),
        m_pre(pre), m_partials(kBlocks, std::vector<double>(classes * (features + 1) + 1, 0.0)), m_scratch(pre.identity() ? 0 : classes * features), m_scratch2(m_scratch.size()) {}

  /// Size of theta = [W (C x D, row-major), b (C)].
  [[nodiscard]] std::size_t size() const { return m_classes * (m_features + 1); }

  /// Returns J(theta) and writes dJ/dtheta to grad.
  double evaluate(const std::vector<double>& theta, std::vector<double>& grad) {
    const std::size_t n = m_labels.size();
    const std::size_t blockRows = (n + kBlocks - 1) / kBlocks;
    const double* weight = theta.data();
    const double* bias = theta.data() + m_classes * m_features;
    const auto classes = static_cast<int>(m_classes);
    const auto features = static_cast<int>(m_features);
    const std::size_t threads = m_threads + (m_spareThreads != nullptr ? m_spareThreads->load() : 0);
    parallelFor(kBlocks, threads, [&](std::size_t block) {
      std::vector<double>& part = m_partials[block];
      double* gW = part.data();
      double* gB = part.data() + m_classes * m_features;
      double& loss = part.back();
      std::fill(gB, part.data() + part.size(), 0.0); // dJ/dV is written by the product below
      const std::size_t begin = std::min(n, block * blockRows);
      const std::size_t end = std::min(n, (block + 1) * blockRows);
      const auto rows = static_cast<int>(end - begin);
      if (rows == 0) {
        std::fill(gW, gB, 0.0);
        return;
      }
      const double* x = m_design.data() + begin * m_features;
      // The block's logits Z = X V^T, column-major rows x C (column c: every row's logit of
      // class c: the product's long side is the rows, and the loops below run along rows),
      // then r_ic = p_ic - [c == y_i] in their place. Per row, the max, the sum of exponentials
      // and the loss take the classes in order; per class, dJ/db the rows in order.
      std::vector<double>& z = m_blockLogits[block];
      std::vector<double>& e = m_blockExp[block];
      std::vector<double>& top = m_blockTop[block];
      std::vector<double>& sum = m_blockSum[block];
      const auto count = static_cast<std::size_t>(rows);
      z.resize(count * m_classes);
      e.resize(z.size());
      top.assign(count, -std::numeric_limits<double>::infinity());
      sum.assign(count, 0.0);
      dgemm(true, false, rows, classes, features, 1.0, x, features, weight, features, 0.0, z.data(), rows);
      for (std::size_t c = 0; c < m_classes; ++c) {
        double* zc = z.data() + c * count;
        const double bc = bias[c];
        for (std::size_t r = 0; r < count; ++r) {
          zc[r] += bc;
          top[r] = std::max(top[r], zc[r]);
        }
      }
      for (std::size_t c = 0; c < m_classes; ++c) {
        const double* zc = z.data() + c * count;
        double* ec = e.data() + c * count;
        for (std::size_t r = 0; r < count; ++r) {
          ec[r] = zc[r] - top[r];
        }
      }
      m_kernels.expInPlace(e.data(), e.size());
      for (std::size_t c = 0; c < m_classes; ++c) {
        const double* ec = e.data() + c * count;
        for (std::size_t r = 0; r < count; ++r) {
          sum[r] += ec[r];
        }
      }
      for (std::size_t r = 0; r < count; ++r) {
        const auto y = static_cast<std::size_t>(m_labels[begin + r]);
        loss += top[r] + std::log(sum[r]) - z[y * count + r];
        sum[r] = 1.0 / sum[r];
      }
      for (std::size_t c = 0; c < m_classes; ++c) {
        double* zc = z.data() + c * count;
        const double* ec = e.data() + c * count;
        double g = 0.0;
        for (std::size_t r = 0; r < count; ++r) {
          zc[r] = ec[r] * sum[r] - (static_cast<std::size_t>(m_labels[begin + r]) == c ? 1.0 : 0.0);
          g += zc[r];
        }
        gB[c] += g;
      }
      // dJ/dV (unscaled) = R^T X: C x D row-major, column-major D x C = X^T R (R column-major).
      dgemm(false, false, features, classes, rows, 1.0, x, features, z.data(), rows, 0.0, gW, features);
    });
    std::fill(grad.begin(), grad.end(), 0.0);
    double loss = 0.0;
    for (const std::vector<double>& part : m_partials) {
      for (std::size_t k = 0; k < grad.size(); ++k) {
        grad[k] += part[k];
      }
      loss += part.back();
    }
    const double invN = 1.0 / static_cast<double>(n);
    double penalty = 0.0;
    if (m_pre.identity()) {
      for (std::size_t k = 0; k < m_classes * m_features; ++k) {
        grad[k] = grad[k] * invN + m_l2 * theta[k];
        penalty += theta[k] * theta[k];
      }
    } else {
      // (l2 / 2) ||W||^2 with W = V L^-1: its gradient in V is l2 W L^-T.
      m_pre.weightOf(theta.data(), m_classes, m_scratch.data());
      for (double w : m_scratch) {
        penalty += w * w;
      }
      m_pre.timesTransposed(m_scratch.data(), m_classes, m_pre.lowerInverse, m_scratch2.data());
      for (std::size_t k = 0; k < m_classes * m_features; ++k) {
        grad[k] = grad[k] * invN + m_l2 * m_scratch2[k];
      }
    }
    for (std::size_t k = m_classes * m_features; k < grad.size(); ++k) {
      grad[k] *= invN;
    }
    return loss * invN + 0.5 * m_l2 * penalty;
  }

  /// max |dJ/dW|, |dJ/db| in the original variables, from the gradient in the fit's (dJ/dW =
  /// dJ/dV L^T): what the convergence test reads.
  double gradientMax(const std::vector<double>& grad) {
    if (m_pre.identity()) {
      return maxAbs(grad);
    }
    m_pre.timesTransposed(grad.data(), m_classes, m_pre.lower, m_scratch2.data());
    double m = maxAbs(m_scratch2);
    for (std::size_t k = m_classes * m_features; k < grad.size(); ++k) {
      m = std::max(m, std::abs(grad[k]));
    }
    return m;
  }

  /// W from the fit's parameters.
  [[nodiscard]] std::vector<double> weightOf(const std::vector<double>& theta) const {
    if (m_pre.identity()) {
      return {theta.begin(), theta.begin() + static_cast<std::ptrdiff_t>(m_classes * m_features)};
    }
    std::vector<double> w(m_classes * m_features);
    m_pre.weightOf(theta.data(), m_classes, w.data());
    return w;
  }

private:
  const std::vector<double>& m_design;
  const std::vector<std::int64_t>& m_labels;
  std::size_t m_features;
  std::size_t m_classes;
  double m_l2;
  std::size_t m_threads;
  const std::atomic<std::size_t>* m_spareThreads;
  const Kernels& m_kernels;
  const Preconditioner& m_pre;
  std::vector<std::vector<double>> m_partials; ///< per block: dJ/dV, dJ/db, loss (unscaled sums)
  std::vector<std::vector<double>> m_blockLogits{kBlocks}; ///< per block: logits, then p - [c == y] (column-major)
  std::vector<std::vector<double>> m_blockExp{kBlocks};    ///< per block: exp(z - max z)
  std::vector<std::vector<double>> m_blockTop{kBlocks};    ///< per block and row: max z
  std::vector<std::vector<double>> m_blockSum{kBlocks};    ///< per block and row: sum of exp, then its inverse
  std::vector<double> m_scratch;               ///< C x D: W
  std::vector<double> m_scratch2;              ///< C x D: the penalty's gradient, or dJ/dW
};

void checkFeatures(const LinearProbe& probe, const std::vector<float>& features, const char* function) {
  require(probe.numFeatures > 0 && probe.numClasses > 0, function, "the probe is not fitted");
  require(features.size() % probe.numFeatures == 0, function,
          "features size " + std::to_string(features.size()) + " is not a multiple of the probe's width " +
              std::to_string(probe.numFeatures));
}

} // namespace

LinearProbe fitProbe(const std::vector<float>& features, std::size_t numFeatures, const std::vector<std::int64_t>& labels,
                     std::size_t numClasses, const ProbeOptions& options) {
  const std::size_t n = labels.size();
  require(n > 0, "fitProbe", "needs at least one example");
  require(numFeatures > 0, "fitProbe", "numFeatures must be positive");
  require(numClasses >= 2, "fitProbe", "needs at least 2 classes");
  require(features.size() == n * numFeatures, "fitProbe",
          "features size " + std::to_string(features.size()) + " is not labels (" + std::to_string(n) +
              ") x numFeatures (" + std::to_string(numFeatures) + ")");
  require(options.l2 >= 0.0 && std::isfinite(options.l2), "fitProbe", "l2 must be >= 0");
  require(options.memory > 0, "fitProbe", "memory must be positive");
  requireLabelsInRange(labels, numClasses, "fitProbe");

  LinearProbe probe;
  probe.numFeatures = numFeatures;
  probe.numClasses = numClasses;
  probe.mean.assign(numFeatures, 0.0);
  probe.scale.assign(numFeatures, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < numFeatures; ++k) {
      probe.mean[k] += features[i * numFeatures + k];
    }
  }
  for (double& m : probe.mean) {
    m /= static_cast<double>(n);
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < numFeatures; ++k) {
      const double d = features[i * numFeatures + k] - probe.mean[k];
      probe.scale[k] += d * d;
    }
  }
  for (double& s : probe.scale) {
    s = std::sqrt(s / static_cast<double>(n));
    if (!(s > 0.0)) {
      s = 1.0; // a constant feature standardises to 0 and so carries no weight
    }
  }
  std::vector<double> design(n * numFeatures);
  for (std::size_t i = 0; i < n; ++i) {
    standardiseRow(features.data() + i * numFeatures, probe, design.data() + i * numFeatures);
  }

  Preconditioner pre;
  pre.features = numFeatures;
  // OpenBLAS on one thread for the whole fit: each block's products run on the thread that
  // takes the block, their bits do not depend on any thread count, and OpenBLAS's pool, not
  // woken, does not spin beside the fit's own threads.
  const SingleBlasThread oneBlasThread;
  if (options.precondition) {
    pre = preconditionerOf(design, n, numFeatures);
    design = preconditionedDesign(design, n, pre);
  }
  Objective objective(design, labels, numFeatures, numClasses, options.l2, resolveThreads(options.threads),
                      options.spareThreads, kernelsFor(options.portableKernels), pre);
  const std::size_t dim = objective.size();
  std::vector<double> theta(dim, 0.0);
  std::vector<double> grad(dim);
  double f = objective.evaluate(theta, grad);

  // L-BFGS (Nocedal and Wright, algorithm 7.4) with a backtracking Armijo line search.
  std::deque<std::vector<double>> sHistory;
  std::deque<std::vector<double>> yHistory;
  std::deque<double> rhoHistory;
  std::vector<double> direction(dim);
  std::vector<double> trial(dim);
  std::vector<double> trialGrad(dim);
  std::vector<double> alpha(options.memory);
  std::size_t iteration = 0;
  std::size_t stalls = 0;
  double gradMax = objective.gradientMax(grad);
  double bestGradMax = gradMax;
  bool converged = gradMax <= options.gradientTolerance;
  while (!converged && iteration < options.maxIterations) {
    // Two-loop recursion: direction = -H grad.
    direction = grad;
    for (std::size_t k = sHistory.size(); k-- > 0;) {
      alpha[k] = rhoHistory[k] * dot(sHistory[k], direction);
      for (std::size_t j = 0; j < dim; ++j) {
        direction[j] -= alpha[k] * yHistory[k][j];
      }
    }
    double gamma = 1.0;
    if (!sHistory.empty()) {
      gamma = dot(sHistory.back(), yHistory.back()) / dot(yHistory.back(), yHistory.back());
    } else {
      // First step (or after a reset): a steepest-descent step of length at most 1.
      gamma = 1.0 / std::max(1.0, std::sqrt(dot(grad, grad)));
    }
    for (double& d : direction) {
      d *= gamma;
    }
    for (std::size_t k = 0; k < sHistory.size(); ++k) {
      const double beta = rhoHistory[k] * dot(yHistory[k], direction);
      for (std::size_t j = 0; j < dim; ++j) {
        direction[j] += sHistory[k][j] * (alpha[k] - beta);
      }
    }
    for (double& d : direction) {
      d = -d;
    }
    double slope = dot(grad, direction);
    if (!(slope < 0.0)) {
      // Not a descent direction (rounding in the curvature pairs): restart from steepest descent.
      sHistory.clear();
      yHistory.clear();
      rhoHistory.clear();
      const double g = 1.0 / std::max(1.0, std::sqrt(dot(grad, grad)));
      for (std::size_t j = 0; j < dim; ++j) {
        direction[j] = -g * grad[j];
      }
      slope = dot(grad, direction);
    }

    double step = 1.0;
    double fTrial = f;
    bool accepted = false;
    for (std::size_t halving = 0; halving < kMaxHalvings; ++halving, step *= 0.5) {
      for (std::size_t j = 0; j < dim; ++j) {
        trial[j] = theta[j] + step * direction[j];
      }
      fTrial = objective.evaluate(trial, trialGrad);
      // Armijo with a strict decrease; or, once the decrease J can show is below its own
      // rounding (near the optimum, J + tiny == J), a step that leaves J unchanged to within
      // rounding and lowers the gradient: the gradient keeps converging where J is flat.
      const bool decrease = fTrial <= f + kArmijo * step * slope && fTrial < f;
      const bool flat = std::abs(fTrial - f) <= kFlatUlps * std::numeric_limits<double>::epsilon() *
                                                    std::max(1.0, std::abs(f));
      if (decrease || (flat && objective.gradientMax(trialGrad) < gradMax)) {
        accepted = true;
        break;
      }
    }
    ++iteration;
    if (!accepted) {
      break; // no decrease representable in float64 along any step: at the precision floor
    }
    std::vector<double> s(dim);
    std::vector<double> y(dim);
    for (std::size_t j = 0; j < dim; ++j) {
      s[j] = trial[j] - theta[j];
      y[j] = trialGrad[j] - grad[j];
    }
    const double sy = dot(s, y);
    const double trialGradMax = objective.gradientMax(trialGrad);
    const bool progress = fTrial < f || trialGradMax < 0.9 * bestGradMax;
    bestGradMax = std::min(bestGradMax, trialGradMax);
    stalls = progress ? 0 : stalls + 1;
    theta.swap(trial);
    grad.swap(trialGrad);
    f = fTrial;
    // Keep the pair only with positive curvature, which keeps H positive definite.
    if (sy > 1e-12 * std::sqrt(dot(s, s) * dot(y, y))) {
      if (sHistory.size() == options.memory) {
        sHistory.pop_front();
        yHistory.pop_front();
        rhoHistory.pop_front();
      }
      sHistory.push_back(std::move(s));
      yHistory.push_back(std::move(y));
      rhoHistory.push_back(1.0 / sy);
    }
    gradMax = trialGradMax;
    converged = gradMax <= options.gradientTolerance;
    if (stalls >= kMaxStalls) {
      break;
    }
  }

  probe.weight = objective.weightOf(theta);
  probe.bias.assign(theta.begin() + static_cast<std::ptrdiff_t>(numClasses * numFeatures), theta.end());
  probe.iterations = iteration;
  probe.converged = converged;
  probe.objective = f;
  probe.gradientMaxAbs = gradMax;
  return probe;
}

std::vector<LinearProbe> fitProbes(const std::vector<std::vector<float>>& features,
                                   const std::vector<std::size_t>& numFeatures, const std::vector<std::int64_t>& labels,
                                   std::size_t numClasses, const ProbeOptions& options) {
  require(numFeatures.size() == features.size(), "fitProbes",
          "needs one width per feature set (" + std::to_string(features.size()) + " sets, " +
              std::to_string(numFeatures.size()) + " widths)");
  const auto count = static_cast<std::int64_t>(features.size());
  std::vector<LinearProbe> probes(features.size());
  if (count < 2 || torch::get_num_threads() < 2) {
    for (std::size_t k = 0; k < features.size(); ++k) {
      probes[k] = fitProbe(features[k], numFeatures[k], labels, numClasses, options);
    }
    return probes;
  }
  // One fit per thread: a fit's bits do not depend on its thread count. Once fewer fits are
  // left than forEachItemOnOneThread's workers, the workers without one are spare: the fits
  // still running take them.
  const std::int64_t workers = std::min<std::int64_t>(count, torch::get_num_threads());
  std::atomic<std::int64_t> finished{0};
  std::atomic<std::size_t> spare{0};
  ProbeOptions one = options;
  one.threads = 1;
  one.spareThreads = &spare;
  forEachItemOnOneThread(count, [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    probes[k] = fitProbe(features[k], numFeatures[k], labels, numClasses, one);
    const auto idle = static_cast<std::size_t>(std::max<std::int64_t>(0, workers - (count - ++finished)));
    auto now = spare.load();
    while (now < idle && !spare.compare_exchange_weak(now, idle)) {
    }
  });
  return probes;
}

std::vector<double> probeProbabilities(const LinearProbe& probe, const std::vector<float>& features) {
  checkFeatures(probe, features, "probeProbabilities");
  const std::size_t rows = features.size() / probe.numFeatures;
  const std::size_t classes = probe.numClasses;
  std::vector<double> out(rows * classes);
  std::vector<double> x(probe.numFeatures);
  for (std::size_t i = 0; i < rows; ++i) {
    standardiseRow(features.data() + i * probe.numFeatures, probe, x.data());
    double* z = out.data() + i * classes;
    logitsOf(x.data(), probe.weight.data(), probe.bias.data(), classes, probe.numFeatures, z);
    const double zMax = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      z[c] = std::exp(z[c] - zMax);
      sum += z[c];
    }
    for (std::size_t c = 0; c < classes; ++c) {
      z[c] /= sum;
    }
  }
  return out;
}

std::vector<std::int64_t> predictProbe(const LinearProbe& probe, const std::vector<float>& features) {
  checkFeatures(probe, features, "predictProbe");
  const std::size_t rows = features.size() / probe.numFeatures;
  std::vector<std::int64_t> out(rows);
  std::vector<double> x(probe.numFeatures);
  std::vector<double> z(probe.numClasses);
  for (std::size_t i = 0; i < rows; ++i) {
    standardiseRow(features.data() + i * probe.numFeatures, probe, x.data());
    logitsOf(x.data(), probe.weight.data(), probe.bias.data(), probe.numClasses, probe.numFeatures, z.data());
    // max_element returns the first maximum: ties go to the lowest class.
    out[i] = static_cast<std::int64_t>(std::max_element(z.begin(), z.end()) - z.begin());
  }
  return out;
}

double probeAccuracy(const LinearProbe& probe, const std::vector<float>& features,
                     const std::vector<std::int64_t>& labels) {
  const std::vector<std::int64_t> predicted = predictProbe(probe, features);
  require(predicted.size() == labels.size(), "probeAccuracy", "labels and feature rows differ in number");
  if (labels.empty()) {
    return kNaN;
  }
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    correct += predicted[i] == labels[i] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

} // namespace kdscope::core::analysis
