#pragma once
/// The Study view's "Task sensitivity" table: per compression measure, the tasks ranked by
/// the slope of their retained fraction against the compression ratio, with the slope's 95%
/// interval and what it is over (core/study/task_sensitivity.h, docs/studies.md).

class QTableWidget;

namespace kdscope::core {
struct StudySummary;
}

namespace kdscope::widgets {

/// Columns of the table.
enum SensitivityColumn { SensMeasure, SensRank, SensTask, SensSlope, SensInterval, SensCells, SensOver, SensNext, SensColumns };

/// Sets up the table's header (once).
void setUpSensitivityTable(QTableWidget& table);
/// Fills the table from the summary's slopes: one row per task and measure, each measure's
/// tasks in rank order (steepest first); a slope whose interval holds 0 says so.
void fillSensitivityTable(QTableWidget& table, const core::StudySummary& summary);

} // namespace kdscope::widgets
