// CUDA Linear, BatchMatMul, Conv3d and Conv2d against the CPU backend: f32, bf16, f16, mixed
// operand types, bias types, odd shapes, unaligned views, empty sums. Skips without a GPU.
//
// Bounds (cuda_test_util.hpp explains the scheme). For an output y = Σ_k p_k (+ bias) with
// S = Σ|p_k| + |bias| (computed with the same op on absolute values):
//   CPU:  γ_K(2^-24)·S, then one rounding into the output type t: u_t·|y|.
//   GPU:  products of bf16/f16/f32 operands are exact in f32 (FMA or tensor cores), sums in any
//         order with truncation allowed: γ_K(2^-22)·S; rounding into t once (GEMMs: the bias is
//         fused or added in f32 before the one rounding), twice for convolutions with a bias in
//         bf16/f16 (cuDNN rounds, then the bias kernel adds and rounds again): 2·u_t·|y|.
//   f32 x with bf16 weights: the GPU rounds x to bf16 first (as the CPU does with AMX; on other
//         CPUs it widens the weights instead), adding u_bf16·S to the GPU's bound and, for the CPU
//         in its bf16 mode, to the CPU's too: 2·u_bf16·S in total.
//   Convolutions: cuDNN may choose Winograd or FFT algorithms, whose error is bounded norm-wise
//         (a small multiple of u·log K·‖x‖‖w‖) rather than by γ_K·S; with these inputs (signs
//         random, |values| in [0.05, 1]) that is far below 4·γ_K(2^-22)·S, the GPU term used.
#include "cuda/cuda_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};

struct LinearCase {
  Shape x;
  int64_t n;
  DType x_type, w_type, out_type;
  bool bias;
  DType bias_type;
};

void check_linear(const LinearCase& c, uint64_t seed, int64_t view_offset = 0) {
  const int64_t k = c.x[-1];
  // x as a view that starts `view_offset` rows into a bigger tensor (unaligned for the GEMM).
  Shape big_shape = c.x;
  {
    std::vector<int64_t> d(c.x.dims().begin(), c.x.dims().end());
    d[0] += view_offset;
    big_shape = Shape(std::span<const int64_t>(d));
  }
  const Tensor x_big = random_nonzero(big_shape, seed, c.x_type);
  const Tensor x = x_big.slice(view_offset, big_shape[0]);
  const Tensor w = random_nonzero({c.n, k}, seed + 1, c.w_type);
  const Tensor b = random_nonzero({c.n}, seed + 2, c.bias_type);
  const Tensor* bias = c.bias ? &b : nullptr;
  const Tensor ref = ops::linear(cpu_backend(), x, w, bias, c.out_type);

  const Tensor gx_big = on_gpu(x_big), gw = on_gpu(w), gb = on_gpu(b);
  const Tensor gx = gx_big.slice(view_offset, big_shape[0]);
  const Tensor got = ops::linear(gpu(), gx, gw, c.bias ? &gb : nullptr, c.out_type);

  const Tensor ab = abs_f32(b);
  const Tensor s_t = ops::linear(cpu_backend(), abs_f32(x), abs_f32(w), c.bias ? &ab : nullptr, DType::f32);
  const std::vector<double> s = to_doubles(s_t), y = to_doubles(ref);
  const double ut = unit_roundoff(c.out_type);
  double per_s = gamma_f32(k + 1) + gamma_gpu(k + 1);
  if (c.x_type == DType::f32 && c.w_type == DType::bf16) per_s += 2 * kUBf16;
  std::vector<double> tol = bound(y, 2 * ut * 1.01, scaled(s, per_s));
  expect_near_cpu(got, ref, tol,
                  "linear x " + c.x.str() + " " + dname(c.x_type) + " w " + dname(c.w_type) + " out " +
                      dname(c.out_type) + (c.bias ? std::string(" bias ") + dname(c.bias_type) : ""));
}

}  // namespace

TEST(CudaLinear, SameTypesWithAndWithoutBias) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType t : kTypes)
    for (bool bias : {true, false})
      for (const Shape& xs : {Shape{3, 37, 67}, Shape{1, 5}, Shape{130, 256}, Shape{7}})
        check_linear({xs, 45, t, t, t, bias, t}, seed++);
}

