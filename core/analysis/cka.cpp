// Above 800 lines on purpose: linear, RBF and minibatch (unbiased HSIC) CKA share the
// centring, the threaded Gram products and the float64 accumulation they are checked against.
#include "core/analysis/cka.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/analysis/analysis_common.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KDSCOPE_ANALYSIS_X86_KERNELS 1
#endif

namespace kdscope::core::analysis {
namespace {

using detail::dot;
using detail::kNaN;
using detail::parallelTasks;
using detail::require;
using detail::resolveThreads;

// Blocking of the products. Tiles of kTile x kTile outputs; operands are converted, per
// tile, into row-major float64 rows of up to kKc depth (4 A rows + 3 B rows = 28 KiB stay in
// L1 during one register block); the register block is 4 x 3 dot products, 12 AVX
// accumulators. kTile is a multiple of both register edges so padded rows fill whole blocks.
constexpr std::size_t kMr = 4;
constexpr std::size_t kNr = 3;
constexpr std::size_t kKc = 512;
constexpr std::size_t kTile = 96;
static_assert(kTile % kMr == 0 && kTile % kNr == 0 && kKc % 4 == 0, "blocking must nest");

// ---------------------------------------------------------------------------------------
// Kernels, each with a portable version and an AVX2 + FMA version. The library builds for
// the baseline x86-64 ISA, so the AVX2 versions are compiled for that target alone and chosen
// at run time: a portable build stays portable and a current CPU runs several times faster.
// FMA rounds once per multiply-add, so results differ from the portable path in the last
// bits; on one machine they are reproducible.

/// dst[k] = src[k] - mean[k] in float64 for k < count.
using ConvertRow = void (*)(const float*, const double*, double*, std::size_t);
/// out[r * kNr + c] = dot(a + r * ld, b + c * ld) over depth (a multiple of 4), r < kMr, c < kNr.
using DotBlock = void (*)(std::size_t, const double*, const double*, std::size_t, double*);

void convertRowGeneric(const float* src, const double* mean, double* dst, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) {
    dst[k] = static_cast<double>(src[k]) - mean[k];
  }
}

void dotBlockGeneric(std::size_t depth, const double* a, const double* b, std::size_t ld, double* out) {
  double acc[kMr][kNr][4] = {};
  for (std::size_t k = 0; k < depth; k += 4) {
    for (std::size_t r = 0; r < kMr; ++r) {
      for (std::size_t c = 0; c < kNr; ++c) {
        for (std::size_t v = 0; v < 4; ++v) {
          acc[r][c][v] += a[r * ld + k + v] * b[c * ld + k + v];
        }
      }
    }
  }
  for (std::size_t r = 0; r < kMr; ++r) {
    for (std::size_t c = 0; c < kNr; ++c) {
      out[r * kNr + c] = (acc[r][c][0] + acc[r][c][1]) + (acc[r][c][2] + acc[r][c][3]);
    }
  }
}

#ifdef KDSCOPE_ANALYSIS_X86_KERNELS
__attribute__((target("avx2,fma"))) void convertRowAvx2(const float* src, const double* mean, double* dst,
                                                        std::size_t count) {
  std::size_t k = 0;
  for (; k + 4 <= count; k += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(src + k));
    _mm256_storeu_pd(dst + k, _mm256_sub_pd(v, _mm256_loadu_pd(mean + k)));
  }
  for (; k < count; ++k) {
    dst[k] = static_cast<double>(src[k]) - mean[k];
  }
}

__attribute__((target("avx2,fma"))) inline double horizontalSum(__m256d v) {
  const __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
}

