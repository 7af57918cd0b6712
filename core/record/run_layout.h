#pragma once

/// The layout of the run file, format version 1 (RUN-FORMAT.md, docs/run-format.md): the one
/// place that spells a run-file path or attribute name, and the codecs of the JSON
/// attributes (objective, architecture) that writers and readers share. Writers (RunWriter,
/// the analysis engine) and readers (RunReader, AnalysisResults, the window) build every
/// path through these functions, so a path changes in one place and a new format version
/// has one place to branch.
///
/// Torch-free and Qt-free: widgets/ may include it.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::core::layout {

/// The format version this KDScope writes and the newest it reads.
inline constexpr int kFormatVersion = 1;
/// The root attribute `format`.
inline constexpr const char* kFormatName = "kdscope-run";

// ---- Attribute names ------------------------------------------------------------------

namespace attr {
// Root.
inline constexpr const char* kFormat = "format";
inline constexpr const char* kFormatVersion = "format_version";
inline constexpr const char* kStatus = "status";
inline constexpr const char* kStatusMessage = "status_message";
inline constexpr const char* kJob = "job";
inline constexpr const char* kKdscopeVersion = "kdscope_version";
/// Processes that trained the run (data-parallel ranks; 1 for one process). Optional:
/// runs written before it are taken as 1.
inline constexpr const char* kWorldSize = "world_size";
// Task group.
inline constexpr const char* kNumClasses = "num_classes";
inline constexpr const char* kClassNames = "class_names";
inline constexpr const char* kKind = "kind";
// Task group: where the data came from (TaskProvenance; docs/run-format.md "Task source").
inline constexpr const char* kSource = "source";
inline constexpr const char* kSourcePath = "source_path";
inline constexpr const char* kSourceBytes = "source_bytes";
inline constexpr const char* kSourceFormat = "source_format";
inline constexpr const char* kSourceEvalPath = "source_eval_path";
inline constexpr const char* kSourceLabelPath = "source_label_path";
inline constexpr const char* kSourceFields = "source_fields";
inline constexpr const char* kTokenizer = "tokenizer";
inline constexpr const char* kTokenizerVocab = "tokenizer_vocab";
inline constexpr const char* kTokenizerLowerCase = "tokenizer_lower_case";
// Model group.
inline constexpr const char* kRole = "role";
inline constexpr const char* kArchitecture = "architecture";
inline constexpr const char* kObjective = "objective";
inline constexpr const char* kParameterCount = "parameter_count";
/// The arithmetic precision the model was trained at, resolved on the machine that trained
/// it ("fp32" or "bf16"); absent for models not trained in the run, and in older files.
inline constexpr const char* kPrecision = "precision";
/// A TorchScript model's pre-flight check (JSON: usable, batch, provides / lacks / skipped as
/// [what, detail] pairs; docs/run-format.md). Absent for KDScope's own models.
inline constexpr const char* kModelCheck = "model_check";
// Analysis group of a task.
/// The analyses that could not run and why, "what: why" lines (string array).
inline constexpr const char* kSkipped = "skipped";
// eval/hidden.
inline constexpr const char* kPooling = "pooling";
// train_records/<name>.
inline constexpr const char* kRecordName = "name";
} // namespace attr

// ---- Paths ----------------------------------------------------------------------------

/// "/": the root, holding the root attributes.
std::string root();
/// "/tasks"
std::string tasks();
/// "/tasks/<task>"
std::string task(const std::string& task);
/// /tasks/<task>/eval/{labels,tokens,text,source_index,group}
std::string evalLabels(const std::string& task);
std::string evalTokens(const std::string& task);
std::string evalText(const std::string& task);
std::string evalSourceIndex(const std::string& task);
std::string evalGroup(const std::string& task);
/// /tasks/<task>/vocab, /tasks/<task>/super_class_of
std::string vocab(const std::string& task);
std::string superClassOf(const std::string& task);
/// /tasks/<task>/train/{labels,source_index}
std::string trainLabels(const std::string& task);
std::string trainSourceIndex(const std::string& task);

