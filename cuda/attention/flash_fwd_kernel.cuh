// cuda_flash: our FlashAttention-2-style forward kernel for sm80+ (also runs on sm90).
// Included by one flash_fwd_<dtype>_hdim<D>.cu file per instantiation, so they build in parallel.
//
// Version 1 (this file): mma.sync m16n8k16 (bf16/f16 in, f32 accumulate), ldmatrix for every
// operand (.trans for V), cp.async double buffering of the K/V tiles, online softmax in the
// base-2 domain with ex2.approx, P kept in registers (the m16n8 accumulator layout of S is the
// A-operand layout of P·V). Non-causal, any Sq/Skv (masked tails), head_dim 64 or 128.
//
// One CTA = 128 query rows of one (batch, head), 8 warps, each owning 16 rows; key blocks of 64.
// Shared memory rows are padded by 8 elements (16 bytes) so the 8 row addresses of an
// ldmatrix fall in distinct bank groups.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/flash_fwd_launch.hpp"
#include "attention/kernel_image.hpp"
#include "reel/attention_params.h"

namespace reel::attn::flash {

// kBlockM, kBlockN, kPad and smem_bytes(D) are in flash_fwd_launch.hpp (host code needs them).
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
static_assert(kWarps * 16 == kBlockM, "each warp owns 16 query rows");

// ---------------------------------------------------------------- PTX wrappers

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global → shared; src_bytes 0 writes zeros (rows past the end).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <class T> struct Mma;
template <> struct Mma<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low 16 bits) = lo
    return *reinterpret_cast<uint32_t*>(&v);
  }
};
template <> struct Mma<__half> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: 2 ulp; exp2(−inf) = +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Rows [0, ROWS) of a tile with D columns from global (row stride gs elements) into shared
// memory (row stride D + kPad); rows >= valid are zero-filled.
template <int ROWS, int D, class T>
__device__ __forceinline__ void load_tile(T* s, const T* g, int64_t gs, int valid) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
#pragma unroll
  for (int c = threadIdx.x; c < ROWS * kChunks; c += kThreads) {
    const int r = c / kChunks, cc = c % kChunks;
    const bool in = r < valid;
    const T* src = g + (in ? int64_t(r) * gs : 0) + cc * 8;  // a valid address even when zero-filling
    cp_async_16(s + r * (D + kPad) + cc * 8, src, in ? 16 : 0);
  }
}

// ---------------------------------------------------------------- the kernel

template <class T, int D>
__global__ void __launch_bounds__(kThreads, 1) flash_fwd_kernel(const reel_attention_params p) {
  constexpr int LD = D + kPad;
  constexpr int kD8 = D / 8, kD16 = D / 16, kN8 = kBlockN / 8, kN16 = kBlockN / 16;
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // [kBlockM][LD]
  T* sK = sQ + kBlockM * LD;           // [2][kBlockN][LD]
  T* sV = sK + 2 * kBlockN * LD;       // [2][kBlockN][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int m0 = blockIdx.x * kBlockM, h = blockIdx.y, b = blockIdx.z;
  const int64_t seq_q = p.seq_q, seq_kv = p.seq_kv;
  const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + m0 * p.q_row_stride;
  const T* k = static_cast<const T*>(p.k) + b * p.k_batch_stride + h * p.k_head_stride;
  const T* v = static_cast<const T*>(p.v) + b * p.v_batch_stride + h * p.v_head_stride;
  T* out = static_cast<T*>(p.out) + b * p.out_batch_stride + h * p.out_head_stride + m0 * p.out_row_stride;
  const int n_blocks = int((seq_kv + kBlockN - 1) / kBlockN);
  const int kv_valid_last = int(seq_kv - int64_t(n_blocks - 1) * kBlockN);
  const float scale_log2 = p.scale * 1.4426950408889634f;

  // Group 0: Q, K0, V0. Group 1: K1, V1 (possibly empty). Then one group per iteration.
  load_tile<kBlockM, D>(sQ, q, p.q_row_stride, seq_q - m0 < kBlockM ? int(seq_q - m0) : kBlockM);
  load_tile<kBlockN, D>(sK, k, p.k_row_stride, n_blocks == 1 ? kv_valid_last : kBlockN);
  load_tile<kBlockN, D>(sV, v, p.v_row_stride, n_blocks == 1 ? kv_valid_last : kBlockN);
  cp_async_commit();
  if (n_blocks > 1) {
    const int valid = n_blocks == 2 ? kv_valid_last : kBlockN;
    load_tile<kBlockN, D>(sK + kBlockN * LD, k + kBlockN * p.k_row_stride, p.k_row_stride, valid);
    load_tile<kBlockN, D>(sV + kBlockN * LD, v + kBlockN * p.v_row_stride, p.v_row_stride, valid);
  }
  cp_async_commit();

  uint32_t qf[kD16][4];  // this warp's 16 query rows as A fragments, one per 16 columns of D
  float o[kD8][4];       // output accumulator: 16 rows × D, m16n8 layout per 8 columns
#pragma unroll
  for (int i = 0; i < kD8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};  // rows lane/4 and lane/4 + 8, base-2 domain
  float row_sum[2] = {0.0f, 0.0f};            // this thread's partial sums (quad-reduced at the end)

  for (int j = 0; j < n_blocks; ++j) {
    cp_async_wait<1>();  // group j (K_j, V_j; and Q for j = 0) has landed
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < kD16; ++kk)
        ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
    }
    const T* kb = sK + (j & 1) * kBlockN * LD;
    const T* vb = sV + (j & 1) * kBlockN * LD;

    // S = Q·Kᵀ for 16 rows × 64 keys.
    float s[kN8][4];
