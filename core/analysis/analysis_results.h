#pragma once
/// AnalysisResults: the typed reader of what `kdscope analyze` wrote under
/// /tasks/<task>/analysis (docs/run-format.md). The window (widgets/RunDocument), `kdscope
/// info` and `kdscope export` show these numbers and never recompute them, so a view, a
/// headline and an exported figure agree with the file. Paths come from
/// core/record/run_layout.h. Every error is an InputError naming the file and object.
///
/// Also the typed reads of the recorded model outputs the window shows as they are
/// (attention maps, tokens, texts, classifier weights), so that nothing outside core opens
/// an HDF5 object by path.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/analysis/loss_pattern.h"
#include "core/analysis/metrics.h"
#include "core/analysis/runner_up.h"
#include "core/analysis/stats.h"
#include "core/analysis/task_intervals.h"

namespace kdscope::core {

class RunReader;

/// The shape of a model's eval/attention: [examples, layers, heads, length, length].
struct AttentionShape {
  std::size_t examples = 0; ///< n_att
  std::size_t layers = 0;
  std::size_t heads = 0;
  std::size_t length = 0;
};

/// The teacher-student head divergence of one student (analysis "attention", head_js_*):
/// for student layer i, the mapped teacher layer teacherLayer[i] (-1: none), and for each
/// head h of that teacher layer, the student head of layer i with the smallest Jensen-Shannon
/// divergence (bestMatch, -1: none) and that divergence (bestDivergence, nats; NaN: none).
struct HeadDivergence {
  std::vector<std::int64_t> teacherLayer; ///< [Ls]
  analysis::Matrix bestDivergence;        ///< [Ls, Ht]
  std::vector<std::int64_t> bestMatch;    ///< [Ls * Ht], row-major
  analysis::Matrix full;                  ///< head_js [Ls, Ht * Hs]: JS of every head pair
  std::size_t studentHeads = 0;           ///< Hs
  /// bestDivergence's 95% interval: percentile bootstrap over the kept eval examples, the
  /// match fixed (head_js_best_divergence_lo, _hi; absent in older files).
  std::optional<analysis::Matrix> bestLo;
  std::optional<analysis::Matrix> bestHi;
  int resamples = 0; ///< B of that bootstrap (0: none recorded)
  /// The mean of bestDivergence over the mapped teacher heads with its 95% interval from
  /// the same resamples (count: the kept examples; attributes mean_over_heads, _lo, _hi of
  /// head_js_best_divergence; absent in older files) and how many heads it averages.
  std::optional<analysis::Interval> meanOverHeads;
  std::size_t meanOverHeadsCount = 0;
};

/// Single-head ablation of one model (analysis "heads"; head_ablation_intervals.h):
/// [Lyr, H] matrices, row l, column h = head h of layer l gated to 0 alone.
struct HeadAblation {
  analysis::Matrix accuracy;         ///< head_ablation_accuracy
  analysis::Matrix loss;             ///< head_ablation_loss (mean cross-entropy, nats)
  double intactAccuracy = std::numeric_limits<double>::quiet_NaN(); ///< every gate 1
  double intactLoss = std::numeric_limits<double>::quiet_NaN();
  /// intact accuracy - ablated accuracy and its 95% paired bootstrap interval over eval
  /// examples; absent (with the loss increase) for files analysed before they were recorded.
  std::optional<analysis::Matrix> accuracyDrop;
  std::optional<analysis::Matrix> accuracyDropLo;
  std::optional<analysis::Matrix> accuracyDropHi;
  std::optional<analysis::Matrix> lossIncrease; ///< ablated - intact mean cross-entropy
  std::optional<analysis::Matrix> lossIncreaseLo;
  std::optional<analysis::Matrix> lossIncreaseHi;
  int resamples = 0; ///< bootstrap resamples B of the intervals (0: none recorded)
};

// ---- Intervals and tests (analysis "task"; docs/statistics.md) -------------------------

/// How the bootstrap of a group was drawn: bootstrapResampleIndices(examples, resamples, seed).
struct BootstrapInfo {
  int resamples = 0;
  std::uint64_t seed = 0;
  double level = 0.95;
  std::size_t examples = 0;
};

/// analysis/<model>/intervals: each metric's estimate and 95% interval, in the file's order
/// (a model: accuracy, ece; a student also teacher_accuracy, teacher_ece, gap,
/// retained_fraction, agreement, mean_kl). Each Interval has resamples, level, count and
/// over (kOverExamples) filled from the group.
struct ModelIntervals {
  BootstrapInfo bootstrap;
  std::string method;
  std::vector<analysis::NamedInterval> metrics;
  /// The metric's interval, or nullptr when the group has none of that name.
  [[nodiscard]] const analysis::Interval* find(const std::string& metric) const;
};

/// analysis/<student>/paired/<other>: the student ("this") against the teacher or another
/// student on the same eval examples. In `comparison`, "first" is this student: onlyFirst =
/// only this one right, accuracyDifference = accuracy(this) - accuracy(other).
struct PairedTest {
  std::string student;
  std::string other;
  std::string otherRole; ///< "teacher" or "student"
  BootstrapInfo bootstrap;
  analysis::CorrectnessComparison comparison;
  /// comparison.mcnemarP, Holm-adjusted over the task's family: the McNemar test of every
  /// pair of models the analysis compared on this task (each student against the teacher and
  /// each pair of students, once). Computed when read (docs/statistics.md, "Multiple testing").
  analysis::AdjustedP mcnemarHolm;
};

// ---- Headline numbers (kdscope info) ---------------------------------------------------

/// CKA at matched depth with its 95% interval (bootstrap over eval examples), one entry per
/// student hidden index (analysis/<student>/cka_matched*, docs/run-format.md).
struct MatchedCka {
  std::vector<std::int64_t> teacherLayer; ///< the teacher hidden index of each; -1: unmapped
  std::vector<analysis::Interval> cka;
  std::string map; ///< the layer map the pairs come from
};

struct StudentHeadline {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::string name;
  double teacherAccuracy = kNaN;
  double accuracy = kNaN;
  double gap = kNaN;              ///< teacher - student accuracy
  double retainedFraction = kNaN; ///< student / teacher accuracy
  double agreement = kNaN;        ///< top-1 agreement with the teacher
  double meanKl = kNaN;           ///< mean KL(p || q), T = 1, nats
  double teacherEce = kNaN;
  double ece = kNaN;
  double geometryAgreement = kNaN; ///< off-diagonal correlation of classifier-weight cosines (analysis)
  double wConfidenceSpearman = kNaN; ///< Spearman of w with the teacher's p_y (analysis)
  /// Its 95% bootstrap interval over eval examples (absent for older files).
  std::optional<analysis::Interval> wConfidenceSpearmanInterval;
  /// Geometry agreement from the class-probability similarity (the teacher's mean
  /// probabilities by class), with its bootstrap interval over eval examples. (The
  /// classifier-weight agreement above does not depend on the eval examples: it has no
  /// within-run interval; its spread is over replicates.)
  std::optional<analysis::Interval> geometryAgreementProbs;
  /// CKA at matched depth with intervals (absent when not analysed).
  std::optional<MatchedCka> matchedCka;
  /// The analysis's intervals of this student's metrics (absent when not analysed).
  std::optional<ModelIntervals> intervals;
  /// Paired tests against the teacher and against the other students (empty when not analysed).
  std::optional<PairedTest> vsTeacher;
  std::vector<PairedTest> vsStudents;
  /// Where the lost examples are (absent when not analysed).
  std::optional<analysis::LossPattern> lossPattern;
  /// The interval of a metric (task_intervals.h metric:: names), or nullptr.
  [[nodiscard]] const analysis::Interval* interval(const std::string& metric) const {
    return intervals ? intervals->find(metric) : nullptr;
  }
};

struct TaskHeadline {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::string task;
  bool analysed = false; ///< /tasks/<task>/analysis exists and completed
  std::vector<StudentHeadline> students;
  bool hasKnowledge = false; ///< the four control students were found
  std::vector<std::string> knowledgeStudents; ///< CE, LS, KD-pt, KD
  double universe = kNaN;
  double instance = kNaN;
  double domain = kNaN;
  double total = kNaN;
  double lsShare = kNaN;
  double matchedEpsilon = kNaN;
  /// The temperature of the teacher's p^T the LS control's epsilon was matched at (NaN: the
  /// epsilon was not matched, or the file predates the record).
  double lsMatchTemperature = kNaN;
  /// The levels' 95% intervals: paired bootstrap over eval examples (absent for older files).
  std::optional<analysis::Interval> universeInterval;
  std::optional<analysis::Interval> instanceInterval;
  std::optional<analysis::Interval> domainInterval;
  std::optional<analysis::Interval> totalInterval;
  std::optional<analysis::Interval> lsShareInterval;
  /// The teacher's accuracy and ECE intervals (absent when not analysed).
  std::optional<ModelIntervals> teacherIntervals;
};

class AnalysisResults {
public:
  /// Reads through `reader`, which must outlive this object.
  explicit AnalysisResults(const RunReader& reader);

