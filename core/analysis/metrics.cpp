#include "core/analysis/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/analysis/analysis_common.h"

namespace kdscope::core::analysis {
namespace {

using detail::kNaN;
using detail::require;
using detail::requireLabelsInRange;

/// Rows of an N x C array; throws unless the size is a whole number of rows.
std::size_t rowsOf(const std::vector<float>& logits, std::size_t numClasses, const char* function) {
  require(numClasses > 0, function, "numClasses must be positive");
  require(logits.size() % numClasses == 0, function,
          "logits size " + std::to_string(logits.size()) + " is not a multiple of numClasses " +
              std::to_string(numClasses));
  return logits.size() / numClasses;
}

void checkLabels(const std::vector<std::int64_t>& labels, std::size_t rows, std::size_t numClasses,
                 const char* function) {
  require(labels.size() == rows, function,
          "labels size " + std::to_string(labels.size()) + " differs from logits rows " + std::to_string(rows));
  requireLabelsInRange(labels, numClasses, function);
}

std::int64_t argmaxRow(const float* row, std::size_t numClasses) {
  std::size_t best = 0;
  for (std::size_t c = 1; c < numClasses; ++c) {
    if (row[c] > row[best]) {
      best = c;
    }
  }
  return static_cast<std::int64_t>(best);
}

/// log softmax of one row into out; the max is subtracted so exp never overflows.
void logSoftmaxRow(const float* row, std::size_t numClasses, double temperature, double* out) {
  double maxScaled = -std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < numClasses; ++c) {
    maxScaled = std::max(maxScaled, static_cast<double>(row[c]) / temperature);
  }
  double sum = 0.0;
  for (std::size_t c = 0; c < numClasses; ++c) {
    out[c] = static_cast<double>(row[c]) / temperature - maxScaled;
    sum += std::exp(out[c]);
  }
  const double logSum = std::log(sum);
  for (std::size_t c = 0; c < numClasses; ++c) {
    out[c] -= logSum;
  }
}

std::vector<double> rowwiseLogSoftmax(const std::vector<float>& logits, std::size_t numClasses,
                                      double temperature, const char* function) {
  const std::size_t rows = rowsOf(logits, numClasses, function);
  require(temperature > 0.0 && std::isfinite(temperature), function, "temperature must be positive");
  std::vector<double> out(logits.size());
  for (std::size_t i = 0; i < rows; ++i) {
    logSoftmaxRow(logits.data() + i * numClasses, numClasses, temperature, out.data() + i * numClasses);
  }
  return out;
}

} // namespace

std::size_t confidenceBin(double confidence, std::size_t bins) {
  require(bins > 0, "confidenceBin", "bins must be positive");
  // The ceil guess is corrected against the double b / B so the edges are exactly the
  // documented comparisons, whatever the rounding of confidence * B.
  const double b = static_cast<double>(bins);
  double guess = std::ceil(confidence * b) - 1.0;
  guess = std::isnan(guess) ? 0.0 : std::clamp(guess, 0.0, b - 1.0);
  auto idx = static_cast<std::size_t>(guess);
  while (idx > 0 && confidence <= static_cast<double>(idx) / b) {
    --idx;
  }
  while (idx + 1 < bins && confidence > static_cast<double>(idx + 1) / b) {
    ++idx;
  }
  return idx;
}

std::vector<double> softmax(const std::vector<float>& logits, std::size_t numClasses, double temperature) {
  std::vector<double> out = rowwiseLogSoftmax(logits, numClasses, temperature, "softmax");
  for (double& v : out) {
    v = std::exp(v);
  }
  return out;
}

std::vector<double> logSoftmax(const std::vector<float>& logits, std::size_t numClasses, double temperature) {
  return rowwiseLogSoftmax(logits, numClasses, temperature, "logSoftmax");
}

