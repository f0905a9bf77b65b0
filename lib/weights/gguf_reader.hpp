// Internal: the validated layout of one GGUF file (v2/v3; ggml's model format, as written by
// llama.cpp's and gguf-py's writers and by ComfyUI-GGUF's converter). Works on bytes in memory,
// so a fuzz target can call it directly.
//
//   if (detail::has_gguf_magic(file->bytes())) {
//     detail::GgufLayout g = detail::parse_gguf(file->bytes(), path);
//     for (const auto& t : g.tensors) ...  // name, dtype, reel shape, absolute offset, bytes
//   }
//
// File layout (little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count
// pairs (string key, u32 value type, value; strings are u64 length + bytes; arrays are u32 element
// type + u64 count + elements); tensor_count infos (string name, u32 n_dims ≤ 4, u64 ne[n_dims]
// with ne[0] the fastest-varying, u32 ggml type, u64 offset into the data section); padding to
// `general.alignment` (u32, default 32); the data section.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "reel/tensor.hpp"
#include "reel/weights.hpp"

namespace reel::detail {

inline constexpr uint32_t kGgufDefaultAlignment = 32;

struct GgufTensor {
  std::string name;
  FileDType dtype;
  Shape shape;          // reel order: ne reversed; or comfy.gguf.orig_shape.<name> when present
  uint64_t offset = 0;  // absolute file offset of the first byte
  uint64_t bytes = 0;
};

struct GgufLayout {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_start = 0;         // file offset of the data section
  std::vector<GgufTensor> tensors;  // in file order
  std::map<std::string, std::string> metadata;  // every KV, rendered as text (see WeightStore::metadata)
};

// True when the file starts with the 4 bytes "GGUF".
bool has_gguf_magic(std::span<const std::byte> file);

// Validates a complete GGUF file held in memory: every read within the file, counts bounded by
// what the remaining bytes could hold, UTF-8 keys and names, no duplicate keys or tensor names,
// known value types (no nested arrays), a power-of-two alignment, 1-4 dims whose product fits
// in 62 bits, ne[0] a multiple of the type's block, offsets aligned and in range, no overlaps.
// Throws Error(bad_format) — or unsupported for a version other than 2/3 or a ggml type reel
// cannot dequantise (named) — with a message starting with `label`.
GgufLayout parse_gguf(std::span<const std::byte> file, const std::string& label);

}  // namespace reel::detail
