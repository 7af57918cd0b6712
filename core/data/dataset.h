#pragma once
/// Tasks as plain data, free of torch: text examples as token ids, vector examples as
/// float rows. Loaders fill these from the cached real data of DATA.md or generate them.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/common/cancel.h"

#include "core/job/job_spec.h"

namespace kdscope::core {

enum class TaskKind { Text, Vector };

/// One split (train or eval). For text tasks `tokens` is row-major [size, seqLen] with
/// PAD = 0 after the sequence; for vector tasks `features` is row-major [size, dim].
struct Split {
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> tokens;
  std::vector<float> features;
  std::vector<std::string> texts;  ///< original text per example (text tasks), for display;
                                   ///< a sentence pair is "a\nb"
  /// Sentence pairs: the second text b of each example (texts[i] is then a + "\n" + b), so
  /// that a model's own tokenizer can encode the pair as a pair; empty when the task has none.
  std::vector<std::string> pairTexts;
  /// Optional row-major [size, seqLen] segment ids of sentence pairs (0 for [CLS] a [SEP], 1
  /// for b [SEP], 0 on padding), as a model's own tokenizer gives them (retokenizeTask);
  /// empty means all 0. makeBatch passes them on as Batch::tokenTypes.
  std::vector<std::int64_t> tokenTypes;
  std::vector<std::int64_t> sourceIndex; ///< index in the loaded dataset before splitting
  std::vector<std::string> groups; ///< source group per example (spam: its corpus folder,
                                   ///< e.g. "hard-ham-1"); empty when the task has none
  [[nodiscard]] std::size_t size() const { return labels.size(); }
  /// The first text of example i: texts[i] itself, or a of a pair "a\nb".
  [[nodiscard]] std::string firstText(std::size_t i) const {
    if (pairTexts.empty()) {
      return texts[i];
    }
    return texts[i].substr(0, texts[i].size() - pairTexts[i].size() - 1);
  }
};

/// Where a task's data came from, recorded as attributes of the task's group in the run
/// file (docs/run-format.md, "Task source"). Empty `source`: not recorded.
struct TaskProvenance {
  std::string source;        ///< "builtin" or "file"
  std::string path;          ///< file tasks: the data file (absolute as run)
  std::uint64_t bytes = 0;   ///< its size when loaded
  std::string format;        ///< jsonl, csv, tsv, npy, h5
  std::string evalPath;      ///< optional eval file
  std::string labelPath;     ///< arrays: the label file
  std::string fields;        ///< the field mapping as JSON text ({"text": ..., "label": ...})
  std::string tokenizer;     ///< text tasks: "word" or "wordpiece"
  std::string vocabPath;     ///< wordpiece: the vocab.txt
  bool lowerCase = true;     ///< wordpiece: lower-casing on
};

struct TaskData {
  std::string name;
  TaskKind kind = TaskKind::Text;
  std::vector<std::string> classNames;
  std::vector<std::string> vocab; ///< text tasks: id -> token; 0 [PAD], 1 [UNK], 2 [CLS]
  int seqLen = 0;                 ///< text tasks: tokens per example
  int dim = 0;                    ///< vector tasks: features per example
  std::vector<int> superClassOf;  ///< synthetic_hierarchy: super-class of each class
  Split train;
  Split eval;
  TaskProvenance provenance; ///< set by loadTask
  [[nodiscard]] int numClasses() const { return static_cast<int>(classNames.size()); }
};

/// Raw examples as a loader reads them, before splitting and tokenising.
struct RawDataset {
  TaskKind kind = TaskKind::Text;
  std::vector<std::string> classNames;
  std::vector<std::int64_t> labels;
  std::vector<std::string> texts;  ///< text tasks
  std::vector<float> features;     ///< vector tasks, row-major
  int dim = 0;
  std::vector<int> superClassOf;
  std::vector<std::string> groups; ///< source group per example, or empty (see Split::groups)
  std::vector<std::string> pairTexts; ///< sentence pairs: the second text of each example, else empty
  std::vector<std::uint8_t> inEval;   ///< a split fixed by the data (1: eval) per example, else empty
};

/// Cancel and progress of a long read of a task file (loadTaskFile, loadFileTask, loadTask):
/// every `rowsPerCheck` rows the reader calls `progress` with the rows read so far (all of
/// the task's files) and the file it reads, then throws Cancelled (core/common/cancel.h,
/// caught by runJob) when `cancel` is set. Feature arrays (.npy, .h5) report and poll after
/// each block they read; built-in tasks ignore it.
struct TaskReadControl {
  const CancelToken* cancel = nullptr;
  std::function<void(std::size_t rows, const std::string& path)> progress;
  std::size_t rowsPerCheck = 4096;
};

/// The data cache folder: `override` if non-empty, else $KDSCOPE_DATA_DIR, else
/// $HOME/.cache/kdscope/data.
std::string resolveDataDir(const std::string& override);

/// The task names loadTask knows.
const std::vector<std::string>& knownTasks();

/// Reads (or generates) the raw dataset of a task. Throws InputError naming the task and
/// the missing file, with the set-up command that fetches it.
RawDataset loadRawDataset(const TaskSpec& spec, const std::string& dataDir, std::uint64_t seed);

/// Loads a task: raw data, seeded subsample (spec.maxExamples), seeded stratified
/// train/eval split, tokenizer built from the train split only. Deterministic in `seed`.
TaskData loadTask(const TaskSpec& spec, const std::string& dataDir, std::uint64_t seed,
                  const TaskReadControl& control = {});

/// Builds a task from raw data (used by loadTask and by tests with in-memory data).
/// Text tasks: KDScope's word tokenizer built from the train split, or, when spec.vocab is
/// set, WordPiece over that BERT-style vocab.txt (ids renumbered so that [PAD], [UNK],
/// [CLS] are 0, 1, 2 as KDScope's models and augmentation expect; the other tokens follow in
/// the file's order). Sentence pairs: the word tokenizer reads "a\nb"; WordPiece gives
/// [CLS] a [SEP] b [SEP] (KDScope's transformer has no segment embedding: the [SEP] marks
/// the boundary). With raw.inEval the split is the data's (maxExamples and evalFraction do
/// not apply), in a seeded order.
TaskData buildTask(const TaskSpec& spec, RawDataset raw, std::uint64_t seed);

} // namespace kdscope::core
