// kdscope info RUN.h5: tasks, models, accuracies and status of a run file.
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>

#include "app/commands.h"
#include "core/record/run_reader.h"

namespace kdscope::app {

namespace {

int commandInfo(const std::string& runPath) {
  const core::RunReader reader(runPath);
  const auto summary = reader.summary();
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