std::vector<std::int64_t> predictions(const std::vector<float>& logits, std::size_t numClasses) {
  const std::size_t rows = rowsOf(logits, numClasses, "predictions");
  std::vector<std::int64_t> out(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    out[i] = argmaxRow(logits.data() + i * numClasses, numClasses);
  }
  return out;
}

double accuracy(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                std::size_t numClasses) {
  const std::size_t rows = rowsOf(logits, numClasses, "accuracy");
  checkLabels(labels, rows, numClasses, "accuracy");
  if (rows == 0) {
    return kNaN;
  }
  std::size_t correct = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    correct += argmaxRow(logits.data() + i * numClasses, numClasses) == labels[i] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(rows);
}

double topOneAgreement(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                       std::size_t numClasses) {
  const std::size_t rows = rowsOf(teacherLogits, numClasses, "topOneAgreement");
  require(studentLogits.size() == teacherLogits.size(), "topOneAgreement",
          "teacher and student logits differ in size");
  if (rows == 0) {
    return kNaN;
  }
  std::size_t same = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    same += argmaxRow(teacherLogits.data() + i * numClasses, numClasses) ==
                    argmaxRow(studentLogits.data() + i * numClasses, numClasses)
                ? 1
                : 0;
  }
  return static_cast<double>(same) / static_cast<double>(rows);
}

double meanKl(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
              std::size_t numClasses, double temperature) {
  const std::size_t rows = rowsOf(teacherLogits, numClasses, "meanKl");
  require(studentLogits.size() == teacherLogits.size(), "meanKl", "teacher and student logits differ in size");
  if (rows == 0) {
    return kNaN;
  }
  const std::vector<double> logP = rowwiseLogSoftmax(teacherLogits, numClasses, temperature, "meanKl");
  const std::vector<double> logQ = rowwiseLogSoftmax(studentLogits, numClasses, temperature, "meanKl");
  double total = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    double kl = 0.0;
    for (std::size_t c = 0; c < numClasses; ++c) {
      const std::size_t k = i * numClasses + c;
      const double p = std::exp(logP[k]);
      if (p > 0.0) { // 0 log 0 = 0; also keeps a -inf log q from a zero-mass class out
        kl += p * (logP[k] - logQ[k]);
      }
    }
    total += kl;
  }
  return total / static_cast<double>(rows);
}

CalibrationBins calibrationBins(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                std::size_t numClasses, std::size_t bins) {
  const std::size_t rows = rowsOf(logits, numClasses, "calibrationBins");
  checkLabels(labels, rows, numClasses, "calibrationBins");
  require(bins > 0, "calibrationBins", "bins must be positive");
  CalibrationBins out;
  out.count.assign(bins, 0);
  std::vector<double> confSum(bins, 0.0);
  std::vector<double> correctSum(bins, 0.0);
  std::vector<double> logProb(numClasses);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* row = logits.data() + i * numClasses;
    logSoftmaxRow(row, numClasses, 1.0, logProb.data());
    const std::int64_t predicted = argmaxRow(row, numClasses);
    const double conf = std::exp(logProb[static_cast<std::size_t>(predicted)]);
    const std::size_t b = confidenceBin(conf, bins);
    ++out.count[b];
    confSum[b] += conf;
    correctSum[b] += predicted == labels[i] ? 1.0 : 0.0;
  }
  out.meanConfidence.assign(bins, kNaN);
  out.accuracy.assign(bins, kNaN);
  double ece = 0.0;
  for (std::size_t b = 0; b < bins; ++b) {
    if (out.count[b] == 0) {
      continue;
    }
    const auto n = static_cast<double>(out.count[b]);
    out.meanConfidence[b] = confSum[b] / n;
    out.accuracy[b] = correctSum[b] / n;
    ece += n * std::abs(out.accuracy[b] - out.meanConfidence[b]);
  }
  out.ece = rows == 0 ? kNaN : ece / static_cast<double>(rows);
  return out;
}

