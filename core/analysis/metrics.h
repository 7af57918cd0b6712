#pragma once
/// Task and per-example metrics of a teacher and a student (ANALYSES.md, "Per task and
/// per example"), on plain row-major arrays. Torch-, Qt- and HDF5-free: the analysis
/// engine reads the run file and hands these functions std::vectors.
///
/// Conventions shared by every function in core/analysis:
/// - Logits are an N x C row-major float array; labels are N integers in [0, C).
/// - All accumulation is float64; results are double.
/// - The prediction of a row is its argmax; ties go to the lowest class index.
/// - A shape or label error throws std::invalid_argument (it is a caller bug, not data).
/// - A value that is undefined for the data (no examples, a zero denominator) is a quiet
///   NaN, never a silent division; each function says when.
/// Thread-safety: every function is pure and may run on any thread.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kdscope::core::analysis {

/// A dense row-major float64 matrix: element (r, c) is values[r * cols + c]. Returned by
/// the analyses that produce matrices (confusion, CKA, similarity, head divergence).
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> values;

  Matrix() = default;
  Matrix(std::size_t numRows, std::size_t numCols, double fill = 0.0)
      : rows(numRows), cols(numCols), values(numRows * numCols, fill) {}

  [[nodiscard]] double& operator()(std::size_t r, std::size_t c) { return values[r * cols + c]; }
  [[nodiscard]] double operator()(std::size_t r, std::size_t c) const { return values[r * cols + c]; }
};

/// Row-wise softmax(logits / temperature) of an N x C array, in float64, stable (the row
/// maximum is subtracted first). Throws when temperature <= 0 or the size is not N * C.
[[nodiscard]] std::vector<double> softmax(const std::vector<float>& logits, std::size_t numClasses,
                                          double temperature = 1.0);

/// Row-wise log softmax(logits / temperature), float64 (log-sum-exp with the row maximum).
[[nodiscard]] std::vector<double> logSoftmax(const std::vector<float>& logits, std::size_t numClasses,
                                             double temperature = 1.0);

/// Argmax of each row of an N x C array (ties: lowest index).
[[nodiscard]] std::vector<std::int64_t> predictions(const std::vector<float>& logits,
                                                    std::size_t numClasses);

/// Fraction of rows whose argmax equals the label. NaN when N = 0.
[[nodiscard]] double accuracy(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                              std::size_t numClasses);

/// Fidelity: fraction of rows where teacher and student predict the same class. NaN when N = 0.
[[nodiscard]] double topOneAgreement(const std::vector<float>& teacherLogits,
                                     const std::vector<float>& studentLogits, std::size_t numClasses);

/// Fidelity: mean over examples of KL(p || q) = sum_c p_c (log p_c - log q_c), natural log,
/// p = softmax(teacher / T), q = softmax(student / T). ANALYSES.md uses T = 1 (the default).
/// Terms with p_c = 0 contribute 0. NaN when N = 0.
[[nodiscard]] double meanKl(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                            std::size_t numClasses, double temperature = 1.0);

/// The reliability diagram behind the ECE: per equal-width confidence bin, the number of
/// examples, their mean confidence and their accuracy (NaN for an empty bin).
struct CalibrationBins {
  std::vector<std::size_t> count;
  std::vector<double> meanConfidence;
  std::vector<double> accuracy;
  double ece = 0.0; ///< sum_b |B_b| / N * |acc_b - conf_b|; NaN when N = 0
};

/// The equal-width binning rule of the ECE (and of binByConfidence): for B bins, a value
/// in (b / B, (b + 1) / B] goes to bin b (compared against the double b / B), exactly 0 goes
/// to bin 0. Values outside [0, 1] are clamped to the end bins. Throws when bins = 0.
[[nodiscard]] std::size_t confidenceBin(double confidence, std::size_t bins);

/// Bins examples by confidence = max_c softmax(logits)_c (T = 1): bin b holds
/// confidence in (b / B, (b + 1) / B] (compared against the double b / B), and a
/// confidence of exactly 0 goes to bin 0. Throws when bins = 0.
[[nodiscard]] CalibrationBins calibrationBins(const std::vector<float>& logits,
                                              const std::vector<std::int64_t>& labels,
                                              std::size_t numClasses, std::size_t bins = 15);

/// Expected calibration error with equal-width bins (15 by default, as in ANALYSES.md):
/// ECE = sum_b |B_b| / N * |acc_b - conf_b|. NaN when N = 0.
[[nodiscard]] double expectedCalibrationError(const std::vector<float>& logits,
                                              const std::vector<std::int64_t>& labels,
                                              std::size_t numClasses, std::size_t bins = 15);

/// Recall of each class: correct predictions among the examples of that class. NaN for a
/// class with no examples.
[[nodiscard]] std::vector<double> perClassRecall(const std::vector<float>& logits,
                                                 const std::vector<std::int64_t>& labels,
                                                 std::size_t numClasses);

/// C x C confusion counts: row = true class, column = predicted class. Counts are exact
/// integers stored as doubles (exact below 2^53) so the matrix plots like any other.
[[nodiscard]] Matrix confusionMatrix(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                     std::size_t numClasses);

/// The per-task summary of a student against its teacher.
struct TaskComparison {
  double teacherAccuracy = 0.0;
  double studentAccuracy = 0.0;
  double gap = 0.0;              ///< teacherAccuracy - studentAccuracy
  double retainedFraction = 0.0; ///< studentAccuracy / teacherAccuracy; NaN when the teacher's is 0
  double agreement = 0.0;        ///< topOneAgreement
  double meanKl = 0.0;           ///< mean KL(p || q) at T = 1
  double teacherEce = 0.0;       ///< 15 bins
  double studentEce = 0.0;       ///< 15 bins
};

/// All of TaskComparison from the two models' eval logits and the labels.
[[nodiscard]] TaskComparison compareTask(const std::vector<float>& teacherLogits,
                                         const std::vector<float>& studentLogits,
                                         const std::vector<std::int64_t>& labels, std::size_t numClasses);

/// One example whose correctness changed between teacher and student, with both models'
/// probabilities (T = 1) of the true class and of their own predicted class.
struct ExampleChange {
  std::size_t index = 0; ///< row in the eval split
  std::int64_t label = 0;
  std::int64_t teacherPrediction = 0;
  std::int64_t studentPrediction = 0;
  double teacherTrueProbability = 0.0;
  double studentTrueProbability = 0.0;
  double teacherPredictedProbability = 0.0;
  double studentPredictedProbability = 0.0;
};

/// Lost = teacher right and student wrong; gained = teacher wrong and student right.
/// Both lists are in increasing example index.
struct LostAndGained {
  std::vector<ExampleChange> lost;
  std::vector<ExampleChange> gained;
};

[[nodiscard]] LostAndGained lostAndGained(const std::vector<float>& teacherLogits,
                                          const std::vector<float>& studentLogits,
                                          const std::vector<std::int64_t>& labels, std::size_t numClasses);

} // namespace kdscope::core::analysis
