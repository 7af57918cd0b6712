// Where the lost examples are (loss_pattern.h).
#include "core/analysis/loss_pattern.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/analysis/metrics.h"

namespace kdscope::core::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require(bool ok, const std::string& what) {
  if (!ok) {
    throw std::invalid_argument("lossPattern: " + what);
  }
}

double meanOf(const std::vector<double>& v) {
  if (v.empty()) {
    return kNaN;
  }
  double s = 0.0;
  for (const double x : v) {
    s += x;
  }
  return s / static_cast<double>(v.size());
}

/// The median (mean of the two middle values for an even count); NaN when empty.
double medianOf(std::vector<double> v) {
  if (v.empty()) {
    return kNaN;
  }
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

ContinuousFactor continuousFactor(const char* name, const char* definition, const std::vector<double>& values,
                                  const std::vector<std::uint8_t>& lost, const BootstrapOptions& options) {
  ContinuousFactor f;
  f.name = name;
  f.definition = definition;
  std::vector<double> inLost;
  std::vector<double> inRest;
  for (std::size_t i = 0; i < values.size(); ++i) {
    (lost[i] != 0 ? inLost : inRest).push_back(values[i]);
  }
  f.meanLost = meanOf(inLost);
  f.meanRest = meanOf(inRest);
  f.medianLost = medianOf(inLost);
  f.medianRest = medianOf(inRest);
  f.test = mannWhitney(values, lost, options);
  return f;
}

/// The C x 2 counts (rest, lost) of the examples at `indices`, for chiSquareIndependence.
std::vector<std::uint64_t> classTable(const std::vector<std::int64_t>& labels, const std::vector<std::uint8_t>& lost,
                                      std::size_t numClasses, const std::vector<std::uint32_t>* indices) {
  std::vector<std::uint64_t> counts(numClasses * 2, 0);
  const std::size_t n = indices != nullptr ? indices->size() : labels.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = indices != nullptr ? (*indices)[k] : k;
    ++counts[static_cast<std::size_t>(labels[i]) * 2 + (lost[i] != 0 ? 1 : 0)];
  }
  return counts;
}

/// Standardised copy (mean 0, sample sd 1); empty when the column is constant.
std::vector<double> standardised(const std::vector<double>& v) {
  const double m = meanOf(v);
  double ss = 0.0;
  for (const double x : v) {
    ss += (x - m) * (x - m);
  }
  const double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  if (!(sd > 0.0)) {
    return {};
  }
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    out[i] = (v[i] - m) / sd;
  }
  return out;
}

