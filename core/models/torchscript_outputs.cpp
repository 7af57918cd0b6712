#include "core/models/torchscript_outputs.h"

#include <c10/util/Exception.h>

#include <sstream>

namespace kdscope::core::torchscript {

namespace {

/// At most this many elements of one output are named in problems; the rest are counted.
constexpr std::size_t kMaxNamedElements = 3;

std::string dtypeWord(const torch::Tensor& t) {
  const std::string name = c10::toString(t.scalar_type());
  if (name == "Long") {
    return "int64";
  }
  if (name == "Int") {
    return "int32";
  }
  if (name == "Bool") {
    return "bool";
  }
  if (name == "Float") {
    return "float32";
  }
  if (name == "Double") {
    return "float64";
  }
  if (name == "Half") {
    return "float16";
  }
  return name;
}

/// "the module returned X" at the root, "outputs[1] is X" below it.
std::string whereIs(const OutputPath& sofar, const c10::IValue& value) {
  return (sofar.empty() ? "the module returned " : formatOutputPath(sofar) + " is ") + describeValue(value);
}

/// Follows `path` from `root` into `out`. False, with a problem naming the step, when a step
/// does not exist.
bool resolve(const c10::IValue& root, const OutputPath& path, const std::string& output, const std::string& what,
             c10::IValue& out, std::vector<OutputProblem>& problems) {
  c10::IValue current = root;
  OutputPath sofar;
  for (const auto& step : path) {
    OutputPath next = sofar;
    next.push_back(step);
    const std::string head = formatOutputPath(next) + ": " + what + ": ";
    if (!step.isKey) {
      if (!current.isTuple() && !current.isList()) {
        problems.push_back({output, head + whereIs(sofar, current) + ", not a tuple or list"});
        return false;
      }
      const std::size_t n = current.isTuple() ? current.toTupleRef().elements().size() : current.toListRef().size();
      const auto index = static_cast<std::size_t>(step.index);
      if (index >= n) {
        problems.push_back({output, head + whereIs(sofar, current) + ", so there is no element [" +
                                        std::to_string(index) + "]"});
        return false;
      }
      c10::IValue element = current.isTuple() ? current.toTupleRef().elements()[index] : current.toListRef()[index];
      current = std::move(element);
    } else {
      if (!current.isGenericDict()) {
        problems.push_back({output, head + whereIs(sofar, current) + ", not a dict"});
        return false;
      }
      const auto dict = current.toGenericDict();
      const auto it = dict.find(c10::IValue(step.key));
      if (it == dict.end()) {
        problems.push_back({output, head + whereIs(sofar, current) + ", without the key \"" + step.key + "\""});
        return false;
      }
      c10::IValue element = it->value();
      current = std::move(element);
    }
    sofar = std::move(next);
  }
  out = std::move(current);
  return true;
}

/// The elements of a tuple or list; false (with a problem) for anything else.
bool elementsOf(const c10::IValue& value, const OutputPath& path, const std::string& output, const std::string& what,
                const std::string& expected, std::vector<c10::IValue>& elements, std::vector<OutputProblem>& problems) {
  if (value.isTuple()) {
    const auto& e = value.toTupleRef().elements();
    elements.assign(e.begin(), e.end());
    return true;
  }
  if (value.isList()) {
    const auto e = value.toListRef();
    elements.assign(e.begin(), e.end());
    return true;
  }
  problems.push_back({output, formatOutputPath(path) + ": " + what + ": got " + describeValue(value) + ", expected " + expected});
  return false;
}

/// Checks each element against `expected(i)` (a shape; a negative entry -w means "at most w");
/// names the first few bad ones. Returns the elements as float tensors, or empty when any is bad.
std::vector<torch::Tensor> checkElements(const std::vector<c10::IValue>& elements, const OutputPath& path,
                                         const std::string& output, const std::string& what,
                                         const std::vector<std::int64_t>& expected, const std::string& note,
                                         std::vector<OutputProblem>& problems) {
  std::vector<torch::Tensor> out;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    OutputPath at = path;
    at.push_back({false, static_cast<std::int64_t>(i), {}});
    std::string got;
    bool wrongKind = true;
    const c10::IValue& e = elements[i];
    if (!e.isTensor()) {
      got = describeValue(e);
    } else if (!e.toTensor().is_floating_point()) {
      got = "an " + dtypeWord(e.toTensor()) + " tensor " + shapeString(e.toTensor());
    } else {
      const auto& t = e.toTensor();
      bool fits = t.dim() == static_cast<std::int64_t>(expected.size());
      for (std::size_t d = 0; fits && d < expected.size(); ++d) {
        fits = expected[d] >= 0 ? t.size(static_cast<std::int64_t>(d)) == expected[d]
                                : t.size(static_cast<std::int64_t>(d)) <= -expected[d];
      }
      if (fits) {
        out.push_back(t.to(torch::kFloat));
        continue;
      }
      got = shapeString(t);
      wrongKind = false;
    }
    if (++bad <= kMaxNamedElements) {
      std::string shape = "[";
      for (std::size_t d = 0; d < expected.size(); ++d) {
        shape += (d == 0 ? "" : ", ") + (expected[d] >= 0 ? std::to_string(expected[d]) : "<= " + std::to_string(-expected[d]));
      }
      problems.push_back({output, formatOutputPath(at) + ": " + what + " " + std::to_string(i) + ": got " + got +
                                      ", expected " + (wrongKind ? "a float tensor " : "") + shape + "]" + note});
    }
  }
  if (bad > kMaxNamedElements) {
    problems.push_back({output, formatOutputPath(path) + ": " + std::to_string(bad - kMaxNamedElements) + " more " + what +
                                    " of the wrong kind (" + std::to_string(bad) + " of " +
                                    std::to_string(elements.size()) + " in all)"});
  }
  if (bad > 0) {
    out.clear();
  }
  return out;
}

} // namespace

