// Replicates of a job: running them and summarising them over seeds (replicates.h).
#include "core/study/replicates.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "core/analysis/analysis_results.h"
#include "core/analysis/multiple_testing.h"
#include "core/analysis/task_intervals.h"
#include "core/common/error.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

/// The key of a model's metric in the collected replicate values: "<model>/<metric>".
std::string metricKey(const std::string& model, const char* metric) { return model + '/' + metric; }

constexpr const char* kManifestFormat = "kdscope-replicates";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void writeText(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
      throw JobError(tmp + ": cannot write");
    }
  }
  fs::rename(tmp, path); // atomic: a reader sees the old file or the new one
}

Json jsonNumber(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json metricJson(const ReplicateMetric& m) {
  Json values = Json::array();
  for (const double v : m.values) {
    values.push_back(jsonNumber(v));
  }
  return Json{{"name", m.name},
              {"values", values},
              {"mean", jsonNumber(m.summary.mean)},
              {"sd", jsonNumber(m.summary.sd)},
              {"lo", jsonNumber(m.summary.interval.lo)},
              {"hi", jsonNumber(m.summary.interval.hi)},
              {"replicates", m.summary.interval.count},
              {"over", m.summary.interval.over}};
}

/// Seed order of the manifest: a run's value in replicate r.
struct Collector {
  std::map<std::string, std::vector<double>> values; ///< by "who/metric"
  std::vector<std::string> order;
  std::size_t replicates = 0;
  void add(const std::string& key, std::size_t r, double v) {
    auto [it, inserted] = values.try_emplace(key, std::vector<double>(replicates, kNaN));
    if (inserted) {
      order.push_back(key);
    }
    it->second[r] = v;
  }
};

} // namespace

const ReplicateMetric* ReplicateStudent::find(const std::string& metric) const {
  for (const auto& m : metrics) {
    if (m.name == metric) {
      return &m;
    }
  }
  return nullptr;
}

std::string replicateRunDir(const std::string& outDir, std::uint64_t seed) {
  return (fs::path(outDir) / ("rep-" + std::to_string(seed))).string();
}

std::string replicateManifestPath(const std::string& dir) { return (fs::path(dir) / "replicates.json").string(); }

std::string replicateSummaryPath(const std::string& dir) {
  return (fs::path(dir) / "replicate_summary.json").string();
}

bool isReplicateDir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(replicateManifestPath(path), ec);
}

ReplicateMetric replicateMetric(const std::string& name, const std::vector<double>& values) {
  ReplicateMetric m;
  m.name = name;
  m.values = values;
  std::vector<double> finite;
  for (const double v : values) {
    if (std::isfinite(v)) {
      finite.push_back(v);
    }
  }
  m.summary = analysis::summarizeReplicates(finite);
  return m;
}

JobResult runReplicates(const JobSpec& job, const RunOptions& options, const CancelToken& cancel,
                        const ProgressSink& progress) {
  JobResult overall;
  overall.runPath = replicateManifestPath(options.outDir);
  try {
    const std::vector<std::uint64_t> seeds = job.replicateSeeds();
    if (seeds.empty()) {
      throw InputError("replicates: the job lists no replicate");
    }
    fs::create_directories(options.outDir);
    Json manifest{{"format", kManifestFormat}, {"format_version", 1}, {"job_name", job.name},
                  {"split_seed", job.seed}, {"seeds", seeds}};
    Json runs = Json::array();
    for (const auto seed : seeds) {
      runs.push_back((fs::path("rep-" + std::to_string(seed)) / "run.h5").string());
    }
    manifest["runs"] = runs;
    manifest["job"] = Json::parse(jobToJson(job));
    writeText(replicateManifestPath(options.outDir), manifest.dump(2) + "\n");

    for (std::size_t r = 0; r < seeds.size(); ++r) {
      JobSpec replicate = job;
      replicate.replicates.clear();
      replicate.replicateCount = 0;
      replicate.replicateSeed = seeds[r];
      RunOptions repOptions = options;
      repOptions.outDir = replicateRunDir(options.outDir, seeds[r]);
      const std::string runPath = (fs::path(repOptions.outDir) / "run.h5").string();
      if (progress) {
        ProgressEvent e;
        e.kind = ProgressEvent::Kind::Phase;
        e.message = "replicate " + std::to_string(r + 1) + " of " + std::to_string(seeds.size()) + " (seed " +
                    std::to_string(seeds[r]) + ")";
        progress(e);
      }
      if (fs::exists(runPath)) {
        std::string status;
        try {
          status = RunReader(runPath).summary().status;
        } catch (const std::exception&) {
          status = "unreadable";
        }
        if (status == "complete") {
          continue; // done in an earlier invocation
        }
        if (status != "unreadable") {
          repOptions.resume = true;
          replicate = loadJobForResume(repOptions.outDir);
        }
      }
      const JobResult result = runJob(replicate, repOptions, cancel, progress);
      if (result.status != JobStatus::Succeeded) {
        overall.status = result.status;
        overall.message = "replicate seed " + std::to_string(seeds[r]) + ": " + result.message;
        return overall;
      }
      overall.estimatedBytes += result.estimatedBytes;
    }
    const ReplicateSet set = summarizeReplicateSet(options.outDir);
    writeText(replicateSummaryPath(options.outDir), replicateSummaryJson(set));
    overall.status = JobStatus::Succeeded;
  } catch (const InputError& e) {
    overall.status = JobStatus::BadInput;
    overall.message = e.what();
  } catch (const std::exception& e) {
    overall.status = JobStatus::Failed;
    overall.message = e.what();
  }
  return overall;
}

