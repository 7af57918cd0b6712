// The analysis engine: run file in, /tasks/<task>/analysis/ out (docs/run-format.md,
// "/tasks/<task>/analysis"; formulas in docs/analyses.md). Torch-free: the analyses that need
// the trained models go through core/analysis/model_analysis.h.
#include "core/analysis/analyze_run.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/analysis/attention_stats.h"
#include "core/analysis/cka.h"
#include "core/analysis/knowledge.h"
#include "core/analysis/metrics.h"
#include "core/analysis/model_analysis.h"
#include "core/analysis/probe.h"
#include "core/analysis/residual.h"
#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/job/job_spec.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"

namespace kdscope::core {

namespace {

namespace fs = std::filesystem;
namespace an = analysis;
using Json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// Eval examples of attention read at once (bounded memory for big attention tensors).
constexpr std::uint64_t kAttentionBlockBytes = 64ULL << 20U;
/// Reloaded logits must reproduce eval/logits to this (absolute + relative) tolerance.
constexpr double kLogitTolerance = 1e-3;


std::string taskGroup(const std::string& task) { return layout::task(task); }
std::string modelGroup(const std::string& task, const std::string& model) { return layout::model(task, model); }
std::string analysisGroup(const std::string& task) { return layout::analysis(task); }

std::string formatNumber(double v) {
  std::ostringstream out;
  out.precision(4);
  out << v;
  return out.str();
}

/// The logit-level objective of a student, as its objective attribute records it
/// (layout::decodeObjective; a model without the attribute is not "known").
struct ParsedObjective {
  an::LogitObjective logit;
  bool known = false;
  bool hasKd = false;
  bool pure = false; ///< only the ce and kd terms: no logit MSE, intermediate terms, augmentation, weaker teacher
};

ParsedObjective parseObjective(const std::string& text, const std::string& where) {
  const layout::RecordedObjective r = layout::decodeObjective(text, where);
  ParsedObjective out;
  out.logit.labelSmoothing = r.labelSmoothing;
  out.logit.lambda = r.lambda;
  out.logit.temperature = r.temperature;
  out.logit.tSquared = r.tSquared;
  out.logit.ptTargets = r.ptTargets;
  out.logit.logitMse = r.logitMse;
  out.hasKd = r.hasKd;
  out.pure = r.pure;
  out.known = true;
  return out;
}

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
  bool hasClassifier = false;
  std::uint64_t classifierWidth = 0;
};

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

std::vector<std::int64_t> toInt64(const an::Matrix& m) {
  std::vector<std::int64_t> out(m.values.size());
  std::transform(m.values.begin(), m.values.end(), out.begin(),
                 [](double v) { return static_cast<std::int64_t>(std::llround(v)); });
  return out;
}

std::vector<std::int64_t> sizesToInt64(const std::vector<std::size_t>& v) {
  return std::vector<std::int64_t>(v.begin(), v.end());
}

/// The four control students of the knowledge levels, by role.
struct ControlStudents {
  std::string ce;
  std::string ls;
  std::string kdpt;
  std::string kd;
  std::string source;
};

class Analyzer {
public:
  Analyzer(std::string path, const AnalyzeOptions& options, const CancelToken& cancel, const ProgressSink& sink)
      : m_path(std::move(path)), m_options(options), m_cancel(cancel), m_sink(sink) {
    m_numeric.threads = options.threads;
  }

  AnalyzeResult run();

private:
  void analyzeTask(H5File& file, const std::string& task);
  void taskMetrics(const std::string& task, const std::vector<std::int64_t>& labels, std::size_t classes,
                   const ModelRecord& teacher, const std::vector<const ModelRecord*>& students,
                   const std::map<std::string, std::vector<double>>& weights, const std::vector<std::string>& texts);
  void knowledge(const std::string& task, const std::vector<std::int64_t>& labels, std::size_t classes,
                 const ModelRecord& teacher, const std::vector<const ModelRecord*>& students,
                 const std::map<std::string, std::vector<double>>& weights,
                 const std::map<std::string, std::string>& weightSources);
  void layers(const std::string& task, const ModelRecord& teacher, const std::vector<const ModelRecord*>& students);
  void attention(const std::string& task, const ModelRecord& teacher, const std::vector<const ModelRecord*>& students);
  void modelAnalyses(const std::string& task, const std::vector<std::int64_t>& labels,
                     const std::vector<const ModelRecord*>& models);
  std::optional<ControlStudents> findControls(const std::vector<const ModelRecord*>& students) const;
  std::string checkpointFor(const std::string& task, const std::string& model) const;
  /// The student's own layer map (its name and explicit layer list) when the job gives one,
  /// else the uniform (skip) map.
  [[nodiscard]] std::pair<std::string, std::vector<int>> layerMapOf(const std::string& student) const {
    std::pair<std::string, std::vector<int>> out{"uniform", {}};
    if (m_job) {
      for (const StudentSpec& spec : allStudents(*m_job)) {
        if (spec.name == student) {
          out = {spec.objective.layerMap, spec.objective.layerList};
        }
      }
    }
    return out;
  }
  std::string dataDir() const;

  [[nodiscard]] bool wants(const std::string& name) const {
    return m_options.only.empty() ||
           std::find(m_options.only.begin(), m_options.only.end(), name) != m_options.only.end();
  }
  void checkCancel() const {
    if (m_cancel.cancelled()) {
      throw Cancelled{};
    }
  }
  void emit(ProgressEvent::Kind kind, const std::string& task, const std::string& model, const std::string& message) {
    if (!m_sink) {
      return;
    }
    ProgressEvent e;
    e.kind = kind;
    e.task = task;
    e.model = model;
    e.message = message;
    e.fraction = m_fraction;
    e.elapsedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
    m_sink(e);
  }
  void phase(const std::string& task, const std::string& model, const std::string& message) {
    emit(ProgressEvent::Kind::Phase, task, model, message);
  }
  /// An analysis that could not run: reported, kept for the result and for the file.
  void skip(const std::string& task, const std::string& what, const std::string& why) {
    const std::string line = what + ": " + why;
    m_taskSkipped.push_back(line);
    m_warnings.push_back(task + ": " + line);
    emit(ProgressEvent::Kind::Warning, task, "", "skipped " + line);
  }
  void advance(double stageFraction) {
    m_fraction = std::min(1.0, (static_cast<double>(m_taskIndex) + stageFraction) / static_cast<double>(m_taskCount));
  }

