// The "where" part of a run's report: layers and heads, each number with its interval
// (report_where.h; docs/report.md).
#include "core/report/report_where.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>

#include "core/analysis/analysis_results.h"
#include "core/analysis/interval_text.h"
#include "core/record/run_layout.h"

namespace kdscope::core {

namespace an = analysis;

namespace report {

namespace {

std::string num(double v, int decimals = 3) {
  return an::numberText(v, decimals);
}

std::string layerName(std::int64_t hiddenIndex) {
  return hiddenIndex == 0 ? std::string("embeddings") : "layer " + std::to_string(hiddenIndex);
}

/// "bootstrap over N eval examples, B = K" (", B = K" left out when not recorded).
std::string bootstrapBasis(const std::string& kind, std::size_t examples, int resamples) {
  return kind + " over " + std::to_string(examples) + " eval examples" +
         (resamples > 0 ? ", B = " + std::to_string(resamples) : std::string());
}

an::Interval intervalOf(double estimate, double lo, double hi, int resamples, std::size_t examples) {
  an::Interval i;
  i.estimate = estimate;
  i.lo = lo;
  i.hi = hi;
  i.resamples = resamples;
  i.over = an::kOverExamples;
  i.count = examples;
  return i;
}

/// The words of a finding against its runner-up (docs/statistics.md, "Against the runner-up"):
/// `subject` names the finding ("the lowest CKA at matched depth of student kd (layer 2)"),
/// `comparative` its direction ("lower"), `runnerUp` the next cell ("layer 1 (CKA 0.912)").
/// The difference is oriented so that its estimate is >= 0; it is a result only when its
/// interval lies above 0, else "no detectable difference".
std::string runnerUpSentence(const an::RunnerUp& r, const std::string& subject, const std::string& comparative,
                             const std::string& runnerUp, const std::string& basis, int decimals = 3,
                             const std::string& unit = "") {
  const an::Interval& d = r.difference;
  const std::string value =
      num(d.estimate, decimals) + unit +
      (std::isfinite(d.lo) && std::isfinite(d.hi)
           ? " (95% CI " + num(d.lo, decimals) + " to " + num(d.hi, decimals) + ", " + basis + ")"
           : " (" + basis + "; no interval: no resample had both)");
  if (an::detectable(d) && d.lo > 0.0) {
    return subject + " is " + comparative + " than the runner-up, " + runnerUp + ", by " + value;
  }
  return subject + ": " + an::kNoDetectableDifference + " from " + runnerUp + ", the runner-up (difference " + value +
         ")";
}

/// The sentence for a file analysed before the runner-up comparison was recorded.
std::string notTestedSentence(const std::string& subject) {
  return subject +
         " is not tested against the runner-up: analysed before the comparison was recorded (run 'kdscope "
         "analyze' again for it)";
}

/// "paired bootstrap over N eval examples, the same B = K resamples".
std::string runnerUpBasis(const std::string& examples, int resamples) {
  return "paired bootstrap over " + examples + ", the same " +
         (resamples > 0 ? "B = " + std::to_string(resamples) + " " : std::string()) + "resamples";
}

/// Layers: CKA at matched depth with its interval (else the older matrix diagonal, said to
/// have no interval), and the last layer's probe accuracies.
void addLayers(ReportSection& section, const AnalysisResults& results, const std::string& task,
               const std::string& student, std::size_t examples) {
  if (const auto matched = results.matchedCka(task, student); matched && !matched->cka.empty()) {
    const int resamples = matched->cka.front().resamples;
    const std::string basis = bootstrapBasis("bootstrap", examples, resamples);
    ReportTable table;
    table.caption =
        "Linear CKA of each layer of " + who(student) + " with its matched teacher layer (" +
        (matched->map.empty() ? std::string("layer map not recorded") : matched->map + " layer map") +
        "; 95% CI: percentile bootstrap over " + std::to_string(examples) + " eval examples" +
        (resamples > 0 ? ", B = " + std::to_string(resamples) : std::string()) + ")";
    table.header = {"student layer", "teacher layer", "linear CKA [95% CI]"};
    std::optional<std::size_t> lowest;
    std::size_t layers = 0;
    for (std::size_t i = 0; i < matched->cka.size(); ++i) {
      const std::int64_t t = matched->teacherLayer[i];
      if (t < 0) {
        continue;
      }
      table.rows.push_back(
          {layerName(static_cast<std::int64_t>(i)), layerName(t), an::intervalText(matched->cka[i], 3)});
      // The lowest among the encoder layers (the embeddings are matched by construction).
      if (i > 0 && std::isfinite(matched->cka[i].estimate)) {
        ++layers;
        if (!lowest || matched->cka[i].estimate < matched->cka[*lowest].estimate) {
          lowest = i;
        }
      }
    }
    if (lowest) {
      section.findings.push_back(
          "the lowest CKA at matched depth of " + who(student) + ": its layer " + std::to_string(*lowest) +
          " matches the teacher's " + layerName(matched->teacherLayer[*lowest]) + " with linear CKA " +
          valueWithInterval(matched->cka[*lowest], basis) +
          (layers == 1 ? std::string(", its only matched layer")
                       : ", the lowest of its " + std::to_string(layers) + " matched layers"));
      if (layers > 1) {
        // Against the next-lowest pair, from the same resamples (the analysis's choice of the
        // two, named from the file's indices).
        const auto r = results.runnerUp(task, student, layout::entry::kCkaMatched);
        const auto subject = [&](std::size_t i) {
          return "the lowest CKA at matched depth of " + who(student) + " (layer " + std::to_string(i) + ")";
        };
        if (r && r->first < matched->cka.size() && r->second < matched->cka.size()) {
          section.findings.push_back(runnerUpSentence(
              *r, subject(r->first), "lower",
              "layer " + std::to_string(r->second) + " (CKA " + num(matched->cka[r->second].estimate) + ")",
              runnerUpBasis(std::to_string(examples) + " eval examples", r->difference.resamples)));
        } else {
          section.findings.push_back(notTestedSentence(subject(*lowest)));
        }
      }
    }
    if (!table.rows.empty()) {
      section.tables.push_back(std::move(table));
    }
  } else if (const auto cka = results.matrix(task, student, layout::entry::kCka);
             cka && cka->rows > 1 && cka->cols > 1) {
    // A file analysed before the intervals were recorded: the diagonal of the uniform map.
    const std::size_t lt = cka->rows - 1;
    const std::size_t ls = cka->cols - 1;
    std::string pairs;
    double low = INFINITY;
    std::size_t lowLayer = 0;
    for (std::size_t i = 0; i <= ls; ++i) {
      const std::size_t j = std::min(lt, (i * lt) / ls);
      const double v = (*cka)(j, i);
      pairs += (pairs.empty() ? "" : ", ") + std::string("student ") + std::to_string(i) + " ~ teacher " +
               std::to_string(j) + ": " + num(v);
      if (i > 0 && v < low) {
        low = v;
        lowLayer = i;
      }
    }
    section.findings.push_back("linear CKA of " + who(student) +
                               "'s layers with the teacher's mapped layers (0 = embeddings): " + pairs +
                               "; the lowest is student layer " + std::to_string(lowLayer) + " (" + num(low) +
                               "; no interval, see the note)");
    section.notes.push_back(
        "The CKA above has no interval: the file was analysed before the CKA at matched depth "
        "was recorded with its bootstrap interval (run 'kdscope analyze' again for it).");
  }

  const auto probeT = results.vector(task, "teacher", layout::entry::kProbeAccuracy);
  const auto probeS = results.vector(task, student, layout::entry::kProbeAccuracy);
  if (probeT && probeS && !probeT->empty() && !probeS->empty()) {
    const auto loT = results.vector(task, "teacher", layout::entry::kProbeAccuracyLo);
    const auto hiT = results.vector(task, "teacher", layout::entry::kProbeAccuracyHi);
    const auto loS = results.vector(task, student, layout::entry::kProbeAccuracyLo);
    const auto hiS = results.vector(task, student, layout::entry::kProbeAccuracyHi);
    const bool intervals = loT && hiT && loS && hiS && loT->size() == probeT->size() &&
                           hiT->size() == probeT->size() && loS->size() == probeS->size() &&
                           hiS->size() == probeS->size();
    if (intervals) {
      const an::Interval s = intervalOf(probeS->back(), loS->back(), hiS->back(), 0, examples);
      const an::Interval t = intervalOf(probeT->back(), loT->back(), hiT->back(), 0, examples);
      section.findings.push_back(
          "a linear probe on the last layer reaches accuracy " +
          valueWithInterval(s, "bootstrap over " + std::to_string(examples) +
                                   " eval examples of the held-out predictions, probe fixed") +
          " for " + who(student) + " against " + valueWithInterval(t, "same examples") +
          " for the teacher (each model's own interval; the difference between them is not tested)");
    } else {
      section.findings.push_back(
          "a linear probe on the last layer reaches " + num(probeS->back()) + " for " + who(student) +
          " against " + num(probeT->back()) +
          " for the teacher (eval accuracy; no interval: the file was analysed before the "
          "probes' intervals were recorded)");
    }
  }
}

/// The sentence of a head finding against its runner-up: `cells` is the [layers, heads] matrix
/// the finding was chosen from (its row-major indices are the file's), `subject` names the
/// finding ("the most important head of student kd"), `value` writes a cell's estimate. With
/// fewer than two finite cells nothing is said; without the file's comparison, that it was not
/// tested. `inPoints`: the difference is a fraction, written in points.
void addHeadRunnerUp(ReportSection& section, const std::optional<an::RunnerUp>& r, const an::Matrix& cells,
                     const std::string& subject, const std::string& comparative,
                     const std::function<std::string(std::size_t)>& value, std::size_t examples,
                     const std::string& unit = "", bool inPoints = false) {
  const auto finite = std::count_if(cells.values.begin(), cells.values.end(), [](double v) { return std::isfinite(v); });
  if (finite < 2 || cells.cols == 0) {
    return;
  }
  const auto label = [&](std::size_t c) { return headLabel(c / cells.cols, c % cells.cols); };
  if (!r || r->first >= cells.values.size() || r->second >= cells.values.size()) {
    section.findings.push_back(notTestedSentence(subject));
    return;
  }
  an::RunnerUp shown = *r;
  if (inPoints) {
    shown.difference.estimate *= 100.0;
    shown.difference.lo *= 100.0;
    shown.difference.hi *= 100.0;
  }
  section.findings.push_back(runnerUpSentence(
      shown, subject + " (" + label(r->first) + ")", comparative, label(r->second) + " (" + value(r->second) + ")",
      runnerUpBasis(std::to_string(examples) + " eval examples", r->difference.resamples), inPoints ? 1 : 3, unit));
}

/// The single-head ablation's cross-entropy: the head whose ablation raises the mean eval
/// cross-entropy the most, with its paired bootstrap interval (ablated - intact, nats).
void addAblationLoss(ReportSection& section, const HeadAblation& ab, const std::string& student,
                     const std::string& task, std::size_t examples, const std::optional<an::RunnerUp>& runnerUp) {
  if (!ab.lossIncrease || !ab.lossIncreaseLo || !ab.lossIncreaseHi || ab.lossIncrease->cols == 0) {
    return;
  }
  const an::Matrix& rise = *ab.lossIncrease;
  std::optional<std::size_t> worst;
  for (std::size_t c = 0; c < rise.values.size(); ++c) {
    if (std::isfinite(rise.values[c]) && (!worst || rise.values[c] > rise.values[*worst])) {
      worst = c;
    }
  }
  if (!worst) {
    return;
  }
  const std::size_t c = *worst;
  const an::Interval i =
      intervalOf(rise.values[c], ab.lossIncreaseLo->values[c], ab.lossIncreaseHi->values[c], ab.resamples, examples);
  const std::string head = headLabel(c / rise.cols, c % rise.cols);
  const std::string basis = bootstrapBasis("paired bootstrap", examples, ab.resamples);
  const std::string intact = "from " + num(ab.intactLoss) + " nats intact";
  if (an::detectable(i) && i.estimate > 0) {
    section.findings.push_back("ablating head " + head + " of " + who(student) +
                               " alone raises its mean cross-entropy on " + task + " the most of its heads: by " +
                               valueWithInterval(i, basis) + " nats, " + intact);
  } else {
    section.findings.push_back(std::string(an::kNoDetectableDifference) + " in the mean cross-entropy of " +
                               who(student) + " on " + task + " when head " + head +
                               ", the head whose ablation raises it the most, is ablated alone: " +
                               valueWithInterval(i, basis) + " nats, " + intact);
  }
  addHeadRunnerUp(section, runnerUp, rise,
                  "the head whose ablation alone raises the mean cross-entropy of " + who(student) + " on " + task +
                      " most",
                  "more hurtful", [&](std::size_t k) { return "rise " + num(rise.values[k]) + " nats"; }, examples,
                  " nats");
}

/// Heads: the most important head with its interval, the single-head ablation (accuracy
/// and cross-entropy), and the teacher-student divergence (the mean over heads and the
/// worst-matched head, each with its interval).
void addHeads(ReportSection& section, const AnalysisResults& results, const std::string& task,
              const std::string& student, std::size_t examples) {
  bool labelled = false;
  if (const auto hi = results.headImportance(task, student); hi && hi->rows > 0 && hi->cols > 0) {
    std::optional<std::size_t> best;
    for (std::size_t c = 0; c < hi->values.size(); ++c) {
      if (std::isfinite(hi->values[c]) && (!best || hi->values[c] > hi->values[*best])) {
        best = c;
      }
    }
    if (best) {
      const std::size_t l = *best / hi->cols;
      const std::size_t h = *best % hi->cols;
      const auto band = results.headImportanceInterval(task, student);
      const std::string head = "the most important head of " + who(student) + " is " + headLabel(l, h);
      if (band && band->first.values.size() == hi->values.size() &&
          band->second.values.size() == hi->values.size()) {
        const an::Interval i =
            intervalOf(hi->values[*best], band->first.values[*best], band->second.values[*best],
                       results.headImportanceResamples(task, student), examples);
        section.findings.push_back(head + ": importance (Michel et al., normalised per layer) " +
                                   valueWithInterval(i, bootstrapBasis("bootstrap", examples, i.resamples)));
        addHeadRunnerUp(section, results.runnerUp(task, student, layout::entry::kHeadImportance), *hi,
                        "the most important head of " + who(student), "more important",
                        [&](std::size_t c) { return "importance " + num(hi->values[c]); }, examples);
      } else {
        section.findings.push_back(head + " (importance " + num(hi->values[*best]) +
                                   "; no interval: the file was analysed before it was recorded)");
      }
      labelled = true;
    }
  }

  if (const auto ab = results.headAblation(task, student);
      ab && ab->accuracyDrop && ab->accuracyDropLo && ab->accuracyDropHi && ab->accuracy.cols > 0) {
    const an::Matrix& drop = *ab->accuracyDrop;
    const std::string basis = bootstrapBasis("paired bootstrap", examples, ab->resamples);
    std::optional<std::size_t> worst;
    std::size_t detectable = 0;
    std::size_t lowers = 0;
    std::size_t withInterval = 0;
    for (std::size_t c = 0; c < drop.values.size(); ++c) {
      const an::Interval i = intervalOf(drop.values[c], ab->accuracyDropLo->values[c],
                                        ab->accuracyDropHi->values[c], ab->resamples, examples);
      if (std::isfinite(i.estimate) && (!worst || i.estimate > drop.values[*worst])) {
        worst = c;
      }
      if (std::isfinite(i.lo) && std::isfinite(i.hi)) {
        ++withInterval;
        if (an::detectable(i)) {
          ++detectable;
          lowers += i.estimate > 0 ? 1 : 0;
        }
      }
    }
    if (worst) {
      const std::size_t c = *worst;
      const an::Interval i = intervalOf(drop.values[c], ab->accuracyDropLo->values[c],
                                        ab->accuracyDropHi->values[c], ab->resamples, examples);
      const std::string ci = " points (95% CI " + points(i.lo) + " to " + points(i.hi) + ", " + basis + ")";
      const std::string head = headLabel(c / drop.cols, c % drop.cols);
      if (an::detectable(i) && i.estimate > 0) {
        section.findings.push_back("ablating head " + head + " of " + who(student) +
                                   " alone lowers its accuracy on " + task + " the most of its heads: by " +
                                   points(i.estimate) + ci);
      } else if (an::detectable(i)) {
        // Even the most hurtful head's ablation raises the accuracy, detectably.
        section.findings.push_back(
            "head " + head + " of " + who(student) + ", the head whose ablation lowers its accuracy on " +
            task + " the most, raises it when ablated alone: by " + points(-i.estimate) + " points (95% CI " +
            points(-i.hi) + " to " + points(-i.lo) + ", " + basis + ")");
      } else {
        section.findings.push_back(std::string(an::kNoDetectableDifference) + " when head " + head + " of " +
                                   who(student) + ", the head whose ablation lowers its accuracy on " + task +
                                   " the most, is ablated alone: accuracy drop " + points(i.estimate) + ci);
      }
      addHeadRunnerUp(section, results.runnerUp(task, student, layout::entry::kHeadAblationAccuracyDrop), drop,
                      "the head whose ablation alone lowers the accuracy of " + who(student) + " on " + task + " most",
                      "more hurtful", [&](std::size_t k) { return "drop " + points(drop.values[k]) + " points"; },
                      examples, " points", /*inPoints=*/true);
      labelled = true;
    }
    const std::size_t heads = drop.values.size();
    const std::string ofHeads = std::to_string(heads) + " heads of " + who(student);
    std::string sentence;
    if (detectable > 0) {
      sentence = std::to_string(detectable) + " of the " + ofHeads + (detectable == 1 ? " has" : " have") +
                 " a detectable effect on its accuracy when ablated alone (95% paired bootstrap interval of "
                 "the accuracy drop excluding 0; " +
                 std::to_string(lowers) + " lower it, " + std::to_string(detectable - lowers) + " raise it)";
      if (withInterval > detectable) {
        sentence += "; " + std::string(an::kNoDetectableDifference) + " for the other " +
                    std::to_string(withInterval - detectable);
      }
    } else {
      sentence = "none of the " + ofHeads + " has a detectable effect on its accuracy when ablated alone: " +
                 an::kNoDetectableDifference + " for each (every 95% paired bootstrap interval holds 0)";
    }
    if (withInterval < heads) {
      sentence += "; " + std::to_string(heads - withInterval) + " without an interval";
    }
    section.findings.push_back(sentence);
    addAblationLoss(section, *ab, student, task, examples,
                    results.runnerUp(task, student, layout::entry::kHeadAblationLossIncrease));
  } else if (ab) {
    section.notes.push_back(
        "The single-head ablation of " + who(student) +
        " has no interval: the file was analysed before the accuracy drops' paired bootstrap "
        "intervals were recorded (run 'kdscope analyze' again for them).");
  }

  if (const auto div = results.headDivergence(task, student); div && div->bestDivergence.rows > 0) {
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t l = 0; l < div->bestDivergence.rows; ++l) {
      for (std::size_t h = 0; h < div->bestDivergence.cols; ++h) {
        const double v = div->bestDivergence(l, h);
        if (std::isfinite(v)) {
          sum += v;
          ++count;
        }
      }
    }
    if (count > 0) {
      const std::string lead = "each teacher head's closest head of " + who(student) +
                               " differs by a Jensen-Shannon divergence of ";
      const std::string heads = " nats on average over " + std::to_string(count) + " mapped teacher heads";
      if (div->meanOverHeads && std::isfinite(div->meanOverHeads->lo) && std::isfinite(div->meanOverHeads->hi)) {
        // The average with its interval, from the same resamples as each head's.
        section.findings.push_back(
            lead + valueWithInterval(*div->meanOverHeads, "percentile bootstrap over the kept eval examples, B = " +
                                                               std::to_string(div->resamples) + ", the matches fixed") +
            heads);
      } else {
        section.findings.push_back(
            lead + num(sum / double(count)) + heads +
            (div->bestLo ? " (the average has no interval: the file was analysed before it was recorded; each "
                           "head's is in the heads figures' CSV)"
                         : " (no interval: the file was analysed before the divergence's intervals were recorded)"));
      }
      // The teacher head the student matches worst, with its bootstrap interval over the
      // kept examples (the match fixed).
      std::size_t wl = 0;
      std::size_t wh = 0;
      bool found = false;
      for (std::size_t l = 0; l < div->bestDivergence.rows; ++l) {
        for (std::size_t h = 0; h < div->bestDivergence.cols; ++h) {
          const double v = div->bestDivergence(l, h);
          if (std::isfinite(v) && (!found || v > div->bestDivergence(wl, wh))) {
            wl = l;
            wh = h;
            found = true;
          }
        }
      }
      if (found && div->bestLo && wl < div->teacherLayer.size() && div->teacherLayer[wl] >= 0) {
        analysis::Interval i;
        i.estimate = div->bestDivergence(wl, wh);
        i.lo = (*div->bestLo)(wl, wh);
        i.hi = (*div->bestHi)(wl, wh);
        i.count = 2;
        section.findings.push_back(
            "the teacher head " + who(student) + " matches least is L" + std::to_string(div->teacherLayer[wl] + 1) +
            "H" + std::to_string(wh + 1) + " (against student layer " + std::to_string(wl + 1) +
            "): Jensen-Shannon divergence " +
            valueWithInterval(i, "percentile bootstrap over the kept eval examples, B = " +
                                     std::to_string(div->resamples) + ", the match fixed") +
            " nats");
        // Against the runner-up (the next-largest best-match divergence), paired over the
        // same resamples of the kept examples, the matches fixed.
        const an::Matrix& best = div->bestDivergence;
        const auto name = [&](std::size_t c, const std::string& extra) {
          const std::size_t l = c / best.cols;
          return "L" + std::to_string(div->teacherLayer[l] + 1) + "H" + std::to_string(c % best.cols + 1) + " (" +
                 extra + "against student layer " + std::to_string(l + 1) + ")";
        };
        const std::string subject = "the teacher head " + who(student) + " matches least";
        const auto r = results.runnerUp(task, student, layout::entry::kHeadJsBestDivergence);
        if (count >= 2 && r && r->first < best.values.size() && r->second < best.values.size() &&
            r->first / best.cols < div->teacherLayer.size() && r->second / best.cols < div->teacherLayer.size()) {
          section.findings.push_back(runnerUpSentence(
              *r, subject + ", " + name(r->first, ""), "matched less well",
              name(r->second, "divergence " + num(best.values[r->second]) + " nats, "),
              "paired percentile bootstrap over the kept eval examples, the same B = " +
                  std::to_string(r->difference.resamples) + " resamples, the matches fixed",
              3, " nats"));
        } else if (count >= 2) {
          section.findings.push_back(notTestedSentence(subject));
        }
      }
    }
  }
  if (labelled) {
    section.notes.push_back(
        "Heads are named as in the figures heads.importance_intervals and heads.ablation: L1H2 is "
        "layer 1, head 2, both counted from 1; CKA's layer 0 is the embedding output.");
  }
}

} // namespace

std::string headLabel(std::size_t layer, std::size_t head) {
  return "L" + std::to_string(layer + 1) + "H" + std::to_string(head + 1);
}

void addWhere(ReportSection& section, const AnalysisResults& results, const std::string& task,
              const std::string& student, std::size_t evalExamples) {
  addLayers(section, results, task, student, evalExamples);
  addHeads(section, results, task, student, evalExamples);
}

} // namespace report

} // namespace kdscope::core
