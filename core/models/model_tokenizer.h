#pragma once
/// The tokenizer a model's manifest names (model_manifest.h): WordPiece over a BERT-style
/// vocab.txt (core/data/wordpiece.h) or KDScope's word tokenizer over a fixed word
/// vocabulary (core/data/tokenizer.h), giving the module's inputs for one example.
/// Torch-free public header.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/models/model_manifest.h"

namespace kdscope::core {

class Tokenizer;
class WordPieceTokenizer;

/// One example's inputs, each maxLen long (the shape of WordPieceEncoding).
struct ModelEncoding {
  std::vector<std::int64_t> inputIds;
  std::vector<std::int64_t> tokenTypeIds;  ///< 0 for the first text, 1 for the second; 0 on padding
  std::vector<std::int64_t> attentionMask; ///< 1 on tokens, 0 on padding
};

class ModelTokenizer {
public:
  /// Reads the manifest's vocabulary. Throws InputError naming the vocabulary file and line
  /// (wordpiece: as WordPieceTokenizer::fromFile; word: the file must start with the lines
  /// [PAD], [UNK], [CLS], ids 0, 1, 2, as KDScope's word tokenizer uses them) or, for a
  /// vector model, the manifest (it has no tokenizer).
  static ModelTokenizer fromManifest(const ModelManifest& manifest);

  ~ModelTokenizer();
  ModelTokenizer(ModelTokenizer&&) noexcept;
  ModelTokenizer& operator=(ModelTokenizer&&) noexcept;

  /// wordpiece: [CLS] pieces [SEP], padded; word: [CLS] words, padded (no [SEP]).
  [[nodiscard]] ModelEncoding encode(const std::string& text, int maxLen) const;
  /// wordpiece: [CLS] a [SEP] b [SEP] with token types 0 then 1 (BERT's truncation);
  /// word: the two texts joined by a line break, token types all 0 (as task files do).
  [[nodiscard]] ModelEncoding encodePair(const std::string& a, const std::string& b, int maxLen) const;

  [[nodiscard]] const std::string& type() const { return m_type; }
  [[nodiscard]] const std::vector<std::string>& vocab() const;
  [[nodiscard]] std::int64_t vocabSize() const { return static_cast<std::int64_t>(vocab().size()); }
  [[nodiscard]] std::int64_t padId() const;
  [[nodiscard]] std::int64_t clsId() const;
  /// -1 for the word tokenizer (it has none).
  [[nodiscard]] std::int64_t sepId() const;

private:
  ModelTokenizer() = default;
  std::string m_type;
  std::unique_ptr<WordPieceTokenizer> m_wordPiece;
  std::unique_ptr<Tokenizer> m_word;
};

/// The task's splits re-encoded by `tokenizer` to the task's seqLen: tokens replaced, every
/// other field kept. Sentence pairs (Split::pairTexts) are encoded as pairs (encodePair) and
/// their token types kept in Split::tokenTypes (wordpiece: 0 for [CLS] a [SEP], 1 for
/// b [SEP], 0 on padding; word: all 0). Throws InputError naming `where` when the task has no texts or the
/// tokenizer's [PAD] is not id 0 (KDScope's batches take id 0 as padding).
TaskData retokenizeTask(const TaskData& task, const ModelTokenizer& tokenizer, const std::string& where);

} // namespace kdscope::core
