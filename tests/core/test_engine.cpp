// End-to-end: real LibTorch training of tiny models, a real run file read back and checked
// against values computed independently (reloaded checkpoints, hand-counted accuracy).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "core/common/blas_threads.h"
#include "core/common/cancel.h"
#include "core/common/error.h"
#include "core/common/side_by_side.h"
#include "core/distill/trainer.h"
#include "core/engine/run_job.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

fs::path tempDir(const std::string& name) { return kdscope::test::freshTempDir("engine_" + name); }

JobSpec vectorJob() {
  JobSpec job;
  job.name = "engine-test";
  job.seed = 5;
  job.tasks.push_back(kdscope::test::syntheticHierarchyTask(8, 60));
  job.teacher.architecture.type = "mlp";
  job.teacher.architecture.hidden = {32, 16};
  job.teacher.training.epochs = 3;
  job.teacher.training.batchSize = 16;
  StudentSpec ce;
  ce.name = "ce";
  ce.architecture.type = "mlp";
  ce.architecture.hidden = {8};
  ce.training = job.teacher.training;
  StudentSpec kd = ce;
  kd.name = "kd";
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 2.0;
  job.students = {ce, kd};
  job.recording.logEvery = 2;
  return job;
}

/// The tiny polarity corpus of this file's text jobs.
std::string writePolarityCorpus(const fs::path& dataDir) {
  return kdscope::test::writePolarityCorpus(dataDir, kdscope::test::PolarityCorpus{160, true, false});
}

JobSpec textJob(const std::string& dataDir) { return kdscope::test::tinyPolarityJob(dataDir, 8); }

} // namespace

TEST(Engine, VectorJobWritesACompleteRunFileThatMatchesTheCheckpoints) {
  const auto out = tempDir("vector");
  const auto job = vectorJob();
  std::vector<ProgressEvent> events;
  const auto result = runJob(job, RunOptions{out.string()}, CancelToken(),
                             [&](const ProgressEvent& e) { events.push_back(e); });
  ASSERT_EQ(result.status, JobStatus::Succeeded) << result.message;

  const RunReader reader(result.runPath);
  const auto summary = reader.summary();
  EXPECT_EQ(summary.status, "complete");
  EXPECT_EQ(summary.formatVersion, 1);
  ASSERT_EQ(summary.tasks.size(), 1U);
  const auto& task = summary.tasks[0];
  EXPECT_EQ(task.numClasses, 4);
  ASSERT_EQ(task.models.size(), 3U);
  EXPECT_EQ(task.models[0].name, "teacher");

  // Rebuild the task and reload the KD student's checkpoint: its eval logits, computed
  // here, must equal the file's exactly, and the accuracy must match a hand count.
  const auto data = loadTask(job.tasks[0], "", job.seed);
  torch::manual_seed(0);
  auto student = makeModel(job.students[1].architecture, data);
  torch::serialize::InputArchive archive;
  archive.load_from((out / "checkpoints/synthetic_hierarchy/kd.pt").string());
  student->load(archive);
  student->eval();
  torch::NoGradGuard noGrad;
  const auto batch = makeBatch(data, data.eval, 0, static_cast<std::int64_t>(data.eval.size()));
  auto logits = student->forward(batch).logits.contiguous();
  std::int64_t classes = 0;
  const auto fileLogits = reader.evalLogits("synthetic_hierarchy", "kd", &classes);
  ASSERT_EQ(classes, 4);
  ASSERT_EQ(fileLogits.size(), static_cast<std::size_t>(logits.numel()));
  for (std::size_t i = 0; i < fileLogits.size(); ++i) {
    ASSERT_NEAR(fileLogits[i], logits.data_ptr<float>()[i], 1e-5) << "logit " << i;
  }
  const auto labels = reader.evalLabels("synthetic_hierarchy");
  ASSERT_EQ(labels, data.eval.labels);
  int correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    int best = 0;
    for (int c = 1; c < 4; ++c) {
      if (fileLogits[i * 4 + c] > fileLogits[i * 4 + best]) best = c;
    }
    correct += best == labels[i] ? 1 : 0;
  }
  EXPECT_DOUBLE_EQ(task.models[2].evalAccuracy, static_cast<double>(correct) / labels.size());

  // Training logs: steps every log_every, terms logged unweighted.
  const auto log = reader.trainLog("synthetic_hierarchy", "kd");
  const long steps = plannedSteps(job.students[1].training, data.train.size());
  EXPECT_EQ(log.steps.back(), steps);
  EXPECT_EQ(log.steps.front(), 2);
  ASSERT_EQ(log.terms.count("ce"), 1U);
  ASSERT_EQ(log.terms.count("kd"), 1U);
  for (std::size_t i = 0; i < log.steps.size(); ++i) {
    EXPECT_NEAR(log.loss[i], 0.5 * log.terms.at("ce")[i] + 0.5 * log.terms.at("kd")[i], 1e-4);
  }
  EXPECT_EQ(reader.evalCurve("synthetic_hierarchy", "kd").accuracy.size(), 3U);

  // Hidden states: [N, Lyr + 1, D] with D the widest layer (the 8 inputs, zero-padded).
  const auto& file = reader.file();
  EXPECT_EQ(file.shape("/tasks/synthetic_hierarchy/models/kd/eval/hidden"),
            (std::vector<std::uint64_t>{data.eval.size(), 2, 8}));
  EXPECT_EQ(file.shape("/tasks/synthetic_hierarchy/models/teacher/eval/hidden"),
            (std::vector<std::uint64_t>{data.eval.size(), 3, 32}));
  EXPECT_EQ(file.shape("/tasks/synthetic_hierarchy/models/kd/classifier/weight"),
            (std::vector<std::uint64_t>{4, 8}));

  // Progress reached 100 % and reported every epoch of every model.
  ASSERT_FALSE(events.empty());
  EXPECT_DOUBLE_EQ(events.back().fraction, 1.0);
  int epochEvents = 0;
  for (const auto& e : events) epochEvents += e.kind == ProgressEvent::Kind::Epoch ? 1 : 0;
  EXPECT_EQ(epochEvents, 9);
}

