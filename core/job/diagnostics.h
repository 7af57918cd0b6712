#pragma once
/// Small text helpers for user-facing messages about input files: where a byte offset lies
/// (line and column) and which known name a mistyped one most likely meant. Private to
/// core; the job parser uses them, and they are plain enough for other input readers.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kdscope::core {

/// A position in a text, both 1-based.
struct TextPosition {
  std::size_t line = 1;
  std::size_t column = 1; ///< counts characters (UTF-8 code points), not bytes
};

/// The line and column of the byte at `offset`. An offset at or past the end gives the
/// position just after the last character, which is where "unexpected end of input" is.
/// A leading UTF-8 byte-order mark takes no column.
TextPosition textPositionAt(std::string_view text, std::size_t offset);

/// Optimal-string-alignment edit distance: insertions, deletions, substitutions and
/// swaps of two neighbouring characters each cost 1 (a swap is the commonest typo).
std::size_t editDistance(std::string_view a, std::string_view b);

/// The candidate that `word` most likely misspells, or nothing when none is close.
/// Case, '_' and '-' are ignored first (batchSize -> batch_size); otherwise the nearest
/// candidate by editDistance wins if the distance is small next to the candidate's length.
/// Ties go to the earlier candidate.
std::optional<std::string> closestMatch(std::string_view word, const std::vector<std::string>& candidates);

} // namespace kdscope::core