TEST(CudaLinear, MixedTypesAndBiasTypes) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 200;
  const Shape xs{4, 33, 96};
  // f32 activations, bf16 weights (rounded to bf16 on the GPU), f32 or bf16 bias.
  check_linear({xs, 50, DType::f32, DType::bf16, DType::f32, true, DType::f32}, seed++);
  check_linear({xs, 50, DType::f32, DType::bf16, DType::f32, true, DType::bf16}, seed++);
  // bf16 activations with f32 weights or f16 weights: computed in f32.
  check_linear({xs, 50, DType::bf16, DType::f32, DType::bf16, true, DType::f32}, seed++);
  check_linear({xs, 50, DType::bf16, DType::f16, DType::f32, false, DType::f32}, seed++);
  // bf16 GEMM with f32 output; bias types that differ from the output (f32 buffer path).
  check_linear({xs, 50, DType::bf16, DType::bf16, DType::f32, true, DType::bf16}, seed++);
  check_linear({xs, 50, DType::bf16, DType::bf16, DType::bf16, true, DType::f32}, seed++);
  check_linear({xs, 50, DType::f16, DType::f16, DType::f16, true, DType::f32}, seed++);
}

TEST(CudaLinear, UnalignedViewsAndOddSizes) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 300;
  for (DType t : kTypes) {
    check_linear({{9, 7}, 3, t, t, t, true, t}, seed++, /*view_offset=*/1);   // 14-byte rows in bf16
    check_linear({{5, 129}, 65, t, t, t, true, t}, seed++, /*view_offset=*/3);
  }
}

TEST(CudaLinear, EmptySumIsTheBias) {
  REEL_REQUIRE_GPU();
  const Tensor x = gpu().empty({3, 0}, DType::f32);
  const Tensor w = gpu().empty({4, 0}, DType::f32);
  const Tensor b = random_nonzero({4}, 7);
  const Tensor gb = on_gpu(b);
  const Tensor got = on_cpu(ops::linear(gpu(), x, w, &gb));
  const std::vector<float> bv = b.to_floats(), g = got.to_floats();
  for (int r = 0; r < 3; ++r)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(g[size_t(r * 4 + j)], bv[size_t(j)]);
}

TEST(CudaBatchMatMul, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 400;
  for (DType t : kTypes)
    for (bool transpose : {false, true})
      for (DType out_t : {t, DType::f32}) {
        const int64_t batch = 3, m = 33, k = 47, n = 29;
        const float alpha = 0.7f;
        const Tensor a = random_nonzero({batch, m, k}, seed++, t);
        const Tensor b = random_nonzero(transpose ? Shape{batch, n, k} : Shape{batch, k, n}, seed++, t);
        Tensor ref = Tensor::empty({batch, m, n}, out_t);
        cpu_backend().run(op::BatchMatMul{&a, &b, &ref, transpose, alpha});
        const Tensor ga = on_gpu(a), gb = on_gpu(b);
        Tensor got = gpu().empty({batch, m, n}, out_t);
        gpu().run(op::BatchMatMul{&ga, &gb, &got, transpose, alpha});
        Tensor s = Tensor::empty({batch, m, n}, DType::f32);
        const Tensor aa = abs_f32(a), bb = abs_f32(b);
        cpu_backend().run(op::BatchMatMul{&aa, &bb, &s, transpose, alpha});
        // alpha scales the sum: one more rounding, inside the γ_{K+1} term.
        const double per_s = gamma_f32(k + 1) + gamma_gpu(k + 1);
        expect_near_cpu(got, ref, bound(to_doubles(ref), 2 * unit_roundoff(out_t) * 1.01, scaled(to_doubles(s), per_s)),
                        std::string("batch_matmul ") + dname(t) + (transpose ? " transposed" : "") + " out " +
                            dname(out_t));
      }
}

// ---------------------------------------------------------------- convolutions

