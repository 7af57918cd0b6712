// Per-layer analyses beyond linear CKA: the RBF and minibatch CKA layer matrices (against the
// single-pair functions on layers cut out by hand), the affine distillation residual (against
// LibTorch's least-squares solver and closed forms) and the layer maps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "core/analysis/cka.h"
#include "core/analysis/residual.h"

using namespace kdscope::core::analysis;

namespace {

std::vector<float> randomHidden(std::size_t n, std::size_t layers, std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> h(n * layers * width);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t l = 0; l < layers; ++l) {
      for (std::size_t d = 0; d < width; ++d) {
        // Later layers mix the first so that layers are related (CKA away from 0).
        const float base = h[i * layers * width + d];
        h[(i * layers + l) * width + d] = (l == 0 ? 0.0F : 0.7F * base) + normal(rng);
      }
    }
  }
  return h;
}

std::vector<float> layerOf(const std::vector<float>& hidden, std::size_t n, std::size_t layers, std::size_t width,
                           std::size_t l, std::size_t rows) {
  std::vector<float> out;
  for (std::size_t i = 0; i < std::min(n, rows); ++i) {
    const float* row = hidden.data() + (i * layers + l) * width;
    out.insert(out.end(), row, row + width);
  }
  return out;
}

} // namespace

TEST(CkaLayerMatrices, RbfMatrixEqualsRbfCkaOfEachPairOnTheFirstRows) {
  const std::size_t n = 90;
  const auto t = randomHidden(n, 3, 7, 1);
  const auto s = randomHidden(n, 2, 5, 2);
  const std::size_t rows = 60;
  const Matrix m = rbfCkaMatrix(t, 3, 7, s, 2, 5, /*sigmaFraction=*/0.8, rows);
  ASSERT_EQ(m.rows, 3U);
  ASSERT_EQ(m.cols, 2U);
  for (std::size_t a = 0; a < 3; ++a) {
    for (std::size_t b = 0; b < 2; ++b) {
      const double expected = rbfCka(layerOf(t, n, 3, 7, a, rows), 7, layerOf(s, n, 2, 5, b, rows), 5, 0.8);
      EXPECT_NEAR(m(a, b), expected, 1e-12) << a << "," << b;
      EXPECT_GT(m(a, b), 0.0);
      EXPECT_LE(m(a, b), 1.0 + 1e-12);
    }
  }
  // RBF CKA of a layer with itself is 1.
  const Matrix self = rbfCkaMatrix(t, 3, 7, t, 3, 7, 0.5, 0);
  for (std::size_t a = 0; a < 3; ++a) {
    EXPECT_NEAR(self(a, a), 1.0, 1e-12);
  }
}

TEST(CkaLayerMatrices, MinibatchMatrixEqualsMinibatchCkaOfEachPair) {
  const std::size_t n = 103; // a partial last batch is dropped
  const auto t = randomHidden(n, 3, 6, 3);
  const auto s = randomHidden(n, 2, 4, 4);
  CkaOptions portable;
  portable.portableKernels = true;
  for (std::size_t threads : {1U, 3U}) {
    portable.threads = threads;
    const Matrix m = minibatchCkaMatrix(t, 3, 6, s, 2, 4, /*batchSize=*/20, portable);
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::size_t b = 0; b < 2; ++b) {
        const double expected =
            minibatchCka(layerOf(t, n, 3, 6, a, n), 6, layerOf(s, n, 2, 4, b, n), 4, 20, portable);
        EXPECT_NEAR(m(a, b), expected, 1e-12) << a << "," << b;
      }
    }
  }
  EXPECT_THROW((void)minibatchCkaMatrix(t, 3, 6, s, 2, 4, 3), std::invalid_argument);
  EXPECT_THROW((void)minibatchCkaMatrix(t, 3, 6, s, 2, 4, 200), std::invalid_argument);
}

TEST(Residual, AnExactAffineRelationLeavesNothing) {
  // y = x A + c exactly (small integers, so the floats are exact): residual 0, cosine 1.
  const std::size_t n = 40;
  std::vector<float> x(n * 3);
  std::vector<float> y(n * 2);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> digit(-4, 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float a = static_cast<float>(digit(rng));
    const float b = static_cast<float>(digit(rng));
    const float c = static_cast<float>(digit(rng));
    x[i * 3] = a;
    x[i * 3 + 1] = b;
    x[i * 3 + 2] = c;
    y[i * 2] = 2 * a - b + 3;
    y[i * 2 + 1] = c + a - 1;
  }
  const LayerResidual r = affineResidual(x, 3, y, 2);
  EXPECT_LT(r.mse, 1e-12);
  EXPECT_LT(r.unexplained, 1e-12);
  EXPECT_LT(r.cosineDistance, 1e-12);
  EXPECT_TRUE(std::isnan(r.directMse)); // widths differ
}

