// The CUDA backend's element-wise and data-movement kernels, run on the host: the parameters
// are built by the backend's own host code (cuda/backend/cuda_params.cpp) from op structs over
// CPU tensors, and the per-element bodies the kernels execute (cuda/backend/cuda_elements.hpp,
// __host__ __device__) are looped over every index here. This checks the broadcast and
// permutation plans, the index math of every gather, the op semantics and the bf16/f16
// conversions against the CPU backend on any machine; what it cannot check (the launches, the
// block reductions of the norms, cuBLAS/cuDNN) is left to the GPU tests.
//
// Bounds: data movement, fill and convert are bitwise. Arithmetic ops compare with the CPU
// backend as the GPU tests do (cuda_test_util.hpp): both compute in f32 and round once into the
// output type t, so |emulated − cpu| <= 2·u_t·|y| + (both f32 bounds, per op below).
#include <gtest/gtest.h>

#ifdef REEL_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "backend/cuda_elements.hpp"
#include "backend/cuda_gemm.hpp"
#include "backend/cuda_params.hpp"
#include "backend/cuda_rows.hpp"
#include "cuda/cuda_test_util.hpp"
#include "reel/ops.hpp"

using namespace reel;
using namespace reel::test;
using namespace reel::cuda;

namespace {

Backend& cpu_be() {
  static std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
  return *be;
}

// ---------------------------------------------------------------- host "launches"

void run(const PointwiseParams& p) {
  for (int64_t i = 0; i < p.n; ++i) pointwise_element(p, i);
}

template <class T>
void run_rows(const RowCopyParams& p) {
  const int64_t u = sizeof(T), units = p.row_bytes / u;
  for (int64_t i = 0; i < p.rows * units; ++i)
    row_copy_element(static_cast<T*>(p.dst), p.dst_stride / u, static_cast<const T*>(p.src), p.src_stride / u, units, i);
}

void run(const RowCopyParams& p) {
  if (p.rows <= 0 || p.row_bytes <= 0) return;
  switch (row_copy_unit(p)) {
    case 16: run_rows<uint4>(p); break;
    case 8: run_rows<uint2>(p); break;
    case 4: run_rows<uint32_t>(p); break;
    case 2: run_rows<uint16_t>(p); break;
    default: run_rows<uint8_t>(p); break;
  }
}

void run(const GatherParams& p) {
  const int64_t n = element_count(p.dims, p.rank);
  for (int64_t i = 0; i < n; ++i) p.elem_bytes == 4 ? permute_element<uint32_t>(p, i) : permute_element<uint16_t>(p, i);
}

void run(const PadParams& p) {
  const int64_t n = element_count(p.out_dims, p.rank);
  for (int64_t i = 0; i < n; ++i) p.elem_bytes == 4 ? pad_element<uint32_t>(p, i) : pad_element<uint16_t>(p, i);
}

void run(const UpsampleParams& p) {
  const int64_t n = upsample_count(p);
  for (int64_t i = 0; i < n; ++i) p.elem_bytes == 4 ? upsample_element<uint32_t>(p, i) : upsample_element<uint16_t>(p, i);
}

void run(const RopeParams& p) {
  for (int64_t i = 0; i < rope_pairs(p); ++i) rope_element(p, i);
}

// A team of `size` members played one after the other (the GPU runs them as one block).
struct SerialTeam {
  int size;
  template <class F>
  float sum(F partial) {
    float s = 0.0f;
    for (int t = 0; t < size; ++t) s += partial(t, size);
    return s;
  }
  template <class F>
  float max(F partial) {
    float m = -INFINITY;
    for (int t = 0; t < size; ++t) m = std::fmax(m, partial(t, size));
    return m;
  }
  template <class F>
  void for_each(int64_t n, F body) {
    for (int64_t j = 0; j < n; ++j) body(j);
  }
};

void run(const RowParams& p, int team_size) {
  SerialTeam team{team_size};
  for (int64_t row = 0; row < p.rows; ++row) row_op_row(p, row, team);
}

void run(const ChannelNormParams& p) {
  for (int64_t i = 0; i < channel_positions(p); ++i) channel_l2_position(p, i);
}

Tensor random_any(const Shape& shape, uint64_t seed, DType t) {
  if (t != DType::i32) return random_nonzero(shape, seed, t);
  Tensor x = Tensor::empty(shape, DType::i32);
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<int32_t>()[i] = int32_t(rng() % 2000001) - 1000000;
  return x;
}

// A random shape of `rank` dims in [1, 4], and one that broadcasts to it (leading dims dropped,
// others set to 1 at random).
Shape random_shape(std::mt19937_64& rng, int rank) {
  std::vector<int64_t> d;
  for (int i = 0; i < rank; ++i) d.push_back(int64_t(1 + rng() % 4));
  return Shape(std::span<const int64_t>(d));
}
Shape broadcastable_to(std::mt19937_64& rng, const Shape& out) {
  const int drop = out.rank() == 0 ? 0 : int(rng() % uint64_t(out.rank() + 1));
  std::vector<int64_t> d;
  for (int i = drop; i < out.rank(); ++i) d.push_back(rng() % 3 == 0 ? 1 : out[i]);
  return Shape(std::span<const int64_t>(d));
}

// scale·(i + 1) at flat index i, as f32.
Tensor integers(const Shape& shape, float scale) {
  std::vector<float> v(size_t(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * float(i + 1);
  return Tensor::from_floats(shape, v);
}

}  // namespace

// ---------------------------------------------------------------- broadcasting

TEST(CudaKernelLogic, BroadcastPlansAddressEveryOperandLikeNumPy) {
  std::mt19937_64 rng(4000);
  for (int trial = 0; trial < 300; ++trial) {
    const Shape out = random_shape(rng, int(rng() % 6));
    const Shape sa = broadcastable_to(rng, out), sb = broadcastable_to(rng, out), sc = broadcastable_to(rng, out);
    // Distinct exact integers per operand and position: any addressing mistake changes the sum.
    // a <= 1024 and b a multiple of 2048: a + b is exact and tells every (a, b) pair apart; c's
    // multiples of 2^22 change the sum by far more than its rounding.
    const Tensor a = integers(sa, 1.0f), b = integers(sb, 2048.0f), c = integers(sc, 4194304.0f);
    const Shape sab = ops::broadcast_shapes(sa, sb), full = ops::broadcast_shapes(sab, sc);
    Tensor ref = Tensor::empty(full, DType::f32), got = Tensor::empty(full, DType::f32);
    Tensor ab = Tensor::empty(sab, DType::f32);
    cpu_be().run(op::Binary{op::BinaryKind::add, &a, &b, &ab});
    cpu_be().run(op::Binary{op::BinaryKind::add, &ab, &c, &ref});
    // The same through the kernel: add (a, b), then add (., c); the same roundings in the same order.
    Tensor tmp = Tensor::empty(sab, DType::f32);
    run(pointwise_params(PointwiseOp::add, tmp, {&a, &b}));
    run(pointwise_params(PointwiseOp::add, got, {&tmp, &c}));
    expect_identical(got, ref, "broadcast " + sa.str() + " + " + sb.str() + " + " + sc.str() + " -> " + full.str());
    // Three operands in one kernel: mul_add with b·1 (c = ones broadcast) must equal a + b.
    const Tensor ones = Tensor::from_floats(sc, std::vector<float>(size_t(sc.numel()), 1.0f));
    Tensor ab_ref = Tensor::empty(full, DType::f32), ab_got = Tensor::empty(full, DType::f32);
    cpu_be().run(op::MulAdd{&a, &b, &ones, &ab_ref});
    run(pointwise_params(PointwiseOp::mul_add, ab_got, {&a, &b, &ones}));
    expect_identical(ab_got, ab_ref, "mul_add broadcast " + sa.str() + ", " + sb.str() + ", " + sc.str());
  }
}

// ---------------------------------------------------------------- op semantics and dtypes

TEST(CudaKernelLogic, PointwiseOpsMatchCpu) {
  const DType types[] = {DType::f32, DType::bf16, DType::f16};
  uint64_t seed = 4100;
  const double u = kU32;
  for (DType ta : types)
    for (DType tout : types) {
      const Shape shape{3, 4, 37};
      const Tensor a = random_nonzero(shape, seed++, ta, 0.01f, 4.0f);
      const Tensor b = random_nonzero({4, 1}, seed++, DType::f32), c = random_nonzero({37}, seed++, DType::bf16);
      const std::vector<double> av = to_doubles(a);
      auto check = [&](const char* what, const Tensor& got, const Tensor& ref, const std::vector<double>& e32) {
        std::vector<double> tol(e32.size());
        const std::vector<double> y = to_doubles(ref);
        for (size_t i = 0; i < y.size(); ++i) tol[i] = 2 * e32[i] + 2 * unit_roundoff(tout) * 1.01 * std::abs(y[i]);
        expect_within(got, y, tol, std::string(what) + " " + dname(ta) + " -> " + dname(tout));
      };
      for (op::UnaryKind k : {op::UnaryKind::silu, op::UnaryKind::gelu_tanh, op::UnaryKind::gelu_erf,
                              op::UnaryKind::relu, op::UnaryKind::tanh}) {
        Tensor ref = Tensor::empty(shape, tout), got = Tensor::empty(shape, tout);
        cpu_be().run(op::Unary{k, &a, &ref});
        run(pointwise_params(pointwise_op(k), got, {&a}));
        std::vector<double> e(av.size());
        const std::vector<double> y = to_doubles(ref);
        for (size_t i = 0; i < e.size(); ++i) {
          const double v = av[i], u2 = 2 * std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v);
          e[i] = k == op::UnaryKind::silu        ? 8 * u * std::abs(y[i])
                 : k == op::UnaryKind::gelu_tanh ? (8 + 7 * std::abs(u2)) * u * std::abs(y[i])
                 : k == op::UnaryKind::gelu_erf  ? 0.5 * std::abs(v) * 4 * u + 3 * u * std::abs(y[i])
                 : k == op::UnaryKind::relu      ? 0.0
                                                 : 4 * u * std::abs(y[i]);  // tanh: 2 ulp each side
        }
        check(op_name(op::Unary{k, &a, &ref}).data(), got, ref, e);
      }
      {
        const std::vector<double> y = [&] {
          Tensor r = Tensor::empty(shape, DType::f32);
          cpu_be().run(op::Modulate{&a, &b, &c, &r});
          return to_doubles(r);
        }();
        Tensor ref = Tensor::empty(shape, tout), got = Tensor::empty(shape, tout);
        cpu_be().run(op::Modulate{&a, &b, &c, &ref});
        run(pointwise_params(PointwiseOp::modulate, got, {&a, &b, &c}));
        std::vector<double> e(y.size());
        const std::vector<double> bv = to_doubles(b);
        for (size_t i = 0; i < e.size(); ++i) e[i] = 3 * u * (std::abs(av[i] * (1 + bv[(i / 37) % 4])) + std::abs(y[i]));
        check("modulate", got, ref, e);
      }
      {
        Tensor ref = Tensor::empty(shape, tout), got = Tensor::empty(shape, tout);
        cpu_be().run(op::MulAdd{&a, &b, &c, &ref});
        run(pointwise_params(PointwiseOp::mul_add, got, {&a, &b, &c}));
        // u·(|b·c| + |y|): the product may be much larger than the result.
        const std::vector<double> y = to_doubles(ref), bv = to_doubles(b), cv = to_doubles(c);
        std::vector<double> e(y.size());
        for (size_t i = 0; i < e.size(); ++i) e[i] = u * (std::abs(bv[(i / 37) % 4] * cv[i % 37]) + std::abs(y[i]));
        check("mul_add", got, ref, e);
      }
      for (op::BinaryKind k : {op::BinaryKind::add, op::BinaryKind::sub, op::BinaryKind::mul}) {
        Tensor ref = Tensor::empty(shape, tout), got = Tensor::empty(shape, tout);
        cpu_be().run(op::Binary{k, &a, &c, &ref});
        run(pointwise_params(pointwise_op(k), got, {&a, &c}));
        check(op_name(op::Binary{k, &a, &c, &ref}).data(), got, ref, bound(to_doubles(ref), u, {}));
      }
      {
        Tensor ref = Tensor::empty(shape, tout), got = Tensor::empty(shape, tout);
        cpu_be().run(op::Affine{&a, &ref, -1.5f, 0.25f});
        run(pointwise_params(PointwiseOp::affine, got, {&a}, -1.5f, 0.25f));
        std::vector<double> e(av.size());
        const std::vector<double> y = to_doubles(ref);
        for (size_t i = 0; i < e.size(); ++i) e[i] = u * (1.5 * std::abs(av[i]) + std::abs(y[i]));
        check("affine", got, ref, e);
      }
    }
}

TEST(CudaKernelLogic, ConvertAndFillAreBitwiseTheCpuOnes) {
  std::mt19937_64 rng(4200);
  std::uniform_real_distribution<double> exponent(-8.0, 6.0);
  std::vector<float> v(5001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float((i % 2 ? -1.0 : 1.0) * std::pow(10.0, exponent(rng)));
  const Tensor src = Tensor::from_floats({int64_t(v.size())}, v);
  for (DType from : {DType::f32, DType::bf16, DType::f16})
    for (DType to : {DType::f32, DType::bf16, DType::f16}) {
      const Tensor x = src.to(from);
      Tensor ref = Tensor::empty(x.shape(), to), got = Tensor::empty(x.shape(), to);
      cpu_be().run(op::Convert{&x, &ref});
      for (int64_t i = 0; i < x.numel(); ++i) convert_element(x.raw(), int(from), got.raw(), int(to), i);
      expect_identical(got, ref, std::string("convert ") + dname(from) + " -> " + dname(to));
      // The copy path of the element-wise kernel converts the same way.
      Tensor via = Tensor::empty(x.shape(), to);
      run(pointwise_params(PointwiseOp::copy, via, {&x}));
      expect_identical(via, ref, std::string("pointwise copy ") + dname(from) + " -> " + dname(to));
    }
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32})
    for (float value : {0.3f, -3.7f, 1e10f, std::nanf("")}) {
      Tensor ref = Tensor::empty({5}, t);
      cpu_be().run(op::Fill{&ref, value});
      uint32_t bits = 0;
      std::memcpy(&bits, ref.raw(), dtype_size(t));
      EXPECT_EQ(fill_pattern(t, value), bits) << dname(t) << " " << value;
    }
}

