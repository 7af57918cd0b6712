#include "core/analysis/knowledge.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/analysis/analysis_common.h"

namespace kdscope::core::analysis {
namespace {

using detail::kNaN;
using detail::require;
using detail::requireLabelsInRange;

/// Checks an N x C array against N labels in [0, C) and returns N.
template <class T>
std::size_t checkRows(const std::vector<T>& values, const std::vector<std::int64_t>& labels, std::size_t numClasses,
                      const char* function) {
  require(numClasses > 0, function, "numClasses must be positive");
  require(values.size() == labels.size() * numClasses, function,
          "array size " + std::to_string(values.size()) + " is not labels (" + std::to_string(labels.size()) +
              ") x numClasses (" + std::to_string(numClasses) + ")");
  requireLabelsInRange(labels, numClasses, function);
  return labels.size();
}

/// Sum of row[c] over c != y: 1 - row[y] without the cancellation of 1 - p when p ~ 1.
double nonTargetMass(const double* row, std::size_t numClasses, std::size_t y) {
  double sum = 0.0;
  for (std::size_t c = 0; c < numClasses; ++c) {
    if (c != y) {
      sum += row[c];
    }
  }
  return sum;
}

/// Average ranks (1-based) with ties sharing the mean of the ranks they span.
std::vector<double> averageRanks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  std::size_t start = 0;
  while (start < order.size()) {
    std::size_t end = start + 1;
    while (end < order.size() && values[order[end]] == values[order[start]]) {
      ++end;
    }
    const double rank = (static_cast<double>(start) + static_cast<double>(end - 1)) / 2.0 + 1.0;
    for (std::size_t k = start; k < end; ++k) {
      ranks[order[k]] = rank;
    }
    start = end;
  }
  return ranks;
}

/// Pearson correlation of complete pairs (no NaN), two-pass for accuracy.
double pearsonOfPairs(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n = a.size();
  if (n < 2) {
    return kNaN;
  }
  double meanA = 0.0;
  double meanB = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    meanA += a[i];
    meanB += b[i];
  }
  meanA /= static_cast<double>(n);
  meanB /= static_cast<double>(n);
  double sab = 0.0;
  double saa = 0.0;
  double sbb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double da = a[i] - meanA;
    const double db = b[i] - meanB;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (!(saa > 0.0) || !(sbb > 0.0)) {
    return kNaN; // a constant side has no correlation
  }
  return sab / (std::sqrt(saa) * std::sqrt(sbb));
}

/// The pairs (a_i, b_i) where neither is NaN.
void completePairs(const std::vector<double>& a, const std::vector<double>& b, std::vector<double>& outA,
                   std::vector<double>& outB) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isnan(a[i]) && !std::isnan(b[i])) {
      outA.push_back(a[i]);
      outB.push_back(b[i]);
    }
  }
}

} // namespace

double matchedLabelSmoothingEpsilon(const std::vector<double>& teacherProbs, const std::vector<std::int64_t>& labels,
                                    std::size_t numClasses) {
  const std::size_t n = checkRows(teacherProbs, labels, numClasses, "matchedLabelSmoothingEpsilon");
  require(numClasses >= 2, "matchedLabelSmoothingEpsilon", "needs at least 2 classes");
  if (n == 0) {
    return kNaN;
  }
  double mass = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    mass += nonTargetMass(teacherProbs.data() + i * numClasses, numClasses, static_cast<std::size_t>(labels[i]));
  }
  const auto c = static_cast<double>(numClasses);
  return c * (mass / static_cast<double>(n)) / (c - 1.0);
}

double matchedLabelSmoothingEpsilonAt(const std::vector<float>& teacherLogits, const std::vector<std::int64_t>& labels,
                                      std::size_t numClasses, double temperature) {
  require(temperature > 0.0, "matchedLabelSmoothingEpsilonAt", "needs a positive temperature");
  return matchedLabelSmoothingEpsilon(softmax(teacherLogits, numClasses, temperature), labels, numClasses);
}

