// kdscope analyze RUN.h5: every analysis of docs/analyses.md, written under
// /tasks/<task>/analysis of the run file, with progress on the terminal. Ctrl-C cancels.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include "app/commands.h"
#include "core/analysis/analyze_run.h"
#include "core/engine/run_job.h"

namespace kdscope::app {

namespace {

core::CancelToken* g_analyzeCancel = nullptr;

extern "C" void onAnalyzeSignal(int /*signal*/) {
  if (g_analyzeCancel != nullptr) {
    g_analyzeCancel->cancel();
  }
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

int commandAnalyze(const std::string& runPath, const core::AnalyzeOptions& options, int threads, int blasThreads) {
  // The model passes (heads, probes) use every core by default: LibTorch's pool for its
  // element-wise kernels and OpenBLAS's for the matrix products, which is where the time goes
  // (bench/README.md, "Analysis"); kdscope runs with OMP_WAIT_POLICY=PASSIVE, so the two pools
  // do not spin against each other.
  const int torchThreads = threads > 0 ? threads : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  core::configureThreads(torchThreads, blasThreads);
  core::CancelToken cancel;
  g_analyzeCancel = &cancel;
  std::signal(SIGINT, onAnalyzeSignal);
  std::signal(SIGTERM, onAnalyzeSignal);
  const auto result = core::analyzeRun(runPath, options, cancel, TerminalProgress(/*showElapsed=*/true));
  g_analyzeCancel = nullptr;
  switch (result.status) {
  case core::AnalyzeStatus::Succeeded:
    std::cerr << "kdscope analyze: complete in " << result.seconds << " s; results under /tasks/<task>/analysis of "
              << runPath;
    if (!result.warnings.empty()) {
      std::cerr << " (" << result.warnings.size() << " analyses skipped, listed above and in the 'skipped' attribute)";
    }
    std::cerr << "\n";
    return kExitOk;
  case core::AnalyzeStatus::BadInput:
    std::cerr << "kdscope analyze: " << result.message << "\n";
    return kExitBadInput;
  case core::AnalyzeStatus::Cancelled:
    std::cerr << "kdscope analyze: cancelled; the task being analysed keeps status \"incomplete\"\n";
    return kExitFailed;
  case core::AnalyzeStatus::Failed:
    break;
  }
  std::cerr << "kdscope analyze: failed: " << result.message << "\n";
  return kExitFailed;
}

} // namespace

void registerAnalyze(CLI::App& app, int& exitCode) {
  struct Options {
    std::string runPath;
    std::string only;
    core::AnalyzeOptions analyze;
    int threads = 0;
    int blasThreads = 0;
  };
  auto options = std::make_shared<Options>();
  std::string names;
  for (const auto& name : core::analysisNames()) {
    names += (names.empty() ? "" : ",") + name;
  }
  auto* cmd = app.add_subcommand("analyze", "Analyse a run file: per layer, per head, per task and the three "
                                            "knowledge levels; results are written into the file");
  cmd->add_option("run", options->runPath, "run file (.h5)")->required();
  cmd->add_option("--only", options->only, "comma-separated analyses to run (default all): " + names);
  cmd->add_option("--threads", options->threads, "worker threads (numeric library and LibTorch; 0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--blas-threads", options->blasThreads,
                  "OpenBLAS threads (0: OpenBLAS's default, one per core; see bench/README.md)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--force", options->analyze.force, "analyse a file whose status is \"running\"");
  cmd->add_flag("!--one-lane", options->analyze.sideBySide,
                "run the passes one after another instead of the recorded-output passes beside heads and "
                "probes (same results; for comparing: bench/README.md)");
  cmd->add_option("--data-dir", options->analyze.dataDir,
                  "data cache folder for reloading the task (default: the job's data_dir, else "
                  "$KDSCOPE_DATA_DIR or ~/.cache/kdscope/data)");
  cmd->add_option("--rbf-examples", options->analyze.rbfExamples,
                  "eval examples for RBF CKA (n x n kernels; 0 skips it)")
      ->capture_default_str();
  cmd->add_option("--minibatch", options->analyze.minibatchSize, "minibatch CKA batch size (0 skips it)")
      ->capture_default_str();
  cmd->add_option("--probe-examples", options->analyze.probeTrainExamples,
                  "train examples each linear probe is fitted on (0: all)")
      ->capture_default_str();
  cmd->add_option("--resamples", options->analyze.bootstrapResamples,
                  "bootstrap resamples B of the 95% intervals and paired tests (at least 100)")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  cmd->add_option("--bootstrap-seed", options->analyze.bootstrapSeed,
                  "seed of the bootstrap (the same seed gives the same intervals)")
      ->capture_default_str();
  cmd->add_option("--reuse-teacher-from", options->analyze.teacherAnalysesFrom,
                  "an analysed run file of the same teacher (a study's teacher/run.h5): copy its teacher's heads "
                  "and probes results when computed from the same checkpoint, data and options, else compute "
                  "them (docs/analyses.md)");
  cmd->callback([options, &exitCode]() {
    exitCode = guarded([&]() {
      options->analyze.only = splitList(options->only);
      options->analyze.threads = static_cast<std::size_t>(options->threads);
      return commandAnalyze(options->runPath, options->analyze, options->threads, options->blasThreads);
    });
  });
}

} // namespace kdscope::app
