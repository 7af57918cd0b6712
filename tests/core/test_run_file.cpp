// Above 800 lines on purpose: the writer and reader of format version 1 tested together,
// object by object, on shared fixture files.
// Tests of the run file: RunWriter -> RunReader round trips on hand-made tasks with
// hand-computed accuracies, the reader's refusals (each naming the object), a run cut off
// by a crash, and h5py's view of what we write (tests/python/check_run_file.py, the
// example of docs/run-format.md, float16 and UTF-8 strings).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_reader.h"
#include "core/record/run_writer.h"
#include "tests/core/test_support.h"

#ifndef KDSCOPE_SOURCE_DIR
#error "KDSCOPE_SOURCE_DIR must name the repository root (tests/CMakeLists.txt defines it)"
#endif
#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with h5py (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::core {
namespace {

using test::messageOf;
using test::TempDir;

struct CommandResult {
  int exitCode = -1;
  std::string output; ///< stdout and stderr
};

CommandResult runCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    result.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult runPython(const std::string& arguments) {
  return runCommand(std::string(KDSCOPE_PYTHON) + " " + arguments);
}

const std::string kChecker = std::string(KDSCOPE_SOURCE_DIR) + "/tests/python/check_run_file.py";

// ----- hand-made tasks and outputs ---------------------------------------------------------

/// A text task of 6 eval examples, 3 classes, 4 tokens each.
TaskData textTask() {
  TaskData task;
  task.name = "sentiment";
  task.kind = TaskKind::Text;
  task.classNames = {"negative", "neutral", "positive"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "good", "bad", "film", "caf\xC3\xA9"};
  task.seqLen = 4;
  task.eval.labels = {0, 1, 2, 2, 1, 0};
  task.eval.tokens = {2,      4, 5, 0, /**/ 2, 5, 0, 0, /**/ 2, 3, 5, 0,
                      /**/ 2, 3, 3, 5, /**/ 2, 6, 5, 0, /**/ 2, 4, 4, 0};
  task.eval.texts = {"bad film", "film", "good film", "good good film", "caf\xC3\xA9 film", "bad bad"};
  task.eval.sourceIndex = {40, 11, 7, 23, 5, 31};
  return task;
}

/// A vector task of 4 eval examples, 4 classes in 2 super-classes.
TaskData vectorTask() {
  TaskData task;
  task.name = "hierarchy";
  task.kind = TaskKind::Vector;
  task.classNames = {"a0", "a1", "b0", "b1"};
  task.dim = 3;
  task.superClassOf = {0, 0, 1, 1};
  task.eval.labels = {0, 1, 2, 3};
  task.eval.features = std::vector<float>(12, 0.5f);
  task.eval.groups = {"x", "x", "y", "y"};
  return task;
}

// Logits chosen so that accuracy is countable by hand (labels 0 1 2 2 1 0).
// Teacher argmaxes: 0 1 2 1 1 0 (row 5 ties 0 and 1: the lowest class wins) -> 5 of 6.
const std::vector<float> kTeacherLogits{2,      1,      0, /**/ 0, 3,      1,    /**/ 0, 1,
                                        5,      /**/ 1, 2, 1.5f,   /**/ 0, 0.5f, 0.2f,
                                        /**/ 4, 4,      1};
// Student argmaxes: 1 1 0 2 0 0 -> rows 1, 3, 5 right: 3 of 6.
const std::vector<float> kStudentLogits{0,      1, 0, /**/ 0, 2, 1, /**/ 3, 0, 1,
                                        /**/ 0, 0, 1, /**/ 1, 0, 0, /**/ 2, 1, 1};
// Hierarchy teacher (labels 0 1 2 3), argmaxes 0 1 3 3 -> 3 of 4.
const std::vector<float> kHierarchyLogits{9, 1, 1, 1, /**/ 1, 9, 1, 1, /**/ 1, 1, 2, 3, /**/ 0, 0, 0, 1};

std::vector<float> ramp(std::size_t n, float start, float step) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = start + step * static_cast<float>(i);
  }
  return values;
}

/// A complete run with both tasks: the text teacher keeps hidden states and attention.
void writeSampleRun(const std::string& path) {
  RunWriter writer(path, R"({"name": "sample", "seed": 1})");
  writer.writeTask(textTask());
  writer.writeTask(vectorTask());

  writer.beginModel("sentiment", "teacher", "teacher", R"({"type": "transformer", "layers": 2})",
                    R"({"terms": {"ce": 1.0}})", 12345);
  writer.appendTrainLog("sentiment", "teacher", {10, 20}, {1.5f, 1.0f}, {{"ce", {1.5f, 1.0f}}});
  writer.appendTrainLog("sentiment", "teacher", {30}, {0.75f}, {{"ce", {0.75f}}});
  writer.appendEvalCurve("sentiment", "teacher", 1, 30, 0.8333, 0.61);
  RunWriter::EvalShape shape;
  shape.examples = 6;
  shape.classes = 3;
  shape.hiddenLayers = 3;
  shape.hiddenDim = 4;
  shape.attentionExamples = 2;
  shape.layers = 2;
  shape.heads = 2;
  shape.seqLen = 4;
  writer.createEvalOutputs("sentiment", "teacher", shape, "mean");
  writer.writeEvalLogits("sentiment", "teacher", 0, 6, kTeacherLogits.data());
  const std::vector<float> hidden = ramp(6 * 3 * 4, 0.0f, 0.25f);
  writer.writeEvalHidden("sentiment", "teacher", 0, 6, hidden.data());
  const std::vector<float> attention(2 * 2 * 2 * 4 * 4, 0.25f);
  writer.writeEvalAttention("sentiment", "teacher", 0, 2, attention.data());
  writer.writeClassifier("sentiment", "teacher", ramp(12, -1.0f, 0.5f), {0.1f, 0.2f, 0.3f}, 3, 4);
  writer.flush();

  writer.beginModel("sentiment", "tiny", "student", R"({"type": "transformer", "layers": 1})",
                    R"({"terms": {"ce": 0.5, "kd": 0.5}, "temperature": 2.0, "t_squared": true})", 999);
  writer.appendTrainLog("sentiment", "tiny", {5, 10}, {2.0f, 1.25f},
                        {{"ce", {1.0f, 0.75f}}, {"kd", {3.0f, 1.75f}}});
  RunWriter::EvalShape small;
  small.examples = 6;
  small.classes = 3;
  writer.createEvalOutputs("sentiment", "tiny", small, "mean");
  // In two blocks, as an evaluation loop streams them.
  writer.writeEvalLogits("sentiment", "tiny", 0, 4, kStudentLogits.data());
  writer.writeEvalLogits("sentiment", "tiny", 4, 2, kStudentLogits.data() + 12);

  writer.beginModel("hierarchy", "teacher", "teacher", R"({"type": "mlp", "hidden": [8]})",
                    R"({"terms": {"ce": 1}})", 76);
  RunWriter::EvalShape vector;
  vector.examples = 4;
  vector.classes = 4;
  vector.hiddenLayers = 2;
  vector.hiddenDim = 3;
  writer.createEvalOutputs("hierarchy", "teacher", vector, "mean");
  writer.writeEvalLogits("hierarchy", "teacher", 0, 4, kHierarchyLogits.data());
  const std::vector<float> vectorHidden = ramp(4 * 2 * 3, 1.0f, 1.0f);
  writer.writeEvalHidden("hierarchy", "teacher", 0, 4, vectorHidden.data());
  writer.setStatus("complete", "");
}

