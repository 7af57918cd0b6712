#include "core/data/feature_array.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <string_view>

#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/record/h5_file.h"

namespace kdscope::core {

namespace {

constexpr std::uint64_t kBlockElements = 1U << 16U; ///< values read at a time (bounded memory)

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw InputError("feature array '" + path + "': " + problem);
}

std::uint64_t littleEndian(const unsigned char* bytes, int count) {
  std::uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) {
    value = (value << 8U) | bytes[i];
  }
  return value;
}

/// The value after 'key': in a Python dict literal, with the position after the colon.
std::size_t valueStart(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted1 = "'" + key + "'";
  const std::string quoted2 = "\"" + key + "\"";
  auto pos = header.find(quoted1);
  std::size_t len = quoted1.size();
  if (pos == std::string::npos) {
    pos = header.find(quoted2);
  }
  if (pos == std::string::npos) {
    fail(path, "the .npy header has no '" + key + "' (header: " + header + ")");
  }
  pos = header.find(':', pos + len);
  if (pos == std::string::npos) {
    fail(path, "the .npy header's '" + key + "' has no value");
  }
  ++pos;
  while (pos < header.size() && header[pos] == ' ') {
    ++pos;
  }
  return pos;
}

bool parseUnsigned(std::string_view text, std::uint64_t& value) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == ' ') {
    text.remove_suffix(1);
  }
  // Python 2 wrote shapes as "3L".
  if (!text.empty() && text.back() == 'L') {
    text.remove_suffix(1);
  }
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
    s.pop_back();
  }
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) {
    ++start;
  }
  return s.substr(start);
}

/// One CSV line split at commas; double-quoted fields may hold commas and doubled quotes
/// (not line breaks: a label file has one record per line).
std::vector<std::string> splitCsvLine(const std::string& line, const std::string& path, std::size_t lineNo) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) {
    throw InputError("label file '" + path + "': line " + std::to_string(lineNo) +
                     ": quoted field is not closed on its line");
  }
  return fields;
}

