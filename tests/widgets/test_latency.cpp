// The window never freezes: while a CPU-busy fake job trains in its worker thread for about
// 2 s (sending a Step event every millisecond, which the worker throttles), a 10 ms QTimer
// in the GUI thread must keep ticking. The live curve must update in place meanwhile.
//
// A loaded machine delays the GUI's timer without the GUI thread being blocked, in two ways,
// and the test discounts both (a gap counts as a stall only for the time that neither explains):
// - CPU contention: the GUI thread is runnable but waits for a core. Linux counts that time
//   per thread (/proc/thread-self/schedstat, second field: time spent waiting on a run
//   queue); it is subtracted from each gap.
// - The whole machine or VM pausing: then an idle event loop in another thread (the same
//   run's baseline, with the same 10 ms timer) is delayed at the same moment; each GUI gap is
//   compared with the longest overlapping gap of the baseline, less its 10 ms interval.
// stall = gap - max(run-queue wait in the gap, longest overlapping baseline gap - 10 ms).
// What remains is time the GUI thread spent running its own code or sleeping outside its
// event loop's wait for the timer: a blocking call or long work in a slot, but also, now and
// then on a loaded machine, a wait for a lock or a thread (the worker) that is itself waiting
// for a CPU. Measured on a 2-core machine, idle or with both cores kept busy (busy loops and
// compilers), the longest stall of a run was 12 to 43 ms, and once 157 ms (at the job's end,
// with builds running beside). So the test fails on
// - any stall of 250 ms or more (a freeze),
// - two or more stalls of 100 ms or more (repeated hitches), or
// - stalls beyond 20 ms adding up to more than 10% of the run (a sluggish window).

#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTest>
#include <QThread>
#include <QTimer>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <vector>

#include "widgets/jobs/job_queue.h"
#include "widgets/jobs/job_queue_panel.h"
#include "widgets/shell/main_window.h"
#include "widgets/figures/plot_widget.h"
#include "test_run_file.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

/// An idle event loop on its own thread with a 10 ms timer, recording when it fires.
class BaselineLoop {
public:
  explicit BaselineLoop(const QElapsedTimer& clock) : m_clock(clock) {
    m_timer = new QTimer;
    m_timer->setInterval(10);
    m_timer->moveToThread(&m_thread);
    QObject::connect(m_timer, &QTimer::timeout, m_timer, [this] { m_ticks.push_back(m_clock.elapsed()); });
    QObject::connect(&m_thread, &QThread::started, m_timer, [this] {
      m_ticks.push_back(m_clock.elapsed()); // the loop's start counts as a tick
      m_timer->start();
    });
    QObject::connect(&m_thread, &QThread::finished, m_timer, &QObject::deleteLater);
  }
  void start() { m_thread.start(); }
  /// Stops the loop; the ticks may be read afterwards.
  const std::vector<qint64>& stop() {
    QMetaObject::invokeMethod(m_timer, &QTimer::stop, Qt::BlockingQueuedConnection);
    m_thread.quit();
    m_thread.wait();
    return m_ticks;
  }
  ~BaselineLoop() {
    if (m_thread.isRunning()) {
      stop();
    }
  }

private:
  const QElapsedTimer& m_clock;
  QThread m_thread;
  QTimer* m_timer = nullptr;
  std::vector<qint64> m_ticks; ///< written only on m_thread until stop()
};

/// This thread's time on a CPU and time spent runnable but waiting for one, in ns, from
/// /proc/thread-self/schedstat; {-1, -1} where the kernel does not say (then only the
/// baseline is discounted).
struct SchedStat {
  long long onCpuNs = -1;
  long long runQueueNs = -1;
};

SchedStat schedStat() {
  std::ifstream in("/proc/thread-self/schedstat");
  SchedStat out;
  if (!(in >> out.onCpuNs >> out.runQueueNs)) {
    return {};
  }
  return out;
}

struct Tick {
  qint64 ms;       ///< since the clock started
  SchedStat sched; ///< the GUI thread's, at the tick
};

