// Intermediate objectives (ANALYSES.md "Training objectives"; docs/methods.md) against
// closed forms, hand-worked cases and the known mutual information of correlated Gaussians.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <vector>

#include "core/common/error.h"
#include "core/distill/intermediate.h"
#include "core/models/transformer.h"

using namespace kdscope::core;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

torch::Tensor f64(std::vector<double> values, std::vector<std::int64_t> shape) {
  return torch::tensor(values, torch::kFloat64).view(shape);
}

std::vector<std::pair<int, int>> pairs(const std::vector<LayerPair>& v) {
  std::vector<std::pair<int, int>> out;
  for (const auto& p : v) {
    out.emplace_back(p.student, p.teacher);
  }
  return out;
}

ObjectiveSpec withMap(const std::string& map, std::vector<int> list = {}) {
  ObjectiveSpec o;
  o.layerMap = map;
  o.layerList = std::move(list);
  return o;
}

using Pairs = std::vector<std::pair<int, int>>;

} // namespace

// ---- layer maps ---------------------------------------------------------------------------

TEST(LayerMap, UniformIsAnalysesSkipMap) {
  // Lt = 4, Ls = 2, k = 2: hidden i <- 2i; attention i <- 2(i + 1) - 1.
  auto m = makeLayerMap(withMap("uniform"), 2, 4, true);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 0}, {1, 2}, {2, 4}}));
  EXPECT_EQ(pairs(m.attention), (Pairs{{0, 1}, {1, 3}}));
  // Lt = 4, Ls = 3, k = 4/3: floor(0), floor(1.33), floor(2.67), floor(4) = 0, 1, 2, 4;
  // attention floor(1.33) - 1, floor(2.67) - 1, floor(4) - 1 = 0, 1, 3.
  m = makeLayerMap(withMap("uniform"), 3, 4, true);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 0}, {1, 1}, {2, 2}, {3, 4}}));
  EXPECT_EQ(pairs(m.attention), (Pairs{{0, 0}, {1, 1}, {2, 3}}));
  // Lt = 6, Ls = 4, k = 1.5: 0, 1.5, 3, 4.5, 6 -> 0, 1, 3, 4, 6; attention 0, 2, 3, 5.
  m = makeLayerMap(withMap("uniform"), 4, 6, true);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 0}, {1, 1}, {2, 3}, {3, 4}, {4, 6}}));
  EXPECT_EQ(pairs(m.attention), (Pairs{{0, 0}, {1, 2}, {2, 3}, {3, 5}}));
  // A deeper student repeats teacher layers for hidden states; attention cannot map.
  m = makeLayerMap(withMap("uniform"), 4, 2, false);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}}));
  EXPECT_THROW(makeLayerMap(withMap("uniform"), 4, 2, true), InputError);
}

TEST(LayerMap, LastAndExplicitList) {
  auto m = makeLayerMap(withMap("last"), 2, 4, true);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 2}, {1, 3}, {2, 4}}));
  EXPECT_EQ(pairs(m.attention), (Pairs{{0, 2}, {1, 3}}));
  EXPECT_THROW(makeLayerMap(withMap("last"), 3, 2, false), InputError);

  m = makeLayerMap(withMap("list", {0, 1, 4}), 2, 4, true);
  EXPECT_EQ(pairs(m.hidden), (Pairs{{0, 0}, {1, 1}, {2, 4}}));
  EXPECT_EQ(pairs(m.attention), (Pairs{{0, 0}, {1, 3}})); // the block that produced hidden j is j - 1
  EXPECT_THROW(makeLayerMap(withMap("list", {0, 1}), 2, 4, false), InputError);       // wrong length
  EXPECT_THROW(makeLayerMap(withMap("list", {0, 5, 4}), 2, 4, false), InputError);    // out of range
  EXPECT_THROW(makeLayerMap(withMap("list", {0, 0, 4}), 2, 4, true), InputError);     // no attention at 0
  EXPECT_NO_THROW(makeLayerMap(withMap("list", {0, 0, 4}), 2, 4, false));
}

// ---- hidden-state terms ---------------------------------------------------------------------