  /// The task's analysis group exists and its status is "complete".
  [[nodiscard]] bool analysed(const std::string& task) const;
  /// The task's analysis group exists (complete or not).
  [[nodiscard]] bool hasAnalysis(const std::string& task) const;
  /// /tasks/<task>/analysis/<who>/<entry> exists.
  [[nodiscard]] bool has(const std::string& task, const std::string& who, const std::string& entry) const;
  /// A 2-D float result, or nothing when absent. Throws for another rank or type.
  [[nodiscard]] std::optional<analysis::Matrix> matrix(const std::string& task, const std::string& who,
                                                       const std::string& entry) const;
  /// A 1-D float result, or nothing when absent. Throws for another rank or type.
  [[nodiscard]] std::optional<std::vector<double>> vector(const std::string& task, const std::string& who,
                                                          const std::string& entry) const;
  /// analysis/<model>/intervals, or nothing when not analysed. Throws InputError naming the
  /// file, object and attribute when the group lacks one its `metrics` lists.
  [[nodiscard]] std::optional<ModelIntervals> intervals(const std::string& task, const std::string& model) const;
  /// analysis/<student>/paired/*: against the teacher first, then the other students, in the
  /// order the analysis wrote them, each with its Holm-adjusted McNemar p over the task's
  /// family (PairedTest::mcnemarHolm); empty when not analysed.
  [[nodiscard]] std::vector<PairedTest> pairedTests(const std::string& task, const std::string& student) const;
  /// pairedTests of every model of the task that has them (model -> its tests), reading
  /// each model's group once (the headlines: one family, not one per student).
  [[nodiscard]] std::map<std::string, std::vector<PairedTest>> pairedTestsOfTask(const std::string& task) const;
  /// analysis/<student>/loss_pattern, or nothing when not analysed.
  [[nodiscard]] std::optional<analysis::LossPattern> lossPattern(const std::string& task,
                                                                 const std::string& student) const;
  /// The analyses skipped for the task and why, "what: why" lines in the order the analysis
  /// met them (the analysis group's `skipped` attribute); empty when none or not analysed.
  [[nodiscard]] std::vector<std::string> skipped(const std::string& task) const;
  /// What a TorchScript model lacks, from its pre-flight check (attribute model_check):
  /// "what: detail" lines; empty for KDScope's own models and for models lacking nothing.
  [[nodiscard]] std::vector<std::string> modelLacks(const std::string& task, const std::string& model) const;
  /// A floating-point attribute of <who> (e.g. "geometry_agreement_weights"), or nothing.
  [[nodiscard]] std::optional<double> number(const std::string& task, const std::string& who,
                                             const std::string& name) const;

