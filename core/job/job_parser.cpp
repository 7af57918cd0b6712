// Above 800 lines, to be split (issue #12): the JSON reader (duplicate keys, error
// locations), the job validation, and the writers (`*ToJson`), which should share one field
// table with the reader. Not yet done: see docs/architecture.md.
//
// Parsing, validation and normalisation of job files (docs/job-format.md).
//
// Two passes over the document. The first reads every field into a JobSpec, reporting
// unknown keys and wrong JSON types; the second checks ranges and the rules that tie
// fields together (width and heads, tasks and architectures). Every issue names a JSON
// path; at the end the issues are sorted by where their path sits in the document, so the
// user reads them top to bottom even though the second pass visits the struct, not the
// text. Nothing here throws out of parseJob, loadJobFile or jobToJson.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "core/job/diagnostics.h"
#include "core/job/job_spec.h"

namespace kdscope::core {
namespace {

// ordered_json keeps the document's key order, which is what makes "issues in document
// order" possible at all (nlohmann::json sorts keys).
using Json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 5> kTextTasks = {"polarity", "hedge", "spam", "supersense", "fortune"};
constexpr std::array<std::string_view, 3> kVectorTasks = {"fashion_mnist", "digits", "synthetic_hierarchy"};
constexpr std::string_view kTransformer = "transformer";
constexpr std::string_view kMlp = "mlp";
constexpr std::string_view kReservedStudentName = "teacher";

enum class TaskKind { Text, Vector, Unknown };

TaskKind taskKind(std::string_view name) {
  if (std::find(kTextTasks.begin(), kTextTasks.end(), name) != kTextTasks.end()) {
    return TaskKind::Text;
  }
  if (std::find(kVectorTasks.begin(), kVectorTasks.end(), name) != kVectorTasks.end()) {
    return TaskKind::Vector;
  }
  return TaskKind::Unknown;
}

std::vector<std::string> allTaskNames() {
  std::vector<std::string> names(kTextTasks.begin(), kTextTasks.end());
  names.insert(names.end(), kVectorTasks.begin(), kVectorTasks.end());
  return names;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

/// A value in quotes; a long one (a 100 MB string in a job file, bench/fuzz.sh) is cut to
/// its first 60 characters and its length, so that the message stays readable.
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

/// Shortest text that reads back as the same double; integral values without ".0" so
/// that bounds read "[0, 1)".
std::string formatNumber(double value) {
  std::string text = Json(value).dump();
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) {
    text.resize(text.size() - 2);
  }
  return text;
}

template <typename T> std::string formatNumber(T value) {
  return std::to_string(value);
}

/// A key as a path step: as written, or JSON-quoted when it is empty or holds characters
/// of the path syntax, so that every issue has a path that names its key (`"".x`, `a."b.c"`).
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

/// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
std::string parentPath(const std::string& path) {
  const std::size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}

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

  [[nodiscard]] const std::set<std::string>& duplicates() const { return m_duplicates; }

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
  const TextPosition pos = textPositionAt(text, offset);
  return JobIssue{sourceName + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column), message};
}

/// Reads a parsed document into a JobSpec and collects every issue.
class JobReader {
public:
  explicit JobReader(std::set<std::string> duplicateKeys) : m_duplicateKeys(std::move(duplicateKeys)) {}

  JobSpec read(const Json& root) {
    JobSpec job;
    enter("");
    readFields(root, "", jobFields(job));
    leave("");
    for (const std::string& path : m_duplicateKeys) {
      issue(path, "duplicate key: it appears more than once in the same object");
    }
    validate(job);
    return job;
  }