TEST(IntermediateTerms, HiddenMseMasksPaddingAndAveragesOverTokens) {
  // One example, 3 tokens (the last is padding), D = 2.
  auto hs = f64({1, 2, 0, 0, 100, -100}, {1, 3, 2});
  auto ht = f64({0, 0, 3, 4, 0, 0}, {1, 3, 2});
  auto mask = torch::tensor({true, true, false}).view({1, 3});
  // token 0: ((1)^2 + (2)^2) / 2 = 2.5; token 1: (9 + 16) / 2 = 12.5; mean 7.5.
  EXPECT_NEAR(hiddenMseLoss(hs, ht, mask).item<double>(), 7.5, 1e-12);
  // Vectors ([B, D], no mask): mean over examples of the mean over features.
  EXPECT_NEAR(hiddenMseLoss(f64({1, 2, 3, 4}, {2, 2}), f64({0, 0, 0, 0}, {2, 2}), torch::Tensor()).item<double>(),
              (2.5 + 12.5) / 2.0, 1e-12);
  // Tokens of different examples are pooled: 2 real tokens in row 0, 1 in row 1.
  auto hs2 = f64({1, 1, 1, 1, 9, 9}, {2, 3, 1}).expand({2, 3, 1});
  auto ht2 = torch::zeros({2, 3, 1}, torch::kFloat64);
  auto mask2 = torch::tensor({true, true, false, true, false, false}).view({2, 3});
  EXPECT_NEAR(hiddenMseLoss(hs2, ht2, mask2).item<double>(), 1.0, 1e-12); // (1 + 1 + 1) / 3
}

TEST(IntermediateTerms, HiddenCosineOfParallelOrthogonalAndOppositeStates) {
  auto hs = f64({1, 0, 0, 2, -3, 0, 7, 7}, {1, 4, 2});
  auto ht = f64({5, 0, 4, 0, 1, 0, 1, 2}, {1, 4, 2});
  auto mask = torch::tensor({true, true, true, false}).view({1, 4});
  // 1 - cos: parallel 0, orthogonal 1, opposite 2; the padding token is ignored.
  EXPECT_NEAR(hiddenCosineLoss(hs, ht, mask).item<double>(), (0.0 + 1.0 + 2.0) / 3.0, 1e-12);
}

TEST(IntermediateTerms, PkdOfNormalisedStates) {
  // [3, 4] / 5 = [0.6, 0.8] against [1, 0]: 0.4^2 + 0.8^2 = 0.8; scale-invariant.
  EXPECT_NEAR(pkdLoss(f64({3, 4}, {1, 2}), f64({1, 0}, {1, 2})).item<double>(), 0.8, 1e-12);
  EXPECT_NEAR(pkdLoss(f64({30, 40}, {1, 2}), f64({0.1, 0}, {1, 2})).item<double>(), 0.8, 1e-12);
  // Two examples: the mean; identical directions give 0.
  EXPECT_NEAR(pkdLoss(f64({3, 4, 1, 1}, {2, 2}), f64({1, 0, 2, 2}, {2, 2})).item<double>(), 0.4, 1e-12);
}

// ---- attention terms ------------------------------------------------------------------------

namespace {

/// Softmax over the first `n` entries of a row, zeros after (float64, by hand).
std::vector<double> rowSoftmax(const std::vector<double>& s, int n) {
  std::vector<double> p(s.size(), 0.0);
  double m = -kInf;
  for (int i = 0; i < n; ++i) m = std::max(m, s[i]);
  double z = 0;
  for (int i = 0; i < n; ++i) z += std::exp(s[i] - m);
  for (int i = 0; i < n; ++i) p[i] = std::exp(s[i] - m) / z;
  return p;
}

double kl(const std::vector<double>& p, const std::vector<double>& q, int n) {
  double out = 0;
  for (int i = 0; i < n; ++i) {
    if (p[i] > 0) out += p[i] * std::log(p[i] / q[i]);
  }
  return out;
}

} // namespace

