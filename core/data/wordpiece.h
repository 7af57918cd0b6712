#pragma once
/// WordPiece tokenizer for BERT-style vocabularies (vocab.txt: one token per line, id = line
/// number - 1). Follows BERT's BasicTokenizer + WordpieceTokenizer: clean the text, space
/// out CJK ideographs, optionally lower-case and strip accents, split on whitespace and
/// punctuation, then greedy longest-match-first with "##" continuation pieces. Unicode
/// tables are compact (no ICU); docs/data.md lists the ranges covered. Input must be valid
/// UTF-8: malformed bytes are refused with an InputError (BERT drops them silently).

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace kdscope::core {

/// Model inputs for one example, each `maxLen` long.
struct WordPieceEncoding {
  std::vector<std::int64_t> inputIds;
  std::vector<std::int64_t> tokenTypeIds;  ///< 0 for [CLS] a [SEP], 1 for b [SEP], 0 on padding
  std::vector<std::int64_t> attentionMask; ///< 1 on tokens, 0 on [PAD]
};

class WordPieceTokenizer {
public:
  static constexpr int kMaxInputCharsPerWord = 100; ///< longer words become [UNK], as in BERT

  /// Reads vocab.txt. Throws InputError naming the file and line of an empty or duplicate
  /// token, and naming any of [PAD] [UNK] [CLS] [SEP] that is missing.
  static WordPieceTokenizer fromFile(const std::string& vocabPath, bool lowerCase);

  /// A tokenizer over `vocab` (id = index); `source` names it in error messages.
  WordPieceTokenizer(std::vector<std::string> vocab, bool lowerCase, const std::string& source = "vocabulary");

  /// BERT's BasicTokenizer: words and punctuation marks, lower-cased and accent-stripped if
  /// lowerCase. Throws InputError on invalid UTF-8.
  [[nodiscard]] std::vector<std::string> basicTokenize(const std::string& text) const;

  /// basicTokenize then WordPiece: pieces as strings ("un", "##aff", "[UNK]").
  [[nodiscard]] std::vector<std::string> tokenize(const std::string& text) const;

  /// [CLS] tokens [SEP], truncated to maxLen (>= 2) and padded with [PAD].
  [[nodiscard]] WordPieceEncoding encode(const std::string& text, int maxLen) const;

  /// [CLS] a [SEP] b [SEP] (maxLen >= 3). Truncation as BERT's _truncate_seq_pair: drop the
  /// last token of the longer side until both fit; on a tie drop from b.
  [[nodiscard]] WordPieceEncoding encodePair(const std::string& a, const std::string& b, int maxLen) const;

  /// The id of `token`, or -1.
  [[nodiscard]] std::int64_t id(const std::string& token) const;
  [[nodiscard]] const std::vector<std::string>& vocab() const { return m_vocab; }
  [[nodiscard]] bool lowerCase() const { return m_lowerCase; }
  [[nodiscard]] std::int64_t padId() const { return m_pad; }
  [[nodiscard]] std::int64_t unkId() const { return m_unk; }
  [[nodiscard]] std::int64_t clsId() const { return m_cls; }
  [[nodiscard]] std::int64_t sepId() const { return m_sep; }

private:
  [[nodiscard]] std::vector<std::int64_t> pieceIds(const std::string& text) const;
  void wordPiece(const std::string& word, std::vector<std::int64_t>& out) const;
  [[nodiscard]] WordPieceEncoding assemble(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>* b,
                                           int maxLen) const;

  std::vector<std::string> m_vocab;
  std::unordered_map<std::string, std::int64_t> m_ids;
  bool m_lowerCase = true;
  std::int64_t m_pad = 0;
  std::int64_t m_unk = 0;
  std::int64_t m_cls = 0;
  std::int64_t m_sep = 0;
};

} // namespace kdscope::core
