// Tests of core/analysis/cka.h against independent float64 oracles written here (naive
// triple loops straight from the formulas), hand-worked values and invariances.

#include "core/analysis/cka.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace kdscope::core::analysis {
namespace {

std::vector<float> randomMatrix(std::size_t rows, std::size_t cols, unsigned seed, float offset = 0.0F) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> m(rows * cols);
  for (float& v : m) {
    v = normal(rng) + offset;
  }
  return m;
}

/// Centred float64 copy of an n x p row-major matrix.
std::vector<double> centred(const std::vector<float>& x, std::size_t p) {
  const std::size_t n = x.size() / p;
  std::vector<double> c(x.begin(), x.end());
  for (std::size_t k = 0; k < p; ++k) {
    double mean = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      mean += c[i * p + k];
    }
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) {
      c[i * p + k] -= mean;
    }
  }
  return c;
}

/// sum over (a, b) of (A^T B)_ab^2 by the definition, A (n x p), B (n x q) centred.
double naiveProductNorm2(const std::vector<double>& a, std::size_t p, const std::vector<double>& b, std::size_t q) {
  const std::size_t n = a.size() / p;
  double total = 0.0;
  for (std::size_t i = 0; i < p; ++i) {
    for (std::size_t j = 0; j < q; ++j) {
      double s = 0.0;
      for (std::size_t r = 0; r < n; ++r) {
        s += a[r * p + i] * b[r * q + j];
      }
      total += s * s;
    }
  }
  return total;
}

/// The oracle: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred float64 copies.
double naiveLinearCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q) {
  const std::vector<double> xc = centred(x, p);
  const std::vector<double> yc = centred(y, q);
  return naiveProductNorm2(yc, q, xc, p) /
         (std::sqrt(naiveProductNorm2(xc, p, xc, p)) * std::sqrt(naiveProductNorm2(yc, q, yc, q)));
}

/// A random p x p orthogonal matrix by Gram-Schmidt on Gaussian columns (kept as rows here).
std::vector<double> randomOrthogonal(std::size_t p, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> q(p * p);
  for (double& v : q) {
    v = normal(rng);
  }
  for (std::size_t i = 0; i < p; ++i) {
    for (int pass = 0; pass < 2; ++pass) { // twice, for orthogonality to rounding level
      for (std::size_t j = 0; j < i; ++j) {
        double d = 0.0;
        for (std::size_t k = 0; k < p; ++k) {
          d += q[i * p + k] * q[j * p + k];
        }
        for (std::size_t k = 0; k < p; ++k) {
          q[i * p + k] -= d * q[j * p + k];
        }
      }
    }
    double norm = 0.0;
    for (std::size_t k = 0; k < p; ++k) {
      norm += q[i * p + k] * q[i * p + k];
    }
    norm = std::sqrt(norm);
    for (std::size_t k = 0; k < p; ++k) {
      q[i * p + k] /= norm;
    }
  }
  return q;
}

std::vector<float> timesMatrix(const std::vector<float>& x, std::size_t p, const std::vector<double>& q) {
  const std::size_t n = x.size() / p;
  std::vector<float> out(n * p);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < p; ++j) {
      double s = 0.0;
      for (std::size_t k = 0; k < p; ++k) {
        s += static_cast<double>(x[i * p + k]) * q[k * p + j];
      }
      out[i * p + j] = static_cast<float>(s);
    }
  }
  return out;
}

CkaOptions withMethod(CkaMethod method, std::size_t threads = 0) {
  CkaOptions o;
  o.method = method;
  o.threads = threads;
  return o;
}

const CkaMethod kMethods[] = {CkaMethod::Automatic, CkaMethod::Gram, CkaMethod::Features};