ReplicateManifest readReplicateManifest(const std::string& dir) {
  const std::string manifestPath = replicateManifestPath(dir);
  std::ifstream in(manifestPath);
  if (!in) {
    throw InputError(manifestPath + ": cannot read the replicate manifest");
  }
  std::stringstream text;
  text << in.rdbuf();
  const Json manifest = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object()) {
    throw InputError(manifestPath + ": not valid JSON");
  }
  if (manifest.value("format", std::string()) != kManifestFormat) {
    throw InputError(manifestPath + ": field 'format' is not '" + kManifestFormat + "'");
  }
  if (!manifest.contains("seeds") || !manifest["seeds"].is_array() || !manifest.contains("runs") ||
      !manifest["runs"].is_array() || manifest["seeds"].size() != manifest["runs"].size() ||
      manifest["seeds"].empty()) {
    throw InputError(manifestPath + ": fields 'seeds' and 'runs' must be arrays of the same, non-zero length");
  }
  ReplicateManifest out;
  out.jobName = manifest.value("job_name", std::string());
  for (std::size_t i = 0; i < manifest["seeds"].size(); ++i) {
    const Json& s = manifest["seeds"][i];
    const Json& p = manifest["runs"][i];
    if (!s.is_number_unsigned() || !p.is_string()) {
      throw InputError(manifestPath + ": seeds[" + std::to_string(i) + "] or runs[" + std::to_string(i) +
                       "] has the wrong type");
    }
    out.seeds.push_back(s.get<std::uint64_t>());
    out.runs.push_back((fs::path(dir) / p.get<std::string>()).string());
  }
  return out;
}

