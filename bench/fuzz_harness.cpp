// The fuzz bench's harness (bench/fuzz.sh; docs/run-format.md, "Fuzzing at scale").
//
//   fuzz_harness runs LIST.tsv OUT.tsv [--limit S] [--consumers info,window,analyze]
//   fuzz_harness jobs LIST.tsv OUT.tsv [--limit S]
//
// LIST.tsv is a manifest of fuzz_mutate_runs.py / fuzz_mutate_jobs.py (path, kind, ... per
// line). For each file and each consumer the harness forks a child that runs the same code
// as that consumer, under alarm(S), and classifies how it ended:
//
//   info      what `kdscope info` runs: RunReader (probe, open, validation), summary(),
//             readHeadlines() (app/cmd_info.cpp)
//   window    what the workbench window runs: RunBrowser::openRun (RunDocument and the
//             browser's tree), then every analysis view (Overview, Layers, Heads, Tasks,
//             Knowledge, Examples) given each task of the run with each of its students,
//             as MainWindow::refreshCurrentView does; a view's error label is its refusal
//   analyze   what `kdscope analyze` runs: core::analyzeRun with the default options, on a
//             copy of the file (analysis writes into the file)
//   job       what `kdscope run JOB` and the job editor run first: core::loadJobFile
//
// Outcomes: accepted; refused (an InputError, or analyze's BadInput, or a view's error
// label) whose message contains the file's path; failed (another exception, analyze's
// Failed) whose message contains the path; unnamed (a refusal or failure whose message does
// not contain the path); crash (a signal, or a sanitizer's non-zero exit, before a result);
// hang (not finished within S seconds: SIGALRM, or SIGKILL at S + 5 s). For job files a
// refusal must also give every issue a non-empty path, and the harness notes whether an
// issue names the JSON path the mutation touched (or an ancestor or descendant of it).
//
// One line per file and consumer is appended to OUT.tsv: path, kind, consumer, outcome,
// seconds, peak resident MB of the child, child pid, detail, message.
#include <QApplication>
#include <QStandardPaths>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/analysis/analysis_results.h"
#include "core/analysis/analyze_run.h"
#include "core/common/error.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "core/record/run_reader.h"
#include "widgets/views/examples_view.h"
#include "widgets/views/heads_view.h"
#include "widgets/views/knowledge_view.h"
#include "widgets/views/layers_view.h"
#include "widgets/views/overview_view.h"
#include "widgets/shell/run_browser.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/tasks_view.h"

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif

