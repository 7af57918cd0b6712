// Intervals and paired tests of the task metrics (task_intervals.h).
#include "core/analysis/task_intervals.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/analysis/metrics.h"

namespace kdscope::core::analysis {

namespace {

void require(bool ok, const char* function, const std::string& what) {
  if (!ok) {
    throw std::invalid_argument(std::string(function) + ": " + what);
  }
}

/// Per-example confidence (max softmax probability, T = 1), 0/1 correctness and ECE bin.
struct Calibration {
  std::vector<double> confidence;
  std::vector<double> correct;
  std::vector<std::size_t> bin;
};

Calibration calibrationOf(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                          std::size_t numClasses) {
  const std::vector<double> logProb = logSoftmax(logits, numClasses);
  const std::vector<std::int64_t> predicted = predictions(logits, numClasses);
  Calibration out;
  const std::size_t n = labels.size();
  out.confidence.resize(n);
  out.correct.resize(n);
  out.bin.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.confidence[i] = std::exp(logProb[i * numClasses + static_cast<std::size_t>(predicted[i])]);
    out.correct[i] = predicted[i] == labels[i] ? 1.0 : 0.0;
    out.bin[i] = confidenceBin(out.confidence[i], kEceBins);
  }
  return out;
}

Interval eceInterval(const Calibration& c, const BootstrapOptions& options) {
  return bootstrapInterval(
      c.correct.size(),
      [&c](const std::vector<std::uint32_t>& indices) { return eceOfIndices(c.confidence, c.correct, c.bin, indices); },
      options);
}

/// KL(p || q) of each row at T = 1 (nats), as meanKl sums it.
std::vector<double> klPerExample(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                                 std::size_t numClasses) {
  const std::vector<double> logP = logSoftmax(teacherLogits, numClasses);
  const std::vector<double> logQ = logSoftmax(studentLogits, numClasses);
  const std::size_t rows = numClasses == 0 ? 0 : teacherLogits.size() / numClasses;
  std::vector<double> out(rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t c = 0; c < numClasses; ++c) {
      const std::size_t k = i * numClasses + c;
      const double p = std::exp(logP[k]);
      if (p > 0.0) {
        out[i] += p * (logP[k] - logQ[k]);
      }
    }
  }
  return out;
}

void checkShapes(const std::vector<float>& a, const std::vector<float>& b, const std::vector<std::int64_t>& labels,
                 std::size_t numClasses, const char* function) {
  require(numClasses > 0, function, "numClasses must be positive");
  require(a.size() == labels.size() * numClasses, function, "logits are not N x C for the N labels");
  require(b.size() == a.size(), function, "the two models' logits differ in size");
}

} // namespace

double eceOfIndices(const std::vector<double>& confidence, const std::vector<double>& correct,
                    const std::vector<std::size_t>& bin, const std::vector<std::uint32_t>& indices) {
  if (indices.empty()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  double confSum[kEceBins] = {};
  double correctSum[kEceBins] = {};
  for (const std::uint32_t i : indices) {
    confSum[bin[i]] += confidence[i];
    correctSum[bin[i]] += correct[i];
  }
  double ece = 0.0;
  for (std::size_t b = 0; b < kEceBins; ++b) {
    ece += std::abs(correctSum[b] - confSum[b]);
  }
  return ece / static_cast<double>(indices.size());
}

std::vector<double> correctness(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                std::size_t numClasses) {
  require(numClasses > 0 && logits.size() == labels.size() * numClasses, "correctness",
          "logits are not N x C for the N labels");
  const std::vector<std::int64_t> predicted = predictions(logits, numClasses);
  std::vector<double> out(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out[i] = predicted[i] == labels[i] ? 1.0 : 0.0;
  }
  return out;
}

std::vector<NamedInterval> modelIntervals(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                          std::size_t numClasses, const BootstrapOptions& options) {
  checkShapes(logits, logits, labels, numClasses, "modelIntervals");
  const Calibration c = calibrationOf(logits, labels, numClasses);
  return {{metric::kAccuracy, bootstrapMean(c.correct, options)}, {metric::kEce, eceInterval(c, options)}};
}

std::vector<NamedInterval> studentIntervals(const std::vector<float>& teacherLogits,
                                            const std::vector<float>& studentLogits,
                                            const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                            const BootstrapOptions& options) {
  checkShapes(teacherLogits, studentLogits, labels, numClasses, "studentIntervals");
  const Calibration t = calibrationOf(teacherLogits, labels, numClasses);
  const Calibration s = calibrationOf(studentLogits, labels, numClasses);
  const std::size_t n = labels.size();
  std::vector<double> difference(n);
  std::vector<double> agree(n);
  const std::vector<std::int64_t> predT = predictions(teacherLogits, numClasses);
  const std::vector<std::int64_t> predS = predictions(studentLogits, numClasses);
  for (std::size_t i = 0; i < n; ++i) {
    difference[i] = t.correct[i] - s.correct[i];
    agree[i] = predT[i] == predS[i] ? 1.0 : 0.0;
  }
  return {{metric::kAccuracy, bootstrapMean(s.correct, options)},
          {metric::kEce, eceInterval(s, options)},
          {metric::kTeacherAccuracy, bootstrapMean(t.correct, options)},
          {metric::kTeacherEce, eceInterval(t, options)},
          {metric::kGap, bootstrapMean(difference, options)},
          {metric::kRetainedFraction, bootstrapRatio(s.correct, t.correct, options)},
          {metric::kAgreement, bootstrapMean(agree, options)},
          {metric::kMeanKl, bootstrapMean(klPerExample(teacherLogits, studentLogits, numClasses), options)}};
}

CorrectnessComparison compareCorrectness(const std::vector<float>& firstLogits,
                                         const std::vector<float>& secondLogits,
                                         const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                         const BootstrapOptions& options) {
  checkShapes(firstLogits, secondLogits, labels, numClasses, "compareCorrectness");
  const std::vector<double> a = correctness(firstLogits, labels, numClasses);
  const std::vector<double> b = correctness(secondLogits, labels, numClasses);
  CorrectnessComparison out;
  out.examples = labels.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool first = a[i] != 0.0;
    const bool second = b[i] != 0.0;
    out.onlyFirst += first && !second ? 1 : 0;
    out.onlySecond += !first && second ? 1 : 0;
    out.bothRight += first && second ? 1 : 0;
    out.bothWrong += !first && !second ? 1 : 0;
  }
  out.mcnemarP = mcnemarExactP(out.onlyFirst, out.onlySecond);
  out.accuracyDifference = pairedBootstrap(a, b, options);
  return out;
}

} // namespace kdscope::core::analysis
