#include "core/models/model_manifest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "core/common/error.h"

namespace kdscope::core {

namespace {

using Json = nlohmann::json;

struct InputInfo {
  ModelInput kind;
  const char* name;
  InputDType defaultType;
};

constexpr InputInfo kInputs[] = {
    {ModelInput::InputIds, "input_ids", InputDType::Int64},
    {ModelInput::AttentionMask, "attention_mask", InputDType::Int64},
    {ModelInput::PaddingMask, "padding_mask", InputDType::Bool},
    {ModelInput::TokenTypeIds, "token_type_ids", InputDType::Int64},
    {ModelInput::PositionIds, "position_ids", InputDType::Int64},
    {ModelInput::HeadMask, "head_mask", InputDType::Float32},
    {ModelInput::Features, "features", InputDType::Float32},
};

std::string knownInputNames() {
  std::string out;
  for (const auto& i : kInputs) {
    out += (out.empty() ? "" : ", ") + std::string(i.name);
  }
  return out;
}

std::string typeName(const Json& j) {
  if (j.is_number_integer()) {
    return "an integer";
  }
  if (j.is_number()) {
    return "a number";
  }
  if (j.is_string()) {
    return "a string";
  }
  if (j.is_boolean()) {
    return "a boolean";
  }
  if (j.is_array()) {
    return "an array";
  }
  if (j.is_object()) {
    return "an object";
  }
  return "null";
}

/// Collects issues while reading one manifest.
class Reader {
public:

  void issue(const std::string& field, const std::string& message) { m_issues.push_back({field, message}); }
  std::vector<ManifestIssue> take() { return std::move(m_issues); }
  [[nodiscard]] bool ok() const { return m_issues.empty(); }

