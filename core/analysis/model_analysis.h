#pragma once
/// Analyses that need a trained model and its data, not just the run file: attention-head
/// importance (Michel et al. 2019) and single-head ablation, the pooled hidden states of
/// any split (for linear probes on the train split), and the attention maps of any example.
/// Torch-free interface (the model lives behind a pointer to an implementation); the
/// LibTorch side is core/analysis/model_analysis_torch.{h,cpp}. Everything runs on the
/// calling thread (LibTorch's intra-op pool aside); a ModelHandle is used by one thread at
/// a time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/common/cancel.h"
#include "core/data/dataset.h"
#include "core/job/job_spec.h"

namespace kdscope::core::analysis {

/// Pooled hidden states of some rows of a split, [rows, layers + 1, width] row-major, pooled
/// as the recorder pools eval/hidden (mean over non-padding tokens or the [CLS] state; MLP
/// layers zero-padded to the widest).
struct PooledStates {
  std::size_t rows = 0;
  std::size_t layers = 0; ///< Lyr + 1
  std::size_t width = 0;
  std::vector<float> values;
  /// The same forward passes' logits, rows x classes (row-major, float32): what
  /// ModelHandle::logits gives for these rows.
  std::vector<float> logits;
};

/// Per-head scores of one model on one split, [layers, heads] row-major.
struct HeadScores {
  std::size_t layers = 0;
  std::size_t heads = 0;
  /// Michel et al.'s importance: I_h = mean over examples of |dL_i / d xi_h|, xi_h a
  /// multiplicative gate on head h's output (all gates 1), L_i the example's cross-entropy
  /// (nats). Computed exactly per example in one backward pass per batch: with xi = 1,
  /// dL_i / d xi_h = <A_ih, dL_i / dA_ih>_F, A_ih the head's attention probabilities (the gate
  /// scales A_ih V_ih, and dL/dA_ih = xi_h (dL/d out_ih) V_ih^T).
  std::vector<double> importance;
  /// importance divided, layer by layer, by the layer's L2 norm (Michel et al. section 4.2);
  /// NaN for a layer whose importances are all 0.
  std::vector<double> normalisedImportance;
  /// |dL_i / d xi_h| of every example, [N, layers * heads] row-major (what importance is the
  /// mean of; the bootstrap of head_importance_lo/_hi resamples its rows).
  std::vector<double> perExampleImportance;
  /// Accuracy and mean cross-entropy with head h of layer l gated to 0 alone.
  std::vector<double> ablationAccuracy;
  std::vector<double> ablationLoss;
  double accuracy = 0.0; ///< with every gate 1
  double loss = 0.0;
  /// Per eval example, with every gate 1: 1 when the prediction is right, and the
  /// cross-entropy (nats). [N] each.
  std::vector<std::uint8_t> perExampleCorrect;
  std::vector<double> perExampleLoss;
  /// Per eval example and head, with that head gated to 0 alone: [N, layers * heads] row-major
  /// (column l * heads + h), what ablationAccuracy and ablationLoss are the means of; the paired
  /// bootstrap of the accuracy drop resamples their rows (head_ablation_intervals.h).
  std::vector<std::uint8_t> perExampleAblationCorrect;
  std::vector<double> perExampleAblationLoss;
  /// Whether the ablations took the batched path (head_ablation_torch.h: each layer's attention
  /// once, all its heads' ablations stacked in one pass, the last block at [CLS] only; checked
  /// against forward() with a gate on the first batch) rather than one forward() per head.
  bool layeredAblation = false;
  /// The intact model's logits of every example of the split ([N, C] row-major, float32) and,
  /// when asked for (a pooling given), its pooled states: from the gate gradients' forward
  /// passes, what ModelHandle::logits and pooledStates give for the split's rows in order.
  std::vector<float> logits;
  PooledStates pooled;
};

/// One example's attention probabilities, [layers, heads, length, length] (the padded length
/// of the task, as in eval/attention), and its token ids.
struct ExampleAttention {
  std::size_t layers = 0;
  std::size_t heads = 0;
  std::size_t length = 0;
  std::size_t realTokens = 0; ///< non-padding tokens (positions 0 .. realTokens-1)
  std::vector<float> maps;
  std::vector<std::int64_t> tokens;
};

/// A model rebuilt from its architecture and loaded from its checkpoint, in eval mode on the
/// CPU.
class ModelHandle {
public:
  /// Throws InputError naming the checkpoint when it is missing or does not fit the
  /// architecture.
  ModelHandle(const ArchitectureSpec& architecture, const TaskData& task, const std::string& checkpointPath);
  /// A TorchScript module and its manifest (a model of a job in mode 'compare' or 'distil',
  /// docs/models.md). `task` as KDScope loads it: text tasks are re-tokenized with the
  /// model's own tokenizer, and every method below, given this task and one of its splits,
  /// runs the model on the re-tokenized split. Throws InputError naming the file.
  static ModelHandle torchScript(const std::string& modelPath, const std::string& manifestPath, const TaskData& task);
  ~ModelHandle();
  ModelHandle(ModelHandle&&) noexcept;
  ModelHandle& operator=(ModelHandle&&) noexcept;
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;

  [[nodiscard]] int layers() const; ///< Lyr
  [[nodiscard]] int heads() const;  ///< 0 for a model without attention
  /// Why head importance cannot run on this model ("" when it can): a TorchScript module
  /// that takes no head_mask.
  [[nodiscard]] std::string headGateUnavailable() const;
  /// Why pooled states cannot be computed ("" when they can): a TorchScript module that
  /// returns no hidden states.
  [[nodiscard]] std::string hiddenUnavailable() const;

  /// Eval logits [N, C] of a split, float32.
  [[nodiscard]] std::vector<float> logits(const TaskData& task, const Split& split) const;
  /// Head importance and ablation on a split. Returns empty scores (layers = 0) for a model
  /// without attention, or when cancelled.
  /// With `pooling` (not null), HeadScores::pooled holds the split's pooled states too (one
  /// eval pass for the heads and the probes).
  [[nodiscard]] HeadScores headScores(const TaskData& task, const Split& split, const CancelToken& cancel,
                                      const std::string* pooling = nullptr) const;
  /// Pooled states of the given rows of a split ("mean" or "cls" pooling for text models).
  [[nodiscard]] PooledStates pooledStates(const TaskData& task, const Split& split, const std::vector<std::int64_t>& rows,
                                          const std::string& pooling) const;
  /// Attention maps of one example of a split (text models; throws InputError otherwise).
  [[nodiscard]] ExampleAttention attention(const TaskData& task, const Split& split, std::size_t example) const;

  struct Impl;

private:
  explicit ModelHandle(std::unique_ptr<Impl> impl);
  /// The task and split the model reads: the re-tokenized ones of a TorchScript model.
  [[nodiscard]] std::pair<const TaskData*, const Split*> view(const TaskData& task, const Split& split) const;
  std::unique_ptr<Impl> m_impl;
};

/// SHA-1 of a file's bytes, as 40 hex digits (c10's implementation): the identity of a
/// checkpoint in the inputs key of the heads and probes results (docs/analyses.md, "Reusing a
/// study's teacher analyses"). Throws InputError naming the file when it cannot be read.
std::string fileSha1(const std::string& path);

} // namespace kdscope::core::analysis
