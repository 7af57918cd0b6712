#pragma once
/// The job's validation, after reading (job_fields.h): each field's bound from its table,
/// and the rules that tie fields together: required fields, task names and kinds, unique
/// student names, an architecture's width and heads, layer maps, augmentation against the
/// tasks, and the architectures a job's tasks need. Private to core.

#include "core/job/job_spec.h"
#include "core/job/json_reader.h"

namespace kdscope::core {

/// Adds every problem of `job` to `reader`, which read it from `root` (a path whose value
/// could not be read is not checked again).
void validateJob(const JobSpec& job, const json::Json& root, json::JsonReader& reader);

} // namespace kdscope::core
