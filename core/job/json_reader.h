#pragma once
/// Reading JSON input files into typed structs, with a JSON path on every issue. Private to
/// core (it carries nlohmann's types); the job parser uses it, and it is generic enough for
/// other input files.
///
/// - parseJsonText: text to a document, refusing nesting deeper than a limit, recording the
///   keys that occur twice in one object, and placing a syntax error at "file:line:column".
/// - JsonReader: typed reads (string, boolean, number, integer of any C++ width, integer
///   array, object, array), unknown keys with "did you mean", range checks (Bound) that stay
///   quiet on a value that could not be read, and the issues in document order.
///
/// Paths read "students[1].objective.temperature"; a key that is empty or holds path syntax
/// is JSON-quoted (`"".x`, `a."b.c"`), so that every issue names its key.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/job/job_spec.h" // JobIssue: a path and a message

namespace kdscope::core::json {

/// ordered_json keeps the document's key order, which is what makes "issues in document
/// order" possible at all (nlohmann::json sorts keys).
using Json = nlohmann::ordered_json;

// ---- text of messages and paths ------------------------------------------------------------

/// A value in quotes; a long one is cut to its first 60 characters and its length.
std::string singleQuoted(std::string_view s);
/// Shortest text that reads back as the same double; integral values without ".0", so that
/// bounds read "[0, 1)".
std::string formatNumber(double value);
template <typename T> std::string formatNumber(T value) {
  return std::to_string(value);
}
/// "a, b, c".
std::string joinNames(const std::vector<std::string>& names);

/// A key as a path step: as written, or JSON-quoted when it is empty or holds '.', '[', ']'
/// or '"'.
std::string pathStep(std::string_view key);
std::string childPath(const std::string& parent, std::string_view key);
std::string indexPath(const std::string& parent, std::size_t index);
/// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
std::string parentPath(const std::string& path);

// ---- documents -----------------------------------------------------------------------------

/// No input file needs more than a few levels; nlohmann's callback parser copies values
/// recursively, so a document nested a million levels deep would overflow the stack.
constexpr std::size_t kMaxNesting = 512;

struct JsonDocument {
  Json root;
  std::set<std::string> duplicateKeys; ///< paths of keys that occur twice in one object
  /// Set when the text is not JSON, or nests deeper than the limit: the path is
  /// "sourceName:line:column" (1-based, columns count characters), then what is wrong.
  std::optional<JobIssue> error;
};

/// Parses `text` strictly (no comments, no trailing commas). Throws only what allocation
/// throws.
JsonDocument parseJsonText(const std::string& text, const std::string& sourceName,
                           std::size_t maxNesting = kMaxNesting);

// ---- bounds ----------------------------------------------------------------------------------

/// The values a field accepts, checked after reading (JsonReader::checkBound). Messages:
/// "must be >= 1, got 0", "must be > 0, got 0", "must be in [0, 1), got 1",
/// "must not be empty", "must be 'mean' or 'cls', got 'max'".
struct Bound {
  enum class Kind { None, AtLeast, Positive, Interval, NotEmpty, OneOf };
  Kind kind = Kind::None;
  double low = 0.0;
  double high = 0.0;
  bool lowIncluded = true;
  bool highIncluded = true;
  std::vector<std::string> choices; ///< OneOf
};

Bound atLeast(double minimum);
Bound positive();
Bound closed(double low, double high);     ///< [low, high]
Bound closedOpen(double low, double high); ///< [low, high)
Bound openOpen(double low, double high);   ///< (low, high)
Bound openClosed(double low, double high); ///< (low, high]
Bound notEmpty();
Bound oneOf(std::vector<std::string> choices);

// ---- the reader --------------------------------------------------------------------------------

/// Collects the issues of one document. Reading problems (wrong type, unknown key, a number
/// the C++ field cannot hold) mark their path bad; later checks on a bad path or below it are
/// dropped, since they would only repeat the problem.
class JsonReader {
public:
  /// Reads the value of the object's `index`-th known key.
  using FieldRead = std::function<void(std::size_t index, const Json& value, const std::string& path)>;
  using ElementRead = std::function<void(const Json& element, const std::string& path)>;

  /// A nested object's keys: a key written a level too high is pointed into it
  /// ("students[0].lr" -> "did you mean 'training.lr'?").
  struct NestedKeys {
    std::string key;
    std::vector<std::string> keys;
  };

  // ---- structure ----

  /// Every key of `object` in document order: a known key is read by `read`, an unknown one
  /// is an issue naming the closest known key (or a nested object's key, or all known keys).
  void readObject(const Json& object, const std::string& path, const std::vector<std::string>& keys,
                  const FieldRead& read, const std::vector<NestedKeys>& nested = {});
  /// Every element of an array; not an array is "must be <expected>".
  void readArray(const Json& value, const std::string& path, std::string_view expected, const ElementRead& read);
  /// Records where a path sits in the document (call around every value read).
  void enter(const std::string& path);
  void leave(const std::string& path);

