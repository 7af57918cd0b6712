#include "core/study/summary.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "core/common/error.h"
#include "core/record/run_reader.h"
#include "core/study/study_replicate_json.h"
#include "core/study/task_sensitivity_json.h"

namespace kdscope::core {

namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Json number(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

double readNumber(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) {
    return kNaN;
  }
  return j[key].get<double>();
}

std::string relativeRunFile(const std::string& cell) {
  return (fs::path("cells") / cell / "run.h5").generic_string();
}

/// The accuracy of the teacher the student learned from, from its objective attribute.
double sourceAccuracy(const std::string& objectiveJson, double finalTeacher) {
  const auto j = nlohmann::json::parse(objectiveJson, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("teacher") && j["teacher"].contains("eval_accuracy")) {
    return j["teacher"]["eval_accuracy"].get<double>();
  }
  return finalTeacher;
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) {
    return s;
  }
  std::string out = "\"";
  for (char c : s) {
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return out + "\"";
}

std::string csvNumber(double v) {
  if (!std::isfinite(v)) {
    return "";
  }
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

} // namespace

bool runFileBeingWritten(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  // RunWriter's HDF5 driver holds an exclusive flock for as long as the file is open for
  // writing (core/record/h5_driver.cpp); a shared one is refused meanwhile.
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd); // also drops the shared lock if it was granted
  return locked;
}

StudyTaskResult::StudyTaskResult()
    : teacherAccuracy(kNaN), studentAccuracy(kNaN), gap(kNaN), retained(kNaN), sourceTeacherAccuracy(kNaN),
      finalLoss(kNaN) {}

std::size_t StudySummary::completeCells() const {
  return static_cast<std::size_t>(
      std::count_if(cells.begin(), cells.end(), [](const StudyCellResult& c) { return c.status == "complete"; }));
}

