#pragma once
/// The job specification: plain structs parsed and validated from a JSON job file.
/// Every field has a documented default (docs/job-format.md).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kdscope::core {

/// One task: which dataset, how to split and tokenise it.
struct TaskSpec {
  std::string name;        ///< polarity, hedge, spam, supersense, fortune, fashion_mnist,
                           ///< digits, synthetic_hierarchy
  double evalFraction = 0.2;
  long maxExamples = 0;    ///< 0: all; otherwise a seeded subsample before splitting
  // Text tasks.
  int maxLen = 32;         ///< tokens per example including [CLS]
  int vocabSize = 8000;    ///< including the special tokens
  int minFreq = 2;
  int minClassSize = 500;  ///< fortune: keep categories with at least this many entries
  // Synthetic hierarchical Gaussian mixture (Tang et al.).
  int superClasses = 4;
  int classesPerSuper = 3;
  int dim = 32;
  int examplesPerClass = 300;
  double superSpread = 3.0; ///< std of super-class centres around the origin
  double classSpread = 1.0; ///< std of class centres around their super-class centre
  double noise = 1.0;       ///< std of points around their class centre
  // A task read from the user's own file (docs/data.md "Your own data", docs/job-format.md).
  // Empty `file`: a built-in task, and the fields below are ignored. Paths are relative to
  // the job file's folder (resolveTaskFilePaths, core/data/dataset_file.h).
  std::string file;          ///< JSON Lines, CSV or TSV rows; or an .npy / .h5 feature array
  std::string evalFile;      ///< optional separate eval file (same fields)
  std::string format = "auto"; ///< auto (from the extension), jsonl, csv, tsv, npy, h5
  std::string textField = "text";
  std::string textPairField;  ///< optional second text (sentence pairs)
  std::vector<std::string> featureFields; ///< vector tasks: numeric columns, in order
  std::string labelField = "label";
  std::string idField;
  std::string splitField;
  std::string labelKind = "auto"; ///< auto, name, integer
  int numClasses = 0;             ///< integer labels: > 0 bounds them to 0..numClasses-1
  std::string h5Dataset;          ///< .h5 arrays: the dataset holding the [N, D] features
  std::string labelFile;          ///< .npy / .h5 arrays: the labels, one per line or a CSV column
  std::string labelColumn;        ///< label_file as CSV: the column (empty: one label per line)
  // Tokenizer of text tasks (built-in or file): empty vocab is KDScope's word tokenizer built
  // from the train split; a BERT-style vocab.txt selects WordPiece over it.
  std::string vocab;
  bool lowerCase = true;          ///< WordPiece: lower-case and strip accents (uncased models)
  [[nodiscard]] bool fromFile() const { return !file.empty(); }
};

/// Model architecture. type "transformer" for text tasks, "mlp" for vector tasks.
struct ArchitectureSpec {
  std::string type = "transformer";
  int layers = 2;
  int heads = 2;
  int width = 64;
  int ffn = 128;
  double dropout = 0.1;
  std::vector<int> hidden; ///< mlp: widths of the hidden layers
};

struct TrainingSpec {
  int epochs = 3;
  int batchSize = 32;
  double lr = 1e-3;
  double weightDecay = 0.01;
  double warmupFraction = 0.1; ///< linear warm-up over this fraction of steps, then linear decay to 0
  double gradClip = 1.0;       ///< max global gradient norm; 0 disables
  /// "fp32", "bf16" (autocast of the training passes) or "auto", the default (bf16 where the
  /// CPU has AVX512_BF16 or AMX, else fp32; core/engine/precision.h). Eval passes and
  /// recordings stay fp32. bench/README.md, "bf16 accuracy check", measured the default.
  std::string precision = "auto";
};

