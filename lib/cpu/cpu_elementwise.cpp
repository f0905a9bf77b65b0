// CPU element-wise ops: unary activations (silu, gelu_tanh, gelu_erf, relu, tanh), binary ops with
// broadcasting, mul_add, affine, modulate, rope, fill and convert. Every kernel reads its
// operands as f32 rows (cpu_broadcast.hpp), computes in f32 and rounds once on store.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/cpu_broadcast.hpp"
#include "cpu/cpu_kernels.hpp"

namespace reel::cpu {

namespace {

// ---------------------------------------------------------------- row kernels (vectorised)

REEL_CPU_CLONES void silu_row(const float* x, float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] * fast_sigmoid(x[i]);
}

// 0.5·x·(1 + tanh(u)) = x · sigmoid(2u), u = √(2/π)·(x + 0.044715·x³): no cancellation near 0.
REEL_CPU_CLONES void gelu_tanh_row(const float* x, float* o, int64_t n) {
  constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u2 = kTwoSqrt2OverPi * (v + 0.044715f * v * v * v);
    o[i] = v * fast_sigmoid(u2);
  }
}

// Exact GELU: 0.5·x·(1 + erf(x/√2)). Used only by image-encoder MLPs, so libm's erf is fine.
void gelu_erf_row(const float* x, float* o, int64_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  for (int64_t i = 0; i < n; ++i) o[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

REEL_CPU_CLONES void binary_row(op::BinaryKind kind, const float* a, const float* b, float* o, int64_t n) {
  switch (kind) {
    case op::BinaryKind::add:
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
      break;
    case op::BinaryKind::sub:
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] - b[i];
      break;
    case op::BinaryKind::mul:
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] * b[i];
      break;
  }
}

// a + b·c (the AVX2/AVX-512 builds may fuse the multiply-add: one rounding instead of two).
REEL_CPU_CLONES void mul_add_row(const float* a, const float* b, const float* c, float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float p = b[i] * c[i];
    o[i] = a[i] + p;
  }
}

REEL_CPU_CLONES void modulate_row(const float* x, const float* scale, const float* shift, float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float m = x[i] * (1.0f + scale[i]);
    o[i] = m + shift[i];
  }
}

REEL_CPU_CLONES void affine_row(const float* x, float* o, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) {
    const float m = alpha * x[i];
    o[i] = m + beta;
  }
}

// Interleaved pairs: o[2j] = x[2j]·c[2j] − x[2j+1]·s[2j], o[2j+1] = x[2j+1]·c[2j+1] + x[2j]·s[2j+1].
REEL_CPU_CLONES void rope_row(const float* x, const float* c, const float* s, float* o, int64_t d) {
  for (int64_t j = 0; j < d; j += 2) {
    const float a = x[j], b = x[j + 1];
    const float e0 = a * c[j], e1 = b * s[j];
    const float f0 = b * c[j + 1], f1 = a * s[j + 1];
    o[j] = e0 - e1;
    o[j + 1] = f0 + f1;
  }
}

// ---------------------------------------------------------------- streaming driver

// Runs fn(inputs as f32 rows, out row, len) over out's elements with the inputs broadcast.
template <class F>
void stream(Tensor& out, std::initializer_list<const Tensor*> inputs, F&& fn) {
  std::array<const Tensor*, kMaxInputs> in{};
  std::array<const Shape*, kMaxInputs> shapes{};
  int count = 0;
  for (const Tensor* t : inputs) {
    in[count] = t;
    shapes[count] = &t->shape();
    ++count;
  }
  BroadcastPlan plan;
  if (count == 1) plan = plan_broadcast(out.shape(), {shapes[0]});
  else if (count == 2) plan = plan_broadcast(out.shape(), {shapes[0], shapes[1]});
  else plan = plan_broadcast(out.shape(), {shapes[0], shapes[1], shapes[2]});
  const DType out_type = out.dtype();
  std::byte* out_base = bytes_at(out, 0);
  const size_t out_size = dtype_size(out_type);
  for_each_block(plan, [&](const RowBlock& rb) {
    float scratch[kMaxInputs][kBlock];
    float out_scratch[kBlock];
    std::array<const float*, kMaxInputs> rows{};
    for (int i = 0; i < count; ++i) rows[i] = operand_row(*in[i], rb, i, scratch[i]);
    std::byte* dst = out_base + rb.out_offset * int64_t(out_size);
    // Write f32 straight into out unless it overlaps an input row (in-place ops): then a
    // scratch row keeps the loops free of aliasing, so they still vectorise.
    bool direct = out_type == DType::f32;
    for (int i = 0; i < count && direct; ++i) {
      const auto* r = reinterpret_cast<const std::byte*>(rows[i]);
      if (r < dst + rb.len * 4 && dst < r + rb.len * 4) direct = false;
    }
    float* o = direct ? reinterpret_cast<float*>(dst) : out_scratch;
    fn(rows, o, rb.len);
    if (!direct) store_f32(o, dst, out_type, rb.len);
  });
}

}  // namespace

// ---------------------------------------------------------------- ops

