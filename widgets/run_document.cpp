#include "widgets/run_document.h"

#include <QDir>
#include <QFileInfo>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/common/error.h"
#include "core/record/h5_file.h"

namespace kdscope::widgets {

namespace {

std::string tpath(const QString& task) { return "/tasks/" + task.toStdString(); }

// Attention rows are probabilities; clamp before log so an exact 0 contributes 0.
double xlogx(double p) { return p > 0.0 ? p * std::log(p) : 0.0; }

} // namespace

RunDocument::RunDocument(const QString& path)
    : m_path(path), m_reader(std::make_unique<core::RunReader>(path.toStdString())), m_summary(m_reader->summary()) {}

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

bool RunDocument::exists(const std::string& objectPath) const { return m_reader->file().exists(objectPath); }

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
    if (exists(modelPath(task, model) + "/eval/logits")) {
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

std::string RunDocument::analysisPath(const QString& task, const QString& who, const QString& name) {
  return tpath(task) + "/analysis/" + who.toStdString() + "/" + name.toStdString();
}

std::string RunDocument::modelPath(const QString& task, const QString& model) {
  return tpath(task) + "/models/" + model.toStdString();
}

std::optional<Matrix> RunDocument::readMatrix(const std::string& path) const {
  const core::H5File& f = m_reader->file();
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 2) {
    throw core::InputError(f.path() + ": " + path + ": expected a 2-D dataset, found rank " +
                           std::to_string(shape.size()));
  }
  if (f.typeClass(path) != core::H5TypeClass::Float) {
    throw core::InputError(f.path() + ": " + path + ": holds " + f.typeName(path) + ", expected floating point values");
  }
  const std::vector<float> values = f.readFloat(path);
  Matrix m(shape[0], shape[1]);
  std::copy(values.begin(), values.end(), m.values.begin());
  return m;
}

std::optional<std::vector<double>> RunDocument::readVector(const std::string& path) const {
  const core::H5File& f = m_reader->file();
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 1 || f.typeClass(path) != core::H5TypeClass::Float) {
    throw core::InputError(f.path() + ": " + path + ": expected a 1-D float dataset");
  }
  const std::vector<float> values = f.readFloat(path);
  return std::vector<double>(values.begin(), values.end());
}

bool RunDocument::isTextTask(const QString& task) const { return exists(tpath(task) + "/eval/tokens"); }

const std::vector<std::string>& RunDocument::vocab(const QString& task) const {
  auto it = m_vocab.find(task);
  if (it == m_vocab.end()) {
    std::vector<std::string> words;
    if (exists(tpath(task) + "/vocab")) {
      words = m_reader->file().readStrings(tpath(task) + "/vocab");
    }
    it = m_vocab.emplace(task, std::move(words)).first;
  }
  return it->second;
}

QString RunDocument::exampleText(const QString& task, int example) const {
  auto it = m_texts.find(task);
  if (it == m_texts.end()) {
    std::vector<std::string> texts;
    if (exists(tpath(task) + "/eval/text")) {
      texts = m_reader->file().readStrings(tpath(task) + "/eval/text");
    }
    it = m_texts.emplace(task, std::move(texts)).first;
  }
  if (example >= 0 && static_cast<std::size_t>(example) < it->second.size()) {
    return QString::fromStdString(it->second[static_cast<std::size_t>(example)]);
  }
  // No stored text: the tokens, joined.
  return exampleTokens(task, example).join(QLatin1Char(' '));
}

QStringList RunDocument::exampleTokens(const QString& task, int example) const {
  QStringList tokens;
  const std::string path = tpath(task) + "/eval/tokens";
  if (!exists(path) || example < 0) {
    return tokens;
  }
  const std::vector<std::int64_t> ids = m_reader->file().readInt64(path, static_cast<std::uint64_t>(example), 1);
  const std::vector<std::string>& words = vocab(task);
  std::size_t length = ids.size();
  while (length > 0 && ids[length - 1] == 0) {
    --length;
  }
  for (std::size_t i = 0; i < length; ++i) {
    const auto id = ids[i];
    tokens << (id >= 0 && static_cast<std::size_t>(id) < words.size() ? QString::fromStdString(words[id])
                                                                       : QStringLiteral("#%1").arg(id));
  }
  return tokens;
}

std::optional<AttentionShape> RunDocument::attentionShape(const QString& task, const QString& model) const {
  const std::string path = modelPath(task, model) + "/eval/attention";
  const core::H5File& f = m_reader->file();
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 5 || shape[3] != shape[4]) {
    throw core::InputError(f.path() + ": " + path + ": expected shape [n_att, Lyr, H, Len, Len]");
  }
  return AttentionShape{static_cast<int>(shape[0]), static_cast<int>(shape[1]), static_cast<int>(shape[2]),
                        static_cast<int>(shape[3])};
}

std::vector<float> RunDocument::attention(const QString& task, const QString& model, int example) const {
  return m_reader->file().readFloat(modelPath(task, model) + "/eval/attention", static_cast<std::uint64_t>(example), 1);
}