/// Student objective: (1 - lambda) * CE_eps + lambda * KD_T + logitMse * MSE, plus the
/// weighted intermediate terms (docs/methods.md).
struct ObjectiveSpec {
  double lambda = 0.0;         ///< weight of the KD term; 0 is a plain CE student
  double temperature = 1.0;
  bool tSquared = true;        ///< multiply KD by T^2 (Hinton)
  double labelSmoothing = 0.0; ///< epsilon of the hard-label term
  double logitMse = 0.0;       ///< weight of the logit MSE term
  std::string teacherTargets = "full"; ///< "full" or "pt" (Tang et al.'s KD-pt control)
  // Intermediate objectives (weights; 0 = off), over the layer pairs of `layerMap`.
  double hiddenMse = 0.0;     ///< MSE(W h_s, h_t), TinyBERT
  double hiddenCosine = 0.0;  ///< 1 - cos(W h_s, h_t), DistilBERT
  double pkd = 0.0;           ///< |W h_s / |W h_s| - h_t / |h_t||^2 on [CLS] states, PKD
  double attentionKl = 0.0;   ///< KL(teacher row || student row), MiniLM
  double attentionMse = 0.0;  ///< MSE of pre-softmax attention scores, TinyBERT
  double infoNce = 0.0;       ///< -InfoNCE with a learned critic
  double miAlpha = 0.0;       ///< -I_alpha (Poole et al. 2019) with a learned critic and baseline
  double alpha = 0.5;         ///< I_alpha's interpolation: 1 InfoNCE-like, 0 TUBA-like
  std::string layerMap = "uniform"; ///< "uniform" (ANALYSES.md's skip), "last" or "list"
  std::vector<int> layerList; ///< layerMap "list": teacher hidden index of student hidden i
  // Last, so that positional initialisers of the fields above keep working.
  /// "label_smoothing": "matched": epsilon = C E[1 - p_y] / (C - 1) over the teacher's
  /// train-set predictions (Tang et al.'s LS control), computed by the engine after the
  /// teacher is trained or loaded, and recorded in the student's objective attribute.
  bool labelSmoothingMatched = false;
  /// With "matched": the temperature T of the teacher's distribution p^T = softmax(z_t / T)
  /// whose mean non-target mass the epsilon matches ("label_smoothing_temperature"; 1 = the
  /// teacher's plain predictions). The knowledge controls set it from "ls_match".
  double labelSmoothingTemperature = 1.0;
};

/// Token-level and embedding augmentation of a student's training batches (text tasks;
/// mixup also for vector tasks). Augmented copies are concatenated with the original batch
/// and labelled by the teacher.
struct AugmentationSpec {
  double mask = 0.0;    ///< per-token probability of replacing a word with [UNK]
  double replace = 0.0; ///< per-token probability of a uniformly random vocabulary word
  double swap = 0.0;    ///< per-token probability of swapping with another word of the example
  double deletion = 0.0; ///< per-token probability of deleting the word (shift left, re-pad)
  bool mixup = false;   ///< add a mixup copy: word embeddings mixed with lambda ~ Beta(a, a)
  double mixupAlpha = 0.4; ///< a of the Beta distribution
  [[nodiscard]] bool tokenOps() const { return mask > 0 || replace > 0 || swap > 0 || deletion > 0; }
  [[nodiscard]] bool any() const { return tokenOps() || mixup; }
};

struct TeacherSpec {
  ArchitectureSpec architecture;
  TrainingSpec training;
  std::string checkpoint; ///< optional: load instead of training (relative to the job file)
  bool epochCheckpoints = false; ///< save checkpoints/<task>/teacher_epoch<k>.pt after every epoch
  /// A TorchScript module (docs/models.md) instead of a KDScope architecture: modes "compare"
  /// and "distil" (relative to the job file; "{task}" is replaced by the task's name).
  std::string torchscript;
  std::string manifest; ///< its manifest; empty: the module's path with .json (defaultManifestPath)
  [[nodiscard]] bool isTorchScript() const { return !torchscript.empty(); }
};

struct StudentSpec {
  std::string name;
  ArchitectureSpec architecture;
  TrainingSpec training;
  ObjectiveSpec objective;
  AugmentationSpec augmentation;
  int teacherEpoch = 0; ///< distil from the teacher's checkpoint after this epoch; 0 = final
  /// A TorchScript module instead of `architecture` (modes "compare" and "distil"; in "distil"
  /// it is trained in C++ through its parameters). Relative to the job file; "{task}" replaced.
  std::string torchscript;
  std::string manifest; ///< its manifest; empty: the module's path with .json
  [[nodiscard]] bool isTorchScript() const { return !torchscript.empty(); }
};

struct RecordingSpec {
  int attentionExamples = 16;  ///< n_att: eval examples whose attention maps are kept
  std::string pooling = "mean"; ///< "mean" over non-padding tokens, or "cls"
  int logEvery = 10;           ///< record training losses every this many steps
  bool hidden = true;          ///< record eval/hidden
  int tokenHiddenExamples = 0; ///< n_tok: eval examples whose token-level hidden states are kept
  bool float16 = false;        ///< store activations (hidden, token_hidden, attention) as float16
  bool exampleRecords = true;  ///< per-example training records (train_records, train/labels)
  double maxFileMb = 0.0;      ///< refuse a job whose run file is estimated above this (0: no limit)
  /// The memory one eval-recording batch may take (activations of every layer, and the
  /// attention maps the module returns): the eval batch size is chosen from it (at least 1,
  /// at most 256; trainer.h evalBatchSize). 0: the fixed batch of 64.
  double memoryBudgetMb = 1024.0;
};

