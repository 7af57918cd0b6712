// Training precision: the autocast scope, the job field and what the run file records.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/common/error.h"
#include "core/engine/precision.h"
#include "core/job/job_spec.h"
#include "core/models/transformer.h"


using namespace kdscope::core;

TEST(Precision, ParsesTheThreeNamesAndRefusesOthers) {
  EXPECT_EQ(parsePrecision("fp32"), Precision::Fp32);
  EXPECT_EQ(parsePrecision("bf16"), Precision::Bf16);
  EXPECT_EQ(parsePrecision("auto"), Precision::Auto);
  try {
    (void)parsePrecision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const JobError& e) {
    EXPECT_NE(std::string(e.what()).find("'fp16'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(resolvePrecision(Precision::Fp32), Precision::Fp32);
  EXPECT_EQ(resolvePrecision(Precision::Bf16), Precision::Bf16);
  EXPECT_EQ(resolvePrecision(Precision::Auto), cpuHasNativeBf16() ? Precision::Bf16 : Precision::Fp32);
}

TEST(Precision, NativeBf16FromCpuFlagsUnlessKdscopeCpuBf16SaysOtherwise) {
  const std::string withBf16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n";
  const std::string withAmx = "flags\t\t: fpu avx512f amx_bf16 amx_tile\n";
  const std::string without = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n";
  const auto detect = [](const char* value, const std::string& cpuinfo) {
    std::istringstream in(cpuinfo);
    return nativeBf16From(value, in);
  };
  EXPECT_TRUE(detect(nullptr, withBf16));
  EXPECT_TRUE(detect(nullptr, withAmx));
  EXPECT_FALSE(detect(nullptr, without));
  EXPECT_FALSE(detect(nullptr, ""));
  EXPECT_TRUE(detect("", withBf16)); // empty: unset
  EXPECT_FALSE(detect("0", withBf16));
  EXPECT_TRUE(detect("1", without));
  try {
    (void)detect("no", withBf16);
    FAIL() << "KDSCOPE_CPU_BF16=no accepted";
  } catch (const JobError& e) {
    EXPECT_NE(std::string(e.what()).find("KDSCOPE_CPU_BF16 is 'no'"), std::string::npos) << e.what();
  }
  // This process: the variable as ctest or the shell set it.
  const char* env = std::getenv("KDSCOPE_CPU_BF16");
  if (env != nullptr && std::string(env) == "0") {
    EXPECT_FALSE(cpuHasNativeBf16());
    EXPECT_EQ(resolvePrecision(Precision::Auto), Precision::Fp32);
  }
}

TEST(Precision, ScopeRunsLinearLayersInBf16AndRestoresFp32) {
  torch::manual_seed(3);
  torch::nn::Linear linear(8, 4);
  auto x = torch::randn({5, 8});
  const auto reference = linear(x);
  {
    PrecisionScope outer(Precision::Bf16);
    const auto inside = linear(x);
    EXPECT_EQ(inside.scalar_type(), torch::kBFloat16);
    // bf16 keeps 8 significand bits: each output within a few bf16 ulps of the fp32 one.
    const auto err = (inside.to(torch::kFloat32) - reference).abs().max().item<double>();
    const auto scale = reference.abs().max().item<double>() + x.abs().max().item<double>();
    EXPECT_LT(err, scale * 3.0 * std::pow(2.0, -8.0)) << err;
    EXPECT_GT(err, 0.0) << "autocast changed nothing";
    {
      PrecisionScope inner(Precision::Fp32);
      EXPECT_EQ(linear(x).scalar_type(), torch::kFloat32);
    }
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
  }
  const auto after = linear(x);
  EXPECT_EQ(after.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(after, reference));
}

TEST(Precision, Bf16TrainingStepGivesFp32GradientsCloseToFp32) {
  // One step of a tiny transformer in both precisions from the same weights: the gradients
  // are fp32 tensors either way, and bf16's agree with fp32's in direction (cosine > 0.99).
  torch::manual_seed(5);
  TransformerOptions options(50, 12, 3);
  options.layers(2).heads(2).width(16).ffn(32).dropout(0.0);
  TransformerClassifier model(options);
  Batch batch;
  batch.tokens = torch::randint(3, 50, {8, 12}, torch::kInt64);
  batch.tokens.select(1, 0).fill_(2);
  batch.mask = batch.tokens.ne(0);
  batch.labels = torch::randint(0, 3, {8}, torch::kInt64);
  const auto gradients = [&](Precision precision) {
    model->zero_grad();
    torch::Tensor loss;
    {
      PrecisionScope scope(precision);
      loss = torch::nn::functional::cross_entropy(model->forward(batch).logits, batch.labels);
    }
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) {
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
      grads.push_back(p.grad().flatten().clone());
    }
    return torch::cat(grads);
  };
  const auto fp32 = gradients(Precision::Fp32);
  const auto bf16 = gradients(Precision::Bf16);
  const double cosine = (fp32 * bf16).sum().item<double>() / (fp32.norm().item<double>() * bf16.norm().item<double>());
  EXPECT_GT(cosine, 0.99);
  EXPECT_FALSE(torch::equal(fp32, bf16));
}

namespace {
std::string jobWithStudentPrecision(const std::string& precision) {
  return R"({"tasks": [{"name": "polarity"}],
  "teacher": {"architecture": {"type": "transformer"}},
  "students": [{"name": "kd", "architecture": {"type": "transformer"},
                "training": {"precision": ")" +
         precision + R"("}, "objective": {"lambda": 0.5}}]})";
}
} // namespace

TEST(Precision, JobFieldIsReadWrittenAndRefusedByName) {
  const auto parsed = parseJob(jobWithStudentPrecision("bf16"), "job.json");
  ASSERT_TRUE(parsed.job.has_value()) << (parsed.issues.empty() ? "" : parsed.issues[0].str());
  EXPECT_EQ(parsed.job->students.at(0).training.precision, "bf16");
  EXPECT_EQ(parsed.job->teacher.training.precision, "auto"); // the default
  const auto json = nlohmann::json::parse(jobToJson(*parsed.job));
  EXPECT_EQ(json["students"][0]["training"]["precision"], "bf16");
  const auto bad = parseJob(jobWithStudentPrecision("half"), "job.json");
  ASSERT_FALSE(bad.job.has_value());
  ASSERT_EQ(bad.issues.size(), 1u);
  EXPECT_EQ(bad.issues[0].path, "students[0].training.precision") << bad.issues[0].str();
}