TEST(CudaKernelLogic, RopeMatchesCpu) {
  uint64_t seed = 4300;
  for (DType t : {DType::f32, DType::bf16, DType::f16}) {
    const Tensor x = random_nonzero({2, 5, 3, 12}, seed++, t);
    const Tensor cs = random_nonzero({5, 12}, seed++), sn = random_nonzero({5, 12}, seed++);
    Tensor ref = Tensor::empty(x.shape(), t), got = Tensor::empty(x.shape(), t);
    cpu_be().run(op::Rope{&x, &cs, &sn, &ref});
    run(rope_params(op::Rope{&x, &cs, &sn, &got}));
    // 2u·(|x0·c| + |x1·s|) per backend; |x|, |c|, |s| <= 1.
    expect_within(got, to_doubles(ref), bound(to_doubles(ref), 2 * unit_roundoff(t) * 1.01, std::vector<double>(size_t(x.numel()), 8 * kU32)),
                  std::string("rope ") + dname(t));
  }
}

// Bounds as in test_cuda_ops_norm.cpp (both backends' f32 bounds, any summation order: γ_n).
TEST(CudaKernelLogic, RowReductionsMatchCpu) {
  uint64_t seed = 4600;
  const double u = kU32;
  for (int team : {1, 32, 256})
    for (DType t : {DType::f32, DType::bf16, DType::f16})
      for (const Shape& shape : {Shape{5, 77}, Shape{3, 1536}, Shape{4, 1}}) {
        const int64_t n = shape[-1];
        const double ut = unit_roundoff(t), g = 2 * gamma_f32(n + 3);
        const Tensor x = random_nonzero(shape, seed++, t, 0.05f, 3.0f);
        const Tensor w = random_nonzero({n}, seed++, t), b = random_nonzero({n}, seed++, DType::f32);
        const std::vector<double> xv = to_doubles(x), wv = to_doubles(w);
        const std::string what = std::string(dname(t)) + " " + shape.str() + " team " + std::to_string(team);
        {  // layer norm, affine, f32 out
          Tensor ref = Tensor::empty(shape, DType::f32), got = Tensor::empty(shape, DType::f32);
          cpu_be().run(op::LayerNorm{&x, &w, &b, &ref, 1e-6f});
          run(row_params(RowOp::layer_norm, x, &w, &b, got, 1e-6f, 1.0f), team);
          const std::vector<double> y = to_doubles(ref);
          std::vector<double> tol(y.size());
          for (int64_t r = 0; r < x.numel() / n; ++r) {
            double mean = 0, abs = 0, var = 0;
            for (int64_t j = 0; j < n; ++j) mean += xv[size_t(r * n + j)], abs += std::abs(xv[size_t(r * n + j)]);
            mean /= double(n);
            for (int64_t j = 0; j < n; ++j) var += (xv[size_t(r * n + j)] - mean) * (xv[size_t(r * n + j)] - mean);
            const double rstd = 1 / std::sqrt(var / double(n) + 1e-6);
            for (int64_t j = 0; j < n; ++j) {
              const size_t i = size_t(r * n + j);
              tol[i] = std::abs(wv[size_t(j)]) * rstd * (g * abs / double(n) + std::abs(xv[i] - mean) * (g + 12 * u)) +
                       6 * u * std::abs(y[i]);
            }
          }
          expect_within(got, y, tol, "layer_norm " + what);
        }
        {  // RMS norm, in the input type
          Tensor ref = Tensor::empty(shape, t), got = Tensor::empty(shape, t);
          cpu_be().run(op::RmsNorm{&x, &w, &ref, 1e-6f});
          run(row_params(RowOp::rms_norm, x, &w, nullptr, got, 1e-6f, 1.0f), team);
          expect_within(got, to_doubles(ref), bound(to_doubles(ref), g + 12 * u + 2 * ut * 1.01, {}), "rms_norm " + what);
        }
        {  // softmax, scale −0.7
          Tensor ref = Tensor::empty(shape, t), got = Tensor::empty(shape, t);
          cpu_be().run(op::Softmax{&x, &ref, -0.7f});
          run(row_params(RowOp::softmax, x, nullptr, nullptr, got, 0.0f, -0.7f), team);
          const double rel = g + 2 * (8 + 4 * 3.0 * 0.7) * u + 2 * ut * 1.01;
          expect_within(got, to_doubles(ref), bound(to_doubles(ref), rel, {}), "softmax " + what);
        }
      }
}

