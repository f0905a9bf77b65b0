// Internal: the validated layout of one safetensors file (header parse + every range check of
// shared/reference/formats.md). Works on bytes in memory, so the fuzz target calls it directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/tensor.hpp"
#include "reel/weights.hpp"

namespace reel::detail {

inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;  // the reference reader's limit

struct SafetensorsTensor {
  std::string name;
  FileDType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte range [begin, end) relative to the start of the data section
  uint64_t end = 0;
};

struct SafetensorsLayout {
  uint64_t header_bytes = 0;  // N, the JSON header length
  uint64_t data_start = 0;    // 8 + N: file offset of the data section
  std::vector<SafetensorsTensor> tensors;  // sorted by begin (the order of the data)
  std::map<std::string, std::string> metadata;
};

size_t file_dtype_size(FileDType t);
std::optional<FileDType> parse_file_dtype(std::string_view safetensors_name);

// Validates a complete safetensors file held in memory: 8-byte length, header size limits,
// UTF-8, JSON syntax, no duplicate keys, the schema, the dtype whitelist, rank <= 5, element
// and byte counts without overflow, and ranges that tile the data section exactly (no gap,
// overlap or trailing bytes). Throws Error(bad_format) whose message starts with `label`.
SafetensorsLayout parse_safetensors(std::span<const std::byte> file, const std::string& label);

// Byte offset of the first invalid UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or nullopt when `text` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// A name shortened for error messages (hostile names can be megabytes long).
std::string quote_name(std::string_view name);

}  // namespace reel::detail
