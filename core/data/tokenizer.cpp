#include "core/data/tokenizer.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/common/error.h"

namespace kdscope::core {

namespace {

const char* const kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]"};
constexpr std::size_t kNumSpecial = 3;

bool isAsciiWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// Length in bytes of a UTF-8 punctuation or space sequence starting at text[i], or 0.
/// These separate words although they are non-ASCII: U+00A0..U+00BF (no-break space,
/// guillemets, inverted marks, ...), U+00D7 and U+00F7 (multiplication and division
/// signs), U+2000..U+206F (general punctuation: typographic quotes, dashes, ellipsis,
/// special spaces), U+3000 (ideographic space), U+FEFF (byte order mark) and U+FFFD (the
/// replacement character, left where a converter lost a character). Every other
/// non-ASCII byte counts as a letter, so accented words stay whole.
std::size_t nonAsciiSeparatorLength(std::string_view text, std::size_t i) {
  const auto byteAt = [&](std::size_t k) {
    return k < text.size() ? static_cast<unsigned char>(text[k]) : 0U;
  };
  const unsigned b0 = byteAt(i);
  const unsigned b1 = byteAt(i + 1);
  const unsigned b2 = byteAt(i + 2);
  if (b0 == 0xC2 && b1 >= 0xA0 && b1 <= 0xBF) {
    return 2;
  }
  if (b0 == 0xC3 && (b1 == 0x97 || b1 == 0xB7)) {
    return 2;
  }
  const bool continuation2 = b2 >= 0x80 && b2 <= 0xBF;
  if (b0 == 0xE2 && (b1 == 0x80 || b1 == 0x81) && continuation2) {
    return 3;
  }
  if (b0 == 0xE3 && b1 == 0x80 && b2 == 0x80) {
    return 3;
  }
  if (b0 == 0xEF && ((b1 == 0xBB && b2 == 0xBF) || (b1 == 0xBF && b2 == 0xBD))) {
    return 3;
  }
  return 0;
}

/// Calls visit(word) for each lower-cased word of text, in order, until it returns false.
/// One pass over the bytes with no allocation per byte: encode stops early on long texts.
template <typename Visit> void forEachWord(std::string_view text, Visit&& visit) {
  std::string word;
  const auto flush = [&]() {
    // A word never ends in an apostrophe: one is only kept when a word byte follows it.
    if (word.empty()) {
      return true;
    }
    const bool goOn = visit(word);
    word.clear();
    return goOn;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (isAsciiWordByte(c)) {
        word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
      } else if (c == '\'' && !word.empty() && i + 1 < text.size() &&
                 (isAsciiWordByte(static_cast<unsigned char>(text[i + 1])) ||
                  (static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                   nonAsciiSeparatorLength(text, i + 1) == 0))) {
        word.push_back('\''); // inner apostrophe: "don't", "o'clock"
      } else if (!flush()) {
        return;
      }
      ++i;
      continue;
    }
    const std::size_t separator = nonAsciiSeparatorLength(text, i);
    if (separator > 0) {
      if (!flush()) {
        return;
      }
      i += separator;
      continue;
    }
    word.push_back(static_cast<char>(c)); // other non-ASCII bytes are letters, kept as is
    ++i;
  }
  flush();
}

} // namespace

std::vector<std::string> Tokenizer::words(const std::string& text) {
  std::vector<std::string> result;
  forEachWord(text, [&](const std::string& word) {
    result.push_back(word);
    return true;
  });
  return result;
}

Tokenizer Tokenizer::build(const std::vector<std::string>& texts, int vocabSize, int minFreq) {
  if (vocabSize < static_cast<int>(kNumSpecial)) {
    throw InputError("tokenizer: vocabSize must be at least " + std::to_string(kNumSpecial) +
                     " (the special tokens [PAD], [UNK], [CLS]), got " + std::to_string(vocabSize));
  }
  std::unordered_map<std::string, std::int64_t> counts;
  for (const auto& text : texts) {
    forEachWord(text, [&](const std::string& word) {
      ++counts[word];
      return true;
    });
  }
  std::vector<std::pair<std::string, std::int64_t>> ranked;
  ranked.reserve(counts.size());
  for (auto& [word, count] : counts) {
    if (count >= minFreq) {
      ranked.emplace_back(word, count);
    }
  }
  // Descending frequency, then byte-wise alphabetical: a total order, so the vocabulary
  // does not depend on the hash map's iteration order.
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) {
      return a.second > b.second;
    }
    return a.first < b.first;
  });
  const std::size_t maxWords = static_cast<std::size_t>(vocabSize) - kNumSpecial;
  if (ranked.size() > maxWords) {
    ranked.resize(maxWords);
  }
  std::vector<std::string> vocab(std::begin(kSpecialTokens), std::end(kSpecialTokens));
  vocab.reserve(kNumSpecial + ranked.size());
  for (auto& entry : ranked) {
    vocab.push_back(std::move(entry.first));
  }
  return Tokenizer(std::move(vocab));
}

Tokenizer::Tokenizer(std::vector<std::string> vocab) : m_vocab(std::move(vocab)) {
  if (m_vocab.size() < kNumSpecial) {
    throw InputError("tokenizer: a vocabulary needs at least the " + std::to_string(kNumSpecial) +
                     " special tokens, got " + std::to_string(m_vocab.size()) + " entries");
  }
  for (std::size_t i = 0; i < kNumSpecial; ++i) {
    if (m_vocab[i] != kSpecialTokens[i]) {
      throw InputError("tokenizer: vocabulary entry " + std::to_string(i) + " must be " + kSpecialTokens[i] +
                       ", got '" + m_vocab[i] + "'");
    }
  }
  m_sorted.reserve(m_vocab.size());
  for (std::size_t i = 0; i < m_vocab.size(); ++i) {
    m_sorted.emplace_back(m_vocab[i], static_cast<std::int64_t>(i));
  }
  // Stable, so that a duplicated word keeps its first (lowest) id after unique().
  std::stable_sort(m_sorted.begin(), m_sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  m_sorted.erase(std::unique(m_sorted.begin(), m_sorted.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 m_sorted.end());
}

std::int64_t Tokenizer::id(const std::string& word) const {
  const auto it = std::lower_bound(m_sorted.begin(), m_sorted.end(), word,
                                   [](const std::pair<std::string, std::int64_t>& entry,
                                      const std::string& key) { return entry.first < key; });
  if (it != m_sorted.end() && it->first == word) {
    return it->second;
  }
  return kUnk;
}

std::vector<std::int64_t> Tokenizer::encode(const std::string& text, int seqLen) const {
  if (seqLen < 1) {
    throw InputError("tokenizer: seqLen must be at least 1 (room for [CLS]), got " + std::to_string(seqLen));
  }
  const auto length = static_cast<std::size_t>(seqLen);
  std::vector<std::int64_t> ids;
  ids.reserve(length);
  ids.push_back(kCls);
  if (ids.size() < length) {
    forEachWord(text, [&](const std::string& word) {
      ids.push_back(id(word));
      return ids.size() < length;
    });
  }
  ids.resize(length, kPad);
  return ids;
}

} // namespace kdscope::core
