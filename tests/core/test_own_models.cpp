// Jobs with models from elsewhere (issue #13, docs/models.md): modes "compare" and "distil"
// with the tiny TorchScript models of tests/python/make_torchscript_models.py on the tiny
// polarity corpus of test_support.h. The oracle is PyTorch itself: tests/python/
// torchscript_oracle.py runs the same modules from Python on the same token ids, with every
// input built by hand, and takes one AdamW step of KDScope's KD objective.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/data/dataset.h"
#include "core/distill/trainer.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "core/models/model_manifest.h"
#include "core/models/model_tokenizer.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "torchscript_test_support.h"

#ifndef KDSCOPE_EXECUTABLE
#error "KDSCOPE_EXECUTABLE must name the kdscope executable (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope {
namespace {

namespace fs = std::filesystem;
namespace layout = core::layout;
using test::modelFile;
using test::TempDir;
using test::torchScriptModels;

/// Float32 forwards of the same module in C++ and in Python may sum in another order (another
/// batch size, other kernels): logits of order 1 agree to about 1e-6; 1e-4 leaves room.
constexpr double kLogitTolerance = 1e-4;

using kdscope::test::runCommand;

nlohmann::json readJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void writeJson(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump();
}

core::TaskSpec polarityTask() {
  core::TaskSpec task;
  task.name = "polarity";
  task.maxLen = 12;
  task.minFreq = 1;
  return task;
}

/// The task's split re-encoded with the model's own tokenizer, as rows of ids.
std::vector<std::vector<std::int64_t>> modelIds(const core::TaskData& task, const core::Split& split,
                                                const std::string& manifestPath) {
  const core::ModelTokenizer tokenizer = core::ModelTokenizer::fromManifest(core::loadModelManifest(manifestPath));
  std::vector<std::vector<std::int64_t>> rows;
  for (const std::string& text : split.texts) {
    rows.push_back(tokenizer.encode(text, task.seqLen).inputIds);
  }
  return rows;
}

/// PyTorch's logits for these ids (torchscript_oracle.py logits).
std::vector<std::vector<double>> pytorchLogits(const std::string& model, const std::vector<std::vector<std::int64_t>>& ids,
                                               const std::string& scratch) {
  const std::string in = scratch + "/" + fs::path(model).stem().string() + "_in.json";
  const std::string out = scratch + "/" + fs::path(model).stem().string() + "_out.json";
  writeJson(in, {{"ids", ids}});
  const std::string manifest = core::defaultManifestPath(model);
  const auto [status, output] = runCommand(std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR +
                                    "/tests/python/torchscript_oracle.py logits '" + model + "' '" + manifest + "' '" + in +
                                    "' '" + out + "'");
  EXPECT_EQ(status, 0) << output;
  return status == 0 ? readJson(out).at("logits").get<std::vector<std::vector<double>>>()
                     : std::vector<std::vector<double>>{};
}

/// Recorded eval/logits [N, C] of a model equal PyTorch's within kLogitTolerance.
void expectLogitsMatchPytorch(const core::H5File& file, const std::string& model, const std::string& module,
                              const core::TaskData& task, const std::string& scratch) {
  SCOPED_TRACE("model " + model);
  const std::vector<float> recorded = file.readFloat(layout::evalLogits("polarity", model));
  const auto expected = pytorchLogits(module, modelIds(task, task.eval, core::defaultManifestPath(module)), scratch);
  ASSERT_EQ(expected.size(), task.eval.size());
  ASSERT_EQ(recorded.size(), task.eval.size() * 2);
  double worst = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    for (std::size_t c = 0; c < 2; ++c) {
      worst = std::max(worst, std::abs(expected[i][c] - static_cast<double>(recorded[i * 2 + c])));
    }
  }
  EXPECT_LT(worst, kLogitTolerance);
  // Not a trivially constant model: the logits vary across examples.
  double spread = 0.0;
  for (std::size_t i = 1; i < expected.size(); ++i) {
    spread = std::max(spread, std::abs(expected[i][0] - expected[0][0]));
  }
  EXPECT_GT(spread, 1e-3);
}

