#pragma once
/// One loader per task (internal to core/data; dataset.cpp dispatches to them, tests call
/// them directly). Every loader reads the layout that scripts/fetch-data.sh leaves in the
/// data cache folder: <dataDir>/<source>/<path inside the package>. See docs/data.md.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/job/job_spec.h"

namespace kdscope::core::loaders {

/// Paths of the real files, relative to the data cache folder.
inline constexpr const char* kPolarityPath =
    "python3-pattern/usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv";
inline constexpr const char* kHedgePath =
    "python3-pattern/usr/share/doc/python3-pattern/test/corpora/uncertainty-conll2010.csv";
inline constexpr const char* kSpamDataPath = "spam-assassin/package/data";
inline constexpr const char* kWordnetPath = "wordnet-base/usr/share/wordnet";
inline constexpr const char* kFortunesPath = "fortunes/usr/share/games/fortunes";
inline constexpr const char* kFashionMnistPath = "dataset-fashion-mnist/usr/share/datasets/fashion-mnist";
inline constexpr const char* kDigitsPath =
    "python3-sklearn/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv";

/// The spam corpus folders in load order; ham for *-ham-*, spam for spam-*.
inline constexpr std::array<const char*, 5> kSpamGroups = {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1",
                                                           "spam-2"};

/// WordNet's lexicographer file names by file number 00..44 (lexnames(5WN)).
const std::array<const char*, 45>& wordnetLexnames();

/// The message tail that says how to fetch a source, e.g. "run 'scripts/fetch-data.sh
/// DIR' (fetches Debian package python3-pattern)".
std::string fetchHint(const std::string& dataDir, const std::string& source);

/// Parses CSV text (RFC 4180 style): comma-separated fields, double-quoted fields may hold
/// commas, line breaks and doubled quotes (""). Records end at LF or CRLF; a leading UTF-8
/// byte order mark is dropped; blank lines are skipped. Throws InputError naming
/// `sourceName` and the line on an unterminated quote or text after a closing quote.
/// `recordLines`, when given, receives the 1-based line on which each record starts.
std::vector<std::vector<std::string>> parseCsv(const std::string& text, const std::string& sourceName,
                                               std::vector<std::size_t>* recordLines = nullptr);

/// The body of a raw e-mail: what follows the first blank line of the header block (the
/// whole text when there is no blank line).
std::string emailBody(const std::string& email);

/// Crude HTML removal: every "<" followed by a letter, "/", "!" or "?" up to the next ">"
/// becomes a space. Entities are left as they are.
std::string stripHtmlTags(const std::string& text);

/// Decodes the character references that the text sets carry as escapes: &quot; &amp;
/// &lt; &gt; &apos;, &nbsp; (as a plain space) and numeric ones (&#39; &#x27;) as UTF-8.
/// Any other "&name;" is left as it is.
std::string decodeHtmlEntities(const std::string& text);

/// Runs of whitespace become one space; leading and trailing whitespace is removed.
std::string collapseWhitespace(const std::string& text);

/// The centres behind a synthetic_hierarchy data set, for tests and analyses.
struct HierarchyCentres {
  std::vector<float> superCentres; ///< [superClasses, dim]
  std::vector<float> classCentres; ///< [superClasses * classesPerSuper, dim]
};

// Loaders. Each throws InputError naming the task, the file at fault and the fetch command.
RawDataset loadPolarity(const std::string& dataDir);
RawDataset loadHedge(const std::string& dataDir);
RawDataset loadSpam(const std::string& dataDir);
RawDataset loadSupersense(const std::string& dataDir);
RawDataset loadFortune(const std::string& dataDir, int minClassSize);
RawDataset loadFashionMnist(const std::string& dataDir);
RawDataset loadDigits(const std::string& dataDir);

/// Tang et al.'s hierarchical Gaussian mixture, deterministic in `seed`. Class k =
/// s * classesPerSuper + j is named "s<s>c<j>". `centres`, when given, receives the centres.
RawDataset generateSyntheticHierarchy(const TaskSpec& spec, std::uint64_t seed,
                                      HierarchyCentres* centres = nullptr);

/// The ground-truth sequence task for the head analyses (docs/data.md): each example is a
/// run of filler words f0..f15 (between (max_len - 1) / 2 and max_len - 1 words) holding one
/// "mark" and one "partner" at two distinct uniformly drawn positions; the label says which
/// comes first (0 "partner_first", 1 "mark_first"; examples_per_class of each, interleaved).
/// The bag of words is the same for both classes, so only the order, read through attention
/// (the classifier sees the [CLS] state alone), decides it. Deterministic in `seed`.
inline constexpr const char* kSyntheticOrderTask = "synthetic_order";
inline constexpr std::uint64_t kSyntheticOrderFillers = 16;
RawDataset generateSyntheticOrder(const TaskSpec& spec, std::uint64_t seed);

} // namespace kdscope::core::loaders
