// The machine's measured ceiling that every benchmark reports against: the bf16 GEMM rate
// of oneDNN (f32 accumulation) with the current thread count, measured once per process.
#pragma once

namespace reel::bench {

// TFLOP/s of a bf16 2048×2048×2048 oneDNN matmul (best of several runs), cached.
double bf16_gemm_ceiling_tflops();

// The same GEMM's rate per CPU second of its threads (process CPU time / thread count), for
// comparing against CPU-time rates on a machine shared with other jobs.
double bf16_gemm_ceiling_cpu_time_tflops();

}  // namespace reel::bench