TEST(IntermediateTerms, AttentionKlPerHeadHandWorked) {
  // B = 1, H = 1, Len = 3, the last token is padding: rows 0 and 1 count, keys 0 and 1.
  const std::vector<std::vector<double>> ts = {{0.0, 1.0, 9.0}, {2.0, -1.0, 9.0}, {5.0, 5.0, 5.0}};
  const std::vector<std::vector<double>> ss = {{0.5, 0.0, 0.0}, {0.0, 0.0, 0.0}, {1.0, 2.0, 3.0}};
  std::vector<double> tp;
  std::vector<double> sv;
  for (int r = 0; r < 3; ++r) {
    auto p = rowSoftmax(ts[r], 2);
    tp.insert(tp.end(), p.begin(), p.end());
    sv.insert(sv.end(), {ss[r][0], ss[r][1], -kInf});
  }
  auto teacherProbs = f64(tp, {1, 1, 3, 3});
  auto studentScores = f64(sv, {1, 1, 3, 3});
  auto mask = torch::tensor({true, true, false}).view({1, 3});
  const double expected =
      (kl(rowSoftmax(ts[0], 2), rowSoftmax(ss[0], 2), 2) + kl(rowSoftmax(ts[1], 2), rowSoftmax(ss[1], 2), 2)) / 2.0;
  EXPECT_NEAR(attentionKlLoss(teacherProbs, studentScores, mask).item<double>(), expected, 1e-12);
  // Identical rows: zero.
  EXPECT_NEAR(attentionKlLoss(teacherProbs, torch::log(teacherProbs), mask).item<double>(), 0.0, 1e-12);
}

TEST(IntermediateTerms, AttentionKlHeadAveragedWhenCountsDiffer) {
  // Teacher 2 heads, student 1 head, Len 2, no padding: the teacher's mean map vs the student.
  const std::vector<double> a = {0.9, 0.1, 0.3, 0.7};
  const std::vector<double> b = {0.5, 0.5, 0.1, 0.9};
  std::vector<double> t = a;
  t.insert(t.end(), b.begin(), b.end());
  auto teacherProbs = f64(t, {1, 2, 2, 2});
  auto studentScores = f64({0.0, 1.0, 2.0, 0.0}, {1, 1, 2, 2});
  auto mask = torch::tensor({true, true}).view({1, 2});
  double expected = 0;
  for (int r = 0; r < 2; ++r) {
    std::vector<double> p = {(a[2 * r] + b[2 * r]) / 2, (a[2 * r + 1] + b[2 * r + 1]) / 2};
    std::vector<double> s = {r == 0 ? 0.0 : 2.0, r == 0 ? 1.0 : 0.0};
    expected += kl(p, rowSoftmax(s, 2), 2) / 2.0;
  }
  EXPECT_NEAR(attentionKlLoss(teacherProbs, studentScores, mask).item<double>(), expected, 1e-12);

  // Student 2 heads, teacher 1: the student's map is the mean of its heads' probabilities.
  auto teacher1 = f64({0.6, 0.4, 0.2, 0.8}, {1, 1, 2, 2});
  auto student2 = f64({0.0, 1.0, 1.0, 1.0, 3.0, 0.0, -1.0, 2.0}, {1, 2, 2, 2});
  double expected2 = 0;
  for (int r = 0; r < 2; ++r) {
    auto h0 = rowSoftmax({student2[0][0][r][0].item<double>(), student2[0][0][r][1].item<double>()}, 2);
    auto h1 = rowSoftmax({student2[0][1][r][0].item<double>(), student2[0][1][r][1].item<double>()}, 2);
    std::vector<double> q = {(h0[0] + h1[0]) / 2, (h0[1] + h1[1]) / 2};
    std::vector<double> p = {teacher1[0][0][r][0].item<double>(), teacher1[0][0][r][1].item<double>()};
    expected2 += kl(p, q, 2) / 2.0;
  }
  EXPECT_NEAR(attentionKlLoss(teacher1, student2, mask).item<double>(), expected2, 1e-12);
}

TEST(IntermediateTerms, AttentionKlGradientIsFiniteWithPaddingAndAveragedHeads) {
  auto scores = f64({0.1, 0.2, -kInf, 0.3, 0.1, -kInf, 1.0, 0.0, -kInf, 0.0, 0.5, -kInf, 0.2, 0.2, -kInf, 0.0,
                     0.0, -kInf},
                    {1, 2, 3, 3})
                    .set_requires_grad(true);
  auto teacher = torch::softmax(f64({0, 1, -kInf, 1, 0, -kInf, 0, 0, -kInf}, {1, 1, 3, 3}), -1);
  auto mask = torch::tensor({true, true, false}).view({1, 3});
  attentionKlLoss(teacher, scores, mask).backward();
  EXPECT_TRUE(torch::isfinite(scores.grad()).all().item<bool>()) << scores.grad();
}

