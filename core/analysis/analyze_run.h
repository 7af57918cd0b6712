#pragma once
/// The analysis engine behind `kdscope analyze RUN.h5` (and the end of `kdscope run` when the
/// job says "analyze": true): reads a run file, computes every analysis of ANALYSES.md with
/// core/analysis, and writes the results under /tasks/<task>/analysis/ of the same file
/// (docs/run-format.md lists every path; docs/analyses.md the formulas and conventions).
///
/// Analyses that need the trained models (head importance and ablation, linear probes) reload
/// the checkpoints beside the run file (<run dir>/checkpoints/<task>/<model>.pt) and the task's
/// data (the job stored in the file, same seed: the same split, checked against the file's
/// eval labels); when either is missing they are skipped with a warning, recorded in the file,
/// and the other analyses still run.
///
/// Torch-free public header. Runs on the caller's thread (the numeric work starts and joins
/// its own workers); progress events are emitted on that thread.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/common/progress.h"

namespace kdscope::core {

class RunReader;

/// The analyses, by the names `kdscope analyze --only` takes:
/// - "task": accuracy, gap, retained fraction, agreement, mean KL, ECE and its reliability
///   bins, per-class recall, confusion matrices, lost and gained examples; the 95% bootstrap
///   interval of each of those numbers, the paired tests of each student against its teacher
///   and against the other students, and the loss pattern (where the lost examples are);
/// - "cka": linear CKA teacher x student for every layer pair, RBF and minibatch forms;
/// - "residual": the layer-pair distillation residual over the mapped pairs;
/// - "probes": linear probes per layer, teacher and students (checkpoints + data);
/// - "heads": head importance (gradient of a head gate) and single-head ablation
///   (checkpoints + data);
/// - "attention": attention entropy per head and the teacher-student head divergence (JS);
/// - "knowledge": the gradient rescaling weight w and its relation to the teacher's
///   confidence, class-similarity matrices and geometry agreement, the gain decomposition.
const std::vector<std::string>& analysisNames();

struct AnalyzeOptions {
  std::vector<std::string> only;      ///< analyses to run (names above); empty: all
  std::size_t threads = 0;            ///< workers of the numeric library; 0: hardware threads
  /// Run the passes that read what the run recorded (task, knowledge, cka, residual, attention)
  /// beside those that rerun the models (heads, probes), each task's two lanes at once
  /// (docs/architecture.md, "Threads"); false, or threads = 1: one after another. The results
  /// are the same either way, bit for bit.
  bool sideBySide = true;
  bool force = false;                 ///< analyse a file whose status is "running"
  std::string dataDir;                ///< data cache folder; empty: the job's data_dir, else the default
  std::size_t rbfExamples = 1000;     ///< eval rows used by RBF CKA (n x n kernels); 0: skip RBF CKA
  double rbfSigmaFraction = 0.8;      ///< sigma = this fraction of the median pairwise distance
  std::size_t minibatchSize = 256;    ///< minibatch CKA batch size; 0: skip minibatch CKA
  std::size_t probeTrainExamples = 5000; ///< train rows a probe is fitted on (the first ones); 0: all
  double probeL2 = 1e-3;              ///< the probes' L2 weight
  std::size_t confidenceBins = 10;    ///< bins of w against the teacher's confidence
  /// Bootstrap resamples B of the within-run intervals and tests ("task": intervals, paired
  /// tests, loss pattern; docs/statistics.md). At least 100.
  int bootstrapResamples = 2000;
  /// Seed of every bootstrap of the analysis: the same seed and file give the same intervals.
  std::uint64_t bootstrapSeed = 14;
  /// An analysed run file whose teacher's "heads" and "probes" results may be copied instead
  /// of computed (a study's teacher job, or another cell of the study: docs/analyses.md,
  /// "Reusing a study's teacher analyses"). They are copied only when the source recorded the
  /// same inputs key (the checkpoint's SHA-1, the reloaded data, the options that change the
  /// result, the architecture) and its teacher's eval/logits match this file's; otherwise,
  /// or when the file is missing, unreadable or not analysed, they are computed as usual and
  /// a progress line says why. Empty: always compute.
  std::string teacherAnalysesFrom{};
};

enum class AnalyzeStatus { Succeeded, Cancelled, Failed, BadInput };

struct AnalyzeResult {
  AnalyzeStatus status = AnalyzeStatus::Failed;
  std::string message;               ///< why it failed or was cancelled; empty on success
  std::vector<std::string> warnings; ///< analyses skipped and why (also recorded in the file)
  double seconds = 0.0;
};

/// Runs the analyses on a run file and writes their results into it. Without `only`, each
/// task's /tasks/<task>/analysis group is deleted and written anew; with `only`, just the
/// results of those analyses are replaced. Refuses (BadInput) a file that is not a readable
/// run file (the reader's message), one whose status is "running" (unless options.force),
/// and unknown analysis names. Never throws.
AnalyzeResult analyzeRun(const std::string& runPath, const AnalyzeOptions& options, const CancelToken& cancel,
                         const ProgressSink& progress);

// ---- Browsing attention ----------------------------------------------------------------

/// One model's attention maps of one example: [layers, heads, length, length], `length` the
/// padded length (rows and columns past the real tokens belong to padding).
struct ModelAttention {
  std::string model;
  std::string source; ///< "recorded" (eval/attention) or "recomputed" (reloaded checkpoint)
  std::size_t layers = 0;
  std::size_t heads = 0;
  std::size_t length = 0;
  std::vector<float> maps;
};

struct ExampleAttentionView {
  std::string task;
  std::size_t example = 0;
  std::vector<std::string> tokens; ///< the real tokens ([CLS] first), from the task's vocab
  std::string text;                ///< eval/text, when recorded
  std::vector<ModelAttention> models; ///< in the order asked
};

/// The attention maps of any eval example for the given models (e.g. {"teacher", "kd"}), side
/// by side: read from eval/attention when the example is among the recorded ones, otherwise
/// recomputed from the model's checkpoint and the reloaded data (dataDir as in
/// AnalyzeOptions). `forceRecompute` recomputes even recorded examples. Throws InputError
/// when the task, model or example does not exist or the model cannot be reloaded.
ExampleAttentionView browseAttention(const std::string& runPath, const std::string& task, std::size_t example,
                                     const std::vector<std::string>& models, const std::string& dataDir = "",
                                     bool forceRecompute = false);

} // namespace kdscope::core
