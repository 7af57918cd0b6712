// The generic JSON reader of input files (json_reader.h): parsing with a nesting limit,
// duplicate keys and located syntax errors; typed reads, unknown keys, bounds, and the
// issues in document order.

#include "core/job/json_reader.h"

#include <algorithm>
#include <utility>

#include "core/job/diagnostics.h"

namespace kdscope::core::json {

// ---- text ------------------------------------------------------------------------------------

std::string singleQuoted(std::string_view s) {
  constexpr std::size_t kShown = 60;
  if (s.size() <= 2 * kShown) {
    return "'" + std::string(s) + "'";
  }
  std::size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
    --cut; // not inside a UTF-8 sequence
  }
  return "'" + std::string(s.substr(0, cut)) + "...' (" + std::to_string(s.size()) + " bytes)";
}

std::string formatNumber(double value) {
  std::string text = Json(value).dump();
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) {
    text.resize(text.size() - 2);
  }
  return text;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

std::string pathStep(std::string_view key) {
  if (!key.empty() && key.find_first_of(".[]\"") == std::string_view::npos) {
    return std::string(key);
  }
  return Json(std::string(key)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string childPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? pathStep(key) : parent + "." + pathStep(key);
}

std::string indexPath(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string parentPath(const std::string& path) {
  const std::size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}

// ---- documents -------------------------------------------------------------------------------

namespace {

/// Records the paths of keys that occur twice in one object. nlohmann keeps only the last
/// value silently, which would hide a mistake such as two "lambda" entries.
class DuplicateKeyTracker {
public:
  Json::parser_callback_t callback() {
    return [this](int /*depth*/, Json::parse_event_t event, Json& parsed) {
      switch (event) {
      case Json::parse_event_t::object_start:
        m_stack.push_back(Frame{/*isObject=*/true, {}, 0, {}});
        break;
      case Json::parse_event_t::array_start:
        m_stack.push_back(Frame{/*isObject=*/false, {}, 0, {}});
        break;
      case Json::parse_event_t::key:
        if (!m_stack.empty() && parsed.is_string()) {
          Frame& frame = m_stack.back();
          frame.key = parsed.get<std::string>();
          if (!frame.keys.insert(frame.key).second) {
            m_duplicates.insert(currentPath());
          }
        }
        break;
      case Json::parse_event_t::value:
        finishElement();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!m_stack.empty()) {
          m_stack.pop_back();
        }
        finishElement();
        break;
      }
      return true;
    };
  }

  std::set<std::string> takeDuplicates() { return std::move(m_duplicates); }

private:
  struct Frame {
    bool isObject;
    std::string key;   // the key whose value is being parsed (objects)
    std::size_t index; // the element being parsed (arrays)
    std::set<std::string> keys;
  };

  // The same path syntax as the reader's, so its issues sort into place.
  [[nodiscard]] std::string currentPath() const {
    std::string path;
    for (const Frame& frame : m_stack) {
      path = frame.isObject ? childPath(path, frame.key) : indexPath(path, frame.index);
    }
    return path;
  }

  void finishElement() {
    if (!m_stack.empty() && !m_stack.back().isObject) {
      ++m_stack.back().index;
    }
  }

  std::vector<Frame> m_stack;
  std::set<std::string> m_duplicates;
};

/// Where the SAX parser stopped, for errors whose exception carries no byte offset
/// (nlohmann's "number overflow" is an out_of_range, not a parse_error).
class ErrorLocator : public nlohmann::json_sax<Json> {
public:
  bool null() override { return true; }
  bool boolean(bool /*value*/) override { return true; }
  bool number_integer(Json::number_integer_t /*value*/) override { return true; }
  bool number_unsigned(Json::number_unsigned_t /*value*/) override { return true; }
  bool number_float(Json::number_float_t /*value*/, const std::string& /*text*/) override { return true; }
  bool string(std::string& /*value*/) override { return true; }
  bool binary(Json::binary_t& /*value*/) override { return true; }
  bool start_object(std::size_t /*size*/) override { return true; }
  bool key(std::string& /*value*/) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t /*size*/) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& lastToken,
                   const nlohmann::detail::exception& /*error*/) override {
    m_position = position;
    m_lastToken = lastToken;
    return false;
  }

  /// Characters read when the parser stopped (the last one read is at position - 1).
  [[nodiscard]] std::size_t position() const { return m_position; }
  /// nlohmann's text of the token it stopped in.
  [[nodiscard]] const std::string& lastToken() const { return m_lastToken; }

private:
  std::size_t m_position = 0;
  std::string m_lastToken;
};

