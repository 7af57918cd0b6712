#pragma once
/// Within-run intervals and paired tests of the task metrics (issue #14, docs/statistics.md,
/// "What the analysis writes"): the percentile bootstrap over eval examples of each model's
/// accuracy and ECE and of a student's gap, retained fraction, agreement and mean KL against
/// its teacher, and the paired comparison (exact McNemar, paired bootstrap) of two models on
/// the same eval examples. Plain arrays in and out (the conventions of metrics.h); the
/// analysis's "task" pass (core/analysis/passes/intervals_pass.cpp) writes what these return.
///
/// Every interval of one call draws the same resamples, bootstrapResampleIndices(N, B, seed):
/// a student's accuracy, its teacher's accuracy and their gap are computed on the same
/// resample each time, so the gap's interval is the paired one. Thread-safety: pure.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// The metric names of the intervals, as the run file spells them (the attribute names of
/// analysis/<model>/intervals; docs/run-format.md).
namespace metric {
inline constexpr const char* kAccuracy = "accuracy";
inline constexpr const char* kEce = "ece";
inline constexpr const char* kTeacherAccuracy = "teacher_accuracy";
inline constexpr const char* kTeacherEce = "teacher_ece";
inline constexpr const char* kGap = "gap";
inline constexpr const char* kRetainedFraction = "retained_fraction";
inline constexpr const char* kAgreement = "agreement";
inline constexpr const char* kMeanKl = "mean_kl";
} // namespace metric

/// One metric with its interval.
struct NamedInterval {
  std::string name; ///< a metric:: name
  Interval interval;
};

/// The bins of the ECE (metrics.h, 15 equal-width bins of the max softmax probability).
inline constexpr std::size_t kEceBins = 15;

/// The ECE of the examples at `indices` (with repeats) from per-example confidence, 0/1
/// correctness and bin (confidenceBin(confidence, kEceBins)): sum_b |sum correct - sum
/// confidence| / |indices|. On 0..N-1 it is expectedCalibrationError of the logits.
[[nodiscard]] double eceOfIndices(const std::vector<double>& confidence, const std::vector<double>& correct,
                                  const std::vector<std::size_t>& bin, const std::vector<std::uint32_t>& indices);

/// accuracy and ece of one model: percentile bootstrap over the N eval examples.
[[nodiscard]] std::vector<NamedInterval> modelIntervals(const std::vector<float>& logits,
                                                        const std::vector<std::int64_t>& labels,
                                                        std::size_t numClasses, const BootstrapOptions& options);

/// A student against its teacher, all on the same resamples: accuracy, ece, teacher_accuracy,
/// teacher_ece, gap (teacher - student: the mean of the per-example differences of
/// correctness), retained_fraction (sum of student correctness / sum of teacher correctness,
/// bootstrapRatio), agreement (top-1), mean_kl (KL(p || q) at T = 1, nats).
[[nodiscard]] std::vector<NamedInterval> studentIntervals(const std::vector<float>& teacherLogits,
                                                          const std::vector<float>& studentLogits,
                                                          const std::vector<std::int64_t>& labels,
                                                          std::size_t numClasses, const BootstrapOptions& options);

/// Two models' correctness on the same eval examples, compared.
struct CorrectnessComparison {
  std::uint64_t examples = 0;
  std::uint64_t onlyFirst = 0;  ///< first right, second wrong (McNemar's b)
  std::uint64_t onlySecond = 0; ///< first wrong, second right (c)
  std::uint64_t bothRight = 0;
  std::uint64_t bothWrong = 0;
  double mcnemarP = 1.0;        ///< exact two-sided McNemar p of (b, c)
  /// accuracy(first) - accuracy(second) = (b - c) / N with its paired-bootstrap interval and
  /// centred-bootstrap p (pairedBootstrap on the 0/1 correctness).
  PairedComparison accuracyDifference;
};
[[nodiscard]] CorrectnessComparison compareCorrectness(const std::vector<float>& firstLogits,
                                                       const std::vector<float>& secondLogits,
                                                       const std::vector<std::int64_t>& labels,
                                                       std::size_t numClasses, const BootstrapOptions& options);

/// 0/1 correctness of each row (argmax == label), as doubles.
[[nodiscard]] std::vector<double> correctness(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                              std::size_t numClasses);

} // namespace kdscope::core::analysis