/// Reads the label file record by record into class ids (the task files' rules, docs/data.md
/// "Labels"): integers directly, names as provisional first-seen ids renumbered in sorted
/// order at the end. Memory: the ids and one line, not the labels' text.
void readLabels(const FeatureArraySpec& spec, RawDataset& raw) {
  std::ifstream in(spec.labelPath, std::ios::binary);
  if (!in) {
    throw InputError("label file '" + spec.labelPath + "': cannot open it");
  }
  const bool csv = !spec.labelColumn.empty();
  const auto where = [&](std::size_t lineNo) {
    return "label file '" + spec.labelPath + "': line " + std::to_string(lineNo) +
           (csv ? ": field '" + spec.labelColumn + "'" : std::string()) + ": ";
  };
  std::string line;
  std::size_t lineNo = 0;
  std::size_t column = 0;
  std::size_t columns = 0;
  std::size_t firstLine = 0;
  std::size_t blankLine = 0; ///< the first blank line not yet followed by a label
  bool integers = spec.labelKind == LabelKind::Integer;
  long long maxLabel = -1;
  std::unordered_map<std::string, std::int64_t> provisional;
  std::vector<std::string> firstSeen;
  while (std::getline(in, line)) {
    ++lineNo;
    if (lineNo == 1 && line.size() >= 3 && std::memcmp(line.data(), "\xEF\xBB\xBF", 3) == 0) {
      line.erase(0, 3);
    }
    if (csv && lineNo == 1) {
      const std::vector<std::string> header = splitCsvLine(trimmed(line), spec.labelPath, lineNo);
      columns = header.size();
      const auto it = std::find(header.begin(), header.end(), spec.labelColumn);
      if (it == header.end()) {
        std::string names;
        for (const auto& h : header) {
          names += (names.empty() ? "" : ", ") + h;
        }
        throw InputError("label file '" + spec.labelPath + "': line 1: field '" + spec.labelColumn +
                         "': no such column in the header (columns: " + names + ")");
      }
      column = static_cast<std::size_t>(it - header.begin());
      continue;
    }
    std::string text = trimmed(line);
    if (text.empty()) {
      // A blank line would shift every later label onto the wrong row: allowed only at the end.
      blankLine = blankLine == 0 ? lineNo : blankLine;
      continue;
    }
    if (blankLine != 0) {
      throw InputError(where(blankLine) + "empty label (every row of the array needs one)");
    }
    if (csv) {
      std::vector<std::string> fields = splitCsvLine(text, spec.labelPath, lineNo);
      if (fields.size() != columns) {
        throw InputError("label file '" + spec.labelPath + "': line " + std::to_string(lineNo) + ": expected " +
                         std::to_string(columns) + " fields as in the header, got " + std::to_string(fields.size()));
      }
      text = trimmed(fields[column]);
      if (text.empty()) {
        throw InputError(where(lineNo) + "empty label (every row of the array needs one)");
      }
    }
    long long value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const bool isInteger = ec == std::errc() && ptr == text.data() + text.size();
    if (firstLine == 0) {
      firstLine = lineNo;
      integers = integers || (spec.labelKind == LabelKind::Auto && isInteger);
    }
    if (integers) {
      if (!isInteger) {
        throw InputError(where(lineNo) + "must be an integer class index like the first label (line " +
                         std::to_string(firstLine) + "), got '" + text + "'");
      }
      if (value < 0 || (spec.numClasses > 0 && value >= spec.numClasses)) {
        throw InputError(where(lineNo) + "class index " + std::to_string(value) + " is outside 0.." +
                         (spec.numClasses > 0 ? std::to_string(spec.numClasses - 1) : std::string("")));
      }
      maxLabel = std::max(maxLabel, value);
      raw.labels.push_back(value);
      continue;
    }
    if (spec.labelKind == LabelKind::Auto && isInteger) {
      throw InputError(where(lineNo) + "labels mix names and integers (the first label, line " +
                       std::to_string(firstLine) + ", is a name)");
    }
    const auto [it, inserted] = provisional.emplace(text, static_cast<std::int64_t>(firstSeen.size()));
    if (inserted) {
      firstSeen.push_back(text);
    }
    raw.labels.push_back(it->second);
  }
  if (integers) {
    const long long k = spec.numClasses > 0 ? spec.numClasses : maxLabel + 1;
    for (long long c = 0; c < k; ++c) {
      raw.classNames.push_back(std::to_string(c));
    }
    return;
  }
  // Names sorted byte-wise, as task files, so ids do not depend on row order.
  std::vector<std::int64_t> order(firstSeen.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = static_cast<std::int64_t>(i);
  }
  std::sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
    return firstSeen[static_cast<std::size_t>(x)] < firstSeen[static_cast<std::size_t>(y)];
  });
  std::vector<std::int64_t> finalId(order.size());
  for (std::size_t rank = 0; rank < order.size(); ++rank) {
    finalId[static_cast<std::size_t>(order[rank])] = static_cast<std::int64_t>(rank);
    raw.classNames.push_back(firstSeen[static_cast<std::size_t>(order[rank])]);
  }
  for (auto& label : raw.labels) {
    label = finalId[static_cast<std::size_t>(label)];
  }
}

/// After each block of features: the rows read so far to control.progress (every
/// control.rowsPerCheck rows, and at the end), then the cancel token (throws Cancelled).
class BlockControl {
public:
  BlockControl(const TaskReadControl& control, const std::string& path) : m_control(control), m_path(path) {}
  void after(std::uint64_t rows, bool last) {
    if (m_control.progress && (last || rows - m_reported >= std::max<std::size_t>(1, m_control.rowsPerCheck))) {
      m_reported = rows;
      m_control.progress(static_cast<std::size_t>(rows), m_path);
    }
    if (m_control.cancel != nullptr) {
      throwIfCancelled(*m_control.cancel);
    }
  }

private:
  const TaskReadControl& m_control;
  const std::string& m_path;
  std::uint64_t m_reported = 0;
};