TEST(Engine, SameJobSameSeedSameLogits) {
  auto job = vectorJob();
  job.students.resize(1);
  const auto a = runJob(job, RunOptions{tempDir("det_a").string()}, CancelToken(), nullptr);
  const auto b = runJob(job, RunOptions{tempDir("det_b").string()}, CancelToken(), nullptr);
  ASSERT_EQ(a.status, JobStatus::Succeeded) << a.message;
  ASSERT_EQ(b.status, JobStatus::Succeeded) << b.message;
  const RunReader ra(a.runPath);
  const RunReader rb(b.runPath);
  EXPECT_EQ(ra.evalLogits("synthetic_hierarchy", "ce"), rb.evalLogits("synthetic_hierarchy", "ce"));
  EXPECT_EQ(ra.evalLogits("synthetic_hierarchy", "teacher"), rb.evalLogits("synthetic_hierarchy", "teacher"));
  job.seed = 6;
  const auto c = runJob(job, RunOptions{tempDir("det_c").string()}, CancelToken(), nullptr);
  ASSERT_EQ(c.status, JobStatus::Succeeded) << c.message;
  EXPECT_NE(ra.evalLogits("synthetic_hierarchy", "ce"), RunReader(c.runPath).evalLogits("synthetic_hierarchy", "ce"));
}

// Teacher cache in memory, on disk and off: tests/core/test_determinism.cpp.

TEST(Engine, CancelStopsBetweenBatchesAndKeepsWhatWasRecorded) {
  auto job = vectorJob();
  CancelToken cancel;
  const auto result = runJob(job, RunOptions{tempDir("cancel").string()}, cancel, [&](const ProgressEvent& e) {
    if (e.model == "ce" && e.kind == ProgressEvent::Kind::Step && e.step >= 6) {
      cancel.cancel();
    }
  });
  EXPECT_EQ(result.status, JobStatus::Cancelled);
  EXPECT_NE(result.message.find("model 'ce'"), std::string::npos) << result.message;
  const RunReader reader(result.runPath);
  const auto summary = reader.summary();
  EXPECT_EQ(summary.status, "cancelled");
  // The teacher finished and is fully recorded; the student's log stops at the cancel.
  EXPECT_GE(summary.tasks[0].models[0].evalAccuracy, 0.0);
  const auto log = reader.trainLog("synthetic_hierarchy", "ce");
  ASSERT_FALSE(log.steps.empty());
  EXPECT_LE(log.steps.back(), 8);
}

