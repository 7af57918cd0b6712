// Jobs at once: with more than one, the queue runs each job as a child process, the real
// `kdscope run --progress-json` (KDSCOPE_EXECUTABLE). Two tiny jobs on the synthetic
// hierarchy task run side by side and must record eval logits bit-identical to the same
// jobs run alone (same machine, same executable, same thread options: one code path, so
// bit identity is a fair demand); a cancelled child ends Cancelled with its run file saying
// "cancelled"; a child that cannot start or crashes fails only its own job.
// This binary has no LibTorch code of its own: training happens in the child processes,
// the run files are read with core::RunReader (HDF5 only).

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>

#include "core/record/run_reader.h"
#include "widgets/jobs/job_process.h"
#include "widgets/jobs/job_queue.h"
#include "test_run_file.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

const QString kExecutable = QStringLiteral(KDSCOPE_EXECUTABLE);

/// A job small enough to train in well under a second: 4 classes of 8-dim points, an MLP
/// teacher and one KD student.
core::JobSpec tinyJob(const std::string& name, std::uint64_t seed, int epochs = 3, int examplesPerClass = 60) {
  core::JobSpec job;
  job.name = name;
  job.seed = seed;
  core::TaskSpec task;
  task.name = "synthetic_hierarchy";
  task.superClasses = 2;
  task.classesPerSuper = 2;
  task.dim = 8;
  task.examplesPerClass = examplesPerClass;
  job.tasks.push_back(task);
  job.teacher.architecture.type = "mlp";
  job.teacher.architecture.hidden = {32};
  job.teacher.architecture.dropout = 0.1;
  job.teacher.training.epochs = epochs;
  job.teacher.training.batchSize = 16;
  job.teacher.training.lr = 3e-3;
  core::StudentSpec kd;
  kd.name = "kd";
  kd.architecture.type = "mlp";
  kd.architecture.hidden = {8};
  kd.training = job.teacher.training;
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 2.0;
  job.students = {kd};
  job.recording.logEvery = 1;
  job.analyze = false;
  return job;
}

struct Logits {
  std::vector<float> teacher;
  std::vector<float> student;
};

Logits readLogits(const QString& runPath) {
  const core::RunReader reader(runPath.toStdString());
  EXPECT_EQ(reader.summary().status, "complete") << runPath.toStdString();
  return Logits{reader.evalLogits("synthetic_hierarchy", "teacher"), reader.evalLogits("synthetic_hierarchy", "kd")};
}

/// Runs `jobs` through a queue and returns each one's finished result, in job order.
std::vector<core::JobResult> runQueue(JobQueue& queue, const std::vector<core::JobSpec>& jobs, const QString& root,
                                      int* maxRunning = nullptr) {
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  std::vector<int> ids;
  for (const core::JobSpec& job : jobs) {
    ids.push_back(queue.addJob(job, QDir(root).filePath(QString::fromStdString(job.name))));
  }
  int most = 0;
  const auto connection = QObject::connect(&queue, &JobQueue::jobStarted, &queue,
                                           [&] { most = std::max(most, queue.runningCount()); });
  queue.start();
  most = std::max(most, queue.runningCount());
  [&] { QTRY_VERIFY_WITH_TIMEOUT(finished.count() == static_cast<int>(jobs.size()), 60000); }();
  QObject::disconnect(connection);
  if (maxRunning != nullptr) {
    *maxRunning = most;
  }
  std::vector<core::JobResult> results(ids.size());
  for (const QList<QVariant>& args : finished) {
    const auto at = std::find(ids.begin(), ids.end(), args.at(0).toInt());
    results[static_cast<std::size_t>(at - ids.begin())] = args.at(1).value<core::JobResult>();
  }
  return results;
}

bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

} // namespace