TEST(IntermediateTerms, AttentionScoreMseOverRealPairs) {
  // Len 3, token 2 is padding: the 2 x 2 real block counts; -inf at padding keys is ignored.
  auto t = f64({1, 2, -kInf, 3, 4, -kInf, 9, 9, -kInf}, {1, 1, 3, 3});
  auto s = f64({0, 2, -kInf, 3, 6, -kInf, 0, 0, -kInf}, {1, 1, 3, 3});
  auto mask = torch::tensor({true, true, false}).view({1, 3});
  EXPECT_NEAR(attentionScoreMseLoss(t, s, mask).item<double>(), (1.0 + 0.0 + 0.0 + 4.0) / 4.0, 1e-12);
  // Head-averaged when counts differ: teacher heads [1, 3] average to 2 against the student's 2.
  auto t2 = f64({1, 1, 1, 1, 3, 3, 3, 3}, {1, 2, 2, 2});
  auto s2 = f64({2, 2, 2, 0}, {1, 1, 2, 2});
  auto mask2 = torch::tensor({true, true}).view({1, 2});
  EXPECT_NEAR(attentionScoreMseLoss(t2, s2, mask2).item<double>(), 4.0 / 4.0, 1e-12);
}

TEST(IntermediateTerms, ModelScoresAreTheMaskedPreSoftmaxOfItsAttention) {
  torch::manual_seed(3);
  TransformerOptions options(/*vocab=*/12, /*maxLen=*/6, /*classes=*/2);
  options.layers(2).heads(2).width(8).ffn(16).dropout(0.0);
  TransformerClassifier model(options);
  model->eval();
  Batch batch;
  batch.tokens = torch::tensor({2, 5, 7, 0, 0, 2, 4, 4, 8, 3}, torch::kInt64).view({2, 5});
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::tensor({0, 1}, torch::kInt64);
  auto out = model->forward(batch);
  ASSERT_EQ(out.scores.size(), 2U);
  for (std::size_t l = 0; l < 2; ++l) {
    EXPECT_TRUE(torch::allclose(torch::softmax(out.scores[l], -1), out.attention[l], 1e-6, 1e-7));
    EXPECT_TRUE(torch::isinf(out.scores[l][0].slice(-1, 3, 5)).all().item<bool>()); // padding keys
  }
  // The word-embedding input gives the same outputs as the token lookup it replaces.
  Batch viaEmbeddings = batch;
  viaEmbeddings.wordEmbeddings = model->embedTokens(batch.tokens);
  EXPECT_TRUE(torch::allclose(model->forward(viaEmbeddings).logits, out.logits, 1e-6, 1e-7));
}

// ---- contrastive and mutual-information bounds ------------------------------------------------

TEST(MutualInformation, InfoNceClosedFormAndCap) {
  // S = c I (B x B): InfoNCE = log B + c - log(e^c + B - 1).
  const int b = 5;
  const double c = 2.0;
  auto scores = c * torch::eye(b, torch::kFloat64);
  EXPECT_NEAR(infoNceBound(scores).item<double>(), std::log(5.0) + c - std::log(std::exp(c) + 4.0), 1e-12);
  // Never above log B, however confident the critic.
  EXPECT_LE(infoNceBound(1e3 * torch::eye(b, torch::kFloat64)).item<double>(), std::log(5.0) + 1e-12);
}

