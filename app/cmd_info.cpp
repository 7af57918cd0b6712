// kdscope info RUN.h5: tasks, models, accuracies and status of a run file.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "app/commands.h"
#include "core/analysis/analysis_results.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/task_intervals.h"
#include "core/analysis/analyze_run.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"
#include "core/analysis/multiple_testing.h"
#include "core/study/replicates.h"

namespace kdscope::app {

namespace {

/// The 95% intervals of the knowledge analysis's headline numbers (docs/statistics.md,
/// "Knowledge levels"), when the file has them.
void printKnowledgeIntervals(const core::TaskHeadline& h) {
  namespace an = core::analysis;
  const auto level = [](const char* name, const std::optional<an::Interval>& i) {
    if (i) {
      std::cout << "    " << name << " " << an::intervalText(*i, 4, true)
                << (an::detectable(*i) ? "" : std::string(" (") + an::kNoDetectableDifference + ")") << "\n";
    }
  };
  if (h.universeInterval) {
    std::cout << "  knowledge levels, 95% intervals (" << an::kOverExamples << ", paired: every control student "
              << "on the same resample, B = " << h.universeInterval->resamples << "):\n";
  }
  level("universe (LS - CE)     ", h.universeInterval);
  level("instance (KD-pt - LS)  ", h.instanceInterval);
  level("domain (KD - KD-pt)    ", h.domainInterval);
  level("KD gain (KD - CE)      ", h.totalInterval);
  if (h.lsShareInterval) {
    std::cout << "    share LS explains       " << an::intervalText(*h.lsShareInterval, 4)
              << (h.totalInterval && !an::detectable(*h.totalInterval)
                      ? " (not meaningful: KD's gain over CE, its denominator, is not detectable)"
                      : "")
              << "\n";
  }
  bool header = false;
  for (const core::StudentHeadline& s : h.students) {
    if (!s.wConfidenceSpearmanInterval && !s.geometryAgreementProbs) {
      continue;
    }
    if (!header) {
      std::cout << "  per student, 95% intervals (" << an::kOverExamples << "): w~p_y = Spearman of w with the "
                << "teacher's p_y; geometry(probs) = agreement of the class-probability similarity\n";
      header = true;
    }
    std::cout << "    " << s.name << ":";
    if (s.wConfidenceSpearmanInterval) {
      std::cout << " w~p_y " << an::intervalText(*s.wConfidenceSpearmanInterval, 3, true);
    }
    if (s.geometryAgreementProbs) {
      std::cout << "; geometry(probs) " << an::intervalText(*s.geometryAgreementProbs, 3);
    }
    std::cout << "\n";
  }
  for (const core::StudentHeadline& s : h.students) {
    if (!s.matchedCka) {
      continue;
    }
    std::cout << "  " << s.name << ": CKA at matched depth (" << s.matchedCka->map << " map), 95% intervals ("
              << an::kOverExamples << ", B = " << (s.matchedCka->cka.empty() ? 0 : s.matchedCka->cka[0].resamples)
              << "):";
    for (std::size_t i = 0; i < s.matchedCka->cka.size(); ++i) {
      if (s.matchedCka->teacherLayer[i] >= 0) {
        std::cout << " s" << i << "~t" << s.matchedCka->teacherLayer[i] << " "
                  << an::intervalText(s.matchedCka->cka[i], 3);
        std::cout << (i + 1 < s.matchedCka->cka.size() ? ";" : "");
      }
    }
    std::cout << "\n";
  }
}

/// Fidelity, calibration and the knowledge levels of a task's students (core/analysis).
void printHeadlines(const core::TaskHeadline& h) {
  if (h.students.empty()) {
    return;
  }
  auto num = [](double v, int width, bool sign = false) {
    std::ostringstream out;
    if (std::isnan(v)) {
      out << "-";
    } else {
      out << std::fixed << std::setprecision(4) << (sign ? std::showpos : std::noshowpos) << v;
    }
    std::ostringstream padded;
    padded << std::setw(width) << out.str();
    return padded.str();
  };
  namespace an = core::analysis;
  std::cout << "  " << std::left << std::setw(16) << "student" << std::right << std::setw(9) << "gap"
            << std::setw(10) << "retained" << std::setw(11) << "agreement" << std::setw(9) << "mean KL"
            << std::setw(9) << "ECE" << std::setw(11) << "geometry" << std::setw(9) << "w~p_y"
            << "  gap 95% CI" << "\n";
  for (const auto& s : h.students) {
    // The gap's interval beside its point estimate, "n.d." when it holds 0 (the verdicts of
    // the tests are under "paired tests" below).
    std::string gapInterval = "not analysed";
    if (const an::Interval* gap = s.intervals ? s.intervals->find(an::metric::kGap) : nullptr) {
      gapInterval = "[" + an::numberText(gap->lo, 4) + ", " + an::numberText(gap->hi, 4) + "]" +
                    (an::detectable(*gap) ? "" : " n.d.");
    }
    std::cout << "  " << std::left << std::setw(16) << s.name << std::right << num(s.gap, 9, true)
              << num(s.retainedFraction, 10) << num(s.agreement, 11) << num(s.meanKl, 9) << num(s.ece, 9)
              << num(s.geometryAgreement, 11) << num(s.wConfidenceSpearman, 9) << "  " << gapInterval << "\n";
  }
  std::cout << "  point estimates on the eval split; "
            << (h.analysed ? std::string("their 95% intervals (") + an::kOverExamples +
                                 ") and paired tests follow; n.d. = no detectable difference (the interval holds 0); "
                                 "geometry (classifier-weight cosines) is one fixed set of weights per run, with an "
                                 "interval only over replicates"
                           : std::string("no intervals: the run is not analysed ('kdscope analyze RUN' adds them)"))
            << "\n";
  if (!h.students.empty()) {
    std::cout << "  teacher ECE " << num(h.students.front().teacherEce, 0) << "; mean KL(teacher || student) at T = 1, "
              << "geometry = correlation of classifier-weight cosines with the teacher's, w~p_y = Spearman of the "
              << "gradient rescaling weight with the teacher's confidence"
              << (h.analysed ? "" : " (run 'kdscope analyze' for geometry and w)") << "\n";
  }
  if (h.hasKnowledge && h.knowledgeStudents.size() == 4) {
    std::cout << "  knowledge levels (" << h.knowledgeStudents[0] << ", " << h.knowledgeStudents[1] << ", "
              << h.knowledgeStudents[2] << ", " << h.knowledgeStudents[3] << "): universe " << num(h.universe, 0, true)
              << ", instance " << num(h.instance, 0, true) << ", domain " << num(h.domain, 0, true)
              << " = KD gain " << num(h.total, 0, true) << " (share LS explains: " << num(h.lsShare, 0)
              << "; LS epsilon " << num(h.matchedEpsilon, 0)
              << (std::isnan(h.lsMatchTemperature) ? std::string()
                                                   : " matched at T = " + num(h.lsMatchTemperature, 0))
              << ")\n";
  }
  printKnowledgeIntervals(h); // the levels' intervals only with the controls; w and geometry per student
}

std::string factorTitle(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    c = c == '_' ? ' ' : c;
  }
  return out;
}

/// The 95% intervals, the paired tests and the loss pattern the analysis wrote (docs/statistics.md).
void printIntervals(const core::TaskHeadline& h, const std::vector<std::string>& classNames) {
  namespace an = core::analysis;
  const core::ModelIntervals* any = h.teacherIntervals ? &*h.teacherIntervals : nullptr;
  for (const auto& s : h.students) {
    any = any != nullptr ? any : (s.intervals ? &*s.intervals : nullptr);
  }
  if (any == nullptr) {
    if (!h.students.empty()) {
      std::cout << "  (no intervals: run 'kdscope analyze' for the 95% intervals and paired tests)\n";
    }
    return;
  }
  const auto& b = any->bootstrap;
  std::cout << "  95% intervals: percentile bootstrap over the " << b.examples << " eval examples (B = " << b.resamples
            << ", seed " << b.seed << ")\n";
  // The gap is a difference: its verdict also needs the McNemar test against the teacher.
  const auto line = [](const std::string& who, const std::vector<std::pair<std::string, const an::Interval*>>& items,
                       double gapP = std::nan("")) {
    std::cout << "    " << std::left << std::setw(14) << who << std::right;
    bool first = true;
    for (const auto& [label, interval] : items) {
      if (interval == nullptr) {
        continue;
      }
      const bool difference = label == "gap";
      std::cout << (first ? "" : "; ") << label << " " << an::intervalText(*interval, 4, difference)
                << (difference && !an::detectable(*interval, gapP) ? " (" + std::string(an::kNoDetectableDifference) + ")"
                                                                   : "");
      first = false;
    }
    std::cout << "\n";
  };
  if (h.teacherIntervals) {
    line("teacher", {{"accuracy", h.teacherIntervals->find(an::metric::kAccuracy)},
                     {"ECE", h.teacherIntervals->find(an::metric::kEce)}});
  }
  for (const auto& s : h.students) {
    if (!s.intervals) {
      continue;
    }
    line(s.name,
         {{"accuracy", s.interval(an::metric::kAccuracy)}, {"gap", s.interval(an::metric::kGap)},
          {"retained", s.interval(an::metric::kRetainedFraction)}},
         s.vsTeacher ? an::verdictP(s.vsTeacher->comparison.mcnemarP, s.vsTeacher->mcnemarHolm) : std::nan(""));
    line("", {{"agreement", s.interval(an::metric::kAgreement)}, {"mean KL", s.interval(an::metric::kMeanKl)},
              {"ECE", s.interval(an::metric::kEce)}});
  }
  std::cout << "  paired tests on the same eval examples (accuracy difference, first minus second; exact McNemar on "
               "correctness; Holm over this task's McNemar tests; verdicts use the Holm p):\n";
  std::vector<std::pair<std::string, std::string>> shown;
  for (const auto& s : h.students) {
    std::vector<const core::PairedTest*> tests;
    if (s.vsTeacher) {
      tests.push_back(&*s.vsTeacher);
    }
    for (const auto& t : s.vsStudents) {
      tests.push_back(&t);
    }
    for (const core::PairedTest* t : tests) {
      // Each pair of students once (both directions are in the file).
      if (std::find(shown.begin(), shown.end(), std::make_pair(t->other, t->student)) != shown.end()) {
        continue;
      }
      shown.emplace_back(t->student, t->other);
      const auto& c = t->comparison;
      const auto& d = c.accuracyDifference.difference;
      std::cout << "    " << t->student << " - " << t->other << ": " << an::intervalText(d, 4, true)
                << ", " << an::pValuesText(c.mcnemarP, t->mcnemarHolm, "McNemar p") << " (" << c.onlyFirst << " only " << t->student
                << ", " << c.onlySecond << " only " << t->other << "), bootstrap p = "
                << an::pValueText(c.accuracyDifference.pValue) << ": "
                << (an::detectable(d, an::verdictP(c.mcnemarP, t->mcnemarHolm))
                        ? (d.estimate > 0 ? t->student + " better" : t->other + " better")
                                                  : std::string(an::kNoDetectableDifference))
                << "\n";
    }
  }
  for (const auto& s : h.students) {
    if (!s.lossPattern) {
      continue;
    }
    const an::LossPattern& lp = *s.lossPattern;
    std::cout << "  loss pattern of " << s.name << ": " << lp.lost << " lost (teacher right, student wrong) against the "
              << lp.examples - lp.lost << " other eval examples" << (lp.note.empty() ? "" : " (" + lp.note + ")")
              << (lp.lost > 0 && lp.lost < 10 ? " (few lost examples: the tests have little power and the intervals "
                                                "of r are rough)"
                                              : "")
              << "\n";
    for (const an::ContinuousFactor& f : lp.factors) {
      const an::Interval& r = f.test.rankBiserial;
      std::cout << "    " << std::left << std::setw(19) << factorTitle(f.name) << std::right << " median "
                << an::numberText(f.medianLost, 3) << " lost vs " << an::numberText(f.medianRest, 3)
                << " rest; rank-biserial r " << an::intervalText(r, 3, true) << ", "
                << an::pValuesText(f.test.pValue, f.holm, "Mann-Whitney p")
                << (an::detectable(r, an::verdictP(f.test.pValue, f.holm))
                        ? ""
                        : " (" + std::string(an::kNoDetectableDifference) + ")")
                << "\n";
    }
    if (!lp.factors.empty()) {
      const an::ClassFactor& c = lp.goldClass;
      std::cout << "    " << std::left << std::setw(19) << "gold class" << std::right << " chi-square "
                << an::numberText(c.chiSquare.chiSquare, 2) << " (df " << c.chiSquare.df << "), "
                << an::pValuesText(c.chiSquare.pValue, c.chiSquareHolm)
                << (c.chiSquare.minExpected < 5.0 ? " (rough: an expected count below 5)" : "") << ", Cramer's V "
                << an::intervalText(c.cramersV, 3);
      // The class most clearly over-represented among the lost examples: the smallest Fisher
      // p among the classes whose odds ratio is above 1.
      std::size_t most = c.oddsRatio.size();
      for (std::size_t k = 0; k < c.oddsRatio.size(); ++k) {
        if (c.oddsRatio[k].estimate > 1.0 &&
            (most == c.oddsRatio.size() || c.fisher[k].pValue < c.fisher[most].pValue)) {
          most = k;
        }
      }
      if (most < c.oddsRatio.size()) {
        std::cout << "; most over-represented: " << (most < classNames.size() ? classNames[most] : std::to_string(most))
                  << " (" << c.lost[most] << " lost of " << c.lost[most] + c.rest[most] << ", odds ratio "
                  << an::intervalText(c.oddsRatio[most], 2) << ", Fisher p = " << an::pValueText(c.fisher[most].pValue)
                  << ")";
      }
      std::cout << "\n";
      const an::LossLogistic& fit = lp.logistic;
      std::cout << "    logistic regression of lost";
      if (fit.converged) {
        std::cout << " (log odds per sd" << (fit.includesClass ? "; class against the most frequent" : "") << "):";
        std::string sep = " ";
        for (const an::LogisticTerm& t : fit.terms) {
          if (t.name != "intercept" && t.name.rfind("class:", 0) != 0) {
            std::cout << sep << factorTitle(t.name) << " " << an::intervalText(t.coefficient.value, 2, true) << " "
                      << an::pValuesText(t.coefficient.pValue, t.holm)
                      << (an::detectable(t.coefficient.value, an::verdictP(t.coefficient.pValue, t.holm))
                              ? ""
                              : std::string(", ") + an::kNoDetectableDifference);
            sep = "; ";
          }
        }
      } else {
        std::cout << ": did not converge (a factor separates the lost examples)";
      }
      std::cout << (fit.note.empty() ? "" : " (" + fit.note + ")") << "\n";
    }
  }
}

/// Where the task's data came from (the task group's source attributes), one line each.
void printTaskSource(const core::TaskSummary& task) {
  namespace attr = core::layout::attr;
  const std::map<std::string, std::string> a(task.source.begin(), task.source.end());
  if (a.empty()) {
    return;
  }
  const auto get = [&](const char* key) {
    const auto it = a.find(key);
    return it == a.end() ? std::string() : it->second;
  };
  if (get(attr::kSource) == "file") {
    std::cout << "  data:      " << get(attr::kSourcePath) << " (" << get(attr::kSourceFormat) << ", "
              << get(attr::kSourceBytes) << " bytes)\n";
    if (!get(attr::kSourceEvalPath).empty()) {
      std::cout << "  eval data: " << get(attr::kSourceEvalPath) << "\n";
    }
    if (!get(attr::kSourceLabelPath).empty()) {
      std::cout << "  labels:    " << get(attr::kSourceLabelPath) << "\n";
    }
    std::cout << "  fields:    " << get(attr::kSourceFields) << "\n";
  } else {
    std::cout << "  data:      " << get(attr::kSource) << "\n";
  }
  if (!get(attr::kTokenizer).empty()) {
    std::cout << "  tokenizer: " << get(attr::kTokenizer);
    if (get(attr::kTokenizer) == "wordpiece") {
      std::cout << " " << get(attr::kTokenizerVocab) << (get(attr::kTokenizerLowerCase) == "1" ? " (lower-cased)" : " (cased)");
    }
    std::cout << "\n";
  }
}

/// A replicate folder: every headline number as the mean over the replicates with its
/// Student-t 95% interval, and paired t tests between the models (core/study/replicates.h).
int commandReplicateInfo(const std::string& dir) {
  namespace an = core::analysis;
  const core::ReplicateSet set = core::summarizeReplicateSet(dir);
  std::cout << "replicates: " << dir << " (job '" << set.jobName << "', " << set.seeds.size() << " replicates, seeds";
  for (const auto seed : set.seeds) {
    std::cout << " " << seed;
  }
  std::cout << ")\n"
            << "intervals:  mean [95% Student-t interval over " << set.seeds.size()
            << " replicates]; each replicate a full run (split fixed by the job seed, models and batch order by "
               "the replicate seed)\n";
  const auto metricLine = [](const std::string& who, const std::vector<core::ReplicateMetric>& metrics) {
    std::cout << "    " << std::left << std::setw(14) << who << std::right;
    bool first = true;
    for (const auto& m : metrics) {
      if (m.summary.interval.count == 0) {
        continue;
      }
      const bool difference = m.name == "gap";
      std::cout << (first ? "" : "; ") << factorTitle(m.name) << " " << an::intervalText(m.summary.interval, 4, difference)
                << (m.summary.interval.count < 2 ? " (one replicate: no interval)" : "");
      first = false;
    }
    std::cout << "\n";
  };
  for (const core::ReplicateTask& t : set.tasks) {
    std::cout << "\ntask " << t.task << "\n";
    metricLine("teacher", t.teacher);
    for (const auto& s : t.students) {
      std::vector<core::ReplicateMetric> first;
      std::vector<core::ReplicateMetric> second;
      for (const auto& m : s.metrics) {
        if (m.name == "accuracy" || m.name == "gap" || m.name == "retained_fraction" || m.name == "agreement") {
          first.push_back(m);
        } else if (m.name != "teacher_accuracy" && m.name != "teacher_ece") {
          second.push_back(m);
        }
      }
      metricLine(s.name, first);
      metricLine("", second);
    }
    if (!t.knowledge.empty()) {
      metricLine("knowledge", t.knowledge);
    }
    std::cout << "  paired t on the per-replicate accuracy differences (first minus second; McNemar counts summed "
                 "over the replicates, for information):\n";
    for (const auto& p : t.pairs) {
      const auto& d = p.test.difference;
      std::cout << "    " << p.first << " - " << p.second << ": " << an::intervalText(d, 4, true) << ", "
                << an::pValuesText(p.test.pValue, p.holm, "paired t p") << " (" << d.count << " replicates; " << p.onlyFirst
                << " only " << p.first << ", " << p.onlySecond << " only " << p.second << "): "
                << (d.count < 2 ? std::string("one replicate: no test")
                    : an::detectable(d, an::verdictP(p.test.pValue, p.holm))
                        ? (d.estimate > 0 ? p.first + " better" : p.second + " better")
                        : std::string(an::kNoDetectableDifference))
                << "\n";
    }
    if (!t.metricPairs.empty()) {
      std::cout << "  paired t on the per-replicate class geometry agreement and w-confidence Spearman (first "
                   "minus second):\n";
    }
    for (const auto& p : t.metricPairs) {
      const auto& d = p.test.difference;
      std::cout << "    " << p.metric << ": " << p.first << " - " << p.second << ": " << an::intervalText(d, 4, true)
                << ", " << an::pValuesText(p.test.pValue, p.holm, "paired t p") << " (" << d.count << " replicates): "
                << (d.count < 2 ? std::string("one replicate: no test")
                    : an::detectable(d, an::verdictP(p.test.pValue, p.holm))
                        ? (d.estimate > 0 ? p.first + " higher" : p.second + " higher")
                        : std::string(an::kNoDetectableDifference))
                << "\n";
    }
  }
  return kExitOk;
}

/// Each model's single-head ablation: the accuracy drop of every head with its 95% paired
/// bootstrap interval over eval examples (analysis "heads"; docs/statistics.md, "Heads").
void printHeadAblation(const core::AnalysisResults& results, const core::TaskSummary& task) {
  for (const auto& m : task.models) {
    const auto ablation = results.headAblation(task.name, m.name);
    if (!ablation) {
      continue;
    }
    std::ostringstream out;
    out << std::fixed << std::setprecision(4);
    out << "  head ablation of " << m.name << " (intact accuracy " << ablation->intactAccuracy
        << "): accuracy drop with one head gated to 0";
    if (ablation->accuracyDrop && ablation->accuracyDropLo && ablation->accuracyDropHi) {
      out << ", [95% paired bootstrap over eval examples, B = " << ablation->resamples
          << "]; n.d. = no detectable difference (the interval holds 0)";
    } else {
      out << " (no intervals: analysed before they were recorded; run 'kdscope analyze --only heads')";
    }
    out << "\n";
    const auto& acc = ablation->accuracy;
    for (std::size_t l = 0; l < acc.rows; ++l) {
      out << "    layer " << l << ":";
      for (std::size_t h = 0; h < acc.cols; ++h) {
        const std::size_t i = l * acc.cols + h;
        out << (h == 0 ? " " : "; ") << "h" << h << " " << std::showpos;
        if (ablation->accuracyDrop && ablation->accuracyDropLo && ablation->accuracyDropHi) {
          const double lo = ablation->accuracyDropLo->values[i];
          const double hi = ablation->accuracyDropHi->values[i];
          out << ablation->accuracyDrop->values[i] << " [" << lo << ", " << hi << "]"
              << (lo <= 0.0 && 0.0 <= hi ? " n.d." : "");
        } else {
          out << ablation->intactAccuracy - acc.values[i];
        }
        out << std::noshowpos;
      }
      out << "\n";
    }
    std::cout << out.str();
  }
}

int commandInfo(const std::string& runPath) {
  if (core::isReplicateDir(runPath)) {
    return commandReplicateInfo(runPath);
  }
  if (isStudyDir(runPath)) {
    return commandStudyInfo(runPath);
  }
  const core::RunReader reader(runPath);
  const auto summary = reader.summary();
  const core::AnalysisResults results(reader);
  const auto headlines = results.headlines();
  std::cout << "run file:  " << summary.path << "\n"
            << "status:    " << summary.status
            << (summary.statusMessage.empty() ? "" : " (" + summary.statusMessage + ")") << "\n"
            << "format:    kdscope-run version " << summary.formatVersion << ", written by KDScope "
            << summary.kdscopeVersion << "\n"
            << "trained:   " << summary.worldSize
            << (summary.worldSize == 1 ? " process" : " processes (data-parallel, docs/distributed.md)") << "\n";
  for (const auto& task : summary.tasks) {
    std::cout << "\ntask " << task.name << ": " << task.numClasses << " classes, " << task.evalExamples
              << " eval examples\n";
    printTaskSource(task);
    std::cout << "  " << std::left << std::setw(16) << "model" << std::setw(9) << "role" << std::right
              << std::setw(12) << "parameters" << std::setw(8) << "steps" << std::setw(12) << "final loss"
              << std::setw(11) << "accuracy" << "\n";
    double teacherAcc = -1.0;
    const bool analysedTask = std::any_of(headlines.begin(), headlines.end(), [&](const core::TaskHeadline& h) {
      return h.task == task.name && h.analysed;
    });
    for (const auto& m : task.models) {
      if (m.role == "teacher") {
        teacherAcc = m.evalAccuracy;
      }
      std::cout << "  " << std::left << std::setw(16) << m.name << std::setw(9) << m.role << std::right
                << std::setw(12) << m.parameterCount << std::setw(8) << m.trainSteps << std::setw(12)
                << std::fixed << std::setprecision(4) << m.finalLoss << std::setw(11);
      if (m.evalAccuracy >= 0.0) {
        std::cout << m.evalAccuracy;
      } else {
        std::cout << "-";
      }
      if (m.role == "student" && teacherAcc > 0.0 && m.evalAccuracy >= 0.0) {
        std::cout << "  (gap " << std::showpos << teacherAcc - m.evalAccuracy << std::noshowpos
                  << ", retained " << m.evalAccuracy / teacherAcc
                  << (analysedTask ? "; point estimates, intervals below)" : "; point estimates, not analysed)");
      }
      if (m.precision == "bf16") {
        std::cout << "  [trained in bf16]";
      }
      std::cout << "\n" << std::defaultfloat;
    }
    for (const auto& h : headlines) {
      if (h.task == task.name) {
        printHeadlines(h);
        printIntervals(h, task.classNames);
      }
    }
    printHeadAblation(results, task);
    // Models from elsewhere: what their pre-flight check found missing, and what the analysis
    // skipped (for any model) and why.
    for (const auto& m : task.models) {
      for (const auto& line : results.modelLacks(task.name, m.name)) {
        std::cout << "  " << m.name << " lacks " << line << "\n";
      }
    }
    const auto skipped = results.skipped(task.name);
    if (!skipped.empty()) {
      std::cout << "  analyses skipped:\n";
      for (const auto& line : skipped) {
        std::cout << "    " << line << "\n";
      }
    }
  }
  return kExitOk;
}

} // namespace

void registerInfo(CLI::App& app, int& exitCode) {
  auto runPath = std::make_shared<std::string>();
  auto* info = app.add_subcommand("info", "Summarise a run file (tasks, models, accuracies, status), a replicate folder (means with intervals over the replicates) or a study folder");
  info->add_option("run", *runPath, "run file (.h5), the --out folder of a job with replicates, or a study's --out folder")->required();
  info->callback([runPath, &exitCode]() { exitCode = guarded([&]() { return commandInfo(*runPath); }); });
}

} // namespace kdscope::app