// Layer norm with the fused modulation: the bound of the layer norm above for y, then
// o = y·(1 + s) + h rounds 1 + s, the product and the sum once each on both backends.
TEST(CudaKernelLogic, LayerNormModulateMatchesCpu) {
  uint64_t seed = 4650;
  const double u = kU32;
  for (int team : {1, 32, 256})
    for (DType t : {DType::f32, DType::bf16, DType::f16})
      for (const Shape& shape : {Shape{5, 77}, Shape{3, 1536}, Shape{4, 1}}) {
        const int64_t n = shape[-1];
        const double ut = unit_roundoff(t), g = 2 * gamma_f32(n + 3);
        const Tensor x = random_nonzero(shape, seed++, t, 0.05f, 3.0f);
        const Tensor w = random_nonzero({n}, seed++, t), b = random_nonzero({n}, seed++, DType::f32);
        const Tensor sc = random_nonzero({n}, seed++, t), sh = random_nonzero({n}, seed++);
        Tensor ref = Tensor::empty(shape, t), got = Tensor::empty(shape, t), plain = Tensor::empty(shape, DType::f32);
        cpu_be().run(op::LayerNorm{&x, &w, &b, &ref, 1e-6f, &sc, &sh});
        cpu_be().run(op::LayerNorm{&x, &w, &b, &plain, 1e-6f});  // y, for the bound
        run(layer_norm_params(op::LayerNorm{&x, &w, &b, &got, 1e-6f, &sc, &sh}), team);
        const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), sv = to_doubles(sc);
        const std::vector<double> y = to_doubles(plain), o = to_doubles(ref);
        std::vector<double> tol(y.size());
        for (int64_t r = 0; r < x.numel() / n; ++r) {
          double mean = 0, abs = 0, var = 0;
          for (int64_t j = 0; j < n; ++j) mean += xv[size_t(r * n + j)], abs += std::abs(xv[size_t(r * n + j)]);
          mean /= double(n);
          for (int64_t j = 0; j < n; ++j) var += (xv[size_t(r * n + j)] - mean) * (xv[size_t(r * n + j)] - mean);
          const double rstd = 1 / std::sqrt(var / double(n) + 1e-6);
          for (int64_t j = 0; j < n; ++j) {
            const size_t i = size_t(r * n + j);
            const double ey = std::abs(wv[size_t(j)]) * rstd * (g * abs / double(n) + std::abs(xv[i] - mean) * (g + 12 * u)) +
                              6 * u * std::abs(y[i]);
            const double m = std::abs(1 + sv[size_t(j)]);
            tol[i] = m * ey * (1 + 3 * u) + 2 * (3 * u * m * std::abs(y[i]) + 2 * u * std::abs(o[i])) +
                     2 * ut * 1.01 * std::abs(o[i]);
          }
        }
        expect_within(got, o, tol,
                      std::string("layer_norm+modulate ") + dname(t) + " " + shape.str() + " team " + std::to_string(team));
      }
}

