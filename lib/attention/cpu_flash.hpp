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
  avx512,       // AVX-512F: f32 FMA micro-kernels; bf16 and f16 inputs are converted to f32
  avx512_bf16,  // + AVX512_BF16: bf16 inputs use vdpbf16ps for Q·Kᵀ and for P·V (P rounded to bf16)
};

const char* flash_isa_name(FlashIsa isa);
bool flash_isa_available(FlashIsa isa);
// The variant cpu_flash runs: REEL_CPU_FLASH_ISA (generic | avx512 | avx512_bf16) when set,
// else avx512 where the CPU has AVX-512F, else generic. avx512 is preferred over avx512_bf16
// even for bf16 inputs: on the Xeon (AVX512_BF16, no AMX) this was tuned on, vdpbf16ps retires
// at half the rate of vfmadd231ps (measured 86 vs 174 GFLOP/s per core), so converting to f32
// is ~1.8x faster. Throws invalid_argument for an unknown or unavailable REEL_CPU_FLASH_ISA.
FlashIsa default_flash_isa();

// Runs cpu_flash with a given instruction-set variant (must be available); p validated.
void run_cpu_flash(const AttentionParams& p, FlashIsa isa);

inline constexpr int kFlashQBlock = 64;     // query rows per work item (4 zmm of f32 lanes)
inline constexpr int kFlashTileRows = 6;    // rows per register tile: 6 × 4 accumulators = 24 zmm
inline constexpr int kFlashKvBlock = 120;   // key rows per online-softmax step (a multiple of 6 and of 2)
inline constexpr int64_t kFlashMaxHeadDim = 256;

// Panel layouts of the avx512 f32 path, so that every register tile reads one contiguous
// stream: K as [ceil(skv/6)][d][6] (6 key rows interleaved), V as [ceil(d/6)][skv][6]
// (6 head-dim columns interleaved); padding is zero.
inline int64_t flash_k_panel_floats(int64_t skv, int64_t d) { return (skv + 5) / 6 * 6 * d; }
inline int64_t flash_v_panel_floats(int64_t skv, int64_t d) { return (d + 5) / 6 * 6 * skv; }

// One head, as the block functions see it. Pointers are at (b, row 0, h).
struct FlashHead {
  const void* q;       // dtype elements, rows q_rs apart
  int64_t q_rs;
  const void* k;       // bf16: bf16 rows; avx512 f32: K panels; generic: f32 rows
  int64_t k_rs;        // row stride (bf16, generic); unused for panels
  const void* v;       // bf16: packed pairs uint32 [ceil(skv/2)][d]; avx512 f32: V panels; generic: f32 rows
  int64_t v_rs;        // uint32 pairs per row (bf16, = d) or f32 row stride (generic); unused for panels
  void* out;           // dtype elements, rows o_rs apart
  int64_t o_rs;
  float* lse;          // [sq] natural log-sum-exp, or null
  int64_t sq, skv, d;
  int dtype;           // of q and out
  float scale_log2;    // scale · log2(e): scores are kept in the base-2 domain
};

// dst[0, n) = the n elements at src (dtype f32, bf16 or f16) widened to f32, exactly.
void widen_row(const void* src, int dtype, float* dst, int64_t n);

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
