// The analysis engine's orchestrator: run file in, /tasks/<task>/analysis/ out
// (docs/run-format.md; formulas in docs/analyses.md). It checks the file, reads each task's
// models once (passes/analysis_context.h: ModelRecord, TaskInputs), computes the gradient
// rescaling weights several passes share, then runs the passes in core/analysis/passes/ in
// order, polling cancellation between them. Torch-free: the passes that need the trained
// models go through core/analysis/model_analysis.h.
#include "core/analysis/analyze_run.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "core/analysis/metrics.h"
#include "core/analysis/model_analysis.h"
#include "core/analysis/passes/analysis_context.h"
#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/common/side_by_side.h"
#include "core/common/version.h"
#include "core/data/dataset.h"
#include "core/job/job_spec.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

namespace {

namespace fs = std::filesystem;
namespace an = analysis;
using Json = nlohmann::json;
using passes::AnalysisContext;
using passes::ModelRecord;
using passes::TaskInputs;
using passes::kNaN;

class Analyzer {
public:
  Analyzer(std::string path, const AnalyzeOptions& options, const CancelToken& cancel, const ProgressSink& sink)
      : m_ctx(std::move(path), options, cancel, sink) {}

  AnalyzeResult run();

private:
  void analyzeTask(H5File& file, const std::string& task);

  AnalysisContext m_ctx;
};

AnalyzeResult Analyzer::run() {
  AnalyzeResult result;
  auto finish = [&](AnalyzeStatus status, const std::string& message) {
    result.status = status;
    result.message = message;
    result.warnings = m_ctx.warnings;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_ctx.start).count();
    return result;
  };
  // A library's own exception (std::length_error for a size a damaged file states, say)
  // says nothing of where: the message gets the file and the task it happened in.
  std::string currentTask;
  const auto located = [&](const std::string& message) {
    if (message.find(m_ctx.path) != std::string::npos) {
      return message;
    }
    return m_ctx.path + (currentTask.empty() ? "" : ": task '" + currentTask + "'") + ": " + message;
  };
  try {
    for (const std::string& name : m_ctx.options.only) {
      const auto& known = analysisNames();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string list;
        for (const auto& k : known) {
          list += (list.empty() ? "" : ", ") + k;
        }
        throw InputError("unknown analysis '" + name + "' (known: " + list + ")");
      }
    }
    if (m_ctx.options.bootstrapResamples < 100) {
      throw InputError("bootstrap resamples must be at least 100, not " +
                       std::to_string(m_ctx.options.bootstrapResamples));
    }
    {
      // Read-only first: the reader checks format, version and shapes, and says why a file is bad.
      const RunReader reader(m_ctx.path);
      reader.validate();
      const auto status = reader.file().attrString(layout::root(), layout::attr::kStatus);
      if (status == "running" && !m_ctx.options.force) {
        throw InputError(m_ctx.path +
                         ": status is \"running\": a job is still writing it (or its process died); analyse it "
                         "anyway with --force");
      }
    }
    H5File file(m_ctx.path, H5File::Mode::ReadWrite);
    m_ctx.file = &file;
    m_ctx.out = std::make_unique<passes::ResultWriter>(file);
    if (file.hasAttr(layout::root(), layout::attr::kJob)) {
      const auto parsed = parseJob(file.attrString(layout::root(), layout::attr::kJob), m_ctx.path + " (attribute 'job')");
      if (parsed.job) {
        m_ctx.job = *parsed.job;
      } else {
        m_ctx.jobProblem = parsed.issues.empty() ? "unreadable" : parsed.issues.front().str();
      }
    } else {
      m_ctx.jobProblem = "the file has no 'job' attribute";
    }
    const auto tasks = file.exists(layout::tasks()) ? file.childrenInCreationOrder(layout::tasks()) : std::vector<std::string>{};
    m_ctx.taskCount = std::max<std::size_t>(1, tasks.size());
    for (m_ctx.taskIndex = 0; m_ctx.taskIndex < tasks.size(); ++m_ctx.taskIndex) {
      m_ctx.checkCancel();
      currentTask = tasks[m_ctx.taskIndex];
      analyzeTask(file, currentTask);
      file.flush();
    }
    m_ctx.fraction = 1.0;
    m_ctx.phase("", "", "analysis complete");
    return finish(AnalyzeStatus::Succeeded, "");
  } catch (const Cancelled&) {
    try {
      if (m_ctx.file != nullptr) {
        m_ctx.file->flush();
      }
    } catch (const std::exception&) {
    }
    return finish(AnalyzeStatus::Cancelled, "analysis cancelled");
  } catch (const InputError& e) {
    return finish(AnalyzeStatus::BadInput, e.what());
  } catch (const std::exception& e) {
    return finish(AnalyzeStatus::Failed, located(e.what()));
  } catch (...) {
    return finish(AnalyzeStatus::Failed, located("unknown error"));
  }
}

