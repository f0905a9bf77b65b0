// cpu_flash: tiled attention with online softmax (never materialises Sq×Skv), threaded over
// batch × heads × 64-row query blocks. This file holds the kernel object, the run-time ISA
// dispatch, the per-head preparation of K/V and the portable (generic) block; the AVX-512
// blocks are in cpu_flash_avx512.cpp.
#include "attention/cpu_flash.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "attention/builtin_kernels.hpp"
#include "parallel.hpp"

namespace reel::attn {

namespace {

constexpr int QB = kFlashQBlock;
constexpr int NK = kFlashKvBlock;
// Memory for prepared K/V (converted or packed) at once; heads are processed in groups that fit.
constexpr size_t kPrepBudgetBytes = size_t(64) << 20;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};


enum class Path { generic, f32, bf16 };

// The K/V staging buffer of the calling thread, kept between calls (fresh pages would be
// faulted in on every call otherwise); at most kPrepBudgetBytes plus one head.
float* staging_buffer(size_t floats) {
  thread_local std::unique_ptr<float, AlignedFree> buffer;
  thread_local size_t capacity = 0;
  if (floats > capacity) {
    buffer.reset();
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buffer.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!buffer) {
      capacity = 0;
      throw Error(StatusCode::out_of_memory, "cpu_flash: cannot allocate the K/V staging buffer");
    }
    capacity = bytes / sizeof(float);
  }
  return buffer.get();
}

Path path_for(int dtype, int64_t d, FlashIsa isa) {
  if (isa == FlashIsa::generic) return Path::generic;
  if (isa == FlashIsa::avx512_bf16 && dtype == REEL_ATTENTION_BF16 && d % 2 == 0) return Path::bf16;
  return Path::f32;
}

}  // namespace

const char* flash_isa_name(FlashIsa isa) {
  switch (isa) {
    case FlashIsa::generic: return "generic";
    case FlashIsa::avx512: return "avx512";
    case FlashIsa::avx512_bf16: return "avx512_bf16";
  }
  return "?";
}

bool flash_isa_available(FlashIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  static const bool bf = f && __builtin_cpu_supports("avx512bf16");
  switch (isa) {
    case FlashIsa::generic: return true;
    case FlashIsa::avx512: return f;
    case FlashIsa::avx512_bf16: return bf;
  }
  return false;
#else
  return isa == FlashIsa::generic;
#endif
}

FlashIsa default_flash_isa() {
  if (const char* env = std::getenv("REEL_CPU_FLASH_ISA"); env && *env) {
    for (FlashIsa isa : {FlashIsa::generic, FlashIsa::avx512, FlashIsa::avx512_bf16})
      if (std::strcmp(env, flash_isa_name(isa)) == 0) {
        require(flash_isa_available(isa), StatusCode::invalid_argument,
                std::string("REEL_CPU_FLASH_ISA=") + env + ": this CPU lacks those instructions");
        return isa;
      }
    throw Error(StatusCode::invalid_argument,
                std::string("REEL_CPU_FLASH_ISA=") + env + " is not one of generic, avx512, avx512_bf16");
  }
  return flash_isa_available(FlashIsa::avx512) ? FlashIsa::avx512 : FlashIsa::generic;
}

void widen_row(const void* src, int dtype, float* dst, int64_t n) {
  if (dtype == REEL_ATTENTION_BF16) {
    const auto* s = static_cast<const uint16_t*>(src);
    auto* d = reinterpret_cast<uint32_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = uint32_t(s[i]) << 16;  // bf16 is the top half of an f32
  } else if (dtype == REEL_ATTENTION_F16) {
    const auto* s = static_cast<const f16*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = s[i].to_float();
  } else {
    std::memcpy(dst, src, size_t(n) * sizeof(float));
  }
}

float* flash_scratch(size_t floats) {
  thread_local std::unique_ptr<float, AlignedFree> buffer;
  thread_local size_t capacity = 0;
  if (floats > capacity) {
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buffer.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!buffer) throw Error(StatusCode::out_of_memory, "cpu_flash: cannot allocate scratch");
    capacity = bytes / sizeof(float);
  }
  return buffer.get();
}

