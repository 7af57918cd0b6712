#pragma once
/// Centred kernel alignment between representations (ANALYSES.md, "Per layer"):
/// linear CKA (Kornblith et al. 2019), the teacher-by-student layer matrix, RBF CKA, and
/// the minibatch form with unbiased HSIC (Nguyen, Raghu and Kornblith 2021).
///
/// Representations are row-major float arrays, one row per example. Everything is
/// accumulated in float64. Degenerate input (fewer than 2 examples, or a side whose
/// centred columns are all zero, so that its self-similarity norm is 0) gives a quiet NaN:
/// CKA is undefined there, and NaN shows that in a heatmap instead of a made-up 0 or 1.
/// Shape errors throw std::invalid_argument. Functions are pure and thread-safe; those
/// that take CkaOptions start their own worker threads and join them before returning.

#include "core/analysis/metrics.h"

#include <cstddef>
#include <vector>

namespace kdscope::core::analysis {

/// How linear CKA computes ||Y^T X||_F^2, ||X^T X||_F and ||Y^T Y||_F. Both give the same
/// number up to rounding; Automatic picks the cheaper one by operation count.
enum class CkaMethod {
  Automatic,
  Gram,    ///< n x n Gram matrices (in tiles, never stored whole): <K_X, K_Y>_F; cost ~n^2 (p + q) / 2
  Features ///< feature-space products X^T X, Y^T Y, Y^T X (in tiles); cost ~n (p + q)^2 / 2
};

struct CkaOptions {
  /// Worker threads; 0 means std::thread::hardware_concurrency(). The result does not depend
  /// on the thread count (partial sums are reduced in a fixed order).
  std::size_t threads = 0;
  CkaMethod method = CkaMethod::Automatic;
  /// Use the portable product kernels even where the AVX2 + FMA ones are available. The
  /// fast kernels round each multiply-add once, so the two differ in the last bits; the
  /// portable ones give bits that do not depend on the CPU's instruction set (and let the
  /// tests cover the fallback on a machine that has AVX2).
  bool portableKernels = false;
};

/// Linear CKA of X (n x p) and Y (n x q): columns centred (the mean is taken in float64),
/// CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), in [0, 1]. n is x.size() / p and must
/// equal y.size() / q. NaN for n < 2 or a constant side (see the file comment).
[[nodiscard]] double linearCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y,
                               std::size_t q, const CkaOptions& options = {});

/// The teacher-by-student layer matrix of linear CKA from a run file's pooled hidden states:
/// hiddenT is [N, layersT, widthT] and hiddenS is [N, layersS, widthS] (layers = encoder
/// layers + 1, index 0 = the embedding output). Entry (t, s) = linearCka(teacher layer t,
/// student layer s). Column means are computed once per layer; on the Gram path each
/// layer's Gram tile is computed once per tile position and paired with every other layer's,
/// so the cost is one Gram per layer, not one per pair. Nothing is copied or stored whole:
/// memory is a few tiles per thread.
[[nodiscard]] Matrix ckaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                               const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                               const CkaOptions& options = {});

/// RBF-kernel CKA: K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2)) with sigma = sigmaFraction
/// times the median Euclidean distance over pairs i < j (computed separately for X and for
/// Y; the median of an even count is the mean of the two middle values); L likewise from Y;
/// both centred (H K H), CKA = <K~, L~>_F / (||K~||_F ||L~||_F). Stores two n x n
/// float64 matrices, so it is meant for n up to a few thousand. NaN when a median distance
/// is 0 (all rows equal) or n < 2. Throws when sigmaFraction <= 0.
[[nodiscard]] double rbfCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y,
                            std::size_t q, double sigmaFraction);

/// Unbiased HSIC_1 (Song et al. 2012) of two n x n kernel matrices given row-major,
/// n >= 4: with K~, L~ = K, L with zeroed diagonals,
/// HSIC_1 = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3)).
/// Exposed because minibatchCka is built from it and tests check it on its own.
[[nodiscard]] double unbiasedHsic(const std::vector<double>& k, const std::vector<double>& l, std::size_t n);

/// Minibatch linear CKA with unbiased HSIC (Nguyen et al. 2021): the rows are cut, in the
/// given order, into floor(n / batchSize) consecutive minibatches (a last partial batch is
/// dropped; shuffle beforehand if the order is not random); per batch the linear kernels
/// K = X_b X_b^T and L = Y_b Y_b^T give HSIC_1(K, L), HSIC_1(K, K), HSIC_1(L, L);
/// CKA = mean HSIC_1(K, L) / sqrt(mean HSIC_1(K, K) * mean HSIC_1(L, L)).
/// The columns are centred with the full-data mean first: HSIC_1 is invariant to that shift
/// and it keeps large common offsets out of the dot products. Built from unbiased HSIC
/// estimates, it has no O(1/n) bias, but unlike linearCka it is not bounded: it can be
/// slightly below 0 or above 1. NaN when
/// the product of the self terms is <= 0. Throws when batchSize < 4 or > n.
[[nodiscard]] double minibatchCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y,
                                  std::size_t q, std::size_t batchSize, const CkaOptions& options = {});

/// RBF CKA (as rbfCka, sigma per layer) for every teacher x student layer pair of two
/// [N, layers, width] arrays laid out like ckaMatrix's, over their first `maxExamples` rows
/// (0: all rows; KDScope's eval split is in shuffled order, so the first rows are a random
/// sample). Each layer's centred kernel is built once: the teacher's layersT n x n float64
/// kernels are kept while the student's are built one at a time, so memory is
/// (layersT + 1) n^2 doubles. Entry (t, s) equals rbfCka(teacher layer t, student layer s)
/// on those rows. NaN where a median distance is 0 or n < 2.
[[nodiscard]] Matrix rbfCkaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                                  const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                                  double sigmaFraction, std::size_t maxExamples, const CkaOptions& options = {});

/// Minibatch CKA (as minibatchCka: consecutive batches in row order, unbiased HSIC, columns
/// centred with the full-data mean) for every teacher x student layer pair. Each batch's
/// Gram matrix of each layer is computed once. Entry (t, s) equals minibatchCka of the two
/// layers. Throws when batchSize < 4 or > N.
[[nodiscard]] Matrix minibatchCkaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                                        const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                                        std::size_t batchSize, const CkaOptions& options = {});

} // namespace kdscope::core::analysis
