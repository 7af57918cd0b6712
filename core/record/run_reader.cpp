#include "core/record/run_reader.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_writer.h"
#include "core/record/shape_text.h"

namespace kdscope::core {

namespace {

// Logits are read in blocks of this many rows, so that summary() needs memory for a block,
// not for a whole eval set.
constexpr std::uint64_t kBlockRows = 4096;

std::string taskPath(const std::string& task) { return "/tasks/" + task; }
std::string modelGroup(const std::string& task, const std::string& model) {
  return RunWriter::modelPath(task, model);
}

[[noreturn]] void fail(const H5File& file, const std::string& object, const std::string& what) {
  throw InputError(file.path() + ": " + object + ": " + what);
}

/// What one dimension must be, and where that number comes from (for the message).
struct Dim {
  std::uint64_t value = 0;
  std::string source;
};

/// Checks a dataset's element class, rank and the dimensions that other objects fix, before
/// anything is read or allocated. `dims[i]` empty: any size.
void checkDataset(const H5File& file, const std::string& path, H5TypeClass cls,
                  const std::vector<std::optional<Dim>>& dims) {
  if (file.typeClass(path) != cls) {
    const char* expected = cls == H5TypeClass::Float ? "floating point" : cls == H5TypeClass::Integer ? "integer" : "string";
    fail(file, path, "holds " + file.typeName(path) + ", expected " + expected + " values");
  }
  const std::vector<std::uint64_t> shape = file.shape(path);
  if (shape.size() != dims.size()) {
    fail(file, path,
         "has shape " + shapeText(shape) + " of rank " + std::to_string(shape.size()) + ", expected rank " +
             std::to_string(dims.size()));
  }
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] && shape[i] != dims[i]->value) {
      fail(file, path,
           "has shape " + shapeText(shape) + ": " + (i == 0 ? std::string("rows") : "dimension " + std::to_string(i)) +
               " " + std::to_string(shape[i]) + ", expected " + std::to_string(dims[i]->value) + " (" +
               dims[i]->source + ")");
    }
  }
}

std::int64_t numClasses(const H5File& file, const std::string& task) {
  const std::int64_t classes = file.attrInt(taskPath(task), "num_classes");
  if (classes < 1) {
    fail(file, taskPath(task), "attribute 'num_classes' is " + std::to_string(classes) + ", expected at least 1");
  }
  return classes;
}

/// Checked labels: 1-D integers, each a class of the task.
std::uint64_t checkLabels(const H5File& file, const std::string& task) {
  const std::string path = taskPath(task) + "/eval/labels";
  checkDataset(file, path, H5TypeClass::Integer, {std::nullopt});
  return file.shape(path)[0];
}

std::vector<std::int64_t> readLabels(const H5File& file, const std::string& task) {
  const std::string path = taskPath(task) + "/eval/labels";
  checkLabels(file, task);
  const std::int64_t classes = numClasses(file, task);
  std::vector<std::int64_t> labels = file.readInt64(path);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      fail(file, path,
           "label " + std::to_string(labels[i]) + " of example " + std::to_string(i) + " is outside 0.." +
               std::to_string(classes - 1) + " (num_classes of " + taskPath(task) + ")");
    }
  }
  return labels;
}

/// Checks eval/logits against the task: [rows of eval/labels, num_classes], floats.
void checkLogits(const H5File& file, const std::string& task, const std::string& model) {
  const std::string labels = taskPath(task) + "/eval/labels";
  std::optional<Dim> rows;
  if (file.exists(labels)) {
    rows = Dim{checkLabels(file, task), "rows of " + labels};
  }
  const auto classes = static_cast<std::uint64_t>(numClasses(file, task));
  checkDataset(file, modelGroup(task, model) + "/eval/logits", H5TypeClass::Float,
               {rows, Dim{classes, "num_classes of " + taskPath(task)}});
}

bool cutOff(const H5File& file) {
  return file.hasAttr("/", "status") && file.attrString("/", "status") == "running";
}

/// The common length of a log's columns (each must be 1-D, of its class). The writer
/// keeps them equal; a run cut off between two columns' appends may differ by a block,
/// so a "running" file is read up to the shortest column, and any other is an error.
std::uint64_t logLength(const H5File& file, const std::vector<std::pair<std::string, H5TypeClass>>& columns) {
  std::optional<std::uint64_t> length;
  std::string first;
  for (const auto& [path, cls] : columns) {
    checkDataset(file, path, cls, {std::nullopt});
    const std::uint64_t rows = file.shape(path)[0];
    if (length && rows != *length) {
      if (!cutOff(file)) {
        fail(file, path, "has " + std::to_string(rows) + " rows, but " + first + " has " + std::to_string(*length));
      }
      length = std::min(*length, rows);
    } else if (!length) {
      length = rows;
      first = path;
    }
  }
  return length.value_or(0);
}