  /// Flags keys of `object` not in `known`.
  void unknownKeys(const Json& object, const std::string& prefix, std::initializer_list<const char*> known) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      const bool found = std::any_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; });
      if (!found) {
        std::string list;
        for (const char* k : known) {
          list += (list.empty() ? "" : ", ") + std::string(k);
        }
        issue(prefix + it.key(), "unknown field (known here: " + list + ")");
      }
    }
  }

  /// An integer >= `min`, or nullopt (with an issue when present and wrong, or when required).
  std::optional<int> integer(const Json& object, const char* key, const std::string& field, int min, bool required) {
    if (!object.contains(key)) {
      if (required) {
        issue(field, "missing (an integer >= " + std::to_string(min) + ")");
      }
      return std::nullopt;
    }
    const Json& v = object.at(key);
    if (!v.is_number_integer()) {
      issue(field, "must be an integer >= " + std::to_string(min) + ", not " + typeName(v));
      return std::nullopt;
    }
    const auto value = v.get<std::int64_t>();
    if (value < min || value > 1'000'000'000) {
      issue(field, "must be an integer >= " + std::to_string(min) + ", not " + std::to_string(value));
      return std::nullopt;
    }
    return static_cast<int>(value);
  }

  std::optional<std::string> string(const Json& object, const char* key, const std::string& field, bool required) {
    if (!object.contains(key)) {
      if (required) {
        issue(field, "missing (a string)");
      }
      return std::nullopt;
    }
    const Json& v = object.at(key);
    if (!v.is_string() || v.get<std::string>().empty()) {
      issue(field, "must be a non-empty string, not " + (v.is_string() ? std::string("an empty string") : typeName(v)));
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  std::optional<OutputPath> outputPath(const Json& v, const std::string& field) {
    auto step = [&](const Json& s, const std::string& where, OutputPath& out) {
      if (s.is_number_integer() && s.get<std::int64_t>() >= 0) {
        out.push_back({false, s.get<std::int64_t>(), {}});
        return true;
      }
      if (s.is_string() && !s.get<std::string>().empty()) {
        out.push_back({true, 0, s.get<std::string>()});
        return true;
      }
      issue(where, "must be an index (an integer >= 0) or a dict key (a non-empty string), not " +
                       (s.is_number_integer() ? "the negative integer " + s.dump() : typeName(s)));
      return false;
    };
    OutputPath path;
    if (v.is_array()) {
      bool good = true;
      for (std::size_t i = 0; i < v.size(); ++i) {
        good = step(v[i], field + "[" + std::to_string(i) + "]", path) && good;
      }
      return good ? std::optional<OutputPath>(path) : std::nullopt;
    }
    if (step(v, field, path)) {
      return path;
    }
    return std::nullopt;
  }

private:
  std::vector<ManifestIssue> m_issues;
};

void readInputs(Reader& r, const Json& root, ModelManifest& m) {
  if (!root.contains("inputs")) {
    r.issue("inputs", "missing: the module's forward arguments in order, e.g. [\"input_ids\", \"attention_mask\"] "
                      "(known: " + knownInputNames() + ")");
    return;
  }
  const Json& inputs = root.at("inputs");
  if (!inputs.is_array() || inputs.empty()) {
    r.issue("inputs", "must be a non-empty array of input names (known: " + knownInputNames() + ")");
    return;
  }
  std::set<ModelInput> seen;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string field = "inputs[" + std::to_string(i) + "]";
    const Json& e = inputs[i];
    std::string name;
    std::optional<std::string> dtype;
    if (e.is_string()) {
      name = e.get<std::string>();
    } else if (e.is_object()) {
      r.unknownKeys(e, field + ".", {"name", "dtype"});
      auto n = r.string(e, "name", field + ".name", true);
      if (!n) {
        continue;
      }
      name = *n;
      dtype = r.string(e, "dtype", field + ".dtype", false);
    } else {
      r.issue(field, "must be an input name or an object {\"name\", \"dtype\"}, not " + typeName(e));
      continue;
    }
    const auto* info = std::find_if(std::begin(kInputs), std::end(kInputs), [&](const InputInfo& k) { return name == k.name; });
    if (info == std::end(kInputs)) {
      r.issue(field, "unknown input '" + name + "' (known: " + knownInputNames() + ")");
      continue;
    }
    if (!seen.insert(info->kind).second) {
      r.issue(field, "input '" + name + "' is listed twice");
      continue;
    }
    ManifestInput in{info->kind, info->defaultType};
    if (dtype) {
      if (*dtype == "int64") {
        in.dtype = InputDType::Int64;
      } else if (*dtype == "float32") {
        in.dtype = InputDType::Float32;
      } else if (*dtype == "bool") {
        in.dtype = InputDType::Bool;
      } else {
        r.issue(field + ".dtype", "must be \"int64\", \"float32\" or \"bool\", not \"" + *dtype + "\"");
        continue;
      }
      const bool idInput = info->kind == ModelInput::InputIds || info->kind == ModelInput::TokenTypeIds ||
                           info->kind == ModelInput::PositionIds;
      if (idInput && in.dtype != InputDType::Int64) {
        r.issue(field + ".dtype", "'" + name + "' holds ids: it must be \"int64\"");
      }
      if ((info->kind == ModelInput::Features || info->kind == ModelInput::HeadMask) && in.dtype != InputDType::Float32) {
        r.issue(field + ".dtype", "'" + name + "' must be \"float32\"");
      }
    }
    m.inputs.push_back(in);
  }
  if (!r.ok()) {
    return;
  }
  if (m.takes(ModelInput::Features)) {
    if (m.inputs.size() != 1) {
      r.issue("inputs", "a vector model takes \"features\" alone (text inputs such as input_ids cannot go with it)");
    }
  } else if (!m.takes(ModelInput::InputIds)) {
    r.issue("inputs", "a text model must take \"input_ids\" (or a vector model \"features\")");
  }
  if (m.takes(ModelInput::AttentionMask) && m.takes(ModelInput::PaddingMask)) {
    r.issue("inputs", "\"attention_mask\" and \"padding_mask\" say the same thing: give one");
  }
}

void readOutputs(Reader& r, const Json& root, ModelManifest& m) {
  if (!root.contains("outputs")) {
    r.issue("outputs", "missing: where logits (and optionally hidden_states, attentions) sit in the module's "
                       "return value, e.g. {\"logits\": 0, \"hidden_states\": 1, \"attentions\": 2}");
    return;
  }
  const Json& outputs = root.at("outputs");
  if (!outputs.is_object()) {
    r.issue("outputs", "must be an object, not " + typeName(outputs));
    return;
  }
  r.unknownKeys(outputs, "outputs.", {"logits", "hidden_states", "attentions"});
  if (!outputs.contains("logits")) {
    r.issue("outputs.logits", "missing (an index, a dict key, a list of them, or [] when forward returns the logits "
                              "tensor itself)");
  } else if (auto p = r.outputPath(outputs.at("logits"), "outputs.logits")) {
    m.logits = *p;
  }
  if (outputs.contains("hidden_states")) {
    m.hiddenStates = r.outputPath(outputs.at("hidden_states"), "outputs.hidden_states");
  }
  if (outputs.contains("attentions")) {
    m.attentions = r.outputPath(outputs.at("attentions"), "outputs.attentions");
  }
}

