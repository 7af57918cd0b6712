// kdscope study STUDY.json --out DIR: runs every cell of a study grid (docs/studies.md),
// resuming where an earlier call stopped, with overall progress on the terminal. Ctrl-C
// cancels cleanly: the running cell records "cancelled" and runs again next time.
// The same units one at a time (--teacher-only, --cell I, then --merge) are what the Slurm
// scripts of --slurm run, one job or array task each.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>

#include "app/commands.h"
#include "core/analysis/proportion.h"
#include "core/study/slurm_script.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"

namespace kdscope::app {

namespace {

/// On a terminal one updating line; otherwise a line per unit and per epoch.
class StudyTerminal {
public:
  StudyTerminal() : m_tty(::isatty(STDERR_FILENO) != 0) {}

  void operator()(const core::StudyProgressEvent& e) {
    using Kind = core::StudyProgressEvent::Kind;
    const double pct = 100.0 * e.fraction;
    const std::string where = "cell " + std::to_string(e.unit) + "/" + std::to_string(e.units) + " " + e.unitName;
    if (e.kind == Kind::Job) {
      const auto& j = e.job;
      if (j.kind == core::ProgressEvent::Kind::Step) {
        const auto now = std::chrono::steady_clock::now();
        if (!m_tty || now - m_last < std::chrono::milliseconds(200)) {
          return;
        }
        m_last = now;
        std::fprintf(stderr, "\r[%5.1f%%] %s: %s/%s epoch %d/%d step %ld/%ld loss %.4f  eta %s   ", pct,
                     where.c_str(), j.task.c_str(), j.model.c_str(), j.epoch, j.epochs, j.step, j.steps, j.loss,
                     formatDuration(e.etaSeconds).c_str());
        std::fflush(stderr);
        m_dirty = true;
        return;
      }
      if (j.kind == core::ProgressEvent::Kind::Phase || j.kind == core::ProgressEvent::Kind::Warning) {
        clearLine();
        std::string subject = j.task + (j.model.empty() ? "" : "/" + j.model);
        if (!subject.empty()) {
          subject += ": ";
        }
        std::fprintf(stderr, "[%5.1f%%] %s: %s%s (elapsed %s)\n", pct, where.c_str(), subject.c_str(),
                     j.message.c_str(), formatDuration(e.elapsedSeconds).c_str());
        return;
      }
      if (j.kind == core::ProgressEvent::Kind::Epoch) {
        clearLine();
        std::fprintf(stderr, "[%5.1f%%] %s: %s/%s epoch %d/%d eval accuracy %s (elapsed %s, eta %s)\n", pct,
                     where.c_str(), j.task.c_str(), j.model.c_str(), j.epoch, j.epochs,
                     core::analysis::fractionWithWilsonText(j.evalAccuracy, j.evalExamples).c_str(),
                     formatDuration(e.elapsedSeconds).c_str(), formatDuration(e.etaSeconds).c_str());
      }
      return;
    }
    clearLine();
    switch (e.kind) {
    case Kind::UnitStarted:
      std::fprintf(stderr, "[%5.1f%%] %s: running (%s)\n", pct, where.c_str(), e.message.c_str());
      break;
    case Kind::UnitSkipped:
      std::fprintf(stderr, "[%5.1f%%] %s: skipped, %s\n", pct, where.c_str(), e.message.c_str());
      break;
    case Kind::UnitFinished:
      std::fprintf(stderr, "[%5.1f%%] %s: complete (elapsed %s, eta %s)\n", pct, where.c_str(),
                   formatDuration(e.elapsedSeconds).c_str(), formatDuration(e.etaSeconds).c_str());
      break;
    case Kind::UnitFailed:
      std::fprintf(stderr, "[%5.1f%%] %s: %s\n", pct, where.c_str(), e.message.c_str());
      break;
    case Kind::Summary:
      std::fprintf(stderr, "[%5.1f%%] summary written to %s\n", pct, e.message.c_str());
      break;
    case Kind::Job:
      break;
    }
  }

