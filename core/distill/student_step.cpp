#include "core/distill/student_step.h"

namespace kdscope::core {

StepFunction makeTeacherStep() {
  return [](ClassifierImpl& model, const Batch& batch, const std::vector<std::int64_t>& /*rows*/) {
    const ObjectiveSpec plain;
    return studentObjective(plain, model.forward(batch).logits, torch::Tensor(), batch.labels);
  };
}

StepFunction makeStudentStep(const StudentSpec& student, ClassifierImpl& teacher, const TeacherCache* cache) {
  const ObjectiveSpec objective = student.objective;
  return [objective, &teacher, cache](ClassifierImpl& model, const Batch& batch,
                                      const std::vector<std::int64_t>& rows) {
    torch::Tensor teacherLogits;
    if (needsTeacher(objective)) {
      if (cache != nullptr) {
        teacherLogits = cache->logits(rows);
      } else {
        torch::NoGradGuard noGrad; // thread-local: we are on the job's thread
        teacherLogits = teacher.forward(batch).logits;
      }
    }
    return studentObjective(objective, model.forward(batch).logits, teacherLogits, batch.labels);
  };
}

} // namespace kdscope::core