ReplicateSet summarizeReplicateSet(const std::string& dir) {
  ReplicateManifest manifest = readReplicateManifest(dir);
  ReplicateSet set;
  set.dir = dir;
  set.jobName = std::move(manifest.jobName);
  set.seeds = std::move(manifest.seeds);
  set.runs = std::move(manifest.runs);
  const std::size_t n = set.runs.size();

  // Per task: the values of every metric in every replicate.
  std::vector<std::string> taskOrder;
  std::map<std::string, Collector> byTask;
  std::map<std::string, std::vector<std::string>> studentsOf;
  std::map<std::string, std::int64_t> evalExamplesOf;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> discordant; // "task|a|b"
  for (std::size_t r = 0; r < n; ++r) {
    if (!fs::exists(set.runs[r])) {
      throw InputError(set.runs[r] + ": the run file of replicate seed " + std::to_string(set.seeds[r]) +
                       " is missing (run the job again to complete the replicates)");
    }
    const RunReader reader(set.runs[r]);
    const RunSummary summary = reader.summary();
    if (summary.status != "complete") {
      throw InputError(set.runs[r] + ": status is '" + summary.status + "', not 'complete'");
    }
    for (const auto& t : summary.tasks) {
      auto [it, inserted] = evalExamplesOf.try_emplace(t.name, t.evalExamples);
      if (!inserted && it->second != t.evalExamples) {
        throw InputError(set.runs[r] + ": task '" + t.name + "' has " + std::to_string(t.evalExamples) +
                         " eval examples where the first replicate has " + std::to_string(it->second) +
                         " (replicates must share the split)");
      }
    }
    for (const TaskHeadline& h : AnalysisResults(reader).headlines()) {
      if (byTask.find(h.task) == byTask.end()) {
        taskOrder.push_back(h.task);
        byTask[h.task].replicates = n;
      }
      Collector& c = byTask[h.task];
      auto& names = studentsOf[h.task];
      if (!h.students.empty()) {
        c.add("teacher/accuracy", r, h.students.front().teacherAccuracy);
        c.add("teacher/ece", r, h.students.front().teacherEce);
      }
      for (const StudentHeadline& s : h.students) {
        if (std::find(names.begin(), names.end(), s.name) == names.end()) {
          names.push_back(s.name);
        }
        const std::string p = s.name + "/";
        c.add(p + analysis::metric::kAccuracy, r, s.accuracy);
        c.add(p + analysis::metric::kTeacherAccuracy, r, s.teacherAccuracy);
        c.add(p + analysis::metric::kGap, r, s.gap);
        c.add(p + analysis::metric::kRetainedFraction, r, s.retainedFraction);
        c.add(p + analysis::metric::kAgreement, r, s.agreement);
        c.add(p + analysis::metric::kMeanKl, r, s.meanKl);
        c.add(p + analysis::metric::kEce, r, s.ece);
        c.add(p + analysis::metric::kTeacherEce, r, s.teacherEce);
        c.add(p + "geometry_agreement", r, s.geometryAgreement);
        c.add(p + "w_confidence_spearman", r, s.wConfidenceSpearman);
        for (const PairedTest& t : s.vsStudents) {
          auto& d = discordant[h.task + "|" + t.student + "|" + t.other];
          d.first += t.comparison.onlyFirst;
          d.second += t.comparison.onlySecond;
        }
        if (s.vsTeacher) {
          auto& d = discordant[h.task + "|" + s.name + "|teacher"];
          d.first += s.vsTeacher->comparison.onlyFirst;
          d.second += s.vsTeacher->comparison.onlySecond;
        }
      }
      if (h.hasKnowledge) {
        c.add("knowledge/universe", r, h.universe);
        c.add("knowledge/instance", r, h.instance);
        c.add("knowledge/domain", r, h.domain);
        c.add("knowledge/total", r, h.total);
      }
    }
  }

  for (const std::string& taskName : taskOrder) {
    Collector& c = byTask[taskName];
    ReplicateTask task;
    task.task = taskName;
    const auto values = [&c](const std::string& key) {
      const auto it = c.values.find(key);
      return it == c.values.end() ? std::vector<double>(c.replicates, kNaN) : it->second;
    };
    for (const char* m : {"accuracy", "ece"}) {
      task.teacher.push_back(replicateMetric(m, values(std::string("teacher/") + m)));
    }
    const auto& names = studentsOf[taskName];
    for (const std::string& name : names) {
      ReplicateStudent s;
      s.name = name;
      for (const std::string& key : c.order) {
        if (key.rfind(name + "/", 0) == 0) {
          s.metrics.push_back(replicateMetric(key.substr(name.size() + 1), values(key)));
        }
      }
      task.students.push_back(std::move(s));
    }
    const auto pair = [&](const std::string& a, const std::string& b) {
      ReplicatePair p;
      p.first = a;
      p.second = b;
      const auto x = values(metricKey(a, "accuracy"));
      const auto y = b == "teacher" ? values(metricKey(a, "teacher_accuracy")) : values(metricKey(b, "accuracy"));
      // Only replicates where both are known.
      std::vector<double> xa;
      std::vector<double> yb;
      for (std::size_t r = 0; r < x.size(); ++r) {
        if (std::isfinite(x[r]) && std::isfinite(y[r])) {
          xa.push_back(x[r]);
          yb.push_back(y[r]);
          p.differences.push_back(x[r] - y[r]);
        } else {
          p.differences.push_back(kNaN);
        }
      }
      p.test = analysis::pairedT(xa, yb);
      const auto it = discordant.find(taskName + "|" + a + "|" + b);
      if (it != discordant.end()) {
        p.onlyFirst = it->second.first;
        p.onlySecond = it->second.second;
      }
      task.pairs.push_back(std::move(p));
    };
    for (const std::string& name : names) {
      pair(name, "teacher");
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      for (std::size_t j = i + 1; j < names.size(); ++j) {
        pair(names[i], names[j]);
      }
    }
    // The class geometry and w's confidence correlation, student against student.
    for (const char* metric : {"geometry_agreement", "w_confidence_spearman"}) {
      for (std::size_t i = 0; i < names.size(); ++i) {
        for (std::size_t j = i + 1; j < names.size(); ++j) {
          const auto x = values(metricKey(names[i], metric));
          const auto y = values(metricKey(names[j], metric));
          ReplicatePair p;
          p.metric = metric;
          p.first = names[i];
          p.second = names[j];
          std::vector<double> xa;
          std::vector<double> yb;
          for (std::size_t r = 0; r < x.size(); ++r) {
            const bool both = std::isfinite(x[r]) && std::isfinite(y[r]);
            p.differences.push_back(both ? x[r] - y[r] : kNaN);
            if (both) {
              xa.push_back(x[r]);
              yb.push_back(y[r]);
            }
          }
          if (xa.empty()) {
            continue; // neither has the analysis (no class geometry, no w)
          }
          p.test = analysis::pairedT(xa, yb);
          task.metricPairs.push_back(std::move(p));
        }
      }
    }
    if (c.values.count("knowledge/total") != 0) {
      for (const char* m : {"universe", "instance", "domain", "total"}) {
        task.knowledge.push_back(replicateMetric(m, values(std::string("knowledge/") + m)));
      }
    }
    set.tasks.push_back(std::move(task));
  }
  // One family: every paired test the summary shows.
  analysis::HolmFamily family;
  for (ReplicateTask& t : set.tasks) {
    for (ReplicatePair& p : t.pairs) {
      family.add(p.test.pValue, &p.holm);
    }
    for (ReplicatePair& p : t.metricPairs) {
      family.add(p.test.pValue, &p.holm);
    }
  }
  family.adjust();
  return set;
}

