// Typed reads of /tasks/<task>/analysis and of the recorded outputs the window shows.
#include "core/analysis/analysis_results.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

namespace {

[[noreturn]] void fail(const H5File& f, const std::string& path, const std::string& what) {
  throw InputError(f.path() + ": " + path + ": " + what);
}

std::optional<analysis::Matrix> readMatrix(const H5File& f, const std::string& path) {
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 2) {
    fail(f, path, "expected a 2-D dataset, found rank " + std::to_string(shape.size()));
  }
  if (f.typeClass(path) != H5TypeClass::Float) {
    fail(f, path, "holds " + f.typeName(path) + ", expected floating point values");
  }
  const std::vector<float> values = f.readFloat(path);
  analysis::Matrix m(shape[0], shape[1]);
  std::copy(values.begin(), values.end(), m.values.begin());
  return m;
}

std::optional<std::vector<double>> readVector(const H5File& f, const std::string& path) {
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 1 || f.typeClass(path) != H5TypeClass::Float) {
    fail(f, path, "expected a 1-D float dataset");
  }
  const std::vector<float> values = f.readFloat(path);
  return std::vector<double>(values.begin(), values.end());
}

std::vector<std::int64_t> readInts(const H5File& f, const std::string& path, std::size_t rank) {
  if (!f.isDataset(path) || f.shape(path).size() != rank || f.typeClass(path) != H5TypeClass::Integer) {
    fail(f, path, "expected an integer dataset of rank " + std::to_string(rank));
  }
  return f.readInt64(path);
}

} // namespace

AnalysisResults::AnalysisResults(const RunReader& reader) : m_reader(reader) {}

bool AnalysisResults::hasAnalysis(const std::string& task) const {
  return m_reader.file().isGroup(layout::analysis(task));
}

bool AnalysisResults::analysed(const std::string& task) const {
  const H5File& f = m_reader.file();
  const std::string a = layout::analysis(task);
  return f.isGroup(a) && f.hasAttr(a, layout::attr::kStatus) && f.attrString(a, layout::attr::kStatus) == "complete";
}

std::vector<std::string> AnalysisResults::skipped(const std::string& task) const {
  const H5File& f = m_reader.file();
  const std::string a = layout::analysis(task);
  if (!f.isGroup(a) || !f.hasAttr(a, layout::attr::kSkipped)) {
    return {};
  }
  return f.attrStrings(a, layout::attr::kSkipped);
}