std::vector<double> labelSmoothingTargets(const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                          double epsilon) {
  std::vector<double> targets(labels.size() * numClasses, epsilon / static_cast<double>(numClasses));
  checkRows(targets, labels, numClasses, "labelSmoothingTargets");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    targets[i * numClasses + static_cast<std::size_t>(labels[i])] += 1.0 - epsilon;
  }
  return targets;
}

std::vector<double> gradRescaleWeights(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                                       const std::vector<std::int64_t>& labels, std::size_t numClasses, double lambda,
                                       double temperature) {
  const std::size_t n = checkRows(teacherLogits, labels, numClasses, "gradRescaleWeights");
  require(studentLogits.size() == teacherLogits.size(), "gradRescaleWeights",
          "teacher and student logits differ in size");
  require(lambda >= 0.0 && lambda <= 1.0, "gradRescaleWeights", "lambda must be in [0, 1]");
  require(temperature > 0.0 && std::isfinite(temperature), "gradRescaleWeights", "temperature must be positive");
  const std::vector<double> q = softmax(studentLogits, numClasses, 1.0);
  const std::vector<double> qT = softmax(studentLogits, numClasses, temperature);
  const std::vector<double> pT = softmax(teacherLogits, numClasses, temperature);
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::size_t>(labels[i]);
    const std::size_t row = i * numClasses;
    const double oneMinusQ = nonTargetMass(q.data() + row, numClasses, y);
    if (!(oneMinusQ > 0.0)) {
      w[i] = kNaN; // q_y == 1: CE has no gradient here to rescale
      continue;
    }
    // q^T_y - p^T_y = (1 - p^T_y) - (1 - q^T_y), each from the non-target mass.
    const double diffT = nonTargetMass(pT.data() + row, numClasses, y) - nonTargetMass(qT.data() + row, numClasses, y);
    const double gCe = -oneMinusQ;
    const double gKd = (1.0 - lambda) * gCe + lambda * temperature * diffT;
    w[i] = gKd / gCe;
  }
  return w;
}

std::vector<double> objectiveGradRescaleWeights(const std::vector<float>& teacherLogits,
                                                const std::vector<float>& studentLogits,
                                                const std::vector<std::int64_t>& labels, std::size_t numClasses,
                                                const LogitObjective& objective) {
  const char* fn = "objectiveGradRescaleWeights";
  const std::size_t n = checkRows(teacherLogits, labels, numClasses, fn);
  require(studentLogits.size() == teacherLogits.size(), fn, "teacher and student logits differ in size");
  const double lambda = objective.lambda;
  const double temperature = objective.temperature;
  const double eps = objective.labelSmoothing;
  require(lambda >= 0.0 && lambda <= 1.0, fn, "lambda must be in [0, 1]");
  require(temperature > 0.0 && std::isfinite(temperature), fn, "temperature must be positive");
  require(eps >= 0.0 && eps < 1.0, fn, "labelSmoothing must be in [0, 1)");
  require(objective.logitMse >= 0.0 && std::isfinite(objective.logitMse), fn, "logitMse must be >= 0");
  const std::vector<double> q = softmax(studentLogits, numClasses, 1.0);
  const std::vector<double> qT = softmax(studentLogits, numClasses, temperature);
  const std::vector<double> pT = softmax(teacherLogits, numClasses, temperature);
  const double factor = objective.tSquared ? temperature : 1.0 / temperature; // f / T
  const auto c = static_cast<double>(numClasses);
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::size_t>(labels[i]);
    const std::size_t row = i * numClasses;
    const double oneMinusQ = nonTargetMass(q.data() + row, numClasses, y);
    if (!(oneMinusQ > 0.0)) {
      w[i] = kNaN;
      continue;
    }
    const double gCe = -oneMinusQ;
    // q_y - (1 - eps) - eps / C = -(1 - q_y) + eps (C - 1) / C.
    double g = (1.0 - lambda) * (gCe + eps * (c - 1.0) / c);
    if (lambda > 0.0) {
      // The KD-pt target keeps p^T_y, so the true-class term is the same for both targets.
      const double diffT =
          nonTargetMass(pT.data() + row, numClasses, y) - nonTargetMass(qT.data() + row, numClasses, y);
      g += lambda * factor * diffT;
    }
    if (objective.logitMse > 0.0) {
      g += objective.logitMse * 2.0 *
           (static_cast<double>(studentLogits[row + y]) - static_cast<double>(teacherLogits[row + y])) / c;
    }
    w[i] = g / gCe;
  }
  return w;
}