  /// An attribute `name` of <who> with its interval attributes `name_lo`, `name_hi` (as the
  /// knowledge and layers passes write them; over eval examples by bootstrap), or nothing
  /// when any of the three is absent (analysis_results_truth.cpp).
  [[nodiscard]] std::optional<analysis::Interval> numberInterval(const std::string& task, const std::string& who,
                                                                 const std::string& name) const;

  /// The student's CKA at matched depth with intervals, or nothing when not analysed (or the
  /// file predates it). Throws InputError naming the dataset when the four differ in length.
  [[nodiscard]] std::optional<MatchedCka> matchedCka(const std::string& task, const std::string& student) const;

  /// A finding's comparison with its runner-up, from the attributes of the analysis dataset
  /// `entry` (extreme_index, runner_up_index, runner_up_difference, _lo, _hi,
  /// runner_up_resamples; docs/run-format.md, "Against the runner-up"): the cells are the
  /// dataset's row-major indices. Nothing when the attributes are absent (a file analysed
  /// before they were recorded, or fewer than two cells). Throws InputError naming the
  /// dataset when some are present and others missing, or an index is negative
  /// (analysis_results_truth.cpp).
  [[nodiscard]] std::optional<analysis::RunnerUp> runnerUp(const std::string& task, const std::string& model,
                                                           const std::string& entry) const;