LossLogistic logistic(const std::vector<ContinuousFactor>& factors, const std::vector<std::vector<double>>& values,
                      const std::vector<std::int64_t>& labels, const ClassFactor& classes,
                      const std::vector<std::uint8_t>& lost, double level) {
  LossLogistic out;
  std::vector<std::vector<double>> columns;
  std::vector<std::string> names;
  const std::size_t numClasses = classes.lost.size();
  for (std::size_t f = 0; f < factors.size(); ++f) {
    if (numClasses == 2 && factors[f].name == factor::kTeacherEntropy) {
      // With 2 classes the entropy is a function of the confidence: the two slopes would
      // only share one effect between them.
      out.note += (out.note.empty() ? "" : "; ") + factors[f].name +
                  " left out (with 2 classes a function of the teacher's confidence)";
      continue;
    }
    std::vector<double> z = standardised(values[f]);
    if (z.empty()) {
      out.note += (out.note.empty() ? "" : "; ") + factors[f].name + " left out (constant)";
      continue;
    }
    columns.push_back(std::move(z));
    names.push_back(factors[f].name);
  }
  // Class indicators against the most frequent class (ties: the lowest index).
  std::vector<std::uint64_t> size(numClasses);
  std::size_t present = 0;
  for (std::size_t c = 0; c < numClasses; ++c) {
    size[c] = classes.lost[c] + classes.rest[c];
    present += size[c] > 0 ? 1 : 0;
  }
  const auto reference = static_cast<std::int64_t>(std::max_element(size.begin(), size.end()) - size.begin());
  std::vector<std::vector<double>> withClass = columns;
  std::vector<std::string> classNames = names;
  if (present >= 2) {
    for (std::size_t c = 0; c < numClasses; ++c) {
      if (size[c] == 0 || static_cast<std::int64_t>(c) == reference) {
        continue;
      }
      std::vector<double> indicator(labels.size());
      for (std::size_t i = 0; i < labels.size(); ++i) {
        indicator[i] = labels[i] == static_cast<std::int64_t>(c) ? 1.0 : 0.0;
      }
      withClass.push_back(std::move(indicator));
      classNames.push_back("class:" + std::to_string(c));
    }
  }
  LogisticFit fit;
  if (withClass.size() > columns.size()) {
    fit = logisticRegression(withClass, lost, /*standardize=*/false, level);
    if (fit.converged) {
      out.includesClass = true;
      out.referenceClass = reference;
      names = classNames;
    } else {
      out.note += std::string(out.note.empty() ? "" : "; ") +
                  "gold class left out: the fit with class indicators did not converge (a class without lost "
                  "examples, or without other ones, separates)";
    }
  }
  if (!out.includesClass) {
    fit = logisticRegression(columns, lost, /*standardize=*/false, level);
  }
  out.converged = fit.converged;
  out.iterations = fit.iterations;
  out.terms.push_back({"intercept", fit.intercept});
  for (std::size_t j = 0; j < fit.slopes.size() && j < names.size(); ++j) {
    out.terms.push_back({names[j], fit.slopes[j]});
  }
  return out;
}

} // namespace

std::vector<double> maxProbability(const std::vector<double>& probs, std::size_t numClasses) {
  require(numClasses > 0 && probs.size() % numClasses == 0, "probabilities are not N x C");
  std::vector<double> out(probs.size() / numClasses);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = *std::max_element(probs.begin() + static_cast<std::ptrdiff_t>(i * numClasses),
                               probs.begin() + static_cast<std::ptrdiff_t>((i + 1) * numClasses));
  }
  return out;
}

std::vector<double> rowEntropy(const std::vector<double>& probs, std::size_t numClasses) {
  require(numClasses > 0 && probs.size() % numClasses == 0, "probabilities are not N x C");
  std::vector<double> out(probs.size() / numClasses, 0.0);
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t c = 0; c < numClasses; ++c) {
      const double p = probs[i * numClasses + c];
      if (p > 0.0) {
        out[i] -= p * std::log(p);
      }
    }
  }
  return out;
}

Interval woolfOddsRatio(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, double level) {
  Interval out;
  out.over = "eval examples (Woolf, log odds ratio)";
  out.level = level;
  out.count = a + b + c + d;
  const double fa = static_cast<double>(a);
  const double fb = static_cast<double>(b);
  const double fc = static_cast<double>(c);
  const double fd = static_cast<double>(d);
  const double add = (a == 0 || b == 0 || c == 0 || d == 0) ? 0.5 : 0.0;
  const double logOr = std::log((fa + add) * (fd + add) / ((fb + add) * (fc + add)));
  out.estimate = std::exp(logOr);
  const double se = std::sqrt(1.0 / (fa + add) + 1.0 / (fb + add) + 1.0 / (fc + add) + 1.0 / (fd + add));
  const double z = normalQuantile(0.5 + 0.5 * level);
  out.lo = std::exp(logOr - z * se);
  out.hi = std::exp(logOr + z * se);
  return out;
}

