// The Study tab following a study whose cells other writers produce (a Slurm array): the cells
// complete so far with "N of M" and the gaps worked out from the logits written here, a cell
// held open by its writer shown as running, new cells picked up by the poll without a reload,
// and the user's choices kept across polls; then real `kdscope study --cell` processes (the
// teacher, two cells at once) followed to the end, the view's numbers those of the merged
// summary. The Slurm scripts dialog: the preview and the files it writes, the issues that stop
// it. The array path itself is tests/slurm/ (ctest app_study_slurm_standin and _real).

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/data/dataset.h"
#include "core/record/run_writer.h"
#include "core/study/slurm_script.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"
#include "test_run_file.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/views/study_slurm_dialog.h"
#include "widgets/views/study_view.h"

using namespace kdscope;

namespace {

/// layers {1, 2} x heads {1, 2}: cells L1_H1, L1_H2, L2_H1, L2_H2 (heatmap rows layers,
/// columns heads).
const char* kStudy = R"({
  "name": "followed",
  "tasks": ["polarity"],
  "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32}},
  "student": {"architecture": {"width": 8, "ffn": 16}},
  "grid": {"layers": [1, 2], "heads": [1, 2]}
})";

void writeText(const QString& path, const QByteArray& text) {
  QDir().mkpath(QFileInfo(path).path());
  QFile file(path);
  ASSERT_TRUE(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
  file.write(text);
}

core::TaskData evalTask() {
  core::TaskData task;
  task.name = "polarity";
  task.kind = core::TaskKind::Text;
  task.classNames = {"neg", "pos"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "x"};
  task.seqLen = 2;
  task.eval.labels = {0, 1, 0, 1};
  task.eval.tokens = {2, 3, 2, 3, 2, 3, 2, 3};
  task.eval.texts = {"x", "x", "x", "x"};
  return task;
}

/// Eval logits over the labels {0, 1, 0, 1}: the first `right` examples argmax to their label,
/// the rest to the other class.
std::vector<float> logits(int right) {
  const std::vector<int> labels = {0, 1, 0, 1};
  std::vector<float> out;
  for (int n = 0; n < 4; ++n) {
    const int predicted = n < right ? labels[n] : 1 - labels[n];
    out.push_back(predicted == 0 ? 2.0F : 0.0F);
    out.push_back(predicted == 1 ? 2.0F : 0.0F);
  }
  return out;
}

/// A cell's run file as another process would write it: the teacher right on all 4 eval
/// examples (accuracy 1), the student on `studentRight` of them. Left open (a writer still
/// running) when `keepOpen` receives the writer.
void writeCell(const QString& dir, const std::string& cell, int studentRight,
               std::unique_ptr<core::RunWriter>* keepOpen = nullptr) {
  const QString path = QDir(dir).filePath(QString::fromStdString("cells/" + cell + "/run.h5"));
  QDir().mkpath(QFileInfo(path).path());
  // A new file, as the study runner makes one (the poll may be reading the old one).
  QFile::remove(path);
  auto writer = std::make_unique<core::RunWriter>(path.toStdString(), R"({"name":"cell"})");
  writer->writeTask(evalTask());
  const std::string ce = R"({"terms":[{"name":"ce","weight":1.0}]})";
  writer->beginModel("polarity", "teacher", "teacher", R"({"type":"transformer","layers":2,"heads":2})", ce, 1000);
  writer->beginModel("polarity", "student", "student", R"({"type":"transformer","layers":1,"heads":1})", ce, 100);
  writer->appendTrainLog("polarity", "student", {10, 20}, {0.9F, 0.5F}, {{"ce", {0.9F, 0.5F}}});
  for (const auto& [model, right] : {std::pair<std::string, int>{"teacher", 4}, {"student", studentRight}}) {
    core::RunWriter::EvalShape shape;
    shape.examples = 4;
    shape.classes = 2;
    writer->createEvalOutputs("polarity", model, shape, "mean");
    const std::vector<float> values = logits(right);
    writer->writeEvalLogits("polarity", model, 0, 4, values.data());
  }
  if (keepOpen != nullptr) {
    writer->flush();
    *keepOpen = std::move(writer);
    return;
  }
  writer->setStatus("complete", "");
}

/// Waits for the next `followed` signal (a poll or a reload) and returns (complete, total).
std::pair<int, int> nextFollow(QSignalSpy& spy) {
  const int before = static_cast<int>(spy.count());
  if (!spy.wait(20000) && spy.count() == before) {
    ADD_FAILURE() << "no refresh of the followed folder";
    return {-1, -1};
  }
  const QList<QVariant> args = spy.takeLast();
  spy.clear();
  return {args.at(0).toInt(), args.at(1).toInt()};
}

} // namespace