TEST(Engine, NanLossFailsWithTheModelAndStepNamed) {
  auto job = vectorJob();
  job.teacher.training.lr = 1e30;
  job.teacher.training.gradClip = 0.0;
  job.teacher.training.warmupFraction = 0.0;
  const auto result = runJob(job, RunOptions{tempDir("nan").string()}, CancelToken(), nullptr);
  ASSERT_EQ(result.status, JobStatus::Failed);
  EXPECT_NE(result.message.find("model 'teacher'"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("at step"), std::string::npos) << result.message;
  const RunReader reader(result.runPath);
  EXPECT_EQ(reader.summary().status, "failed");
  EXPECT_EQ(reader.summary().statusMessage, result.message);
}

TEST(Engine, MissingDatasetIsBadInputNamingTheTask) {
  JobSpec job = textJob(tempDir("nodata").string());
  const auto result = runJob(job, RunOptions{tempDir("nodata_out").string()}, CancelToken(), nullptr);
  EXPECT_EQ(result.status, JobStatus::BadInput);
  EXPECT_NE(result.message.find("polarity"), std::string::npos) << result.message;
}

TEST(Engine, TextJobRecordsTokensAttentionAndHiddenStates) {
  const auto dataDir = writePolarityCorpus(tempDir("textdata"));
  const auto job = textJob(dataDir);
  const auto result = runJob(job, RunOptions{tempDir("text").string()}, CancelToken(), nullptr);
  ASSERT_EQ(result.status, JobStatus::Succeeded) << result.message;
  const RunReader reader(result.runPath);
  const auto& file = reader.file();
  const auto n = reader.evalLabels("polarity").size();
  EXPECT_EQ(file.shape("/tasks/polarity/eval/tokens"), (std::vector<std::uint64_t>{n, 12}));
  EXPECT_EQ(file.shape("/tasks/polarity/models/teacher/eval/attention"),
            (std::vector<std::uint64_t>{5, 2, 2, 12, 12}));
  EXPECT_EQ(file.shape("/tasks/polarity/models/kd/eval/attention"),
            (std::vector<std::uint64_t>{5, 1, 2, 12, 12}));
  EXPECT_EQ(file.shape("/tasks/polarity/models/kd/eval/hidden"), (std::vector<std::uint64_t>{n, 2, 16}));
  // Recorded attention rows sum to 1 over the example's non-padding keys.
  const auto tokens = file.readInt64("/tasks/polarity/eval/tokens");
  const auto att = file.readFloat("/tasks/polarity/models/teacher/eval/attention");
  for (std::size_t e = 0; e < 5; ++e) {
    for (std::size_t lh = 0; lh < 4; ++lh) {
      for (std::size_t q = 0; q < 12; ++q) {
        double sum = 0.0;
        double padMass = 0.0;
        for (std::size_t k = 0; k < 12; ++k) {
          const double a = att[((e * 4 + lh) * 12 + q) * 12 + k];
          sum += a;
          if (tokens[e * 12 + k] == 0) padMass += a;
        }
        ASSERT_NEAR(sum, 1.0, 1e-5);
        ASSERT_EQ(padMass, 0.0);
      }
    }
  }
  // The easy corpus is learnable: the teacher beats chance clearly.
  EXPECT_GT(reader.summary().tasks[0].models[0].evalAccuracy, 0.75);
}

// ----- resume, per-example records, size estimate ------------------------------------------

namespace {

struct ModelRecordings {
  TrainLog log;
  EvalCurve curve;
  TrainRecords records;
  std::vector<float> logits;
};

ModelRecordings recordingsOf(const std::string& runPath, const std::string& model) {
  const RunReader reader(runPath);
  ModelRecordings r;
  r.log = reader.trainLog("synthetic_hierarchy", model);
  r.curve = reader.evalCurve("synthetic_hierarchy", model);
  r.records = reader.trainRecords("synthetic_hierarchy", model);
  r.logits = reader.evalLogits("synthetic_hierarchy", model);
  return r;
}

bool sameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) {
           return (std::isnan(x) && std::isnan(y)) || x == y;
         });
}

} // namespace

