#pragma once
/// The job file's field tables: one per section of a job (docs/job-format.md). A field is
/// declared once, in its section's table in job_fields.cpp, with its JSON key, the member it
/// fills, its JSON type (and the spellings of an enumerated string), and its bound; its
/// default is the member's initialiser in job_spec.h. The same table reads the section
/// (parseJob), writes it (jobToJson), lists its keys when a key is unknown, and checks its
/// bounds (job_validation.cpp, which adds the rules that tie fields together). So the writer
/// cannot disagree with the reader, and a new field is one line in one table.
///
/// Private to core (it carries nlohmann's types).

#include <algorithm>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/job/job_spec.h"
#include "core/job/json_reader.h"

namespace kdscope::core::jobfields {

using json::Bound;
using json::Json;
using json::JsonReader;

/// What a field holds in JSON.
enum class FieldKind {
  Boolean,
  Integer,
  Number,
  String,      ///< free text, or one of bound.choices (Bound::Kind::OneOf)
  IntegerList, ///< an array of integers; the bound is each element's
  Object,      ///< a nested section (its own table)
  ObjectList,  ///< an array of sections
  Special,     ///< more than one JSON form (label_smoothing, layer_map): its own reader
};

/// One field of section struct S.
template <class S> struct Field {
  std::string key;
  FieldKind kind = FieldKind::Special;
  Bound bound;
  /// The bound applies only when this holds (empty: always), e.g. "layers" of a transformer.
  std::function<bool(const S&)> applies;
  std::function<void(JsonReader&, const Json& value, const std::string& path, S&)> read;
  std::function<Json(const S&)> write;
  /// Checks `bound` (empty: nothing to check).
  std::function<void(JsonReader&, const S&, const std::string& path)> check;
  /// Whether two structs agree on this field's members.
  std::function<bool(const S&, const S&)> same;
  /// Object and ObjectList: the nested section's keys.
  std::vector<std::string> nestedKeys;

  /// The bound applies only when `condition` holds.
  Field when(std::function<bool(const S&)> condition) && {
    applies = std::move(condition);
    return std::move(*this);
  }
};

/// One section's fields, in the order the writer writes them and "known fields" lists them.
template <class S> class Table {
public:
  /// `suggestNested`: a key that belongs to one of the nested sections, written a level too
  /// high, is pointed into it ("students[0].lr" -> "training.lr").
  explicit Table(std::vector<Field<S>> fields, bool suggestNested = false) : m_fields(std::move(fields)) {
    for (const Field<S>& field : m_fields) {
      m_keys.push_back(field.key);
      if (suggestNested && field.kind == FieldKind::Object) {
        m_nested.push_back(JsonReader::NestedKeys{field.key, field.nestedKeys});
      }
    }
  }

  [[nodiscard]] const std::vector<Field<S>>& fields() const { return m_fields; }
  [[nodiscard]] const std::vector<std::string>& keys() const { return m_keys; }

  /// Reads the object at `path` into `out`; keys that are absent keep out's values.
  void read(JsonReader& reader, const Json& value, const std::string& path, S& out) const {
    reader.readObject(value, path, m_keys,
                      [&](std::size_t index, const Json& v, const std::string& at) {
                        m_fields[index].read(reader, v, at, out);
                      },
                      m_nested);
  }

  /// Every field, in table order.
  [[nodiscard]] Json write(const S& in) const {
    Json j = Json::object();
    for (const Field<S>& field : m_fields) {
      j[field.key] = field.write(in);
    }
    return j;
  }

  /// The bounds of this section's own fields (not of nested sections), in table order.
  void checkBounds(JsonReader& reader, const S& in, const std::string& path) const {
    for (const Field<S>& field : m_fields) {
      if (field.check && (!field.applies || field.applies(in))) {
        field.check(reader, in, json::childPath(path, field.key));
      }
    }
  }

  [[nodiscard]] bool same(const S& a, const S& b) const {
    for (const Field<S>& field : m_fields) {
      if (!field.same(a, b)) {
        return false;
      }
    }
    return true;
  }

private:
  std::vector<Field<S>> m_fields;
  std::vector<std::string> m_keys;
  std::vector<JsonReader::NestedKeys> m_nested;
};

// ---- the tables ------------------------------------------------------------------------------

const Table<TaskSpec>& taskTable();
const Table<ArchitectureSpec>& architectureTable();
const Table<TrainingSpec>& trainingTable();
const Table<ObjectiveSpec>& objectiveTable();
const Table<AugmentationSpec>& augmentationTable();
const Table<TeacherSpec>& teacherTable();
const Table<StudentSpec>& studentTable();
const Table<RecordingSpec>& recordingTable();
const Table<KnowledgeControlsSpec>& knowledgeControlsTable();
const Table<JobSpec>& jobTable(); ///< the root: name, seed, ..., tasks, teacher, students, ..., analyze

/// The job's text reading: every field of the document into a JobSpec (defaults where a key
/// is absent), with reading problems as issues of `reader`. Bounds and rules between fields
/// are job_validation.h's.
JobSpec readJob(JsonReader& reader, const Json& root);
/// The normalised document: every field of every section, defaults included.
Json writeJob(const JobSpec& job);

// ---- field builders (used by the tables) -----------------------------------------------------

/// A string, boolean, number or integer member.
template <class S, class T> Field<S> value(std::string key, T S::*member, Bound bound = {}) {
  static_assert(std::is_same_v<T, std::string> || std::is_arithmetic_v<T>, "a scalar member");
  Field<S> f;
  f.key = std::move(key);
  if constexpr (std::is_same_v<T, std::string>) {
    f.kind = FieldKind::String;
  } else if constexpr (std::is_same_v<T, bool>) {
    f.kind = FieldKind::Boolean;
  } else if constexpr (std::is_integral_v<T>) {
    f.kind = FieldKind::Integer;
  } else {
    f.kind = FieldKind::Number;
  }
  f.read = [member](JsonReader& r, const Json& v, const std::string& path, S& s) { r.readValue(v, path, s.*member); };
  f.write = [member](const S& s) { return Json(s.*member); };
  f.same = [member](const S& a, const S& b) { return a.*member == b.*member; };
  if constexpr (!std::is_same_v<T, bool>) {
    if (bound.kind != Bound::Kind::None) {
      f.check = [member, bound](JsonReader& r, const S& s, const std::string& path) {
        r.checkBound(path, s.*member, bound);
      };
    }
  }
  f.bound = std::move(bound);
  return f;
}

/// A string member that must be one of `choices`.
template <class S> Field<S> choice(std::string key, std::string S::*member, std::vector<std::string> choices) {
  return value(std::move(key), member, json::oneOf(std::move(choices)));
}

/// An array of integers; `expected` says what it holds ("an array of layer widths").
template <class S>
Field<S> integers(std::string key, std::vector<int> S::*member, std::string expected, Bound elementBound) {
  Field<S> f;
  f.key = std::move(key);
  f.kind = FieldKind::IntegerList;
  f.read = [member, expected](JsonReader& r, const Json& v, const std::string& path, S& s) {
    r.readIntegers(v, path, s.*member, expected);
  };
  f.write = [member](const S& s) { return Json(s.*member); };
  f.same = [member](const S& a, const S& b) { return a.*member == b.*member; };
  f.check = [member, elementBound](JsonReader& r, const S& s, const std::string& path) {
    const std::vector<int>& values = s.*member;
    for (std::size_t i = 0; i < values.size(); ++i) {
      r.checkBound(json::indexPath(path, i), values[i], elementBound);
    }
  };
  f.bound = std::move(elementBound);
  return f;
}

/// A nested section. `whenPresent` runs before it is read (knowledge_controls: present
/// means enabled).
template <class S, class T>
Field<S> section(std::string key, T S::*member, const Table<T>& table, void (*whenPresent)(T&) = nullptr) {
  Field<S> f;
  f.key = std::move(key);
  f.kind = FieldKind::Object;
  f.nestedKeys = table.keys();
  f.read = [member, &table, whenPresent](JsonReader& r, const Json& v, const std::string& path, S& s) {
    if (whenPresent != nullptr) {
      whenPresent(s.*member);
    }
    table.read(r, v, path, s.*member);
  };
  f.write = [member, &table](const S& s) { return table.write(s.*member); };
  f.same = [member, &table](const S& a, const S& b) { return table.same(a.*member, b.*member); };
  return f;
}

/// An array of sections; `readElement` reads one element (default: an object of `table`).
template <class S, class T>
Field<S> sections(std::string key, std::vector<T> S::*member, const Table<T>& table,
                  std::function<void(JsonReader&, const Json&, const std::string&, T&)> readElement = {}) {
  Field<S> f;
  f.key = std::move(key);
  f.kind = FieldKind::ObjectList;
  f.nestedKeys = table.keys();
  if (!readElement) {
    readElement = [&table](JsonReader& r, const Json& v, const std::string& path, T& out) {
      table.read(r, v, path, out);
    };
  }
  f.read = [member, readElement](JsonReader& r, const Json& v, const std::string& path, S& s) {
    r.readArray(v, path, "an array", [&](const Json& element, const std::string& at) {
      // One entry per element, valid or not, so that indices keep matching paths.
      readElement(r, element, at, (s.*member).emplace_back());
    });
  };
  f.write = [member, &table](const S& s) {
    Json array = Json::array();
    for (const T& item : s.*member) {
      array.push_back(table.write(item));
    }
    return array;
  };
  f.same = [member, &table](const S& a, const S& b) {
    const std::vector<T>& x = a.*member;
    const std::vector<T>& y = b.*member;
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(),
                                              [&table](const T& p, const T& q) { return table.same(p, q); });
  };
  return f;
}

} // namespace kdscope::core::jobfields
