// WordPiece: BERT's basic tokenizer (cleaning, CJK, lower-casing with accent stripping,
// punctuation), greedy longest-match-first pieces, [CLS]/[SEP]/[PAD] encoding, pairs with
// token types and longest-first truncation, and vocab.txt errors. Every expectation is
// worked out by hand from the small vocabulary below (no Python oracle: `transformers` is
// not installed and Debian does not package it).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/data/wordpiece.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;

// Ids are the indices: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 un=4 ##aff=5 ##able=6 hello=7 world=8
// ","=9 "!"=10 "?"=11 我=12 爱=13 nl=14 ##p=15 H=16 ##él=17 ##lo=18 a=19 ##a=20
const Strings kVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un",  "##aff", "##able",
                        "hello", "world", ",",     "!",     "?",   "\xE6\x88\x91", "\xE7\x88\xB1",
                        "nl",    "##p",   "H",     "##\xC3\xA9l", "##lo", "a", "##a"};

WordPieceTokenizer lower() { return WordPieceTokenizer(kVocab, true); }
WordPieceTokenizer cased() { return WordPieceTokenizer(kVocab, false); }

TEST(WordPiece, GreedyLongestMatchFirst) {
  // "unaffable": no prefix longer than "un" is in the vocabulary; of "##affable" the longest
  // is "##aff", then "##able" matches the rest.
  EXPECT_EQ(lower().tokenize("unaffable"), (Strings{"un", "##aff", "##able"}));
  EXPECT_EQ(lower().tokenize("UnAffable"), (Strings{"un", "##aff", "##able"}));
}

TEST(WordPiece, WordWithAMissingPieceIsOneUnk) {
  // "unaffablex": un ##aff ##able match, then "##x" is not in the vocabulary, so the whole
  // word is [UNK] (not un ##aff ##able [UNK]).
  EXPECT_EQ(lower().tokenize("unaffablex hello"), (Strings{"[UNK]", "hello"}));
}

TEST(WordPiece, AccentsWithAndWithoutLowerCasing) {
  // Lower-cased: "Héllo" -> "héllo" -> NFD drops U+0301 -> "hello"; "Wörld" -> "world".
  EXPECT_EQ(lower().tokenize("H\xC3\xA9llo W\xC3\xB6rld"), (Strings{"hello", "world"}));
  // Cased: no lower-casing and no accent stripping. "Héllo" -> H + ##él + ##lo (the longest
  // prefixes in the vocabulary); "Wörld" has no first piece ("W" is absent) -> [UNK].
  EXPECT_EQ(cased().tokenize("H\xC3\xA9llo W\xC3\xB6rld"), (Strings{"H", "##\xC3\xA9l", "##lo", "[UNK]"}));
}

TEST(WordPiece, AccentStrippingCoversLatinSupplementAndExtendedAB) {
  // Ñandú -> nandu; Ǎ (U+01CD, Latin Extended-B) -> a; Łódź -> ł stays (no canonical
  // decomposition), ó -> o, ź -> z; Ærø keeps æ and ø (no decompositions either);
  // "e" + U+0301 (already decomposed) -> e; Ș (U+0218) -> s; Ÿ -> ÿ -> y.
  EXPECT_EQ(lower().basicTokenize("\xC3\x91" "and\xC3\xBA \xC7\x8D \xC5\x81\xC3\xB3" "d\xC5\xBA "
                                  "\xC3\x86r\xC3\xB8 e\xCC\x81 \xC8\x98 \xC5\xB8"),
            (Strings{"nandu", "a", "\xC5\x82odz", "\xC3\xA6r\xC3\xB8", "e", "s", "y"}));
  // Cased keeps everything, including the lone combining mark.
  EXPECT_EQ(cased().basicTokenize("\xC3\x91" "and\xC3\xBA e\xCC\x81"), (Strings{"\xC3\x91" "and\xC3\xBA", "e\xCC\x81"}));
}