TEST(Engine, PerExampleRecordsHoldEachModelsTrueClassProbabilityPerEpoch) {
  auto job = vectorJob();
  job.students.resize(1);
  const auto out = tempDir("records");
  const auto result = runJob(job, RunOptions{out.string()}, CancelToken(), nullptr);
  ASSERT_EQ(result.status, JobStatus::Succeeded) << result.message;
  const RunReader reader(result.runPath);
  const auto data = loadTask(job.tasks[0], "", job.seed);
  EXPECT_EQ(reader.trainLabels("synthetic_hierarchy"), data.train.labels);
  const TrainRecords teacher = reader.trainRecords("synthetic_hierarchy", "teacher");
  EXPECT_EQ(teacher.name, "p_true");
  EXPECT_EQ(teacher.epoch, (std::vector<std::int64_t>{1, 2, 3}));
  const long perEpoch = plannedSteps(job.teacher.training, data.train.size()) / 3;
  EXPECT_EQ(teacher.step, (std::vector<std::int64_t>{perEpoch, 2 * perEpoch, 3 * perEpoch}));
  const TrainRecords ce = reader.trainRecords("synthetic_hierarchy", "ce");
  EXPECT_EQ(ce.name, "q_true");
  ASSERT_EQ(ce.examples, data.train.size());
  ASSERT_EQ(ce.values.size(), 3 * data.train.size());

  // The last row is the final student's softmax at its true class, recomputed here from its
  // checkpoint (eval mode, no gradient).
  torch::manual_seed(0);
  auto student = makeModel(job.students[0].architecture, data);
  torch::serialize::InputArchive archive;
  archive.load_from((out / "checkpoints/synthetic_hierarchy/ce.pt").string());
  student->load(archive);
  student->eval();
  torch::NoGradGuard noGrad;
  const auto batch = makeBatch(data, data.train, 0, static_cast<std::int64_t>(data.train.size()));
  const auto p = torch::softmax(student->forward(batch).logits, 1);
  for (std::size_t i = 0; i < data.train.size(); ++i) {
    const float expected = p[static_cast<std::int64_t>(i)][data.train.labels[i]].item<float>();
    ASSERT_NEAR(ce.values[2 * data.train.size() + i], expected, 1e-5) << "example " << i;
  }
}

// The job ends with its time by phase: every part of this job is named (the teacher trained,
// its cache, the two students' parts summed, the eval outputs recorded), each at least 0, and
// their sum at most the job's elapsed time (the profile is part of it).
TEST(Engine, TheJobEndsWithItsTimeByPhase) {
  const auto job = vectorJob();
  std::vector<ProgressEvent> events;
  const auto result = runJob(job, RunOptions{tempDir("profile").string()}, CancelToken(),
                             [&](const ProgressEvent& e) { events.push_back(e); });
  ASSERT_EQ(result.status, JobStatus::Succeeded) << result.message;
  const ProgressEvent* profile = nullptr;
  for (const auto& e : events) {
    if (e.message.rfind("time by phase (wall s): ", 0) == 0) {
      EXPECT_EQ(profile, nullptr) << "a second profile: " << e.message;
      profile = &e;
    }
  }
  ASSERT_NE(profile, nullptr);
  std::map<std::string, double> parts;
  std::istringstream items(profile->message.substr(std::string("time by phase (wall s): ").size()));
  std::string item;
  while (std::getline(items, item, ';')) {
    item.erase(0, item.find_first_not_of(' '));
    const auto space = item.rfind(' ');
    ASSERT_NE(space, std::string::npos) << item;
    parts[item.substr(0, space)] = std::stod(item.substr(space + 1));
  }
  double sum = 0.0;
  for (const char* expected :
       {"loading data", "teacher: optimiser steps", "teacher: eval passes", "teacher: per-example records",
        "teacher: saving (flush, checkpoints)", "recording eval outputs", "teacher cache (its train-set outputs)",
        "students: optimiser steps", "students: eval passes", "students: per-example records"}) {
    ASSERT_EQ(parts.count(expected), 1U) << expected << " missing from: " << profile->message;
    EXPECT_GE(parts[expected], 0.0) << expected;
    sum += parts[expected];
  }
  EXPECT_LE(sum, parts.at("sum") + 0.05); // the listed parts are within the printed sum (2-decimal rounding)
  EXPECT_LE(parts.at("sum"), profile->elapsedSeconds + 0.05);
}