/// "/tasks/<task>/models"
std::string models(const std::string& task);
/// "/tasks/<task>/models/<model>"
std::string model(const std::string& task, const std::string& model);
/// <model>/train and <model>/eval: the groups of a model's training log and eval outputs.
std::string modelTrain(const std::string& task, const std::string& model);
std::string modelEval(const std::string& task, const std::string& model);
/// <model>/train/{step,loss}, <model>/train/terms and <model>/train/terms/<term>
std::string trainStep(const std::string& task, const std::string& model);
std::string trainLoss(const std::string& task, const std::string& model);
std::string trainTerms(const std::string& task, const std::string& model);
std::string trainTerm(const std::string& task, const std::string& model, const std::string& term);
/// <model>/eval_curve and <model>/eval_curve/<column> (epoch, step, accuracy, loss)
std::string evalCurve(const std::string& task, const std::string& model);
std::string evalCurveColumn(const std::string& task, const std::string& model, const std::string& column);
/// <model>/eval/{logits,hidden,attention,token_hidden}
std::string evalLogits(const std::string& task, const std::string& model);
std::string evalHidden(const std::string& task, const std::string& model);
std::string evalAttention(const std::string& task, const std::string& model);
std::string evalTokenHidden(const std::string& task, const std::string& model);
/// <model>/eval/token_counts: int64 [N], the number of the model's own tokens (its attention
/// mask's ones) in each eval example. Written for TorchScript text models, which tokenize the
/// task with their own tokenizer; absent for KDScope's models (eval/tokens gives theirs).
std::string evalTokenCounts(const std::string& task, const std::string& model);
/// <model>/eval/tokens: int64 [n_att, L], the model's own token ids of the eval examples whose
/// attention is kept (the first n_att), and <model>/vocab: its tokenizer's vocabulary, id order.
/// Written for TorchScript text models, whose positions are their own tokens, not the task's
/// (/tasks/<task>/eval/tokens labels KDScope's models' positions).
std::string evalModelTokens(const std::string& task, const std::string& model);
std::string modelVocab(const std::string& task, const std::string& model);
/// The eval/* outputs a model may have, in the order above (removed together on resume).
std::vector<std::string> evalOutputs(const std::string& task, const std::string& model);
/// The same outputs relative to their model ("eval/logits", ...), for labels that name them
/// without a task or model (the size estimate's breakdown).
inline constexpr const char* kEvalLogitsName = "eval/logits";
inline constexpr const char* kEvalHiddenName = "eval/hidden";
inline constexpr const char* kEvalAttentionName = "eval/attention";
inline constexpr const char* kEvalTokenHiddenName = "eval/token_hidden";
/// <model>/classifier, <model>/classifier/{weight,bias}
std::string classifier(const std::string& task, const std::string& model);
std::string classifierWeight(const std::string& task, const std::string& model);
std::string classifierBias(const std::string& task, const std::string& model);
/// <model>/train_records, its {epoch,step} columns and its values dataset <name>
std::string trainRecords(const std::string& task, const std::string& model);
std::string trainRecordsEpoch(const std::string& task, const std::string& model);
std::string trainRecordsStep(const std::string& task, const std::string& model);
std::string trainRecordsValues(const std::string& task, const std::string& model, const std::string& name);

/// "/tasks/<task>/analysis": written by `kdscope analyze`.
std::string analysis(const std::string& task);
/// "/tasks/<task>/analysis/<who>": <who> is a model, or "knowledge" for the gain decomposition.
std::string analysisOf(const std::string& task, const std::string& who);
/// "/tasks/<task>/analysis/<who>/<entry>"; `entry` may have several parts ("lost/index").
std::string analysisEntry(const std::string& task, const std::string& who, const std::string& entry);
/// The group of the knowledge-level gain decomposition: analysisOf(task, "knowledge").
std::string knowledge(const std::string& task);

// ---- Analysis entries -----------------------------------------------------------------

/// "<group>/<name>": a member of a group built above, e.g. child(analysisOf(t, m), entry::kCka)
/// or child(child(g, entry::kLost), entry::kIndex).
std::string child(const std::string& group, const std::string& name);

