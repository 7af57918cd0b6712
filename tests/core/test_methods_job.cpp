// The job fields of the distillation methods (docs/job-format.md "Objective", "Augmentation",
// teacher_epoch): reading, defaults, normalisation and the rules with their JSON paths.
#include <gtest/gtest.h>

#include "core/job/job_spec.h"

using namespace kdscope::core;

namespace {

std::string describe(const JobParseResult& r) {
  std::string out;
  for (const auto& i : r.issues) {
    out += i.str() + "\n";
  }
  return out;
}

std::string textJob(const std::string& student, const std::string& teacher = R"({"architecture": {"layers": 2}})") {
  return R"({"tasks": ["polarity"], "teacher": )" + teacher + R"(, "students": [)" + student + "]}";
}

} // namespace

TEST(MethodsJob, ReadsEveryNewFieldAndRoundTrips) {
  const auto r = parseJob(textJob(R"({"name": "s", "architecture": {"layers": 1},
      "objective": {"lambda": 0.5, "hidden_mse": 1, "hidden_cosine": 0.5, "pkd": 0.25, "attention_kl": 2,
                    "attention_mse": 0.1, "infonce": 0.3, "mi_alpha": 0.4, "alpha": 0.9, "layer_map": [0, 2]},
      "augmentation": {"mask": 0.1, "replace": 0.2, "swap": 0.3, "delete": 0.05, "mixup": true, "mixup_alpha": 0.2},
      "teacher_epoch": 2})",
                                  R"({"architecture": {"layers": 2}, "epoch_checkpoints": true})"));
  ASSERT_TRUE(r.job) << describe(r);
  const StudentSpec& s = r.job->students[0];
  EXPECT_EQ(s.objective.hiddenMse, 1.0);
  EXPECT_EQ(s.objective.hiddenCosine, 0.5);
  EXPECT_EQ(s.objective.pkd, 0.25);
  EXPECT_EQ(s.objective.attentionKl, 2.0);
  EXPECT_EQ(s.objective.attentionMse, 0.1);
  EXPECT_EQ(s.objective.infoNce, 0.3);
  EXPECT_EQ(s.objective.miAlpha, 0.4);
  EXPECT_EQ(s.objective.alpha, 0.9);
  EXPECT_EQ(s.objective.layerMap, "list");
  EXPECT_EQ(s.objective.layerList, (std::vector<int>{0, 2}));
  EXPECT_EQ(s.augmentation.mask, 0.1);
  EXPECT_EQ(s.augmentation.replace, 0.2);
  EXPECT_EQ(s.augmentation.swap, 0.3);
  EXPECT_EQ(s.augmentation.deletion, 0.05);
  EXPECT_TRUE(s.augmentation.mixup);
  EXPECT_EQ(s.augmentation.mixupAlpha, 0.2);
  EXPECT_EQ(s.teacherEpoch, 2);
  EXPECT_TRUE(r.job->teacher.epochCheckpoints);
  const auto again = parseJob(r.normalizedJson);
  ASSERT_TRUE(again.job) << describe(again);
  EXPECT_EQ(again.normalizedJson, r.normalizedJson);
  EXPECT_NE(r.normalizedJson.find("\"layer_map\": [\n"), std::string::npos) << r.normalizedJson;
}

TEST(MethodsJob, DefaultsAreOffAndUniform) {
  const auto r = parseJob(textJob(R"({"name": "s"})"));
  ASSERT_TRUE(r.job) << describe(r);
  const StudentSpec& s = r.job->students[0];
  EXPECT_EQ(s.objective.layerMap, "uniform");
  EXPECT_EQ(s.objective.alpha, 0.5);
  EXPECT_EQ(s.objective.hiddenMse + s.objective.attentionKl + s.objective.miAlpha, 0.0);
  EXPECT_FALSE(s.augmentation.any());
  EXPECT_EQ(s.augmentation.mixupAlpha, 0.4);
  EXPECT_EQ(s.teacherEpoch, 0);
  EXPECT_FALSE(r.job->teacher.epochCheckpoints);
  EXPECT_NE(r.normalizedJson.find("\"layer_map\": \"uniform\""), std::string::npos);
}

TEST(MethodsJob, RulesReportTheirPaths) {
  const auto r = parseJob(textJob(R"({"name": "a", "architecture": {"layers": 3},
        "objective": {"attention_kl": 1, "layer_map": "last", "alpha": 2, "hidden_mse": -1}},
      {"name": "b", "objective": {"hidden_mse": 1, "layer_map": [0, 0, 3]}},
      {"name": "c", "objective": {"attention_mse": 1, "layer_map": [0, 0, 1]}},
      {"name": "d", "objective": {"layer_map": "skip"}, "augmentation": {"mask": 1.5, "mixup_alpha": 0},
       "teacher_epoch": 4},
      {"name": "e", "augmentation": {"mixp": true}})"));
  EXPECT_FALSE(r.job);
  const std::string text = describe(r);
  const std::vector<std::string> expected = {
      "students[0].objective.alpha: must be in [0, 1], got 2",
      "students[0].objective.hidden_mse: must be >= 0, got -1",
      "students[0].objective.layer_map: 'last' needs a student with at most as many layers as the teacher "
      "(student 3, teacher 2)",
      "students[1].objective.layer_map[2]: must be in [0, 2] (the teacher's hidden states), got 3",
      "students[2].objective.layer_map[1]: student layer 1 maps to the teacher's embeddings, which have no "
      "attention map to transfer",
      "students[3].objective.layer_map: must be 'uniform' or 'last', got 'skip'",
      "students[3].augmentation.mask: must be in [0, 1], got 1.5",
      "students[3].augmentation.mixup_alpha: must be > 0, got 0",
      "students[3].teacher_epoch: the teacher trains for 3 epochs, so there is no checkpoint after epoch 4",
      "students[4].augmentation.mixp: unknown field (did you mean 'mixup'?)",
  };
  for (const auto& line : expected) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << "missing: " << line << "\nin:\n" << text;
  }
  EXPECT_EQ(r.issues.size(), expected.size()) << text;
}

TEST(MethodsJob, AttentionTermsNeedTransformersAndTokenAugmentationNeedsText) {
  const auto r = parseJob(R"({"tasks": ["digits"],
      "teacher": {"architecture": {"type": "mlp", "hidden": [32, 16]}},
      "students": [{"name": "s", "architecture": {"type": "mlp", "hidden": [8]},
                    "objective": {"attention_kl": 1, "hidden_mse": 1},
                    "augmentation": {"delete": 0.1, "mixup": true}}]})");
  EXPECT_FALSE(r.job);
  const std::string text = describe(r);
  EXPECT_NE(text.find("students[0].objective.attention_kl: needs attention maps: the student and the teacher must "
                      "both be transformers"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("students[0].augmentation.delete: token augmentation needs a text task (vector tasks can use "
                      "mixup only)"),
            std::string::npos)
      << text;
  EXPECT_EQ(r.issues.size(), 2U) << text; // hidden_mse and mixup are fine on an mlp
}

TEST(MethodsJob, TeacherEpochWithACheckpointIsCheckedWhenTheJobRuns) {
  // The epochs of a loaded teacher are unknown to the parser.
  const auto r = parseJob(textJob(R"({"name": "s", "teacher_epoch": 9})",
                                  R"({"checkpoint": "t/{task}/teacher.pt"})"));
  EXPECT_TRUE(r.job) << describe(r);
}
