#include "core/study/task_sensitivity.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <stdexcept>

#include "core/analysis/interval_text.h"
#include "core/analysis/metrics.h"
#include "core/record/run_reader.h"
#include "core/study/study_spec.h"
#include "core/study/summary.h"

namespace kdscope::core {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The ratio of a cell for a measure.
double ratioOf(const SensitivityCell& cell, const std::string& measure) {
  if (measure == kMeasureParameters) {
    return cell.parameterRatio;
  }
  if (measure == kMeasureLayers) {
    return cell.layerRatio;
  }
  return cell.headRatio;
}

double layerCount(const ArchitectureSpec& a) {
  return a.type == "mlp" ? static_cast<double>(a.hidden.size()) : static_cast<double>(a.layers);
}

double headCount(const ArchitectureSpec& a) { return a.type == "mlp" ? kNaN : static_cast<double>(a.heads); }

} // namespace

SlopeFit leastSquaresSlope(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) {
    throw std::invalid_argument("leastSquaresSlope: x has " + std::to_string(x.size()) + " values, y " +
                                std::to_string(y.size()));
  }
  const std::size_t n = x.size();
  if (n < 2) {
    return {kNaN, kNaN};
  }
  double mx = 0.0;
  double my = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0.0;
  double sxx = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  if (!(sxx > 0.0)) {
    return {kNaN, kNaN};
  }
  const double slope = sxy / sxx;
  return {slope, my - slope * mx};
}

const std::vector<std::string>& compressionMeasures() {
  static const std::vector<std::string> measures{kMeasureParameters, kMeasureLayers, kMeasureHeads};
  return measures;
}

std::vector<TaskSensitivity> taskSensitivity(const std::string& task, const std::vector<SensitivityCell>& cells,
                                             const analysis::BootstrapOptions& options) {
  const std::size_t n = cells.empty() ? 0 : cells.front().studentCorrect.size();
  for (const SensitivityCell& c : cells) {
    if (c.studentCorrect.size() != n || c.teacherCorrect.size() != n) {
      throw std::invalid_argument("taskSensitivity: task '" + task + "': cell '" + c.cell + "' has " +
                                  std::to_string(c.studentCorrect.size()) + " student and " +
                                  std::to_string(c.teacherCorrect.size()) + " teacher eval examples, expected " +
                                  std::to_string(n));
    }
  }
  std::vector<TaskSensitivity> out;
  for (const std::string& measure : compressionMeasures()) {
    TaskSensitivity s;
    s.task = task;
    s.measure = measure;
    std::vector<const SensitivityCell*> used;
    for (const SensitivityCell& c : cells) {
      if (std::isfinite(ratioOf(c, measure))) {
        used.push_back(&c);
      }
    }
    s.cells = used.size();
    // Retained fraction of each cell on the examples at `indices` (a resample, with repeats).
    const auto fit = [&](const std::vector<std::uint32_t>& indices, std::vector<double>* ratios,
                         std::vector<double>* retained) {
      std::vector<double> x;
      std::vector<double> y;
      for (const SensitivityCell* c : used) {
        double student = 0.0;
        double teacher = 0.0;
        for (const std::uint32_t i : indices) {
          student += c->studentCorrect[i];
          teacher += c->teacherCorrect[i];
        }
        x.push_back(ratioOf(*c, measure));
        y.push_back(teacher > 0.0 ? student / teacher : kNaN);
      }
      if (ratios != nullptr) {
        *ratios = x;
        *retained = y;
      }
      if (std::any_of(y.begin(), y.end(), [](double v) { return std::isnan(v); })) {
        return SlopeFit{kNaN, kNaN};
      }
      return leastSquaresSlope(x, y);
    };
    std::vector<std::uint32_t> all(n);
    for (std::size_t i = 0; i < n; ++i) {
      all[i] = static_cast<std::uint32_t>(i);
    }
    const SlopeFit observed = fit(all, &s.ratios, &s.retained);
    s.intercept = observed.intercept;
    if (std::isnan(observed.slope) || n == 0) {
      s.slope.estimate = kNaN;
      s.slope.lo = kNaN;
      s.slope.hi = kNaN;
      s.slope.over = analysis::kOverExamples;
      s.slope.level = options.level;
      s.slope.count = n;
    } else {
      s.slope = analysis::bootstrapInterval(
          n, [&](const std::vector<std::uint32_t>& indices) { return fit(indices, nullptr, nullptr).slope; }, options);
      s.slope.estimate = observed.slope; // the fit on the data as observed
    }
    out.push_back(std::move(s));
  }
  return out;
}

