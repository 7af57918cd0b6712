#pragma once
/// A task read from the user's own file: JSON Lines, CSV or TSV rows with a text field (and
/// an optional second text for sentence pairs) or numeric feature columns, a label (a name or
/// an integer), an optional id and an optional split column. Files are streamed record by
/// record, so memory holds what the task keeps (texts, labels, features), never the file's
/// bytes. Every bad row is refused before any training, naming the file, line and field.
/// docs/data.md ("Your own data") documents the rules.

#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/job/job_spec.h"

namespace kdscope::core {

enum class TaskFileFormat {
  Auto,      ///< from the extension: .jsonl/.ndjson/.json, .csv, .tsv/.tab
  JsonLines, ///< one JSON object per line; blank lines skipped
  Csv,       ///< RFC 4180: header row, "quoted" fields may hold commas, "" and line breaks
  Tsv,       ///< header row, tab-separated, no quoting: one record per line
};

enum class LabelKind {
  Auto,    ///< integers if the first label is an integer, else names; mixing is an error
  Name,    ///< every label is a class name (CSV "1" is the class named "1")
  Integer, ///< class indices 0..numClasses-1
};

/// What to read and which fields hold what.
struct TaskFileSpec {
  std::string path;                       ///< the data file (the train file if evalPath is set)
  std::string evalPath;                   ///< optional separate eval file, same format and fields
  TaskFileFormat format = TaskFileFormat::Auto;
  std::string textField;                  ///< text tasks: the text
  std::string textPairField;              ///< optional second text (premise/hypothesis pairs)
  std::vector<std::string> featureFields; ///< vector tasks: the numeric columns, in order
  std::string labelField = "label";
  std::string idField;                    ///< optional example id (kept as text)
  std::string splitField;                 ///< optional: train / eval (dev, validation, test)
  LabelKind labelKind = LabelKind::Auto;
  int numClasses = 0;                     ///< integer labels: > 0 bounds them to 0..numClasses-1
};

/// A task file as read: the raw structure the built-in loaders produce, plus what files add.
struct TaskFile {
  RawDataset raw;                     ///< texts (the first text of a pair), labels, features
  std::vector<std::string> pairTexts;  ///< text pairs only: the second text of each example
  std::vector<std::string> ids;        ///< per example when idField is set, else empty
  std::vector<std::uint8_t> inEval;    ///< per example (1: eval) when the file fixes the split
  std::vector<std::size_t> lines;      ///< the line each example starts on (for messages)
  [[nodiscard]] bool fixedSplit() const { return !inEval.empty(); }
};

/// Reads a task file (and the eval file, if any), checking every row. Throws InputError
/// "task file 'PATH': line N: field 'F': problem" on the first bad row, or naming the spec
/// field at fault. Memory: the kept texts, labels and features plus one record. `control`:
/// progress every rowsPerCheck rows, and Cancelled thrown there when its token is set.
TaskFile loadTaskFile(const TaskFileSpec& spec, const TaskReadControl& control = {});

/// A TaskData from a task file, as buildTask does for the built-in tasks: when the file has
/// no split (no splitField and no evalPath), buildTask's seeded stratified split,
/// maxExamples subsample and word tokenizer; otherwise the file's split (maxExamples and
/// evalFraction then do not apply) with the word tokenizer built from the train examples.
/// Text pairs are joined as "first\nsecond" for the word tokenizer.
TaskData buildTaskFromFile(const TaskSpec& spec, TaskFile file, std::uint64_t seed);

} // namespace kdscope::core
