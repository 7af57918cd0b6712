#pragma once
/// The three levels of teacher knowledge (Tang et al. 2020, "Understanding and Improving
/// Knowledge Distillation"; ANALYSES.md): universe (label smoothing), domain (class
/// geometry) and instance (per-example gradient rescaling), as plain-array math.
///
/// Conventions (see core/analysis/metrics.h for the shared ones): probabilities are N x C
/// row-major float64 arrays (for example from softmax()); logits are N x C float arrays;
/// labels are N integers in [0, C). Shape errors throw std::invalid_argument; undefined
/// values are quiet NaNs, as each function says. Functions are pure and thread-safe.

#include "core/analysis/metrics.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kdscope::core::analysis {

// ---- Universe -----------------------------------------------------------------------

/// The label-smoothing epsilon whose target has the teacher's mean non-target mass:
/// eps = C * E_i[1 - p_{i, y_i}] / (C - 1) (the LS target gives the non-target classes
/// eps (C - 1) / C in total). 1 - p_y is summed from the non-target probabilities, which is
/// exact where p_y is close to 1. Throws when C < 2; NaN when N = 0.
[[nodiscard]] double matchedLabelSmoothingEpsilon(const std::vector<double>& teacherProbs,
                                                  const std::vector<std::int64_t>& labels, std::size_t numClasses);

/// The same epsilon matched to the teacher's distribution at temperature T:
/// eps = C E_i[1 - p^T_{i, y_i}] / (C - 1), p^T = softmax(z_t / T) of the N x C `teacherLogits`.
/// T = 1 is matchedLabelSmoothingEpsilon(softmax(z_t)); T = the KD temperature matches the
/// distribution a KD student is trained on (docs/analyses.md, "Matched epsilon"). Throws when
/// T <= 0 or C < 2.
[[nodiscard]] double matchedLabelSmoothingEpsilonAt(const std::vector<float>& teacherLogits,
                                                    const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                                    double temperature);

/// The label-smoothing target (1 - eps) onehot(y) + eps / C for every example (N x C).
[[nodiscard]] std::vector<double> labelSmoothingTargets(const std::vector<std::int64_t>& labels,
                                                        std::size_t numClasses, double epsilon);

// ---- Instance -----------------------------------------------------------------------

/// Per-example rescaling weight w = g_KD / g_CE of the gradient on the student's true-class
/// logit z_y, for the objective (1 - lambda) CE + lambda T^2 KL(p^T || q^T):
///   g_CE = dCE/dz_y = q_y - 1,
///   g_KD = (1 - lambda)(q_y - 1) + lambda T (q^T_y - p^T_y),
/// with p^T = softmax(teacher / T), q^T = softmax(student / T), q = q^1. The factor is T and
/// not T^2: d/dz_y [T^2 KL(p^T || softmax(z / T))] = T^2 (1/T)(q^T_y - p^T_y). At T = 1,
/// w = 1 - lambda (1 - p_y) / (1 - q_y). 1 - q_y is summed from the non-target
/// probabilities. NaN for an example whose q_y rounds to 1 (g_CE = 0: no CE gradient to
/// rescale). Throws unless 0 <= lambda <= 1 and T > 0.
[[nodiscard]] std::vector<double> gradRescaleWeights(const std::vector<float>& teacherLogits,
                                                     const std::vector<float>& studentLogits,
                                                     const std::vector<std::int64_t>& labels,
                                                     std::size_t numClasses, double lambda, double temperature);

/// The logit-level terms of a student objective (the run file's objective attribute):
///   (1 - lambda) CE_eps + lambda f KL(p^T || q^T) + logitMse mean_c (z_s - z_t)^2,
/// f = T^2 when tSquared, else 1; CE_eps against (1 - eps) onehot(y) + eps / C; with
/// ptTargets the teacher's distribution is Tang et al.'s KD-pt target, which keeps p^T_y
/// (so the true-class gradient is the same as with the full target). Intermediate terms do
/// not depend on the logits and add nothing to the logit gradient.
struct LogitObjective {
  double lambda = 0.0;
  double temperature = 1.0;
  bool tSquared = true;
  double labelSmoothing = 0.0;
  double logitMse = 0.0;
  bool ptTargets = false;
};

/// Per-example w = g / g_CE for any objective of that form: g is the exact derivative of the
/// per-example objective with respect to the student's true-class logit z_y,
///   g = (1 - lambda)(q_y - 1 + eps (C - 1) / C) + lambda (f / T)(q^T_y - p^T_y)
///       + logitMse * 2 (z_s,y - z_t,y) / C,
/// and g_CE = q_y - 1. For lambda, T and tSquared alone (eps = 0, no MSE) it equals
/// gradRescaleWeights. NaN where q_y rounds to 1. Throws unless 0 <= lambda <= 1, T > 0,
/// 0 <= eps < 1, logitMse >= 0.
[[nodiscard]] std::vector<double> objectiveGradRescaleWeights(const std::vector<float>& teacherLogits,
                                                              const std::vector<float>& studentLogits,
                                                              const std::vector<std::int64_t>& labels,
                                                              std::size_t numClasses, const LogitObjective& objective);