  std::string m_path;
  const AnalyzeOptions& m_options;
  const CancelToken& m_cancel;
  const ProgressSink& m_sink;
  an::CkaOptions m_numeric;
  std::optional<JobSpec> m_job;
  std::string m_jobProblem;
  std::unique_ptr<ResultWriter> m_out;
  H5File* m_file = nullptr;
  std::vector<std::string> m_warnings;
  std::vector<std::string> m_taskSkipped;
  std::size_t m_taskIndex = 0;
  std::size_t m_taskCount = 1;
  double m_fraction = 0.0;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

std::string Analyzer::dataDir() const {
  if (!m_options.dataDir.empty()) {
    return m_options.dataDir;
  }
  if (m_job && !m_job->dataDir.empty()) {
    const fs::path dir(m_job->dataDir);
    if (dir.is_absolute()) {
      return dir.string();
    }
    // The job file's folder is not recorded; try beside the run file.
    const fs::path besideRun = fs::path(m_path).parent_path() / dir;
    std::error_code ec;
    if (fs::exists(besideRun, ec)) {
      return besideRun.string();
    }
  }
  return resolveDataDir("");
}

std::string Analyzer::checkpointFor(const std::string& task, const std::string& model) const {
  const fs::path runDir = fs::absolute(fs::path(m_path)).parent_path();
  const fs::path beside = runDir / "checkpoints" / task / (model + ".pt");
  std::error_code ec;
  if (fs::exists(beside, ec) || model != "teacher" || !m_job || m_job->teacher.checkpoint.empty()) {
    return beside.string();
  }
  // A loaded teacher is not copied beside the run: use the job's checkpoint path.
  std::string path = m_job->teacher.checkpoint;
  for (auto pos = path.find("{task}"); pos != std::string::npos; pos = path.find("{task}", pos + task.size())) {
    path.replace(pos, 6, task);
  }
  if (fs::path(path).is_absolute() || fs::exists(path, ec)) {
    return path;
  }
  return (runDir / path).string();
}

std::optional<ControlStudents> Analyzer::findControls(const std::vector<const ModelRecord*>& students) const {
  std::map<std::string, const ModelRecord*> byName;
  for (const ModelRecord* s : students) {
    byName[s->name] = s;
  }
  if (byName.count("ctl-ce") && byName.count("ctl-ls") && byName.count("ctl-kdpt") && byName.count("ctl-kd")) {
    return ControlStudents{"ctl-ce", "ctl-ls", "ctl-kdpt", "ctl-kd", "knowledge_controls"};
  }
  // Otherwise recognise them by objective, among students of one architecture.
  std::vector<std::string> architectures;
  for (const ModelRecord* s : students) {
    if (std::find(architectures.begin(), architectures.end(), s->architectureJson) == architectures.end()) {
      architectures.push_back(s->architectureJson);
    }
  }
  for (const std::string& arch : architectures) {
    ControlStudents c;
    for (const ModelRecord* s : students) {
      const ParsedObjective& o = s->objective;
      if (s->architectureJson != arch || !o.known || !o.pure) {
        continue;
      }
      const an::LogitObjective& l = o.logit;
      if (!o.hasKd && l.labelSmoothing == 0.0 && c.ce.empty()) {
        c.ce = s->name;
      } else if (!o.hasKd && l.labelSmoothing > 0.0 && c.ls.empty()) {
        c.ls = s->name;
      } else if (o.hasKd && l.lambda > 0.0 && l.ptTargets && l.labelSmoothing == 0.0 && c.kdpt.empty()) {
        c.kdpt = s->name;
      } else if (o.hasKd && l.lambda > 0.0 && !l.ptTargets && l.labelSmoothing == 0.0 && c.kd.empty()) {
        c.kd = s->name;
      }
    }
    if (!c.ce.empty() && !c.ls.empty() && !c.kdpt.empty() && !c.kd.empty()) {
      c.source = "recognised from the students' objectives (same architecture; CE, LS, KD-pt, KD)";
      return c;
    }
  }
  return std::nullopt;
}

AnalyzeResult Analyzer::run() {
  AnalyzeResult result;
  auto finish = [&](AnalyzeStatus status, const std::string& message) {
    result.status = status;
    result.message = message;
    result.warnings = m_warnings;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
    return result;
  };
  try {
    for (const std::string& name : m_options.only) {
      const auto& known = analysisNames();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string list;
        for (const auto& k : known) {
          list += (list.empty() ? "" : ", ") + k;
        }
        throw InputError("unknown analysis '" + name + "' (known: " + list + ")");
      }
    }
    {
      // Read-only first: the reader checks format, version and shapes, and says why a file is bad.
      const RunReader reader(m_path);
      reader.validate();
      const auto status = reader.file().attrString(layout::root(), layout::attr::kStatus);
      if (status == "running" && !m_options.force) {
        throw InputError(m_path +
                         ": status is \"running\": a job is still writing it (or its process died); analyse it "
                         "anyway with --force");
      }
    }
    H5File file(m_path, H5File::Mode::ReadWrite);
    m_file = &file;
    m_out = std::make_unique<ResultWriter>(file);
    if (file.hasAttr(layout::root(), layout::attr::kJob)) {
      const auto parsed = parseJob(file.attrString(layout::root(), layout::attr::kJob), m_path + " (attribute 'job')");
      if (parsed.job) {
        m_job = *parsed.job;
      } else {
        m_jobProblem = parsed.issues.empty() ? "unreadable" : parsed.issues.front().str();
      }
    } else {
      m_jobProblem = "the file has no 'job' attribute";
    }
    const auto tasks = file.exists(layout::tasks()) ? file.childrenInCreationOrder(layout::tasks()) : std::vector<std::string>{};
    m_taskCount = std::max<std::size_t>(1, tasks.size());
    for (m_taskIndex = 0; m_taskIndex < tasks.size(); ++m_taskIndex) {
      checkCancel();
      analyzeTask(file, tasks[m_taskIndex]);
      file.flush();
    }
    m_fraction = 1.0;
    phase("", "", "analysis complete");
    return finish(AnalyzeStatus::Succeeded, "");
  } catch (const Cancelled&) {
    try {
      if (m_file != nullptr) {
        m_file->flush();
      }
    } catch (const std::exception&) {
    }
    return finish(AnalyzeStatus::Cancelled, "analysis cancelled");
  } catch (const InputError& e) {
    return finish(AnalyzeStatus::BadInput, e.what());
  } catch (const std::exception& e) {
    return finish(AnalyzeStatus::Failed, e.what());
  } catch (...) {
    return finish(AnalyzeStatus::Failed, "unknown error");
  }
}

void Analyzer::analyzeTask(H5File& file, const std::string& task) {
  const auto t0 = std::chrono::steady_clock::now();
  m_taskSkipped.clear();
  advance(0.0);
  phase(task, "", "reading");
  const std::string base = taskGroup(task);
  const auto classes = static_cast<std::size_t>(file.attrInt(base, layout::attr::kNumClasses));
  const std::vector<std::int64_t> labels = file.readInt64(layout::evalLabels(task));
  const std::size_t n = labels.size();

  std::vector<ModelRecord> records;
  for (const std::string& name : file.childrenInCreationOrder(layout::models(task))) {
    const std::string m = modelGroup(task, name);
    ModelRecord r;
    r.name = name;
    r.role = file.hasAttr(m, layout::attr::kRole) ? file.attrString(m, layout::attr::kRole) : "";
    // A present but undecodable attribute is an error naming the file and object
    // (InputError: the analysis refuses the file), never a silent "unknown".
    if (file.hasAttr(m, layout::attr::kArchitecture)) {
      r.architectureJson = file.attrString(m, layout::attr::kArchitecture);
      r.architecture = layout::decodeArchitecture(r.architectureJson, m_path + ": " + m);
    }
    if (file.hasAttr(m, layout::attr::kObjective)) {
      r.objective = parseObjective(file.attrString(m, layout::attr::kObjective), m_path + ": " + m);
    }
    if (file.exists(layout::evalLogits(task, name))) {
      r.logits = file.readFloat(layout::evalLogits(task, name));
      // Rows never written read as NaN (a run cut off during evaluation): no logits then.
      if (std::any_of(r.logits.begin(), r.logits.end(), [](float v) { return std::isnan(v); })) {
        r.logits.clear();
      } else {
        r.probs = an::softmax(r.logits, classes);
      }
    }
    if (file.exists(layout::evalHidden(task, name))) {
      const auto s = file.shape(layout::evalHidden(task, name));
      r.hasHidden = s.size() == 3 && s[0] == n;
      r.hiddenLayers = r.hasHidden ? s[1] : 0;
      r.hiddenWidth = r.hasHidden ? s[2] : 0;
      r.pooling = file.hasAttr(layout::evalHidden(task, name), layout::attr::kPooling) ? file.attrString(layout::evalHidden(task, name), layout::attr::kPooling) : "";
    }
    if (file.exists(layout::evalAttention(task, name)) && file.exists(layout::evalTokens(task))) {
      const auto s = file.shape(layout::evalAttention(task, name));
      r.hasAttention = s.size() == 5 && s[3] == s[4] && s[0] > 0;
      if (r.hasAttention) {
        r.attExamples = s[0];
        r.attLayers = s[1];
        r.attHeads = s[2];
        r.attLength = s[3];
      }
    }
    if (file.exists(layout::classifierWeight(task, name))) {
      const auto s = file.shape(layout::classifierWeight(task, name));
      r.hasClassifier = s.size() == 2 && s[0] == classes;
      r.classifierWidth = r.hasClassifier ? s[1] : 0;
    }
    records.push_back(std::move(r));
  }
  const auto teacherIt = std::find_if(records.begin(), records.end(), [](const ModelRecord& r) { return r.role == "teacher"; });
  if (teacherIt == records.end() || teacherIt->logits.empty()) {
    skip(task, "every analysis", "the task has no teacher with eval/logits");
    return;
  }
  const ModelRecord& teacher = *teacherIt;
  std::vector<const ModelRecord*> students;
  std::vector<const ModelRecord*> models{&teacher};
  for (const ModelRecord& r : records) {
    if (r.role == "student") {
      if (r.logits.empty()) {
        skip(task, "student '" + r.name + "'", "no complete eval/logits (the run stopped before it was evaluated)");
        continue;
      }
      students.push_back(&r);
      models.push_back(&r);
    }
  }

  const std::string a = analysisGroup(task);
  if (m_options.only.empty() && file.exists(a)) {
    file.remove(a); // a full analysis replaces every earlier result
  }
  m_out->group(a);
  m_out->attr(a, "status", "incomplete");
  m_out->attr(a, "kdscope_version", kdscopeVersion());
  m_out->attr(a, "analyses", m_options.only.empty() ? analysisNames() : m_options.only);
  {
    Json options = {{"rbf_examples", m_options.rbfExamples},
                    {"rbf_sigma_fraction", m_options.rbfSigmaFraction},
                    {"minibatch_size", m_options.minibatchSize},
                    {"probe_train_examples", m_options.probeTrainExamples},
                    {"probe_l2", m_options.probeL2},
                    {"confidence_bins", m_options.confidenceBins}};
    m_out->attr(a, "options", options.dump());
  }

  // The gradient rescaling weight w of each student (also listed with lost and gained examples).
  // Students with a KD term: their own objective. Others: the reference KD objective, from
  // knowledge_controls or else the task's first KD student.
  std::optional<an::LogitObjective> reference;
  std::string referenceSource;
  if (m_job && m_job->knowledgeControls.enabled) {
    reference = an::LogitObjective{};
    reference->lambda = m_job->knowledgeControls.lambda;
    reference->temperature = m_job->knowledgeControls.temperature;
    referenceSource = "reference KD objective of knowledge_controls";
  } else {
    for (const ModelRecord* s : students) {
      if (s->objective.known && s->objective.hasKd && s->objective.logit.lambda > 0.0) {
        reference = an::LogitObjective{};
        reference->lambda = s->objective.logit.lambda;
        reference->temperature = s->objective.logit.temperature;
        reference->tSquared = s->objective.logit.tSquared;
        referenceSource = "reference KD objective of student '" + s->name + "' (lambda, T)";
        break;
      }
    }
  }
  std::map<std::string, std::vector<double>> weights;
  std::map<std::string, std::string> weightSources;
  std::map<std::string, an::LogitObjective> weightObjectives;
  for (const ModelRecord* s : students) {
    if (s->objective.known && s->objective.hasKd) {
      weightObjectives[s->name] = s->objective.logit;
      weightSources[s->name] = "own objective";
    } else if (reference) {
      weightObjectives[s->name] = *reference;
      weightSources[s->name] = referenceSource;
    } else {
      continue;
    }
    weights[s->name] =
        an::objectiveGradRescaleWeights(teacher.logits, s->logits, labels, classes, weightObjectives[s->name]);
  }

  std::vector<std::string> texts;
  if (file.exists(layout::evalText(task))) {
    texts = file.readStrings(layout::evalText(task));
    if (texts.size() != n) {
      texts.clear();
    }
  }

  if (wants("task")) {
    phase(task, "", "accuracy, fidelity, calibration, per-class recall, lost and gained examples");
    taskMetrics(task, labels, classes, teacher, students, weights, texts);
  }
  checkCancel();
  advance(0.1);
  if (wants("knowledge")) {
    phase(task, "", "knowledge levels: gradient rescaling, class geometry, gain decomposition");
    for (const auto& [name, objective] : weightObjectives) {
      const std::string g = layout::analysisOf(task, name);
      m_out->attr(g, "w_lambda", objective.lambda);
      m_out->attr(g, "w_temperature", objective.temperature);
      m_out->attr(g, "w_t_squared", static_cast<std::int64_t>(objective.tSquared ? 1 : 0));
      m_out->attr(g, "w_label_smoothing", objective.labelSmoothing);
      m_out->attr(g, "w_logit_mse", objective.logitMse);
    }
    for (const ModelRecord* s : students) {
      if (weights.count(s->name) == 0) {
        skip(task, "knowledge/" + s->name + "/grad_rescale",
             "the student has no KD term and the job has no knowledge_controls or KD student to take lambda and T from");
      }
    }
    knowledge(task, labels, classes, teacher, students, weights, weightSources);
  }
  checkCancel();
  advance(0.2);
  if (wants("cka") || wants("residual")) {
    layers(task, teacher, students);
  }
  checkCancel();
  advance(0.45);
  if (wants("attention")) {
    attention(task, teacher, students);
  }
  checkCancel();
  advance(0.55);
  if (wants("heads") || wants("probes")) {
    modelAnalyses(task, labels, models);
  }
  checkCancel();
  m_out->attr(a, "skipped", m_taskSkipped);
  m_out->attr(a, "seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  m_out->attr(a, "status", "complete");
  advance(1.0);
}

void Analyzer::taskMetrics(const std::string& task, const std::vector<std::int64_t>& labels, std::size_t classes,
                           const ModelRecord& teacher, const std::vector<const ModelRecord*>& students,
                           const std::map<std::string, std::vector<double>>& weights,
                           const std::vector<std::string>& texts) {
  const std::string a = analysisGroup(task);
  const std::uint64_t c = classes;
  auto perModel = [&](const ModelRecord& m) {
    const std::string g = layout::analysisOf(task, m.name);
    m_out->attr(g, "accuracy", an::accuracy(m.logits, labels, classes));
    const an::CalibrationBins bins = an::calibrationBins(m.logits, labels, classes, 15);
    m_out->attr(g, "ece", bins.ece);
    m_out->floats(g + "/recall", {c}, an::perClassRecall(m.logits, labels, classes));
    m_out->ints(g + "/confusion", {c, c}, toInt64(an::confusionMatrix(m.logits, labels, classes)));
    const std::uint64_t b = bins.count.size();
    m_out->ints(g + "/calibration/count", {b}, sizesToInt64(bins.count));
    m_out->floats(g + "/calibration/mean_confidence", {b}, bins.meanConfidence);
    m_out->floats(g + "/calibration/accuracy", {b}, bins.accuracy);
    m_out->attr(g + "/calibration", "bins", "15 equal-width bins of the max softmax probability: bin b holds (b/15, (b+1)/15]");
    m_out->floats(g + "/true_class_probability", {labels.size()}, an::trueClassProbabilities(m.probs, labels, classes));
  };
  perModel(teacher);
  for (const ModelRecord* s : students) {
    perModel(*s);
    const std::string g = layout::analysisOf(task, s->name);
    const an::TaskComparison cmp = an::compareTask(teacher.logits, s->logits, labels, classes);
    m_out->attr(g, "teacher_accuracy", cmp.teacherAccuracy);
    m_out->attr(g, "gap", cmp.gap);
    m_out->attr(g, "retained_fraction", cmp.retainedFraction);
    m_out->attr(g, "agreement", cmp.agreement);
    m_out->attr(g, "mean_kl", cmp.meanKl);
    m_out->attr(g, "teacher_ece", cmp.teacherEce);

    const an::LostAndGained lg = an::lostAndGained(teacher.logits, s->logits, labels, classes);
    const auto w = weights.find(s->name);
    auto writeList = [&](const std::string& where, const std::vector<an::ExampleChange>& list) {
      const std::uint64_t k = list.size();
      std::vector<std::int64_t> index;
      std::vector<std::int64_t> label;
      std::vector<std::int64_t> predT;
      std::vector<std::int64_t> predS;
      std::vector<double> pyT;
      std::vector<double> pyS;
      std::vector<double> probsT;
      std::vector<double> probsS;
      std::vector<double> wList;
      std::vector<std::string> textList;
      for (const an::ExampleChange& e : list) {
        index.push_back(static_cast<std::int64_t>(e.index));
        label.push_back(e.label);
        predT.push_back(e.teacherPrediction);
        predS.push_back(e.studentPrediction);
        pyT.push_back(e.teacherTrueProbability);
        pyS.push_back(e.studentTrueProbability);
        probsT.insert(probsT.end(), teacher.probs.begin() + static_cast<std::ptrdiff_t>(e.index * classes),
                      teacher.probs.begin() + static_cast<std::ptrdiff_t>((e.index + 1) * classes));
        probsS.insert(probsS.end(), s->probs.begin() + static_cast<std::ptrdiff_t>(e.index * classes),
                      s->probs.begin() + static_cast<std::ptrdiff_t>((e.index + 1) * classes));
        if (w != weights.end()) {
          wList.push_back(w->second[e.index]);
        }
        if (!texts.empty()) {
          textList.push_back(texts[e.index]);
        }
      }
      const std::string p = g + "/" + where;
      m_out->ints(p + "/index", {k}, index);
      m_out->ints(p + "/label", {k}, label);
      m_out->ints(p + "/teacher_prediction", {k}, predT);
      m_out->ints(p + "/student_prediction", {k}, predS);
      m_out->floats(p + "/teacher_true_probability", {k}, pyT);
      m_out->floats(p + "/student_true_probability", {k}, pyS);
      m_out->floats(p + "/teacher_probs", {k, c}, probsT);
      m_out->floats(p + "/student_probs", {k, c}, probsS);
      if (w != weights.end()) {
        m_out->floats(p + "/grad_rescale", {k}, wList);
      }
      if (!texts.empty()) {
        m_out->strings(p + "/text", textList);
      }
      m_out->attr(p, "count", static_cast<std::int64_t>(k));
    };
    writeList("lost", lg.lost);
    writeList("gained", lg.gained);
  }
}

void Analyzer::knowledge(const std::string& task, const std::vector<std::int64_t>& labels, std::size_t classes,
                         const ModelRecord& teacher, const std::vector<const ModelRecord*>& students,
                         const std::map<std::string, std::vector<double>>& weights,
                         const std::map<std::string, std::string>& weightSources) {
  const std::string a = analysisGroup(task);
  const std::uint64_t c = classes;
  const std::vector<double> py = an::trueClassProbabilities(teacher.probs, labels, classes);
  m_out->floats(a + "/teacher/true_class_probability", {labels.size()}, py);

  // Domain: class-similarity matrices of every model, geometry agreement with the teacher.
  std::map<std::string, an::Matrix> byWeights;
  std::map<std::string, an::Matrix> byProbs;
  std::vector<const ModelRecord*> all{&teacher};
  all.insert(all.end(), students.begin(), students.end());
  for (const ModelRecord* m : all) {
    const std::string g = layout::analysisOf(task, m->name);
    if (m->hasClassifier) {
      const auto weight = m_file->readFloat(layout::classifierWeight(task, m->name));
      byWeights[m->name] = an::classSimilarityFromWeights(weight, classes, m->classifierWidth);
      m_out->matrix(g + "/class_similarity_weights", byWeights[m->name]);
    } else {
      skip(task, "knowledge/" + m->name + "/class_similarity_weights", "the model has no classifier/weight");
    }
    byProbs[m->name] = an::classSimilarityFromProbs(m->probs, labels, classes);
    m_out->matrix(g + "/class_similarity_probs", byProbs[m->name]);
  }
  for (const ModelRecord* s : students) {
    const std::string g = layout::analysisOf(task, s->name);
    double agreementWeights = kNaN;
    if (byWeights.count("teacher") && byWeights.count(s->name)) {
      agreementWeights = an::offDiagonalCorrelation(byWeights["teacher"], byWeights[s->name]);
    }
    m_out->attr(g, "geometry_agreement_weights", agreementWeights);
    m_out->attr(g, "geometry_agreement_probs", an::offDiagonalCorrelation(byProbs["teacher"], byProbs[s->name]));

    // Instance: w and its relation to the teacher's confidence.
    const auto w = weights.find(s->name);
    if (w == weights.end()) {
      continue;
    }
    m_out->floats(g + "/grad_rescale", {labels.size()}, w->second);
    m_out->attr(g + "/grad_rescale", "source", weightSources.at(s->name));
    m_out->attr(g + "/grad_rescale", "formula",
                "w = g / g_CE, g = d objective_i / d z_y = (1 - lambda)(q_y - 1 + eps (C-1)/C) + lambda (f/T)(q^T_y - "
                "p^T_y) + logit_mse 2 (z_s,y - z_t,y)/C, f = T^2 (t_squared) or 1, g_CE = q_y - 1; NaN where q_y = 1");
    const an::ConfidenceBins bins = an::binByConfidence(w->second, py, m_options.confidenceBins);
    const std::uint64_t b = bins.count.size();
    const std::string wb = g + "/w_by_confidence";
    m_out->floats(wb + "/lower", {b}, bins.lower);
    m_out->floats(wb + "/upper", {b}, bins.upper);
    m_out->ints(wb + "/count", {b}, sizesToInt64(bins.count));
    m_out->floats(wb + "/mean_w", {b}, bins.meanValue);
    m_out->floats(wb + "/mean_confidence", {b}, bins.meanConfidence);
    m_out->attr(wb, "confidence", "the teacher's p_y (T = 1); bin b holds (b/B, (b+1)/B]");
    m_out->floats(g + "/w_per_class", {c}, an::perClassMean(w->second, labels, classes));
    m_out->attr(g, "spearman_w_confidence", an::spearmanCorrelation(w->second, py));
    m_out->attr(g, "pearson_w_confidence", an::pearsonCorrelation(w->second, py));
    double sum = 0.0;
    std::size_t count = 0;
    for (double v : w->second) {
      if (!std::isnan(v)) {
        sum += v;
        ++count;
      }
    }
    m_out->attr(g, "w_mean", count > 0 ? sum / static_cast<double>(count) : kNaN);
  }

  // Universe, instance, domain: the gain decomposition from the four control students.
  const auto controls = findControls(students);
  const std::string k = layout::knowledge(task);
  if (!controls) {
    m_out->clear(k);
    skip(task, "knowledge/gain decomposition",
         "needs CE, LS, KD-pt and KD students of one architecture (set knowledge_controls in the job)");
    return;
  }
  std::map<std::string, const ModelRecord*> byName;
  for (const ModelRecord* s : students) {
    byName[s->name] = s;
  }
  const std::vector<std::string> names{controls->ce, controls->ls, controls->kdpt, controls->kd};
  std::vector<std::int64_t> correct;
  for (const std::string& name : names) {
    const auto pred = an::predictions(byName[name]->logits, classes);
    std::int64_t right = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      right += pred[i] == labels[i] ? 1 : 0;
    }
    correct.push_back(right);
  }
  const auto nd = static_cast<double>(labels.size());
  const an::GainDecomposition gains = an::gainDecomposition(
      static_cast<double>(correct[0]) / nd, static_cast<double>(correct[1]) / nd, static_cast<double>(correct[2]) / nd,
      static_cast<double>(correct[3]) / nd);
  m_out->clear(k);
  m_out->group(k);
  m_out->attr(k, "students", names);
  m_out->attr(k, "roles", std::vector<std::string>{"CE", "LS", "KD-pt", "KD"});
  m_out->attr(k, "source", controls->source);
  m_out->attr(k, "acc_ce", static_cast<double>(correct[0]) / nd);
  m_out->attr(k, "acc_ls", static_cast<double>(correct[1]) / nd);
  m_out->attr(k, "acc_kdpt", static_cast<double>(correct[2]) / nd);
  m_out->attr(k, "acc_kd", static_cast<double>(correct[3]) / nd);
  m_out->attr(k, "universe", gains.universe);
  m_out->attr(k, "instance", gains.instance);
  m_out->attr(k, "domain", gains.domain);
  m_out->attr(k, "total", gains.total);
  m_out->attr(k, "ls_share_of_kd_gain", gains.lsShareOfKdGain);
  // Exact integer forms: correct examples, so that the levels add up with no rounding.
  m_out->attr(k, "examples", static_cast<std::int64_t>(labels.size()));
  m_out->attr(k, "correct_ce", correct[0]);
  m_out->attr(k, "correct_ls", correct[1]);
  m_out->attr(k, "correct_kdpt", correct[2]);
  m_out->attr(k, "correct_kd", correct[3]);
  m_out->attr(k, "universe_examples", correct[1] - correct[0]);
  m_out->attr(k, "instance_examples", correct[2] - correct[1]);
  m_out->attr(k, "domain_examples", correct[3] - correct[2]);
  m_out->attr(k, "total_examples", correct[3] - correct[0]);
  m_out->attr(k, "ls_epsilon", byName[controls->ls]->objective.logit.labelSmoothing);
  m_out->attr(k, "matched_epsilon_eval", an::matchedLabelSmoothingEpsilon(teacher.probs, labels, classes));
  std::vector<double> agreementWeights;
  std::vector<double> agreementProbs;
  std::vector<double> spearman;
  for (const std::string& name : names) {
    agreementWeights.push_back(byWeights.count("teacher") && byWeights.count(name)
                                   ? an::offDiagonalCorrelation(byWeights["teacher"], byWeights[name])
                                   : kNaN);
    agreementProbs.push_back(an::offDiagonalCorrelation(byProbs["teacher"], byProbs[name]));
    const auto w = weights.find(name);
    spearman.push_back(w != weights.end() ? an::spearmanCorrelation(w->second, py) : kNaN);
  }
  m_out->floats(k + "/geometry_agreement_weights", {4}, agreementWeights);
  m_out->floats(k + "/geometry_agreement_probs", {4}, agreementProbs);
  m_out->floats(k + "/spearman_w_confidence", {4}, spearman);
}

void Analyzer::layers(const std::string& task, const ModelRecord& teacher, const std::vector<const ModelRecord*>& students) {
  const std::string a = analysisGroup(task);
  if (!teacher.hasHidden) {
    skip(task, "cka, residual", "the teacher has no eval/hidden (recording.hidden was off)");
    return;
  }
  const std::vector<float> hiddenT = m_file->readFloat(layout::evalHidden(task, "teacher"));
  const std::size_t lt = teacher.hiddenLayers;
  const std::size_t dt = teacher.hiddenWidth;
  std::size_t done = 0;
  for (const ModelRecord* s : students) {
    checkCancel();
    advance(0.2 + 0.25 * static_cast<double>(done++) / static_cast<double>(std::max<std::size_t>(1, students.size())));
    if (!s->hasHidden) {
      skip(task, "cka, residual/" + s->name, "the student has no eval/hidden");
      continue;
    }
    const std::vector<float> hiddenS = m_file->readFloat(layout::evalHidden(task, s->name));
    const std::size_t ls = s->hiddenLayers;
    const std::size_t ds = s->hiddenWidth;
    const std::string g = layout::analysisOf(task, s->name);
    const std::string pooling = teacher.pooling.empty() ? "as recorded" : teacher.pooling;
    if (wants("cka")) {
      phase(task, s->name, "linear CKA, " + std::to_string(lt) + " x " + std::to_string(ls) + " layer pairs");
      m_out->matrix(g + "/cka", an::ckaMatrix(hiddenT, lt, dt, hiddenS, ls, ds, m_numeric));
      m_out->attr(g + "/cka", "pooling", pooling);
      m_out->attr(g + "/cka", "layer0", "embedding output");
      m_out->attr(g + "/cka", "formula", "||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F), columns centred, float64");
      const std::size_t n = hiddenT.size() / (lt * dt);
      if (m_options.rbfExamples > 0) {
        checkCancel();
        const std::size_t used = std::min(n, m_options.rbfExamples);
        phase(task, s->name, "RBF CKA on " + std::to_string(used) + " examples");
        m_out->matrix(g + "/cka_rbf", an::rbfCkaMatrix(hiddenT, lt, dt, hiddenS, ls, ds, m_options.rbfSigmaFraction,
                                                       m_options.rbfExamples, m_numeric));
        m_out->attr(g + "/cka_rbf", "sigma_fraction", m_options.rbfSigmaFraction);
        m_out->attr(g + "/cka_rbf", "examples", static_cast<std::int64_t>(used));
        m_out->attr(g + "/cka_rbf", "rows", "the first eval examples (the eval split is in shuffled order)");
      }
      if (m_options.minibatchSize >= 4 && n >= m_options.minibatchSize) {
        checkCancel();
        phase(task, s->name, "minibatch CKA (unbiased HSIC), batches of " + std::to_string(m_options.minibatchSize));
        m_out->matrix(g + "/cka_minibatch", an::minibatchCkaMatrix(hiddenT, lt, dt, hiddenS, ls, ds,
                                                                   m_options.minibatchSize, m_numeric));
        m_out->attr(g + "/cka_minibatch", "batch_size", static_cast<std::int64_t>(m_options.minibatchSize));
        m_out->attr(g + "/cka_minibatch", "batches", static_cast<std::int64_t>(n / m_options.minibatchSize));
      } else if (m_options.minibatchSize > 0) {
        skip(task, "cka_minibatch/" + s->name, "fewer eval examples than one minibatch");
      }
    }
    if (wants("residual")) {
      checkCancel();
      const auto [map, list] = layerMapOf(s->name);
      const an::LayerPairing pairing =
          an::layerPairing(map, static_cast<int>(lt) - 1, static_cast<int>(ls) - 1, list);
      phase(task, s->name, "distillation residual of the mapped layer pairs (" + map + " map)");
      std::vector<std::int64_t> teacherLayer;
      std::vector<double> mse;
      std::vector<double> unexplained;
      std::vector<double> cosine;
      std::vector<double> directMse;
      std::vector<double> directCosine;
      an::ResidualOptions ro;
      ro.threads = m_options.threads;
      for (std::size_t i = 0; i < pairing.hidden.size(); ++i) {
        const int j = pairing.hidden[i];
        teacherLayer.push_back(j);
        an::LayerResidual r;
        if (j >= 0) {
          r = an::layerResidual(hiddenS, ls, ds, i, hiddenT, lt, dt, static_cast<std::size_t>(j), ro);
        }
        mse.push_back(r.mse);
        unexplained.push_back(r.unexplained);
        cosine.push_back(r.cosineDistance);
        directMse.push_back(r.directMse);
        directCosine.push_back(r.directCosineDistance);
      }
      const std::uint64_t k = teacherLayer.size();
      const std::string r = g + "/residual";
      m_out->ints(r + "/teacher_layer", {k}, teacherLayer);
      m_out->floats(r + "/mse", {k}, mse);
      m_out->floats(r + "/unexplained", {k}, unexplained);
      m_out->floats(r + "/cosine_distance", {k}, cosine);
      if (ds == dt) {
        m_out->floats(r + "/direct_mse", {k}, directMse);
        m_out->floats(r + "/direct_cosine_distance", {k}, directCosine);
      }
      m_out->attr(r, "map", map);
      m_out->attr(r, "fit", "least-squares affine map from the student's pooled eval/hidden layer to the teacher's "
                            "mapped layer, fitted on the eval examples themselves (in-sample)");
    }
  }
}

void Analyzer::attention(const std::string& task, const ModelRecord& teacher, const std::vector<const ModelRecord*>& students) {
  const std::string a = analysisGroup(task);
  std::vector<const ModelRecord*> withMaps;
  if (teacher.hasAttention) {
    withMaps.push_back(&teacher);
  }
  for (const ModelRecord* s : students) {
    if (s->hasAttention) {
      withMaps.push_back(s);
    }
  }
  if (withMaps.empty()) {
    skip(task, "attention", "no model has eval/attention (vector task, or recording.attention_examples = 0)");
    return;
  }
  const std::vector<std::int64_t> tokens = m_file->readInt64(layout::evalTokens(task));
  const auto shape = m_file->shape(layout::evalTokens(task));
  const std::size_t len = shape.size() == 2 ? shape[1] : 0;
  auto lengthsOf = [&](std::size_t first, std::size_t count) {
    std::vector<std::size_t> lengths(count, 0);
    for (std::size_t e = 0; e < count; ++e) {
      const std::int64_t* row = tokens.data() + (first + e) * len;
      std::size_t l = 0;
      while (l < len && row[l] != 0) {
        ++l;
      }
      lengths[e] = l;
    }
    return lengths;
  };
  // Examples per read block, and the pooled weight (counted rows) of each block.
  auto blockSize = [](const ModelRecord& m) {
    const std::uint64_t perExample = m.attLayers * m.attHeads * m.attLength * m.attLength * sizeof(float);
    return static_cast<std::size_t>(std::max<std::uint64_t>(1, kAttentionBlockBytes / std::max<std::uint64_t>(1, perExample)));
  };
  auto rowsOf = [](const std::vector<std::size_t>& lengths) {
    double rows = 0.0;
    for (std::size_t l : lengths) {
      rows += static_cast<double>(l);
    }
    return rows;
  };

  // Entropy per head of every model with maps.
  for (const ModelRecord* m : withMaps) {
    checkCancel();
    if (m->attLength != len) {
      skip(task, "attention/" + m->name, "eval/attention's length differs from eval/tokens'");
      continue;
    }
    phase(task, m->name, "attention entropy per head");
    const std::size_t L = m->attLayers;
    const std::size_t H = m->attHeads;
    std::vector<double> sum(L * H, 0.0);
    std::vector<double> weight(L * H, 0.0);
    const std::size_t block = blockSize(*m);
    for (std::size_t first = 0; first < m->attExamples; first += block) {
      const std::size_t count = std::min<std::size_t>(block, m->attExamples - first);
      const std::vector<float> maps = m_file->readFloat(layout::evalAttention(task, m->name), first, count);
      const auto lengths = lengthsOf(first, count);
      const double rows = rowsOf(lengths);
      if (rows == 0.0) {
        continue;
      }
      for (std::size_t l = 0; l < L; ++l) {
        const auto view = an::AttentionLayer::fromLayers(maps, L, l, H, len);
        const auto entropy = an::attentionEntropy(view, lengths);
        for (std::size_t h = 0; h < H; ++h) {
          sum[l * H + h] += entropy[h] * rows;
          weight[l * H + h] += rows;
        }
      }
    }
    std::vector<double> entropy(L * H, kNaN);
    for (std::size_t i = 0; i < L * H; ++i) {
      if (weight[i] > 0.0) {
        entropy[i] = sum[i] / weight[i];
      }
    }
    const std::string g = layout::analysisOf(task, m->name);
    m_out->floats(g + "/attention_entropy", {L, H}, entropy);
    m_out->attr(g + "/attention_entropy", "examples", static_cast<std::int64_t>(m->attExamples));
    m_out->attr(g + "/attention_entropy", "unit", "nats; mean over the recorded examples' non-padding query rows");
  }

  // Teacher-student head divergence over the mapped attention blocks.
  if (!teacher.hasAttention || teacher.attLength != len) {
    skip(task, "attention/head_js", "the teacher has no usable eval/attention");
    return;
  }
  for (const ModelRecord* s : students) {
    checkCancel();
    if (!s->hasAttention || s->attLength != len) {
      continue;
    }
    phase(task, s->name, "teacher-student head divergence (Jensen-Shannon)");
    const auto [map, list] = layerMapOf(s->name);
    const an::LayerPairing pairing =
        an::layerPairing(map, static_cast<int>(teacher.attLayers), static_cast<int>(s->attLayers), list);
    const std::size_t ls = s->attLayers;
    const std::size_t ht = teacher.attHeads;
    const std::size_t hs = s->attHeads;
    const std::size_t examples = std::min(teacher.attExamples, s->attExamples);
    std::vector<double> js(ls * ht * hs, 0.0);
    std::vector<double> averaged(ls, 0.0);
    double totalRows = 0.0;
    const std::size_t block = std::min(blockSize(teacher), blockSize(*s));
    for (std::size_t first = 0; first < examples; first += block) {
      const std::size_t count = std::min<std::size_t>(block, examples - first);
      const auto mapsT = m_file->readFloat(layout::evalAttention(task, "teacher"), first, count);
      const auto mapsS = m_file->readFloat(layout::evalAttention(task, s->name), first, count);
      const auto lengths = lengthsOf(first, count);
      const double rows = rowsOf(lengths);
      if (rows == 0.0) {
        continue;
      }
      totalRows += rows;
      for (std::size_t i = 0; i < ls; ++i) {
        const int j = pairing.attention[i];
        if (j < 0) {
          continue;
        }
        const auto viewT = an::AttentionLayer::fromLayers(mapsT, teacher.attLayers, static_cast<std::size_t>(j), ht, len);
        const auto viewS = an::AttentionLayer::fromLayers(mapsS, s->attLayers, i, hs, len);
        const an::Matrix m = an::jsDivergenceMatrix(viewT, viewS, lengths, m_options.threads);
        for (std::size_t k = 0; k < ht * hs; ++k) {
          js[i * ht * hs + k] += m.values[k] * rows;
        }
        averaged[i] += an::headAveragedJsDivergence(viewT, viewS, lengths) * rows;
      }
    }
    std::vector<std::int64_t> teacherBlock;
    std::vector<std::int64_t> best(ls * ht, -1);
    std::vector<double> bestValue(ls * ht, kNaN);
    for (std::size_t i = 0; i < ls; ++i) {
      const int j = pairing.attention[i];
      teacherBlock.push_back(j);
      for (std::size_t k = 0; k < ht * hs; ++k) {
        js[i * ht * hs + k] = (j >= 0 && totalRows > 0.0) ? js[i * ht * hs + k] / totalRows : kNaN;
      }
      averaged[i] = (j >= 0 && totalRows > 0.0) ? averaged[i] / totalRows : kNaN;
      an::Matrix m(ht, hs);
      std::copy_n(js.begin() + static_cast<std::ptrdiff_t>(i * ht * hs), ht * hs, m.values.begin());
      const auto matches = an::bestMatch(m);
      for (std::size_t h = 0; h < ht; ++h) {
        if (matches[h].studentHead != an::HeadMatch::kNone) {
          best[i * ht + h] = static_cast<std::int64_t>(matches[h].studentHead);
          bestValue[i * ht + h] = matches[h].divergence;
        }
      }
    }
    const std::string g = layout::analysisOf(task, s->name);
    m_out->floats(g + "/head_js", {ls, ht, hs}, js);
    m_out->ints(g + "/head_js_teacher_layer", {ls}, teacherBlock);
    m_out->ints(g + "/head_js_best_match", {ls, ht}, best);
    m_out->floats(g + "/head_js_best_divergence", {ls, ht}, bestValue);
    m_out->floats(g + "/head_js_head_averaged", {ls}, averaged);
    m_out->attr(g + "/head_js", "map", map);
    m_out->attr(g + "/head_js", "examples", static_cast<std::int64_t>(examples));
    m_out->attr(g + "/head_js", "unit", "nats (at most ln 2); mean over the non-padding query rows of the recorded examples");
  }
}

void Analyzer::modelAnalyses(const std::string& task, const std::vector<std::int64_t>& labels,
                             const std::vector<const ModelRecord*>& models) {
  const std::string a = analysisGroup(task);
  const std::string what = wants("heads") && wants("probes") ? "heads, probes" : (wants("heads") ? "heads" : "probes");
  if (!m_job) {
    skip(task, what, "the job stored in the file cannot be read (" + m_jobProblem + "), so the data cannot be reloaded");
    return;
  }
  const auto spec = std::find_if(m_job->tasks.begin(), m_job->tasks.end(),
                                 [&](const TaskSpec& t) { return t.name == task; });
  if (spec == m_job->tasks.end()) {
    skip(task, what, "the job has no task of this name");
    return;
  }
  // Models without attention (MLPs) have no heads: one line for a task where none has any.
  const bool anyHeads = std::any_of(models.begin(), models.end(), [](const ModelRecord* m) {
    return m->architecture && m->architecture->type == "transformer";
  });
  if (wants("heads") && !anyHeads) {
    skip(task, "heads", "no model has attention heads (MLP models)");
  }
  // Reload the task only when some model has a checkpoint.
  std::vector<std::pair<const ModelRecord*, std::string>> available;
  for (const ModelRecord* m : models) {
    const std::string path = checkpointFor(task, m->name);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      skip(task, what + "/" + m->name, "checkpoint '" + path + "' not found");
    } else if (!m->architecture) {
      skip(task, what + "/" + m->name, "the model's architecture attribute cannot be read");
    } else {
      available.emplace_back(m, path);
    }
  }
  if (available.empty()) {
    return;
  }
  phase(task, "", "reloading the task's data");
  TaskData data;
  try {
    data = loadTask(*spec, dataDir(), m_job->seed);
  } catch (const InputError& e) {
    skip(task, what, std::string("the data cannot be reloaded: ") + e.what());
    return;
  }
  if (data.eval.labels != labels) {
    std::size_t first = 0;
    while (first < labels.size() && first < data.eval.labels.size() && data.eval.labels[first] == labels[first]) {
      ++first;
    }
    skip(task, what,
         "the reloaded eval split differs from the run's (eval labels differ at example " + std::to_string(first) +
             "; " + std::to_string(data.eval.labels.size()) + " vs " + std::to_string(labels.size()) + " examples)");
    return;
  }
  if (data.kind == TaskKind::Text && m_file->exists(layout::evalTokens(task)) &&
      m_file->readInt64(layout::evalTokens(task)) != data.eval.tokens) {
    skip(task, what, "the reloaded eval split's tokens differ from the run's eval/tokens");
    return;
  }
  // Probes train on the first rows of the (shuffled) train split.
  std::vector<std::int64_t> trainRows;
  const std::size_t trainCount = m_options.probeTrainExamples > 0
                                     ? std::min(data.train.size(), m_options.probeTrainExamples)
                                     : data.train.size();
  for (std::size_t i = 0; i < trainCount; ++i) {
    trainRows.push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> trainLabels(data.train.labels.begin(),
                                        data.train.labels.begin() + static_cast<std::ptrdiff_t>(trainCount));
  std::vector<std::int64_t> evalRows;
  for (std::size_t i = 0; i < data.eval.size(); ++i) {
    evalRows.push_back(static_cast<std::int64_t>(i));
  }
  const std::size_t classes = static_cast<std::size_t>(data.numClasses());

  std::size_t done = 0;
  for (const auto& [m, path] : available) {
    checkCancel();
    advance(0.55 + 0.45 * static_cast<double>(done++) / static_cast<double>(available.size()));
    const std::string g = layout::analysisOf(task, m->name);
    std::optional<an::ModelHandle> handle;
    try {
      handle.emplace(*m->architecture, data, path);
    } catch (const InputError& e) {
      skip(task, what + "/" + m->name, e.what());
      continue;
    }
    // The checkpoint must be the model the run recorded.
    const std::vector<float> logits = handle->logits(data, data.eval);
    double worst = 0.0;
    for (std::size_t i = 0; i < logits.size() && i < m->logits.size(); ++i) {
      const double d = std::abs(static_cast<double>(logits[i]) - m->logits[i]);
      worst = std::max(worst, d / (1.0 + std::abs(static_cast<double>(m->logits[i]))));
    }
    if (logits.size() != m->logits.size() || !(worst <= kLogitTolerance)) {
      skip(task, what + "/" + m->name,
           "checkpoint '" + path + "' does not reproduce the recorded eval/logits (relative difference up to " +
               formatNumber(worst) + ")");
      continue;
    }
    if (wants("heads")) {
      if (handle->heads() <= 0) {
        if (anyHeads) {
          skip(task, "heads/" + m->name, "the model has no attention heads");
        }
      } else {
        phase(task, m->name, "head importance (gradient of a head gate) and single-head ablation");
        const an::HeadScores scores = handle->headScores(data, data.eval, m_cancel);
        checkCancel();
        const std::vector<std::uint64_t> dims{scores.layers, scores.heads};
        m_out->floats(g + "/head_importance", dims, scores.normalisedImportance);
        m_out->attr(g + "/head_importance", "normalisation", "each layer divided by its L2 norm (Michel et al. 2019)");
        m_out->floats(g + "/head_importance_raw", dims, scores.importance);
        m_out->attr(g + "/head_importance_raw", "formula",
                    "mean over eval examples of |dL_i/d xi_h|, L_i cross-entropy in nats, gates xi = 1");
        m_out->floats(g + "/head_ablation_accuracy", dims, scores.ablationAccuracy);
        m_out->floats(g + "/head_ablation_loss", dims, scores.ablationLoss);
        m_out->attr(g + "/head_ablation_accuracy", "intact", scores.accuracy);
        m_out->attr(g + "/head_ablation_loss", "intact", scores.loss);
      }
    }
    if (wants("probes")) {
      phase(task, m->name, "linear probes per layer (" + std::to_string(trainCount) + " train examples)");
      const std::string pooling = m->pooling.empty() ? (m_job ? m_job->recording.pooling : "mean") : m->pooling;
      const an::PooledStates train = handle->pooledStates(data, data.train, trainRows, pooling);
      const an::PooledStates eval = handle->pooledStates(data, data.eval, evalRows, pooling);
      const std::size_t L = train.layers;
      const std::size_t D = train.width;
      std::vector<double> accuracy(L, kNaN);
      std::vector<double> trainAccuracy(L, kNaN);
      std::vector<double> depth(L, 0.0);
      std::vector<std::int64_t> converged(L, 0);
      an::ProbeOptions po;
      po.l2 = m_options.probeL2;
      po.threads = m_options.threads;
      auto layerOf = [&](const an::PooledStates& states, std::size_t l) {
        std::vector<float> out(states.rows * D);
        for (std::size_t r = 0; r < states.rows; ++r) {
          std::copy_n(states.values.begin() + static_cast<std::ptrdiff_t>((r * L + l) * D), D,
                      out.begin() + static_cast<std::ptrdiff_t>(r * D));
        }
        return out;
      };
      for (std::size_t l = 0; l < L; ++l) {
        checkCancel();
        const std::vector<float> xTrain = layerOf(train, l);
        const std::vector<float> xEval = layerOf(eval, l);
        const an::LinearProbe probe = an::fitProbe(xTrain, D, trainLabels, classes, po);
        accuracy[l] = an::probeAccuracy(probe, xEval, data.eval.labels);
        trainAccuracy[l] = an::probeAccuracy(probe, xTrain, trainLabels);
        depth[l] = L > 1 ? static_cast<double>(l) / static_cast<double>(L - 1) : 0.0;
        converged[l] = probe.converged ? 1 : 0;
      }
      m_out->floats(g + "/probe_accuracy", {L}, accuracy);
      m_out->floats(g + "/probe_train_accuracy", {L}, trainAccuracy);
      m_out->floats(g + "/probe_relative_depth", {L}, depth);
      m_out->ints(g + "/probe_converged", {L}, converged);
      m_out->attr(g + "/probe_accuracy", "l2", m_options.probeL2);
      m_out->attr(g + "/probe_accuracy", "train_examples", static_cast<std::int64_t>(trainCount));
      m_out->attr(g + "/probe_accuracy", "pooling", pooling);
      m_out->attr(g + "/probe_accuracy", "layer0", "embedding output");
    }
  }
}

} // namespace

