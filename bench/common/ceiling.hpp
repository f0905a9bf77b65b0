// The machine's measured ceiling that every benchmark reports against: the bf16 GEMM rate
// of oneDNN (f32 accumulation) with the current thread count, measured once per process.
#pragma once

namespace reel::bench {

// TFLOP/s of a bf16 2048×2048×2048 oneDNN matmul (best of several runs), cached.
double bf16_gemm_ceiling_tflops();

}  // namespace reel::bench
