#pragma once
/// Reading a TorchScript module's return value by the manifest's output paths, each output
/// checked against the shape the manifest implies. Private to core (LibTorch); used by
/// TorchScriptClassifierImpl and the pre-flight check.

#include <torch/script.h>

#include <exception>
#include <string>
#include <vector>

#include "core/models/model_manifest.h"
#include "core/models/torchscript_model.h"

namespace kdscope::core::torchscript {

/// What the outputs must look like for one batch.
struct ExpectedSizes {
  std::int64_t batch = 0;
  std::int64_t length = 0; ///< text models: tokens per row
  std::int64_t classes = 0;
  std::int64_t layers = 0;
  std::int64_t heads = 0;
  std::int64_t width = 0;
  bool vector = false;
};

/// "[2, 4, 16, 16]"; "undefined" for an undefined tensor.
std::string shapeString(const torch::Tensor& t);
std::string shapeString(const std::vector<std::int64_t>& sizes);

/// The useful line of a LibTorch or TorchScript exception: for errors raised inside a module,
/// the last "...Error: message" line of the interpreter's traceback; otherwise the first line
/// without LibTorch's C++ backtrace.
std::string summarizeError(const std::exception& e);

/// What a value is, in words: "a tensor [2, 3]", "a tuple of 3 elements", "a dict with keys
/// logits, hidden", "None".
std::string describeValue(const c10::IValue& value);

/// The logits [B, C] as float; undefined (and a problem) when missing or of another shape.
torch::Tensor extractLogits(const c10::IValue& value, const OutputPath& path, const ExpectedSizes& sizes,
                            std::vector<OutputProblem>& problems);
/// layers + 1 hidden states: [B, L, width] for text models, [B, d <= width] for vector
/// models; empty (and problems) when any is missing or of another shape.
std::vector<torch::Tensor> extractHidden(const c10::IValue& value, const OutputPath& path, const ExpectedSizes& sizes,
                                         std::vector<OutputProblem>& problems);
/// layers attention maps [B, heads, L, L]; empty (and problems) when any is wrong.
std::vector<torch::Tensor> extractAttentions(const c10::IValue& value, const OutputPath& path,
                                             const ExpectedSizes& sizes, std::vector<OutputProblem>& problems);

} // namespace kdscope::core::torchscript