TEST(WordPiece, PunctuationIsSplitOff) {
  // hello , world ! ? -> ids 7 9 8 10 11.
  EXPECT_EQ(lower().tokenize("Hello, world!?"), (Strings{"hello", ",", "world", "!", "?"}));
  // Cased: "Hello" is not in the vocabulary (only "hello").
  EXPECT_EQ(cased().tokenize("Hello, world!?"), (Strings{"[UNK]", ",", "world", "!", "?"}));
  // ASCII symbols count as punctuation ($ -> own token); Unicode: curly quotes, em dash and
  // ellipsis (General Punctuation), the ideographic full stop and fullwidth ！ are P*; the
  // fullwidth ＄ (U+FF04) is a currency symbol, so "a＄b" stays one token.
  EXPECT_EQ(cased().basicTokenize("$5 \xE2\x80\x9Cq\xE2\x80\x9D\xE2\x80\x94x\xE2\x80\xA6 "
                                  "y\xE3\x80\x82z\xEF\xBC\x81 a\xEF\xBC\x84" "b"),
            (Strings{"$", "5", "\xE2\x80\x9C", "q", "\xE2\x80\x9D", "\xE2\x80\x94", "x", "\xE2\x80\xA6", "y",
                     "\xE3\x80\x82", "z", "\xEF\xBC\x81", "a\xEF\xBC\x84" "b"}));
}

TEST(WordPiece, ChineseCharactersAreSeparated) {
  // 我爱NLP -> 我 爱 nlp (CJK ideographs spaced out) -> nlp = nl + ##p.
  EXPECT_EQ(lower().tokenize("\xE6\x88\x91\xE7\x88\xB1NLP"), (Strings{"\xE6\x88\x91", "\xE7\x88\xB1", "nl", "##p"}));
  EXPECT_EQ(lower().encode("\xE6\x88\x91\xE7\x88\xB1NLP", 8).inputIds, (Ids{2, 12, 13, 14, 15, 3, 0, 0}));
  // Cased: "NLP" has no piece -> [UNK]; a CJK Extension B ideograph (U+20000, 4 bytes) is its
  // own word too, unknown here.
  EXPECT_EQ(cased().tokenize("\xE6\x88\x91\xE7\x88\xB1NLP\xF0\xA0\x80\x80x"),
            (Strings{"\xE6\x88\x91", "\xE7\x88\xB1", "[UNK]", "[UNK]", "[UNK]"}));
}

TEST(WordPiece, CleaningDropsControlsAndNormalisesWhitespace) {
  // NUL, BEL, zero-width space (Cf), U+FFFD and a soft hyphen are deleted, so "a?b..." stays
  // one word; no-break space, ideographic space, tab and newline separate.
  EXPECT_EQ(cased().basicTokenize(std::string("a\0b\x07" "c\xE2\x80\x8B" "d\xEF\xBF\xBD" "e\xC2\xAD" "f", 16)),
            (Strings{"abcdef"}));
  EXPECT_EQ(cased().basicTokenize("a\xC2\xA0" "b\xE3\x80\x80" "c\td\r\ne"), (Strings{"a", "b", "c", "d", "e"}));
  EXPECT_TRUE(cased().basicTokenize(" \t\n ").empty());
}

