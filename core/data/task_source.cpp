#include "core/data/task_source.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include "core/common/error.h"
#include "core/data/feature_array.h"
#include "core/data/wordpiece.h"

namespace kdscope::core {

namespace fs = std::filesystem;

namespace {

std::string resolved(const std::string& base, const std::string& path) {
  if (path.empty() || base.empty() || fs::path(path).is_absolute()) {
    return path;
  }
  return (fs::path(base) / path).lexically_normal().string();
}

std::string lowerExtensionOf(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return "";
  }
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

/// "" when the file is there and is a file, else why not.
std::string missingReason(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return "no such file '" + path + "'";
  }
  if (fs::is_directory(status)) {
    return "'" + path + "' is a folder, not a file";
  }
  return "";
}

/// "{data_dir}/x" -> the job's data folder (data_dir, $KDSCOPE_DATA_DIR or the default) / x.
std::string expandDataDir(const JobSpec& job, const std::string& path) {
  static const std::string kPrefix = "{data_dir}";
  if (path.compare(0, kPrefix.size(), kPrefix) != 0) {
    return path;
  }
  const std::string dir = resolveDataDir(job.dataDir.empty() ? "" : resolved(job.baseDir, job.dataDir));
  return (fs::path(dir) / fs::path(path.substr(kPrefix.size())).relative_path()).lexically_normal().string();
}

} // namespace

std::string taskFileFormat(const TaskSpec& task) {
  if (task.format != "auto") {
    return task.format;
  }
  const std::string ext = lowerExtensionOf(task.file);
  if (ext == "jsonl" || ext == "ndjson" || ext == "json") {
    return "jsonl";
  }
  if (ext == "csv") {
    return "csv";
  }
  if (ext == "tsv" || ext == "tab") {
    return "tsv";
  }
  if (ext == "npy") {
    return "npy";
  }
  if (ext == "h5" || ext == "hdf5" || ext == "he5") {
    return "h5";
  }
  return "";
}

TaskFileSpec taskFileSpec(const TaskSpec& task) {
  TaskFileSpec spec;
  spec.path = task.file;
  spec.evalPath = task.evalFile;
  if (task.format == "auto") {
    spec.format = TaskFileFormat::Auto;
  } else if (task.format == "jsonl") {
    spec.format = TaskFileFormat::JsonLines;
  } else if (task.format == "csv") {
    spec.format = TaskFileFormat::Csv;
  } else if (task.format == "tsv") {
    spec.format = TaskFileFormat::Tsv;
  } else {
    throw InputError("task '" + task.name + "': format '" + task.format +
                     "' is not a row format (jsonl, csv, tsv)");
  }
  // The text field defaults to "text"; feature columns make a vector task, which has none.
  if (task.featureFields.empty()) {
    spec.textField = task.textField;
    spec.textPairField = task.textPairField;
  } else {
    spec.featureFields = task.featureFields;
  }
  spec.labelField = task.labelField;
  spec.idField = task.idField;
  spec.splitField = task.splitField;
  spec.labelKind = task.labelKind == "name"      ? LabelKind::Name
                   : task.labelKind == "integer" ? LabelKind::Integer
                                                 : LabelKind::Auto;
  spec.numClasses = task.numClasses;
  return spec;
}

void resolveTaskFilePaths(JobSpec& job) {
  for (TaskSpec& task : job.tasks) {
    for (std::string* path : {&task.file, &task.evalFile, &task.labelFile, &task.vocab}) {
      *path = resolved(job.baseDir, expandDataDir(job, *path));
    }
  }
}