// Portable version of the f32 block (same tiling; the compiler vectorises the 64-lane loops).
void flash_block_generic(const FlashHead& h, int64_t q0) {
  const int64_t nq = std::min<int64_t>(QB, h.sq - q0), d = h.d;
  float* qt = flash_scratch(size_t(d * QB + NK * QB + d * QB + 4 * QB));
  float* s = qt + d * QB;
  float* ot = s + NK * QB;
  float* m = ot + d * QB;
  float* l = m + QB;
  float* alpha = l + QB;
  float* sum = alpha + QB;
  const size_t elem = dtype_size(DType(h.dtype));
  for (int64_t i = 0; i < QB; ++i) {
    float* row = ot;  // Oᵀ is zeroed below: use it as the row buffer meanwhile
    if (i < nq) widen_row(static_cast<const char*>(h.q) + (q0 + i) * h.q_rs * int64_t(elem), h.dtype, row, d);
    for (int64_t c = 0; c < d; ++c) qt[c * QB + i] = i < nq ? row[c] : 0.0f;
  }
  std::fill(ot, ot + d * QB, 0.0f);
  std::fill(m, m + QB, -std::numeric_limits<float>::infinity());
  std::fill(l, l + QB, 0.0f);
  const auto* k = static_cast<const float*>(h.k);
  const auto* v = static_cast<const float*>(h.v);
  for (int64_t kv0 = 0; kv0 < h.skv; kv0 += NK) {
    const int64_t nk = std::min<int64_t>(NK, h.skv - kv0);
    for (int64_t t = 0; t < nk; ++t) {
      float* srow = s + t * QB;
      std::fill(srow, srow + QB, 0.0f);
      const float* krow = k + (kv0 + t) * h.k_rs;
      for (int64_t c = 0; c < d; ++c) {
        const float kc = krow[c];
        const float* qrow = qt + c * QB;
        for (int i = 0; i < QB; ++i) srow[i] += kc * qrow[i];
      }
    }
    for (int i = 0; i < QB; ++i) {
      float mx = m[i];
      for (int64_t t = 0; t < nk; ++t) mx = std::max(mx, s[t * QB + i] * h.scale_log2);
      alpha[i] = std::exp2(m[i] - mx);  // exp2(−inf) = 0 on the first block
      m[i] = mx;
      sum[i] = 0.0f;
    }
    for (int64_t t = 0; t < nk; ++t)
      for (int i = 0; i < QB; ++i) {
        const float p = std::exp2(s[t * QB + i] * h.scale_log2 - m[i]);
        s[t * QB + i] = p;
        sum[i] += p;
      }
    for (int i = 0; i < QB; ++i) l[i] = l[i] * alpha[i] + sum[i];
    for (int64_t c = 0; c < d; ++c) {
      float* orow = ot + c * QB;
      for (int i = 0; i < QB; ++i) orow[i] *= alpha[i];
      for (int64_t t = 0; t < nk; ++t) {
        const float vc = v[(kv0 + t) * h.v_rs + c];
        const float* prow = s + t * QB;
        for (int i = 0; i < QB; ++i) orow[i] += vc * prow[i];
      }
    }
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.0f / l[i];
    for (int64_t c = 0; c < d; ++c) {
      const float x = ot[c * QB + i] * inv;
      const int64_t idx = (q0 + i) * h.o_rs + c;
      if (h.dtype == REEL_ATTENTION_BF16) static_cast<bf16*>(h.out)[idx] = bf16::from_float(x);
      else if (h.dtype == REEL_ATTENTION_F16) static_cast<f16*>(h.out)[idx] = f16::from_float(x);
      else static_cast<float*>(h.out)[idx] = x;
    }
    if (h.lse) h.lse[q0 + i] = (m[i] + std::log2(l[i])) * 0.69314718055994531f;
  }
}

