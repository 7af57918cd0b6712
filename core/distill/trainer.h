#pragma once
/// Training, evaluation and recording of one model on one task (private to core).
/// Runs on the job's thread.

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/data/dataset.h"
#include "core/distill/objectives.h"
#include "core/job/job_spec.h"
#include "core/models/classifier.h"
#include "core/record/run_writer.h"

namespace kdscope::core {

class RunWriter;
namespace dist {
class Group;
}

/// Builds model-ready batches from a split (CPU tensors).
Batch makeBatch(const TaskData& task, const Split& split, const std::vector<std::int64_t>& indices);
/// Contiguous rows [begin, end).
Batch makeBatch(const TaskData& task, const Split& split, std::int64_t begin, std::int64_t end);

/// Whether cutting padding off a batch leaves `model`'s logits unchanged but for float
/// rounding: KDScope's own transformers (they read [CLS] and give padding keys no attention).
/// Not TorchScript modules (they may be traced at one length) and not MLPs (no tokens).
[[nodiscard]] bool paddingCanBeCut(ClassifierImpl& model);
/// `batch` without its columns past the last real token of any row (tokens, mask, token types
/// and word embeddings; at least one column). For passes that need only the logits of a model
/// for which paddingCanBeCut.
[[nodiscard]] Batch cutPadding(const Batch& batch);
/// The rows [0, split.size()) in order of their real length (tokens up to the last non-padding
/// one), shortest first, ties by index; the identity for vector tasks. Batches of neighbours in
/// this order lose most of their padding to cutPadding.
[[nodiscard]] std::vector<std::int64_t> rowsByLength(const TaskData& task, const Split& split);
/// The rows [0, split.size()) in the order a pass over a split takes them: rowsByLength for a
/// model whose padding can be cut (paddingCanBeCut), else as they are. A pass that keeps
/// per-row results writes each back at its row's place.
[[nodiscard]] std::vector<std::int64_t> passOrder(ClassifierImpl& model, const TaskData& task, const Split& split);
/// The batch of the rows order[begin, end), without its padding where paddingCanBeCut(model).
[[nodiscard]] Batch passBatch(ClassifierImpl& model, const TaskData& task, const Split& split,
                              const std::vector<std::int64_t>& order, std::size_t begin, std::size_t end);

/// Pools each layer's hidden states to one vector per example, as the recorder stores them
/// (eval/hidden): token states [B, S, D] by the [CLS] position ("cls") or the mean over
/// non-padding tokens (otherwise); vector states [B, D_l] (MLP layers differ in width) are
/// zero-padded to `width` (zero columns leave CKA unchanged). Returns [B, layers + 1, width].
torch::Tensor poolHiddenStates(const std::vector<torch::Tensor>& hidden, const Batch& batch,
                               const std::string& pooling, std::int64_t width);

/// Builds a model for a task from its architecture spec, seeded.
std::shared_ptr<ClassifierImpl> makeModel(const ArchitectureSpec& spec, const TaskData& task);

/// Overall job progress across tasks and models; emits events to the sink.
class ProgressTracker {
public:
  ProgressTracker(ProgressSink sink, long totalSteps);
  void emit(ProgressEvent event);
  void advance(long steps) { m_doneSteps += steps; }
  [[nodiscard]] double fraction() const;
  [[nodiscard]] double elapsedSeconds() const;

private:
  ProgressSink m_sink;
  long m_totalSteps;
  long m_doneSteps = 0;
  std::chrono::steady_clock::time_point m_start;
};

/// One training step's objective: runs the model's forward pass on the batch (and whatever
/// else the objective needs: the teacher, augmentation) and returns the terms. `rows` are
/// the batch's train-split indices (for cached teacher outputs). Built by
/// core/distill/student_step.h.
using StepFunction =
    std::function<LossTerms(ClassifierImpl& model, const Batch& batch, const std::vector<std::int64_t>& rows)>;

/// Where a model's training time went (wall seconds): the optimiser steps (batching, forward,
/// loss, backward, update), the per-epoch eval passes (and the eval curve's row), the
/// per-example train records, and saving (the run file's flush, per-epoch checkpoints, the
/// training state for --resume). Added to, so one struct can sum several models.
struct TrainTimings {
  double steps = 0.0;
  double eval = 0.0;
  double records = 0.0;
  double save = 0.0;
};

struct TrainTarget {
  std::string task;
  std::string model;
  std::uint64_t seed = 0;
  int logEvery = 10;
  /// Trainable parameters besides the model's, optimised and clipped with them (a student
  /// objective's projections and critics: StudentStep::parameters).
  std::vector<torch::Tensor> extraParameters;
  /// When set, trainModel adds its time by part to it (the job's time-by-phase profile).
  TrainTimings* timings = nullptr;
  /// Called after each epoch's evaluation (e.g. to save the teacher's per-epoch checkpoints).
  std::function<void(int epoch, ClassifierImpl& model)> afterEpoch;
  /// Per-example training records: after each epoch, the probability of the true class of
  /// every train example (a forward pass in eval mode, no gradient) is written to
  /// train_records/<recordName> ("p_true" for the teacher, "q_true" for a student). Empty:
  /// none. The task must have been written with its train labels.
  std::string recordName;
  /// Where the training state is saved after each epoch, once the run file has been flushed
  /// (model, optimizer, extra parameters, the batch-order and torch generators, epoch, step
  /// and the rows of every log), for `kdscope run --resume`. Empty: no checkpoints.
  std::string checkpointPath;
  /// Continue from the checkpoint at checkpointPath: the logs are cut back to the rows it
  /// recorded, and training goes on after its epoch, drawing what an uninterrupted run draws.
  bool resume = false;
  /// The step function's own random state (augmentation), saved in checkpoints so that a
  /// resumed job draws what an uninterrupted one would. Optional (both or neither).
  std::function<std::string()> saveStepState;
  std::function<void(const std::string&)> restoreStepState;
  /// Data-parallel training (core/distributed/process_group.h): each rank trains on its
  /// shard of every global batch (spec.batchSize rows, the same order on every rank), its
  /// loss weighted by shard rows / batch rows and the gradients summed over the ranks, so
  /// every rank takes the one-process step of the global batch. Only rank 0 evaluates, logs
  /// and records (its writer); the others pass no writer. Null or one rank: one process.
  dist::Group* group = nullptr;
  /// When set, the last epoch's per-example records (recordName) take the train split's
  /// logits from it instead of their own forward pass: run_job passes the teacher cache's
  /// example-wise pass (trainSetTeacherLogits), so that a job with records and the cache runs
  /// the final teacher over the train set once, not twice. An undefined tensor: cancelled.
  std::function<torch::Tensor(ClassifierImpl& model)> lastEpochTrainLogits;
};

/// What a training checkpoint (TrainTarget::checkpointPath) holds besides the tensors.
struct TrainCheckpointInfo {
  int epoch = 0;  ///< epochs completed
  long step = 0;  ///< optimizer steps taken
  LogRows rows;   ///< rows of the model's logs when it was saved
};

/// Reads a training checkpoint's epoch, step and log rows. Throws InputError naming the file
/// when it is missing or not a checkpoint KDScope wrote.
TrainCheckpointInfo readTrainCheckpoint(const std::string& path);

/// Writes one row of per-example records (TrainTarget::recordName) for the model as it is
/// now, labelled with `epoch` and `step`, streaming block by block. Returns false if
/// cancelled between blocks. `trainLogits`, when defined, are the model's logits [N, C] on the
/// train split in row order, already computed (the teacher cache's pass: run_job computes the
/// teacher's once for both), and replace the forward pass.
bool recordTrainRecords(ClassifierImpl& model, const TaskData& task, const std::string& modelName,
                        const std::string& recordName, std::int64_t epoch, std::int64_t step, RunWriter& writer,
                        const CancelToken& cancel, const torch::Tensor& trainLogits = {});

enum class TrainOutcome { Completed, Cancelled };

/// Steps a model will take with this training spec on `trainSize` examples.
long plannedSteps(const TrainingSpec& spec, std::size_t trainSize);

/// AdamW with linear warm-up and linear decay; logs every term each `logEvery` steps to the
/// run file; evaluates on the eval split after every epoch. Throws JobError naming the
/// task, model and step when the loss becomes NaN or infinite.
/// `writer` is null only on a data-parallel rank other than 0 (TrainTarget::group).
TrainOutcome trainModel(ClassifierImpl& model, const TaskData& task, const TrainingSpec& spec,
                        const StepFunction& step, const TrainTarget& target, RunWriter* writer,
                        const CancelToken& cancel, ProgressTracker& progress);
inline TrainOutcome trainModel(ClassifierImpl& model, const TaskData& task, const TrainingSpec& spec,
                               const StepFunction& step, const TrainTarget& target, RunWriter& writer,
                               const CancelToken& cancel, ProgressTracker& progress) {
  return trainModel(model, task, spec, step, target, &writer, cancel, progress);
}

struct EvalStats {
  double accuracy = 0.0;
  double loss = 0.0; ///< mean cross-entropy
};
EvalStats evaluate(ClassifierImpl& model, const TaskData& task, const Split& split, int batchSize);

/// Rows per eval-recording batch for a model of these sizes on rows of `length` tokens
/// (0 for vector models) within `budgetMb` (recording.memory_budget_mb; 0: `cap`): an
/// estimate of the bytes one row's forward keeps at once (every layer's hidden states, the
/// feed-forward activations taken as 4 x width, twice the attention maps), doubled for the
/// framework's temporaries; between 1 and `cap`.
int evalBatchRows(int layers, int heads, int width, int length, double budgetMb, int cap);

/// Writes eval/logits, eval/hidden, eval/attention, eval/token_hidden and classifier/* for a
/// trained model (as `recording` asks, and as far as the model provides them: unavailable()), streaming
/// in batches of evalBatchRows rows. Returns false if cancelled
/// between chunks.
bool recordEvalOutputs(ClassifierImpl& model, const TaskData& task, const RecordingSpec& recording,
                       const std::string& modelName, RunWriter& writer, const CancelToken& cancel);

/// Deterministic per-(task, model) seed derived from the job seed.
std::uint64_t deriveSeed(std::uint64_t jobSeed, const std::string& task, const std::string& model);

} // namespace kdscope::core