// SingleBlasThread: OpenBLAS on one thread while it lives, the count before restored after.
TEST(Engine, SingleBlasThreadScopesOpenBlasToOneThread) {
  const int before = blasThreads();
  // scripts/setup.sh installs OpenBLAS (libopenblas0-pthread) as the BLAS.
  ASSERT_GE(before, 1) << "the BLAS here is not OpenBLAS (no openblas_get_num_threads)";
  setBlasThreads(2);
  {
    SingleBlasThread one;
    EXPECT_EQ(blasThreads(), 1);
  }
  EXPECT_EQ(blasThreads(), 2);
  setBlasThreads(before);
}

// Scopes on two threads that overlap (the analysis' two lanes): one thread while any lives, the
// count from before the first restored when the last ends, whichever ends first.
TEST(Engine, SingleBlasThreadScopesOnTwoThreadsRestoreWhenTheLastEnds) {
  const int before = blasThreads();
  ASSERT_GE(before, 1) << "the BLAS here is not OpenBLAS (no openblas_get_num_threads)";
  setBlasThreads(2);
  for (const bool firstEndsFirst : {true, false}) {
    std::mutex mutex;
    std::condition_variable changed;
    int step = 0; // 1: the other thread's scope lives; 2: the first ended; 3: the other ended
    auto first = std::make_unique<SingleBlasThread>();
    std::thread other([&] {
      SingleBlasThread mine;
      std::unique_lock<std::mutex> lock(mutex);
      step = 1;
      changed.notify_all();
      changed.wait(lock, [&] { return !firstEndsFirst || step == 2; });
      if (firstEndsFirst) {
        EXPECT_EQ(blasThreads(), 1) << "the other thread's scope still lives";
      }
    });
    {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return step >= 1; });
    }
    EXPECT_EQ(blasThreads(), 1);
    if (firstEndsFirst) {
      first.reset();
      {
        const std::lock_guard<std::mutex> lock(mutex);
        step = 2;
      }
      changed.notify_all();
      other.join();
    } else {
      other.join();
      EXPECT_EQ(blasThreads(), 1) << "the first scope still lives";
      first.reset();
    }
    EXPECT_EQ(blasThreads(), 2) << "first ends first: " << firstEndsFirst;
  }
  setBlasThreads(before);
}

// A child token reads as cancelled when it or its parent (or the parent's parent) is; cancelling
// the child leaves the parent alone.
TEST(Engine, ChildCancelTokenFollowsItsParentButNotTheOtherWay) {
  const CancelToken user;
  const CancelToken child = user.child();
  const CancelToken grandchild = child.child();
  EXPECT_FALSE(child.cancelled());
  grandchild.cancel();
  EXPECT_TRUE(grandchild.cancelled());
  EXPECT_FALSE(child.cancelled());
  EXPECT_FALSE(user.cancelled());
  const CancelToken other = user.child().child();
  const CancelToken copy = other; // copies share their flag
  EXPECT_FALSE(copy.cancelled());
  user.cancel();
  EXPECT_TRUE(child.cancelled());
  EXPECT_TRUE(copy.cancelled());
}

