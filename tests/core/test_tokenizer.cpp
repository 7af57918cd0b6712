// Tokenizer: word splitting, vocabulary order, special ids, truncation and padding.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/data/tokenizer.h"

namespace kdscope::core {
namespace {

using Words = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;

TEST(TokenizerWords, LowerCasesAndSplitsOnPunctuation) {
  EXPECT_EQ(Tokenizer::words("Hello, World! It's 21st-century's \"best\"."),
            (Words{"hello", "world", "it's", "21st", "century's", "best"}));
  EXPECT_EQ(Tokenizer::words("3.14 and 2,000"), (Words{"3", "14", "and", "2", "000"}));
  EXPECT_EQ(Tokenizer::words("tab\tnew\nline\r\nx"), (Words{"tab", "new", "line", "x"}));
}

TEST(TokenizerWords, KeepsOnlyInnerApostrophes) {
  EXPECT_EQ(Tokenizer::words("rock 'n' roll"), (Words{"rock", "n", "roll"}));
  EXPECT_EQ(Tokenizer::words("'tis o'clock dogs' a''b"), (Words{"tis", "o'clock", "dogs", "a", "b"}));
}

TEST(TokenizerWords, EmptyAndSeparatorOnlyTextsHaveNoWords) {
  EXPECT_TRUE(Tokenizer::words("").empty());
  EXPECT_TRUE(Tokenizer::words(" \t\n ,.;-- '' ").empty());
}

TEST(TokenizerWords, NonAsciiLettersStayInsideWordsAndPunctuationSeparates) {
  // "Café “naïve” résumé—done…": curly quotes, the em dash and the ellipsis (U+2000 block)
  // separate; é and ï are letters. Only ASCII is lower-cased.
  EXPECT_EQ(Tokenizer::words("Caf\xC3\xA9 \xE2\x80\x9Cna\xC3\xAFve\xE2\x80\x9D "
                             "r\xC3\xA9sum\xC3\xA9\xE2\x80\x94"
                             "done\xE2\x80\xA6"),
            (Words{"caf\xC3\xA9", "na\xC3\xAFve", "r\xC3\xA9sum\xC3\xA9", "done"}));
  EXPECT_EQ(Tokenizer::words("CAF\xC3\x89"), (Words{"caf\xC3\x89"}));
  EXPECT_EQ(Tokenizer::words("l'\xC3\xA9t\xC3\xA9"), (Words{"l'\xC3\xA9t\xC3\xA9"}));
  // No-break space, the replacement character and a byte order mark separate.
  EXPECT_EQ(Tokenizer::words("a\xC2\xA0"
                             "b\xEF\xBF\xBD"
                             "c\xEF\xBB\xBF"
                             "d"),
            (Words{"a", "b", "c", "d"}));
}

std::vector<std::string> sampleTexts() {
  return {"b a c", "A b", "a d", "c"};
}

TEST(TokenizerBuild, OrdersByFrequencyThenAlphabetically) {
  // Counts: a 3, b 2, c 2, d 1; b and c tie and go alphabetically.
  const auto tokenizer = Tokenizer::build(sampleTexts(), /*vocabSize=*/100, /*minFreq=*/1);
  EXPECT_EQ(tokenizer.vocab(), (Words{"[PAD]", "[UNK]", "[CLS]", "a", "b", "c", "d"}));
  const auto ties = Tokenizer::build({"zeta alpha", "mid"}, 100, 1);
  EXPECT_EQ(ties.vocab(), (Words{"[PAD]", "[UNK]", "[CLS]", "alpha", "mid", "zeta"}));
}

TEST(TokenizerBuild, MinFreqDropsRareWords) {
  const auto tokenizer = Tokenizer::build(sampleTexts(), 100, /*minFreq=*/2);
  EXPECT_EQ(tokenizer.vocab(), (Words{"[PAD]", "[UNK]", "[CLS]", "a", "b", "c"}));
  EXPECT_EQ(tokenizer.id("d"), Tokenizer::kUnk);
  const auto none = Tokenizer::build(sampleTexts(), 100, /*minFreq=*/4);
  EXPECT_EQ(none.vocab(), (Words{"[PAD]", "[UNK]", "[CLS]"}));
  // minFreq 0 keeps everything, like 1.
  EXPECT_EQ(Tokenizer::build(sampleTexts(), 100, 0).vocab().size(), 7U);
}

TEST(TokenizerBuild, VocabSizeCountsTheSpecialTokens) {
  EXPECT_EQ(Tokenizer::build(sampleTexts(), /*vocabSize=*/5, 1).vocab(),
            (Words{"[PAD]", "[UNK]", "[CLS]", "a", "b"}));
  EXPECT_EQ(Tokenizer::build(sampleTexts(), 3, 1).vocab(), (Words{"[PAD]", "[UNK]", "[CLS]"}));
  EXPECT_THROW(Tokenizer::build(sampleTexts(), 2, 1), InputError);
}

TEST(TokenizerBuild, DoesNotDependOnTextOrder) {
  auto texts = sampleTexts();
  std::reverse(texts.begin(), texts.end());
  EXPECT_EQ(Tokenizer::build(texts, 100, 1).vocab(), Tokenizer::build(sampleTexts(), 100, 1).vocab());
}

TEST(TokenizerEncode, PrependsClsMapsUnknownWordsAndPads) {
  const auto tokenizer = Tokenizer::build(sampleTexts(), 100, 1); // a 3, b 4, c 5, d 6
  EXPECT_EQ(Tokenizer::kPad, 0);
  EXPECT_EQ(Tokenizer::kUnk, 1);
  EXPECT_EQ(Tokenizer::kCls, 2);
  EXPECT_EQ(tokenizer.encode("A b zzz", 6), (Ids{2, 3, 4, 1, 0, 0}));
  EXPECT_EQ(tokenizer.encode("", 3), (Ids{2, 0, 0}));
}

TEST(TokenizerEncode, TruncatesToSeqLenIncludingCls) {
  const auto tokenizer = Tokenizer::build(sampleTexts(), 100, 1);
  EXPECT_EQ(tokenizer.encode("a b c d a", 4), (Ids{2, 3, 4, 5}));
  EXPECT_EQ(tokenizer.encode("a b c d a", 1), (Ids{2}));
  EXPECT_THROW((void)tokenizer.encode("a", 0), InputError);
}

TEST(TokenizerIds, LooksUpLowerCasedWordsAndSpecialTokens) {
  const auto tokenizer = Tokenizer::build(sampleTexts(), 100, 1);
  EXPECT_EQ(tokenizer.id("a"), 3);
  EXPECT_EQ(tokenizer.id("d"), 6);
  EXPECT_EQ(tokenizer.id("zzz"), Tokenizer::kUnk);
  EXPECT_EQ(tokenizer.id("A"), Tokenizer::kUnk); // id() takes words as words() returns them
  EXPECT_EQ(tokenizer.id("[PAD]"), 0);
  EXPECT_EQ(tokenizer.id("[CLS]"), 2);
}

TEST(TokenizerVocab, RebuildsFromASavedVocabulary) {
  const Tokenizer tokenizer({"[PAD]", "[UNK]", "[CLS]", "x", "y"});
  EXPECT_EQ(tokenizer.encode("y x q", 5), (Ids{2, 4, 3, 1, 0}));
  const auto built = Tokenizer::build(sampleTexts(), 100, 1);
  const Tokenizer copy(built.vocab());
  EXPECT_EQ(copy.encode("d c b a e", 7), built.encode("d c b a e", 7));
  // A duplicated word keeps its first id.
  EXPECT_EQ(Tokenizer({"[PAD]", "[UNK]", "[CLS]", "x", "x"}).id("x"), 3);
}

TEST(TokenizerVocab, RejectsAVocabularyWithoutTheSpecialTokens) {
  EXPECT_THROW(Tokenizer({"[PAD]", "[UNK]"}), InputError);
  EXPECT_THROW(Tokenizer({"a", "b", "c"}), InputError);
  EXPECT_THROW(Tokenizer({"[PAD]", "[CLS]", "[UNK]"}), InputError);
}

} // namespace
} // namespace kdscope::core