/// nlohmann's message without its "[json.exception.parse_error.101] parse error at line
/// 4, column 0: " prefix (its column is 0 after a newline; we compute our own).
std::string syntaxMessage(const std::string& what) {
  std::string message = what;
  if (const std::size_t close = message.find("] "); close != std::string::npos) {
    message.erase(0, close + 2);
  }
  if (message.rfind("parse error", 0) == 0) {
    if (const std::size_t colon = message.find(": "); colon != std::string::npos) {
      message.erase(0, colon + 2);
    }
  }
  return message;
}

std::string located(const std::string& sourceName, const std::string& text, std::size_t offset) {
  const TextPosition pos = textPositionAt(text, offset);
  return sourceName + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

JobIssue syntaxIssue(const std::string& text, const std::string& sourceName,
                     const nlohmann::detail::exception& error) {
  ErrorLocator locator;
  Json::sax_parse(text, &locator, Json::input_format_t::json, /*strict=*/true,
                  /*ignore_comments=*/false);
  // The parser's position counts the characters read, so the last one read (where it
  // gave up) is at position - 1.
  const std::size_t stop = locator.position();
  std::size_t offset = stop > 0 ? stop - 1 : 0;
  const std::string& token = locator.lastToken();
  std::string message = syntaxMessage(error.what());
  const auto says = [&message](std::string_view words) { return message.find(words) != std::string::npos; };
  // Point at the first character of an unexpected or overflowing token, as compilers do.
  // nlohmann restarts its token text only at strings and numbers, so only those tokens
  // (and the fixed literals) say where they begin; otherwise keep the stop position.
  std::size_t tokenLength = 0;
  if ((says("unexpected string literal") || says("unexpected number literal") || says("number overflow")) &&
      stop >= token.size() && text.compare(stop - token.size(), token.size(), token) == 0) {
    tokenLength = token.size();
  } else if (says("unexpected true literal") || says("unexpected null literal")) {
    tokenLength = 4;
  } else if (says("unexpected false literal")) {
    tokenLength = 5;
  }
  if (tokenLength > 0 && tokenLength <= stop) {
    offset = stop - tokenLength;
  }
  if (offset < text.size()) {
    const char at = text[offset];
    const std::size_t before = offset == 0 ? std::string::npos : text.find_last_not_of(" \t\r\n", offset - 1);
    if (at == '/') {
      message += " (JSON does not allow comments)";
    } else if ((at == '}' || at == ']') && before != std::string::npos && text[before] == ',') {
      message += " (JSON does not allow a comma before a closing bracket)";
    } else if (says("literal; expected '}'") || says("literal; expected ']'")) {
      message += " (missing ',' before it?)";
    }
  }
  return JobIssue{located(sourceName, text, offset), message};
}

/// The offset of the first bracket that nests deeper than `limit`, outside strings; npos
/// when none does.
std::size_t tooDeep(const std::string& text, std::size_t limit) {
  std::size_t depth = 0;
  bool inString = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return i;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string::npos;
}

} // namespace

JsonDocument parseJsonText(const std::string& text, const std::string& sourceName, std::size_t maxNesting) {
  JsonDocument document;
  if (const std::size_t at = tooDeep(text, maxNesting); at != std::string::npos) {
    document.error = JobIssue{located(sourceName, text, at), "arrays and objects nested more than " +
                                                                 std::to_string(maxNesting) + " levels deep"};
    return document;
  }
  DuplicateKeyTracker duplicates;
  try {
    document.root = Json::parse(text, duplicates.callback(), /*allow_exceptions=*/true,
                                /*ignore_comments=*/false);
  } catch (const nlohmann::detail::exception& error) {
    document.error = syntaxIssue(text, sourceName, error);
    return document;
  }
  document.duplicateKeys = duplicates.takeDuplicates();
  return document;
}

