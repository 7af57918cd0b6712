#include "core/study/task_sensitivity.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <stdexcept>

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