struct Stalls {
  qint64 maxGap = 0;        ///< longest gap between two GUI ticks
  qint64 maxBaselineGap = 0;
  qint64 maxRunQueueMs = 0; ///< longest run-queue wait of the GUI thread within one gap
  qint64 maxStall = 0;      ///< longest stall (see the file comment)
  qint64 stallAt = 0;       ///< when that stall started
  qint64 stallGap = 0;      ///< the GUI gap of that stall
  qint64 stallOnCpu = 0;    ///< of which the GUI thread ran this long
  qint64 stallRunQueue = 0; ///< and waited for a CPU this long
  qint64 stallBaseline = 0; ///< the longest overlapping baseline gap
  qint64 lostBeyond20 = 0;  ///< sum over gaps of max(0, stall - 20)
  int atLeast100 = 0;       ///< stalls of 100 ms or more
};

/// The GUI's stalls (see the file comment). Times in ms since the clock started.
Stalls measureStalls(const std::vector<Tick>& gui, const std::vector<qint64>& baseline) {
  Stalls out;
  for (std::size_t k = 1; k < baseline.size(); ++k) {
    out.maxBaselineGap = std::max(out.maxBaselineGap, baseline[k] - baseline[k - 1]);
  }
  std::size_t first = 0; // the first baseline gap that can overlap the current GUI gap
  for (std::size_t k = 1; k < gui.size(); ++k) {
    const qint64 start = gui[k - 1].ms;
    const qint64 end = gui[k].ms;
    const qint64 gap = end - start;
    out.maxGap = std::max(out.maxGap, gap);
    while (first + 1 < baseline.size() && baseline[first + 1] <= start) {
      ++first;
    }
    qint64 overlapping = 0;
    for (std::size_t b = first; b + 1 < baseline.size() && baseline[b] < end; ++b) {
      overlapping = std::max(overlapping, baseline[b + 1] - baseline[b]);
    }
    const bool known = gui[k].sched.runQueueNs >= 0 && gui[k - 1].sched.runQueueNs >= 0;
    const qint64 runQueue = known ? (gui[k].sched.runQueueNs - gui[k - 1].sched.runQueueNs) / 1000000 : 0;
    const qint64 onCpu = known ? (gui[k].sched.onCpuNs - gui[k - 1].sched.onCpuNs) / 1000000 : -1;
    out.maxRunQueueMs = std::max(out.maxRunQueueMs, runQueue);
    const qint64 stall = std::max<qint64>(0, gap - std::max(runQueue, overlapping - 10));
    if (stall > out.maxStall) {
      out.maxStall = stall;
      out.stallAt = start;
      out.stallGap = gap;
      out.stallOnCpu = onCpu;
      out.stallRunQueue = runQueue;
      out.stallBaseline = overlapping;
    }
    out.lostBeyond20 += std::max<qint64>(0, stall - 20);
    out.atLeast100 += stall >= 100 ? 1 : 0;
  }
  return out;
}

} // namespace

