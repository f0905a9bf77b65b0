// CUDA element-wise ops against the CPU backend: activations, binary ops with NumPy
// broadcasting up to 5 dims, mul_add (the gated residual), modulate, affine, rope, fill and
// convert; f32, bf16, f16 and mixed operand types; in-place use; views. Skips without a GPU.
//
// Bounds (scheme in cuda_test_util.hpp), per backend, all math in f32 (u = 2^-24):
//   add/sub/mul     exact operands, one rounding: u·|y|
//   mul_add         a + b·c, fused or not: u·(|b·c| + |y|)
//   modulate        x·(1 + s) + t: u·(|1 + s|·|x| + 2·|x·(1 + s)| + |y|) <= 3u·(|x·(1 + s)| + |y|) for these inputs
//   affine          α·x + β: u·(|α·x| + |y|)
//   silu            exp (2 ulp), 1 + e, the division, the product: 8u·|y| (as tests/core)
//   gelu_tanh       x·sigmoid(u2): u2 carries 7u relative error, which moves the sigmoid by
//                   7u·|u2| relatively; exp/sum/division/product add 8u: (8 + 7|u2|)·u·|y|
//   gelu_erf        erf within 2 ulp (CUDA erff, glibc erff) of the value at the rounded argument,
//                   whose rounding moves it by <= u: |Δ(1 + erf)| <= 4u, so 0.5|x|·4u + 3u·|y|
//   rope            x0·c − x1·s (fused or not): 2u·(|x0·c| + |x1·s|)
//   fill, convert   exact: both round to nearest even from the same f32 value (compared bitwise)
// The two backends' bounds add; an output of type t adds 2·u_t·|y|.
#include <cmath>
#include <limits>
#include <random>

#include "cuda/cuda_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};

double lowp(DType t) { return 2 * unit_roundoff(t) * 1.01; }

}  // namespace

// ---------------------------------------------------------------- activations

TEST(CudaUnary, ActivationsMatchCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (op::UnaryKind kind : {op::UnaryKind::silu, op::UnaryKind::gelu_tanh, op::UnaryKind::gelu_erf,
                             op::UnaryKind::relu, op::UnaryKind::tanh})
    for (DType t : kTypes)
      for (const Shape& shape : {Shape{7, 13, 33}, Shape{1}, Shape{2, 3, 4, 5, 6}}) {
        const Tensor x = random_nonzero(shape, seed++, t, 0.01f, 5.0f);
        Tensor ref = Tensor::empty(shape, t);
        cpu_backend().run(op::Unary{kind, &x, &ref});
        Tensor got = on_gpu(x);
        gpu().run(op::Unary{kind, &got, &got});  // in place
        const std::vector<double> xv = to_doubles(x), y = to_doubles(ref);
        std::vector<double> tol(y.size());
        for (size_t i = 0; i < y.size(); ++i) {
          const double v = xv[i], ay = std::abs(y[i]);
          double e = 0;
          switch (kind) {
            case op::UnaryKind::silu: e = 8 * kU32 * ay; break;
            case op::UnaryKind::gelu_tanh: {
              const double u2 = 2 * std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v);
              e = (8 + 7 * std::abs(u2)) * kU32 * ay;
              break;
            }
            case op::UnaryKind::gelu_erf: e = 0.5 * std::abs(v) * 4 * kU32 + 3 * kU32 * ay; break;
            case op::UnaryKind::relu: e = 0; break;
            case op::UnaryKind::tanh: e = 4 * kU32 * ay; break;  // tanhf on both sides: 2 ulp each
          }
          tol[i] = 2 * e + lowp(t) * ay;
        }
        expect_near_cpu(got, ref, tol, std::string(op_name(op::Unary{kind, &x, &ref})) + " " + shape.str() + " " + dname(t));
      }
}

// ---------------------------------------------------------------- binary, mul_add, modulate, affine

