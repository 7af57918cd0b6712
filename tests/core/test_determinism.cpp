// Determinism that holds on any CPU (docs/architecture.md, "Determinism"). These tests also
// run under other LibTorch and OpenBLAS kernels than this CPU's own (the .kernels_* variants
// of this suite in ctest, cmake/KdscopeTestSuites.cmake), so a promise that holds only with
// one machine's kernels fails here first.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/distill/teacher_cache.h"
#include "core/distill/trainer.h"
#include "core/engine/run_job.h"
#include "core/record/run_reader.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

fs::path tempDir(const std::string& name) { return kdscope::test::freshTempDir("determinism_" + name); }

/// Bit patterns, so that -0.0 against 0.0 or two NaNs are told apart as the run file would.
std::vector<std::uint32_t> bitsOf(const torch::Tensor& t) {
  const auto c = t.contiguous();
  std::vector<std::uint32_t> bits(static_cast<std::size_t>(c.numel()));
  std::memcpy(bits.data(), c.data_ptr<float>(), bits.size() * sizeof(float));
  return bits;
}

/// For a model in eval mode: each train example's teacher logits as the cache computes them,
/// inside batches of several sizes and orders (32, 7, 45 and 1 rows in random order, and the
/// whole split), must have the same bits as in the ordered whole split. A plain batched
/// forward fails this with OpenBLAS's Haswell kernels (docs/architecture.md, "Determinism").
void expectRowsIndependentOfTheirBatch(ClassifierImpl& model, const TaskData& task) {
  torch::NoGradGuard noGrad;
  model.eval();
  const auto n = static_cast<std::int64_t>(task.train.size());
  ASSERT_GT(n, 100);
  const auto reference = exampleWiseTeacherLogits(model, makeBatch(task, task.train, 0, n));
  const auto classes = reference.size(1);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(11);
  std::shuffle(order.begin(), order.end(), rng);
  std::int64_t compared = 0;
  std::size_t at = 0;
  for (const std::int64_t size : {std::int64_t{32}, std::int64_t{7}, std::int64_t{45}, std::int64_t{1}, n}) {
    std::vector<std::int64_t> rows;
    for (std::int64_t i = 0; i < size; ++i) {
      rows.push_back(order[(at + static_cast<std::size_t>(i)) % order.size()]);
    }
    at += static_cast<std::size_t>(size);
    const auto logits = exampleWiseTeacherLogits(model, makeBatch(task, task.train, rows));
    ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{size, classes}));
    for (std::int64_t i = 0; i < size; ++i) {
      ASSERT_EQ(bitsOf(logits[i]), bitsOf(reference[rows[static_cast<std::size_t>(i)]]))
          << "example " << rows[static_cast<std::size_t>(i)] << " at position " << i << " of a batch of " << size;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 32 + 7 + 45 + 1 + n);
}

/// A transformer (initialised, untrained) for a tiny polarity corpus of varying lengths, in
/// eval mode, with its task.
struct TextModel {
  TaskData task;
  std::shared_ptr<ClassifierImpl> model;
};
TextModel tinyTextModel(const std::string& name, std::uint64_t seed) {
  const auto dataDir =
      kdscope::test::writePolarityCorpus(tempDir(name), kdscope::test::PolarityCorpus{200, false, true});
  const auto job = kdscope::test::tinyPolarityJob(dataDir, 1);
  TextModel out{loadTask(job.tasks[0], dataDir, job.seed), nullptr};
  torch::manual_seed(seed);
  out.model = makeModel(job.teacher.architecture, out.task);
  out.model->eval();
  return out;
}

JobSpec vectorKdJob() {
  JobSpec job;
  job.name = "determinism";
  job.seed = 9;
  job.tasks.push_back(kdscope::test::syntheticHierarchyTask(8, 50));
  job.teacher.architecture.type = "mlp";
  job.teacher.architecture.hidden = {24, 12};
  job.teacher.training.epochs = 2;
  job.teacher.training.batchSize = 20;
  StudentSpec kd;
  kd.name = "kd";
  kd.architecture.type = "mlp";
  kd.architecture.hidden = {8};
  kd.training = job.teacher.training;
  kd.training.batchSize = 45; // a partial last batch: 100 train rows
  kd.objective.lambda = 0.7;
  kd.objective.temperature = 3.0;
  job.students = {kd};
  return job;
}