std::string shapeString(const std::vector<std::int64_t>& sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    out += (i == 0 ? "" : ", ") + std::to_string(sizes[i]);
  }
  return out + "]";
}

std::string shapeString(const torch::Tensor& t) {
  if (!t.defined()) {
    return "undefined";
  }
  return shapeString(t.sizes().vec());
}

std::string summarizeError(const std::exception& e) {
  const auto* c10error = dynamic_cast<const c10::Error*>(&e);
  const std::string text = c10error != nullptr ? c10error->what_without_backtrace() : e.what();
  std::istringstream in(text);
  std::string line;
  std::string first;
  std::string lastError;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) {
      continue;
    }
    line = line.substr(start);
    if (first.empty()) {
      first = line;
    }
    // The interpreter's traceback ends with the exception as Python names it.
    const auto colon = line.find("Error: ");
    if (colon != std::string::npos && line.find(' ') > colon) {
      lastError = line;
    }
  }
  std::string out = !lastError.empty() ? lastError : first;
  if (out.size() > 400) {
    out = out.substr(0, 400) + "...";
  }
  return out;
}

std::string describeValue(const c10::IValue& value) {
  if (value.isTensor()) {
    const auto& t = value.toTensor();
    return (t.is_floating_point() ? std::string("a tensor ") : "an " + dtypeWord(t) + " tensor ") + shapeString(t);
  }
  if (value.isTuple()) {
    const auto n = value.toTupleRef().elements().size();
    return "a tuple of " + std::to_string(n) + (n == 1 ? " element" : " elements");
  }
  if (value.isList()) {
    const auto n = value.toListRef().size();
    return "a list of " + std::to_string(n) + (n == 1 ? " element" : " elements");
  }
  if (value.isGenericDict()) {
    std::string keys;
    for (const auto& entry : value.toGenericDict()) {
      keys += (keys.empty() ? "" : ", ") + (entry.key().isString() ? entry.key().toStringRef() : entry.key().tagKind());
    }
    return keys.empty() ? "an empty dict" : "a dict with keys " + keys;
  }
  if (value.isNone()) {
    return "None";
  }
  return "a value of kind " + value.tagKind();
}