TEST(CudaKernelLogic, ChannelL2NormMatchesCpu) {
  uint64_t seed = 4700;
  for (DType t : {DType::f32, DType::bf16})
    for (const Shape& shape : {Shape{2, 12, 3, 5, 7}, Shape{3, 5}}) {
      const int64_t c = shape[1];
      const Tensor x = random_nonzero(shape, seed++, t);
      const Tensor g = random_nonzero({c}, seed++, t), b = random_nonzero({c}, seed++, t);
      Tensor ref = Tensor::empty(shape, t), got = Tensor::empty(shape, t);
      cpu_be().run(op::ChannelL2Norm{&x, &g, &b, &ref});
      run(channel_norm_params(op::ChannelL2Norm{&x, &g, &b, &got}));
      const std::vector<double> y = to_doubles(ref), bv = to_doubles(b);
      const int64_t spatial = x.numel() / (shape[0] * c);
      std::vector<double> tol(y.size());
      for (size_t i = 0; i < y.size(); ++i)
        tol[i] = std::abs(y[i] - bv[(i / size_t(spatial)) % size_t(c)]) * (2 * gamma_f32(c + 1) + 16 * kU32) +
                 (2 * kU32 + 2 * unit_roundoff(t) * 1.01) * std::abs(y[i]);
      expect_within(got, y, tol, std::string("channel_l2_norm ") + dname(t) + " " + shape.str());
    }
}