#pragma unroll
    for (int i = 0; i < kN8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD16; ++kk) {
#pragma unroll
      for (int nn = 0; nn < kN16; ++nn) {
        uint32_t kf[4];  // b0, b1 of key tile nn*16 and of key tile nn*16 + 8
        const int key = nn * 16 + (lane >> 4) * 8 + (lane & 7);
        ldmatrix_x4(kf, kb + key * LD + kk * 16 + ((lane >> 3) & 1) * 8);
        Mma<T>::run(s[2 * nn], qf[kk], kf[0], kf[1]);
        Mma<T>::run(s[2 * nn + 1], qf[kk], kf[2], kf[3]);
      }
    }

    // Online softmax (base 2). Keys past the end of the last block get −inf.
    const int valid = j == n_blocks - 1 ? kv_valid_last : kBlockN;
    float mx[2] = {row_max[0], row_max[1]};
#pragma unroll
    for (int i = 0; i < kN8; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = i * 8 + (lane & 3) * 2 + (e & 1);
        s[i][e] = col < valid ? s[i][e] * scale_log2 : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[i][e]);
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      alpha[r] = fast_exp2(row_max[r] - mx[r]);  // 0 on the first block (row_max = −inf)
      row_max[r] = mx[r];
      row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int i = 0; i < kN8; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[i][e] = fast_exp2(s[i][e] - mx[e >> 1]);
        row_sum[e >> 1] += s[i][e];
      }
    }
#pragma unroll
    for (int i = 0; i < kD8; ++i) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }

    // O += P·V: P from registers (16 keys per k-step), V through ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < kN16; ++kk) {
      const uint32_t pa[4] = {Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]), Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]),
                              Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dd = 0; dd < kD16; ++dd) {
        uint32_t vf[4];  // b0, b1 of columns dd*16..+8 and of dd*16+8..+16
        const int key = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
        ldmatrix_x4_trans(vf, vb + key * LD + dd * 16 + (lane >> 4) * 8);
        Mma<T>::run(o[2 * dd], pa, vf[0], vf[1]);
        Mma<T>::run(o[2 * dd + 1], pa, vf[2], vf[3]);
      }
    }

    __syncthreads();  // everyone is done with buffer j & 1
    if (j + 2 < n_blocks) {
      const int64_t kv0 = int64_t(j + 2) * kBlockN;
      const int valid_next = j + 2 == n_blocks - 1 ? kv_valid_last : kBlockN;
      load_tile<kBlockN, D>(sK + (j & 1) * kBlockN * LD, k + kv0 * p.k_row_stride, p.k_row_stride, valid_next);
      load_tile<kBlockN, D>(sV + (j & 1) * kBlockN * LD, v + kv0 * p.v_row_stride, p.v_row_stride, valid_next);
    }
    cp_async_commit();
  }
  cp_async_wait<0>();

  // Normalise and store: thread holds rows lane/4 and lane/4 + 8, columns 8i + 2(lane%4) + {0, 1}.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp * 16 + (lane >> 2) + r * 8;
    if (m0 + row >= seq_q) continue;
    const float inv = 1.0f / row_sum[r];
    T* orow = out + int64_t(row) * p.out_row_stride + (lane & 3) * 2;
#pragma unroll
    for (int i = 0; i < kD8; ++i)
      *reinterpret_cast<uint32_t*>(orow + i * 8) = Mma<T>::pack(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);
    if (p.lse && (lane & 3) == 0)
      p.lse[(int64_t(b) * p.heads + h) * seq_q + m0 + row] = (row_max[r] + __log2f(row_sum[r])) * 0.69314718055994531f;
  }
}

// Launches the kernel for params that cuda_flash's supports() accepted.
template <class T, int D>
cudaError_t launch_flash_fwd(const reel_attention_params& p) {
  constexpr int bytes = smem_bytes(D);
  // Above 48 KiB of dynamic shared memory needs an opt-in (per device, so on every launch).
  const cudaError_t attr =
      cudaFuncSetAttribute(flash_fwd_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (attr != cudaSuccess) return attr;
  const dim3 grid(unsigned((p.seq_q + kBlockM - 1) / kBlockM), unsigned(p.heads), unsigned(p.batch));
  flash_fwd_kernel<T, D><<<grid, kThreads, bytes, static_cast<cudaStream_t>(p.stream)>>>(p);
  return cudaGetLastError();
}

// Whether this build holds flash_fwd_kernel<T, D> for the current device (kernel_image.hpp).
template <class T, int D>
kernel_image::Probe probe_flash_fwd() {
  cudaFuncAttributes attr{};
  return {int(cudaFuncGetAttributes(&attr, flash_fwd_kernel<T, D>)), REEL_CUDA_ARCH_LIST_STRING};
}

}  // namespace reel::attn::flash
