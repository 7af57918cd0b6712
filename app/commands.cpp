#include "app/commands.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/common/error.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "core/record/run_reader.h"

#ifdef KDSCOPE_WITH_GUI
#include "widgets/application.h"
#endif

namespace kdscope::app {

namespace {

// Set from the SIGINT/SIGTERM handler: a lock-free atomic store is async-signal-safe.
core::CancelToken* g_cancel = nullptr;

extern "C" void onSignal(int /*signal*/) {
  if (g_cancel != nullptr) {
    g_cancel->cancel();
  }
}

std::string formatDuration(double seconds) {
  const auto s = static_cast<long>(seconds);
  std::ostringstream out;
  if (s >= 3600) {
    out << s / 3600 << "h";
  }
  out << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m" << std::setw(2) << s % 60 << "s";
  return out.str();
}

/// Prints progress: on a terminal one updating line, otherwise a line per epoch and phase.
class TerminalProgress {
public:
  TerminalProgress() : m_tty(::isatty(STDERR_FILENO) != 0) {}
  void operator()(const core::ProgressEvent& e) {
    using Kind = core::ProgressEvent::Kind;
    const auto now = std::chrono::steady_clock::now();
    const double pct = 100.0 * e.fraction;
    std::string eta = "--";
    if (e.fraction > 0.01) {
      eta = formatDuration(e.elapsedSeconds * (1.0 - e.fraction) / e.fraction);
    }
    if (e.kind == Kind::Step) {
      if (!m_tty || now - m_last < std::chrono::milliseconds(200)) {
        return;
      }
      m_last = now;
      std::fprintf(stderr, "\r[%5.1f%%] %s/%s epoch %d/%d step %ld/%ld loss %.4f  eta %s   ", pct,
                   e.task.c_str(), e.model.c_str(), e.epoch, e.epochs, e.step, e.steps, e.loss, eta.c_str());
      std::fflush(stderr);
      m_dirty = true;
      return;
    }
    clearLine();
    if (e.kind == Kind::Epoch) {
      std::fprintf(stderr, "[%5.1f%%] %s/%s epoch %d/%d: eval accuracy %.4f, eval loss %.4f (elapsed %s, eta %s)\n",
                   pct, e.task.c_str(), e.model.c_str(), e.epoch, e.epochs, e.evalAccuracy, e.loss,
                   formatDuration(e.elapsedSeconds).c_str(), eta.c_str());
    } else {
      std::fprintf(stderr, "[%5.1f%%] %s%s%s: %s\n", pct, e.task.c_str(), e.model.empty() ? "" : "/",
                   e.model.c_str(), e.message.c_str());
    }
  }
  void clearLine() {
    if (m_dirty) {
      std::fprintf(stderr, "\r%-100s\r", "");
      m_dirty = false;
    }
  }

private:
  bool m_tty;
  bool m_dirty = false;
  std::chrono::steady_clock::time_point m_last{};
};

int commandRun(const std::string& jobPath, const std::string& outDir, int threads, int blasThreads) {
  auto parsed = core::loadJobFile(jobPath);
  if (!parsed.job) {
    std::cerr << "kdscope run: " << jobPath << " is not a valid job:\n";
    for (const auto& issue : parsed.issues) {
      std::cerr << "  " << issue.str() << "\n";
    }
    return kExitBadInput;
  }
  core::CancelToken cancel;
  g_cancel = &cancel;
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  core::RunOptions options;
  options.outDir = outDir;
  options.threads = threads;
  options.blasThreads = blasThreads;
  TerminalProgress progress;
  const auto result = core::runJob(*parsed.job, options, cancel, std::ref(progress));
  progress.clearLine();
  g_cancel = nullptr;
  switch (result.status) {
  case core::JobStatus::Succeeded:
    std::cerr << "kdscope run: complete; run file " << result.runPath << "\n";
    return kExitOk;
  case core::JobStatus::Cancelled:
    std::cerr << "kdscope run: " << result.message << "; run file " << result.runPath
              << " keeps what was recorded (status \"cancelled\")\n";
    return kExitFailed;
  case core::JobStatus::BadInput:
    std::cerr << "kdscope run: " << result.message << "\n";
    return kExitBadInput;
  case core::JobStatus::Failed:
    break;
  }
  std::cerr << "kdscope run: failed: " << result.message << "\n";
  return kExitFailed;
}

int commandInfo(const std::string& runPath) {
  const core::RunReader reader(runPath);
  const auto summary = reader.summary();
  std::cout << "run file:  " << summary.path << "\n"
            << "status:    " << summary.status
            << (summary.statusMessage.empty() ? "" : " (" + summary.statusMessage + ")") << "\n"
            << "format:    kdscope-run version " << summary.formatVersion << ", written by KDScope "
            << summary.kdscopeVersion << "\n";
  for (const auto& task : summary.tasks) {
    std::cout << "\ntask " << task.name << ": " << task.numClasses << " classes, " << task.evalExamples
              << " eval examples\n";
    std::cout << "  " << std::left << std::setw(16) << "model" << std::setw(9) << "role" << std::right
              << std::setw(12) << "parameters" << std::setw(8) << "steps" << std::setw(12) << "final loss"
              << std::setw(11) << "accuracy" << "\n";
    double teacherAcc = -1.0;
    for (const auto& m : task.models) {
      if (m.role == "teacher") {
        teacherAcc = m.evalAccuracy;
      }
      std::cout << "  " << std::left << std::setw(16) << m.name << std::setw(9) << m.role << std::right
                << std::setw(12) << m.parameterCount << std::setw(8) << m.trainSteps << std::setw(12)
                << std::fixed << std::setprecision(4) << m.finalLoss << std::setw(11);
      if (m.evalAccuracy >= 0.0) {
        std::cout << m.evalAccuracy;
      } else {
        std::cout << "-";
      }
      if (m.role == "student" && teacherAcc > 0.0 && m.evalAccuracy >= 0.0) {
        std::cout << "  (gap " << std::showpos << teacherAcc - m.evalAccuracy << std::noshowpos
                  << ", retained " << m.evalAccuracy / teacherAcc << ")";
      }
      std::cout << "\n" << std::defaultfloat;
    }
  }
  return kExitOk;
}

} // namespace

int runMain(int argc, char** argv) {
  // No arguments, or a single run file: the workbench window.
  const bool guiWithFile = argc == 2 && std::string(argv[1]).size() > 3 &&
                           std::string(argv[1]).compare(std::string(argv[1]).size() - 3, 3, ".h5") == 0;
  if (argc <= 1 || guiWithFile) {
#ifdef KDSCOPE_WITH_GUI
    return widgets::runApplication(argc, argv);
#else
    std::cerr << "kdscope: built without the GUI; see 'kdscope --help'\n";
    return kExitBadInput;
#endif
  }
  CLI::App app{"KDScope: a workbench for studying what a student loses in knowledge distillation.\n"
               "Without arguments it opens the workbench window."};
  app.set_version_flag("--version", std::string(KDSCOPE_VERSION_STRING));
  app.require_subcommand(1);

  std::string jobPath;
  std::string outDir;
  int threads = 0;
  int blasThreads = 1;
  auto* run = app.add_subcommand("run", "Run a job: train the teacher and distil each student, writing DIR/run.h5");
  run->add_option("job", jobPath, "job file (JSON; see docs/job-format.md)")->required()->check(CLI::ExistingFile);
  run->add_option("--out,-o", outDir, "output folder (run.h5 and checkpoints/)")->required();
  run->add_option("--threads", threads, "LibTorch intra-op threads (0: LibTorch's default)")->check(CLI::NonNegativeNumber);
  run->add_option("--blas-threads", blasThreads,
                  "OpenBLAS threads (default 1: two thread pools spinning against each other slow small "
                  "products; see bench/README.md)")
      ->check(CLI::PositiveNumber);

  std::string runPath;
  auto* info = app.add_subcommand("info", "Summarise a run file: tasks, models, accuracies, status");
  info->add_option("run", runPath, "run file (.h5)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  try {
    if (*run) {
      return commandRun(jobPath, outDir, threads, blasThreads);
    }
    if (*info) {
      return commandInfo(runPath);
    }
  } catch (const core::InputError& e) {
    std::cerr << "kdscope: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "kdscope: " << e.what() << "\n";
    return kExitFailed;
  }
  return kExitBadInput;
}

} // namespace kdscope::app