class OwnModels : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(torchScriptModels().empty());
    m_data = test::writePolarityCorpus(m_dir.path() + "/data");
    m_task = core::loadTask(polarityTask(), m_data, /*seed=*/2);
  }

  core::JobSpec job(const std::string& mode) const {
    core::JobSpec j;
    j.name = "own";
    j.mode = mode;
    j.seed = 2;
    j.dataDir = m_data;
    j.tasks = {polarityTask()};
    j.teacher.torchscript = modelFile("polarity_bert.pt");
    j.recording.attentionExamples = 5;
    j.recording.logEvery = 1;
    j.analyze = false;
    return j;
  }

  core::JobResult runIn(const core::JobSpec& spec, const std::string& out) const {
    core::RunOptions options;
    options.outDir = out;
    core::CancelToken cancel;
    return core::runJob(spec, options, cancel, {});
  }

  TempDir m_dir{"own_models"};
  std::string m_data;
  core::TaskData m_task;
};

// `kdscope run` of a compare job (relative module paths, resolved against the job file), then
// `kdscope info`: every model recorded, logits equal PyTorch's, what the logits-only model lacks
// skipped by name with the pre-flight's reason, head importance through head_mask.
TEST_F(OwnModels, CompareJobRecordsEveryModelAndAnalysesThem) {
  const std::string jobDir = m_dir.path() + "/job";
  fs::create_directories(jobDir);
  fs::create_directory_symlink(torchScriptModels(), jobDir + "/models");
  nlohmann::json j = {
      {"name", "own"},
      {"mode", "compare"},
      {"seed", 2},
      {"data_dir", m_data},
      {"tasks", {{{"name", "polarity"}, {"max_len", 12}, {"min_freq", 1}}}},
      {"teacher", {{"torchscript", "models/polarity_bert.pt"}}},
      {"students",
       {{{"name", "small"}, {"torchscript", "models/polarity_bert_small.pt"}},
        {{"name", "bag"}, {"torchscript", "models/polarity_bag.pt"}, {"manifest", "models/polarity_bag.json"}}}},
      {"recording", {{"attention_examples", 5}, {"memory_budget_mb", 0.05}}}};
  writeJson(jobDir + "/job.json", j);
  const std::string out = m_dir.path() + "/run";
  const auto [status, output] = runCommand(std::string(KDSCOPE_EXECUTABLE) + " run '" + jobDir + "/job.json' --out '" + out + "'");
  ASSERT_EQ(status, 0) << output;
  // The pre-flight report, before any work: what the bag provides and lacks.
  EXPECT_NE(output.find("hidden states"), std::string::npos) << output;
  const std::string runPath = out + "/run.h5";
  {
    const core::H5File file(runPath, core::H5File::Mode::ReadOnly);
    ASSERT_EQ(file.readInt64(layout::evalLabels("polarity")), m_task.eval.labels);
    expectLogitsMatchPytorch(file, "teacher", modelFile("polarity_bert.pt"), m_task, m_dir.path());
    expectLogitsMatchPytorch(file, "small", modelFile("polarity_bert_small.pt"), m_task, m_dir.path());
    expectLogitsMatchPytorch(file, "bag", modelFile("polarity_bag.pt"), m_task, m_dir.path());
    // Recorded as the modules give them: hidden [N, layers + 1, 16], attention of 5 examples.
    EXPECT_EQ(file.shape(layout::evalHidden("polarity", "teacher")),
              (std::vector<std::uint64_t>{m_task.eval.size(), 3, 16}));
    EXPECT_EQ(file.shape(layout::evalAttention("polarity", "small")), (std::vector<std::uint64_t>{5, 1, 4, 12, 12}));
    // The bag returns logits only: nothing else recorded, and the check says why.
    EXPECT_FALSE(file.exists(layout::evalHidden("polarity", "bag")));
    EXPECT_FALSE(file.exists(layout::evalAttention("polarity", "bag")));
    const auto check = nlohmann::json::parse(file.attrString(layout::model("polarity", "bag"), layout::attr::kModelCheck));
    EXPECT_TRUE(check.at("usable").get<bool>());
    const auto architecture =
        nlohmann::json::parse(file.attrString(layout::model("polarity", "small"), layout::attr::kArchitecture));
    EXPECT_EQ(architecture.at("type"), "torchscript");
    EXPECT_EQ(architecture.at("torchscript"),
              fs::absolute(jobDir + "/models/polarity_bert_small.pt").lexically_normal().string());
    // The analysis ran after the job: the named skips, and head importance of the teacher.
    const auto skipped = file.attrStrings(layout::analysis("polarity"), "skipped");
    auto has = [&](const std::string& start, const std::string& inside) {
      return std::any_of(skipped.begin(), skipped.end(), [&](const std::string& s) {
        return s.rfind(start, 0) == 0 && s.find(inside) != std::string::npos;
      });
    };
    std::string all;
    for (const auto& s : skipped) {
      all += s + "\n";
    }
    EXPECT_TRUE(has("cka, residual/bag: ", "hidden states")) << all;
    EXPECT_TRUE(has("attention/bag: ", "attentions")) << all;
    EXPECT_TRUE(has("probes/bag: ", "hidden states")) << all;
    EXPECT_FALSE(has("cka, residual/small", "")) << all;
    const std::string importance = layout::analysisEntry("polarity", "teacher", layout::entry::kHeadImportanceRaw);
    ASSERT_TRUE(file.exists(importance)) << all;
    EXPECT_EQ(file.shape(importance), (std::vector<std::uint64_t>{2, 4}));
    for (const float v : file.readFloat(importance)) {
      EXPECT_TRUE(std::isfinite(v) && v >= 0.0F);
    }
    EXPECT_TRUE(file.exists(layout::analysisEntry("polarity", "small", layout::entry::kCka)));
  }
  const auto [infoStatus, info] = runCommand(std::string(KDSCOPE_EXECUTABLE) + " info '" + runPath + "'");
  EXPECT_EQ(infoStatus, 0) << info;
  EXPECT_NE(info.find("bag"), std::string::npos) << info;
}