/// The "KD-pt" control teacher: each example keeps the teacher's p_y and spreads 1 - p_y
/// evenly over the other C - 1 classes (universe and instance knowledge, no domain).
/// Throws when C < 2.
[[nodiscard]] std::vector<double> ptTeacherProbs(const std::vector<double>& teacherProbs,
                                                 const std::vector<std::int64_t>& labels, std::size_t numClasses);

/// p_{i, y_i} for every example: the teacher's confidence in the true class.
[[nodiscard]] std::vector<double> trueClassProbabilities(const std::vector<double>& probs,
                                                         const std::vector<std::int64_t>& labels,
                                                         std::size_t numClasses);

/// Values (such as w) binned by confidence on equal-width bins of [0, 1], with the ECE
/// convention: bin b holds (b / B, (b + 1) / B], a confidence of exactly 0 goes to bin 0.
struct ConfidenceBins {
  std::vector<double> lower;          ///< b / B
  std::vector<double> upper;          ///< (b + 1) / B
  std::vector<std::size_t> count;     ///< pairs in the bin (NaN values are left out)
  std::vector<double> meanValue;      ///< NaN for an empty bin
  std::vector<double> meanConfidence; ///< NaN for an empty bin
};

/// Bins (confidence, value) pairs; pairs whose value or confidence is NaN are skipped.
/// Throws when bins = 0, the sizes differ, or a confidence is outside [0, 1].
[[nodiscard]] ConfidenceBins binByConfidence(const std::vector<double>& values,
                                             const std::vector<double>& confidence, std::size_t bins = 10);

/// Mean of per-example values per class (for w per class). NaN values are skipped; NaN for
/// a class with no (non-NaN) value.
[[nodiscard]] std::vector<double> perClassMean(const std::vector<double>& values,
                                               const std::vector<std::int64_t>& labels, std::size_t numClasses);

/// Spearman rank correlation: Pearson correlation of the ranks, ties given their average
/// rank. Pairs with a NaN are skipped. NaN when fewer than 2 pairs remain or a side is
/// constant.
[[nodiscard]] double spearmanCorrelation(const std::vector<double>& a, const std::vector<double>& b);

/// Pearson correlation of two equally long series, skipping pairs with a NaN. NaN when fewer
/// than 2 pairs remain or a side has zero variance.
[[nodiscard]] double pearsonCorrelation(const std::vector<double>& a, const std::vector<double>& b);

// ---- Domain -------------------------------------------------------------------------

/// C x C cosine similarity between the rows of a classifier weight matrix W (C x D, row
/// major). Entries involving an all-zero row are NaN.
[[nodiscard]] Matrix classSimilarityFromWeights(const std::vector<float>& weight, std::size_t numClasses,
                                                std::size_t width);

/// C x C matrix S(i, j) = mean teacher probability of class j over the examples of class i.
/// Rows of classes with no examples are NaN.
[[nodiscard]] Matrix classSimilarityFromProbs(const std::vector<double>& probs,
                                              const std::vector<std::int64_t>& labels, std::size_t numClasses);
/// The same over the examples rows[0..count) in that order, each as often as it appears (a
/// bootstrap resample; the same sums, in the same order, as on the resample's copied rows).
/// Labels are checked once by the caller.
[[nodiscard]] Matrix classSimilarityFromProbsOfRows(const std::vector<double>& probs,
                                                    const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                                    const std::uint32_t* rows, std::size_t count);

/// Geometry agreement: Pearson correlation of the off-diagonal entries (i != j) of two
/// equally sized square matrices, skipping pairs where either entry is NaN.
[[nodiscard]] double offDiagonalCorrelation(const Matrix& a, const Matrix& b);

// ---- Decomposition of the gain ------------------------------------------------------

/// The KD gain split into levels from the accuracies of the four control students:
///   universe = acc_LS - acc_CE, instance = acc_KDpt - acc_LS, domain = acc_KD - acc_KDpt,
///   total = acc_KD - acc_CE, lsShareOfKdGain = (acc_LS - acc_CE) / (acc_KD - acc_CE).
/// Each difference is computed directly from the inputs (never one level as the remainder
/// of the others). The three levels telescope to the total; in floating point
/// (universe + instance) + domain == total holds exactly whenever the differences of the
/// accuracies are representable (for example accuracies k / 2^m, m <= 53), and otherwise to
/// within a couple of units in the last place of the total.
struct GainDecomposition {
  double universe = 0.0;
  double instance = 0.0;
  double domain = 0.0;
  double total = 0.0;
  double lsShareOfKdGain = 0.0; ///< NaN when acc_KD == acc_CE
};

[[nodiscard]] GainDecomposition gainDecomposition(double accCe, double accLs, double accKdPt, double accKd);

} // namespace kdscope::core::analysis
