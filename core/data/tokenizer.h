#pragma once
/// Word-level tokenizer built from a train split: lower-cased words (letters, digits and
/// inner apostrophes), ids by descending frequency then alphabetically, with
/// [PAD] = 0, [UNK] = 1, [CLS] = 2.

#include <cstdint>
#include <string>
#include <vector>

namespace kdscope::core {

class Tokenizer {
public:
  static constexpr std::int64_t kPad = 0;
  static constexpr std::int64_t kUnk = 1;
  static constexpr std::int64_t kCls = 2;

  /// Splits text into lower-cased words.
  static std::vector<std::string> words(const std::string& text);

  /// Vocabulary from texts: words seen at least minFreq times, at most vocabSize ids in all
  /// (special tokens included).
  static Tokenizer build(const std::vector<std::string>& texts, int vocabSize, int minFreq);
  explicit Tokenizer(std::vector<std::string> vocab);

  /// [CLS] + word ids, truncated to seqLen, padded with [PAD] to seqLen.
  [[nodiscard]] std::vector<std::int64_t> encode(const std::string& text, int seqLen) const;
  [[nodiscard]] const std::vector<std::string>& vocab() const { return m_vocab; }
  [[nodiscard]] std::int64_t id(const std::string& word) const;

private:
  std::vector<std::string> m_vocab;
  std::vector<std::pair<std::string, std::int64_t>> m_sorted; // word -> id, sorted for lookup
};

} // namespace kdscope::core
