// Study files: reading, validation and grid expansion (docs/studies.md).
//
// The study's own keys are checked here; everything a job knows (tasks, teacher, the
// student's architecture, training, objective, augmentation, recording) is checked by
// parseJob on each cell's job, and its issues are mapped back onto study paths: a value
// that came from the grid is reported at its grid entry, the rest at the study's student.

#include "core/study/study_spec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/job/diagnostics.h"

namespace kdscope::core {

namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

/// The grid's factors in their fixed order.
const std::vector<std::string>& factorOrder() {
  static const std::vector<std::string> order = {"layers",      "heads",  "objective",   "temperature",
                                                 "lambda",      "augmentation", "teacher_epoch"};
  return order;
}

const std::vector<std::string>& studyKeys() {
  static const std::vector<std::string> keys = {"name",    "seed",    "data_dir", "cache_teacher_outputs",
                                                "teacher_cache_budget_mb", "tasks", "teacher", "student",
                                                "grid",    "recording", "analyze", "replicates", "replicate_seed",
                                                "reuse_teacher_analyses"};
  return keys;
}

/// Keys copied verbatim from the study into every job.
const std::vector<std::string>& jobKeys() {
  static const std::vector<std::string> keys = {"seed",  "data_dir", "cache_teacher_outputs",
                                                "teacher_cache_budget_mb", "tasks", "teacher", "recording",
                                                "analyze", "replicates", "replicate_seed"};
  return keys;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += (out.empty() ? "" : ", ") + n;
  }
  return out;
}

/// Shortest text that reads back as the same double, without a trailing ".0".
std::string formatNumber(double value) {
  std::string text = Json(value).dump();
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) {
    text.resize(text.size() - 2);
  }
  return text;
}