// ---- bounds ----------------------------------------------------------------------------------

Bound atLeast(double minimum) {
  Bound b;
  b.kind = Bound::Kind::AtLeast;
  b.low = minimum;
  return b;
}

Bound positive() {
  Bound b;
  b.kind = Bound::Kind::Positive;
  return b;
}

namespace {
Bound interval(double low, bool lowIncluded, double high, bool highIncluded) {
  Bound b;
  b.kind = Bound::Kind::Interval;
  b.low = low;
  b.high = high;
  b.lowIncluded = lowIncluded;
  b.highIncluded = highIncluded;
  return b;
}
} // namespace

Bound closed(double low, double high) {
  return interval(low, true, high, true);
}
Bound closedOpen(double low, double high) {
  return interval(low, true, high, false);
}
Bound openOpen(double low, double high) {
  return interval(low, false, high, false);
}
Bound openClosed(double low, double high) {
  return interval(low, false, high, true);
}

Bound notEmpty() {
  Bound b;
  b.kind = Bound::Kind::NotEmpty;
  return b;
}

Bound oneOf(std::vector<std::string> choices) {
  Bound b;
  b.kind = Bound::Kind::OneOf;
  b.choices = std::move(choices);
  return b;
}

// ---- the reader: structure -------------------------------------------------------------------

void JsonReader::readObject(const Json& object, const std::string& path, const std::vector<std::string>& keys,
                            const FieldRead& read, const std::vector<NestedKeys>& nested) {
  if (!object.is_object()) {
    typeError(path.empty() ? std::string("(root)") : path, "an object", object);
    return;
  }
  for (const auto& [key, value] : object.items()) {
    const std::string at = childPath(path, key);
    enter(at);
    const auto known = std::find(keys.begin(), keys.end(), key);
    if (known != keys.end()) {
      read(static_cast<std::size_t>(known - keys.begin()), value, at);
    } else {
      unknownField(at, key, keys, nested);
    }
    leave(at);
  }
}

void JsonReader::readArray(const Json& value, const std::string& path, std::string_view expected,
                           const ElementRead& read) {
  if (!value.is_array()) {
    typeError(path, expected, value);
    return;
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string at = indexPath(path, i);
    enter(at);
    read(value[i], at);
    leave(at);
  }
}

void JsonReader::unknownField(const std::string& path, const std::string& key, const std::vector<std::string>& known,
                              const std::vector<NestedKeys>& nested) {
  if (const auto match = closestMatch(key, known)) {
    badValue(path, "unknown field (did you mean " + singleQuoted(*match) + "?)");
    return;
  }
  for (const NestedKeys& section : nested) {
    if (std::find(section.keys.begin(), section.keys.end(), key) != section.keys.end()) {
      badValue(path, "unknown field (did you mean " + singleQuoted(section.key + "." + key) + "?)");
      return;
    }
  }
  badValue(path, "unknown field (known fields: " + joinNames(known) + ")");
}

// Ranks step by 2 so that "just after this subtree" (odd) never ties with a path.
void JsonReader::enter(const std::string& path) {
  m_order[path] = m_nextRank;
  m_nextRank += 2;
}

void JsonReader::leave(const std::string& path) {
  m_subtreeEnd[path] = m_nextRank - 1;
}

// ---- the reader: values ----------------------------------------------------------------------

void JsonReader::readValue(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) {
    typeError(path, "a string", value);
    return;
  }
  out = value.get<std::string>();
}

void JsonReader::readValue(const Json& value, const std::string& path, bool& out) {
  if (!value.is_boolean()) {
    typeError(path, "a boolean", value);
    return;
  }
  out = value.get<bool>();
}

