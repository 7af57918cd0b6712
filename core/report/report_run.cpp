// The report of one run file and of a replicate folder (report.h; docs/report.md).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/analysis/analysis_results.h"
#include "core/analysis/class_recall.h"
#include "core/analysis/multiple_testing.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/metrics.h"
#include "core/common/error.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"
#include "core/report/report.h"
#include "core/report/report_where.h"
#include "core/study/replicates.h"

namespace kdscope::core {

namespace fs = std::filesystem;
namespace an = analysis;
using report::who;

namespace {

constexpr std::size_t kExamplesShown = 5;

std::string num(double v, int decimals = 3) { return an::numberText(v, decimals); }

const PairedTest* findPair(const TaskHeadline& h, const std::string& a, const std::string& b) {
  for (const auto& s : h.students) {
    if (s.name != a) {
      continue;
    }
    for (const auto& t : s.vsStudents) {
      if (t.other == b) {
        return &t;
      }
    }
  }
  return nullptr;
}

/// One eval example's text: eval/text, else its tokens through the vocabulary, else its index.
std::string exampleText(const AnalysisResults& results, const std::string& task, std::size_t i,
                        const std::vector<std::string>& texts, const std::vector<std::string>& vocab) {
  if (i < texts.size() && !texts[i].empty()) {
    return texts[i];
  }
  if (!vocab.empty()) {
    std::string out;
    for (const auto id : results.tokens(task, i)) {
      if (id < 0 || static_cast<std::size_t>(id) >= vocab.size()) {
        continue;
      }
      const std::string& w = vocab[static_cast<std::size_t>(id)];
      if (w == "[PAD]" || w == "[CLS]" || w.empty()) {
        continue;
      }
      out += (out.empty() ? "" : " ") + w;
    }
    return out;
  }
  return "(vector example " + std::to_string(i) + ")";
}

std::vector<double> softmaxRow(const std::vector<float>& logits, std::size_t i, std::size_t c) {
  std::vector<double> p(c);
  double m = -INFINITY;
  for (std::size_t k = 0; k < c; ++k) {
    m = std::max(m, static_cast<double>(logits[i * c + k]));
  }
  double z = 0;
  for (std::size_t k = 0; k < c; ++k) {
    p[k] = std::exp(static_cast<double>(logits[i * c + k]) - m);
    z += p[k];
  }
  for (auto& v : p) {
    v /= z;
  }
  return p;
}

std::string className(const std::vector<std::string>& names, std::size_t k) {
  return k < names.size() ? names[k] : std::to_string(k);
}

/// Per-class recall of teacher and student with percentile bootstrap intervals over the
/// class's eval examples (the analysis's settings: B = 2000, seed 14), the paired
/// difference with its Holm p over the classes, and the class with the largest loss, said
/// as a loss only when its paired interval excludes 0 and its Holm p is below 0.05.
void addClassRecall(ReportSection& section, const std::string& student, const std::vector<std::int64_t>& labels,
                    const std::vector<float>& zt, const std::vector<float>& zs, std::size_t c,
                    const std::vector<std::string>& names) {
  ReportTable table;
  table.caption = "Per-class recall (95% CI: percentile bootstrap over the class's eval examples, B = 2000; "
                  "student - teacher paired on those examples, centred bootstrap p, Holm over the classes)";
  table.header = {"class", "examples", "teacher recall", "student recall", "student - teacher", "Holm p"};
  const auto teacher = an::classRecallIntervals(zt, labels, c);
  const auto studentRecall = an::classRecallIntervals(zs, labels, c);
  const auto differences = an::classRecallDifferences(zs, zt, labels, c);
  std::vector<double> raw;
  for (const auto& d : differences) {
    raw.push_back(d.pValue);
  }
  const std::vector<double> holm = an::holmAdjust(raw);
  std::size_t worstClass = c;
  for (std::size_t k = 0; k < c; ++k) {
    if (teacher[k].examples == 0) {
      continue;
    }
    const an::Interval& d = differences[k].difference;
    table.rows.push_back({className(names, k), std::to_string(teacher[k].examples),
                          an::intervalText(teacher[k].recall, 3), an::intervalText(studentRecall[k].recall, 3),
                          an::intervalText(d, 3, true) + (an::detectable(d, holm[k]) ? "" : " (n.d.)"),
                          an::pValueText(holm[k])});
    if (worstClass == c || d.estimate < differences[worstClass].difference.estimate) {
      worstClass = k;
    }
  }
  section.tables.push_back(std::move(table));
  if (worstClass == c || differences[worstClass].difference.estimate >= 0) {
    return;
  }
  const an::Interval& d = differences[worstClass].difference;
  const std::string recalls = "recall " +
                              report::valueWithInterval(studentRecall[worstClass].recall,
                                                        "bootstrap over the class's eval examples") +
                              " against the teacher's " +
                              report::valueWithInterval(teacher[worstClass].recall, "same examples") +
                              "; paired difference " + an::intervalText(d, 3, true) + ", bootstrap p = " +
                              an::pValueText(differences[worstClass].pValue) + ", Holm p = " +
                              an::pValueText(holm[worstClass]) + " of " + std::to_string(teacher.size()) + " classes";
  if (an::detectable(d, holm[worstClass])) {
    section.findings.push_back("the largest per-class loss of " + who(student) + " is on class " +
                               className(names, worstClass) + ": " + recalls);
  } else {
    section.findings.push_back(std::string(an::kNoDetectableDifference) + " in per-class recall between " +
                               who(student) + " and the teacher after Holm; the largest point loss is on class " +
                               className(names, worstClass) + ": " + recalls);
  }
}

void addExamples(ReportSection& section, const AnalysisResults& results, const std::string& task,
                 const std::vector<std::int64_t>& labels, const std::vector<float>& zt, const std::vector<float>& zs,
                 std::size_t c, const std::vector<std::string>& names) {
  const auto texts = results.texts(task);
  const auto vocab = results.hasTokens(task) ? results.vocabulary(task) : std::vector<std::string>();
  struct Row {
    std::size_t index;
    double confidence;
  };
  std::vector<Row> lost;
  std::vector<Row> gained;
  const std::vector<std::int64_t> predictedT = an::predictions(zt, c); // ties: the lowest class
  const std::vector<std::int64_t> predictedS = an::predictions(zs, c);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const bool t = predictedT[i] == labels[i];
    const bool s = predictedS[i] == labels[i];
    if (t && !s) {
      const auto p = softmaxRow(zt, i, c);
      lost.push_back({i, *std::max_element(p.begin(), p.end())});
    } else if (s && !t) {
      const auto p = softmaxRow(zs, i, c);
      gained.push_back({i, *std::max_element(p.begin(), p.end())});
    }
  }
  const auto byConfidence = [](const Row& a, const Row& b) {
    return a.confidence != b.confidence ? a.confidence > b.confidence : a.index < b.index;
  };
  std::sort(lost.begin(), lost.end(), byConfidence);
  std::sort(gained.begin(), gained.end(), byConfidence);
  const auto table = [&](const std::vector<Row>& rows, const std::string& caption, const std::string& confidenceOf) {
    ReportTable t;
    t.caption = caption + " (" + std::to_string(rows.size()) + " in all; the " +
                std::to_string(std::min(rows.size(), kExamplesShown)) + " most confident first)";
    t.header = {"eval example", "gold class", "teacher says", "student says", confidenceOf, "text"};
    for (std::size_t r = 0; r < rows.size() && r < kExamplesShown; ++r) {
      const std::size_t i = rows[r].index;
      t.rows.push_back({std::to_string(i), className(names, static_cast<std::size_t>(labels[i])),
                        className(names, static_cast<std::size_t>(predictedT[i])),
                        className(names, static_cast<std::size_t>(predictedS[i])),
                        num(rows[r].confidence), exampleText(results, task, i, texts, vocab)});
    }
    section.tables.push_back(std::move(t));
  };
  table(lost, "Lost examples: the teacher right, the student wrong", "teacher confidence");
  table(gained, "Gained examples: the student right, the teacher wrong", "student confidence");
}

void addStudent(Report& rep, const AnalysisResults& results, const RunReader& reader, const TaskHeadline& h,
                const StudentHeadline& s, const TaskSummary& task) {
  ReportSection kept;
  kept.heading = task.name + ", " + who(s.name) + ": what was kept and what was lost";
  const std::string basis = std::to_string(task.evalExamples) + " eval examples";
  const std::string overExamples = "bootstrap over " + basis;
  const auto* acc = s.interval(an::metric::kAccuracy);
  const auto* tacc = s.interval(an::metric::kTeacherAccuracy);
  const auto* retained = s.interval(an::metric::kRetainedFraction);
  const auto* gap = s.interval(an::metric::kGap);
  if (acc != nullptr && tacc != nullptr && retained != nullptr) {
    kept.findings.push_back(who(s.name) + " keeps a fraction " + report::valueWithInterval(*retained, overExamples) +
                            " of the teacher's accuracy on " + task.name + ": accuracy " +
                            report::valueWithInterval(*acc, overExamples) + " against the teacher's " +
                            report::valueWithInterval(*tacc, "same examples"));
  } else {
    kept.findings.push_back(who(s.name) + " reaches accuracy " + num(s.accuracy) + " against the teacher's " +
                            num(s.teacherAccuracy) + " on " + task.name);
    kept.notes.push_back("No intervals: the run has not been analysed (run 'kdscope analyze' for them).");
  }
  if (gap != nullptr && s.vsTeacher) {
    an::Interval d = *gap; // teacher - student
    kept.findings.push_back(report::differenceSentence("teacher", s.name, task.name, d, s.vsTeacher->comparison.mcnemarP,
                                                       "McNemar", basis, s.vsTeacher->mcnemarHolm));
  }
  if (const auto* agree = s.interval(an::metric::kAgreement)) {
    kept.findings.push_back(who(s.name) + " agrees with the teacher's top-1 prediction on a fraction " +
                            report::valueWithInterval(*agree, overExamples) + " of the eval examples");
  }
  if (const auto* kl = s.interval(an::metric::kMeanKl)) {
    kept.findings.push_back("the mean KL divergence from the teacher's predictive distribution to " + who(s.name) +
                            "'s (T = 1) is " + report::valueWithInterval(*kl, overExamples, 4) + " nats");
  }
  const auto* ece = s.interval(an::metric::kEce);
  const auto* tece = s.interval(an::metric::kTeacherEce);
  if (ece != nullptr && tece != nullptr) {
    kept.findings.push_back("calibration (expected calibration error, 15 bins): " + who(s.name) + " " +
                            report::valueWithInterval(*ece, overExamples) + ", the teacher " +
                            report::valueWithInterval(*tece, "same resamples"));
    kept.notes.push_back("The ECE's bootstrap interval is its spread under resampling, biased upward on small eval "
                         "sets; it is not a test of the difference between the two ECEs (docs/statistics.md).");
  }
  rep.sections.push_back(std::move(kept));

  ReportSection where;
  where.heading = task.name + ", " + who(s.name) + ": where (layers, heads, classes)";
  report::addWhere(where, results, task.name, s.name, static_cast<std::size_t>(task.evalExamples));
  const auto labels = reader.evalLabels(task.name);
  std::int64_t classes = 0;
  const auto zt = reader.evalLogits(task.name, "teacher", &classes);
  const auto zs = reader.evalLogits(task.name, s.name);
  addClassRecall(where, s.name, labels, zt, zs, static_cast<std::size_t>(classes), task.classNames);
  rep.sections.push_back(std::move(where));

  ReportSection which;
  which.heading = task.name + ", " + who(s.name) + ": which examples";
  addExamples(which, results, task.name, labels, zt, zs, static_cast<std::size_t>(classes), task.classNames);
  if (s.lossPattern && !s.lossPattern->factors.empty()) {
    const an::LossPattern& lp = *s.lossPattern;
    for (const an::ContinuousFactor& f : lp.factors) {
      const an::Interval& r = f.test.rankBiserial;
      std::string name = f.name;
      std::replace(name.begin(), name.end(), '_', ' ');
      const std::string stats = "rank-biserial r = " + num(r.estimate) + ", 95% CI " + num(r.lo) + " to " + num(r.hi) +
                                " (stratified bootstrap over eval examples), " +
                                an::pValuesText(f.test.pValue, f.holm, "Mann-Whitney p") + ", " +
                                std::to_string(lp.lost) + " lost against " +
                                std::to_string(lp.examples - lp.lost) + " other examples";
      if (an::detectable(r, an::verdictP(f.test.pValue, f.holm))) {
        which.findings.push_back("the examples " + who(s.name) + " loses have " + (r.estimate < 0 ? "lower" : "higher") +
                                 " " + name + " than the rest (median " + num(f.medianLost) + " against " +
                                 num(f.medianRest) + "; " + stats + ")");
      } else {
        which.findings.push_back(std::string(an::kNoDetectableDifference) + " in " + name + " between the examples " +
                                 who(s.name) + " loses and the rest (" + stats + ")");
      }
    }
  } else if (s.lossPattern) {
    which.notes.push_back("Loss pattern not tested: " + s.lossPattern->note);
  }
  rep.sections.push_back(std::move(which));
  (void)h;
}

void addTaskComparisons(Report& rep, const TaskHeadline& h, const TaskSummary& task) {
  ReportSection section;
  section.heading = task.name + ": students compared, and the knowledge levels";
  const std::string basis = std::to_string(task.evalExamples) + " eval examples";
  for (std::size_t i = 0; i < h.students.size(); ++i) {
    for (std::size_t j = i + 1; j < h.students.size(); ++j) {
      const PairedTest* t = findPair(h, h.students[i].name, h.students[j].name);
      if (t != nullptr) {
        section.findings.push_back(report::differenceSentence(t->student, t->other, task.name,
                                                              t->comparison.accuracyDifference.difference,
                                                              t->comparison.mcnemarP, "McNemar", basis,
                                                              t->mcnemarHolm));
      }
    }
  }
  if (h.hasKnowledge && h.knowledgeStudents.size() == 4) {
    const auto& k = h.knowledgeStudents; // CE, LS, KD-pt, KD
    const char* levels[] = {"universe (label smoothing: LS - CE)", "instance (gradient rescaling: KD-pt - LS)",
                            "domain (class relationships: KD - KD-pt)", "total KD gain (KD - CE)"};
    const std::pair<std::size_t, std::size_t> pairs[] = {{1, 0}, {2, 1}, {3, 2}, {3, 0}};
    for (int l = 0; l < 4; ++l) {
      const PairedTest* t = findPair(h, k[pairs[l].first], k[pairs[l].second]);
      if (t != nullptr) {
        section.findings.push_back(std::string("knowledge level, ") + levels[l] + ": " +
                                   report::differenceSentence(t->student, t->other, task.name,
                                                              t->comparison.accuracyDifference.difference,
                                                              t->comparison.mcnemarP, "McNemar", basis,
                                                              t->mcnemarHolm));
      }
    }
    section.notes.push_back("The knowledge levels are accuracy differences between Tang et al.'s control students "
                            "(CE, LS at the matched epsilon " + num(h.matchedEpsilon, 4) +
                            ", KD-pt, KD) on the same eval examples, each with its paired bootstrap interval and "
                            "McNemar test.");
  }
  if (!section.findings.empty() || !section.notes.empty()) {
    rep.sections.push_back(std::move(section));
  }
}

const std::vector<std::string> kPreamble = {
    "Every number comes with a 95% interval and says what it is over: a percentile bootstrap over the eval examples "
    "of one run (B = 2000), or a Student-t interval over replicates (seeds). Paired comparisons use the exact McNemar "
    "test on the same eval examples within a run, and a paired t test on per-replicate differences across "
    "replicates. Where several tests answer one question (every paired comparison of a task's models; the tests "
    "of one student's loss pattern), their p-values are also Holm-Bonferroni adjusted over that family, shown beside "
    "the raw p, and the verdict uses the adjusted p. A difference whose interval holds 0, or whose test has "
    "p >= 0.05, is written \"no detectable difference\". A number without an interval says why. Differences of accuracy are in percentage points."};

} // namespace