bool validPresetName(const std::string& name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

/// One factor as read: its levels as JSON values (numbers, or preset objects by name).
struct FactorLevels {
  std::string name;
  std::vector<std::string> labels; ///< display text
  std::vector<Json> values;        ///< the number, or the preset object
};

class StudyReader {
public:
  StudyReader(std::string sourceName, std::string baseDir)
      : m_source(std::move(sourceName)), m_baseDir(std::move(baseDir)) {}

  StudyParseResult read(const Json& root) {
    StudyParseResult result;
    if (!root.is_object()) {
      m_issues.push_back({m_source, std::string("a study must be a JSON object, got ") + root.type_name()});
      result.issues = m_issues;
      return result;
    }
    StudySpec study;
    study.baseDir = m_baseDir;
    // Studies train KDScope models in mode "train"; TorchScript models (modes "compare" and
    // "distil", docs/models.md) are refused at their field with the reason.
    const std::string onlyKdscope = "studies take KDScope's own models only (a study has no mode); to use a "
                                    "TorchScript model run a job with \"mode\": \"compare\" or \"distil\" "
                                    "(docs/models.md, docs/studies.md)";
    for (const char* part : {"teacher", "student"}) {
      if (root.contains(part) && root[part].is_object()) {
        for (const char* key : {"torchscript", "manifest"}) {
          if (root[part].contains(key)) {
            issue(std::string(part) + "." + key, onlyKdscope);
          }
        }
      }
    }
    for (const auto& [key, value] : root.items()) {
      if (key == "mode") {
        issue(key, onlyKdscope);
        continue;
      }
      if (std::find(studyKeys().begin(), studyKeys().end(), key) == studyKeys().end()) {
        std::string message = "unknown field";
        if (const auto match = closestMatch(key, studyKeys())) {
          message += " (did you mean '" + *match + "'?)";
        } else {
          message += " (known fields: " + joinNames(studyKeys()) + ")";
        }
        issue(key, message);
      }
    }
    if (root.contains("name")) {
      if (!root["name"].is_string() || root["name"].get<std::string>().empty()) {
        issue("name", "must be a non-empty string");
      } else {
        study.name = root["name"].get<std::string>();
      }
    }
    if (root.contains("reuse_teacher_analyses")) {
      if (!root["reuse_teacher_analyses"].is_boolean()) {
        issue("reuse_teacher_analyses",
              std::string("must be true or false, got ") + root["reuse_teacher_analyses"].type_name());
      } else {
        study.reuseTeacherAnalyses = root["reuse_teacher_analyses"].get<bool>();
      }
    }
    Json student = Json::object();
    if (root.contains("student")) {
      if (!root["student"].is_object()) {
        issue("student", std::string("must be an object, got ") + root["student"].type_name());
      } else {
        student = root["student"];
      }
    }
    if (student.contains("name")) {
      if (student["name"].is_string()) {
        study.studentName = student["name"].get<std::string>();
      }
    } else {
      student["name"] = study.studentName;
    }
    std::vector<FactorLevels> factors;
    if (root.contains("grid")) {
      factors = readGrid(root["grid"]);
    }
    if (!root.contains("tasks")) {
      issue("tasks", "required field is missing (list at least one task)");
    }
    if (!m_issues.empty()) {
      result.issues = m_issues;
      return result;
    }

    // The job fields every cell shares; relative paths made absolute against the study's
    // folder, because cell jobs resolve theirs against the cell's folder.
    Json base = Json::object();
    base["name"] = study.name;
    for (const std::string& key : jobKeys()) {
      if (root.contains(key)) {
        base[key] = root[key];
      }
    }
    absolutise(base, "data_dir");
    // Tasks read from files: their paths are relative to the study file, not to the cells.
    if (base.contains("tasks") && base["tasks"].is_array()) {
      for (Json& task : base["tasks"]) {
        if (task.is_object()) {
          for (const char* key : {"file", "eval_file", "label_file", "vocab"}) {
            absolutise(task, key);
          }
        }
      }
    }
    bool teacherHasCheckpoint = false;
    if (base.contains("teacher") && base["teacher"].is_object() && base["teacher"].contains("checkpoint")) {
      absolutise(base["teacher"], "checkpoint");
      teacherHasCheckpoint =
          base["teacher"]["checkpoint"].is_string() && !base["teacher"]["checkpoint"].get<std::string>().empty();
    }

    // Expand the grid: row-major, last factor fastest.
    std::size_t cellCount = 1;
    for (const auto& f : factors) {
      cellCount *= f.values.size();
    }
    std::map<std::string, std::pair<JobIssue, std::string>> firstSeen; // key -> issue, first cell
    std::map<std::string, std::size_t> seenCount;
    std::vector<std::string> issueOrder;
    bool anyEarlierTeacher = false;
    for (std::size_t c = 0; c < cellCount; ++c) {
      StudyCell cell;
      std::size_t rest = c;
      cell.levels.assign(factors.size(), 0);
      for (std::size_t f = factors.size(); f-- > 0;) {
        cell.levels[f] = rest % factors[f].values.size();
        rest /= factors[f].values.size();
      }
      Json s = student;
      std::vector<std::string> parts;
      std::map<std::string, std::string> gridPaths; // job path -> grid path of the value
      for (std::size_t f = 0; f < factors.size(); ++f) {
        applyFactor(factors[f], cell.levels[f], s, parts, gridPaths);
      }
      cell.name = parts.empty() ? std::string("base") : joinWith(parts, "_");
      Json job = base;
      job["name"] = study.name + "-" + cell.name;
      job["students"] = Json::array({s});
      if (!teacherHasCheckpoint) {
        if (!job.contains("teacher") || !job["teacher"].is_object()) {
          if (!job.contains("teacher")) {
            job["teacher"] = Json::object();
          }
        }
        if (job["teacher"].is_object()) {
          // The study's teacher job writes OUT/teacher/checkpoints/<task>/teacher.pt; a cell
          // runs in OUT/cells/<cell>.
          job["teacher"]["checkpoint"] = "../../teacher/checkpoints/{task}/teacher.pt";
        }
      }
      JobParseResult parsed = parseJob(job.dump(), m_source);
      // Cells load the study's teacher from a checkpoint, so the job parser cannot know its
      // epochs: check teacher_epoch against the teacher the study trains here.
      if (parsed.job && !teacherHasCheckpoint &&
          parsed.job->students.front().teacherEpoch > parsed.job->teacher.training.epochs) {
        parsed.issues.push_back({"students[0].teacher_epoch",
                                 "the teacher trains for " + std::to_string(parsed.job->teacher.training.epochs) +
                                     " epochs, so there is no checkpoint after epoch " +
                                     std::to_string(parsed.job->students.front().teacherEpoch)});
        parsed.job.reset();
      }
      for (const JobIssue& raw : parsed.issues) {
        JobIssue mapped = mapIssue(raw, gridPaths, teacherHasCheckpoint);
        const std::string key = mapped.path + "\n" + mapped.message;
        if (seenCount[key]++ == 0) {
          firstSeen.emplace(key, std::make_pair(mapped, cell.name));
          issueOrder.push_back(key);
        }
      }
      if (parsed.job) {
        cell.job = *parsed.job;
        anyEarlierTeacher = anyEarlierTeacher || cell.job.students.front().teacherEpoch > 0;
      }
      study.cells.push_back(std::move(cell));
    }
    for (const std::string& key : issueOrder) {
      JobIssue issue = firstSeen.at(key).first;
      const std::size_t count = seenCount.at(key);
      if (count < cellCount) {
        issue.message += " (in cell " + firstSeen.at(key).second +
                         (count > 1 ? " and " + std::to_string(count - 1) + " more" : std::string()) + ")";
      }
      m_issues.push_back(std::move(issue));
    }
    // Cell names must be unique (two levels that print alike, e.g. 0.5 and 0.50, would
    // share a folder).
    std::set<std::string> names;
    for (const StudyCell& cell : study.cells) {
      if (!names.insert(cell.name).second) {
        m_issues.push_back({"grid", "two cells would share the name '" + cell.name + "'; make the levels distinct"});
        break;
      }
    }
    if (!m_issues.empty()) {
      result.issues = m_issues;
      return result;
    }

    // The teacher-only job: the study's job fields, no students.
    if (!teacherHasCheckpoint) {
      Json teacherJob = base;
      teacherJob["name"] = study.name + "-teacher";
      if (!teacherJob.contains("teacher")) {
        teacherJob["teacher"] = Json::object();
      }
      if (anyEarlierTeacher) {
        teacherJob["teacher"]["epoch_checkpoints"] = true;
      }
      const JobParseResult parsed = parseJob(teacherJob.dump(), m_source);
      if (!parsed.job) {
        for (const auto& i : parsed.issues) {
          m_issues.push_back(i);
        }
        result.issues = m_issues;
        return result;
      }
      study.teacherJob = *parsed.job;
    }
    for (const auto& task : study.cells.front().job.tasks) {
      study.tasks.push_back(task.name);
    }
    // Replicates: every cell (and the teacher job) runs once per seed; the parser checked
    // the field in every cell's job, which all carry the same value.
    study.replicateSeeds = study.cells.front().job.replicateSeeds();
    const int teacherEpochs = study.cells.front().job.teacher.training.epochs;
    for (const auto& f : factors) {
      StudyFactor factor;
      factor.name = f.name;
      factor.levels = f.labels;
      factor.named = f.name == "objective" || f.name == "augmentation";
      for (std::size_t i = 0; i < f.values.size(); ++i) {
        if (factor.named) {
          factor.values.push_back(static_cast<double>(i));
        } else if (f.name == "teacher_epoch" && f.values[i].get<double>() == 0.0) {
          factor.values.push_back(teacherHasCheckpoint ? 0.0 : static_cast<double>(teacherEpochs));
        } else {
          factor.values.push_back(f.values[i].get<double>());
        }
      }
      study.factors.push_back(std::move(factor));
    }
    study.normalizedJson = root.dump(2);
    result.study = std::move(study);
    return result;
  }

private:
  void issue(const std::string& path, const std::string& message) { m_issues.push_back({path, message}); }

  static std::string joinWith(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (const auto& p : parts) {
      out += (out.empty() ? "" : sep) + p;
    }
    return out;
  }

  void absolutise(Json& object, const char* key) {
    if (!object.contains(key) || !object[key].is_string() || m_baseDir.empty()) {
      return;
    }
    const std::string value = object[key].get<std::string>();
    if (!value.empty() && !fs::path(value).is_absolute()) {
      object[key] = (fs::path(m_baseDir) / value).lexically_normal().string();
    }
  }

  std::vector<FactorLevels> readGrid(const Json& grid) {
    std::vector<FactorLevels> factors;
    if (!grid.is_object()) {
      issue("grid", std::string("must be an object, got ") + grid.type_name());
      return factors;
    }
    for (const auto& [key, value] : grid.items()) {
      if (std::find(factorOrder().begin(), factorOrder().end(), key) == factorOrder().end()) {
        std::string message = "unknown factor";
        if (const auto match = closestMatch(key, factorOrder())) {
          message += " (did you mean '" + *match + "'?)";
        } else {
          message += " (known factors: " + joinNames(factorOrder()) + ")";
        }
        issue("grid." + key, message);
      }
    }
    for (const std::string& name : factorOrder()) {
      if (!grid.contains(name)) {
        continue;
      }
      const Json& value = grid[name];
      const std::string path = "grid." + name;
      FactorLevels factor;
      factor.name = name;
      if (name == "objective" || name == "augmentation") {
        if (!value.is_object() || value.empty()) {
          issue(path, "must be a non-empty object of named presets, e.g. {\"kd\": {\"lambda\": 0.5}}");
          continue;
        }
        for (const auto& [preset, body] : value.items()) {
          if (!validPresetName(preset)) {
            issue(path + "." + preset, "preset names use only letters, digits, '_', '-' and '.'");
          } else if (!body.is_object()) {
            issue(path + "." + preset, std::string("must be an object, got ") + body.type_name());
          } else {
            factor.labels.push_back(preset);
            factor.values.push_back(body);
          }
        }
      } else {
        const bool integer = name == "layers" || name == "heads" || name == "teacher_epoch";
        if (!value.is_array() || value.empty()) {
          issue(path, std::string("must be a non-empty array of ") + (integer ? "integers" : "numbers"));
          continue;
        }
        std::set<double> seen;
        for (std::size_t i = 0; i < value.size(); ++i) {
          const Json& v = value[i];
          const std::string at = path + "[" + std::to_string(i) + "]";
          if (!v.is_number() || (integer && v.get<double>() != std::floor(v.get<double>()))) {
            issue(at, std::string("must be ") + (integer ? "an integer" : "a number") + ", got " +
                          (v.is_number() ? v.dump() : std::string(v.type_name())));
            continue;
          }
          const double d = v.get<double>();
          if (!seen.insert(d).second) {
            issue(at, "duplicate level " + formatNumber(d));
            continue;
          }
          factor.labels.push_back(name == "teacher_epoch" && d == 0.0 ? std::string("final") : formatNumber(d));
          factor.values.push_back(integer ? Json(static_cast<std::int64_t>(d)) : Json(d));
        }
      }
      if (!factor.values.empty()) {
        factors.push_back(std::move(factor));
      }
    }
    return factors;
  }

  /// Writes one factor's level into the student and names it; records where the value
  /// came from so that the job parser's issues about it point at the grid.
  static void applyFactor(const FactorLevels& factor, std::size_t level, Json& student,
                          std::vector<std::string>& parts, std::map<std::string, std::string>& gridPaths) {
    const Json& value = factor.values[level];
    const std::string label = factor.labels[level];
    const std::string at = "grid." + factor.name;
    const auto ensure = [&student](const char* key) -> Json& {
      if (!student.contains(key) || !student[key].is_object()) {
        student[key] = Json::object();
      }
      return student[key];
    };
    const std::string indexed = at + "[" + std::to_string(level) + "]";
    if (factor.name == "layers") {
      ensure("architecture")["layers"] = value;
      gridPaths["students[0].architecture.layers"] = indexed;
      parts.push_back("L" + label);
    } else if (factor.name == "heads") {
      ensure("architecture")["heads"] = value;
      gridPaths["students[0].architecture.heads"] = indexed;
      parts.push_back("H" + label);
    } else if (factor.name == "temperature") {
      ensure("objective")["temperature"] = value;
      gridPaths["students[0].objective.temperature"] = indexed;
      parts.push_back("T" + label);
    } else if (factor.name == "lambda") {
      ensure("objective")["lambda"] = value;
      gridPaths["students[0].objective.lambda"] = indexed;
      parts.push_back("lam" + label);
    } else if (factor.name == "teacher_epoch") {
      student["teacher_epoch"] = value;
      gridPaths["students[0].teacher_epoch"] = indexed;
      parts.push_back(label == "final" ? std::string("te-final") : "te" + label);
    } else {
      // Named presets are merged (JSON merge patch) into the student's object of that name.
      Json& target = ensure(factor.name.c_str());
      target.merge_patch(value);
      for (const auto& [key, v] : value.items()) {
        gridPaths["students[0]." + factor.name + "." + key] = at + "." + label + "." + key;
      }
      parts.push_back(factor.name == "augmentation" ? "aug-" + label : label);
    }
  }

  static JobIssue mapIssue(const JobIssue& raw, const std::map<std::string, std::string>& gridPaths,
                           bool /*teacherHasCheckpoint*/) {
    JobIssue out = raw;
    // The longest job path with a grid origin that is the issue's path or encloses it.
    for (std::string p = raw.path; !p.empty();) {
      if (const auto it = gridPaths.find(p); it != gridPaths.end()) {
        out.path = it->second + raw.path.substr(p.size());
        return out;
      }
      const std::size_t cut = p.find_last_of(".[");
      p = cut == std::string::npos ? std::string() : p.substr(0, cut);
    }
    const std::string prefix = "students[0]";
    if (raw.path.rfind(prefix, 0) == 0) {
      out.path = "student" + raw.path.substr(prefix.size());
    }
    return out;
  }

  std::string m_source;
  std::string m_baseDir;
  std::vector<JobIssue> m_issues;
};

} // namespace

