#include "core/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <utility>

#include "core/common/error.h"
#include "core/data/loaders.h"
#include "core/data/rng.h"
#include "core/data/task_source.h"
#include "core/data/tokenizer.h"
#include "core/data/wordpiece.h"

namespace kdscope::core {

namespace {

[[noreturn]] void throwTask(const std::string& task, const std::string& problem) {
  throw InputError("task '" + task + "': " + problem);
}

void validateRaw(const std::string& task, const RawDataset& raw) {
  const std::size_t n = raw.labels.size();
  if (raw.classNames.empty() || n == 0) {
    throwTask(task, "the data set has no classes or no examples");
  }
  if (raw.kind == TaskKind::Text && raw.texts.size() != n) {
    throwTask(task, std::to_string(raw.texts.size()) + " texts for " + std::to_string(n) + " labels");
  }
  if (raw.kind == TaskKind::Vector &&
      (raw.dim < 1 || raw.features.size() != n * static_cast<std::size_t>(raw.dim))) {
    throwTask(task, std::to_string(raw.features.size()) + " features for " + std::to_string(n) +
                        " examples of dimension " + std::to_string(raw.dim));
  }
  if (!raw.pairTexts.empty() && raw.pairTexts.size() != n) {
    throwTask(task, std::to_string(raw.pairTexts.size()) + " second texts for " + std::to_string(n) + " labels");
  }
  if (!raw.groups.empty() && raw.groups.size() != n) {
    throwTask(task, std::to_string(raw.groups.size()) + " groups for " + std::to_string(n) + " labels");
  }
  const auto numClasses = static_cast<std::int64_t>(raw.classNames.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (raw.labels[i] < 0 || raw.labels[i] >= numClasses) {
      throwTask(task, "example " + std::to_string(i) + " has label " + std::to_string(raw.labels[i]) +
                          ", outside 0.." + std::to_string(numClasses - 1));
    }
  }
}

/// Indices of `indices` grouped by class, each group in its given order.
std::vector<std::vector<std::int64_t>> byClass(const RawDataset& raw,
                                               const std::vector<std::int64_t>& indices) {
  std::vector<std::vector<std::int64_t>> groups(raw.classNames.size());
  for (const auto index : indices) {
    groups[static_cast<std::size_t>(raw.labels[static_cast<std::size_t>(index)])].push_back(index);
  }
  return groups;
}

/// A seeded subsample of `target` examples (indices in ascending order), stratified: each class keeps its
/// share by the largest-remainder method, and a class that would get none keeps one while
/// the target allows (taken from the largest quota), so rare classes do not vanish.
std::vector<std::int64_t> stratifiedSubsample(const RawDataset& raw, std::size_t target, Rng& rng) {
  const std::size_t total = raw.labels.size();
  std::vector<std::int64_t> all(total);
  for (std::size_t i = 0; i < total; ++i) {
    all[i] = static_cast<std::int64_t>(i);
  }
  auto groups = byClass(raw, all);
  const std::size_t numClasses = groups.size();
  std::vector<std::size_t> quota(numClasses, 0);
  std::vector<std::pair<double, std::size_t>> remainders; // (fraction, class)
  std::size_t assigned = 0;
  for (std::size_t c = 0; c < numClasses; ++c) {
    const double exact =
        static_cast<double>(target) * static_cast<double>(groups[c].size()) / static_cast<double>(total);
    quota[c] = static_cast<std::size_t>(std::floor(exact));
    assigned += quota[c];
    remainders.emplace_back(exact - std::floor(exact), c);
  }
  // Largest remainders first; ties to the lower class index, so the result is a total order.
  std::sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (std::size_t r = 0; assigned < target && r < remainders.size(); ++r) {
    const std::size_t c = remainders[r].second;
    if (quota[c] < groups[c].size()) {
      ++quota[c];
      ++assigned;
    }
  }
  for (std::size_t c = 0; c < numClasses; ++c) {
    if (quota[c] > 0 || groups[c].empty()) {
      continue;
    }
    const auto donor = static_cast<std::size_t>(std::max_element(quota.begin(), quota.end()) - quota.begin());
    if (quota[donor] <= 1) {
      break; // the target is smaller than the number of classes
    }
    --quota[donor];
    quota[c] = 1;
  }
  std::vector<std::int64_t> chosen;
  chosen.reserve(target);
  for (std::size_t c = 0; c < numClasses; ++c) {
    rng.shuffle(groups[c]);
    chosen.insert(chosen.end(), groups[c].begin(), groups[c].begin() + static_cast<std::ptrdiff_t>(quota[c]));
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

/// How a text task's examples become token ids (buildTask's doc comment).
class TextEncoder {
public:
  TextEncoder(const TaskSpec& spec, const RawDataset& raw, const std::vector<std::int64_t>& trainIndices)
      : m_raw(raw), m_seqLen(spec.maxLen) {
    if (!spec.vocab.empty()) {
      m_wordPiece = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::fromFile(spec.vocab, spec.lowerCase));
      const auto& pieces = m_wordPiece->vocab();
      const std::int64_t specials[3] = {m_wordPiece->padId(), m_wordPiece->unkId(), m_wordPiece->clsId()};
      m_remap.assign(pieces.size(), -1);
      for (const auto id : specials) {
        m_remap[static_cast<std::size_t>(id)] = static_cast<std::int64_t>(m_vocab.size());
        m_vocab.push_back(pieces[static_cast<std::size_t>(id)]);
      }
      for (std::size_t id = 0; id < pieces.size(); ++id) {
        if (m_remap[id] < 0) {
          m_remap[id] = static_cast<std::int64_t>(m_vocab.size());
          m_vocab.push_back(pieces[id]);
        }
      }
      return;
    }
    std::vector<std::string> trainTexts;
    trainTexts.reserve(trainIndices.size());
    for (const auto index : trainIndices) {
      trainTexts.push_back(joined(static_cast<std::size_t>(index)));
    }
    // Built from the train split only, so eval words the model never saw stay [UNK].
    m_word = std::make_unique<Tokenizer>(Tokenizer::build(trainTexts, spec.vocabSize, spec.minFreq));
    m_vocab = m_word->vocab();
  }

  [[nodiscard]] const std::vector<std::string>& vocab() const { return m_vocab; }

  /// The text shown for example i: the text, or "a\nb" for a pair.
  [[nodiscard]] std::string joined(std::size_t i) const {
    if (m_raw.pairTexts.empty()) {
      return m_raw.texts[i];
    }
    // The line break keeps the last word of a and the first of b apart.
    return m_raw.texts[i] + "\n" + m_raw.pairTexts[i];
  }

  [[nodiscard]] std::vector<std::int64_t> encode(std::size_t i) const {
    if (!m_wordPiece) {
      return m_word->encode(joined(i), m_seqLen);
    }
    WordPieceEncoding e = m_raw.pairTexts.empty() ? m_wordPiece->encode(m_raw.texts[i], m_seqLen)
                                                  : m_wordPiece->encodePair(m_raw.texts[i], m_raw.pairTexts[i], m_seqLen);
    for (auto& id : e.inputIds) {
      id = m_remap[static_cast<std::size_t>(id)];
    }
    return std::move(e.inputIds);
  }

private:
  const RawDataset& m_raw;
  int m_seqLen = 0;
  std::unique_ptr<Tokenizer> m_word;
  std::unique_ptr<WordPieceTokenizer> m_wordPiece;
  std::vector<std::int64_t> m_remap; ///< WordPiece id -> task id
  std::vector<std::string> m_vocab;
};

/// Fills one split with the examples `indices` of raw, in that order.
void fillSplit(const RawDataset& raw, const std::vector<std::int64_t>& indices, const TextEncoder* encoder,
               int seqLen, Split& split) {
  const std::size_t n = indices.size();
  const auto dim = static_cast<std::size_t>(raw.dim);
  split.labels.reserve(n);
  split.sourceIndex = indices;
  if (raw.kind == TaskKind::Text) {
    split.texts.reserve(n);
    split.tokens.reserve(n * static_cast<std::size_t>(seqLen));
  } else {
    split.features.reserve(n * dim);
  }
  if (!raw.groups.empty()) {
    split.groups.reserve(n);
  }
  if (raw.kind == TaskKind::Text && !raw.pairTexts.empty()) {
    split.pairTexts.reserve(n);
  }
  for (const auto index : indices) {
    const auto i = static_cast<std::size_t>(index);
    split.labels.push_back(raw.labels[i]);
    if (raw.kind == TaskKind::Text) {
      split.texts.push_back(encoder->joined(i));
      if (!raw.pairTexts.empty()) {
        split.pairTexts.push_back(raw.pairTexts[i]);
      }
      const auto ids = encoder->encode(i);
      split.tokens.insert(split.tokens.end(), ids.begin(), ids.end());
    } else {
      const auto row = raw.features.begin() + static_cast<std::ptrdiff_t>(i * dim);
      split.features.insert(split.features.end(), row, row + static_cast<std::ptrdiff_t>(dim));
    }
    if (!raw.groups.empty()) {
      split.groups.push_back(raw.groups[i]);
    }
  }
}

/// The task from its split: the tokenizer (text tasks) and both splits.
TaskData assemble(const TaskSpec& spec, const RawDataset& raw, const std::vector<std::int64_t>& trainIndices,
                  const std::vector<std::int64_t>& evalIndices) {
  TaskData data;
  data.name = spec.name;
  data.kind = raw.kind;
  data.classNames = raw.classNames;
  data.superClassOf = raw.superClassOf;
  if (raw.kind == TaskKind::Text) {
    const TextEncoder encoder(spec, raw, trainIndices);
    data.vocab = encoder.vocab();
    data.seqLen = spec.maxLen;
    fillSplit(raw, trainIndices, &encoder, spec.maxLen, data.train);
    fillSplit(raw, evalIndices, &encoder, spec.maxLen, data.eval);
  } else {
    data.dim = raw.dim;
    fillSplit(raw, trainIndices, nullptr, 0, data.train);
    fillSplit(raw, evalIndices, nullptr, 0, data.eval);
  }
  return data;
}

/// The data's own split (raw.inEval), put in a seeded order so that classes are mixed even
/// in a sorted file.
TaskData buildFixedSplit(const TaskSpec& spec, const RawDataset& raw, std::uint64_t seed) {
  if (raw.inEval.size() != raw.labels.size()) {
    throwTask(spec.name, std::to_string(raw.inEval.size()) + " split marks for " + std::to_string(raw.labels.size()) +
                             " labels");
  }
  std::vector<std::int64_t> trainIndices;
  std::vector<std::int64_t> evalIndices;
  for (std::size_t i = 0; i < raw.inEval.size(); ++i) {
    (raw.inEval[i] != 0 ? evalIndices : trainIndices).push_back(static_cast<std::int64_t>(i));
  }
  Rng splitRng(deriveSeed(seed, "split:" + spec.name));
  splitRng.shuffle(trainIndices);
  splitRng.shuffle(evalIndices);
  return assemble(spec, raw, trainIndices, evalIndices);
}

} // namespace

std::string resolveDataDir(const std::string& override) {
  if (!override.empty()) {
    return override;
  }
  if (const char* env = std::getenv("KDSCOPE_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/kdscope/data";
  }
  // No HOME (a bare service environment): a folder under the working directory, which the
  // repository's .gitignore already ignores.
  return ".cache/kdscope/data";
}

const std::vector<std::string>& knownTasks() {
  static const std::vector<std::string> kTasks = {
      "polarity", "hedge", "spam", "supersense", "fortune", "fashion_mnist", "digits", "synthetic_hierarchy",
      "synthetic_order"};
  return kTasks;
}

RawDataset loadRawDataset(const TaskSpec& spec, const std::string& dataDir, std::uint64_t seed) {
  const std::string& name = spec.name;
  if (name == "polarity") {
    return loaders::loadPolarity(dataDir);
  }
  if (name == "hedge") {
    return loaders::loadHedge(dataDir);
  }
  if (name == "spam") {
    return loaders::loadSpam(dataDir);
  }
  if (name == "supersense") {
    return loaders::loadSupersense(dataDir);
  }
  if (name == "fortune") {
    return loaders::loadFortune(dataDir, spec.minClassSize);
  }
  if (name == "fashion_mnist") {
    return loaders::loadFashionMnist(dataDir);
  }
  if (name == "digits") {
    return loaders::loadDigits(dataDir);
  }
  if (name == "synthetic_hierarchy") {
    return loaders::generateSyntheticHierarchy(spec, seed);
  }
  if (name == loaders::kSyntheticOrderTask) {
    return loaders::generateSyntheticOrder(spec, seed);
  }
  std::string known;
  for (const auto& task : knownTasks()) {
    known += (known.empty() ? "" : ", ") + task;
  }
  throw InputError("unknown task '" + name + "'; known tasks: " + known);
}

TaskData loadTask(const TaskSpec& spec, const std::string& dataDir, std::uint64_t seed, const TaskReadControl& control) {
  TaskData data = spec.fromFile() ? loadFileTask(spec, seed, control) // the user's own file (core/data/task_source.h)
                                  : buildTask(spec, loadRawDataset(spec, dataDir, seed), seed);
  data.provenance = taskProvenance(spec);
  if (data.kind != TaskKind::Text) {
    data.provenance.tokenizer.clear();
    data.provenance.vocabPath.clear();
  }
  return data;
}

TaskData buildTask(const TaskSpec& spec, RawDataset raw, std::uint64_t seed) {
  const std::string& task = spec.name;
  if (!(spec.evalFraction >= 0.0 && spec.evalFraction < 1.0)) {
    throwTask(task, "evalFraction must be in [0, 1), got " + std::to_string(spec.evalFraction));
  }
  if (spec.maxExamples < 0) {
    throwTask(task, "maxExamples must be >= 0 (0: all), got " + std::to_string(spec.maxExamples));
  }
  if (raw.kind == TaskKind::Text && spec.maxLen < 1) {
    throwTask(task, "maxLen must be at least 1 (room for [CLS]), got " + std::to_string(spec.maxLen));
  }
  if (raw.kind == TaskKind::Text && spec.vocab.empty() && spec.vocabSize < 3) {
    throwTask(task,
              "vocabSize must be at least 3 (the special tokens), got " + std::to_string(spec.vocabSize));
  }
  validateRaw(task, raw);
  if (!raw.inEval.empty()) {
    return buildFixedSplit(spec, raw, seed);
  }

  // Separate streams for subsampling and splitting, so that the split's draws do not depend
  // on how many draws the subsample used.
  Rng subsampleRng(deriveSeed(seed, "subsample:" + task));
  Rng splitRng(deriveSeed(seed, "split:" + task));

  std::vector<std::int64_t> kept;
  const std::size_t total = raw.labels.size();
  if (spec.maxExamples > 0 && static_cast<std::size_t>(spec.maxExamples) < total) {
    kept = stratifiedSubsample(raw, static_cast<std::size_t>(spec.maxExamples), subsampleRng);
  } else {
    kept.resize(total);
    for (std::size_t i = 0; i < total; ++i) {
      kept[i] = static_cast<std::int64_t>(i);
    }
  }

  // Stratified split: each class sends round(evalFraction * size) examples to eval, at
  // least one when it has two or more (so every class is evaluated) and never all of them.
  std::vector<std::int64_t> trainIndices;
  std::vector<std::int64_t> evalIndices;
  auto groups = byClass(raw, kept);
  for (auto& group : groups) {
    splitRng.shuffle(group);
    const std::size_t size = group.size();
    auto evalCount = static_cast<std::size_t>(std::llround(spec.evalFraction * static_cast<double>(size)));
    if (spec.evalFraction > 0.0 && size >= 2) {
      evalCount = std::clamp<std::size_t>(evalCount, 1, size - 1);
    } else if (size < 2) {
      evalCount = 0;
    }
    evalIndices.insert(evalIndices.end(), group.begin(),
                       group.begin() + static_cast<std::ptrdiff_t>(evalCount));
    trainIndices.insert(trainIndices.end(), group.begin() + static_cast<std::ptrdiff_t>(evalCount),
                        group.end());
  }
  // A seeded order instead of class order: the first eval examples (kept for attention
  // maps) then mix the classes, and a trainer that does not shuffle still sees them mixed.
  splitRng.shuffle(trainIndices);
  splitRng.shuffle(evalIndices);

  return assemble(spec, raw, trainIndices, evalIndices);
}

} // namespace kdscope::core