namespace {

template <int N>
Shape conv_shape(const Shape& xs, const Shape& ws, std::array<int, N> stride, std::array<int, N> padding) {
  std::vector<int64_t> d{xs[0], ws[0]};
  for (int i = 0; i < N; ++i) d.push_back((xs[2 + i] + 2 * padding[i] - ws[2 + i]) / stride[i] + 1);
  return Shape(std::span<const int64_t>(d));
}

template <int N>
void check_conv(const Shape& xs, const Shape& ws, std::array<int, N> stride, std::array<int, N> padding, DType x_t,
                DType w_t, DType out_t, bool bias, uint64_t seed) {
  const Tensor x = random_nonzero(xs, seed, x_t);
  const Tensor w = random_nonzero(ws, seed + 1, w_t);
  const Tensor b = random_nonzero({ws[0]}, seed + 2, w_t);
  auto run = [&](Backend& be, const Tensor& xx, const Tensor& ww, const Tensor* bb, DType ot) {
    Tensor out;
    if constexpr (N == 3) {
      out = be.empty(conv_shape<N>(xs, ws, stride, padding), ot);
      be.run(op::Conv3d{&xx, &ww, bb, &out, stride, padding});
    } else {
      out = be.empty(conv_shape<N>(xs, ws, stride, padding), ot);
      be.run(op::Conv2d{&xx, &ww, bb, &out, stride, padding});
    }
    return out;
  };
  const Tensor ref = run(cpu_backend(), x, w, bias ? &b : nullptr, out_t);
  const Tensor gx = on_gpu(x), gw = on_gpu(w), gb = on_gpu(b);
  const Tensor got = run(gpu(), gx, gw, bias ? &gb : nullptr, out_t);
  const Tensor ab = abs_f32(b);
  const Tensor s = run(cpu_backend(), abs_f32(x), abs_f32(w), bias ? &ab : nullptr, DType::f32);
  int64_t k = 1;
  for (int i = 1; i < ws.rank(); ++i) k *= ws[i];
  double per_s = gamma_f32(k + 1) + 4 * gamma_gpu(k + 1);
  if (x_t != w_t) per_s += 2 * kUBf16;  // the CPU may round x to bf16 (AMX); the GPU widens
  const double ut = unit_roundoff(out_t);
  expect_near_cpu(got, ref, bound(to_doubles(ref), 3 * ut * 1.01, scaled(to_doubles(s), per_s)),
                  std::string(N == 3 ? "conv3d x " : "conv2d x ") + xs.str() + " w " + ws.str() + " " + dname(x_t) +
                      "/" + dname(w_t) + " -> " + dname(out_t) + (bias ? " bias" : ""));
}

}  // namespace

TEST(CudaConv3d, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 500;
  for (DType t : kTypes)
    for (bool bias : {true, false}) {
      check_conv<3>({2, 5, 4, 9, 11}, {7, 5, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, t, t, t, bias, seed++);
      check_conv<3>({1, 6, 5, 8, 7}, {4, 6, 3, 3, 3}, {1, 2, 2}, {0, 1, 1}, t, t, t, bias, seed++);
      check_conv<3>({1, 8, 3, 6, 5}, {16, 8, 1, 1, 1}, {1, 1, 1}, {0, 0, 0}, t, t, t, bias, seed++);
    }
}

TEST(CudaConv3d, MixedTypesRunInF32) {
  REEL_REQUIRE_GPU();
  check_conv<3>({1, 4, 3, 6, 6}, {5, 4, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, DType::f32, DType::bf16, DType::f32, true, 600);
  check_conv<3>({1, 4, 3, 6, 6}, {5, 4, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, DType::bf16, DType::bf16, DType::f32, true,
                601);
}

TEST(CudaConv2d, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 700;
  for (DType t : kTypes)
    for (bool bias : {true, false}) {
      check_conv<2>({2, 6, 13, 10}, {4, 6, 3, 3}, {2, 2}, {1, 1}, t, t, t, bias, seed++);
      check_conv<2>({1, 3, 17, 9}, {8, 3, 3, 3}, {1, 1}, {1, 1}, t, t, t, bias, seed++);
    }
}