namespace {

using namespace kdscope;

/// What a consumer reports from the child: "accepted", "refused" or "failed", a detail and a
/// message.
struct Verdict {
  std::string status;
  std::string detail;
  std::string message;
};

struct Outcome {
  std::string outcome;
  std::string detail;
  std::string message;
  double seconds = 0.0;
  long maxRssKb = 0;
  pid_t pid = 0;
};

std::string clean(std::string text, std::size_t max = 600) {
  for (char& c : text) {
    if (c == '\t' || c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  if (text.size() > max) {
    text = text.substr(0, max) + "...";
  }
  return text;
}

Verdict guardedVerdict(const std::function<Verdict()>& body) {
  try {
    return body();
  } catch (const core::InputError& e) {
    return {"refused", "InputError", e.what()};
  } catch (const std::exception& e) {
    return {"failed", "exception", e.what()};
  } catch (...) {
    return {"failed", "unknown exception", ""};
  }
}

// ---- Consumers (run in the child) ------------------------------------------------------

Verdict consumeInfo(const std::string& path) {
  return guardedVerdict([&] {
    const core::RunReader reader(path);
    const auto summary = reader.summary();
    const auto headlines = core::AnalysisResults(reader).headlines();
    return Verdict{"accepted", std::to_string(summary.tasks.size()) + " tasks", ""};
  });
}

Verdict consumeWindow(const std::string& path) {
  return guardedVerdict([&] {
    widgets::RunBrowser browser;
    const QString qpath = QString::fromStdString(path);
    if (!browser.openRun(qpath, /*quiet=*/true)) {
      return Verdict{"refused", "RunBrowser::openRun", browser.lastError().toStdString()};
    }
    const widgets::RunDocument* run = browser.run(0);
    std::vector<std::unique_ptr<widgets::AnalysisView>> views;
    views.emplace_back(new widgets::OverviewView);
    views.emplace_back(new widgets::LayersView);
    views.emplace_back(new widgets::HeadsView);
    views.emplace_back(new widgets::TasksView);
    views.emplace_back(new widgets::KnowledgeView);
    views.emplace_back(new widgets::ExamplesView);
    int shown = 0;
    int errors = 0;
    std::string first;
    for (const QString& task : run->taskNames()) {
      QStringList students = run->studentsOf(task);
      if (students.isEmpty()) {
        students.append(QString());
      }
      for (const QString& student : students) {
        const widgets::ViewContext context{run, task, run->teacherOf(task), student};
        for (const auto& view : views) {
          view->setContext(context);
          ++shown;
          const QString error = view->errorText();
          if (!error.isEmpty()) {
            if (errors++ == 0) {
              first = std::string(view->metaObject()->className()) + ": " + error.toStdString();
            }
          }
        }
      }
    }
    for (const auto& view : views) {
      view->setContext({});
    }
    if (errors > 0) {
      return Verdict{"refused", std::to_string(errors) + " of " + std::to_string(shown) + " views", first};
    }
    return Verdict{"accepted", std::to_string(shown) + " views", ""};
  });
}

Verdict consumeAnalyze(const std::string& path) {
  return guardedVerdict([&] {
    core::configureThreads(1, 1);
    core::AnalyzeOptions options;
    options.threads = 1;
    const core::CancelToken cancel;
    const auto result = core::analyzeRun(path, options, cancel, {});
    switch (result.status) {
    case core::AnalyzeStatus::Succeeded:
      return Verdict{"accepted", std::to_string(result.warnings.size()) + " skipped", ""};
    case core::AnalyzeStatus::BadInput:
      return Verdict{"refused", "BadInput", result.message};
    case core::AnalyzeStatus::Cancelled:
      return Verdict{"failed", "Cancelled", result.message};
    case core::AnalyzeStatus::Failed:
      break;
    }
    return Verdict{"failed", "Failed", result.message};
  });
}

/// Does `issue` (a parser path) name `mutated` or an ancestor or descendant of it?
bool pathRelated(const std::string& issue, const std::string& mutated) {
  if (issue == mutated) {
    return true;
  }
  const auto startsAt = [](const std::string& longer, const std::string& prefix) {
    return prefix.empty() ||
           (longer.size() > prefix.size() && longer.compare(0, prefix.size(), prefix) == 0 &&
            (longer[prefix.size()] == '.' || longer[prefix.size()] == '['));
  };
  return startsAt(issue, mutated) || startsAt(mutated, issue);
}

Verdict consumeJob(const std::string& path, const std::string& mutatedPaths) {
  return guardedVerdict([&] {
    const auto parsed = core::loadJobFile(path);
    if (parsed.job) {
      return Verdict{"accepted", "valid", ""};
    }
    std::string message;
    bool allHavePaths = !parsed.issues.empty();
    bool syntaxNamed = false;
    std::size_t longest = 0;
    for (const auto& issue : parsed.issues) {
      longest = std::max(longest, issue.str().size());
      if (issue.path.empty()) {
        allHavePaths = false;
      }
      if (issue.path.rfind(path, 0) == 0) {
        syntaxNamed = true; // "FILE:LINE:COL" or FILE
      }
      if (message.size() < 400) {
        message += (message.empty() ? "" : " | ") + issue.str();
      }
    }
    // Which mutated path, if any, an issue names.
    std::string match = "no";
    std::stringstream paths(mutatedPaths);
    std::string mutated;
    while (std::getline(paths, mutated, '|')) {
      if (mutated == "<syntax>") {
        if (syntaxNamed) {
          match = "yes";
        }
        continue;
      }
      for (const auto& issue : parsed.issues) {
        if (pathRelated(issue.path, mutated)) {
          match = "yes";
        }
      }
    }
    const std::string detail = std::to_string(parsed.issues.size()) + " issues, longest " + std::to_string(longest) +
                               " bytes; path " + match;
    // The command line prints "kdscope run: FILE is not a valid job:" above the issues, so
    // the file is always named; what must be there is a path for every issue.
    return Verdict{allHavePaths ? "refused" : "unnamed", detail, path + ": " + message};
  });
}

// ---- Fork, limit, classify ---------------------------------------------------------------

Outcome runChild(const std::function<Verdict()>& consumer, const std::string& path, int limitSeconds,
                 long memoryLimitMb) {
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("pipe");
    std::exit(3);
  }
  std::fflush(nullptr);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::setpgid(0, 0);
    ::signal(SIGALRM, SIG_DFL);
    ::alarm(static_cast<unsigned>(limitSeconds));
#ifndef FUZZ_ASAN
    if (memoryLimitMb > 0) {
      const rlimit limit{static_cast<rlim_t>(memoryLimitMb) << 20, static_cast<rlim_t>(memoryLimitMb) << 20};
      ::setrlimit(RLIMIT_AS, &limit);
    }
#else
    (void)memoryLimitMb;
#endif
    const Verdict v = consumer();
    const std::string line = v.status + "\t" + clean(v.detail) + "\t" + clean(v.message, 4000) + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::write(fds[1], line.data() + off, line.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  Outcome out;
  out.pid = pid;
  std::string text;
  bool killed = false;
  const auto deadline = start + std::chrono::seconds(limitSeconds + 5);
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r > 0) {
      const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
      if (n <= 0) {
        break; // EOF: the child exited (or closed the pipe)
      }
      text.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fds[0]);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  // A probe grandchild left behind by a killed child.
  ::kill(-pid, SIGKILL);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.maxRssKb = usage.ru_maxrss;
  if (killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)) {
    out.outcome = "hang";
    out.message = "no result within " + std::to_string(limitSeconds) + " s";
    return out;
  }
  if (text.empty() || text.back() != '\n') {
    out.outcome = "crash";
    out.message = WIFSIGNALED(status) ? std::string("signal ") + ::strsignal(WTERMSIG(status))
                                      : "exit code " + std::to_string(WEXITSTATUS(status)) + " without a result";
    return out;
  }
  text.pop_back();
  const auto tab1 = text.find('\t');
  const auto tab2 = text.find('\t', tab1 + 1);
  const std::string status1 = text.substr(0, tab1);
  out.detail = text.substr(tab1 + 1, tab2 - tab1 - 1);
  out.message = text.substr(tab2 + 1);
  if (status1 == "accepted") {
    out.outcome = "accepted";
  } else if (status1 == "unnamed" || out.message.find(path) == std::string::npos) {
    out.outcome = "unnamed";
  } else {
    out.outcome = status1;
  }
  if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
    // A result, and then a crash on the way out (destructors skipped by _exit, so a
    // sanitizer's exit at a leak check or an atexit handler).
    out.outcome = "crash";
    out.message = "after the result: " + (WIFSIGNALED(status) ? std::string("signal ") + ::strsignal(WTERMSIG(status))
                                                               : "exit code " + std::to_string(WEXITSTATUS(status)));
  }
  return out;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, sep)) {
    out.push_back(item);
  }
  return out;
}