TEST(StudyFollow, CellsWrittenByOthersAppearAsTheyComplete) {
  QTemporaryDir dir;
  writeText(dir.filePath(QStringLiteral("study.json")), kStudy);
  widgets::StudyView view;
  QSignalSpy spy(&view, &widgets::StudyView::followed);
  view.followCheck()->setChecked(false); // reloads only, until the poll is tested below
  QString error;
  ASSERT_TRUE(view.followStudy(dir.path(), &error)) << error.toStdString();
  EXPECT_TRUE(view.following());
  EXPECT_EQ(nextFollow(spy), std::make_pair(0, 4));
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("0 of 4 cells complete (0 running, 0 failed, 4 not started)")))
      << view.statusText().toStdString();

  // Two cells complete, a third still held by its writer.
  writeCell(dir.path(), "L1_H1", 3); // gap 1 - 3/4
  writeCell(dir.path(), "L2_H2", 2); // gap 1 - 2/4
  std::unique_ptr<core::RunWriter> running;
  writeCell(dir.path(), "L1_H2", 1, &running);
  view.reloadButton()->click();
  EXPECT_EQ(nextFollow(spy), std::make_pair(2, 4));
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("2 of 4 cells complete (1 running, 0 failed, 1 not started)")))
      << view.statusText().toStdString();
  {
    const widgets::Heatmap& h = view.heatmapPlot()->heatmap();
    ASSERT_EQ(h.rows, 2);
    ASSERT_EQ(h.cols, 2);
    EXPECT_NEAR(h.values[0], 0.25, 1e-12); // L1_H1
    EXPECT_TRUE(std::isnan(h.values[1]));  // L1_H2: running
    EXPECT_TRUE(std::isnan(h.values[2]));  // L2_H1: not started
    EXPECT_NEAR(h.values[3], 0.50, 1e-12); // L2_H2
  }
  // The user's choice of metric survives the polls (the study's shape did not change).
  view.metricSelector()->setCurrentIndex(1); // student accuracy
  EXPECT_NEAR(view.heatmapPlot()->heatmap().values[0], 0.75, 1e-12);

  // The running writer fails; the other two cells complete. The poll finds them, no reload.
  running->setStatus("failed", "killed");
  running.reset();
  writeCell(dir.path(), "L2_H1", 4);
  view.setFollowInterval(50);
  view.followCheck()->setChecked(true);
  EXPECT_EQ(nextFollow(spy), std::make_pair(3, 4));
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("3 of 4 cells complete (0 running, 1 failed, 0 not started)")))
      << view.statusText().toStdString();
  writeCell(dir.path(), "L1_H2", 0); // run again, to completion
  std::pair<int, int> done{0, 0};
  for (int polls = 0; polls < 100 && done.first != 4; ++polls) {
    done = nextFollow(spy);
  }
  EXPECT_EQ(done, std::make_pair(4, 4));
  EXPECT_EQ(view.cellsDone(), std::make_pair(4, 4));
  EXPECT_EQ(view.metricSelector()->currentIndex(), 1);
  const widgets::Heatmap& h = view.heatmapPlot()->heatmap();
  EXPECT_NEAR(h.values[0], 0.75, 1e-12); // student accuracies: 3/4, 0/4, 4/4, 2/4
  EXPECT_NEAR(h.values[1], 0.00, 1e-12);
  EXPECT_NEAR(h.values[2], 1.00, 1e-12);
  EXPECT_NEAR(h.values[3], 0.50, 1e-12);
  // Nothing to export until the study is merged into a summary file.
  EXPECT_FALSE(view.exportButton()->isEnabled());
}