/// Tang et al.'s control students for the three knowledge levels: when enabled the engine
/// adds, after the job's own students, ctl-ce (cross-entropy), ctl-ls (label smoothing at the
/// epsilon matched to the teacher), ctl-kdpt (KD on the KD-pt targets) and ctl-kd (KD), all
/// with this architecture and training (knowledgeControlStudents below).
struct KnowledgeControlsSpec {
  bool enabled = false;
  ArchitectureSpec architecture;
  TrainingSpec training;
  double lambda = 0.9;      ///< KD weight of ctl-kdpt and ctl-kd (and the reference w of CE students)
  double temperature = 2.0; ///< their temperature
  /// The temperature ctl-ls's epsilon is matched at: "kd_temperature" (the default: the
  /// teacher's p^T at `temperature`, the distribution ctl-kd is trained on) or "t1" (p at T = 1).
  std::string lsMatch = "kd_temperature";
  /// The temperature lsMatch names.
  [[nodiscard]] double lsMatchTemperature() const { return lsMatch == "t1" ? 1.0 : temperature; }
};

struct JobSpec {
  std::string name = "job";
  /// "train": train the teacher (or load its checkpoint) and every student (today's jobs);
  /// "compare": no training, record every given model (TorchScript teacher and students) on
  /// each task's eval set, then analyse; "distil": a TorchScript teacher, KDScope or
  /// TorchScript students trained from its cached logits. docs/job-format.md, docs/models.md.
  std::string mode = "train";
  std::uint64_t seed = 1;
  std::vector<TaskSpec> tasks;
  TeacherSpec teacher;
  std::vector<StudentSpec> students;
  RecordingSpec recording;
  bool cacheTeacherOutputs = true; ///< reuse the teacher's train-set outputs across epochs/students
  double teacherCacheBudgetMb = 256.0; ///< above this the cache spills to a file beside the run
  std::string dataDir;  ///< empty: $KDSCOPE_DATA_DIR or ~/.cache/kdscope/data
  std::string baseDir;  ///< folder of the job file; relative paths resolve against it
  KnowledgeControlsSpec knowledgeControls;
  bool analyze = true;  ///< run `kdscope analyze` on the run file when the job completes
  /// "replicates": a list of seeds, or a count N (replicateCount) meaning seed, seed + 1,
  /// ..., seed + N - 1; neither: one run. Each replicate is a full run with replicateSeed
  /// set (docs/statistics.md, "Replicates"; core/study/replicates.h).
  std::vector<std::uint64_t> replicates;
  int replicateCount = 0;
  /// The replicate seeds (the list, or the count expanded); empty: one run.
  [[nodiscard]] std::vector<std::uint64_t> replicateSeeds() const {
    if (!replicates.empty()) {
      return replicates;
    }
    std::vector<std::uint64_t> seeds;
    for (int i = 0; i < replicateCount; ++i) {
      seeds.push_back(seed + static_cast<std::uint64_t>(i));
    }
    return seeds;
  }
  /// "replicate_seed": the seed of model initialisation, dropout, augmentation and batch
  /// order; 0: the job seed. The split and subsample always follow `seed`.
  std::uint64_t replicateSeed = 0;
  /// The seed every model draw derives from: replicateSeed, or seed when it is 0.
  [[nodiscard]] std::uint64_t modelSeed() const { return replicateSeed != 0 ? replicateSeed : seed; }
};

/// The control students of job.knowledgeControls (empty when it is disabled): ctl-ce, ctl-ls
/// (labelSmoothingMatched), ctl-kdpt, ctl-kd.
std::vector<StudentSpec> knowledgeControlStudents(const JobSpec& job);
/// The job's students followed by its control students: every student the engine trains.
std::vector<StudentSpec> allStudents(const JobSpec& job);

/// One validation problem: a JSON path such as "students[1].objective.temperature" and
/// what is wrong with it.
struct JobIssue {
  std::string path;
  std::string message;
  [[nodiscard]] std::string str() const { return path + ": " + message; }
};

struct JobParseResult {
  std::optional<JobSpec> job;     ///< set when there are no issues
  std::vector<JobIssue> issues;   ///< every problem found, in document order
  std::string normalizedJson;     ///< the job with every default filled in (when valid)
};

/// Parses and validates job JSON text. Never throws. `sourceName` names the file in messages.
JobParseResult parseJob(const std::string& jsonText, const std::string& sourceName = "job");

/// Reads and parses a job file; a missing or unreadable file is reported as an issue.
JobParseResult loadJobFile(const std::string& path);

/// The normalised JSON of a job spec (defaults filled in).
std::string jobToJson(const JobSpec& job);

} // namespace kdscope::core
