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

namespace kdscope::core {

class RunWriter;

/// Builds model-ready batches from a split (CPU tensors).
Batch makeBatch(const TaskData& task, const Split& split, const std::vector<std::int64_t>& indices);
/// Contiguous rows [begin, end).
Batch makeBatch(const TaskData& task, const Split& split, std::int64_t begin, std::int64_t end);

/// Builds a model for a task from its architecture spec, seeded.
std::shared_ptr<ClassifierImpl> makeModel(const ArchitectureSpec& spec, const TaskData& task);
/// The architecture as JSON for the run file (spec plus the task-derived sizes).
std::string architectureJson(const ArchitectureSpec& spec, const TaskData& task);

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

struct TrainTarget {
  std::string task;
  std::string model;
  std::uint64_t seed = 0;
  int logEvery = 10;
  /// Trainable parameters besides the model's, optimised and clipped with them (a student
  /// objective's projections and critics: StudentStep::parameters).
  std::vector<torch::Tensor> extraParameters;
  /// Called after each epoch's evaluation (e.g. to save the teacher's per-epoch checkpoints).
  std::function<void(int epoch, ClassifierImpl& model)> afterEpoch;
};

enum class TrainOutcome { Completed, Cancelled };

/// Steps a model will take with this training spec on `trainSize` examples.
long plannedSteps(const TrainingSpec& spec, std::size_t trainSize);

/// AdamW with linear warm-up and linear decay; logs every term each `logEvery` steps to the
/// run file; evaluates on the eval split after every epoch. Throws JobError naming the
/// task, model and step when the loss becomes NaN or infinite.
TrainOutcome trainModel(ClassifierImpl& model, const TaskData& task, const TrainingSpec& spec,
                        const StepFunction& step, const TrainTarget& target, RunWriter& writer,
                        const CancelToken& cancel, ProgressTracker& progress);

struct EvalStats {
  double accuracy = 0.0;
  double loss = 0.0; ///< mean cross-entropy
};
EvalStats evaluate(ClassifierImpl& model, const TaskData& task, const Split& split, int batchSize);

/// Writes eval/logits, eval/hidden, eval/attention and classifier/* for a trained model,
/// streaming batch by batch. Returns false if cancelled between chunks.
bool recordEvalOutputs(ClassifierImpl& model, const TaskData& task, const RecordingSpec& recording,
                       const std::string& modelName, RunWriter& writer, const CancelToken& cancel);

/// Deterministic per-(task, model) seed derived from the job seed.
std::uint64_t deriveSeed(std::uint64_t jobSeed, const std::string& task, const std::string& model);

} // namespace kdscope::core
