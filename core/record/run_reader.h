#pragma once
/// Reads run files for the command line and the GUI. Checks format, version, shapes and
/// types before it allocates; every error is an InputError naming the file and object.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kdscope::core {

class H5File;

struct ModelSummary {
  std::string name;
  std::string role; ///< "teacher" | "student"
  std::string architectureJson;
  std::string objectiveJson;
  std::int64_t parameterCount = 0;
  std::string precision;         ///< trained at "fp32" or "bf16"; empty when not recorded
  std::int64_t trainSteps = 0;   ///< last logged step (0 when none)
  double finalLoss = 0.0;        ///< last logged total loss
  double evalAccuracy = -1.0;    ///< from eval/logits and eval/labels; -1 when absent
};

struct TaskSummary {
  std::string name;
  std::int64_t numClasses = 0;
  std::vector<std::string> classNames;
  std::int64_t evalExamples = 0;
  /// Where the data came from: the task group's source attributes that are present, as
  /// (name, value as text) in the order of docs/run-format.md ("Task source"); empty for
  /// files written before they existed.
  std::vector<std::pair<std::string, std::string>> source;
  std::vector<ModelSummary> models; ///< teacher first, then students in file order
};

struct RunSummary {
  std::string path;
  std::int64_t formatVersion = 0;
  std::string status;
  std::string statusMessage;
  std::int64_t worldSize = 1; ///< processes that trained it (attribute world_size; 1 when absent)
  std::string kdscopeVersion;
  std::string jobJson;
  std::vector<TaskSummary> tasks;
};

struct TrainLog {
  std::vector<std::int64_t> steps;
  std::vector<float> loss;
  std::map<std::string, std::vector<float>> terms;
};

struct EvalCurve {
  std::vector<std::int64_t> epoch;
  std::vector<std::int64_t> step;
  std::vector<float> accuracy;
  std::vector<float> loss;
};

/// Per-example training records of one model (docs/run-format.md, train_records).
struct TrainRecords {
  std::string name;                 ///< "p_true" (teacher) or "q_true" (student)
  std::vector<std::int64_t> epoch;  ///< [E]
  std::vector<std::int64_t> step;   ///< [E]
  std::uint64_t examples = 0;       ///< Ntrain
  std::vector<float> values;        ///< [E, Ntrain] row-major: probability of the true class
};

class RunReader {
public:
  /// Opens read-only and checks the root attributes (format, format_version <= 1).
  explicit RunReader(const std::string& path);
  ~RunReader();
  RunReader(RunReader&&) noexcept;
  RunReader& operator=(RunReader&&) noexcept;

  [[nodiscard]] RunSummary summary() const;
  [[nodiscard]] std::vector<std::string> tasks() const;
  [[nodiscard]] std::vector<std::string> models(const std::string& task) const;
  [[nodiscard]] std::vector<std::int64_t> evalLabels(const std::string& task) const;
  /// Row-major [N, C]; `classes` receives C.
  [[nodiscard]] std::vector<float> evalLogits(const std::string& task, const std::string& model,
                                              std::int64_t* classes = nullptr) const;
  [[nodiscard]] TrainLog trainLog(const std::string& task, const std::string& model) const;
  [[nodiscard]] EvalCurve evalCurve(const std::string& task, const std::string& model) const;
  /// /tasks/<task>/train/labels; empty when the run kept no per-example records.
  [[nodiscard]] std::vector<std::int64_t> trainLabels(const std::string& task) const;
  /// The model's train_records; empty (no rows) when it has none.
  [[nodiscard]] TrainRecords trainRecords(const std::string& task, const std::string& model) const;

  /// Checks the element type, rank and the dimensions other objects fix of every dataset
  /// this version of the format defines (eval outputs, logs, records, classifier), and the
  /// attributes the summary reads, without reading any data. Throws InputError naming the
  /// first object at fault. A run cut off by a crash passes: absent datasets are not errors.
  /// summary() calls it first.
  void validate() const;
  [[nodiscard]] const H5File& file() const;

private:
  std::unique_ptr<H5File> m_file;
};

} // namespace kdscope::core
