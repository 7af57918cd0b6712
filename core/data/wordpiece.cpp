#include "core/data/wordpiece.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>
#include <utility>

#include "core/common/error.h"
#include "core/data/utf8.h"

namespace kdscope::core {

namespace {

// --- Compact Unicode tables (no ICU). docs/data.md lists what they cover. ---

/// Python's str.isspace subset BERT uses: space, tab, newline, carriage return, and the
/// space separators (Zs).
bool isWhitespace(std::uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x00A0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// Control and format characters (Unicode category C*), which BERT deletes; tab, newline
/// and carriage return count as whitespace instead.
bool isControl(std::uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') {
    return false;
  }
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) ||                                // Cc
         c == 0x00AD || c == 0x061C || c == 0x180E || (c >= 0x200B && c <= 0x200F) || // Cf
         (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) || c == 0xFEFF ||
         (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xE000 && c <= 0xF8FF); // Co (private use)
}

/// BERT's _is_chinese_char: the CJK Unified Ideographs blocks and their extensions.
bool isCjk(std::uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// BERT's _is_punctuation: every non-alphanumeric ASCII character (including $ + < = > ^ `
/// |, which Unicode calls symbols), plus the P* characters of Latin-1, General Punctuation,
/// CJK Symbols and Punctuation and the fullwidth forms.
bool isPunctuation(std::uint32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
    return true;
  }
  switch (c) {
  case 0x00A1: case 0x00A7: case 0x00AB: case 0x00B6: case 0x00B7: case 0x00BB: case 0x00BF:
    return true;
  default:
    break;
  }
  if (c >= 0x2010 && c <= 0x205E) { // General Punctuation: P* except the separators and maths
    return !(c >= 0x2028 && c <= 0x202F) && c != 0x2044 && c != 0x2052;
  }
  if (c >= 0x3001 && c <= 0x303D) {
    return c <= 0x3003 || (c >= 0x3008 && c <= 0x3011) || (c >= 0x3014 && c <= 0x301F) || c == 0x3030 ||
           c == 0x303D;
  }
  if (c >= 0xFF01 && c <= 0xFF65) { // fullwidth ASCII and halfwidth CJK punctuation
    switch (c) {
    case 0xFF04: case 0xFF0B: case 0xFF1C: case 0xFF1D: case 0xFF1E: case 0xFF3E: case 0xFF40:
    case 0xFF5C: case 0xFF5E:
      return false; // Sc, Sm, Sk: symbols
    default:
      break;
    }
    return c <= 0xFF0F || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF3F) ||
           (c >= 0xFF5B && c <= 0xFF65);
  }
  return false;
}

/// Combining marks (Mn) that accent stripping drops.
bool isCombiningMark(std::uint32_t c) {
  return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
         (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE20 && c <= 0xFE2F);
}

/// Python's str.lower for ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic.
std::uint32_t toLower(std::uint32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) {
    return c + 0x20;
  }
  if (c >= 0x0100 && c <= 0x017F) {
    if ((c <= 0x0137 || (c >= 0x014A && c <= 0x0177)) && c != 0x0130) {
      return c | 1U; // capital at even, small at odd
    }
    if ((c >= 0x0139 && c <= 0x0148) || (c >= 0x0179 && c <= 0x017E)) {
      return (c & 1U) != 0 ? c + 1 : c; // capital at odd
    }
    if (c == 0x0130) {
      return 'i'; // Python gives "i̇" (i + U+0307); the dot is dropped by accent stripping anyway
    }
    if (c == 0x0178) {
      return 0x00FF;
    }
    return c;
  }
  if ((c >= 0x0391 && c <= 0x03A9 && c != 0x03A2) || (c >= 0x0410 && c <= 0x042F)) {
    return c + 0x20;
  }
  if (c >= 0x0400 && c <= 0x040F) {
    return c + 0x50;
  }
  return c;
}

