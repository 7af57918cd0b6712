// A study's cells copy their teacher's heads and probes results from the teacher job's run
// file instead of computing them again (docs/analyses.md, "Reusing a study's teacher
// analyses"; docs/studies.md, "Teacher analyses, once per study"). Tiny real studies: a cell
// analysed with reuse against the same cell analysed again without, dataset by dataset; the
// provenance attributes; --cell (the Slurm path), replicates, a teacher of its own checkpoint,
// the switches that turn it off; and bad sources (missing, corrupt, unanalysed, other
// options), which fall back to computing with a progress line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/analysis/analyze_run.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/study/study_runner.h"
#include "core/study/study_spec.h"
#include "tests/core/test_support.h"

using namespace kdscope::core;
namespace fs = std::filesystem;

namespace {

/// Two cells (lambda 0.2, 0.8) of a 2-layer, 2-head teacher on a small polarity corpus,
/// analysed. `extra` is spliced into the study object (e.g. replicates).
std::string reuseStudyJson(const std::string& dataDir, const std::string& extra = "",
                           const std::string& teacher = R"("training": {"epochs": 2, "batch_size": 16, "lr": 0.003})") {
  return R"({
    "name": "reuse",
    "seed": 5,
    "data_dir": ")" + dataDir + R"(",
    "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
                )" + teacher + R"(},
    "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
                "training": {"epochs": 1, "batch_size": 16, "lr": 0.003},
                "objective": {"temperature": 2.0}},
    "grid": {"lambda": [0.2, 0.8]},
    "recording": {"attention_examples": 2, "log_every": 2},
    "analyze": true)" + extra + R"(
  })";
}

StudySpec parsed(const std::string& json, const std::string& base) {
  auto r = parseStudy(json, "reuse.json", base);
  std::string issues;
  for (const auto& i : r.issues) {
    issues += i.str() + "\n";
  }
  EXPECT_TRUE(r.study) << issues;
  return r.study ? *r.study : StudySpec{};
}

StudyRunOptions options(const std::string& out, StudyScope scope = StudyScope::All, std::size_t cell = 0) {
  StudyRunOptions o{out, 1, 1};
  o.scope = scope;
  o.cell = cell;
  return o;
}

const std::string kTask = "polarity";

std::string teacherGroup() { return layout::analysisOf(kTask, "teacher"); }
std::string headKey() { return layout::child(teacherGroup(), layout::entry::kHeadImportance); }
std::string probeKey() { return layout::child(teacherGroup(), layout::entry::kProbeAccuracy); }

/// The attribute reused_from of `path` in `file`, or "" when absent.
std::string reusedFrom(const std::string& file, const std::string& path) {
  const H5File f(file, H5File::Mode::ReadOnly);
  return f.hasAttr(path, "reused_from") ? f.attrString(path, "reused_from") : "";
}

std::string normal(const fs::path& p) { return fs::absolute(p).lexically_normal().string(); }

/// Every dataset under `group`, by path, its values as doubles (floats and integers) or its
/// strings joined.
struct Dataset {
  std::vector<std::uint64_t> shape;
  std::vector<double> numbers;
  std::vector<std::string> strings;
};
void collect(const H5File& f, const std::string& group, std::map<std::string, Dataset>& out) {
  for (const std::string& name : f.children(group)) {
    const std::string p = group + "/" + name;
    if (f.isGroup(p)) {
      collect(f, p, out);
      continue;
    }
    Dataset d;
    d.shape = f.shape(p);
    switch (f.typeClass(p)) {
    case H5TypeClass::Float:
      for (float v : f.readFloat(p)) {
        d.numbers.push_back(v);
      }
      break;
    case H5TypeClass::Integer:
      for (std::int64_t v : f.readInt64(p)) {
        d.numbers.push_back(static_cast<double>(v));
      }
      break;
    default:
      d.strings = f.readStrings(p);
    }
    out[p] = std::move(d);
  }
}
std::map<std::string, Dataset> analysisDatasets(const std::string& file) {
  const H5File f(file, H5File::Mode::ReadOnly);
  std::map<std::string, Dataset> out;
  collect(f, layout::analysis(kTask), out);
  return out;
}

