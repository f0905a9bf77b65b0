// Internal: ggml's block layouts (what a GGUF tensor's bytes mean) and their dequantisation to
// f32. Each block holds `elements` consecutive values (along ne[0], the fastest dimension) in
// `bytes` bytes; blocks never straddle rows, since ne[0] must be a multiple of `elements`.
//
//   const GgufBlock b = gguf_block(FileDType::q4_k);        // {256, 144}
//   dequantize_gguf(FileDType::q4_k, src, dst, n_elements);  // n_elements % 256 == 0
#pragma once
#include <cstddef>
#include <cstdint>

#include "reel/weights.hpp"

namespace reel::detail {

struct GgufBlock {
  uint32_t elements = 0;
  uint32_t bytes = 0;
};

// F32/F16/BF16 are "blocks" of one element. Every FileDType except the fp8 ones has a layout.
GgufBlock gguf_block(FileDType t);

// Decodes `n` elements (a multiple of the block size) of `t` from `src` into `dst`. The result
// is bit-identical to ggml's dequantize_row_* (and gguf-py's numpy dequantizer): each value is
// the same f32 expression evaluated in the same order, with f16 scales widened exactly.
// `src` needs no alignment. Runs on reel::parallel_for over blocks.
void dequantize_gguf(FileDType t, const std::byte* src, float* dst, size_t n);

}  // namespace reel::detail
