#pragma once
/// RunDocument: one open run file, read-only, for the views: a Qt-side cache over
/// core::RunReader and core::AnalysisResults (what the views read repeatedly: labels,
/// logits, vocabulary, texts). It never opens an HDF5 object by path and never recomputes
/// an analysis: a view shows what `kdscope analyze` wrote, or says it is not analysed.
/// Lives on the GUI thread. Methods throw core::InputError for a bad file; the views catch it.

#include <QString>
#include <QStringList>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/analysis/analysis_results.h"
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

  [[nodiscard]] const core::AnalysisResults& results() const { return *m_results; }
  [[nodiscard]] const std::vector<std::int64_t>& labels(const QString& task) const;
  /// Row-major [N, C]; empty when the model has no eval/logits.
  [[nodiscard]] const std::vector<float>& logits(const QString& task, const QString& model) const;
  [[nodiscard]] std::size_t numClasses(const QString& task) const;

  /// The analysis result <who>/<name> of a task exists.
  [[nodiscard]] bool hasResult(const QString& task, const QString& who, const QString& name) const;
  /// A 2-D analysis result (e.g. "cka", "head_importance"), or nothing when not analysed.
  /// Throws for a dataset of another rank.
  [[nodiscard]] std::optional<Matrix> resultMatrix(const QString& task, const QString& who, const QString& name) const;
  /// A 1-D analysis result (e.g. "probe_accuracy", "grad_rescale"), or nothing when not analysed.
  [[nodiscard]] std::optional<std::vector<double>> resultVector(const QString& task, const QString& who,
                                                                const QString& name) const;
  /// The analysis's 95% intervals of a model's task metrics (analysis/<model>/intervals), or
  /// nothing when not analysed.
  [[nodiscard]] std::optional<core::ModelIntervals> intervals(const QString& task, const QString& model) const;
  /// The analyses skipped for the task and why (AnalysisResults::skipped), and what each
  /// TorchScript model lacks by its pre-flight check ("model lacks what: detail").
  [[nodiscard]] QStringList skippedAnalyses(const QString& task) const;
  [[nodiscard]] QStringList modelLacks(const QString& task) const;
  /// The paired tests of a student against the teacher and the other students; empty when
  /// not analysed.
  [[nodiscard]] std::vector<core::PairedTest> pairedTests(const QString& task, const QString& student) const;
  /// Where the student's lost examples are (analysis/<student>/loss_pattern), or nothing.
  [[nodiscard]] std::optional<core::analysis::LossPattern> lossPattern(const QString& task,
                                                                       const QString& student) const;
  [[nodiscard]] bool hasTrainLog(const QString& task, const QString& model) const;
  [[nodiscard]] bool hasEvalCurve(const QString& task, const QString& model) const;
  [[nodiscard]] bool hasClassifier(const QString& task, const QString& model) const;
  /// classifier/weight [C, D], or nothing when the model has none.
  [[nodiscard]] std::optional<Matrix> classifierWeight(const QString& task, const QString& model) const;

  [[nodiscard]] bool isTextTask(const QString& task) const;
  [[nodiscard]] QString exampleText(const QString& task, int example) const;
  /// Token strings of an example, up to its last non-padding token.
  [[nodiscard]] QStringList exampleTokens(const QString& task, int example) const;
  /// The same as `model` read them: its own pieces when the run recorded them
  /// (<model>/eval/tokens and <model>/vocab: a TorchScript model's tokenizer, e.g. WordPiece
  /// with [CLS] and [SEP]), else the task's tokens.
  [[nodiscard]] QStringList exampleTokens(const QString& task, int example, const QString& model) const;
  /// The run recorded `model`'s own tokens of its kept examples (<model>/eval/tokens).
  [[nodiscard]] bool hasModelTokens(const QString& task, const QString& model) const;

  [[nodiscard]] std::optional<AttentionShape> attentionShape(const QString& task, const QString& model) const;
  /// One example's attention, row-major [layers, heads, length, length].
  [[nodiscard]] std::vector<float> attention(const QString& task, const QString& model, int example) const;
  /// The analysis's mean attention entropy (nats) per head [layers, heads]
  /// (analysis/<model>/attention_entropy); nothing when not analysed.
  [[nodiscard]] std::optional<Matrix> headEntropy(const QString& task, const QString& model) const;

private:
  [[nodiscard]] const std::vector<std::string>& vocab(const QString& task) const;

  QString m_path;
  std::unique_ptr<core::RunReader> m_reader;
  std::unique_ptr<core::AnalysisResults> m_results;
  core::RunSummary m_summary;
  mutable std::map<QString, std::vector<std::int64_t>> m_labels;
  mutable std::map<std::pair<QString, QString>, std::vector<float>> m_logits;
  mutable std::map<QString, std::vector<std::string>> m_vocab;
  mutable std::map<std::pair<QString, QString>, std::vector<std::string>> m_modelVocab;
  mutable std::map<QString, std::vector<std::string>> m_texts;
};

} // namespace kdscope::widgets
