#include "core/data/dataset_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/common/error.h"
#include "core/data/rng.h"
#include "core/data/tokenizer.h"
#include "core/data/utf8.h"

namespace kdscope::core {

namespace {

/// One field of a record as the reader found it.
struct Cell {
  enum class Kind { Missing, String, Integer, Float, Other };
  Kind kind = Kind::Missing;
  std::string text;          ///< String: the value; Other: the JSON type name
  long long integer = 0;     ///< Integer
  double number = 0.0;       ///< Integer and Float
};

/// The fields a spec asks for, in a fixed order: text, pair, label, id, split, features...
enum Slot : std::size_t { kText = 0, kPair, kLabel, kId, kSplit, kFirstFeature };

std::string lowerExtension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return "";
  }
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool parseInteger(std::string_view text, long long& value) {
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  return ec == std::errc() && ptr == last && first != last;
}

bool parseNumber(std::string_view text, double& value) {
  // Leading/trailing spaces are common in hand-written CSV ("1.5, 2.0").
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  return ec == std::errc() && ptr == last && first != last;
}

const char* cellKindName(const Cell& cell) {
  switch (cell.kind) {
  case Cell::Kind::String: return "a string";
  case Cell::Kind::Integer: return "an integer";
  case Cell::Kind::Float: return "a non-integer number";
  case Cell::Kind::Other: return cell.text.c_str();
  case Cell::Kind::Missing: return "missing";
  }
  return "?";
}

/// Reads one task file record by record and appends its examples to a TaskFile.
class Reader {
public:
  Reader(const TaskFileSpec& spec, TaskFile& out, const TaskReadControl& control)
      : m_spec(spec), m_out(out), m_control(control) {
    m_fields = {spec.textField, spec.textPairField, spec.labelField, spec.idField, spec.splitField};
    m_fields.insert(m_fields.end(), spec.featureFields.begin(), spec.featureFields.end());
  }

  void read(const std::string& path, int fixedEval) {
    m_path = path;
    m_fixedEval = fixedEval;
    TaskFileFormat format = m_spec.format;
    if (format == TaskFileFormat::Auto) {
      const std::string ext = lowerExtension(path);
      if (ext == "jsonl" || ext == "ndjson" || ext == "json") {
        format = TaskFileFormat::JsonLines;
      } else if (ext == "csv") {
        format = TaskFileFormat::Csv;
      } else if (ext == "tsv" || ext == "tab") {
        format = TaskFileFormat::Tsv;
      } else {
        throw InputError("task file '" + path + "': cannot tell the format from the extension '" + ext +
                         "' (use .jsonl, .csv or .tsv, or give the format)");
      }
    }
    std::ifstream in;
    // A large stream buffer: million-row files are read line by line.
    m_buffer = std::make_unique<char[]>(kBufferSize);
    in.rdbuf()->pubsetbuf(m_buffer.get(), kBufferSize);
    in.open(path, std::ios::binary);
    if (!in) {
      throw InputError("task file '" + path + "': cannot be opened for reading");
    }
    m_lineNo = 0;
    const std::size_t before = m_out.raw.labels.size();
    if (format == TaskFileFormat::JsonLines) {
      readJsonLines(in);
    } else {
      readDelimited(in, format == TaskFileFormat::Csv ? ',' : '\t', format == TaskFileFormat::Csv);
    }
    if (m_out.raw.labels.size() == before) {
      throw InputError("task file '" + path + "': holds no examples");
    }
  }

  /// Class names and final labels once every file is read.
  void finish() {
    RawDataset& raw = m_out.raw;
    if (m_labelsAreIntegers) {
      long long count = m_spec.numClasses > 0 ? m_spec.numClasses : m_maxInteger + 1;
      raw.classNames.clear();
      for (long long c = 0; c < count; ++c) {
        raw.classNames.push_back(std::to_string(c));
      }
      return;
    }
    // Names: sorted, so that the class ids do not depend on row order (a shuffled file or
    // separate train and eval files give the same ids).
    std::vector<std::pair<std::string, std::int64_t>> sorted; // name, provisional id
    sorted.reserve(m_classIds.size());
    for (const auto& [name, provisional] : m_classIds) {
      sorted.emplace_back(name, provisional);
    }
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> finalId(sorted.size());
    raw.classNames.clear();
    for (std::size_t k = 0; k < sorted.size(); ++k) {
      finalId[static_cast<std::size_t>(sorted[k].second)] = static_cast<std::int64_t>(k);
      raw.classNames.push_back(sorted[k].first);
    }
    for (auto& label : raw.labels) {
      label = finalId[static_cast<std::size_t>(label)];
    }
  }

private:
  static constexpr std::size_t kBufferSize = 1U << 20U;

