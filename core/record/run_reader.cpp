#include "core/record/run_reader.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_writer.h"
#include "core/record/shape_text.h"

namespace kdscope::core {

namespace {

// Logits are read in blocks of this many rows, so that summary() needs memory for a block,
// not for a whole eval set.
constexpr std::uint64_t kBlockRows = 4096;

std::string taskPath(const std::string& task) { return layout::task(task); }
std::string modelGroup(const std::string& task, const std::string& model) { return layout::model(task, model); }

[[noreturn]] void fail(const H5File& file, const std::string& object, const std::string& what) {
  throw InputError(file.path() + ": " + object + ": " + what);
}

/// The task's group; fails with "no such task" unless it exists.
std::string existingTask(const H5File& file, const std::string& task) {
  const std::string group = taskPath(task);
  if (!file.isGroup(group)) {
    fail(file, group, "no such task");
  }
  return group;
}

/// The model's group; fails with "no such model" unless it exists.
std::string existingModel(const H5File& file, const std::string& task, const std::string& model) {
  const std::string group = modelGroup(task, model);
  if (!file.isGroup(group)) {
    fail(file, group, "no such model");
  }
  return group;
}

/// The names of the children of `parent` that are groups, in creation order.
std::vector<std::string> childGroups(const H5File& file, const std::string& parent) {
  std::vector<std::string> names;
  for (std::string& name : file.childrenInCreationOrder(parent)) {
    if (file.isGroup(parent + "/" + name)) {
      names.push_back(std::move(name));
    }
  }
  return names;
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
  const std::int64_t classes = file.attrInt(taskPath(task), layout::attr::kNumClasses);
  if (classes < 1) {
    fail(file, taskPath(task), "attribute 'num_classes' is " + std::to_string(classes) + ", expected at least 1");
  }
  return classes;
}

/// Checked labels: 1-D integers, each a class of the task.
std::uint64_t checkLabels(const H5File& file, const std::string& task) {
  const std::string path = layout::evalLabels(task);
  checkDataset(file, path, H5TypeClass::Integer, {std::nullopt});
  return file.shape(path)[0];
}

/// The labels at `path`, each checked to lie in [0, num_classes of the task).
std::vector<std::int64_t> readLabelsOf(const H5File& file, const std::string& task, const std::string& path) {
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

std::vector<std::int64_t> readLabels(const H5File& file, const std::string& task) {
  checkLabels(file, task);
  return readLabelsOf(file, task, layout::evalLabels(task));
}

/// Checks eval/logits against the task: [rows of eval/labels, num_classes], floats.
void checkLogits(const H5File& file, const std::string& task, const std::string& model) {
  const std::string labels = layout::evalLabels(task);
  std::optional<Dim> rows;
  if (file.exists(labels)) {
    rows = Dim{checkLabels(file, task), "rows of " + labels};
  }
  const auto classes = static_cast<std::uint64_t>(numClasses(file, task));
  checkDataset(file, layout::evalLogits(task, model), H5TypeClass::Float,
               {rows, Dim{classes, "num_classes of " + taskPath(task)}});
}

bool cutOff(const H5File& file) {
  return file.hasAttr(layout::root(), layout::attr::kStatus) && file.attrString(layout::root(), layout::attr::kStatus) == "running";
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

/// logLength of `columns` after checking that each is a dataset; fails with `missing` on
/// the first that is not.
std::uint64_t columnsLength(const H5File& file, const std::vector<std::pair<std::string, H5TypeClass>>& columns,
                            const std::string& missing) {
  for (const auto& column : columns) {
    if (!file.isDataset(column.first)) {
      fail(file, column.first, missing);
    }
  }
  return logLength(file, columns);
}

/// The columns of a model's eval curve: step, epoch, accuracy, loss.
std::vector<std::pair<std::string, H5TypeClass>> evalCurveColumns(const std::string& task, const std::string& model) {
  return {{layout::evalCurveColumn(task, model, "step"), H5TypeClass::Integer},
          {layout::evalCurveColumn(task, model, "epoch"), H5TypeClass::Integer},
          {layout::evalCurveColumn(task, model, "accuracy"), H5TypeClass::Float},
          {layout::evalCurveColumn(task, model, "loss"), H5TypeClass::Float}};
}

/// Fraction of eval examples whose logits' argmax (ties: the lowest class) is the label.
/// -1 when a row was never written (all NaN: the fill value of a run cut off mid-write).
double accuracy(const H5File& file, const std::string& task, const std::string& model) {
  checkLogits(file, task, model);
  const std::vector<std::int64_t> labels = readLabels(file, task);
  const auto classes = static_cast<std::size_t>(numClasses(file, task));
  const std::string path = layout::evalLogits(task, model);
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

namespace {

/// Opens read-only after probeHdf5File: a file that crashes HDF5 is refused before this
/// process reads it.
std::unique_ptr<H5File> openChecked(const std::string& path) {
  probeHdf5File(path);
  return std::make_unique<H5File>(path, H5File::Mode::ReadOnly);
}

} // namespace

RunReader::RunReader(const std::string& path) : m_file(openChecked(path)) {
  const H5File& f = *m_file;
  if (!f.hasAttr(layout::root(), layout::attr::kFormat)) {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is missing)");
  }
  std::string format;
  try {
    format = f.attrString(layout::root(), layout::attr::kFormat);
  } catch (const InputError&) {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is not a string)");
  }
  if (format != layout::kFormatName) {
    throw InputError(path + ": not a KDScope run file (attribute 'format' is '" + format +
                     "', expected 'kdscope-run')");
  }
  const std::int64_t version = f.attrInt(layout::root(), layout::attr::kFormatVersion);
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
  if (!f.isGroup(layout::tasks())) {
    return {};
  }
  return childGroups(f, layout::tasks());
}

std::vector<std::string> RunReader::models(const std::string& task) const {
  const H5File& f = *m_file;
  (void)existingTask(f, task); // fails with "no such task/model"
  const std::string group = layout::models(task);
  if (!f.isGroup(group)) {
    return {};
  }
  std::vector<std::string> names = childGroups(f, group);
  std::stable_partition(names.begin(), names.end(), [&](const std::string& name) {
    return f.attrString(modelGroup(task, name), layout::attr::kRole) == "teacher";
  });
  return names;
}

std::vector<std::int64_t> RunReader::evalLabels(const std::string& task) const {
  const H5File& f = *m_file;
  (void)existingTask(f, task); // fails with "no such task/model"
  const std::string path = layout::evalLabels(task);
  if (!f.isDataset(path)) {
    fail(f, path, "no such dataset");
  }
  return readLabels(f, task);
}

std::vector<float> RunReader::evalLogits(const std::string& task, const std::string& model,
                                         std::int64_t* classes) const {
  const H5File& f = *m_file;
  (void)existingModel(f, task, model); // fails with "no such task/model"
  const std::string path = layout::evalLogits(task, model);
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
  (void)existingModel(f, task, model);
  TrainLog log;
  if (!f.isDataset(layout::trainStep(task, model))) {
    return log; // nothing logged yet
  }
  std::vector<std::pair<std::string, H5TypeClass>> columns{{layout::trainStep(task, model), H5TypeClass::Integer},
                                                           {layout::trainLoss(task, model), H5TypeClass::Float}};
  std::vector<std::string> terms;
  if (f.isGroup(layout::trainTerms(task, model))) {
    terms = f.childrenInCreationOrder(layout::trainTerms(task, model));
    for (const std::string& term : terms) {
      columns.emplace_back(layout::trainTerm(task, model, term), H5TypeClass::Float);
    }
  }
  if (!f.isDataset(layout::trainLoss(task, model))) {
    fail(f, layout::trainLoss(task, model), "is missing, but " + layout::trainStep(task, model) + " exists");
  }
  const std::uint64_t length = logLength(f, columns);
  log.steps = f.readInt64(layout::trainStep(task, model), 0, length);
  log.loss = f.readFloat(layout::trainLoss(task, model), 0, length);
  for (const std::string& term : terms) {
    log.terms[term] = f.readFloat(layout::trainTerm(task, model, term), 0, length);
  }
  return log;
}

EvalCurve RunReader::evalCurve(const std::string& task, const std::string& model) const {
  const H5File& f = *m_file;
  (void)existingModel(f, task, model);
  EvalCurve curve;
  if (!f.isDataset(layout::evalCurveColumn(task, model, "step"))) {
    return curve;
  }
  const std::uint64_t length = columnsLength(f, evalCurveColumns(task, model), "is missing, but " + layout::evalCurveColumn(task, model, "step") + " exists");
  curve.step = f.readInt64(layout::evalCurveColumn(task, model, "step"), 0, length);
  curve.epoch = f.readInt64(layout::evalCurveColumn(task, model, "epoch"), 0, length);
  curve.accuracy = f.readFloat(layout::evalCurveColumn(task, model, "accuracy"), 0, length);
  curve.loss = f.readFloat(layout::evalCurveColumn(task, model, "loss"), 0, length);
  return curve;
}

std::vector<std::int64_t> RunReader::trainLabels(const std::string& task) const {
  const H5File& f = *m_file;
  (void)existingTask(f, task); // fails with "no such task/model"
  const std::string path = layout::trainLabels(task);
  if (!f.isDataset(path)) {
    return {};
  }
  checkDataset(f, path, H5TypeClass::Integer, {std::nullopt});
  return readLabelsOf(f, task, path);
}

namespace {

/// The name of a model's per-example record ("q_true" or "p_true"), empty when it has none.
std::string recordName(const H5File& file, const std::string& task, const std::string& model) {
  for (const char* name : {"q_true", "p_true"}) {
    if (file.exists(layout::trainRecordsValues(task, model, name))) {
      return name;
    }
  }
  return "";
}

/// Checks train_records and returns its common length (rows of epoch and step).
std::uint64_t checkTrainRecords(const H5File& file, const std::string& task, const std::string& model) {
  const std::string r = layout::trainRecords(task, model);
  const std::vector<std::pair<std::string, H5TypeClass>> columns{{layout::trainRecordsEpoch(task, model), H5TypeClass::Integer},
                                                                 {layout::trainRecordsStep(task, model), H5TypeClass::Integer}};
  const std::uint64_t length = columnsLength(file, columns, "is missing, but " + r + " exists");
  const std::string name = recordName(file, task, model);
  if (name.empty()) {
    fail(file, r, "holds neither q_true nor p_true");
  }
  const std::string labels = layout::trainLabels(task);
  if (!file.isDataset(labels)) {
    fail(file, layout::trainRecordsValues(task, model, name), "needs " + labels + ", which is missing");
  }
  checkDataset(file, labels, H5TypeClass::Integer, {std::nullopt});
  const std::uint64_t examples = file.shape(labels)[0];
  const std::string values = layout::trainRecordsValues(task, model, name);
  checkDataset(file, values, H5TypeClass::Float, {std::nullopt, Dim{examples, "rows of " + labels}});
  const std::uint64_t rows = file.shape(values)[0];
  // The writer extends the values before epoch and step, so a cut-off file may hold a row more.
  if (rows < length) {
    if (!cutOff(file)) {
      fail(file, values, "has " + std::to_string(rows) + " rows, but " + layout::trainRecordsEpoch(task, model) + " has " + std::to_string(length));
    }
    return rows;
  }
  return length;
}

/// Checks an optional dataset: present means of this class and shape.
void checkOptional(const H5File& file, const std::string& path, H5TypeClass cls,
                   const std::vector<std::optional<Dim>>& dims) {
  if (file.exists(path)) {
    if (!file.isDataset(path)) {
      fail(file, path, "is a group, expected a dataset");
    }
    checkDataset(file, path, cls, dims);
  }
}

/// A first dimension that may be at most `limit` (n_att, n_tok: examples 0 .. n-1).
void checkAtMost(const H5File& file, const std::string& path, std::uint64_t limit, const std::string& source) {
  const std::uint64_t rows = file.shape(path).at(0);
  if (rows > limit) {
    fail(file, path, "keeps " + std::to_string(rows) + " examples, more than the " + std::to_string(limit) + " (" +
                         source + ")");
  }
}

} // namespace

TrainRecords RunReader::trainRecords(const std::string& task, const std::string& model) const {
  const H5File& f = *m_file;
  (void)existingModel(f, task, model);
  TrainRecords records;
  if (!f.exists(layout::trainRecords(task, model))) {
    return records;
  }
  const std::uint64_t length = checkTrainRecords(f, task, model);
  records.name = recordName(f, task, model);
  records.examples = f.shape(layout::trainRecordsValues(task, model, records.name)).at(1);
  records.epoch = f.readInt64(layout::trainRecordsEpoch(task, model), 0, length);
  records.step = f.readInt64(layout::trainRecordsStep(task, model), 0, length);
  records.values = f.readFloat(layout::trainRecordsValues(task, model, records.name), 0, length);
  return records;
}

void RunReader::validate() const {
  const H5File& f = *m_file;
  for (const char* name : {layout::attr::kStatus, layout::attr::kStatusMessage, layout::attr::kJob, layout::attr::kKdscopeVersion}) {
    if (f.hasAttr(layout::root(), name)) {
      (void)f.attrString(layout::root(), name);
    }
  }
  for (const std::string& task : tasks()) {
    const std::string t = taskPath(task);
    const auto classes = static_cast<std::uint64_t>(numClasses(f, task));
    const std::vector<std::string> classNames = f.attrStrings(t, layout::attr::kClassNames);
    if (classNames.size() != classes) {
      fail(f, t,
           "attribute 'class_names' holds " + std::to_string(classNames.size()) + " names, but num_classes is " +
               std::to_string(classes));
    }
    const Dim c{classes, "num_classes of " + t};
    std::optional<Dim> n;
    if (f.exists(layout::evalLabels(task))) {
      n = Dim{checkLabels(f, task), "rows of " + layout::evalLabels(task)};
    }
    std::optional<Dim> len;
    checkOptional(f, layout::evalTokens(task), H5TypeClass::Integer, {n, std::nullopt});
    if (f.exists(layout::evalTokens(task))) {
      len = Dim{f.shape(layout::evalTokens(task))[1], "columns of " + layout::evalTokens(task)};
    }
    checkOptional(f, layout::vocab(task), H5TypeClass::String, {std::nullopt});
    checkOptional(f, layout::evalText(task), H5TypeClass::String, {n});
    checkOptional(f, layout::evalGroup(task), H5TypeClass::String, {n});
    checkOptional(f, layout::evalSourceIndex(task), H5TypeClass::Integer, {n});
    checkOptional(f, layout::superClassOf(task), H5TypeClass::Integer, {c});
    std::optional<Dim> nTrain;
    checkOptional(f, layout::trainLabels(task), H5TypeClass::Integer, {std::nullopt});
    if (f.exists(layout::trainLabels(task))) {
      nTrain = Dim{f.shape(layout::trainLabels(task))[0], "rows of " + layout::trainLabels(task)};
    }
    checkOptional(f, layout::trainSourceIndex(task), H5TypeClass::Integer, {nTrain});

    for (const std::string& model : models(task)) {
      const std::string m = modelGroup(task, model);
      const std::string role = f.attrString(m, layout::attr::kRole);
      if (role != "teacher" && role != "student") {
        fail(f, m, "attribute 'role' is '" + role + "', expected 'teacher' or 'student'");
      }
      (void)f.attrString(m, layout::attr::kArchitecture);
      (void)f.attrString(m, layout::attr::kObjective);
      (void)f.attrInt(m, layout::attr::kParameterCount);
      if (f.hasAttr(m, layout::attr::kPrecision)) {
        (void)f.attrString(m, layout::attr::kPrecision);
      }
      // Logs: each column 1-D, of its class, all of one length (nothing read).
      if (f.exists(layout::trainStep(task, model))) {
        std::vector<std::pair<std::string, H5TypeClass>> columns{{layout::trainStep(task, model), H5TypeClass::Integer},
                                                                 {layout::trainLoss(task, model), H5TypeClass::Float}};
        if (f.isGroup(layout::trainTerms(task, model))) {
          for (const std::string& term : f.children(layout::trainTerms(task, model))) {
            columns.emplace_back(layout::trainTerm(task, model, term), H5TypeClass::Float);
          }
        }
        (void)columnsLength(f, columns, "is missing or not a dataset, but " + layout::trainStep(task, model) + " exists");
      }
      if (f.exists(layout::evalCurve(task, model))) {
        const std::string curve = layout::evalCurve(task, model);
        (void)columnsLength(f, evalCurveColumns(task, model), "is missing or not a dataset, but " + curve + " exists");
      }
      if (f.exists(layout::evalLogits(task, model))) {
        checkLogits(f, task, model);
      }
      std::optional<Dim> layers1;
      std::optional<Dim> width;
      const std::string hidden = layout::evalHidden(task, model);
      checkOptional(f, hidden, H5TypeClass::Float, {n, std::nullopt, std::nullopt});
      if (f.exists(hidden)) {
        const auto shape = f.shape(hidden);
        if (shape[1] < 1) {
          fail(f, hidden, "has shape " + shapeText(shape) + ": no layer (dimension 1 is Lyr + 1)");
        }
        layers1 = Dim{shape[1], "dimension 1 of " + hidden};
        width = Dim{shape[2], "dimension 2 of " + hidden};
      }
      const std::string attention = layout::evalAttention(task, model);
      std::optional<Dim> layers;
      if (layers1) {
        layers = Dim{layers1->value - 1, "dimension 1 of " + hidden + " minus 1"};
      }
      checkOptional(f, attention, H5TypeClass::Float, {std::nullopt, layers, std::nullopt, len, len});
      if (f.exists(attention)) {
        if (!len) {
          fail(f, attention, "exists, but " + layout::evalTokens(task) + " does not (attention needs tokens)");
        }
        checkAtMost(f, attention, n ? n->value : 0, n ? n->source : "no eval labels");
      }
      const std::string tokenHidden = layout::evalTokenHidden(task, model);
      checkOptional(f, tokenHidden, H5TypeClass::Float, {std::nullopt, layers1, len, width});
      if (f.exists(tokenHidden)) {
        if (!len) {
          fail(f, tokenHidden, "exists, but " + layout::evalTokens(task) + " does not");
        }
        checkAtMost(f, tokenHidden, n ? n->value : 0, n ? n->source : "no eval labels");
      }
      // A TorchScript text model's own token count per eval example.
      checkOptional(f, layout::evalTokenCounts(task, model), H5TypeClass::Integer, {n});
      // Its own tokens of the kept examples (as many columns as the task's tokens) and the
      // vocabulary they index.
      const std::string modelTokens = layout::evalModelTokens(task, model);
      checkOptional(f, modelTokens, H5TypeClass::Integer, {std::nullopt, len});
      checkOptional(f, layout::modelVocab(task, model), H5TypeClass::String, {std::nullopt});
      if (f.exists(modelTokens)) {
        if (!len) {
          fail(f, modelTokens, "exists, but " + layout::evalTokens(task) + " does not");
        }
        if (!f.exists(layout::modelVocab(task, model))) {
          fail(f, modelTokens, "exists, but " + layout::modelVocab(task, model) + " (the vocabulary it indexes) does not");
        }
        checkAtMost(f, modelTokens, n ? n->value : 0, n ? n->source : "no eval labels");
      }
      checkOptional(f, layout::classifierWeight(task, model), H5TypeClass::Float, {c, std::nullopt});
      checkOptional(f, layout::classifierBias(task, model), H5TypeClass::Float, {c});
      if (f.exists(layout::trainRecords(task, model))) {
        (void)checkTrainRecords(f, task, model);
      }
    }
  }
}

RunSummary RunReader::summary() const {
  validate();
  const H5File& f = *m_file;
  RunSummary run;
  run.path = f.path();
  run.formatVersion = f.attrInt(layout::root(), layout::attr::kFormatVersion);
  run.status = f.attrString(layout::root(), layout::attr::kStatus);
  run.statusMessage = f.attrString(layout::root(), layout::attr::kStatusMessage);
  run.jobJson = f.attrString(layout::root(), layout::attr::kJob);
  run.kdscopeVersion = f.attrString(layout::root(), layout::attr::kKdscopeVersion);
  if (f.hasAttr(layout::root(), layout::attr::kWorldSize)) {
    run.worldSize = f.attrInt(layout::root(), layout::attr::kWorldSize);
    if (run.worldSize < 1) {
      fail(f, layout::root(), "attribute 'world_size' is " + std::to_string(run.worldSize) + ", not a process count");
    }
  }
  for (const std::string& taskName : tasks()) {
    const std::string t = taskPath(taskName);
    TaskSummary task;
    task.name = taskName;
    task.numClasses = numClasses(f, taskName);
    task.classNames = f.attrStrings(t, layout::attr::kClassNames);
    if (task.classNames.size() != static_cast<std::size_t>(task.numClasses)) {
      fail(f, t,
           "attribute 'class_names' holds " + std::to_string(task.classNames.size()) + " names, but num_classes is " +
               std::to_string(task.numClasses));
    }
    const bool hasLabels = f.exists(layout::evalLabels(taskName));
    task.evalExamples = hasLabels ? static_cast<std::int64_t>(checkLabels(f, taskName)) : 0;
    for (const char* name : {layout::attr::kSource, layout::attr::kSourcePath, layout::attr::kSourceBytes,
                             layout::attr::kSourceFormat, layout::attr::kSourceEvalPath,
                             layout::attr::kSourceLabelPath, layout::attr::kSourceFields, layout::attr::kTokenizer,
                             layout::attr::kTokenizerVocab, layout::attr::kTokenizerLowerCase}) {
      if (!f.hasAttr(t, name)) {
        continue;
      }
      const bool integer = std::string(name) == layout::attr::kSourceBytes ||
                           std::string(name) == layout::attr::kTokenizerLowerCase;
      task.source.emplace_back(name, integer ? std::to_string(f.attrInt(t, name)) : f.attrString(t, name));
    }
    for (const std::string& modelName : models(taskName)) {
      const std::string m = modelGroup(taskName, modelName);
      ModelSummary model;
      model.name = modelName;
      model.role = f.attrString(m, layout::attr::kRole);
      model.architectureJson = f.attrString(m, layout::attr::kArchitecture);
      model.objectiveJson = f.attrString(m, layout::attr::kObjective);
      model.parameterCount = f.attrInt(m, layout::attr::kParameterCount);
      if (f.hasAttr(m, layout::attr::kPrecision)) {
        model.precision = f.attrString(m, layout::attr::kPrecision);
      }
      if (f.isDataset(layout::trainStep(taskName, modelName))) {
        std::vector<std::pair<std::string, H5TypeClass>> columns{{layout::trainStep(taskName, modelName), H5TypeClass::Integer}};
        if (f.isDataset(layout::trainLoss(taskName, modelName))) {
          columns.emplace_back(layout::trainLoss(taskName, modelName), H5TypeClass::Float);
        }
        const std::uint64_t length = logLength(f, columns);
        if (length > 0) {
          model.trainSteps = f.readInt64(layout::trainStep(taskName, modelName), length - 1, 1).at(0);
          if (columns.size() > 1) {
            model.finalLoss = f.readFloat(layout::trainLoss(taskName, modelName), length - 1, 1).at(0);
          }
        }
      }
      if (hasLabels && f.exists(layout::evalLogits(taskName, modelName))) {
        model.evalAccuracy = accuracy(f, taskName, modelName);
      }
      task.models.push_back(std::move(model));
    }
    run.tasks.push_back(std::move(task));
  }
  return run;
}

} // namespace kdscope::core
