#include "core/record/run_writer.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/shape_text.h"

namespace kdscope::core {

namespace {

// Training logs grow by a few rows per logging step. They are stored uncompressed: HDF5
// rewrites an uncompressed chunk in place when rows are appended to it, whereas a compressed
// chunk moves to new space and frees the old, which HDF5 may hand to the next chunk before
// the next flush, overwriting what the last flush recorded (a crash would then lose the
// log). 256 rows of 8 bytes: 2 KiB chunks, small for a short run.
constexpr std::uint64_t kLogChunkRows = 256;
// Eval outputs are written in batches and read per example or per block of examples by
// the views; H5File further caps a chunk at 1 MiB.
constexpr std::uint64_t kEvalChunkRows = 256;

} // namespace

namespace {
std::unique_ptr<H5File> openToContinue(const std::string& path) {
  probeHdf5File(path); // a corrupt file must not crash the job (h5_file.h)
  return std::make_unique<H5File>(path, H5File::Mode::ReadWrite);
}
} // namespace

RunWriter::RunWriter(const std::string& path, Continue) : m_file(openToContinue(path)) {
  H5File& f = *m_file;
  const auto notARun = [&](const std::string& why) {
    throw InputError(path + ": cannot continue this file: " + why);
  };
  if (!f.hasAttr(layout::root(), layout::attr::kFormat) || f.attrString(layout::root(), layout::attr::kFormat) != layout::kFormatName) {
    notARun("not a KDScope run file (attribute 'format' is not 'kdscope-run')");
  }
  const std::int64_t version = f.attrInt(layout::root(), layout::attr::kFormatVersion);
  if (version != kRunFormatVersion) {
    notARun("format_version " + std::to_string(version) + ", but this KDScope writes version " +
            std::to_string(kRunFormatVersion));
  }
  if (!f.isGroup(layout::tasks())) {
    notARun(layout::tasks() + " is missing");
  }
  f.setAttr(layout::root(), layout::attr::kStatus, "running");
  f.setAttr(layout::root(), layout::attr::kStatusMessage, "");
  f.setAttr(layout::root(), layout::attr::kKdscopeVersion, kdscopeVersion());
  f.flush();
}

RunWriter::RunWriter(const std::string& path, const std::string& jobJson)
    : m_file(std::make_unique<H5File>(path, H5File::Mode::Create)) {
  m_file->setAttr(layout::root(), layout::attr::kFormat, layout::kFormatName);
  m_file->setAttr(layout::root(), layout::attr::kFormatVersion, std::int64_t{kRunFormatVersion});
  m_file->setAttr(layout::root(), layout::attr::kStatus, "running");
  m_file->setAttr(layout::root(), layout::attr::kStatusMessage, "");
  m_file->setAttr(layout::root(), layout::attr::kJob, jobJson);
  m_file->setAttr(layout::root(), layout::attr::kKdscopeVersion, kdscopeVersion());
  m_file->createGroup(layout::tasks());
  // From here on the file opens and says "running", whatever happens to the process.
  m_file->flush();
}

RunWriter::~RunWriter() = default;

std::string RunWriter::modelPath(const std::string& task, const std::string& model) {
  return layout::model(task, model);
}

namespace {

[[noreturn]] void fail(const H5File& file, const std::string& object, const std::string& what) {
  throw JobError(file.path() + ": " + object + ": " + what);
}

/// Task and model names become path components.
void checkName(const H5File& file, const char* kind, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw JobError(file.path() + ": invalid " + kind + " name '" + name +
                   "' (it must be non-empty, not '.' or '..', and contain no '/')");
  }
}

void requireGroup(const H5File& file, const std::string& path, const char* hint) {
  if (!file.isGroup(path)) {
    fail(file, path, std::string("no such group (") + hint + ")");
  }
}

/// Creates a dataset for streaming writes, or reuses one of the same type and shape (a
/// model evaluated again, or a resumed job).
void ensureDataset(H5File& file, const std::string& path, H5Type type, const std::vector<std::uint64_t>& dims,
                   std::uint64_t chunkRows) {
  if (!file.exists(path)) {
    file.createDataset(path, type, dims, /*extendable=*/false, chunkRows, /*compress=*/true);
    return;
  }
  const auto existing = file.isDataset(path) ? file.shape(path) : std::vector<std::uint64_t>{};
  if (!file.isDataset(path) || file.type(path) != type || existing != dims) {
    fail(file, path, "exists with another type or shape " + shapeText(existing) + " than the " + shapeText(dims) +
                         " asked for");
  }
}

/// Appends to an extendable log column, creating it on first use. A column created after
/// others already hold `alignTo` rows starts with that many NaN rows (the fill value), so
/// every column of a log stays aligned with its step column.
template <typename T>
void appendColumn(H5File& file, const std::string& path, H5Type type, const std::vector<T>& values,
                  std::uint64_t alignTo) {
  if (!file.exists(path)) {
    file.createDataset(path, type, {0}, /*extendable=*/true, kLogChunkRows, /*compress=*/false);
    if (alignTo > 0) {
      file.resize(path, alignTo);
    }
  }
  file.appendRows(path, values.size(), values.data());
}

std::uint64_t rowsOf(const H5File& file, const std::string& path) {
  return file.exists(path) ? file.shape(path).at(0) : 0;
}

} // namespace

