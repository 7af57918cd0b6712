// synthetic_order: the built-in ground-truth sequence task for the head analyses
// (docs/data.md, "synthetic_order"). Declared in loaders.h beside the other generators.
#include <algorithm>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/data/loaders.h"
#include "core/data/rng.h"

namespace kdscope::core::loaders {

RawDataset generateSyntheticOrder(const TaskSpec& spec, std::uint64_t seed) {
  const std::string task = kSyntheticOrderTask;
  const auto bad = [&](const std::string& problem) { throw InputError("task '" + task + "': " + problem); };
  if (spec.examplesPerClass < 1) {
    bad("examples_per_class must be at least 1");
  }
  // Words per example, at most max_len - 1 (the tokenizer puts [CLS] first).
  const int maxWords = spec.maxLen - 1;
  if (maxWords < 2) {
    bad("max_len must be at least 3 (room for [CLS], the mark and its partner), got " + std::to_string(spec.maxLen));
  }
  const int minWords = std::max(2, maxWords / 2);
  Rng rng(deriveSeed(seed, "generate:synthetic_order"));
  RawDataset raw;
  raw.kind = TaskKind::Text;
  raw.classNames = {"partner_first", "mark_first"};
  const auto perClass = static_cast<std::size_t>(spec.examplesPerClass);
  raw.texts.reserve(2 * perClass);
  raw.labels.reserve(2 * perClass);
  // Interleaved labels (0, 1, 0, 1, ...) so a subsample of the raw set stays balanced.
  for (std::size_t n = 0; n < 2 * perClass; ++n) {
    const int label = static_cast<int>(n % 2);
    const int words = minWords + static_cast<int>(rng.uniformInt(static_cast<std::uint64_t>(maxWords - minWords + 1)));
    std::vector<std::string> text(static_cast<std::size_t>(words));
    for (std::string& w : text) {
      w = "f" + std::to_string(rng.uniformInt(kSyntheticOrderFillers));
    }
    // Two distinct positions p < q, uniform over the pairs.
    auto p = static_cast<std::size_t>(rng.uniformInt(static_cast<std::uint64_t>(words)));
    auto q = static_cast<std::size_t>(rng.uniformInt(static_cast<std::uint64_t>(words - 1)));
    q = q >= p ? q + 1 : q;
    if (q < p) {
      std::swap(p, q);
    }
    text[p] = label == 1 ? "mark" : "partner";
    text[q] = label == 1 ? "partner" : "mark";
    std::string joined;
    for (const std::string& w : text) {
      joined += (joined.empty() ? "" : " ") + w;
    }
    raw.texts.push_back(std::move(joined));
    raw.labels.push_back(label);
  }
  return raw;
}

} // namespace kdscope::core::loaders
