// A replicated study's statistics over replicates (study_replicate_stats.h).
#include "core/study/study_replicate_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/analysis/multiple_testing.h"
#include "core/study/summary.h"

namespace kdscope::core {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<StudyMetric>& allMetrics() {
  static const std::vector<StudyMetric> metrics = {StudyMetric::Gap, StudyMetric::StudentAccuracy,
                                                   StudyMetric::Retained, StudyMetric::SourceGap};
  return metrics;
}

/// Paired t on the replicates where both are finite.
analysis::PairedComparison pairedFinite(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> x;
  std::vector<double> y;
  for (std::size_t r = 0; r < a.size() && r < b.size(); ++r) {
    if (std::isfinite(a[r]) && std::isfinite(b[r])) {
      x.push_back(a[r]);
      y.push_back(b[r]);
    }
  }
  return analysis::pairedT(x, y);
}

double mean(const std::vector<double>& values) {
  double sum = 0.0;
  std::size_t n = 0;
  for (const double v : values) {
    if (std::isfinite(v)) {
      sum += v;
      ++n;
    }
  }
  return n > 0 ? sum / static_cast<double>(n) : kNaN;
}

} // namespace

StudyRepValue studyRepValue(const std::vector<double>& values) {
  StudyRepValue v;
  v.values = values;
  std::vector<double> finite;
  for (const double x : values) {
    if (std::isfinite(x)) {
      finite.push_back(x);
    }
  }
  v.summary = analysis::summarizeReplicates(finite);
  return v;
}

const StudyRepCell* StudyReplicateStats::cell(const std::string& name, const std::string& task) const {
  for (const auto& c : cells) {
    if (c.cell == name && c.task == task) {
      return &c;
    }
  }
  return nullptr;
}

const StudyRepEffect* StudyReplicateStats::effect(const std::string& task, const std::string& metric,
                                                  const std::string& factor) const {
  for (const auto& e : effects) {
    if (e.task == task && e.metric == metric && e.factor == factor) {
      return &e;
    }
  }
  return nullptr;
}

const StudyRepSlope* StudyReplicateStats::slope(const std::string& task, const std::string& measure) const {
  for (const auto& s : slopes) {
    if (s.task == task && s.measure == measure) {
      return &s;
    }
  }
  return nullptr;
}

