#pragma once
// Shared by the TorchScript tests: the tiny models of tests/python/make_torchscript_models.py,
// built once per test process with /usr/bin/python3 (torch), and PyTorch's reference outputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "test_support.h"

#ifndef KDSCOPE_PYTHON
#error "KDSCOPE_PYTHON must name the Python with torch (tests/CMakeLists.txt defines it)"
#endif

namespace kdscope::test {

/// The folder of the built models ("" and a test failure when the script failed). Built on
/// first use; removed when the process exits.
inline const std::string& torchScriptModels() {
  static std::unique_ptr<TempDir> dir;
  static std::string path;
  static bool tried = false;
  if (!tried) {
    tried = true;
    dir = std::make_unique<TempDir>("torchscript");
    const std::string command = std::string(KDSCOPE_PYTHON) + " " + KDSCOPE_SOURCE_DIR +
                                "/tests/python/make_torchscript_models.py " + dir->path() + " 2>&1";
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe != nullptr) {
      char buffer[4096];
      std::size_t n = 0;
      while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        output.append(buffer, n);
      }
      if (::pclose(pipe) == 0) {
        path = dir->path();
      }
    }
    if (path.empty()) {
      ADD_FAILURE() << "make_torchscript_models.py failed:\n" << output;
    }
  }
  return path;
}

/// A file of the built models.
inline std::string modelFile(const std::string& name) { return torchScriptModels() + "/" + name; }

/// reference.json of the built models.
inline const nlohmann::json& torchScriptReference() {
  static nlohmann::json ref;
  if (ref.is_null() && !torchScriptModels().empty()) {
    std::ifstream in(modelFile("reference.json"));
    ref = nlohmann::json::parse(in);
  }
  return ref;
}

/// A tensor of reference.json's {"shape": [...], "data": [...]} form, as float32 (or int64).
inline torch::Tensor referenceTensor(const nlohmann::json& j, torch::ScalarType type = torch::kFloat) {
  const auto shape = j.at("shape").get<std::vector<std::int64_t>>();
  const auto data = j.at("data").get<std::vector<double>>();
  return torch::tensor(data, torch::kDouble).reshape(shape).to(type);
}

} // namespace kdscope::test