  [[noreturn]] void fail(std::size_t line, const std::string& field, const std::string& problem) const {
    throw InputError("task file '" + m_path + "': line " + std::to_string(line) +
                     (field.empty() ? "" : ": field '" + field + "'") + ": " + problem);
  }

  static bool getLine(std::istream& in, std::string& line) {
    if (!std::getline(in, line)) {
      return false;
    }
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    return true;
  }

  void readJsonLines(std::istream& in) {
    std::string line;
    std::vector<Cell> cells(m_fields.size());
    while (getLine(in, line)) {
      ++m_lineNo;
      if (m_lineNo == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) {
        line.erase(0, 3);
      }
      if (line.find_first_not_of(" \t") == std::string::npos) {
        continue;
      }
      if (const auto bad = utf8::firstInvalid(line); bad != std::string::npos) {
        fail(m_lineNo, "", "invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
      }
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail(m_lineNo, "", std::string("not valid JSON (") + e.what() + ")");
      }
      if (!row.is_object()) {
        fail(m_lineNo, "", std::string("expected a JSON object, got ") + row.type_name());
      }
      for (std::size_t s = 0; s < m_fields.size(); ++s) {
        Cell& cell = cells[s];
        cell = Cell();
        if (m_fields[s].empty()) {
          continue;
        }
        const auto it = row.find(m_fields[s]);
        if (it == row.end()) {
          continue;
        }
        if (it->is_string()) {
          cell.kind = Cell::Kind::String;
          cell.text = it->get<std::string>();
        } else if (it->is_number_integer()) {
          cell.kind = Cell::Kind::Integer;
          cell.integer = it->is_number_unsigned() ? static_cast<long long>(it->get<unsigned long long>())
                                                  : it->get<long long>();
          cell.number = it->get<double>();
        } else if (it->is_number_float()) {
          cell.kind = Cell::Kind::Float;
          cell.number = it->get<double>();
        } else {
          cell.kind = Cell::Kind::Other;
          cell.text = std::string("a JSON ") + it->type_name();
        }
      }
      addRecord(cells, m_lineNo);
      afterRecord();
    }
  }

