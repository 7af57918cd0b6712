// Tests of core/analysis/attention_stats.h: closed forms (ln k, ln 2, ln 2 * TV, 0), hand-worked
// JS values (also between rows that leak mass to padding keys), bounds in total variation that
// the clamp to [0, ln 2] cannot produce, and a naive per-row JS written here from the KL definition.

#include "core/analysis/attention_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace kdscope::core::analysis {
namespace {

const double kLn2 = std::log(2.0);

/// [n, heads, len, len] maps, filled with `fill` (so padding holds garbage unless overwritten).
struct Maps {
  std::size_t n, heads, len;
  std::vector<float> data;
  Maps(std::size_t examples, std::size_t h, std::size_t l, float fill = 0.37F)
      : n(examples), heads(h), len(l), data(examples * h * l * l, fill) {}
  float* row(std::size_t e, std::size_t h, std::size_t i) { return data.data() + ((e * heads + h) * len + i) * len; }
  [[nodiscard]] AttentionLayer view() const { return AttentionLayer::fromMaps(data, heads, len); }
};

/// Random attention rows over the first lengths[e] keys (zeros on padded keys).
Maps randomMaps(std::size_t heads, std::size_t len, const std::vector<std::size_t>& lengths, unsigned seed) {
  Maps m(lengths.size(), heads, len);
  std::mt19937 rng(seed);
  std::gamma_distribution<float> gamma(0.5F, 1.0F); // peaky rows, like real attention
  for (std::size_t e = 0; e < lengths.size(); ++e) {
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t i = 0; i < len; ++i) {
        float* r = m.row(e, h, i);
        float sum = 0.0F;
        for (std::size_t j = 0; j < len; ++j) {
          r[j] = j < lengths[e] ? gamma(rng) + 1e-6F : 0.0F;
          sum += r[j];
        }
        for (std::size_t j = 0; j < len; ++j) {
          r[j] /= sum;
        }
      }
    }
  }
  return m;
}

/// JS from the definition, 1/2 KL(p || m) + 1/2 KL(q || m), on the first n keys renormalised.
double naiveJs(const float* p, const float* q, std::size_t n) {
  double sp = 0.0;
  double sq = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    sp += p[j];
    sq += q[j];
  }
  double js = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double a = p[j] / sp;
    const double b = q[j] / sq;
    const double m = (a + b) / 2.0;
    if (a > 0.0) {
      js += 0.5 * a * std::log(a / m);
    }
    if (b > 0.0) {
      js += 0.5 * b * std::log(b / m);
    }
  }
  return js;
}

/// Total variation 1/2 sum |a - b| of two rows' first n keys, each renormalised.
double totalVariation(const float* p, const float* q, std::size_t n) {
  double sp = 0.0;
  double sq = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    sp += p[j];
    sq += q[j];
  }
  double tv = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    tv += 0.5 * std::abs(p[j] / sp - q[j] / sq);
  }
  return tv;
}

TEST(AnalysisAttention, JsDivergenceClosedForms) {
  // p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4).
  // KL(p || m) = ln(4/3); KL(q || m) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
  // JS = 1/2 ln(4/3) + 1/4 ln(4/3) = 3/4 ln(4/3) = 0.21576155433883568.
  EXPECT_NEAR(jsDivergence({1.0, 0.0}, {0.5, 0.5}), 0.75 * std::log(4.0 / 3.0), 1e-15);
  EXPECT_NEAR(jsDivergence({0.5, 0.5}, {1.0, 0.0}), 0.75 * std::log(4.0 / 3.0), 1e-15);
  EXPECT_NEAR(jsDivergence({0.5, 0.5, 0.0, 0.0}, {0.0, 0.0, 0.25, 0.75}), kLn2, 1e-15); // disjoint
  EXPECT_EQ(jsDivergence({0.2, 0.3, 0.5}, {0.2, 0.3, 0.5}), 0.0);
  const std::vector<double> p{0.1, 0.6, 0.3};
  const std::vector<double> q{0.5, 0.25, 0.25};
  EXPECT_DOUBLE_EQ(jsDivergence(p, q), jsDivergence(q, p));
  EXPECT_THROW((void)jsDivergence({1.0}, {0.5, 0.5}), std::invalid_argument);
}