TEST(AnalysisCka, HandWorkedFourByTwoAgainstFourByOne) {
  // X = [[1,0],[0,1],[1,1],[2,0]], Y = [1,2,0,1]^T.
  // Column means: X (1, 0.5), Y 1. Centred: Xc = [[0,-.5],[-1,.5],[0,.5],[1,-.5]],
  // Yc = [0,1,-1,0]^T.
  // Yc^T Xc = [0*0 + 1*(-1) + (-1)*0 + 0*1, 0*(-.5) + 1*.5 + (-1)*.5 + 0*(-.5)] = [-1, 0],
  //   ||Yc^T Xc||_F^2 = 1.
  // Xc^T Xc = [[2, -1], [-1, 1]], ||.||_F = sqrt(4 + 1 + 1 + 1) = sqrt(7).
  // Yc^T Yc = [2], ||.||_F = 2.
  // CKA = 1 / (2 sqrt 7) = 0.18898223650461362.
  const std::vector<float> x{1, 0, 0, 1, 1, 1, 2, 0};
  const std::vector<float> y{1, 2, 0, 1};
  const double expected = 1.0 / (2.0 * std::sqrt(7.0));
  for (CkaMethod method : kMethods) {
    EXPECT_NEAR(linearCka(x, 2, y, 1, withMethod(method)), expected, 1e-15);
    EXPECT_NEAR(linearCka(y, 1, x, 2, withMethod(method)), expected, 1e-15); // symmetric
  }
}

TEST(AnalysisCka, SelfSimilarityIsOne) {
  for (std::size_t n : {5, 40, 150}) {
    for (std::size_t p : {1, 7, 130}) {
      const std::vector<float> x = randomMatrix(n, p, static_cast<unsigned>(n * 1000 + p), 3.0F);
      for (CkaMethod method : kMethods) {
        EXPECT_NEAR(linearCka(x, p, x, p, withMethod(method)), 1.0, 1e-12) << "n=" << n << " p=" << p;
      }
    }
  }
}

TEST(AnalysisCka, MatchesNaiveFormulaOnBothPathsAcrossTileEdges) {
  // Sizes straddle the 96-wide tiles and the 4 x 3 register blocks so edges are exercised.
  struct Case {
    std::size_t n, p, q;
  };
  for (const Case c : {Case{10, 3, 2}, Case{97, 5, 11}, Case{201, 130, 97}, Case{250, 20, 193}}) {
    const std::vector<float> x = randomMatrix(c.n, c.p, 11, 1.5F);
    std::vector<float> y = randomMatrix(c.n, c.q, 12);
    for (std::size_t i = 0; i < c.n; ++i) { // make Y partly depend on X so CKA is not ~0
      y[i * c.q] += 2.0F * x[i * c.p];
    }
    const double oracle = naiveLinearCka(x, c.p, y, c.q);
    for (bool portable : {false, true}) { // the AVX2 kernels (where present) and the fallback
      CkaOptions gram = withMethod(CkaMethod::Gram);
      gram.portableKernels = portable;
      CkaOptions features = withMethod(CkaMethod::Features);
      features.portableKernels = portable;
      EXPECT_NEAR(linearCka(x, c.p, y, c.q, gram), oracle, 1e-12) << c.n << "x" << c.p << " vs " << c.q;
      EXPECT_NEAR(linearCka(x, c.p, y, c.q, features), oracle, 1e-12) << c.n << "x" << c.p << " vs " << c.q;
    }
  }
}

TEST(AnalysisCka, InvariantToOrthogonalTransformAndIsotropicScaling) {
  const std::size_t n = 120;
  const std::size_t p = 16;
  const std::size_t q = 9;
  const std::vector<float> x = randomMatrix(n, p, 21);
  std::vector<float> y = randomMatrix(n, q, 22);
  for (std::size_t i = 0; i < n; ++i) {
    y[i * q + 1] += x[i * p + 3] - x[i * p + 5];
  }
  const double base = linearCka(x, p, y, q);
  const std::vector<float> rotated = timesMatrix(x, p, randomOrthogonal(p, 23));
  // X Q is rounded to float: the change is of the order of float rounding.
  EXPECT_NEAR(linearCka(rotated, p, y, q), base, 1e-6);
  std::vector<float> scaled = y;
  for (float& v : scaled) {
    v *= 4.0F; // exact in float
  }
  EXPECT_NEAR(linearCka(x, p, scaled, q), base, 1e-13);
  for (float& v : scaled) {
    v *= 0.37F;
  }
  EXPECT_NEAR(linearCka(x, p, scaled, q), base, 1e-6);
  std::vector<float> shifted = x; // a common offset is removed by the centring
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < p; ++k) {
      shifted[i * p + k] += static_cast<float>(k);
    }
  }
  EXPECT_NEAR(linearCka(shifted, p, y, q), base, 1e-6);
}

