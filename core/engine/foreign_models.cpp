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
    std::vector<std::string> texts(task.eval.texts.begin(), task.eval.texts.begin() + rows);
    batch = encodeTextBatch(tokenizer, texts, {}, task.seqLen);
    description = std::to_string(rows) + " rows of " + std::to_string(task.seqLen) + " tokens: the first eval examples of task '" +
                  task.name + "'";
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
