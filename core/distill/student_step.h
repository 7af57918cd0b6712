#pragma once
/// Builds the per-step objective of the teacher and of each student (private to core).
/// Lives on the job's thread.

#include "core/distill/teacher_cache.h"
#include "core/distill/trainer.h"

namespace kdscope::core {

/// The teacher's objective: plain cross-entropy on its own forward pass.
StepFunction makeTeacherStep();

/// A student's objective (ObjectiveSpec). Teacher outputs come from `cache` when it is
/// non-null, else from a forward pass of `teacher` (eval mode, no gradient) on the batch.
StepFunction makeStudentStep(const StudentSpec& student, ClassifierImpl& teacher, const TeacherCache* cache);

} // namespace kdscope::core
