// AnalysisResults: single-head ablation and the intervals of its accuracy drop and loss
// increase (analysis "heads"; docs/run-format.md).
#include <string>
#include <utility>

#include "core/analysis/analysis_results.h"
#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

std::optional<HeadAblation> AnalysisResults::headAblation(const std::string& task, const std::string& model) const {
  namespace entry = layout::entry;
  auto accuracy = matrix(task, model, entry::kHeadAblationAccuracy);
  auto loss = matrix(task, model, entry::kHeadAblationLoss);
  if (!accuracy || !loss) {
    return std::nullopt;
  }
  const H5File& f = m_reader.file();
  auto check = [&](const std::optional<analysis::Matrix>& m, const char* name) {
    if (m && (m->rows != accuracy->rows || m->cols != accuracy->cols)) {
      throw InputError("run file '" + f.path() + "': dataset '" + layout::analysisEntry(task, model, name) + "' is [" +
                       std::to_string(m->rows) + ", " + std::to_string(m->cols) + "], but " +
                       entry::kHeadAblationAccuracy + " is [" + std::to_string(accuracy->rows) + ", " +
                       std::to_string(accuracy->cols) + "]");
    }
  };
  HeadAblation out;
  check(loss, entry::kHeadAblationLoss);
  const std::string accuracyPath = layout::analysisEntry(task, model, entry::kHeadAblationAccuracy);
  const std::string lossPath = layout::analysisEntry(task, model, entry::kHeadAblationLoss);
  if (f.hasAttr(accuracyPath, "intact")) {
    out.intactAccuracy = f.attrDouble(accuracyPath, "intact");
  }
  if (f.hasAttr(lossPath, "intact")) {
    out.intactLoss = f.attrDouble(lossPath, "intact");
  }
  const std::pair<std::optional<analysis::Matrix>*, const char*> bands[] = {
      {&out.accuracyDrop, entry::kHeadAblationAccuracyDrop},
      {&out.accuracyDropLo, entry::kHeadAblationAccuracyDropLo},
      {&out.accuracyDropHi, entry::kHeadAblationAccuracyDropHi},
      {&out.lossIncrease, entry::kHeadAblationLossIncrease},
      {&out.lossIncreaseLo, entry::kHeadAblationLossIncreaseLo},
      {&out.lossIncreaseHi, entry::kHeadAblationLossIncreaseHi}};
  for (const auto& [target, name] : bands) {
    *target = matrix(task, model, name);
    check(*target, name);
  }
  const std::string dropPath = layout::analysisEntry(task, model, entry::kHeadAblationAccuracyDrop);
  if (out.accuracyDrop && f.hasAttr(dropPath, "resamples")) {
    out.resamples = static_cast<int>(f.attrInt(dropPath, "resamples"));
  }
  out.accuracy = std::move(*accuracy);
  out.loss = std::move(*loss);
  return out;
}

} // namespace kdscope::core