void run_cpu_flash(const AttentionParams& p, FlashIsa isa) {
  require(flash_isa_available(isa), StatusCode::unsupported,
          std::string("cpu_flash: this CPU lacks the ") + flash_isa_name(isa) + " instructions");
  const Path path = path_for(p.dtype, p.head_dim, isa);
  const int64_t d = p.head_dim, skv = p.seq_kv, pairs_kv = (skv + 1) / 2;
  // Per-head staged data. bf16 path: V packed into key pairs (K is read in place). avx512 f32
  // path: K and V as f32 panels (cpu_flash.hpp). generic: K and V converted to f32 rows
  // unless they already are f32.
  const bool pack_v = path == Path::bf16;
  const bool panels = path == Path::f32;
  const bool convert = path == Path::generic && p.dtype != REEL_ATTENTION_F32;
  const int64_t k_panel = flash_k_panel_floats(skv, d);
  const size_t head_floats = pack_v    ? size_t(pairs_kv * d)
                             : panels  ? size_t(k_panel + flash_v_panel_floats(skv, d))
                             : convert ? size_t(2 * skv * d)
                                       : 0;
  const int64_t heads_total = p.batch * p.heads;
  const int64_t group =
      head_floats ? std::clamp<int64_t>(int64_t(kPrepBudgetBytes / (head_floats * 4)), 1, heads_total) : heads_total;
  float* prep = head_floats ? staging_buffer(size_t(group) * head_floats) : nullptr;
  const int64_t q_blocks = (p.seq_q + QB - 1) / QB;
  const size_t elem = dtype_size(DType(p.dtype));
  const float scale_log2 = p.scale * 1.4426950408889634f;
  auto block_fn = path == Path::bf16 ? flash_block_avx512_bf16
                  : path == Path::f32 ? flash_block_avx512_f32
                                      : flash_block_generic;

  for (int64_t g0 = 0; g0 < heads_total; g0 += group) {
    const int64_t gn = std::min(group, heads_total - g0);
    auto head_ptr = [&](const void* base, int64_t bs, int64_t hs, int64_t bh) {
      return static_cast<const char*>(base) + (bh / p.heads * bs + bh % p.heads * hs) * int64_t(elem);
    };
    if (head_floats) {
      // Stage K/V of the group's heads. Items are chunks of 48 key rows (a multiple of the
      // 6-row panels and of the bf16 pairs); within one, rows are swept across all the group's
      // heads, so consecutive reads are contiguous in a [B, S, H, D] buffer.
      const int64_t chunk = 48, chunks = (skv + chunk - 1) / chunk;
      parallel_for_each_checked(chunks, [&](int64_t item) {
        const int64_t r0 = item * chunk, r1 = std::min(skv, r0 + chunk);
        constexpr int T = kFlashTileRows;
        const int64_t dpad = (d + T - 1) / T * T;
        std::vector<float> row(static_cast<size_t>(dpad), 0.0f);  // columns past d stay 0
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t local = 0; local < gn; ++local) {
            const int64_t bh = g0 + local;
            float* dst = prep + size_t(local) * head_floats;
            const char* krow = head_ptr(p.k, p.k_batch_stride, p.k_head_stride, bh) + r * p.k_row_stride * int64_t(elem);
            const char* vrow = head_ptr(p.v, p.v_batch_stride, p.v_head_stride, bh) + r * p.v_row_stride * int64_t(elem);
            if (pack_v) {  // V in key pairs: vp[t][c] = (v[2t][c], v[2t+1][c]); an odd last key pairs with 0
              auto* vp = reinterpret_cast<uint16_t*>(dst);
              const auto* v = reinterpret_cast<const uint16_t*>(vrow);
              for (int64_t c = 0; c < d; ++c) vp[((r / 2) * d + c) * 2 + r % 2] = v[c];
              if (r == skv - 1 && skv % 2)
                for (int64_t c = 0; c < d; ++c) vp[((r / 2) * d + c) * 2 + 1] = 0;
            } else if (panels) {
              float* kp = dst;
              float* vp = dst + k_panel;
              widen_row(krow, p.dtype, row.data(), d);
              for (int64_t c = 0; c < d; ++c) kp[(r / T * d + c) * T + r % T] = row[size_t(c)];
              widen_row(vrow, p.dtype, row.data(), d);
              for (int64_t c = 0; c < dpad; ++c) vp[(c / T * skv + r) * T + c % T] = row[size_t(c)];
              if (r == skv - 1)  // zero the padding rows of the last K panel
                for (int64_t rp = skv; rp < (skv + T - 1) / T * T; ++rp)
                  for (int64_t c = 0; c < d; ++c) kp[(rp / T * d + c) * T + rp % T] = 0.0f;
            } else {
              widen_row(krow, p.dtype, dst + r * d, d);
              widen_row(vrow, p.dtype, dst + (skv + r) * d, d);
            }
          }
      });
    }
    parallel_for_each_checked(gn * q_blocks, [&](int64_t item) {
      const int64_t local = item / q_blocks, bh = g0 + local, qb = item % q_blocks;
      FlashHead h{};
      h.q = head_ptr(p.q, p.q_batch_stride, p.q_head_stride, bh);
      h.q_rs = p.q_row_stride;
      h.out = const_cast<char*>(head_ptr(p.out, p.out_batch_stride, p.out_head_stride, bh));
      h.o_rs = p.out_row_stride;
      h.lse = p.lse ? p.lse + bh * p.seq_q : nullptr;
      h.sq = p.seq_q;
      h.skv = skv;
      h.d = d;
      h.dtype = p.dtype;
      h.scale_log2 = scale_log2;
      float* staged = head_floats ? prep + size_t(local) * head_floats : nullptr;
      if (pack_v) {
        h.k = head_ptr(p.k, p.k_batch_stride, p.k_head_stride, bh);
        h.k_rs = p.k_row_stride;
        h.v = staged;
        h.v_rs = d;
      } else if (panels) {
        h.k = staged;
        h.v = staged + k_panel;
      } else if (convert) {
        h.k = staged;
        h.k_rs = d;
        h.v = staged + skv * d;
        h.v_rs = d;
      } else {
        h.k = head_ptr(p.k, p.k_batch_stride, p.k_head_stride, bh);
        h.k_rs = p.k_row_stride;
        h.v = head_ptr(p.v, p.v_batch_stride, p.v_head_stride, bh);
        h.v_rs = p.v_row_stride;
      }
      block_fn(h, qb * QB);
    });
  }
}

namespace {

class CpuFlash final : public AttentionKernel {
 public:
  std::string_view name() const override { return "cpu_flash"; }
  std::string_view description() const override {
    return "tiled online-softmax attention, f32 accumulation; AVX-512 micro-kernels chosen at run time";
  }
  DeviceType device_type() const override { return DeviceType::cpu; }
  int priority() const override { return 100; }
  Support supports(const AttentionParams& p) const override {
    if (p.head_dim > kFlashMaxHeadDim)
      return Support::no("head_dim " + std::to_string(p.head_dim) + " > " + std::to_string(kFlashMaxHeadDim));
    return Support::yes();
  }
  void run(const AttentionParams& p) const override { run_cpu_flash(p, default_flash_isa()); }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_cpu_flash_kernel() { return std::make_shared<CpuFlash>(); }

}  // namespace reel::attn