TEST(AnalysisAttention, EntropyOfUniformRowsIsLnK) {
  // Two examples of lengths 3 and 5 in maps of length 6. Real rows attend uniformly over the
  // real keys; padded rows and keys hold garbage that must be ignored. Head 1 is one-hot.
  Maps m(2, 2, 6);
  const std::vector<std::size_t> lengths{3, 5};
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < lengths[e]; ++i) {
      float* uniform = m.row(e, 0, i);
      float* oneHot = m.row(e, 1, i);
      for (std::size_t j = 0; j < 6; ++j) {
        uniform[j] = j < lengths[e] ? 1.0F / static_cast<float>(lengths[e]) : 0.0F;
        oneHot[j] = j == i ? 1.0F : 0.0F;
      }
    }
  }
  const std::vector<double> h = attentionEntropy(m.view(), lengths);
  ASSERT_EQ(h.size(), 2U);
  // Pooled over the 3 + 5 rows: (3 ln 3 + 5 ln 5) / 8.
  EXPECT_NEAR(h[0], (3.0 * std::log(3.0) + 5.0 * std::log(5.0)) / 8.0, 1e-7);
  EXPECT_EQ(h[1], 0.0);
  // One example alone: exactly ln k.
  const std::vector<float> single(m.data.begin() + 2 * 36, m.data.end());
  EXPECT_NEAR(attentionEntropy(AttentionLayer::fromMaps(single, 2, 6), {5})[0], std::log(5.0), 1e-7);
}

TEST(AnalysisAttention, RowsAreRenormalisedOverRealKeys) {
  // A model that leaks half its mass to a padded key: over the 2 real keys the row is
  // uniform, entropy ln 2.
  Maps m(1, 1, 3);
  for (std::size_t i = 0; i < 3; ++i) {
    float* r = m.row(0, 0, i);
    r[0] = 0.25F;
    r[1] = 0.25F;
    r[2] = 0.5F;
  }
  EXPECT_NEAR(attentionEntropy(m.view(), {2})[0], kLn2, 1e-15);
}

TEST(AnalysisAttention, EntropyUndefinedWithoutRowsAndChecksShapes) {
  Maps m(2, 3, 4);
  const std::vector<double> h = attentionEntropy(m.view(), {0, 0});
  for (double v : h) {
    EXPECT_TRUE(std::isnan(v));
  }
  EXPECT_THROW((void)attentionEntropy(m.view(), {1}), std::invalid_argument);    // wrong count
  EXPECT_THROW((void)attentionEntropy(m.view(), {1, 5}), std::invalid_argument); // too long
  EXPECT_THROW((void)AttentionLayer::fromMaps(m.data, 5, 4), std::invalid_argument);
}