int StudySummary::factorIndex(const std::string& name) const {
  for (std::size_t i = 0; i < factors.size(); ++i) {
    if (factors[i].name == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

StudyCellResult readStudyCell(const StudySpec& study, const StudyCell& cell, const std::string& outDir) {
  StudyCellResult result;
  result.name = cell.name;
  result.levels = cell.levels;
  result.runFile = relativeRunFile(cell.name);
  for (const std::string& task : study.tasks) {
    StudyTaskResult t;
    t.task = task;
    result.tasks.push_back(t);
  }
  const std::string path = (fs::path(outDir) / result.runFile).string();
  result.status = "missing";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return result;
  }
  if (runFileBeingWritten(path)) {
    result.status = "running"; // its writer holds it: opening it would fail (or read a moving file)
    return result;
  }
  try {
    const RunReader reader(path);
    const RunSummary run = reader.summary();
    result.status = run.status;
    for (StudyTaskResult& t : result.tasks) {
      const auto task =
          std::find_if(run.tasks.begin(), run.tasks.end(), [&](const TaskSummary& s) { return s.name == t.task; });
      if (task == run.tasks.end()) {
        continue;
      }
      for (const ModelSummary& model : task->models) {
        if (model.role == "teacher" && model.evalAccuracy >= 0.0) {
          t.teacherAccuracy = model.evalAccuracy;
        } else if (model.name == study.studentName) {
          if (model.evalAccuracy >= 0.0) {
            t.studentAccuracy = model.evalAccuracy;
          }
          t.finalLoss = model.trainSteps > 0 ? model.finalLoss : kNaN;
          t.trainSteps = model.trainSteps;
          t.parameters = model.parameterCount;
          t.sourceTeacherAccuracy = kNaN;
          if (model.trainSteps > 0) {
            const TrainLog log = reader.trainLog(t.task, model.name);
            for (const auto& [term, values] : log.terms) {
              if (!values.empty()) {
                t.finalTerms[term] = values.back();
              }
            }
          }
          t.sourceTeacherAccuracy = sourceAccuracy(model.objectiveJson, kNaN);
        }
      }
      if (std::isnan(t.sourceTeacherAccuracy)) {
        t.sourceTeacherAccuracy = t.teacherAccuracy;
      }
      t.gap = t.teacherAccuracy - t.studentAccuracy;
      t.retained = t.teacherAccuracy > 0.0 ? t.studentAccuracy / t.teacherAccuracy : kNaN;
    }
  } catch (const std::exception&) {
    result.status = runFileBeingWritten(path) ? "running" : "unreadable";
  }
  return result;
}

StudySummary buildStudySummary(const StudySpec& study, const std::string& outDir) {
  if (!study.replicateSeeds.empty()) {
    std::vector<StudySummary> replicates;
    for (const auto seed : study.replicateSeeds) {
      replicates.push_back(buildStudySummary(studyReplicate(study, seed), studyReplicateDir(outDir, seed)));
    }
    return combineStudyReplicates(study.replicateSeeds, replicates);
  }
  StudySummary summary;
  summary.name = study.name;
  summary.studentName = study.studentName;
  summary.factors = study.factors;
  summary.tasks = study.tasks;
  for (const StudyCell& cell : study.cells) {
    summary.cells.push_back(readStudyCell(study, cell, outDir));
  }
  summary.sensitivity = studyTaskSensitivity(study, summary, outDir);
  return summary;
}

void writeStudySummary(const StudySummary& summary, const std::string& outDir) {
  Json j = Json::object();
  j["format"] = "kdscope-study-summary";
  j["format_version"] = kStudySummaryVersion;
  j["study"] = summary.name;
  j["student"] = summary.studentName;
  j["status"] = summary.completeCells() == summary.cells.size() ? "complete" : "incomplete";
  j["factors"] = Json::array();
  for (const StudyFactor& f : summary.factors) {
    j["factors"].push_back({{"name", f.name}, {"levels", f.levels}, {"values", f.values}, {"named", f.named}});
  }
  j["tasks"] = summary.tasks;
  j["cells"] = Json::array();
  for (const StudyCellResult& cell : summary.cells) {
    Json c = Json::object();
    c["name"] = cell.name;
    c["levels"] = Json::object();
    for (std::size_t f = 0; f < summary.factors.size(); ++f) {
      c["levels"][summary.factors[f].name] = summary.factors[f].levels[cell.levels[f]];
    }
    c["status"] = cell.status;
    c["run_file"] = cell.runFile;
    c["tasks"] = Json::object();
    for (const StudyTaskResult& t : cell.tasks) {
      Json r = Json::object();
      r["teacher_accuracy"] = number(t.teacherAccuracy);
      r["student_accuracy"] = number(t.studentAccuracy);
      r["gap"] = number(t.gap);
      r["retained"] = number(t.retained);
      r["source_teacher_accuracy"] = number(t.sourceTeacherAccuracy);
      r["final_loss"] = number(t.finalLoss);
      r["train_steps"] = t.trainSteps;
      r["parameters"] = t.parameters;
      r["final_terms"] = Json::object();
      for (const auto& [term, value] : t.finalTerms) {
        r["final_terms"][term] = number(value);
      }
      c["tasks"][t.task] = r;
    }
    j["cells"].push_back(c);
  }
  j["task_sensitivity"] = taskSensitivityToJson(summary.sensitivity);
  if (!summary.replicates.empty()) {
    j["replicates"] = studyReplicateStatsToJson(summary.replicates);
  }
  const auto write = [](const fs::path& path, const std::string& text) {
    // Write beside, then rename: a reader never sees half a summary.
    const fs::path tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) {
        throw InputError(path.string() + ": cannot write the study summary");
      }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      throw InputError(path.string() + ": cannot write the study summary: " + ec.message());
    }
  };
  write(fs::path(outDir) / "study_summary.json", j.dump(2) + "\n");

  std::ostringstream csv;
  csv << "cell";
  for (const StudyFactor& f : summary.factors) {
    csv << "," << csvField(f.name);
  }
  csv << ",task,status,teacher_accuracy,student_accuracy,gap,retained,source_teacher_accuracy,final_loss,"
         "train_steps,parameters\n";
  for (const StudyCellResult& cell : summary.cells) {
    for (const StudyTaskResult& t : cell.tasks) {
      csv << csvField(cell.name);
      for (std::size_t f = 0; f < summary.factors.size(); ++f) {
        csv << "," << csvField(summary.factors[f].levels[cell.levels[f]]);
      }
      csv << "," << csvField(t.task) << "," << csvField(cell.status) << "," << csvNumber(t.teacherAccuracy) << ","
          << csvNumber(t.studentAccuracy) << "," << csvNumber(t.gap) << "," << csvNumber(t.retained) << ","
          << csvNumber(t.sourceTeacherAccuracy) << "," << csvNumber(t.finalLoss) << "," << t.trainSteps << ","
          << t.parameters << "\n";
    }
  }
  write(fs::path(outDir) / "study_summary.csv", csv.str());
}