/// Fraction of eval examples whose logits' argmax (ties: the lowest class) is the label.
/// -1 when a row was never written (all NaN: the fill value of a run cut off mid-write).
double accuracy(const H5File& file, const std::string& task, const std::string& model) {
  checkLogits(file, task, model);
  const std::vector<std::int64_t> labels = readLabels(file, task);
  const auto classes = static_cast<std::size_t>(numClasses(file, task));
  const std::string path = modelGroup(task, model) + "/eval/logits";
  if (labels.empty()) {
    return -1.0;
  }
  std::uint64_t correct = 0;
  for (std::uint64_t start = 0; start < labels.size(); start += kBlockRows) {
    const std::uint64_t rows = std::min<std::uint64_t>(kBlockRows, labels.size() - start);
    const std::vector<float> block = file.readFloat(path, start, rows);
    for (std::uint64_t r = 0; r < rows; ++r) {
      const float* row = block.data() + r * classes;
      std::optional<std::size_t> best;
      for (std::size_t c = 0; c < classes; ++c) {
        if (!std::isnan(row[c]) && (!best || row[c] > row[*best])) {
          best = c;
        }
      }
      if (!best) {
        return -1.0;
      }
      correct += static_cast<std::int64_t>(*best) == labels[start + r] ? 1 : 0;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

} // namespace

RunReader::RunReader(const std::string& path) : m_file(std::make_unique<H5File>(path, H5File::Mode::ReadOnly)) {
  const H5File& f = *m_file;
  if (!f.hasAttr("/", "format")) {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is missing)");
  }
  std::string format;
  try {
    format = f.attrString("/", "format");
  } catch (const InputError&) {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is not a string)");
  }
  if (format != "kdscope-run") {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is '" + format +
                     "', expected 'kdscope-run')");
  }
  const std::int64_t version = f.attrInt("/", "format_version");
  if (version > kRunFormatVersion) {
    throw InputError(path + ": format_version " + std::to_string(version) + " is newer than this KDScope reads (" +
                     std::to_string(kRunFormatVersion) + ")");
  }
  if (version < 1) {
    throw InputError(path + ": format_version " + std::to_string(version) + " is not a valid version (1 is the first)");
  }
}

RunReader::~RunReader() = default;
RunReader::RunReader(RunReader&&) noexcept = default;
RunReader& RunReader::operator=(RunReader&&) noexcept = default;

const H5File& RunReader::file() const { return *m_file; }

std::vector<std::string> RunReader::tasks() const {
  const H5File& f = *m_file;
  if (!f.isGroup("/tasks")) {
    return {};
  }
  std::vector<std::string> names;
  for (std::string& name : f.childrenInCreationOrder("/tasks")) {
    if (f.isGroup(taskPath(name))) {
      names.push_back(std::move(name));
    }
  }
  return names;
}

std::vector<std::string> RunReader::models(const std::string& task) const {
  const H5File& f = *m_file;
  if (!f.isGroup(taskPath(task))) {
    fail(f, taskPath(task), "no such task");
  }
  const std::string group = taskPath(task) + "/models";
  if (!f.isGroup(group)) {
    return {};
  }
  std::vector<std::string> names;
  for (std::string& name : f.childrenInCreationOrder(group)) {
    if (f.isGroup(modelGroup(task, name))) {
      names.push_back(std::move(name));
    }
  }
  std::stable_partition(names.begin(), names.end(), [&](const std::string& name) {
    return f.attrString(modelGroup(task, name), "role") == "teacher";
  });
  return names;
}

std::vector<std::int64_t> RunReader::evalLabels(const std::string& task) const {
  const H5File& f = *m_file;
  if (!f.isGroup(taskPath(task))) {
    fail(f, taskPath(task), "no such task");
  }
  if (!f.isDataset(taskPath(task) + "/eval/labels")) {
    fail(f, taskPath(task) + "/eval/labels", "no such dataset");
  }
  return readLabels(f, task);
}

std::vector<float> RunReader::evalLogits(const std::string& task, const std::string& model,
                                         std::int64_t* classes) const {
  const H5File& f = *m_file;
  const std::string path = modelGroup(task, model) + "/eval/logits";
  if (!f.isGroup(modelGroup(task, model))) {
    fail(f, modelGroup(task, model), "no such model");
  }
  if (!f.isDataset(path)) {
    fail(f, path, "no such dataset");
  }
  checkLogits(f, task, model);
  if (classes != nullptr) {
    *classes = numClasses(f, task);
  }
  return f.readFloat(path);
}

