#include "core/study/study_follow.h"

#include <fstream>
#include <sstream>

#include "core/common/error.h"

namespace kdscope::core {

namespace fs = std::filesystem;

StudyProgressCounts studyProgressCounts(const StudySummary& summary) {
  StudyProgressCounts counts;
  counts.total = summary.cells.size();
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status == "complete") {
      ++counts.complete;
    } else if (cell.status == "running") {
      ++counts.running;
    } else if (cell.status == "missing") {
      ++counts.missing;
    } else {
      ++counts.failed;
    }
  }
  return counts;
}

StudyFollower::StudyFollower(std::string outDir) : m_outDir(std::move(outDir)) {}

StudyFollower::~StudyFollower() = default;

StudySummary StudyFollower::refresh() {
  m_lastReads = 0;
  const fs::path studyPath = fs::path(m_outDir) / "study.json";
  std::error_code ec;
  FileStamp stamp;
  stamp.time = fs::last_write_time(studyPath, ec);
  if (!ec) {
    stamp.size = fs::file_size(studyPath, ec);
  }
  if (ec) {
    throw InputError(studyPath.string() +
                     ": no study here yet (kdscope study writes it when it starts; is this a study's --out folder?)");
  }
  if (!m_study || !(stamp == m_studyStamp)) {
    std::ifstream in(studyPath, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    // Relative paths resolve against the folder; the view needs none of them (only the cells).
    StudyParseResult parsed = parseStudy(text.str(), studyPath.string(), m_outDir);
    if (!parsed.study) {
      std::string message = studyPath.string() + " is not a valid study:";
      for (const JobIssue& issue : parsed.issues) {
        message += "\n  " + issue.str();
      }
      throw InputError(message);
    }
    m_study = std::make_unique<StudySpec>(std::move(*parsed.study));
    m_studyStamp = stamp;
    m_cells.clear(); // the grid may have changed
  }
  // One study's cells under `dir`; a replicated study reads each replicate's folder.
  const auto readCells = [this](const StudySpec& study, const std::string& dir, const std::string& keyPrefix) {
    StudySummary summary;
    summary.name = study.name;
    summary.studentName = study.studentName;
    summary.factors = study.factors;
    summary.tasks = study.tasks;
    for (const StudyCell& cell : study.cells) {
      const fs::path runPath = fs::path(studyCellDir(dir, cell.name)) / "run.h5";
      const std::string key = keyPrefix + cell.name;
      FileStamp cellStamp;
      std::error_code cellError;
      cellStamp.time = fs::last_write_time(runPath, cellError);
      if (!cellError) {
        cellStamp.size = fs::file_size(runPath, cellError);
      }
      const auto cached = m_cells.find(key);
      if (!cellError && cached != m_cells.end() && cached->second.stamp == cellStamp &&
          cached->second.result.status == "complete") {
        summary.cells.push_back(cached->second.result);
        continue;
      }
      StudyCellResult result = readStudyCell(study, cell, dir);
      if (!cellError) {
        ++m_lastReads;
        m_cells[key] = Cached{cellStamp, result};
      } else {
        m_cells.erase(key);
      }
      summary.cells.push_back(std::move(result));
    }
    return summary;
  };
  if (m_study->replicateSeeds.empty()) {
    return readCells(*m_study, m_outDir, "");
  }
  // The replicates' cells combined (means and intervals over the replicates so far; the
  // task sensitivity's bootstrap is left to the summary).
  std::vector<StudySummary> replicates;
  for (const auto seed : m_study->replicateSeeds) {
    replicates.push_back(readCells(studyReplicate(*m_study, seed), studyReplicateDir(m_outDir, seed),
                                   "rep-" + std::to_string(seed) + "/"));
  }
  StudySummary summary = combineStudyReplicates(m_study->replicateSeeds, replicates);
  return summary;
}

} // namespace kdscope::core
