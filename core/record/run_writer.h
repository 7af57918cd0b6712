#pragma once
/// The single writer of a run file (RUN-FORMAT.md, docs/run-format.md). Lives on the job's
/// thread. Streams: training logs are appended, eval outputs are written in row blocks into
/// preallocated chunked datasets, so memory is bounded by a batch, not by the dataset.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/data/dataset.h"

namespace kdscope::core {

class H5File;

inline constexpr int kRunFormatVersion = 1;
const char* kdscopeVersion();

class RunWriter {
public:
  /// Creates (truncates) the file and writes the root attributes with status "running".
  RunWriter(const std::string& path, const std::string& jobJson);
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  /// /tasks/<task>: attributes, eval labels, tokens, vocab and texts. Checks the task first
  /// (labels in range, sizes that agree) and writes nothing when it is inconsistent. Flushes.
  void writeTask(const TaskData& task);

  /// /tasks/<task>/models/<model>: role, architecture, objective, parameter_count. Flushes.
  /// Call flush() after the model's training and after its evaluation: a crash keeps what
  /// was flushed (docs/run-format.md).
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
  };
  /// Creates eval/logits [N, C], eval/hidden [N, Lyr+1, D] and eval/attention
  /// [n_att, Lyr, H, Len, Len] (chunked, compressed, NaN until written) for streaming
  /// writes; reuses them when they exist with the same shape. N and C must match the task.
  void createEvalOutputs(const std::string& task, const std::string& model, const EvalShape& shape,
                         const std::string& pooling);
  void writeEvalLogits(const std::string& task, const std::string& model, std::uint64_t offset,
                       std::uint64_t rows, const float* data);
  void writeEvalHidden(const std::string& task, const std::string& model, std::uint64_t offset,
                       std::uint64_t rows, const float* data);
  void writeEvalAttention(const std::string& task, const std::string& model, std::uint64_t offset,
                          std::uint64_t rows, const float* data);
  void writeClassifier(const std::string& task, const std::string& model,
                       const std::vector<float>& weight, const std::vector<float>& bias,
                       std::uint64_t classes, std::uint64_t dim);

  /// Root attributes status and status_message, then flush.
  void setStatus(const std::string& status, const std::string& message);
  void flush();
  H5File& file();

  static std::string modelPath(const std::string& task, const std::string& model);

private:
  std::unique_ptr<H5File> m_file;
};

} // namespace kdscope::core