  /// Splits one CSV/TSV record; CSV continues onto the next lines while a quote is open.
  bool readRecord(std::istream& in, char separator, bool quoting, std::vector<std::string>& fields,
                  std::size_t& startLine) {
    std::string line;
    do {
      if (!getLine(in, line)) {
        return false;
      }
      ++m_lineNo;
      if (m_lineNo == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) {
        line.erase(0, 3);
      }
    } while (line.empty()); // blank lines between records are skipped
    startLine = m_lineNo;
    fields.clear();
    fields.emplace_back();
    if (!quoting) {
      std::size_t begin = 0;
      for (std::size_t i = 0; i <= line.size(); ++i) {
        if (i == line.size() || line[i] == separator) {
          fields.back().assign(line, begin, i - begin);
          if (i < line.size()) {
            fields.emplace_back();
          }
          begin = i + 1;
        }
      }
      return true;
    }
    std::size_t i = 0;
    while (true) {
      if (i == line.size()) {
        return true;
      }
      const char c = line[i];
      if (c == '"' && fields.back().empty()) {
        // Quoted field: to the closing quote, across lines; "" is one quote.
        ++i;
        while (true) {
          if (i == line.size()) {
            if (!getLine(in, line)) {
              fail(startLine, "", "quoted field is never closed (the file ends inside the quotes)");
            }
            ++m_lineNo;
            fields.back().push_back('\n');
            i = 0;
            continue;
          }
          if (line[i] == '"') {
            if (i + 1 < line.size() && line[i + 1] == '"') {
              fields.back().push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          fields.back().push_back(line[i]);
          ++i;
        }
        if (i < line.size() && line[i] != separator) {
          fail(m_lineNo, "", "unexpected text after a closing quote");
        }
        continue;
      }
      if (c == separator) {
        fields.emplace_back();
      } else {
        fields.back().push_back(c);
      }
      ++i;
    }
  }

  void readDelimited(std::istream& in, char separator, bool quoting) {
    std::vector<std::string> header;
    std::size_t headerLine = 0;
    if (!readRecord(in, separator, quoting, header, headerLine)) {
      throw InputError("task file '" + m_path + "': empty (a header row naming the columns is expected)");
    }
    std::unordered_map<std::string, std::size_t> columnOf;
    for (std::size_t c = 0; c < header.size(); ++c) {
      columnOf.emplace(header[c], c);
    }
    std::vector<std::size_t> columns(m_fields.size(), std::string::npos);
    for (std::size_t s = 0; s < m_fields.size(); ++s) {
      if (m_fields[s].empty()) {
        continue;
      }
      const auto it = columnOf.find(m_fields[s]);
      if (it == columnOf.end()) {
        std::string names;
        for (const auto& name : header) {
          names += (names.empty() ? "" : ", ") + name;
        }
        fail(headerLine, m_fields[s], "no such column in the header (columns: " + names + ")");
      }
      columns[s] = it->second;
    }
    std::vector<std::string> fields;
    std::vector<Cell> cells(m_fields.size());
    std::size_t line = 0;
    while (readRecord(in, separator, quoting, fields, line)) {
      if (fields.size() != header.size()) {
        fail(line, "", "expected " + std::to_string(header.size()) + " fields as in the header, got " +
                           std::to_string(fields.size()));
      }
      for (std::size_t s = 0; s < m_fields.size(); ++s) {
        Cell& cell = cells[s];
        cell = Cell();
        if (columns[s] == std::string::npos) {
          continue;
        }
        cell.kind = Cell::Kind::String;
        cell.text = std::move(fields[columns[s]]);
        if (const auto bad = utf8::firstInvalid(cell.text); bad != std::string::npos) {
          fail(line, m_fields[s], "invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the field");
        }
      }
      addRecord(cells, line);
      afterRecord();
    }
  }

  /// The string of a text-like field (text, pair, id, split); ids may be integers.
  std::string& textOf(Cell& cell, std::size_t slot, std::size_t line, bool allowInteger) {
    if (cell.kind == Cell::Kind::Missing) {
      fail(line, m_fields[slot], "missing");
    }
    if (cell.kind == Cell::Kind::Integer && allowInteger) {
      cell.text = std::to_string(cell.integer);
    } else if (cell.kind != Cell::Kind::String) {
      fail(line, m_fields[slot], std::string("must be a string, got ") + cellKindName(cell));
    }
    return cell.text;
  }

  std::int64_t labelOf(Cell& cell, std::size_t line) {
    const std::string& field = m_fields[kLabel];
    if (cell.kind == Cell::Kind::Missing) {
      fail(line, field, "missing");
    }
    bool integer = false;
    long long value = 0;
    if (cell.kind == Cell::Kind::Integer) {
      integer = true;
      value = cell.integer;
    } else if (cell.kind == Cell::Kind::Float) {
      fail(line, field, "must be a class name or an integer, got the number " + std::to_string(cell.number));
    } else if (cell.kind == Cell::Kind::Other) {
      fail(line, field, std::string("must be a class name or an integer, got ") + cell.text);
    } else if (m_spec.labelKind != LabelKind::Name) {
      // A string: an integer in CSV/TSV (all fields are text there) or under Integer.
      const bool textual = m_csvLike || m_spec.labelKind == LabelKind::Integer;
      double number = 0.0;
      if (textual && parseInteger(cell.text, value)) {
        integer = true;
      } else if (textual && parseNumber(cell.text, number)) {
        fail(line, field, "must be a class name or an integer, got the number '" + cell.text + "'");
      }
    }
    if (m_spec.labelKind == LabelKind::Integer && !integer) {
      fail(line, field, "must be an integer class index, got '" + cell.text + "'");
    }
    if (m_spec.labelKind == LabelKind::Name && integer) {
      integer = false;
      cell.text = std::to_string(value);
    }
    if (m_firstLabelLine == 0) {
      m_firstLabelLine = line;
      m_firstLabelPath = m_path;
      m_labelsAreIntegers = integer;
    } else if (integer != m_labelsAreIntegers) {
      fail(line, field,
           std::string("is ") + (integer ? "an integer" : "a name") + " but the first label ('" + m_firstLabelPath +
               "' line " + std::to_string(m_firstLabelLine) + ") is " + (integer ? "a name" : "an integer") +
               "; labels must all be names or all integers");
    }
    if (integer) {
      if (value < 0) {
        fail(line, field, "class index " + std::to_string(value) + " is negative");
      }
      if (m_spec.numClasses > 0 && value >= m_spec.numClasses) {
        fail(line, field, "class index " + std::to_string(value) + " is out of range 0.." +
                              std::to_string(m_spec.numClasses - 1) + " (numClasses " +
                              std::to_string(m_spec.numClasses) + ")");
      }
      if (value > 100000) {
        fail(line, field, "class index " + std::to_string(value) + " is implausibly large (at most 100000)");
      }
      m_maxInteger = std::max(m_maxInteger, value);
      return value;
    }
    if (cell.text.empty()) {
      fail(line, field, "is empty");
    }
    const auto [it, inserted] =
        m_classIds.emplace(std::move(cell.text), static_cast<std::int64_t>(m_classIds.size()));
    return it->second;
  }

  void addRecord(std::vector<Cell>& cells, std::size_t line) {
    RawDataset& raw = m_out.raw;
    // Check everything first, then append, so that a failing row leaves nothing half-added.
    std::int64_t inEval = m_fixedEval;
    if (!m_spec.splitField.empty()) {
      const std::string& split = textOf(cells[kSplit], kSplit, line, false);
      if (split == "train") {
        inEval = 0;
      } else if (split == "eval" || split == "dev" || split == "validation" || split == "valid" ||
                 split == "test") {
        inEval = 1;
      } else {
        fail(line, m_fields[kSplit],
             "unknown split '" + split + "' (train; or eval, dev, validation, valid, test for eval)");
      }
    }
    if (raw.kind == TaskKind::Text) {
      for (const std::size_t slot : {std::size_t{kText}, std::size_t{kPair}}) {
        if (m_fields[slot].empty()) {
          continue;
        }
        const std::string& text = textOf(cells[slot], slot, line, false);
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
          fail(line, m_fields[slot], "is empty");
        }
      }
    } else {
      for (std::size_t s = kFirstFeature; s < m_fields.size(); ++s) {
        Cell& cell = cells[s];
        double value = 0.0;
        if (cell.kind == Cell::Kind::Missing) {
          fail(line, m_fields[s], "missing");
        } else if (cell.kind == Cell::Kind::Integer || cell.kind == Cell::Kind::Float) {
          value = cell.number;
        } else if (!(m_csvLike && cell.kind == Cell::Kind::String && parseNumber(cell.text, value))) {
          fail(line, m_fields[s], std::string("must be a number, got ") +
                                      (cell.kind == Cell::Kind::String ? "'" + cell.text + "'" : cellKindName(cell)));
        }
        if (!std::isfinite(value)) {
          fail(line, m_fields[s], "must be finite, got " + std::to_string(value));
        }
        cell.number = value;
      }
    }
    if (!m_spec.idField.empty()) {
      (void)textOf(cells[kId], kId, line, true);
    }
    const std::int64_t label = labelOf(cells[kLabel], line);

    raw.labels.push_back(label);
    m_out.lines.push_back(line);
    if (inEval >= 0) {
      m_out.inEval.push_back(static_cast<std::uint8_t>(inEval));
    }
    if (raw.kind == TaskKind::Text) {
      raw.texts.push_back(std::move(cells[kText].text));
      if (!m_fields[kPair].empty()) {
        m_out.pairTexts.push_back(std::move(cells[kPair].text));
      }
    } else {
      for (std::size_t s = kFirstFeature; s < m_fields.size(); ++s) {
        raw.features.push_back(static_cast<float>(cells[s].number));
      }
    }
    if (!m_spec.idField.empty()) {
      m_out.ids.push_back(std::move(cells[kId].text));
    }
  }

  /// Every rowsPerCheck rows: progress, then the cancel token (TaskReadControl).
  void afterRecord() {
    ++m_rows;
    if (m_control.rowsPerCheck == 0 || m_rows % m_control.rowsPerCheck != 0) {
      return;
    }
    if (m_control.progress) {
      m_control.progress(m_rows, m_path);
    }
    if (m_control.cancel != nullptr) {
      throwIfCancelled(*m_control.cancel);
    }
  }

public:
  void setCsvLike(bool csvLike) { m_csvLike = csvLike; }

private:
  const TaskFileSpec& m_spec;
  TaskFile& m_out;
  const TaskReadControl& m_control;
  std::size_t m_rows = 0; ///< records read, over every file
  std::vector<std::string> m_fields;
  std::unique_ptr<char[]> m_buffer;
  std::string m_path;
  std::size_t m_lineNo = 0;
  int m_fixedEval = -1; ///< -1: no fixed split; 0/1: the file is the train/eval file
  bool m_csvLike = false;
  std::unordered_map<std::string, std::int64_t> m_classIds; ///< name -> provisional id (first seen)
  bool m_labelsAreIntegers = false;
  std::size_t m_firstLabelLine = 0;
  std::string m_firstLabelPath;
  long long m_maxInteger = -1;
};

TaskFileFormat resolvedFormat(const TaskFileSpec& spec, const std::string& path) {
  if (spec.format != TaskFileFormat::Auto) {
    return spec.format;
  }
  const std::string ext = lowerExtension(path);
  if (ext == "csv") {
    return TaskFileFormat::Csv;
  }
  if (ext == "tsv" || ext == "tab") {
    return TaskFileFormat::Tsv;
  }
  return TaskFileFormat::JsonLines; // Reader::read refuses unknown extensions
}

void checkSpec(const TaskFileSpec& spec) {
  const std::string where = "task file '" + spec.path + "': ";
  if (spec.path.empty()) {
    throw InputError("task file: no path given");
  }
  if (spec.labelField.empty()) {
    throw InputError(where + "no label field given");
  }
  const bool text = !spec.textField.empty();
  const bool vector = !spec.featureFields.empty();
  if (text == vector) {
    throw InputError(where + "give either a text field (text task) or feature fields (vector task), not " +
                     (text ? "both" : "neither"));
  }
  if (!text && !spec.textPairField.empty()) {
    throw InputError(where + "a second text field needs a text field");
  }
  if (!spec.splitField.empty() && !spec.evalPath.empty()) {
    throw InputError(where + "give a split field or an eval file, not both");
  }
  if (spec.numClasses < 0) {
    throw InputError(where + "numClasses must be >= 0 (0: from the labels), got " +
                     std::to_string(spec.numClasses));
  }
  std::vector<std::string> named = {spec.textField, spec.textPairField, spec.labelField, spec.idField,
                                    spec.splitField};
  named.insert(named.end(), spec.featureFields.begin(), spec.featureFields.end());
  for (std::size_t a = 0; a < named.size(); ++a) {
    for (std::size_t b = a + 1; b < named.size(); ++b) {
      if (!named[a].empty() && named[a] == named[b]) {
        throw InputError(where + "field '" + named[a] + "' is given for two roles");
      }
    }
  }
}

} // namespace

TaskFile loadTaskFile(const TaskFileSpec& spec, const TaskReadControl& control) {
  checkSpec(spec);
  TaskFile file;
  file.raw.kind = spec.featureFields.empty() ? TaskKind::Text : TaskKind::Vector;
  file.raw.dim = static_cast<int>(spec.featureFields.size());
  Reader reader(spec, file, control);
  const bool hasEvalFile = !spec.evalPath.empty();
  reader.setCsvLike(resolvedFormat(spec, spec.path) != TaskFileFormat::JsonLines);
  reader.read(spec.path, hasEvalFile ? 0 : -1);
  if (hasEvalFile) {
    reader.setCsvLike(resolvedFormat(spec, spec.evalPath) != TaskFileFormat::JsonLines);
    reader.read(spec.evalPath, 1);
  }
  reader.finish();
  if (file.fixedSplit()) {
    const auto evalCount = static_cast<std::size_t>(std::count(file.inEval.begin(), file.inEval.end(), 1));
    if (evalCount == 0 || evalCount == file.inEval.size()) {
      throw InputError("task file '" + spec.path + "': the split " +
                       (evalCount == 0 ? "has no eval examples" : "has no train examples"));
    }
  }
  return file;
}

TaskData buildTaskFromFile(const TaskSpec& spec, TaskFile file, std::uint64_t seed) {
  RawDataset& raw = file.raw;
  raw.pairTexts = std::move(file.pairTexts);
  raw.inEval = std::move(file.inEval);
  return buildTask(spec, std::move(raw), seed);
}

} // namespace kdscope::core
