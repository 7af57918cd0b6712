// kdscope info STUDY_DIR: a study's summary on the terminal (docs/studies.md). A replicated
// study prints every cell's mean over the replicates with its Student-t 95% interval and the
// paired t of the teacher against the student, each factor's level means, effect and spread
// with the paired t of every pair of levels, and the task sensitivity's slopes with their
// intervals over the replicates.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "app/commands.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/multiple_testing.h"
#include "core/study/summary.h"

namespace kdscope::app {

namespace {

namespace an = core::analysis;

std::string repText(const core::StudyRepValue& v, bool sign = false) {
  an::Interval i = v.summary.interval;
  i.estimate = v.summary.mean;
  return an::intervalText(i, 4, sign) + (i.count < 2 ? " (one replicate: no interval)" : "");
}

std::string verdict(const an::PairedComparison& t, const an::AdjustedP& holm, const std::string& first,
                    const std::string& second) {
  if (t.difference.count < 2) {
    return "one replicate: no test";
  }
  if (!an::detectable(t.difference, an::verdictP(t.pValue, holm))) {
    return an::kNoDetectableDifference;
  }
  return t.difference.estimate > 0 ? first + " higher" : second + " higher";
}

void printSensitivity(const core::StudySummary& s) {
  if (s.sensitivity.empty()) {
    return;
  }
  std::cout << "\ntask sensitivity (slope of retained fraction against student / teacher size; rank 1 = "
               "steepest):\n";
  const std::vector<core::AdjacentRankComparison> comparisons = core::adjacentRankComparisons(s);
  for (const std::string& measure : core::compressionMeasures()) {
    for (const core::TaskSensitivity& t : core::rankedSensitivity(s.sensitivity, measure)) {
      if (std::isnan(t.slope.estimate)) {
        continue;
      }
      std::cout << "  " << std::left << std::setw(11) << measure << std::setw(14) << t.task << std::right << "rank "
                << t.rank << "  slope " << an::intervalText(t.slope, 4, true) << " over " << t.slope.over << ", "
                << t.cells << " cells" << (t.slope.holdsZero() ? ": holds 0, no detectable slope" : "") << "\n";
    }
    // Whether adjacent ranks differ: over replicates, paired by seed; else point estimates.
    const std::string reading = core::rankReading(s.sensitivity, comparisons, measure, !s.replicates.empty());
    if (!reading.empty()) {
      std::cout << "    " << reading << "\n";
    }
  }
}

} // namespace

bool isStudyDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::is_regular_file(std::filesystem::path(path) / "study_summary.json", ec);
}

int commandStudyInfo(const std::string& dir) {
  const core::StudySummary s = core::readStudySummary((std::filesystem::path(dir) / "study_summary.json").string());
  std::cout << "study:     " << s.name << " (" << dir << "), " << s.completeCells() << " of " << s.cells.size()
            << " cells complete, " << s.tasks.size() << " task(s)\n";
  std::cout << "factors:  ";
  for (const auto& f : s.factors) {
    std::cout << " " << f.name << " {";
    for (std::size_t l = 0; l < f.levels.size(); ++l) {
      std::cout << (l ? ", " : "") << f.levels[l];
    }
    std::cout << "}";
  }
  std::cout << "\n";
  const core::StudyReplicateStats& rep = s.replicates;
  if (rep.empty()) {
    std::cout << "replicates: none (one run per cell: no interval over replicates; the task sensitivity's "
                 "interval is a bootstrap over eval examples)\n";
    for (const std::string& task : s.tasks) {
      std::cout << "\ntask " << task << "\n";
      for (const auto& cell : s.cells) {
        const double gap = core::cellMetric(s, cell, task, core::StudyMetric::Gap);
        const double acc = core::cellMetric(s, cell, task, core::StudyMetric::StudentAccuracy);
        std::cout << "  " << std::left << std::setw(24) << cell.name << std::right << " " << cell.status
                  << "  student accuracy " << an::numberText(acc) << "  gap " << an::numberText(gap, 4, true)
                  << "\n";
      }
    }
    printSensitivity(s);
    return kExitOk;
  }
  std::cout << "replicates: " << rep.seeds.size() << " (seeds";
  for (const auto seed : rep.seeds) {
    std::cout << " " << seed;
  }
  std::cout << "; each in " << dir << "/rep-<seed>)\n"
            << "intervals: mean [95% Student-t interval over " << rep.seeds.size()
            << " replicates]; tests: paired t over the replicates (the same seed on both sides); Holm p: "
               "Holm-Bonferroni over the family of the tests on that metric (the verdicts use it)\n";
  for (const std::string& task : s.tasks) {
    std::cout << "\ntask " << task << "\n";
    for (const auto& cell : s.cells) {
      const core::StudyRepCell* c = rep.cell(cell.name, task);
      if (c == nullptr) {
        continue;
      }
      std::cout << "  " << cell.name << " (" << cell.status << "): student accuracy " << repText(c->studentAccuracy)
                << "; teacher " << repText(c->teacherAccuracy) << "; retained " << repText(c->retained) << "\n"
                << "    gap (teacher - student) " << repText(c->gap, true) << ", "
                << an::pValuesText(c->gapTest.pValue, c->gapHolm, "paired t p") << ": "
                << verdict(c->gapTest, c->gapHolm, "teacher", "student") << "\n";
    }
    for (const auto& f : s.factors) {
      const core::StudyRepEffect* e = rep.effect(task, "gap", f.name);
      if (e == nullptr) {
        continue;
      }
      std::cout << "  factor " << f.name << " on the gap: effect (max - min of level means) " << repText(e->effect)
                << ", spread " << repText(e->spread) << "\n";
      for (std::size_t l = 0; l < e->levels.size(); ++l) {
        std::cout << "    level " << std::left << std::setw(10) << e->levels[l] << std::right << " mean gap "
                  << repText(e->levelMeans[l], true) << "\n";
      }
      for (const auto& p : e->pairs) {
        std::cout << "    " << f.name << " " << p.first << " - " << p.second << ": "
                  << an::intervalText(p.test.difference, 4, true) << ", " << an::pValuesText(p.test.pValue, p.holm, "paired t p")
                  << " (" << p.test.difference.count << " replicates): "
                  << verdict(p.test, p.holm, f.name + " " + p.first, f.name + " " + p.second) << "\n";
      }
    }
  }
  printSensitivity(s);
  return kExitOk;
}

} // namespace kdscope::app