std::vector<JobIssue> checkTaskFiles(const JobSpec& job, bool readRows, const TaskReadControl& control) {
  JobSpec resolvedJob = job;
  resolveTaskFilePaths(resolvedJob);
  std::vector<JobIssue> issues;
  for (std::size_t i = 0; i < resolvedJob.tasks.size(); ++i) {
    const TaskSpec& task = resolvedJob.tasks[i];
    const TaskSpec& written = job.tasks[i];
    const std::string at = "tasks[" + std::to_string(i) + "]";
    bool present = true;
    // `as` is the path as the job wrote it: the message says what it was resolved against.
    const auto need = [&](const std::string& key, const std::string& path, const std::string& as) {
      if (path.empty()) {
        return;
      }
      if (std::string why = missingReason(path); !why.empty()) {
        if (as.compare(0, 10, "{data_dir}") == 0) {
          why += " (in the data folder; scripts/setup.sh writes the samples' files there)";
        } else if (fs::path(as).is_relative() && !job.baseDir.empty()) {
          why += " (relative to the job file's folder, " + job.baseDir + ")";
        }
        issues.push_back(JobIssue{at + "." + key, why});
        present = false;
      }
    };
    if (task.fromFile()) {
      need("file", task.file, written.file);
      need("eval_file", task.evalFile, written.evalFile);
      need("label_file", task.labelFile, written.labelFile);
    }
    need("vocab", task.vocab, written.vocab);
    if (!readRows || !present) {
      continue;
    }
    try {
      if (task.fromFile()) {
        (void)loadFileTask(task, resolvedJob.seed, control);
      } else if (!task.vocab.empty()) {
        (void)WordPieceTokenizer::fromFile(task.vocab, task.lowerCase);
      }
    } catch (const Cancelled&) {
      return issues; // the caller's token is set: it knows the check stopped
    } catch (const std::exception& e) {
      issues.push_back(JobIssue{at + (task.fromFile() ? ".file" : ".vocab"), e.what()});
    }
  }
  return issues;
}

TaskData loadFileTask(const TaskSpec& spec, std::uint64_t seed, const TaskReadControl& control) {
  const std::string format = taskFileFormat(spec);
  if (format.empty()) {
    throw InputError("task '" + spec.name + "': cannot tell the format of '" + spec.file +
                     "' from its extension (.jsonl, .csv, .tsv, .npy, .h5); set 'format'");
  }
  if (format == "npy" || format == "h5") {
    FeatureArraySpec array;
    array.path = spec.file;
    array.h5Dataset = format == "h5" ? spec.h5Dataset : "";
    array.labelPath = spec.labelFile;
    array.labelColumn = spec.labelColumn;
    array.labelKind = spec.labelKind == "name"      ? LabelKind::Name
                      : spec.labelKind == "integer" ? LabelKind::Integer
                                                    : LabelKind::Auto;
    array.numClasses = spec.numClasses;
    return buildTask(spec, loadFeatureArray(array, control), seed);
  }
  return buildTaskFromFile(spec, loadTaskFile(taskFileSpec(spec), control), seed);
}

TaskProvenance taskProvenance(const TaskSpec& spec) {
  TaskProvenance p;
  p.tokenizer = spec.vocab.empty() ? "word" : "wordpiece";
  p.vocabPath = spec.vocab;
  p.lowerCase = spec.lowerCase;
  if (!spec.fromFile()) {
    p.source = "builtin";
    return p;
  }
  p.source = "file";
  p.path = spec.file;
  std::error_code ec;
  const auto size = fs::file_size(spec.file, ec);
  p.bytes = ec ? 0 : static_cast<std::uint64_t>(size);
  p.format = taskFileFormat(spec);
  p.evalPath = spec.evalFile;
  nlohmann::json fields = nlohmann::json::object();
  if (p.format == "npy" || p.format == "h5") {
    p.labelPath = spec.labelFile;
    if (p.format == "h5") {
      fields["features"] = spec.h5Dataset;
    }
    fields["label_column"] = spec.labelColumn;
  } else {
    if (spec.featureFields.empty()) {
      fields["text"] = spec.textField;
      fields["text_pair"] = spec.textPairField;
    } else {
      fields["features"] = spec.featureFields;
    }
    fields["label"] = spec.labelField;
    fields["id"] = spec.idField;
    fields["split"] = spec.splitField;
  }
  fields["label_kind"] = spec.labelKind;
  fields["num_classes"] = spec.numClasses;
  p.fields = fields.dump();
  return p;
}

} // namespace kdscope::core
