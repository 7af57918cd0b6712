#include "core/distill/student_step.h"

#include <random>

#include "core/common/error.h"
#include "core/data/augment.h"
#include "core/distill/intermediate.h"
#include "core/models/transformer.h"

namespace kdscope::core {

StepFunction makeTeacherStep() {
  return [](ClassifierImpl& model, const Batch& batch, const std::vector<std::int64_t>& /*rows*/) {
    const ObjectiveSpec plain;
    return studentObjective(plain, model.forward(batch).logits, torch::Tensor(), batch.labels);
  };
}

bool studentNeedsTeacher(const StudentSpec& student) {
  return needsTeacher(student.objective) || student.augmentation.any();
}

bool studentUsesTeacherCache(const StudentSpec& student) {
  return needsTeacher(student.objective) && !usesIntermediateTerms(student.objective) &&
         !student.augmentation.any() && student.teacherEpoch == 0;
}

namespace {

/// Everything a student's step keeps between steps; shared by the copies of the step.
struct StepState {
  ObjectiveSpec objective;
  AugmentationSpec augmentation;
  bool needsTeacher = false;
  bool useCache = false;
  /// The student could read the cache but the job turned it off: compute the teacher's
  /// logits exactly as the cache does (exampleWiseTeacherLogits).
  bool exampleWiseTeacher = false;
  bool text = true;
  std::int64_t vocabSize = 0;
  const TeacherCache* cache = nullptr;
  ClassifierImpl* teacher = nullptr;
  IntermediateObjective intermediate{nullptr};
  std::mt19937_64 rng;
};

TransformerClassifierImpl& asTransformer(ClassifierImpl& model, const char* who) {
  auto* transformer = dynamic_cast<TransformerClassifierImpl*>(&model);
  if (transformer == nullptr) {
    throw JobError(std::string("embedding mixup needs a transformer ") + who);
  }
  return *transformer;
}

/// The original batch, then a token-augmented copy, then a mixup copy (as enabled), for the
/// student (`studentBatch`) and for the teacher (`teacherBatch`): the two differ only in
/// their word embeddings, which mixup takes from each model's own embedding table.
struct AugmentedBatches {
  Batch student;
  Batch teacher;
  std::int64_t originals = 0;
};

AugmentedBatches augmentBatch(StepState& state, ClassifierImpl& model, const Batch& batch) {
  AugmentedBatches out;
  out.originals = batch.size();
  const auto n = batch.size();
  Batch combined = batch;
  if (state.text && state.augmentation.tokenOps()) {
    auto tokens = batch.tokens.contiguous();
    const auto len = tokens.size(1);
    std::vector<std::int64_t> ids(tokens.data_ptr<std::int64_t>(), tokens.data_ptr<std::int64_t>() + tokens.numel());
    auto augmented = augmentTokens(ids, n, len, state.augmentation, state.vocabSize, state.rng);
    auto augmentedTokens = torch::from_blob(augmented.data(), {n, len}, torch::kInt64).clone();
    combined.tokens = torch::cat({batch.tokens, augmentedTokens});
    combined.mask = combined.tokens.ne(kPadId);
    combined.labels = torch::cat({batch.labels, batch.labels}); // replaced by the teacher's below
  }
  out.student = combined;
  out.teacher = combined;
  if (!state.augmentation.mixup) {
    return out;
  }
  // Each original example i is mixed with partner perm[i], lambda_i ~ Beta(a, a).
  const auto perm = randomPermutation(n, state.rng);
  std::vector<float> lambdas(static_cast<std::size_t>(n));
  for (auto& l : lambdas) {
    l = static_cast<float>(sampleBeta(state.augmentation.mixupAlpha, state.augmentation.mixupAlpha, state.rng));
  }
  auto index = torch::tensor(perm, torch::kInt64);
  auto lambda = torch::tensor(lambdas, torch::kFloat32);
  if (!state.text) {
    const auto l = lambda.view({n, 1});
    auto mixed = l * batch.features + (1.0 - l) * batch.features.index_select(0, index);
    for (Batch* b : {&out.student, &out.teacher}) {
      b->features = torch::cat({combined.features, mixed});
      b->labels = torch::cat({combined.labels, batch.labels});
    }
    return out;
  }
  const auto l = lambda.view({n, 1, 1});
  auto partnerMask = batch.mask.index_select(0, index);
  auto mixedMask = batch.mask | partnerMask;
  auto mixedTokens = torch::where(batch.mask, batch.tokens, batch.tokens.index_select(0, index));
  const auto mixEmbeddings = [&](TransformerClassifierImpl& m) {
    auto words = m.embedTokens(combined.tokens);
    auto originals = words.slice(0, 0, n);
    auto mixed = l * originals + (1.0 - l) * originals.index_select(0, index);
    return torch::cat({words, mixed});
  };
  for (Batch* b : {&out.student, &out.teacher}) {
    b->tokens = torch::cat({combined.tokens, mixedTokens});
    b->mask = torch::cat({combined.mask, mixedMask});
    b->labels = torch::cat({combined.labels, batch.labels});
  }
  out.student.wordEmbeddings = mixEmbeddings(asTransformer(model, "student"));
  {
    torch::NoGradGuard noGrad;
    out.teacher.wordEmbeddings = mixEmbeddings(asTransformer(*state.teacher, "teacher"));
  }
  return out;
}

LossTerms studentStep(StepState& state, ClassifierImpl& model, const Batch& batch,
                      const std::vector<std::int64_t>& rows) {
  const bool intermediate = !state.intermediate.is_empty();
  if (!state.augmentation.any()) {
    torch::Tensor teacherLogits;
    ForwardOutput teacherOut;
    if (state.needsTeacher) {
      if (state.useCache) {
        teacherLogits = state.cache->logits(rows);
      } else if (state.exampleWiseTeacher) {
        // Computed as the cache computes them, so cache on and off train the same student.
        teacherLogits = exampleWiseTeacherLogits(*state.teacher, batch);
      } else {
        torch::NoGradGuard noGrad; // thread-local: we are on the job's thread
        teacherOut = state.teacher->forward(batch);
        teacherLogits = teacherOut.logits;
      }
    }
    auto out = model.forward(batch);
    auto terms = studentObjective(state.objective, out.logits, teacherLogits, batch.labels);
    if (intermediate) {
      state.intermediate->addTerms(out, teacherOut, batch.mask, terms);
    }
    return terms;
  }
  AugmentedBatches batches = augmentBatch(state, model, batch);
  ForwardOutput teacherOut;
  {
    torch::NoGradGuard noGrad;
    teacherOut = state.teacher->forward(batches.teacher);
  }
  // The teacher labels every augmented example: its top-1 class for the hard-label term.
  auto labels = batches.student.labels.clone();
  const auto n = batches.originals;
  if (labels.size(0) > n) {
    labels.slice(0, n, labels.size(0)).copy_(teacherOut.logits.slice(0, n, labels.size(0)).argmax(/*dim=*/1));
  }
  auto out = model.forward(batches.student);
  auto terms = studentObjective(state.objective, out.logits, teacherOut.logits, labels);
  if (intermediate) {
    state.intermediate->addTerms(out, teacherOut, batches.student.mask, terms);
  }
  return terms;
}

} // namespace

StudentStep makeStudentStep(const StudentSpec& student, ClassifierImpl& teacher,
                            const ArchitectureSpec& teacherArchitecture, const TaskData& task,
                            const TeacherCache* cache, std::uint64_t augmentSeed) {
  auto state = std::make_shared<StepState>();
  state->objective = student.objective;
  state->augmentation = student.augmentation;
  state->needsTeacher = studentNeedsTeacher(student);
  state->useCache = cache != nullptr && studentUsesTeacherCache(student);
  state->cache = state->useCache ? cache : nullptr;
  state->exampleWiseTeacher = cache == nullptr && studentUsesTeacherCache(student);
  state->teacher = &teacher;
  state->text = task.kind == TaskKind::Text;
  state->vocabSize = static_cast<std::int64_t>(task.vocab.size());
  state->rng.seed(augmentSeed);
  StudentStep result;
  if (usesIntermediateTerms(student.objective)) {
    state->intermediate = IntermediateObjective(student.objective, hiddenWidths(student.architecture, task.dim),
                                                hiddenWidths(teacherArchitecture, task.dim));
    result.auxiliary = state->intermediate.ptr();
    result.parameters = state->intermediate->parameters();
    result.intermediateJson = state->intermediate->describeJson();
  }
  result.step = [state](ClassifierImpl& model, const Batch& batch, const std::vector<std::int64_t>& rows) {
    return studentStep(*state, model, batch, rows);
  };
  return result;
}

} // namespace kdscope::core
