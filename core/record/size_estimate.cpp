#include "core/record/size_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/record/run_layout.h"

namespace kdscope::core {

namespace {

// Compression ratios (stored / raw) of shuffle + deflate level 4, measured on run files of
// the sample jobs (docs/run-format.md, "Size estimate"). Activations of trained models have
// little redundancy beyond their exponent bytes; attention rows are probabilities with
// exact zeros at padding keys; integer labels and token ids are small numbers in 8 bytes.
constexpr double kFloatRatio = 0.90;     // logits, hidden states, classifier weights
constexpr double kHalfRatio = 0.92;      // the same in float16 (less exponent redundancy)
constexpr double kAttentionRatio = 0.65; // attention probabilities
constexpr double kProbabilityRatio = 0.72; // train_records: probabilities in (0, 1), many near 1
constexpr double kIntegerRatio = 0.12;   // labels, token ids, indices
// HDF5 metadata: object headers (with attributes), and for a chunked dataset the root node
// of its version 1 B-tree, sized for 64 entries whatever the number of chunks.
constexpr std::uint64_t kObjectHeaderBytes = 600;
constexpr std::uint64_t kGroupBytes = 1200;
constexpr std::uint64_t kFileBytes = 6000; // superblock, root group and its attributes, free space
// Logs are stored uncompressed in chunks of this many rows (run_writer.cpp).
constexpr std::uint64_t kLogChunkRows = 256;
// A variable-length string costs its bytes, a 16-byte global heap object header (padded to
// 8 bytes) and a 16-byte reference in the dataset.
constexpr std::uint64_t kStringOverhead = 36;

std::uint64_t btreeBytes(std::size_t rank) { return 64 * (16 + 8 * (rank + 1)) + 24; }

std::uint64_t chunkedDataset(double rawBytes, double ratio, std::size_t rank) {
  return static_cast<std::uint64_t>(std::llround(rawBytes * ratio)) + kObjectHeaderBytes + btreeBytes(rank);
}

/// An uncompressed extendable log column of `rows` rows of `elementBytes`.
std::uint64_t logColumn(std::uint64_t rows, std::uint64_t elementBytes) {
  const std::uint64_t chunks = (rows + kLogChunkRows - 1) / kLogChunkRows;
  return chunks * kLogChunkRows * elementBytes + kObjectHeaderBytes + btreeBytes(1);
}

std::uint64_t strings(const std::vector<std::string>& values) {
  std::uint64_t bytes = kObjectHeaderBytes;
  for (const auto& value : values) {
    bytes += (value.size() + 7) / 8 * 8 + kStringOverhead;
  }
  return bytes;
}

long loggedRows(long totalSteps, int logEvery) {
  if (totalSteps <= 0) {
    return 0;
  }
  const long rows = totalSteps / logEvery;
  return rows + (totalSteps % logEvery != 0 ? 1 : 0);
}

int termCount(const ObjectiveSpec& objective) {
  int terms = 1; // ce
  for (const double weight : {objective.lambda, objective.logitMse, objective.hiddenMse, objective.hiddenCosine,
                              objective.pkd, objective.attentionKl, objective.attentionMse, objective.infoNce,
                              objective.miAlpha}) {
    terms += weight > 0.0 ? 1 : 0;
  }
  return terms;
}

/// The shapes of a model's recordings on a task.
struct ModelShape {
  std::uint64_t layers = 0;            ///< Lyr
  std::uint64_t heads = 0;             ///< H (0: no attention)
  std::uint64_t width = 0;             ///< D of eval/hidden
  std::uint64_t storedHiddenWidths = 0; ///< sum over Lyr + 1 of the unpadded widths
  std::uint64_t classifierWidth = 0;
};

ModelShape shapeOf(const ArchitectureSpec& arch, const TaskData& task) {
  ModelShape shape;
  if (arch.type == "mlp") {
    shape.layers = arch.hidden.size();
    std::uint64_t width = static_cast<std::uint64_t>(std::max(task.dim, 0));
    shape.storedHiddenWidths = width;
    for (const int w : arch.hidden) {
      width = std::max<std::uint64_t>(width, static_cast<std::uint64_t>(w));
      shape.storedHiddenWidths += static_cast<std::uint64_t>(w);
    }
    shape.width = width;
    shape.classifierWidth = arch.hidden.empty() ? static_cast<std::uint64_t>(task.dim)
                                                : static_cast<std::uint64_t>(arch.hidden.back());
  } else {
    shape.layers = static_cast<std::uint64_t>(arch.layers);
    shape.heads = static_cast<std::uint64_t>(arch.heads);
    shape.width = static_cast<std::uint64_t>(arch.width);
    shape.storedHiddenWidths = (shape.layers + 1) * shape.width;
    shape.classifierWidth = shape.width;
  }
  return shape;
}

} // namespace

std::string formatBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, value < 10.0 ? "%.2f %s" : "%.1f %s", value, units[unit]);
  }
  return text;
}

