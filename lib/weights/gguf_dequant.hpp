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

// Encodes n f32 values as GGUF blocks: Q8_0 and Q4_0 (n a multiple of 32) as ggml's reference
// quantisers do (quantize_row_q8_0_ref, quantize_row_q4_0_ref); Q4_K (n a multiple of 256)
// with reel's own encoder: each 32-value sub-block's range [min(0, lo), hi] on 0..15, its
// scale and min as 6-bit multiples of the block's (not ggml's iterative search: a valid Q4_K
// block any reader decodes, a little less accurate). False for other types.
bool quantize_gguf(FileDType t, const float* src, std::byte* dst, size_t n);

// The types whose values are, per sub-block of gguf_affine_sub(t) elements, w = scale · q +
// offset with small unsigned integers q: Q8_0 (q = stored + 128, offset = −128·d), Q4_0
// (q = nibble, offset −8·d), Q4_1 (offset = m), Q5_0 (offset −16·d), Q5_1, and Q4_K / Q5_K
// (scale = d·sc_j, offset = −dmin·m_j per sub-block of 32); Q6_K (d·sc_j, −32·d·sc_j), Q3_K
// (q + 4: d·sc_j, −4·d·sc_j) and Q2_K (d·sc_j, −dmin·m_j) per sub-block of 16. For these,
// decodes n elements into q [n] and scale, offset [n / sub]; returns false for any other type.
bool gguf_affine_blocks(FileDType t, const std::byte* src, size_t n, uint8_t* q, float* scale, float* offset);
// The largest q of the type (255 for Q8_0, 63 for Q6_K, 31 for the 5-bit types, 15, 7 or 3
// for the others); 0 for types gguf_affine_blocks does not take.
int gguf_affine_max_q(FileDType t);
// The sub-block size: 16 for Q6_K, Q3_K, Q2_K, else 32.
int gguf_affine_sub(FileDType t);

}  // namespace reel::detail