__attribute__((target("avx2,fma"))) void dotBlockAvx2(std::size_t depth, const double* a, const double* b,
                                                      std::size_t ld, double* out) {
  const double* a0 = a;
  const double* a1 = a + ld;
  const double* a2 = a + 2 * ld;
  const double* a3 = a + 3 * ld;
  const double* b0 = b;
  const double* b1 = b + ld;
  const double* b2 = b + 2 * ld;
  __m256d c00 = _mm256_setzero_pd();
  __m256d c01 = _mm256_setzero_pd();
  __m256d c02 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd();
  __m256d c11 = _mm256_setzero_pd();
  __m256d c12 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd();
  __m256d c21 = _mm256_setzero_pd();
  __m256d c22 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd();
  __m256d c31 = _mm256_setzero_pd();
  __m256d c32 = _mm256_setzero_pd();
  for (std::size_t k = 0; k < depth; k += 4) {
    const __m256d vb0 = _mm256_loadu_pd(b0 + k);
    const __m256d vb1 = _mm256_loadu_pd(b1 + k);
    const __m256d vb2 = _mm256_loadu_pd(b2 + k);
    __m256d va = _mm256_loadu_pd(a0 + k);
    c00 = _mm256_fmadd_pd(va, vb0, c00);
    c01 = _mm256_fmadd_pd(va, vb1, c01);
    c02 = _mm256_fmadd_pd(va, vb2, c02);
    va = _mm256_loadu_pd(a1 + k);
    c10 = _mm256_fmadd_pd(va, vb0, c10);
    c11 = _mm256_fmadd_pd(va, vb1, c11);
    c12 = _mm256_fmadd_pd(va, vb2, c12);
    va = _mm256_loadu_pd(a2 + k);
    c20 = _mm256_fmadd_pd(va, vb0, c20);
    c21 = _mm256_fmadd_pd(va, vb1, c21);
    c22 = _mm256_fmadd_pd(va, vb2, c22);
    va = _mm256_loadu_pd(a3 + k);
    c30 = _mm256_fmadd_pd(va, vb0, c30);
    c31 = _mm256_fmadd_pd(va, vb1, c31);
    c32 = _mm256_fmadd_pd(va, vb2, c32);
  }
  out[0] = horizontalSum(c00);
  out[1] = horizontalSum(c01);
  out[2] = horizontalSum(c02);
  out[3] = horizontalSum(c10);
  out[4] = horizontalSum(c11);
  out[5] = horizontalSum(c12);
  out[6] = horizontalSum(c20);
  out[7] = horizontalSum(c21);
  out[8] = horizontalSum(c22);
  out[9] = horizontalSum(c30);
  out[10] = horizontalSum(c31);
  out[11] = horizontalSum(c32);
}
#endif

struct Kernels {
  ConvertRow convertRow = convertRowGeneric;
  DotBlock dotBlock = dotBlockGeneric;
};

/// The kernels for this CPU (chosen once), or the portable ones on request.
const Kernels& kernelsFor(bool portable) {
#ifdef KDSCOPE_ANALYSIS_X86_KERNELS
  return detail::pickKernels(portable, Kernels{convertRowAvx2, dotBlockAvx2});
#else
  return detail::pickKernels(portable, Kernels{});
#endif
}

// ---------------------------------------------------------------------------------------
// Centred operands. Nothing is centred into a full copy: the column means are computed once
// per representation, and the subtraction happens while a tile is converted to float64, so
// memory stays at a few tiles per thread even for 26 layers of 4000 x 768.

/// Element (r, k) = data[r * rowStride + k] - mean[k]: rows are examples, depth is features.
/// The operand of Gram matrices X X^T.
struct ExampleRows {
  const float* data = nullptr;
  std::size_t rowStride = 0;
  const double* mean = nullptr;
  std::size_t rows = 0;
  std::size_t depth = 0;

  /// Writes rows [r0, r0 + m) x depth [k0, k0 + kc) to out (row r at out + r * ld).
  void load(std::size_t r0, std::size_t m, std::size_t k0, std::size_t kc, double* out, std::size_t ld,
            ConvertRow convert) const {
    for (std::size_t r = 0; r < m; ++r) {
      convert(data + (r0 + r) * rowStride + k0, mean + k0, out + r * ld, kc);
    }
  }
};

/// Element (r, k) = data[k * rowStride + r] - mean[r]: rows are features, depth is
/// examples. The operand of feature-space products X^T Y.
struct FeatureRows {
  const float* data = nullptr;
  std::size_t rowStride = 0; ///< distance between consecutive examples
  const double* mean = nullptr;
  std::size_t rows = 0;
  std::size_t depth = 0;

  void load(std::size_t r0, std::size_t m, std::size_t k0, std::size_t kc, double* out, std::size_t ld,
            ConvertRow /*convert*/) const {
    // A transpose: read each example's features contiguously, write down the columns.
    for (std::size_t k = 0; k < kc; ++k) {
      const float* src = data + (k0 + k) * rowStride + r0;
      for (std::size_t r = 0; r < m; ++r) {
        out[r * ld + k] = static_cast<double>(src[r]) - mean[r0 + r];
      }
    }
  }
};

/// Scratch of one worker: the kernels in use and the two converted operand tiles.
struct Workspace {
  explicit Workspace(const Kernels& chosen) : kernels(&chosen) {}
  const Kernels* kernels;
  std::vector<double> a = std::vector<double>(kTile * kKc);
  std::vector<double> b = std::vector<double>(kTile * kKc);
};

/// Zeroes what load() left unwritten in a kTile x ld buffer: columns [kc, ld) of rows < m
/// (the depth padding up to a multiple of 4) and whole rows [m, rowsPadded).
void zeroPadding(double* buf, std::size_t m, std::size_t rowsPadded, std::size_t kc, std::size_t ld) {
  for (std::size_t r = 0; r < m; ++r) {
    std::fill(buf + r * ld + kc, buf + r * ld + ld, 0.0);
  }
  std::fill(buf + m * ld, buf + rowsPadded * ld, 0.0);
}