TEST(AnalysisCka, StaysWithinZeroAndOne) {
  for (unsigned seed = 0; seed < 20; ++seed) {
    const std::size_t n = 8 + seed * 7;
    const std::size_t p = 1 + seed % 5;
    const std::size_t q = 1 + (seed * 3) % 7;
    const std::vector<float> x = randomMatrix(n, p, seed);
    const std::vector<float> y = randomMatrix(n, q, seed + 100);
    for (CkaMethod method : kMethods) {
      const double v = linearCka(x, p, y, q, withMethod(method));
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0 + 1e-15);
    }
  }
}

TEST(AnalysisCka, DegenerateInputIsNaNNotACrash) {
  const std::vector<float> constant(30, 2.5F);
  const std::vector<float> y = randomMatrix(10, 2, 3);
  for (CkaMethod method : kMethods) {
    EXPECT_TRUE(std::isnan(linearCka(constant, 3, y, 2, withMethod(method))));
    EXPECT_TRUE(std::isnan(linearCka(y, 2, constant, 3, withMethod(method))));
  }
  EXPECT_TRUE(std::isnan(linearCka({1.0F, 2.0F}, 2, {3.0F}, 1))); // one example
  EXPECT_TRUE(std::isnan(linearCka({}, 2, {}, 1)));
  EXPECT_THROW((void)linearCka(y, 2, randomMatrix(9, 2, 4), 2), std::invalid_argument);
  EXPECT_THROW((void)linearCka(y, 3, y, 2), std::invalid_argument); // 20 is not a multiple of 3
  EXPECT_THROW((void)linearCka(y, 0, y, 2), std::invalid_argument);
}

TEST(AnalysisCka, MatrixEntriesEqualPairwiseLinearCka) {
  const std::size_t n = 130;
  const std::size_t lt = 4;
  const std::size_t ls = 3;
  const std::size_t dt = 12;
  const std::size_t ds = 7;
  // hidden[N, L, D]: each layer a noisy function of the previous so neighbours are similar.
  std::vector<float> ht = randomMatrix(n, lt * dt, 31, 0.5F);
  std::vector<float> hs = randomMatrix(n, ls * ds, 32);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t l = 1; l < lt; ++l) {
      for (std::size_t k = 0; k < dt; ++k) {
        ht[(i * lt + l) * dt + k] += 2.0F * ht[(i * lt + l - 1) * dt + (k + 1) % dt];
      }
    }
    for (std::size_t l = 0; l < ls; ++l) {
      for (std::size_t k = 0; k < ds; ++k) {
        hs[(i * ls + l) * ds + k] += ht[(i * lt + l + 1) * dt + k];
      }
    }
  }
  auto layer = [](const std::vector<float>& h, std::size_t layers, std::size_t width, std::size_t l) {
    std::vector<float> out(n * width);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < width; ++k) {
        out[i * width + k] = h[(i * layers + l) * width + k];
      }
    }
    return out;
  };
  for (CkaMethod method : kMethods) {
    const Matrix m = ckaMatrix(ht, lt, dt, hs, ls, ds, withMethod(method));
    ASSERT_EQ(m.rows, lt);
    ASSERT_EQ(m.cols, ls);
    for (std::size_t t = 0; t < lt; ++t) {
      for (std::size_t s = 0; s < ls; ++s) {
        const std::vector<float> x = layer(ht, lt, dt, t);
        const std::vector<float> y = layer(hs, ls, ds, s);
        EXPECT_NEAR(m(t, s), linearCka(x, dt, y, ds), 1e-13) << "t=" << t << " s=" << s;
        EXPECT_NEAR(m(t, s), naiveLinearCka(x, dt, y, ds), 1e-12) << "t=" << t << " s=" << s;
      }
    }
  }
  // A model against itself: ones on the diagonal.
  const Matrix self = ckaMatrix(ht, lt, dt, ht, lt, dt);
  for (std::size_t l = 0; l < lt; ++l) {
    EXPECT_NEAR(self(l, l), 1.0, 1e-12);
  }
}