torch::Tensor extractLogits(const c10::IValue& value, const OutputPath& path, const ExpectedSizes& sizes,
                            std::vector<OutputProblem>& problems) {
  c10::IValue v;
  if (!resolve(value, path, "logits", "logits", v, problems)) {
    return {};
  }
  const std::string head = formatOutputPath(path) + ": logits: got ";
  const std::string expected = shapeString({sizes.batch, sizes.classes});
  const std::string note = " (manifest class_names has " + std::to_string(sizes.classes) + " names)";
  if (!v.isTensor()) {
    problems.push_back({"logits", head + describeValue(v) + ", expected a float tensor " + expected + note});
    return {};
  }
  const auto& t = v.toTensor();
  if (!t.is_floating_point()) {
    problems.push_back({"logits", head + "an " + dtypeWord(t) + " tensor " + shapeString(t) + ", expected a float tensor " +
                                      expected});
    return {};
  }
  if (t.dim() != 2 || t.size(0) != sizes.batch || t.size(1) != sizes.classes) {
    problems.push_back({"logits", head + shapeString(t) + ", expected " + expected + note});
    return {};
  }
  return t.to(torch::kFloat);
}

std::vector<torch::Tensor> extractHidden(const c10::IValue& value, const OutputPath& path, const ExpectedSizes& sizes,
                                         std::vector<OutputProblem>& problems) {
  c10::IValue v;
  if (!resolve(value, path, "hidden_states", "hidden states", v, problems)) {
    return {};
  }
  const std::string count = "layers + 1 = " + std::to_string(sizes.layers + 1);
  std::vector<c10::IValue> elements;
  if (!elementsOf(v, path, "hidden_states", "hidden states", "a tuple or list of " + count + " tensors", elements,
                  problems)) {
    return {};
  }
  if (static_cast<std::int64_t>(elements.size()) != sizes.layers + 1) {
    problems.push_back({"hidden_states", formatOutputPath(path) + ": hidden states: got " + describeValue(v) +
                                             ", expected " + count + " (manifest layers = " +
                                             std::to_string(sizes.layers) + ")"});
    return {};
  }
  const std::vector<std::int64_t> expected =
      sizes.vector ? std::vector<std::int64_t>{sizes.batch, -sizes.width}
                   : std::vector<std::int64_t>{sizes.batch, sizes.length, sizes.width};
  return checkElements(elements, path, "hidden_states", "hidden state", expected,
                       " (manifest width = " + std::to_string(sizes.width) + ")", problems);
}

std::vector<torch::Tensor> extractAttentions(const c10::IValue& value, const OutputPath& path,
                                             const ExpectedSizes& sizes, std::vector<OutputProblem>& problems) {
  c10::IValue v;
  if (!resolve(value, path, "attentions", "attentions", v, problems)) {
    return {};
  }
  const std::string count = "layers = " + std::to_string(sizes.layers);
  std::vector<c10::IValue> elements;
  if (!elementsOf(v, path, "attentions", "attentions", "a tuple or list of " + count + " tensors", elements, problems)) {
    return {};
  }
  if (static_cast<std::int64_t>(elements.size()) != sizes.layers) {
    problems.push_back({"attentions", formatOutputPath(path) + ": attentions: got " + describeValue(v) + ", expected " +
                                          count + " (manifest layers = " + std::to_string(sizes.layers) + ")"});
    return {};
  }
  return checkElements(elements, path, "attentions", "attentions of layer",
                       {sizes.batch, sizes.heads, sizes.length, sizes.length},
                       " (manifest heads = " + std::to_string(sizes.heads) + ")", problems);
}

} // namespace kdscope::core::torchscript
