#include "core/study/slurm_script.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/common/error.h"

namespace kdscope::core {

namespace fs = std::filesystem;

namespace {

/// A path made absolute and normal, without a trailing separator.
std::string absolutePath(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(path), ec);
  if (ec) {
    p = fs::path(path);
  }
  p = p.lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

/// A word for the shell: single-quoted unless it is plainly safe.
std::string shellQuote(const std::string& s) {
  static const std::regex plain("[A-Za-z0-9_./,:=+@%-]+");
  if (!s.empty() && std::regex_match(s, plain)) {
    return s;
  }
  std::string out = "'";
  for (const char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

/// A job name Slurm shows in squeue: the study's name with anything unusual made '_'.
std::string jobName(const StudySpec& study, const std::string& part) {
  std::string name = "kdscope-" + study.name + "-" + part;
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) {
      c = '_';
    }
  }
  return name;
}

void check(const std::string& value, const std::regex& pattern, const std::string& option,
           const std::string& expected) {
  if (!value.empty() && !std::regex_match(value, pattern)) {
    throw InputError(option + " '" + value + "': " + expected);
  }
}

struct Checked {
  std::string executable;
  std::string studyPath;
  std::string outDir;
  std::string slurmDir;
  std::string logDir;
};

Checked checkOptions(const StudySpec& study, const SlurmOptions& o) {
  static const std::regex time(
      R"((\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+|UNLIMITED|INFINITE|unlimited|infinite))");
  check(o.time, time, "--time",
        "not a Slurm time limit (minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. 2:00:00)");
  static const std::regex mem(R"(\d+[KMGTkmgt]?)");
  check(o.mem, mem, "--mem", "not a Slurm memory size (a number of MB, or with a K, M, G or T suffix, e.g. 4G)");
  static const std::regex name(R"([A-Za-z0-9_.+,-]+)");
  check(o.partition, name, "--partition", "a partition name has letters, digits and _ . + , - only");
  check(o.account, name, "--account", "an account name has letters, digits and _ . + , - only");
  if (o.cpusPerTask < 1) {
    throw InputError("--cpus-per-task " + std::to_string(o.cpusPerTask) + ": must be at least 1");
  }
  if (o.threads < 0 || o.blasThreads < 0 || o.arrayLimit < 0) {
    throw InputError("--threads, --blas-threads and --array-limit must not be negative");
  }
  if (o.executable.empty()) {
    throw InputError("the kdscope executable for the Slurm jobs is not known (give its path)");
  }
  if (o.studyPath.empty() || o.outDir.empty()) {
    throw InputError("the Slurm scripts need the study file and the output folder");
  }
  if (study.cells.empty()) {
    throw InputError("the study has no cells");
  }
  Checked c;
  c.executable = o.executable.find('/') == std::string::npos ? o.executable : absolutePath(o.executable);
  c.studyPath = absolutePath(o.studyPath);
  c.outDir = absolutePath(o.outDir);
  // The log paths sit in #SBATCH lines, which sbatch splits at white space and where '%'
  // starts a file-name pattern: a folder with those cannot be written there.
  for (const char bad : std::string(" \t\n\r\"'\\%")) {
    if (c.outDir.find(bad) != std::string::npos) {
      throw InputError("--out '" + c.outDir +
                       "': the Slurm scripts name their log files under this folder in #SBATCH lines, "
                       "which cannot hold white space, quotes, backslashes or '%'; choose another folder");
    }
  }
  c.slurmDir = studySlurmDir(c.outDir);
  c.logDir = (fs::path(c.slurmDir) / "logs").string();
  return c;
}

/// The #SBATCH lines every job shares (resources the user gave, nothing else assumed).
std::string resourceLines(const SlurmOptions& o, int cpus) {
  std::ostringstream out;
  out << "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=" << cpus << "\n";
  if (!o.partition.empty()) {
    out << "#SBATCH --partition=" << o.partition << "\n";
  }
  if (!o.account.empty()) {
    out << "#SBATCH --account=" << o.account << "\n";
  }
  if (!o.time.empty()) {
    out << "#SBATCH --time=" << o.time << "\n";
  }
  if (!o.mem.empty()) {
    out << "#SBATCH --mem=" << o.mem << "\n";
  }
  return out.str();
}

/// The kdscope command line of a training job: the study, the output folder, the threads.
std::string studyCommand(const Checked& c, const SlurmOptions& o, const std::string& what) {
  std::ostringstream out;
  out << "exec " << shellQuote(c.executable) << " study " << shellQuote(c.studyPath) << " --out "
      << shellQuote(c.outDir) << " " << what;
  out << " --threads " << (o.threads > 0 ? std::to_string(o.threads) : std::string("\"$CPUS\""));
  out << " --blas-threads " << (o.blasThreads > 0 ? std::to_string(o.blasThreads) : std::string("\"$CPUS\""));
  return out.str();
}

std::string header(const StudySpec& study, const std::string& what) {
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# KDScope study '" << study.name << "': " << what << "\n"
      << "# Written by `kdscope study STUDY --out DIR --slurm`; submit the whole study with submit.sh\n"
      << "# beside this file (docs/studies.md, \"Running on Slurm\").\n";
  return out.str();
}

} // namespace

std::string studySlurmDir(const std::string& outDir) { return (fs::path(outDir) / "slurm").string(); }

std::vector<SlurmFile> slurmScripts(const StudySpec& study, const SlurmOptions& options) {
  const Checked c = checkOptions(study, options);
  const std::string cpus = "CPUS=\"${SLURM_CPUS_PER_TASK:-" + std::to_string(options.cpusPerTask) + "}\"\n";
  const std::size_t units = studyUnitCount(study);
  const std::size_t last = units - 1;
  const std::string perUnit = study.replicateSeeds.empty()
                                  ? std::to_string(units) + " cells"
                                  : std::to_string(units) + " cell units: " + std::to_string(study.cells.size()) +
                                        " cells x " + std::to_string(study.replicateSeeds.size()) + " replicates";
  std::vector<SlurmFile> files;
  const auto add = [&](const std::string& name, const std::string& text) {
    files.push_back({name, (fs::path(c.slurmDir) / name).string(), text});
  };

  if (study.teacherJob) {
    std::ostringstream t;
    t << header(study, "the teacher job (trains and analyses every task's teacher once; the cells load it).")
      << "#SBATCH --job-name=" << jobName(study, "teacher") << "\n"
      << "#SBATCH --output=" << c.logDir << "/teacher-%j.out\n"
      << resourceLines(options, options.cpusPerTask) << "set -eu\n"
      << cpus << "echo \"kdscope study teacher on $(hostname), job ${SLURM_JOB_ID:-?}, $CPUS CPU(s), $(date)\"\n"
      << studyCommand(c, options, "--teacher-only") << "\n";
    add("teacher.sbatch", t.str());
  }

  std::ostringstream a;
  a << header(study, "the cells, one array task per cell (" + perUnit +
                         "); each runs after the teacher job (submit.sh adds --dependency=afterok).")
    << "#SBATCH --job-name=" << jobName(study, "cells") << "\n"
    << "#SBATCH --array=0-" << last << (options.arrayLimit > 0 ? "%" + std::to_string(options.arrayLimit) : "")
    << "\n"
    << "#SBATCH --output=" << c.logDir << "/cell-%a-%A.out\n"
    << resourceLines(options, options.cpusPerTask);
  a << "#\n# Array task -> cell (kdscope study STUDY --out DIR --list shows each cell's state):\n";
  for (std::size_t i = 0; i < units; ++i) {
    a << "#   " << i << "  " << studyUnitName(study, i) << "\n";
  }
  a << "set -eu\n"
    << cpus
    << "if [ -z \"${SLURM_ARRAY_TASK_ID:-}\" ]; then\n"
    << "  echo \"cells.sbatch: SLURM_ARRAY_TASK_ID is not set: submit this script as an array\" >&2\n"
    << "  exit 2\n"
    << "fi\n"
    << "echo \"kdscope study cell $SLURM_ARRAY_TASK_ID on $(hostname), job ${SLURM_ARRAY_JOB_ID:-?}_"
       "$SLURM_ARRAY_TASK_ID, $CPUS CPU(s), $(date)\"\n"
    << studyCommand(c, options, "--cell \"$SLURM_ARRAY_TASK_ID\"") << "\n";
  add("cells.sbatch", a.str());

  std::ostringstream m;
  m << header(study, "the merge job: writes DIR/study_summary.json once every cell is complete.")
    << "#SBATCH --job-name=" << jobName(study, "merge") << "\n"
    << "#SBATCH --output=" << c.logDir << "/merge-%j.out\n"
    << resourceLines(options, 1) << "set -eu\n"
    << "exec " << shellQuote(c.executable) << " study " << shellQuote(c.studyPath) << " --out "
    << shellQuote(c.outDir) << " --merge\n";
  add("merge.sbatch", m.str());

  std::ostringstream s;
  s << "#!/bin/sh\n"
    << "# Submits the study '" << study.name << "' to Slurm"
    << (study.teacherJob ? ": the teacher job, then the cells' array once it succeeded" : ": the cells' array")
    << ",\n# then the merge job once every cell succeeded (--dependency=afterok; a failed job cancels the\n"
    << "# jobs waiting for it). Arguments go to every sbatch call (e.g. --qos=long). Run it again after a\n"
    << "# failure: complete units are skipped, the rest run again. Written by `kdscope study ... --slurm`.\n"
    << "set -eu\n"
    << "dir=" << shellQuote(c.slurmDir) << "\n";
  std::string dependency;
  if (study.teacherJob) {
    s << "teacher=$(sbatch --parsable \"$@\" \"$dir/teacher.sbatch\")\n"
      << "teacher=${teacher%%;*}\n"
      << "echo \"teacher job: $teacher\"\n";
    dependency = "--dependency=afterok:\"$teacher\" --kill-on-invalid-dep=yes ";
  }
  s << "cells=$(sbatch --parsable " << dependency << "\"$@\" \"$dir/cells.sbatch\")\n"
    << "cells=${cells%%;*}\n"
    << "echo \"cells: array job $cells, tasks 0-" << last << "\"\n"
    << "merge=$(sbatch --parsable --dependency=afterok:\"$cells\" --kill-on-invalid-dep=yes \"$@\" "
       "\"$dir/merge.sbatch\")\n"
    << "merge=${merge%%;*}\n"
    << "echo \"merge job: $merge\"\n"
    << "echo \"logs: $dir/logs; state: squeue -u \\\"$(id -un)\\\" or kdscope study "
    << shellQuote(c.studyPath) << " --out " << shellQuote(c.outDir) << " --list\"\n";
  add("submit.sh", s.str());
  return files;
}

std::vector<SlurmFile> writeSlurmScripts(const StudySpec& study, const SlurmOptions& options) {
  std::vector<SlurmFile> files = slurmScripts(study, options);
  const std::string dir = studySlurmDir(absolutePath(options.outDir));
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "logs", ec);
  if (ec) {
    throw InputError("'" + (fs::path(dir) / "logs").string() + "': cannot create the folder: " + ec.message());
  }
  for (const SlurmFile& file : files) {
    {
      std::ofstream out(file.path, std::ios::binary | std::ios::trunc);
      out << file.text;
      if (!out) {
        throw InputError("'" + file.path + "': cannot write the file");
      }
    }
    fs::permissions(file.path,
                    fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec | fs::perms::owner_read |
                        fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                    fs::perm_options::replace, ec);
  }
  return files;
}

