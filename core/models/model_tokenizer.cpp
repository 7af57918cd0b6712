#include "core/models/model_tokenizer.h"

#include <fstream>

#include "core/common/error.h"
#include "core/data/tokenizer.h"
#include "core/data/wordpiece.h"

namespace kdscope::core {

namespace {

/// KDScope's word vocabulary: one word a line, id = line - 1, starting [PAD] [UNK] [CLS].
std::vector<std::string> readWordVocab(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError("vocabulary file '" + path + "': cannot be opened for reading");
  }
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty()) {
      throw InputError("vocabulary file '" + path + "': line " + std::to_string(vocab.size() + 1) +
                       ": empty word (ids are line numbers, so a blank line would shift every later id)");
    }
    vocab.push_back(line);
  }
  const char* const special[] = {"[PAD]", "[UNK]", "[CLS]"};
  for (std::size_t i = 0; i < 3; ++i) {
    if (vocab.size() <= i || vocab[i] != special[i]) {
      throw InputError("vocabulary file '" + path + "': line " + std::to_string(i + 1) + ": must be " + special[i] +
                       " (a word vocabulary starts [PAD], [UNK], [CLS]: ids 0, 1, 2)");
    }
  }
  return vocab;
}

ModelEncoding fromWords(std::vector<std::int64_t> ids) {
  ModelEncoding e;
  e.tokenTypeIds.assign(ids.size(), 0);
  e.attentionMask.reserve(ids.size());
  for (const auto id : ids) {
    e.attentionMask.push_back(id == Tokenizer::kPad ? 0 : 1);
  }
  e.inputIds = std::move(ids);
  return e;
}

ModelEncoding fromWordPiece(WordPieceEncoding w) {
  return ModelEncoding{std::move(w.inputIds), std::move(w.tokenTypeIds), std::move(w.attentionMask)};
}

} // namespace

ModelTokenizer::~ModelTokenizer() = default;
ModelTokenizer::ModelTokenizer(ModelTokenizer&&) noexcept = default;
ModelTokenizer& ModelTokenizer::operator=(ModelTokenizer&&) noexcept = default;

ModelTokenizer ModelTokenizer::fromManifest(const ModelManifest& manifest) {
  if (!manifest.tokenizer) {
    throw InputError("manifest '" + manifest.path + "': field 'tokenizer': missing (a vector model has none)");
  }
  ModelTokenizer t;
  t.m_type = manifest.tokenizer->type;
  if (t.m_type == "wordpiece") {
    t.m_wordPiece = std::make_unique<WordPieceTokenizer>(
        WordPieceTokenizer::fromFile(manifest.tokenizer->vocabPath, manifest.tokenizer->lowerCase));
  } else {
    t.m_word = std::make_unique<Tokenizer>(readWordVocab(manifest.tokenizer->vocabPath));
  }
  return t;
}

ModelEncoding ModelTokenizer::encode(const std::string& text, int maxLen) const {
  if (m_wordPiece) {
    return fromWordPiece(m_wordPiece->encode(text, maxLen));
  }
  return fromWords(m_word->encode(text, maxLen));
}

ModelEncoding ModelTokenizer::encodePair(const std::string& a, const std::string& b, int maxLen) const {
  if (m_wordPiece) {
    return fromWordPiece(m_wordPiece->encodePair(a, b, maxLen));
  }
  return fromWords(m_word->encode(a + "\n" + b, maxLen));
}

const std::vector<std::string>& ModelTokenizer::vocab() const {
  return m_wordPiece ? m_wordPiece->vocab() : m_word->vocab();
}

std::int64_t ModelTokenizer::padId() const { return m_wordPiece ? m_wordPiece->padId() : Tokenizer::kPad; }
std::int64_t ModelTokenizer::clsId() const { return m_wordPiece ? m_wordPiece->clsId() : Tokenizer::kCls; }
std::int64_t ModelTokenizer::sepId() const { return m_wordPiece ? m_wordPiece->sepId() : -1; }

namespace {

void encodeSplit(Split& split, const ModelTokenizer& tokenizer, int length, const std::string& where,
                 const std::string& splitName) {
  if (split.texts.size() != split.size()) {
    throw InputError(where + ": the task's " + splitName + " split keeps no texts to tokenize with the model's tokenizer");
  }
  const bool pairs = !split.pairTexts.empty();
  if (pairs && split.pairTexts.size() != split.size()) {
    throw InputError(where + ": the task's " + splitName + " split has " + std::to_string(split.pairTexts.size()) +
                     " second texts for " + std::to_string(split.size()) + " examples");
  }
  std::vector<std::int64_t> tokens;
  std::vector<std::int64_t> types;
  tokens.reserve(split.size() * static_cast<std::size_t>(length));
  if (pairs) {
    types.reserve(split.size() * static_cast<std::size_t>(length));
  }
  for (std::size_t i = 0; i < split.size(); ++i) {
    ModelEncoding e;
    try {
      // A pair goes to the model as a pair: [CLS] a [SEP] b [SEP] with token types 0 then 1.
      e = pairs ? tokenizer.encodePair(split.firstText(i), split.pairTexts[i], length)
                : tokenizer.encode(split.texts[i], length);
    } catch (const InputError& error) {
      throw InputError(where + ": " + splitName + " example " + std::to_string(i) + ": " + error.what());
    }
    tokens.insert(tokens.end(), e.inputIds.begin(), e.inputIds.end());
    if (pairs) {
      types.insert(types.end(), e.tokenTypeIds.begin(), e.tokenTypeIds.end());
    }
  }
  split.tokens = std::move(tokens);
  split.tokenTypes = std::move(types);
}

} // namespace

TaskData retokenizeTask(const TaskData& task, const ModelTokenizer& tokenizer, const std::string& where) {
  if (tokenizer.padId() != 0) {
    throw InputError(where + ": the tokenizer's [PAD] is id " + std::to_string(tokenizer.padId()) +
                     "; KDScope needs it at id 0 (the first line of the vocabulary), as in BERT's vocab.txt");
  }
  TaskData view = task;
  view.vocab = tokenizer.vocab();
  encodeSplit(view.train, tokenizer, task.seqLen, where, "train");
  encodeSplit(view.eval, tokenizer, task.seqLen, where, "eval");
  return view;
}

} // namespace kdscope::core
