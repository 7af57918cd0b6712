#pragma once
/// Per-head attention statistics (ANALYSES.md, "Per attention head"): attention entropy and
/// the teacher-student Jensen-Shannon head divergence matrix, on attention probabilities
/// stored as in the run file's eval/attention ([n_att, Lyr, H, Len, Len], float).
///
/// Padding convention: example e has lengths[e] real tokens at positions 0 .. lengths[e]-1
/// (right padding). Only query rows i < lengths[e] count, and each row is restricted to
/// the keys j < lengths[e] and renormalised to sum 1 there. For a model that masks padded
/// keys this is a no-op up to rounding; for one that does not, it compares the attention
/// among real tokens, and it keeps every row a distribution (so JS stays in [0, ln 2]).
/// A row with no mass on real keys stays all zero (entropy 0 by 0 log 0 = 0). Examples of
/// length 0 contribute no rows. Means are pooled over all counted (example, row) pairs, so
/// a longer example weighs more. Natural logarithms throughout; float64 accumulation.
/// Shape errors throw std::invalid_argument. Functions are pure and thread-safe.

#include "core/analysis/metrics.h"

#include <cstddef>
#include <limits>
#include <vector>

namespace kdscope::core::analysis {

/// A read-only view of one layer of attention maps: `examples` blocks of heads x length x
/// length floats (row-major: head, query, key), consecutive examples `exampleStride` floats
/// apart. It points into the caller's vector, which must outlive it and stay unchanged.
struct AttentionLayer {
  const float* data = nullptr;
  std::size_t examples = 0;
  std::size_t heads = 0;
  std::size_t length = 0;
  std::size_t exampleStride = 0;

  /// A plain [n, heads, length, length] array (n from the size).
  [[nodiscard]] static AttentionLayer fromMaps(const std::vector<float>& maps, std::size_t heads,
                                               std::size_t length);
  /// Layer `layer` of a run file's [n, layers, heads, length, length] array, without copying.
  [[nodiscard]] static AttentionLayer fromLayers(const std::vector<float>& maps, std::size_t layers,
                                                 std::size_t layer, std::size_t heads, std::size_t length);

  /// Row `query` of head `head` of example `example`: `length` floats.
  [[nodiscard]] const float* row(std::size_t example, std::size_t head, std::size_t query) const {
    return data + example * exampleStride + (head * length + query) * length;
  }
};

/// Jensen-Shannon divergence of two distributions of equal length, natural log:
/// JS = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in [0, ln 2]. Inputs are used
/// as given (not renormalised); 0 log 0 = 0.
[[nodiscard]] double jsDivergence(const std::vector<double>& p, const std::vector<double>& q);

/// Attention entropy per head: the mean over examples and counted query rows of
/// -sum_j a_ij log a_ij (see the padding convention above). NaN for every head when no row
/// counts. lengths.size() must equal maps.examples.
[[nodiscard]] std::vector<double> attentionEntropy(const AttentionLayer& maps, const std::vector<std::size_t>& lengths);

/// Heads x heads matrix (teacher rows, student columns) of the mean JS divergence between
/// teacher head t's and student head s's attention rows over the counted rows. Teacher and
/// student must share examples and length; head counts may differ. threads = 0 uses
/// std::thread::hardware_concurrency(); the result does not depend on it. NaN entries when
/// no row counts.
[[nodiscard]] Matrix jsDivergenceMatrix(const AttentionLayer& teacher, const AttentionLayer& student,
                                        const std::vector<std::size_t>& lengths, std::size_t threads = 0);

/// The student head closest to a teacher head.
struct HeadMatch {
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::size_t studentHead = kNone; ///< kNone when the row has no finite entry
  double divergence = std::numeric_limits<double>::quiet_NaN();
};

/// For each teacher head (row of a jsDivergenceMatrix), the student head with the smallest
/// divergence (ties: lowest index; NaN entries skipped).
[[nodiscard]] std::vector<HeadMatch> bestMatch(const Matrix& divergence);

/// The head-averaged comparison for layers whose head counts differ (or to summarise a
/// layer): per counted row, the mean of the teacher heads' rows against the mean of the
/// student heads' rows, JS divergence, averaged over rows. NaN when no row counts.
[[nodiscard]] double headAveragedJsDivergence(const AttentionLayer& teacher, const AttentionLayer& student,
                                              const std::vector<std::size_t>& lengths);

} // namespace kdscope::core::analysis
