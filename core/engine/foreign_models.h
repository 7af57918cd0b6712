#pragma once
/// The TorchScript models of a job (modes "compare" and "distil", docs/job-format.md):
/// loading one for a task, its pre-flight check on the task's first eval examples, the task
/// re-tokenized with the model's own tokenizer, and what the run file records about it.
/// Private to core (LibTorch). Lives on the job's thread.

#include <map>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/models/model_check.h"
#include "core/models/model_tokenizer.h"
#include "core/models/torchscript_model.h"
#include "core/record/size_estimate.h"

namespace kdscope::core {

/// One TorchScript model of a job, loaded and checked for one task.
struct ForeignModel {
  std::string name;         ///< "teacher" or the student's name
  std::string field;        ///< the job field that named it ("teacher.torchscript", "students[1].torchscript")
  std::string modelPath;    ///< resolved against the job file, "{task}" replaced
  std::string manifestPath; ///< resolved (empty in the job: beside the module)
  TorchScriptClassifier model{nullptr};
  /// The task as the model reads it: text tasks re-tokenized with the model's tokenizer (same
  /// examples, labels and order; seqLen = the task's max_len); vector tasks unchanged.
  TaskData view;
  std::vector<std::string> vocab; ///< text models: the tokenizer's vocabulary, id order (for <model>/vocab)
  ModelCheckReport report; ///< the pre-flight check (usable: it ran and gave logits [B, C])
};

/// Loads the module and its manifest, checks them against the task (kind, class count,
/// features, max_length), re-tokenizes the task and runs the pre-flight check on its first
/// eval examples (preflightTorchScript: what the model lacks is turned off on it). Throws
/// InputError naming the job field, the file and the manifest field when the model cannot be
/// used (the report's errors); what it merely lacks is in `report`.
ForeignModel loadForeignModel(const std::string& name, const std::string& field, const std::string& torchscript,
                              const std::string& manifest, const std::string& baseDir, const TaskData& task);

/// The number of the model's own tokens (non-[PAD], its attention mask's ones) of each eval
/// example of its view, for eval/token_counts.
std::vector<std::int64_t> modelTokenCounts(const TaskData& view);

/// The model's own token ids of the view's first `examples` eval examples (at most all), row
/// by row, for <model>/eval/tokens.
std::vector<std::int64_t> modelTokenRows(const TaskData& view, std::size_t examples);

/// The sizes of what recordEvalOutputs will record of the model (its manifest's layers, heads
/// and width; what its pre-flight check found missing is not recorded), for the run-file size
/// estimate.
RecordedModelSizes recordedSizes(const ForeignModel& model);
/// The same for every model of every task (task -> its models).
TorchScriptSizes recordedSizes(const std::map<std::string, std::vector<ForeignModel>>& models);

/// The architecture attribute of a TorchScript model (type "torchscript", the module and
/// manifest paths, its sizes): what `kdscope analyze` reloads it from (heads, probes).
/// `savedPath`: a trained student's module (saveTorchScript) instead of the job's.
std::string foreignArchitectureJson(const ForeignModel& model, const std::string& savedPath = "");

/// The pre-flight report as JSON for the model's "model_check" attribute: usable, batch,
/// provides / lacks / skipped as [what, detail] pairs.
std::string modelCheckJson(const ModelCheckReport& report);

} // namespace kdscope::core