/// Base letters of the canonical decompositions (NFD minus Mn) of U+00C0..U+017F; '.' marks
/// a letter without a canonical decomposition (Æ, Ð, Ø, Þ, ß, đ, ł, Œ, ...).
constexpr std::string_view kLatinBase =
    "AAAAAA.CEEEEIIII" ".NOOOOO..UUUUY.." "aaaaaa.ceeeeiiii" ".nooooo..uuuuy.y" // U+00C0
    "AaAaAaCcCcCcCcDd" "..EeEeEeEeEeGgGg" "GgGgHh..IiIiIiIi" "I...JjKk.LlLlLl." // U+0100
    "...NnNnNn...OoOo" "Oo..RrRrRrSsSsSs" "SsTtTt..UuUuUuUu" "UuUuWwYyYZzZzZz."; // U+0140

/// Latin Extended-B letters with canonical decompositions: (letter, base after stripping).
constexpr std::pair<std::uint32_t, std::uint32_t> kLatinExtendedB[] = {
    {0x01A0, 'O'}, {0x01A1, 'o'}, {0x01AF, 'U'}, {0x01B0, 'u'}, {0x01CD, 'A'}, {0x01CE, 'a'},
    {0x01CF, 'I'}, {0x01D0, 'i'}, {0x01D1, 'O'}, {0x01D2, 'o'}, {0x01D3, 'U'}, {0x01D4, 'u'},
    {0x01D5, 'U'}, {0x01D6, 'u'}, {0x01D7, 'U'}, {0x01D8, 'u'}, {0x01D9, 'U'}, {0x01DA, 'u'},
    {0x01DB, 'U'}, {0x01DC, 'u'}, {0x01DE, 'A'}, {0x01DF, 'a'}, {0x01E0, 'A'}, {0x01E1, 'a'},
    {0x01E2, 0xC6}, {0x01E3, 0xE6}, {0x01E6, 'G'}, {0x01E7, 'g'}, {0x01E8, 'K'}, {0x01E9, 'k'},
    {0x01EA, 'O'}, {0x01EB, 'o'}, {0x01EC, 'O'}, {0x01ED, 'o'}, {0x01F0, 'j'}, {0x01F4, 'G'},
    {0x01F5, 'g'}, {0x01F8, 'N'}, {0x01F9, 'n'}, {0x01FA, 'A'}, {0x01FB, 'a'}, {0x01FC, 0xC6},
    {0x01FD, 0xE6}, {0x01FE, 0xD8}, {0x01FF, 0xF8}, {0x0200, 'A'}, {0x0201, 'a'}, {0x0202, 'A'},
    {0x0203, 'a'}, {0x0204, 'E'}, {0x0205, 'e'}, {0x0206, 'E'}, {0x0207, 'e'}, {0x0208, 'I'},
    {0x0209, 'i'}, {0x020A, 'I'}, {0x020B, 'i'}, {0x020C, 'O'}, {0x020D, 'o'}, {0x020E, 'O'},
    {0x020F, 'o'}, {0x0210, 'R'}, {0x0211, 'r'}, {0x0212, 'R'}, {0x0213, 'r'}, {0x0214, 'U'},
    {0x0215, 'u'}, {0x0216, 'U'}, {0x0217, 'u'}, {0x0218, 'S'}, {0x0219, 's'}, {0x021A, 'T'},
    {0x021B, 't'}, {0x021E, 'H'}, {0x021F, 'h'}, {0x0226, 'A'}, {0x0227, 'a'}, {0x0228, 'E'},
    {0x0229, 'e'}, {0x022A, 'O'}, {0x022B, 'o'}, {0x022C, 'O'}, {0x022D, 'o'}, {0x022E, 'O'},
    {0x022F, 'o'}, {0x0230, 'O'}, {0x0231, 'o'}, {0x0232, 'Y'}, {0x0233, 'y'}};

/// The letter left when the accents of `c` are stripped (NFD, then Mn removed).
std::uint32_t stripAccent(std::uint32_t c) {
  if (c >= 0xC0 && c < 0xC0 + kLatinBase.size()) {
    const char base = kLatinBase[c - 0xC0];
    return base == '.' ? c : static_cast<unsigned char>(base);
  }
  if (c >= 0x01A0 && c <= 0x0233) {
    const auto* end = std::end(kLatinExtendedB);
    const auto* it = std::lower_bound(std::begin(kLatinExtendedB), end, c,
                                      [](const auto& entry, std::uint32_t key) { return entry.first < key; });
    if (it != end && it->first == c) {
      return it->second;
    }
  }
  return c;
}

} // namespace

