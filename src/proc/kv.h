// Small text helpers shared by the /proc parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace memdx::proc {

// Splits text into lines without copying; a trailing newline yields no empty last line.
std::vector<std::string_view> split_lines(std::string_view text);

std::string_view trim(std::string_view s);

// Parses a decimal unsigned integer; nullopt on empty input, junk or overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// Parses a lowercase or uppercase hexadecimal integer (no 0x prefix).
std::optional<uint64_t> parse_hex_u64(std::string_view s);

// Parses "1234 kB" (or a bare number, in bytes) into bytes, saturating instead of overflowing:
// a value too large to represent is reported as UINT64_MAX rather than wrapped to a small one.
std::optional<uint64_t> parse_kb_value(std::string_view s);

// Splits "Key:   value" into its key and trimmed value; nullopt if there is no colon.
struct KeyValue {
  std::string_view key;
  std::string_view value;
};
std::optional<KeyValue> split_key_value(std::string_view line);

// Multiplies without wrapping: saturates at UINT64_MAX.
uint64_t saturating_mul(uint64_t a, uint64_t b);
uint64_t saturating_add(uint64_t a, uint64_t b);

}  // namespace memdx::proc
