#pragma once
/// Builds the per-step objective of the teacher and of each student (private to core).
/// Lives on the job's thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/distill/teacher_cache.h"
#include "core/distill/trainer.h"

namespace kdscope::core {

/// The teacher's objective: plain cross-entropy on its own forward pass.
StepFunction makeTeacherStep();

/// Whether a student's step runs or reads the teacher at all (a teacher term, or
/// augmentation, whose examples the teacher labels).
bool studentNeedsTeacher(const StudentSpec& student);

/// Whether a student can read the teacher's logits from the TeacherCache of the final
/// teacher: it needs the teacher, but only its logits on unaugmented training examples.
/// Intermediate terms need the teacher's hidden states and attention, which the cache does
/// not keep (they would be (Lt + 1) * Len * D floats per example, hundreds of MB for the
/// sample tasks), augmentation needs the teacher on new inputs, and a weaker teacher
/// (teacher_epoch > 0) is not the cached one: those students run the teacher's forward
/// pass on every batch instead.
bool studentUsesTeacherCache(const StudentSpec& student);

/// A student's step and what the trainer must know about it.
struct StudentStep {
  StepFunction step;
  /// Owns the objective's own trainable parameters (projections, critics, baselines);
  /// null when there are none. The trainer optimises `parameters` with the model's.
  std::shared_ptr<torch::nn::Module> auxiliary;
  std::vector<torch::Tensor> parameters;
  /// IntermediateObjective::describeJson(), or empty without intermediate terms.
  std::string intermediateJson;
};

/// A student's objective (ObjectiveSpec, AugmentationSpec). `teacher` is the model the
/// student learns from (in eval mode); its logits come from `cache` when it is non-null and
/// studentUsesTeacherCache(student), else from its forward pass (no gradient) on the batch,
/// augmented when the student augments. `teacherArchitecture` and `task` size the
/// intermediate terms' parameters, which are initialised from torch's global generator (the
/// caller seeds it); augmentation draws from its own generator seeded with `augmentSeed`.
StudentStep makeStudentStep(const StudentSpec& student, ClassifierImpl& teacher,
                            const ArchitectureSpec& teacherArchitecture, const TaskData& task,
                            const TeacherCache* cache, std::uint64_t augmentSeed);

} // namespace kdscope::core