bool RunWriter::hasTask(const std::string& task) const { return m_file->isGroup(layout::task(task)); }

bool RunWriter::hasModel(const std::string& task, const std::string& model) const {
  return m_file->isGroup(modelPath(task, model));
}

void RunWriter::writeTask(const TaskData& task, bool trainLabels) {
  H5File& f = *m_file;
  checkName(f, "task", task.name);
  const std::string t = layout::task(task.name);
  if (f.exists(t)) {
    fail(f, t, "the task is already written");
  }
  const Split& eval = task.eval;
  const std::uint64_t n = eval.labels.size();
  const auto classes = static_cast<std::int64_t>(task.classNames.size());
  if (classes == 0) {
    fail(f, t, "the task has no class names");
  }
  // Check everything before writing anything, so a bad task leaves no half-written group.
  for (std::size_t i = 0; i < eval.labels.size(); ++i) {
    if (eval.labels[i] < 0 || eval.labels[i] >= classes) {
      fail(f, layout::evalLabels(task.name),
           "label " + std::to_string(eval.labels[i]) + " of example " + std::to_string(i) + " is outside 0.." +
               std::to_string(classes - 1));
    }
  }
  const bool text = task.kind == TaskKind::Text;
  if (text) {
    if (task.seqLen <= 0) {
      fail(f, t, "a text task needs seqLen > 0");
    }
    if (eval.tokens.size() != n * static_cast<std::uint64_t>(task.seqLen)) {
      fail(f, layout::evalTokens(task.name),
           std::to_string(eval.tokens.size()) + " token ids do not fill " + std::to_string(n) + " x " +
               std::to_string(task.seqLen));
    }
    const auto vocab = static_cast<std::int64_t>(task.vocab.size());
    const auto bad = std::find_if(eval.tokens.begin(), eval.tokens.end(),
                                  [&](std::int64_t id) { return id < 0 || id >= vocab; });
    if (bad != eval.tokens.end()) {
      fail(f, layout::evalTokens(task.name),
           "token id " + std::to_string(*bad) + " is outside the vocabulary of " + std::to_string(vocab));
    }
    if (!eval.texts.empty() && eval.texts.size() != n) {
      fail(f, layout::evalText(task.name), std::to_string(eval.texts.size()) + " texts for " + std::to_string(n) + " examples");
    }
  }
  if (!eval.sourceIndex.empty() && eval.sourceIndex.size() != n) {
    fail(f, layout::evalSourceIndex(task.name),
         std::to_string(eval.sourceIndex.size()) + " indices for " + std::to_string(n) + " examples");
  }
  if (!eval.groups.empty() && eval.groups.size() != n) {
    fail(f, layout::evalGroup(task.name), std::to_string(eval.groups.size()) + " groups for " + std::to_string(n) + " examples");
  }
  if (trainLabels) {
    for (std::size_t i = 0; i < task.train.labels.size(); ++i) {
      if (task.train.labels[i] < 0 || task.train.labels[i] >= classes) {
        fail(f, layout::trainLabels(task.name),
             "label " + std::to_string(task.train.labels[i]) + " of example " + std::to_string(i) +
                 " is outside 0.." + std::to_string(classes - 1));
      }
    }
    if (!task.train.sourceIndex.empty() && task.train.sourceIndex.size() != task.train.labels.size()) {
      fail(f, layout::trainSourceIndex(task.name),
           std::to_string(task.train.sourceIndex.size()) + " indices for " +
               std::to_string(task.train.labels.size()) + " examples");
    }
  }
  if (!task.superClassOf.empty() && task.superClassOf.size() != task.classNames.size()) {
    fail(f, layout::superClassOf(task.name),
         std::to_string(task.superClassOf.size()) + " entries for " + std::to_string(classes) + " classes");
  }

  f.createGroup(t);
  f.setAttr(t, layout::attr::kNumClasses, classes);
  f.setAttr(t, layout::attr::kClassNames, task.classNames);
  f.setAttr(t, layout::attr::kKind, text ? "text" : "vector");
  if (const TaskProvenance& p = task.provenance; !p.source.empty()) {
    f.setAttr(t, layout::attr::kSource, p.source);
    const auto setIfAny = [&](const char* name, const std::string& value) {
      if (!value.empty()) {
        f.setAttr(t, name, value);
      }
    };
    setIfAny(layout::attr::kSourcePath, p.path);
    if (!p.path.empty()) {
      f.setAttr(t, layout::attr::kSourceBytes, static_cast<std::int64_t>(p.bytes));
    }
    setIfAny(layout::attr::kSourceFormat, p.format);
    setIfAny(layout::attr::kSourceEvalPath, p.evalPath);
    setIfAny(layout::attr::kSourceLabelPath, p.labelPath);
    setIfAny(layout::attr::kSourceFields, p.fields);
    setIfAny(layout::attr::kTokenizer, p.tokenizer);
    setIfAny(layout::attr::kTokenizerVocab, p.vocabPath);
    if (p.tokenizer == "wordpiece") {
      f.setAttr(t, layout::attr::kTokenizerLowerCase, static_cast<std::int64_t>(p.lowerCase ? 1 : 0));
    }
  }
  f.writeInt64(layout::evalLabels(task.name), {n}, eval.labels, /*compress=*/true);
  if (text) {
    f.writeInt64(layout::evalTokens(task.name), {n, static_cast<std::uint64_t>(task.seqLen)}, eval.tokens, /*compress=*/true);
    f.writeStrings(layout::vocab(task.name), task.vocab);
    if (!eval.texts.empty()) {
      f.writeStrings(layout::evalText(task.name), eval.texts);
    }
  }
  if (!eval.sourceIndex.empty()) {
    f.writeInt64(layout::evalSourceIndex(task.name), {n}, eval.sourceIndex, /*compress=*/true);
  }
  if (!eval.groups.empty()) {
    f.writeStrings(layout::evalGroup(task.name), eval.groups);
  }
  if (!task.superClassOf.empty()) {
    const std::vector<std::int64_t> superClassOf(task.superClassOf.begin(), task.superClassOf.end());
    f.writeInt64(layout::superClassOf(task.name), {superClassOf.size()}, superClassOf);
  }
  if (trainLabels) {
    const std::uint64_t nTrain = task.train.labels.size();
    f.writeInt64(layout::trainLabels(task.name), {nTrain}, task.train.labels, /*compress=*/nTrain > 0);
    if (!task.train.sourceIndex.empty()) {
      f.writeInt64(layout::trainSourceIndex(task.name), {nTrain}, task.train.sourceIndex, /*compress=*/nTrain > 0);
    }
  }
  f.createGroup(layout::models(task.name));
  f.flush(); // once per task: a crash later keeps the task's data readable
}