StudyParseResult parseStudy(const std::string& jsonText, const std::string& sourceName, const std::string& baseDir) {
  StudyParseResult result;
  try {
    Json root;
    try {
      root = Json::parse(jsonText, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const nlohmann::detail::exception&) {
      // The job parser words syntax errors with the file, line and column.
      result.issues = parseJob(jsonText, sourceName).issues;
      if (result.issues.empty()) {
        result.issues.push_back({sourceName, "syntax error"});
      }
      return result;
    }
    StudyReader reader(sourceName, baseDir);
    result = reader.read(root);
  } catch (const std::exception& e) {
    result.study.reset();
    result.issues.push_back({sourceName, std::string("internal error while reading the study: ") + e.what()});
  }
  return result;
}

StudyParseResult loadStudyFile(const std::string& path) {
  std::error_code ec;
  const fs::path file(path);
  if (!fs::exists(file, ec) || fs::is_directory(file, ec)) {
    StudyParseResult result;
    result.issues.push_back({path, fs::exists(file, ec) ? "cannot read file (it is a directory)"
                                                       : "cannot read file (no such file)"});
    return result;
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in) {
    StudyParseResult result;
    result.issues.push_back({path, "cannot read file (permission denied or read error)"});
    return result;
  }
  const fs::path absolute = fs::absolute(file, ec);
  const std::string baseDir = (ec ? file.parent_path() : absolute.parent_path()).lexically_normal().string();
  return parseStudy(buffer.str(), path, baseDir);
}

std::string studyCellDir(const std::string& outDir, const std::string& cellName) {
  return (fs::path(outDir) / "cells" / cellName).string();
}

std::string studyTeacherDir(const std::string& outDir) {
  return (fs::path(outDir) / "teacher").string();
}

std::optional<std::size_t> findStudyCell(const StudySpec& study, const std::string& indexOrName) {
  const std::size_t units = studyUnitCount(study);
  for (std::size_t i = 0; i < units; ++i) {
    if (studyUnitName(study, i) == indexOrName) {
      return i;
    }
  }
  if (indexOrName.empty() || indexOrName.size() > 9 ||
      !std::all_of(indexOrName.begin(), indexOrName.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const std::size_t index = std::stoul(indexOrName);
  if (index >= units) {
    return std::nullopt;
  }
  return index;
}

std::string studyReplicateDir(const std::string& outDir, std::uint64_t seed) {
  return (fs::path(outDir) / ("rep-" + std::to_string(seed))).string();
}

StudySpec studyReplicate(const StudySpec& study, std::uint64_t seed) {
  StudySpec one = study;
  one.replicateSeeds.clear();
  const auto pin = [seed](JobSpec& job) {
    job.replicates.clear();
    job.replicateCount = 0;
    job.replicateSeed = seed;
  };
  for (StudyCell& cell : one.cells) {
    pin(cell.job);
  }
  if (one.teacherJob) {
    pin(*one.teacherJob);
  }
  return one;
}

std::size_t studyUnitCount(const StudySpec& study) {
  return study.cells.size() * std::max<std::size_t>(1, study.replicateSeeds.size());
}

std::string studyUnitName(const StudySpec& study, std::size_t index) {
  if (study.replicateSeeds.empty()) {
    return study.cells.at(index).name;
  }
  const std::size_t reps = study.replicateSeeds.size();
  return study.cells.at(index / reps).name + "/rep-" + std::to_string(study.replicateSeeds[index % reps]);
}

JobSpec cellJobForRun(const StudySpec& /*study*/, const StudyCell& cell, const std::string& outDir) {
  JobSpec job = cell.job;
  std::error_code ec;
  const fs::path dir = fs::absolute(studyCellDir(outDir, cell.name), ec);
  job.baseDir = (ec ? fs::path(studyCellDir(outDir, cell.name)) : dir).lexically_normal().string();
  return job;
}

} // namespace kdscope::core
