#include "core/job/diagnostics.h"

#include <algorithm>
#include <cctype>

namespace kdscope::core {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool isUtf8Continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

/// Lower case without '_' and '-': the spelling differences that are matters of
/// convention (camelCase, kebab-case) rather than typos.
std::string foldName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c != '_' && c != '-') {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

} // namespace

TextPosition textPositionAt(std::string_view text, std::size_t offset) {
  const std::size_t end = std::min(offset, text.size());
  std::size_t begin = 0;
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    begin = std::min(kUtf8Bom.size(), end);
  }
  TextPosition pos;
  for (std::size_t i = begin; i < end; ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.column = 1;
    } else if (!isUtf8Continuation(text[i])) {
      ++pos.column;
    }
  }
  return pos;
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  // Three rolling rows: the swap rule looks two rows back.
  std::vector<std::size_t> twoBack(b.size() + 1);
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    previous[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], twoBack[j - 2] + 1);
      }
    }
    std::swap(twoBack, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::optional<std::string> closestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string folded = foldName(word);
  for (const std::string& candidate : candidates) {
    if (foldName(candidate) == folded) {
      return candidate;
    }
  }
  std::optional<std::string> best;
  std::size_t bestDistance = 0;
  for (const std::string& candidate : candidates) {
    const std::string foldedCandidate = foldName(candidate);
    // About one edit per three characters: "temprature" -> "temperature", while short
    // names only match a single typo ("lt" -> "lr", but not "x" -> "lr").
    const std::size_t allowed = std::clamp<std::size_t>(foldedCandidate.size() / 3, 1, 3);
    // The distance is at least the difference in length: a word much longer than any name
    // (a 100 MB string in a job file, bench/fuzz.sh) is not compared, which would take
    // minutes (the distance is quadratic).
    const std::size_t longer = std::max(folded.size(), foldedCandidate.size());
    if (longer - std::min(folded.size(), foldedCandidate.size()) > allowed) {
      continue;
    }
    const std::size_t distance = editDistance(folded, foldedCandidate);
    if (distance <= allowed && distance < foldedCandidate.size() && (!best || distance < bestDistance)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

} // namespace kdscope::core