void RunWriter::beginModel(const std::string& task, const std::string& model, const std::string& role,
                           const std::string& architectureJson, const std::string& objectiveJson,
                           std::int64_t parameterCount) {
  H5File& f = *m_file;
  checkName(f, "task", task);
  checkName(f, "model", model);
  requireGroup(f, layout::task(task), "write the task before its models");
  const std::string m = layout::model(task, model);
  if (role != "teacher" && role != "student") {
    fail(f, m, "role '" + role + "' is neither 'teacher' nor 'student'");
  }
  f.createGroup(m);
  f.setAttr(m, layout::attr::kRole, role);
  f.setAttr(m, layout::attr::kArchitecture, architectureJson);
  f.setAttr(m, layout::attr::kObjective, objectiveJson);
  f.setAttr(m, layout::attr::kParameterCount, parameterCount);
  f.flush();
}

void RunWriter::notePrecision(const std::string& task, const std::string& model, const std::string& precision) {
  m_file->setAttr(layout::model(task, model), layout::attr::kPrecision, precision);
}

void RunWriter::appendTrainLog(const std::string& task, const std::string& model,
                               const std::vector<std::int64_t>& steps, const std::vector<float>& loss,
                               const std::vector<std::pair<std::string, std::vector<float>>>& terms) {
  H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  requireGroup(f, m, "call beginModel first");
  if (loss.size() != steps.size()) {
    fail(f, layout::trainLoss(task, model), std::to_string(loss.size()) + " losses for " + std::to_string(steps.size()) + " steps");
  }
  for (const auto& [name, values] : terms) {
    checkName(f, "term", name);
    if (values.size() != steps.size()) {
      fail(f, layout::trainTerm(task, model, name),
           std::to_string(values.size()) + " values for " + std::to_string(steps.size()) + " steps");
    }
  }
  if (steps.empty()) {
    return;
  }
  const std::uint64_t before = rowsOf(f, layout::trainStep(task, model));
  // Step last: a reader takes the step column's length as the log's length.
  appendColumn(f, layout::trainLoss(task, model), H5Type::Float32, loss, before);
  for (const auto& [name, values] : terms) {
    appendColumn(f, layout::trainTerm(task, model, name), H5Type::Float32, values, before);
  }
  if (f.isGroup(layout::trainTerms(task, model))) {
    // A term logged before but not in this call: NaN rows keep it aligned.
    for (const std::string& name : f.children(layout::trainTerms(task, model))) {
      const bool given = std::any_of(terms.begin(), terms.end(), [&](const auto& term) { return term.first == name; });
      if (!given) {
        f.resize(layout::trainTerm(task, model, name), before + steps.size());
      }
    }
  }
  appendColumn(f, layout::trainStep(task, model), H5Type::Int64, steps, before);
}