std::vector<double> ptTeacherProbs(const std::vector<double>& teacherProbs, const std::vector<std::int64_t>& labels,
                                   std::size_t numClasses) {
  const std::size_t n = checkRows(teacherProbs, labels, numClasses, "ptTeacherProbs");
  require(numClasses >= 2, "ptTeacherProbs", "needs at least 2 classes");
  std::vector<double> out(teacherProbs.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::size_t>(labels[i]);
    const double* row = teacherProbs.data() + i * numClasses;
    const double spread = nonTargetMass(row, numClasses, y) / static_cast<double>(numClasses - 1);
    for (std::size_t c = 0; c < numClasses; ++c) {
      out[i * numClasses + c] = c == y ? row[y] : spread;
    }
  }
  return out;
}

std::vector<double> trueClassProbabilities(const std::vector<double>& probs, const std::vector<std::int64_t>& labels,
                                           std::size_t numClasses) {
  const std::size_t n = checkRows(probs, labels, numClasses, "trueClassProbabilities");
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = probs[i * numClasses + static_cast<std::size_t>(labels[i])];
  }
  return out;
}

ConfidenceBins binByConfidence(const std::vector<double>& values, const std::vector<double>& confidence,
                               std::size_t bins) {
  require(bins > 0, "binByConfidence", "bins must be positive");
  require(values.size() == confidence.size(), "binByConfidence", "values and confidence differ in size");
  ConfidenceBins out;
  out.count.assign(bins, 0);
  out.meanValue.assign(bins, 0.0);
  out.meanConfidence.assign(bins, 0.0);
  for (std::size_t b = 0; b < bins; ++b) {
    out.lower.push_back(static_cast<double>(b) / static_cast<double>(bins));
    out.upper.push_back(static_cast<double>(b + 1) / static_cast<double>(bins));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i]) || std::isnan(confidence[i])) {
      continue;
    }
    require(confidence[i] >= 0.0 && confidence[i] <= 1.0, "binByConfidence",
            "confidence of example " + std::to_string(i) + " is outside [0, 1]");
    const std::size_t b = confidenceBin(confidence[i], bins);
    ++out.count[b];
    out.meanValue[b] += values[i];
    out.meanConfidence[b] += confidence[i];
  }
  for (std::size_t b = 0; b < bins; ++b) {
    if (out.count[b] == 0) {
      out.meanValue[b] = kNaN;
      out.meanConfidence[b] = kNaN;
    } else {
      out.meanValue[b] /= static_cast<double>(out.count[b]);
      out.meanConfidence[b] /= static_cast<double>(out.count[b]);
    }
  }
  return out;
}

std::vector<double> perClassMean(const std::vector<double>& values, const std::vector<std::int64_t>& labels,
                                 std::size_t numClasses) {
  require(values.size() == labels.size(), "perClassMean", "values and labels differ in length");
  std::vector<double> sum(numClasses, 0.0);
  std::vector<std::size_t> count(numClasses, 0);
  requireLabelsInRange(labels, numClasses, "perClassMean");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (std::isnan(values[i])) {
      continue;
    }
    sum[static_cast<std::size_t>(labels[i])] += values[i];
    ++count[static_cast<std::size_t>(labels[i])];
  }
  std::vector<double> mean(numClasses, kNaN);
  for (std::size_t c = 0; c < numClasses; ++c) {
    if (count[c] > 0) {
      mean[c] = sum[c] / static_cast<double>(count[c]);
    }
  }
  return mean;
}

double spearmanCorrelation(const std::vector<double>& a, const std::vector<double>& b) {
  require(a.size() == b.size(), "spearmanCorrelation", "series differ in length");
  std::vector<double> ca;
  std::vector<double> cb;
  completePairs(a, b, ca, cb);
  return pearsonOfPairs(averageRanks(ca), averageRanks(cb));
}

