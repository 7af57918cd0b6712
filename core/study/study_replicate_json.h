#pragma once
/// The study summary's "replicates" object (docs/studies.md, "Replicates"): the codec
/// summary.cpp uses to write and read it. Private to core (nlohmann-json).

#include <nlohmann/json.hpp>

#include "core/study/study_replicate_stats.h"

namespace kdscope::core {

nlohmann::ordered_json studyReplicateStatsToJson(const StudyReplicateStats& stats);
/// Throws nlohmann's exceptions on a wrong type (summary.cpp names the file and field).
StudyReplicateStats studyReplicateStatsFromJson(const nlohmann::ordered_json& j);

} // namespace kdscope::core
