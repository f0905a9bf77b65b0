// cpu_reference: exact attention with double accumulation, one query row at a time. For tests
// and for checking benchmarks; far too slow for real sequences.
#include "attention/cpu_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/builtin_kernels.hpp"
#include "parallel.hpp"

namespace reel::attn {

double load_element(const void* base, int dtype, int64_t index) {
  switch (dtype) {
    case REEL_ATTENTION_BF16: return static_cast<const bf16*>(base)[index].to_float();
    case REEL_ATTENTION_F16: return static_cast<const f16*>(base)[index].to_float();
    default: return static_cast<const float*>(base)[index];
  }
}

void store_element(void* base, int dtype, int64_t index, double x) {
  switch (dtype) {
    case REEL_ATTENTION_BF16: static_cast<bf16*>(base)[index] = bf16::from_float(float(x)); break;
    case REEL_ATTENTION_F16: static_cast<f16*>(base)[index] = f16::from_float(float(x)); break;
    default: static_cast<float*>(base)[index] = float(x); break;
  }
}

double reference_attention_row(const AttentionParams& p, int64_t b, int64_t h, int64_t i, double* out_row) {
  const int64_t d = p.head_dim;
  const int64_t q0 = b * p.q_batch_stride + i * p.q_row_stride + h * p.q_head_stride;
  std::vector<double> q(static_cast<size_t>(d)), s(static_cast<size_t>(p.seq_kv));
  for (int64_t c = 0; c < d; ++c) q[size_t(c)] = load_element(p.q, p.dtype, q0 + c);
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < p.seq_kv; ++j) {
    const int64_t k0 = b * p.k_batch_stride + j * p.k_row_stride + h * p.k_head_stride;
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += q[size_t(c)] * load_element(p.k, p.dtype, k0 + c);
    s[size_t(j)] = double(p.scale) * dot;
    m = std::max(m, s[size_t(j)]);
  }
  std::fill(out_row, out_row + d, 0.0);
  double l = 0;
  for (int64_t j = 0; j < p.seq_kv; ++j) {
    const double e = std::exp(s[size_t(j)] - m);
    l += e;
    const int64_t v0 = b * p.v_batch_stride + j * p.v_row_stride + h * p.v_head_stride;
    for (int64_t c = 0; c < d; ++c) out_row[c] += e * load_element(p.v, p.dtype, v0 + c);
  }
  for (int64_t c = 0; c < d; ++c) out_row[c] /= l;
  return m + std::log(l);
}

namespace {

class CpuReference final : public AttentionKernel {
 public:
  std::string_view name() const override { return "cpu_reference"; }
  std::string_view description() const override {
    return "exact attention, double accumulation, one row at a time (for tests)";
  }
  DeviceType device_type() const override { return DeviceType::cpu; }
  int priority() const override { return 0; }
  Support supports(const AttentionParams&) const override { return Support::yes(); }
  void run(const AttentionParams& p) const override {
    const int64_t rows = p.batch * p.heads * p.seq_q;
    parallel_for_checked(rows, 16, [&](int64_t begin, int64_t end) {
      std::vector<double> o(static_cast<size_t>(p.head_dim));
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = r % p.seq_q, h = (r / p.seq_q) % p.heads, b = r / (p.seq_q * p.heads);
        const double lse = reference_attention_row(p, b, h, i, o.data());
        const int64_t o0 = b * p.out_batch_stride + i * p.out_row_stride + h * p.out_head_stride;
        for (int64_t c = 0; c < p.head_dim; ++c) store_element(p.out, p.dtype, o0 + c, o[size_t(c)]);
        if (p.lse) p.lse[(b * p.heads + h) * p.seq_q + i] = float(lse);
      }
    });
  }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_cpu_reference_kernel() { return std::make_shared<CpuReference>(); }

}  // namespace reel::attn