TEST(CudaBinary, BroadcastingAndMixedTypes) {
  REEL_REQUIRE_GPU();
  struct Case {
    Shape a, b;
    DType ta, tb, tout;
  };
  const Case cases[] = {
      {{4, 1, 6, 5}, {3, 1, 5}, DType::f32, DType::f32, DType::f32},
      {{2, 3, 4, 5, 6}, {3, 1, 5, 1}, DType::bf16, DType::bf16, DType::bf16},
      {{2, 3, 4, 5, 6}, {2, 1, 4, 1, 6}, DType::f16, DType::f16, DType::f16},
      {{7, 9}, {}, DType::bf16, DType::f32, DType::f32},  // scalar b
      {{1}, {5, 4}, DType::f32, DType::bf16, DType::bf16},
      {{3, 1}, {1, 8}, DType::f16, DType::bf16, DType::f32},  // outer product shape
      {{6, 2, 1280}, {1280}, DType::bf16, DType::f32, DType::bf16},
  };
  uint64_t seed = 2100;
  for (const Case& c : cases)
    for (op::BinaryKind kind : {op::BinaryKind::add, op::BinaryKind::sub, op::BinaryKind::mul}) {
      const Tensor a = random_nonzero(c.a, seed++, c.ta), b = random_nonzero(c.b, seed++, c.tb);
      const Shape out_shape = ops::broadcast_shapes(c.a, c.b);
      Tensor ref = Tensor::empty(out_shape, c.tout);
      cpu_backend().run(op::Binary{kind, &a, &b, &ref});
      const Tensor ga = on_gpu(a), gb = on_gpu(b);
      Tensor got = gpu().empty(out_shape, c.tout);
      gpu().run(op::Binary{kind, &ga, &gb, &got});
      expect_near_cpu(got, ref, bound(to_doubles(ref), 2 * kU32 + lowp(c.tout), {}),
                      std::string(op_name(op::Binary{kind, &a, &b, &ref})) + " " + c.a.str() + " " + dname(c.ta) +
                          " with " + c.b.str() + " " + dname(c.tb) + " -> " + dname(c.tout));
    }
}

TEST(CudaBinary, InPlaceOnAView) {
  REEL_REQUIRE_GPU();
  const Tensor big = random_nonzero({5, 3, 7}, 2200, DType::bf16);
  const Tensor b = random_nonzero({7}, 2201, DType::f32);
  Tensor ref = big.clone();
  Tensor ref_view = ref.slice(1, 4);
  cpu_backend().run(op::Binary{op::BinaryKind::mul, &ref_view, &b, &ref_view});
  Tensor got = on_gpu(big);
  Tensor got_view = got.slice(1, 4);
  const Tensor gb = on_gpu(b);
  gpu().run(op::Binary{op::BinaryKind::mul, &got_view, &gb, &got_view});
  // Rows 0 and 4 untouched (bitwise), rows 1-3 multiplied.
  expect_near_cpu(got, ref, bound(to_doubles(ref), 2 * kU32 + lowp(DType::bf16), {}), "mul in place on rows 1-3");
  expect_same_bits(got.slice(0, 1), ref.slice(0, 1), "row 0 untouched");
  expect_same_bits(got.slice(4, 5), ref.slice(4, 5), "row 4 untouched");
}

TEST(CudaMulAdd, GatedResidual) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 2300;
  for (DType t : kTypes)
    for (const Shape& cs : {Shape{16}, Shape{2, 1, 16}, Shape{2, 9, 16}}) {
      const Shape shape{2, 9, 16};
      const Tensor a = random_nonzero(shape, seed++, t), b = random_nonzero(shape, seed++, t);
      const Tensor c = random_nonzero(cs, seed++, DType::f32);  // the f32 gate of the DiT
      Tensor ref = Tensor::empty(shape, t);
      cpu_backend().run(op::MulAdd{&a, &b, &c, &ref});
      const Tensor ga = on_gpu(a), gb = on_gpu(b), gc = on_gpu(c);
      Tensor got = gpu().empty(shape, t);
      gpu().run(op::MulAdd{&ga, &gb, &gc, &got});
      const Tensor ab = abs_f32(b), ac = abs_f32(c);
      Tensor bc = Tensor::empty(shape, DType::f32);
      cpu_backend().run(op::Binary{op::BinaryKind::mul, &ab, &ac, &bc});
      const std::vector<double> y = to_doubles(ref);
      expect_near_cpu(got, ref, bound(y, 2 * kU32 + lowp(t), scaled(to_doubles(bc), 2 * kU32)),
                      std::string("mul_add ") + dname(t) + " gate " + cs.str());
    }
}

TEST(CudaModulate, BroadcastScaleAndShift) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 2400;
  for (DType t : kTypes)
    for (DType out_t : {t, DType::bf16}) {
      const Shape shape{2, 9, 48};
      const Tensor x = random_nonzero(shape, seed++, DType::f32);     // the f32 normed activations
      const Tensor scale = random_nonzero({2, 1, 48}, seed++, t), shift = random_nonzero({48}, seed++, t);
      Tensor ref = Tensor::empty(shape, out_t);
      cpu_backend().run(op::Modulate{&x, &scale, &shift, &ref});
      const Tensor gx = on_gpu(x), gs = on_gpu(scale), gt = on_gpu(shift);
      Tensor got = gpu().empty(shape, out_t);
      gpu().run(op::Modulate{&gx, &gs, &gt, &got});
      // |x·(1 + s)| from the double values.
      const std::vector<double> xv = to_doubles(x), sv = to_doubles(scale), y = to_doubles(ref);
      std::vector<double> tol(y.size());
      for (size_t i = 0; i < y.size(); ++i) {
        const size_t b = i / (9 * 48), ch = i % 48;
        const double m = std::abs(xv[i] * (1 + sv[b * 48 + ch]));
        tol[i] = 2 * 3 * kU32 * (m + std::abs(y[i])) + lowp(out_t) * std::abs(y[i]);
      }
      expect_near_cpu(got, ref, tol, std::string("modulate ") + dname(t) + " -> " + dname(out_t));
    }
}