void RunWriter::appendEvalCurve(const std::string& task, const std::string& model, std::int64_t epoch,
                                std::int64_t step, double accuracy, double loss) {
  H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  requireGroup(f, m, "call beginModel first");
  const std::uint64_t before = rowsOf(f, layout::evalCurveColumn(task, model, "step"));
  appendColumn(f, layout::evalCurveColumn(task, model, "accuracy"), H5Type::Float32, std::vector<float>{static_cast<float>(accuracy)}, before);
  appendColumn(f, layout::evalCurveColumn(task, model, "loss"), H5Type::Float32, std::vector<float>{static_cast<float>(loss)}, before);
  appendColumn(f, layout::evalCurveColumn(task, model, "epoch"), H5Type::Int64, std::vector<std::int64_t>{epoch}, before);
  appendColumn(f, layout::evalCurveColumn(task, model, "step"), H5Type::Int64, std::vector<std::int64_t>{step}, before);
}

void RunWriter::createEvalOutputs(const std::string& task, const std::string& model, const EvalShape& shape,
                                  const std::string& pooling) {
  H5File& f = *m_file;
  const std::string t = layout::task(task);
  const std::string m = layout::model(task, model);
  requireGroup(f, m, "call beginModel first");
  const std::uint64_t examples = rowsOf(f, layout::evalLabels(task));
  if (shape.examples != examples) {
    fail(f, layout::modelEval(task, model), std::to_string(shape.examples) + " eval examples asked for, but " + layout::evalLabels(task) + " has " +
                             std::to_string(examples));
  }
  const auto classes = static_cast<std::uint64_t>(f.attrInt(t, layout::attr::kNumClasses));
  if (shape.classes != classes) {
    fail(f, layout::evalLogits(task, model),
         std::to_string(shape.classes) + " classes asked for, but the task has " + std::to_string(classes));
  }
  if (shape.hiddenLayers > 0) {
    if (shape.hiddenDim == 0) {
      fail(f, layout::evalHidden(task, model), "hiddenDim is 0");
    }
    if (pooling != "mean" && pooling != "cls") {
      fail(f, layout::evalHidden(task, model), "pooling '" + pooling + "' is neither 'mean' nor 'cls'");
    }
  }
  if (shape.attentionExamples > 0) {
    if (shape.attentionExamples > examples) {
      fail(f, layout::evalAttention(task, model),
           std::to_string(shape.attentionExamples) + " examples asked for, but there are " + std::to_string(examples));
    }
    if (shape.layers == 0 || shape.heads == 0 || shape.seqLen == 0) {
      fail(f, layout::evalAttention(task, model), "layers, heads and seqLen must all be > 0");
    }
    if (shape.hiddenLayers > 0 && shape.hiddenLayers != shape.layers + 1) {
      fail(f, layout::evalAttention(task, model),
           std::to_string(shape.layers) + " layers, but eval/hidden has " + std::to_string(shape.hiddenLayers) +
               " entries (layers + 1)");
    }
    if (f.exists(layout::evalTokens(task)) && f.shape(layout::evalTokens(task)).at(1) != shape.seqLen) {
      fail(f, layout::evalAttention(task, model),
           "seqLen " + std::to_string(shape.seqLen) + " differs from the " +
               std::to_string(f.shape(layout::evalTokens(task)).at(1)) + " tokens of " + layout::evalTokens(task));
    }
  }

  if (shape.tokenHiddenExamples > 0) {
    if (shape.tokenHiddenExamples > examples) {
      fail(f, layout::evalTokenHidden(task, model),
           std::to_string(shape.tokenHiddenExamples) + " examples asked for, but there are " +
               std::to_string(examples));
    }
    if (shape.seqLen == 0 || shape.hiddenDim == 0 || shape.layers == 0) {
      fail(f, layout::evalTokenHidden(task, model), "seqLen, layers and hiddenDim must all be > 0");
    }
    if (!f.exists(layout::evalTokens(task)) || f.shape(layout::evalTokens(task)).at(1) != shape.seqLen) {
      fail(f, layout::evalTokenHidden(task, model),
           "token-level hidden states need " + layout::evalTokens(task) + " with " + std::to_string(shape.seqLen) +
               " tokens per example");
    }
  }

  // Activations may be stored in half precision; logits stay float32 (argmax ties matter).
  const H5Type activation = shape.float16 ? H5Type::Float16 : H5Type::Float32;
  ensureDataset(f, layout::evalLogits(task, model), H5Type::Float32, {examples, classes}, kEvalChunkRows);
  if (shape.hiddenLayers > 0) {
    const std::string h = layout::evalHidden(task, model);
    ensureDataset(f, h, activation, {examples, shape.hiddenLayers, shape.hiddenDim}, kEvalChunkRows);
    f.setAttr(h, layout::attr::kPooling, pooling);
    f.setAttr(h, "layer0", "embedding output");
  }
  if (shape.attentionExamples > 0) {
    ensureDataset(f, layout::evalAttention(task, model), activation,
                  {shape.attentionExamples, shape.layers, shape.heads, shape.seqLen, shape.seqLen}, kEvalChunkRows);
  }
  if (shape.tokenHiddenExamples > 0) {
    const std::string h = layout::evalTokenHidden(task, model);
    ensureDataset(f, h, activation, {shape.tokenHiddenExamples, shape.layers + 1, shape.seqLen, shape.hiddenDim},
                  kEvalChunkRows);
    f.setAttr(h, "layer0", "embedding output");
  }
}

