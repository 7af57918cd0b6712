#pragma once
/// Data augmentation of text examples for distillation (Distiller, TinyBERT, EDA): token
/// masking, random replacement, random swap and deletion, and the random draws mixup needs.
/// Plain data, no torch; deterministic: every draw comes from the caller's std::mt19937_64
/// through our own portable transforms (the standard distributions are implementation
/// defined). The student step applies it to each training batch (core/distill/student_step).

#include <cstdint>
#include <random>
#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::core {

/// Special token ids of every text task's vocabulary (core/data/tokenizer).
inline constexpr std::int64_t kPadId = 0;
inline constexpr std::int64_t kUnkId = 1;
inline constexpr std::int64_t kClsId = 2;
/// The first id of a real word.
inline constexpr std::int64_t kFirstWordId = 3;

/// Uniform in [0, 1) from the top 53 bits of one draw.
double uniform01(std::mt19937_64& rng);
/// Uniform integer in [0, n), n >= 1 (modulo; the bias is below n / 2^64).
std::uint64_t uniformIndex(std::mt19937_64& rng, std::uint64_t n);
/// Beta(a, b) by Johnk's method (exact for all a, b > 0; accepts often for a, b <= 1, which
/// is mixup's range), in log space so that tiny powers do not underflow.
double sampleBeta(double a, double b, std::mt19937_64& rng);
/// A uniformly random permutation of 0..n-1 (Fisher-Yates).
std::vector<std::int64_t> randomPermutation(std::int64_t n, std::mt19937_64& rng);

/// Applies the token operations of `spec` to one example in place. `tokens` holds `len` ids:
/// [CLS] first, the words, then padding. Only words change ([CLS] and padding keep their
/// places; [UNK] counts as a word).
/// In order, each with its own per-word probability:
///   deletion: drop the word; the rest shift left and the tail is re-padded; if every word
///             would go, one (chosen uniformly) stays;
///   swap:     exchange the word with a uniformly chosen word of the example (maybe itself);
///   replace:  a uniformly random vocabulary word, id in [kFirstWordId, vocabSize);
///   mask:     [UNK] (the vocabularies have no [MASK] token).
/// An operation with rate 0 draws nothing, so a spec of all zeros leaves the generator alone.
void augmentExample(std::int64_t* tokens, std::int64_t len, const AugmentationSpec& spec, std::int64_t vocabSize,
                    std::mt19937_64& rng);

/// augmentExample on each row of a row-major [rows, len] block; returns the augmented copy.
std::vector<std::int64_t> augmentTokens(const std::vector<std::int64_t>& tokens, std::int64_t rows,
                                        std::int64_t len, const AugmentationSpec& spec, std::int64_t vocabSize,
                                        std::mt19937_64& rng);

} // namespace kdscope::core