std::vector<int> RunDocument::validLengths(const QString& task, int examples) const {
  std::vector<int> lengths(static_cast<std::size_t>(examples), -1);
  const std::string path = tpath(task) + "/eval/tokens";
  if (!exists(path) || examples == 0) {
    return lengths;
  }
  const auto len = static_cast<std::size_t>(m_reader->file().shape(path).at(1));
  const std::vector<std::int64_t> ids = m_reader->file().readInt64(path, 0, static_cast<std::uint64_t>(examples));
  for (int e = 0; e < examples; ++e) {
    std::size_t n = len;
    while (n > 0 && ids[static_cast<std::size_t>(e) * len + n - 1] == 0) {
      --n;
    }
    lengths[static_cast<std::size_t>(e)] = static_cast<int>(n);
  }
  return lengths;
}

std::optional<Matrix> RunDocument::headEntropy(const QString& task, const QString& model) const {
  const auto shape = attentionShape(task, model);
  if (!shape) {
    return std::nullopt;
  }
  const std::vector<int> lengths = validLengths(task, shape->examples);
  Matrix result(static_cast<std::size_t>(shape->layers), static_cast<std::size_t>(shape->heads));
  Matrix counts(result.rows, result.cols);
  const std::size_t len = static_cast<std::size_t>(shape->length);
  for (int e = 0; e < shape->examples; ++e) {
    const std::vector<float> a = attention(task, model, e);
    const std::size_t valid = lengths[static_cast<std::size_t>(e)] < 0 ? len : static_cast<std::size_t>(lengths[static_cast<std::size_t>(e)]);
    for (int l = 0; l < shape->layers; ++l) {
      for (int h = 0; h < shape->heads; ++h) {
        const float* map = a.data() + ((static_cast<std::size_t>(l) * shape->heads + h) * len * len);
        for (std::size_t q = 0; q < valid; ++q) {
          double entropy = 0.0;
          for (std::size_t k = 0; k < valid; ++k) {
            entropy -= xlogx(map[q * len + k]);
          }
          result(l, h) += entropy;
          counts(l, h) += 1.0;
        }
      }
    }
  }
  for (std::size_t i = 0; i < result.values.size(); ++i) {
    result.values[i] = counts.values[i] > 0 ? result.values[i] / counts.values[i] : std::nan("");
  }
  return result;
}

std::optional<Matrix> RunDocument::headDivergence(const QString& task, const QString& teacher,
                                                  const QString& student) const {
  const auto ts = attentionShape(task, teacher);
  const auto ss = attentionShape(task, student);
  if (!ts || !ss || ts->length != ss->length || ts->layers == 0 || ss->layers == 0) {
    return std::nullopt;
  }
  const int examples = std::min(ts->examples, ss->examples);
  const std::vector<int> lengths = validLengths(task, examples);
  const std::size_t len = static_cast<std::size_t>(ts->length);
  // sum[ls, hs, ht]: JS summed over examples and queries.
  std::vector<double> sum(static_cast<std::size_t>(ss->layers * ss->heads * ts->heads), 0.0);
  double queries = 0.0;
  for (int e = 0; e < examples; ++e) {
    const std::vector<float> at = attention(task, teacher, e);
    const std::vector<float> as = attention(task, student, e);
    const std::size_t valid = lengths[static_cast<std::size_t>(e)] < 0 ? len : static_cast<std::size_t>(lengths[static_cast<std::size_t>(e)]);
    queries += static_cast<double>(valid);
    for (int ls = 0; ls < ss->layers; ++ls) {
      const int lt = std::clamp((ls + 1) * ts->layers / ss->layers - 1, 0, ts->layers - 1);
      for (int hs = 0; hs < ss->heads; ++hs) {
        const float* sMap = as.data() + ((static_cast<std::size_t>(ls) * ss->heads + hs) * len * len);
        for (int ht = 0; ht < ts->heads; ++ht) {
          const float* tMap = at.data() + ((static_cast<std::size_t>(lt) * ts->heads + ht) * len * len);
          double js = 0.0;
          for (std::size_t q = 0; q < valid; ++q) {
            for (std::size_t k = 0; k < valid; ++k) {
              const double p = tMap[q * len + k];
              const double r = sMap[q * len + k];
              const double m = 0.5 * (p + r);
              js += 0.5 * (xlogx(p) + xlogx(r)) - xlogx(m);
            }
          }
          sum[(static_cast<std::size_t>(ls) * ss->heads + hs) * ts->heads + ht] += js;
        }
      }
    }
  }
  Matrix result(static_cast<std::size_t>(ss->layers), static_cast<std::size_t>(ss->heads));
  for (int ls = 0; ls < ss->layers; ++ls) {
    for (int hs = 0; hs < ss->heads; ++hs) {
      double best = std::numeric_limits<double>::infinity();
      for (int ht = 0; ht < ts->heads; ++ht) {
        best = std::min(best, sum[(static_cast<std::size_t>(ls) * ss->heads + hs) * ts->heads + ht]);
      }
      result(ls, hs) = queries > 0 ? best / queries : std::nan("");
    }
  }
  return result;
}

} // namespace kdscope::widgets
