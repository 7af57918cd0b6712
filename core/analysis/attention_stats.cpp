#include "core/analysis/attention_stats.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/analysis/analysis_common.h"

namespace kdscope::core::analysis {
namespace {

using detail::kNaN;
using detail::parallelFor;
using detail::require;
using detail::resolveThreads;

constexpr double kLn2 = 0.693147180559945309417232121458176568; // ln 2

/// sum_j x_j log x_j with 0 log 0 = 0 (the negative entropy).
double xLogXSum(const double* x, std::size_t n) {
  double s = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    if (x[j] > 0.0) {
      s += x[j] * std::log(x[j]);
    }
  }
  return s;
}

/// JS = H(m) - (H(p) + H(q)) / 2 from the precomputed sums sum x log x of p and q; one log
/// per key instead of two. Clamped to [0, ln 2] against rounding (identical rows give
/// exactly 0: m = (p + p) / 2 = p bit for bit).
double jsFromParts(const double* p, const double* q, std::size_t n, double pLogP, double qLogQ) {
  double mLogM = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double m = 0.5 * (p[j] + q[j]);
    if (m > 0.0) {
      mLogM += m * std::log(m);
    }
  }
  const double js = 0.5 * (pLogP + qLogQ) - mLogM;
  return std::clamp(js, 0.0, kLn2);
}

/// Copies a row's first `len` keys to out, renormalised to sum 1 (left at 0 when the mass is 0).
void normalisedRow(const float* row, std::size_t len, double* out) {
  double mass = 0.0;
  for (std::size_t j = 0; j < len; ++j) {
    out[j] = row[j];
    mass += out[j];
  }
  if (mass > 0.0) {
    for (std::size_t j = 0; j < len; ++j) {
      out[j] /= mass;
    }
  }
}

void checkLayer(const AttentionLayer& maps, const std::vector<std::size_t>& lengths, const char* function) {
  require(maps.data != nullptr || maps.examples == 0, function, "attention view has no data");
  require(lengths.size() == maps.examples, function,
          "lengths has " + std::to_string(lengths.size()) + " entries for " + std::to_string(maps.examples) +
              " examples");
  for (std::size_t e = 0; e < lengths.size(); ++e) {
    require(lengths[e] <= maps.length, function,
            "length " + std::to_string(lengths[e]) + " of example " + std::to_string(e) + " exceeds the map length " +
                std::to_string(maps.length));
  }
}

void checkPair(const AttentionLayer& teacher, const AttentionLayer& student, const std::vector<std::size_t>& lengths,
               const char* function) {
  checkLayer(teacher, lengths, function);
  checkLayer(student, lengths, function);
  require(teacher.length == student.length, function, "teacher and student maps differ in length");
  require(teacher.heads > 0 && student.heads > 0, function, "head counts must be positive");
}

AttentionLayer makeLayer(const std::vector<float>& maps, std::size_t layers, std::size_t layer, std::size_t heads,
                         std::size_t length, const char* function) {
  require(layers > 0 && heads > 0 && length > 0, function, "layers, heads and length must be positive");
  require(layer < layers, function, "layer " + std::to_string(layer) + " is outside [0, " + std::to_string(layers) + ")");
  const std::size_t perExample = layers * heads * length * length;
  require(maps.size() % perExample == 0, function,
          "attention size " + std::to_string(maps.size()) + " is not a multiple of layers x heads x length^2");
  AttentionLayer view;
  view.data = maps.data() + layer * heads * length * length;
  view.examples = maps.size() / perExample;
  view.heads = heads;
  view.length = length;
  view.exampleStride = perExample;
  return view;
}

} // namespace

AttentionLayer AttentionLayer::fromMaps(const std::vector<float>& maps, std::size_t heads, std::size_t length) {
  return makeLayer(maps, 1, 0, heads, length, "AttentionLayer::fromMaps");
}

AttentionLayer AttentionLayer::fromLayers(const std::vector<float>& maps, std::size_t layers, std::size_t layer,
                                          std::size_t heads, std::size_t length) {
  return makeLayer(maps, layers, layer, heads, length, "AttentionLayer::fromLayers");
}

double jsDivergence(const std::vector<double>& p, const std::vector<double>& q) {
  require(p.size() == q.size(), "jsDivergence", "distributions differ in length");
  return jsFromParts(p.data(), q.data(), p.size(), xLogXSum(p.data(), p.size()), xLogXSum(q.data(), q.size()));
}