class RunFileTest : public ::testing::Test {
protected:
  TempDir m_dir{"run"};
  std::string m_path = m_dir.file("run.h5");
};

// ----- round trips -------------------------------------------------------------------------

TEST_F(RunFileTest, SummaryRoundTripsWithHandComputedAccuracies) {
  writeSampleRun(m_path);
  const RunReader reader(m_path);
  const RunSummary run = reader.summary();
  EXPECT_EQ(run.path, m_path);
  EXPECT_EQ(run.formatVersion, 1);
  EXPECT_EQ(run.status, "complete");
  EXPECT_EQ(run.statusMessage, "");
  EXPECT_EQ(run.kdscopeVersion, kdscopeVersion());
  EXPECT_EQ(run.jobJson, R"({"name": "sample", "seed": 1})");
  ASSERT_EQ(run.tasks.size(), 2U);

  const TaskSummary& text = run.tasks[0];
  EXPECT_EQ(text.name, "sentiment");
  EXPECT_EQ(text.numClasses, 3);
  EXPECT_EQ(text.classNames, (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(text.evalExamples, 6);
  ASSERT_EQ(text.models.size(), 2U);
  const ModelSummary& teacher = text.models[0];
  EXPECT_EQ(teacher.name, "teacher");
  EXPECT_EQ(teacher.role, "teacher");
  EXPECT_EQ(teacher.architectureJson, R"({"type": "transformer", "layers": 2})");
  EXPECT_EQ(teacher.objectiveJson, R"({"terms": {"ce": 1.0}})");
  EXPECT_EQ(teacher.parameterCount, 12345);
  EXPECT_EQ(teacher.trainSteps, 30);
  EXPECT_EQ(teacher.finalLoss, 0.75);
  EXPECT_DOUBLE_EQ(teacher.evalAccuracy, 5.0 / 6.0);
  const ModelSummary& student = text.models[1];
  EXPECT_EQ(student.name, "tiny");
  EXPECT_EQ(student.role, "student");
  EXPECT_EQ(student.parameterCount, 999);
  EXPECT_EQ(student.trainSteps, 10);
  EXPECT_EQ(student.finalLoss, 1.25);
  EXPECT_DOUBLE_EQ(student.evalAccuracy, 0.5);

  const TaskSummary& vector = run.tasks[1];
  EXPECT_EQ(vector.name, "hierarchy");
  EXPECT_EQ(vector.numClasses, 4);
  EXPECT_EQ(vector.evalExamples, 4);
  ASSERT_EQ(vector.models.size(), 1U);
  EXPECT_DOUBLE_EQ(vector.models[0].evalAccuracy, 0.75);
  EXPECT_EQ(vector.models[0].trainSteps, 0) << "nothing logged";

  EXPECT_EQ(reader.tasks(), (std::vector<std::string>{"sentiment", "hierarchy"}));
  EXPECT_EQ(reader.evalLabels("sentiment"), (std::vector<std::int64_t>{0, 1, 2, 2, 1, 0}));
  std::int64_t classes = 0;
  EXPECT_EQ(reader.evalLogits("sentiment", "tiny", &classes), kStudentLogits);
  EXPECT_EQ(classes, 3);
}

TEST_F(RunFileTest, TaskDataAndEvalOutputsAreStoredWhereTheFormatSays) {
  writeSampleRun(m_path);
  const RunReader reader(m_path);
  const H5File& f = reader.file();
  EXPECT_EQ(f.attrString("/tasks/sentiment", "kind"), "text");
  EXPECT_EQ(f.attrString("/tasks/hierarchy", "kind"), "vector");
  EXPECT_EQ(f.shape("/tasks/sentiment/eval/tokens"), (std::vector<std::uint64_t>{6, 4}));
  EXPECT_EQ(f.readInt64("/tasks/sentiment/eval/tokens", 4, 1), (std::vector<std::int64_t>{2, 6, 5, 0}));
  EXPECT_EQ(f.readStrings("/tasks/sentiment/vocab").at(6), "caf\xC3\xA9");
  EXPECT_EQ(f.readStrings("/tasks/sentiment/eval/text").at(4), "caf\xC3\xA9 film");
  EXPECT_EQ(f.readInt64("/tasks/sentiment/eval/source_index"),
            (std::vector<std::int64_t>{40, 11, 7, 23, 5, 31}));
  EXPECT_FALSE(f.exists("/tasks/hierarchy/eval/tokens"));
  EXPECT_FALSE(f.exists("/tasks/hierarchy/vocab"));
  EXPECT_EQ(f.readInt64("/tasks/hierarchy/super_class_of"), (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(f.readStrings("/tasks/hierarchy/eval/group"), (std::vector<std::string>{"x", "x", "y", "y"}));

  const std::string teacher = RunWriter::modelPath("sentiment", "teacher");
  EXPECT_EQ(teacher, "/tasks/sentiment/models/teacher");
  EXPECT_EQ(f.shape(teacher + "/eval/hidden"), (std::vector<std::uint64_t>{6, 3, 4}));
  EXPECT_EQ(f.attrString(teacher + "/eval/hidden", "pooling"), "mean");
  EXPECT_EQ(f.attrString(teacher + "/eval/hidden", "layer0"), "embedding output");
  // Example 5, layer 2, unit 3 is element 5*12 + 2*4 + 3 = 71 of the ramp: 71 * 0.25.
  EXPECT_EQ(f.readFloat(teacher + "/eval/hidden", 5, 1).at(11), 17.75f);
  EXPECT_EQ(f.shape(teacher + "/eval/attention"), (std::vector<std::uint64_t>{2, 2, 2, 4, 4}));
  EXPECT_EQ(f.shape(teacher + "/classifier/weight"), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(f.readFloat(teacher + "/classifier/weight").at(11), 4.5f);
  EXPECT_EQ(f.readFloat(teacher + "/classifier/bias"), (std::vector<float>{0.1f, 0.2f, 0.3f}));
  EXPECT_FALSE(f.exists(RunWriter::modelPath("sentiment", "tiny") + "/eval/hidden"));
  EXPECT_EQ(f.typeName(teacher + "/eval/logits"), "float32");
  EXPECT_EQ(f.typeName("/tasks/sentiment/eval/labels"), "int64");
}

TEST_F(RunFileTest, ModelsListTheTeacherFirstThenStudentsInTheOrderWritten) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(vectorTask());
    writer.beginModel("hierarchy", "zeta", "student", "{}", "{}", 1);
    writer.beginModel("hierarchy", "teacher", "teacher", "{}", "{}", 2);
    writer.beginModel("hierarchy", "alpha", "student", "{}", "{}", 3);
  }
  const RunReader reader(m_path);
  EXPECT_EQ(reader.models("hierarchy"), (std::vector<std::string>{"teacher", "zeta", "alpha"}));
  const RunSummary run = reader.summary();
  ASSERT_EQ(run.tasks.at(0).models.size(), 3U);
  EXPECT_EQ(run.tasks[0].models[0].parameterCount, 2);
  EXPECT_EQ(run.tasks[0].models[2].name, "alpha");
  EXPECT_EQ(messageOf<InputError>([&] { (void)reader.models("nope"); }),
            m_path + ": /tasks/nope: no such task");
}

TEST_F(RunFileTest, TrainLogAndEvalCurveRoundTripAndLateTermsStayAligned) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(vectorTask());
    writer.beginModel("hierarchy", "kd", "student", "{}", "{}", 10);
    writer.appendTrainLog("hierarchy", "kd", {1, 2}, {0.9f, 0.8f}, {{"ce", {0.5f, 0.4f}}});
    // "kd" first appears at step 3; "ce" is missing at step 4.
    writer.appendTrainLog("hierarchy", "kd", {3}, {0.7f}, {{"ce", {0.3f}}, {"kd", {2.0f}}});
    writer.appendTrainLog("hierarchy", "kd", {4}, {0.6f}, {{"kd", {1.5f}}});
    writer.appendTrainLog("hierarchy", "kd", {}, {}, {}); // nothing: nothing changes
    writer.appendEvalCurve("hierarchy", "kd", 1, 2, 0.5, 1.25);
    writer.appendEvalCurve("hierarchy", "kd", 2, 4, 0.75, 0.5);
    writer.setStatus("cancelled", "cancelled after epoch 2");
  }
  const RunReader reader(m_path);
  const TrainLog log = reader.trainLog("hierarchy", "kd");
  EXPECT_EQ(log.steps, (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(log.loss, (std::vector<float>{0.9f, 0.8f, 0.7f, 0.6f}));
  ASSERT_EQ(log.terms.size(), 2U);
  const std::vector<float>& ce = log.terms.at("ce");
  const std::vector<float>& kd = log.terms.at("kd");
  ASSERT_EQ(ce.size(), 4U);
  ASSERT_EQ(kd.size(), 4U);
  EXPECT_EQ(ce[0], 0.5f);
  EXPECT_EQ(ce[2], 0.3f);
  EXPECT_TRUE(std::isnan(ce[3])) << "not logged at step 4";
  EXPECT_TRUE(std::isnan(kd[0]));
  EXPECT_TRUE(std::isnan(kd[1]));
  EXPECT_EQ(kd[2], 2.0f);
  EXPECT_EQ(kd[3], 1.5f);

  const EvalCurve curve = reader.evalCurve("hierarchy", "kd");
  EXPECT_EQ(curve.epoch, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(curve.step, (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(curve.accuracy, (std::vector<float>{0.5f, 0.75f}));
  EXPECT_EQ(curve.loss, (std::vector<float>{1.25f, 0.5f}));

  const RunSummary run = reader.summary();
  EXPECT_EQ(run.status, "cancelled");
  EXPECT_EQ(run.statusMessage, "cancelled after epoch 2");
  EXPECT_EQ(run.tasks[0].models[0].trainSteps, 4);
  EXPECT_EQ(run.tasks[0].models[0].finalLoss, 0.6f);
  EXPECT_EQ(run.tasks[0].models[0].evalAccuracy, -1.0) << "no eval/logits";
  EXPECT_TRUE(reader.trainLog("hierarchy", "kd").terms.count("kd"));
}

// ----- the writer refuses inconsistent input -----------------------------------------------

TEST_F(RunFileTest, WriterRefusesInconsistentInputAndWritesNothingOfABadTask) {
  RunWriter writer(m_path, "{}");
  TaskData bad = textTask();
  bad.eval.labels[3] = 3;
  EXPECT_EQ(messageOf<JobError>([&] { writer.writeTask(bad); }),
            m_path + ": /tasks/sentiment/eval/labels: label 3 of example 3 is outside 0..2");
  EXPECT_FALSE(writer.file().exists("/tasks/sentiment")) << "nothing half-written";
  bad = textTask();
  bad.eval.tokens.pop_back();
  EXPECT_EQ(messageOf<JobError>([&] { writer.writeTask(bad); }),
            m_path + ": /tasks/sentiment/eval/tokens: 23 token ids do not fill 6 x 4");
  bad = textTask();
  bad.eval.tokens[0] = 7;
  EXPECT_EQ(messageOf<JobError>([&] { writer.writeTask(bad); }),
            m_path + ": /tasks/sentiment/eval/tokens: token id 7 is outside the vocabulary of 7");
  bad = textTask();
  bad.name = "a/b";
  EXPECT_NE(messageOf<JobError>([&] { writer.writeTask(bad); }).find("invalid task name 'a/b'"),
            std::string::npos);

  writer.writeTask(textTask());
  EXPECT_EQ(messageOf<JobError>([&] { writer.writeTask(textTask()); }),
            m_path + ": /tasks/sentiment: the task is already written");
  EXPECT_EQ(messageOf<JobError>([&] { writer.beginModel("sentiment", "t", "teacher ", "{}", "{}", 1); }),
            m_path + ": /tasks/sentiment/models/t: role 'teacher ' is neither 'teacher' nor 'student'");
  EXPECT_EQ(messageOf<JobError>([&] { writer.beginModel("other", "t", "teacher", "{}", "{}", 1); }),
            m_path + ": /tasks/other: no such group (write the task before its models)");
  writer.beginModel("sentiment", "t", "teacher", "{}", "{}", 1);
  EXPECT_EQ(messageOf<JobError>([&] {
              writer.appendTrainLog("sentiment", "t", {1, 2}, {0.5f}, {});
            }),
            m_path + ": /tasks/sentiment/models/t/train/loss: 1 losses for 2 steps");
  RunWriter::EvalShape shape;
  shape.examples = 5;
  shape.classes = 3;
  EXPECT_EQ(messageOf<JobError>([&] { writer.createEvalOutputs("sentiment", "t", shape, "mean"); }),
            m_path + ": /tasks/sentiment/models/t/eval: 5 eval examples asked for, but "
                     "/tasks/sentiment/eval/labels has 6");
  shape.examples = 6;
  shape.classes = 2;
  EXPECT_EQ(messageOf<JobError>([&] { writer.createEvalOutputs("sentiment", "t", shape, "mean"); }),
            m_path + ": /tasks/sentiment/models/t/eval/logits: 2 classes asked for, but the task has 3");
  shape.classes = 3;
  shape.attentionExamples = 2;
  shape.layers = 2;
  shape.heads = 2;
  shape.seqLen = 5;
  EXPECT_EQ(messageOf<JobError>([&] { writer.createEvalOutputs("sentiment", "t", shape, "mean"); }),
            m_path + ": /tasks/sentiment/models/t/eval/attention: seqLen 5 differs from the 4 tokens of "
                     "/tasks/sentiment/eval/tokens");
  shape.seqLen = 4;
  writer.createEvalOutputs("sentiment", "t", shape, "mean");
  writer.createEvalOutputs("sentiment", "t", shape, "mean"); // the same shape again: reused
  std::vector<float> rows(64 * 3, 0.0f);
  EXPECT_EQ(messageOf<JobError>([&] { writer.writeEvalLogits("sentiment", "t", 4, 3, rows.data()); }),
            m_path + ": /tasks/sentiment/models/t/eval/logits: cannot write rows 4..7: dataset has 6 rows");
  EXPECT_EQ(messageOf<JobError>([&] { writer.setStatus("done", ""); }),
            m_path + ": /: status 'done' is not one of running, complete, cancelled, failed");
}

// ----- the reader refuses what is not a valid run -------------------------------------------

/// A run with one text task and one model whose logits the test then writes by hand.
void writeRunWithoutLogits(const std::string& path) {
  RunWriter writer(path, "{}");
  writer.writeTask(textTask());
  writer.beginModel("sentiment", "teacher", "teacher", "{}", "{}", 1);
  writer.setStatus("complete", "");
}

TEST_F(RunFileTest, ReaderRefusesLogitsWhoseRowsDisagreeWithTheLabels) {
  writeRunWithoutLogits(m_path);
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.writeFloat("/tasks/sentiment/models/teacher/eval/logits", {5, 3}, std::vector<float>(15, 0.0f));
  }
  const RunReader reader(m_path);
  const std::string expected =
      m_path + ": /tasks/sentiment/models/teacher/eval/logits: has shape [5, 3]: rows 5, expected 6 "
               "(rows of /tasks/sentiment/eval/labels)";
  EXPECT_EQ(messageOf<InputError>([&] { (void)reader.summary(); }), expected);
  EXPECT_EQ(messageOf<InputError>([&] { (void)reader.evalLogits("sentiment", "teacher"); }), expected);
}

TEST_F(RunFileTest, ReaderRefusesLogitsWhoseColumnsAreNotTheClasses) {
  writeRunWithoutLogits(m_path);
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.writeFloat("/tasks/sentiment/models/teacher/eval/logits", {6, 2}, std::vector<float>(12, 0.0f));
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).summary(); }),
            m_path +
                ": /tasks/sentiment/models/teacher/eval/logits: has shape [6, 2]: dimension 1 2, expected 3 "
                "(num_classes of /tasks/sentiment)");
}

TEST_F(RunFileTest, ReaderRefusesLogitsOfTheWrongRankOrElementType) {
  writeRunWithoutLogits(m_path);
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.writeInt64("/tasks/sentiment/models/teacher/eval/logits", {6, 3}, std::vector<std::int64_t>(18, 1));
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).evalLogits("sentiment", "teacher"); }),
            m_path +
                ": /tasks/sentiment/models/teacher/eval/logits: holds int64, expected floating point values");
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.remove("/tasks/sentiment/models/teacher/eval/logits");
    f.writeFloat("/tasks/sentiment/models/teacher/eval/logits", {18}, std::vector<float>(18, 1.0f));
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).summary(); }),
            m_path +
                ": /tasks/sentiment/models/teacher/eval/logits: has shape [18] of rank 1, expected rank 2");
}

