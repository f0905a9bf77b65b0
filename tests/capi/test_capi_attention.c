/* C API attention kernels, compiled as C99: every registered CPU kernel that supports the call
 * runs on small random caller buffers (contiguous and strided, f32 and bf16, with the
 * log-sum-exp output) and is compared with a naive double-precision reference written here;
 * bad params give the right status and name the field.
 *
 * Tolerance (DESIGN.md): max|out − ref| ≤ 2·max|ref_lowprec − ref| + 1e-5, where ref is the
 * exact attention of the f32 inputs and ref_lowprec the exact attention of the inputs rounded
 * to the kernel's dtype, its output rounded to that dtype: a kernel may be at most twice as far
 * from the truth as an ideal computation in its precision, plus f32 accumulation order. */
#include <math.h>

#include "capi_test.h"

typedef struct {
  int64_t batch, seq_q, seq_kv, heads, head_dim;
  int64_t q_row, kv_row; /* row strides in elements (>= heads·head_dim: strided when larger) */
} shape;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float uniform(float lo, float hi) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (float)((double)(rng_state >> 11) / 9007199254740992.0);
}

static uint16_t to_bf16(float f) { /* round to nearest, ties to even (no NaNs here) */
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Exact attention over float inputs laid out with the given strides; out [B, Sq, H, D] dense,
 * lse [B, H, Sq]. */
static void reference(const shape* s, const float* q, const float* k, const float* v, double scale, double* out,
                      double* lse) {
  int64_t b, h, i, j, d;
  double* scores = (double*)malloc(sizeof(double) * (size_t)s->seq_kv);
  for (b = 0; b < s->batch; ++b)
    for (h = 0; h < s->heads; ++h)
      for (i = 0; i < s->seq_q; ++i) {
        const float* qr = q + (b * s->seq_q + i) * s->q_row + h * s->head_dim;
        double m = -HUGE_VAL, l = 0.0;
        double* o = out + ((b * s->seq_q + i) * s->heads + h) * s->head_dim;
        for (j = 0; j < s->seq_kv; ++j) {
          const float* kr = k + (b * s->seq_kv + j) * s->kv_row + h * s->head_dim;
          double acc = 0.0;
          for (d = 0; d < s->head_dim; ++d) acc += (double)qr[d] * (double)kr[d];
          scores[j] = acc * scale;
          if (scores[j] > m) m = scores[j];
        }
        for (d = 0; d < s->head_dim; ++d) o[d] = 0.0;
        for (j = 0; j < s->seq_kv; ++j) {
          const float* vr = v + (b * s->seq_kv + j) * s->kv_row + h * s->head_dim;
          const double p = exp(scores[j] - m);
          l += p;
          for (d = 0; d < s->head_dim; ++d) o[d] += p * (double)vr[d];
        }
        for (d = 0; d < s->head_dim; ++d) o[d] /= l;
        lse[(b * s->heads + h) * s->seq_q + i] = m + log(l);
      }
  free(scores);
}

static void fill_params(reel_attention_params* p, const shape* s, int dtype, const void* q, const void* k,
                        const void* v, void* out, float* lse) {
  reel_attention_params_init(p);
  p->dtype = dtype;
  p->device_type = REEL_ATTENTION_CPU;
  p->q = q, p->k = k, p->v = v, p->out = out, p->lse = lse;
  p->batch = s->batch, p->heads = s->heads, p->head_dim = s->head_dim, p->seq_q = s->seq_q, p->seq_kv = s->seq_kv;
  p->q_row_stride = s->q_row, p->q_head_stride = s->head_dim, p->q_batch_stride = s->seq_q * s->q_row;
  p->k_row_stride = p->v_row_stride = s->kv_row;
  p->k_head_stride = p->v_head_stride = s->head_dim;
  p->k_batch_stride = p->v_batch_stride = s->seq_kv * s->kv_row;
  p->out_row_stride = s->heads * s->head_dim, p->out_head_stride = s->head_dim;
  p->out_batch_stride = s->seq_q * s->heads * s->head_dim;
  p->scale = (float)(1.0 / sqrt((double)s->head_dim));
}

/* Runs every kernel that supports the case (and the default choice); returns how many ran. */
static int check_case(const shape* s, int dtype) {
  const size_t nq = (size_t)(s->batch * s->seq_q * s->q_row), nkv = (size_t)(s->batch * s->seq_kv * s->kv_row);
  const size_t nout = (size_t)(s->batch * s->seq_q * s->heads * s->head_dim);
  const size_t nlse = (size_t)(s->batch * s->heads * s->seq_q);
  float *q = malloc(nq * 4), *k = malloc(nkv * 4), *v = malloc(nkv * 4);
  float *qr = malloc(nq * 4), *kr = malloc(nkv * 4), *vr = malloc(nkv * 4); /* rounded to dtype */
  uint16_t *q16 = malloc(nq * 2), *k16 = malloc(nkv * 2), *v16 = malloc(nkv * 2), *out16 = malloc(nout * 2);
  float *out32 = malloc(nout * 4), *lse = malloc(nlse * 4);
  double *ref = malloc(nout * 8), *low = malloc(nout * 8), *ref_lse = malloc(nlse * 8), *low_lse = malloc(nlse * 8);
  double bound = 0.0;
  size_t i, kernel_index, n_kernels = reel_attention_kernel_count();
  int ran = 0;
  const double scale = 1.0 / sqrt((double)s->head_dim);
  for (i = 0; i < nq; ++i) q[i] = uniform(-4.0f, 4.0f);
  for (i = 0; i < nkv; ++i) k[i] = uniform(-2.0f, 2.0f), v[i] = uniform(-1.0f, 1.0f);
  for (i = 0; i < nq; ++i) q16[i] = to_bf16(q[i]), qr[i] = dtype == REEL_ATTENTION_BF16 ? from_bf16(q16[i]) : q[i];
  for (i = 0; i < nkv; ++i) {
    k16[i] = to_bf16(k[i]), v16[i] = to_bf16(v[i]);
    kr[i] = dtype == REEL_ATTENTION_BF16 ? from_bf16(k16[i]) : k[i];
    vr[i] = dtype == REEL_ATTENTION_BF16 ? from_bf16(v16[i]) : v[i];
  }
  reference(s, q, k, v, scale, ref, ref_lse);
  reference(s, qr, kr, vr, scale, low, low_lse);
  for (i = 0; i < nout; ++i) {
    const double rounded = dtype == REEL_ATTENTION_BF16 ? (double)from_bf16(to_bf16((float)low[i])) : (double)(float)low[i];
    const double e = fabs(rounded - ref[i]);
    if (e > bound) bound = e;
  }
  bound = 2.0 * bound + 1e-5;

  for (kernel_index = 0; kernel_index <= n_kernels; ++kernel_index) {
    /* kernel_index == n_kernels: NULL, the library's choice */
    const char* name = kernel_index < n_kernels ? reel_attention_kernel_name(kernel_index) : NULL;
    reel_attention_params p;
    double worst = 0.0, worst_lse = 0.0;
    const int bf = dtype == REEL_ATTENTION_BF16;
    fill_params(&p, s, dtype, bf ? (const void*)q16 : (const void*)q, bf ? (const void*)k16 : (const void*)k,
                bf ? (const void*)v16 : (const void*)v, bf ? (void*)out16 : (void*)out32, lse);
    if (reel_attention_supports(name, &p) != REEL_OK) {
      p.lse = NULL; /* maybe the kernel just does not write lse */
      if (reel_attention_supports(name, &p) != REEL_OK) continue;
    }
    for (i = 0; i < nlse; ++i) lse[i] = -1.0f;
    CHECK_STATUS(reel_attention_run(name, &p), REEL_OK, NULL);
    for (i = 0; i < nout; ++i) {
      const double got = bf ? (double)from_bf16(out16[i]) : (double)out32[i];
      const double e = fabs(got - ref[i]);
      if (!(e <= worst)) worst = e; /* NaN-safe: a NaN becomes the worst */
    }
    if (p.lse)
      for (i = 0; i < nlse; ++i) {
        /* lse of the rounded inputs (what the kernel saw), in f32: 1e-4 absolute on values ~5 */
        const double e = fabs((double)lse[i] - low_lse[i]);
        if (!(e <= worst_lse)) worst_lse = e;
      }
    if (!(worst <= bound) || !(worst_lse <= 1e-4))
      fprintf(stderr, "kernel %s dtype %d: max error %.3g (bound %.3g), lse error %.3g\n", name ? name : "(default)",
              dtype, worst, bound, worst_lse);
    CHECK(worst <= bound);
    CHECK(worst_lse <= 1e-4);
    ++ran;
  }
  free(q), free(k), free(v), free(qr), free(kr), free(vr), free(q16), free(k16), free(v16), free(out16);
  free(out32), free(lse), free(ref), free(low), free(ref_lse), free(low_lse);
  return ran;
}

static void bad_params(void) {
  float buf[2 * 3 * 4 * 8];
  float out[2 * 3 * 4 * 8];
  const shape s = {1, 3, 3, 4, 8, 32, 32};
  reel_attention_params p;
  size_t i;
  for (i = 0; i < sizeof buf / sizeof *buf; ++i) buf[i] = uniform(-1.0f, 1.0f);
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, out, NULL);
  CHECK_STATUS(reel_attention_supports(NULL, &p), REEL_OK, NULL);
  CHECK_STATUS(reel_attention_supports("no_such_kernel", &p), REEL_ERROR_NOT_FOUND, "no_such_kernel");
  CHECK_STATUS(reel_attention_run("no_such_kernel", &p), REEL_ERROR_NOT_FOUND, "no_such_kernel");
  p.q = NULL;
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "q");
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, out, NULL);
  p.struct_size = 16;
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "struct_size");
  fill_params(&p, &s, 7, buf, buf, buf, out, NULL);
  CHECK_STATUS(reel_attention_supports(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "dtype");
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, out, NULL);
  p.head_dim = 0;
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "head_dim");
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, out, NULL);
  p.scale = (float)NAN;
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "scale");
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, out, NULL);
  p.seq_q = -1;
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, "seq_q");
  fill_params(&p, &s, REEL_ATTENTION_F32, buf, buf, buf, buf, NULL); /* out aliases q */
  CHECK_STATUS(reel_attention_run(NULL, &p), REEL_ERROR_INVALID_ARGUMENT, NULL);
}

int main(void) {
  const shape contiguous = {2, 37, 53, 3, 64, 3 * 64, 3 * 64};
  const shape strided = {1, 29, 41, 2, 32, 3 * 2 * 32, 2 * 2 * 32}; /* rows of packed qkv-like buffers */
  const shape wan_head = {1, 20, 20, 2, 128, 2 * 128, 2 * 128};
  CHECK(check_case(&contiguous, REEL_ATTENTION_F32) >= 3);
  CHECK(check_case(&strided, REEL_ATTENTION_F32) >= 2);
  CHECK(check_case(&contiguous, REEL_ATTENTION_BF16) >= 2);
  CHECK(check_case(&wan_head, REEL_ATTENTION_BF16) >= 2);
  bad_params();
  return capi_finish("test_capi_attention");
}