TEST(MutualInformation, MiAlphaHandWorkedAtBatchTwo) {
  // B = 2: N[i, j] = S[i, 1 - j] (one other element). With alpha = 0, A[i, j] = b_i:
  // joint = mean(S00 - b0, S11 - b1); marginal = mean(e^(S01 - b0), e^(S10 - b1)).
  auto s = f64({1.0, 0.2, -0.5, 0.7}, {2, 2});
  auto base = f64({0.1, -0.3}, {2});
  const double joint = ((1.0 - 0.1) + (0.7 + 0.3)) / 2.0;
  const double marginal = (std::exp(0.2 - 0.1) + std::exp(-0.5 + 0.3)) / 2.0;
  EXPECT_NEAR(miAlphaBound(s, base, 0.0).item<double>(), 1.0 + joint - marginal, 1e-12);
  // alpha = 1 at B = 2: A[0,1] = S00 and A[0,0] = S01, so joint = 0 and marginal = 1: I = 0.
  EXPECT_NEAR(miAlphaBound(s, base, 1.0).item<double>(), 0.0, 1e-12);
  // B = 1: the leave-one-out means are empty; the bound is 0 (a batch of one teaches nothing).
  EXPECT_EQ(miAlphaBound(f64({3.0}, {1, 1}), f64({0.0}, {1}), 0.5).item<double>(), 0.0);
}

TEST(MutualInformation, MiAlphaMatchesTheFormulaWrittenOutInLoops) {
  // An independent float64 evaluation of ANALYSES.md's batch formula with explicit loops.
  torch::manual_seed(11);
  const int b = 4;
  const double alpha = 0.3;
  auto s = torch::randn({b, b}, torch::kFloat64);
  auto base = torch::randn({b}, torch::kFloat64);
  auto S = [&](int i, int j) { return s[i][j].item<double>(); };
  auto A = [&](int i, int j) {
    double sum = 0;
    for (int k = 0; k < b; ++k) {
      if (k != j) sum += std::exp(S(i, k));
    }
    const double n = std::log(sum / (b - 1));
    return std::log(alpha * std::exp(n) + (1 - alpha) * std::exp(base[i].item<double>()));
  };
  double joint = 0;
  double marginal = 0;
  for (int i = 0; i < b; ++i) {
    for (int j = 0; j < b; ++j) {
      if (i == j) continue;
      joint += (S(i, i) - A(i, j)) / (b * (b - 1));
      marginal += std::exp(S(i, j) - A(i, i)) / (b * (b - 1));
    }
  }
  EXPECT_NEAR(miAlphaBound(s, base, alpha).item<double>(), 1.0 + joint - marginal, 1e-12);
}

namespace {

/// I_alpha of a B x B score matrix, rearranged row by row and written independently of the
/// code's [B, B, B] log-space tensor (plain float64 loops, no logsumexp). With E[i,k] =
/// e^(S[i,k] - c_i), c_i = max_k S[i,k] (a shift that cancels):
///   e^N[i,j] = e^c_i L[i,j] / (B - 1),    L[i,j] = sum_{k != j} E[i,k]  (summed directly,
///                                                    never as a row sum minus E[i,j]);
///   joint    = mean_{i != j} (S[i,i] - log(alpha e^N[i,j] + (1 - alpha) e^b_i));
///   A[i,i] does not depend on j, so row i's marginal term is
///   mean_{j != i} e^S[i,j] / e^A[i,i] = M_i / (alpha M_i + (1 - alpha) e^b_i), M_i = e^N[i,i],
///   which is exactly 1 for alpha = 1 (then marginal = 1 and I_1 = joint).
double miAlphaByRows(const torch::Tensor& scores, const std::vector<double>& logBaseline, double alpha) {
  const auto s = scores.contiguous();
  const auto b = static_cast<std::size_t>(s.size(0));
  const double* v = s.data_ptr<double>();
  const double m = static_cast<double>(b) - 1.0;
  double joint = 0.0;
  double marginal = 0.0;
  std::vector<double> e(b);
  for (std::size_t i = 0; i < b; ++i) {
    const double c = *std::max_element(v + i * b, v + (i + 1) * b);
    for (std::size_t k = 0; k < b; ++k) {
      e[k] = std::exp(v[i * b + k] - c);
    }
    const double baseline = std::exp(logBaseline[i] - c); // e^b_i in the same shifted units
    for (std::size_t j = 0; j < b; ++j) {
      double l = 0.0;
      for (std::size_t k = 0; k < b; ++k) {
        if (k != j) l += e[k];
      }
      if (j == i) {
        marginal += alpha >= 1.0 ? 1.0 : (l / m) / (alpha * (l / m) + (1.0 - alpha) * baseline);
      } else {
        // log(alpha e^N + (1 - alpha) e^b) = c + log(alpha L / (B - 1) + (1 - alpha) e^(b - c))
        joint += v[i * b + i] - c - std::log(alpha * l / m + (1.0 - alpha) * baseline);
      }
    }
  }
  return 1.0 + joint / (static_cast<double>(b) * m) - marginal / static_cast<double>(b);
}

/// Bounds over `batches` batches of correlated Gaussian pairs (x, y), y = rho x +
/// sqrt(1 - rho^2) e per dimension, scored by the optimal critic f(x, y) = log p(y|x)/p(y),
/// whose log partition E_y e^f = 1 makes the baseline b = 0 exact. I = -d/2 log(1 - rho^2).
struct GaussianBounds {
  double trueMi = 0;
  double logB = 0;
  std::vector<double> nce;                      // per batch
  std::map<double, std::vector<double>> alpha;  // alpha -> I_alpha per batch
  double worstOracleGap = 0;                    // max |I_alpha - miAlphaByRows| over batches and alphas