/// The same job with the teacher cache in memory, spilled to disk, and off: the students'
/// eval logits and train logs must be bit-identical (the three compute the teacher's logits
/// one example at a time).
void expectCacheModesGiveTheSameStudent(JobSpec job, const std::string& task, const std::string& name) {
  job.cacheTeacherOutputs = true;
  job.teacherCacheBudgetMb = 64.0;
  const auto memory = runJob(job, RunOptions{tempDir(name + "_mem").string()}, CancelToken(), nullptr);
  job.teacherCacheBudgetMb = 0.0;
  const auto disk = runJob(job, RunOptions{tempDir(name + "_disk").string()}, CancelToken(), nullptr);
  job.cacheTeacherOutputs = false;
  const auto off = runJob(job, RunOptions{tempDir(name + "_off").string()}, CancelToken(), nullptr);
  for (const auto* r : {&memory, &disk, &off}) {
    ASSERT_EQ(r->status, JobStatus::Succeeded) << r->message;
  }
  const auto student = job.students.front().name;
  const auto ref = RunReader(memory.runPath).evalLogits(task, student);
  ASSERT_FALSE(ref.empty());
  EXPECT_EQ(ref, RunReader(disk.runPath).evalLogits(task, student)) << "cache on disk";
  EXPECT_EQ(ref, RunReader(off.runPath).evalLogits(task, student)) << "cache off";
  // The train log (per-step losses) too: the three students took the same steps.
  const auto refLog = RunReader(memory.runPath).trainLog(task, student);
  const auto offLog = RunReader(off.runPath).trainLog(task, student);
  EXPECT_EQ(refLog.steps, offLog.steps);
  EXPECT_EQ(refLog.loss, offLog.loss);
  EXPECT_EQ(refLog.terms, offLog.terms);
}

} // namespace

TEST(Determinism, CachedTeacherLogitsOfAnMlpDependOnlyOnTheExample) {
  const auto job = vectorKdJob();
  const auto task = loadTask(job.tasks[0], "", job.seed);
  torch::manual_seed(3);
  auto model = makeModel(job.teacher.architecture, task);
  expectRowsIndependentOfTheirBatch(*model, task);
}

TEST(Determinism, CachedTeacherLogitsOfATransformerDependOnlyOnTheExample) {
  const auto text = tinyTextModel("text_rows_data", 4);
  expectRowsIndependentOfTheirBatch(*text.model, text.task);
}

// The cache runs each example at its own length (tokens past its last real one cut) and
// shares the examples out over the job's threads. The first must not change the logits
// beyond float rounding: a padded batch through the plain forward pass is the oracle. The
// second must not change a bit: one thread against two.
TEST(Determinism, CachedTeacherLogitsAgreeWithThePaddedForwardAndWithAnyThreadCount) {
  const auto text = tinyTextModel("text_trim_data", 5);
  const auto& task = text.task;
  const auto& model = text.model;
  torch::NoGradGuard noGrad;
  const auto n = static_cast<std::int64_t>(task.train.size());
  const auto batch = makeBatch(task, task.train, 0, n);
  // The corpus pads: some examples end well before the task's length.
  const auto realTokens = batch.mask.sum(1);
  ASSERT_LT(realTokens.min().item<std::int64_t>(), task.seqLen / 2);
  const auto padded = model->forward(batch).logits;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto oneThread = exampleWiseTeacherLogits(*model, batch);
  at::set_num_threads(2);
  const auto twoThreads = exampleWiseTeacherLogits(*model, batch);
  at::set_num_threads(threads);
  EXPECT_EQ(bitsOf(oneThread), bitsOf(twoThreads));
  const double scale = padded.abs().max().item<double>();
  ASSERT_GT(scale, 0.0);
  EXPECT_LT((oneThread - padded).abs().max().item<double>(), 1e-5 * std::max(1.0, scale));
}

