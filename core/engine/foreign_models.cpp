#include "core/engine/foreign_models.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "core/common/error.h"
#include "core/models/model_manifest.h"
#include "core/models/model_tokenizer.h"

namespace kdscope::core {

namespace fs = std::filesystem;

namespace {

std::string resolveJobPath(const std::string& baseDir, std::string path, const std::string& task) {
  for (auto pos = path.find("{task}"); pos != std::string::npos; pos = path.find("{task}", pos + task.size())) {
    path.replace(pos, 6, task);
  }
  if (path.empty() || fs::path(path).is_absolute() || baseDir.empty()) {
    return path;
  }
  return (fs::path(baseDir) / path).lexically_normal().string();
}

std::string joined(const std::vector<std::string>& lines, const std::string& separator) {
  std::string out;
  for (const auto& l : lines) {
    out += (out.empty() ? "" : separator) + l;
  }
  return out;
}

} // namespace

ForeignModel loadForeignModel(const std::string& name, const std::string& field, const std::string& torchscript,
                              const std::string& manifest, const std::string& baseDir, const TaskData& task) {
  ForeignModel f;
  f.name = name;
  f.field = field;
  f.modelPath = resolveJobPath(baseDir, torchscript, task.name);
  f.manifestPath = manifest.empty() ? defaultManifestPath(f.modelPath) : resolveJobPath(baseDir, manifest, task.name);
  const std::string where = field + " '" + f.modelPath + "' (task '" + task.name + "')";
  ModelManifest m;
  try {
    m = loadModelManifest(f.manifestPath);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
  const std::string inManifest = "manifest '" + f.manifestPath + "'";
  const bool textTask = task.kind == TaskKind::Text;
  if (textTask == m.isVector()) {
    throw InputError(where + ": " + inManifest + " describes a " + (m.isVector() ? "vector" : "text") + " model but task '" +
                     task.name + "' is a " + (textTask ? "text" : "vector") + " task");
  }
  if (m.numClasses() != task.numClasses()) {
    throw InputError(where + ": " + inManifest + ": field 'class_names': " + std::to_string(m.numClasses()) +
                     " classes, but task '" + task.name + "' has " + std::to_string(task.numClasses()) + " (" +
                     joined(task.classNames, ", ") + ")");
  }
  if (!textTask && m.features != task.dim) {
    throw InputError(where + ": " + inManifest + ": field 'sizes.features': " + std::to_string(m.features) +
                     ", but task '" + task.name + "' has " + std::to_string(task.dim) + " features");
  }
  if (textTask && m.maxLength > 0 && task.seqLen > m.maxLength) {
    throw InputError(where + ": the task's max_len " + std::to_string(task.seqLen) + " is above the manifest's " +
                     "sizes.max_length " + std::to_string(m.maxLength) + " (" + inManifest + "); lower tasks[].max_len");
  }
  try {
    f.model = TorchScriptClassifier(f.modelPath, m);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
  // The pre-flight batch: the task's first eval examples (at most 2), as the model reads them.
  const auto rows = static_cast<std::int64_t>(std::min<std::size_t>(2, task.eval.size()));
  if (rows == 0) {
    throw InputError(where + ": task '" + task.name + "' has no eval examples to check the model on");
  }
  Batch batch;
  std::string description;
  if (textTask) {
    const ModelTokenizer tokenizer = ModelTokenizer::fromManifest(m);
    f.view = retokenizeTask(task, tokenizer, where);
    f.vocab = tokenizer.vocab();
    // Sentence pairs go in as pairs (token_type_ids 0 then 1), as in the recording.
    const bool pairs = !task.eval.pairTexts.empty();
    std::vector<std::string> texts;
    std::vector<std::string> pairTexts;
    for (std::int64_t i = 0; i < rows; ++i) {
      texts.push_back(task.eval.firstText(static_cast<std::size_t>(i)));
      if (pairs) {
        pairTexts.push_back(task.eval.pairTexts[static_cast<std::size_t>(i)]);
      }
    }
    batch = encodeTextBatch(tokenizer, texts, pairTexts, task.seqLen);
    description = std::to_string(rows) + " rows of " + std::to_string(task.seqLen) + " tokens: the first eval examples of task '" +
                  task.name + "'" + (pairs ? " (sentence pairs)" : "");
  } else {
    f.view = task;
    batch.features = torch::from_blob(const_cast<float*>(task.eval.features.data()), {rows, task.dim}, torch::kFloat32).clone();
    description = std::to_string(rows) + " rows of " + std::to_string(task.dim) + " features: the first eval examples of task '" +
                  task.name + "'";
  }
  f.report = preflightTorchScript(*f.model, batch, description);
  f.report.modelPath = f.modelPath;
  f.report.manifestPath = f.manifestPath;
  if (!f.report.usable) {
    throw InputError(where + ": the pre-flight check failed:\n  " + joined(f.report.errors, "\n  "));
  }
  return f;
}

std::vector<std::int64_t> modelTokenCounts(const TaskData& view) {
  const auto len = static_cast<std::size_t>(view.seqLen);
  std::vector<std::int64_t> counts(view.eval.size(), 0);
  for (std::size_t i = 0; i < counts.size() && len > 0; ++i) {
    const auto row = view.eval.tokens.begin() + static_cast<std::ptrdiff_t>(i * len);
    counts[i] = static_cast<std::int64_t>(std::count_if(row, row + static_cast<std::ptrdiff_t>(len), [](std::int64_t t) { return t != 0; }));
  }
  return counts;
}

std::vector<std::int64_t> modelTokenRows(const TaskData& view, std::size_t examples) {
  const auto len = static_cast<std::size_t>(view.seqLen);
  const std::size_t rows = std::min(examples, view.eval.size());
  return {view.eval.tokens.begin(), view.eval.tokens.begin() + static_cast<std::ptrdiff_t>(rows * len)};
}

RecordedModelSizes recordedSizes(const ForeignModel& f) {
  RecordedModelSizes s;
  s.layers = static_cast<std::uint64_t>(std::max(0, f.model->numLayers()));
  s.heads = static_cast<std::uint64_t>(std::max(0, f.model->numHeads()));
  s.width = static_cast<std::uint64_t>(std::max(0, f.model->hiddenWidth()));
  s.hidden = f.model->unavailable(ModelFeature::HiddenStates).empty();
  s.attention = s.heads > 0 && f.model->unavailable(ModelFeature::Attention).empty();
  s.classifier = f.model->unavailable(ModelFeature::Classifier).empty();
  s.classifierWidth = s.classifier ? static_cast<std::uint64_t>(f.model.ptr()->classifier()->weight.size(1)) : 0;
  s.vocab = f.vocab;
  return s;
}

TorchScriptSizes recordedSizes(const std::map<std::string, std::vector<ForeignModel>>& models) {
  TorchScriptSizes sizes;
  for (const auto& [task, list] : models) {
    for (const ForeignModel& f : list) {
      sizes[task][f.name] = recordedSizes(f);
    }
  }
  return sizes;
}

std::string foreignArchitectureJson(const ForeignModel& f, const std::string& savedPath) {
  const ModelManifest& m = f.model->manifest();
  nlohmann::json j;
  j["type"] = "torchscript";
  j["torchscript"] = fs::absolute(savedPath.empty() ? f.modelPath : savedPath).lexically_normal().string();
  j["trained"] = !savedPath.empty();
  j["manifest"] = fs::absolute(f.manifestPath).lexically_normal().string();
  j["kind"] = m.isVector() ? "vector" : "text";
  j["layers"] = m.layers;
  j["heads"] = m.heads;
  j["width"] = m.width;
  j["classes"] = m.numClasses();
  j["head_mask"] = f.model->unavailable(ModelFeature::HeadGate).empty();
  return j.dump();
}

std::string modelCheckJson(const ModelCheckReport& report) {
  auto lines = [](const std::vector<ModelCheckLine>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& l : v) {
      a.push_back({l.what, l.detail});
    }
    return a;
  };
  nlohmann::json j;
  j["usable"] = report.usable;
  j["batch"] = report.batchDescription;
  j["provides"] = lines(report.provides);
  j["lacks"] = lines(report.lacks);
  j["skipped"] = lines(report.skipped);
  return j.dump();
}

} // namespace kdscope::core