StudyReplicateStats studyReplicateStats(const std::vector<std::uint64_t>& seeds,
                                        const std::vector<StudySummary>& replicates) {
  StudyReplicateStats stats;
  stats.seeds = seeds;
  for (const auto seed : seeds) {
    stats.dirs.push_back("rep-" + std::to_string(seed));
  }
  if (replicates.empty()) {
    return stats;
  }
  const StudySummary& first = replicates.front();
  const std::size_t n = replicates.size();

  // Cells: each metric in each replicate (NaN where the cell is not complete there).
  for (std::size_t c = 0; c < first.cells.size(); ++c) {
    for (std::size_t t = 0; t < first.tasks.size(); ++t) {
      std::vector<double> student(n, kNaN);
      std::vector<double> teacher(n, kNaN);
      std::vector<double> gap(n, kNaN);
      std::vector<double> retained(n, kNaN);
      std::vector<double> sourceGap(n, kNaN);
      for (std::size_t r = 0; r < n; ++r) {
        if (c >= replicates[r].cells.size() || replicates[r].cells[c].status != "complete" ||
            t >= replicates[r].cells[c].tasks.size()) {
          continue;
        }
        const StudyTaskResult& x = replicates[r].cells[c].tasks[t];
        student[r] = x.studentAccuracy;
        teacher[r] = x.teacherAccuracy;
        gap[r] = x.gap;
        retained[r] = x.retained;
        sourceGap[r] = x.sourceTeacherAccuracy - x.studentAccuracy;
      }
      StudyRepCell cell;
      cell.cell = first.cells[c].name;
      cell.task = first.tasks[t];
      cell.studentAccuracy = studyRepValue(student);
      cell.teacherAccuracy = studyRepValue(teacher);
      cell.gap = studyRepValue(gap);
      cell.retained = studyRepValue(retained);
      cell.sourceGap = studyRepValue(sourceGap);
      cell.gapTest = pairedFinite(teacher, student);
      stats.cells.push_back(std::move(cell));
    }
  }

  // Effects: mainEffects in each replicate, per task and over the tasks ("").
  std::vector<std::string> tasks = first.tasks;
  tasks.push_back(""); // the mean over the tasks, as the views offer it
  for (const std::string& task : tasks) {
    for (const StudyMetric metric : allMetrics()) {
      std::vector<std::vector<FactorEffect>> perRep;
      for (const StudySummary& s : replicates) {
        perRep.push_back(mainEffects(s, task, metric));
      }
      for (std::size_t f = 0; f < first.factors.size(); ++f) {
        StudyRepEffect e;
        e.task = task;
        e.metric = toString(metric);
        e.factor = first.factors[f].name;
        e.levels = first.factors[f].levels;
        const std::size_t levels = e.levels.size();
        std::vector<std::vector<double>> levelValues(levels, std::vector<double>(n, kNaN));
        std::vector<double> effect(n, kNaN);
        std::vector<double> spread(n, kNaN);
        for (std::size_t r = 0; r < n; ++r) {
          if (f >= perRep[r].size()) {
            continue;
          }
          const FactorEffect& fe = perRep[r][f];
          for (std::size_t l = 0; l < levels && l < fe.levels.size(); ++l) {
            levelValues[l][r] = fe.levels[l].count > 0 ? fe.levels[l].mean : kNaN;
          }
          effect[r] = fe.effect;
          spread[r] = fe.spread;
        }
        for (std::size_t l = 0; l < levels; ++l) {
          e.levelMeans.push_back(studyRepValue(levelValues[l]));
        }
        e.effect = studyRepValue(effect);
        e.spread = studyRepValue(spread);
        for (std::size_t a = 0; a < levels; ++a) {
          for (std::size_t b = a + 1; b < levels; ++b) {
            StudyRepLevelPair p;
            p.first = e.levels[a];
            p.second = e.levels[b];
            for (std::size_t r = 0; r < n; ++r) {
              p.differences.push_back(levelValues[a][r] - levelValues[b][r]);
            }
            p.test = pairedFinite(levelValues[a], levelValues[b]);
            e.pairs.push_back(std::move(p));
          }
        }
        stats.effects.push_back(std::move(e));
      }
    }
  }

  // Task sensitivity: each replicate's slope per task and measure.
  for (const TaskSensitivity& s : first.sensitivity) {
    std::vector<double> slopes(n, kNaN);
    for (std::size_t r = 0; r < n; ++r) {
      for (const TaskSensitivity& x : replicates[r].sensitivity) {
        if (x.task == s.task && x.measure == s.measure) {
          slopes[r] = x.slope.estimate;
        }
      }
    }
    stats.slopes.push_back({s.task, s.measure, studyRepValue(slopes)});
  }

  // Holm families: per metric, every test on it for the single tasks (the level pairs, and
  // for the gap each cell against its teacher); the mean-over-tasks level pairs ("") are a
  // family of their own per metric.
  for (const StudyMetric metric : allMetrics()) {
    for (const bool overTasks : {false, true}) {
      analysis::HolmFamily family;
      if (metric == StudyMetric::Gap && !overTasks) {
        for (StudyRepCell& c : stats.cells) {
          family.add(c.gapTest.pValue, &c.gapHolm);
        }
      }
      for (StudyRepEffect& e : stats.effects) {
        if (e.metric == toString(metric) && e.task.empty() == overTasks) {
          for (StudyRepLevelPair& p : e.pairs) {
            family.add(p.test.pValue, &p.holm);
          }
        }
      }
      family.adjust();
    }
  }
  return stats;
}

StudySummary combineStudyReplicates(const std::vector<std::uint64_t>& seeds,
                                    const std::vector<StudySummary>& replicates) {
  StudySummary out;
  if (replicates.empty()) {
    return out;
  }
  const StudySummary& first = replicates.front();
  out.name = first.name;
  out.studentName = first.studentName;
  out.factors = first.factors;
  out.tasks = first.tasks;
  const std::string firstDir = "rep-" + std::to_string(seeds.front());
  for (std::size_t c = 0; c < first.cells.size(); ++c) {
    StudyCellResult cell;
    cell.name = first.cells[c].name;
    cell.levels = first.cells[c].levels;
    cell.runFile = firstDir + "/" + first.cells[c].runFile;
    cell.status = "complete";
    for (const StudySummary& s : replicates) {
      if (c >= s.cells.size() || s.cells[c].status != "complete") {
        cell.status = c >= s.cells.size() ? std::string("missing") : s.cells[c].status;
        break;
      }
    }
    for (std::size_t t = 0; t < first.tasks.size(); ++t) {
      StudyTaskResult task = first.cells[c].tasks[t];
      const auto over = [&](auto member) {
        std::vector<double> v;
        for (const StudySummary& s : replicates) {
          v.push_back(c < s.cells.size() && t < s.cells[c].tasks.size() ? s.cells[c].tasks[t].*member : kNaN);
        }
        return mean(v);
      };
      task.teacherAccuracy = over(&StudyTaskResult::teacherAccuracy);
      task.studentAccuracy = over(&StudyTaskResult::studentAccuracy);
      task.gap = over(&StudyTaskResult::gap);
      task.retained = over(&StudyTaskResult::retained);
      task.sourceTeacherAccuracy = over(&StudyTaskResult::sourceTeacherAccuracy);
      task.finalLoss = over(&StudyTaskResult::finalLoss);
      cell.tasks.push_back(std::move(task));
    }
    out.cells.push_back(std::move(cell));
  }
  out.replicates = studyReplicateStats(seeds, replicates);
  // Task sensitivity: the mean slope over the replicates with its t interval.
  for (const TaskSensitivity& s : first.sensitivity) {
    TaskSensitivity m = s;
    const StudyRepSlope* rep = out.replicates.slope(s.task, s.measure);
    m.slope = rep->slope.summary.interval;
    m.slope.estimate = rep->slope.summary.mean;
    m.rank = 0;
    std::vector<double> intercepts;
    for (const StudySummary& r : replicates) {
      for (const TaskSensitivity& x : r.sensitivity) {
        if (x.task == s.task && x.measure == s.measure) {
          intercepts.push_back(x.intercept);
        }
      }
    }
    m.intercept = mean(intercepts);
    for (std::size_t i = 0; i < m.retained.size(); ++i) {
      std::vector<double> v;
      for (const StudySummary& r : replicates) {
        for (const TaskSensitivity& x : r.sensitivity) {
          if (x.task == s.task && x.measure == s.measure && i < x.retained.size()) {
            v.push_back(x.retained[i]);
          }
        }
      }
      m.retained[i] = mean(v);
    }
    out.sensitivity.push_back(std::move(m));
  }
  rankTaskSensitivity(out.sensitivity);
  return out;
}