std::vector<std::string> AnalysisResults::modelLacks(const std::string& task, const std::string& model) const {
  const H5File& f = m_reader.file();
  const std::string m = layout::model(task, model);
  if (!f.isGroup(m) || !f.hasAttr(m, layout::attr::kModelCheck)) {
    return {};
  }
  const auto check = nlohmann::json::parse(f.attrString(m, layout::attr::kModelCheck), nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (check.is_object() && check.contains("lacks") && check["lacks"].is_array()) {
    for (const auto& line : check["lacks"]) {
      if (line.is_array() && line.size() == 2 && line[0].is_string() && line[1].is_string()) {
        out.push_back(line[0].get<std::string>() + ": " + line[1].get<std::string>());
      }
    }
  }
  return out;
}

bool AnalysisResults::has(const std::string& task, const std::string& who, const std::string& entry) const {
  return m_reader.file().exists(layout::analysisEntry(task, who, entry));
}

std::optional<analysis::Matrix> AnalysisResults::matrix(const std::string& task, const std::string& who,
                                                        const std::string& entry) const {
  return readMatrix(m_reader.file(), layout::analysisEntry(task, who, entry));
}

std::optional<std::vector<double>> AnalysisResults::vector(const std::string& task, const std::string& who,
                                                           const std::string& entry) const {
  return readVector(m_reader.file(), layout::analysisEntry(task, who, entry));
}

std::optional<double> AnalysisResults::number(const std::string& task, const std::string& who,
                                              const std::string& name) const {
  const H5File& f = m_reader.file();
  const std::string g = layout::analysisOf(task, who);
  if (!f.exists(g) || !f.hasAttr(g, name)) {
    return std::nullopt;
  }
  return f.attrDouble(g, name);
}

std::optional<analysis::Matrix> AnalysisResults::attentionEntropy(const std::string& task,
                                                                  const std::string& model) const {
  return matrix(task, model, "attention_entropy");
}

std::optional<analysis::Matrix> AnalysisResults::headImportance(const std::string& task,
                                                                const std::string& model) const {
  return matrix(task, model, "head_importance");
}

std::optional<HeadDivergence> AnalysisResults::headDivergence(const std::string& task,
                                                              const std::string& student) const {
  const H5File& f = m_reader.file();
  const std::string full = layout::analysisEntry(task, student, "head_js");
  auto best = matrix(task, student, "head_js_best_divergence");
  if (!best || !f.isDataset(full)) {
    return std::nullopt;
  }
  const auto shape = f.shape(full);
  if (shape.size() != 3 || shape[0] != best->rows || shape[1] != best->cols) {
    fail(f, full, "expected [Ls, Ht, Hs] agreeing with head_js_best_divergence [Ls, Ht]");
  }
  HeadDivergence out;
  out.bestDivergence = std::move(*best);
  out.teacherLayer = readInts(f, layout::analysisEntry(task, student, "head_js_teacher_layer"), 1);
  out.bestMatch = readInts(f, layout::analysisEntry(task, student, "head_js_best_match"), 2);
  if (out.teacherLayer.size() != shape[0] || out.bestMatch.size() != shape[0] * shape[1]) {
    fail(f, layout::analysisOf(task, student), "head_js_teacher_layer or head_js_best_match disagree with head_js");
  }
  const std::vector<float> values = f.readFloat(full);
  out.studentHeads = shape[2];
  out.full = analysis::Matrix(shape[0], shape[1] * shape[2]);
  std::copy(values.begin(), values.end(), out.full.values.begin());
  out.bestLo = matrix(task, student, layout::entry::kHeadJsBestDivergenceLo);
  out.bestHi = matrix(task, student, layout::entry::kHeadJsBestDivergenceHi);
  if (out.bestLo.has_value() != out.bestHi.has_value() ||
      (out.bestLo && (out.bestLo->rows != out.bestDivergence.rows || out.bestLo->cols != out.bestDivergence.cols ||
                      out.bestHi->rows != out.bestDivergence.rows || out.bestHi->cols != out.bestDivergence.cols))) {
    fail(f, layout::analysisEntry(task, student, layout::entry::kHeadJsBestDivergenceLo),
         "head_js_best_divergence_lo and _hi must both be there, shaped as head_js_best_divergence");
  }
  const std::string lo = layout::analysisEntry(task, student, layout::entry::kHeadJsBestDivergenceLo);
  if (out.bestLo && f.hasAttr(lo, "resamples")) {
    out.resamples = static_cast<int>(f.attrInt(lo, "resamples"));
  }
  const std::string bestPath = layout::analysisEntry(task, student, layout::entry::kHeadJsBestDivergence);
  if (f.hasAttr(bestPath, "mean_over_heads")) {
    analysis::Interval mean;
    mean.estimate = f.attrDouble(bestPath, "mean_over_heads");
    const double none = std::numeric_limits<double>::quiet_NaN();
    mean.lo = f.hasAttr(bestPath, "mean_over_heads_lo") ? f.attrDouble(bestPath, "mean_over_heads_lo") : none;
    mean.hi = f.hasAttr(bestPath, "mean_over_heads_hi") ? f.attrDouble(bestPath, "mean_over_heads_hi") : none;
    mean.resamples = out.resamples;
    mean.count = f.hasAttr(full, "examples") ? static_cast<std::size_t>(f.attrInt(full, "examples")) : 0;
    out.meanOverHeads = mean;
    out.meanOverHeadsCount = f.hasAttr(bestPath, "mean_over_heads_count")
                                 ? static_cast<std::size_t>(f.attrInt(bestPath, "mean_over_heads_count"))
                                 : 0;
  }
  return out;
}

bool AnalysisResults::hasTrainLog(const std::string& task, const std::string& model) const {
  return m_reader.file().exists(layout::trainStep(task, model));
}

bool AnalysisResults::hasEvalCurve(const std::string& task, const std::string& model) const {
  return m_reader.file().exists(layout::evalCurveColumn(task, model, "epoch"));
}

bool AnalysisResults::hasEvalLogits(const std::string& task, const std::string& model) const {
  return m_reader.file().exists(layout::evalLogits(task, model));
}

bool AnalysisResults::hasClassifier(const std::string& task, const std::string& model) const {
  return m_reader.file().exists(layout::classifierWeight(task, model));
}

std::optional<analysis::Matrix> AnalysisResults::classifierWeight(const std::string& task,
                                                                  const std::string& model) const {
  return readMatrix(m_reader.file(), layout::classifierWeight(task, model));
}

std::optional<AttentionShape> AnalysisResults::attentionShape(const std::string& task,
                                                              const std::string& model) const {
  const H5File& f = m_reader.file();
  const std::string path = layout::evalAttention(task, model);
  if (!f.isDataset(path)) {
    return std::nullopt;
  }
  const auto shape = f.shape(path);
  if (shape.size() != 5 || shape[3] != shape[4]) {
    fail(f, path, "expected shape [n_att, Lyr, H, Len, Len]");
  }
  return AttentionShape{shape[0], shape[1], shape[2], shape[3]};
}

std::vector<float> AnalysisResults::attention(const std::string& task, const std::string& model,
                                              std::size_t example) const {
  return m_reader.file().readFloat(layout::evalAttention(task, model), example, 1);
}

bool AnalysisResults::hasTokens(const std::string& task) const {
  return m_reader.file().exists(layout::evalTokens(task));
}

std::vector<std::int64_t> AnalysisResults::tokens(const std::string& task, std::size_t example) const {
  if (!hasTokens(task)) {
    return {};
  }
  return m_reader.file().readInt64(layout::evalTokens(task), example, 1);
}

std::vector<std::string> AnalysisResults::vocabulary(const std::string& task) const {
  const H5File& f = m_reader.file();
  return f.exists(layout::vocab(task)) ? f.readStrings(layout::vocab(task)) : std::vector<std::string>{};
}

std::optional<std::vector<std::int64_t>> AnalysisResults::modelTokens(const std::string& task, const std::string& model,
                                                                      std::size_t example) const {
  const H5File& f = m_reader.file();
  const std::string path = layout::evalModelTokens(task, model);
  if (!f.exists(path) || example >= f.shape(path).at(0)) {
    return std::nullopt;
  }
  return f.readInt64(path, example, 1);
}

std::vector<std::string> AnalysisResults::modelVocabulary(const std::string& task, const std::string& model) const {
  const H5File& f = m_reader.file();
  const std::string path = layout::modelVocab(task, model);
  return f.exists(path) ? f.readStrings(path) : std::vector<std::string>{};
}

std::vector<std::string> AnalysisResults::texts(const std::string& task) const {
  const H5File& f = m_reader.file();
  return f.exists(layout::evalText(task)) ? f.readStrings(layout::evalText(task)) : std::vector<std::string>{};
}

// ---- Headlines -------------------------------------------------------------------------

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
} // namespace