// Distil from a TorchScript teacher into a KDScope student: the teacher's recorded logits are
// PyTorch's; the student trains with the KD term from the teacher cache.
TEST_F(OwnModels, DistilIntoKdscopeStudent) {
  core::JobSpec spec = job("distil");
  core::StudentSpec kd;
  kd.name = "kd";
  kd.architecture.layers = 1;
  kd.architecture.heads = 2;
  kd.architecture.width = 16;
  kd.architecture.ffn = 32;
  kd.training.epochs = 1;
  kd.training.batchSize = 32;
  kd.objective.lambda = 0.5;
  kd.objective.temperature = 2.0;
  spec.students = {kd};
  const std::string out = m_dir.path() + "/distil";
  const core::JobResult result = runIn(spec, out);
  ASSERT_EQ(result.status, core::JobStatus::Succeeded) << result.message;
  const core::H5File file(out + "/run.h5", core::H5File::Mode::ReadOnly);
  expectLogitsMatchPytorch(file, "teacher", modelFile("polarity_bert.pt"), m_task, m_dir.path());
  const std::vector<float> kdTerm = file.readFloat(layout::trainTerm("polarity", "kd", "kd"));
  ASSERT_FALSE(kdTerm.empty());
  for (const float v : kdTerm) {
    EXPECT_TRUE(std::isfinite(v) && v >= 0.0F);
  }
  EXPECT_EQ(file.shape(layout::evalLogits("polarity", "kd")), (std::vector<std::uint64_t>{m_task.eval.size(), 2}));
}

