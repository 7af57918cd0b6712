// AnalysisResults: the intervals the knowledge pass writes beside its headline attributes
// (`<name>`, `<name>_lo`, `<name>_hi`, `<name>_interval`; docs/run-format.md).
#include <string>
#include <utility>

#include "core/analysis/analysis_results.h"
#include "core/analysis/stats.h"
#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

std::optional<analysis::Interval> AnalysisResults::numberInterval(const std::string& task, const std::string& who,
                                                                  const std::string& name) const {
  const auto estimate = number(task, who, name);
  const auto lo = number(task, who, name + "_lo");
  const auto hi = number(task, who, name + "_hi");
  if (!estimate || !lo || !hi) {
    return std::nullopt;
  }
  analysis::Interval out;
  out.estimate = *estimate;
  out.lo = *lo;
  out.hi = *hi;
  out.over = analysis::kOverExamples;
  out.level = 0.95;
  // The group's bootstrap settings are in the description attribute; B as the analysis ran it.
  const H5File& f = m_reader.file();
  const std::string g = layout::analysisOf(task, who);
  if (f.hasAttr(g, name + "_interval")) {
    const std::string text = f.attrString(g, name + "_interval");
    const auto b = text.find("B = ");
    if (b != std::string::npos) {
      out.resamples = std::stoi(text.substr(b + 4));
    }
  }
  return out;
}

std::optional<std::pair<analysis::Matrix, analysis::Matrix>>
AnalysisResults::headImportanceInterval(const std::string& task, const std::string& model) const {
  auto lo = matrix(task, model, layout::entry::kHeadImportanceLo);
  auto hi = matrix(task, model, layout::entry::kHeadImportanceHi);
  if (!lo || !hi) {
    return std::nullopt;
  }
  return std::make_pair(std::move(*lo), std::move(*hi));
}

int AnalysisResults::headImportanceResamples(const std::string& task, const std::string& model) const {
  const H5File& f = m_reader.file();
  const std::string lo = layout::analysisEntry(task, model, layout::entry::kHeadImportanceLo);
  if (!f.isDataset(lo) || !f.hasAttr(lo, "resamples")) {
    return 0;
  }
  return static_cast<int>(f.attrInt(lo, "resamples"));
}

std::optional<analysis::RunnerUp> AnalysisResults::runnerUp(const std::string& task, const std::string& model,
                                                           const std::string& entry) const {
  const H5File& f = m_reader.file();
  const std::string path = layout::analysisEntry(task, model, entry);
  if (!f.exists(path) || !f.hasAttr(path, "runner_up_index")) {
    return std::nullopt;
  }
  for (const char* name : {"extreme_index", "runner_up_difference", "runner_up_difference_lo",
                           "runner_up_difference_hi", "runner_up_resamples"}) {
    if (!f.hasAttr(path, name)) {
      throw InputError(f.path() + ": " + path + ": has attribute 'runner_up_index' but not '" + name + "'");
    }
  }
  const std::int64_t first = f.attrInt(path, "extreme_index");
  const std::int64_t second = f.attrInt(path, "runner_up_index");
  if (first < 0 || second < 0 || first == second) {
    throw InputError(f.path() + ": " + path + ": attributes 'extreme_index' (" + std::to_string(first) +
                     ") and 'runner_up_index' (" + std::to_string(second) + ") are not two cells");
  }
  analysis::RunnerUp out;
  out.first = static_cast<std::size_t>(first);
  out.second = static_cast<std::size_t>(second);
  out.difference.estimate = f.attrDouble(path, "runner_up_difference");
  out.difference.lo = f.attrDouble(path, "runner_up_difference_lo");
  out.difference.hi = f.attrDouble(path, "runner_up_difference_hi");
  out.difference.resamples = static_cast<int>(f.attrInt(path, "runner_up_resamples"));
  out.difference.over = analysis::kOverSameResamples;
  out.difference.level = 0.95;
  return out;
}

std::optional<MatchedCka> AnalysisResults::matchedCka(const std::string& task, const std::string& student) const {
  namespace entry = layout::entry;
  const auto value = vector(task, student, entry::kCkaMatched);
  const auto lo = vector(task, student, entry::kCkaMatchedLo);
  const auto hi = vector(task, student, entry::kCkaMatchedHi);
  const H5File& f = m_reader.file();
  const std::string layerPath = layout::analysisEntry(task, student, entry::kCkaMatchedTeacherLayer);
  if (!value || !lo || !hi || !f.isDataset(layerPath)) {
    return std::nullopt;
  }
  MatchedCka out;
  out.teacherLayer = f.readInt64(layerPath);
  if (lo->size() != value->size() || hi->size() != value->size() || out.teacherLayer.size() != value->size()) {
    throw InputError(f.path() + ": " + layout::analysisEntry(task, student, entry::kCkaMatched) +
                     ": cka_matched, its _lo, _hi and _teacher_layer differ in length");
  }
  const std::string v = layout::analysisEntry(task, student, entry::kCkaMatched);
  int resamples = 0;
  if (f.hasAttr(v, "resamples")) {
    resamples = static_cast<int>(f.attrInt(v, "resamples"));
  }
  if (f.hasAttr(v, "map")) {
    out.map = f.attrString(v, "map");
  }
  for (std::size_t i = 0; i < value->size(); ++i) {
    analysis::Interval interval;
    interval.estimate = (*value)[i];
    interval.lo = (*lo)[i];
    interval.hi = (*hi)[i];
    interval.over = analysis::kOverExamples;
    interval.resamples = resamples;
    out.cka.push_back(interval);
  }
  return out;
}

} // namespace kdscope::core
