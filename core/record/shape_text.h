#pragma once
// Private to core/record: shapes in error messages, "[6, 3]".

#include <string>
#include <vector>

namespace kdscope::core {

template <typename Size>
std::string shapeText(const std::vector<Size>& dims) {
  std::string text = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(dims[i]);
  }
  return text + "]";
}

} // namespace kdscope::core