void readTokenizer(Reader& r, const Json& root, const std::string& manifestPath, ModelManifest& m) {
  if (!root.contains("tokenizer")) {
    if (!m.isVector()) {
      r.issue("tokenizer", "missing: a text model needs {\"type\": \"wordpiece\", \"vocab\": \"vocab.txt\", "
                           "\"lower_case\": true} or {\"type\": \"word\", \"vocab\": ...}");
    }
    return;
  }
  const Json& t = root.at("tokenizer");
  if (m.isVector()) {
    r.issue("tokenizer", "a vector model (input \"features\") takes no tokenizer");
    return;
  }
  if (!t.is_object()) {
    r.issue("tokenizer", "must be an object, not " + typeName(t));
    return;
  }
  r.unknownKeys(t, "tokenizer.", {"type", "vocab", "lower_case"});
  ManifestTokenizer tok;
  const auto type = r.string(t, "type", "tokenizer.type", true);
  if (type && *type != "wordpiece" && *type != "word") {
    r.issue("tokenizer.type", "must be \"wordpiece\" (a BERT vocab.txt) or \"word\", not \"" + *type + "\"");
  } else if (type) {
    tok.type = *type;
  }
  if (t.contains("lower_case")) {
    if (!t.at("lower_case").is_boolean()) {
      r.issue("tokenizer.lower_case", "must be true or false, not " + typeName(t.at("lower_case")));
    } else if (tok.type == "word" && !t.at("lower_case").get<bool>()) {
      r.issue("tokenizer.lower_case", "the word tokenizer always lower-cases");
    } else {
      tok.lowerCase = t.at("lower_case").get<bool>();
    }
  }
  if (const auto vocab = r.string(t, "vocab", "tokenizer.vocab", true)) {
    std::filesystem::path p(*vocab);
    if (p.is_relative()) {
      p = std::filesystem::path(manifestPath).parent_path() / p;
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      r.issue("tokenizer.vocab", "no such file '" + p.string() + "'" +
                                     (std::filesystem::path(*vocab).is_relative() ? " (relative to the manifest's folder)" : ""));
    }
    tok.vocabPath = p.string();
  }
  m.tokenizer = tok;
}

void readClassNames(Reader& r, const Json& root, ModelManifest& m) {
  if (!root.contains("class_names")) {
    r.issue("class_names", "missing: the name of each class, in the order of the logits");
    return;
  }
  const Json& names = root.at("class_names");
  if (!names.is_array() || names.size() < 2) {
    r.issue("class_names", "must be an array of at least 2 class names");
    return;
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string field = "class_names[" + std::to_string(i) + "]";
    if (!names[i].is_string() || names[i].get<std::string>().empty()) {
      r.issue(field, "must be a non-empty string, not " + typeName(names[i]));
      continue;
    }
    const auto name = names[i].get<std::string>();
    if (!seen.insert(name).second) {
      r.issue(field, "'" + name + "' is listed twice");
    }
    m.classNames.push_back(name);
  }
}

void readSizes(Reader& r, const Json& root, ModelManifest& m) {
  if (!root.contains("sizes")) {
    r.issue("sizes", "missing: {\"layers\", \"heads\", \"width\"} (vector models: \"layers\", \"width\", \"features\")");
    return;
  }
  const Json& s = root.at("sizes");
  if (!s.is_object()) {
    r.issue("sizes", "must be an object, not " + typeName(s));
    return;
  }
  r.unknownKeys(s, "sizes.", {"layers", "heads", "width", "max_length", "features"});
  const bool needsLayers = m.hiddenStates || m.attentions || m.takes(ModelInput::HeadMask);
  m.layers = r.integer(s, "layers", "sizes.layers", needsLayers ? 1 : 0, true).value_or(0);
  m.width = r.integer(s, "width", "sizes.width", 1, true).value_or(0);
  if (m.isVector()) {
    if (s.contains("heads") && !(s.at("heads").is_number_integer() && s.at("heads").get<std::int64_t>() == 0)) {
      r.issue("sizes.heads", "a vector model has no attention heads (leave it out)");
    }
    if (s.contains("max_length")) {
      r.issue("sizes.max_length", "a vector model has no input length (leave it out)");
    }
    m.features = r.integer(s, "features", "sizes.features", 1, true).value_or(0);
  } else {
    const bool needsHeads = m.attentions || m.takes(ModelInput::HeadMask);
    m.heads = r.integer(s, "heads", "sizes.heads", needsHeads ? 1 : 0, needsHeads).value_or(0);
    m.maxLength = r.integer(s, "max_length", "sizes.max_length", 2, false).value_or(0);
    if (s.contains("features")) {
      r.issue("sizes.features", "only vector models (input \"features\") have it");
    }
  }
  if (m.isVector() && m.attentions) {
    r.issue("outputs.attentions", "a vector model has no attention");
  }
}