StudySummary readStudySummary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError(path + ": cannot read the study summary");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  Json j;
  try {
    j = Json::parse(buffer.str());
  } catch (const nlohmann::detail::exception& e) {
    throw InputError(path + ": not JSON: " + e.what());
  }
  std::string at = "(root)";
  try {
    if (!j.is_object() || j.value("format", "") != "kdscope-study-summary") {
      throw InputError(path + ": not a KDScope study summary (format is not 'kdscope-study-summary')");
    }
    at = "format_version";
    if (j.at("format_version").get<int>() > kStudySummaryVersion) {
      throw InputError(path + ": format_version " + std::to_string(j["format_version"].get<int>()) +
                       " is newer than this KDScope reads (" + std::to_string(kStudySummaryVersion) + ")");
    }
    StudySummary s;
    at = "study";
    s.name = j.at("study").get<std::string>();
    s.studentName = j.value("student", std::string("student"));
    at = "factors";
    for (const Json& f : j.at("factors")) {
      StudyFactor factor;
      factor.name = f.at("name").get<std::string>();
      factor.levels = f.at("levels").get<std::vector<std::string>>();
      factor.values = f.at("values").get<std::vector<double>>();
      factor.named = f.value("named", false);
      s.factors.push_back(factor);
    }
    at = "tasks";
    s.tasks = j.at("tasks").get<std::vector<std::string>>();
    for (std::size_t c = 0; c < j.at("cells").size(); ++c) {
      at = "cells[" + std::to_string(c) + "]";
      const Json& cj = j["cells"][c];
      StudyCellResult cell;
      cell.name = cj.at("name").get<std::string>();
      cell.status = cj.at("status").get<std::string>();
      cell.runFile = cj.at("run_file").get<std::string>();
      for (const StudyFactor& f : s.factors) {
        const std::string level = cj.at("levels").at(f.name).get<std::string>();
        const auto it = std::find(f.levels.begin(), f.levels.end(), level);
        if (it == f.levels.end()) {
          throw InputError(path + ": " + at + ".levels." + f.name + ": unknown level '" + level + "'");
        }
        cell.levels.push_back(static_cast<std::size_t>(it - f.levels.begin()));
      }
      for (const std::string& task : s.tasks) {
        StudyTaskResult t;
        t.task = task;
        if (cj.at("tasks").contains(task)) {
          const Json& r = cj["tasks"][task];
          t.teacherAccuracy = readNumber(r, "teacher_accuracy");
          t.studentAccuracy = readNumber(r, "student_accuracy");
          t.gap = readNumber(r, "gap");
          t.retained = readNumber(r, "retained");
          t.sourceTeacherAccuracy = readNumber(r, "source_teacher_accuracy");
          t.finalLoss = readNumber(r, "final_loss");
          t.trainSteps = r.value("train_steps", std::int64_t{0});
          t.parameters = r.value("parameters", std::int64_t{0});
          if (r.contains("final_terms")) {
            for (const auto& [term, value] : r["final_terms"].items()) {
              t.finalTerms[term] = value.is_null() ? kNaN : value.get<double>();
            }
          }
        }
        cell.tasks.push_back(t);
      }
      s.cells.push_back(std::move(cell));
    }
    at = "task_sensitivity";
    if (j.contains("task_sensitivity")) {
      s.sensitivity = taskSensitivityFromJson(j["task_sensitivity"]);
    }
    at = "replicates";
    if (j.contains("replicates")) {
      s.replicates = studyReplicateStatsFromJson(j["replicates"]);
    }
    return s;
  } catch (const nlohmann::detail::exception& e) {
    throw InputError(path + ": " + at + ": " + e.what());
  }
}

const char* toString(StudyMetric metric) {
  switch (metric) {
  case StudyMetric::Gap:
    return "gap";
  case StudyMetric::StudentAccuracy:
    return "student_accuracy";
  case StudyMetric::Retained:
    return "retained";
  case StudyMetric::SourceGap:
    return "source_gap";
  }
  return "unknown";
}