std::vector<StudyRepValue> studyGridReplicates(const StudySummary& summary, const std::string& task,
                                               const std::string& rowFactor, const std::string& colFactor,
                                               StudyMetric metric) {
  const StudyGrid grid = studyGrid(summary, task, rowFactor, colFactor, metric); // checks the factors
  return studyGridReplicates(summary, grid, task, rowFactor, colFactor, metric);
}

std::vector<StudyRepValue> studyGridReplicates(const StudySummary& summary, const StudyGrid& grid,
                                               const std::string& task, const std::string& rowFactor,
                                               const std::string& colFactor, StudyMetric metric) {
  const StudyReplicateStats& stats = summary.replicates;
  if (stats.empty()) {
    return {};
  }
  const int r = summary.factorIndex(rowFactor);
  const int c = colFactor.empty() ? -1 : summary.factorIndex(colFactor);
  const std::size_t reps = stats.seeds.size();
  const std::size_t cols = grid.colLevels.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto repValue = [&](const StudyRepCell& cell, std::size_t k) {
    const StudyRepValue* v = nullptr;
    switch (metric) {
    case StudyMetric::Gap: v = &cell.gap; break;
    case StudyMetric::StudentAccuracy: v = &cell.studentAccuracy; break;
    case StudyMetric::Retained: v = &cell.retained; break;
    case StudyMetric::SourceGap: v = &cell.sourceGap; break;
    }
    return v != nullptr && k < v->values.size() ? v->values[k] : nan;
  };
  // sum and count of each grid cell in each replicate
  std::vector<double> sum(grid.rowLevels.size() * cols * reps, 0.0);
  std::vector<std::size_t> count(sum.size(), 0);
  for (const StudyCellResult& cell : summary.cells) {
    if (cell.status != "complete") {
      continue;
    }
    const std::vector<std::string> tasks = task.empty() ? summary.tasks : std::vector<std::string>{task};
    const std::size_t at =
        cell.levels[static_cast<std::size_t>(r)] * cols + (c >= 0 ? cell.levels[static_cast<std::size_t>(c)] : 0);
    for (std::size_t k = 0; k < reps; ++k) {
      double total = 0.0;
      for (const std::string& t : tasks) {
        const StudyRepCell* rc = stats.cell(cell.name, t);
        total += rc != nullptr ? repValue(*rc, k) : nan;
      }
      const double v = tasks.empty() ? nan : total / static_cast<double>(tasks.size());
      if (std::isfinite(v)) {
        sum[at * reps + k] += v;
        ++count[at * reps + k];
      }
    }
  }
  std::vector<StudyRepValue> out;
  for (std::size_t at = 0; at < grid.mean.size(); ++at) {
    std::vector<double> values;
    for (std::size_t k = 0; k < reps; ++k) {
      values.push_back(count[at * reps + k] > 0 ? sum[at * reps + k] / static_cast<double>(count[at * reps + k]) : nan);
    }
    out.push_back(studyRepValue(values));
  }
  return out;
}

std::vector<analysis::AdjustedP> studyGridHolm(const std::vector<StudyRepValue>& grid, std::vector<double>* rawP) {
  std::vector<double> p(grid.size(), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t at = 0; at < grid.size(); ++at) {
    std::vector<double> finite;
    for (const double v : grid[at].values) {
      if (std::isfinite(v)) {
        finite.push_back(v);
      }
    }
    if (finite.size() >= 2) {
      p[at] = analysis::pairedT(finite, std::vector<double>(finite.size(), 0.0)).pValue;
    }
  }
  std::vector<analysis::AdjustedP> out(grid.size());
  analysis::HolmFamily family;
  for (std::size_t at = 0; at < grid.size(); ++at) {
    family.add(p[at], &out[at]);
  }
  family.adjust();
  if (rawP != nullptr) {
    *rawP = std::move(p);
  }
  return out;
}

} // namespace kdscope::core