  // ---- values ----

  void readValue(const Json& value, const std::string& path, std::string& out);
  void readValue(const Json& value, const std::string& path, bool& out);
  void readValue(const Json& value, const std::string& path, double& out);
  /// Integers, also when written as 3.0; never 2.5, and never a value T cannot hold.
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  void readValue(const Json& value, const std::string& path, T& out);
  /// An array of integers; `out` keeps its value when `value` is not an array.
  void readIntegers(const Json& value, const std::string& path, std::vector<int>& out, std::string_view expected);

  // ---- issues ----

  void issue(const std::string& path, std::string message);
  /// A reading problem: marks the path bad.
  void badValue(const std::string& path, std::string message);
  /// "must be <expected>, got <JSON type>".
  void typeError(const std::string& path, std::string_view expected, const Json& value);
  [[nodiscard]] bool isBad(const std::string& path) const;
  /// Whether the path was read from the document (not a default).
  [[nodiscard]] bool isPresent(const std::string& path) const;
  /// The issues in document order: by the position of their path, or for a path that is not
  /// in the document (a missing field), just after its nearest enclosing object.
  std::vector<JobIssue> takeIssues();

  // ---- checks (quiet on bad paths) ----

  void check(bool ok, const std::string& path, const std::string& message);
  template <typename T> void checkAtLeast(const std::string& path, T value, T minimum) {
    check(value >= minimum, path, "must be >= " + formatNumber(minimum) + ", got " + formatNumber(value));
  }
  void checkPositive(const std::string& path, double value);
  void checkInterval(const std::string& path, double value, double low, bool lowIncluded, double high,
                     bool highIncluded);
  /// "must be 'a', 'b' or 'c', got 'x'", with "did you mean" when one is close.
  void checkChoice(const std::string& path, const std::string& value, const std::vector<std::string>& allowed);
  void checkBound(const std::string& path, const std::string& value, const Bound& bound);
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>>
  void checkBound(const std::string& path, T value, const Bound& bound);

private:
  void unknownField(const std::string& path, const std::string& key, const std::vector<std::string>& known,
                    const std::vector<NestedKeys>& nested);
  [[nodiscard]] std::size_t documentRank(const std::string& path) const;

  std::vector<JobIssue> m_issues;
  std::set<std::string> m_badPaths;
  std::map<std::string, std::size_t> m_order;      // path -> rank of its key in the document
  std::map<std::string, std::size_t> m_subtreeEnd; // path -> rank just after its value
  std::size_t m_nextRank = 0;
};

template <typename T, typename>
void JsonReader::readValue(const Json& value, const std::string& path, T& out) {
  using Limits = std::numeric_limits<T>;
  constexpr bool kUnsigned = std::is_unsigned_v<T>;
  const std::string expected = kUnsigned ? "a non-negative integer" : "an integer";
  const std::string tooLarge = "must be at most " + std::to_string(Limits::max());
  const std::string tooSmall = "must be at least " + std::to_string(Limits::min());
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(Limits::max())) {
      badValue(path, tooLarge + ", got " + value.dump());
      return;
    }
    out = static_cast<T>(v);
  } else if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if (kUnsigned && v < 0) {
      badValue(path, "must be " + expected + ", got " + value.dump());
      return;
    }
    if (!kUnsigned &&
        (v < static_cast<std::int64_t>(Limits::min()) || v > static_cast<std::int64_t>(Limits::max()))) {
      badValue(path, (v < 0 ? tooSmall : tooLarge) + ", got " + value.dump());
      return;
    }
    out = static_cast<T>(v);
  } else if (value.is_number_float()) {
    const double v = value.get<double>();
    if (std::floor(v) != v || (kUnsigned && v < 0)) {
      badValue(path, "must be " + expected + ", got " + value.dump());
      return;
    }
    // 2^digits is exact as a double, unlike max(), which rounds up to it.
    const double limit = std::ldexp(1.0, Limits::digits);
    if (v >= limit || (!kUnsigned && v < -limit)) {
      badValue(path, (v < 0 ? tooSmall : tooLarge) + ", got " + value.dump());
      return;
    }
    out = static_cast<T>(v);
  } else {
    typeError(path, expected, value);
  }
}

template <typename T, typename>
void JsonReader::checkBound(const std::string& path, T value, const Bound& bound) {
  switch (bound.kind) {
  case Bound::Kind::AtLeast:
    checkAtLeast(path, value, static_cast<T>(bound.low));
    break;
  case Bound::Kind::Positive:
    checkPositive(path, static_cast<double>(value));
    break;
  case Bound::Kind::Interval:
    checkInterval(path, static_cast<double>(value), bound.low, bound.lowIncluded, bound.high, bound.highIncluded);
    break;
  case Bound::Kind::None:
  case Bound::Kind::NotEmpty:
  case Bound::Kind::OneOf:
    break;
  }
}

} // namespace kdscope::core::json