TEST(JobProcess, ParsesTheProgressAndResultLinesOfKdscopeRun) {
  JobProgress progress;
  core::JobResult result;
  const QByteArray line =
      R"({"type":"progress","final":false,"latest":{"kind":"step","task":"t","model":"kd","message":"","epoch":2,)"
      R"("epochs":3,"step":17,"steps":30,"loss":0.25,"terms":{"kd":0.5,"ce":null},"eval_accuracy":null,)"
      R"("fraction":0.625,"elapsed_seconds":1.5},"points":[{"task":"t","model":"kd","step":16,"loss":0.5},)"
      R"({"task":"t","model":"kd","step":17,"loss":0.25}],"notices":[{"kind":"epoch","task":"t","model":"kd",)"
      R"("message":"","epoch":1,"epochs":3,"step":10,"steps":30,"loss":0.75,"terms":{},"eval_accuracy":0.5,"eval_examples":512,)"
      R"("fraction":0.5,"elapsed_seconds":1}]})";
  ASSERT_EQ(JobProcess::parseLine(line, &progress, &result), 1);
  EXPECT_FALSE(progress.final);
  EXPECT_EQ(progress.latest.kind, core::ProgressEvent::Kind::Step);
  EXPECT_EQ(progress.latest.model, "kd");
  EXPECT_EQ(progress.latest.step, 17);
  EXPECT_EQ(progress.latest.steps, 30);
  EXPECT_EQ(progress.latest.epoch, 2);
  EXPECT_DOUBLE_EQ(progress.latest.loss, 0.25);
  EXPECT_DOUBLE_EQ(progress.latest.fraction, 0.625);
  EXPECT_DOUBLE_EQ(progress.latest.terms.at("kd"), 0.5);
  EXPECT_TRUE(std::isnan(progress.latest.terms.at("ce"))); // null: a NaN in the child
  EXPECT_DOUBLE_EQ(progress.latest.evalAccuracy, -1.0);
  ASSERT_EQ(progress.points.size(), 2U);
  EXPECT_EQ(progress.points[0].step, 16);
  EXPECT_DOUBLE_EQ(progress.points[1].loss, 0.25);
  ASSERT_EQ(progress.notices.size(), 1U);
  EXPECT_EQ(progress.notices[0].kind, core::ProgressEvent::Kind::Epoch);
  EXPECT_DOUBLE_EQ(progress.notices[0].evalAccuracy, 0.5);
  EXPECT_EQ(progress.notices[0].evalExamples, 512U);
  EXPECT_EQ(progress.latest.evalExamples, 0U); // absent: unknown

  ASSERT_EQ(JobProcess::parseLine(R"({"type":"result","status":"cancelled","message":"cancelled during x",)"
                                  R"("run_path":"/o/run.h5","estimated_bytes":1234})",
                                  &progress, &result),
            2);
  EXPECT_EQ(result.status, core::JobStatus::Cancelled);
  EXPECT_EQ(result.message, "cancelled during x");
  EXPECT_EQ(result.runPath, "/o/run.h5");
  EXPECT_EQ(result.estimatedBytes, 1234U);
  EXPECT_EQ(JobProcess::parseLine("kdscope run: something else", &progress, &result), 0);
  EXPECT_EQ(JobProcess::parseLine(R"({"type":"other"})", &progress, &result), 0);
}

TEST(JobProcess, TheChildJobFileKeepsRelativePathsPointingWhereTheyDid) {
  core::JobSpec job = tinyJob("paths", 1);
  job.baseDir = "/jobs/here";
  job.dataDir = "../data";
  job.teacher.checkpoint = "/abs/teacher-{task}.pt";
  const QString json = JobProcess::jobJsonForChild(job);
  EXPECT_TRUE(json.contains(QStringLiteral("\"data_dir\": \"/jobs/data\""))) << json.toStdString();
  EXPECT_TRUE(json.contains(QStringLiteral("/abs/teacher-{task}.pt"))) << json.toStdString();
}

TEST(JobProcess, JobsRunSideBySideComputeExactlyWhatTheyComputeAlone) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const std::vector<core::JobSpec> jobs{tinyJob("a", 5), tinyJob("b", 6)};

  // Alone: one after the other, each in its own child process.
  JobQueue alone;
  alone.setExecutable(kExecutable);
  alone.setProcessMode(ProcessMode::Always);
  alone.setThreads(1, 1);
  int aloneMost = 0;
  const auto aloneResults = runQueue(alone, jobs, dir.filePath(QStringLiteral("alone")), &aloneMost);
  EXPECT_EQ(aloneMost, 1);

  // Together: two at once.
  JobQueue together;
  together.setExecutable(kExecutable);
  together.setMaxConcurrent(2);
  together.setThreads(1, 1);
  int togetherMost = 0;
  const auto togetherResults = runQueue(together, jobs, dir.filePath(QStringLiteral("together")), &togetherMost);
  EXPECT_EQ(togetherMost, 2); // they did run side by side

  for (std::size_t j = 0; j < jobs.size(); ++j) {
    SCOPED_TRACE(jobs[j].name);
    ASSERT_EQ(aloneResults[j].status, core::JobStatus::Succeeded) << aloneResults[j].message;
    ASSERT_EQ(togetherResults[j].status, core::JobStatus::Succeeded) << togetherResults[j].message;
    const Logits first = readLogits(QString::fromStdString(aloneResults[j].runPath));
    const Logits second = readLogits(QString::fromStdString(togetherResults[j].runPath));
    // 4 classes x 60 examples, 20% held out: 48 eval rows of 4 logits.
    ASSERT_EQ(first.teacher.size(), 48U * 4U);
    ASSERT_EQ(first.student.size(), 48U * 4U);
    EXPECT_TRUE(bitIdentical(first.teacher, second.teacher));
    EXPECT_TRUE(bitIdentical(first.student, second.student));
  }
  // The two jobs differ (other seeds), so a swap or a shared result would show above.
  EXPECT_FALSE(bitIdentical(readLogits(QString::fromStdString(aloneResults[0].runPath)).teacher,
                            readLogits(QString::fromStdString(aloneResults[1].runPath)).teacher));
}