void rankTaskSensitivity(std::vector<TaskSensitivity>& slopes) {
  for (const std::string& measure : compressionMeasures()) {
    std::vector<TaskSensitivity*> finite;
    for (TaskSensitivity& s : slopes) {
      s.rank = s.measure == measure ? 0 : s.rank;
      if (s.measure == measure && std::isfinite(s.slope.estimate)) {
        finite.push_back(&s);
      }
    }
    std::stable_sort(finite.begin(), finite.end(), [](const TaskSensitivity* a, const TaskSensitivity* b) {
      return a->slope.estimate > b->slope.estimate;
    });
    for (std::size_t i = 0; i < finite.size(); ++i) {
      finite[i]->rank = static_cast<int>(i + 1);
    }
  }
}

std::vector<TaskSensitivity> rankedSensitivity(const std::vector<TaskSensitivity>& slopes, const std::string& measure) {
  std::vector<TaskSensitivity> out;
  for (const TaskSensitivity& s : slopes) {
    if (s.measure == measure) {
      out.push_back(s);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const TaskSensitivity& a, const TaskSensitivity& b) {
    const int ra = a.rank > 0 ? a.rank : std::numeric_limits<int>::max();
    const int rb = b.rank > 0 ? b.rank : std::numeric_limits<int>::max();
    return ra < rb;
  });
  return out;
}

std::vector<TaskSensitivity> studyTaskSensitivity(const StudySpec& study, const StudySummary& summary,
                                                  const std::string& outDir,
                                                  const analysis::BootstrapOptions& options) {
  std::map<std::string, std::vector<SensitivityCell>> byTask;
  for (std::size_t c = 0; c < summary.cells.size() && c < study.cells.size(); ++c) {
    const StudyCellResult& result = summary.cells[c];
    const StudyCell& cell = study.cells[c];
    if (result.status != "complete" || cell.name != result.name) {
      continue;
    }
    const auto student = std::find_if(cell.job.students.begin(), cell.job.students.end(),
                                      [&](const StudentSpec& s) { return s.name == study.studentName; });
    if (student == cell.job.students.end()) {
      continue;
    }
    const ArchitectureSpec& ta = cell.job.teacher.architecture;
    const ArchitectureSpec& sa = student->architecture;
    try {
      const RunReader reader((fs::path(outDir) / result.runFile).string());
      const RunSummary run = reader.summary();
      for (const TaskSummary& task : run.tasks) {
        const auto teacher = std::find_if(task.models.begin(), task.models.end(),
                                          [](const ModelSummary& m) { return m.role == "teacher"; });
        const auto model = std::find_if(task.models.begin(), task.models.end(),
                                        [&](const ModelSummary& m) { return m.name == study.studentName; });
        if (teacher == task.models.end() || model == task.models.end() || teacher->evalAccuracy < 0.0 ||
            model->evalAccuracy < 0.0) {
          continue;
        }
        const auto classes = static_cast<std::size_t>(task.numClasses);
        const std::vector<std::int64_t> labels = reader.evalLabels(task.name);
        const auto teacherPred = analysis::predictions(reader.evalLogits(task.name, teacher->name), classes);
        const auto studentPred = analysis::predictions(reader.evalLogits(task.name, model->name), classes);
        SensitivityCell s;
        s.cell = cell.name;
        s.parameterRatio = teacher->parameterCount > 0 ? static_cast<double>(model->parameterCount) /
                                                             static_cast<double>(teacher->parameterCount)
                                                       : kNaN;
        s.layerRatio = layerCount(ta) > 0 ? layerCount(sa) / layerCount(ta) : kNaN;
        s.headRatio = headCount(ta) > 0 ? headCount(sa) / headCount(ta) : kNaN;
        for (std::size_t i = 0; i < labels.size(); ++i) {
          s.teacherCorrect.push_back(teacherPred[i] == labels[i] ? 1 : 0);
          s.studentCorrect.push_back(studentPred[i] == labels[i] ? 1 : 0);
        }
        byTask[task.name].push_back(std::move(s));
      }
    } catch (const std::exception&) {
      continue; // the cell's status in the summary says what is wrong with its file
    }
  }
  std::vector<TaskSensitivity> out;
  for (const std::string& task : summary.tasks) {
    const auto cells = byTask.find(task);
    if (cells == byTask.end() || cells->second.size() < 2) {
      continue;
    }
    try {
      for (TaskSensitivity& s : taskSensitivity(task, cells->second, options)) {
        out.push_back(std::move(s));
      }
    } catch (const std::invalid_argument&) {
      continue; // cells with different eval sets: no paired resample (docs/studies.md)
    }
  }
  rankTaskSensitivity(out);
  return out;
}

} // namespace kdscope::core

