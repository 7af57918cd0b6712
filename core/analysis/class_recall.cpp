#include "core/analysis/class_recall.h"

#include "core/analysis/metrics.h"

#include <cmath>
#include <limits>

namespace kdscope::core::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// 0/1 "predicted its class" of the examples of class k, in example order.
std::vector<double> hitsOfClass(const std::vector<std::int64_t>& predicted, const std::vector<std::int64_t>& labels,
                                std::size_t k) {
  std::vector<double> hits;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= 0 && static_cast<std::size_t>(labels[i]) == k) {
      hits.push_back(predicted[i] == labels[i] ? 1.0 : 0.0);
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
  const std::vector<std::int64_t> predicted = predictions(logits, classes);
  for (std::size_t k = 0; k < classes; ++k) {
    const std::vector<double> hits = hitsOfClass(predicted, labels, k);
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
  const std::vector<std::int64_t> firstPredicted = predictions(first, classes);
  const std::vector<std::int64_t> secondPredicted = predictions(second, classes);
  for (std::size_t k = 0; k < classes; ++k) {
    const std::vector<double> a = hitsOfClass(firstPredicted, labels, k);
    if (a.empty()) {
      out[k].difference = none();
      out[k].pValue = kNaN;
      continue;
    }
    out[k] = pairedBootstrap(a, hitsOfClass(secondPredicted, labels, k), options);
  }
  return out;
}

} // namespace kdscope::core::analysis