TEST(Determinism, TeacherCacheInMemoryOnDiskAndOffTrainBitIdenticalMlpStudents) {
  expectCacheModesGiveTheSameStudent(vectorKdJob(), "synthetic_hierarchy", "mlp");
}

TEST(Determinism, TeacherCacheInMemoryOnDiskAndOffTrainBitIdenticalTransformerStudents) {
  const auto dataDir = kdscope::test::writePolarityCorpus(tempDir("text_cache_data"),
                                                          kdscope::test::PolarityCorpus{200, false, true});
  auto job = kdscope::test::tinyPolarityJob(dataDir, 2);
  job.students.front().training.batchSize = 24;
  expectCacheModesGiveTheSameStudent(job, "polarity", "text");
}

// With per-example records on and the cache in memory, the final teacher runs over the train
// set once: its last records row and the cache come from one example-wise pass. The row must be
// that pass's softmax at the true class bit for bit (recomputed from the teacher's checkpoint),
// the batched pass's row (cache off) within float rounding, the earlier rows unchanged; the
// students bit-identical with the cache off (above).
TEST(Determinism, TheTeachersLastRecordsAndTheCacheShareOneExampleWisePass) {
  const auto dataDir = kdscope::test::writePolarityCorpus(tempDir("text_share_data"),
                                                          kdscope::test::PolarityCorpus{200, false, true});
  auto job = kdscope::test::tinyPolarityJob(dataDir, 2);
  ASSERT_TRUE(job.recording.exampleRecords);
  job.cacheTeacherOutputs = true;
  job.teacherCacheBudgetMb = 64.0;
  std::vector<std::string> messages;
  const auto collect = [&messages](const ProgressEvent& e) { messages.push_back(e.message); };
  const auto sharedDir = tempDir("text_share_on");
  const auto shared = runJob(job, RunOptions{sharedDir.string()}, CancelToken(), collect);
  ASSERT_EQ(shared.status, JobStatus::Succeeded) << shared.message;
  const auto fromRecords = [&messages] {
    return std::count_if(messages.begin(), messages.end(), [](const std::string& m) {
      return m.find("cached train-set outputs") != std::string::npos &&
             m.find("from the pass of the teacher's per-example records") != std::string::npos;
    });
  };
  EXPECT_EQ(fromRecords(), 1);
  messages.clear();
  job.teacherCacheBudgetMb = 0.0; // spilled to disk: its own pass
  const auto disk = runJob(job, RunOptions{tempDir("text_share_disk").string()}, CancelToken(), collect);
  ASSERT_EQ(disk.status, JobStatus::Succeeded) << disk.message;
  EXPECT_EQ(fromRecords(), 0);
  job.cacheTeacherOutputs = false;
  const auto off = runJob(job, RunOptions{tempDir("text_share_off").string()}, CancelToken(), nullptr);
  ASSERT_EQ(off.status, JobStatus::Succeeded) << off.message;

  const auto& taskName = job.tasks.front().name;
  const TrainRecords withCache = RunReader(shared.runPath).trainRecords(taskName, "teacher");
  const TrainRecords batched = RunReader(off.runPath).trainRecords(taskName, "teacher");
  const TrainRecords spilled = RunReader(disk.runPath).trainRecords(taskName, "teacher");
  ASSERT_EQ(withCache.epoch, (std::vector<std::int64_t>{1, 2}));
  ASSERT_EQ(withCache.values.size(), batched.values.size());
  const auto n = static_cast<std::size_t>(withCache.examples);
  // Epoch 1: the same batched pass in both runs.
  EXPECT_TRUE(std::equal(withCache.values.begin(), withCache.values.begin() + static_cast<std::ptrdiff_t>(n),
                         batched.values.begin()));
  EXPECT_EQ(spilled.values, batched.values) << "a spilled cache leaves the records to their own pass";

  const auto task = loadTask(job.tasks.front(), dataDir, job.seed);
  auto teacher = makeModel(job.teacher.architecture, task);
  torch::serialize::InputArchive archive;
  archive.load_from((sharedDir / "checkpoints" / taskName / "teacher.pt").string());
  teacher->load(archive);
  torch::NoGradGuard noGrad;
  teacher->eval();
  const auto logits = exampleWiseTeacherLogits(*teacher, makeBatch(task, task.train, 0, static_cast<std::int64_t>(n)));
  const auto labels = torch::tensor(task.train.labels, torch::kInt64);
  const auto expected = torch::softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1).contiguous();
  std::size_t differing = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float last = withCache.values[n + i];
    ASSERT_EQ(last, expected[static_cast<std::int64_t>(i)].item<float>()) << "example " << i;
    ASSERT_NEAR(last, batched.values[n + i], 1e-5) << "example " << i;
    differing += last != batched.values[n + i] ? 1 : 0;
  }
  RecordProperty("last_row_bits_differing_from_the_batched_pass", static_cast<int>(differing));
}