  /// The issues in document order: by the position of their path, or for a path that is
  /// not in the document (a missing field), just after its nearest enclosing object.
  std::vector<JobIssue> takeIssues() {
    std::vector<std::pair<std::size_t, JobIssue>> ranked;
    ranked.reserve(m_issues.size());
    for (JobIssue& issue : m_issues) {
      ranked.emplace_back(documentRank(issue.path), std::move(issue));
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<JobIssue> sorted;
    sorted.reserve(ranked.size());
    for (auto& entry : ranked) {
      sorted.push_back(std::move(entry.second));
    }
    m_issues.clear();
    return sorted;
  }

private:
  using ValueReader = std::function<void(const Json& value, const std::string& path)>;

  struct Field {
    std::string_view key;
    ValueReader read;
  };

  /// A sub-object whose keys are suggested when one of them is written a level too high
  /// ("students[0].lr" -> "training.lr").
  struct Section {
    std::string_view key;
    std::vector<std::string> keys;
  };

  // ---- issues and document positions ---------------------------------------------------

  void issue(const std::string& path, std::string message) {
    m_issues.push_back(JobIssue{path, std::move(message)});
  }

  /// A reading problem: later checks on this path (and below it) would only repeat it.
  void badValue(const std::string& path, std::string message) {
    issue(path, std::move(message));
    m_badPaths.insert(path);
  }

  void typeError(const std::string& path, std::string_view expected, const Json& value) {
    badValue(path, "must be " + std::string(expected) + ", got " + value.type_name());
  }

  [[nodiscard]] bool isBad(const std::string& path) const {
    for (std::string p = path;; p = parentPath(p)) {
      if (m_badPaths.count(p) != 0) {
        return true;
      }
      if (p.empty()) {
        return false;
      }
    }
  }

  [[nodiscard]] bool isPresent(const std::string& path) const { return m_order.count(path) != 0; }

  // Ranks step by 2 so that "just after this subtree" (odd) never ties with a path.
  void enter(const std::string& path) {
    m_order[path] = m_nextRank;
    m_nextRank += 2;
  }
  void leave(const std::string& path) { m_subtreeEnd[path] = m_nextRank - 1; }

  [[nodiscard]] std::size_t documentRank(const std::string& path) const {
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

  // ---- structure ------------------------------------------------------------------------

  void readFields(const Json& object, const std::string& path, const std::vector<Field>& fields,
                  const std::vector<Section>& sections = {}) {
    if (!object.is_object()) {
      typeError(path.empty() ? std::string("(root)") : path, "an object", object);
      return;
    }
    for (const auto& [key, value] : object.items()) {
      const std::string at = childPath(path, key);
      enter(at);
      const auto field =
          std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
      if (field != fields.end()) {
        field->read(value, at);
      } else {
        unknownField(at, key, fields, sections);
      }
      leave(at);
    }
  }

  void unknownField(const std::string& path, const std::string& key, const std::vector<Field>& fields,
                    const std::vector<Section>& sections) {
    std::vector<std::string> known;
    for (const Field& field : fields) {
      known.emplace_back(field.key);
    }
    if (const auto match = closestMatch(key, known)) {
      badValue(path, "unknown field (did you mean " + singleQuoted(*match) + "?)");
      return;
    }
    for (const Section& section : sections) {
      if (std::find(section.keys.begin(), section.keys.end(), key) != section.keys.end()) {
        badValue(path,
                 "unknown field (did you mean " + singleQuoted(std::string(section.key) + "." + key) + "?)");
        return;
      }
    }
    badValue(path, "unknown field (known fields: " + joinNames(known) + ")");
  }

  static std::vector<std::string> keysOf(const std::vector<Field>& fields) {
    std::vector<std::string> keys;
    for (const Field& field : fields) {
      keys.emplace_back(field.key);
    }
    return keys;
  }

  template <typename T> Field scalar(std::string_view key, T& target) {
    return Field{
        key, [this, &target](const Json& value, const std::string& path) { readValue(value, path, target); }};
  }

  // ---- scalar values ----------------------------------------------------------------------

  void readValue(const Json& value, const std::string& path, std::string& out) {
    if (!value.is_string()) {
      typeError(path, "a string", value);
      return;
    }
    out = value.get<std::string>();
  }

  void readValue(const Json& value, const std::string& path, bool& out) {
    if (!value.is_boolean()) {
      typeError(path, "a boolean", value);
      return;
    }
    out = value.get<bool>();
  }

  void readValue(const Json& value, const std::string& path, double& out) {
    if (!value.is_number()) {
      typeError(path, "a number", value);
      return;
    }
    out = value.get<double>();
  }

  /// Integers, also when written as 3.0 (what some tools emit); never 2.5, and never a
  /// value the C++ field cannot hold.
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  void readValue(const Json& value, const std::string& path, T& out) {
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
      if (std::floor(v) != v) {
        badValue(path, "must be " + expected + ", got " + value.dump());
        return;
      }
      if (kUnsigned && v < 0) {
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

  // ---- the job's objects -----------------------------------------------------------------

  std::vector<Field> jobFields(JobSpec& job) {
    return {
        scalar("name", job.name),
        scalar("seed", job.seed),
        scalar("data_dir", job.dataDir),
        scalar("cache_teacher_outputs", job.cacheTeacherOutputs),
        scalar("teacher_cache_budget_mb", job.teacherCacheBudgetMb),
        Field{"tasks", [this, &job](const Json& v, const std::string& at) { readTasks(v, at, job); }},
        Field{"teacher",
              [this, &job](const Json& v, const std::string& at) { readTeacher(v, at, job.teacher); }},
        Field{"students", [this, &job](const Json& v, const std::string& at) { readStudents(v, at, job); }},
        Field{"recording",
              [this, &job](const Json& v, const std::string& at) {
                readFields(v, at, recordingFields(job.recording));
              }},
        Field{"knowledge_controls",
              [this, &job](const Json& v, const std::string& at) { readKnowledgeControls(v, at, job); }},
        scalar("analyze", job.analyze),
    };
  }

  /// Present means enabled (unless it says "enabled": false).
  void readKnowledgeControls(const Json& value, const std::string& path, JobSpec& job) {
    KnowledgeControlsSpec& kc = job.knowledgeControls;
    kc.enabled = true;
    readFields(value, path,
               {
                   scalar("enabled", kc.enabled),
                   Field{"architecture",
                         [this, &kc](const Json& v, const std::string& at) {
                           readFields(v, at, architectureFields(kc.architecture));
                         }},
                   Field{"training",
                         [this, &kc](const Json& v, const std::string& at) {
                           readFields(v, at, trainingFields(kc.training));
                         }},
                   scalar("lambda", kc.lambda),
                   scalar("temperature", kc.temperature),
               },
               nestedSections(/*withObjective=*/false));
  }

  /// A number, or "matched" (the epsilon matched to the teacher, computed by the engine).
  void readLabelSmoothing(const Json& value, const std::string& path, ObjectiveSpec& objective) {
    if (value.is_string()) {
      if (value.get<std::string>() == "matched") {
        objective.labelSmoothingMatched = true;
        objective.labelSmoothing = 0.0;
      } else {
        badValue(path, "must be a number in [0, 1) or 'matched', got " + singleQuoted(value.get<std::string>()));
      }
      return;
    }
    objective.labelSmoothingMatched = false;
    readValue(value, path, objective.labelSmoothing);
  }

  std::vector<Field> taskFields(TaskSpec& task) {
    return {
        scalar("name", task.name),
        scalar("eval_fraction", task.evalFraction),
        scalar("max_examples", task.maxExamples),
        scalar("max_len", task.maxLen),
        scalar("vocab_size", task.vocabSize),
        scalar("min_freq", task.minFreq),
        scalar("min_class_size", task.minClassSize),
        scalar("super_classes", task.superClasses),
        scalar("classes_per_super", task.classesPerSuper),
        scalar("dim", task.dim),
        scalar("examples_per_class", task.examplesPerClass),
        scalar("super_spread", task.superSpread),
        scalar("class_spread", task.classSpread),
        scalar("noise", task.noise),
    };
  }

  std::vector<Field> architectureFields(ArchitectureSpec& arch) {
    return {
        scalar("type", arch.type),
        scalar("layers", arch.layers),
        scalar("heads", arch.heads),
        scalar("width", arch.width),
        scalar("ffn", arch.ffn),
        scalar("dropout", arch.dropout),
        Field{"hidden",
              [this, &arch](const Json& v, const std::string& at) { readHidden(v, at, arch.hidden); }},
    };
  }

  std::vector<Field> trainingFields(TrainingSpec& training) {
    return {
        scalar("epochs", training.epochs),
        scalar("batch_size", training.batchSize),
        scalar("lr", training.lr),
        scalar("weight_decay", training.weightDecay),
        scalar("warmup_fraction", training.warmupFraction),
        scalar("grad_clip", training.gradClip),
    };
  }

  std::vector<Field> objectiveFields(ObjectiveSpec& objective) {
    return {
        scalar("lambda", objective.lambda),      scalar("temperature", objective.temperature),
        scalar("t_squared", objective.tSquared), Field{"label_smoothing",
              [this, &objective](const Json& v, const std::string& at) { readLabelSmoothing(v, at, objective); }},
        scalar("logit_mse", objective.logitMse), scalar("teacher_targets", objective.teacherTargets),
        scalar("hidden_mse", objective.hiddenMse), scalar("hidden_cosine", objective.hiddenCosine),
        scalar("pkd", objective.pkd),            scalar("attention_kl", objective.attentionKl),
        scalar("attention_mse", objective.attentionMse), scalar("infonce", objective.infoNce),
        scalar("mi_alpha", objective.miAlpha),   scalar("alpha", objective.alpha),
        Field{"layer_map",
              [this, &objective](const Json& v, const std::string& at) { readLayerMap(v, at, objective); }},
    };
  }

  std::vector<Field> augmentationFields(AugmentationSpec& augmentation) {
    return {
        scalar("mask", augmentation.mask),       scalar("replace", augmentation.replace),
        scalar("swap", augmentation.swap),       scalar("delete", augmentation.deletion),
        scalar("mixup", augmentation.mixup),     scalar("mixup_alpha", augmentation.mixupAlpha),
    };
  }

  /// "uniform", "last", or an explicit list of teacher hidden-state indices.
  void readLayerMap(const Json& value, const std::string& path, ObjectiveSpec& objective) {
    if (value.is_string()) {
      objective.layerMap = value.get<std::string>();
      objective.layerList.clear();
      return;
    }
    if (!value.is_array()) {
      typeError(path, "'uniform', 'last' or an array of teacher layer indices", value);
      return;
    }
    objective.layerMap = "list";
    readHidden(value, path, objective.layerList);
  }

  std::vector<Field> recordingFields(RecordingSpec& recording) {
    return {
        scalar("attention_examples", recording.attentionExamples),
        scalar("pooling", recording.pooling),
        scalar("log_every", recording.logEvery),
        scalar("hidden", recording.hidden),
        scalar("token_hidden_examples", recording.tokenHiddenExamples),
        scalar("float16", recording.float16),
        scalar("example_records", recording.exampleRecords),
        scalar("max_file_mb", recording.maxFileMb),
    };
  }

  void readTasks(const Json& value, const std::string& path, JobSpec& job) {
    if (!value.is_array()) {
      typeError(path, "an array", value);
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      const std::string at = indexPath(path, i);
      enter(at);
      // One entry per element, valid or not, so that indices keep matching paths.
      TaskSpec& task = job.tasks.emplace_back();
      const Json& element = value[i];
      if (element.is_string()) {
        task.name = element.get<std::string>();
        m_taskNamePaths.push_back(at);
      } else {
        m_taskNamePaths.push_back(childPath(at, "name"));
        if (element.is_object()) {
          readFields(element, at, taskFields(task));
        } else {
          typeError(at, "a task name or an object", element);
        }
      }
      leave(at);
    }
  }

  void readTeacher(const Json& value, const std::string& path, TeacherSpec& teacher) {
    readFields(value, path,
               {
                   Field{"architecture",
                         [this, &teacher](const Json& v, const std::string& at) {
                           readFields(v, at, architectureFields(teacher.architecture));
                         }},
                   Field{"training",
                         [this, &teacher](const Json& v, const std::string& at) {
                           readFields(v, at, trainingFields(teacher.training));
                         }},
                   scalar("checkpoint", teacher.checkpoint),
                   scalar("epoch_checkpoints", teacher.epochCheckpoints),
               },
               nestedSections(/*withObjective=*/false));
  }

  void readStudents(const Json& value, const std::string& path, JobSpec& job) {
    if (!value.is_array()) {
      typeError(path, "an array", value);
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      const std::string at = indexPath(path, i);
      enter(at);
      StudentSpec& student = job.students.emplace_back();
      readFields(value[i], at,
                 {
                     scalar("name", student.name),
                     Field{"architecture",
                           [this, &student](const Json& v, const std::string& p) {
                             readFields(v, p, architectureFields(student.architecture));
                           }},
                     Field{"training",
                           [this, &student](const Json& v, const std::string& p) {
                             readFields(v, p, trainingFields(student.training));
                           }},
                     Field{"objective",
                           [this, &student](const Json& v, const std::string& p) {
                             readFields(v, p, objectiveFields(student.objective));
                           }},
                     Field{"augmentation",
                           [this, &student](const Json& v, const std::string& p) {
                             readFields(v, p, augmentationFields(student.augmentation));
                           }},
                     scalar("teacher_epoch", student.teacherEpoch),
                 },
                 nestedSections(/*withObjective=*/true));
      leave(at);
    }
  }

  std::vector<Section> nestedSections(bool withObjective) {
    // The readers are built on scratch structs only to list their keys: one list of keys
    // per object, so suggestions cannot drift from what is accepted.
    ArchitectureSpec architecture;
    TrainingSpec training;
    ObjectiveSpec objective;
    AugmentationSpec augmentation;
    std::vector<Section> sections = {
        Section{"architecture", keysOf(architectureFields(architecture))},
        Section{"training", keysOf(trainingFields(training))},
    };
    if (withObjective) {
      sections.push_back(Section{"objective", keysOf(objectiveFields(objective))});
      sections.push_back(Section{"augmentation", keysOf(augmentationFields(augmentation))});
    }
    return sections;
  }

  void readHidden(const Json& value, const std::string& path, std::vector<int>& out) {
    if (!value.is_array()) {
      typeError(path, "an array of layer widths", value);
      return;
    }
    out.clear();
    for (std::size_t i = 0; i < value.size(); ++i) {
      const std::string at = indexPath(path, i);
      enter(at);
      readValue(value[i], at, out.emplace_back(0));
      leave(at);
    }
  }

  // ---- ranges and cross-field rules ------------------------------------------------------

  void check(bool ok, const std::string& path, const std::string& message) {
    if (!ok && !isBad(path)) {
      issue(path, message);
    }
  }

  template <typename T> void checkAtLeast(const std::string& path, T value, T minimum) {
    check(value >= minimum, path, "must be >= " + formatNumber(minimum) + ", got " + formatNumber(value));
  }

  void checkPositive(const std::string& path, double value) {
    check(value > 0, path, "must be > 0, got " + formatNumber(value));
  }

  void checkInterval(const std::string& path, double value, double low, bool lowIncluded, double high,
                     bool highIncluded) {
    const bool ok =
        (lowIncluded ? value >= low : value > low) && (highIncluded ? value <= high : value < high);
    check(ok, path,
          "must be in " + std::string(lowIncluded ? "[" : "(") + formatNumber(low) + ", " +
              formatNumber(high) + (highIncluded ? "]" : ")") + ", got " + formatNumber(value));
  }

  void checkChoice(const std::string& path, const std::string& value,
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

  void validate(const JobSpec& job) {
    check(!job.name.empty(), "name", "must not be empty");
    checkAtLeast("teacher_cache_budget_mb", job.teacherCacheBudgetMb, 0.0);
    validateTasks(job.tasks);
    validateArchitecture(job.teacher.architecture, "teacher.architecture");
    validateTraining(job.teacher.training, "teacher.training");
    validateStudents(job.students);
    validateStudentsAgainstTeacher(job);
    validateRecording(job.recording);
    validateKnowledgeControls(job);
    validateArchitectureFit(job);
  }

  void validateKnowledgeControls(const JobSpec& job) {
    const KnowledgeControlsSpec& kc = job.knowledgeControls;
    if (!kc.enabled) {
      return;
    }
    validateArchitecture(kc.architecture, "knowledge_controls.architecture");
    validateTraining(kc.training, "knowledge_controls.training");
    checkInterval("knowledge_controls.lambda", kc.lambda, 0, false, 1, true);
    checkPositive("knowledge_controls.temperature", kc.temperature);
  }

  void validateTasks(const std::vector<TaskSpec>& tasks) {
    if (!isPresent("tasks")) {
      issue("tasks", "required field is missing (list at least one task)");
      return;
    }
    check(!tasks.empty(), "tasks", "must list at least one task");
    std::map<std::string, std::size_t> firstIndex;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const TaskSpec& task = tasks[i];
      const std::string at = indexPath("tasks", i);
      const std::string& namePath = m_taskNamePaths[i];
      if (!isBad(namePath) && !isPresent(namePath)) {
        badValue(namePath, "required field is missing (the task's name, e.g. 'polarity')");
      }
      if (taskKind(task.name) == TaskKind::Unknown) {
        std::string message = "unknown task " + singleQuoted(task.name);
        if (const auto match = closestMatch(task.name, allTaskNames())) {
          message += " (did you mean " + singleQuoted(*match) + "?)";
        }
        check(false, namePath, message + "; known tasks: " + joinNames(allTaskNames()));
      } else if (const auto [it, inserted] = firstIndex.emplace(task.name, i); !inserted) {
        check(false, namePath,
              "duplicate task " + singleQuoted(task.name) + " (also " + indexPath("tasks", it->second) + ")");
      }
      checkInterval(childPath(at, "eval_fraction"), task.evalFraction, 0, false, 1, false);
      checkAtLeast(childPath(at, "max_examples"), task.maxExamples, 0L);
      checkAtLeast(childPath(at, "max_len"), task.maxLen, 2);
      checkAtLeast(childPath(at, "vocab_size"), task.vocabSize, 4);
      checkAtLeast(childPath(at, "min_freq"), task.minFreq, 1);
      checkAtLeast(childPath(at, "min_class_size"), task.minClassSize, 1);
      checkAtLeast(childPath(at, "super_classes"), task.superClasses, 1);
      checkAtLeast(childPath(at, "classes_per_super"), task.classesPerSuper, 1);
      checkAtLeast(childPath(at, "dim"), task.dim, 1);
      checkAtLeast(childPath(at, "examples_per_class"), task.examplesPerClass, 1);
      checkPositive(childPath(at, "super_spread"), task.superSpread);
      checkPositive(childPath(at, "class_spread"), task.classSpread);
      checkPositive(childPath(at, "noise"), task.noise);
    }
  }

  void validateArchitecture(const ArchitectureSpec& arch, const std::string& path) {
    const std::string typePath = childPath(path, "type");
    const std::string hiddenPath = childPath(path, "hidden");
    checkChoice(typePath, arch.type, {std::string(kTransformer), std::string(kMlp)});
    if (arch.type == kTransformer) {
      const std::string widthPath = childPath(path, "width");
      const std::string headsPath = childPath(path, "heads");
      checkAtLeast(childPath(path, "layers"), arch.layers, 1);
      checkAtLeast(headsPath, arch.heads, 1);
      checkAtLeast(widthPath, arch.width, 1);
      checkAtLeast(childPath(path, "ffn"), arch.ffn, 1);
      if (arch.heads >= 1 && arch.width >= 1 && !isBad(headsPath)) {
        check(arch.width % arch.heads == 0, widthPath,
              "must be divisible by heads (" + std::to_string(arch.heads) + "), got " +
                  std::to_string(arch.width));
      }
      // A transformer ignores "hidden": a list there means the type was forgotten.
      check(arch.hidden.empty(), hiddenPath,
            "is only used by an 'mlp' architecture, but type is 'transformer'" +
                std::string(isPresent(typePath) ? "" : " (the default)"));
    } else if (arch.type == kMlp) {
      check(!arch.hidden.empty(), hiddenPath,
            "an 'mlp' needs at least one hidden layer width, e.g. [256, 128]");
      for (std::size_t i = 0; i < arch.hidden.size(); ++i) {
        checkAtLeast(indexPath(hiddenPath, i), arch.hidden[i], 1);
      }
    }
    checkInterval(childPath(path, "dropout"), arch.dropout, 0, true, 1, false);
  }

  void validateTraining(const TrainingSpec& training, const std::string& path) {
    checkAtLeast(childPath(path, "epochs"), training.epochs, 1);
    checkAtLeast(childPath(path, "batch_size"), training.batchSize, 1);
    checkPositive(childPath(path, "lr"), training.lr);
    checkAtLeast(childPath(path, "weight_decay"), training.weightDecay, 0.0);
    checkInterval(childPath(path, "warmup_fraction"), training.warmupFraction, 0, true, 1, true);
    checkAtLeast(childPath(path, "grad_clip"), training.gradClip, 0.0);
  }

  void validateObjective(const ObjectiveSpec& objective, const std::string& path) {
    checkInterval(childPath(path, "lambda"), objective.lambda, 0, true, 1, true);
    checkPositive(childPath(path, "temperature"), objective.temperature);
    checkInterval(childPath(path, "label_smoothing"), objective.labelSmoothing, 0, true, 1, false);
    checkAtLeast(childPath(path, "logit_mse"), objective.logitMse, 0.0);
    checkChoice(childPath(path, "teacher_targets"), objective.teacherTargets, {"full", "pt"});
    checkAtLeast(childPath(path, "hidden_mse"), objective.hiddenMse, 0.0);
    checkAtLeast(childPath(path, "hidden_cosine"), objective.hiddenCosine, 0.0);
    checkAtLeast(childPath(path, "pkd"), objective.pkd, 0.0);
    checkAtLeast(childPath(path, "attention_kl"), objective.attentionKl, 0.0);
    checkAtLeast(childPath(path, "attention_mse"), objective.attentionMse, 0.0);
    checkAtLeast(childPath(path, "infonce"), objective.infoNce, 0.0);
    checkAtLeast(childPath(path, "mi_alpha"), objective.miAlpha, 0.0);
    checkInterval(childPath(path, "alpha"), objective.alpha, 0, true, 1, true);
    if (objective.layerMap != "list") {
      checkChoice(childPath(path, "layer_map"), objective.layerMap, {"uniform", "last"});
    }
  }

  void validateAugmentation(const AugmentationSpec& augmentation, const std::string& path) {
    checkInterval(childPath(path, "mask"), augmentation.mask, 0, true, 1, true);
    checkInterval(childPath(path, "replace"), augmentation.replace, 0, true, 1, true);
    checkInterval(childPath(path, "swap"), augmentation.swap, 0, true, 1, true);
    checkInterval(childPath(path, "delete"), augmentation.deletion, 0, true, 1, true);
    checkPositive(childPath(path, "mixup_alpha"), augmentation.mixupAlpha);
  }

  static int depthOf(const ArchitectureSpec& arch) {
    return arch.type == kMlp ? static_cast<int>(arch.hidden.size()) : arch.layers;
  }

  /// Rules between a student and its teacher: the layer map of the intermediate terms,
  /// attention terms on transformers only, token augmentation on text tasks only, and a
  /// teacher epoch the teacher will have.
  void validateStudentTeacher(const JobSpec& job, const StudentSpec& student, const std::string& at) {
    const ObjectiveSpec& objective = student.objective;
    const std::string objectivePath = childPath(at, "objective");
    const std::string mapPath = childPath(objectivePath, "layer_map");
    const ArchitectureSpec& teacher = job.teacher.architecture;
    const bool knownTypes = (student.architecture.type == kTransformer || student.architecture.type == kMlp) &&
                            (teacher.type == kTransformer || teacher.type == kMlp);
    const bool attentionTerms = objective.attentionKl > 0 || objective.attentionMse > 0;
    const bool intermediate = attentionTerms || objective.hiddenMse > 0 || objective.hiddenCosine > 0 ||
                              objective.pkd > 0 || objective.infoNce > 0 || objective.miAlpha > 0;
    if (knownTypes && attentionTerms) {
      for (const char* key : {"attention_kl", "attention_mse"}) {
        const double weight = std::string_view(key) == "attention_kl" ? objective.attentionKl : objective.attentionMse;
        if (weight > 0 && (student.architecture.type != kTransformer || teacher.type != kTransformer)) {
          check(false, childPath(objectivePath, key),
                "needs attention maps: the student and the teacher must both be transformers");
        }
      }
    }
    const int ls = depthOf(student.architecture);
    const int lt = depthOf(teacher);
    if (knownTypes && intermediate && ls >= 1 && lt >= 1) {
      const std::string counts = " (student " + std::to_string(ls) + ", teacher " + std::to_string(lt) + ")";
      if (objective.layerMap == "last") {
        check(ls <= lt, mapPath, "'last' needs a student with at most as many layers as the teacher" + counts);
      } else if (objective.layerMap == "uniform" && attentionTerms) {
        check(ls <= lt, mapPath,
              "'uniform' maps attention layers only for a student with at most as many layers as the "
              "teacher" + counts);
      } else if (objective.layerMap == "list") {
        if (static_cast<int>(objective.layerList.size()) != ls + 1) {
          check(false, mapPath,
                "must list one teacher hidden state (0.." + std::to_string(lt) + ") for each of the student's " +
                    std::to_string(ls + 1) + " hidden states (index 0 = embeddings), got " +
                    std::to_string(objective.layerList.size()));
        } else {
          for (std::size_t i = 0; i < objective.layerList.size(); ++i) {
            const int j = objective.layerList[i];
            const std::string itemPath = indexPath(mapPath, i);
            if (j < 0 || j > lt) {
              check(false, itemPath, "must be in [0, " + std::to_string(lt) + "] (the teacher's hidden states), got " +
                                         std::to_string(j));
            } else if (i > 0 && j == 0 && attentionTerms) {
              check(false, itemPath,
                    "student layer " + std::to_string(i) +
                        " maps to the teacher's embeddings, which have no attention map to transfer");
            }
          }
        }
      }
    }
    const std::string epochPath = childPath(at, "teacher_epoch");
    checkAtLeast(epochPath, student.teacherEpoch, 0);
    if (job.teacher.checkpoint.empty() && student.teacherEpoch > job.teacher.training.epochs) {
      check(false, epochPath,
            "the teacher trains for " + std::to_string(job.teacher.training.epochs) +
                " epochs, so there is no checkpoint after epoch " + std::to_string(student.teacherEpoch));
    }
    const std::string augmentationPath = childPath(at, "augmentation");
    validateAugmentation(student.augmentation, augmentationPath);
    bool vectorJob = false;
    for (std::size_t i = 0; i < job.tasks.size(); ++i) {
      vectorJob = vectorJob || taskKind(job.tasks[i].name) == TaskKind::Vector;
    }
    if (vectorJob) {
      for (const auto& [key, rate] : {std::pair<const char*, double>{"mask", student.augmentation.mask},
                                      {"replace", student.augmentation.replace},
                                      {"swap", student.augmentation.swap},
                                      {"delete", student.augmentation.deletion}}) {
        check(rate == 0.0, childPath(augmentationPath, key),
              "token augmentation needs a text task (vector tasks can use mixup only)");
      }
    }
  }

  void validateStudents(const std::vector<StudentSpec>& students) {
    std::map<std::string, std::size_t> firstIndex;
    for (std::size_t i = 0; i < students.size(); ++i) {
      const StudentSpec& student = students[i];
      const std::string at = indexPath("students", i);
      const std::string namePath = childPath(at, "name");
      if (!isBad(namePath) && !isPresent(namePath)) {
        badValue(namePath, "required field is missing (a unique name such as 'kd')");
      } else if (student.name.empty()) {
        check(false, namePath, "must not be empty");
      } else if (!std::all_of(student.name.begin(), student.name.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '-';
                 })) {
        // Names become run-file groups and file names.
        check(false, namePath,
              "must use only letters, digits, '_' and '-', got " + singleQuoted(student.name));
      } else if (student.name == kReservedStudentName) {
        check(false, namePath, "'teacher' is reserved for the teacher's records");
      } else if (student.name == "knowledge") {
        // /tasks/<task>/analysis/knowledge holds the task's knowledge-level results.
        check(false, namePath, "'knowledge' is reserved for the analysis of the knowledge levels");
      } else if (const auto [it, inserted] = firstIndex.emplace(student.name, i); !inserted) {
        check(false, namePath,
              "duplicate student name " + singleQuoted(student.name) + " (also " +
                  indexPath("students", it->second) + ")");
      }
      validateArchitecture(student.architecture, childPath(at, "architecture"));
      validateTraining(student.training, childPath(at, "training"));
      validateObjective(student.objective, childPath(at, "objective"));
    }
  }

  void validateStudentsAgainstTeacher(const JobSpec& job) {
    for (std::size_t i = 0; i < job.students.size(); ++i) {
      validateStudentTeacher(job, job.students[i], indexPath("students", i));
    }
  }

  void validateRecording(const RecordingSpec& recording) {
    checkAtLeast("recording.attention_examples", recording.attentionExamples, 0);
    checkChoice("recording.pooling", recording.pooling, {"mean", "cls"});
    checkAtLeast("recording.log_every", recording.logEvery, 1);
    checkAtLeast("recording.token_hidden_examples", recording.tokenHiddenExamples, 0);
    checkAtLeast("recording.max_file_mb", recording.maxFileMb, 0.0);
  }

  /// Text tasks need a transformer, vector tasks an mlp, and one job's architectures
  /// serve all its tasks: so one kind of task per job, and architectures to match it.
  void validateArchitectureFit(const JobSpec& job) {
    std::vector<std::string> kindTasks;
    TaskKind kind = TaskKind::Unknown;
    std::size_t firstIndex = 0;
    for (std::size_t i = 0; i < job.tasks.size(); ++i) {
      const TaskKind k = taskKind(job.tasks[i].name);
      if (k == TaskKind::Unknown || isBad(m_taskNamePaths[i])) {
        continue;
      }
      if (kind == TaskKind::Unknown) {
        kind = k;
        firstIndex = i;
      } else if (k != kind) {
        const auto describe = [](TaskKind t) {
          return t == TaskKind::Text ? std::string("a text task (needs a 'transformer')")
                                     : std::string("a vector task (needs an 'mlp')");
        };
        issue(indexPath("tasks", i),
              singleQuoted(job.tasks[i].name) + " is " + describe(k) + " but " +
                  singleQuoted(job.tasks[firstIndex].name) + " (" + indexPath("tasks", firstIndex) + ") is " +
                  describe(kind) +
                  "; a job's architectures apply to all its tasks, so put text and vector "
                  "tasks in separate jobs");
        return;
      }
      if (std::find(kindTasks.begin(), kindTasks.end(), job.tasks[i].name) == kindTasks.end()) {
        kindTasks.push_back(job.tasks[i].name);
      }
    }
    if (kind == TaskKind::Unknown) {
      return;
    }
    const std::string_view required = kind == TaskKind::Text ? kTransformer : kMlp;
    const auto fit = [&](const ArchitectureSpec& arch, const std::string& path) {
      const std::string typePath = childPath(path, "type");
      if ((arch.type != kTransformer && arch.type != kMlp) || arch.type == required) {
        return; // an unknown type is reported on its own
      }
      std::string message = std::string(kind == TaskKind::Text ? "text tasks (" : "vector tasks (") +
                            joinNames(kindTasks) + ") need " + (kind == TaskKind::Text ? "a " : "an ") +
                            singleQuoted(required) + " architecture, got " + singleQuoted(arch.type);
      if (!isPresent(typePath)) {
        message += " (the default)";
      }
      if (kind == TaskKind::Vector) {
        message += R"(; set "type": "mlp" and "hidden": [...])";
      }
      check(false, typePath, message);
    };
    fit(job.teacher.architecture, "teacher.architecture");
    for (std::size_t i = 0; i < job.students.size(); ++i) {
      fit(job.students[i].architecture, childPath(indexPath("students", i), "architecture"));
    }
    if (job.knowledgeControls.enabled) {
      fit(job.knowledgeControls.architecture, "knowledge_controls.architecture");
    }
  }

  std::set<std::string> m_duplicateKeys;
  std::vector<JobIssue> m_issues;
  std::set<std::string> m_badPaths;
  std::map<std::string, std::size_t> m_order;      // path -> rank of its key in the document
  std::map<std::string, std::size_t> m_subtreeEnd; // path -> rank just after its value
  std::size_t m_nextRank = 0;
  std::vector<std::string> m_taskNamePaths; // "tasks[i]" (bare string) or "tasks[i].name"
};

Json architectureToJson(const ArchitectureSpec& arch) {
  Json j = Json::object();
  j["type"] = arch.type;
  j["layers"] = arch.layers;
  j["heads"] = arch.heads;
  j["width"] = arch.width;
  j["ffn"] = arch.ffn;
  j["dropout"] = arch.dropout;
  j["hidden"] = arch.hidden;
  return j;
}

Json trainingToJson(const TrainingSpec& training) {
  Json j = Json::object();
  j["epochs"] = training.epochs;
  j["batch_size"] = training.batchSize;
  j["lr"] = training.lr;
  j["weight_decay"] = training.weightDecay;
  j["warmup_fraction"] = training.warmupFraction;
  j["grad_clip"] = training.gradClip;
  return j;
}

Json objectiveToJson(const ObjectiveSpec& objective) {
  Json j = Json::object();
  j["lambda"] = objective.lambda;
  j["temperature"] = objective.temperature;
  j["t_squared"] = objective.tSquared;
  if (objective.labelSmoothingMatched) {
    j["label_smoothing"] = "matched";
  } else {
    j["label_smoothing"] = objective.labelSmoothing;
  }
  j["logit_mse"] = objective.logitMse;
  j["teacher_targets"] = objective.teacherTargets;
  j["hidden_mse"] = objective.hiddenMse;
  j["hidden_cosine"] = objective.hiddenCosine;
  j["pkd"] = objective.pkd;
  j["attention_kl"] = objective.attentionKl;
  j["attention_mse"] = objective.attentionMse;
  j["infonce"] = objective.infoNce;
  j["mi_alpha"] = objective.miAlpha;
  j["alpha"] = objective.alpha;
  if (objective.layerMap == "list") {
    j["layer_map"] = objective.layerList;
  } else {
    j["layer_map"] = objective.layerMap;
  }
  return j;
}

Json augmentationToJson(const AugmentationSpec& augmentation) {
  Json j = Json::object();
  j["mask"] = augmentation.mask;
  j["replace"] = augmentation.replace;
  j["swap"] = augmentation.swap;
  j["delete"] = augmentation.deletion;
  j["mixup"] = augmentation.mixup;
  j["mixup_alpha"] = augmentation.mixupAlpha;
  return j;
}

Json taskToJson(const TaskSpec& task) {
  Json j = Json::object();
  j["name"] = task.name;
  j["eval_fraction"] = task.evalFraction;
  j["max_examples"] = task.maxExamples;
  j["max_len"] = task.maxLen;
  j["vocab_size"] = task.vocabSize;
  j["min_freq"] = task.minFreq;
  j["min_class_size"] = task.minClassSize;
  j["super_classes"] = task.superClasses;
  j["classes_per_super"] = task.classesPerSuper;
  j["dim"] = task.dim;
  j["examples_per_class"] = task.examplesPerClass;
  j["super_spread"] = task.superSpread;
  j["class_spread"] = task.classSpread;
  j["noise"] = task.noise;
  return j;
}

} // namespace

/// The offset of the first bracket that nests deeper than `limit`, outside strings; npos
/// when none does. nlohmann's callback parser copies values recursively, so a job nested
/// a million levels deep overflowed the stack (bench/fuzz.sh); no job needs more than a few.
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

JobParseResult parseJob(const std::string& jsonText, const std::string& sourceName) {
  JobParseResult result;
  constexpr std::size_t kMaxDepth = 512;
  if (const std::size_t at = tooDeep(jsonText, kMaxDepth); at != std::string::npos) {
    const TextPosition pos = textPositionAt(jsonText, at);
    result.issues.push_back(JobIssue{sourceName + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column),
                                     "arrays and objects nested more than " + std::to_string(kMaxDepth) +
                                         " levels deep"});
    return result;
  }
  try {
    DuplicateKeyTracker duplicates;
    Json root;
    try {
      root = Json::parse(jsonText, duplicates.callback(), /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    } catch (const nlohmann::detail::exception& error) {
      result.issues.push_back(syntaxIssue(jsonText, sourceName, error));
      return result;
    }
    if (!root.is_object()) {
      result.issues.push_back(
          JobIssue{sourceName, std::string("a job must be a JSON object, got ") + root.type_name()});
      return result;
    }
    JobReader reader(duplicates.duplicates());
    JobSpec job = reader.read(root);
    result.issues = reader.takeIssues();
    if (result.issues.empty()) {
      // knowledge_controls adds its students to the list, so that the normalised job (and the
      // run file's record of it) names every student it trains.
      job.students = allStudents(job);
      result.normalizedJson = jobToJson(job);
      result.job = std::move(job);
    }
  } catch (const std::exception& error) {
    // Only allocation failures and the like can get here; the contract is "never throws".
    result.job.reset();
    result.normalizedJson.clear();
    result.issues.push_back(
        JobIssue{sourceName, std::string("internal error while reading the job: ") + error.what()});
  }
  return result;
}

JobParseResult loadJobFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file(path);
  std::string reason;
  if (!fs::exists(file, ec)) {
    reason = "no such file";
  } else if (fs::is_directory(file, ec)) {
    reason = "it is a directory";
  }
  std::string text;
  if (reason.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream buffer;
    if (in) {
      buffer << in.rdbuf();
    }
    if (!in || in.bad()) {
      reason = "permission denied or read error";
    }
    text = buffer.str();
  }
  if (!reason.empty()) {
    JobParseResult result;
    result.issues.push_back(JobIssue{path, "cannot read file (" + reason + ")"});
    return result;
  }
  JobParseResult result = parseJob(text, path);
  if (result.job) {
    // Absolute, so relative data_dir and checkpoint paths still resolve if the working
    // directory changes before the job runs (queued jobs run later, on another thread).
    const fs::path absolute = fs::absolute(file, ec);
    result.job->baseDir = (ec ? file.parent_path() : absolute.parent_path()).lexically_normal().string();
  }
  return result;
}

std::string jobToJson(const JobSpec& job) {
  Json j = Json::object();
  j["name"] = job.name;
  j["seed"] = job.seed;
  j["data_dir"] = job.dataDir;
  j["cache_teacher_outputs"] = job.cacheTeacherOutputs;
  j["teacher_cache_budget_mb"] = job.teacherCacheBudgetMb;
  j["tasks"] = Json::array();
  for (const TaskSpec& task : job.tasks) {
    j["tasks"].push_back(taskToJson(task));
  }
  j["teacher"] = Json::object();
  j["teacher"]["architecture"] = architectureToJson(job.teacher.architecture);
  j["teacher"]["training"] = trainingToJson(job.teacher.training);
  j["teacher"]["checkpoint"] = job.teacher.checkpoint;
  j["teacher"]["epoch_checkpoints"] = job.teacher.epochCheckpoints;
  j["students"] = Json::array();
  for (const StudentSpec& student : job.students) {
    Json s = Json::object();
    s["name"] = student.name;
    s["architecture"] = architectureToJson(student.architecture);
    s["training"] = trainingToJson(student.training);
    s["objective"] = objectiveToJson(student.objective);
    s["augmentation"] = augmentationToJson(student.augmentation);
    s["teacher_epoch"] = student.teacherEpoch;
    j["students"].push_back(std::move(s));
  }
  j["recording"] = Json::object();
  j["recording"]["attention_examples"] = job.recording.attentionExamples;
  j["recording"]["pooling"] = job.recording.pooling;
  j["recording"]["log_every"] = job.recording.logEvery;
  j["recording"]["hidden"] = job.recording.hidden;
  j["recording"]["token_hidden_examples"] = job.recording.tokenHiddenExamples;
  j["recording"]["float16"] = job.recording.float16;
  j["recording"]["example_records"] = job.recording.exampleRecords;
  j["recording"]["max_file_mb"] = job.recording.maxFileMb;
  j["knowledge_controls"] = Json::object();
  j["knowledge_controls"]["enabled"] = job.knowledgeControls.enabled;
  j["knowledge_controls"]["architecture"] = architectureToJson(job.knowledgeControls.architecture);
  j["knowledge_controls"]["training"] = trainingToJson(job.knowledgeControls.training);
  j["knowledge_controls"]["lambda"] = job.knowledgeControls.lambda;
  j["knowledge_controls"]["temperature"] = job.knowledgeControls.temperature;
  j["analyze"] = job.analyze;
  // Replace, not throw, on invalid UTF-8 in a string set by code rather than parsed.
  return j.dump(/*indent=*/2, /*indent_char=*/' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

std::vector<StudentSpec> knowledgeControlStudents(const JobSpec& job) {
  const KnowledgeControlsSpec& kc = job.knowledgeControls;
  if (!kc.enabled) {
    return {};
  }
  StudentSpec base;
  base.architecture = kc.architecture;
  base.training = kc.training;
  StudentSpec ce = base;
  ce.name = "ctl-ce";
  StudentSpec ls = base;
  ls.name = "ctl-ls";
  ls.objective.labelSmoothingMatched = true;
  StudentSpec kdpt = base;
  kdpt.name = "ctl-kdpt";
  kdpt.objective.lambda = kc.lambda;
  kdpt.objective.temperature = kc.temperature;
  kdpt.objective.teacherTargets = "pt";
  StudentSpec kd = kdpt;
  kd.name = "ctl-kd";
  kd.objective.teacherTargets = "full";
  return {ce, ls, kdpt, kd};
}

std::vector<StudentSpec> allStudents(const JobSpec& job) {
  std::vector<StudentSpec> students = job.students;
  for (StudentSpec& control : knowledgeControlStudents(job)) {
    // A student of that name already listed (a normalised job, or one overriding a control)
    // is kept as it is.
    const bool listed = std::any_of(students.begin(), students.end(),
                                    [&](const StudentSpec& s) { return s.name == control.name; });
    if (!listed) {
      students.push_back(std::move(control));
    }
  }
  return students;
}

} // namespace kdscope::core