TEST(JobProcess, CancellingAChildEndsItCancelledAndTheRunFileSaysSo) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  JobQueue queue;
  queue.setExecutable(kExecutable);
  queue.setMaxConcurrent(2);
  queue.setThreads(1, 1);
  QSignalSpy progress(&queue, &JobQueue::jobProgress);
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  // Long enough (thousands of steps) that it is still training when cancelled.
  const int id = queue.addJob(tinyJob("long", 7, /*epochs=*/400, /*examplesPerClass=*/200),
                              dir.filePath(QStringLiteral("long")));
  queue.start();
  // Wait until it trains: the first logged step.
  QTRY_VERIFY_WITH_TIMEOUT(
      std::any_of(progress.begin(), progress.end(),
                  [](const QList<QVariant>& args) { return !args.at(1).value<JobProgress>().points.empty(); }),
      20000);
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Running);
  const auto before = std::chrono::steady_clock::now();
  queue.cancel(id);
  ASSERT_TRUE(finished.wait(10000));
  const auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), 4000); // SIGTERM, not the kill
  const auto result = finished.first().at(1).value<core::JobResult>();
  EXPECT_EQ(result.status, core::JobStatus::Cancelled) << result.message;
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Cancelled);
  EXPECT_TRUE(progress.last().at(1).value<JobProgress>().final);
  const core::RunReader reader(result.runPath);
  EXPECT_EQ(reader.summary().status, "cancelled");
  EXPECT_EQ(queue.runningCount(), 0);
}

TEST(JobProcess, AChildThatCannotStartOrCrashesFailsOnlyItsOwnJob) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  // A stand-in for kdscope that kills itself for the job named "crasher" and hands every
  // other job to the real executable.
  const QString script = dir.filePath(QStringLiteral("kdscope-or-crash.sh"));
  {
    QFile file(script);
    ASSERT_TRUE(file.open(QIODevice::WriteOnly));
    file.write(QStringLiteral("#!/bin/sh\n"
                              "if grep -q '\"name\": *\"crasher\"' \"$2\"; then\n"
                              "  echo 'about to crash' >&2\n"
                              "  ulimit -c 0\n"
                              "  kill -SEGV $$\n"
                              "fi\n"
                              "exec '%1' \"$@\"\n")
                   .arg(kExecutable)
                   .toUtf8());
    file.close();
    ASSERT_TRUE(file.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner));
  }
  JobQueue queue;
  queue.setExecutable(script);
  queue.setMaxConcurrent(2);
  queue.setThreads(1, 1);
  QSignalSpy log(&queue, &JobQueue::logLine);
  const auto results = runQueue(queue, {tinyJob("crasher", 1), tinyJob("fine", 2)}, dir.path());
  EXPECT_EQ(results[0].status, core::JobStatus::Failed);
  const QString message = QString::fromStdString(results[0].message);
  EXPECT_TRUE(message.contains(QStringLiteral("'crasher'"))) << results[0].message;
  EXPECT_TRUE(message.contains(QStringLiteral("signal %1").arg(SIGSEGV))) << results[0].message;
  EXPECT_TRUE(message.contains(QStringLiteral("about to crash"))) << results[0].message;
  EXPECT_EQ(results[1].status, core::JobStatus::Succeeded) << results[1].message;
  EXPECT_EQ(readLogits(QString::fromStdString(results[1].runPath)).teacher.size(), 48U * 4U);

  // An executable that does not exist: the job fails, the queue goes on to the next one.
  JobQueue missing;
  missing.setExecutable(dir.filePath(QStringLiteral("no-such-kdscope")));
  missing.setMaxConcurrent(2);
  const auto failed = runQueue(missing, {tinyJob("first", 1), tinyJob("second", 2)}, dir.filePath(QStringLiteral("m")));
  for (const core::JobResult& result : failed) {
    EXPECT_EQ(result.status, core::JobStatus::Failed);
    EXPECT_NE(result.message.find("could not start"), std::string::npos) << result.message;
    EXPECT_NE(result.message.find("no-such-kdscope"), std::string::npos) << result.message;
  }
  EXPECT_EQ(missing.model()->job(missing.model()->at(1).id)->state, JobState::Failed);
  EXPECT_EQ(missing.runningCount(), 0);
}