// Passes that need only the logits (per-example records, eval passes) take the rows in order
// of length and cut each batch's padding.
TEST(PaddingCut, RowsByLengthShortestFirstTiesByIndex) {
  TaskData task;
  task.kind = TaskKind::Text;
  task.seqLen = 5;
  Split split;
  split.labels = {0, 1, 0, 1};
  // Real lengths 3, 1, 4 (a padding token inside counts as part of the row) and 3.
  split.tokens = {2, 7, 8, 0, 0, /**/ 2, 0, 0, 0, 0, /**/ 2, 7, 0, 9, 0, /**/ 2, 9, 9, 0, 0};
  EXPECT_EQ(rowsByLength(task, split), (std::vector<std::int64_t>{1, 0, 3, 2}));
  task.kind = TaskKind::Vector;
  EXPECT_EQ(rowsByLength(task, split), (std::vector<std::int64_t>{0, 1, 2, 3}));
}

TEST(PaddingCut, CutsColumnsPastTheLongestRowAndEvaluatesAsThePaddedBatch) {
  const auto text = tinyTextModel("cut_eval_data", 6);
  const auto& task = text.task;
  ASSERT_TRUE(paddingCanBeCut(*text.model));
  torch::NoGradGuard noGrad;
  const auto n = static_cast<std::int64_t>(task.eval.size());
  ASSERT_GT(n, 20);
  const auto batch = makeBatch(task, task.eval, 0, n);
  const auto order = rowsByLength(task, task.eval);
  // The shortest 10 rows: cut to the longest of them, no real token lost.
  const auto shortRows = std::vector<std::int64_t>(order.begin(), order.begin() + 10);
  const auto shortBatch = makeBatch(task, task.eval, shortRows);
  const auto cut = cutPadding(shortBatch);
  const auto longest = shortBatch.mask.sum(1).max().item<std::int64_t>();
  ASSERT_LT(longest, task.seqLen);
  EXPECT_EQ(cut.tokens.size(1), longest);
  EXPECT_EQ(cut.mask.size(1), longest);
  EXPECT_EQ(cut.mask.sum().item<std::int64_t>(), shortBatch.mask.sum().item<std::int64_t>());
  EXPECT_TRUE(torch::equal(cut.tokens, shortBatch.tokens.narrow(1, 0, longest)));
  // The oracle: the plain forward pass over the whole padded split.
  const auto logits = text.model->forward(batch).logits;
  const double accuracy = logits.argmax(1).eq(batch.labels).to(torch::kFloat64).mean().item<double>();
  const double loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat64), batch.labels).item<double>();
  const auto stats = evaluate(*text.model, task, task.eval, 7); // several batches, the last short
  EXPECT_NEAR(stats.loss, loss, 1e-5);
  // A row whose top two logits are within float rounding could flip; none may flip twice.
  EXPECT_LE(std::abs(stats.accuracy - accuracy), 1.0 / static_cast<double>(n) + 1e-12);
}
