#pragma once
/// The study summary's "task_sensitivity" array (docs/studies.md): the codec summary.cpp
/// uses to write and read it. Private to core (nlohmann-json).

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/study/task_sensitivity.h"

namespace kdscope::core {

/// One object per task and measure: task, measure, slope, lo, hi, over, level, resamples,
/// examples, intercept, cells, rank, ratios, retained (NaN as null).
nlohmann::ordered_json taskSensitivityToJson(const std::vector<TaskSensitivity>& slopes);
/// Reads the array back. Throws nlohmann's exceptions on a wrong type (summary.cpp turns
/// them into an InputError naming the file and "task_sensitivity").
std::vector<TaskSensitivity> taskSensitivityFromJson(const nlohmann::ordered_json& j);

} // namespace kdscope::core