double expectedCalibrationError(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                std::size_t numClasses, std::size_t bins) {
  return calibrationBins(logits, labels, numClasses, bins).ece;
}

std::vector<double> perClassRecall(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                   std::size_t numClasses) {
  const Matrix confusion = confusionMatrix(logits, labels, numClasses);
  std::vector<double> recall(numClasses, kNaN);
  for (std::size_t t = 0; t < numClasses; ++t) {
    double total = 0.0;
    for (std::size_t p = 0; p < numClasses; ++p) {
      total += confusion(t, p);
    }
    if (total > 0.0) {
      recall[t] = confusion(t, t) / total;
    }
  }
  return recall;
}

Matrix confusionMatrix(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                       std::size_t numClasses) {
  const std::size_t rows = rowsOf(logits, numClasses, "confusionMatrix");
  checkLabels(labels, rows, numClasses, "confusionMatrix");
  Matrix out(numClasses, numClasses, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    const auto predicted = static_cast<std::size_t>(argmaxRow(logits.data() + i * numClasses, numClasses));
    out(static_cast<std::size_t>(labels[i]), predicted) += 1.0;
  }
  return out;
}

TaskComparison compareTask(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                           const std::vector<std::int64_t>& labels, std::size_t numClasses) {
  require(teacherLogits.size() == studentLogits.size(), "compareTask",
          "teacher and student logits differ in size");
  TaskComparison out;
  out.teacherAccuracy = accuracy(teacherLogits, labels, numClasses);
  out.studentAccuracy = accuracy(studentLogits, labels, numClasses);
  out.gap = out.teacherAccuracy - out.studentAccuracy;
  out.retainedFraction = out.teacherAccuracy == 0.0 ? kNaN : out.studentAccuracy / out.teacherAccuracy;
  out.agreement = topOneAgreement(teacherLogits, studentLogits, numClasses);
  out.meanKl = meanKl(teacherLogits, studentLogits, numClasses, 1.0);
  out.teacherEce = expectedCalibrationError(teacherLogits, labels, numClasses, 15);
  out.studentEce = expectedCalibrationError(studentLogits, labels, numClasses, 15);
  return out;
}

LostAndGained lostAndGained(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                            const std::vector<std::int64_t>& labels, std::size_t numClasses) {
  const std::size_t rows = rowsOf(teacherLogits, numClasses, "lostAndGained");
  require(studentLogits.size() == teacherLogits.size(), "lostAndGained",
          "teacher and student logits differ in size");
  checkLabels(labels, rows, numClasses, "lostAndGained");
  LostAndGained out;
  std::vector<double> logP(numClasses);
  std::vector<double> logQ(numClasses);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* t = teacherLogits.data() + i * numClasses;
    const float* s = studentLogits.data() + i * numClasses;
    const std::int64_t tPred = argmaxRow(t, numClasses);
    const std::int64_t sPred = argmaxRow(s, numClasses);
    const bool teacherRight = tPred == labels[i];
    const bool studentRight = sPred == labels[i];
    if (teacherRight == studentRight) {
      continue;
    }
    logSoftmaxRow(t, numClasses, 1.0, logP.data());
    logSoftmaxRow(s, numClasses, 1.0, logQ.data());
    ExampleChange change;
    change.index = i;
    change.label = labels[i];
    change.teacherPrediction = tPred;
    change.studentPrediction = sPred;
    const auto y = static_cast<std::size_t>(labels[i]);
    change.teacherTrueProbability = std::exp(logP[y]);
    change.studentTrueProbability = std::exp(logQ[y]);
    change.teacherPredictedProbability = std::exp(logP[static_cast<std::size_t>(tPred)]);
    change.studentPredictedProbability = std::exp(logQ[static_cast<std::size_t>(sPred)]);
    (teacherRight ? out.lost : out.gained).push_back(change);
  }
  return out;
}

} // namespace kdscope::core::analysis
