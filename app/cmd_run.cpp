// kdscope run JOB.json --out DIR: trains the teacher and distils each student, writing
// DIR/run.h5, with progress on the terminal. Ctrl-C cancels cleanly (status "cancelled");
// kdscope run --resume DIR continues a killed, cancelled or failed job. With --progress-json
// stdout carries a machine-readable progress stream (one JSON object a line) for the window,
// which runs concurrent jobs as child processes of this command.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.h"
#include "core/distributed/distributed.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "core/record/size_estimate.h"
#include "core/study/replicates.h"

namespace kdscope::app {

namespace {

/// JSON text helpers for the progress stream (no JSON library in the app layer needed).
std::string jsonString(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        out += buffer;
      } else {
        out += c; // UTF-8 passes through unchanged
      }
    }
  }
  return out + "\"";
}

/// %.17g round-trips a double exactly; JSON has no NaN or infinity, so those become null.
std::string jsonNumber(double value) {
  if (!std::isfinite(value)) {
    return "null";
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

const char* kindName(core::ProgressEvent::Kind kind) {
  switch (kind) {
  case core::ProgressEvent::Kind::Info: return "info";
  case core::ProgressEvent::Kind::Phase: return "phase";
  case core::ProgressEvent::Kind::Step: return "step";
  case core::ProgressEvent::Kind::Epoch: return "epoch";
  case core::ProgressEvent::Kind::Warning: return "warning";
  }
  return "info";
}

std::string eventJson(const core::ProgressEvent& e) {
  std::string out = "{\"kind\":\"" + std::string(kindName(e.kind)) + "\",\"task\":" + jsonString(e.task) +
                    ",\"model\":" + jsonString(e.model) + ",\"message\":" + jsonString(e.message) +
                    ",\"epoch\":" + std::to_string(e.epoch) + ",\"epochs\":" + std::to_string(e.epochs) +
                    ",\"step\":" + std::to_string(e.step) + ",\"steps\":" + std::to_string(e.steps) +
                    ",\"loss\":" + jsonNumber(e.loss) + ",\"terms\":{";
  bool first = true;
  for (const auto& [name, value] : e.terms) {
    out += (first ? "" : ",") + jsonString(name) + ":" + jsonNumber(value);
    first = false;
  }
  out += "},\"eval_accuracy\":" + jsonNumber(e.evalAccuracy) + ",\"eval_examples\":" + std::to_string(e.evalExamples) +
         ",\"fraction\":" + jsonNumber(e.fraction) +
         ",\"elapsed_seconds\":" + jsonNumber(e.elapsedSeconds) + "}";
  return out;
}

/// --progress-json: progress as JSON lines on stdout, batched like the window's own worker
/// (widgets/jobs/job_worker.cpp): Step events are collected and written at most every 100 ms,
/// every other event at once, each update carrying the newest event, every Step since the
/// previous update (so live curves miss no point) and the non-Step events in order. After
/// the job, one update with "final": true and then the result line. docs/gui.md documents
/// the format.
class JsonProgress {
public:
  static constexpr auto kThrottle = std::chrono::milliseconds(100);

  void operator()(const core::ProgressEvent& e) {
    m_latest = e;
    if (e.kind == core::ProgressEvent::Kind::Step) {
      m_points.push_back("{\"task\":" + jsonString(e.task) + ",\"model\":" + jsonString(e.model) +
                         ",\"step\":" + std::to_string(e.step) + ",\"loss\":" + jsonNumber(e.loss) + "}");
      if (!m_emitted || std::chrono::steady_clock::now() - m_last >= kThrottle) {
        flush(false);
      }
      return;
    }
    m_notices.push_back(eventJson(e));
    flush(false);
  }

  void flush(bool final) {
    std::string line = "{\"type\":\"progress\",\"final\":" + std::string(final ? "true" : "false") +
                       ",\"latest\":" + eventJson(m_latest) + ",\"points\":[";
    for (std::size_t i = 0; i < m_points.size(); ++i) {
      line += (i == 0 ? "" : ",") + m_points[i];
    }
    line += "],\"notices\":[";
    for (std::size_t i = 0; i < m_notices.size(); ++i) {
      line += (i == 0 ? "" : ",") + m_notices[i];
    }
    line += "]}\n";
    write(line);
    m_points.clear();
    m_notices.clear();
    m_emitted = true;
    m_last = std::chrono::steady_clock::now();
  }

  static void result(const core::JobResult& result) {
    write("{\"type\":\"result\",\"status\":" + jsonString(core::toString(result.status)) +
          ",\"message\":" + jsonString(result.message) + ",\"run_path\":" + jsonString(result.runPath) +
          ",\"estimated_bytes\":" + std::to_string(result.estimatedBytes) + "}\n");
  }

private:
  static void write(const std::string& line) {
    // One fwrite and a flush per line: the reader sees whole lines as they happen.
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }

  core::ProgressEvent m_latest;
  std::vector<std::string> m_points;
  std::vector<std::string> m_notices;
  bool m_emitted = false;
  std::chrono::steady_clock::time_point m_last{};
};

struct RunArguments {
  std::string jobPath;
  std::string outDir;
  std::string resumeDir;
  int threads = 0;
  int blasThreads = 0;
  double maxFileMb = -1.0; ///< < 0: the job's recording.max_file_mb
  bool progressJson = false;
  int nproc = 0; ///< > 0: start this many local ranks (app/launch_ranks.cpp)
};

int commandRun(const RunArguments& args) {
  if (args.nproc > 0) {
    if (!args.resumeDir.empty()) {
      std::cerr << "kdscope run: --nproc with --resume: a data-parallel job cannot be resumed yet; resume it "
                   "in one process\n";
      return kExitBadInput;
    }
    return launchRanks(args.nproc);
  }
  core::RunOptions options;
  // A rank of a data-parallel group (torchrun, srun, --nproc): join it before anything else.
  if (const auto rendezvous = core::dist::rendezvousFromEnvironment()) { // InputError: exit 2 (guarded)
    if (rendezvous->worldSize > 1) {
      options.group = core::dist::connect(*rendezvous);
    }
  }
  const int rank = options.group ? core::dist::rankOf(*options.group) : 0;
  std::optional<core::JobSpec> job;
  if (!args.resumeDir.empty()) {
    if (!args.jobPath.empty() || !args.outDir.empty()) {
      std::cerr << "kdscope run: --resume DIR continues the job recorded in DIR; give no job file or --out\n";
      return kExitBadInput;
    }
    job = core::loadJobForResume(args.resumeDir); // InputError: exit code 2 (guarded)
    options.outDir = args.resumeDir;
    options.resume = true;
  } else {
    if (args.jobPath.empty() || args.outDir.empty()) {
      std::cerr << "kdscope run: give a job file and --out DIR, or --resume DIR\n";
      return kExitBadInput;
    }
    auto parsed = core::loadJobFile(args.jobPath);
    if (!parsed.job) {
      printIssues("run", args.jobPath, "job", parsed.issues);
      return kExitBadInput;
    }
    job = std::move(parsed.job);
    options.outDir = args.outDir;
  }
  core::CancelToken cancel;
  const CancelOnSignal cancelOnSignal(cancel);
  // Under a file size limit (ulimit -f) a write past it raises SIGXFSZ, which would kill the
  // process and leave the run file "running"; ignored, the write fails with EFBIG and the
  // job stops with a message and status "failed" instead.
  std::signal(SIGXFSZ, SIG_IGN);
  options.threads = args.threads;
  options.blasThreads = args.blasThreads;
  options.maxFileMb = args.maxFileMb;
  TerminalProgress progress;
  JsonProgress json;
  core::ProgressSink sink = std::ref(progress);
  if (args.progressJson) {
    sink = std::ref(json);
  }
  if (rank > 0) {
    sink = nullptr; // rank 0 reports; the others only say how they ended
  }
  // A job with "replicates" runs once per replicate seed into DIR/rep-<seed>/ and writes
  // DIR/replicates.json and DIR/replicate_summary.json (core/study/replicates.h); running
  // the same command again completes the replicates that did not finish.
  const bool replicated = !options.resume && !job->replicateSeeds().empty();
  const auto result = replicated ? core::runReplicates(*job, options, cancel, sink)
                                 : core::runJob(*job, options, cancel, sink);
  if (rank > 0) {
    if (result.status == core::JobStatus::Succeeded) {
      return kExitOk;
    }
    std::cerr << "kdscope run: rank " << rank << ": " << core::toString(result.status) << ": " << result.message
              << "\n";
    if (result.status == core::JobStatus::BadInput) {
      return kExitBadInput;
    }
    return result.stoppedByPeer && launchedByKdscope() ? kExitStoppedByPeer : kExitFailed;
  }
  progress.clearLine();
  if (args.progressJson) {
    json.flush(true); // always the final state, then the result
    JsonProgress::result(result);
  }
  if (result.stoppedByPeer && launchedByKdscope()) {
    std::cerr << "kdscope run: " << core::toString(result.status) << ": " << result.message << "; run file "
              << result.runPath << "\n";
    return kExitStoppedByPeer;
  }
  switch (result.status) {
  case core::JobStatus::Succeeded: {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(result.runPath, ec);
    if (replicated) {
      std::cerr << "kdscope run: complete; " << job->replicateSeeds().size() << " replicates in " << options.outDir
                << " (summary " << core::replicateSummaryPath(options.outDir) << "; 'kdscope info " << options.outDir
                << "' shows it)\n";
      return kExitOk;
    }
    std::cerr << "kdscope run: complete; run file " << result.runPath;
    if (!ec) {
      std::cerr << " (" << core::formatBytes(bytes) << ", estimated " << core::formatBytes(result.estimatedBytes)
                << ")";
    }
    std::cerr << "\n";
    return kExitOk;
  }
  case core::JobStatus::Cancelled:
    if (replicated) {
      std::cerr << "kdscope run: " << result.message << "; run the same command again to complete the replicates\n";
      return kExitFailed;
    }
    std::cerr << "kdscope run: " << result.message << "; run file " << result.runPath
              << " keeps what was recorded (status \"cancelled\"); continue it with kdscope run --resume "
              << options.outDir << "\n";
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

} // namespace

void registerRun(CLI::App& app, int& exitCode) {
  auto options = std::make_shared<RunArguments>();
  auto* run = app.add_subcommand("run", "Run a job: train the teacher and distil each student, writing DIR/run.h5");
  run->add_option("job", options->jobPath, "job file (JSON; see docs/job-format.md)");
  run->add_option("--out,-o", options->outDir, "output folder (run.h5 and checkpoints/)");
  run->add_option("--resume", options->resumeDir,
                  "continue the killed, cancelled or failed job in DIR from its last checkpoints (completed "
                  "models are skipped; nothing recorded is lost or kept twice)");
  run->add_option("--max-file-mb", options->maxFileMb,
                  "refuse the job if its run file is estimated above this many MiB (0: no limit; default: the "
                  "job's recording.max_file_mb)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--threads", options->threads, "LibTorch intra-op threads (0: LibTorch's default)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--blas-threads", options->blasThreads,
                  "OpenBLAS threads (0: OpenBLAS's default, one per core; with OMP_WAIT_POLICY=PASSIVE, which "
                  "kdscope sets, that was fastest here: see bench/README.md)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--nproc", options->nproc,
                  "data-parallel training: start N local processes (ranks on 127.0.0.1) that each train on a "
                  "shard of every batch; rank 0 writes the run file (docs/distributed.md). Without it, a "
                  "process whose environment has WORLD_SIZE (torchrun, srun) joins that group")
      ->check(CLI::Range(1, 256));
  run->add_flag("--progress-json", options->progressJson,
               "machine-readable progress on stdout instead of progress lines on stderr: one JSON object a "
               "line, {\"type\":\"progress\",...} at most every 100 ms (every step since the previous line in "
               "\"points\") and at the end one with \"final\":true followed by {\"type\":\"result\",\"status\":..., "
               "\"message\":...,\"run_path\":...}; docs/gui.md gives the format. The window runs concurrent "
               "jobs this way");
  run->callback([options, &exitCode]() {
    exitCode = guarded([&]() { return commandRun(*options); });
  });
}

} // namespace kdscope::app