void readClassifier(Reader& r, const Json& root, ModelManifest& m) {
  if (!root.contains("classifier")) {
    return;
  }
  const Json& c = root.at("classifier");
  if (!c.is_object()) {
    r.issue("classifier", "must be an object {\"weight\": NAME, \"bias\": NAME}, not " + typeName(c));
    return;
  }
  r.unknownKeys(c, "classifier.", {"weight", "bias"});
  m.classifierWeight = r.string(c, "weight", "classifier.weight", true).value_or("");
  m.classifierBias = r.string(c, "bias", "classifier.bias", false).value_or("");
}

} // namespace

std::string formatOutputPath(const OutputPath& path) {
  std::string out = "outputs";
  for (const auto& s : path) {
    out += s.isKey ? "[\"" + s.key + "\"]" : "[" + std::to_string(s.index) + "]";
  }
  return out;
}

bool ModelManifest::takes(ModelInput input) const {
  return std::any_of(inputs.begin(), inputs.end(), [&](const ManifestInput& i) { return i.kind == input; });
}

std::string ManifestIssue::str(const std::string& manifestPath) const {
  return "manifest '" + manifestPath + "': " + (field.empty() ? "" : "field '" + field + "': ") + message;
}

std::string defaultManifestPath(const std::string& modelPath) {
  std::filesystem::path p(modelPath);
  p.replace_extension(".json");
  return p.string();
}

const char* inputName(ModelInput input) {
  for (const auto& i : kInputs) {
    if (i.kind == input) {
      return i.name;
    }
  }
  return "?";
}

ManifestParseResult parseModelManifest(const std::string& jsonText, const std::string& manifestPath) {
  ManifestParseResult result;
  Json root;
  try {
    root = Json::parse(jsonText);
  } catch (const Json::parse_error& e) {
    result.issues.push_back({"", std::string("not valid JSON: ") + e.what()});
    return result;
  }
  if (!root.is_object()) {
    result.issues.push_back({"", "must hold a JSON object, not " + typeName(root)});
    return result;
  }
  Reader r;
  r.unknownKeys(root, "", {"manifest_version", "inputs", "outputs", "tokenizer", "class_names", "sizes", "classifier"});
  if (root.contains("manifest_version")) {
    const Json& v = root.at("manifest_version");
    if (!v.is_number_integer() || v.get<std::int64_t>() != 1) {
      r.issue("manifest_version", "must be 1 (the only version this KDScope reads), not " + v.dump());
    }
  }
  ModelManifest m;
  m.path = manifestPath;
  readInputs(r, root, m);
  readOutputs(r, root, m);
  readTokenizer(r, root, manifestPath, m);
  readClassNames(r, root, m);
  readSizes(r, root, m);
  readClassifier(r, root, m);
  result.issues = r.take();
  if (result.issues.empty()) {
    result.manifest = std::move(m);
  }
  return result;
}

ManifestParseResult readModelManifest(const std::string& manifestPath) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(manifestPath, ec)) {
    ManifestParseResult result;
    result.issues.push_back({"", "no such file (a TorchScript model needs a manifest: MODEL.json beside MODEL.pt, "
                                 "or --manifest; docs/models.md)"});
    return result;
  }
  std::ifstream in(manifestPath, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    ManifestParseResult result;
    result.issues.push_back({"", "cannot be read"});
    return result;
  }
  return parseModelManifest(text.str(), manifestPath);
}

ModelManifest loadModelManifest(const std::string& manifestPath) {
  auto parsed = readModelManifest(manifestPath);
  if (!parsed.manifest) {
    std::string message;
    for (const auto& issue : parsed.issues) {
      message += (message.empty() ? "" : "\n") + issue.str(manifestPath);
    }
    throw InputError(message);
  }
  return std::move(*parsed.manifest);
}

} // namespace kdscope::core
