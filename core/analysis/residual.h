#pragma once
/// The layer-pair distillation residual (ANALYSES.md, "Per layer": "Layer-pair loss: the
/// distillation residual (MSE or cosine) per mapped pair") and the layer maps that pair
/// student layers with teacher layers.
///
/// The residual of a pair is what is left of the teacher's representation after the best
/// affine map from the student's: W, b minimise ||Y - (X W + 1 b')||_F^2 (ordinary least
/// squares on the given rows, float64, with a tiny relative ridge that only matters for
/// rank-deficient X, e.g. the zero padding of MLP states). It lower-bounds the hidden-state
/// MSE any linear projection (TinyBERT's learned W) can reach on these rows, and it exists for
/// every student, distilled with intermediate terms or not. Conventions as in
/// core/analysis/metrics.h: float inputs, float64 sums, NaN where undefined, shape errors
/// throw std::invalid_argument. Pure and thread-safe.

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace kdscope::core::analysis {

struct ResidualOptions {
  /// Ridge added to the diagonal of X'X, relative to its mean diagonal: rho = ridge *
  /// trace(X'X) / p. 1e-9 changes a well-conditioned fit by about that relative amount.
  double ridge = 1e-9;
  std::size_t threads = 0; ///< 0: std::thread::hardware_concurrency(); results do not depend on it
};

/// The residual of one (student -> teacher) pair over n rows.
struct LayerResidual {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  /// SSE / (n q): mean squared error per element of the affine fit. Depends on the width
  /// convention (zero-padded MLP columns count); `unexplained` does not.
  double mse = kNaN;
  /// SSE / ||Y - mean(Y)||_F^2 = 1 - R^2: the fraction of the teacher's variance the
  /// student's layer does not explain linearly. NaN when Y is constant.
  double unexplained = kNaN;
  /// Mean over rows of 1 - cos(x W + b, y) (DistilBERT's cosine loss at the best affine map;
  /// rows where either vector is zero are skipped; NaN when no row counts).
  double cosineDistance = kNaN;
  /// Without a map, when the widths are equal: mean (x - y)^2 over all elements, and mean
  /// 1 - cos(x, y). NaN when the widths differ.
  double directMse = kNaN;
  double directCosineDistance = kNaN;
};

/// Affine least-squares residual of Y (n x q) from X (n x p), both row-major plain arrays.
[[nodiscard]] LayerResidual affineResidual(const std::vector<float>& x, std::size_t p, const std::vector<float>& y,
                                           std::size_t q, const ResidualOptions& options = {});

/// The same for student layer `studentLayer` of hiddenS [N, layersS, widthS] against teacher
/// layer `teacherLayer` of hiddenT [N, layersT, widthT] (the run file's eval/hidden layout),
/// without copying the layers out.
[[nodiscard]] LayerResidual layerResidual(const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                                          std::size_t studentLayer, const std::vector<float>& hiddenT,
                                          std::size_t layersT, std::size_t widthT, std::size_t teacherLayer,
                                          const ResidualOptions& options = {});

/// The teacher layer of each student layer, as the distillation objectives pair them
/// (ANALYSES.md; core/distill/intermediate.h), with k = Lt / Ls and integer floors:
/// - "uniform" (skip): hidden i <- floor(i Lt / Ls), i = 0..Ls; attention block i <-
///   floor((i + 1) Lt / Ls) - 1, i = 0..Ls-1;
/// - "last": hidden i <- Lt - Ls + i; attention block i <- Lt - Ls + i;
/// - "list": hidden i <- list[i]; attention block i <- list[i + 1] - 1.
/// Hidden indices count the embedding output as 0. An entry is -1 where the map has no
/// teacher layer (a student deeper than its teacher under "last", an attention block mapped
/// to the embeddings, a list entry out of range or a list of the wrong length).
struct LayerPairing {
  std::vector<int> hidden;    ///< [Ls + 1]: teacher hidden index of student hidden i
  std::vector<int> attention; ///< [Ls]: teacher attention block of student block i
};
[[nodiscard]] LayerPairing layerPairing(const std::string& map, int teacherLayers, int studentLayers,
                                        const std::vector<int>& list = {});

} // namespace kdscope::core::analysis
