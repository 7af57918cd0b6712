// AnalysisResults: the typed reads of the intervals, paired tests and loss pattern the
// "task" analysis writes (core/analysis/passes/intervals_pass.cpp; docs/run-format.md).
#include <algorithm>
#include <cmath>

#include "core/analysis/analysis_results.h"
#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "core/record/run_reader.h"

namespace kdscope::core {

namespace {

namespace an = analysis;
namespace entry = layout::entry;

class GroupReader {
public:
  GroupReader(const H5File& file, std::string group) : m_f(file), m_g(std::move(group)) {}

  [[noreturn]] void fail(const std::string& what) const { throw InputError(m_f.path() + ": " + m_g + ": " + what); }
  void need(const std::string& name) const {
    if (!m_f.hasAttr(m_g, name)) {
      fail("attribute '" + name + "' is missing");
    }
  }
  [[nodiscard]] double number(const std::string& name) const {
    need(name);
    return m_f.attrDouble(m_g, name);
  }
  [[nodiscard]] std::int64_t integer(const std::string& name) const {
    need(name);
    return m_f.attrInt(m_g, name);
  }
  [[nodiscard]] std::uint64_t count(const std::string& name) const {
    const std::int64_t v = integer(name);
    if (v < 0) {
      fail("attribute '" + name + "' is negative");
    }
    return static_cast<std::uint64_t>(v);
  }
  [[nodiscard]] std::string text(const std::string& name) const {
    return m_f.hasAttr(m_g, name) ? m_f.attrString(m_g, name) : std::string();
  }
  [[nodiscard]] std::vector<std::string> texts(const std::string& name) const {
    need(name);
    return m_f.attrStrings(m_g, name);
  }
  [[nodiscard]] BootstrapInfo bootstrap() const {
    BootstrapInfo b;
    b.resamples = static_cast<int>(integer("resamples"));
    b.seed = static_cast<std::uint64_t>(integer("seed"));
    b.level = number("level");
    b.examples = count("examples");
    return b;
  }
  /// <name>, <name>_lo, <name>_hi as an Interval made by `b`'s bootstrap.
  [[nodiscard]] an::Interval interval(const std::string& name, const BootstrapInfo& b, const char* over) const {
    an::Interval i;
    i.estimate = number(name);
    i.lo = number(name + "_lo");
    i.hi = number(name + "_hi");
    i.resamples = b.resamples;
    i.level = b.level;
    i.count = b.examples;
    i.over = over;
    return i;
  }
  /// A 1-D dataset <group>/<name> of `size` values.
  [[nodiscard]] std::vector<double> floats(const std::string& name, std::size_t size) const {
    const std::string path = layout::child(m_g, name);
    if (!m_f.isDataset(path) || m_f.typeClass(path) != H5TypeClass::Float || m_f.shape(path) != std::vector<std::uint64_t>{size}) {
      throw InputError(m_f.path() + ": " + path + ": expected a float dataset of " + std::to_string(size) + " values");
    }
    const std::vector<float> v = m_f.readFloat(path);
    return {v.begin(), v.end()};
  }
  [[nodiscard]] std::vector<std::uint64_t> counts(const std::string& name, std::size_t size) const {
    const std::string path = layout::child(m_g, name);
    if (!m_f.isDataset(path) || m_f.typeClass(path) != H5TypeClass::Integer || m_f.shape(path) != std::vector<std::uint64_t>{size}) {
      throw InputError(m_f.path() + ": " + path + ": expected an integer dataset of " + std::to_string(size) + " values");
    }
    std::vector<std::uint64_t> out;
    for (const std::int64_t v : m_f.readInt64(path)) {
      if (v < 0) {
        throw InputError(m_f.path() + ": " + path + ": holds a negative count");
      }
      out.push_back(static_cast<std::uint64_t>(v));
    }
    return out;
  }
  [[nodiscard]] const std::string& path() const { return m_g; }

private:
  const H5File& m_f;
  std::string m_g;
};

an::LossPattern readLossPattern(const H5File& f, const std::string& g, std::size_t classes) {
  const GroupReader r(f, g);
  const BootstrapInfo b = r.bootstrap();
  an::LossPattern lp;
  lp.examples = b.examples;
  lp.lost = r.count("lost");
  lp.note = r.text("note");
  if (lp.lost > lp.examples) {
    r.fail("attribute 'lost' exceeds 'examples'");
  }
  const char* stratified = "eval examples (stratified bootstrap)";
  for (const std::string& name : r.texts("factors")) {
    const GroupReader fr(f, layout::child(g, name));
    an::ContinuousFactor factor;
    factor.name = name;
    factor.definition = fr.text("definition");
    factor.meanLost = fr.number("mean_lost");
    factor.meanRest = fr.number("mean_rest");
    factor.medianLost = fr.number("median_lost");
    factor.medianRest = fr.number("median_rest");
    factor.test.u = fr.number("u");
    factor.test.pValue = fr.number("p_value");
    factor.test.exact = fr.text("test").find("exact") != std::string::npos;
    factor.test.n1 = lp.lost;
    factor.test.n0 = lp.examples - lp.lost;
    factor.test.rankBiserial = fr.interval("rank_biserial", b, stratified);
    lp.factors.push_back(std::move(factor));
  }
  if (lp.factors.empty()) {
    return lp;
  }
  const GroupReader cr(f, layout::child(g, entry::kGoldClass));
  an::ClassFactor& c = lp.goldClass;
  c.lost = cr.counts(entry::kLost, classes);
  c.rest = cr.counts(entry::kRest, classes);
  c.chiSquare.chiSquare = cr.number("chi_square");
  c.chiSquare.df = static_cast<int>(cr.integer("df"));
  c.chiSquare.pValue = cr.number("p_value");
  c.chiSquare.minExpected = cr.number("min_expected");
  c.cramersV = cr.interval("cramers_v", b, an::kOverExamples);
  c.chiSquare.cramersV = c.cramersV.estimate;
  const auto fisherP = cr.floats(entry::kFisherP, classes);
  const auto odds = cr.floats(entry::kOddsRatio, classes);
  const auto oddsLo = cr.floats(entry::kOddsRatioLo, classes);
  const auto oddsHi = cr.floats(entry::kOddsRatioHi, classes);
  for (std::size_t k = 0; k < classes; ++k) {
    an::FisherResult fisher;
    fisher.pValue = fisherP[k];
    fisher.oddsRatio = odds[k];
    c.fisher.push_back(fisher);
    an::Interval i;
    i.estimate = odds[k];
    i.lo = oddsLo[k];
    i.hi = oddsHi[k];
    i.level = b.level;
    i.count = c.lost[k] + c.rest[k];
    i.over = "eval examples (Woolf, log odds ratio)";
    c.oddsRatio.push_back(i);
  }
  const GroupReader lr(f, layout::child(g, entry::kLogistic));
  const std::string termPath = layout::child(lr.path(), entry::kTerm);
  if (!f.isDataset(termPath)) {
    lr.fail("dataset 'term' is missing");
  }
  const std::vector<std::string> terms = f.readStrings(termPath);
  const auto coefficient = lr.floats(entry::kCoefficient, terms.size());
  const auto lo = lr.floats(entry::kCoefficientLo, terms.size());
  const auto hi = lr.floats(entry::kCoefficientHi, terms.size());
  const auto se = lr.floats(entry::kStandardError, terms.size());
  const auto p = lr.floats(entry::kPValue, terms.size());
  an::LossLogistic& fit = lp.logistic;
  fit.converged = lr.integer("converged") != 0;
  fit.iterations = static_cast<int>(lr.integer("iterations"));
  fit.includesClass = lr.integer("includes_gold_class") != 0;
  fit.referenceClass = lr.integer("reference_class");
  fit.note = lr.text("note");
  for (std::size_t k = 0; k < terms.size(); ++k) {
    an::LogisticTerm t;
    t.name = terms[k];
    t.coefficient.value.estimate = coefficient[k];
    t.coefficient.value.lo = lo[k];
    t.coefficient.value.hi = hi[k];
    t.coefficient.value.level = b.level;
    t.coefficient.value.count = b.examples;
    t.coefficient.value.over = "eval examples (Wald)";
    t.coefficient.se = se[k];
    t.coefficient.z = se[k] > 0.0 ? coefficient[k] / se[k] : std::nan("");
    t.coefficient.pValue = p[k];
    fit.terms.push_back(std::move(t));
  }
  an::adjustLossPattern(lp);
  return lp;
}

} // namespace

const an::Interval* ModelIntervals::find(const std::string& metric) const {
  for (const an::NamedInterval& m : metrics) {
    if (m.name == metric) {
      return &m.interval;
    }
  }
  return nullptr;
}

std::optional<ModelIntervals> AnalysisResults::intervals(const std::string& task, const std::string& model) const {
  const H5File& f = m_reader.file();
  const std::string g = layout::analysisEntry(task, model, entry::kIntervals);
  if (!f.isGroup(g)) {
    return std::nullopt;
  }
  const GroupReader r(f, g);
  ModelIntervals out;
  out.bootstrap = r.bootstrap();
  out.method = r.text("method");
  for (const std::string& name : r.texts("metrics")) {
    out.metrics.push_back({name, r.interval(name, out.bootstrap, an::kOverExamples)});
  }
  return out;
}

std::vector<PairedTest> AnalysisResults::pairedTests(const std::string& task, const std::string& student) const {
  if (!m_reader.file().isGroup(layout::analysisEntry(task, student, entry::kPaired))) {
    return {};
  }
  auto all = pairedTestsOfTask(task);
  const auto it = all.find(student);
  return it == all.end() ? std::vector<PairedTest>{} : std::move(it->second);
}

std::map<std::string, std::vector<PairedTest>> AnalysisResults::pairedTestsOfTask(const std::string& task) const {
  std::map<std::string, std::vector<PairedTest>> byModel;
  for (const std::string& model : m_reader.models(task)) {
    std::vector<PairedTest> tests = pairedTestsAsRecorded(task, model);
    if (!tests.empty()) {
      byModel.emplace(model, std::move(tests));
    }
  }
  // The task's family: every pair of models with a paired test, each pair once (both
  // directions of a student pair are in the file, with the same McNemar p).
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<double> raw;
  const auto keyOf = [](const std::string& a, const std::string& b) {
    return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
  };
  for (const std::string& model : m_reader.models(task)) {
    const auto tests = byModel.find(model);
    if (tests == byModel.end()) {
      continue;
    }
    for (const PairedTest& t : tests->second) {
      const auto key = keyOf(t.student, t.other);
      if (std::find(pairs.begin(), pairs.end(), key) == pairs.end()) {
        pairs.emplace_back(key);
        raw.push_back(t.comparison.mcnemarP);
      }
    }
  }
  const std::vector<double> adjusted = an::holmAdjust(raw);
  const auto family =
      static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), [](double p) { return std::isfinite(p); }));
  for (auto& [model, tests] : byModel) {
    for (PairedTest& t : tests) {
      const auto at = std::find(pairs.begin(), pairs.end(), keyOf(t.student, t.other)) - pairs.begin();
      t.mcnemarHolm.p = adjusted[static_cast<std::size_t>(at)];
      t.mcnemarHolm.family = std::isfinite(t.mcnemarHolm.p) ? family : 0;
    }
  }
  return byModel;
}