TEST(CudaKernelLogic, BiasEpilogues) {
  // rows: out[r, c] = src[r, c] + bias[c]; channels: out[b, c, s] = src + bias[c]. Exact for integers.
  const Tensor src = integers({3, 4, 5}, 1.0f), bias = integers({4}, 1000.0f), bias5 = integers({5}, 1000.0f);
  Tensor rows = Tensor::empty({3, 4, 5}, DType::f32), chans = Tensor::empty({3, 4, 5}, DType::f32);
  for (int64_t i = 0; i < 60; ++i) {
    bias_rows_element(static_cast<const float*>(src.raw()), operand(bias5), rows.raw(), 0, 5, i);
    bias_channels_element(operand(src), operand(bias), chans.raw(), 0, 4, 5, i);
  }
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t s = 0; s < 5; ++s) {
        const int64_t i = (b * 4 + c) * 5 + s;
        EXPECT_EQ(rows.data<float>()[i], float(i + 1) + 1000.0f * float(s + 1));
        EXPECT_EQ(chans.data<float>()[i], float(i + 1) + 1000.0f * float(c + 1));
      }
  // No source (an empty sum): the bias alone; no bias: a conversion.
  Tensor only = Tensor::empty({2, 4, 3}, DType::bf16);
  for (int64_t i = 0; i < 24; ++i) bias_channels_element({}, operand(bias), only.raw(), int(DType::bf16), 4, 3, i);
  EXPECT_EQ(only.to_floats()[7], round_to(DType::bf16, 3000.0f));  // channel (7 / 3) % 4 = 2
}

