#include "core/data/augment.h"

#include <algorithm>
#include <cmath>

namespace kdscope::core {

double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11U) * 0x1.0p-53;
}

std::uint64_t uniformIndex(std::mt19937_64& rng, std::uint64_t n) {
  // Modulo, like the trainer's shuffle: the bias is below n / 2^64.
  return rng() % n;
}

double sampleBeta(double a, double b, std::mt19937_64& rng) {
  for (;;) {
    const double u = uniform01(rng);
    const double v = uniform01(rng);
    if (u <= 0.0 || v <= 0.0) {
      continue;
    }
    // X = U^(1/a), Y = V^(1/b); accept when X + Y <= 1 and return X / (X + Y).
    const double logX = std::log(u) / a;
    const double logY = std::log(v) / b;
    const double top = std::max(logX, logY);
    const double logSum = top + std::log(std::exp(logX - top) + std::exp(logY - top));
    if (logSum <= 0.0) {
      return std::exp(logX - logSum);
    }
  }
}

std::vector<std::int64_t> randomPermutation(std::int64_t n, std::mt19937_64& rng) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(std::max<std::int64_t>(0, n)));
  for (std::size_t i = 0; i < perm.size(); ++i) {
    perm[i] = static_cast<std::int64_t>(i);
  }
  for (std::size_t i = perm.size(); i > 1; --i) {
    std::swap(perm[i - 1], perm[uniformIndex(rng, i)]);
  }
  return perm;
}

void augmentExample(std::int64_t* tokens, std::int64_t len, const AugmentationSpec& spec, std::int64_t vocabSize,
                    std::mt19937_64& rng) {
  const auto isWord = [](std::int64_t id) { return id >= kFirstWordId || id == kUnkId; };
  // Words sit after [CLS] and before the padding; collect their positions.
  std::vector<std::int64_t> positions;
  for (std::int64_t i = 0; i < len; ++i) {
    if (isWord(tokens[i])) {
      positions.push_back(i);
    }
  }
  if (positions.empty()) {
    return;
  }
  if (spec.deletion > 0.0) {
    std::vector<std::int64_t> kept;
    for (const std::int64_t pos : positions) {
      if (uniform01(rng) >= spec.deletion) {
        kept.push_back(tokens[pos]);
      }
    }
    if (kept.empty()) {
      kept.push_back(tokens[positions[uniformIndex(rng, positions.size())]]);
    }
    // Rewrite from the first word position on: the kept words, then padding.
    const std::int64_t start = positions.front();
    std::int64_t out = start;
    for (const std::int64_t id : kept) {
      tokens[out++] = id;
    }
    for (std::int64_t i = out; i < len; ++i) {
      if (isWord(tokens[i]) || i <= positions.back()) {
        tokens[i] = kPadId;
      }
    }
    positions.clear();
    for (std::int64_t i = start; i < out; ++i) {
      positions.push_back(i);
    }
  }
  if (spec.swap > 0.0) {
    for (const std::int64_t pos : positions) {
      if (uniform01(rng) < spec.swap) {
        std::swap(tokens[pos], tokens[positions[uniformIndex(rng, positions.size())]]);
      }
    }
  }
  if (spec.replace > 0.0 && vocabSize > kFirstWordId) {
    for (const std::int64_t pos : positions) {
      if (uniform01(rng) < spec.replace) {
        tokens[pos] = kFirstWordId + static_cast<std::int64_t>(
                                         uniformIndex(rng, static_cast<std::uint64_t>(vocabSize - kFirstWordId)));
      }
    }
  }
  if (spec.mask > 0.0) {
    for (const std::int64_t pos : positions) {
      if (uniform01(rng) < spec.mask) {
        tokens[pos] = kUnkId;
      }
    }
  }
}

std::vector<std::int64_t> augmentTokens(const std::vector<std::int64_t>& tokens, std::int64_t rows,
                                        std::int64_t len, const AugmentationSpec& spec, std::int64_t vocabSize,
                                        std::mt19937_64& rng) {
  std::vector<std::int64_t> out = tokens;
  for (std::int64_t r = 0; r < rows; ++r) {
    augmentExample(out.data() + r * len, len, spec, vocabSize, rng);
  }
  return out;
}

} // namespace kdscope::core