std::vector<PairedTest> AnalysisResults::pairedTestsAsRecorded(const std::string& task,
                                                               const std::string& student) const {
  const H5File& f = m_reader.file();
  const std::string g = layout::analysisEntry(task, student, entry::kPaired);
  std::vector<PairedTest> out;
  if (!f.isGroup(g)) {
    return out;
  }
  for (const std::string& other : f.childrenInCreationOrder(g)) {
    const GroupReader r(f, layout::child(g, other));
    PairedTest t;
    t.student = student;
    t.other = other;
    t.otherRole = r.text("other_role");
    t.bootstrap = r.bootstrap();
    an::CorrectnessComparison& c = t.comparison;
    c.examples = t.bootstrap.examples;
    c.onlyFirst = r.count("only_this");
    c.onlySecond = r.count("only_other");
    c.bothRight = r.count("both_right");
    c.bothWrong = r.count("both_wrong");
    if (c.onlyFirst + c.onlySecond + c.bothRight + c.bothWrong != c.examples) {
      r.fail("only_this + only_other + both_right + both_wrong is not 'examples'");
    }
    c.mcnemarP = r.number("mcnemar_p");
    c.accuracyDifference.difference = r.interval("accuracy_difference", t.bootstrap, an::kOverExamples);
    c.accuracyDifference.pValue = r.number("bootstrap_p");
    c.accuracyDifference.test = "paired bootstrap (centred)";
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<an::LossPattern> AnalysisResults::lossPattern(const std::string& task, const std::string& student) const {
  const H5File& f = m_reader.file();
  const std::string g = layout::analysisEntry(task, student, entry::kLossPattern);
  if (!f.isGroup(g)) {
    return std::nullopt;
  }
  const std::string t = layout::task(task);
  if (!f.hasAttr(t, layout::attr::kNumClasses)) {
    throw InputError(f.path() + ": " + t + ": attribute 'num_classes' is missing");
  }
  const std::int64_t classes = f.attrInt(t, layout::attr::kNumClasses);
  if (classes <= 0) {
    throw InputError(f.path() + ": " + t + ": attribute 'num_classes' is not positive");
  }
  return readLossPattern(f, g, static_cast<std::size_t>(classes));
}

} // namespace kdscope::core