TEST_F(RunFileTest, ReaderRefusesLabelsOutsideTheClasses) {
  writeRunWithoutLogits(m_path);
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    const std::int64_t label = -1;
    f.writeRows("/tasks/sentiment/eval/labels", 2, 1, &label);
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).evalLabels("sentiment"); }),
            m_path + ": /tasks/sentiment/eval/labels: label -1 of example 2 is outside 0..2 (num_classes of "
                     "/tasks/sentiment)");
}

TEST_F(RunFileTest, ReaderRefusesNewerVersionsAndFilesThatAreNotRuns) {
  writeRunWithoutLogits(m_path);
  H5File(m_path, H5File::Mode::ReadWrite).setAttr("/", "format_version", std::int64_t{2});
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(m_path); }),
            m_path + ": format_version 2 is newer than this KDScope reads (1)");

  H5File(m_path, H5File::Mode::ReadWrite).setAttr("/", "format_version", 1.0);
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(m_path); }),
            m_path + ": /: attribute 'format_version' is float64, expected an integer");

  H5File(m_path, H5File::Mode::ReadWrite).setAttr("/", "format", "other-tool");
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(m_path); }),
            m_path + ": not a KDScope run file (attribute 'format' is 'other-tool', expected 'kdscope-run')");

  const std::string plain = m_dir.file("plain.h5");
  H5File(plain, H5File::Mode::Create).writeInt64("/data", {1}, {1});
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(plain); }),
            plain + ": not a KDScope run file (attribute 'format' is missing)");

  const std::string text = m_dir.file("notes.txt");
  std::ofstream(text) << "format = kdscope-run\n";
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(text); }), text + ": not an HDF5 file");
  EXPECT_EQ(messageOf<InputError>([&] { RunReader reader(m_dir.file("absent.h5")); }),
            m_dir.file("absent.h5") + ": no such file");
}

