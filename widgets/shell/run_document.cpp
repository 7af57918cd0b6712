#include "widgets/shell/run_document.h"

#include <QDir>
#include <QFileInfo>

#include <algorithm>

#include "core/common/error.h"

namespace kdscope::widgets {

namespace {

std::string str(const QString& text) { return text.toStdString(); }

/// Token ids as strings of `words`, up to the last non-padding (id 0) token; an id outside
/// the vocabulary as "#id".
QStringList tokenStrings(const std::vector<std::int64_t>& ids, const std::vector<std::string>& words) {
  std::size_t length = ids.size();
  while (length > 0 && ids[length - 1] == 0) {
    --length;
  }
  QStringList tokens;
  for (std::size_t i = 0; i < length; ++i) {
    const auto id = ids[i];
    tokens << (id >= 0 && static_cast<std::size_t>(id) < words.size() ? QString::fromStdString(words[id])
                                                                       : QStringLiteral("#%1").arg(id));
  }
  return tokens;
}

} // namespace

RunDocument::RunDocument(const QString& path)
    : m_path(path),
      m_reader(std::make_unique<core::RunReader>(path.toStdString())),
      m_results(std::make_unique<core::AnalysisResults>(*m_reader)),
      m_summary(m_reader->summary()) {}

RunDocument::~RunDocument() = default;

QString RunDocument::displayName() const {
  const QFileInfo info(m_path);
  // Runs are usually DIR/run.h5: the folder names the run.
  return info.fileName() == QStringLiteral("run.h5") ? info.dir().dirName() + QStringLiteral("/run.h5")
                                                      : info.fileName();
}

const core::TaskSummary* RunDocument::task(const QString& name) const {
  for (const core::TaskSummary& task : m_summary.tasks) {
    if (QString::fromStdString(task.name) == name) {
      return &task;
    }
  }
  return nullptr;
}

QStringList RunDocument::taskNames() const {
  QStringList names;
  for (const core::TaskSummary& task : m_summary.tasks) {
    names << QString::fromStdString(task.name);
  }
  return names;
}

QString RunDocument::teacherOf(const QString& taskName) const {
  if (const core::TaskSummary* t = task(taskName)) {
    for (const core::ModelSummary& model : t->models) {
      if (model.role == "teacher") {
        return QString::fromStdString(model.name);
      }
    }
  }
  return {};
}

QStringList RunDocument::studentsOf(const QString& taskName) const {
  QStringList names;
  if (const core::TaskSummary* t = task(taskName)) {
    for (const core::ModelSummary& model : t->models) {
      if (model.role != "teacher") {
        names << QString::fromStdString(model.name);
      }
    }
  }
  return names;
}

QStringList RunDocument::classNames(const QString& taskName) const {
  QStringList names;
  if (const core::TaskSummary* t = task(taskName)) {
    for (const std::string& name : t->classNames) {
      names << QString::fromStdString(name);
    }
  }
  return names;
}

const std::vector<std::int64_t>& RunDocument::labels(const QString& task) const {
  auto it = m_labels.find(task);
  if (it == m_labels.end()) {
    it = m_labels.emplace(task, m_reader->evalLabels(task.toStdString())).first;
  }
  return it->second;
}

const std::vector<float>& RunDocument::logits(const QString& task, const QString& model) const {
  const auto key = std::make_pair(task, model);
  auto it = m_logits.find(key);
  if (it == m_logits.end()) {
    std::vector<float> values;
    if (m_results->hasEvalLogits(str(task), str(model))) {
      values = m_reader->evalLogits(task.toStdString(), model.toStdString());
    }
    it = m_logits.emplace(key, std::move(values)).first;
  }
  return it->second;
}

std::size_t RunDocument::numClasses(const QString& taskName) const {
  const core::TaskSummary* t = task(taskName);
  return t == nullptr ? 0 : static_cast<std::size_t>(t->numClasses);
}

bool RunDocument::hasResult(const QString& task, const QString& who, const QString& name) const {
  return m_results->has(str(task), str(who), str(name));
}

std::optional<Matrix> RunDocument::resultMatrix(const QString& task, const QString& who, const QString& name) const {
  return m_results->matrix(str(task), str(who), str(name));
}

std::optional<std::vector<double>> RunDocument::resultVector(const QString& task, const QString& who,
                                                             const QString& name) const {
  return m_results->vector(str(task), str(who), str(name));
}

QStringList RunDocument::skippedAnalyses(const QString& task) const {
  QStringList out;
  for (const std::string& line : m_results->skipped(str(task))) {
    out << QString::fromStdString(line);
  }
  return out;
}

QStringList RunDocument::modelLacks(const QString& task) const {
  QStringList out;
  if (const core::TaskSummary* t = this->task(task)) {
    for (const core::ModelSummary& model : t->models) {
      for (const std::string& line : m_results->modelLacks(t->name, model.name)) {
        out << QString::fromStdString(model.name + " lacks " + line);
      }
    }
  }
  return out;
}

std::optional<core::ModelIntervals> RunDocument::intervals(const QString& task, const QString& model) const {
  return m_results->intervals(str(task), str(model));
}

std::vector<core::PairedTest> RunDocument::pairedTests(const QString& task, const QString& student) const {
  return m_results->pairedTests(str(task), str(student));
}

std::optional<core::analysis::LossPattern> RunDocument::lossPattern(const QString& task, const QString& student) const {
  return m_results->lossPattern(str(task), str(student));
}

bool RunDocument::hasTrainLog(const QString& task, const QString& model) const {
  return m_results->hasTrainLog(str(task), str(model));
}

bool RunDocument::hasEvalCurve(const QString& task, const QString& model) const {
  return m_results->hasEvalCurve(str(task), str(model));
}

bool RunDocument::hasClassifier(const QString& task, const QString& model) const {
  return m_results->hasClassifier(str(task), str(model));
}

std::optional<Matrix> RunDocument::classifierWeight(const QString& task, const QString& model) const {
  return m_results->classifierWeight(str(task), str(model));
}

bool RunDocument::isTextTask(const QString& task) const { return m_results->hasTokens(str(task)); }

const std::vector<std::string>& RunDocument::vocab(const QString& task) const {
  auto it = m_vocab.find(task);
  if (it == m_vocab.end()) {
    it = m_vocab.emplace(task, m_results->vocabulary(str(task))).first;
  }
  return it->second;
}

QString RunDocument::exampleText(const QString& task, int example) const {
  auto it = m_texts.find(task);
  if (it == m_texts.end()) {
    it = m_texts.emplace(task, m_results->texts(str(task))).first;
  }
  if (example >= 0 && static_cast<std::size_t>(example) < it->second.size()) {
    return QString::fromStdString(it->second[static_cast<std::size_t>(example)]);
  }
  // No stored text: the tokens, joined.
  return exampleTokens(task, example).join(QLatin1Char(' '));
}

QStringList RunDocument::exampleTokens(const QString& task, int example) const {
  if (example < 0 || !isTextTask(task)) {
    return {};
  }
  return tokenStrings(m_results->tokens(str(task), static_cast<std::size_t>(example)), vocab(task));
}

bool RunDocument::hasModelTokens(const QString& task, const QString& model) const {
  return m_results->modelTokens(str(task), str(model), 0).has_value();
}

QStringList RunDocument::exampleTokens(const QString& task, int example, const QString& model) const {
  if (example < 0 || !isTextTask(task)) {
    return {};
  }
  const auto own = m_results->modelTokens(str(task), str(model), static_cast<std::size_t>(example));
  if (!own) {
    return exampleTokens(task, example);
  }
  const auto key = std::make_pair(task, model);
  auto it = m_modelVocab.find(key);
  if (it == m_modelVocab.end()) {
    it = m_modelVocab.emplace(key, m_results->modelVocabulary(str(task), str(model))).first;
  }
  return tokenStrings(*own, it->second);
}

std::optional<AttentionShape> RunDocument::attentionShape(const QString& task, const QString& model) const {
  const auto shape = m_results->attentionShape(str(task), str(model));
  if (!shape) {
    return std::nullopt;
  }
  return AttentionShape{static_cast<int>(shape->examples), static_cast<int>(shape->layers),
                        static_cast<int>(shape->heads), static_cast<int>(shape->length)};
}

std::vector<float> RunDocument::attention(const QString& task, const QString& model, int example) const {
  return m_results->attention(str(task), str(model), static_cast<std::size_t>(example));
}

std::optional<Matrix> RunDocument::headEntropy(const QString& task, const QString& model) const {
  return m_results->attentionEntropy(str(task), str(model));
}

} // namespace kdscope::widgets