void JsonReader::readValue(const Json& value, const std::string& path, double& out) {
  if (!value.is_number()) {
    typeError(path, "a number", value);
    return;
  }
  out = value.get<double>();
}

void JsonReader::readIntegers(const Json& value, const std::string& path, std::vector<int>& out,
                              std::string_view expected) {
  if (!value.is_array()) {
    typeError(path, expected, value);
    return;
  }
  out.clear();
  readArray(value, path, expected,
            [this, &out](const Json& element, const std::string& at) { readValue(element, at, out.emplace_back(0)); });
}

// ---- the reader: issues ----------------------------------------------------------------------

void JsonReader::issue(const std::string& path, std::string message) {
  m_issues.push_back(JobIssue{path, std::move(message)});
}

void JsonReader::badValue(const std::string& path, std::string message) {
  issue(path, std::move(message));
  m_badPaths.insert(path);
}

void JsonReader::typeError(const std::string& path, std::string_view expected, const Json& value) {
  badValue(path, "must be " + std::string(expected) + ", got " + value.type_name());
}

bool JsonReader::isBad(const std::string& path) const {
  for (std::string p = path;; p = parentPath(p)) {
    if (m_badPaths.count(p) != 0) {
      return true;
    }
    if (p.empty()) {
      return false;
    }
  }
}

bool JsonReader::isPresent(const std::string& path) const {
  return m_order.count(path) != 0;
}

std::size_t JsonReader::documentRank(const std::string& path) const {
  if (const auto it = m_order.find(path); it != m_order.end()) {
    return it->second;
  }
  for (std::string p = path; !p.empty();) {
    p = parentPath(p);
    if (const auto it = m_subtreeEnd.find(p); it != m_subtreeEnd.end()) {
      return it->second;
    }
  }
  return std::numeric_limits<std::size_t>::max();
}

std::vector<JobIssue> JsonReader::takeIssues() {
  std::vector<std::pair<std::size_t, JobIssue>> ranked;
  ranked.reserve(m_issues.size());
  for (JobIssue& issue : m_issues) {
    ranked.emplace_back(documentRank(issue.path), std::move(issue));
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<JobIssue> sorted;
  sorted.reserve(ranked.size());
  for (auto& entry : ranked) {
    sorted.push_back(std::move(entry.second));
  }
  m_issues.clear();
  return sorted;
}

// ---- the reader: checks ----------------------------------------------------------------------

void JsonReader::check(bool ok, const std::string& path, const std::string& message) {
  if (!ok && !isBad(path)) {
    issue(path, message);
  }
}

void JsonReader::checkPositive(const std::string& path, double value) {
  check(value > 0, path, "must be > 0, got " + formatNumber(value));
}

void JsonReader::checkInterval(const std::string& path, double value, double low, bool lowIncluded, double high,
                               bool highIncluded) {
  const bool ok = (lowIncluded ? value >= low : value > low) && (highIncluded ? value <= high : value < high);
  check(ok, path,
        "must be in " + std::string(lowIncluded ? "[" : "(") + formatNumber(low) + ", " + formatNumber(high) +
            (highIncluded ? "]" : ")") + ", got " + formatNumber(value));
}

void JsonReader::checkChoice(const std::string& path, const std::string& value,
                             const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) {
    return;
  }
  std::string message = "must be ";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    message += (i == 0 ? "" : (i + 1 == allowed.size() ? " or " : ", ")) + singleQuoted(allowed[i]);
  }
  message += ", got " + singleQuoted(value);
  if (const auto match = closestMatch(value, allowed)) {
    message += " (did you mean " + singleQuoted(*match) + "?)";
  }
  check(false, path, message);
}

void JsonReader::checkBound(const std::string& path, const std::string& value, const Bound& bound) {
  if (bound.kind == Bound::Kind::NotEmpty) {
    check(!value.empty(), path, "must not be empty");
  } else if (bound.kind == Bound::Kind::OneOf) {
    checkChoice(path, value, bound.choices);
  }
}

} // namespace kdscope::core::json
