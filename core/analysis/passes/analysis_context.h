#pragma once
// What the analysis passes share (internal to core/analysis; not a public header): the
// models as the run file records them, the writer of results, the inputs of one task and the
// context of one analysis (options, progress, cancellation, skipped analyses). The
// orchestrator (core/analysis/analyze_run.cpp) fills them; each pass
// (core/analysis/passes/*_pass.cpp) reads TaskInputs and writes through AnalysisContext::out.

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/analysis/analyze_run.h"
#include "core/analysis/cka.h"
#include "core/analysis/knowledge.h"
#include "core/analysis/metrics.h"
#include "core/analysis/runner_up.h"
#include "core/common/cancel.h"
#include "core/common/progress.h"
#include "core/job/job_spec.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"

namespace kdscope::core::passes {

namespace an = analysis;

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The logit-level objective of a student, as its objective attribute records it
/// (layout::decodeObjective; a model without the attribute is not "known").
struct ParsedObjective {
  an::LogitObjective logit;
  bool known = false;
  bool hasKd = false;
  bool pure = false; ///< only the ce and kd terms: no logit MSE, intermediate terms, augmentation, weaker teacher
  /// The temperature its epsilon was matched to the teacher at (NaN: not matched).
  double labelSmoothingMatchTemperature = kNaN;
};

/// Reads a model's objective attribute (layout::decodeObjective: throws InputError naming
/// `where` when present but undecodable).
ParsedObjective parseObjective(const std::string& text, const std::string& where);

/// What the run file holds about one model.
struct ModelRecord {
  std::string name;
  std::string role;
  std::string architectureJson;
  std::optional<ArchitectureSpec> architecture;
  ParsedObjective objective;
  std::vector<float> logits; ///< empty when absent or not fully written
  std::vector<double> probs; ///< softmax(logits), T = 1
  bool hasHidden = false;
  std::uint64_t hiddenLayers = 0; ///< Lyr + 1
  std::uint64_t hiddenWidth = 0;
  std::string pooling;
  bool hasAttention = false;
  std::uint64_t attExamples = 0;
  std::uint64_t attLayers = 0;
  std::uint64_t attHeads = 0;
  std::uint64_t attLength = 0;
  /// eval/token_counts: the model's own token count per eval example (a TorchScript model's
  /// tokenizer); empty when absent, and then eval/tokens gives the lengths.
  std::vector<std::int64_t> tokenCounts;
  bool hasClassifier = false;
  std::uint64_t classifierWidth = 0;
  /// A TorchScript model (architecture type "torchscript"): its module (the trained one for a
  /// student trained in mode 'distil') and manifest, which the heads and probes passes reload.
  bool torchScript = false;
  std::string torchScriptPath;
  std::string manifestPath;
  /// Its pre-flight check's skipped analyses (attribute model_check): analysis -> why.
  std::map<std::string, std::string> checkSkipped;
};

/// Why `m` lacks what `analysis` needs: its pre-flight check's reason when it has one (a
/// TorchScript model that returns no hidden states, say), else `fallback`.
inline std::string lackReason(const ModelRecord& m, const std::string& analysis, const std::string& fallback) {
  const auto it = m.checkSkipped.find(analysis);
  return it == m.checkSkipped.end() ? fallback : it->second + " (model '" + m.name + "', pre-flight check)";
}

/// Writes results, replacing what is there (HDF5 cannot overwrite a dataset of another shape).
class ResultWriter {
public:
  explicit ResultWriter(H5File& file) : m_file(file) {}

  void group(const std::string& path) {
    if (!m_file.exists(path)) {
      m_file.createGroup(path);
    }
  }
  void floats(const std::string& path, const std::vector<std::uint64_t>& dims, const std::vector<double>& values) {
    floats(path, dims, std::vector<float>(values.begin(), values.end()));
  }
  void floats(const std::string& path, const std::vector<std::uint64_t>& dims, const std::vector<float>& values) {
    clear(path);
    m_file.writeFloat(path, dims, values, /*compress=*/values.size() >= 4096);
  }
  void matrix(const std::string& path, const an::Matrix& m) { floats(path, {m.rows, m.cols}, m.values); }
  void ints(const std::string& path, const std::vector<std::uint64_t>& dims, const std::vector<std::int64_t>& values) {
    clear(path);
    m_file.writeInt64(path, dims, values, /*compress=*/values.size() >= 4096);
  }
  void strings(const std::string& path, const std::vector<std::string>& values) {
    clear(path);
    m_file.writeStrings(path, values);
  }
  void clear(const std::string& path) {
    if (m_file.exists(path)) {
      m_file.remove(path);
    }
  }
  template <class T> void attr(const std::string& path, const std::string& name, const T& value) {
    group(path);
    m_file.setAttr(path, name, value);
  }

private:
  H5File& m_file;
};

std::vector<std::int64_t> toInt64(const an::Matrix& m);
std::vector<std::int64_t> sizesToInt64(const std::vector<std::size_t>& v);
/// Four significant digits, for messages.
std::string formatNumber(double v);
/// The comparison of a finding with its runner-up, as attributes of the dataset at `path`
/// (docs/run-format.md, "Against the runner-up"): extreme_index, runner_up_index (row-major
/// cells of the dataset), runner_up_difference, _lo, _hi, runner_up_resamples. Nothing is
/// written when there is no runner-up (fewer than two cells).
void writeRunnerUp(ResultWriter& out, const std::string& path, const an::RunnerUp& r);

/// What every pass of one task reads: filled by the orchestrator once per task.
struct TaskInputs {
  std::string task;
  std::vector<std::int64_t> labels; ///< eval/labels
  std::size_t classes = 0;
  const ModelRecord* teacher = nullptr;       ///< has eval/logits
  std::vector<const ModelRecord*> students;   ///< with complete eval/logits
  std::vector<const ModelRecord*> models;     ///< the teacher, then the students
  /// The gradient rescaling weight w per student, the objective it was computed with and
  /// where that objective came from (its own, or the reference KD objective).
  std::map<std::string, std::vector<double>> weights;
  std::map<std::string, an::LogitObjective> weightObjectives;
  std::map<std::string, std::string> weightSources;
  std::vector<std::string> texts; ///< eval/text, or empty
};

/// The progress stage at which the passes that rerun the models (heads, probes) begin; the
/// passes before it read what the run file recorded. A task runs the two groups as two lanes
/// at once (analyze_run.cpp, "Two lanes").
inline constexpr double kModelStage = 0.55;

/// While alive on a thread, what that thread reports belongs to the lane of a task that reruns
/// the models: its progress counts from kModelStage on, and its skipped analyses are listed
/// after those of the other lane, as when the passes ran one after another.
class ModelLane {
public:
  ModelLane();
  ~ModelLane();
  ModelLane(const ModelLane&) = delete;
  ModelLane& operator=(const ModelLane&) = delete;

private:
  bool m_previous;
};

/// The state of one `analyzeRun`: what it was asked, where it writes, how it reports. The two
/// lanes of a task share it: the sink, the warnings, the skipped analyses and the progress are
/// guarded by `mutex`; the file (H5File serialises its calls) and the writer are shared, each
/// lane writing its own paths.
struct AnalysisContext {
  AnalysisContext(std::string runPath, const AnalyzeOptions& analyzeOptions, const CancelToken& cancelToken,
                  const ProgressSink& progress)
      : path(std::move(runPath)), options(analyzeOptions), cancel(cancelToken.child()), sink(progress) {
    numeric.threads = analyzeOptions.threads;
  }

