// The job queue: the model (QAbstractItemModelTester, rows after add/move/remove), and
// JobQueue with fake jobs: progress, throttling, the final state, cancel, one at a time,
// and a runner that throws.

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTest>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <mutex>
#include <thread>

#include "widgets/jobs/job_queue.h"
#include "widgets/jobs/job_queue_model.h"
#include "test_run_file.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

core::JobSpec spec(const std::string& name) {
  core::JobSpec job;
  job.name = name;
  return job;
}

QStringList names(const JobQueueModel& model) {
  QStringList list;
  for (int r = 0; r < model.rowCount(); ++r) {
    list << model.index(r, JobQueueModel::ColName).data().toString();
  }
  return list;
}

/// A fake job: `steps` Step events `sleepMs` apart (loss = 1 / step), honouring the token.
JobRunner fakeRunner(int steps, int sleepMs, std::atomic<bool>* sawCancel = nullptr) {
  return [=](const core::JobSpec& job, const core::RunOptions& options, const core::CancelToken& cancel,
             const core::ProgressSink& sink) {
    core::ProgressEvent phase;
    phase.kind = core::ProgressEvent::Kind::Phase;
    phase.task = "polarity";
    phase.model = "teacher";
    phase.message = "training teacher";
    sink(phase);
    for (int s = 1; s <= steps; ++s) {
      if (cancel.cancelled()) {
        if (sawCancel != nullptr) {
          sawCancel->store(true);
        }
        return core::JobResult{core::JobStatus::Cancelled, "", options.outDir + "/run.h5"};
      }
      core::ProgressEvent event;
      event.kind = core::ProgressEvent::Kind::Step;
      event.task = "polarity";
      event.model = "teacher";
      event.epoch = 1 + (s - 1) * 2 / steps;
      event.epochs = 2;
      event.step = s;
      event.steps = steps;
      event.loss = 1.0 / s;
      event.fraction = static_cast<double>(s) / steps;
      event.elapsedSeconds = s * sleepMs / 1000.0;
      sink(event);
      std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
    }
    return core::JobResult{core::JobStatus::Succeeded, "", options.outDir + "/run.h5"};
  };
}

} // namespace

TEST(JobQueueModel, AddMoveRemoveKeepRowsConsistent) {
  JobQueueModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Fatal);
  const int a = model.addJob(spec("a"), "/tmp/a");
  const int b = model.addJob(spec("b"), "/tmp/b");
  const int c = model.addJob(spec("c"), "/tmp/c");
  EXPECT_EQ(names(model), (QStringList{"a", "b", "c"}));
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(model.columnCount(), JobQueueModel::ColumnCount);
  EXPECT_EQ(model.index(0, JobQueueModel::ColStatus).data().toString(), QStringLiteral("Queued"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColProgress).data().toString(), QStringLiteral("0%"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColLoss).data().toString(), QStringLiteral("-"));
  EXPECT_EQ(model.headerData(JobQueueModel::ColTimeLeft, Qt::Horizontal).toString(), QStringLiteral("Time left"));

  EXPECT_TRUE(model.moveJob(0, 2));
  EXPECT_EQ(names(model), (QStringList{"b", "c", "a"}));
  EXPECT_TRUE(model.moveJob(2, 0));
  EXPECT_EQ(names(model), (QStringList{"a", "b", "c"}));
  EXPECT_TRUE(model.moveJob(1, 2));
  EXPECT_EQ(names(model), (QStringList{"a", "c", "b"}));
  EXPECT_FALSE(model.moveJob(0, 3));
  EXPECT_EQ(model.rowOf(b), 2);

  EXPECT_TRUE(model.removeJob(1));
  EXPECT_EQ(names(model), (QStringList{"a", "b"}));
  EXPECT_EQ(model.rowOf(c), -1);
  EXPECT_EQ(model.nextQueued(), a);

  // A running job cannot be removed.
  JobEntry running = *model.job(a);
  running.state = JobState::Running;
  running.fraction = 0.25;
  running.epoch = 1;
  running.epochs = 3;
  running.step = 10;
  running.steps = 40;
  running.loss = 0.5;
  running.hasLoss = true;
  running.timeLeftSeconds = 75;
  model.update(running);
  EXPECT_FALSE(model.removeJob(0));
  EXPECT_EQ(model.index(0, JobQueueModel::ColProgress).data().toString(), QStringLiteral("25%"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColEpoch).data().toString(), QStringLiteral("1/3"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColStep).data().toString(), QStringLiteral("10/40"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColLoss).data().toString(), QStringLiteral("0.5000"));
  EXPECT_EQ(model.index(0, JobQueueModel::ColTimeLeft).data().toString(), QStringLiteral("1:15"));
  EXPECT_DOUBLE_EQ(model.index(0, JobQueueModel::ColProgress).data(JobQueueModel::kFractionRole).toDouble(), 0.25);
  EXPECT_EQ(model.nextQueued(), b);
}

