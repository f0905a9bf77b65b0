// Internal: small oneDNN helpers shared by cpu_matmul.cpp and cpu_conv.cpp (dtype mapping,
// the compute-type rule for mixed inputs, and scratch conversions).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <algorithm>
#include <string>

#include "cpu/cpu_common.hpp"

namespace reel::cpu {

inline dnnl::memory::data_type dnnl_type(DType t) {
  switch (t) {
    case DType::f32: return dnnl::memory::data_type::f32;
    case DType::bf16: return dnnl::memory::data_type::bf16;
    case DType::f16: return dnnl::memory::data_type::f16;
    case DType::i32: return dnnl::memory::data_type::s32;
  }
  return dnnl::memory::data_type::undef;
}

// The type both GEMM/conv operands are brought to. Without native low-precision kernels
// (CpuContext::native_low_precision) always f32: bf16/f16 widen exactly. With them: the
// operands' common type when they agree; bf16 for f32 activations with bf16 weights (the
// activations are rounded to bf16 so the big weight tensor is used as is, on the bf16 units
// with f32 accumulation); f32 for any other mix.
inline DType compute_type(DType x, DType w, bool native_low_precision) {
  if (!native_low_precision) return DType::f32;
  if (x == w) return x;
  if (x == DType::f32 && w == DType::bf16) return DType::bf16;
  return DType::f32;
}

// oneDNN's reference kernels are orders of magnitude slower than the f32 JIT ones: a low
// precision primitive that only has a reference implementation is treated as unavailable.
inline bool is_reference_impl(const char* impl) { return std::string(impl).find("ref") != std::string::npos; }

// Reusable per-thread scratch memory for widened operands and temporary outputs, so large
// conversions do not map and fault in fresh pages on every call. Slots let one op hold several.
enum ScratchSlot {
  kScratchSrc = 0,
  kScratchWeights = 1,
  kScratchDst = 2,
  kScratchBias = 3,
  kScratchDnnl = 4,  // oneDNN's own scratchpad for the primitive being run
  kScratchSlots = 5
};
void* scratch_buffer(ScratchSlot slot, size_t bytes);

// Pointer to t's data in `type`: t itself, or a converted copy in the calling thread's scratch
// slot (valid until that slot is used again).
inline const void* data_as(const Tensor& t, DType type, ScratchSlot slot) {
  if (t.dtype() == type) return t.raw();
  void* p = scratch_buffer(slot, t.numel() * dtype_size(type));
  convert_parallel(t.raw(), t.dtype(), p, type, t.numel());
  return p;
}

// Primitives are built once and then run from whichever thread calls the backend, possibly
// several at once. oneDNN's library-managed scratchpad is tied to the creating thread (see
// dnnl::scratchpad_mode), so every primitive is built with a user scratchpad and each run
// passes the calling thread's kScratchDnnl buffer.
inline dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}
inline dnnl::memory scratchpad_memory(const dnnl::memory::desc& desc, const dnnl::engine& eng) {
  return dnnl::memory(desc, eng, scratch_buffer(kScratchDnnl, std::max<size_t>(desc.get_size(), 1)));
}

}  // namespace reel::cpu
