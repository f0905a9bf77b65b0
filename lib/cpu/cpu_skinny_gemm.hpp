// Internal: the few-rows Linear kernel (cpu_skinny_gemm.cpp) and when cpu_matmul.cpp uses it.
#pragma once
#include "cpu/cpu_kernels.hpp"

namespace reel::cpu {

// Up to this many rows, widening bf16/f16 weights for an f32 GEMM costs more than the GEMM
// (measured on AVX-512, 1536×8960 bf16 weights, GFLOP/s per core: M=1 7 vs 2 widened, M=16 55
// vs 27, M=32 84 vs 27; at M=64 the widened oneDNN GEMM catches up).
inline constexpr int64_t kSkinnyMaxRows = 32;

// True when `o` should run on skinny_linear: f32 compute mode, low-precision weights, few rows.
bool use_skinny_linear(const op::Linear& o, const CpuContext& ctx);
// out = x·wᵀ + b with f32 accumulation; x, w, bias of any float type. Needs K > 0.
void skinny_linear(const op::Linear& o);

}  // namespace reel::cpu
