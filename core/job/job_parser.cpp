// parseJob, loadJobFile and jobToJson (job_spec.h; docs/job-format.md), in three parts:
//
//   json_reader.{h,cpp}     the generic JSON reader: parsing (nesting limit, duplicate keys,
//                           syntax errors at file:line:column), typed reads, unknown keys,
//                           bounds, issues in document order;
//   job_fields.{h,cpp}      one field table per section of a job, which reads the document
//                           into a JobSpec, writes the normalised job, and holds each field's
//                           bound;
//   job_validation.{h,cpp}  the bounds, section by section, and the rules between fields.
//
// Two passes over the document: reading (unknown keys and wrong JSON types), then
// validation (ranges and rules that tie fields together). Every issue names a JSON path;
// at the end the issues are sorted by where their path sits in the document, so the user
// reads them top to bottom. Nothing here throws out of parseJob, loadJobFile or jobToJson.

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/job/job_fields.h"
#include "core/job/job_spec.h"
#include "core/data/task_source.h"
#include "core/job/job_validation.h"
#include "core/job/json_reader.h"

namespace kdscope::core {

JobParseResult parseJob(const std::string& jsonText, const std::string& sourceName) {
  JobParseResult result;
  try {
    json::JsonDocument document = json::parseJsonText(jsonText, sourceName);
    if (document.error) {
      result.issues.push_back(std::move(*document.error));
      return result;
    }
    if (!document.root.is_object()) {
      result.issues.push_back(
          JobIssue{sourceName, std::string("a job must be a JSON object, got ") + document.root.type_name()});
      return result;
    }
    json::JsonReader reader;
    JobSpec job = jobfields::readJob(reader, document.root);
    for (const std::string& path : document.duplicateKeys) {
      reader.issue(path, "duplicate key: it appears more than once in the same object");
    }
    validateJob(job, document.root, reader);
    result.issues = reader.takeIssues();
    if (result.issues.empty()) {
      // knowledge_controls adds its students to the list, so that the normalised job (and the
      // run file's record of it) names every student it trains.
      job.students = allStudents(job);
      result.normalizedJson = jobToJson(job);
      result.job = std::move(job);
    }
  } catch (const std::exception& error) {
    // Only allocation failures and the like can get here; the contract is "never throws".
    result.job.reset();
    result.normalizedJson.clear();
    result.issues.push_back(
        JobIssue{sourceName, std::string("internal error while reading the job: ") + error.what()});
  }
  return result;
}

JobParseResult loadJobFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file(path);
  std::string reason;
  if (!fs::exists(file, ec)) {
    reason = "no such file";
  } else if (fs::is_directory(file, ec)) {
    reason = "it is a directory";
  }
  std::string text;
  if (reason.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream buffer;
    if (in) {
      buffer << in.rdbuf();
    }
    if (!in || in.bad()) {
      reason = "permission denied or read error";
    }
    text = buffer.str();
  }
  if (!reason.empty()) {
    JobParseResult result;
    result.issues.push_back(JobIssue{path, "cannot read file (" + reason + ")"});
    return result;
  }
  JobParseResult result = parseJob(text, path);
  if (result.job) {
    // Absolute, so relative data_dir and checkpoint paths still resolve if the working
    // directory changes before the job runs (queued jobs run later, on another thread).
    const fs::path absolute = fs::absolute(file, ec);
    result.job->baseDir = (ec ? file.parent_path() : absolute.parent_path()).lexically_normal().string();
    // Task files (relative to the job file's folder) must exist; their rows are read by the
    // run before any training (checkTaskFiles with readRows, or loadTask).
    std::vector<JobIssue> missing = checkTaskFiles(*result.job, /*readRows=*/false);
    if (!missing.empty()) {
      result.issues = std::move(missing);
      result.job.reset();
      result.normalizedJson.clear();
    }
  }
  return result;
}

std::string jobToJson(const JobSpec& job) {
  // Replace, not throw, on invalid UTF-8 in a string set by code rather than parsed.
  return jobfields::writeJob(job).dump(/*indent=*/2, /*indent_char=*/' ', /*ensure_ascii=*/false,
                                       json::Json::error_handler_t::replace);
}

std::vector<StudentSpec> knowledgeControlStudents(const JobSpec& job) {
  const KnowledgeControlsSpec& kc = job.knowledgeControls;
  if (!kc.enabled) {
    return {};
  }
  StudentSpec base;
  base.architecture = kc.architecture;
  base.training = kc.training;
  StudentSpec ce = base;
  ce.name = "ctl-ce";
  StudentSpec ls = base;
  ls.name = "ctl-ls";
  ls.objective.labelSmoothingMatched = true;
  ls.objective.labelSmoothingTemperature = kc.lsMatchTemperature();
  StudentSpec kdpt = base;
  kdpt.name = "ctl-kdpt";
  kdpt.objective.lambda = kc.lambda;
  kdpt.objective.temperature = kc.temperature;
  kdpt.objective.teacherTargets = "pt";
  StudentSpec kd = kdpt;
  kd.name = "ctl-kd";
  kd.objective.teacherTargets = "full";
  return {ce, ls, kdpt, kd};
}

std::vector<StudentSpec> allStudents(const JobSpec& job) {
  std::vector<StudentSpec> students = job.students;
  for (StudentSpec& control : knowledgeControlStudents(job)) {
    // A student of that name already listed (a normalised job, or one overriding a control)
    // is kept as it is.
    const bool listed = std::any_of(students.begin(), students.end(),
                                    [&](const StudentSpec& s) { return s.name == control.name; });
    if (!listed) {
      students.push_back(std::move(control));
    }
  }
  return students;
}

} // namespace kdscope::core