// ----- a run cut off by a crash --------------------------------------------------------------

TEST_F(RunFileTest, RunCutOffByACrashIsReadableUpToTheLastFlush) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "job": logs and half of the teacher's eval outputs flushed, then the process dies
    // without closing anything (no destructors, no atexit handlers).
    int code = 0;
    try {
      auto* writer = new RunWriter(m_path, R"({"name": "crash"})");
      writer->writeTask(textTask());
      writer->beginModel("sentiment", "teacher", "teacher", "{}", "{}", 5);
      writer->appendTrainLog("sentiment", "teacher", {1, 2, 3}, {1.0f, 0.5f, 0.25f},
                             {{"ce", {1.0f, 0.5f, 0.25f}}});
      RunWriter::EvalShape shape;
      shape.examples = 6;
      shape.classes = 3;
      writer->createEvalOutputs("sentiment", "teacher", shape, "mean");
      writer->writeEvalLogits("sentiment", "teacher", 0, 3, kTeacherLogits.data());
      writer->flush();
    } catch (...) {
      code = 1;
    }
    ::_exit(code == 0 ? 42 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42) << "the child failed before its crash";

  const RunReader reader(m_path);
  const RunSummary run = reader.summary();
  EXPECT_EQ(run.status, "running");
  EXPECT_EQ(run.jobJson, R"({"name": "crash"})");
  ASSERT_EQ(run.tasks.size(), 1U);
  ASSERT_EQ(run.tasks[0].models.size(), 1U);
  EXPECT_EQ(run.tasks[0].models[0].trainSteps, 3);
  EXPECT_EQ(run.tasks[0].models[0].finalLoss, 0.25);
  EXPECT_EQ(run.tasks[0].models[0].evalAccuracy, -1.0) << "rows 3..6 were never written";
  const std::vector<float> logits = reader.evalLogits("sentiment", "teacher");
  ASSERT_EQ(logits.size(), 18U);
  EXPECT_EQ(std::vector<float>(logits.begin(), logits.begin() + 9),
            std::vector<float>(kTeacherLogits.begin(), kTeacherLogits.begin() + 9));
  EXPECT_TRUE(std::isnan(logits[9]));
  EXPECT_EQ(reader.trainLog("sentiment", "teacher").terms.at("ce"), (std::vector<float>{1.0f, 0.5f, 0.25f}));
}