double cellMetric(const StudySummary& summary, const StudyCellResult& cell, const std::string& task,
                  StudyMetric metric) {
  const auto value = [metric](const StudyTaskResult& t) {
    switch (metric) {
    case StudyMetric::Gap:
      return t.gap;
    case StudyMetric::StudentAccuracy:
      return t.studentAccuracy;
    case StudyMetric::Retained:
      return t.retained;
    case StudyMetric::SourceGap:
      return t.sourceTeacherAccuracy - t.studentAccuracy;
    }
    return kNaN;
  };
  if (!task.empty()) {
    for (std::size_t i = 0; i < summary.tasks.size() && i < cell.tasks.size(); ++i) {
      if (summary.tasks[i] == task) {
        return value(cell.tasks[i]);
      }
    }
    throw InputError("study '" + summary.name + "' has no task '" + task + "'");
  }
  if (cell.tasks.empty()) {
    return kNaN;
  }
  double sum = 0.0;
  for (const StudyTaskResult& t : cell.tasks) {
    sum += value(t);
  }
  return sum / static_cast<double>(cell.tasks.size());
}

namespace {

struct Accumulator {
  std::size_t count = 0;
  double sum = 0.0;
  double sumSquares = 0.0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  void add(double v) {
    ++count;
    sum += v;
    sumSquares += v * v;
    min = std::min(min, v);
    max = std::max(max, v);
  }
  [[nodiscard]] double mean() const { return count > 0 ? sum / static_cast<double>(count) : kNaN; }
  [[nodiscard]] double stddev() const {
    if (count == 0) {
      return kNaN;
    }
    const double m = mean();
    return std::sqrt(std::max(0.0, sumSquares / static_cast<double>(count) - m * m));
  }
};

} // namespace

std::vector<FactorEffect> mainEffects(const StudySummary& summary, const std::string& task, StudyMetric metric) {
  std::vector<FactorEffect> effects;
  for (std::size_t f = 0; f < summary.factors.size(); ++f) {
    const StudyFactor& factor = summary.factors[f];
    std::vector<Accumulator> acc(factor.levels.size());
    for (const StudyCellResult& cell : summary.cells) {
      if (cell.status != "complete") {
        continue;
      }
      const double v = cellMetric(summary, cell, task, metric);
      if (std::isfinite(v)) {
        acc[cell.levels[f]].add(v);
      }
    }
    FactorEffect effect;
    effect.factor = factor.name;
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    double spreadSum = 0.0;
    std::size_t spreadCount = 0;
    for (std::size_t l = 0; l < factor.levels.size(); ++l) {
      LevelStats stats;
      stats.level = factor.levels[l];
      stats.value = factor.values[l];
      stats.count = acc[l].count;
      stats.mean = acc[l].mean();
      stats.stddev = acc[l].stddev();
      stats.min = acc[l].count > 0 ? acc[l].min : kNaN;
      stats.max = acc[l].count > 0 ? acc[l].max : kNaN;
      if (stats.count > 0) {
        lo = std::min(lo, stats.mean);
        hi = std::max(hi, stats.mean);
        spreadSum += stats.stddev;
        ++spreadCount;
      }
      effect.levels.push_back(stats);
    }
    effect.effect = spreadCount > 0 ? hi - lo : kNaN;
    effect.spread = spreadCount > 0 ? spreadSum / static_cast<double>(spreadCount) : kNaN;
    effects.push_back(std::move(effect));
  }
  return effects;
}