int usage() {
  std::cerr << "usage: fuzz_harness runs|jobs LIST.tsv OUT.tsv [--limit S] [--memory-mb M] "
               "[--consumers info,window,analyze]\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    return usage();
  }
  const std::string mode = argv[1];
  const std::string listPath = argv[2];
  const std::string outPath = argv[3];
  int limit = 10;
  long memoryMb = 8192;
  std::vector<std::string> consumers = {"info", "window", "analyze"};
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--limit") {
      limit = std::atoi(argv[i + 1]);
    } else if (flag == "--memory-mb") {
      memoryMb = std::atol(argv[i + 1]);
    } else if (flag == "--consumers") {
      consumers = split(argv[i + 1], ',');
    } else {
      return usage();
    }
  }
  if (mode != "runs" && mode != "jobs") {
    return usage();
  }
  // The window's widgets need an application object; offscreen, created before any fork
  // (the children inherit it), with settings kept out of the user's configuration.
  std::unique_ptr<QApplication> app;
  if (mode == "runs") {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
      qputenv("QT_QPA_PLATFORM", "offscreen");
    }
    QStandardPaths::setTestModeEnabled(true);
    app = std::make_unique<QApplication>(argc, argv);
  }
  std::ifstream list(listPath);
  std::ofstream out(outPath, std::ios::app);
  std::string line;
  std::size_t files = 0;
  while (std::getline(list, line)) {
    const auto fields = split(line, '\t');
    if (fields.size() < 2) {
      continue;
    }
    const std::string& path = fields[0];
    const std::string& kind = fields[1];
    ++files;
    auto record = [&](const std::string& consumer, const std::string& target, const Outcome& o) {
      out << path << '\t' << kind << '\t' << consumer << '\t' << o.outcome << '\t' << o.seconds << '\t'
          << o.maxRssKb / 1024 << '\t' << o.pid << '\t' << clean(o.detail) << '\t'
          << clean(target == path ? o.message : o.message + " [on " + target + "]") << '\n';
      out.flush();
    };
    if (mode == "jobs") {
      const std::string mutated = fields.size() > 2 ? fields[2] : "";
      record("job", path, runChild([&] { return consumeJob(path, mutated); }, path, limit, memoryMb));
      continue;
    }
    for (const std::string& consumer : consumers) {
      if (consumer == "info") {
        record(consumer, path, runChild([&] { return consumeInfo(path); }, path, limit, memoryMb));
      } else if (consumer == "window") {
        record(consumer, path, runChild([&] { return consumeWindow(path); }, path, limit, memoryMb));
      } else if (consumer == "analyze") {
        const std::string copy = path + ".analyze.h5";
        std::error_code ec;
        std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing, ec);
        record(consumer, copy, runChild([&] { return consumeAnalyze(copy); }, copy, limit, memoryMb));
        std::filesystem::remove(copy, ec);
      }
    }
  }
  std::cerr << "fuzz_harness: " << files << " files\n";
  return 0;
}