  static double mean(const std::vector<double>& v) {
    double out = 0;
    for (double x : v) out += x / static_cast<double>(v.size());
    return out;
  }
  static double stderrOf(const std::vector<double>& v) {
    const double mu = mean(v);
    double var = 0;
    for (double x : v) var += (x - mu) * (x - mu) / static_cast<double>(v.size() - 1);
    return std::sqrt(var / static_cast<double>(v.size()));
  }
};

GaussianBounds gaussianBounds(int d, double rho, int batch, int batches, const std::vector<double>& alphas) {
  torch::manual_seed(5);
  GaussianBounds out;
  out.trueMi = -0.5 * d * std::log(1.0 - rho * rho);
  out.logB = std::log(static_cast<double>(batch));
  const std::vector<double> zeroBaseline(static_cast<std::size_t>(batch), 0.0);
  for (int k = 0; k < batches; ++k) {
    auto x = torch::randn({batch, d}, torch::kFloat64);
    auto y = rho * x + std::sqrt(1.0 - rho * rho) * torch::randn({batch, d}, torch::kFloat64);
    // S[i, j] = f(x_i, y_j)
    auto diff = y.unsqueeze(0) - rho * x.unsqueeze(1); // [i, j, d]
    auto s = -0.5 * d * std::log(1.0 - rho * rho) - diff.pow(2).sum(-1) / (2.0 * (1.0 - rho * rho)) +
             y.pow(2).sum(-1).unsqueeze(0) / 2.0;
    out.nce.push_back(infoNceBound(s).item<double>());
    for (double a : alphas) {
      const double value = miAlphaBound(s, torch::zeros({batch}, torch::kFloat64), a).item<double>();
      out.alpha[a].push_back(value);
      const double gap = std::abs(value - miAlphaByRows(s, zeroBaseline, a));
      out.worstOracleGap = std::isnan(gap) ? kInf : std::max(out.worstOracleGap, gap);
    }
  }
  return out;
}

} // namespace

TEST(MutualInformation, MiAlphaMatchesTheRowFormOnRandomScores) {
  // The row form against the code at B = 2, 5 and 9, with a nonzero baseline, for the two
  // special branches (alpha 0 and 1) and in between.
  torch::manual_seed(13);
  for (int b : {2, 5, 9}) {
    auto s = 2.0 * torch::randn({b, b}, torch::kFloat64);
    auto base = torch::randn({b}, torch::kFloat64);
    std::vector<double> baseline(base.data_ptr<double>(), base.data_ptr<double>() + b);
    for (double alpha : {0.0, 0.2, 0.5, 0.9, 1.0}) {
      EXPECT_NEAR(miAlphaBound(s, base, alpha).item<double>(), miAlphaByRows(s, baseline, alpha), 1e-12)
          << "B " << b << " alpha " << alpha;
    }
  }
}