TEST_F(RunFileTest, RunWithOnlyItsTasksHasAbsentFieldsNotErrors) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(vectorTask());
    writer.beginModel("hierarchy", "teacher", "teacher", "{}", "{}", 1);
  } // destroyed without setStatus: still "running"
  const RunReader reader(m_path);
  const RunSummary run = reader.summary();
  EXPECT_EQ(run.status, "running");
  ASSERT_EQ(run.tasks.at(0).models.size(), 1U);
  EXPECT_EQ(run.tasks[0].models[0].trainSteps, 0);
  EXPECT_EQ(run.tasks[0].models[0].evalAccuracy, -1.0);
  EXPECT_TRUE(reader.trainLog("hierarchy", "teacher").steps.empty());
  EXPECT_TRUE(reader.evalCurve("hierarchy", "teacher").epoch.empty());
  EXPECT_EQ(messageOf<InputError>([&] { (void)reader.evalLogits("hierarchy", "teacher"); }),
            m_path + ": /tasks/hierarchy/models/teacher/eval/logits: no such dataset");
}

// ----- eval outputs are chunked and compressed -----------------------------------------------

TEST_F(RunFileTest, EvalOutputsAreChunkedAlongExamplesAndCompressed) {
  {
    RunWriter writer(m_path, "{}");
    TaskData task = textTask();
    task.seqLen = 64;
    task.eval.labels.assign(1000, 1);
    task.eval.tokens.assign(1000 * 64, 2);
    task.eval.texts.clear();
    task.eval.sourceIndex.clear();
    writer.writeTask(task);
    writer.beginModel("sentiment", "teacher", "teacher", "{}", "{}", 1);
    RunWriter::EvalShape shape;
    shape.examples = 1000;
    shape.classes = 3;
    shape.hiddenLayers = 5;
    shape.hiddenDim = 256;
    shape.attentionExamples = 16;
    shape.layers = 4;
    shape.heads = 4;
    shape.seqLen = 64;
    writer.createEvalOutputs("sentiment", "teacher", shape, "cls");
  }
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t file = H5Fopen(m_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const auto layout = [&](const std::string& path, int rank) {
    const hid_t dataset = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
    const hid_t dcpl = H5Dget_create_plist(dataset);
    std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
    H5Pget_chunk(dcpl, rank, chunk.data());
    const bool compressed =
        H5Pget_nfilters(dcpl) == 2 &&
        H5Pget_filter2(dcpl, 1, nullptr, nullptr, nullptr, 0, nullptr, nullptr) == H5Z_FILTER_DEFLATE;
    H5Pclose(dcpl);
    H5Dclose(dataset);
    return std::make_pair(chunk, compressed);
  };
  const std::string m = "/tasks/sentiment/models/teacher/eval/";
  EXPECT_EQ(layout(m + "logits", 2), std::make_pair(std::vector<hsize_t>{256, 3}, true));
  // 5 x 256 x 4 bytes = 5 KiB a row: 256 rows = 1.25 MiB > 1 MiB, so 204 rows.
  EXPECT_EQ(layout(m + "hidden", 3), std::make_pair(std::vector<hsize_t>{204, 5, 256}, true));
  // 4 x 4 x 64 x 64 x 4 bytes = 256 KiB a row: 4 rows.
  EXPECT_EQ(layout(m + "attention", 5), std::make_pair(std::vector<hsize_t>{4, 4, 4, 64, 64}, true));
  H5Fclose(file);
}

// ----- h5py's view ---------------------------------------------------------------------------

TEST_F(RunFileTest, CheckerAcceptsWhatTheWriterWrites) {
  writeSampleRun(m_path);
  const CommandResult result = runPython(kChecker + " '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 0) << result.output;
  EXPECT_NE(result.output.find("conforms to run format version 1 (2 tasks, 3 models)"), std::string::npos)
      << result.output;
}

TEST_F(RunFileTest, CheckerRejectsAFileMissingAFixedPath) {
  writeSampleRun(m_path);
  H5File(m_path, H5File::Mode::ReadWrite).remove("/tasks/sentiment/eval/labels");
  const CommandResult result = runPython(kChecker + " '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_NE(result.output.find("/tasks/sentiment/eval/labels: is missing"), std::string::npos)
      << result.output;
}

TEST_F(RunFileTest, CheckerRejectsUnwrittenRowsWrongTypesAndNonHdf5) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(vectorTask());
    writer.beginModel("hierarchy", "teacher", "teacher", "{}", "{}", 1);
    RunWriter::EvalShape shape;
    shape.examples = 4;
    shape.classes = 4;
    writer.createEvalOutputs("hierarchy", "teacher", shape, "mean");
    writer.writeEvalLogits("hierarchy", "teacher", 0, 3, kHierarchyLogits.data()); // row 3 never written
    writer.setStatus("complete", "");
    writer.file().setAttr("/tasks/hierarchy", "num_classes", "4");
  }
  CommandResult result = runPython(kChecker + " '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_NE(result.output.find("/tasks/hierarchy: attribute 'num_classes' is object, expected an integer"),
            std::string::npos)
      << result.output;
  H5File(m_path, H5File::Mode::ReadWrite).setAttr("/tasks/hierarchy", "num_classes", std::int64_t{4});
  result = runPython(kChecker + " '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_NE(result.output.find("/tasks/hierarchy/models/teacher/eval/logits: row 3 was never written"),
            std::string::npos)
      << result.output;

  const std::string text = m_dir.file("notes.txt");
  std::ofstream(text) << "not hdf5\n";
  result = runPython(kChecker + " '" + text + "'");
  EXPECT_EQ(result.exitCode, 2) << result.output;
}

TEST_F(RunFileTest, H5pyReadsOurFloat16AndUtf8StringsAsNumpyDoes) {
  // Inputs include ties and overflow; numpy's own float32 -> float16 rounding is the
  // independent reference.
  const std::vector<float> values{0.1f,
                                  1.0f / 3.0f,
                                  65504.0f,
                                  65520.0f,
                                  1.0f + 1.0f / 2048.0f,
                                  1.0f + 3.0f / 2048.0f,
                                  std::ldexp(3.0f, -25),
                                  -2.5e-6f,
                                  1234.5678f,
                                  -0.0f};
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createDataset("/half", H5Type::Float16, {values.size()}, false, 0, true);
    f.writeRows("/half", 0, values.size(), values.data());
    f.writeFloat("/single", {values.size()}, values);
    f.writeStrings("/texts", {"caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "", "bad \xFF byte"});
    f.setAttr("/", "name", "na\xC3\xAFve");
    f.setAttr("/", "names", std::vector<std::string>{"a", "\xC3\xBC"});
    f.setAttr("/", "count", std::int64_t{7});
    f.setAttr("/", "ratio", 0.25);
  }
  const std::string script = m_dir.file("check.py");
  std::ofstream(script) << R"(import sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    half, single = f["half"], f["single"][:]
    assert half.dtype == np.float16, half.dtype
    expected = single.astype(np.float16)
    assert np.array_equal(half[:], expected), (half[:], expected)
    assert np.signbit(half[-1])
    texts = f["texts"].asstr()[:].tolist()
    assert texts == ["café", "日本", "", "bad \ufffd byte"], texts
    assert isinstance(f.attrs["name"], str) and f.attrs["name"] == "naïve", f.attrs["name"]
    assert list(f.attrs["names"]) == ["a", "ü"], f.attrs["names"]
    assert f.attrs["count"] == 7 and f.attrs["count"].dtype == np.int64
    assert f.attrs["ratio"] == 0.25
print("h5py agrees")
)";
  const CommandResult result = runPython("'" + script + "' '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 0) << result.output;
  EXPECT_NE(result.output.find("h5py agrees"), std::string::npos) << result.output;
}

/// The fenced python block after `<!-- example: NAME -->` in docs/run-format.md.
std::string docsExample(const std::string& name) {
  std::ifstream in(std::string(KDSCOPE_SOURCE_DIR) + "/docs/run-format.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const auto marker = doc.find("<!-- example: " + name + " -->");
  const std::string fence = "```python\n";
  const auto begin = doc.find(fence, marker);
  const auto end = doc.find("```", begin + fence.size());
  if (marker == std::string::npos || begin == std::string::npos || end == std::string::npos) {
    return "";
  }
  return doc.substr(begin + fence.size(), end - begin - fence.size());
}

TEST_F(RunFileTest, DocsExamplePrintsEachModelsAccuracy) {
  writeSampleRun(m_path);
  const std::string example = docsExample("model-accuracy");
  ASSERT_FALSE(example.empty()) << "docs/run-format.md lost its example";
  const std::string script = m_dir.file("example.py");
  std::ofstream(script) << example;
  const CommandResult result = runPython("'" + script + "' '" + m_path + "'");
  EXPECT_EQ(result.exitCode, 0) << result.output;
  EXPECT_EQ(result.output, "status: complete\n"
                           "sentiment teacher (teacher): accuracy 0.8333\n"
                           "sentiment tiny (student): accuracy 0.5000\n"
                           "hierarchy teacher (teacher): accuracy 0.7500\n");

  // A run cut off during evaluation: rows 3..5 read as NaN, so no accuracy is claimed.
  const std::string cutOff = m_dir.file("cut.h5");
  {
    RunWriter writer(cutOff, "{}");
    writer.writeTask(textTask());
    writer.beginModel("sentiment", "teacher", "teacher", "{}", "{}", 1);
    RunWriter::EvalShape shape;
    shape.examples = 6;
    shape.classes = 3;
    writer.createEvalOutputs("sentiment", "teacher", shape, "mean");
    writer.writeEvalLogits("sentiment", "teacher", 0, 3, kTeacherLogits.data());
  }
  const CommandResult partial = runPython("'" + script + "' '" + cutOff + "'");
  EXPECT_EQ(partial.exitCode, 0) << partial.output;
  EXPECT_EQ(partial.output, "status: running\nsentiment teacher: evaluation incomplete\n");
}

} // namespace
} // namespace kdscope::core

namespace kdscope::core {
namespace {

// ----- additions: per-example records, token states, float16, resume ------------------------

/// textTask() with a train split of 5 examples.
TaskData textTaskWithTrain() {
  TaskData task = textTask();
  task.train.labels = {2, 0, 1, 1, 2};
  task.train.tokens.assign(5 * 4, 2);
  task.train.sourceIndex = {3, 1, 4, 1, 5};
  return task;
}

TEST_F(RunFileTest, PerExampleRecordsRoundTripBlockByBlock) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(textTaskWithTrain(), /*trainLabels=*/true);
    writer.beginModel("sentiment", "teacher", "teacher", "{}", "{}", 1);
    writer.beginModel("sentiment", "kd", "student", "{}", "{}", 1);
    for (std::int64_t epoch = 1; epoch <= 2; ++epoch) {
      const auto row = writer.appendTrainRecordRow("sentiment", "kd", "q_true", epoch, 10 * epoch);
      EXPECT_EQ(row, static_cast<std::uint64_t>(epoch - 1));
      const std::vector<float> first{0.1f * epoch, 0.2f * epoch, 0.3f * epoch};
      const std::vector<float> rest{0.4f * epoch, 0.5f * epoch};
      writer.writeTrainRecordBlock("sentiment", "kd", "q_true", row, 0, 3, first.data());
      writer.writeTrainRecordBlock("sentiment", "kd", "q_true", row, 3, 2, rest.data());
    }
    writer.appendTrainRecordRow("sentiment", "teacher", "p_true", 0, 0); // row left unwritten
    EXPECT_EQ(
        messageOf<JobError>([&] {
          const float v = 1.0f;
          writer.writeTrainRecordBlock("sentiment", "kd", "q_true", 0, 5, 1, &v);
        }),
        m_path +
            ": /tasks/sentiment/models/kd/train_records/q_true: cannot write the block at [0, 5] of size "
            "[1, 1]: the dataset has shape [2, 5]");
    writer.setStatus("complete", "");
  }
  const RunReader reader(m_path);
  EXPECT_EQ(reader.trainLabels("sentiment"), (std::vector<std::int64_t>{2, 0, 1, 1, 2}));
  EXPECT_EQ(reader.file().readInt64("/tasks/sentiment/train/source_index"),
            (std::vector<std::int64_t>{3, 1, 4, 1, 5}));
  const TrainRecords kd = reader.trainRecords("sentiment", "kd");
  EXPECT_EQ(kd.name, "q_true");
  EXPECT_EQ(kd.epoch, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(kd.step, (std::vector<std::int64_t>{10, 20}));
  EXPECT_EQ(kd.examples, 5U);
  EXPECT_EQ(kd.values, (std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f}));
  const TrainRecords teacher = reader.trainRecords("sentiment", "teacher");
  EXPECT_EQ(teacher.name, "p_true");
  EXPECT_EQ(teacher.epoch, (std::vector<std::int64_t>{0}));
  ASSERT_EQ(teacher.values.size(), 5U);
  EXPECT_TRUE(std::isnan(teacher.values[0]));
  EXPECT_TRUE(reader.trainRecords("sentiment", "kd").values.size() == 10U);
  (void)reader.summary(); // validates
}

TEST_F(RunFileTest, RecordsNeedTheTrainLabels) {
  RunWriter writer(m_path, "{}");
  writer.writeTask(textTaskWithTrain()); // without train labels
  writer.beginModel("sentiment", "kd", "student", "{}", "{}", 1);
  EXPECT_EQ(
      messageOf<JobError>([&] { writer.appendTrainRecordRow("sentiment", "kd", "q_true", 1, 1); }),
      m_path +
          ": /tasks/sentiment/models/kd/train_records: needs /tasks/sentiment/train/labels (write the task "
          "with its train labels)");
}

TEST_F(RunFileTest, TokenStatesAndFloat16ActivationsAreStoredAsAsked) {
  std::vector<float> tokenStates(2 * 3 * 4 * 8);
  for (std::size_t i = 0; i < tokenStates.size(); ++i) {
    tokenStates[i] = static_cast<float>(i) * 0.25f;
  }
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(textTask());
    writer.beginModel("sentiment", "teacher", "teacher", "{}", "{}", 1);
    RunWriter::EvalShape shape;
    shape.examples = 6;
    shape.classes = 3;
    shape.hiddenLayers = 3;
    shape.hiddenDim = 8;
    shape.attentionExamples = 1;
    shape.layers = 2;
    shape.heads = 2;
    shape.seqLen = 4;
    shape.tokenHiddenExamples = 2;
    shape.float16 = true;
    writer.createEvalOutputs("sentiment", "teacher", shape, "cls");
    writer.writeEvalTokenHidden("sentiment", "teacher", 0, 2, tokenStates.data());
    writer.writeEvalLogits("sentiment", "teacher", 0, 6, kTeacherLogits.data());
    shape.tokenHiddenExamples = 7;
    EXPECT_EQ(
        messageOf<JobError>([&] { writer.createEvalOutputs("sentiment", "teacher", shape, "cls"); }),
        m_path +
            ": /tasks/sentiment/models/teacher/eval/token_hidden: 7 examples asked for, but there are 6");
    writer.setStatus("running", "");
  }
  const RunReader reader(m_path);
  const H5File& f = reader.file();
  const std::string m = "/tasks/sentiment/models/teacher/eval/";
  EXPECT_EQ(f.shape(m + "token_hidden"), (std::vector<std::uint64_t>{2, 3, 4, 8}));
  EXPECT_EQ(f.typeName(m + "token_hidden"), "float16");
  EXPECT_EQ(f.typeName(m + "hidden"), "float16");
  EXPECT_EQ(f.typeName(m + "attention"), "float16");
  EXPECT_EQ(f.typeName(m + "logits"), "float32") << "logits keep full precision";
  // Multiples of 0.25 below 2048 are exact in half precision.
  EXPECT_EQ(f.readFloat(m + "token_hidden"), tokenStates);
  EXPECT_EQ(f.attrString(m + "token_hidden", "layer0"), "embedding output");
  (void)reader.summary();
}

