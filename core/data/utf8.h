#pragma once
/// Strict UTF-8 decoding shared by the WordPiece tokenizer and the task-file reader: both
/// refuse malformed input (overlong forms, surrogates, code points past U+10FFFF, truncated
/// sequences) instead of replacing it, so a bad byte is reported where it is, not silently
/// turned into [UNK] or U+FFFD.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kdscope::core::utf8 {

/// Decodes the code point at `text[pos]` and advances `pos`. Returns false (pos unchanged)
/// if the bytes there are not well-formed UTF-8.
bool next(std::string_view text, std::size_t& pos, std::uint32_t& code);

/// The byte offset of the first malformed sequence, or npos if `text` is valid UTF-8.
std::size_t firstInvalid(std::string_view text);

/// Code points of `text`; throws InputError "<what>: invalid UTF-8 at byte N" if malformed.
std::vector<std::uint32_t> decode(std::string_view text, const std::string& what);

/// Appends the UTF-8 encoding of `code` to `out`.
void append(std::uint32_t code, std::string& out);

} // namespace kdscope::core::utf8