/// The entries `kdscope analyze` writes under /tasks/<task>/analysis/<who>/ (docs/run-format.md
/// lists each with its shape): the writer (core/analysis/passes) and the readers
/// (AnalysisResults, the window's figures) name them through these.
namespace entry {
inline constexpr const char* kAttentionEntropy = "attention_entropy";
inline constexpr const char* kCalibration = "calibration";
inline constexpr const char* kCalibrationAccuracy = "calibration/accuracy";
inline constexpr const char* kCalibrationCount = "calibration/count";
inline constexpr const char* kCalibrationMeanConfidence = "calibration/mean_confidence";
inline constexpr const char* kCka = "cka";
/// CKA at matched depth (the student's layer map) with its 95% bootstrap interval over eval
/// examples: [Ls + 1] each (layer_intervals.h; docs/statistics.md, "Layers").
inline constexpr const char* kCkaMatched = "cka_matched";
inline constexpr const char* kCkaMatchedLo = "cka_matched_lo";
inline constexpr const char* kCkaMatchedHi = "cka_matched_hi";
inline constexpr const char* kCkaMatchedTeacherLayer = "cka_matched_teacher_layer";
inline constexpr const char* kCkaMinibatch = "cka_minibatch";
inline constexpr const char* kCkaRbf = "cka_rbf";
inline constexpr const char* kClassSimilarityProbs = "class_similarity_probs";
inline constexpr const char* kClassSimilarityWeights = "class_similarity_weights";
inline constexpr const char* kCoefficient = "coefficient";
inline constexpr const char* kCoefficientHi = "coefficient_hi";
inline constexpr const char* kCoefficientLo = "coefficient_lo";
inline constexpr const char* kConfusion = "confusion";
inline constexpr const char* kCosineDistance = "cosine_distance";
inline constexpr const char* kCount = "count";
inline constexpr const char* kDirectCosineDistance = "direct_cosine_distance";
inline constexpr const char* kDirectMse = "direct_mse";
inline constexpr const char* kFisherP = "fisher_p";
inline constexpr const char* kGained = "gained";
inline constexpr const char* kGeometryAgreementProbs = "geometry_agreement_probs";
inline constexpr const char* kGeometryAgreementWeights = "geometry_agreement_weights";
inline constexpr const char* kGoldClass = "gold_class";
inline constexpr const char* kGradRescale = "grad_rescale";
inline constexpr const char* kHeadAblationAccuracy = "head_ablation_accuracy";
inline constexpr const char* kHeadAblationLoss = "head_ablation_loss";
/// Each head's accuracy drop (intact - ablated) and loss increase (ablated - intact) with their
/// 95% paired bootstrap intervals over eval examples ([Lyr, H] each; head_ablation_intervals.h).
inline constexpr const char* kHeadAblationAccuracyDrop = "head_ablation_accuracy_drop";
inline constexpr const char* kHeadAblationAccuracyDropLo = "head_ablation_accuracy_drop_lo";
inline constexpr const char* kHeadAblationAccuracyDropHi = "head_ablation_accuracy_drop_hi";
inline constexpr const char* kHeadAblationLossIncrease = "head_ablation_loss_increase";
inline constexpr const char* kHeadAblationLossIncreaseLo = "head_ablation_loss_increase_lo";
inline constexpr const char* kHeadAblationLossIncreaseHi = "head_ablation_loss_increase_hi";
inline constexpr const char* kHeadImportance = "head_importance";
inline constexpr const char* kHeadImportanceRaw = "head_importance_raw";
/// 95% bootstrap intervals over eval examples of head_importance and head_importance_raw
/// ([Lyr, H] each; layer_intervals.h).
inline constexpr const char* kHeadImportanceLo = "head_importance_lo";
inline constexpr const char* kHeadImportanceHi = "head_importance_hi";
inline constexpr const char* kHeadImportanceRawLo = "head_importance_raw_lo";
inline constexpr const char* kHeadImportanceRawHi = "head_importance_raw_hi";
inline constexpr const char* kHeadJs = "head_js";
inline constexpr const char* kHeadJsBestDivergence = "head_js_best_divergence";
inline constexpr const char* kHeadJsBestDivergenceLo = "head_js_best_divergence_lo";
inline constexpr const char* kHeadJsBestDivergenceHi = "head_js_best_divergence_hi";
inline constexpr const char* kHeadJsBestMatch = "head_js_best_match";
inline constexpr const char* kHeadJsHeadAveraged = "head_js_head_averaged";
inline constexpr const char* kHeadJsTeacherLayer = "head_js_teacher_layer";
inline constexpr const char* kIndex = "index";
inline constexpr const char* kIntervals = "intervals";
inline constexpr const char* kLabel = "label";
inline constexpr const char* kLogistic = "logistic";
inline constexpr const char* kLossPattern = "loss_pattern";
inline constexpr const char* kLost = "lost";
inline constexpr const char* kLower = "lower";
inline constexpr const char* kMeanConfidence = "mean_confidence";
inline constexpr const char* kMeanW = "mean_w";
inline constexpr const char* kMse = "mse";
inline constexpr const char* kOddsRatio = "odds_ratio";
inline constexpr const char* kOddsRatioHi = "odds_ratio_hi";
inline constexpr const char* kOddsRatioLo = "odds_ratio_lo";
inline constexpr const char* kPValue = "p_value";
inline constexpr const char* kPaired = "paired";
inline constexpr const char* kProbeAccuracy = "probe_accuracy";
/// 95% interval of probe_accuracy: bootstrap over eval examples of the fitted probe's
/// held-out predictions ([Lyr + 1] each).
inline constexpr const char* kProbeAccuracyLo = "probe_accuracy_lo";
inline constexpr const char* kProbeAccuracyHi = "probe_accuracy_hi";
inline constexpr const char* kProbeConverged = "probe_converged";
inline constexpr const char* kProbeRelativeDepth = "probe_relative_depth";
inline constexpr const char* kProbeTrainAccuracy = "probe_train_accuracy";
inline constexpr const char* kRecall = "recall";
inline constexpr const char* kResidual = "residual";
inline constexpr const char* kRest = "rest";
inline constexpr const char* kSpearmanWConfidence = "spearman_w_confidence";
inline constexpr const char* kStandardError = "standard_error";
inline constexpr const char* kStudentPrediction = "student_prediction";
inline constexpr const char* kStudentProbs = "student_probs";
inline constexpr const char* kStudentTrueProbability = "student_true_probability";
inline constexpr const char* kTeacherLayer = "teacher_layer";
inline constexpr const char* kTeacherPrediction = "teacher_prediction";
inline constexpr const char* kTeacherProbs = "teacher_probs";
inline constexpr const char* kTeacherTrueProbability = "teacher_true_probability";
inline constexpr const char* kTerm = "term";
inline constexpr const char* kText = "text";
inline constexpr const char* kTrueClassProbability = "true_class_probability";
inline constexpr const char* kUnexplained = "unexplained";
inline constexpr const char* kUpper = "upper";
inline constexpr const char* kWByConfidence = "w_by_confidence";
inline constexpr const char* kWPerClass = "w_per_class";
} // namespace entry