TEST(WordPiece, WordsLongerThan100CharactersAreUnk) {
  // 100 a's: a + 99 x ##a (101 ids with [UNK] nowhere); 101 a's: over the limit -> [UNK].
  const auto hundred = lower().tokenize(std::string(100, 'a'));
  ASSERT_EQ(hundred.size(), 100U);
  EXPECT_EQ(hundred.front(), "a");
  EXPECT_EQ(hundred.back(), "##a");
  EXPECT_EQ(lower().tokenize(std::string(101, 'a')), (Strings{"[UNK]"}));
  // The limit counts characters, not bytes: 100 two-byte é's (200 bytes) give 100 pieces,
  // 101 give [UNK].
  const WordPieceTokenizer withE({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xC3\xA9", "##\xC3\xA9"}, false);
  std::string accented;
  for (int i = 0; i < 100; ++i) {
    accented += "\xC3\xA9";
  }
  EXPECT_EQ(withE.tokenize(accented).size(), 100U);
  EXPECT_EQ(withE.tokenize(accented + "\xC3\xA9"), (Strings{"[UNK]"}));
}

TEST(WordPiece, EncodeAddsClsSepPadsAndTruncates) {
  const auto enc = lower().encode("hello world", 6);
  EXPECT_EQ(enc.inputIds, (Ids{2, 7, 8, 3, 0, 0}));
  EXPECT_EQ(enc.attentionMask, (Ids{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(enc.tokenTypeIds, (Ids{0, 0, 0, 0, 0, 0}));
  // maxLen 4: room for 2 pieces -> [CLS] hello world [SEP], the third word dropped.
  EXPECT_EQ(lower().encode("hello world hello", 4).inputIds, (Ids{2, 7, 8, 3}));
  EXPECT_EQ(lower().encode("", 3).inputIds, (Ids{2, 3, 0}));
  EXPECT_NE(test::messageOf<InputError>([] { (void)lower().encode("x", 1); }).find("at least 2"),
            std::string::npos);
}

TEST(WordPiece, PairsHaveTokenTypesAndLongestFirstTruncation) {
  // [CLS] hello world [SEP] un [SEP] [PAD] [PAD]
  const auto pair = lower().encodePair("hello world", "un", 8);
  EXPECT_EQ(pair.inputIds, (Ids{2, 7, 8, 3, 4, 3, 0, 0}));
  EXPECT_EQ(pair.tokenTypeIds, (Ids{0, 0, 0, 0, 1, 1, 0, 0}));
  EXPECT_EQ(pair.attentionMask, (Ids{1, 1, 1, 1, 1, 1, 0, 0}));
  // a = hello world hello world (4), b = un ##aff ##able (3), room 8 - 3 = 5:
  // 4+3 > 5, a longer -> a 3; 3+3 > 5, tie -> b 2; 3+2 = 5 fits.
  const auto cut = lower().encodePair("hello world hello world", "unaffable", 8);
  EXPECT_EQ(cut.inputIds, (Ids{2, 7, 8, 7, 3, 4, 5, 3}));
  EXPECT_EQ(cut.tokenTypeIds, (Ids{0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(cut.attentionMask, (Ids{1, 1, 1, 1, 1, 1, 1, 1}));
  // A long b and a short a: only b is cut. a = hello (1), b = 4 words, room 4 -> b 3.
  EXPECT_EQ(lower().encodePair("hello", "world world world world", 7).inputIds, (Ids{2, 7, 3, 8, 8, 8, 3}));
}

TEST(WordPiece, InvalidUtf8IsRefused) {
  const auto message = test::messageOf<InputError>([] { (void)lower().encode("ok \xC3(", 8); });
  EXPECT_NE(message.find("invalid UTF-8 at byte 3"), std::string::npos) << message;
  // Overlong "/" (C0 AF) and a UTF-16 surrogate (ED A0 80) are malformed too.
  EXPECT_THROW((void)lower().tokenize("\xC0\xAF"), InputError);
  EXPECT_THROW((void)lower().tokenize("\xED\xA0\x80"), InputError);
}

TEST(WordPieceVocab, IdsAreLineNumbersMinusOne) {
  test::TempDir dir("wordpiece");
  // CRLF line ends and a byte order mark, as Windows editors write them.
  const auto path = test::writeFile(dir.file("vocab.txt"),
                                    "\xEF\xBB\xBF[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n##s\r\n");
  const auto tok = WordPieceTokenizer::fromFile(path, true);
  EXPECT_EQ(tok.vocab().size(), 6U);
  EXPECT_EQ(tok.padId(), 0);
  EXPECT_EQ(tok.unkId(), 1);
  EXPECT_EQ(tok.clsId(), 2);
  EXPECT_EQ(tok.sepId(), 3);
  EXPECT_EQ(tok.id("##s"), 5);
  EXPECT_EQ(tok.encode("Hellos", 5).inputIds, (Ids{2, 4, 5, 3, 0}));
}

TEST(WordPieceVocab, BadFilesNameTheFileAndLine) {
  test::TempDir dir("wordpiece");
  const auto blank = test::writeFile(dir.file("blank.txt"), "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n");
  auto message = test::messageOf<InputError>([&] { (void)WordPieceTokenizer::fromFile(blank, true); });
  EXPECT_NE(message.find("'" + blank + "': line 3: empty token"), std::string::npos) << message;

  const auto dup = test::writeFile(dir.file("dup.txt"), "[PAD]\n[UNK]\nthe\n[CLS]\nthe\n[SEP]\n");
  message = test::messageOf<InputError>([&] { (void)WordPieceTokenizer::fromFile(dup, true); });
  EXPECT_NE(message.find("'" + dup + "': line 5: duplicate token 'the' (first on line 3)"), std::string::npos)
      << message;

  const auto missing = test::writeFile(dir.file("missing.txt"), "[PAD]\n[UNK]\nthe\n");
  message = test::messageOf<InputError>([&] { (void)WordPieceTokenizer::fromFile(missing, true); });
  EXPECT_NE(message.find("'" + missing + "': missing special token(s) [CLS], [SEP]"), std::string::npos)
      << message;

  message = test::messageOf<InputError>([&] { (void)WordPieceTokenizer::fromFile(dir.file("none.txt"), true); });
  EXPECT_NE(message.find("cannot be opened"), std::string::npos) << message;
}

} // namespace
} // namespace kdscope::core