TEST(JobQueue, FakeJobReportsThrottledProgressAndTheFinalState) {
  constexpr int kSteps = 150;
  JobQueue queue(fakeRunner(kSteps, /*sleepMs=*/4));
  QAbstractItemModelTester tester(queue.model(), QAbstractItemModelTester::FailureReportingMode::Fatal);
  QSignalSpy started(&queue, &JobQueue::jobStarted);
  QSignalSpy progress(&queue, &JobQueue::jobProgress);
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  QSignalSpy idle(&queue, &JobQueue::idle);
  const int id = queue.addJob(spec("fake"), "/tmp/fake-out");
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Queued);
  EXPECT_EQ(started.count(), 0); // adding does not start the queue
  queue.start();
  ASSERT_EQ(started.count(), 1);
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Running);
  ASSERT_TRUE(finished.wait(10000));
  QTRY_COMPARE_WITH_TIMEOUT(idle.count(), 1, 2000);

  // Every step arrives exactly once, in order, across the throttled updates.
  std::vector<long> steps;
  bool sawFinal = false;
  for (const QList<QVariant>& args : progress) {
    EXPECT_EQ(args.at(0).toInt(), id);
    const auto update = args.at(1).value<JobProgress>();
    for (const LivePoint& p : update.points) {
      steps.push_back(p.step);
      EXPECT_EQ(p.task, QStringLiteral("polarity"));
      EXPECT_EQ(p.model, QStringLiteral("teacher"));
    }
    sawFinal = sawFinal || update.final;
  }
  ASSERT_EQ(steps.size(), static_cast<std::size_t>(kSteps));
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_EQ(steps[static_cast<std::size_t>(s)], s + 1);
  }
  EXPECT_TRUE(sawFinal);
  EXPECT_TRUE(progress.last().at(1).value<JobProgress>().final); // the final state comes last
  // ~0.6 s of steps at <= 10 updates a second, plus the phase notice and the final update.
  EXPECT_LE(progress.count(), 15);
  EXPECT_GE(progress.count(), 3);

  const auto result = finished.first().at(1).value<core::JobResult>();
  EXPECT_EQ(result.status, core::JobStatus::Succeeded);
  const JobEntry* entry = queue.model()->job(id);
  EXPECT_EQ(entry->state, JobState::Succeeded);
  EXPECT_DOUBLE_EQ(entry->fraction, 1.0);
  EXPECT_EQ(entry->step, kSteps);
  EXPECT_NEAR(entry->loss, 1.0 / kSteps, 1e-12);
  EXPECT_EQ(entry->runPath, QStringLiteral("/tmp/fake-out/run.h5"));
  const int row = queue.model()->rowOf(id);
  EXPECT_EQ(queue.model()->index(row, JobQueueModel::ColStatus).data().toString(), QStringLiteral("Succeeded"));
  EXPECT_EQ(queue.model()->index(row, JobQueueModel::ColStep).data().toString(), QStringLiteral("150/150"));
  EXPECT_EQ(queue.runningCount(), 0);
}

TEST(JobQueue, CancelReachesTheJobAndTheStatusBecomesCancelled) {
  std::atomic<bool> sawCancel{false};
  JobQueue queue(fakeRunner(/*steps=*/100000, /*sleepMs=*/2, &sawCancel));
  QSignalSpy progress(&queue, &JobQueue::jobProgress);
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  const int id = queue.addJob(spec("long"), "/tmp/long");
  const int queued = queue.addJob(spec("never"), "/tmp/never");
  queue.start();
  ASSERT_TRUE(progress.wait(5000));
  queue.cancel(queued); // a queued job is cancelled at once
  EXPECT_EQ(queue.model()->job(queued)->state, JobState::Cancelled);
  const auto before = std::chrono::steady_clock::now();
  queue.cancel(id);
  ASSERT_TRUE(finished.wait(5000));
  const auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), 2000);
  EXPECT_TRUE(sawCancel.load());
  EXPECT_EQ(finished.first().at(1).value<core::JobResult>().status, core::JobStatus::Cancelled);
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Cancelled);
  QTest::qWait(50);
  EXPECT_EQ(finished.count(), 1); // the cancelled queued job never ran
  EXPECT_EQ(queue.runningCount(), 0);
}