TEST(MutualInformation, InterpolatedBoundOnGaussiansWithKnownMi) {
  // d = 4, rho = 0.7: I = -2 log 0.51 = 1.347 nats, well below log B = log 64 = 4.16.
  const auto g = gaussianBounds(/*d=*/4, /*rho=*/0.7, /*batch=*/64, /*batches=*/100, {0.0, 0.5, 1.0});
  EXPECT_NEAR(g.trueMi, 1.3467, 1e-4);
  // Every batch, every alpha: the code equals the row form.
  EXPECT_LE(g.worstOracleGap, 1e-9);
  const auto& i0 = g.alpha.at(0.0);
  const auto& i5 = g.alpha.at(0.5);
  const auto& i1 = g.alpha.at(1.0);
  // alpha = 0 (TUBA/NWJ) with the optimal critic and exact baseline is unbiased:
  // E[S[i,i]] = I and E[e^S[i,j]] = 1, so E[I_0] = 1 + I - 1 = I.
  EXPECT_NEAR(GaussianBounds::mean(i0), g.trueMi, 4.0 * GaussianBounds::stderrOf(i0) + 0.01);
  // Every alpha is a lower bound in expectation, and the bias grows with alpha (the batch
  // estimate of the partition function replaces more of the exact baseline).
  for (double a : {0.5, 1.0}) {
    const auto& v = g.alpha.at(a);
    EXPECT_LE(GaussianBounds::mean(v), g.trueMi + 3.0 * GaussianBounds::stderrOf(v)) << "alpha " << a;
  }
  EXPECT_GT(GaussianBounds::mean(i0), GaussianBounds::mean(i5));
  EXPECT_GT(GaussianBounds::mean(i5), GaussianBounds::mean(i1));
  // alpha = 1 tracks InfoNCE. Exactly, on every batch: the marginal term is 1 and
  // S[i,i] - N[i,j] >= S[i,i] - log(R_i / (B - 1)) with R_i = sum_k e^S[i,k], so
  // I_1 >= InfoNCE - log(B / (B - 1)); and since e^N[i,j] >= e^S[i,i] / (B - 1) for j != i,
  // I_1 <= log(B - 1).
  const double logB1 = std::log(63.0);
  for (std::size_t k = 0; k < i1.size(); ++k) {
    EXPECT_GE(i1[k], g.nce[k] - std::log(64.0 / 63.0) - 1e-12) << "batch " << k;
    EXPECT_LE(i1[k], logB1 + 1e-12) << "batch " << k;
  }
  EXPECT_NEAR(GaussianBounds::mean(i1), GaussianBounds::mean(g.nce), 0.02);
  std::cout << "[          ] I " << g.trueMi << ": mean I_0 " << GaussianBounds::mean(i0) << " (stderr "
            << GaussianBounds::stderrOf(i0) << "), I_0.5 " << GaussianBounds::mean(i5) << ", I_1 "
            << GaussianBounds::mean(i1) << ", InfoNCE " << GaussianBounds::mean(g.nce) << "\n";
}

