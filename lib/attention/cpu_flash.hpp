// Internal: the pieces of the cpu_flash kernel, shared by the dispatcher (cpu_flash.cpp), the
// AVX-512 code (cpu_flash_avx512.cpp, compiled with function target attributes and chosen at
// run time) and the tests, which run every instruction-set variant on the same inputs.
//
// Algorithm (FlashAttention-2 forward, transposed for the CPU): one work item is one head and
// a block of 64 query rows. Scores are computed as Sᵀ = K·Qᵀ, 64 query rows across the SIMD
// lanes, so the online-softmax max and sum over keys are plain vertical vector ops; the
// output is accumulated transposed (Oᵀ[d][q]) and written back once per block. Nothing of
// size Sq×Skv is ever stored: per thread, one kv block of scores (kKvBlock × 64 floats).
#pragma once
#include <cstddef>
#include <cstdint>

#include "reel/attention.hpp"

namespace reel::attn {

enum class FlashIsa {
  generic,      // portable C++ (whatever the compiler vectorises for the baseline target)
  avx512,       // AVX-512F: f32 FMA micro-kernels (f16, and bf16 without AVX512_BF16, go through f32)
  avx512_bf16,  // + AVX512_BF16: bf16 inputs use vdpbf16ps for Q·Kᵀ and for P·V (P rounded to bf16)
};

const char* flash_isa_name(FlashIsa isa);
// The best variant this CPU runs (checked once with __builtin_cpu_supports).
FlashIsa best_flash_isa();
bool flash_isa_available(FlashIsa isa);

// Runs cpu_flash with a given instruction-set variant (must be available); p validated.
void run_cpu_flash(const AttentionParams& p, FlashIsa isa);

inline constexpr int kFlashQBlock = 64;     // query rows per work item (4 zmm of f32 lanes)
inline constexpr int kFlashKvBlock = 128;   // key rows per online-softmax step
inline constexpr int64_t kFlashMaxHeadDim = 256;

// One head, as the block functions see it. Pointers are at (b, row 0, h).
struct FlashHead {
  const void* q;       // dtype elements, rows q_rs apart
  int64_t q_rs;
  const void* k;       // bf16 path: bf16 rows; f32 paths: f32 rows (converted when needed)
  int64_t k_rs;
  const void* v;       // bf16 path: packed pairs uint32 [ceil(skv/2)][d]; f32 paths: f32 rows
  int64_t v_rs;        // elements (f32 rows) or uint32 pairs (bf16 path, = d)
  void* out;           // dtype elements, rows o_rs apart
  int64_t o_rs;
  float* lse;          // [sq] natural log-sum-exp, or null
  int64_t sq, skv, d;
  int dtype;           // of q and out
  float scale_log2;    // scale · log2(e): scores are kept in the base-2 domain
};

// 64-byte aligned per-thread scratch of at least `floats` floats (reused between calls).
float* flash_scratch(size_t floats);

// Process query rows [q0, q0 + min(64, sq − q0)) of one head.
void flash_block_generic(const FlashHead& h, int64_t q0);
void flash_block_avx512_f32(const FlashHead& h, int64_t q0);
void flash_block_avx512_bf16(const FlashHead& h, int64_t q0);

// The vectorised exp2 used by the AVX-512 kernels, exposed for its accuracy test:
// out[i] = 2^in[i] for in[i] <= 0, relative error <= 3e-7 (inputs below −126 give 2^−126).
void flash_exp2_avx512(const float* in, float* out, int64_t n);

}  // namespace reel::attn
