#include "core/data/utf8.h"

#include "core/common/error.h"

namespace kdscope::core::utf8 {

bool next(std::string_view text, std::size_t& pos, std::uint32_t& code) {
  const std::size_t n = text.size();
  if (pos >= n) {
    return false;
  }
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) {
    code = b0;
    ++pos;
    return true;
  }
  std::size_t length = 0;
  std::uint32_t value = 0;
  std::uint32_t minimum = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) { // 0xC0, 0xC1 only start overlong forms
    length = 2;
    value = b0 & 0x1FU;
    minimum = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    value = b0 & 0x0FU;
    minimum = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    value = b0 & 0x07U;
    minimum = 0x10000;
  } else {
    return false;
  }
  if (pos + length > n) {
    return false;
  }
  for (std::size_t k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(text[pos + k]);
    if ((b & 0xC0U) != 0x80U) {
      return false;
    }
    value = (value << 6U) | (b & 0x3FU);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    return false;
  }
  code = value;
  pos += length;
  return true;
}

std::size_t firstInvalid(std::string_view text) {
  std::size_t pos = 0;
  std::uint32_t code = 0;
  while (pos < text.size()) {
    // ASCII fast path: the task-file reader checks every byte of million-row files.
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    if (!next(text, pos, code)) {
      return pos;
    }
  }
  return std::string_view::npos;
}

std::vector<std::uint32_t> decode(std::string_view text, const std::string& what) {
  std::vector<std::uint32_t> codes;
  codes.reserve(text.size());
  std::size_t pos = 0;
  std::uint32_t code = 0;
  while (pos < text.size()) {
    if (!next(text, pos, code)) {
      throw InputError(what + ": invalid UTF-8 at byte " + std::to_string(pos));
    }
    codes.push_back(code);
  }
  return codes;
}

void append(std::uint32_t code, std::string& out) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0U | (code >> 6U)));
    out.push_back(static_cast<char>(0x80U | (code & 0x3FU)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0U | (code >> 12U)));
    out.push_back(static_cast<char>(0x80U | ((code >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code & 0x3FU)));
  } else {
    out.push_back(static_cast<char>(0xF0U | (code >> 18U)));
    out.push_back(static_cast<char>(0x80U | ((code >> 12U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | ((code >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code & 0x3FU)));
  }
}

} // namespace kdscope::core::utf8