TEST(Residual, MatchesLibTorchLeastSquares) {
  const std::size_t n = 200;
  const std::size_t p = 9;
  const std::size_t q = 6;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> x(n * p);
  std::vector<float> y(n * q);
  for (auto& v : x) {
    v = normal(rng);
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < q; ++k) {
      y[i * q + k] = 0.5F * x[i * p + k] - 0.25F * x[i * p + k + 1] + 2.0F + normal(rng);
    }
  }
  ResidualOptions options;
  options.ridge = 0.0; // plain least squares, as lstsq solves it
  for (std::size_t threads : {1U, 2U}) {
    options.threads = threads;
    const LayerResidual r = affineResidual(x, p, y, q, options);
    // Reference: [X 1] B = Y by LibTorch's least-squares solver in float64.
    auto X = torch::from_blob(x.data(), {static_cast<long>(n), static_cast<long>(p)}, torch::kFloat32).to(torch::kFloat64);
    auto Y = torch::from_blob(y.data(), {static_cast<long>(n), static_cast<long>(q)}, torch::kFloat32).to(torch::kFloat64);
    auto design = torch::cat({X, torch::ones({static_cast<long>(n), 1}, torch::kFloat64)}, 1);
    auto solution = std::get<0>(torch::linalg_lstsq(design, Y, c10::nullopt, c10::string_view("gelsd")));
    auto fit = design.matmul(solution);
    const double sse = (Y - fit).pow(2).sum().item<double>();
    const double total = (Y - Y.mean(0)).pow(2).sum().item<double>();
    const double cosine = (1.0 - torch::cosine_similarity(fit, Y, 1, 0.0)).mean().item<double>();
    EXPECT_NEAR(r.mse, sse / static_cast<double>(n * q), 1e-10);
    EXPECT_NEAR(r.unexplained, sse / total, 1e-10);
    EXPECT_NEAR(r.cosineDistance, cosine, 1e-10);
  }
}

TEST(Residual, DirectFormsAndStridedLayers) {
  // Two examples, equal widths: direct MSE and cosine by hand.
  // x = (1, 0), (0, 2); y = (1, 1), (0, 1): squared differences 0 + 1 + 0 + 1 -> mse 2/4;
  // cosines 1/sqrt(2) and 1 -> mean distance (1 - 1/sqrt(2)) / 2.
  const std::vector<float> x{1, 0, 0, 2};
  const std::vector<float> y{1, 1, 0, 1};
  const LayerResidual r = affineResidual(x, 2, y, 2);
  EXPECT_DOUBLE_EQ(r.directMse, 0.5);
  EXPECT_NEAR(r.directCosineDistance, (1.0 - 1.0 / std::sqrt(2.0)) / 2.0, 1e-15);
  // layerResidual on [N, L, D] arrays equals affineResidual on the layers cut out.
  const std::size_t n = 50;
  const auto s = randomHidden(n, 3, 4, 8);
  const auto t = randomHidden(n, 2, 5, 9);
  const LayerResidual a = layerResidual(s, 3, 4, 2, t, 2, 5, 1);
  const LayerResidual b = affineResidual(layerOf(s, n, 3, 4, 2, n), 4, layerOf(t, n, 2, 5, 1, n), 5);
  EXPECT_DOUBLE_EQ(a.mse, b.mse);
  EXPECT_DOUBLE_EQ(a.unexplained, b.unexplained);
  EXPECT_DOUBLE_EQ(a.cosineDistance, b.cosineDistance);
}

TEST(Residual, ConstantStudentExplainsNothingAndZeroColumnsAreHarmless) {
  const std::size_t n = 30;
  std::vector<float> x(n * 2, 1.5F); // constant
  std::vector<float> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = static_cast<float>(i % 7);
  }
  EXPECT_NEAR(affineResidual(x, 2, y, 1).unexplained, 1.0, 1e-12);
  // A zero-padded column (MLP states) does not change the fit.
  std::vector<float> x1(n);
  std::vector<float> x2(n * 2, 0.0F);
  for (std::size_t i = 0; i < n; ++i) {
    x1[i] = static_cast<float>((i * 3) % 5);
    x2[i * 2] = x1[i];
  }
  EXPECT_NEAR(affineResidual(x2, 2, y, 1).unexplained, affineResidual(x1, 1, y, 1).unexplained, 1e-8);
}

TEST(LayerPairing, UniformLastAndListMaps) {
  const LayerPairing u = layerPairing("uniform", 4, 2);
  EXPECT_EQ(u.hidden, (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(u.attention, (std::vector<int>{1, 3}));
  const LayerPairing l = layerPairing("last", 4, 2);
  EXPECT_EQ(l.hidden, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(l.attention, (std::vector<int>{2, 3}));
  const LayerPairing list = layerPairing("list", 4, 2, {0, 1, 4});
  EXPECT_EQ(list.hidden, (std::vector<int>{0, 1, 4}));
  EXPECT_EQ(list.attention, (std::vector<int>{0, 3}));
  // 3 teacher layers, 2 student layers: k = 1.5, floors.
  const LayerPairing odd = layerPairing("uniform", 3, 2);
  EXPECT_EQ(odd.hidden, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(odd.attention, (std::vector<int>{0, 2}));
  // A student deeper than the teacher under "last" has no teacher layer for its first ones.
  const LayerPairing deep = layerPairing("last", 1, 2);
  EXPECT_EQ(deep.hidden, (std::vector<int>{-1, 0, 1}));
  EXPECT_EQ(layerPairing("list", 4, 2, {0, 1}).hidden, (std::vector<int>{-1, -1, -1}));
}