StudyGrid studyGrid(const StudySummary& summary, const std::string& task, const std::string& rowFactor,
                    const std::string& colFactor, StudyMetric metric) {
  const int r = summary.factorIndex(rowFactor);
  if (r < 0) {
    throw InputError("study '" + summary.name + "' has no factor '" + rowFactor + "'");
  }
  const int c = colFactor.empty() ? -1 : summary.factorIndex(colFactor);
  if (!colFactor.empty() && c < 0) {
    throw InputError("study '" + summary.name + "' has no factor '" + colFactor + "'");
  }
  StudyGrid grid;
  grid.rowFactor = rowFactor;
  grid.colFactor = colFactor;
  grid.rowLevels = summary.factors[static_cast<std::size_t>(r)].levels;
  grid.rowValues = summary.factors[static_cast<std::size_t>(r)].values;
  if (c >= 0) {
    grid.colLevels = summary.factors[static_cast<std::size_t>(c)].levels;
    grid.colValues = summary.factors[static_cast<std::size_t>(c)].values;
  } else {
    grid.colLevels = {""};
    grid.colValues = {0.0};
  }
  std::vector<Accumulator> acc(grid.rowLevels.size() * grid.colLevels.size());
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status != "complete") {
      continue;
    }
    const double v = cellMetric(summary, cell, task, metric);
    if (!std::isfinite(v)) {
      continue;
    }
    const std::size_t row = cell.levels[static_cast<std::size_t>(r)];
    const std::size_t col = c >= 0 ? cell.levels[static_cast<std::size_t>(c)] : 0;
    acc[row * grid.colLevels.size() + col].add(v);
  }
  for (const Accumulator& a : acc) {
    grid.mean.push_back(a.mean());
    grid.stddev.push_back(a.stddev());
    grid.count.push_back(a.count);
  }
  return grid;
}

std::vector<TermCurve> termCurves(const StudySummary& summary, const std::string& outDir, const std::string& task,
                                  const std::string& term) {
  std::vector<TermCurve> curves;
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status != "complete") {
      continue;
    }
    const RunReader reader((fs::path(outDir) / cell.runFile).string());
    const TrainLog log = reader.trainLog(task, summary.studentName);
    TermCurve curve;
    curve.cell = cell.name;
    curve.steps = log.steps;
    if (term == "loss") {
      curve.values = log.loss;
    } else if (const auto it = log.terms.find(term); it != log.terms.end()) {
      curve.values = it->second;
    } else {
      continue;
    }
    curves.push_back(std::move(curve));
  }
  return curves;
}

std::vector<TermBand> termBands(const StudySummary& summary, const std::string& outDir, const std::string& task,
                                const std::string& term) {
  std::vector<TermBand> bands;
  const StudyReplicateStats& reps = summary.replicates;
  if (reps.empty()) {
    return bands;
  }
  const std::string first = reps.dirs.front() + "/";
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status != "complete") {
      continue;
    }
    // The combined summary names the first replicate's run file: the same cell in another
    // replicate is under that replicate's folder.
    const std::string inReplicate =
        cell.runFile.compare(0, first.size(), first) == 0 ? cell.runFile.substr(first.size()) : cell.runFile;
    std::vector<std::vector<double>> xs;
    std::vector<std::vector<double>> ys;
    for (const std::string& dir : reps.dirs) {
      const fs::path path = fs::path(outDir) / dir / inReplicate;
      if (!fs::exists(path)) {
        continue;
      }
      const TrainLog log = RunReader(path.string()).trainLog(task, summary.studentName);
      const std::vector<float>* values = &log.loss;
      if (term != "loss") {
        const auto it = log.terms.find(term);
        if (it == log.terms.end()) {
          continue;
        }
        values = &it->second;
      }
      std::vector<double> x;
      std::vector<double> y;
      for (std::size_t k = 0; k < log.steps.size() && k < values->size(); ++k) {
        x.push_back(static_cast<double>(log.steps[k]));
        y.push_back(static_cast<double>((*values)[k])); // NaN (not logged on a step): left out there
      }
      xs.push_back(std::move(x));
      ys.push_back(std::move(y));
    }
    if (xs.empty()) {
      continue;
    }
    TermBand band;
    band.cell = cell.name;
    band.replicates = xs.size();
    band.band = replicateBand(xs, ys);
    bands.push_back(std::move(band));
  }
  return bands;
}

std::vector<std::string> termNames(const StudySummary& summary, const std::string& outDir, const std::string& task) {
  std::vector<std::string> names = {"loss"};
  std::set<std::string> seen;
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status != "complete") {
      continue;
    }
    const RunReader reader((fs::path(outDir) / cell.runFile).string());
    for (const auto& [term, values] : reader.trainLog(task, summary.studentName).terms) {
      if (seen.insert(term).second) {
        names.push_back(term);
      }
    }
  }
  return names;
}

} // namespace kdscope::core
