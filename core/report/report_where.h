#pragma once
/// The "where" part of a run's report (issue #14, layers and heads; docs/report.md): per task
/// and student, the CKA at matched depth with its bootstrap interval (the lowest pair in a
/// sentence, every pair in a table), the last-layer probe accuracies, the most important head
/// with its interval, and the single-head ablation: the head whose ablation lowers accuracy
/// most, with its paired bootstrap interval and the verdict words, and how many heads have a
/// detectable effect. Every number is the one `kdscope analyze` wrote (read through
/// AnalysisResults); one without an interval says why. No Qt; pure given the file.
#include <cstddef>
#include <string>

#include "core/report/report.h"

namespace kdscope::core {

class AnalysisResults;

namespace report {

/// The head's label as the figures write it: layer l, head h counted from 1 ("L1H2").
std::string headLabel(std::size_t layer, std::size_t head);

/// Appends the layer and head findings (and their table and notes) of `student` on `task` to
/// `section`; `evalExamples` is the task's eval set size (what the bootstraps are over).
void addWhere(ReportSection& section, const AnalysisResults& results, const std::string& task,
              const std::string& student, std::size_t evalExamples);

} // namespace report

} // namespace kdscope::core