TEST(AnalysisCka, ResultDoesNotDependOnThreadCount) {
  const std::size_t n = 300;
  const std::vector<float> ht = randomMatrix(n, 3 * 20, 41);
  const std::vector<float> hs = randomMatrix(n, 2 * 30, 42);
  for (CkaMethod method : {CkaMethod::Gram, CkaMethod::Features}) {
    const Matrix one = ckaMatrix(ht, 3, 20, hs, 2, 30, withMethod(method, 1));
    const Matrix three = ckaMatrix(ht, 3, 20, hs, 2, 30, withMethod(method, 3));
    EXPECT_EQ(one.values, three.values); // bit for bit
  }
}

TEST(AnalysisCka, MatrixRejectsBadShapes) {
  const std::vector<float> h = randomMatrix(10, 6, 1);
  EXPECT_THROW((void)ckaMatrix(h, 4, 2, h, 3, 2), std::invalid_argument);
  EXPECT_THROW((void)ckaMatrix(h, 3, 2, randomMatrix(9, 6, 2), 3, 2), std::invalid_argument);
  EXPECT_THROW((void)ckaMatrix(h, 0, 2, h, 3, 2), std::invalid_argument);
  const Matrix one = ckaMatrix(randomMatrix(1, 6, 3), 3, 2, randomMatrix(1, 6, 4), 2, 3);
  EXPECT_TRUE(std::isnan(one(0, 0)));
}

// ---- RBF ------------------------------------------------------------------------------

double naiveRbfCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q,
                   double fraction) {
  const std::size_t n = x.size() / p;
  auto centredKernel = [n, fraction](const std::vector<float>& a, std::size_t w) {
    std::vector<double> d2(n * n);
    std::vector<double> distances;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (std::size_t k = 0; k < w; ++k) {
          const double diff = static_cast<double>(a[i * w + k]) - static_cast<double>(a[j * w + k]);
          s += diff * diff;
        }
        d2[i * n + j] = s;
        if (i < j) {
          distances.push_back(std::sqrt(s));
        }
      }
    }
    std::sort(distances.begin(), distances.end());
    const std::size_t m = distances.size();
    const double median = m % 2 == 1 ? distances[m / 2] : (distances[m / 2 - 1] + distances[m / 2]) / 2.0;
    const double sigma = fraction * median;
    std::vector<double> k(n * n);
    for (std::size_t i = 0; i < n * n; ++i) {
      k[i] = std::exp(-d2[i] / (2.0 * sigma * sigma));
    }
    // H K H with H = I - 11'/n, by explicit products.
    std::vector<double> h(n * n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        h[i * n + j] = (i == j ? 1.0 : 0.0) - 1.0 / static_cast<double>(n);
      }
    }
    auto mul = [n](const std::vector<double>& a1, const std::vector<double>& b1) {
      std::vector<double> c(n * n, 0.0);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t l = 0; l < n; ++l) {
          for (std::size_t j = 0; j < n; ++j) {
            c[i * n + j] += a1[i * n + l] * b1[l * n + j];
          }
        }
      }
      return c;
    };
    return mul(mul(h, k), h);
  };
  const std::vector<double> kc = centredKernel(x, p);
  const std::vector<double> lc = centredKernel(y, q);
  double kl = 0.0;
  double kk = 0.0;
  double ll = 0.0;
  for (std::size_t i = 0; i < n * n; ++i) {
    kl += kc[i] * lc[i];
    kk += kc[i] * kc[i];
    ll += lc[i] * lc[i];
  }
  return kl / std::sqrt(kk * ll);
}

TEST(AnalysisCka, RbfMatchesNaiveFormula) {
  for (std::size_t n : {9, 30}) { // 36 pairs (even: the median averages two) and 435 (odd)
    const std::vector<float> x = randomMatrix(n, 4, 51);
    std::vector<float> y = randomMatrix(n, 3, 52);
    for (std::size_t i = 0; i < n; ++i) {
      y[i * 3] += x[i * 4] * x[i * 4 + 1];
    }
    for (double fraction : {0.2, 0.5, 1.0}) {
      EXPECT_NEAR(rbfCka(x, 4, y, 3, fraction), naiveRbfCka(x, 4, y, 3, fraction), 1e-12)
          << "n=" << n << " fraction=" << fraction;
    }
  }
  // A tiny case: n = 4 gives 6 distances.
  const std::vector<float> x4 = randomMatrix(4, 2, 53);
  const std::vector<float> y4 = randomMatrix(4, 2, 54);
  EXPECT_NEAR(rbfCka(x4, 2, y4, 2, 0.8), naiveRbfCka(x4, 2, y4, 2, 0.8), 1e-12);
}