TEST(AnalysisAttention, DivergenceMatrixMatchesNaiveAndFindsCopiedHeads) {
  // Teacher 2 heads, student 3 heads: student head 1 copies teacher head 0, student head 2
  // copies teacher head 1, student head 0 is unrelated.
  const std::vector<std::size_t> lengths{4, 7, 2};
  const Maps teacher = randomMaps(2, 7, lengths, 1);
  Maps student = randomMaps(3, 7, lengths, 2);
  for (std::size_t e = 0; e < lengths.size(); ++e) {
    for (std::size_t i = 0; i < 7; ++i) {
      for (std::size_t j = 0; j < 7; ++j) {
        student.row(e, 1, i)[j] = teacher.data[((e * 2 + 0) * 7 + i) * 7 + j];
        student.row(e, 2, i)[j] = teacher.data[((e * 2 + 1) * 7 + i) * 7 + j];
      }
    }
  }
  const Matrix js = jsDivergenceMatrix(teacher.view(), student.view(), lengths, 1);
  ASSERT_EQ(js.rows, 2U);
  ASSERT_EQ(js.cols, 3U);
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t s = 0; s < 3; ++s) {
      double sum = 0.0;
      std::size_t rows = 0;
      for (std::size_t e = 0; e < lengths.size(); ++e) {
        for (std::size_t i = 0; i < lengths[e]; ++i) {
          sum += naiveJs(teacher.data.data() + ((e * 2 + t) * 7 + i) * 7, student.data.data() + ((e * 3 + s) * 7 + i) * 7,
                         lengths[e]);
          ++rows;
        }
      }
      EXPECT_NEAR(js(t, s), sum / static_cast<double>(rows), 1e-12) << t << "," << s;
    }
  }
  // Bounds that the code's clamp to [0, ln 2] cannot produce by itself. For one pair of rows
  // with total variation TV = 1/2 sum |p - q|:
  //   TV^2 / 2 <= JS        (Pinsker on each half: KL(p || m) >= 2 TV(p, m)^2 = TV^2 / 2),
  //   JS <= ln 2 * TV       (per key, with t = p_j / (p_j + q_j) the key contributes
  //                          (p_j + q_j)/2 (ln 2 - H(t)), and H(t) >= 2 ln 2 min(t, 1 - t) by
  //                          concavity of the binary entropy H),
  // with equality on the right only for equal or disjoint rows. Averaged over the rows:
  // mean(TV^2) / 2 <= JS <= ln 2 mean(TV). The random rows overlap on every key, so the pairs
  // that are not copies lie strictly inside: a value the clamp pinned to 0 or to ln 2 fails.
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t s = 0; s < 3; ++s) {
      double tv = 0.0;
      double tv2 = 0.0;
      std::size_t rows = 0;
      for (std::size_t e = 0; e < lengths.size(); ++e) {
        for (std::size_t i = 0; i < lengths[e]; ++i) {
          const double d = totalVariation(teacher.data.data() + ((e * 2 + t) * 7 + i) * 7,
                                          student.data.data() + ((e * 3 + s) * 7 + i) * 7, lengths[e]);
          tv += d;
          tv2 += d * d;
          ++rows;
        }
      }
      tv /= static_cast<double>(rows);
      tv2 /= static_cast<double>(rows);
      const bool copy = (t == 0 && s == 1) || (t == 1 && s == 2);
      if (copy) {
        EXPECT_EQ(tv, 0.0);
        continue;
      }
      EXPECT_GT(tv, 0.1) << t << "," << s; // the random rows really differ
      EXPECT_GE(js(t, s), tv2 / 2.0) << t << "," << s;
      EXPECT_LT(js(t, s), kLn2 * tv) << t << "," << s;
      EXPECT_GT(js(t, s), 0.0) << t << "," << s;
      EXPECT_LT(js(t, s), kLn2 - 0.1) << t << "," << s;
    }
  }
  EXPECT_EQ(js(0, 1), 0.0);
  EXPECT_EQ(js(1, 2), 0.0);
  const std::vector<HeadMatch> best = bestMatch(js);
  ASSERT_EQ(best.size(), 2U);
  EXPECT_EQ(best[0].studentHead, 1U);
  EXPECT_EQ(best[1].studentHead, 2U);
  EXPECT_EQ(best[0].divergence, 0.0);
  // The thread count changes nothing.
  EXPECT_EQ(jsDivergenceMatrix(teacher.view(), student.view(), lengths, 3).values, js.values);
}