// runSideBySide: both pieces run at once (each waits for the other to have started); a failure
// of either stops the other through the token, and the real error, not the Cancelled it caused,
// is rethrown; with no failure, a user's cancel comes back as Cancelled.
TEST(Engine, SideBySideRunsBothAtOnceAndReportsTheFailureNotTheStop) {
  using namespace std::chrono_literals;
  {
    std::atomic<int> started{0};
    const auto caller = std::this_thread::get_id();
    std::thread::id sideId;
    const auto meetThen = [&](std::thread::id* id) {
      if (id != nullptr) {
        *id = std::this_thread::get_id();
      }
      ++started;
      const auto until = std::chrono::steady_clock::now() + 20s;
      while (started.load() < 2 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1ms);
      }
    };
    const CancelToken stop;
    std::thread::id secondId;
    runSideBySide([&] { meetThen(&sideId); }, [&] { meetThen(&secondId); }, stop);
    EXPECT_EQ(started.load(), 2);
    EXPECT_EQ(secondId, caller) << "the second piece runs on the calling thread";
    EXPECT_NE(sideId, caller) << "the first piece runs on a thread of its own";
    EXPECT_FALSE(stop.cancelled());
  }
  // A piece that polls the token until it is cancelled, then throws Cancelled.
  const auto pollUntilStopped = [](const CancelToken& stop) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      throwIfCancelled(stop);
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << "never stopped";
  };
  for (const bool firstFails : {true, false}) {
    const CancelToken stop;
    const auto fail = [] { throw InputError("eval/hidden of model 'kd': 3 rows, not 4"); };
    const auto wait = [&] { pollUntilStopped(stop); };
    try {
      if (firstFails) {
        runSideBySide(fail, wait, stop);
      } else {
        runSideBySide(wait, fail, stop);
      }
      ADD_FAILURE() << "nothing thrown";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("eval/hidden of model 'kd'"), std::string::npos) << e.what();
    } catch (const Cancelled&) {
      ADD_FAILURE() << "the stop hid the failure (first fails: " << firstFails << ")";
    }
    EXPECT_TRUE(stop.cancelled());
  }
  // Both fail: the first's error.
  {
    const CancelToken stop;
    try {
      runSideBySide([] { throw InputError("first"); }, [] { throw JobError("second"); }, stop);
      ADD_FAILURE() << "nothing thrown";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), "first");
    }
  }
  // The user cancels (the token's parent): both stop, Cancelled comes back.
  {
    const CancelToken user;
    const CancelToken stop = user.child();
    std::thread canceller([&] {
      std::this_thread::sleep_for(20ms);
      user.cancel();
    });
    EXPECT_THROW(runSideBySide([&] { pollUntilStopped(stop); }, [&] { pollUntilStopped(stop); }, stop), Cancelled);
    canceller.join();
  }
}

// dgemm (the BLAS's, found at run time) and its plain-loop fallback: a hand-worked 2 x 2 case
// in all four transpose combinations, then odd shapes against sums written out here.
TEST(Engine, DgemmAndItsLoopsAgreeWithHandWorkedProducts) {
  // Column-major A = [[1, 2], [3, 4]] (stored 1, 3, 2, 4), B = [[5, 6], [7, 8]] (5, 7, 6, 8).
  const std::vector<double> a{1, 3, 2, 4};
  const std::vector<double> b{5, 7, 6, 8};
  // A B = [[19, 22], [43, 50]]; A^T B = [[26, 30], [38, 44]]; A B^T = [[17, 23], [39, 53]];
  // A^T B^T = [[23, 31], [34, 46]]; stored column-major.
  const std::vector<std::vector<double>> expected{
      {19, 43, 22, 50}, {17, 39, 23, 53}, {26, 38, 30, 44}, {23, 34, 31, 46}};
  for (const bool loops : {false, true}) {
    const auto product = loops ? dgemmLoops : dgemm;
    for (int t = 0; t < 4; ++t) {
      const bool ta = t >= 2;
      const bool tb = t % 2 == 1;
      std::vector<double> c{1, 1, 1, 1};
      product(ta, tb, 2, 2, 2, 1.0, a.data(), 2, b.data(), 2, 0.0, c.data(), 2);
      EXPECT_EQ(c, expected[static_cast<std::size_t>(t)]) << "loops " << loops << " ta " << ta << " tb " << tb;
      // alpha and beta: 2 A B - C with C = 1.
      std::vector<double> d{1, 1, 1, 1};
      product(ta, tb, 2, 2, 2, 2.0, a.data(), 2, b.data(), 2, -1.0, d.data(), 2);
      for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(d[i], 2.0 * expected[static_cast<std::size_t>(t)][i] - 1.0);
      }
    }
  }
  // 5 x 3 = (5 x 7, stored transposed with lda 9) x (7 x 3, lda 8), into ldc 6: small integers,
  // so every sum is exact.
  std::vector<double> at(5 * 9);
  std::vector<double> bt(3 * 8);
  for (std::size_t i = 0; i < at.size(); ++i) {
    at[i] = static_cast<double>(static_cast<int>(i * 7 % 11) - 5);
  }
  for (std::size_t i = 0; i < bt.size(); ++i) {
    bt[i] = static_cast<double>(static_cast<int>(i * 5 % 13) - 6);
  }
  for (const bool loops : {false, true}) {
    std::vector<double> c(6 * 3, 0.0);
    (loops ? dgemmLoops : dgemm)(true, false, 5, 3, 7, 1.0, at.data(), 9, bt.data(), 8, 0.0, c.data(), 6);
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < 3; ++j) {
        double sum = 0.0;
        for (int l = 0; l < 7; ++l) {
          sum += at[static_cast<std::size_t>(l + i * 9)] * bt[static_cast<std::size_t>(l + j * 8)];
        }
        EXPECT_EQ(c[static_cast<std::size_t>(i + j * 6)], sum) << i << "," << j << " loops " << loops;
      }
    }
  }
}