std::string replicateSummaryJson(const ReplicateSet& set) {
  Json root{{"format", "kdscope-replicate-summary"},
            {"format_version", 1},
            {"job_name", set.jobName},
            {"seeds", set.seeds},
            {"interval", "Student-t 95% interval over the replicates (mean +- t_{0.975, n-1} sd / sqrt(n))"},
            {"paired_test", "paired t on the per-replicate accuracy differences (first - second), df = n - 1"},
            {"adjustment", "p_holm: Holm-Bonferroni over the family of every paired test in this summary (pairs "
                           "and metric_pairs of every task)"}};
  Json tasks = Json::array();
  for (const ReplicateTask& t : set.tasks) {
    Json task{{"task", t.task}};
    Json teacher = Json::array();
    for (const auto& m : t.teacher) {
      teacher.push_back(metricJson(m));
    }
    task["teacher"] = teacher;
    Json students = Json::array();
    for (const auto& s : t.students) {
      Json metrics = Json::array();
      for (const auto& m : s.metrics) {
        metrics.push_back(metricJson(m));
      }
      students.push_back(Json{{"name", s.name}, {"metrics", metrics}});
    }
    task["students"] = students;
    const auto pairsJson = [](const std::vector<ReplicatePair>& list, bool counts) {
      Json pairs = Json::array();
      for (const auto& p : list) {
        Json diffs = Json::array();
        for (const double d : p.differences) {
          diffs.push_back(jsonNumber(d));
        }
        Json pj{{"metric", p.metric},
                {"first", p.first},
                {"second", p.second},
                {"differences", diffs},
                {"mean_difference", jsonNumber(p.test.difference.estimate)},
                {"lo", jsonNumber(p.test.difference.lo)},
                {"hi", jsonNumber(p.test.difference.hi)},
                {"p", jsonNumber(p.test.pValue)},
                {"p_holm", jsonNumber(p.holm.p)},
                {"family", p.holm.family},
                {"test", p.test.test},
                {"replicates", p.test.difference.count}};
        if (counts) {
          pj["only_first_summed"] = p.onlyFirst;
          pj["only_second_summed"] = p.onlySecond;
        }
        pairs.push_back(pj);
      }
      return pairs;
    };
    task["pairs"] = pairsJson(t.pairs, true);
    task["metric_pairs"] = pairsJson(t.metricPairs, false);
    Json knowledge = Json::array();
    for (const auto& m : t.knowledge) {
      knowledge.push_back(metricJson(m));
    }
    task["knowledge"] = knowledge;
    tasks.push_back(task);
  }
  root["tasks"] = tasks;
  return root.dump(2) + "\n";
}

} // namespace kdscope::core