/// c (m x n, row-major, leading dimension n) = A[i0 .. i0+m) B[j0 .. j0+n)^T over the
/// operands' common depth; m, n <= kTile. With sameOperand (A and B the same rows) the
/// tile is converted once.
template <class SrcA, class SrcB>
void productTile(const SrcA& a, std::size_t i0, std::size_t m, const SrcB& b, std::size_t j0, std::size_t n,
                 double* c, Workspace& ws, bool sameOperand = false) {
  std::fill(c, c + m * n, 0.0);
  const std::size_t depth = a.depth;
  const std::size_t mPadded = (m + kMr - 1) / kMr * kMr;
  const std::size_t nPadded = (n + kNr - 1) / kNr * kNr;
  const DotBlock dotBlock = ws.kernels->dotBlock;
  const ConvertRow convert = ws.kernels->convertRow;
  double block[kMr * kNr];
  for (std::size_t k0 = 0; k0 < depth; k0 += kKc) {
    const std::size_t kc = std::min(kKc, depth - k0);
    const std::size_t ld = (kc + 3) / 4 * 4;
    a.load(i0, m, k0, kc, ws.a.data(), ld, convert);
    zeroPadding(ws.a.data(), m, mPadded, kc, ld);
    const double* bRows = ws.a.data();
    if (!sameOperand) {
      b.load(j0, n, k0, kc, ws.b.data(), ld, convert);
      zeroPadding(ws.b.data(), n, nPadded, kc, ld);
      bRows = ws.b.data();
    } else if (nPadded > mPadded) {
      std::fill(ws.a.data() + mPadded * ld, ws.a.data() + nPadded * ld, 0.0);
    }
    for (std::size_t ib = 0; ib < m; ib += kMr) {
      const std::size_t mc = std::min(kMr, m - ib);
      for (std::size_t jb = 0; jb < n; jb += kNr) {
        const std::size_t nc = std::min(kNr, n - jb);
        dotBlock(ld, ws.a.data() + ib * ld, bRows + jb * ld, ld, block);
        for (std::size_t r = 0; r < mc; ++r) {
          double* dst = c + (ib + r) * n + jb;
          for (std::size_t col = 0; col < nc; ++col) {
            dst[col] += block[r * kNr + col];
          }
        }
      }
    }
  }
}

std::size_t tilesFor(std::size_t n) { return (n + kTile - 1) / kTile; }

/// Column means (float64) of the rows x width block whose row r starts at data + r * rowStride.
std::vector<double> columnMeans(const float* data, std::size_t rows, std::size_t width, std::size_t rowStride) {
  std::vector<double> mean(width, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = data + r * rowStride;
    for (std::size_t k = 0; k < width; ++k) {
      mean[k] += row[k];
    }
  }
  if (rows > 0) {
    for (double& m : mean) {
      m /= static_cast<double>(rows);
    }
  }
  return mean;
}

/// One representation: rows of `width` floats, `rowStride` apart, with its column means.
struct Representation {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t width = 0;
  std::size_t rowStride = 0;
  std::vector<double> mean;

  [[nodiscard]] ExampleRows asExampleRows() const { return {data, rowStride, mean.data(), rows, width}; }
  [[nodiscard]] FeatureRows asFeatureRows() const { return {data, rowStride, mean.data(), width, rows}; }
};

/// The sums CKA needs for every teacher/student pair: cross(t, s) = ||Y_s^T X_t||_F^2 and
/// selfT[t] = ||X_t^T X_t||_F^2, selfS[s] = ||Y_s^T Y_s||_F^2 (squared norms).
struct CkaSums {
  Matrix cross;
  std::vector<double> selfT;
  std::vector<double> selfS;
};

