// Internal helpers shared by the CPU kernels: typed element access, f32 <-> bf16/f16 row
// conversion, the device check every supports() starts with, and the vectorisable math
// (exp, sigmoid) the element-wise and norm kernels use.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <exception>
#include <mutex>
#include <string>

#include "parallel.hpp"
#include "reel/backend.hpp"

// Hot loops are compiled three times (AVX-512, AVX2+FMA, baseline) and picked at load time,
// so the build never requires a particular CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define REEL_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define REEL_CPU_CLONES
#endif

namespace reel::cpu {

// Elements per row block in the streaming kernels (f32 scratch of this size lives on the stack).
inline constexpr int64_t kBlock = 1024;

inline const std::byte* bytes_at(const Tensor& t, int64_t element) {
  return static_cast<const std::byte*>(t.raw()) + element * int64_t(dtype_size(t.dtype()));
}
inline std::byte* bytes_at(Tensor& t, int64_t element) {
  return static_cast<std::byte*>(t.raw()) + element * int64_t(dtype_size(t.dtype()));
}

// n elements of `type` at src -> f32 at dst.
void load_f32(const void* src, DType type, float* dst, int64_t n);
// n f32 values -> `type` at dst, rounding to nearest even.
void store_f32(const float* src, void* dst, DType type, int64_t n);

// f32 view of n elements: src itself when it already holds f32, else converted into scratch.
inline const float* f32_view(const void* src, DType type, float* scratch, int64_t n) {
  if (type == DType::f32) return static_cast<const float*>(src);
  load_f32(src, type, scratch, n);
  return scratch;
}

// n elements between float types, in parallel (f32 math, round to nearest even on store).
void convert_parallel(const void* src, DType src_type, void* dst, DType dst_type, int64_t n);

// Converts a whole tensor into a new CPU tensor of `type` (used when an op needs another
// compute type, e.g. the f32 fallback of a matmul).
Tensor converted(const Tensor& t, DType type);

// Every CPU op starts here: all tensors must live in host memory.
inline Support cpu_tensors(std::initializer_list<std::pair<const Tensor*, const char*>> tensors) {
  for (const auto& [t, name] : tensors)
    if (t && t->defined() && !t->is_cpu())
      return Support::no(std::string(name) + " is on " + t->device().str() +
                         "; the CPU backend needs host tensors (copy with Tensor::to(Device::cpu()))");
  return Support::yes();
}

// ---------------------------------------------------------------- vectorisable math

// e^x for f32 without libm calls (so loops over it vectorise): x = n·ln2 + r, |r| <= ln2/2,
// e^r by its degree-7 Taylor polynomial (truncation error < 6e-9 relative), 2^n from the
// exponent bits. Inputs below -87 give 0, above 88 are clamped (e^88 ~ 1.65e38, finite).
inline float fast_exp(float x) {
  const float xc = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding and subtracting rounds to an integer
  const float n = (xc * kLog2e + kRound) - kRound;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so n·kLn2Hi is exact
  constexpr float kLn2Lo = 1.428606765330187e-06f;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>(uint32_t(int32_t(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

}  // namespace reel::cpu
