#pragma once
/// The manifest of a model from elsewhere: a JSON file beside a TorchScript module
/// (MODEL.pt + MODEL.json, or any path) that says what the module takes and returns, its
/// tokenizer, class names and sizes. docs/models.md documents every field with examples.
///
/// Torch-free public header (the job parser, the command line and the window may read a
/// manifest without LibTorch). Parsing never throws: every problem is returned with the JSON
/// field it concerns; loadModelManifest throws them as one InputError.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kdscope::core {

/// The inputs KDScope knows how to fill, by their manifest names.
enum class ModelInput {
  InputIds,      ///< "input_ids": int64 [B, L], the tokenizer's ids ([CLS] first, [PAD] after)
  AttentionMask, ///< "attention_mask": [B, L], 1 on tokens, 0 on padding (Hugging Face)
  PaddingMask,   ///< "padding_mask": [B, L], true on padding (nn.TransformerEncoder's
                 ///< src_key_padding_mask)
  TokenTypeIds,  ///< "token_type_ids": int64 [B, L], 0 for the first text, 1 for the second
  PositionIds,   ///< "position_ids": int64 [B, L], 0..L-1 on every row
  HeadMask,      ///< "head_mask": float [layers, heads], 1 keeps a head, 0 removes it
  Features,      ///< "features": float [B, features], vector models
};

enum class InputDType { Int64, Float32, Bool };

struct ManifestInput {
  ModelInput kind = ModelInput::InputIds;
  InputDType dtype = InputDType::Int64;
};

/// One step into a module's output: an index into a tuple or list, or a key of a dict.
struct OutputStep {
  bool isKey = false;
  std::int64_t index = 0;
  std::string key;
};
/// Where an output sits: the steps from the module's return value; empty = the value itself.
using OutputPath = std::vector<OutputStep>;

/// "outputs[2][1]", "outputs[\"logits\"]", "outputs" for an empty path.
std::string formatOutputPath(const OutputPath& path);

struct ManifestTokenizer {
  std::string type;      ///< "wordpiece" (a BERT vocab.txt) or "word" (KDScope's word vocabulary)
  std::string vocabPath; ///< resolved against the manifest's folder
  bool lowerCase = true; ///< wordpiece only (the word tokenizer always lower-cases)
};

struct ModelManifest {
  std::string path;                 ///< the manifest file, for messages
  std::vector<ManifestInput> inputs; ///< in the order of forward's positional arguments
  OutputPath logits;
  std::optional<OutputPath> hiddenStates; ///< a tuple or list of layers + 1 tensors
  std::optional<OutputPath> attentions;   ///< a tuple or list of layers tensors [B, H, L, L]
  std::optional<ManifestTokenizer> tokenizer; ///< text models (required for them)
  std::vector<std::string> classNames;
  int layers = 0;
  int heads = 0;     ///< 0 for vector models
  int width = 0;     ///< hidden width D (vector models: the widest hidden state)
  int maxLength = 0; ///< text models: the longest input the module takes; 0 = not stated
  int features = 0;  ///< vector models: input width
  std::string classifierWeight; ///< parameter name of the final linear layer's weight [C, D]; "" = not given
  std::string classifierBias;   ///< its bias [C]; "" = not given

  [[nodiscard]] bool takes(ModelInput input) const;
  [[nodiscard]] bool isVector() const { return takes(ModelInput::Features); }
  [[nodiscard]] int numClasses() const { return static_cast<int>(classNames.size()); }
};

/// One problem: the JSON field ("sizes.heads", "inputs[2]", "" for the whole file) and what
/// is wrong with it.
struct ManifestIssue {
  std::string field;
  std::string message;
  /// "manifest 'PATH': field 'F': message" (the whole-file form without "field").
  [[nodiscard]] std::string str(const std::string& manifestPath) const;
};

struct ManifestParseResult {
  std::optional<ModelManifest> manifest; ///< set when there are no issues
  std::vector<ManifestIssue> issues;     ///< every problem found, in document order
};

/// MODEL.pt -> MODEL.json (the extension replaced; ".json" appended when there is none).
std::string defaultManifestPath(const std::string& modelPath);

/// The name of an input in manifests ("input_ids", ...).
const char* inputName(ModelInput input);

/// Parses and validates manifest text. `manifestPath` names the file in messages and is the
/// folder tokenizer.vocab is resolved against (the vocabulary file must exist). Never throws.
ManifestParseResult parseModelManifest(const std::string& jsonText, const std::string& manifestPath);

/// Reads and parses a manifest file; a missing or unreadable file is an issue. Never throws.
ManifestParseResult readModelManifest(const std::string& manifestPath);

/// readModelManifest, throwing InputError with every issue (each naming the file and field).
ModelManifest loadModelManifest(const std::string& manifestPath);

} // namespace kdscope::core
