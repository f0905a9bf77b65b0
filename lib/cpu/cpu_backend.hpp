// Internal: the CPU backend with an explicit choice of how bf16/f16 GEMMs and convolutions
// run (tests use it to cover both paths; make_cpu_backend() picks automatically).
#pragma once
#include <memory>

#include "reel/backend.hpp"

namespace reel::cpu {

enum class LowPrecisionCompute {
  automatic,  // native bf16 kernels where the CPU has AMX, else f32 (see CpuContext)
  native,     // bf16 operands go to oneDNN's bf16 kernels (f32 accumulation)
  f32,        // bf16/f16 operands are widened to f32 (exact) and multiplied in f32
};

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options, LowPrecisionCompute compute);

}  // namespace reel::cpu
