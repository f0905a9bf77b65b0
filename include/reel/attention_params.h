/* The plain parameter block every reel attention kernel takes. Plain C (C99), so the C API,
 * bench/ and outside benchmark suites fill exactly the struct the kernels read.
 *
 *   reel_attention_params p;
 *   memset(&p, 0, sizeof p);
 *   p.struct_size = sizeof p;
 *   p.dtype = REEL_ATTENTION_BF16;  p.device_type = REEL_ATTENTION_CPU;
 *   p.q = q; p.k = k; p.v = v; p.out = out;                 // [B, S, H, D] buffers
 *   p.batch = 1; p.heads = 12; p.head_dim = 128; p.seq_q = p.seq_kv = 4096;
 *   p.q_row_stride = p.k_row_stride = p.v_row_stride = p.out_row_stride = 12 * 128;
 *   p.q_head_stride = ... = 128;  p.q_batch_stride = ... = 4096 * 12 * 128;
 *   p.scale = 1.0f / sqrtf(128.0f);
 *
 * Layout: element (b, s, h, d) of q is at q + b*q_batch_stride + s*q_row_stride +
 * h*q_head_stride + d, in elements (not bytes); the head dimension is always contiguous.
 * out[b, i, h, :] = Σ_j softmax_j(scale · q[b, i, h, :] · k[b, j, h, :]) · v[b, j, h, :].
 * The attention is non-causal: every query row sees every key row held in this call.
 *
 * CUDA streams. Buffers from reel Tensors come from reel's caching allocator, which gives a
 * freed block to its next owner in the order of "reel's stream" (one per device; reel's CUDA
 * backend, with no stream of its own, and Tensor copies run on it). reel's CUDA kernels
 * (cuda_flash, cudnn, cublas) therefore order `stream` with reel's stream both ways: the
 * kernel starts after the work already queued on reel's stream (the ops that wrote q, k, v;
 * the last reader of out's block), and reel's stream waits for the kernel before anything
 * queued on it after the call. So q, k, v and out may be released as soon as the call returns,
 * and reel ops and copies may read out without a synchronize. NULL (the legacy default
 * stream) is ordered with reel's stream by CUDA itself. What stays the caller's: work of its
 * own on other streams (read out on `stream` or after synchronizing it; do not write q, k, v
 * from another stream during the call), and, while `stream` is being captured into a CUDA
 * graph (the kernels add no ordering then), keeping the buffers alive and unwritten until the
 * graph's launches have finished. Kernels registered from outside reel order what they
 * choose to.
 */
#ifndef REEL_ATTENTION_PARAMS_H
#define REEL_ATTENTION_PARAMS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types; the values are reel::DType's. */
enum {
  REEL_ATTENTION_F32 = 0,
  REEL_ATTENTION_BF16 = 1,
  REEL_ATTENTION_F16 = 2
};

/* Devices; the values are reel::DeviceType's. */
enum {
  REEL_ATTENTION_CPU = 0,
  REEL_ATTENTION_CUDA = 1
};

typedef struct reel_attention_params {
  uint32_t struct_size; /* sizeof(reel_attention_params) as the caller knows it; the struct only grows at the end */
  int32_t dtype;        /* element type of q, k, v and out (REEL_ATTENTION_F32/BF16/F16) */
  int32_t device_type;  /* where the four buffers live (REEL_ATTENTION_CPU/CUDA) */
  int32_t device_index; /* CUDA device ordinal; 0 on the CPU */
  void* stream;         /* CUDA: the cudaStream_t (of device_index) to run on, NULL: the legacy default stream;
                           ordered with reel's stream (see "CUDA streams" above). CPU: unused */

  const void* q;   /* [batch, seq_q,  heads, head_dim] */
  const void* k;   /* [batch, seq_kv, heads, head_dim] */
  const void* v;   /* [batch, seq_kv, heads, head_dim] */
  void* out;       /* [batch, seq_q,  heads, head_dim], may not alias q, k or v */

  int64_t batch;
  int64_t heads;
  int64_t head_dim;
  int64_t seq_q;   /* query rows held in q / out for this call */
  int64_t seq_kv;  /* key/value rows held in k / v for this call */

  /* Strides in elements. Any non-negative values are accepted as long as distinct (b, s, h)
   * rows of `out` do not overlap; kernels state what alignment they need in supports(). */
  int64_t q_batch_stride, q_row_stride, q_head_stride;
  int64_t k_batch_stride, k_row_stride, k_head_stride;
  int64_t v_batch_stride, v_row_stride, v_head_stride;
  int64_t out_batch_stride, out_row_stride, out_head_stride;

  float scale;     /* softmax scale, usually 1/sqrt(head_dim); must be finite */

  /* Sequence parallelism. A call may hold only a slice of the whole sequence: its query rows
   * are positions [q_offset, q_offset + seq_q) of a sequence of q_total rows, its key/value
   * rows positions [kv_offset, kv_offset + seq_kv) of kv_total rows (0 totals mean "this call
   * holds everything"). Non-causal kernels give the same result for any offsets; the fields
   * exist so masks and ring attention can be added without changing the struct. */
  int64_t q_offset;
  int64_t kv_offset;
  int64_t q_total;
  int64_t kv_total;

  /* Optional output (NULL: not wanted): f32 [batch, heads, seq_q], contiguous, the natural
   * log of Σ_j exp(scale · q_i · k_j) over this call's key rows. Two calls over disjoint key
   * ranges A and B merge exactly:  lse = log(e^lseA + e^lseB),
   * out = e^(lseA − lse) · outA + e^(lseB − lse) · outB  (ring attention). */
  float* lse;
} reel_attention_params;

#ifdef __cplusplus
}
#endif

#endif /* REEL_ATTENTION_PARAMS_H */