void RunWriter::writeEvalTokenHidden(const std::string& task, const std::string& model, std::uint64_t offset,
                                     std::uint64_t rows, const float* data) {
  m_file->writeRows(layout::evalTokenHidden(task, model), offset, rows, data);
}

void RunWriter::removeEvalOutputs(const std::string& task, const std::string& model) {
  H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  for (const std::string& group : {layout::modelEval(task, model), layout::classifier(task, model)}) {
    if (f.exists(group)) {
      f.remove(group);
    }
  }
  f.flush(); // before the freed space is used again (see kLogChunkRows)
}

std::uint64_t RunWriter::appendTrainRecordRow(const std::string& task, const std::string& model,
                                              const std::string& name, std::int64_t epoch, std::int64_t step) {
  H5File& f = *m_file;
  const std::string t = layout::task(task);
  const std::string m = layout::model(task, model);
  requireGroup(f, m, "call beginModel first");
  checkName(f, "record", name);
  if (!f.isDataset(layout::trainLabels(task))) {
    fail(f, layout::trainRecords(task, model), "needs " + layout::trainLabels(task) + " (write the task with its train labels)");
  }
  const std::uint64_t examples = f.shape(layout::trainLabels(task)).at(0);
  const std::string r = layout::trainRecords(task, model);
  const std::uint64_t before = rowsOf(f, layout::trainRecordsEpoch(task, model));
  const std::string values = layout::trainRecordsValues(task, model, name);
  if (!f.exists(values)) {
    // One epoch per chunk row: each chunk is written once, while its row is filled.
    f.createDataset(values, H5Type::Float32, {0, examples}, /*extendable=*/true, /*chunkRows=*/1,
                    /*compress=*/examples > 0);
  }
  const auto shape = f.shape(values);
  if (shape.size() != 2 || shape[1] != examples) {
    fail(f, values, "has shape " + shapeText(shape) + ", expected [E, " + std::to_string(examples) + "]");
  }
  f.resize(values, before + 1); // NaN until written
  appendColumn(f, layout::trainRecordsStep(task, model), H5Type::Int64, std::vector<std::int64_t>{step}, before);
  appendColumn(f, layout::trainRecordsEpoch(task, model), H5Type::Int64, std::vector<std::int64_t>{epoch}, before);
  return before;
}

