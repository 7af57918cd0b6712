#pragma once
/// Linear probes (ANALYSES.md, "Per layer"): multinomial logistic regression trained on a
/// layer's frozen representations (train split) and scored on the eval split.
///
/// The fit is deterministic: features are standardised with the training mean and standard
/// deviation, then the L2-regularised mean cross-entropy
///   J(W, b) = (1/N) sum_i [logsumexp_c(z_ic) - z_{i,y_i}] + (l2 / 2) ||W||_F^2,
///   z_i = W x~_i + b,   x~ = (x - mean) / std,
/// (the bias is not penalised) is minimised by L-BFGS with a backtracking (Armijo) line
/// search, from W = 0, b = 0, in preconditioned variables (V = W L with L L^T the Cholesky
/// factorisation of the standardised features' covariance plus 0.05 I, so that the features
/// the fit sees are about white; the penalty and the convergence test stay in W); where J's
/// decrease falls below its float64 rounding near the optimum, a step that keeps J within
/// rounding and lowers the gradient is accepted, and the fit stops after 20 iterations without
/// progress. Everything is float64; the per-example
/// sums run in 16 fixed blocks reduced in order, so the result is the same for every thread
/// count. J is convex and, for l2 > 0, strictly convex in W, so W and the predictions do not
/// depend on the optimiser (b is unique only up to a common shift).
/// Shape errors throw std::invalid_argument. Functions are pure and thread-safe.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kdscope::core::analysis {

/// How fitProbe fits, as written beside the probes' results (the attribute "solver") and in the
/// key a study's teacher reuse compares: results of another solver are not reused.
inline constexpr const char* kProbeSolver =
    "L-BFGS in variables preconditioned by the Cholesky factor of the features' covariance + 0.05 I, to max |gradient| <= 1e-7";

struct ProbeOptions {
  /// Weight of (l2 / 2) ||W||_F^2 next to the mean loss. 0 is allowed but on separable
  /// data the weights then grow without bound until maxIterations.
  double l2 = 1e-3;
  /// A cap well above what the preconditioned fit needs (140-450 iterations on the bench run).
  std::size_t maxIterations = 1000;
  /// Converged when max |dJ/dtheta| <= gradientTolerance (theta = W and b).
  /// 1e-7: on the bench run every probe's predictions are then the optimum's (checked against
  /// both fits run to 1e-9); at 1e-6 one eval example of 4,010 sat close enough to a decision
  /// boundary to come out otherwise (docs/analyses.md, "Per layer: linear probes").
  double gradientTolerance = 1e-7;
  std::size_t memory = 10; ///< L-BFGS correction pairs
  /// Fit in the preconditioned variables (the default). Off: L-BFGS on W itself, which reaches
  /// the same optimum in 2-4x more iterations on nearly collinear features (tests compare them).
  bool precondition = true;
  std::size_t threads = 0; ///< 0: std::thread::hardware_concurrency()
  /// Threads with nothing left to do (fitProbes counts its workers whose fits are over): each
  /// evaluation of the objective adds them to `threads` as they free up. A fit's row blocks and
  /// the order their sums are added do not change, so neither does its result.
  const std::atomic<std::size_t>* spareThreads = nullptr;
  /// Take the objective's exponentials with std::exp even where glibc's AVX2 vector exp is
  /// available (the two differ in the last bits, so the fits do too).
  bool portableKernels = false;
};

/// A fitted probe: weights act on standardised features.
struct LinearProbe {
  std::size_t numFeatures = 0;
  std::size_t numClasses = 0;
  std::vector<double> mean;   ///< per feature, from the training split
  std::vector<double> scale;  ///< per feature: population std (divide by N); 1 where it is 0
  std::vector<double> weight; ///< numClasses x numFeatures, row-major
  std::vector<double> bias;   ///< numClasses

  // What the fit did.
  std::size_t iterations = 0;
  bool converged = false;      ///< the gradient tolerance was met
  double objective = 0.0;      ///< J at the returned parameters
  double gradientMaxAbs = 0.0; ///< max |dJ/dtheta| there
};

/// Fits a probe on N x D features (row-major floats, N = labels.size()) with labels in
/// [0, C). Throws when N = 0, D = 0, C < 2, l2 < 0, or the shapes disagree.
[[nodiscard]] LinearProbe fitProbe(const std::vector<float>& features, std::size_t numFeatures,
                                   const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                   const ProbeOptions& options = {});

/// One probe per feature set (set k: N x numFeatures[k] row-major floats, all with `labels`):
/// what fitProbe(features[k], numFeatures[k], ...) with `options` returns, bit for bit. With
/// more than one set and more than one thread (LibTorch's intra-op thread count), the fits run
/// side by side, each on one thread (forEachItemOnOneThread), handed out in the sets' order:
/// put the longest first. On two cores that beats splitting each fit's small products
/// (bench/README.md, "Session 13"). Once every fit has started, a thread whose fit is over
/// helps the fits still running (ProbeOptions::spareThreads).
[[nodiscard]] std::vector<LinearProbe> fitProbes(const std::vector<std::vector<float>>& features,
                                                 const std::vector<std::size_t>& numFeatures,
                                                 const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                                 const ProbeOptions& options = {});

/// softmax(W x~ + b) for each row of an M x D feature array: M x C, float64.
[[nodiscard]] std::vector<double> probeProbabilities(const LinearProbe& probe, const std::vector<float>& features);

/// argmax of W x~ + b per row (ties: lowest class).
[[nodiscard]] std::vector<std::int64_t> predictProbe(const LinearProbe& probe, const std::vector<float>& features);

/// Fraction of rows predicted correctly. NaN when there are no rows.
[[nodiscard]] double probeAccuracy(const LinearProbe& probe, const std::vector<float>& features,
                                   const std::vector<std::int64_t>& labels);

} // namespace kdscope::core::analysis