TEST(JobQueue, RunsOneJobAtATimeInRowOrder) {
  std::atomic<int> concurrent{0};
  std::atomic<int> maxConcurrent{0};
  std::mutex mutex;
  std::vector<std::string> order;
  JobQueue queue([&](const core::JobSpec& job, const core::RunOptions&, const core::CancelToken&,
                     const core::ProgressSink&) {
    const int now = ++concurrent;
    int seen = maxConcurrent.load();
    while (now > seen && !maxConcurrent.compare_exchange_weak(seen, now)) {
    }
    {
      const std::lock_guard<std::mutex> lock(mutex);
      order.push_back(job.name);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    --concurrent;
    return core::JobResult{core::JobStatus::Succeeded, "", ""};
  });
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  queue.addJob(spec("first"), "/tmp/1");
  queue.addJob(spec("second"), "/tmp/2");
  queue.addJob(spec("third"), "/tmp/3");
  queue.model()->moveJob(2, 0); // third, first, second
  queue.start();
  QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 5000);
  EXPECT_EQ(maxConcurrent.load(), 1);
  EXPECT_EQ(order, (std::vector<std::string>{"third", "first", "second"}));
}

TEST(JobQueue, AnExceptionInTheRunnerBecomesAFailedJob) {
  JobQueue queue([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                    const core::ProgressSink&) -> core::JobResult { throw std::runtime_error("boom"); });
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  const int id = queue.addJob(spec("bad"), "/tmp/bad");
  queue.start();
  ASSERT_TRUE(finished.wait(5000));
  const auto result = finished.first().at(1).value<core::JobResult>();
  EXPECT_EQ(result.status, core::JobStatus::Failed);
  EXPECT_EQ(result.message, "job runner threw: boom");
  EXPECT_EQ(queue.model()->job(id)->state, JobState::Failed);
  EXPECT_EQ(queue.model()->job(id)->message, QStringLiteral("job runner threw: boom"));
}

// An epoch's eval accuracy in the queue's log carries its 95% Wilson interval over the eval
// examples: 6 of 8 right, z = 1.959964, centre (6 + z^2/2) / (8 + z^2), half-width
// z / (8 + z^2) sqrt(6 * 2 / 8 + z^2 / 4); without the count, the bare number.
TEST(JobQueue, EpochAccuracyInTheLogCarriesItsWilsonInterval) {
  JobQueue queue([](const core::JobSpec&, const core::RunOptions& options, const core::CancelToken&,
                    const core::ProgressSink& sink) {
    core::ProgressEvent epoch;
    epoch.kind = core::ProgressEvent::Kind::Epoch;
    epoch.task = "polarity";
    epoch.model = "kd";
    epoch.epoch = 1;
    epoch.epochs = 2;
    epoch.evalAccuracy = 0.75;
    epoch.evalExamples = 8;
    sink(epoch);
    epoch.epoch = 2;
    epoch.evalExamples = 0; // unknown count
    sink(epoch);
    return core::JobResult{core::JobStatus::Succeeded, "", options.outDir + "/run.h5"};
  });
  QSignalSpy lines(&queue, &JobQueue::logLine);
  QSignalSpy finished(&queue, &JobQueue::jobFinished);
  queue.addJob(spec("epochs"), "/tmp/epochs");
  queue.start();
  ASSERT_TRUE(finished.wait(5000));
  QTRY_VERIFY_WITH_TIMEOUT(lines.count() >= 2, 2000);
  const double z = 1.959963984540054;
  const double centre = (6.0 + z * z / 2.0) / (8.0 + z * z);
  const double half = z / (8.0 + z * z) * std::sqrt(6.0 * 2.0 / 8.0 + z * z / 4.0);
  const QString expected = QStringLiteral("[polarity/kd] epoch 1/2: eval accuracy 0.7500 [%1, %2] (95% Wilson, n = 8)")
                               .arg(centre - half, 0, 'f', 4)
                               .arg(centre + half, 0, 'f', 4);
  QStringList all;
  for (const QList<QVariant>& line : lines) {
    all << line.at(0).toString();
  }
  EXPECT_TRUE(all.join('\n').contains(expected)) << all.join('\n').toStdString() << "\nexpected " << expected.toStdString();
  EXPECT_TRUE(all.join('\n').contains(QStringLiteral("epoch 2/2: eval accuracy 0.7500\n")) ||
              all.join('\n').endsWith(QStringLiteral("epoch 2/2: eval accuracy 0.7500")))
      << all.join('\n').toStdString();
}

TEST(JobQueue, DestroyingTheQueueCancelsAndJoinsARunningJob) {
  std::atomic<bool> sawCancel{false};
  {
    JobQueue queue(fakeRunner(/*steps=*/100000, /*sleepMs=*/2, &sawCancel));
    QSignalSpy progress(&queue, &JobQueue::jobProgress);
    queue.addJob(spec("long"), "/tmp/long");
    queue.start();
    ASSERT_TRUE(progress.wait(5000));
  }
  EXPECT_TRUE(sawCancel.load());
}