// ---------------------------------------------------------------- GEMM mapping

namespace {

// What cuBLAS computes for a Gemm (column-major, op(A) = A or Aᵀ), in double, f32 operands.
void reference_gemm(const Gemm& g, float* d) {
  const auto* A = static_cast<const float*>(g.a);
  const auto* B = static_cast<const float*>(g.b);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t j = 0; j < g.n; ++j)
      for (int64_t i = 0; i < g.m; ++i) {
        double s = 0;
        for (int64_t l = 0; l < g.k; ++l) {
          const double a = g.trans_a ? A[b * g.stride_a + l + i * g.lda] : A[b * g.stride_a + i + l * g.lda];
          s += a * double(B[b * g.stride_b + l + j * g.ldb]);
        }
        d[b * g.stride_d + i + j * g.ldd] = float(double(g.alpha) * s);
      }
}

}  // namespace

// The row-major → column-major mapping of Linear (with the bias epilogue's indexing) and of
// BatchMatMul (both b layouts), through a plain column-major GEMM. The CPU backend's f32
// result is within γ_{K+1}·Σ|terms| of the exact one, the double reference within 2^-24·|y|.
TEST(CudaKernelLogic, GemmMappingsMatchCpu) {
  const int64_t rows = 7, n = 5, k = 13;
  const Tensor x = random_nonzero({rows, k}, 4800), w = random_nonzero({n, k}, 4801), b = random_nonzero({n}, 4802);
  const Tensor ref = ops::linear(cpu_be(), x, w, &b);
  Tensor acc = Tensor::empty({rows, n}, DType::f32), got = Tensor::empty({rows, n}, DType::f32);
  const Gemm g = linear_gemm(x.raw(), w.raw(), rows, n, k, DType::f32);
  reference_gemm(g, acc.data<float>());
  for (int64_t i = 0; i < rows * n; ++i)  // gemm_to_output's bias path: rows = n·batch, cols = m
    bias_rows_element(acc.data<float>(), operand(b), got.raw(), int(DType::f32), g.m, i);
  const Tensor ab = abs_f32(b);
  const std::vector<double> s = to_doubles(ops::linear(cpu_be(), abs_f32(x), abs_f32(w), &ab));
  expect_within(got, to_doubles(ref), bound(to_doubles(ref), 2 * kU32, scaled(s, gamma_f32(k + 1))), "linear mapping");

  for (bool transpose : {false, true}) {
    const int64_t batch = 3, m = 4, kk = 6, nn = 5;
    const Tensor a = random_nonzero({batch, m, kk}, 4803);
    const Tensor bm = random_nonzero(transpose ? Shape{batch, nn, kk} : Shape{batch, kk, nn}, 4804);
    Tensor r = Tensor::empty({batch, m, nn}, DType::f32), o = Tensor::empty({batch, m, nn}, DType::f32);
    cpu_be().run(op::BatchMatMul{&a, &bm, &r, transpose, 0.7f});
    reference_gemm(batch_matmul_gemm(op::BatchMatMul{&a, &bm, &o, transpose, 0.7f}), o.data<float>());
    Tensor sabs = Tensor::empty({batch, m, nn}, DType::f32);
    const Tensor aa = abs_f32(a), bb = abs_f32(bm);
    cpu_be().run(op::BatchMatMul{&aa, &bb, &sabs, transpose, 0.7f});
    expect_within(o, to_doubles(r), bound(to_doubles(r), 2 * kU32, scaled(to_doubles(sabs), gamma_f32(kk + 1))),
                  std::string("batch_matmul mapping") + (transpose ? " transposed" : ""));
  }
}