/// Gram path: cross(t, s) = <K_t, L_s>_F and self = ||K||_F^2, K = X X^T centred. The n x n
/// Grams are never stored: a task owns one row of tiles I and walks the tiles J >= I; per tile
/// every layer's Gram tile is computed once and then paired with all the others. Off-diagonal
/// tiles count twice (symmetry). Each task's sums go into its own slot and the slots are
/// added in task order, so the result does not depend on the number of threads.
CkaSums gramSums(const std::vector<Representation>& teacher, const std::vector<Representation>& student,
                 std::size_t n, std::size_t threads, const Kernels& chosen) {
  const std::size_t nT = teacher.size();
  const std::size_t nS = student.size();
  const std::size_t layers = nT + nS;
  std::vector<ExampleRows> ops;
  ops.reserve(layers);
  for (const Representation& r : teacher) {
    ops.push_back(r.asExampleRows());
  }
  for (const Representation& r : student) {
    ops.push_back(r.asExampleRows());
  }
  const std::size_t tiles = tilesFor(n);
  const std::size_t slotSize = nT * nS + layers;
  std::vector<double> slots(tiles * slotSize, 0.0);
  const std::size_t workers = std::min(threads, tiles);
  std::vector<Workspace> spaces(std::max<std::size_t>(1, workers), Workspace(chosen));
  std::vector<std::vector<double>> tileStore(spaces.size(), std::vector<double>(layers * kTile * kTile));

  parallelTasks(tiles, workers, [&](std::size_t bi, std::size_t worker) {
    Workspace& ws = spaces[worker];
    double* store = tileStore[worker].data();
    double* slot = slots.data() + bi * slotSize;
    const std::size_t i0 = bi * kTile;
    const std::size_t m = std::min(kTile, n - i0);
    for (std::size_t bj = bi; bj < tiles; ++bj) {
      const std::size_t j0 = bj * kTile;
      const std::size_t nc = std::min(kTile, n - j0);
      const std::size_t cells = m * nc;
      const double weight = bi == bj ? 1.0 : 2.0;
      for (std::size_t l = 0; l < layers; ++l) {
        productTile(ops[l], i0, m, ops[l], j0, nc, store + l * kTile * kTile, ws, bi == bj);
      }
      for (std::size_t t = 0; t < nT; ++t) {
        const double* kt = store + t * kTile * kTile;
        for (std::size_t s = 0; s < nS; ++s) {
          slot[t * nS + s] += weight * dot(kt, store + (nT + s) * kTile * kTile, cells);
        }
      }
      for (std::size_t l = 0; l < layers; ++l) {
        const double* kl = store + l * kTile * kTile;
        slot[nT * nS + l] += weight * dot(kl, kl, cells);
      }
    }
  });

  CkaSums sums{Matrix(nT, nS, 0.0), std::vector<double>(nT, 0.0), std::vector<double>(nS, 0.0)};
  for (std::size_t bi = 0; bi < tiles; ++bi) {
    const double* slot = slots.data() + bi * slotSize;
    for (std::size_t k = 0; k < nT * nS; ++k) {
      sums.cross.values[k] += slot[k];
    }
    for (std::size_t t = 0; t < nT; ++t) {
      sums.selfT[t] += slot[nT * nS + t];
    }
    for (std::size_t s = 0; s < nS; ++s) {
      sums.selfS[s] += slot[nT * nS + nT + s];
    }
  }
  return sums;
}

/// ||A^T B||_F^2 in feature space for A (n x p) and B (n x q): tiles of the p x q product,
/// depth n; a task owns a row of tiles. When A and B are the same representation only the
/// tiles J >= I are computed and off-diagonal ones count twice.
double featureProductNorm(const Representation& a, const Representation& b, bool same, std::size_t threads,
                          const Kernels& chosen) {
  const FeatureRows opA = a.asFeatureRows();
  const FeatureRows opB = b.asFeatureRows();
  const std::size_t tilesA = tilesFor(opA.rows);
  const std::size_t tilesB = tilesFor(opB.rows);
  std::vector<double> slots(tilesA, 0.0);
  const std::size_t workers = std::min(threads, tilesA);
  std::vector<Workspace> spaces(std::max<std::size_t>(1, workers), Workspace(chosen));
  std::vector<std::vector<double>> tileStore(spaces.size(), std::vector<double>(kTile * kTile));
  parallelTasks(tilesA, workers, [&](std::size_t bi, std::size_t worker) {
    const std::size_t i0 = bi * kTile;
    const std::size_t m = std::min(kTile, opA.rows - i0);
    double* tile = tileStore[worker].data();
    for (std::size_t bj = same ? bi : 0; bj < tilesB; ++bj) {
      const std::size_t j0 = bj * kTile;
      const std::size_t nc = std::min(kTile, opB.rows - j0);
      productTile(opA, i0, m, opB, j0, nc, tile, spaces[worker], same && bi == bj);
      const double weight = same && bi != bj ? 2.0 : 1.0;
      slots[bi] += weight * dot(tile, tile, m * nc);
    }
  });
  double total = 0.0;
  for (double s : slots) {
    total += s;
  }
  return total;
}

CkaSums featureSums(const std::vector<Representation>& teacher, const std::vector<Representation>& student,
                    std::size_t threads, const Kernels& chosen) {
  CkaSums sums{Matrix(teacher.size(), student.size(), 0.0), {}, {}};
  for (const Representation& r : teacher) {
    sums.selfT.push_back(featureProductNorm(r, r, true, threads, chosen));
  }
  for (const Representation& r : student) {
    sums.selfS.push_back(featureProductNorm(r, r, true, threads, chosen));
  }
  for (std::size_t t = 0; t < teacher.size(); ++t) {
    for (std::size_t s = 0; s < student.size(); ++s) {
      sums.cross(t, s) = featureProductNorm(teacher[t], student[s], false, threads, chosen);
    }
  }
  return sums;
}