  /// attention_entropy [Lyr, H] of a model (nats), or nothing when not analysed.
  [[nodiscard]] std::optional<analysis::Matrix> attentionEntropy(const std::string& task,
                                                                 const std::string& model) const;
  /// The 95% interval (bootstrap over eval examples) of head_importance: the lower and upper
  /// [Lyr, H] matrices, or nothing when not analysed (or the file predates them).
  [[nodiscard]] std::optional<std::pair<analysis::Matrix, analysis::Matrix>>
  headImportanceInterval(const std::string& task, const std::string& model) const;
  /// The bootstrap resamples B of that interval (attribute `resamples` of head_importance_lo);
  /// 0 when not recorded.
  [[nodiscard]] int headImportanceResamples(const std::string& task, const std::string& model) const;
  /// head_importance [Lyr, H], or nothing when not analysed.
  [[nodiscard]] std::optional<analysis::Matrix> headImportance(const std::string& task,
                                                               const std::string& model) const;
  /// The model's single-head ablation and its intervals, or nothing when not analysed.
  /// Throws InputError naming the dataset when the matrices differ in shape
  /// (analysis_results_heads.cpp).
  [[nodiscard]] std::optional<HeadAblation> headAblation(const std::string& task, const std::string& model) const;
  /// The student's head divergence, or nothing when not analysed.
  [[nodiscard]] std::optional<HeadDivergence> headDivergence(const std::string& task,
                                                             const std::string& student) const;

  // ---- Recorded model outputs, as they are --------------------------------------------

  [[nodiscard]] bool hasTrainLog(const std::string& task, const std::string& model) const;
  [[nodiscard]] bool hasEvalCurve(const std::string& task, const std::string& model) const;
  [[nodiscard]] bool hasEvalLogits(const std::string& task, const std::string& model) const;
  [[nodiscard]] bool hasClassifier(const std::string& task, const std::string& model) const;
  /// classifier/weight [C, D], or nothing when absent.
  [[nodiscard]] std::optional<analysis::Matrix> classifierWeight(const std::string& task,
                                                                 const std::string& model) const;
  /// The shape of eval/attention, or nothing when the model has none. Throws for a dataset
  /// that is not [n_att, Lyr, H, Len, Len].
  [[nodiscard]] std::optional<AttentionShape> attentionShape(const std::string& task,
                                                             const std::string& model) const;
  /// One example's maps, row-major [layers, heads, length, length].
  [[nodiscard]] std::vector<float> attention(const std::string& task, const std::string& model,
                                             std::size_t example) const;
  /// The task has eval/tokens (a text task).
  [[nodiscard]] bool hasTokens(const std::string& task) const;
  /// One example's token ids (padded to the task's length); empty for a vector task.
  [[nodiscard]] std::vector<std::int64_t> tokens(const std::string& task, std::size_t example) const;
  /// The task's vocabulary; empty when it has none.
  [[nodiscard]] std::vector<std::string> vocabulary(const std::string& task) const;
  /// One kept example's token ids as `model` itself read them (<model>/eval/tokens, padded to
  /// the task's length: a TorchScript text model's own tokenizer), or nothing when the model
  /// has none recorded for it (KDScope's models read the task's tokens()).
  [[nodiscard]] std::optional<std::vector<std::int64_t>> modelTokens(const std::string& task, const std::string& model,
                                                                     std::size_t example) const;
  /// The vocabulary modelTokens() index (<model>/vocab); empty when not recorded.
  [[nodiscard]] std::vector<std::string> modelVocabulary(const std::string& task, const std::string& model) const;
  /// eval/text; empty when not recorded.
  [[nodiscard]] std::vector<std::string> texts(const std::string& task) const;

  /// Per task and student: accuracy, gap, retained fraction, agreement, mean KL and ECE
  /// (from the eval logits, so also for runs not analysed yet) and, when the run has been
  /// analysed, their 95% intervals, the paired tests, the loss pattern, geometry agreement,
  /// the w-confidence correlation and the knowledge gains (`kdscope info`). Throws
  /// InputError for an unreadable file.
  [[nodiscard]] std::vector<TaskHeadline> headlines() const;

private:
  /// pairedTests without the Holm adjustment (mcnemarHolm NaN).
  [[nodiscard]] std::vector<PairedTest> pairedTestsAsRecorded(const std::string& task,
                                                              const std::string& student) const;

  const RunReader& m_reader;
};

} // namespace kdscope::core