// dsyrkLower (the BLAS's dsyrk_) and its loops: the lower triangle of A A^T (A 4 x 6, lda 5) and
// of A^T A (A 6 x 4, lda 7) against sums written out here, integers so that every sum is exact;
// the strict upper triangle keeps what it held.
TEST(Engine, DsyrkLowerGivesTheLowerTriangleOfTheGram) {
  std::vector<double> a(7 * 6);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<double>(static_cast<int>(i * 5 % 9) - 4);
  }
  for (const bool loops : {false, true}) {
    for (const bool trans : {false, true}) {
      const int n = 4;
      const int k = 6;
      const int lda = trans ? 7 : 5;
      std::vector<double> c(6 * n, -99.0);
      (loops ? dsyrkLowerLoops : dsyrkLower)(trans, n, k, 2.0, a.data(), lda, 0.0, c.data(), 6);
      for (int j = 0; j < n; ++j) {
        for (int i = 0; i < n; ++i) {
          const double got = c[static_cast<std::size_t>(i + j * 6)];
          if (i < j) {
            EXPECT_EQ(got, -99.0) << "upper (" << i << "," << j << ") touched";
            continue;
          }
          double sum = 0.0;
          for (int l = 0; l < k; ++l) {
            const double ail = trans ? a[static_cast<std::size_t>(l + i * lda)] : a[static_cast<std::size_t>(i + l * lda)];
            const double ajl = trans ? a[static_cast<std::size_t>(l + j * lda)] : a[static_cast<std::size_t>(j + l * lda)];
            sum += ail * ajl;
          }
          EXPECT_EQ(got, 2.0 * sum) << i << "," << j << " loops " << loops << " trans " << trans;
        }
      }
    }
  }
}

TEST(Engine, CancelledJobResumesToTheSameResultsAsAnUninterruptedRunWithNothingKeptTwice) {
  auto job = vectorJob();
  job.analyze = false;
  for (auto& s : job.students) {
    s.training.epochs = 5;
  }
  const auto full = runJob(job, RunOptions{tempDir("resume_full").string()}, CancelToken(), nullptr);
  ASSERT_EQ(full.status, JobStatus::Succeeded) << full.message;

  // Cancel in the middle of kd's third epoch: its log then holds steps after its last
  // checkpoint (epoch 2), which the resumed job must drop before it logs them again.
  const auto dir = tempDir("resume_cut");
  const auto data = loadTask(job.tasks[0], "", job.seed);
  const long perEpoch = plannedSteps(job.students[1].training, data.train.size()) / 5;
  CancelToken cancel;
  const auto cut = runJob(job, RunOptions{dir.string()}, cancel, [&](const ProgressEvent& e) {
    if (e.model == "kd" && e.kind == ProgressEvent::Kind::Step && e.step >= 2 * perEpoch + 4) {
      cancel.cancel();
    }
  });
  ASSERT_EQ(cut.status, JobStatus::Cancelled) << cut.message;
  {
    const RunReader reader(cut.runPath);
    EXPECT_EQ(reader.summary().status, "cancelled");
    EXPECT_GT(reader.trainLog("synthetic_hierarchy", "kd").steps.back(), 2 * perEpoch);
    EXPECT_EQ(reader.evalCurve("synthetic_hierarchy", "kd").epoch, (std::vector<std::int64_t>{1, 2}));
  }

  const JobSpec resumeJob = loadJobForResume(dir.string());
  EXPECT_EQ(jobToJson(resumeJob), jobToJson(job));
  RunOptions options{dir.string()};
  options.resume = true;
  std::vector<std::string> phases;
  const auto resumed = runJob(resumeJob, options, CancelToken(), [&](const ProgressEvent& e) {
    if (e.kind == ProgressEvent::Kind::Phase) {
      phases.push_back(e.model + ": " + e.message);
    }
  });
  ASSERT_EQ(resumed.status, JobStatus::Succeeded) << resumed.message;
  EXPECT_NE(std::find(phases.begin(), phases.end(), "ce: complete in the run file; skipped"), phases.end());
  EXPECT_NE(std::find(phases.begin(), phases.end(), "kd: resuming after epoch 2 (step " +
                                                        std::to_string(2 * perEpoch) + ")"),
            phases.end());
  EXPECT_EQ(RunReader(resumed.runPath).summary().status, "complete");
  for (const char* model : {"teacher", "ce", "kd"}) {
    SCOPED_TRACE(model);
    const auto a = recordingsOf(full.runPath, model);
    const auto b = recordingsOf(resumed.runPath, model);
    EXPECT_EQ(a.log.steps, b.log.steps);
    EXPECT_TRUE(sameFloats(a.log.loss, b.log.loss));
    for (const auto& [term, values] : a.log.terms) {
      EXPECT_TRUE(sameFloats(values, b.log.terms.at(term))) << term;
    }
    EXPECT_EQ(a.curve.epoch, b.curve.epoch);
    EXPECT_TRUE(sameFloats(a.curve.accuracy, b.curve.accuracy));
    EXPECT_EQ(a.records.epoch, b.records.epoch);
    EXPECT_TRUE(sameFloats(a.records.values, b.records.values));
    EXPECT_EQ(a.logits, b.logits) << "eval logits differ";
  }
}