/// Chooses the path by multiply-add count: Gram tiles cost n^2 / 2 per unit of width plus
/// n^2 / 2 per pair; feature products cost n w^2 / 2 per layer and n w_t w_s per pair.
CkaMethod chooseMethod(const std::vector<Representation>& teacher, const std::vector<Representation>& student,
                       std::size_t n) {
  const auto nd = static_cast<double>(n);
  double widthSum = 0.0;
  double selfFeature = 0.0;
  for (const auto* side : {&teacher, &student}) {
    for (const Representation& r : *side) {
      const auto w = static_cast<double>(r.width);
      widthSum += w;
      selfFeature += w * w / 2.0;
    }
  }
  double crossFeature = 0.0;
  for (const Representation& t : teacher) {
    for (const Representation& s : student) {
      crossFeature += static_cast<double>(t.width) * static_cast<double>(s.width);
    }
  }
  const double pairs = static_cast<double>(teacher.size() * student.size());
  const double gramCost = nd * nd / 2.0 * (widthSum + pairs);
  const double featureCost = nd * (selfFeature + crossFeature);
  return gramCost <= featureCost ? CkaMethod::Gram : CkaMethod::Features;
}

double ckaFromSums(double cross, double selfX, double selfY) {
  const double denominator = std::sqrt(selfX) * std::sqrt(selfY);
  if (!(denominator > 0.0) || !std::isfinite(denominator)) {
    return kNaN; // a constant side: CKA is undefined, not 0
  }
  return cross / denominator;
}

CkaSums computeSums(const std::vector<Representation>& teacher, const std::vector<Representation>& student,
                    std::size_t n, const CkaOptions& options) {
  const std::size_t threads = resolveThreads(options.threads);
  CkaMethod method = options.method;
  if (method == CkaMethod::Automatic) {
    method = chooseMethod(teacher, student, n);
  }
  const Kernels& chosen = kernelsFor(options.portableKernels);
  return method == CkaMethod::Gram ? gramSums(teacher, student, n, threads, chosen)
                                   : featureSums(teacher, student, threads, chosen);
}

std::size_t rowsOf(const std::vector<float>& data, std::size_t width, const char* function, const char* name) {
  require(width > 0, function, std::string(name) + " width must be positive");
  require(data.size() % width == 0, function,
          std::string(name) + " size " + std::to_string(data.size()) + " is not a multiple of its width " +
              std::to_string(width));
  return data.size() / width;
}

Representation plainRepresentation(const std::vector<float>& data, std::size_t rows, std::size_t width) {
  Representation r;
  r.data = data.data();
  r.rows = rows;
  r.width = width;
  r.rowStride = width;
  r.mean = columnMeans(r.data, rows, width, width);
  return r;
}

/// The full centred Gram matrix rows x rows of one operand (tiles J >= I, mirrored).
std::vector<double> fullGram(const ExampleRows& op, std::size_t threads, const Kernels& chosen) {
  const std::size_t n = op.rows;
  const std::size_t tiles = tilesFor(n);
  std::vector<double> gram(n * n, 0.0);
  const std::size_t workers = std::min(threads, tiles);
  std::vector<Workspace> spaces(std::max<std::size_t>(1, workers), Workspace(chosen));
  std::vector<std::vector<double>> tileStore(spaces.size(), std::vector<double>(kTile * kTile));
  parallelTasks(tiles, workers, [&](std::size_t bi, std::size_t worker) {
    const std::size_t i0 = bi * kTile;
    const std::size_t m = std::min(kTile, n - i0);
    double* tile = tileStore[worker].data();
    for (std::size_t bj = bi; bj < tiles; ++bj) {
      const std::size_t j0 = bj * kTile;
      const std::size_t nc = std::min(kTile, n - j0);
      productTile(op, i0, m, op, j0, nc, tile, spaces[worker], bi == bj);
      for (std::size_t r = 0; r < m; ++r) {
        for (std::size_t c = 0; c < nc; ++c) {
          gram[(i0 + r) * n + j0 + c] = tile[r * nc + c];
          gram[(j0 + c) * n + i0 + r] = tile[r * nc + c];
        }
      }
    }
  });
  return gram;
}

/// Median of the pairwise distances i < j from a centred Gram matrix (d^2 = K_ii + K_jj - 2 K_ij,
/// clamped at 0 against rounding).
double medianDistance(const std::vector<double>& gram, std::size_t n) {
  std::vector<double> d;
  d.reserve(n * (n - 1) / 2);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      d.push_back(std::sqrt(std::max(0.0, gram[i * n + i] + gram[j * n + j] - 2.0 * gram[i * n + j])));
    }
  }
  const std::size_t half = d.size() / 2;
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(half), d.end());
  const double upper = d[half];
  if (d.size() % 2 == 1) {
    return upper;
  }
  const double lower = *std::max_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(half));
  return (lower + upper) / 2.0;
}