void Analyzer::analyzeTask(H5File& file, const std::string& task) {
  const auto t0 = std::chrono::steady_clock::now();
  m_ctx.beginTask();
  m_ctx.phase(task, "", "reading");
  const std::string base = layout::task(task);
  const auto classes = static_cast<std::size_t>(file.attrInt(base, layout::attr::kNumClasses));
  const std::vector<std::int64_t> labels = file.readInt64(layout::evalLabels(task));
  const std::size_t n = labels.size();

  std::vector<ModelRecord> records;
  for (const std::string& name : file.childrenInCreationOrder(layout::models(task))) {
    const std::string m = layout::model(task, name);
    ModelRecord r;
    r.name = name;
    r.role = file.hasAttr(m, layout::attr::kRole) ? file.attrString(m, layout::attr::kRole) : "";
    // A present but undecodable attribute is an error naming the file and object
    // (InputError: the analysis refuses the file), never a silent "unknown".
    if (file.hasAttr(m, layout::attr::kArchitecture)) {
      r.architectureJson = file.attrString(m, layout::attr::kArchitecture);
      // A model KDScope did not build (the Python recorder writes type "pytorch") is not an
      // error: the passes that rebuild models skip it. Malformed JSON or a KDScope type with
      // missing fields still is.
      const Json parsed = Json::parse(r.architectureJson, nullptr, /*allow_exceptions=*/false);
      const bool foreign = parsed.is_object() && parsed.contains("type") && parsed["type"].is_string() &&
                           parsed["type"] != "transformer" && parsed["type"] != "mlp";
      if (!foreign) {
        r.architecture = layout::decodeArchitecture(r.architectureJson, m_ctx.path + ": " + m);
      } else if (parsed["type"] == "torchscript") {
        r.torchScript = true;
        r.torchScriptPath = parsed.value("torchscript", std::string());
        r.manifestPath = parsed.value("manifest", std::string());
      }
    }
    if (file.hasAttr(m, layout::attr::kModelCheck)) {
      const Json check = Json::parse(file.attrString(m, layout::attr::kModelCheck), nullptr, /*allow_exceptions=*/false);
      if (check.is_object() && check.contains("skipped") && check["skipped"].is_array()) {
        for (const Json& line : check["skipped"]) {
          if (line.is_array() && line.size() == 2 && line[0].is_string() && line[1].is_string()) {
            r.checkSkipped[line[0].get<std::string>()] = line[1].get<std::string>();
          }
        }
      }
    }
    if (file.hasAttr(m, layout::attr::kObjective)) {
      r.objective = passes::parseObjective(file.attrString(m, layout::attr::kObjective), m_ctx.path + ": " + m);
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
    if (file.exists(layout::evalTokenCounts(task, name))) {
      r.tokenCounts = file.readInt64(layout::evalTokenCounts(task, name));
      if (r.tokenCounts.size() != n) {
        throw InputError(m_ctx.path + ": " + layout::evalTokenCounts(task, name) + ": " +
                         std::to_string(r.tokenCounts.size()) + " counts for " + std::to_string(n) + " eval examples");
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
    m_ctx.skip(task, "every analysis", "the task has no teacher with eval/logits");
    return;
  }
  const ModelRecord& teacher = *teacherIt;
  std::vector<const ModelRecord*> students;
  std::vector<const ModelRecord*> models{&teacher};
  for (const ModelRecord& r : records) {
    if (r.role == "student") {
      if (r.logits.empty()) {
        m_ctx.skip(task, "student '" + r.name + "'", "no complete eval/logits (the run stopped before it was evaluated)");
        continue;
      }
      students.push_back(&r);
      models.push_back(&r);
    }
  }

  const std::string a = layout::analysis(task);
  if (m_ctx.options.only.empty() && file.exists(a)) {
    file.remove(a); // a full analysis replaces every earlier result
  }
  m_ctx.out->group(a);
  m_ctx.out->attr(a, "status", "incomplete");
  m_ctx.out->attr(a, "kdscope_version", kdscopeVersion());
  m_ctx.out->attr(a, "analyses", m_ctx.options.only.empty() ? analysisNames() : m_ctx.options.only);
  {
    Json options = {{"rbf_examples", m_ctx.options.rbfExamples},
                    {"rbf_sigma_fraction", m_ctx.options.rbfSigmaFraction},
                    {"minibatch_size", m_ctx.options.minibatchSize},
                    {"probe_train_examples", m_ctx.options.probeTrainExamples},
                    {"probe_l2", m_ctx.options.probeL2},
                    {"confidence_bins", m_ctx.options.confidenceBins},
                    {"bootstrap_resamples", m_ctx.options.bootstrapResamples},
                    {"bootstrap_seed", m_ctx.options.bootstrapSeed}};
    m_ctx.out->attr(a, "options", options.dump());
  }

  // The gradient rescaling weight w of each student (also listed with lost and gained examples).
  // Students with a KD term: their own objective. Others: the reference KD objective, from
  // knowledge_controls or else the task's first KD student.
  std::optional<an::LogitObjective> reference;
  std::string referenceSource;
  if (m_ctx.job && m_ctx.job->knowledgeControls.enabled) {
    reference = an::LogitObjective{};
    reference->lambda = m_ctx.job->knowledgeControls.lambda;
    reference->temperature = m_ctx.job->knowledgeControls.temperature;
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

  TaskInputs in;
  in.task = task;
  in.labels = labels;
  in.classes = classes;
  in.teacher = &teacher;
  in.students = students;
  in.models = models;
  in.weights = std::move(weights);
  in.weightObjectives = std::move(weightObjectives);
  in.weightSources = std::move(weightSources);
  in.texts = std::move(texts);

  // Two lanes (docs/architecture.md, "Threads"): the passes that read what the run recorded,
  // mostly one thread each, and the passes that rerun the models, on every thread. They share
  // nothing but the file (H5File serialises its calls; each lane writes its own paths) and the
  // context's reports, so they run at once and the second fills the cores the first leaves
  // idle. Each result is the one the passes give run one after another.
  const auto recordedLane = [&] {
    if (m_ctx.wants("task")) {
      m_ctx.phase(task, "", "accuracy, fidelity, calibration, per-class recall, lost and gained examples");
      taskMetricsPass(m_ctx, in);
      m_ctx.checkCancel();
      m_ctx.phase(task, "", "intervals, paired tests and the loss pattern (bootstrap, B = " +
                                std::to_string(m_ctx.options.bootstrapResamples) + ")");
      intervalsPass(m_ctx, in);
    }
    m_ctx.checkCancel();
    m_ctx.advance(0.1);
    if (m_ctx.wants("knowledge")) {
      m_ctx.phase(task, "", "knowledge levels: gradient rescaling, class geometry, gain decomposition");
      knowledgePass(m_ctx, in);
    }
    m_ctx.checkCancel();
    m_ctx.advance(0.2);
    if (m_ctx.wants("cka") || m_ctx.wants("residual")) {
      layersPass(m_ctx, in);
    }
    m_ctx.checkCancel();
    m_ctx.advance(0.45);
    if (m_ctx.wants("attention")) {
      attentionPass(m_ctx, in);
    }
    m_ctx.checkCancel();
    m_ctx.advance(passes::kModelStage);
  };
  const auto modelLane = [&] {
    const passes::ModelLane lane;
    if (m_ctx.wants("heads") || m_ctx.wants("probes")) {
      modelsPass(m_ctx, in);
    }
    m_ctx.checkCancel();
  };
  const bool both = (m_ctx.wants("heads") || m_ctx.wants("probes")) &&
                    (m_ctx.wants("task") || m_ctx.wants("knowledge") || m_ctx.wants("cka") ||
                     m_ctx.wants("residual") || m_ctx.wants("attention"));
  if (both && m_ctx.options.sideBySide && m_ctx.options.threads != 1 && std::thread::hardware_concurrency() > 1) {
    // A lane that fails cancels the other (m_ctx.cancel); its error is the one reported.
    runSideBySide(recordedLane, modelLane, m_ctx.cancel);
  } else {
    recordedLane();
    modelLane();
  }
  m_ctx.out->attr(a, layout::attr::kSkipped, m_ctx.taskSkipped);
  m_ctx.out->attr(a, "seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  m_ctx.out->attr(a, "status", "complete");
  m_ctx.advance(1.0);
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
    const std::string base = layout::task(task);
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
      const std::string m = layout::model(task, model);
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
        reader.file().attrString(layout::model(task, ma.model), layout::attr::kArchitecture),
        runPath + ": " + layout::model(task, ma.model));
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
