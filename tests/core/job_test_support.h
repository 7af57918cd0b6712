#pragma once
// Shared by the job tests (test_job_parser.cpp, test_job_fields.cpp): member-by-member
// equality of job specs, every member written out by hand (independent of the field tables
// in core/job/job_fields.h, so a member a table forgets is still compared).

#include <gtest/gtest.h>

#include "core/job/job_spec.h"

namespace kdscope::core::test {

// Every member of every struct, written out by hand (independent of the tables).
inline void expectSameArchitecture(const ArchitectureSpec& a, const ArchitectureSpec& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.ffn, b.ffn);
  EXPECT_EQ(a.dropout, b.dropout);
  EXPECT_EQ(a.hidden, b.hidden);
}

inline void expectSameTraining(const TrainingSpec& a, const TrainingSpec& b) {
  EXPECT_EQ(a.epochs, b.epochs);
  EXPECT_EQ(a.batchSize, b.batchSize);
  EXPECT_EQ(a.lr, b.lr);
  EXPECT_EQ(a.weightDecay, b.weightDecay);
  EXPECT_EQ(a.warmupFraction, b.warmupFraction);
  EXPECT_EQ(a.gradClip, b.gradClip);
}

inline void expectSameStudent(const StudentSpec& a, const StudentSpec& b) {
  EXPECT_EQ(a.name, b.name);
  expectSameArchitecture(a.architecture, b.architecture);
  expectSameTraining(a.training, b.training);
  const ObjectiveSpec& x = a.objective;
  const ObjectiveSpec& y = b.objective;
  EXPECT_EQ(x.lambda, y.lambda);
  EXPECT_EQ(x.temperature, y.temperature);
  EXPECT_EQ(x.tSquared, y.tSquared);
  EXPECT_EQ(x.labelSmoothing, y.labelSmoothing);
  EXPECT_EQ(x.labelSmoothingMatched, y.labelSmoothingMatched);
  EXPECT_EQ(x.labelSmoothingTemperature, y.labelSmoothingTemperature);
  EXPECT_EQ(x.logitMse, y.logitMse);
  EXPECT_EQ(x.teacherTargets, y.teacherTargets);
  EXPECT_EQ(x.hiddenMse, y.hiddenMse);
  EXPECT_EQ(x.hiddenCosine, y.hiddenCosine);
  EXPECT_EQ(x.pkd, y.pkd);
  EXPECT_EQ(x.attentionKl, y.attentionKl);
  EXPECT_EQ(x.attentionMse, y.attentionMse);
  EXPECT_EQ(x.infoNce, y.infoNce);
  EXPECT_EQ(x.miAlpha, y.miAlpha);
  EXPECT_EQ(x.alpha, y.alpha);
  EXPECT_EQ(x.layerMap, y.layerMap);
  EXPECT_EQ(x.layerList, y.layerList);
  const AugmentationSpec& p = a.augmentation;
  const AugmentationSpec& q = b.augmentation;
  EXPECT_EQ(p.mask, q.mask);
  EXPECT_EQ(p.replace, q.replace);
  EXPECT_EQ(p.swap, q.swap);
  EXPECT_EQ(p.deletion, q.deletion);
  EXPECT_EQ(p.mixup, q.mixup);
  EXPECT_EQ(p.mixupAlpha, q.mixupAlpha);
  EXPECT_EQ(a.teacherEpoch, b.teacherEpoch);
  EXPECT_EQ(a.torchscript, b.torchscript);
  EXPECT_EQ(a.manifest, b.manifest);
}