TEST_F(RunFileTest, ValidateNamesActivationsWhoseShapesDisagree) {
  writeSampleRun(m_path);
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.remove("/tasks/sentiment/models/teacher/eval/attention");
    f.writeFloat("/tasks/sentiment/models/teacher/eval/attention", {2, 3, 2, 4, 4},
                 std::vector<float>(2 * 3 * 2 * 4 * 4, 0.25f));
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).summary(); }),
            m_path +
                ": /tasks/sentiment/models/teacher/eval/attention: has shape [2, 3, 2, 4, 4]: dimension 1 3, "
                "expected 2 (dimension 1 of /tasks/sentiment/models/teacher/eval/hidden minus 1)");
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.remove("/tasks/sentiment/models/teacher/eval/attention");
    f.writeFloat("/tasks/sentiment/models/teacher/eval/attention", {7, 2, 2, 4, 4},
                 std::vector<float>(7 * 2 * 2 * 4 * 4, 0.25f));
  }
  EXPECT_EQ(
      messageOf<InputError>([&] { (void)RunReader(m_path).summary(); }),
      m_path + ": /tasks/sentiment/models/teacher/eval/attention: keeps 7 examples, more than the 6 (rows of "
               "/tasks/sentiment/eval/labels)");
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    f.remove("/tasks/sentiment/models/teacher/eval/attention");
    f.remove("/tasks/sentiment/models/teacher/classifier/bias");
    f.writeFloat("/tasks/sentiment/models/teacher/classifier/bias", {4}, {0, 0, 0, 0});
  }
  EXPECT_EQ(messageOf<InputError>([&] { (void)RunReader(m_path).summary(); }),
            m_path + ": /tasks/sentiment/models/teacher/classifier/bias: has shape [4]: rows 4, expected 3 "
                     "(num_classes of /tasks/sentiment)");
}