/// Turns a centred linear Gram matrix into the double-centred RBF kernel H K H in place.
void rbfCentredKernel(std::vector<double>& gram, std::size_t n, double sigma) {
  std::vector<double> diag(n);
  for (std::size_t i = 0; i < n; ++i) {
    diag[i] = gram[i * n + i];
  }
  const double scale = 1.0 / (2.0 * sigma * sigma);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double d2 = std::max(0.0, diag[i] + diag[j] - 2.0 * gram[i * n + j]);
      gram[i * n + j] = std::exp(-d2 * scale);
    }
  }
  std::vector<double> rowMean(n, 0.0);
  double grand = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
      s += gram[i * n + j];
    }
    rowMean[i] = s / static_cast<double>(n);
    grand += s;
  }
  grand /= static_cast<double>(n) * static_cast<double>(n);
  // K is symmetric, so column means equal row means.
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      gram[i * n + j] += grand - rowMean[i] - rowMean[j];
    }
  }
}

/// The layers of a [n, layers, width] array as strided representations over its first
/// `rows` examples; column means over those rows.
std::vector<Representation> stridedLayers(const std::vector<float>& hidden, std::size_t rows, std::size_t layers,
                                          std::size_t width) {
  std::vector<Representation> out(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    Representation& r = out[l];
    r.data = hidden.data() + l * width;
    r.rows = rows;
    r.width = width;
    r.rowStride = layers * width;
    r.mean = columnMeans(r.data, rows, width, r.rowStride);
  }
  return out;
}

} // namespace

double linearCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q,
                 const CkaOptions& options) {
  const std::size_t n = rowsOf(x, p, "linearCka", "x");
  require(rowsOf(y, q, "linearCka", "y") == n, "linearCka", "x and y have different numbers of rows");
  if (n < 2) {
    return kNaN;
  }
  const std::vector<Representation> teacher{plainRepresentation(x, n, p)};
  const std::vector<Representation> student{plainRepresentation(y, n, q)};
  const CkaSums sums = computeSums(teacher, student, n, options);
  return ckaFromSums(sums.cross(0, 0), sums.selfT[0], sums.selfS[0]);
}

Matrix ckaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                 const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                 const CkaOptions& options) {
  require(layersT > 0 && layersS > 0, "ckaMatrix", "layer counts must be positive");
  const std::size_t n = rowsOf(hiddenT, layersT * widthT, "ckaMatrix", "teacher hidden");
  require(rowsOf(hiddenS, layersS * widthS, "ckaMatrix", "student hidden") == n, "ckaMatrix",
          "teacher and student hidden states have different numbers of examples");
  if (n < 2) {
    return Matrix(layersT, layersS, kNaN);
  }
  const std::vector<Representation> teacher = stridedLayers(hiddenT, n, layersT, widthT);
  const std::vector<Representation> student = stridedLayers(hiddenS, n, layersS, widthS);
  const CkaSums sums = computeSums(teacher, student, n, options);
  Matrix out(layersT, layersS);
  for (std::size_t t = 0; t < layersT; ++t) {
    for (std::size_t s = 0; s < layersS; ++s) {
      out(t, s) = ckaFromSums(sums.cross(t, s), sums.selfT[t], sums.selfS[s]);
    }
  }
  return out;
}

double rbfCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q,
              double sigmaFraction) {
  const std::size_t n = rowsOf(x, p, "rbfCka", "x");
  require(rowsOf(y, q, "rbfCka", "y") == n, "rbfCka", "x and y have different numbers of rows");
  require(sigmaFraction > 0.0 && std::isfinite(sigmaFraction), "rbfCka", "sigmaFraction must be positive");
  if (n < 2) {
    return kNaN;
  }
  const std::size_t threads = resolveThreads(0);
  const Representation rx = plainRepresentation(x, n, p);
  const Representation ry = plainRepresentation(y, n, q);
  // Distances come from centred linear Grams (centring does not change distances and keeps
  // the ||a||^2 + ||b||^2 - 2 a.b form free of large common offsets).
  const Kernels& chosen = kernelsFor(false);
  std::vector<double> k = fullGram(rx.asExampleRows(), threads, chosen);
  std::vector<double> l = fullGram(ry.asExampleRows(), threads, chosen);
  const double sigmaX = sigmaFraction * medianDistance(k, n);
  const double sigmaY = sigmaFraction * medianDistance(l, n);
  if (!(sigmaX > 0.0) || !(sigmaY > 0.0)) {
    return kNaN;
  }
  rbfCentredKernel(k, n, sigmaX);
  rbfCentredKernel(l, n, sigmaY);
  return ckaFromSums(dot(k.data(), l.data(), n * n), dot(k.data(), k.data(), n * n), dot(l.data(), l.data(), n * n));
}