WordPieceTokenizer WordPieceTokenizer::fromFile(const std::string& vocabPath, bool lowerCase) {
  std::ifstream in(vocabPath, std::ios::binary);
  if (!in) {
    throw InputError("vocabulary file '" + vocabPath + "': cannot be opened for reading");
  }
  std::vector<std::string> vocab;
  std::unordered_map<std::string, std::size_t> lineOf;
  std::string line;
  std::size_t number = 0;
  const std::string where = "vocabulary file '" + vocabPath + "': line ";
  while (std::getline(in, line)) {
    ++number;
    // BERT's load_vocab strips whitespace around each token (and so a trailing \r).
    const auto first = line.find_first_not_of(" \t\r\f\v");
    const auto last = line.find_last_not_of(" \t\r\f\v");
    std::string token = first == std::string::npos ? std::string() : line.substr(first, last - first + 1);
    if (number == 1 && token.compare(0, 3, "\xEF\xBB\xBF") == 0) {
      token.erase(0, 3);
    }
    if (token.empty()) {
      throw InputError(where + std::to_string(number) + ": empty token (ids are line numbers, so a blank "
                                                        "line would shift every later id)");
    }
    if (utf8::firstInvalid(token) != std::string_view::npos) {
      throw InputError(where + std::to_string(number) + ": invalid UTF-8");
    }
    const auto [it, inserted] = lineOf.emplace(token, number);
    if (!inserted) {
      throw InputError(where + std::to_string(number) + ": duplicate token '" + token + "' (first on line " +
                       std::to_string(it->second) + ")");
    }
    vocab.push_back(std::move(token));
  }
  return WordPieceTokenizer(std::move(vocab), lowerCase, "vocabulary file '" + vocabPath + "'");
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, bool lowerCase, const std::string& source)
    : m_vocab(std::move(vocab)), m_lowerCase(lowerCase) {
  m_ids.reserve(m_vocab.size());
  for (std::size_t i = 0; i < m_vocab.size(); ++i) {
    if (!m_ids.emplace(m_vocab[i], static_cast<std::int64_t>(i)).second) {
      throw InputError(source + ": duplicate token '" + m_vocab[i] + "' at id " + std::to_string(i));
    }
  }
  std::string missing;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) {
    if (m_ids.count(special) == 0) {
      missing += (missing.empty() ? "" : ", ") + std::string(special);
    }
  }
  if (!missing.empty()) {
    throw InputError(source + ": missing special token(s) " + missing);
  }
  m_pad = m_ids.at("[PAD]");
  m_unk = m_ids.at("[UNK]");
  m_cls = m_ids.at("[CLS]");
  m_sep = m_ids.at("[SEP]");
}

std::int64_t WordPieceTokenizer::id(const std::string& token) const {
  const auto it = m_ids.find(token);
  return it == m_ids.end() ? -1 : it->second;
}

std::vector<std::string> WordPieceTokenizer::basicTokenize(const std::string& text) const {
  const std::vector<std::uint32_t> codes = utf8::decode(text, "text for the WordPiece tokenizer");
  std::vector<std::string> tokens;
  std::vector<std::uint32_t> word; // the current whitespace-delimited word, cleaned
  const auto flushWord = [&]() {
    // Lower-case and strip accents per word, then split off punctuation, as BERT does.
    std::string current;
    for (std::uint32_t c : word) {
      if (m_lowerCase) {
        // The outer toLower covers Latin Extended-B capitals (Ǎ -> A -> a), which the
        // lower-casing table does not: the same result as Python's lower() then NFD.
        c = toLower(stripAccent(toLower(c)));
        if (isCombiningMark(c)) {
          continue;
        }
      }
      if (isPunctuation(c)) {
        if (!current.empty()) {
          tokens.push_back(std::move(current));
          current.clear();
        }
        std::string mark;
        utf8::append(c, mark);
        tokens.push_back(std::move(mark));
        continue;
      }
      utf8::append(c, current);
    }
    if (!current.empty()) {
      tokens.push_back(std::move(current));
    }
    word.clear();
  };
  for (const std::uint32_t c : codes) {
    if (c == 0 || c == 0xFFFD || isControl(c)) {
      continue; // _clean_text deletes these
    }
    if (isWhitespace(c)) {
      flushWord();
      continue;
    }
    if (isCjk(c)) {
      // _tokenize_chinese_chars puts spaces around each ideograph.
      flushWord();
      word.push_back(c);
      flushWord();
      continue;
    }
    word.push_back(c);
  }
  flushWord();
  return tokens;
}