TEST(AnalysisAttention, DivergenceIsSymmetricAndLn2ForDisjointAttention) {
  const std::vector<std::size_t> lengths{5, 3};
  const Maps a = randomMaps(2, 5, lengths, 7);
  const Maps b = randomMaps(2, 5, lengths, 8);
  const Matrix ab = jsDivergenceMatrix(a.view(), b.view(), lengths);
  const Matrix ba = jsDivergenceMatrix(b.view(), a.view(), lengths);
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t s = 0; s < 2; ++s) {
      EXPECT_NEAR(ab(t, s), ba(s, t), 1e-15);
    }
  }
  // Every teacher row looks at key 0 only, every student row at key 1 only: JS = ln 2.
  Maps t(2, 1, 5, 0.0F);
  Maps s(2, 1, 5, 0.0F);
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < 5; ++i) {
      t.row(e, 0, i)[0] = 1.0F;
      s.row(e, 0, i)[1] = 1.0F;
    }
  }
  EXPECT_NEAR(jsDivergenceMatrix(t.view(), s.view(), lengths)(0, 0), kLn2, 1e-15);
  EXPECT_NEAR(headAveragedJsDivergence(t.view(), s.view(), lengths), kLn2, 1e-15);
  // Partly disjoint rows, where ln 2 is NOT the answer (so the clamp cannot supply it): where
  // on every key the rows are equal or one of them is 0, a key with p_j > 0 = q_j adds
  // 1/2 p_j ln(p_j / (p_j / 2)) = p_j ln 2 / 2, an equal key adds 0, so JS = ln 2 * TV.
  // p = (0.6, 0.4, 0), q = (0, 0.4, 0.6): TV = 0.6, JS = 0.6 ln 2.
  EXPECT_NEAR(jsDivergence({0.6, 0.4, 0.0}, {0.0, 0.4, 0.6}), 0.6 * kLn2, 1e-15);
  // In the maps: teacher (1/2, 1/2, 0, 0, 0), student (0, 1/2, 1/2, 0, 0) on every row:
  // TV = 1/2, JS = ln 2 / 2 (the one-key overlap of lengths 5 and 3 alike).
  Maps t2(2, 1, 5, 0.0F);
  Maps s2(2, 1, 5, 0.0F);
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < 5; ++i) {
      t2.row(e, 0, i)[0] = 0.5F;
      t2.row(e, 0, i)[1] = 0.5F;
      s2.row(e, 0, i)[1] = 0.5F;
      s2.row(e, 0, i)[2] = 0.5F;
    }
  }
  EXPECT_NEAR(jsDivergenceMatrix(t2.view(), s2.view(), lengths)(0, 0), kLn2 / 2.0, 1e-15);
  EXPECT_NEAR(headAveragedJsDivergence(t2.view(), s2.view(), lengths), kLn2 / 2.0, 1e-15);
}

TEST(AnalysisAttention, DivergenceMatrixHandWorkedAndRenormalisedOverRealKeys) {
  // Length-2 rows p = (3/4, 1/4) and q = (1/4, 3/4): m = (1/2, 1/2) and
  //   KL(p || m) = 3/4 ln(3/2) + 1/4 ln(1/2) = 3/4 ln 3 - ln 2 = KL(q || m),
  //   JS = 3/4 ln 3 - ln 2 = 0.130812035...
  // The maps have length 4: the model leaks mass to the padding keys 2 and 3 (teacher rows
  // (0.375, 0.125, 0.3, 0.2), student rows (0.05, 0.15, 0.4, 0.4)), which the divergence must
  // drop and renormalise away, and the padding query rows 2 and 3 hold garbage (0.37) that
  // must not count.
  const double expected = 0.75 * std::log(3.0) - kLn2;
  EXPECT_NEAR(jsDivergence({0.75, 0.25}, {0.25, 0.75}), expected, 1e-15);
  Maps t(2, 1, 4);
  Maps s(2, 2, 4);
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < 2; ++i) {
      float* rt = t.row(e, 0, i);
      rt[0] = 0.375F;
      rt[1] = 0.125F;
      rt[2] = 0.3F;
      rt[3] = 0.2F;
      float* r0 = s.row(e, 0, i); // the mirror image of the teacher: JS = expected
      r0[0] = 0.05F;
      r0[1] = 0.15F;
      r0[2] = 0.4F;
      r0[3] = 0.4F;
      float* r1 = s.row(e, 1, i); // the teacher's shape at another scale: JS = 0
      r1[0] = 0.075F;
      r1[1] = 0.025F;
      r1[2] = 0.9F;
      r1[3] = 0.0F;
    }
  }
  const Matrix js = jsDivergenceMatrix(t.view(), s.view(), {2, 2});
  EXPECT_NEAR(js(0, 0), expected, 1e-7); // float inputs: 0.375 / 0.5 etc. are exact, the sums not
  EXPECT_NEAR(js(0, 1), 0.0, 1e-7);
  // Head-averaged, the student's heads average (after renormalisation) to (1/2, 1/2) against
  // the teacher's (3/4, 1/4): JS = 1/2 [3/4 ln(3/4 / 5/8) + 1/4 ln(1/4 / 3/8)]
  //   + 1/2 [1/2 ln(1/2 / 5/8) + 1/2 ln(1/2 / 3/8)], written out below.
  const double headAveraged = 0.5 * (0.75 * std::log(0.75 / 0.625) + 0.25 * std::log(0.25 / 0.375)) +
                              0.5 * (0.5 * std::log(0.5 / 0.625) + 0.5 * std::log(0.5 / 0.375));
  EXPECT_NEAR(headAveragedJsDivergence(t.view(), s.view(), {2, 2}), headAveraged, 1e-7);
  // Entropy of the renormalised teacher rows: H(3/4, 1/4) = ln 4 - 3/4 ln 3.
  EXPECT_NEAR(attentionEntropy(t.view(), {2, 2})[0], std::log(4.0) - 0.75 * std::log(3.0), 1e-7);
}