inline void expectSameJob(const JobSpec& a, const JobSpec& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.dataDir, b.dataDir);
  EXPECT_EQ(a.cacheTeacherOutputs, b.cacheTeacherOutputs);
  EXPECT_EQ(a.teacherCacheBudgetMb, b.teacherCacheBudgetMb);
  EXPECT_EQ(a.analyze, b.analyze);
  EXPECT_EQ(a.replicates, b.replicates);
  EXPECT_EQ(a.replicateCount, b.replicateCount);
  EXPECT_EQ(a.replicateSeed, b.replicateSeed);
  ASSERT_EQ(a.tasks.size(), b.tasks.size());
  for (std::size_t i = 0; i < a.tasks.size(); ++i) {
    const TaskSpec& x = a.tasks[i];
    const TaskSpec& y = b.tasks[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.evalFraction, y.evalFraction);
    EXPECT_EQ(x.maxExamples, y.maxExamples);
    EXPECT_EQ(x.maxLen, y.maxLen);
    EXPECT_EQ(x.vocabSize, y.vocabSize);
    EXPECT_EQ(x.minFreq, y.minFreq);
    EXPECT_EQ(x.minClassSize, y.minClassSize);
    EXPECT_EQ(x.superClasses, y.superClasses);
    EXPECT_EQ(x.classesPerSuper, y.classesPerSuper);
    EXPECT_EQ(x.dim, y.dim);
    EXPECT_EQ(x.examplesPerClass, y.examplesPerClass);
    EXPECT_EQ(x.superSpread, y.superSpread);
    EXPECT_EQ(x.classSpread, y.classSpread);
    EXPECT_EQ(x.noise, y.noise);
    EXPECT_EQ(x.file, y.file);
    EXPECT_EQ(x.evalFile, y.evalFile);
    EXPECT_EQ(x.format, y.format);
    EXPECT_EQ(x.textField, y.textField);
    EXPECT_EQ(x.textPairField, y.textPairField);
    EXPECT_EQ(x.featureFields, y.featureFields);
    EXPECT_EQ(x.labelField, y.labelField);
    EXPECT_EQ(x.idField, y.idField);
    EXPECT_EQ(x.splitField, y.splitField);
    EXPECT_EQ(x.labelKind, y.labelKind);
    EXPECT_EQ(x.numClasses, y.numClasses);
    EXPECT_EQ(x.h5Dataset, y.h5Dataset);
    EXPECT_EQ(x.labelFile, y.labelFile);
    EXPECT_EQ(x.labelColumn, y.labelColumn);
    EXPECT_EQ(x.vocab, y.vocab);
    EXPECT_EQ(x.lowerCase, y.lowerCase);
  }
  expectSameArchitecture(a.teacher.architecture, b.teacher.architecture);
  expectSameTraining(a.teacher.training, b.teacher.training);
  EXPECT_EQ(a.teacher.checkpoint, b.teacher.checkpoint);
  EXPECT_EQ(a.teacher.epochCheckpoints, b.teacher.epochCheckpoints);
  EXPECT_EQ(a.teacher.torchscript, b.teacher.torchscript);
  EXPECT_EQ(a.teacher.manifest, b.teacher.manifest);
  ASSERT_EQ(a.students.size(), b.students.size());
  for (std::size_t i = 0; i < a.students.size(); ++i) {
    SCOPED_TRACE("student " + std::to_string(i));
    expectSameStudent(a.students[i], b.students[i]);
  }
  const RecordingSpec& r = a.recording;
  const RecordingSpec& s = b.recording;
  EXPECT_EQ(r.attentionExamples, s.attentionExamples);
  EXPECT_EQ(r.pooling, s.pooling);
  EXPECT_EQ(r.logEvery, s.logEvery);
  EXPECT_EQ(r.hidden, s.hidden);
  EXPECT_EQ(r.tokenHiddenExamples, s.tokenHiddenExamples);
  EXPECT_EQ(r.float16, s.float16);
  EXPECT_EQ(r.exampleRecords, s.exampleRecords);
  EXPECT_EQ(r.maxFileMb, s.maxFileMb);
  EXPECT_EQ(r.memoryBudgetMb, s.memoryBudgetMb);
  const KnowledgeControlsSpec& k = a.knowledgeControls;
  const KnowledgeControlsSpec& l = b.knowledgeControls;
  EXPECT_EQ(k.enabled, l.enabled);
  expectSameArchitecture(k.architecture, l.architecture);
  expectSameTraining(k.training, l.training);
  EXPECT_EQ(k.lambda, l.lambda);
  EXPECT_EQ(k.temperature, l.temperature);
  EXPECT_EQ(k.lsMatch, l.lsMatch);
}

} // namespace kdscope::core::test