  void clearLine() {
    if (m_dirty) {
      std::fprintf(stderr, "\r%-120s\r", "");
      m_dirty = false;
    }
  }

private:
  bool m_tty;
  bool m_dirty = false;
  std::chrono::steady_clock::time_point m_last{};
};

struct StudyOptions {
  std::string studyPath;
  std::string outDir;
  int threads = 0;
  int blasThreads = 0;
  bool list = false;
  bool summaryOnly = false;
  std::string cell;         ///< --cell: an index or a cell name
  bool teacherOnly = false; ///< --teacher-only
  bool merge = false;       ///< --merge
  bool slurm = false;       ///< --slurm and its resources
  core::SlurmOptions slurmOptions;
  std::string executable;   ///< --kdscope
  bool noTeacherReuse = false; ///< --no-teacher-reuse
};

/// This executable's absolute path (what the Slurm jobs run unless --kdscope says otherwise).
std::string selfExecutable() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("kdscope") : path.string();
}

int commandMerge(const StudyOptions& o, const core::StudySpec& study) {
  const core::StudyMergeResult merged = core::mergeStudy(study, o.outDir);
  if (merged.complete) {
    std::cerr << "kdscope study: all " << core::studyUnitCount(study)
              << (study.replicateSeeds.empty() ? " cells" : " cell units") << " complete; summary written to "
              << merged.summaryPath << "\n";
    return kExitOk;
  }
  std::cerr << "kdscope study: " << merged.notComplete.size() << " of " << core::studyUnitCount(study)
            << (study.replicateSeeds.empty() ? " cells" : " cell units") << " are not complete, so no summary was written:\n";
  std::string indices;
  for (const auto& unit : merged.notComplete) {
    std::cerr << "  cell " << std::left << std::setw(4) << unit.cell << " " << unit.name << ": "
              << core::toString(unit.state) << " (" << unit.runPath << ")\n";
    indices += (indices.empty() ? "" : ",") + std::to_string(unit.cell);
  }
  std::cerr << "Run them (kdscope study " << o.studyPath << " --out " << o.outDir
            << " --cell I, or on Slurm: sbatch --array=" << indices << " "
            << core::studySlurmDir(o.outDir) << "/cells.sbatch), then merge again.\n";
  return kExitFailed;
}

int commandSlurm(const StudyOptions& o, const core::StudySpec& study) {
  core::SlurmOptions options = o.slurmOptions;
  options.executable = o.executable.empty() ? selfExecutable() : o.executable;
  options.studyPath = o.studyPath;
  options.outDir = o.outDir;
  options.threads = o.threads;
  options.blasThreads = o.blasThreads;
  const auto files = core::writeSlurmScripts(study, options); // InputError names the option: exit 2
  std::cout << core::slurmSubmitHowTo(study, options);
  return files.empty() ? kExitFailed : kExitOk;
}

int commandStudy(const StudyOptions& o) {
  auto parsed = core::loadStudyFile(o.studyPath);
  if (!parsed.study) {
    printIssues("study", o.studyPath, "study", parsed.issues);
    return kExitBadInput;
  }
  const core::StudySpec& study = *parsed.study;
  if (o.list) {
    std::cout << "study '" << study.name << "': " << study.cells.size() << " cells x " << study.tasks.size()
              << " tasks";
    if (!study.replicateSeeds.empty()) {
      std::cout << " x " << study.replicateSeeds.size() << " replicates (cell unit I = cell I / "
                << study.replicateSeeds.size() << " of the replicate I % " << study.replicateSeeds.size() << ")";
    }
    std::cout << "\n";
    std::cout << std::left << std::setw(12) << "state" << " " << std::setw(5) << "cell"
              << " name  run file\n";
    for (const auto& unit : core::studyStatus(study, o.outDir)) {
      std::cout << std::left << std::setw(12) << core::toString(unit.state) << " " << std::setw(5)
                << (unit.cell < 0 ? std::string("-") : std::to_string(unit.cell)) << " " << unit.name << "  "
                << unit.runPath << "\n";
    }
    return kExitOk;
  }
  if (o.merge) {
    return commandMerge(o, study);
  }
  if (o.slurm) {
    return commandSlurm(o, study);
  }
  if (o.summaryOnly) {
    const auto summary = core::buildStudySummary(study, o.outDir);
    core::writeStudySummary(summary, o.outDir);
    std::cerr << "kdscope study: " << summary.completeCells() << " of " << summary.cells.size()
              << " cells complete; summary written to " << o.outDir << "/study_summary.json\n";
    return kExitOk;
  }
  core::CancelToken cancel;
  const CancelOnSignal cancelOnSignal(cancel);
  core::StudyRunOptions options;
  options.outDir = o.outDir;
  options.threads = o.threads;
  options.blasThreads = o.blasThreads;
  options.reuseTeacherAnalyses = !o.noTeacherReuse;
  StudyTerminal terminal;
  if (!o.cell.empty()) {
    const auto index = core::findStudyCell(study, o.cell);
    const std::size_t units = core::studyUnitCount(study);
    if (!index) {
      std::cerr << "kdscope study: --cell '" << o.cell << "': no such cell; the study has " << units
                << (study.replicateSeeds.empty() ? " cells" : " cell units (cells x replicates)") << ", 0 to "
                << units - 1 << " (--list names them)\n";
      return kExitBadInput;
    }
    options.scope = core::StudyScope::Cell;
    options.cell = *index;
    std::cerr << "kdscope study: '" << study.name << "': cell " << *index << " of 0-" << units - 1 << ", "
              << core::studyUnitName(study, *index) << "\n";
  } else if (o.teacherOnly) {
    options.scope = core::StudyScope::TeacherOnly;
    if (!study.teacherJob) {
      std::cerr << "kdscope study: '" << study.name
                << "': the study's teacher has a checkpoint of its own; there is no teacher job to run\n";
      return kExitOk;
    }
    std::cerr << "kdscope study: '" << study.name << "': the teacher job (" << study.tasks.size() << " task(s))\n";
  } else {
    std::cerr << "kdscope study: '" << study.name << "': " << study.cells.size() << " cells over "
              << study.tasks.size() << " task(s)" << (study.teacherJob ? ", after the teacher job" : "");
    if (!study.replicateSeeds.empty()) {
      std::cerr << ", " << study.replicateSeeds.size() << " replicates (each into " << o.outDir << "/rep-<seed>)";
    }
    std::cerr << "\n";
  }
  const auto result = core::runStudy(study, options, cancel, std::ref(terminal));
  terminal.clearLine();
  switch (result.status) {
  case core::JobStatus::Succeeded:
    if (options.scope == core::StudyScope::All) {
      std::cerr << "kdscope study: complete (" << result.ran << " run, " << result.skipped
                << " already complete); summary " << result.summaryPath << "\n";
    } else {
      const bool cell = options.scope == core::StudyScope::Cell;
      std::cerr << "kdscope study: " << (cell ? "the cell is " : "the teacher job is ")
                << (result.ran > 0 ? "complete" : "complete already, skipped")
                << (cell ? " (--merge writes the summary once every cell is complete)" : "") << "\n";
    }
    return kExitOk;
  case core::JobStatus::BadInput:
    std::cerr << "kdscope study: " << result.message << "\n";
    return kExitBadInput;
  case core::JobStatus::Cancelled:
  case core::JobStatus::Failed:
    break;
  }
  std::cerr << "kdscope study: " << result.message << "\n";
  for (const auto& failure : result.failed) {
    std::cerr << "  failed: " << failure << "\n";
  }
  return kExitFailed;
}

} // namespace