std::string slurmSubmitHowTo(const StudySpec& study, const SlurmOptions& options) {
  const std::string out = absolutePath(options.outDir);
  const std::string dir = studySlurmDir(out);
  const std::size_t units = studyUnitCount(study);
  const std::size_t last = units - 1;
  std::ostringstream s;
  s << "Slurm scripts for study '" << study.name << "' (" << study.cells.size() << " cells x "
    << study.tasks.size() << " task(s)";
  if (!study.replicateSeeds.empty()) {
    s << " x " << study.replicateSeeds.size() << " replicates";
  }
  s << ") in " << dir << ":\n";
  if (study.teacherJob) {
    s << "  teacher.sbatch  the teacher job" << (study.replicateSeeds.empty() ? "" : " (every replicate's teacher)")
      << "\n";
  }
  s << "  cells.sbatch    a job array, tasks 0-" << last
    << (study.replicateSeeds.empty() ? ", one per cell\n" : ", one per cell and replicate (--list names them)\n")
    << "  merge.sbatch    writes " << out << "/study_summary.json once every cell is complete\n"
    << "  submit.sh       submits them in that order, each waiting for the one before\n"
    << "Submit the study:\n"
    << "  sh " << shellQuote(dir + "/submit.sh") << "\n"
    << "or by hand:\n";
  if (study.teacherJob) {
    s << "  sbatch --parsable " << shellQuote(dir + "/teacher.sbatch") << "                 # prints the job id T\n"
      << "  sbatch --parsable --dependency=afterok:T " << shellQuote(dir + "/cells.sbatch") << "   # prints C\n";
  } else {
    s << "  sbatch --parsable " << shellQuote(dir + "/cells.sbatch") << "                  # prints the job id C\n";
  }
  s << "  sbatch --dependency=afterok:C " << shellQuote(dir + "/merge.sbatch") << "\n"
    << "Logs go to " << dir << "/logs. Rerun failed cells with sbatch --array=I,J,... " << shellQuote(dir + "/cells.sbatch")
    << ", then the merge.\n";
  if (units > 1001) {
    s << "Note: " << units
      << " array tasks is more than Slurm's default MaxArraySize (1001); ask your cluster's limit.\n";
  }
  return s.str();
}

} // namespace kdscope::core