// ---- Codecs of the JSON attributes ----------------------------------------------------

/// What the analysis needs from a model's `objective` attribute: the logit-level terms.
struct RecordedObjective {
  double labelSmoothing = 0.0; ///< of the "ce" term
  bool hasKd = false;          ///< a "kd" term is present
  double lambda = 0.0;         ///< weight of the "kd" term
  double temperature = 1.0;
  bool tSquared = true;
  bool ptTargets = false;      ///< teacher_targets == "pt"
  double logitMse = 0.0;       ///< weight of the "logit_mse" term
  /// Only the ce and kd terms: no logit MSE, intermediate terms, augmentation or other
  /// teacher (the knowledge-level control students are pure).
  bool pure = false;
  /// The epsilon was matched to the teacher ("label_smoothing_matched" is present), and the
  /// temperature of the teacher distribution it was matched at (NaN when not matched).
  bool labelSmoothingMatched = false;
  double labelSmoothingMatchTemperature = std::numeric_limits<double>::quiet_NaN();
};

/// The objective attribute `objectiveText` with "label_smoothing_matched" added: the epsilon
/// used, the temperature T of the teacher's p^T = softmax(z_t / T) it was matched at, and the
/// rule. Throws InputError naming `where` when the attribute is not a JSON object.
std::string withMatchedLabelSmoothing(const std::string& objectiveText, double epsilon, double temperature,
                                      const std::string& where);

/// The objective attribute as KDScope writes it: every term with its weight, temperature,
/// T^2 convention, formula and reduction.
std::string encodeObjective(const ObjectiveSpec& objective);
/// Reads an objective attribute back. Throws InputError "<where>: attribute 'objective': ..."
/// when it is not JSON, has no "terms" array, or a term lacks a name or has a field of the
/// wrong type. `where` names the file and object (e.g. "run.h5: /tasks/t/models/kd").
RecordedObjective decodeObjective(const std::string& text, const std::string& where);

/// What an architecture attribute records besides the spec: sizes the task fixes.
struct ArchitectureContext {
  std::int64_t classes = 0;
  std::int64_t vocab = 0;    ///< transformer: vocabulary size
  std::int64_t maxLen = 0;   ///< transformer: sequence length
  std::int64_t inputDim = 0; ///< mlp: input width
};
std::string encodeArchitecture(const ArchitectureSpec& spec, const ArchitectureContext& context);
/// Reads an architecture attribute back as a spec. Throws InputError
/// "<where>: attribute 'architecture': ..." for malformed JSON, a missing field or an
/// unknown model type.
ArchitectureSpec decodeArchitecture(const std::string& text, const std::string& where);

} // namespace kdscope::core::layout