const std::vector<std::string>& analysisNames() {
  static const std::vector<std::string> names{"task", "cka", "residual", "probes", "heads", "attention", "knowledge"};
  return names;
}

AnalyzeResult analyzeRun(const std::string& runPath, const AnalyzeOptions& options, const CancelToken& cancel,
                         const ProgressSink& progress) {
  Analyzer analyzer(runPath, options, cancel, progress);
  return analyzer.run();
}

// ---- Headlines -------------------------------------------------------------------------

std::vector<TaskHeadline> readHeadlines(const RunReader& reader) {
  const H5File& file = reader.file();
  std::vector<TaskHeadline> out;
  for (const std::string& task : reader.tasks()) {
    TaskHeadline h;
    h.task = task;
    const std::string a = analysisGroup(task);
    h.analysed = file.exists(a) && file.hasAttr(a, layout::attr::kStatus) && file.attrString(a, layout::attr::kStatus) == "complete";
    const auto labels = reader.evalLabels(task);
    std::int64_t classes = 0;
    std::vector<float> teacherLogits;
    std::vector<std::string> students;
    for (const std::string& model : reader.models(task)) {
      const std::string m = modelGroup(task, model);
      const std::string role = file.hasAttr(m, layout::attr::kRole) ? file.attrString(m, layout::attr::kRole) : "";
      if (role == "teacher" && file.exists(layout::evalLogits(task, model))) {
        teacherLogits = reader.evalLogits(task, model, &classes);
      } else if (role == "student") {
        students.push_back(model);
      }
    }
    for (const std::string& model : students) {
      StudentHeadline s;
      s.name = model;
      const std::string m = modelGroup(task, model);
      if (!teacherLogits.empty() && file.exists(layout::evalLogits(task, model))) {
        const auto logits = reader.evalLogits(task, model, &classes);
        const bool complete = std::none_of(logits.begin(), logits.end(), [](float v) { return std::isnan(v); }) &&
                              std::none_of(teacherLogits.begin(), teacherLogits.end(), [](float v) { return std::isnan(v); });
        if (complete && classes > 0 && !labels.empty()) {
          const auto c = an::compareTask(teacherLogits, logits, labels, static_cast<std::size_t>(classes));
          s.teacherAccuracy = c.teacherAccuracy;
          s.accuracy = c.studentAccuracy;
          s.gap = c.gap;
          s.retainedFraction = c.retainedFraction;
          s.agreement = c.agreement;
          s.meanKl = c.meanKl;
          s.teacherEce = c.teacherEce;
          s.ece = c.studentEce;
        }
      }
      const std::string g = layout::analysisOf(task, model);
      if (file.exists(g)) {
        if (file.hasAttr(g, "geometry_agreement_weights")) {
          s.geometryAgreement = file.attrDouble(g, "geometry_agreement_weights");
        }
        if (file.hasAttr(g, "spearman_w_confidence")) {
          s.wConfidenceSpearman = file.attrDouble(g, "spearman_w_confidence");
        }
      }
      h.students.push_back(std::move(s));
    }
    const std::string k = layout::knowledge(task);
    if (file.exists(k) && file.hasAttr(k, "universe")) {
      h.hasKnowledge = true;
      h.knowledgeStudents = file.attrStrings(k, "students");
      h.universe = file.attrDouble(k, "universe");
      h.instance = file.attrDouble(k, "instance");
      h.domain = file.attrDouble(k, "domain");
      h.total = file.attrDouble(k, "total");
      h.lsShare = file.attrDouble(k, "ls_share_of_kd_gain");
      h.matchedEpsilon = file.hasAttr(k, "ls_epsilon") ? file.attrDouble(k, "ls_epsilon") : kNaN;
    }
    out.push_back(std::move(h));
  }
  return out;
}

