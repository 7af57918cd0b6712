// kdscope study STUDY.json --out DIR: runs every cell of a study grid (docs/studies.md),
// resuming where an earlier call stopped, with overall progress on the terminal. Ctrl-C
// cancels cleanly: the running cell records "cancelled" and runs again next time.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <string>

#include "app/commands.h"
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
        std::fprintf(stderr, "[%5.1f%%] %s: %s/%s epoch %d/%d eval accuracy %.4f (elapsed %s, eta %s)\n", pct,
                     where.c_str(), j.task.c_str(), j.model.c_str(), j.epoch, j.epochs, j.evalAccuracy,
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
};

int commandStudy(const StudyOptions& o) {
  auto parsed = core::loadStudyFile(o.studyPath);
  if (!parsed.study) {
    printIssues("study", o.studyPath, "study", parsed.issues);
    return kExitBadInput;
  }
  const core::StudySpec& study = *parsed.study;
  if (o.list) {
    std::cout << "study '" << study.name << "': " << study.cells.size() << " cells x " << study.tasks.size()
              << " tasks\n";
    for (const auto& unit : core::studyStatus(study, o.outDir)) {
      std::cout << std::left << std::setw(12) << core::toString(unit.state) << " " << unit.name << "  "
                << unit.runPath << "\n";
    }
    return kExitOk;
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
  StudyTerminal terminal;
  std::cerr << "kdscope study: '" << study.name << "': " << study.cells.size() << " cells over "
            << study.tasks.size() << " task(s)" << (study.teacherJob ? ", after the teacher job" : "") << "\n";
  const auto result = core::runStudy(study, options, cancel, std::ref(terminal));
  terminal.clearLine();
  switch (result.status) {
  case core::JobStatus::Succeeded:
    std::cerr << "kdscope study: complete (" << result.ran << " run, " << result.skipped
              << " already complete); summary " << result.summaryPath << "\n";
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
  study->add_flag("--list", options->list, "list the cells and whether each is complete, then exit");
  study->add_flag("--summary-only", options->summaryOnly,
                  "rebuild the summary from the cells' run files without running anything");
  study->callback([options, &exitCode]() { exitCode = guarded([&]() { return commandStudy(*options); }); });
}

} // namespace kdscope::app