TEST(AnalysisAttention, HeadAveragedComparisonAcrossHeadCounts) {
  // Length 2. The teacher's single head is uniform; the student's two heads are one-hot on
  // different keys, so their mean is uniform too: divergence 0, although each student head
  // alone is at JS((1/2, 1/2), (1, 0)) = 3/4 ln(4/3) (worked out in JsDivergenceClosedForms).
  Maps t(1, 1, 2, 0.5F);
  Maps s(1, 2, 2, 0.0F);
  for (std::size_t i = 0; i < 2; ++i) {
    s.row(0, 0, i)[0] = 1.0F;
    s.row(0, 1, i)[1] = 1.0F;
  }
  EXPECT_NEAR(headAveragedJsDivergence(t.view(), s.view(), {2}), 0.0, 1e-15);
  const Matrix js = jsDivergenceMatrix(t.view(), s.view(), {2});
  EXPECT_NEAR(js(0, 0), 0.75 * std::log(4.0 / 3.0), 1e-15);
  EXPECT_NEAR(js(0, 1), 0.75 * std::log(4.0 / 3.0), 1e-15);
  // Against a naive average for random maps with different head counts.
  const std::vector<std::size_t> lengths{6, 4};
  const Maps a = randomMaps(3, 6, lengths, 11);
  const Maps b = randomMaps(2, 6, lengths, 12);
  double sum = 0.0;
  std::size_t rows = 0;
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < lengths[e]; ++i) {
      std::vector<float> ma(6, 0.0F);
      std::vector<float> mb(6, 0.0F);
      for (std::size_t j = 0; j < 6; ++j) {
        for (std::size_t h = 0; h < 3; ++h) {
          ma[j] += a.data[((e * 3 + h) * 6 + i) * 6 + j] / 3.0F;
        }
        for (std::size_t h = 0; h < 2; ++h) {
          mb[j] += b.data[((e * 2 + h) * 6 + i) * 6 + j] / 2.0F;
        }
      }
      sum += naiveJs(ma.data(), mb.data(), lengths[e]);
      ++rows;
    }
  }
  // The naive average is in float: agreement to float rounding.
  EXPECT_NEAR(headAveragedJsDivergence(a.view(), b.view(), lengths), sum / static_cast<double>(rows), 1e-6);
}

TEST(AnalysisAttention, LayerViewReadsTheRightLayer) {
  // [n = 2, layers = 3, heads = 1, len = 2]: layer 1 uniform, the others one-hot.
  std::vector<float> maps(2 * 3 * 1 * 2 * 2, 0.0F);
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t l = 0; l < 3; ++l) {
      for (std::size_t i = 0; i < 2; ++i) {
        float* r = maps.data() + ((e * 3 + l) * 2 + i) * 2;
        r[0] = l == 1 ? 0.5F : 1.0F;
        r[1] = l == 1 ? 0.5F : 0.0F;
      }
    }
  }
  const AttentionLayer layer1 = AttentionLayer::fromLayers(maps, 3, 1, 1, 2);
  EXPECT_EQ(layer1.examples, 2U);
  EXPECT_NEAR(attentionEntropy(layer1, {2, 2})[0], kLn2, 1e-15);
  EXPECT_EQ(attentionEntropy(AttentionLayer::fromLayers(maps, 3, 2, 1, 2), {2, 2})[0], 0.0);
  EXPECT_THROW((void)AttentionLayer::fromLayers(maps, 3, 3, 1, 2), std::invalid_argument);
}

} // namespace
} // namespace kdscope::core::analysis