TEST_F(RunFileTest, ContinuedRunTruncatesLogsToACheckpointAndReopensOnlyRunFiles) {
  LogRows checkpoint;
  {
    RunWriter writer(m_path, R"({"name": "resumable"})");
    writer.writeTask(textTaskWithTrain(), true);
    writer.beginModel("sentiment", "kd", "student", "{}", "{}", 1);
    writer.appendTrainLog("sentiment", "kd", {2, 4}, {1.0f, 0.9f}, {{"ce", {1.0f, 0.9f}}});
    writer.appendEvalCurve("sentiment", "kd", 1, 4, 0.5, 1.0);
    writer.appendTrainRecordRow("sentiment", "kd", "q_true", 1, 4);
    writer.flush();
    checkpoint = writer.logRows("sentiment", "kd");
    EXPECT_EQ(checkpoint, (LogRows{2, 1, 1}));
    // After the checkpoint: half an epoch more, then the process is cancelled.
    writer.appendTrainLog("sentiment", "kd", {6}, {0.8f}, {{"ce", {0.8f}}, {"kd", {3.0f}}});
    writer.setStatus("cancelled", "cancelled");
  }
  {
    RunWriter writer(m_path, RunWriter::Continue{});
    EXPECT_TRUE(writer.hasTask("sentiment"));
    EXPECT_TRUE(writer.hasModel("sentiment", "kd"));
    EXPECT_FALSE(writer.hasModel("sentiment", "teacher"));
    EXPECT_EQ(writer.logRows("sentiment", "kd"), (LogRows{3, 1, 1}));
    writer.truncateLogs("sentiment", "kd", checkpoint);
    EXPECT_EQ(writer.logRows("sentiment", "kd"), checkpoint);
    EXPECT_EQ(messageOf<JobError>([&] {
                writer.truncateLogs("sentiment", "kd", LogRows{5, 1, 1});
              }),
              m_path + ": /tasks/sentiment/models/kd/train/loss: has 2 rows, fewer than the 5 the checkpoint "
                       "recorded (the file is older than the checkpoint)");
    // The same steps again, as the resumed job logs them.
    writer.appendTrainLog("sentiment", "kd", {6}, {0.8f}, {{"ce", {0.8f}}, {"kd", {3.0f}}});
  }
  {
    const RunReader reader(m_path);
    EXPECT_EQ(reader.summary().status, "running") << "continuing sets it back to running";
    const TrainLog log = reader.trainLog("sentiment", "kd");
    EXPECT_EQ(log.steps, (std::vector<std::int64_t>{2, 4, 6}));
    EXPECT_EQ(log.loss, (std::vector<float>{1.0f, 0.9f, 0.8f}));
    ASSERT_EQ(log.terms.at("kd").size(), 3U);
    EXPECT_TRUE(std::isnan(log.terms.at("kd")[1]));
    EXPECT_EQ(log.terms.at("kd")[2], 3.0f);
  }

  const std::string plain = m_dir.file("plain.h5");
  H5File(plain, H5File::Mode::Create).writeInt64("/data", {1}, {1});
  EXPECT_EQ(
      messageOf<InputError>([&] { RunWriter writer(plain, RunWriter::Continue{}); }),
      plain +
          ": cannot continue this file: not a KDScope run file (attribute 'format' is not 'kdscope-run')");
  H5File(m_path, H5File::Mode::ReadWrite).setAttr("/", "format_version", std::int64_t{2});
  EXPECT_EQ(messageOf<InputError>([&] { RunWriter writer(m_path, RunWriter::Continue{}); }),
            m_path + ": cannot continue this file: format_version 2, but this KDScope writes version 1");
}

TEST_F(RunFileTest, LogsAreUncompressedAndChunkedSoAppendsRewriteInPlace) {
  {
    RunWriter writer(m_path, "{}");
    writer.writeTask(vectorTask());
    writer.beginModel("hierarchy", "teacher", "teacher", "{}", "{}", 1);
    writer.appendTrainLog("hierarchy", "teacher", {1}, {0.5f}, {{"ce", {0.5f}}});
  }
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t file = H5Fopen(m_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  for (const char* path :
       {"/tasks/hierarchy/models/teacher/train/step", "/tasks/hierarchy/models/teacher/train/loss"}) {
    const hid_t dataset = H5Dopen2(file, path, H5P_DEFAULT);
    const hid_t dcpl = H5Dget_create_plist(dataset);
    hsize_t chunk = 0;
    EXPECT_EQ(H5Pget_chunk(dcpl, 1, &chunk), 1) << path;
    EXPECT_EQ(chunk, 256U) << path;
    EXPECT_EQ(H5Pget_nfilters(dcpl), 0) << path;
    H5Pclose(dcpl);
    H5Dclose(dataset);
  }
  H5Fclose(file);
}

} // namespace
} // namespace kdscope::core