void RunWriter::writeTrainRecordBlock(const std::string& task, const std::string& model, const std::string& name,
                                      std::uint64_t row, std::uint64_t offset, std::uint64_t count,
                                      const float* values) {
  m_file->writeBlock(layout::trainRecordsValues(task, model, name), {row, offset}, {1, count}, values);
}

LogRows RunWriter::logRows(const std::string& task, const std::string& model) const {
  const H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  LogRows rows;
  rows.trainSteps = rowsOf(f, layout::trainStep(task, model));
  rows.evalCurve = rowsOf(f, layout::evalCurveColumn(task, model, "step"));
  rows.trainRecords = rowsOf(f, layout::trainRecordsEpoch(task, model));
  return rows;
}

void RunWriter::truncateLogs(const std::string& task, const std::string& model, const LogRows& rows) {
  H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  requireGroup(f, m, "nothing to truncate");
  const auto shrink = [&](const std::string& group, std::uint64_t keep) {
    if (!f.isGroup(group)) {
      return;
    }
    for (const std::string& name : f.children(group)) {
      const std::string path = group + "/" + name;
      if (f.isGroup(path)) {
        continue;
      }
      const std::uint64_t have = f.shape(path).at(0);
      if (have < keep) {
        fail(f, path, "has " + std::to_string(have) + " rows, fewer than the " + std::to_string(keep) +
                          " the checkpoint recorded (the file is older than the checkpoint)");
      }
      if (have > keep) {
        f.resize(path, keep);
      }
    }
  };
  shrink(layout::modelTrain(task, model), rows.trainSteps);
  shrink(layout::trainTerms(task, model), rows.trainSteps);
  shrink(layout::evalCurve(task, model), rows.evalCurve);
  shrink(layout::trainRecords(task, model), rows.trainRecords);
  f.flush(); // before the freed chunks are used again (see kLogChunkRows)
}