double unbiasedHsic(const std::vector<double>& k, const std::vector<double>& l, std::size_t n) {
  require(n >= 4, "unbiasedHsic", "needs at least 4 examples");
  require(k.size() == n * n && l.size() == n * n, "unbiasedHsic", "kernel matrices must be n x n");
  // With K~, L~ the kernels with zeroed diagonals: tr(K~ L~) = sum_{i != j} K_ij L_ji, and
  // 1'K~L~1 = sum_j (column sum j of K~) (row sum j of L~).
  double trace = 0.0;
  double sumK = 0.0;
  double sumL = 0.0;
  std::vector<double> colK(n, 0.0);
  std::vector<double> rowL(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) {
        continue;
      }
      const double kij = k[i * n + j];
      const double lij = l[i * n + j];
      trace += kij * l[j * n + i];
      sumK += kij;
      sumL += lij;
      colK[j] += kij;
      rowL[i] += lij;
    }
  }
  double middle = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    middle += colK[j] * rowL[j];
  }
  const auto nd = static_cast<double>(n);
  return (trace + sumK * sumL / ((nd - 1.0) * (nd - 2.0)) - 2.0 / (nd - 2.0) * middle) / (nd * (nd - 3.0));
}

double minibatchCka(const std::vector<float>& x, std::size_t p, const std::vector<float>& y, std::size_t q,
                    std::size_t batchSize, const CkaOptions& options) {
  const std::size_t n = rowsOf(x, p, "minibatchCka", "x");
  require(rowsOf(y, q, "minibatchCka", "y") == n, "minibatchCka", "x and y have different numbers of rows");
  require(batchSize >= 4, "minibatchCka", "batchSize must be at least 4 (unbiased HSIC needs n >= 4)");
  require(batchSize <= n, "minibatchCka", "batchSize exceeds the number of examples");
  const Representation rx = plainRepresentation(x, n, p);
  const Representation ry = plainRepresentation(y, n, q);
  const std::size_t batches = n / batchSize;
  std::vector<double> hsic(batches * 3, 0.0);
  const Kernels& chosen = kernelsFor(options.portableKernels);
  // One batch per task, each Gram computed by its worker alone; the per-batch HSICs are
  // averaged in batch order, so the thread count does not change the result.
  parallelTasks(batches, resolveThreads(options.threads), [&](std::size_t b, std::size_t /*worker*/) {
    ExampleRows opX = rx.asExampleRows();
    opX.data += b * batchSize * opX.rowStride;
    opX.rows = batchSize;
    ExampleRows opY = ry.asExampleRows();
    opY.data += b * batchSize * opY.rowStride;
    opY.rows = batchSize;
    const std::vector<double> k = fullGram(opX, 1, chosen);
    const std::vector<double> l = fullGram(opY, 1, chosen);
    hsic[b * 3 + 0] = unbiasedHsic(k, l, batchSize);
    hsic[b * 3 + 1] = unbiasedHsic(k, k, batchSize);
    hsic[b * 3 + 2] = unbiasedHsic(l, l, batchSize);
  });
  double xy = 0.0;
  double xx = 0.0;
  double yy = 0.0;
  for (std::size_t b = 0; b < batches; ++b) {
    xy += hsic[b * 3 + 0];
    xx += hsic[b * 3 + 1];
    yy += hsic[b * 3 + 2];
  }
  const auto count = static_cast<double>(batches);
  const double selfProduct = (xx / count) * (yy / count);
  if (!(selfProduct > 0.0) || !std::isfinite(selfProduct)) {
    return kNaN;
  }
  return (xy / count) / std::sqrt(selfProduct);
}

// ---------------------------------------------------------------------------------------
// Layer matrices of the optional CKA forms (RBF, minibatch). Each layer's kernel is built
// once and paired with every layer of the other model, as ckaMatrix does for linear CKA.

namespace {

/// The double-centred RBF kernel of one representation (n x n), or empty when the median
/// distance is 0 (every row equal: RBF CKA undefined).
std::vector<double> centredRbfKernel(const Representation& r, double sigmaFraction, std::size_t threads,
                                     const Kernels& chosen) {
  std::vector<double> k = fullGram(r.asExampleRows(), threads, chosen);
  const double sigma = sigmaFraction * medianDistance(k, r.rows);
  if (!(sigma > 0.0) || !std::isfinite(sigma)) {
    return {};
  }
  rbfCentredKernel(k, r.rows, sigma);
  return k;
}

} // namespace

