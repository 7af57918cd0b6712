#pragma once
/// A small deterministic random number helper for core. The standard library's
/// distributions (std::normal_distribution, std::uniform_int_distribution, std::shuffle)
/// are implementation-defined, so the same seed could give other data with another
/// standard library; std::mt19937_64's raw output is fixed by the standard, and every draw
/// here is computed from it by formulas written out below.

#include <cmath>
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace kdscope::core {

/// SplitMix64 finaliser: spreads the bits of a 64-bit value (Steele et al., 2014).
[[nodiscard]] inline std::uint64_t mixBits(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31U);
}

/// A seed for one purpose (for example "split:polarity") derived from a job seed, so that
/// independent random streams do not share a sequence. FNV-1a over the purpose, then mixed.
[[nodiscard]] inline std::uint64_t deriveSeed(std::uint64_t seed, std::string_view purpose) {
  std::uint64_t hash = 0xCBF29CE484222325ULL;
  for (const char c : purpose) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ULL;
  }
  return mixBits(seed ^ mixBits(hash));
}

/// Deterministic draws from std::mt19937_64. Not thread-safe: one Rng per thread.
class Rng {
public:
  explicit Rng(std::uint64_t seed) : m_engine(seed) {}

  /// The next raw 64-bit output of the engine.
  std::uint64_t next() { return m_engine(); }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform01() {
    constexpr double kScale = 1.0 / 9007199254740992.0; // 2^-53
    return static_cast<double>(next() >> 11U) * kScale;
  }

  /// Uniform integer in [0, n), unbiased (rejection of the top partial range). n >= 1.
  std::uint64_t uniformInt(std::uint64_t n) {
    if (n <= 1) {
      return 0;
    }
    // Largest multiple of n that fits: draws at or above it would favour small values.
    const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    std::uint64_t x = next();
    while (x >= limit) {
      x = next();
    }
    return x % n;
  }

  /// Standard normal draw (Box-Muller; the second value of each pair is kept for the next
  /// call).
  double normal() {
    if (m_hasSpare) {
      m_hasSpare = false;
      return m_spare;
    }
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const double u1 = 1.0 - uniform01();
    const double u2 = uniform01();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    m_spare = radius * std::sin(kTwoPi * u2);
    m_hasSpare = true;
    return radius * std::cos(kTwoPi * u2);
  }

  /// Normal draw with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Fisher-Yates shuffle in place (Durstenfeld's version, from the back).
  template <typename T> void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i > 1; --i) {
      const auto j = static_cast<std::size_t>(uniformInt(i));
      using std::swap;
      swap(items[i - 1], items[j]);
    }
  }

  /// A random permutation of 0 .. n-1.
  std::vector<std::int64_t> permutation(std::size_t n) {
    std::vector<std::int64_t> order(n);
    for (std::size_t i = 0; i < n; ++i) {
      order[i] = static_cast<std::int64_t>(i);
    }
    shuffle(order);
    return order;
  }

private:
  std::mt19937_64 m_engine;
  double m_spare = 0.0;
  bool m_hasSpare = false;
};

} // namespace kdscope::core