// A TorchScript student trained in C++ through its parameters: one AdamW step on the whole
// train split (one batch, no warm-up, no clipping) equals the same step taken by PyTorch.
TEST_F(OwnModels, TorchScriptStudentStepEqualsPytorch) {
  core::JobSpec spec = job("distil");
  core::StudentSpec ts;
  ts.name = "ts";
  ts.torchscript = modelFile("polarity_bert_small.pt");
  ts.training.epochs = 1;
  ts.training.batchSize = 10000; // the whole train split in one step
  ts.training.lr = 1e-2;
  ts.training.weightDecay = 0.01;
  ts.training.warmupFraction = 0.0;
  ts.training.gradClip = 0.0;
  // fp32, not the default "auto": the oracle is PyTorch's fp32 step, compared to 1e-4 (loss)
  // and 1e-5 (weights); under bf16 the first loss already differs by about 1e-4.
  ts.training.precision = "fp32";
  ts.objective.lambda = 0.5;
  ts.objective.temperature = 2.0;
  spec.students = {ts};
  const std::string out = m_dir.path() + "/step";
  const core::JobResult result = runIn(spec, out);
  ASSERT_EQ(result.status, core::JobStatus::Succeeded) << result.message;

  const std::string scratch = m_dir.path();
  const nlohmann::json in = {
      {"student_ids", modelIds(m_task, m_task.train, modelFile("polarity_bert_small.json"))},
      {"teacher_ids", modelIds(m_task, m_task.train, modelFile("polarity_bert.json"))},
      {"labels", m_task.train.labels},
      {"lambda", 0.5},
      {"temperature", 2.0},
      {"lr", 1e-2},
      {"weight_decay", 0.01}};
  writeJson(scratch + "/step_in.json", in);
  const auto [status, output] =
      runCommand(std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR + "/tests/python/torchscript_oracle.py kd_step '" +
          modelFile("polarity_bert_small.pt") + "' '" + modelFile("polarity_bert_small.json") + "' '" +
          modelFile("polarity_bert.pt") + "' '" + modelFile("polarity_bert.json") + "' '" + scratch + "/step_in.json' '" +
          scratch + "/step_out.json'");
  ASSERT_EQ(status, 0) << output;
  const nlohmann::json expected = readJson(scratch + "/step_out.json");
  // The loss of the step, as the run file logged it (log_every 1).
  const std::vector<float> loss = core::H5File(out + "/run.h5", core::H5File::Mode::ReadOnly)
                                      .readFloat(layout::trainLoss("polarity", "ts"));
  ASSERT_FALSE(loss.empty());
  EXPECT_NEAR(loss[0], expected.at("loss").get<double>(), 1e-4);

  // The trained module the job saved beside the run, loaded as Python would.
  const std::string saved = out + "/checkpoints/polarity/ts.torchscript.pt";
  ASSERT_TRUE(fs::exists(saved));
  torch::jit::Module module = torch::jit::load(saved);
  std::size_t compared = 0;
  std::size_t changed = 0;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(expected.at("parameters").contains(p.name));
    const auto& e = expected.at("parameters").at(p.name);
    const auto after = e.at("after").get<std::vector<double>>();
    const auto before = e.at("before").get<std::vector<double>>();
    const auto grad = e.at("grad").get<std::vector<double>>();
    const torch::Tensor got = p.value.detach().to(torch::kFloat64).flatten().contiguous();
    ASSERT_EQ(static_cast<std::size_t>(got.numel()), after.size());
    const double* g = got.data_ptr<double>();
    for (std::size_t i = 0; i < after.size(); ++i) {
      // Adam's first step moves a weight by lr * g / (|g| + eps): where |g| is near float noise
      // its sign may differ between the two, so those weights only agree to 2 lr.
      const double tolerance = std::abs(grad[i]) > 1e-5 ? 1e-5 : 2.0 * 1e-2 + 1e-5;
      EXPECT_NEAR(g[i], after[i], tolerance) << "element " << i;
      compared += std::abs(grad[i]) > 1e-5 ? 1 : 0;
      changed += std::abs(g[i] - before[i]) > 1e-3 ? 1 : 0;
    }
  }
  EXPECT_GT(compared, 1000U); // most of the ~2,600 weights are checked tightly
  EXPECT_GT(changed, 1000U);  // and the step moved them
}