  std::string path;
  const AnalyzeOptions& options;
  /// The caller's token, and cancelled on its own when one lane of a task fails (the other
  /// then stops at its next poll).
  CancelToken cancel;
  const ProgressSink& sink;
  an::CkaOptions numeric;
  std::optional<JobSpec> job;   ///< the job stored in the file, when readable
  std::string jobProblem;       ///< why not
  std::unique_ptr<ResultWriter> out;
  H5File* file = nullptr;
  std::vector<std::string> warnings;
  std::vector<std::string> taskSkipped; ///< of the current task
  std::size_t taskIndex = 0;
  std::size_t taskCount = 1;
  double fraction = 0.0;
  /// Each lane's stage within the task: the recorded-output passes' (0 .. kModelStage) and the
  /// model passes' (kModelStage .. 1); the task's progress is their sum less kModelStage.
  double recordedStage = 0.0;
  double modelStage = kModelStage;
  /// How many of taskSkipped and of warnings the model lane wrote (the last ones).
  std::size_t modelSkips = 0;
  std::size_t modelWarnings = 0;
  std::mutex mutex;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  /// The run file of options.teacherAnalysesFrom, opened read-only on first use (models pass);
  /// null when not asked or when it could not be opened (then `teacherSourceProblem` says why).
  std::unique_ptr<RunReader> teacherSource;
  bool teacherSourceTried = false;
  std::string teacherSourceProblem;

  [[nodiscard]] bool wants(const std::string& name) const;
  /// Throws Cancelled when the token is set.
  void checkCancel() const;
  void emit(ProgressEvent::Kind kind, const std::string& task, const std::string& model, const std::string& message);
  void phase(const std::string& task, const std::string& model, const std::string& message);
  /// An analysis that could not run: reported, kept for the result and for the file.
  void skip(const std::string& task, const std::string& what, const std::string& why);
  /// A task begins: no skipped analyses yet, progress at its start.
  void beginTask();
  /// Progress within the current task, 0..1: a stage of the calling thread's lane (1 ends the
  /// task).
  void advance(double stageFraction);
  /// The data cache folder: the option, else the job's data_dir (absolute, or beside the run
  /// file), else the default.
  [[nodiscard]] std::string dataDir() const;
  /// The checkpoint of a model: beside the run file, or (a loaded teacher) the job's.
  [[nodiscard]] std::string checkpointFor(const std::string& task, const std::string& model) const;
  /// The student's own layer map (its name and explicit layer list) when the job gives one,
  /// else the uniform (skip) map.
  [[nodiscard]] std::pair<std::string, std::vector<int>> layerMapOf(const std::string& student) const;
};

// ---- The passes, in the order the orchestrator runs them -------------------------------

/// "task": accuracy, fidelity, calibration, per-class recall, lost and gained examples.
void taskMetricsPass(AnalysisContext& ctx, const TaskInputs& in);
/// Also "task", after taskMetricsPass: the bootstrap interval of each task metric, the paired
/// tests (McNemar, paired bootstrap) of each student against the teacher and the other
/// students, and the loss pattern (intervals_pass.cpp).
void intervalsPass(AnalysisContext& ctx, const TaskInputs& in);
/// "knowledge": w against the teacher's confidence, class geometry, the gain decomposition.
void knowledgePass(AnalysisContext& ctx, const TaskInputs& in);
/// "cka" and "residual": layer similarity and the distillation residual from eval/hidden.
void layersPass(AnalysisContext& ctx, const TaskInputs& in);
/// "attention": entropy per head and the teacher-student head divergence from eval/attention.
void attentionPass(AnalysisContext& ctx, const TaskInputs& in);
/// "heads" and "probes": reload the checkpoints and the task's data.
void modelsPass(AnalysisContext& ctx, const TaskInputs& in);

} // namespace kdscope::core::passes