Report buildRunReport(const std::string& runPath) {
  const RunReader reader(runPath);
  const RunSummary summary = reader.summary();
  if (summary.status != "complete") {
    throw InputError(runPath + ": status is '" + summary.status + "'; a report needs a complete run");
  }
  const AnalysisResults results(reader);
  Report rep;
  rep.title = "Distillation loss report";
  rep.source = runPath;
  rep.runs = {runPath};
  rep.preamble = kPreamble;
  const auto headlines = results.headlines();
  for (const TaskSummary& task : summary.tasks) {
    for (const TaskHeadline& h : headlines) {
      if (h.task != task.name) {
        continue;
      }
      if (!h.analysed) {
        rep.preamble.push_back("Task " + task.name +
                               " has not been analysed: run 'kdscope analyze' for the intervals, tests and the "
                               "loss pattern.");
      }
      for (const StudentHeadline& s : h.students) {
        addStudent(rep, results, reader, h, s, task);
      }
      addTaskComparisons(rep, h, task);
    }
  }
  return rep;
}

Report buildReplicateReport(const std::string& dir) {
  const ReplicateSet set = summarizeReplicateSet(dir);
  Report rep;
  rep.title = "Distillation loss report, " + std::to_string(set.seeds.size()) + " replicates";
  rep.source = dir;
  rep.runs = set.runs;
  rep.preamble = kPreamble;
  const std::size_t n = set.seeds.size();
  const std::string basis = std::to_string(n) + " replicates";
  const std::string over = "t-interval over " + basis;
  for (const ReplicateTask& t : set.tasks) {
    ReportSection section;
    section.heading = t.task + ": over " + basis;
    for (const ReplicateStudent& s : t.students) {
      const ReplicateMetric* acc = s.find(an::metric::kAccuracy);
      const ReplicateMetric* retained = s.find(an::metric::kRetainedFraction);
      const ReplicateMetric* agree = s.find(an::metric::kAgreement);
      const ReplicateMetric* ece = s.find(an::metric::kEce);
      if (acc != nullptr && retained != nullptr) {
        section.findings.push_back(who(s.name) + " keeps a fraction " +
                                   report::valueWithInterval(retained->summary.interval, over) +
                                   " of the teacher's accuracy on " + t.task + ": mean accuracy " +
                                   report::valueWithInterval(acc->summary.interval, over));
      }
      if (agree != nullptr && ece != nullptr) {
        section.findings.push_back(who(s.name) + "'s top-1 agreement with the teacher is " +
                                   report::valueWithInterval(agree->summary.interval, over) +
                                   " and its expected calibration error " +
                                   report::valueWithInterval(ece->summary.interval, over));
      }
    }
    for (const ReplicatePair& p : t.pairs) {
      section.findings.push_back(report::differenceSentence(p.first, p.second, t.task, p.test, p.holm, basis));
    }
    const char* names[] = {"universe (LS - CE)", "instance (KD-pt - LS)", "domain (KD - KD-pt)", "total KD gain (KD - CE)"};
    for (std::size_t l = 0; l < t.knowledge.size() && l < 4; ++l) {
      const ReplicateMetric& m = t.knowledge[l];
      std::vector<double> finite;
      for (const double v : m.values) {
        if (std::isfinite(v)) {
          finite.push_back(v);
        }
      }
      // A one-sample t of the gain against 0 is the paired t of the two control students.
      const an::PairedComparison test = an::pairedT(finite, std::vector<double>(finite.size(), 0.0));
      const an::Interval& i = m.summary.interval;
      const bool detect = an::detectable(i, test.pValue);
      section.findings.push_back(std::string("knowledge level, ") + names[l] + " on " + t.task + ": " +
                                 (detect ? "a gain of " : std::string(an::kNoDetectableDifference) + ", a gain of ") +
                                 report::points(i.estimate) + " points (95% CI " + report::points(i.lo) + " to " +
                                 report::points(i.hi) + ", paired t p = " + an::pValueText(test.pValue) + ", " + basis +
                                 ")");
    }
    ReportTable table;
    table.caption = "Each replicate's accuracy (seed order: " + [&] {
      std::string s;
      for (const auto seed : set.seeds) {
        s += (s.empty() ? "" : ", ") + std::to_string(seed);
      }
      return s;
    }() + ")";
    table.header = {"model", "mean [95% t-interval]", "sd", "per replicate"};
    const auto row = [&](const std::string& name, const ReplicateMetric& m) {
      std::string values;
      for (const double v : m.values) {
        values += (values.empty() ? "" : ", ") + num(v, 4);
      }
      table.rows.push_back({name, an::intervalText(m.summary.interval, 4), num(m.summary.sd, 4), values});
    };
    if (!t.teacher.empty()) {
      row("teacher", t.teacher[0]);
    }
    for (const auto& s : t.students) {
      if (const auto* m = s.find(an::metric::kAccuracy)) {
        row(s.name, *m);
      }
    }
    section.tables.push_back(std::move(table));
    rep.sections.push_back(std::move(section));
  }
  // The first replicate in detail: where the loss is and which examples (over its eval examples).
  Report first = buildRunReport(set.runs.front());
  for (auto& s : first.sections) {
    s.heading = "Replicate seed " + std::to_string(set.seeds.front()) + ", " + s.heading;
    rep.sections.push_back(std::move(s));
  }
  return rep;
}

Report buildReport(const std::string& path) {
  if (isReplicateDir(path)) {
    return buildReplicateReport(path);
  }
  std::error_code ec;
  if (fs::is_regular_file(fs::path(path) / "study_summary.json", ec)) {
    return buildStudyReport(path);
  }
  if (fs::is_directory(path, ec)) {
    const std::string run = (fs::path(path) / "run.h5").string();
    if (fs::exists(run)) {
      return buildRunReport(run);
    }
    throw InputError(path + ": neither a replicate folder (replicates.json), a study folder (study_summary.json) nor "
                            "a run folder (run.h5)");
  }
  if (!fs::exists(path, ec)) {
    throw InputError(path + ": no such file");
  }
  return buildRunReport(path);
}

} // namespace kdscope::core