TEST(MutualInformation, InfoNceAndAlphaOneSaturateNearLogB) {
  // d = 10, rho = 0.95: I = 11.64 nats, far above log 64 = 4.16. The critic is confident
  // (e^S[i,i] dwarfs the rest of row i), which drives each bound to its ceiling:
  // - InfoNCE <= log B (each log-softmax term <= 0), reached when e^S[i,i] dwarfs the row;
  // - InfoNCE - log(B / (B - 1)) <= I_1 <= log(B - 1) (see InterpolatedBoundOnGaussiansWithKnownMi),
  //   so I_1 is pinned to within 0.016 below log(B - 1) once InfoNCE reaches log B;
  // - I_alpha for alpha < 1: joint <= log((B - 1) / alpha) as e^N[i,j] >= e^S[i,i] / (B - 1),
  //   marginal >= 0, so I_alpha <= 1 + log((B - 1) / alpha), reached as the marginal term
  //   M_i / (alpha M_i + (1 - alpha) e^b_i) -> 0 with M_i -> 0: 1 + log 126 = 5.836 at 0.5.
  const auto g = gaussianBounds(/*d=*/10, /*rho=*/0.95, /*batch=*/64, /*batches=*/40, {0.5, 1.0});
  EXPECT_GT(g.trueMi, 11.0);
  EXPECT_LE(g.worstOracleGap, 1e-9);
  const auto& i5 = g.alpha.at(0.5);
  const auto& i1 = g.alpha.at(1.0);
  const double logB1 = std::log(63.0);
  const double ceiling5 = 1.0 + std::log(63.0 / 0.5);
  for (std::size_t k = 0; k < g.nce.size(); ++k) {
    EXPECT_LE(g.nce[k], g.logB + 1e-12) << "batch " << k;
    EXPECT_GE(i1[k], g.nce[k] - std::log(64.0 / 63.0) - 1e-12) << "batch " << k;
    EXPECT_LE(i1[k], logB1 + 1e-12) << "batch " << k;
    EXPECT_LE(i5[k], ceiling5 + 1e-12) << "batch " << k;
    EXPECT_GT(i5[k], i1[k]) << "batch " << k; // lower alpha: less bias
  }
  // Both documented saturations: InfoNCE at log B, I_1 at log(B - 1) = log B - 0.016.
  EXPECT_NEAR(GaussianBounds::mean(g.nce), g.logB, 0.02);
  EXPECT_NEAR(GaussianBounds::mean(i1), logB1, 0.02);
  // And I_0.5 at its own ceiling, far below I.
  EXPECT_NEAR(GaussianBounds::mean(i5), ceiling5, 0.15);
  std::cout << "[          ] I " << g.trueMi << ": mean InfoNCE " << GaussianBounds::mean(g.nce) << " (log B "
            << g.logB << "), I_1 " << GaussianBounds::mean(i1) << " (log(B - 1) " << logB1 << "), I_0.5 "
            << GaussianBounds::mean(i5) << " (ceiling " << ceiling5 << ")\n";
}

// ---- the module that owns the parameters ------------------------------------------------------

TEST(IntermediateObjective, IdenticalModelsGiveZeroTermsAndProjectionsOnlyWhenWidthsDiffer) {
  torch::manual_seed(9);
  TransformerOptions options(/*vocab=*/12, /*maxLen=*/6, /*classes=*/2);
  options.layers(2).heads(2).width(8).ffn(16).dropout(0.0);
  TransformerClassifier model(options);
  model->eval();
  Batch batch;
  batch.tokens = torch::tensor({2, 5, 7, 0, 2, 4, 4, 8}, torch::kInt64).view({2, 4});
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::tensor({0, 1}, torch::kInt64);
  auto out = model->forward(batch);

  ObjectiveSpec o;
  o.hiddenMse = 1.0;
  o.hiddenCosine = 1.0;
  o.pkd = 1.0;
  o.attentionKl = 1.0;
  o.attentionMse = 1.0;
  IntermediateObjective same(o, std::vector<int>(3, 8), std::vector<int>(3, 8));
  EXPECT_TRUE(same->parameters().empty()); // equal widths: W is the identity
  LossTerms terms;
  terms.total = torch::zeros({});
  same->addTerms(out, out, batch.mask, terms);
  ASSERT_EQ(terms.terms.size(), 5U);
  const std::vector<std::string> names = {"hidden_mse", "hidden_cosine", "pkd", "attention_kl", "attention_mse"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(terms.terms[i].first, names[i]);
    EXPECT_NEAR(terms.terms[i].second.item<double>(), 0.0, 1e-5) << names[i];
  }

  // Student width 4 (1 layer), teacher width 8 (2 layers): one W (4 x 8 + 8) per hidden pair.
  IntermediateObjective projected(o, std::vector<int>(2, 4), std::vector<int>(3, 8));
  std::int64_t count = 0;
  for (const auto& p : projected->parameters()) {
    count += p.numel();
  }
  EXPECT_EQ(count, 2 * (4 * 8 + 8));
  // Critics: two encoders (Linear(w, 64), Linear(64, 64)) per pair, plus mi_alpha's baseline.
  ObjectiveSpec mi;
  mi.miAlpha = 1.0;
  IntermediateObjective critic(mi, std::vector<int>(2, 4), std::vector<int>(3, 8));
  count = 0;
  for (const auto& p : critic->parameters()) {
    count += p.numel();
  }
  const std::int64_t enc4 = 4 * 64 + 64 + 64 * 64 + 64;
  const std::int64_t enc8 = 8 * 64 + 64 + 64 * 64 + 64;
  EXPECT_EQ(count, 2 * (enc4 + enc8 + 64 + 1));
}