void readNpyFeatures(const std::string& path, RawDataset& raw, const TaskReadControl& control) {
  const NpyHeader header = readNpyHeader(path);
  if (header.descr != "<f4" && header.descr != "<f8") {
    fail(path, "dtype '" + header.descr + "' is not supported (only little-endian float32 '<f4' or float64 '<f8'; "
               "use a.astype('<f4'))");
  }
  if (header.fortranOrder) {
    fail(path, "the array is in Fortran order; save np.ascontiguousarray(a) instead");
  }
  if (header.shape.size() != 2) {
    fail(path, "the array has " + std::to_string(header.shape.size()) +
                   " dimensions; a feature array must be 2-D [examples, features]");
  }
  const std::uint64_t n = header.shape[0];
  const std::uint64_t d = header.shape[1];
  if (n == 0 || d == 0) {
    fail(path, "the array is empty (shape " + std::to_string(n) + " x " + std::to_string(d) + ")");
  }
  const std::uint64_t itemSize = header.descr == "<f4" ? 4 : 8;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const std::uint64_t expected = header.dataOffset + n * d * itemSize;
  if (!ec && size != expected) {
    fail(path, "the file has " + std::to_string(size) + " bytes but its header (shape " + std::to_string(n) + " x " +
                   std::to_string(d) + ", " + header.descr + ") needs " + std::to_string(expected) +
                   (size < expected ? " (truncated?)" : ""));
  }
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(header.dataOffset));
  raw.dim = static_cast<int>(d);
  raw.features.resize(n * d);
  std::vector<char> block(kBlockElements * itemSize);
  BlockControl blocks(control, path);
  for (std::uint64_t done = 0; done < n * d;) {
    const std::uint64_t count = std::min(kBlockElements, n * d - done);
    in.read(block.data(), static_cast<std::streamsize>(count * itemSize));
    if (!in) {
      fail(path, "read error at value " + std::to_string(done));
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      float v = 0.0F;
      if (itemSize == 4) {
        std::memcpy(&v, block.data() + i * 4, 4);
      } else {
        double w = 0.0;
        std::memcpy(&w, block.data() + i * 8, 8);
        v = static_cast<float>(w);
      }
      if (!std::isfinite(v)) {
        const std::uint64_t at = done + i;
        fail(path, "row " + std::to_string(at / d) + ", column " + std::to_string(at % d) +
                       ": not a finite float32 number");
      }
      raw.features[done + i] = v;
    }
    done += count;
    blocks.after(done / d, done == n * d);
  }
}

void readH5Features(const FeatureArraySpec& spec, RawDataset& raw, const TaskReadControl& control) {
  const std::string& path = spec.path;
  probeHdf5File(path);
  const H5File file(path, H5File::Mode::ReadOnly);
  const std::string dataset = spec.h5Dataset.front() == '/' ? spec.h5Dataset : "/" + spec.h5Dataset;
  if (!file.isDataset(dataset)) {
    fail(path, "no dataset '" + dataset + "' (h5_dataset)");
  }
  if (file.typeClass(dataset) != H5TypeClass::Float) {
    fail(path, "dataset '" + dataset + "' holds " + file.typeName(dataset) + ", not floats");
  }
  const auto shape = file.shape(dataset);
  if (shape.size() != 2 || shape[0] == 0 || shape[1] == 0) {
    fail(path, "dataset '" + dataset + "' must be a non-empty 2-D array [examples, features]");
  }
  const std::uint64_t n = shape[0];
  const std::uint64_t d = shape[1];
  raw.dim = static_cast<int>(d);
  raw.features.reserve(n * d);
  const std::uint64_t rowsPerBlock = std::max<std::uint64_t>(1, kBlockElements / d);
  BlockControl blocks(control, path);
  for (std::uint64_t row = 0; row < n; row += rowsPerBlock) {
    const std::vector<float> block = file.readFloat(dataset, row, std::min(rowsPerBlock, n - row));
    for (std::size_t i = 0; i < block.size(); ++i) {
      if (!std::isfinite(block[i])) {
        const std::uint64_t at = row * d + i;
        fail(path, "dataset '" + dataset + "': row " + std::to_string(at / d) + ", column " + std::to_string(at % d) +
                       ": not a finite float32 number");
      }
    }
    raw.features.insert(raw.features.end(), block.begin(), block.end());
    const std::uint64_t read = std::min(n, row + rowsPerBlock);
    blocks.after(read, read == n);
  }
}

} // namespace