TEST(JobProcess, TheProgramNamesTheCommandThatStartsIt) {
  // A build tree (app/kdscope beside app/libexec/kdscope-program) and an installed one
  // (bin/kdscope, libexec/kdscope/kdscope-program), made of empty executable files.
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const auto touch = [&](const QString& relative, bool executable) {
    const QString path = dir.filePath(relative);
    QDir().mkpath(QFileInfo(path).path());
    QFile file(path);
    EXPECT_TRUE(file.open(QIODevice::WriteOnly));
    file.close();
    file.setPermissions(executable ? (QFileDevice::ReadOwner | QFileDevice::ExeOwner) : QFileDevice::ReadOwner);
    return path;
  };
  const QString buildCommand = touch(QStringLiteral("build/app/kdscope"), true);
  const QString buildProgram = touch(QStringLiteral("build/app/libexec/kdscope-program"), true);
  // Installed: the command where the configured install folders put it, relative to the
  // program's folder (bin/ beside libexec/kdscope/ by default).
  const QString installedProgram = touch(QStringLiteral("prefix/libexec/kdscope/kdscope-program"), true);
  const QString installedCommand =
      touch(QDir::cleanPath(QStringLiteral("prefix/libexec/kdscope/") + JobQueue::installedCommandFromProgram()), true);
  EXPECT_EQ(QFileInfo(installedCommand).fileName(), QStringLiteral("kdscope"));
  const QString loneProgram = touch(QStringLiteral("lone/libexec/kdscope-program"), true);
  touch(QStringLiteral("plain/kdscope"), false); // not executable: not a command
  const QString plainProgram = touch(QStringLiteral("plain/libexec/kdscope-program"), true);
  EXPECT_EQ(JobQueue::executableFor(buildProgram), QFileInfo(buildCommand).canonicalFilePath());
  EXPECT_EQ(JobQueue::executableFor(installedProgram), QFileInfo(installedCommand).canonicalFilePath());
  EXPECT_EQ(JobQueue::executableFor(loneProgram), loneProgram);
  EXPECT_EQ(JobQueue::executableFor(plainProgram), plainProgram);
  EXPECT_EQ(JobQueue::executableFor(buildCommand), buildCommand);
  EXPECT_TRUE(JobQueue::executableFor(dir.filePath(QStringLiteral("build/tests/kdscope_widgets_tests"))).isEmpty());
}

TEST(JobProcess, OnlyTheKdscopeExecutableIsStartedByDefault) {
  // This binary is not kdscope: started with `run JOB --out DIR` it would run its own tests,
  // so a queue here has no executable unless given one, and runs jobs one at a time.
  EXPECT_TRUE(JobQueue::defaultExecutable().isEmpty());
  JobQueue queue([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                    const core::ProgressSink&) { return core::JobResult{core::JobStatus::Succeeded, "", ""}; });
  EXPECT_TRUE(queue.executable().isEmpty());
  queue.setMaxConcurrent(2);
  QSignalSpy log(&queue, &JobQueue::logLine);
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  queue.addJob(tinyJob("x", 1), QStringLiteral("/tmp/x"));
  queue.addJob(tinyJob("y", 2), QStringLiteral("/tmp/y"));
  queue.start();
  EXPECT_EQ(queue.runningCount(), 1);
  QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 5000);
  bool said = false;
  for (const QList<QVariant>& args : log) {
    said = said || args.at(0).toString().contains(QStringLiteral("one at a time"));
  }
  EXPECT_TRUE(said);
}
