// Cancel inside the task-file reader (issue #13): the reader reports progress every few
// thousand rows and checks the cancel token there, so a huge file's read stops early. No
// timing: the token is set from the progress report itself, and the tests count rows.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/common/cancel.h"
#include "core/data/dataset_file.h"
#include "core/engine/run_job.h"
#include "core/job/job_spec.h"
#include "tests/core/test_support.h"

namespace kdscope {
namespace {

namespace fs = std::filesystem;

/// A CSV of `rows` rows "text,label" (two classes) and its path.
std::string writeRows(const test::TempDir& dir, std::size_t rows) {
  const std::string path = dir.file("big.csv");
  std::ofstream out(path);
  out << "text,label\n";
  for (std::size_t i = 0; i < rows; ++i) {
    out << "row number " << i << (i % 2 == 0 ? " good,pos\n" : " bad,neg\n");
  }
  return path;
}

TEST(TaskFileCancel, ReaderStopsAtTheCheckAfterTheTokenIsSet) {
  const test::TempDir dir("cancel_read");
  constexpr std::size_t kRows = 50000;
  core::TaskFileSpec spec;
  spec.path = writeRows(dir, kRows);
  spec.textField = "text";

  // Uncancelled: every row, with a report at each multiple of 4096 (12 of them below 50,000).
  std::vector<std::size_t> reports;
  core::TaskReadControl control;
  control.progress = [&](std::size_t rows, const std::string& path) {
    EXPECT_EQ(path, spec.path);
    reports.push_back(rows);
  };
  const core::TaskFile whole = core::loadTaskFile(spec, control);
  EXPECT_EQ(whole.raw.labels.size(), kRows);
  ASSERT_EQ(reports.size(), kRows / 4096);
  EXPECT_EQ(reports.front(), 4096u);
  EXPECT_EQ(reports.back(), 12u * 4096u);

  // Cancelled from the second report: the read stops right there, at row 8,192 of 50,000.
  reports.clear();
  const core::CancelToken cancel;
  control.cancel = &cancel;
  control.progress = [&](std::size_t rows, const std::string&) {
    reports.push_back(rows);
    if (rows >= 8192) {
      cancel.cancel();
    }
  };
  EXPECT_THROW((void)core::loadTaskFile(spec, control), core::Cancelled);
  EXPECT_EQ(reports, (std::vector<std::size_t>{4096, 8192}));
}

TEST(TaskFileCancel, RunJobCancelledWhileReadingRecordsNothingComplete) {
  const test::TempDir dir("cancel_job");
  constexpr std::size_t kRows = 200000;
  const std::string data = writeRows(dir, kRows);
  core::JobSpec job;
  job.name = "cancel-read";
  core::TaskSpec task;
  task.name = "big";
  task.file = data;
  task.textField = "text";
  task.maxLen = 8;
  job.tasks = {task};
  core::StudentSpec student;
  student.name = "s";
  job.students = {student};

  core::RunOptions options;
  options.outDir = dir.file("out");
  const core::CancelToken cancel;
  std::vector<std::string> reading;
  const core::JobResult result = core::runJob(job, options, cancel, [&](const core::ProgressEvent& e) {
    if (e.message.rfind("reading '", 0) == 0) {
      reading.push_back(e.message);
      cancel.cancel(); // at the first report, 65,536 rows in
    }
  });
  EXPECT_EQ(result.status, core::JobStatus::Cancelled) << result.message;
  // One report only: the reader stopped at the check where it saw the token (without the
  // check inside the reader it would have gone on to 131,072 and 196,608 rows).
  ASSERT_EQ(reading.size(), 1u);
  EXPECT_NE(reading[0].find(": 65536 rows"), std::string::npos) << reading[0];
  // Nothing recorded as complete: the run file is created only after every task is read.
  EXPECT_FALSE(fs::exists(dir.file("out/run.h5")));
}

} // namespace
} // namespace kdscope