NpyHeader readNpyHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail(path, "cannot open it");
  }
  unsigned char prefix[12] = {};
  in.read(reinterpret_cast<char*>(prefix), 10);
  if (in.gcount() < 10 || std::memcmp(prefix, "\x93NUMPY", 6) != 0) {
    fail(path, "not an .npy file (no \\x93NUMPY magic)");
  }
  const int major = prefix[6];
  std::uint64_t headerLen = 0;
  std::uint64_t offset = 0;
  if (major == 1) {
    headerLen = littleEndian(prefix + 8, 2);
    offset = 10;
  } else if (major == 2 || major == 3) {
    in.read(reinterpret_cast<char*>(prefix + 10), 2);
    headerLen = littleEndian(prefix + 8, 4);
    offset = 12;
  } else {
    fail(path, ".npy format version " + std::to_string(major) + " is not known (1, 2 or 3)");
  }
  if (headerLen > (1U << 20U)) {
    fail(path, "the .npy header claims " + std::to_string(headerLen) + " bytes");
  }
  std::string header(headerLen, '\0');
  in.read(header.data(), static_cast<std::streamsize>(headerLen));
  if (static_cast<std::uint64_t>(in.gcount()) != headerLen) {
    fail(path, "the .npy header is cut short");
  }
  NpyHeader h;
  h.dataOffset = offset + headerLen;
  // 'descr': '<f4'
  std::size_t pos = valueStart(header, "descr", path);
  if (pos >= header.size() || (header[pos] != '\'' && header[pos] != '"')) {
    fail(path, "the .npy header's 'descr' is not a simple dtype string (structured arrays are not supported)");
  }
  const char quote = header[pos];
  const auto end = header.find(quote, pos + 1);
  if (end == std::string::npos) {
    fail(path, "the .npy header's 'descr' is not closed");
  }
  h.descr = header.substr(pos + 1, end - pos - 1);
  pos = valueStart(header, "fortran_order", path);
  if (header.compare(pos, 4, "True") == 0) {
    h.fortranOrder = true;
  } else if (header.compare(pos, 5, "False") != 0) {
    fail(path, "the .npy header's 'fortran_order' is neither True nor False");
  }
  pos = valueStart(header, "shape", path);
  const auto close = header.find(')', pos);
  if (pos >= header.size() || header[pos] != '(' || close == std::string::npos) {
    fail(path, "the .npy header's 'shape' is not a tuple");
  }
  const std::string inner = header.substr(pos + 1, close - pos - 1);
  std::size_t start = 0;
  while (start <= inner.size()) {
    auto comma = inner.find(',', start);
    if (comma == std::string::npos) {
      comma = inner.size();
    }
    const std::string_view item(inner.data() + start, comma - start);
    if (item.find_first_not_of(' ') != std::string_view::npos) {
      std::uint64_t dim = 0;
      if (!parseUnsigned(item, dim)) {
        fail(path, "the .npy header's 'shape' (" + inner + ") is not a tuple of sizes");
      }
      h.shape.push_back(dim);
    }
    start = comma + 1;
  }
  return h;
}

RawDataset loadFeatureArray(const FeatureArraySpec& spec, const TaskReadControl& control) {
  RawDataset raw;
  raw.kind = TaskKind::Vector;
  if (spec.labelPath.empty()) {
    fail(spec.path, "no label file given (label_file)");
  }
  if (spec.h5Dataset.empty()) {
    readNpyFeatures(spec.path, raw, control);
  } else {
    readH5Features(spec, raw, control);
  }
  readLabels(spec, raw);
  const std::size_t n = raw.features.size() / static_cast<std::size_t>(raw.dim);
  if (raw.labels.size() != n) {
    throw InputError("feature array '" + spec.path + "' has " + std::to_string(n) + " rows but label file '" +
                     spec.labelPath + "' has " + std::to_string(raw.labels.size()) + " labels");
  }
  if (raw.labels.empty()) {
    throw InputError("label file '" + spec.labelPath + "': no labels");
  }
  return raw;
}

} // namespace kdscope::core
