// The job fields of the analysis: knowledge_controls (the control students it adds),
// "label_smoothing": "matched", "analyze", and the reserved student name "knowledge".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/job/job_spec.h"

using namespace kdscope::core;

namespace {

const char* kControls = R"({"tasks": ["digits"],
  "teacher": {"architecture": {"type": "mlp", "hidden": [8]}},
  "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [4]}, "objective": {"lambda": 0.5}}],
  "knowledge_controls": {"architecture": {"type": "mlp", "hidden": [4]}, "training": {"epochs": 7}, "lambda": 0.8}})";

std::string issuesOf(const JobParseResult& r) {
  std::string out;
  for (const auto& i : r.issues) {
    out += i.str() + "\n";
  }
  return out;
}

} // namespace

TEST(AnalysisJob, KnowledgeControlsAddTheFourControlStudents) {
  const auto r = parseJob(kControls);
  ASSERT_TRUE(r.job) << issuesOf(r);
  const auto& students = r.job->students;
  ASSERT_EQ(students.size(), 5U);
  EXPECT_EQ(students[0].name, "kd");
  EXPECT_EQ(students[1].name, "ctl-ce");
  EXPECT_EQ(students[2].name, "ctl-ls");
  EXPECT_EQ(students[3].name, "ctl-kdpt");
  EXPECT_EQ(students[4].name, "ctl-kd");
  EXPECT_EQ(students[1].objective.lambda, 0.0);
  EXPECT_TRUE(students[2].objective.labelSmoothingMatched);
  EXPECT_EQ(students[3].objective.teacherTargets, "pt");
  EXPECT_EQ(students[3].objective.lambda, 0.8);
  EXPECT_EQ(students[4].objective.teacherTargets, "full");
  EXPECT_EQ(students[4].objective.temperature, 2.0); // the default
  for (std::size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(students[i].architecture.hidden, std::vector<int>{4});
    EXPECT_EQ(students[i].training.epochs, 7);
  }
  EXPECT_TRUE(r.job->analyze);
  // The normalised job lists them and reads back to the same job (no second copy).
  const auto again = parseJob(r.normalizedJson);
  ASSERT_TRUE(again.job) << issuesOf(again);
  EXPECT_EQ(again.job->students.size(), 5U);
  EXPECT_EQ(again.normalizedJson, r.normalizedJson);
  const auto j = nlohmann::json::parse(r.normalizedJson);
  EXPECT_EQ(j["students"][2]["objective"]["label_smoothing"], "matched");
  EXPECT_EQ(j["knowledge_controls"]["enabled"], true);
  EXPECT_EQ(j["analyze"], true);
}

TEST(AnalysisJob, AStudentOfAControlsNameIsKeptAsWritten) {
  auto j = nlohmann::json::parse(kControls);
  j["students"].push_back({{"name", "ctl-kd"},
                           {"architecture", {{"type", "mlp"}, {"hidden", {16}}}},
                           {"objective", {{"lambda", 0.3}}}});
  const auto r = parseJob(j.dump());
  ASSERT_TRUE(r.job) << issuesOf(r);
  ASSERT_EQ(r.job->students.size(), 5U);
  EXPECT_EQ(r.job->students[1].name, "ctl-kd");
  EXPECT_EQ(r.job->students[1].objective.lambda, 0.3);
  EXPECT_EQ(r.job->students[4].name, "ctl-kdpt");
}

TEST(AnalysisJob, DisabledOrAbsentControlsAddNothing) {
  auto j = nlohmann::json::parse(kControls);
  j["knowledge_controls"]["enabled"] = false;
  const auto r = parseJob(j.dump());
  ASSERT_TRUE(r.job) << issuesOf(r);
  EXPECT_EQ(r.job->students.size(), 1U);
  EXPECT_TRUE(knowledgeControlStudents(*r.job).empty());
  j.erase("knowledge_controls");
  j["analyze"] = false;
  const auto r2 = parseJob(j.dump());
  ASSERT_TRUE(r2.job) << issuesOf(r2);
  EXPECT_FALSE(r2.job->knowledgeControls.enabled);
  EXPECT_FALSE(r2.job->analyze);
}

TEST(AnalysisJob, ValidationMessages) {
  auto expectIssue = [](const std::string& json, const std::string& path, const std::string& fragment) {
    const auto r = parseJob(json);
    EXPECT_FALSE(r.job);
    bool found = false;
    for (const auto& i : r.issues) {
      found = found || (i.path == path && i.message.find(fragment) != std::string::npos);
    }
    EXPECT_TRUE(found) << "expected " << path << ": ..." << fragment << "...\ngot:\n" << issuesOf(r);
  };
  auto j = nlohmann::json::parse(kControls);
  j["knowledge_controls"]["lambda"] = 0;
  expectIssue(j.dump(), "knowledge_controls.lambda", "must be in (0, 1], got 0");
  j = nlohmann::json::parse(kControls);
  j["knowledge_controls"].erase("architecture"); // the default is a transformer
  expectIssue(j.dump(), "knowledge_controls.architecture.type", "need an 'mlp' architecture");
  j = nlohmann::json::parse(kControls);
  j["knowledge_controls"]["temprature"] = 2;
  expectIssue(j.dump(), "knowledge_controls.temprature", "did you mean 'temperature'?");
  j = nlohmann::json::parse(kControls);
  j["students"][0]["objective"]["label_smoothing"] = "half";
  expectIssue(j.dump(), "students[0].objective.label_smoothing", "a number in [0, 1) or 'matched'");
  j = nlohmann::json::parse(kControls);
  j["students"][0]["name"] = "knowledge";
  expectIssue(j.dump(), "students[0].name", "reserved");
  j = nlohmann::json::parse(kControls);
  j["analyze"] = 1;
  expectIssue(j.dump(), "analyze", "must be a boolean");
  // A student may ask for the matched epsilon itself.
  j = nlohmann::json::parse(kControls);
  j["students"][0]["objective"]["label_smoothing"] = "matched";
  const auto r = parseJob(j.dump());
  ASSERT_TRUE(r.job) << issuesOf(r);
  EXPECT_TRUE(r.job->students[0].objective.labelSmoothingMatched);
}