TEST(StudyFollow, FollowsCellsThatKdscopeProcessesRun) {
  QTemporaryDir dir;
  // A tiny polarity corpus laid out like the Debian package (docs/data.md); one word in three
  // carries the sentiment.
  {
    const QString corpora = dir.filePath(QStringLiteral("data/python3-pattern/usr/share/doc/python3-pattern/test/corpora"));
    QDir().mkpath(corpora);
    QFile csv(QDir(corpora).filePath(QStringLiteral("polarity-en-pang&lee2.csv")));
    ASSERT_TRUE(csv.open(QIODevice::WriteOnly));
    const char* good[] = {"good", "great", "fine", "lovely"};
    const char* bad[] = {"bad", "awful", "dull", "poor"};
    const char* filler[] = {"the", "film", "was", "a", "plot"};
    for (int i = 0; i < 96; ++i) {
      const bool positive = i % 2 == 0;
      QStringList words;
      for (int w = 0; w < 6; ++w) {
        words << QString::fromLatin1(w % 3 == 1 ? (positive ? good : bad)[(i + w) % 4] : filler[(i * 7 + w) % 5]);
      }
      const bool label = (i % 7 == 3) ? !positive : positive; // a few wrong labels
      csv.write(QStringLiteral("\"%1\",\"%2\"\n").arg(label ? "1" : "-1", words.join(QLatin1Char(' '))).toUtf8());
    }
  }
  const QString study = dir.filePath(QStringLiteral("tiny.json"));
  writeText(study, R"({"name": "processes", "seed": 4, "data_dir": "data", "analyze": false,
    "tasks": [{"name": "polarity", "max_len": 8, "min_freq": 1}],
    "teacher": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16},
                "training": {"epochs": 1, "batch_size": 16}},
    "student": {"architecture": {"layers": 1, "heads": 1, "width": 8, "ffn": 16},
                "training": {"epochs": 1, "batch_size": 16}},
    "grid": {"lambda": [0.3, 0.9]},
    "recording": {"attention_examples": 0}})");
  const QString out = dir.filePath(QStringLiteral("out"));
  const QString exe = QStringLiteral(KDSCOPE_EXECUTABLE);
  const auto run = [&](const QStringList& extra) {
    auto* p = new QProcess();
    p->setProcessChannelMode(QProcess::MergedChannels);
    p->start(exe, QStringList{QStringLiteral("study"), study, QStringLiteral("--out"), out, QStringLiteral("--threads"),
                              QStringLiteral("1"), QStringLiteral("--blas-threads"), QStringLiteral("1")} +
                      extra);
    return std::unique_ptr<QProcess>(p);
  };
  // The teacher first (it writes study.json), then the two cells at once while the view follows.
  auto teacher = run({QStringLiteral("--teacher-only")});
  ASSERT_TRUE(teacher->waitForFinished(120000));
  ASSERT_EQ(teacher->exitCode(), 0) << teacher->readAll().toStdString();

  widgets::StudyView view;
  QSignalSpy spy(&view, &widgets::StudyView::followed);
  view.setFollowInterval(100);
  ASSERT_TRUE(view.followStudy(out));
  auto cell0 = run({QStringLiteral("--cell"), QStringLiteral("0")});
  auto cell1 = run({QStringLiteral("--cell"), QStringLiteral("lam0.9")});
  std::vector<int> seen;
  for (int polls = 0; polls < 1200 && (seen.empty() || seen.back() != 2); ++polls) {
    const auto [complete, total] = nextFollow(spy);
    ASSERT_EQ(total, 2);
    seen.push_back(complete);
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 2);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())); // cells complete, never go back
  for (auto* p : {cell0.get(), cell1.get()}) {
    ASSERT_TRUE(p->state() == QProcess::NotRunning || p->waitForFinished(120000)); // may have ended already
    EXPECT_EQ(p->exitCode(), 0) << p->readAll().toStdString();
  }
  EXPECT_TRUE(view.statusText().contains(QStringLiteral("2 of 2 cells complete"))) << view.statusText().toStdString();

  // The view shows what the merge writes: the gap per lambda.
  auto merge = run({QStringLiteral("--merge")});
  ASSERT_TRUE(merge->waitForFinished(60000));
  ASSERT_EQ(merge->exitCode(), 0) << merge->readAll().toStdString();
  const core::StudySummary merged = core::readStudySummary(QDir(out).filePath(QStringLiteral("study_summary.json")).toStdString());
  ASSERT_EQ(merged.cells.size(), 2U);
  const widgets::Heatmap& h = view.heatmapPlot()->heatmap();
  ASSERT_EQ(h.rows * h.cols, 2);
  EXPECT_EQ(h.values[0], merged.cells[0].tasks[0].gap); // the same numbers from the same files
  EXPECT_EQ(h.values[1], merged.cells[1].tasks[0].gap);
  EXPECT_TRUE(std::isfinite(h.values[0]) && std::isfinite(h.values[1]));
}