/// Exact equality, NaN equal to NaN (a value the analysis leaves undefined).
bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void expectSameDatasets(const std::map<std::string, Dataset>& a, const std::map<std::string, Dataset>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [path, d] : a) {
    const auto it = b.find(path);
    ASSERT_NE(it, b.end()) << path;
    EXPECT_EQ(d.shape, it->second.shape) << path;
    EXPECT_EQ(d.strings, it->second.strings) << path;
    ASSERT_EQ(d.numbers.size(), it->second.numbers.size()) << path;
    std::size_t differ = 0;
    for (std::size_t i = 0; i < d.numbers.size(); ++i) {
      differ += same(d.numbers[i], it->second.numbers[i]) ? 0 : 1;
    }
    EXPECT_EQ(differ, 0U) << path << ": values differ";
  }
}

/// The progress lines of an analysis.
struct Lines {
  std::vector<std::string> lines;
  ProgressSink sink() {
    return [this](const ProgressEvent& e) { lines.push_back(e.model + ": " + e.message); };
  }
  [[nodiscard]] bool has(const std::string& part) const {
    for (const auto& l : lines) {
      if (l.find(part) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::string all() const {
    std::string s;
    for (const auto& l : lines) {
      s += l + "\n";
    }
    return s;
  }
};

} // namespace

TEST(StudyTeacherReuse, CellsCopyTheTeachersResultsAndTheyEqualARecompute) {
  const auto dir = kdscope::test::freshTempDir("teacher_reuse");
  const std::string data = kdscope::test::writePolarityCorpus(dir / "data", {120, false, false});
  const StudySpec study = parsed(reuseStudyJson(data), dir.string());
  ASSERT_TRUE(study.reuseTeacherAnalyses);
  const std::string out = (dir / "out").string();
  const StudyResult run = runStudy(study, options(out), CancelToken(), {});
  ASSERT_EQ(run.status, JobStatus::Succeeded) << run.message;

  const std::string teacherRun = (fs::path(out) / "teacher/run.h5").string();
  // The teacher job computed its results and recorded what from (the inputs key).
  {
    const H5File t(teacherRun, H5File::Mode::ReadOnly);
    ASSERT_TRUE(t.hasAttr(headKey(), "inputs"));
    ASSERT_TRUE(t.hasAttr(probeKey(), "inputs"));
    EXPECT_NE(t.attrString(headKey(), "inputs").find("\"checkpoint_sha1\""), std::string::npos);
    EXPECT_FALSE(t.hasAttr(headKey(), "reused_from"));
  }
  const auto teacherDatasets = analysisDatasets(teacherRun);
  for (const StudyCell& cell : study.cells) {
    const std::string cellRun = (fs::path(studyCellDir(out, cell.name)) / "run.h5").string();
    // Each cell copied them: the provenance names the teacher job's run file...
    EXPECT_EQ(reusedFrom(cellRun, headKey()), normal(teacherRun)) << cell.name;
    EXPECT_EQ(reusedFrom(cellRun, probeKey()), normal(teacherRun)) << cell.name;
    // ...and every copied dataset is the teacher job's.
    const auto cellDatasets = analysisDatasets(cellRun);
    std::size_t copied = 0;
    for (const auto& [path, d] : cellDatasets) {
      if (path.rfind(teacherGroup() + "/head_", 0) == 0 || path.rfind(teacherGroup() + "/probe_", 0) == 0) {
        ASSERT_TRUE(teacherDatasets.count(path)) << path;
        EXPECT_EQ(d.numbers, teacherDatasets.at(path).numbers) << path;
        ++copied;
      }
    }
    EXPECT_EQ(copied, 20U) << cell.name; // 14 heads datasets and 6 probes datasets
  }

  // The same cell analysed again with reuse off computes them: every dataset under the task's
  // analysis group is equal, exactly (the same code on the same checkpoint, data, kernels and
  // thread settings in this process; docs/analyses.md says when it would not be).
  const std::string cellRun = (fs::path(studyCellDir(out, study.cells[1].name)) / "run.h5").string();
  const auto reused = analysisDatasets(cellRun);
  AnalyzeOptions recompute;
  recompute.threads = 1;
  Lines lines;
  const AnalyzeResult again = analyzeRun(cellRun, recompute, CancelToken(), lines.sink());
  ASSERT_EQ(again.status, AnalyzeStatus::Succeeded) << again.message;
  EXPECT_TRUE(lines.has("teacher: head importance (gradient of a head gate)")) << lines.all();
  EXPECT_EQ(reusedFrom(cellRun, headKey()), "");
  EXPECT_EQ(reusedFrom(cellRun, probeKey()), "");
  const auto computed = analysisDatasets(cellRun);
  ASSERT_TRUE(computed.count(headKey()));
  expectSameDatasets(reused, computed);

  // And with reuse again (kdscope analyze --reuse-teacher-from): copied, the same values.
  AnalyzeOptions reuse = recompute;
  reuse.teacherAnalysesFrom = teacherRun;
  Lines reuseLines;
  ASSERT_EQ(analyzeRun(cellRun, reuse, CancelToken(), reuseLines.sink()).status, AnalyzeStatus::Succeeded);
  EXPECT_TRUE(reuseLines.has("heads and probes reused from " + teacherRun)) << reuseLines.all();
  EXPECT_FALSE(reuseLines.has("teacher: head importance (gradient of a head gate)")) << reuseLines.all();
  EXPECT_EQ(reusedFrom(cellRun, headKey()), normal(teacherRun));
  expectSameDatasets(reused, analysisDatasets(cellRun));

  // Other options: a probe fitted on other rows is not the same result, so the probes are
  // computed while the heads (which do not depend on it) are still copied.
  AnalyzeOptions otherProbes = reuse;
  otherProbes.probeTrainExamples = 40;
  Lines otherLines;
  ASSERT_EQ(analyzeRun(cellRun, otherProbes, CancelToken(), otherLines.sink()).status, AnalyzeStatus::Succeeded);
  EXPECT_TRUE(otherLines.has("heads reused from")) << otherLines.all();
  EXPECT_TRUE(otherLines.has("not reusing the teacher's probes: its probes results were computed from other inputs "
                             "(probe_train_examples, train_data)"))
      << otherLines.all();
  EXPECT_EQ(reusedFrom(cellRun, headKey()), normal(teacherRun));
  EXPECT_EQ(reusedFrom(cellRun, probeKey()), "");
  {
    const H5File f(cellRun, H5File::Mode::ReadOnly);
    EXPECT_EQ(f.attrInt(probeKey(), "train_examples"), 40);
  }

  // Bad sources: each falls back to computing, says why, and the analysis succeeds.
  const std::string corrupt = kdscope::test::writeFile((dir / "corrupt.h5").string(), std::string(4096, 'x'));
  const std::string unanalysed = (dir / "unanalysed.h5").string();
  fs::copy_file(teacherRun, unanalysed);
  {
    H5File f(unanalysed, H5File::Mode::ReadWrite);
    f.remove(layout::analysis(kTask));
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {(dir / "missing.h5").string(), "it does not exist"},
      {corrupt, corrupt},
      {unanalysed, "its task 'polarity' is not analysed"},
      {cellRun, "it is the file being analysed"}};
  for (const auto& [source, why] : bad) {
    AnalyzeOptions o = recompute;
    o.teacherAnalysesFrom = source;
    Lines l;
    const AnalyzeResult r = analyzeRun(cellRun, o, CancelToken(), l.sink());
    ASSERT_EQ(r.status, AnalyzeStatus::Succeeded) << source << ": " << r.message;
    EXPECT_TRUE(l.has("not reusing the teacher's analyses of " + source + ": ")) << l.all();
    EXPECT_TRUE(l.has(why)) << l.all();
    EXPECT_TRUE(l.has("teacher: head importance (gradient of a head gate)")) << l.all();
    EXPECT_EQ(reusedFrom(cellRun, headKey()), "") << source;
    expectSameDatasets(computed, analysisDatasets(cellRun));
  }
}

TEST(StudyTeacherReuse, TheSlurmCellReplicatesAndTheSwitches) {
  const auto dir = kdscope::test::freshTempDir("teacher_reuse_units");
  const std::string data = kdscope::test::writePolarityCorpus(dir / "data", {120, false, false});

  // --teacher-only, then --cell 1 alone (a Slurm array task): it copies from the teacher job.
  const StudySpec study = parsed(reuseStudyJson(data), dir.string());
  const std::string array = (dir / "array").string();
  ASSERT_EQ(runStudy(study, options(array, StudyScope::TeacherOnly), CancelToken(), {}).status, JobStatus::Succeeded);
  ASSERT_EQ(runStudy(study, options(array, StudyScope::Cell, 1), CancelToken(), {}).status, JobStatus::Succeeded);
  const std::string arrayTeacher = normal(fs::path(array) / "teacher/run.h5");
  EXPECT_EQ(reusedFrom((fs::path(studyCellDir(array, study.cells[1].name)) / "run.h5").string(), headKey()),
            arrayTeacher);

  // --no-teacher-reuse (StudyRunOptions) and "reuse_teacher_analyses": false each compute.
  StudyRunOptions off = options(array, StudyScope::Cell, 0);
  off.reuseTeacherAnalyses = false;
  ASSERT_EQ(runStudy(study, off, CancelToken(), {}).status, JobStatus::Succeeded);
  const std::string cell0 = (fs::path(studyCellDir(array, study.cells[0].name)) / "run.h5").string();
  EXPECT_EQ(reusedFrom(cell0, headKey()), "");
  {
    const H5File f(cell0, H5File::Mode::ReadOnly);
    EXPECT_TRUE(f.hasAttr(headKey(), "inputs")); // computed, with its key
  }
  const StudySpec noReuse = parsed(reuseStudyJson(data, R"(, "reuse_teacher_analyses": false)"), dir.string());
  EXPECT_FALSE(noReuse.reuseTeacherAnalyses);
  const std::string plain = (dir / "plain").string();
  ASSERT_EQ(runStudy(noReuse, options(plain), CancelToken(), {}).status, JobStatus::Succeeded);
  for (const StudyCell& cell : noReuse.cells) {
    EXPECT_EQ(reusedFrom((fs::path(studyCellDir(plain, cell.name)) / "run.h5").string(), headKey()), "") << cell.name;
  }
  // The field is checked like every other.
  const auto wrong = parseStudy(reuseStudyJson(data, R"(, "reuse_teacher_analyses": "yes")"), "reuse.json", dir.string());
  ASSERT_EQ(wrong.issues.size(), 1U);
  EXPECT_EQ(wrong.issues[0].str(), "reuse_teacher_analyses: must be true or false, got string");

  // Replicates: each replicate's cells copy from their own replicate's teacher, never another's.
  const StudySpec reps = parsed(reuseStudyJson(data, R"(, "replicates": 2)"), dir.string());
  const std::string repOut = (dir / "reps").string();
  ASSERT_EQ(runStudy(reps, options(repOut), CancelToken(), {}).status, JobStatus::Succeeded);
  for (const auto seed : reps.replicateSeeds) {
    const std::string repDir = studyReplicateDir(repOut, seed);
    for (const StudyCell& cell : reps.cells) {
      EXPECT_EQ(reusedFrom((fs::path(studyCellDir(repDir, cell.name)) / "run.h5").string(), headKey()),
                normal(fs::path(repDir) / "teacher/run.h5"))
          << cell.name << " seed " << seed;
    }
  }

  // A teacher of its own checkpoint (no teacher job): the first cell computes, the next copies
  // from the first cell's run file.
  const std::string checkpoint = (fs::path(array) / "teacher/checkpoints/{task}/teacher.pt").string();
  const StudySpec loaded =
      parsed(reuseStudyJson(data, "", R"("checkpoint": ")" + checkpoint + R"(")"), dir.string());
  ASSERT_FALSE(loaded.teacherJob);
  const std::string loadedOut = (dir / "loaded").string();
  ASSERT_EQ(runStudy(loaded, options(loadedOut), CancelToken(), {}).status, JobStatus::Succeeded);
  const std::string first = (fs::path(studyCellDir(loadedOut, loaded.cells[0].name)) / "run.h5").string();
  const std::string second = (fs::path(studyCellDir(loadedOut, loaded.cells[1].name)) / "run.h5").string();
  EXPECT_EQ(reusedFrom(first, headKey()), "");
  EXPECT_EQ(reusedFrom(second, headKey()), normal(first));
  // The copied results are the teacher job's own (the same checkpoint, data and options).
  const auto fromTeacher = analysisDatasets((fs::path(array) / "teacher/run.h5").string());
  const auto fromSecond = analysisDatasets(second);
  for (const std::string& path : {headKey(), probeKey()}) {
    ASSERT_TRUE(fromSecond.count(path)) << path;
    EXPECT_EQ(fromSecond.at(path).numbers, fromTeacher.at(path).numbers) << path;
  }
}