TrainLog RunReader::trainLog(const std::string& task, const std::string& model) const {
  const H5File& f = *m_file;
  const std::string m = modelGroup(task, model);
  if (!f.isGroup(m)) {
    fail(f, m, "no such model");
  }
  TrainLog log;
  if (!f.isDataset(m + "/train/step")) {
    return log; // nothing logged yet
  }
  std::vector<std::pair<std::string, H5TypeClass>> columns{{m + "/train/step", H5TypeClass::Integer},
                                                           {m + "/train/loss", H5TypeClass::Float}};
  std::vector<std::string> terms;
  if (f.isGroup(m + "/train/terms")) {
    terms = f.childrenInCreationOrder(m + "/train/terms");
    for (const std::string& term : terms) {
      columns.emplace_back(m + "/train/terms/" + term, H5TypeClass::Float);
    }
  }
  if (!f.isDataset(m + "/train/loss")) {
    fail(f, m + "/train/loss", "is missing, but " + m + "/train/step exists");
  }
  const std::uint64_t length = logLength(f, columns);
  log.steps = f.readInt64(m + "/train/step", 0, length);
  log.loss = f.readFloat(m + "/train/loss", 0, length);
  for (const std::string& term : terms) {
    log.terms[term] = f.readFloat(m + "/train/terms/" + term, 0, length);
  }
  return log;
}

EvalCurve RunReader::evalCurve(const std::string& task, const std::string& model) const {
  const H5File& f = *m_file;
  const std::string m = modelGroup(task, model);
  if (!f.isGroup(m)) {
    fail(f, m, "no such model");
  }
  EvalCurve curve;
  const std::string c = m + "/eval_curve";
  if (!f.isDataset(c + "/step")) {
    return curve;
  }
  const std::vector<std::pair<std::string, H5TypeClass>> columns{{c + "/step", H5TypeClass::Integer},
                                                                 {c + "/epoch", H5TypeClass::Integer},
                                                                 {c + "/accuracy", H5TypeClass::Float},
                                                                 {c + "/loss", H5TypeClass::Float}};
  for (const auto& column : columns) {
    if (!f.isDataset(column.first)) {
      fail(f, column.first, "is missing, but " + c + "/step exists");
    }
  }
  const std::uint64_t length = logLength(f, columns);
  curve.step = f.readInt64(c + "/step", 0, length);
  curve.epoch = f.readInt64(c + "/epoch", 0, length);
  curve.accuracy = f.readFloat(c + "/accuracy", 0, length);
  curve.loss = f.readFloat(c + "/loss", 0, length);
  return curve;
}

RunSummary RunReader::summary() const {
  const H5File& f = *m_file;
  RunSummary run;
  run.path = f.path();
  run.formatVersion = f.attrInt("/", "format_version");
  run.status = f.attrString("/", "status");
  run.statusMessage = f.attrString("/", "status_message");
  run.jobJson = f.attrString("/", "job");
  run.kdscopeVersion = f.attrString("/", "kdscope_version");
  for (const std::string& taskName : tasks()) {
    const std::string t = taskPath(taskName);
    TaskSummary task;
    task.name = taskName;
    task.numClasses = numClasses(f, taskName);
    task.classNames = f.attrStrings(t, "class_names");
    if (task.classNames.size() != static_cast<std::size_t>(task.numClasses)) {
      fail(f, t,
           "attribute 'class_names' holds " + std::to_string(task.classNames.size()) + " names, but num_classes is " +
               std::to_string(task.numClasses));
    }
    const bool hasLabels = f.exists(t + "/eval/labels");
    task.evalExamples = hasLabels ? static_cast<std::int64_t>(checkLabels(f, taskName)) : 0;
    for (const std::string& modelName : models(taskName)) {
      const std::string m = modelGroup(taskName, modelName);
      ModelSummary model;
      model.name = modelName;
      model.role = f.attrString(m, "role");
      model.architectureJson = f.attrString(m, "architecture");
      model.objectiveJson = f.attrString(m, "objective");
      model.parameterCount = f.attrInt(m, "parameter_count");
      if (f.isDataset(m + "/train/step")) {
        std::vector<std::pair<std::string, H5TypeClass>> columns{{m + "/train/step", H5TypeClass::Integer}};
        if (f.isDataset(m + "/train/loss")) {
          columns.emplace_back(m + "/train/loss", H5TypeClass::Float);
        }
        const std::uint64_t length = logLength(f, columns);
        if (length > 0) {
          model.trainSteps = f.readInt64(m + "/train/step", length - 1, 1).at(0);
          if (columns.size() > 1) {
            model.finalLoss = f.readFloat(m + "/train/loss", length - 1, 1).at(0);
          }
        }
      }
      if (hasLabels && f.exists(m + "/eval/logits")) {
        model.evalAccuracy = accuracy(f, taskName, modelName);
      }
      task.models.push_back(std::move(model));
    }
    run.tasks.push_back(std::move(task));
  }
  return run;
}

} // namespace kdscope::core
