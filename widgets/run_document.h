#pragma once
/// RunDocument: one open run file, read-only, for the views. Wraps core::RunReader and
/// core::H5File, caches what the views read repeatedly (labels, logits, vocabulary, texts)
/// and computes the per-head quantities that need only eval/attention. Lives on the GUI
/// thread. Methods throw core::InputError for a bad file; the views catch it.

#include <QString>
#include <QStringList>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/analysis/metrics.h"
#include "core/record/run_reader.h"

namespace kdscope::widgets {

using Matrix = core::analysis::Matrix;

struct AttentionShape {
  int examples = 0; ///< n_att
  int layers = 0;
  int heads = 0;
  int length = 0;
};

class RunDocument {
public:
  /// Opens the file and reads its summary; throws core::InputError when it is not a
  /// readable run file (the message names the file and object).
  explicit RunDocument(const QString& path);
  ~RunDocument();

  [[nodiscard]] QString path() const { return m_path; }
  [[nodiscard]] QString displayName() const;
  [[nodiscard]] const core::RunSummary& summary() const { return m_summary; }
  [[nodiscard]] const core::RunReader& reader() const { return *m_reader; }
  [[nodiscard]] const core::TaskSummary* task(const QString& name) const;
  [[nodiscard]] QStringList taskNames() const;
  /// The teacher's model name in a task ("teacher" in KDScope's files), empty if none.
  [[nodiscard]] QString teacherOf(const QString& task) const;
  [[nodiscard]] QStringList studentsOf(const QString& task) const;
  [[nodiscard]] QStringList classNames(const QString& task) const;

  [[nodiscard]] bool exists(const std::string& objectPath) const;
  [[nodiscard]] const std::vector<std::int64_t>& labels(const QString& task) const;
  /// Row-major [N, C]; empty when the model has no eval/logits.
  [[nodiscard]] const std::vector<float>& logits(const QString& task, const QString& model) const;
  [[nodiscard]] std::size_t numClasses(const QString& task) const;

  /// /tasks/<task>/analysis/<who>/<name>
  static std::string analysisPath(const QString& task, const QString& who, const QString& name);
  static std::string modelPath(const QString& task, const QString& model);
  /// A 2-D float dataset as a matrix, or nothing when the dataset is absent. Throws for a
  /// dataset of another rank.
  [[nodiscard]] std::optional<Matrix> readMatrix(const std::string& path) const;
  /// A 1-D float dataset, or nothing when absent.
  [[nodiscard]] std::optional<std::vector<double>> readVector(const std::string& path) const;

  [[nodiscard]] bool isTextTask(const QString& task) const;
  [[nodiscard]] QString exampleText(const QString& task, int example) const;
  /// Token strings of an example, up to its last non-padding token.
  [[nodiscard]] QStringList exampleTokens(const QString& task, int example) const;

  [[nodiscard]] std::optional<AttentionShape> attentionShape(const QString& task, const QString& model) const;
  /// One example's attention, row-major [layers, heads, length, length].
  [[nodiscard]] std::vector<float> attention(const QString& task, const QString& model, int example) const;
  /// Mean attention entropy (nats) per head [layers, heads] over the kept examples and their
  /// non-padding query positions; nothing when the model has no eval/attention.
  [[nodiscard]] std::optional<Matrix> headEntropy(const QString& task, const QString& model) const;
  /// For each student head: the smallest Jensen-Shannon divergence (nats) between its
  /// attention rows and those of any teacher head in the mapped teacher layer (skip map,
  /// floor((i + 1) * Lt / Ls) - 1), averaged over examples and non-padding queries.
  [[nodiscard]] std::optional<Matrix> headDivergence(const QString& task, const QString& teacher,
                                                     const QString& student) const;

private:
  [[nodiscard]] std::vector<int> validLengths(const QString& task, int examples) const;
  [[nodiscard]] const std::vector<std::string>& vocab(const QString& task) const;

  QString m_path;
  std::unique_ptr<core::RunReader> m_reader;
  core::RunSummary m_summary;
  mutable std::map<QString, std::vector<std::int64_t>> m_labels;
  mutable std::map<std::pair<QString, QString>, std::vector<float>> m_logits;
  mutable std::map<QString, std::vector<std::string>> m_vocab;
  mutable std::map<QString, std::vector<std::string>> m_texts;
};

} // namespace kdscope::widgets
