#pragma once
/// Follows a study while other processes (a Slurm array's tasks, on this machine or others
/// sharing the folder) write its cells: the study's cells from OUT/study.json, each cell's
/// state and results from its run file, re-read only when the file changed. The window's
/// Study tab polls it off the GUI thread (docs/studies.md, "Following a study"). No torch or Qt.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/study/study_spec.h"
#include "core/study/summary.h"

namespace kdscope::core {

/// How many cells are where, from a summary's cell statuses.
struct StudyProgressCounts {
  std::size_t total = 0;
  std::size_t complete = 0;
  std::size_t running = 0; ///< "running": being written, or left running by a process that died
  std::size_t failed = 0;  ///< "failed", "cancelled" or "unreadable"
  std::size_t missing = 0; ///< not started
};
StudyProgressCounts studyProgressCounts(const StudySummary& summary);

class StudyFollower {
public:
  /// `outDir`: the study's output folder (it holds study.json, written by every kdscope study
  /// call that runs a unit).
  explicit StudyFollower(std::string outDir);
  ~StudyFollower();
  StudyFollower(const StudyFollower&) = delete;
  StudyFollower& operator=(const StudyFollower&) = delete;

  /// The summary of what is on disk now, as buildStudySummary reads it: OUT/study.json is
  /// parsed again when it changed, and a cell's run file is read again unless it was complete
  /// and its size and modification time are unchanged. Throws InputError naming OUT/study.json
  /// when it is missing or not a valid study.
  StudySummary refresh();

  [[nodiscard]] const std::string& outDir() const { return m_outDir; }
  /// Run files the last refresh() looked at again (the others were absent or came from the cache).
  [[nodiscard]] std::size_t lastReads() const { return m_lastReads; }

private:
  struct FileStamp {
    std::filesystem::file_time_type time{};
    std::uintmax_t size = 0;
    bool operator==(const FileStamp& o) const { return time == o.time && size == o.size; }
  };
  struct Cached {
    FileStamp stamp;
    StudyCellResult result;
  };

  std::string m_outDir;
  std::unique_ptr<StudySpec> m_study;
  FileStamp m_studyStamp;
  std::map<std::string, Cached> m_cells; ///< by cell name
  std::size_t m_lastReads = 0;
};

} // namespace kdscope::core
