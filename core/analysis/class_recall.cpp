#include "core/analysis/class_recall.h"

#include <cmath>
#include <limits>

namespace kdscope::core::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::size_t argmaxRow(const std::vector<float>& logits, std::size_t row, std::size_t classes) {
  std::size_t best = 0;
  for (std::size_t k = 1; k < classes; ++k) {
    if (logits[row * classes + k] > logits[row * classes + best]) {
      best = k;
    }
  }
  return best;
}

/// 0/1 "predicted its class" of the examples of class k, in example order.
std::vector<double> hitsOfClass(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                std::size_t classes, std::size_t k) {
  std::vector<double> hits;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= 0 && static_cast<std::size_t>(labels[i]) == k) {
      hits.push_back(argmaxRow(logits, i, classes) == k ? 1.0 : 0.0);
    }
  }
  return hits;
}

Interval none() {
  Interval i;
  i.estimate = kNaN;
  i.lo = kNaN;
  i.hi = kNaN;
  return i;
}

} // namespace

std::vector<ClassRecall> classRecallIntervals(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                                              std::size_t classes, const BootstrapOptions& options) {
  std::vector<ClassRecall> out(classes);
  if (classes == 0 || logits.size() != labels.size() * classes) {
    return out;
  }
  for (std::size_t k = 0; k < classes; ++k) {
    const std::vector<double> hits = hitsOfClass(logits, labels, classes, k);
    out[k].examples = hits.size();
    out[k].recall = hits.empty() ? none() : bootstrapMean(hits, options);
  }
  return out;
}

std::vector<PairedComparison> classRecallDifferences(const std::vector<float>& first, const std::vector<float>& second,
                                                     const std::vector<std::int64_t>& labels, std::size_t classes,
                                                     const BootstrapOptions& options) {
  std::vector<PairedComparison> out(classes);
  if (classes == 0 || first.size() != labels.size() * classes || second.size() != first.size()) {
    return out;
  }
  for (std::size_t k = 0; k < classes; ++k) {
    const std::vector<double> a = hitsOfClass(first, labels, classes, k);
    if (a.empty()) {
      out[k].difference = none();
      out[k].pValue = kNaN;
      continue;
    }
    out[k] = pairedBootstrap(a, hitsOfClass(second, labels, classes, k), options);
  }
  return out;
}

} // namespace kdscope::core::analysis
