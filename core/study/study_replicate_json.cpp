// The study summary's "replicates" object (study_replicate_json.h).
#include "core/study/study_replicate_json.h"

#include <cmath>
#include <limits>

namespace kdscope::core {

namespace {

using Json = nlohmann::ordered_json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double readNumber(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) {
    return kNaN;
  }
  return j[key].get<double>();
}

std::vector<double> readNumbers(const Json& j) {
  std::vector<double> out;
  for (const Json& v : j) {
    out.push_back(v.is_null() ? kNaN : v.get<double>());
  }
  return out;
}

Json valueJson(const StudyRepValue& v) {
  Json values = Json::array();
  for (const double x : v.values) {
    values.push_back(number(x));
  }
  return Json{{"values", values},
              {"mean", number(v.summary.mean)},
              {"sd", number(v.summary.sd)},
              {"lo", number(v.summary.interval.lo)},
              {"hi", number(v.summary.interval.hi)},
              {"replicates", v.summary.interval.count}};
}

/// The values are what is stored; the summary is recomputed from them on reading.
StudyRepValue valueFromJson(const Json& j) { return studyRepValue(readNumbers(j.at("values"))); }

Json testJson(const analysis::PairedComparison& t, const analysis::AdjustedP& holm) {
  return Json{{"mean_difference", number(t.difference.estimate)},
              {"lo", number(t.difference.lo)},
              {"hi", number(t.difference.hi)},
              {"p", number(t.pValue)},
              {"p_holm", number(holm.p)},
              {"family", holm.family},
              {"test", t.test},
              {"replicates", t.difference.count}};
}

analysis::PairedComparison testFromJson(const Json& j) {
  analysis::PairedComparison t;
  t.difference.estimate = readNumber(j, "mean_difference");
  t.difference.lo = readNumber(j, "lo");
  t.difference.hi = readNumber(j, "hi");
  t.difference.over = analysis::kOverReplicates;
  t.difference.count = j.value("replicates", std::size_t{0});
  t.pValue = readNumber(j, "p");
  t.test = j.value("test", std::string("paired t"));
  return t;
}

analysis::AdjustedP holmFromJson(const Json& j) {
  analysis::AdjustedP holm;
  holm.p = readNumber(j, "p_holm");
  holm.family = j.value("family", std::size_t{0});
  return holm;
}

} // namespace

Json studyReplicateStatsToJson(const StudyReplicateStats& stats) {
  Json j{{"seeds", stats.seeds},
         {"dirs", stats.dirs},
         {"interval", "Student-t 95% interval over the replicates (mean +- t_{0.975, n-1} sd / sqrt(n))"},
         {"paired_test", "paired t over the replicates (the same seed on both sides), df = n - 1"},
         {"adjustment", "p_holm: Holm-Bonferroni per metric over every test on it for the single tasks (the level "
                        "pairs, and for the gap each cell against its teacher); the mean-over-tasks level pairs "
                        "are a family of their own per metric"}};
  Json cells = Json::array();
  for (const StudyRepCell& c : stats.cells) {
    cells.push_back(Json{{"cell", c.cell},
                         {"task", c.task},
                         {"student_accuracy", valueJson(c.studentAccuracy)},
                         {"teacher_accuracy", valueJson(c.teacherAccuracy)},
                         {"gap", valueJson(c.gap)},
                         {"retained", valueJson(c.retained)},
                         {"source_gap", valueJson(c.sourceGap)},
                         {"gap_test", testJson(c.gapTest, c.gapHolm)}});
  }
  j["cells"] = cells;
  Json effects = Json::array();
  for (const StudyRepEffect& e : stats.effects) {
    Json levels = Json::array();
    for (std::size_t l = 0; l < e.levels.size(); ++l) {
      Json level = valueJson(e.levelMeans[l]);
      level["level"] = e.levels[l];
      levels.push_back(level);
    }
    Json pairs = Json::array();
    for (const StudyRepLevelPair& p : e.pairs) {
      Json diffs = Json::array();
      for (const double d : p.differences) {
        diffs.push_back(number(d));
      }
      Json pj{{"first", p.first}, {"second", p.second}, {"differences", diffs}};
      pj.update(testJson(p.test, p.holm));
      pairs.push_back(pj);
    }
    effects.push_back(Json{{"task", e.task},
                           {"metric", e.metric},
                           {"factor", e.factor},
                           {"levels", levels},
                           {"effect", valueJson(e.effect)},
                           {"spread", valueJson(e.spread)},
                           {"pairs", pairs}});
  }
  j["effects"] = effects;
  Json slopes = Json::array();
  for (const StudyRepSlope& s : stats.slopes) {
    Json sj = valueJson(s.slope);
    sj["task"] = s.task;
    sj["measure"] = s.measure;
    slopes.push_back(sj);
  }
  j["task_sensitivity"] = slopes;
  return j;
}

StudyReplicateStats studyReplicateStatsFromJson(const Json& j) {
  StudyReplicateStats stats;
  stats.seeds = j.at("seeds").get<std::vector<std::uint64_t>>();
  stats.dirs = j.at("dirs").get<std::vector<std::string>>();
  for (const Json& c : j.at("cells")) {
    StudyRepCell cell;
    cell.cell = c.at("cell").get<std::string>();
    cell.task = c.at("task").get<std::string>();
    cell.studentAccuracy = valueFromJson(c.at("student_accuracy"));
    cell.teacherAccuracy = valueFromJson(c.at("teacher_accuracy"));
    cell.gap = valueFromJson(c.at("gap"));
    cell.retained = valueFromJson(c.at("retained"));
    cell.sourceGap = valueFromJson(c.at("source_gap"));
    cell.gapTest = testFromJson(c.at("gap_test"));
    cell.gapHolm = holmFromJson(c.at("gap_test"));
    stats.cells.push_back(std::move(cell));
  }
  for (const Json& e : j.at("effects")) {
    StudyRepEffect effect;
    effect.task = e.at("task").get<std::string>();
    effect.metric = e.at("metric").get<std::string>();
    effect.factor = e.at("factor").get<std::string>();
    for (const Json& l : e.at("levels")) {
      effect.levels.push_back(l.at("level").get<std::string>());
      effect.levelMeans.push_back(valueFromJson(l));
    }
    effect.effect = valueFromJson(e.at("effect"));
    effect.spread = valueFromJson(e.at("spread"));
    for (const Json& p : e.at("pairs")) {
      StudyRepLevelPair pair;
      pair.first = p.at("first").get<std::string>();
      pair.second = p.at("second").get<std::string>();
      pair.differences = readNumbers(p.at("differences"));
      pair.test = testFromJson(p);
      pair.holm = holmFromJson(p);
      effect.pairs.push_back(std::move(pair));
    }
    stats.effects.push_back(std::move(effect));
  }
  for (const Json& s : j.at("task_sensitivity")) {
    stats.slopes.push_back({s.at("task").get<std::string>(), s.at("measure").get<std::string>(), valueFromJson(s)});
  }
  return stats;
}

} // namespace kdscope::core
