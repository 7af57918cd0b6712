// The distillation loss report of a study (report.h; docs/report.md, "Studies"): per task,
// each cell's kept fraction and its gap to the teacher, each factor's effect on the gap with
// the paired t of every pair of levels, and the task sensitivity's slopes; every finding a
// sentence with its number, its 95% interval, what the interval is over, its test (raw and
// Holm-adjusted p) and the replicates. A study run once per cell has no interval over
// replicates: its sentences say so instead of implying one.
#include <cmath>
#include <filesystem>

#include "core/analysis/interval_text.h"
#include "core/analysis/multiple_testing.h"
#include "core/common/error.h"
#include "core/report/report.h"
#include "core/study/summary.h"

namespace kdscope::core {

namespace fs = std::filesystem;
namespace an = analysis;

namespace report {


} // namespace report

namespace {

an::Interval meanInterval(const StudyRepValue& v) {
  an::Interval i = v.summary.interval;
  i.estimate = v.summary.mean;
  return i;
}

std::string levelSentence(const std::string& factor, const StudyRepLevelPair& p, const std::string& task,
                          const std::string& basis) {
  const an::Interval& d = p.test.difference;
  const std::string testText = an::pValuesText(p.test.pValue, p.holm, p.test.test + " p");
  const std::string a = factor + " " + p.first;
  const std::string b = factor + " " + p.second;
  if (an::detectable(d, an::verdictP(p.test.pValue, p.holm))) {
    const bool firstLarger = d.estimate > 0;
    return "on " + task + ", the gap with " + (firstLarger ? a : b) + " is larger than with " + (firstLarger ? b : a) +
           " by " + report::points(std::fabs(d.estimate)) + " points (95% CI " +
           report::points(firstLarger ? d.lo : -d.hi) + " to " + report::points(firstLarger ? d.hi : -d.lo) + ", " +
           testText + ", " + basis + ")";
  }
  return std::string(an::kNoDetectableDifference) + " in the gap between " + a + " and " + b + " on " + task + ": " +
         a + " minus " + b + " " + report::points(d.estimate) + " points (95% CI " + report::points(d.lo) + " to " +
         report::points(d.hi) + ", " + testText + ", " + basis + ")";
}

std::string valuesText(const std::vector<double>& values, int decimals) {
  std::string s;
  for (const double v : values) {
    s += (s.empty() ? "" : ", ") + an::numberText(v, decimals);
  }
  return s;
}

void singleRunSections(const StudySummary& s, Report& report) {
  for (const std::string& task : s.tasks) {
    ReportSection section;
    section.heading = task + ": one run per cell";
    section.notes.push_back("This study ran each cell once (no \"replicates\"), so its cells' accuracies and gaps "
                            "have no interval over replicates and no test: add \"replicates\" to the study to get "
                            "them. The numbers below are single runs.");
    ReportTable table;
    table.caption = "Each cell on " + task + " (single runs; no interval)";
    table.header = {"cell", "status", "student accuracy", "teacher accuracy", "gap (teacher - student)"};
    for (const StudyCellResult& cell : s.cells) {
      table.rows.push_back({cell.name, cell.status,
                            an::numberText(cellMetric(s, cell, task, StudyMetric::StudentAccuracy)),
                            an::numberText(cellMetric(s, cell, task, StudyMetric::StudentAccuracy) +
                                           cellMetric(s, cell, task, StudyMetric::Gap)),
                            an::numberText(cellMetric(s, cell, task, StudyMetric::Gap), 4, true)});
    }
    section.tables.push_back(std::move(table));
    report.sections.push_back(std::move(section));
  }
}

void sensitivitySection(const StudySummary& s, Report& report) {
  ReportSection section;
  section.heading = "Task sensitivity";
  const std::vector<AdjacentRankComparison> comparisons = adjacentRankComparisons(s);
  for (const std::string& measure : compressionMeasures()) {
    for (const TaskSensitivity& t : rankedSensitivity(s.sensitivity, measure)) {
      if (std::isnan(t.slope.estimate)) {
        continue;
      }
      const std::string basis = t.slope.resamples > 0
                                    ? "bootstrap over " + std::to_string(t.slope.count) + " eval examples"
                                    : "t over " + std::to_string(t.slope.count) + " replicates";
      const bool zero = std::isfinite(t.slope.lo) && t.slope.holdsZero();
      section.findings.push_back(
          "on " + t.task + ", the retained fraction's slope against the student / teacher " + measure + " ratio is " +
          report::valueWithInterval(t.slope, basis, 3) + " over " + std::to_string(t.cells) + " cells" +
          (zero ? ": its interval holds 0, no detectable slope" : ", rank " + std::to_string(t.rank) + " (1 = most sensitive)"));
    }
    // Whether adjacent ranks differ: over replicates, paired by seed; else point estimates.
    const std::string reading = rankReading(s.sensitivity, comparisons, measure, !s.replicates.empty());
    if (!reading.empty()) {
      section.findings.push_back(reading);
    }
  }
  if (!section.findings.empty()) {
    report.sections.push_back(std::move(section));
  }
}

} // namespace

Report buildStudyReport(const std::string& dir) {
  const std::string summaryPath = (fs::path(dir) / "study_summary.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(summaryPath, ec)) {
    throw InputError(summaryPath + ": no study summary (kdscope study STUDY --out " + dir + " writes it)");
  }
  const StudySummary s = readStudySummary(summaryPath);
  Report report;
  report.title = "Distillation loss report: study " + s.name;
  report.source = dir;
  report.studyDir = dir;
  const StudyReplicateStats& rep = s.replicates;
  report.preamble.push_back("Study '" + s.name + "': " + std::to_string(s.cells.size()) + " cells (" +
                            std::to_string(s.completeCells()) + " complete) on " + std::to_string(s.tasks.size()) +
                            " task(s); the student is '" + s.studentName + "'; the gap is the teacher's eval accuracy "
                            "minus the student's, in points.");
  if (rep.empty()) {
    report.preamble.push_back("One run per cell: no interval over replicates and no test for the cells or the "
                              "factors. The task sensitivity's intervals are bootstraps over eval examples.");
    singleRunSections(s, report);
    sensitivitySection(s, report);
    return report;
  }
  const std::string basis = std::to_string(rep.seeds.size()) + " replicates";
  std::string seeds;
  for (const auto seed : rep.seeds) {
    seeds += (seeds.empty() ? "" : ", ") + std::to_string(seed);
  }
  report.preamble.push_back(
      "Every cell ran " + basis + " (seeds " + seeds + "; the split fixed by the study's seed, each replicate's "
      "teacher, initialisation and batch order by its seed). Numbers are means over the replicates; each 95% CI is "
      "a Student-t interval over the replicates; tests are paired t over the replicates (the same seed on both "
      "sides). Holm p is the Holm-Bonferroni adjusted p over the family of the tests on the gap (each cell against "
      "its teacher and every pair of levels of every factor, all tasks); the verdicts use it. A difference whose "
      "interval holds 0, or whose Holm p is 0.05 or more, is written \"no detectable difference\".");
  for (const std::string& task : s.tasks) {
    ReportSection section;
    section.heading = task + ": over " + basis;
    ReportTable table;
    table.caption = "Each cell on " + task + ": mean [95% t-interval over " + basis + "], and each replicate's gap "
                    "(seed order: " + seeds + ")";
    table.header = {"cell", "student accuracy", "gap (teacher - student)", "paired t p", "Holm p", "gap per replicate"};
    for (const StudyCellResult& cell : s.cells) {
      const StudyRepCell* c = rep.cell(cell.name, task);
      if (c == nullptr) {
        continue;
      }
      section.findings.push_back("student " + cell.name + " keeps a fraction " +
                                 report::valueWithInterval(meanInterval(c->retained), basis) +
                                 " of the teacher's accuracy on " + task + ": mean accuracy " +
                                 report::valueWithInterval(meanInterval(c->studentAccuracy), basis) + " against the "
                                 "teacher's " + report::valueWithInterval(meanInterval(c->teacherAccuracy), basis));
      section.findings.push_back(report::differenceSentence("teacher", cell.name, task, c->gapTest, c->gapHolm, basis));
      table.rows.push_back({cell.name, an::intervalText(meanInterval(c->studentAccuracy)),
                            an::intervalText(meanInterval(c->gap), 4, true), an::pValueText(c->gapTest.pValue),
                            an::pValueText(c->gapHolm.p), valuesText(c->gap.values, 4)});
    }
    for (const StudyFactor& f : s.factors) {
      const StudyRepEffect* e = rep.effect(task, toString(StudyMetric::Gap), f.name);
      if (e == nullptr) {
        continue;
      }
      std::string levels;
      for (std::size_t l = 0; l < e->levels.size(); ++l) {
        levels += (levels.empty() ? "" : "; ") + f.name + " " + e->levels[l] + ": " +
                  report::points(e->levelMeans[l].summary.mean) + " points (95% CI " +
                  report::points(e->levelMeans[l].summary.interval.lo) + " to " +
                  report::points(e->levelMeans[l].summary.interval.hi) + ")";
      }
      section.findings.push_back("factor " + f.name + " on " + task + ", mean gap by level (over " + basis +
                                 "): " + levels);
      for (const StudyRepLevelPair& p : e->pairs) {
        section.findings.push_back(levelSentence(f.name, p, task, basis));
      }
    }
    section.tables.push_back(std::move(table));
    report.sections.push_back(std::move(section));
  }
  sensitivitySection(s, report);
  return report;
}

} // namespace kdscope::core