void WordPieceTokenizer::wordPiece(const std::string& word, std::vector<std::int64_t>& out) const {
  // Code point boundaries: pieces are matched on characters, not bytes.
  std::vector<std::size_t> bounds;
  std::size_t pos = 0;
  std::uint32_t code = 0;
  while (pos < word.size()) {
    bounds.push_back(pos);
    utf8::next(word, pos, code); // valid: basicTokenize decoded and re-encoded it
  }
  bounds.push_back(word.size());
  const std::size_t chars = bounds.size() - 1;
  if (chars > static_cast<std::size_t>(kMaxInputCharsPerWord)) {
    out.push_back(m_unk);
    return;
  }
  std::vector<std::int64_t> pieces;
  std::size_t start = 0;
  std::string candidate;
  while (start < chars) {
    std::int64_t found = -1;
    std::size_t end = chars;
    for (; end > start; --end) {
      candidate = start > 0 ? "##" : "";
      candidate.append(word, bounds[start], bounds[end] - bounds[start]);
      found = id(candidate);
      if (found >= 0) {
        break;
      }
    }
    if (found < 0) {
      out.push_back(m_unk); // one unmatched piece makes the whole word [UNK]
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::int64_t> WordPieceTokenizer::pieceIds(const std::string& text) const {
  std::vector<std::int64_t> ids;
  for (const auto& word : basicTokenize(text)) {
    wordPiece(word, ids);
  }
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  for (const auto tokenId : pieceIds(text)) {
    pieces.push_back(m_vocab[static_cast<std::size_t>(tokenId)]);
  }
  return pieces;
}

WordPieceEncoding WordPieceTokenizer::assemble(const std::vector<std::int64_t>& a,
                                               const std::vector<std::int64_t>* b, int maxLen) const {
  WordPieceEncoding enc;
  const auto n = static_cast<std::size_t>(maxLen);
  enc.inputIds.reserve(n);
  const auto push = [&](std::int64_t tokenId, std::int64_t type) {
    enc.inputIds.push_back(tokenId);
    enc.tokenTypeIds.push_back(type);
    enc.attentionMask.push_back(1);
  };
  push(m_cls, 0);
  for (const auto tokenId : a) {
    push(tokenId, 0);
  }
  push(m_sep, 0);
  if (b != nullptr) {
    for (const auto tokenId : *b) {
      push(tokenId, 1);
    }
    push(m_sep, 1);
  }
  enc.inputIds.resize(n, m_pad);
  enc.tokenTypeIds.resize(n, 0);
  enc.attentionMask.resize(n, 0);
  return enc;
}

WordPieceEncoding WordPieceTokenizer::encode(const std::string& text, int maxLen) const {
  if (maxLen < 2) {
    throw InputError("WordPiece encode: maxLen must be at least 2 ([CLS] and [SEP]), got " +
                     std::to_string(maxLen));
  }
  auto ids = pieceIds(text);
  ids.resize(std::min(ids.size(), static_cast<std::size_t>(maxLen - 2)));
  return assemble(ids, nullptr, maxLen);
}

WordPieceEncoding WordPieceTokenizer::encodePair(const std::string& a, const std::string& b, int maxLen) const {
  if (maxLen < 3) {
    throw InputError("WordPiece encodePair: maxLen must be at least 3 ([CLS] and two [SEP]), got " +
                     std::to_string(maxLen));
  }
  auto idsA = pieceIds(a);
  auto idsB = pieceIds(b);
  const auto room = static_cast<std::size_t>(maxLen - 3);
  while (idsA.size() + idsB.size() > room) {
    if (idsA.size() > idsB.size()) {
      idsA.pop_back();
    } else {
      idsB.pop_back();
    }
  }
  return assemble(idsA, &idsB, maxLen);
}

} // namespace kdscope::core