namespace kdscope::core {

std::vector<AdjacentRankComparison> adjacentRankComparisons(const std::vector<TaskSensitivity>& slopes,
                                                            const std::vector<ReplicateSlopes>& perReplicate) {
  std::vector<AdjacentRankComparison> out;
  if (perReplicate.empty()) {
    return out;
  }
  const std::size_t replicates = perReplicate.front().values.size();
  for (const ReplicateSlopes& r : perReplicate) {
    if (r.values.size() != replicates) {
      throw std::invalid_argument("adjacentRankComparisons: task '" + r.task + "' (" + r.measure + ") has " +
                                  std::to_string(r.values.size()) + " replicate slopes, expected " +
                                  std::to_string(replicates));
    }
  }
  const auto valuesOf = [&](const std::string& task, const std::string& measure) -> const std::vector<double>* {
    for (const ReplicateSlopes& r : perReplicate) {
      if (r.task == task && r.measure == measure) {
        return &r.values;
      }
    }
    return nullptr;
  };
  for (const std::string& measure : compressionMeasures()) {
    const std::vector<TaskSensitivity> ranked = rankedSensitivity(slopes, measure);
    const std::size_t first = out.size();
    for (std::size_t k = 0; k + 1 < ranked.size(); ++k) {
      const TaskSensitivity& a = ranked[k];
      const TaskSensitivity& b = ranked[k + 1];
      if (a.rank <= 0 || b.rank <= 0) {
        break; // unranked (NaN) slopes come last
      }
      const std::vector<double>* va = valuesOf(a.task, measure);
      const std::vector<double>* vb = valuesOf(b.task, measure);
      if (va == nullptr || vb == nullptr) {
        continue;
      }
      // The replicates with both slopes: each seed is one pair.
      std::vector<double> x;
      std::vector<double> y;
      for (std::size_t r = 0; r < replicates; ++r) {
        if (std::isfinite((*va)[r]) && std::isfinite((*vb)[r])) {
          x.push_back((*va)[r]);
          y.push_back((*vb)[r]);
        }
      }
      AdjacentRankComparison c;
      c.measure = measure;
      c.rank = a.rank;
      c.steeper = a.task;
      c.next = b.task;
      c.difference = analysis::pairedT(x, y);
      out.push_back(std::move(c));
    }
    // Holm over the measure's adjacent comparisons.
    std::vector<double> raw;
    for (std::size_t i = first; i < out.size(); ++i) {
      raw.push_back(out[i].difference.pValue);
    }
    const std::vector<double> adjusted = analysis::holmAdjust(raw);
    const auto family =
        static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), [](double p) { return std::isfinite(p); }));
    for (std::size_t i = first; i < out.size(); ++i) {
      AdjacentRankComparison& c = out[i];
      c.holm.p = adjusted[i - first];
      c.holm.family = std::isfinite(c.holm.p) ? family : 0;
      const analysis::Interval& d = c.difference.difference;
      c.distinguishable = std::isfinite(d.lo) && std::isfinite(d.hi) && !d.holdsZero() &&
                          analysis::verdictP(c.difference.pValue, c.holm) < 0.05;
    }
  }
  return out;
}

std::vector<AdjacentRankComparison> adjacentRankComparisons(const StudySummary& summary) {
  std::vector<ReplicateSlopes> perReplicate;
  for (const StudyRepSlope& s : summary.replicates.slopes) {
    perReplicate.push_back({s.task, s.measure, s.slope.values});
  }
  return adjacentRankComparisons(summary.sensitivity, perReplicate);
}

std::string rankReading(const std::vector<TaskSensitivity>& slopes,
                        const std::vector<AdjacentRankComparison>& comparisons, const std::string& measure,
                        bool replicated) {
  const std::vector<TaskSensitivity> ranked = rankedSensitivity(slopes, measure);
  const auto rankedCount = std::count_if(ranked.begin(), ranked.end(), [](const TaskSensitivity& t) { return t.rank > 0; });
  if (rankedCount < 2) {
    return {};
  }
  if (!replicated) {
    return "the ranks on the " + measure +
           " ratio are point estimates: each task's slope has its own interval over its own eval examples, but "
           "the tasks do not share examples, so no paired test says whether adjacent ranks differ (replicates of "
           "the study give each adjacent pair's difference an interval over seeds)";
  }
  std::string out;
  for (const AdjacentRankComparison& c : comparisons) {
    if (c.measure != measure) {
      continue;
    }
    const analysis::Interval& d = c.difference.difference;
    const std::string pair = "rank " + std::to_string(c.rank) + " (" + c.steeper + ") and rank " +
                             std::to_string(c.rank + 1) + " (" + c.next + ")";
    const std::string numbers = "slope difference " + analysis::intervalText(d, 3, true) + " over " +
                                std::to_string(d.count) + " replicates, " +
                                analysis::pValuesText(c.difference.pValue, c.holm, "paired t p");
    out += (out.empty() ? std::string() : "; ") + pair + ": " +
           (c.distinguishable ? "distinguishable, " + numbers
                              : std::string(analysis::kNoDetectableDifference) + ", " + numbers);
  }
  if (out.empty()) {
    return "the ranks on the " + measure +
           " ratio are point estimates: no two adjacent tasks have slopes in the same replicates";
  }
  return "the ranks on the " + measure + " ratio against the next rank, paired by replicate: " + out;
}

} // namespace kdscope::core