std::vector<double> attentionEntropy(const AttentionLayer& maps, const std::vector<std::size_t>& lengths) {
  checkLayer(maps, lengths, "attentionEntropy");
  std::vector<double> sum(maps.heads, 0.0);
  std::size_t rows = 0;
  std::vector<double> buffer(maps.length);
  for (std::size_t e = 0; e < maps.examples; ++e) {
    const std::size_t len = lengths[e];
    rows += len;
    for (std::size_t h = 0; h < maps.heads; ++h) {
      for (std::size_t i = 0; i < len; ++i) {
        normalisedRow(maps.row(e, h, i), len, buffer.data());
        sum[h] -= xLogXSum(buffer.data(), len);
      }
    }
  }
  for (double& s : sum) {
    s = rows == 0 ? kNaN : s / static_cast<double>(rows);
  }
  return sum;
}

Matrix jsDivergenceMatrix(const AttentionLayer& teacher, const AttentionLayer& student,
                          const std::vector<std::size_t>& lengths, std::size_t threads) {
  checkPair(teacher, student, lengths, "jsDivergenceMatrix");
  const std::size_t ht = teacher.heads;
  const std::size_t hs = student.heads;
  const std::size_t len = teacher.length;
  // One slot of per-pair sums per example, added in example order afterwards: the result
  // is the same for every thread count.
  std::vector<double> slots(teacher.examples * ht * hs, 0.0);
  parallelFor(teacher.examples, resolveThreads(threads), [&](std::size_t e) {
    const std::size_t n = lengths[e];
    std::vector<double> rowsT(ht * len);
    std::vector<double> rowsS(hs * len);
    std::vector<double> sumT(ht);
    std::vector<double> sumS(hs);
    double* slot = slots.data() + e * ht * hs;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t t = 0; t < ht; ++t) {
        normalisedRow(teacher.row(e, t, i), n, rowsT.data() + t * len);
        sumT[t] = xLogXSum(rowsT.data() + t * len, n);
      }
      for (std::size_t s = 0; s < hs; ++s) {
        normalisedRow(student.row(e, s, i), n, rowsS.data() + s * len);
        sumS[s] = xLogXSum(rowsS.data() + s * len, n);
      }
      for (std::size_t t = 0; t < ht; ++t) {
        for (std::size_t s = 0; s < hs; ++s) {
          slot[t * hs + s] += jsFromParts(rowsT.data() + t * len, rowsS.data() + s * len, n, sumT[t], sumS[s]);
        }
      }
    }
  });
  Matrix out(ht, hs, 0.0);
  std::size_t rows = 0;
  for (std::size_t e = 0; e < teacher.examples; ++e) {
    rows += lengths[e];
    for (std::size_t k = 0; k < ht * hs; ++k) {
      out.values[k] += slots[e * ht * hs + k];
    }
  }
  for (double& v : out.values) {
    v = rows == 0 ? kNaN : v / static_cast<double>(rows);
  }
  return out;
}

std::vector<HeadMatch> bestMatch(const Matrix& divergence) {
  require(divergence.values.size() == divergence.rows * divergence.cols, "bestMatch",
          "matrix storage does not match its shape");
  std::vector<HeadMatch> out(divergence.rows);
  for (std::size_t t = 0; t < divergence.rows; ++t) {
    for (std::size_t s = 0; s < divergence.cols; ++s) {
      const double d = divergence(t, s);
      if (std::isnan(d)) {
        continue;
      }
      if (out[t].studentHead == HeadMatch::kNone || d < out[t].divergence) {
        out[t].studentHead = s;
        out[t].divergence = d;
      }
    }
  }
  return out;
}

double headAveragedJsDivergence(const AttentionLayer& teacher, const AttentionLayer& student,
                                const std::vector<std::size_t>& lengths) {
  checkPair(teacher, student, lengths, "headAveragedJsDivergence");
  const std::size_t len = teacher.length;
  std::vector<double> row(len);
  std::vector<double> meanT(len);
  std::vector<double> meanS(len);
  double total = 0.0;
  std::size_t rows = 0;
  // Mean of the heads' (normalised) rows: a distribution again.
  auto headMean = [&](const AttentionLayer& maps, std::size_t e, std::size_t i, std::size_t n, double* mean) {
    std::fill(mean, mean + n, 0.0);
    for (std::size_t h = 0; h < maps.heads; ++h) {
      normalisedRow(maps.row(e, h, i), n, row.data());
      for (std::size_t j = 0; j < n; ++j) {
        mean[j] += row[j];
      }
    }
    for (std::size_t j = 0; j < n; ++j) {
      mean[j] /= static_cast<double>(maps.heads);
    }
  };
  for (std::size_t e = 0; e < teacher.examples; ++e) {
    const std::size_t n = lengths[e];
    rows += n;
    for (std::size_t i = 0; i < n; ++i) {
      headMean(teacher, e, i, n, meanT.data());
      headMean(student, e, i, n, meanS.data());
      total += jsFromParts(meanT.data(), meanS.data(), n, xLogXSum(meanT.data(), n), xLogXSum(meanS.data(), n));
    }
  }
  return rows == 0 ? kNaN : total / static_cast<double>(rows);
}

} // namespace kdscope::core::analysis