Matrix rbfCkaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                    const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                    double sigmaFraction, std::size_t maxExamples, const CkaOptions& options) {
  require(layersT > 0 && layersS > 0, "rbfCkaMatrix", "layer counts must be positive");
  require(sigmaFraction > 0.0 && std::isfinite(sigmaFraction), "rbfCkaMatrix", "sigmaFraction must be positive");
  const std::size_t all = rowsOf(hiddenT, layersT * widthT, "rbfCkaMatrix", "teacher hidden");
  require(rowsOf(hiddenS, layersS * widthS, "rbfCkaMatrix", "student hidden") == all, "rbfCkaMatrix",
          "teacher and student hidden states have different numbers of examples");
  const std::size_t n = maxExamples > 0 ? std::min(all, maxExamples) : all;
  Matrix out(layersT, layersS, kNaN);
  if (n < 2) {
    return out;
  }
  const std::size_t threads = resolveThreads(options.threads);
  const Kernels& chosen = kernelsFor(options.portableKernels);
  const std::vector<Representation> teacher = stridedLayers(hiddenT, n, layersT, widthT);
  const std::vector<Representation> student = stridedLayers(hiddenS, n, layersS, widthS);
  // The teacher's kernels are kept (layersT n x n matrices); the student's are built one at a
  // time.
  std::vector<std::vector<double>> kernelsT(layersT);
  std::vector<double> selfT(layersT, kNaN);
  for (std::size_t t = 0; t < layersT; ++t) {
    kernelsT[t] = centredRbfKernel(teacher[t], sigmaFraction, threads, chosen);
    if (!kernelsT[t].empty()) {
      selfT[t] = dot(kernelsT[t].data(), kernelsT[t].data(), n * n);
    }
  }
  for (std::size_t s = 0; s < layersS; ++s) {
    const std::vector<double> l = centredRbfKernel(student[s], sigmaFraction, threads, chosen);
    if (l.empty()) {
      continue;
    }
    const double selfS = dot(l.data(), l.data(), n * n);
    for (std::size_t t = 0; t < layersT; ++t) {
      if (!kernelsT[t].empty()) {
        out(t, s) = ckaFromSums(dot(kernelsT[t].data(), l.data(), n * n), selfT[t], selfS);
      }
    }
  }
  return out;
}

Matrix minibatchCkaMatrix(const std::vector<float>& hiddenT, std::size_t layersT, std::size_t widthT,
                          const std::vector<float>& hiddenS, std::size_t layersS, std::size_t widthS,
                          std::size_t batchSize, const CkaOptions& options) {
  require(layersT > 0 && layersS > 0, "minibatchCkaMatrix", "layer counts must be positive");
  const std::size_t n = rowsOf(hiddenT, layersT * widthT, "minibatchCkaMatrix", "teacher hidden");
  require(rowsOf(hiddenS, layersS * widthS, "minibatchCkaMatrix", "student hidden") == n, "minibatchCkaMatrix",
          "teacher and student hidden states have different numbers of examples");
  require(batchSize >= 4, "minibatchCkaMatrix", "batchSize must be at least 4 (unbiased HSIC needs n >= 4)");
  require(batchSize <= n, "minibatchCkaMatrix", "batchSize exceeds the number of examples");
  // Column means over all n rows, as minibatchCka centres (HSIC_1 is shift-invariant).
  const std::vector<Representation> teacher = stridedLayers(hiddenT, n, layersT, widthT);
  const std::vector<Representation> student = stridedLayers(hiddenS, n, layersS, widthS);
  const std::size_t batches = n / batchSize;
  const Kernels& chosen = kernelsFor(options.portableKernels);
  // Per batch: HSIC_1 of every pair and of every layer with itself.
  const std::size_t perBatch = layersT * layersS + layersT + layersS;
  std::vector<double> hsic(batches * perBatch, 0.0);
  parallelTasks(batches, resolveThreads(options.threads), [&](std::size_t b, std::size_t /*worker*/) {
    auto gramOf = [&](const Representation& r) {
      ExampleRows op = r.asExampleRows();
      op.data += b * batchSize * op.rowStride;
      op.rows = batchSize;
      return fullGram(op, 1, chosen);
    };
    std::vector<std::vector<double>> gramsT(layersT);
    for (std::size_t t = 0; t < layersT; ++t) {
      gramsT[t] = gramOf(teacher[t]);
    }
    double* slot = hsic.data() + b * perBatch;
    for (std::size_t t = 0; t < layersT; ++t) {
      slot[layersT * layersS + t] = unbiasedHsic(gramsT[t], gramsT[t], batchSize);
    }
    for (std::size_t s = 0; s < layersS; ++s) {
      const std::vector<double> l = gramOf(student[s]);
      slot[layersT * layersS + layersT + s] = unbiasedHsic(l, l, batchSize);
      for (std::size_t t = 0; t < layersT; ++t) {
        slot[t * layersS + s] = unbiasedHsic(gramsT[t], l, batchSize);
      }
    }
  });
  // Means over batches in batch order: the thread count does not change the result.
  std::vector<double> mean(perBatch, 0.0);
  for (std::size_t b = 0; b < batches; ++b) {
    for (std::size_t i = 0; i < perBatch; ++i) {
      mean[i] += hsic[b * perBatch + i];
    }
  }
  const auto count = static_cast<double>(batches);
  for (double& m : mean) {
    m /= count;
  }
  Matrix out(layersT, layersS, kNaN);
  for (std::size_t t = 0; t < layersT; ++t) {
    for (std::size_t s = 0; s < layersS; ++s) {
      const double selfProduct = mean[layersT * layersS + t] * mean[layersT * layersS + layersT + s];
      if (selfProduct > 0.0 && std::isfinite(selfProduct)) {
        out(t, s) = mean[t * layersS + s] / std::sqrt(selfProduct);
      }
    }
  }
  return out;
}

} // namespace kdscope::core::analysis
