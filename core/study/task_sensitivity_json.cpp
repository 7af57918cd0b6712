#include "core/study/task_sensitivity_json.h"

#include <cmath>
#include <limits>

namespace kdscope::core {

namespace {

using Json = nlohmann::ordered_json;

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double readNumber(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return j[key].get<double>();
}

Json numbers(const std::vector<double>& values) {
  Json out = Json::array();
  for (const double v : values) {
    out.push_back(number(v));
  }
  return out;
}

std::vector<double> readNumbers(const Json& j, const char* key) {
  std::vector<double> out;
  if (j.contains(key)) {
    for (const Json& v : j.at(key)) {
      out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
    }
  }
  return out;
}

} // namespace

Json taskSensitivityToJson(const std::vector<TaskSensitivity>& slopes) {
  Json out = Json::array();
  for (const TaskSensitivity& s : slopes) {
    out.push_back({{"task", s.task},
                   {"measure", s.measure},
                   {"slope", number(s.slope.estimate)},
                   {"lo", number(s.slope.lo)},
                   {"hi", number(s.slope.hi)},
                   {"over", s.slope.over},
                   {"level", s.slope.level},
                   {"resamples", s.slope.resamples},
                   {"examples", s.slope.count},
                   {"intercept", number(s.intercept)},
                   {"cells", s.cells},
                   {"rank", s.rank},
                   {"ratios", numbers(s.ratios)},
                   {"retained", numbers(s.retained)}});
  }
  return out;
}

std::vector<TaskSensitivity> taskSensitivityFromJson(const Json& j) {
  std::vector<TaskSensitivity> out;
  for (const Json& e : j) {
    TaskSensitivity s;
    s.task = e.at("task").get<std::string>();
    s.measure = e.at("measure").get<std::string>();
    s.slope.estimate = readNumber(e, "slope");
    s.slope.lo = readNumber(e, "lo");
    s.slope.hi = readNumber(e, "hi");
    s.slope.over = e.value("over", std::string());
    s.slope.level = e.value("level", 0.95);
    s.slope.resamples = e.value("resamples", 0);
    s.slope.count = e.value("examples", std::size_t{0});
    s.intercept = readNumber(e, "intercept");
    s.cells = e.value("cells", std::size_t{0});
    s.rank = e.value("rank", 0);
    s.ratios = readNumbers(e, "ratios");
    s.retained = readNumbers(e, "retained");
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace kdscope::core