TEST(AnalysisCka, RbfSelfIsOneAndIsInvariant) {
  const std::size_t n = 40;
  const std::size_t p = 6;
  const std::vector<float> x = randomMatrix(n, p, 61);
  const std::vector<float> y = randomMatrix(n, 5, 62);
  EXPECT_NEAR(rbfCka(x, p, x, p, 0.5), 1.0, 1e-12);
  const double base = rbfCka(x, p, y, 5, 0.5);
  EXPECT_GE(base, 0.0);
  EXPECT_LE(base, 1.0);
  // The bandwidth follows the median distance, so scaling X changes nothing; nor does a rotation.
  std::vector<float> scaled = x;
  for (float& v : scaled) {
    v *= 8.0F;
  }
  EXPECT_NEAR(rbfCka(scaled, p, y, 5, 0.5), base, 1e-12);
  EXPECT_NEAR(rbfCka(timesMatrix(x, p, randomOrthogonal(p, 63)), p, y, 5, 0.5), base, 1e-6);
  EXPECT_TRUE(std::isnan(rbfCka(std::vector<float>(20, 1.0F), 2, randomMatrix(10, 2, 64), 2, 0.5)));
  EXPECT_THROW((void)rbfCka(x, p, y, 5, 0.0), std::invalid_argument);
}

// ---- Unbiased HSIC and minibatch CKA --------------------------------------------------

/// Song et al.'s HSIC_1, term by term with explicit matrices.
double naiveUnbiasedHsic(const std::vector<double>& k, const std::vector<double>& l, std::size_t n) {
  std::vector<double> kt = k;
  std::vector<double> lt = l;
  for (std::size_t i = 0; i < n; ++i) {
    kt[i * n + i] = 0.0;
    lt[i * n + i] = 0.0;
  }
  std::vector<double> kl(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t m = 0; m < n; ++m) {
      for (std::size_t j = 0; j < n; ++j) {
        kl[i * n + j] += kt[i * n + m] * lt[m * n + j];
      }
    }
  }
  double trace = 0.0;
  double onesKl = 0.0;
  double onesK = 0.0;
  double onesL = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    trace += kl[i * n + i];
    for (std::size_t j = 0; j < n; ++j) {
      onesKl += kl[i * n + j];
      onesK += kt[i * n + j];
      onesL += lt[i * n + j];
    }
  }
  const auto nd = static_cast<double>(n);
  return (trace + onesK * onesL / ((nd - 1) * (nd - 2)) - 2.0 / (nd - 2) * onesKl) / (nd * (nd - 3));
}

std::vector<double> linearKernel(const std::vector<float>& x, std::size_t p, std::size_t begin, std::size_t count,
                                 bool centre) {
  std::vector<double> rows(count * p);
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t k = 0; k < p; ++k) {
      rows[i * p + k] = x[(begin + i) * p + k];
    }
  }
  if (centre) { // the full-data mean, as minibatchCka documents
    const std::vector<double> full = centred(x, p);
    for (std::size_t i = 0; i < count; ++i) {
      for (std::size_t k = 0; k < p; ++k) {
        rows[i * p + k] = full[(begin + i) * p + k];
      }
    }
  }
  std::vector<double> k(count * count, 0.0);
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t j = 0; j < count; ++j) {
      for (std::size_t m = 0; m < p; ++m) {
        k[i * count + j] += rows[i * p + m] * rows[j * p + m];
      }
    }
  }
  return k;
}

TEST(AnalysisCka, UnbiasedHsicMatchesExplicitMatrices) {
  const std::size_t n = 12;
  const std::vector<float> x = randomMatrix(n, 3, 71);
  const std::vector<float> y = randomMatrix(n, 2, 72);
  const std::vector<double> k = linearKernel(x, 3, 0, n, false);
  const std::vector<double> l = linearKernel(y, 2, 0, n, false);
  EXPECT_NEAR(unbiasedHsic(k, l, n), naiveUnbiasedHsic(k, l, n), 1e-12);
  EXPECT_NEAR(unbiasedHsic(k, k, n), naiveUnbiasedHsic(k, k, n), 1e-12);
  EXPECT_THROW((void)unbiasedHsic(std::vector<double>(9), std::vector<double>(9), 3), std::invalid_argument);
}