TEST(StudyFollow, AFolderWithoutAValidStudyIsNamed) {
  QTemporaryDir dir;
  widgets::StudyView view;
  QString error;
  EXPECT_FALSE(view.followStudy(dir.path(), &error));
  EXPECT_TRUE(error.contains(QStringLiteral("study.json: no study here"))) << error.toStdString();
  EXPECT_FALSE(view.following());

  writeText(dir.filePath(QStringLiteral("study.json")), R"({"tasks": ["polarity"], "grid": {"heads": [0]}})");
  QSignalSpy failed(&view, &widgets::StudyView::followFailed);
  ASSERT_TRUE(view.followStudy(dir.path(), &error));
  ASSERT_TRUE(failed.wait(20000) || failed.count() > 0);
  const QString message = failed.takeFirst().at(0).toString();
  EXPECT_TRUE(message.contains(QStringLiteral("is not a valid study"))) << message.toStdString();
  EXPECT_TRUE(message.contains(QStringLiteral("grid.heads[0]"))) << message.toStdString();
  EXPECT_EQ(view.statusText(), message);
}

TEST(StudySlurmDialog, WritesTheArrayScriptsOfAStudy) {
  QTemporaryDir dir;
  const QString study = dir.filePath(QStringLiteral("followed.json"));
  writeText(study, kStudy);
  const QString out = dir.filePath(QStringLiteral("out"));
  widgets::StudySlurmDialog dialog;
  EXPECT_FALSE(dialog.writeButton()->isEnabled());
  dialog.setStudyFile(study);
  dialog.setOutDir(out);
  dialog.executableEdit()->setText(QStringLiteral("/opt/kd/bin/kdscope"));
  dialog.partitionEdit()->setText(QStringLiteral("cpu"));
  dialog.timeEdit()->setText(QStringLiteral("1:00:00"));
  dialog.memEdit()->setText(QStringLiteral("2G"));
  dialog.cpusSpin()->setValue(2);
  dialog.arrayLimitSpin()->setValue(2);
  ASSERT_TRUE(dialog.updatePreview()) << dialog.message().toStdString();
  EXPECT_TRUE(dialog.writeButton()->isEnabled());
  EXPECT_TRUE(dialog.message().contains(QStringLiteral("4 cells x 1 task(s); the array has tasks 0-3")))
      << dialog.message().toStdString();
  QStringList names;
  for (int i = 0; i < dialog.previewSelector()->count(); ++i) {
    names << dialog.previewSelector()->itemText(i);
  }
  EXPECT_EQ(names, (QStringList{"teacher.sbatch", "cells.sbatch", "merge.sbatch", "submit.sh"}));
  EXPECT_EQ(dialog.previewSelector()->currentText(), QStringLiteral("cells.sbatch"));
  const QString cells = dialog.preview()->toPlainText();
  for (const char* line : {"\n#SBATCH --array=0-3%2\n", "\n#SBATCH --partition=cpu\n", "\n#SBATCH --time=1:00:00\n",
                           "\n#SBATCH --mem=2G\n", "\n#SBATCH --cpus-per-task=2\n", "\n#   3  L2_H2\n"}) {
    EXPECT_TRUE(cells.contains(QString::fromLatin1(line))) << line << "\n" << cells.toStdString();
  }
  EXPECT_TRUE(cells.contains(QStringLiteral("exec /opt/kd/bin/kdscope study ") + study + QStringLiteral(" --out ") +
                             out + QStringLiteral(" --cell \"$SLURM_ARRAY_TASK_ID\"")))
      << cells.toStdString();
  dialog.previewSelector()->setCurrentIndex(3);
  EXPECT_TRUE(dialog.preview()->toPlainText().contains(QStringLiteral("--dependency=afterok:\"$teacher\"")));

  QSignalSpy written(&dialog, &widgets::StudySlurmDialog::written);
  dialog.writeButton()->click();
  ASSERT_EQ(written.count(), 1) << dialog.message().toStdString();
  EXPECT_EQ(written.takeFirst().at(0).toString(), QDir(out).filePath(QStringLiteral("slurm")));
  EXPECT_TRUE(dialog.message().contains(QStringLiteral("sh ") + out + QStringLiteral("/slurm/submit.sh")))
      << dialog.message().toStdString();
  // The files are those of `kdscope study --slurm` with the same options.
  const auto parsed = core::loadStudyFile(study.toStdString());
  ASSERT_TRUE(parsed.study);
  core::SlurmOptions options;
  options.executable = "/opt/kd/bin/kdscope";
  options.studyPath = study.toStdString();
  options.outDir = out.toStdString();
  options.partition = "cpu";
  options.time = "1:00:00";
  options.mem = "2G";
  options.cpusPerTask = 2;
  options.arrayLimit = 2;
  for (const auto& f : core::slurmScripts(*parsed.study, options)) {
    QFile file(QString::fromStdString(f.path));
    ASSERT_TRUE(file.open(QIODevice::ReadOnly)) << f.path;
    EXPECT_EQ(file.readAll().toStdString(), f.text) << f.path;
  }
  EXPECT_TRUE(QFileInfo(QDir(out).filePath(QStringLiteral("slurm/logs"))).isDir());

  // What Slurm would refuse stops it, named.
  dialog.timeEdit()->setText(QStringLiteral("2 hours"));
  EXPECT_FALSE(dialog.updatePreview());
  EXPECT_FALSE(dialog.writeButton()->isEnabled());
  EXPECT_TRUE(dialog.message().startsWith(QStringLiteral("--time '2 hours': not a Slurm time limit")))
      << dialog.message().toStdString();
  EXPECT_FALSE(dialog.writeScripts());
  // So does a study file with issues, each with its path.
  dialog.timeEdit()->clear();
  const QString bad = dir.filePath(QStringLiteral("bad.json"));
  writeText(bad, R"({"tasks": ["polarity"], "grid": {"layres": [1]}})");
  dialog.setStudyFile(bad);
  EXPECT_FALSE(dialog.updatePreview());
  EXPECT_TRUE(dialog.message().contains(QStringLiteral("grid.layres: unknown factor (did you mean 'layers'?)")))
      << dialog.message().toStdString();
}

TEST(StudySlurmDialog, OpensFromTheStudyViewOnTheFollowedFolder) {
  QTemporaryDir dir;
  writeText(dir.filePath(QStringLiteral("study.json")), kStudy);
  widgets::StudyView view;
  ASSERT_TRUE(view.followStudy(dir.path()));
  view.slurmButton()->click();
  auto* dialog = view.findChild<widgets::StudySlurmDialog*>();
  ASSERT_NE(dialog, nullptr);
  EXPECT_EQ(dialog->outEdit()->text(), QFileInfo(dir.path()).absoluteFilePath());
  dialog->close();
}
