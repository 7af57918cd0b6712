#pragma once
/// The pre-flight check of a model from elsewhere: load the TorchScript module and its
/// manifest, run one batch, and report what the model provides and what it does not (naming
/// the shape got against the shape expected), and which analyses and training terms will be
/// skipped for lack of which output. `kdscope check-model` prints it; the engine runs it
/// before any work (torchscript_model.h: preflightTorchScript). docs/models.md.
///
/// Torch-free public header. Never throws: every failure (no such file, not TorchScript, a
/// manifest with wrong or missing fields, a forward that throws, logits of the wrong shape)
/// is a report with `usable` false and the reasons in `errors`.

#include <cstdint>
#include <string>
#include <vector>

namespace kdscope::core {

struct ModelCheckOptions {
  std::string modelPath;
  std::string manifestPath; ///< empty: MODEL.json beside MODEL.pt (defaultManifestPath)
  /// A built-in task whose first `batch` examples make the batch, encoded with the model's own
  /// tokenizer; empty: a synthetic batch (seeded random tokens of the vocabulary, the second
  /// row padded to half the length; vector models: standard normal features).
  std::string task;
  std::string dataDir; ///< the task's data folder; empty: $KDSCOPE_DATA_DIR or the default
  int length = 0;      ///< tokens per row; 0: 32, or the manifest's max_length if smaller
  int batch = 2;       ///< rows (>= 1)
  std::uint64_t seed = 1;
};

/// One line of the report: what (e.g. "attentions") and the detail.
struct ModelCheckLine {
  std::string what;
  std::string detail;
};

struct ModelCheckReport {
  std::string modelPath;
  std::string manifestPath;
  /// True when the model loads, its forward runs on the batch and the logits have the shape
  /// [B, C]: it can be recorded and analysed (what it lacks is skipped). False: `errors` says why.
  bool usable = false;
  std::vector<std::string> errors; ///< each names the file (model or manifest) and field
  std::string kind;                ///< "text" or "vector" (empty when the manifest did not parse)
  int layers = 0;
  int heads = 0;
  int width = 0;
  std::vector<std::string> classNames;
  std::int64_t parameters = 0;     ///< elements of the module's parameters
  std::string batchDescription;    ///< e.g. "2 rows of 16 tokens, synthetic (seed 1)"
  std::vector<ModelCheckLine> provides;
  std::vector<ModelCheckLine> lacks;   ///< what is missing or wrong, and why
  std::vector<ModelCheckLine> skipped; ///< analyses (analysisNames()) and training terms, and why
  std::vector<std::string> notes;      ///< hints that are not problems (e.g. argument names)
  // What the engine needs to know, as flags (each true only when checked on the batch).
  bool hasHiddenStates = false;
  bool hasAttentions = false;
  bool hasHeadGate = false;  ///< head_mask taken, and gradients reach it
  bool hasClassifier = false;
  bool trainable = false;    ///< has parameters an optimiser can update
};

/// Loads, runs one batch, reports. Never throws.
ModelCheckReport checkModel(const ModelCheckOptions& options);

/// The report as the terminal shows it (several lines, ending with a verdict line).
std::string formatModelCheck(const ModelCheckReport& report);

} // namespace kdscope::core