void registerStudy(CLI::App& app, int& exitCode) {
  auto options = std::make_shared<StudyOptions>();
  auto* study = app.add_subcommand(
      "study", "Run a study: every cell of a grid of students, one run file per cell, and a study summary");
  study->add_option("study", options->studyPath, "study file (JSON; see docs/studies.md)")->required();
  study->add_option("--out,-o", options->outDir,
                    "output folder: teacher/, cells/<cell>/run.h5, study_summary.json and .csv")
      ->required();
  study->add_option("--threads", options->threads, "LibTorch intra-op threads (0: LibTorch's default)")
      ->check(CLI::NonNegativeNumber);
  study->add_option("--blas-threads", options->blasThreads,
                    "OpenBLAS threads (0: OpenBLAS's default, one per core, as for kdscope run; see bench/README.md)")
      ->check(CLI::NonNegativeNumber);
  study->add_flag("--no-teacher-reuse", options->noTeacherReuse,
                  "each cell's analysis computes its teacher's head and probe results itself instead of copying "
                  "the study's teacher job's (the study field reuse_teacher_analyses: false does the same)");
  study->add_flag("--list", options->list, "list the cells and whether each is complete, then exit");
  auto* summaryOnly = study->add_flag("--summary-only", options->summaryOnly,
                                      "rebuild the summary from the cells' run files without running anything");
  // One unit at a time (a Slurm array task each; docs/studies.md, "Running on Slurm").
  auto* cell = study->add_option("--cell", options->cell,
                                 "run one cell only, by index (0-based: the array task id) or name; skipped when "
                                 "complete, run again when broken; the teacher must be complete");
  auto* teacherOnly = study->add_flag("--teacher-only", options->teacherOnly,
                                      "run the teacher job only (trains and analyses the teachers every cell loads)");
  auto* merge = study->add_flag("--merge", options->merge,
                                "write the summary if every cell is complete; otherwise name the cells that are "
                                "not and exit 1");
  auto* slurm = study->add_flag("--slurm", options->slurm,
                                "write Slurm scripts for the study (teacher job, one array task per cell, merge) "
                                "under DIR/slurm and print how to submit them; runs nothing");
  auto* list = study->get_option("--list");
  const std::vector<CLI::Option*> modes = {list, summaryOnly, cell, teacherOnly, merge, slurm};
  for (auto* a : modes) {
    for (auto* b : modes) {
      if (a != b) {
        a->excludes(b);
      }
    }
  }
  const std::vector<std::pair<std::string, std::string*>> resources = {
      {"--partition", &options->slurmOptions.partition},
      {"--time", &options->slurmOptions.time},
      {"--mem", &options->slurmOptions.mem},
      {"--account", &options->slurmOptions.account}};
  const std::vector<std::string> help = {"Slurm partition of every job (default: the cluster's)",
                                         "time limit of each job, e.g. 2:00:00 (default: the partition's)",
                                         "memory of each job, e.g. 4G (default: the partition's)",
                                         "Slurm account to charge (default: yours)"};
  for (std::size_t i = 0; i < resources.size(); ++i) {
    study->add_option(resources[i].first, *resources[i].second, help[i])->needs(slurm)->group("Slurm (with --slurm)");
  }
  study->add_option("--cpus-per-task", options->slurmOptions.cpusPerTask,
                    "CPUs of the teacher job and of each array task; each runs --threads and --blas-threads on "
                    "them unless those are given (default 1)")
      ->check(CLI::PositiveNumber)
      ->needs(slurm)
      ->group("Slurm (with --slurm)");
  study->add_option("--array-limit", options->slurmOptions.arrayLimit,
                    "at most this many cells at once (--array=0-N%K; default: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->needs(slurm)
      ->group("Slurm (with --slurm)");
  study->add_option("--kdscope", options->executable,
                    "the kdscope executable the jobs run, as the nodes see it (default: this one)")
      ->needs(slurm)
      ->group("Slurm (with --slurm)");
  study->callback([options, &exitCode]() { exitCode = guarded([&]() { return commandStudy(*options); }); });
}

} // namespace kdscope::app