TEST(EventLoopLatency, NoStallWhileAJobTrains) {
  constexpr double kJobSeconds = 2.0;
  const JobRunner busy = [](const core::JobSpec&, const core::RunOptions&, const core::CancelToken& cancel,
                            const core::ProgressSink& sink) {
    const auto start = std::chrono::steady_clock::now();
    volatile double sink_ = 0.0;
    long step = 0;
    while (!cancel.cancelled()) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed >= kJobSeconds) {
        break;
      }
      // About a millisecond of arithmetic per "batch": the worker thread is never idle.
      const auto batchEnd = std::chrono::steady_clock::now() + std::chrono::microseconds(1000);
      while (std::chrono::steady_clock::now() < batchEnd) {
        for (int i = 0; i < 1000; ++i) {
          sink_ = sink_ + std::sqrt(static_cast<double>(i) + sink_);
        }
      }
      ++step;
      for (const char* model : {"teacher", "kd"}) {
        core::ProgressEvent event;
        event.kind = core::ProgressEvent::Kind::Step;
        event.task = "polarity";
        event.model = model;
        event.step = step;
        event.steps = 2000;
        event.epoch = 1;
        event.epochs = 1;
        event.loss = 1.0 / static_cast<double>(step);
        event.fraction = elapsed / kJobSeconds;
        event.elapsedSeconds = elapsed;
        sink(event);
      }
    }
    return core::JobResult{core::JobStatus::Succeeded, "", ""};
  };

  MainWindow window(busy);
  window.resize(1280, 800);
  window.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&window));
  QSignalSpy finished(window.jobQueue(), &JobQueue::jobFinished);
  core::JobSpec spec;
  spec.name = "busy";
  window.jobPanel()->queueJob(spec);

  QElapsedTimer clock;
  std::vector<Tick> guiTicks;
  guiTicks.reserve(4096);
  QTimer timer;
  timer.setInterval(10);
  QObject::connect(&timer, &QTimer::timeout, [&] { guiTicks.push_back(Tick{clock.elapsed(), schedStat()}); });
  BaselineLoop baseline(clock);
  clock.start();
  // The measured span runs from here to the job's end: a freeze before the timer's first tick
  // or after its last one counts too.
  guiTicks.push_back(Tick{0, schedStat()});
  baseline.start();
  timer.start();
  window.jobQueue()->start();
  ASSERT_TRUE(finished.wait(15000));
  timer.stop();
  guiTicks.push_back(Tick{clock.elapsed(), schedStat()});
  const std::vector<qint64>& baselineTicks = baseline.stop();

  const qint64 total = clock.elapsed();
  const Stalls stalls = measureStalls(guiTicks, baselineTicks);
  const int ticks = static_cast<int>(guiTicks.size()) - 2; // less the span's two ends
  const int idleTicks = static_cast<int>(baselineTicks.size());
  std::printf("event-loop latency while a job trained: %d GUI ticks and %d baseline ticks in %lld ms; longest gap "
              "%lld ms (baseline %lld ms; longest run-queue wait in a gap %lld ms); longest stall %lld ms (a %lld ms gap "
              "at %lld ms: %lld ms on a CPU, %lld ms waiting for one, baseline gap %lld ms); stalls beyond 20 ms add "
              "up to %lld ms; %d stalls of 100 ms or more\n",
              ticks, idleTicks, static_cast<long long>(total), static_cast<long long>(stalls.maxGap),
              static_cast<long long>(stalls.maxBaselineGap), static_cast<long long>(stalls.maxRunQueueMs),
              static_cast<long long>(stalls.maxStall), static_cast<long long>(stalls.stallGap),
              static_cast<long long>(stalls.stallAt), static_cast<long long>(stalls.stallOnCpu),
              static_cast<long long>(stalls.stallRunQueue), static_cast<long long>(stalls.stallBaseline),
              static_cast<long long>(stalls.lostBeyond20), stalls.atLeast100);
  RecordProperty("max_event_loop_gap_ms", static_cast<int>(stalls.maxGap));
  RecordProperty("max_stall_ms", static_cast<int>(stalls.maxStall));
  EXPECT_GE(total, 1900);
  EXPECT_LT(stalls.maxStall, 250) << "the GUI thread froze for " << stalls.maxStall << " ms (in a " << stalls.stallGap
                                  << " ms gap at " << stalls.stallAt << " ms) that neither CPU contention nor the "
                                     "baseline explains";
  EXPECT_LT(stalls.atLeast100, 2) << stalls.atLeast100 << " stalls of 100 ms or more (the longest " << stalls.maxStall
                                  << " ms)";
  EXPECT_LE(stalls.lostBeyond20, total / 10) << "the GUI thread's stalls beyond 20 ms add up to "
                                             << stalls.lostBeyond20 << " ms of " << total << " ms";
  // The timer kept ticking: at least half as often as the idle loop's.
  EXPECT_GT(ticks, idleTicks / 2) << ticks << " GUI ticks against " << idleTicks << " of the idle loop";

  // The live curves were updated in place: one series per (task, model), every step kept.
  EXPECT_EQ(window.jobPanel()->liveSeries(), (QStringList{"polarity/teacher", "polarity/kd"}));
  PlotWidget* live = window.jobPanel()->livePlot();
  ASSERT_EQ(live->lineCount(), 2);
  const QVector<QPointF> teacher = live->lineData(0);
  ASSERT_GT(teacher.size(), 100);
  EXPECT_DOUBLE_EQ(teacher.first().x(), 1.0);
  EXPECT_DOUBLE_EQ(teacher.first().y(), 1.0);
  EXPECT_DOUBLE_EQ(teacher.last().y(), 1.0 / teacher.last().x());
  EXPECT_EQ(static_cast<long>(teacher.size()), static_cast<long>(teacher.last().x())); // no step lost
}
