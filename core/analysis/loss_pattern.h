#pragma once
/// Does the loss follow a pattern? ("What is Lost in Knowledge Distillation?", issue #14;
/// docs/statistics.md, "The loss pattern"). Per task and student, the eval examples the
/// student loses (teacher right, student wrong) against the rest of the eval set, on each
/// factor: the teacher's confidence and entropy, the input length (text tasks) and the gold
/// class, each with an effect size, its interval and a test, plus a logistic regression of
/// "lost" on them together. Plain arrays in and out; the analysis's "task" pass writes the
/// result under analysis/<student>/loss_pattern. Thread-safety: pure.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/multiple_testing.h"
#include "core/analysis/stats.h"

namespace kdscope::core::analysis {

/// The factor names, as the run file spells them.
namespace factor {
inline constexpr const char* kTeacherConfidence = "teacher_confidence";
inline constexpr const char* kTeacherEntropy = "teacher_entropy";
inline constexpr const char* kInputLength = "input_length";
inline constexpr const char* kGoldClass = "gold_class";
} // namespace factor

/// A continuous factor, lost examples against the rest: Mann-Whitney U with the
/// rank-biserial r = P(x_lost > x_rest) - P(x_lost < x_rest) and its stratified bootstrap
/// interval (stats.h mannWhitney).
struct ContinuousFactor {
  std::string name;       ///< a factor:: name
  std::string definition; ///< in words, with units
  double meanLost = 0.0;
  double meanRest = 0.0;
  double medianLost = 0.0;
  double medianRest = 0.0;
  MannWhitneyResult test; ///< u, n1 (lost), n0 (rest), pValue, exact, rankBiserial
  AdjustedP holm;         ///< test.pValue, Holm-adjusted over the pattern's family (adjustLossPattern)
};

/// The gold class against "lost": the C x 2 table, Pearson chi-square with Cramér's V (and a
/// percentile bootstrap interval of V over eval examples), and per class, that class against
/// the others: Fisher's exact test and the odds ratio of being lost with Woolf's interval
/// (log OR +- z sqrt(1/a + 1/b + 1/c + 1/d); 0.5 added to every cell, for the estimate too,
/// when one is 0).
struct ClassFactor {
  std::vector<std::uint64_t> lost; ///< [C] lost examples of each class
  std::vector<std::uint64_t> rest; ///< [C] the other examples of each class
  ChiSquareResult chiSquare;
  AdjustedP chiSquareHolm; ///< chiSquare.pValue, Holm-adjusted over the pattern's family
  Interval cramersV;
  std::vector<FisherResult> fisher; ///< [C] class c against the other classes
  std::vector<Interval> oddsRatio;  ///< [C] woolfOddsRatio (Haldane-corrected when a cell is 0)
};

/// One term of the logistic regression of lost (1) against the rest (0).
struct LogisticTerm {
  std::string name; ///< "intercept", a factor:: name, or "class:<c>" (indicator of class c)
  Coefficient coefficient;
  AdjustedP holm; ///< coefficient.pValue, Holm-adjusted (factor terms only; NaN for the intercept and class:*)
};

struct LossLogistic {
  std::vector<LogisticTerm> terms; ///< intercept first
  bool converged = false;
  int iterations = 0;
  bool includesClass = false;      ///< class indicators are in the fit
  std::int64_t referenceClass = -1; ///< the class without an indicator (the most frequent); -1 when none
  std::string note;                ///< why a factor was left out, when one was
};

struct LossPattern {
  std::size_t examples = 0;
  std::size_t lost = 0;
  std::string note; ///< set when nothing could be tested (no lost examples, or nothing else)
  std::vector<ContinuousFactor> factors; ///< teacher_confidence, teacher_entropy, [input_length]
  ClassFactor goldClass;
  LossLogistic logistic;
};

/// Holm-Bonferroni over one student's loss-pattern tests (docs/statistics.md, "Multiple
/// testing"): the family is the Mann-Whitney test of each continuous factor, the gold class's
/// chi-square and, when the logistic fit converged, the Wald test of each factor's slope (not
/// the intercept, and not the class indicators, which the chi-square already tests; nor the
/// per-class Fisher tests, which only describe the class the chi-square flags). Sets every
/// `holm` field, and resets them first. lossPattern() calls it; so does the run file's reader.
void adjustLossPattern(LossPattern& pattern);

/// The teacher's confidence (max softmax probability, T = 1) of each row.
[[nodiscard]] std::vector<double> maxProbability(const std::vector<double>& probs, std::size_t numClasses);
/// The entropy -sum_c p_c ln p_c (nats) of each row of probabilities.
[[nodiscard]] std::vector<double> rowEntropy(const std::vector<double>& probs, std::size_t numClasses);

/// The odds ratio ad / (bc) of [[a, b], [c, d]] with Woolf's interval exp(log OR -+ z
/// sqrt(1/a + 1/b + 1/c + 1/d)); when a cell is 0, 0.5 is added to every cell for both the
/// estimate and the interval (Haldane-Anscombe), so the estimate is finite and inside its
/// interval. (Fisher's sample odds ratio, inf or 0 then, is in FisherResult.)
[[nodiscard]] Interval woolfOddsRatio(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d,
                                      double level = 0.95);

/// The whole loss pattern of one student. `teacherLogits` and `studentLogits` are N x C,
/// `inputLength` is empty (vector tasks) or N values. With no lost example, or no other one,
/// only the counts and `note` are filled. The logistic regression has the continuous factors
/// standardised (a slope is the change in log odds of "lost" per sd; a constant factor is
/// left out, and so is the teacher's entropy with 2 classes, where it is a function of the
/// confidence) and, when the fit converges with them, an indicator for each class but the most
/// frequent (the slope is the log odds ratio against that class); otherwise it is refitted
/// without the class and says so in `note`.
[[nodiscard]] LossPattern lossPattern(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                                      const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                      const std::vector<double>& inputLength, const BootstrapOptions& options);

} // namespace kdscope::core::analysis