double pearsonCorrelation(const std::vector<double>& a, const std::vector<double>& b) {
  require(a.size() == b.size(), "pearsonCorrelation", "series differ in length");
  std::vector<double> ca;
  std::vector<double> cb;
  completePairs(a, b, ca, cb);
  return pearsonOfPairs(ca, cb);
}

Matrix classSimilarityFromWeights(const std::vector<float>& weight, std::size_t numClasses, std::size_t width) {
  require(numClasses > 0 && width > 0, "classSimilarityFromWeights", "shape must be positive");
  require(weight.size() == numClasses * width, "classSimilarityFromWeights",
          "weight size " + std::to_string(weight.size()) + " is not numClasses x width");
  std::vector<double> norm(numClasses, 0.0);
  for (std::size_t c = 0; c < numClasses; ++c) {
    double s = 0.0;
    for (std::size_t k = 0; k < width; ++k) {
      const double v = weight[c * width + k];
      s += v * v;
    }
    norm[c] = std::sqrt(s);
  }
  Matrix out(numClasses, numClasses, kNaN);
  for (std::size_t i = 0; i < numClasses; ++i) {
    for (std::size_t j = i; j < numClasses; ++j) {
      if (!(norm[i] > 0.0) || !(norm[j] > 0.0)) {
        continue; // the cosine of a zero vector is undefined
      }
      double s = 0.0;
      for (std::size_t k = 0; k < width; ++k) {
        s += static_cast<double>(weight[i * width + k]) * static_cast<double>(weight[j * width + k]);
      }
      out(i, j) = out(j, i) = s / (norm[i] * norm[j]);
    }
  }
  return out;
}

Matrix classSimilarityFromProbs(const std::vector<double>& probs, const std::vector<std::int64_t>& labels,
                                std::size_t numClasses) {
  const std::size_t n = checkRows(probs, labels, numClasses, "classSimilarityFromProbs");
  return classSimilarityFromProbsOfRows(probs, labels, numClasses, nullptr, n);
}

Matrix classSimilarityFromProbsOfRows(const std::vector<double>& probs, const std::vector<std::int64_t>& labels,
                                      std::size_t numClasses, const std::uint32_t* rows, std::size_t n) {
  Matrix sum(numClasses, numClasses, 0.0);
  std::vector<std::size_t> count(numClasses, 0);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = rows != nullptr ? rows[k] : k;
    const auto y = static_cast<std::size_t>(labels[i]);
    ++count[y];
    for (std::size_t c = 0; c < numClasses; ++c) {
      sum(y, c) += probs[i * numClasses + c];
    }
  }
  for (std::size_t r = 0; r < numClasses; ++r) {
    for (std::size_t c = 0; c < numClasses; ++c) {
      sum(r, c) = count[r] == 0 ? kNaN : sum(r, c) / static_cast<double>(count[r]);
    }
  }
  return sum;
}

double offDiagonalCorrelation(const Matrix& a, const Matrix& b) {
  require(a.rows == a.cols && b.rows == b.cols && a.rows == b.rows, "offDiagonalCorrelation",
          "needs two square matrices of the same size");
  require(a.values.size() == a.rows * a.cols && b.values.size() == b.rows * b.cols, "offDiagonalCorrelation",
          "matrix storage does not match its shape");
  std::vector<double> va;
  std::vector<double> vb;
  for (std::size_t i = 0; i < a.rows; ++i) {
    for (std::size_t j = 0; j < a.cols; ++j) {
      if (i != j) {
        va.push_back(a(i, j));
        vb.push_back(b(i, j));
      }
    }
  }
  return pearsonCorrelation(va, vb);
}

GainDecomposition gainDecomposition(double accCe, double accLs, double accKdPt, double accKd) {
  GainDecomposition g;
  g.universe = accLs - accCe;
  g.instance = accKdPt - accLs;
  g.domain = accKd - accKdPt;
  g.total = accKd - accCe;
  g.lsShareOfKdGain = g.total == 0.0 ? kNaN : g.universe / g.total;
  return g;
}

} // namespace kdscope::core::analysis
