// The job editor's "Task from your own file" group (widgets/jobs/task_file_form.h): a file
// chosen through the (replaced) file dialog and fields typed in the form land in the job
// JSON relative to the job file's folder, parse to the TaskSpec the form shows, and come
// back into a second editor's form; a missing file is an issue at tasks[i].file; "Check
// data" reads every row off the GUI thread and names the bad row's file, line and field.

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <gtest/gtest.h>

#include "core/job/job_spec.h"
#include "widgets/jobs/job_editor.h"
#include "widgets/jobs/task_file_form.h"

namespace kdscope::widgets {
namespace {

void writeText(const QString& path, const QByteArray& bytes) {
  QDir().mkpath(QFileInfo(path).absolutePath());
  QFile file(path);
  ASSERT_TRUE(file.open(QIODevice::WriteOnly));
  file.write(bytes);
}

/// The tasks of the editor's JSON that have a "file".
QJsonArray fileTasks(const JobEditor& editor) {
  QJsonArray out;
  for (const QJsonValue& task : QJsonDocument::fromJson(editor.jsonText().toUtf8()).object().value("tasks").toArray()) {
    if (task.toObject().contains(QStringLiteral("file"))) {
      out.append(task);
    }
  }
  return out;
}

TEST(TaskFileEditor, ChosenFileAndFieldsRoundTripThroughTheJobJson) {
  QTemporaryDir dir;
  const QString jobPath = dir.filePath(QStringLiteral("jobs/job.json"));
  writeText(dir.filePath(QStringLiteral("jobs/data/pairs.tsv")), "p\th\tgold\nthe cat\ta dog\tyes\nno\tyes\tno\n");
  JobEditor editor;
  ASSERT_TRUE(editor.saveFile(jobPath)); // the job file's folder: jobs/
  TaskFileForm* form = editor.taskFileForm();
  ASSERT_NE(form, nullptr);
  EXPECT_TRUE(fileTasks(editor).isEmpty());

  // The file dialog (replaced) returns an absolute path inside the job's folder.
  QStringList titles;
  form->setFileChooser([&](const QString& title, const QString&) {
    titles << title;
    return dir.filePath(QStringLiteral("jobs/data/pairs.tsv"));
  });
  form->nameEdit()->setText(QStringLiteral("nli"));
  form->browseFileButton()->click();
  EXPECT_EQ(titles, QStringList{QStringLiteral("Data file")});
  EXPECT_EQ(form->fileEdit()->text(), QStringLiteral("data/pairs.tsv")); // relative to jobs/
  form->textFieldEdit()->setText(QStringLiteral("p"));
  form->pairFieldEdit()->setText(QStringLiteral("h"));
  form->labelFieldEdit()->setText(QStringLiteral("gold"));
  form->lowerCaseBox()->setChecked(false);

  const QJsonArray tasks = fileTasks(editor);
  ASSERT_EQ(tasks.size(), 1);
  const QJsonObject task = tasks[0].toObject();
  EXPECT_EQ(task.value("name").toString(), QStringLiteral("nli"));
  EXPECT_EQ(task.value("file").toString(), QStringLiteral("data/pairs.tsv"));
  EXPECT_EQ(task.value("text_field").toString(), QStringLiteral("p"));
  EXPECT_EQ(task.value("text_pair_field").toString(), QStringLiteral("h"));
  EXPECT_EQ(task.value("label_field").toString(), QStringLiteral("gold"));
  EXPECT_FALSE(task.value("lower_case").toBool(true));
  EXPECT_FALSE(task.contains(QStringLiteral("format"))); // left at its default, "auto"
  EXPECT_FALSE(task.contains(QStringLiteral("split_field")));

  ASSERT_TRUE(editor.validateNow()) << editor.issueLines().join('\n').toStdString();
  const core::TaskSpec spec = editor.job()->tasks.back(); // job() returns a copy
  EXPECT_EQ(spec.name, "nli");
  EXPECT_EQ(spec.file, "data/pairs.tsv");
  EXPECT_EQ(spec.textPairField, "h");
  EXPECT_FALSE(spec.lowerCase);
  // The built-in task the template checked is still there, before the file task.
  EXPECT_EQ(editor.job()->tasks.front().name, "polarity");

  // Saved and loaded into another editor: the form shows the same task.
  ASSERT_TRUE(editor.saveFile(jobPath));
  EXPECT_TRUE(core::loadJobFile(jobPath.toStdString()).job.has_value());
  JobEditor other;
  ASSERT_TRUE(other.loadFile(jobPath, /*quiet=*/true));
  EXPECT_TRUE(other.validateNow()) << other.issueLines().join('\n').toStdString();
  EXPECT_EQ(other.taskFileForm()->nameEdit()->text(), QStringLiteral("nli"));
  EXPECT_EQ(other.taskFileForm()->fileEdit()->text(), QStringLiteral("data/pairs.tsv"));
  EXPECT_EQ(other.taskFileForm()->pairFieldEdit()->text(), QStringLiteral("h"));
  EXPECT_FALSE(other.taskFileForm()->lowerCaseBox()->isChecked());
  // A form edit in the second editor keeps the task's other keys (max_len typed in the JSON).
  QJsonObject root = QJsonDocument::fromJson(other.jsonText().toUtf8()).object();
  QJsonArray rootTasks = root.value("tasks").toArray();
  QJsonObject last = rootTasks.last().toObject();
  last["max_len"] = 20;
  rootTasks[rootTasks.size() - 1] = last;
  root["tasks"] = rootTasks;
  other.setJsonText(QString::fromUtf8(QJsonDocument(root).toJson()));
  other.taskFileForm()->formatBox()->setCurrentText(QStringLiteral("tsv"));
  ASSERT_TRUE(other.validateNow()) << other.issueLines().join('\n').toStdString();
  EXPECT_EQ(other.job()->tasks.back().maxLen, 20);
  EXPECT_EQ(other.job()->tasks.back().format, "tsv");

  // A file that is not there is an issue at the task's "file", with the resolved path.
  other.taskFileForm()->fileEdit()->setText(QStringLiteral("data/gone.tsv"));
  EXPECT_FALSE(other.validateNow());
  const QString expected = QStringLiteral("tasks[1].file: no such file '%1'").arg(dir.filePath(QStringLiteral("jobs/data/gone.tsv")));
  EXPECT_TRUE(!other.issueLines().filter(expected).isEmpty()) << other.issueLines().join('\n').toStdString();
}

TEST(TaskFileEditor, CheckDataReadsEveryRowOffTheGuiThread) {
  QTemporaryDir dir;
  const QString data = dir.filePath(QStringLiteral("rows.csv"));
  writeText(data, "text,label\none,a\ntwo,b\nthree,\nfour,a\n");
  JobEditor editor;
  ASSERT_TRUE(editor.saveFile(dir.filePath(QStringLiteral("job.json"))));
  TaskFileForm* form = editor.taskFileForm();
  form->nameEdit()->setText(QStringLiteral("rows"));
  form->fileEdit()->setText(QStringLiteral("rows.csv"));
  ASSERT_TRUE(editor.validateNow()) << editor.issueLines().join('\n').toStdString(); // the file exists

  QSignalSpy checked(form, &TaskFileForm::checked);
  form->checkButton()->click();
  EXPECT_TRUE(form->checking());
  ASSERT_TRUE(checked.wait(20000));
  EXPECT_FALSE(form->checking());
  const QStringList issues = checked.last().at(0).toStringList();
  ASSERT_EQ(issues.size(), 1) << issues.join('\n').toStdString();
  EXPECT_TRUE(issues[0].startsWith(QStringLiteral("tasks[1].file: task file '%1': line 4: field 'label'").arg(data)))
      << issues[0].toStdString();
  EXPECT_TRUE(editor.issueLines().contains(issues[0]));

  // Fixed: every row reads.
  writeText(data, "text,label\none,a\ntwo,b\nthree,b\nfour,a\n");
  form->checkButton()->click();
  ASSERT_TRUE(checked.wait(20000));
  EXPECT_TRUE(checked.last().at(0).toStringList().isEmpty());
  EXPECT_TRUE(form->statusLabel()->text().contains(QStringLiteral("every row reads")));
}

TEST(TaskFileEditor, StopCheckingStopsTheReaderWithinAPollAndShowsRowsRead) {
  QTemporaryDir dir;
  const QString data = dir.filePath(QStringLiteral("big.csv"));
  // 1,500,000 rows: far more than the reader reads between two of the GUI's looks.
  constexpr int kRows = 1500000;
  {
    QByteArray bytes = "text,label\n";
    bytes.reserve(kRows * 14);
    for (int i = 0; i < kRows; ++i) {
      bytes += i % 2 == 0 ? "good film,a\n" : "dull one,b\n";
    }
    writeText(data, bytes);
  }
  JobEditor editor;
  ASSERT_TRUE(editor.saveFile(dir.filePath(QStringLiteral("job.json"))));
  TaskFileForm* form = editor.taskFileForm();
  form->nameEdit()->setText(QStringLiteral("big"));
  form->fileEdit()->setText(QStringLiteral("big.csv"));
  ASSERT_TRUE(editor.validateNow()) << editor.issueLines().join('\n').toStdString();

  QSignalSpy checked(form, &TaskFileForm::checked);
  QSignalSpy stopped(form, &TaskFileForm::checkStopped);
  form->checkButton()->click();
  ASSERT_TRUE(form->checking());
  // The status shows the rows read while it reads.
  QTRY_VERIFY_WITH_TIMEOUT(form->statusLabel()->text().contains(QStringLiteral("rows read")), 20000);
  const std::size_t atClick = form->rowsRead();
  form->checkButton()->click(); // "Stop checking"
  EXPECT_FALSE(form->checking());
  ASSERT_TRUE(stopped.wait(20000));
  const qulonglong rows = stopped.last().at(0).toULongLong();
  EXPECT_GT(rows, 0U);
  // The reader reports, then polls the token, every 4,096 rows: it stopped at the first or
  // second report after the click, not at the end of the file.
  EXPECT_LE(rows, atClick + 2 * 4096);
  EXPECT_LT(rows, static_cast<qulonglong>(kRows) - 4096);
  EXPECT_TRUE(form->statusLabel()->text().startsWith(QStringLiteral("check stopped after"))) << form->statusLabel()->text().toStdString();
  EXPECT_EQ(checked.count(), 0); // no result reported for a stopped check
}

} // namespace
} // namespace kdscope::widgets