TEST(Engine, SizeEstimateIsWithinThirtyPercentOfTheRealFile) {
  struct Case {
    std::string name;
    JobSpec job;
  };
  std::vector<Case> cases;
  auto vector = vectorJob();
  vector.tasks[0].examplesPerClass = 400;
  vector.tasks[0].dim = 48;
  cases.push_back({"vector", vector});
  auto half = vector;
  half.recording.float16 = true;
  half.recording.exampleRecords = false;
  cases.push_back({"vector float16, no records", half});
  auto text = textJob(writePolarityCorpus(tempDir("size_text_data")));
  text.recording.attentionExamples = 16;
  text.recording.tokenHiddenExamples = 8;
  text.teacher.training.epochs = 2;
  text.students[0].training.epochs = 2;
  cases.push_back({"text with attention and token states", text});
  for (auto& c : cases) {
    c.job.analyze = false; // `kdscope analyze` adds its results later; the estimate is of the recordings
    const auto result = runJob(c.job, RunOptions{tempDir("size").string()}, CancelToken(), nullptr);
    ASSERT_EQ(result.status, JobStatus::Succeeded) << c.name << ": " << result.message;
    const double real = static_cast<double>(fs::file_size(result.runPath));
    const double ratio = static_cast<double>(result.estimatedBytes) / real;
    std::printf("[          ] size estimate, %s: %llu estimated, %.0f real (ratio %.3f)\n", c.name.c_str(),
                static_cast<unsigned long long>(result.estimatedBytes), real, ratio);
    EXPECT_GT(ratio, 0.7) << c.name;
    EXPECT_LT(ratio, 1.3) << c.name;
  }
}

TEST(Engine, FileSizeLimitRefusesAJobBeforeAnythingIsWritten) {
  auto job = vectorJob();
  job.recording.maxFileMb = 0.01;
  const auto dir = tempDir("limit");
  auto result = runJob(job, RunOptions{dir.string()}, CancelToken(), nullptr);
  EXPECT_EQ(result.status, JobStatus::BadInput);
  EXPECT_EQ(result.message.rfind("the run file would be about ", 0), 0U) << result.message;
  EXPECT_NE(result.message.find("above the limit of 10.2 KiB (recording.max_file_mb, or --max-file-mb)"),
            std::string::npos)
      << result.message;
  EXPECT_GT(result.estimatedBytes, 10485U);
  EXPECT_FALSE(fs::exists(dir / "run.h5"));
  // The option overrides the job: 0 lifts the limit.
  RunOptions options{dir.string()};
  options.maxFileMb = 0.0;
  result = runJob(job, options, CancelToken(), nullptr);
  EXPECT_EQ(result.status, JobStatus::Succeeded) << result.message;
}
