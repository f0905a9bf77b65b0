// f32 <-> bf16 / f16 row conversion for the CPU kernels. bf16 uses integer bit tricks the
// compiler vectorises; f16 uses the F16C instructions when the CPU has them (checked at run
// time), else the portable reel::f16 conversion. Both round to nearest, ties to even.
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include <array>
#include <cstdlib>
#include <memory>

#include "cpu/cpu_common.hpp"
#include "cpu/cpu_dnnl.hpp"
#include "parallel.hpp"

namespace reel::cpu {

namespace {

REEL_CPU_CLONES void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t(src[i]) << 16);
}

// The same rounding as reel::bf16::from_float, written without branches.
REEL_CPU_CLONES void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(src[i]);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;
    dst[i] = uint16_t((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
  }
}

bool have_f16c() {
  // CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c").
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  return yes;
}

__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = f16::from_bits(src[i]).to_float();
}

__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = f16::from_float(src[i]).bits;
}

}  // namespace

void load_f32(const void* src, DType type, float* dst, int64_t n) {
  switch (type) {
    case DType::f32: std::memcpy(dst, src, size_t(n) * 4); return;
    case DType::bf16: bf16_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::f16:
      if (have_f16c()) {
        f16_to_f32_f16c(static_cast<const uint16_t*>(src), dst, n);
      } else {
        const auto* s = static_cast<const f16*>(src);
        for (int64_t i = 0; i < n; ++i) dst[i] = s[i].to_float();
      }
      return;
    case DType::i32: break;
  }
  throw Error(StatusCode::internal, "load_f32: i32 is not a float type");
}

void store_f32(const float* src, void* dst, DType type, int64_t n) {
  switch (type) {
    case DType::f32: std::memmove(dst, src, size_t(n) * 4); return;
    case DType::bf16: f32_to_bf16(src, static_cast<uint16_t*>(dst), n); return;
    case DType::f16:
      if (have_f16c()) {
        f32_to_f16_f16c(src, static_cast<uint16_t*>(dst), n);
      } else {
        auto* d = static_cast<f16*>(dst);
        for (int64_t i = 0; i < n; ++i) d[i] = f16::from_float(src[i]);
      }
      return;
    case DType::i32: break;
  }
  throw Error(StatusCode::internal, "store_f32: i32 is not a float type");
}

void convert_parallel(const void* src, DType src_type, void* dst, DType dst_type, int64_t n) {
  const size_t in_size = dtype_size(src_type), out_size = dtype_size(dst_type);
  const auto* s = static_cast<const std::byte*>(src);
  auto* d = static_cast<std::byte*>(dst);
  parallel_for((n + kBlock - 1) / kBlock, 16, [&](int64_t b, int64_t e) {
    float tmp[kBlock];
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t i0 = blk * kBlock, len = std::min(kBlock, n - i0);
      const float* v = f32_view(s + i0 * in_size, src_type, tmp, len);
      store_f32(v, d + i0 * out_size, dst_type, len);
    }
  });
}

void* scratch_buffer(ScratchSlot slot, size_t bytes) {
  struct Buffer {
    std::unique_ptr<std::byte, decltype(&std::free)> data{nullptr, &std::free};
    size_t capacity = 0;
  };
  thread_local std::array<Buffer, kScratchSlots> buffers;
  Buffer& b = buffers[slot];
  if (b.capacity < bytes) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    b.data.reset();
    b.data.reset(static_cast<std::byte*>(std::aligned_alloc(64, rounded)));
    if (!b.data) {
      b.capacity = 0;
      throw Error(StatusCode::out_of_memory, "cannot allocate " + std::to_string(bytes) + " bytes of CPU scratch");
    }
    b.capacity = rounded;
  }
  return b.data.get();
}

Tensor converted(const Tensor& t, DType type) {
  Tensor out = Tensor::empty(t.shape(), type);
  convert_parallel(t.raw(), t.dtype(), out.raw(), type, t.numel());
  return out;
}

}  // namespace reel::cpu