// ---------------------------------------------------------------- data movement (bitwise)

TEST(CudaKernelLogic, ConcatAndSliceRowCopies) {
  uint64_t seed = 4400;
  for (DType t : {DType::f32, DType::bf16, DType::i32})
    for (int axis : {0, 1, 2, -1}) {
      std::vector<Tensor> in;
      for (int64_t extent : {3, 0, 5, 1}) {
        std::array<int64_t, 4> d{2, 3, 4, 5};
        d[size_t(axis < 0 ? axis + 4 : axis)] = extent;
        in.push_back(random_any(Shape(std::span<const int64_t>(d)), seed++, t));
      }
      std::vector<const Tensor*> ptrs;
      for (const Tensor& x : in) ptrs.push_back(&x);
      const Tensor ref = ops::concat(cpu_be(), ptrs, axis);
      Tensor got = Tensor::empty(ref.shape(), t);
      for (const RowCopyParams& p : concat_params(op::Concat{ptrs, axis, &got})) run(p);
      expect_identical(got, ref, std::string("concat ") + dname(t) + " axis " + std::to_string(axis));
    }
  for (DType t : {DType::f32, DType::bf16}) {
    const Tensor big = random_any({5, 5, 6, 7}, seed++, t);
    const Tensor x = big.slice(1, 4);  // a view (2-byte offsets for bf16: small copy units)
    for (int axis = 0; axis < 4; ++axis)
      for (auto [b, e] : {std::pair<int64_t, int64_t>{1, 3}, {0, 1}, {2, 3}}) {
        const Tensor ref = ops::slice(cpu_be(), x, axis, b, e);
        Tensor got = Tensor::empty(ref.shape(), t);
        run(slice_params(op::Slice{&x, &got, axis, b}));
        expect_identical(got, ref, std::string("slice ") + dname(t) + " axis " + std::to_string(axis));
      }
  }
}