// ---- Browsing attention ----------------------------------------------------------------

ExampleAttentionView browseAttention(const std::string& runPath, const std::string& task, std::size_t example,
                                     const std::vector<std::string>& models, const std::string& dataDirOverride,
                                     bool forceRecompute) {
  ExampleAttentionView view;
  view.task = task;
  view.example = example;
  std::vector<std::string> vocab;
  std::vector<std::int64_t> tokenRow;
  std::optional<JobSpec> job;
  {
    const RunReader reader(runPath);
    const H5File& file = reader.file();
    const std::string base = taskGroup(task);
    if (!file.exists(base)) {
      throw InputError(runPath + ": no task '" + task + "'");
    }
    if (!file.exists(layout::evalTokens(task))) {
      throw InputError(runPath + ": task '" + task + "' has no tokens, so no attention maps");
    }
    const auto shape = file.shape(layout::evalTokens(task));
    if (example >= shape[0]) {
      throw InputError(runPath + ": task '" + task + "' has " + std::to_string(shape[0]) + " eval examples, not " +
                       std::to_string(example + 1));
    }
    tokenRow = file.readInt64(layout::evalTokens(task), example, 1);
    if (file.exists(layout::vocab(task))) {
      vocab = file.readStrings(layout::vocab(task));
    }
    if (file.exists(layout::evalText(task))) {
      const auto texts = file.readStrings(layout::evalText(task));
      view.text = example < texts.size() ? texts[example] : "";
    }
    if (file.hasAttr(layout::root(), layout::attr::kJob)) {
      const auto parsed = parseJob(file.attrString(layout::root(), layout::attr::kJob));
      if (parsed.job) {
        job = *parsed.job;
      }
    }
    for (const std::string& model : models) {
      const std::string m = modelGroup(task, model);
      if (!file.exists(m)) {
        throw InputError(runPath + ": task '" + task + "' has no model '" + model + "'");
      }
      ModelAttention ma;
      ma.model = model;
      if (!forceRecompute && file.exists(layout::evalAttention(task, model))) {
        const auto s = file.shape(layout::evalAttention(task, model));
        if (s.size() == 5 && example < s[0]) {
          ma.source = "recorded";
          ma.layers = s[1];
          ma.heads = s[2];
          ma.length = s[3];
          ma.maps = file.readFloat(layout::evalAttention(task, model), example, 1);
        }
      }
      view.models.push_back(std::move(ma));
    }
  }
  for (std::int64_t id : tokenRow) {
    if (id == 0) {
      break;
    }
    view.tokens.push_back(id >= 0 && static_cast<std::size_t>(id) < vocab.size() ? vocab[static_cast<std::size_t>(id)]
                                                                                : "#" + std::to_string(id));
  }
  const bool needModels = std::any_of(view.models.begin(), view.models.end(),
                                      [](const ModelAttention& m) { return m.source.empty(); });
  if (!needModels) {
    return view;
  }
  if (!job) {
    throw InputError(runPath + ": the stored job cannot be read, so example " + std::to_string(example) +
                     " cannot be recomputed");
  }
  const auto spec = std::find_if(job->tasks.begin(), job->tasks.end(), [&](const TaskSpec& t) { return t.name == task; });
  if (spec == job->tasks.end()) {
    throw InputError(runPath + ": the job has no task '" + task + "'");
  }
  std::string dir = dataDirOverride;
  if (dir.empty()) {
    dir = job->dataDir.empty() || fs::path(job->dataDir).is_relative() ? resolveDataDir("") : job->dataDir;
  }
  const TaskData data = loadTask(*spec, dir, job->seed);
  const std::size_t len = static_cast<std::size_t>(data.seqLen);
  if (example >= data.eval.size() ||
      !std::equal(tokenRow.begin(), tokenRow.end(), data.eval.tokens.begin() + static_cast<std::ptrdiff_t>(example * len))) {
    throw InputError(runPath + ": the reloaded data's example " + std::to_string(example) + " differs from the run's");
  }
  const fs::path runDir = fs::absolute(fs::path(runPath)).parent_path();
  const RunReader reader(runPath);
  for (ModelAttention& ma : view.models) {
    if (!ma.source.empty()) {
      continue;
    }
    const ArchitectureSpec arch = layout::decodeArchitecture(
        reader.file().attrString(modelGroup(task, ma.model), layout::attr::kArchitecture),
        runPath + ": " + modelGroup(task, ma.model));
    const an::ModelHandle handle(arch, data, (runDir / "checkpoints" / task / (ma.model + ".pt")).string());
    const an::ExampleAttention maps = handle.attention(data, data.eval, example);
    ma.source = "recomputed";
    ma.layers = maps.layers;
    ma.heads = maps.heads;
    ma.length = maps.length;
    ma.maps = maps.maps;
  }
  return view;
}

} // namespace kdscope::core
