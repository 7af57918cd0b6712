#pragma once
/// A small run file written with core::RunWriter, with values chosen so every number a view
/// shows can be worked out by hand (see the comments in test_run_file.cpp).

#include <QString>

#include <cstdint>

#include <ostream>

namespace kdscope::widgets::test {

/// Writes the run file; with `withAnalysis` it also holds /tasks/polarity/analysis/...
/// `variant` 1 is a second run for comparisons: the same models and logits, other training
/// losses and eval curves (each loss + 0.1, each eval accuracy - 0.05). `variant` 2: each loss
/// + 0.2, each eval accuracy + 0.1, and kd right on example 0 too (accuracy 4/6 instead of
/// 3/6). `replicateSeed` > 0 records it in the job ({"name":"small","replicate_seed":N}):
/// runs differing only in it are replicates of one job.
void writeSmallRun(const QString& path, bool withAnalysis = false, int variant = 0, std::uint64_t replicateSeed = 0);

/// A hand-made study in `dir` (test_study_export.cpp says its numbers): study_summary.json
/// with layers {1, 2} x heads {1, 2} on task "t", and a small run file per cell.
void writeHandStudy(const QString& dir);

/// ln 3: the entropy of a row uniform over 3 keys.
inline constexpr double kLn3 = 1.0986122886681098;
/// JS(one-hot, uniform over 3) = 0.5 ln 1.5 + ln 2 / 6.
inline constexpr double kJsOneHotUniform3 = 0.31825708340227;

} // namespace kdscope::widgets::test

/// Readable QStrings in GoogleTest's failure messages.
inline void PrintTo(const QString& text, std::ostream* os) { *os << '"' << text.toStdString() << '"'; }
