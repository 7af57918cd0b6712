#pragma once
/// The single writer of a run file (RUN-FORMAT.md, docs/run-format.md). Lives on the job's
/// thread. Streams: training logs are appended, eval outputs are written in row blocks into
/// preallocated chunked datasets, so memory is bounded by a batch, not by the dataset.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/common/version.h"
#include "core/data/dataset.h"
#include "core/record/run_layout.h"

namespace kdscope::core {

class H5File;

/// The format version written; core/record/run_layout.h owns it.
inline constexpr int kRunFormatVersion = layout::kFormatVersion;

/// How many rows each extendable log of a model holds: what a resumed job truncates to
/// (RunWriter::truncateLogs), so that nothing recorded after a checkpoint is kept twice.
struct LogRows {
  std::uint64_t trainSteps = 0;   ///< rows of train/step (and loss, terms/*)
  std::uint64_t evalCurve = 0;    ///< rows of eval_curve/*
  std::uint64_t trainRecords = 0; ///< rows of train_records/*
  bool operator==(const LogRows& other) const {
    return trainSteps == other.trainSteps && evalCurve == other.evalCurve && trainRecords == other.trainRecords;
  }
};

class RunWriter {
public:
  /// Creates (truncates) the file and writes the root attributes with status "running".
  RunWriter(const std::string& path, const std::string& jobJson);

  /// Opens an existing run file to continue it (kdscope run --resume): checks that it is a
  /// run file of this format version, sets status "running" and flushes. Throws InputError
  /// when the file is not a run file this version can continue.
  struct Continue {};
  RunWriter(const std::string& path, Continue);
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  /// /tasks/<task>: attributes, eval labels, tokens, vocab and texts, and with
  /// `trainLabels` the train split's labels (train/labels, for the per-example training
  /// records). Checks the task first (labels in range, sizes that agree) and writes nothing
  /// when it is inconsistent. Flushes.
  void writeTask(const TaskData& task, bool trainLabels = false);
  [[nodiscard]] bool hasTask(const std::string& task) const;
  [[nodiscard]] bool hasModel(const std::string& task, const std::string& model) const;

  /// /tasks/<task>/models/<model>: role, architecture, objective, parameter_count. Flushes.
  /// Call flush() after the model's training and after its evaluation: a crash keeps what
  /// was flushed (docs/run-format.md).
  /// Records the precision the model was trained at ("fp32" or "bf16").
  void notePrecision(const std::string& task, const std::string& model, const std::string& precision);
  void beginModel(const std::string& task, const std::string& model, const std::string& role,
                  const std::string& architectureJson, const std::string& objectiveJson,
                  std::int64_t parameterCount);

  /// Appends logged steps to train/step, train/loss and train/terms/<term> (one vector
  /// per term, each the same length as `steps`).
  void appendTrainLog(const std::string& task, const std::string& model,
                      const std::vector<std::int64_t>& steps, const std::vector<float>& loss,
                      const std::vector<std::pair<std::string, std::vector<float>>>& terms);

  /// Appends one row to eval_curve/{epoch,step,accuracy,loss}.
  void appendEvalCurve(const std::string& task, const std::string& model, std::int64_t epoch,
                       std::int64_t step, double accuracy, double loss);

  struct EvalShape {
    std::uint64_t examples = 0;     ///< N
    std::uint64_t classes = 0;      ///< C
    std::uint64_t hiddenLayers = 0; ///< Lyr + 1 (0: no eval/hidden)
    std::uint64_t hiddenDim = 0;    ///< D
    std::uint64_t attentionExamples = 0; ///< n_att (0: no eval/attention)
    std::uint64_t layers = 0;       ///< Lyr of the attention tensor
    std::uint64_t heads = 0;
    std::uint64_t seqLen = 0;
    std::uint64_t tokenHiddenExamples = 0; ///< n_tok (0: no eval/token_hidden); needs seqLen,
                                           ///< layers and hiddenDim
    bool float16 = false; ///< store hidden, token_hidden and attention as IEEE half precision
  };
  /// Creates eval/logits [N, C], eval/hidden [N, Lyr+1, D], eval/attention
  /// [n_att, Lyr, H, Len, Len] and eval/token_hidden [n_tok, Lyr+1, Len, D] (chunked,
  /// compressed, NaN until written) for streaming writes; reuses them when they exist with
  /// the same type and shape. N and C must match the task.
  void createEvalOutputs(const std::string& task, const std::string& model, const EvalShape& shape,
                         const std::string& pooling);
  void writeEvalLogits(const std::string& task, const std::string& model, std::uint64_t offset,
                       std::uint64_t rows, const float* data);
  void writeEvalHidden(const std::string& task, const std::string& model, std::uint64_t offset,
                       std::uint64_t rows, const float* data);
  void writeEvalAttention(const std::string& task, const std::string& model, std::uint64_t offset,
                          std::uint64_t rows, const float* data);
  void writeEvalTokenHidden(const std::string& task, const std::string& model, std::uint64_t offset,
                            std::uint64_t rows, const float* data);
  /// Unlinks eval/* outputs of a model (a resumed job records them again from scratch).
  void removeEvalOutputs(const std::string& task, const std::string& model);

  /// Per-example training records (the instance level): appends one row, for the model as
  /// it is after `epoch`, to train_records/epoch and train_records/step, and a row of NaN to
  /// train_records/<name> [E, Ntrain] ("p_true" for the teacher, "q_true" for a student),
  /// which writeTrainRecordBlock then fills block by block. Returns the row's index.
  /// The task must have been written with its train labels.
  std::uint64_t appendTrainRecordRow(const std::string& task, const std::string& model, const std::string& name,
                                     std::int64_t epoch, std::int64_t step);
  /// Writes train examples [offset, offset + count) of row `row` of train_records/<name>.
  void writeTrainRecordBlock(const std::string& task, const std::string& model, const std::string& name,
                             std::uint64_t row, std::uint64_t offset, std::uint64_t count, const float* values);

  /// Rows each extendable log of the model holds now (0 for logs not created yet).
  [[nodiscard]] LogRows logRows(const std::string& task, const std::string& model) const;
  /// Shrinks every extendable log of the model to `rows` (each log no longer than it is),
  /// then flushes: the rows after a checkpoint are dropped before a resumed job records them
  /// again.
  void truncateLogs(const std::string& task, const std::string& model, const LogRows& rows);
  /// Unlinks a model's group (a resumed job that restarts the model from scratch); flushes.
  void removeModel(const std::string& task, const std::string& model);
  /// Unlinks a task's group (a resumed job whose task was cut off while being written); flushes.
  void removeTask(const std::string& task);
  void writeClassifier(const std::string& task, const std::string& model,
                       const std::vector<float>& weight, const std::vector<float>& bias,
                       std::uint64_t classes, std::uint64_t dim);

  /// Root attributes status and status_message, then flush. After a write failure (a full
  /// disk), first reopens the file as its last flush left it (H5File::reopenAfterWriteFailure),
  /// so that a failed job still records "failed" in a file that opens.
  void setStatus(const std::string& status, const std::string& message);
  void flush();
  H5File& file();

  static std::string modelPath(const std::string& task, const std::string& model);

private:
  std::unique_ptr<H5File> m_file;
};

} // namespace kdscope::core