LossPattern lossPattern(const std::vector<float>& teacherLogits, const std::vector<float>& studentLogits,
                        const std::vector<std::int64_t>& labels, std::size_t numClasses,
                        const std::vector<double>& inputLength, const BootstrapOptions& options) {
  const std::size_t n = labels.size();
  require(numClasses > 0 && teacherLogits.size() == n * numClasses && studentLogits.size() == teacherLogits.size(),
          "logits are not N x C for the N labels");
  require(inputLength.empty() || inputLength.size() == n, "inputLength is neither empty nor one value per example");
  for (const std::int64_t y : labels) {
    require(y >= 0 && static_cast<std::size_t>(y) < numClasses, "a label is outside [0, C)");
  }
  const std::vector<double> probs = softmax(teacherLogits, numClasses);
  const std::vector<std::int64_t> predT = predictions(teacherLogits, numClasses);
  const std::vector<std::int64_t> predS = predictions(studentLogits, numClasses);
  std::vector<std::uint8_t> lost(n);
  LossPattern out;
  out.examples = n;
  for (std::size_t i = 0; i < n; ++i) {
    lost[i] = predT[i] == labels[i] && predS[i] != labels[i] ? 1 : 0;
    out.lost += lost[i];
  }
  out.goldClass.lost.assign(numClasses, 0);
  out.goldClass.rest.assign(numClasses, 0);
  for (std::size_t i = 0; i < n; ++i) {
    ++(lost[i] != 0 ? out.goldClass.lost : out.goldClass.rest)[static_cast<std::size_t>(labels[i])];
  }
  if (out.lost == 0 || out.lost == n) {
    out.note = out.lost == 0 ? "no lost examples (teacher right, student wrong): nothing to test"
                             : "every example is lost: nothing to compare them with";
    return out;
  }

  std::vector<std::vector<double>> values{maxProbability(probs, numClasses), rowEntropy(probs, numClasses)};
  out.factors.push_back(continuousFactor(factor::kTeacherConfidence,
                                         "the teacher's max softmax probability (T = 1)", values[0], lost, options));
  out.factors.push_back(continuousFactor(factor::kTeacherEntropy,
                                         "entropy of the teacher's softmax (T = 1), nats", values[1], lost, options));
  if (!inputLength.empty()) {
    values.push_back(inputLength);
    out.factors.push_back(continuousFactor(factor::kInputLength,
                                           "tokens the models saw, [CLS] and padding not counted", values[2], lost,
                                           options));
  }

  ClassFactor& g = out.goldClass;
  g.chiSquare = chiSquareIndependence(classTable(labels, lost, numClasses, nullptr), numClasses, 2);
  g.cramersV = bootstrapInterval(
      n,
      [&](const std::vector<std::uint32_t>& indices) {
        return chiSquareIndependence(classTable(labels, lost, numClasses, &indices), numClasses, 2).cramersV;
      },
      options);
  const std::uint64_t allLost = out.lost;
  const std::uint64_t allRest = n - out.lost;
  for (std::size_t c = 0; c < numClasses; ++c) {
    // [[lost in c, rest in c], [lost elsewhere, rest elsewhere]]: odds of lost in c over elsewhere.
    const std::uint64_t a = g.lost[c];
    const std::uint64_t b = g.rest[c];
    const std::uint64_t cc = allLost - a;
    const std::uint64_t d = allRest - b;
    g.fisher.push_back(fisherExact(a, b, cc, d));
    g.oddsRatio.push_back(woolfOddsRatio(a, b, cc, d, options.level));
  }
  out.logistic = logistic(out.factors, values, labels, g, lost, options.level);
  adjustLossPattern(out);
  return out;
}

void adjustLossPattern(LossPattern& pattern) {
  HolmFamily family;
  for (ContinuousFactor& f : pattern.factors) {
    f.holm = {};
    family.add(f.test.pValue, &f.holm);
  }
  pattern.goldClass.chiSquareHolm = {};
  if (!pattern.factors.empty()) {
    family.add(pattern.goldClass.chiSquare.pValue, &pattern.goldClass.chiSquareHolm);
  }
  for (LogisticTerm& t : pattern.logistic.terms) {
    t.holm = {};
    if (pattern.logistic.converged && t.name != "intercept" && t.name.rfind("class:", 0) != 0) {
      family.add(t.coefficient.pValue, &t.holm);
    }
  }
  family.adjust();
}

} // namespace kdscope::core::analysis
