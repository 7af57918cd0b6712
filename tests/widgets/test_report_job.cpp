// File > Report... (widgets/report/report_job.h): on the small hand-worked run of
// test_run_file.cpp, analysed ("task"), the window's report writes a self-contained HTML page
// (no external reference; the export's figures as inline SVG; the same sentences core builds)
// and a PDF; cancelling it ends with "cancelled" and no page; a missing run is an error that
// names the file.
#include <QAction>
#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include "core/analysis/analyze_run.h"
#include "core/report/report.h"
#include "test_run_file.h"
#include "widgets/report/report_job.h"
#include "widgets/shell/main_window.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

class ReportJobTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(m_dir.isValid());
    m_run = m_dir.filePath(QStringLiteral("run.h5"));
    test::writeSmallRun(m_run, false);
    core::AnalyzeOptions options;
    options.only = {"task"};
    const auto result = core::analyzeRun(m_run.toStdString(), options, core::CancelToken{}, {});
    ASSERT_EQ(result.status, core::AnalyzeStatus::Succeeded) << result.message;
  }
  static QByteArray readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
  }
  QTemporaryDir m_dir;
  QString m_run;
};

} // namespace

TEST_F(ReportJobTest, WindowWritesTheHtmlAndPdf) {
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  ASSERT_NE(window.findChild<QAction*>(QStringLiteral("reportAction")), nullptr);
  const QString out = m_dir.filePath(QStringLiteral("report"));
  QSignalSpy done(&window, &MainWindow::reportWritten);
  ASSERT_NE(window.writeReport(m_run, out), nullptr);
  ASSERT_TRUE(done.wait(60000));
  EXPECT_EQ(done.at(0).at(1).toString(), QString());
  const QByteArray html = readAll(out + QStringLiteral("/report.html"));
  ASSERT_FALSE(html.isEmpty());
  EXPECT_TRUE(html.contains("<svg"));          // figures inline
  EXPECT_FALSE(html.contains("<img"));         // nothing loaded from a file
  EXPECT_FALSE(html.contains("<link"));
  // Every finding core builds for this run is on the page (HTML-escaped only for &, <, >, ").
  const core::Report report = core::buildReport(m_run.toStdString());
  for (const auto& section : report.sections) {
    for (const auto& finding : section.findings) {
      QString escaped = QString::fromStdString(finding).toHtmlEscaped();
      EXPECT_TRUE(html.contains(escaped.toUtf8())) << finding;
    }
  }
  EXPECT_TRUE(readAll(out + QStringLiteral("/report.pdf")).startsWith("%PDF"));
}

TEST_F(ReportJobTest, CancelEndsWithoutAPageAndAMissingRunIsNamed) {
  const QString out = m_dir.filePath(QStringLiteral("cancelled"));
  ReportJob job(m_run, out);
  QString error = QStringLiteral("not finished");
  QObject::connect(&job, &ReportJob::finished, [&error](const ReportFiles&, const QString& e) { error = e; });
  QSignalSpy done(&job, &ReportJob::finished);
  job.start();
  job.cancel();
  ASSERT_TRUE(done.wait(60000));
  EXPECT_EQ(error, QStringLiteral("cancelled"));
  EXPECT_FALSE(QFile::exists(out + QStringLiteral("/report.html")));

  ReportJob missing(m_dir.filePath(QStringLiteral("nope.h5")), out);
  QObject::connect(&missing, &ReportJob::finished, [&error](const ReportFiles&, const QString& e) { error = e; });
  QSignalSpy failed(&missing, &ReportJob::finished);
  missing.start();
  ASSERT_TRUE(failed.wait(60000));
  EXPECT_TRUE(error.contains(QStringLiteral("nope.h5"))) << error.toStdString();
}

// A replicate folder's report also holds the replicates' own figures: each model's accuracy
// and eval curve as the mean with its t interval over the replicates (compare.replicates.*).
TEST(ReportJob, AReplicateFolderReportShowsTheReplicatesMeanWithItsInterval) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const std::vector<int> seeds{11, 12, 13};
  for (std::size_t v = 0; v < seeds.size(); ++v) {
    const QString folder = dir.filePath(QStringLiteral("rep-%1").arg(seeds[v]));
    ASSERT_TRUE(QDir().mkpath(folder));
    const QString run = folder + QStringLiteral("/run.h5");
    test::writeSmallRun(run, false, static_cast<int>(v), static_cast<std::uint64_t>(seeds[v]));
    core::AnalyzeOptions options;
    options.only = {"task"};
    ASSERT_EQ(core::analyzeRun(run.toStdString(), options, core::CancelToken{}, {}).status,
              core::AnalyzeStatus::Succeeded);
  }
  QFile manifest(dir.filePath(QStringLiteral("replicates.json")));
  ASSERT_TRUE(manifest.open(QIODevice::WriteOnly));
  manifest.write(R"({"format": "kdscope-replicates", "format_version": 1, "job_name": "small", "seeds": [11, 12, 13],
                     "runs": ["rep-11/run.h5", "rep-12/run.h5", "rep-13/run.h5"]})");
  manifest.close();
  MainWindow window([](const core::JobSpec&, const core::RunOptions&, const core::CancelToken&,
                       const core::ProgressSink&) { return core::JobResult{}; });
  const QString out = dir.filePath(QStringLiteral("report"));
  QSignalSpy done(&window, &MainWindow::reportWritten);
  ASSERT_NE(window.writeReport(dir.path(), out), nullptr);
  ASSERT_TRUE(done.wait(60000));
  EXPECT_EQ(done.at(0).at(1).toString(), QString());
  for (const char* name : {"compare.replicates.accuracy.polarity", "compare.replicates.eval_curve.polarity.teacher"}) {
    EXPECT_TRUE(QFile::exists(out + QStringLiteral("/figures/%1.svg").arg(QLatin1String(name)))) << name;
  }
  QFile html(out + QStringLiteral("/report.html"));
  ASSERT_TRUE(html.open(QIODevice::ReadOnly));
  EXPECT_TRUE(html.readAll().contains("95% Student-t interval over them"));
}