std::vector<TaskHeadline> AnalysisResults::headlines() const {
  const RunReader& reader = m_reader;
  const H5File& file = reader.file();
  std::vector<TaskHeadline> out;
  for (const std::string& task : reader.tasks()) {
    TaskHeadline h;
    h.task = task;
    h.analysed = analysed(task);
    const auto labels = reader.evalLabels(task);
    std::int64_t classes = 0;
    std::vector<float> teacherLogits;
    std::vector<std::string> students;
    for (const std::string& model : reader.models(task)) {
      const std::string m = layout::model(task, model);
      const std::string role = file.hasAttr(m, layout::attr::kRole) ? file.attrString(m, layout::attr::kRole) : "";
      if (role == "teacher" && file.exists(layout::evalLogits(task, model))) {
        teacherLogits = reader.evalLogits(task, model, &classes);
        h.teacherIntervals = intervals(task, model);
      } else if (role == "student") {
        students.push_back(model);
      }
    }
    // The task's paired tests, read once (one Holm family), at the first student's turn so
    // that errors keep the model order.
    std::optional<std::map<std::string, std::vector<PairedTest>>> paired;
    for (const std::string& model : students) {
      StudentHeadline s;
      s.name = model;
      const std::string m = layout::model(task, model);
      if (!teacherLogits.empty() && file.exists(layout::evalLogits(task, model))) {
        const auto logits = reader.evalLogits(task, model, &classes);
        const bool complete = std::none_of(logits.begin(), logits.end(), [](float v) { return std::isnan(v); }) &&
                              std::none_of(teacherLogits.begin(), teacherLogits.end(), [](float v) { return std::isnan(v); });
        if (complete && classes > 0 && !labels.empty()) {
          const auto c = analysis::compareTask(teacherLogits, logits, labels, static_cast<std::size_t>(classes));
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
      s.geometryAgreement = number(task, model, "geometry_agreement_weights").value_or(kNaN);
      s.wConfidenceSpearman = number(task, model, "spearman_w_confidence").value_or(kNaN);
      s.wConfidenceSpearmanInterval = numberInterval(task, model, "spearman_w_confidence");
      s.geometryAgreementProbs = numberInterval(task, model, "geometry_agreement_probs");
      s.matchedCka = matchedCka(task, model);
      s.intervals = intervals(task, model);
      if (!paired) {
        paired = pairedTestsOfTask(task);
      }
      for (PairedTest& test : (*paired)[model]) {
        if (test.otherRole == "teacher") {
          s.vsTeacher = std::move(test);
        } else {
          s.vsStudents.push_back(std::move(test));
        }
      }
      s.lossPattern = lossPattern(task, model);
      h.students.push_back(std::move(s));
    }
    const std::string k = layout::knowledge(task);
    if (const auto universe = number(task, "knowledge", "universe")) {
      h.hasKnowledge = true;
      h.knowledgeStudents = file.attrStrings(k, "students");
      h.universe = *universe;
      const auto required = [&](const char* name) {
        const auto value = number(task, "knowledge", name);
        if (!value) {
          fail(file, k, std::string("attribute '") + name + "' is missing beside 'universe'");
        }
        return *value;
      };
      h.instance = required("instance");
      h.domain = required("domain");
      h.total = required("total");
      h.lsShare = required("ls_share_of_kd_gain");
      h.matchedEpsilon = number(task, "knowledge", "ls_epsilon").value_or(kNaN);
      h.lsMatchTemperature = number(task, "knowledge", "ls_match_temperature").value_or(kNaN);
      h.universeInterval = numberInterval(task, "knowledge", "universe");
      h.instanceInterval = numberInterval(task, "knowledge", "instance");
      h.domainInterval = numberInterval(task, "knowledge", "domain");
      h.totalInterval = numberInterval(task, "knowledge", "total");
      h.lsShareInterval = numberInterval(task, "knowledge", "ls_share_of_kd_gain");
    }
    out.push_back(std::move(h));
  }
  return out;
}

} // namespace kdscope::core
