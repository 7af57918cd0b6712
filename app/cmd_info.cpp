// kdscope info RUN.h5: tasks, models, accuracies and status of a run file.
#include <CLI/CLI.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/commands.h"
#include "core/analysis/analysis_results.h"
#include "core/analysis/analyze_run.h"
#include "core/record/run_reader.h"

namespace kdscope::app {

namespace {

/// Fidelity, calibration and the knowledge levels of a task's students (core/analysis).
void printHeadlines(const core::TaskHeadline& h) {
  if (h.students.empty()) {
    return;
  }
  auto num = [](double v, int width, bool sign = false) {
    std::ostringstream out;
    if (std::isnan(v)) {
      out << "-";
    } else {
      out << std::fixed << std::setprecision(4) << (sign ? std::showpos : std::noshowpos) << v;
    }
    std::ostringstream padded;
    padded << std::setw(width) << out.str();
    return padded.str();
  };
  std::cout << "  " << std::left << std::setw(16) << "student" << std::right << std::setw(9) << "gap"
            << std::setw(10) << "retained" << std::setw(11) << "agreement" << std::setw(9) << "mean KL"
            << std::setw(9) << "ECE" << std::setw(11) << "geometry" << std::setw(9) << "w~p_y" << "\n";
  for (const auto& s : h.students) {
    std::cout << "  " << std::left << std::setw(16) << s.name << std::right << num(s.gap, 9, true)
              << num(s.retainedFraction, 10) << num(s.agreement, 11) << num(s.meanKl, 9) << num(s.ece, 9)
              << num(s.geometryAgreement, 11) << num(s.wConfidenceSpearman, 9) << "\n";
  }
  if (!h.students.empty()) {
    std::cout << "  teacher ECE " << num(h.students.front().teacherEce, 0) << "; mean KL(teacher || student) at T = 1, "
              << "geometry = correlation of classifier-weight cosines with the teacher's, w~p_y = Spearman of the "
              << "gradient rescaling weight with the teacher's confidence"
              << (h.analysed ? "" : " (run 'kdscope analyze' for geometry and w)") << "\n";
  }
  if (h.hasKnowledge && h.knowledgeStudents.size() == 4) {
    std::cout << "  knowledge levels (" << h.knowledgeStudents[0] << ", " << h.knowledgeStudents[1] << ", "
              << h.knowledgeStudents[2] << ", " << h.knowledgeStudents[3] << "): universe " << num(h.universe, 0, true)
              << ", instance " << num(h.instance, 0, true) << ", domain " << num(h.domain, 0, true)
              << " = KD gain " << num(h.total, 0, true) << " (share LS explains: " << num(h.lsShare, 0)
              << "; LS epsilon " << num(h.matchedEpsilon, 0) << ")\n";
  }
}

int commandInfo(const std::string& runPath) {
  const core::RunReader reader(runPath);
  const auto summary = reader.summary();
  const auto headlines = core::AnalysisResults(reader).headlines();
  std::cout << "run file:  " << summary.path << "\n"
            << "status:    " << summary.status
            << (summary.statusMessage.empty() ? "" : " (" + summary.statusMessage + ")") << "\n"
            << "format:    kdscope-run version " << summary.formatVersion << ", written by KDScope "
            << summary.kdscopeVersion << "\n";
  for (const auto& task : summary.tasks) {
    std::cout << "\ntask " << task.name << ": " << task.numClasses << " classes, " << task.evalExamples
              << " eval examples\n";
    std::cout << "  " << std::left << std::setw(16) << "model" << std::setw(9) << "role" << std::right
              << std::setw(12) << "parameters" << std::setw(8) << "steps" << std::setw(12) << "final loss"
              << std::setw(11) << "accuracy" << "\n";
    double teacherAcc = -1.0;
    for (const auto& m : task.models) {
      if (m.role == "teacher") {
        teacherAcc = m.evalAccuracy;
      }
      std::cout << "  " << std::left << std::setw(16) << m.name << std::setw(9) << m.role << std::right
                << std::setw(12) << m.parameterCount << std::setw(8) << m.trainSteps << std::setw(12)
                << std::fixed << std::setprecision(4) << m.finalLoss << std::setw(11);
      if (m.evalAccuracy >= 0.0) {
        std::cout << m.evalAccuracy;
      } else {
        std::cout << "-";
      }
      if (m.role == "student" && teacherAcc > 0.0 && m.evalAccuracy >= 0.0) {
        std::cout << "  (gap " << std::showpos << teacherAcc - m.evalAccuracy << std::noshowpos
                  << ", retained " << m.evalAccuracy / teacherAcc << ")";
      }
      std::cout << "\n" << std::defaultfloat;
    }
    for (const auto& h : headlines) {
      if (h.task == task.name) {
        printHeadlines(h);
      }
    }
  }
  return kExitOk;
}

} // namespace

void registerInfo(CLI::App& app, int& exitCode) {
  auto runPath = std::make_shared<std::string>();
  auto* info = app.add_subcommand("info", "Summarise a run file: tasks, models, accuracies, status");
  info->add_option("run", *runPath, "run file (.h5)")->required();
  info->callback([runPath, &exitCode]() { exitCode = guarded([&]() { return commandInfo(*runPath); }); });
}

} // namespace kdscope::app