Support supports(const op::Unary& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Unary& o, CpuContext&) {
  stream(*o.out, {o.x}, [&](const auto& r, float* out, int64_t n) {
    switch (o.kind) {
      case op::UnaryKind::silu: silu_row(r[0], out, n); break;
      case op::UnaryKind::gelu_tanh: gelu_tanh_row(r[0], out, n); break;
      case op::UnaryKind::gelu_erf: gelu_erf_row(r[0], out, n); break;
      case op::UnaryKind::relu:
        for (int64_t i = 0; i < n; ++i) out[i] = r[0][i] > 0.0f ? r[0][i] : 0.0f;
        break;
      case op::UnaryKind::tanh:
        for (int64_t i = 0; i < n; ++i) out[i] = std::tanh(r[0][i]);
        break;
    }
  });
}

Support supports(const op::Binary& o) { return cpu_tensors({{o.a, "a"}, {o.b, "b"}, {o.out, "out"}}); }
void execute(const op::Binary& o, CpuContext&) {
  stream(*o.out, {o.a, o.b}, [&](const auto& r, float* out, int64_t n) { binary_row(o.kind, r[0], r[1], out, n); });
}

Support supports(const op::MulAdd& o) { return cpu_tensors({{o.a, "a"}, {o.b, "b"}, {o.c, "c"}, {o.out, "out"}}); }
void execute(const op::MulAdd& o, CpuContext&) {
  stream(*o.out, {o.a, o.b, o.c}, [&](const auto& r, float* out, int64_t n) { mul_add_row(r[0], r[1], r[2], out, n); });
}

Support supports(const op::Modulate& o) {
  return cpu_tensors({{o.x, "x"}, {o.scale, "scale"}, {o.shift, "shift"}, {o.out, "out"}});
}
void execute(const op::Modulate& o, CpuContext&) {
  stream(*o.out, {o.x, o.scale, o.shift},
         [&](const auto& r, float* out, int64_t n) { modulate_row(r[0], r[1], r[2], out, n); });
}

Support supports(const op::Affine& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Affine& o, CpuContext&) {
  stream(*o.out, {o.x}, [&](const auto& r, float* out, int64_t n) { affine_row(r[0], out, n, o.alpha, o.beta); });
}

Support supports(const op::Fill& o) { return cpu_tensors({{o.out, "out"}}); }
void execute(const op::Fill& o, CpuContext&) {
  Tensor& out = *o.out;
  const int64_t n = out.numel();
  // One element of the target type (i32 takes the value truncated towards zero).
  uint32_t pattern = 0;
  switch (out.dtype()) {
    case DType::f32: pattern = std::bit_cast<uint32_t>(o.value); break;
    case DType::bf16: pattern = bf16::from_float(o.value).bits; break;
    case DType::f16: pattern = f16::from_float(o.value).bits; break;
    case DType::i32:  // truncated towards zero, saturated, NaN as 0
      pattern = std::isnan(o.value) ? 0u : uint32_t(int32_t(std::clamp(o.value, -2147483648.0f, 2147483520.0f)));
      break;
  }
  const bool wide = dtype_size(out.dtype()) == 4;
  void* base = out.raw();
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    if (wide) std::fill(static_cast<uint32_t*>(base) + b, static_cast<uint32_t*>(base) + e, pattern);
    else std::fill(static_cast<uint16_t*>(base) + b, static_cast<uint16_t*>(base) + e, uint16_t(pattern));
  });
}

Support supports(const op::Convert& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Convert& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  if (x.dtype() == out.dtype()) {
    if (x.raw() == out.raw()) return;
    const int64_t bytes = int64_t(x.nbytes());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out.raw());
    parallel_for(bytes, 1 << 20, [&](int64_t b, int64_t e) { std::memmove(dst + b, src + b, size_t(e - b)); });
    return;
  }
  stream(out, {o.x}, [&](const auto& r, float* dst, int64_t n) {
    if (dst != r[0]) std::memcpy(dst, r[0], size_t(n) * 4);
  });
}

Support supports(const op::Rope& o) {
  return cpu_tensors({{o.x, "x"}, {o.cos, "cos"}, {o.sin, "sin"}, {o.out, "out"}});
}
void execute(const op::Rope& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int64_t batch = x.dim(0), seq = x.dim(1), heads = x.dim(2), d = x.dim(3);
  const float* cos = o.cos->data<float>();
  const float* sin = o.sin->data<float>();
  const int64_t row = heads * d;  // one token: all heads
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row));
  parallel_for_checked(batch * seq, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> in_buf(static_cast<size_t>(row)), out_buf(static_cast<size_t>(row));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t % seq;
      const float* xs = f32_view(bytes_at(x, t * row), x.dtype(), in_buf.data(), row);
      float* os = out_buf.data();  // scratch output: x and out may be the same tensor
      for (int64_t h = 0; h < heads; ++h) rope_row(xs + h * d, cos + s * d, sin + s * d, os + h * d, d);
      store_f32(os, bytes_at(out, t * row), out.dtype(), row);
    }
  });
}

}  // namespace reel::cpu