// A job naming a TorchScript model in mode 'train', or a KDScope student in mode 'compare', is
// refused with the field and the reason; so is augmentation in mode 'distil'.
TEST_F(OwnModels, ModesRefuseWhatTheyCannotDo) {
  const auto issuesOf = [](const std::string& text) {
    std::string all;
    for (const auto& issue : core::parseJob(text).issues) {
      all += issue.str() + "\n";
    }
    return all;
  };
  const std::string train = issuesOf(R"({"tasks": ["polarity"], "teacher": {"torchscript": "t.pt"}})");
  EXPECT_NE(train.find("teacher.torchscript: a TorchScript model needs \"mode\""), std::string::npos) << train;
  const std::string compare =
      issuesOf(R"({"mode": "compare", "tasks": ["polarity"], "teacher": {"torchscript": "t.pt"}, "students": [{"name": "s"}]})");
  EXPECT_NE(compare.find("students[0].torchscript: required in mode 'compare'"), std::string::npos) << compare;
  const std::string distil = issuesOf(
      R"({"mode": "distil", "tasks": ["polarity"], "teacher": {"torchscript": "t.pt"},
          "students": [{"name": "s", "augmentation": {"mask": 0.1}, "objective": {"hidden_mse": 1}}]})");
  EXPECT_NE(distil.find("students[0].augmentation.mask: not available in mode 'distil'"), std::string::npos) << distil;
  EXPECT_NE(distil.find("students[0].objective.hidden_mse: not available in mode 'distil'"), std::string::npos) << distil;
  const std::string noTeacher = issuesOf(R"({"mode": "distil", "tasks": ["polarity"]})");
  EXPECT_NE(noTeacher.find("teacher.torchscript: required in mode 'distil'"), std::string::npos) << noTeacher;
}

// A module whose classes do not fit the task is refused before any work, naming the manifest
// field; no run file is started.
TEST_F(OwnModels, ClassCountMismatchIsRefusedBeforeAnyWork) {
  core::JobSpec spec = job("compare");
  spec.teacher.torchscript = modelFile("tiny_bert.pt"); // 3 classes; polarity has 2
  const std::string out = m_dir.path() + "/mismatch";
  const core::JobResult result = runIn(spec, out);
  EXPECT_EQ(result.status, core::JobStatus::BadInput);
  EXPECT_NE(result.message.find("field 'class_names': 3 classes, but task 'polarity' has 2"), std::string::npos)
      << result.message;
  EXPECT_NE(result.message.find("teacher.torchscript"), std::string::npos) << result.message;
  EXPECT_FALSE(fs::exists(out + "/run.h5"));
}

// The eval batch from the memory budget, worked by hand for BERT-base at 128 tokens: a row
// holds 13 x 128 x 768 hidden + 12 x 128 x 3072 feed-forward + 2 x 12 x 12 x 128^2 attention
// floats = 10,715,136, times 4 bytes, times 2 = 85,721,088 bytes; 1 GiB / that = 12.53 -> 12.
TEST(OwnModelsBudget, EvalBatchRowsFromTheMemoryBudget) {
  EXPECT_EQ(core::evalBatchRows(12, 12, 768, 128, 1024.0, 128), 12);
  EXPECT_EQ(core::evalBatchRows(12, 12, 768, 128, 2048.0, 128), 25);
  EXPECT_EQ(core::evalBatchRows(12, 12, 768, 128, 0.0, 128), 128);  // 0: no budget
  EXPECT_EQ(core::evalBatchRows(12, 12, 768, 128, 1.0, 128), 1);    // never below one row
  EXPECT_EQ(core::evalBatchRows(2, 2, 16, 12, 1024.0, 128), 128);   // small models: the cap
  // Vector models (length 0 counts as 1 position): 2 x 4 x (3 x 32 + 2 x 4 x 32) = 2816 bytes.
  EXPECT_EQ(core::evalBatchRows(2, 0, 32, 0, 2816.0 * 10.5 / (1024.0 * 1024.0), 128), 10);
}

} // namespace
} // namespace kdscope