void RunWriter::removeTask(const std::string& task) {
  H5File& f = *m_file;
  checkName(f, "task", task);
  if (f.exists(layout::task(task))) {
    f.remove(layout::task(task));
    f.flush();
  }
}

void RunWriter::removeModel(const std::string& task, const std::string& model) {
  H5File& f = *m_file;
  const std::string m = layout::model(task, model);
  if (f.exists(m)) {
    f.remove(m);
    f.flush();
  }
}

void RunWriter::writeEvalLogits(const std::string& task, const std::string& model, std::uint64_t offset,
                                std::uint64_t rows, const float* data) {
  m_file->writeRows(layout::evalLogits(task, model), offset, rows, data);
}

void RunWriter::writeEvalHidden(const std::string& task, const std::string& model, std::uint64_t offset,
                                std::uint64_t rows, const float* data) {
  m_file->writeRows(layout::evalHidden(task, model), offset, rows, data);
}

void RunWriter::writeEvalAttention(const std::string& task, const std::string& model, std::uint64_t offset,
                                   std::uint64_t rows, const float* data) {
  m_file->writeRows(layout::evalAttention(task, model), offset, rows, data);
}

void RunWriter::writeClassifier(const std::string& task, const std::string& model, const std::vector<float>& weight,
                                const std::vector<float>& bias, std::uint64_t classes, std::uint64_t dim) {
  H5File& f = *m_file;
  const std::string c = layout::classifier(task, model);
  requireGroup(f, layout::model(task, model), "call beginModel first");
  if (weight.size() != classes * dim) {
    fail(f, layout::classifierWeight(task, model),
         std::to_string(weight.size()) + " values do not fill " + std::to_string(classes) + " x " + std::to_string(dim));
  }
  if (bias.size() != classes) {
    fail(f, layout::classifierBias(task, model), std::to_string(bias.size()) + " values for " + std::to_string(classes) + " classes");
  }
  ensureDataset(f, layout::classifierWeight(task, model), H5Type::Float32, {classes, dim}, kEvalChunkRows);
  ensureDataset(f, layout::classifierBias(task, model), H5Type::Float32, {classes}, kEvalChunkRows);
  f.writeRows(layout::classifierWeight(task, model), 0, classes, weight.data());
  f.writeRows(layout::classifierBias(task, model), 0, classes, bias.data());
}

void RunWriter::setStatus(const std::string& status, const std::string& message) {
  if (status != "running" && status != "complete" && status != "cancelled" && status != "failed") {
    fail(*m_file, layout::root(), "status '" + status + "' is not one of running, complete, cancelled, failed");
  }
  if (m_file->writeFailed()) {
    m_file->reopenAfterWriteFailure();
  }
  m_file->setAttr(layout::root(), layout::attr::kStatus, status);
  m_file->setAttr(layout::root(), layout::attr::kStatusMessage, message);
  m_file->flush();
}

void RunWriter::flush() { m_file->flush(); }

H5File& RunWriter::file() { return *m_file; }

} // namespace kdscope::core