TEST(AnalysisCka, MinibatchMatchesExplicitEstimator) {
  const std::size_t n = 50; // batches of 16: three full batches, 2 rows dropped
  const std::size_t b = 16;
  const std::vector<float> x = randomMatrix(n, 4, 81, 5.0F);
  std::vector<float> y = randomMatrix(n, 3, 82, -2.0F);
  for (std::size_t i = 0; i < n; ++i) {
    y[i * 3 + 2] += x[i * 4];
  }
  double xy = 0.0;
  double xx = 0.0;
  double yy = 0.0;
  for (std::size_t batch = 0; batch < n / b; ++batch) {
    const std::vector<double> k = linearKernel(x, 4, batch * b, b, true);
    const std::vector<double> l = linearKernel(y, 3, batch * b, b, true);
    xy += naiveUnbiasedHsic(k, l, b);
    xx += naiveUnbiasedHsic(k, k, b);
    yy += naiveUnbiasedHsic(l, l, b);
  }
  const double batches = static_cast<double>(n / b);
  const double oracle = (xy / batches) / std::sqrt((xx / batches) * (yy / batches));
  EXPECT_NEAR(minibatchCka(x, 4, y, 3, b), oracle, 1e-12);
  // HSIC_1 is invariant to a shift of the features: the uncentred kernels give the same.
  double xyRaw = 0.0;
  double xxRaw = 0.0;
  double yyRaw = 0.0;
  for (std::size_t batch = 0; batch < n / b; ++batch) {
    const std::vector<double> k = linearKernel(x, 4, batch * b, b, false);
    const std::vector<double> l = linearKernel(y, 3, batch * b, b, false);
    xyRaw += naiveUnbiasedHsic(k, l, b);
    xxRaw += naiveUnbiasedHsic(k, k, b);
    yyRaw += naiveUnbiasedHsic(l, l, b);
  }
  EXPECT_NEAR((xyRaw / batches) / std::sqrt((xxRaw / batches) * (yyRaw / batches)), oracle, 1e-9);
}

TEST(AnalysisCka, MinibatchApproachesFullLinearCkaForLargeN) {
  const std::size_t n = 4000;
  const std::size_t p = 8;
  const std::size_t q = 6;
  const std::vector<float> x = randomMatrix(n, p, 91);
  std::vector<float> y = randomMatrix(n, q, 92);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < q; ++k) {
      y[i * q + k] = 0.5F * y[i * q + k] + x[i * p + k] + 0.5F * x[i * p + k + 1];
    }
  }
  const double full = linearCka(x, p, y, q);
  // Both estimate the same population CKA; the biased full-data estimator is off by O(p / n).
  EXPECT_NEAR(minibatchCka(x, p, y, q, 500), full, 0.02);
  EXPECT_NEAR(minibatchCka(x, p, y, q, 1000), full, 0.02);
  const CkaOptions one = withMethod(CkaMethod::Automatic, 1);
  const CkaOptions two = withMethod(CkaMethod::Automatic, 2);
  EXPECT_EQ(minibatchCka(x, p, y, q, 250, one), minibatchCka(x, p, y, q, 250, two));
}

TEST(AnalysisCka, MinibatchRejectsBadBatchAndFlagsDegenerate) {
  const std::vector<float> x = randomMatrix(20, 2, 1);
  EXPECT_THROW((void)minibatchCka(x, 2, x, 2, 3), std::invalid_argument);
  EXPECT_THROW((void)minibatchCka(x, 2, x, 2, 21), std::invalid_argument);
  EXPECT_TRUE(std::isnan(minibatchCka(std::vector<float>(40, 1.0F), 2, x, 2, 10)));
  EXPECT_NEAR(minibatchCka(x, 2, x, 2, 10), 1.0, 1e-12);
}

} // namespace
} // namespace kdscope::core::analysis