TEST(CudaKernelLogic, PadUpsamplePermuteGathers) {
  uint64_t seed = 4500;
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    for (const Shape& shape : {Shape{7}, Shape{3, 4}, Shape{2, 1, 3, 5}, Shape{1, 2, 3, 4, 5}}) {
      const Tensor x = random_any(shape, seed++, t);
      std::vector<int64_t> before, after;
      for (int i = 0; i < shape.rank(); ++i) {
        before.push_back(i % 3);
        after.push_back((i + 1) % 2 + (i == shape.rank() - 1 ? 2 : 0));
      }
      const Tensor ref = ops::pad(cpu_be(), x, before, after, 0.25f);
      Tensor got = Tensor::empty(ref.shape(), t);
      op::Pad p{&x, &got};
      for (int i = 0; i < shape.rank(); ++i) {
        p.before[size_t(i)] = before[size_t(i)];
        p.after[size_t(i)] = after[size_t(i)];
      }
      p.value = 0.25f;
      run(pad_params(p));
      expect_identical(got, ref, std::string("pad ") + dname(t) + " " + shape.str());
    }
    for (auto [sh, sw] : {std::pair{2, 2}, {1, 3}, {3, 1}}) {
      const Tensor x = random_any({2, 3, 5, 7}, seed++, t);
      const Tensor ref = ops::upsample_nearest(cpu_be(), x, sh, sw);
      Tensor got = Tensor::empty(ref.shape(), t);
      run(upsample_params(op::UpsampleNearest{&x, &got, sh, sw}));
      expect_identical(got, ref, std::string("upsample ") + dname(t));
    }
    std::mt19937_64 rng(seed++);
    for (int trial = 0; trial < 40; ++trial) {
      const int rank = 1 + int(rng() % 5);
      const Shape shape = random_shape(rng, rank);
      std::array<int, kMaxRank> perm{0, 1, 2, 3, 4};
      std::shuffle(perm.begin(), perm.begin() + rank, rng);
      const Tensor x = random_any(shape, seed++, t);
      const Tensor ref = ops::permute(cpu_be(), x, std::span<const int>(perm.data(), size_t(rank)));
      Tensor got = Tensor::empty(ref.shape(), t);
      op::Permute p{&x, &got};
      p.perm = perm;
      run(permute_params(p));
      expect_identical(got, ref, std::string("permute ") + dname(t) + " " + shape.str());
    }
  }
}

#else

TEST(CudaKernelLogic, NeedsTheCudaBuild) { GTEST_SKIP() << "reel was built without CUDA: no CUDA kernels to check"; }

#endif