TEST(CudaAffine, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 2500;
  for (DType t : kTypes) {
    const Tensor x = random_nonzero({3, 5, 111}, seed++, t);
    const float alpha = -1.7f, beta = 0.25f;
    Tensor ref = Tensor::empty(x.shape(), t);
    cpu_backend().run(op::Affine{&x, &ref, alpha, beta});
    Tensor got = on_gpu(x);
    gpu().run(op::Affine{&got, &got, alpha, beta});
    const std::vector<double> y = to_doubles(ref);
    expect_near_cpu(got, ref, bound(y, 2 * kU32 + lowp(t), scaled(to_doubles(x), 2 * kU32 * std::abs(alpha))),
                    std::string("affine ") + dname(t));
  }
}

// ---------------------------------------------------------------- rope

TEST(CudaRope, InterleavedPairsMatchCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 2600;
  for (DType t : kTypes)
    for (bool in_place : {false, true}) {
      const int64_t batch = 2, seq = 7, heads = 3, dim = 16;
      const Tensor x = random_nonzero({batch, seq, heads, dim}, seed++, t);
      const Tensor cs = random_nonzero({seq, dim}, seed++), sn = random_nonzero({seq, dim}, seed++);
      Tensor ref = Tensor::empty(x.shape(), t);
      cpu_backend().run(op::Rope{&x, &cs, &sn, &ref});
      Tensor gx = on_gpu(x);
      const Tensor gc = on_gpu(cs), gs = on_gpu(sn);
      Tensor got = in_place ? gx : gpu().empty(x.shape(), t);
      gpu().run(op::Rope{&gx, &gc, &gs, &got});
      const std::vector<double> xv = to_doubles(x), cv = to_doubles(cs), sv = to_doubles(sn), y = to_doubles(ref);
      std::vector<double> tol(y.size());
      for (size_t i = 0; i < y.size(); ++i) {
        const size_t j = i % size_t(dim), s = (i / size_t(dim * heads)) % size_t(seq), e = i - (j % 2);
        const double terms = j % 2 == 0 ? std::abs(xv[e] * cv[s * dim + j]) + std::abs(xv[e + 1] * sv[s * dim + j])
                                        : std::abs(xv[e + 1] * cv[s * dim + j]) + std::abs(xv[e] * sv[s * dim + j]);
        tol[i] = 2 * 2 * kU32 * terms + lowp(t) * std::abs(y[i]);
      }
      expect_near_cpu(got, ref, tol, std::string("rope ") + dname(t) + (in_place ? " in place" : ""));
    }
}

// ---------------------------------------------------------------- fill and convert (exact)

TEST(CudaFill, SameBitsAsCpu) {
  REEL_REQUIRE_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32})
    for (float value : {0.3f, -3.7f, 1e10f, -1e10f, nan}) {
      const Shape shape{3, 1001};
      Tensor ref = Tensor::empty(shape, t);
      cpu_backend().run(op::Fill{&ref, value});
      Tensor got = gpu().empty(shape, t);
      gpu().run(op::Fill{&got, value});
      expect_same_bits(got, ref, std::string("fill ") + dname(t) + " " + std::to_string(value));
    }
}

TEST(CudaConvert, SameBitsAsCpuOverTheWholeRange) {
  REEL_REQUIRE_GPU();
  // Log-uniform magnitudes from 1e-8 (f16 subnormals and underflow) to 1e6 (f16 overflow).
  std::mt19937_64 rng(2700);
  std::uniform_real_distribution<double> exponent(-8.0, 6.0);
  std::vector<float> v(4099);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float((i % 2 ? -1.0 : 1.0) * std::pow(10.0, exponent(rng)));
  const Tensor src32 = Tensor::from_floats({int64_t(v.size())}, v, DType::f32);
  for (DType from : kTypes)
    for (DType to : kTypes) {
      const Tensor x = src32.to(from);
      Tensor ref = Tensor::empty(x.shape(), to);
      cpu_backend().run(op::Convert{&x, &ref});
      const Tensor gx = on_gpu(x);
      Tensor got = gpu().empty(x.shape(), to);
      gpu().run(op::Convert{&gx, &got});
      expect_same_bits(got, ref, std::string("convert ") + dname(from) + " -> " + dname(to));
    }
  // i32 copies.
  Tensor ints = Tensor::empty({37}, DType::i32);
  for (int i = 0; i < 37; ++i) ints.data<int32_t>()[i] = i * 7919 - 100000;
  const Tensor gi = on_gpu(ints);
  Tensor got = gpu().empty({37}, DType::i32);
  gpu().run(op::Convert{&gi, &got});
  expect_same_bits(got, ints, "convert i32 -> i32");
}