std::string RunSizeEstimate::describe(std::size_t largestParts) const {
  std::string text = formatBytes(bytes);
  const std::size_t shown = std::min(largestParts, parts.size());
  if (shown > 0) {
    text += " (";
    for (std::size_t i = 0; i < shown; ++i) {
      text += (i ? ", " : "") + parts[i].what + " " + formatBytes(parts[i].bytes);
    }
    text += parts.size() > shown ? ", ...)" : ")";
  }
  return text;
}

RunSizeEstimate estimateRunFileSize(const JobSpec& job, const std::vector<TaskData>& tasks,
                                    const TorchScriptSizes& torchScript) {
  std::map<std::string, std::uint64_t> parts;
  const RecordingSpec& rec = job.recording;
  const std::uint64_t activationBytes = rec.float16 ? 2 : 4;
  const double activationRatio = rec.float16 ? kHalfRatio : kFloatRatio;
  parts["file metadata and the job"] = kFileBytes + 2 * (job.name.size() + 3000);

  for (const TaskData& task : tasks) {
    const auto n = static_cast<std::uint64_t>(task.eval.size());
    const auto nTrain = static_cast<std::uint64_t>(task.train.size());
    const auto classes = static_cast<std::uint64_t>(task.numClasses());
    const auto len = static_cast<std::uint64_t>(task.kind == TaskKind::Text ? std::max(task.seqLen, 0) : 0);
    const bool text = task.kind == TaskKind::Text;

    std::uint64_t taskBytes = 3 * kGroupBytes;
    for (const auto& name : task.classNames) {
      taskBytes += name.size() + kStringOverhead;
    }
    taskBytes += chunkedDataset(8.0 * n, kIntegerRatio, 1);
    if (text) {
      taskBytes += chunkedDataset(8.0 * n * len, kIntegerRatio, 2);
      taskBytes += strings(task.vocab);
      if (!task.eval.texts.empty()) {
        taskBytes += strings(task.eval.texts);
      }
    }
    if (!task.eval.sourceIndex.empty()) {
      taskBytes += chunkedDataset(8.0 * n, kIntegerRatio * 2, 1);
    }
    if (!task.eval.groups.empty()) {
      taskBytes += strings(task.eval.groups);
    }
    if (!task.superClassOf.empty()) {
      taskBytes += 8 * task.superClassOf.size() + kObjectHeaderBytes;
    }
    if (rec.exampleRecords) {
      taskBytes += chunkedDataset(8.0 * nTrain, kIntegerRatio, 1);
      if (!task.train.sourceIndex.empty()) {
        taskBytes += chunkedDataset(8.0 * nTrain, kIntegerRatio * 2, 1);
      }
    }
    parts["task data (labels, tokens, vocabulary, texts)"] += taskBytes;

    struct Model {
      std::string name;
      const ArchitectureSpec* arch;
      const TrainingSpec* training;
      int terms;
      bool trained;
    };
    std::vector<Model> models;
    const bool foreignMode = job.mode == "compare" || job.mode == "distil";
    models.push_back({"teacher", &job.teacher.architecture, &job.teacher.training, 1,
                      job.teacher.checkpoint.empty() && !foreignMode});
    for (const StudentSpec& student : job.students) {
      models.push_back({student.name, &student.architecture, &student.training, termCount(student.objective),
                        job.mode != "compare"});
    }
    const auto taskSizes = torchScript.find(task.name);
    for (const Model& model : models) {
      ModelShape shape = shapeOf(*model.arch, task);
      bool hasHidden = true;
      bool hasAttention = true;
      bool hasClassifier = true;
      const RecordedModelSizes* given = nullptr;
      if (taskSizes != torchScript.end()) {
        const auto it = taskSizes->second.find(model.name);
        given = it != taskSizes->second.end() ? &it->second : nullptr;
      }
      if (given != nullptr) {
        shape.layers = given->layers;
        shape.heads = given->heads;
        shape.width = given->width;
        shape.storedHiddenWidths = (given->layers + 1) * given->width;
        shape.classifierWidth = given->classifierWidth;
        hasHidden = given->hidden;
        hasAttention = given->attention;
        hasClassifier = given->classifier;
        if (text) {
          parts["token counts of TorchScript models"] += chunkedDataset(8.0 * n, kIntegerRatio, 1);
          // Their own tokens of the kept examples and their vocabulary (<model>/eval/tokens, vocab).
          const std::uint64_t nAtt = std::min<std::uint64_t>(static_cast<std::uint64_t>(rec.attentionExamples), n);
          if (nAtt > 0 && given->attention && !given->vocab.empty()) {
            parts["own tokens and vocabulary of TorchScript models"] +=
                chunkedDataset(8.0 * nAtt * len, kIntegerRatio, 2) + strings(given->vocab);
          }
        }
      }
      parts["model groups and attributes"] += kGroupBytes + 2000;
      if (model.trained) {
        const long batches = (static_cast<long>(nTrain) + model.training->batchSize - 1) / model.training->batchSize;
        const auto steps = static_cast<std::uint64_t>(loggedRows(batches * model.training->epochs, rec.logEvery));
        std::uint64_t logs = 2 * kGroupBytes + logColumn(steps, 8) + logColumn(steps, 4);
        logs += static_cast<std::uint64_t>(model.terms) * logColumn(steps, 4);
        const auto epochs = static_cast<std::uint64_t>(model.training->epochs);
        logs += 2 * logColumn(epochs, 8) + 2 * logColumn(epochs, 4);
        parts["training logs and eval curves"] += logs;
      }
      if (rec.exampleRecords) {
        const std::uint64_t rows = model.trained ? static_cast<std::uint64_t>(model.training->epochs) : 1;
        // One chunk per row: a B-tree entry per chunk, and a node per 64 of them.
        const std::uint64_t chunks = rows * std::max<std::uint64_t>(1, (4 * nTrain + (1 << 20) - 1) >> 20);
        parts["train_records (per-example training records)"] +=
            kGroupBytes + chunkedDataset(4.0 * rows * nTrain, kProbabilityRatio, 2) +
            (chunks / 64) * btreeBytes(2) + 2 * logColumn(rows, 8);
      }
      parts[layout::kEvalLogitsName] += chunkedDataset(4.0 * n * classes, kFloatRatio, 2) + kGroupBytes;
      if (rec.hidden && hasHidden) {
        // MLP layers narrower than D are zero-padded; the zeros compress away.
        parts[layout::kEvalHiddenName] +=
            chunkedDataset(static_cast<double>(activationBytes) * n * shape.storedHiddenWidths, activationRatio, 3);
      }
      if (text && shape.heads > 0) {
        const std::uint64_t nAtt = std::min<std::uint64_t>(static_cast<std::uint64_t>(rec.attentionExamples), n);
        if (nAtt > 0 && hasAttention) {
          parts[layout::kEvalAttentionName] += chunkedDataset(
              static_cast<double>(activationBytes) * nAtt * shape.layers * shape.heads * len * len,
              rec.float16 ? kAttentionRatio * 1.1 : kAttentionRatio, 5);
        }
        const std::uint64_t nTok = std::min<std::uint64_t>(static_cast<std::uint64_t>(rec.tokenHiddenExamples), n);
        if (nTok > 0 && hasHidden) {
          parts[layout::kEvalTokenHiddenName] += chunkedDataset(
              static_cast<double>(activationBytes) * nTok * (shape.layers + 1) * len * shape.width, activationRatio, 4);
        }
      }
      if (hasClassifier) {
        parts["classifier weights"] +=
            kGroupBytes + chunkedDataset(4.0 * classes * (shape.classifierWidth + 1), kFloatRatio, 2) +
            chunkedDataset(0, 1.0, 1);
      }
    }
  }

  RunSizeEstimate estimate;
  for (const auto& [what, bytes] : parts) {
    estimate.bytes += bytes;
    estimate.parts.push_back({what, bytes});
  }
  std::stable_sort(estimate.parts.begin(), estimate.parts.end(),
                   [](const RunSizeEstimate::Part& a, const RunSizeEstimate::Part& b) { return a.bytes > b.bytes; });
  return estimate;
}

} // namespace kdscope::core
