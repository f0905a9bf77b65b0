// Element-wise ops of the CPU backend against double-precision references: activations,
// binary ops with broadcasting, mul_add, modulate, affine, rope, fill, convert; f32, bf16 and
// f16; odd shapes; in-place use; identical results with 1 and 2 threads.
//
// Error bounds (u = unit roundoff of the type: 2^-24 f32, 2^-8 bf16, 2^-11 f16). Inputs are
// generated in the tested dtype, so the reference sees exactly the values the kernel sees.
// Each kernel computes in f32 and rounds once on store, so for a low-precision output
//   |out − round(ref)| <= |round(ŷ) − ŷ| + |ŷ − ref| + |ref − round(ref)| <= 2·u_t·|ref| + b32·(1 + u_t)
// where b32 is the f32 bound of the same computation, derived per op below.
#include <cmath>
#include <cstring>

#include "core/op_test_util.hpp"
#include "cpu/cpu_common.hpp"

using namespace reel;
using namespace reel::test;

namespace {

// Bounds for an output of type t from per-element f32 bounds b32 (see the file comment).
std::vector<double> lowp_ref_and_bound(std::vector<double>& ref, std::vector<double> b32, DType t) {
  if (t == DType::f32) return b32;
  const double ut = unit_roundoff(t);
  for (size_t i = 0; i < ref.size(); ++i) {
    b32[i] = 2 * ut * std::abs(ref[i]) + b32[i] * (1 + ut);
    ref[i] = round_to(t, float(ref[i]));
  }
  return b32;
}

const DType kFloatTypes[] = {DType::f32, DType::bf16, DType::f16};

}  // namespace

TEST(CpuMath, FastExpWithinTwoUlps) {
  // Measured worst case 1.63 u over this sweep; the kernels' bounds below assume 2 u.
  double worst = 0;
  for (double x = -86.9; x < 88.0; x += 0.000731) {
    const float xf = float(x);
    const double r = std::exp(double(xf));
    worst = std::max(worst, std::abs(double(cpu::fast_exp(xf)) - r) / r);
  }
  EXPECT_LE(worst, 2 * kU32);
  EXPECT_EQ(cpu::fast_exp(-100.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(cpu::fast_exp(1000.0f)));
}

// ---------------------------------------------------------------- activations

struct UnaryCase {
  op::UnaryKind kind;
  const char* name;
};

class UnaryOps : public ::testing::TestWithParam<std::tuple<UnaryCase, DType>> {};

TEST_P(UnaryOps, MatchDoubleReference) {
  const auto [uc, dtype] = GetParam();
  auto be = make_cpu_backend({.threads = 2});
  for (const Shape& shape : {Shape{7, 13, 33}, Shape{2, 3, 700}, Shape{1}}) {
    const Tensor x = random_nonzero(shape, 11, dtype, 0.01f, 5.0f);
    Tensor out = Tensor::empty(shape, dtype);
    be->run(op::Unary{uc.kind, &x, &out});
    const std::vector<double> xv = to_doubles(x);
    std::vector<double> ref(xv.size()), b32(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const double v = xv[i];
      switch (uc.kind) {
        case op::UnaryKind::silu:
          ref[i] = v / (1 + std::exp(-v));
          // exp 2u, 1+e u, division u, product u: 5u; 8u leaves margin.
          b32[i] = 8 * kU32 * std::abs(ref[i]);
          break;
        case op::UnaryKind::gelu_tanh: {
          const double u2 = 2 * std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v);
          ref[i] = 0.5 * v * (1 + std::tanh(u2 / 2));
          // x·sigmoid(u2): u2 carries ~7u relative error (5 roundings, 2 rounded constants),
          // which moves sigmoid by 7u·|u2| relatively; exp/sum/div/product add 5u.
          b32[i] = (8 + 7 * std::abs(u2)) * kU32 * std::abs(ref[i]);
          break;
        }
        case op::UnaryKind::gelu_erf:
          ref[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          // 1 + erf is cancelled for negative x: absolute error ~6u (erff ~1 ulp, rounded
          // argument, the sum) times 0.5|x|, plus 2u relative for the products.
          b32[i] = 0.5 * std::abs(v) * 6 * kU32 + 2 * kU32 * std::abs(ref[i]);
          break;
        case op::UnaryKind::relu:
          ref[i] = v > 0 ? v : 0;
          b32[i] = 0;  // exact
          break;
        case op::UnaryKind::tanh:
          ref[i] = std::tanh(v);
          b32[i] = 4 * kU32 * std::abs(ref[i]);  // libm tanhf: within 2 ulp
          break;
      }
    }
    const std::vector<double> tol = lowp_ref_and_bound(ref, b32, dtype);
    expect_within(out, ref, tol, std::string(uc.name) + " " + dname(dtype) + " " + shape.str());

    // In place (out is x) gives the same bits.
    Tensor inplace = x.clone();
    be->run(op::Unary{uc.kind, &inplace, &inplace});
    expect_identical(inplace, out, std::string(uc.name) + " in place");
  }
}

INSTANTIATE_TEST_SUITE_P(All, UnaryOps,
                         ::testing::Combine(::testing::Values(UnaryCase{op::UnaryKind::silu, "silu"},
                                                              UnaryCase{op::UnaryKind::gelu_tanh, "gelu_tanh"},
                                                              UnaryCase{op::UnaryKind::gelu_erf, "gelu_erf"},
                                                              UnaryCase{op::UnaryKind::relu, "relu"},
                                                              UnaryCase{op::UnaryKind::tanh, "tanh"}),
                                            ::testing::ValuesIn(kFloatTypes)));

// ---------------------------------------------------------------- binary with broadcasting

TEST(BinaryOps, BroadcastMatchesDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{2, 7, 13}, {7, 1}},       {{1, 13}, {3, 1, 13}}, {{7, 13, 33}, {33}},
                        {{5, 33}, {}},              {{3, 1, 5}, {1, 4, 1}}, {{2, 1200}, {2, 1200}},
                        {{2, 3, 4, 5, 7}, {3, 1, 5, 1}}};
  const op::BinaryKind kinds[] = {op::BinaryKind::add, op::BinaryKind::sub, op::BinaryKind::mul};
  for (DType dtype : kFloatTypes)
    for (const Case& c : cases)
      for (op::BinaryKind kind : kinds) {
        const Tensor a = random_nonzero(c.a, 1, dtype, 0.1f, 3.0f);
        const Tensor b = random_nonzero(c.b, 2, DType::f32, 0.1f, 3.0f);  // mixed input dtypes
        const Shape s = ops::broadcast_shapes(c.a, c.b);
        Tensor out = Tensor::empty(s, dtype);
        be->run(op::Binary{kind, &a, &b, &out});
        // Naive reference: explicit multi-index with broadcast (size-1 dims repeat).
        const std::vector<double> av = to_doubles(a), bv = to_doubles(b);
        std::vector<double> ref(size_t(s.numel())), b32(ref.size());
        auto index_in = [&](const Shape& in, int64_t flat) {
          int64_t idx = 0, rem = flat;
          std::vector<int64_t> coord(size_t(s.rank()));
          for (int d = s.rank() - 1; d >= 0; --d) {
            coord[size_t(d)] = rem % s[d];
            rem /= s[d];
          }
          for (int d = 0; d < in.rank(); ++d) {
            const int64_t cd = coord[size_t(s.rank() - in.rank() + d)];
            idx = idx * in[d] + (in[d] == 1 ? 0 : cd);
          }
          return idx;
        };
        for (int64_t i = 0; i < s.numel(); ++i) {
          const double x = av[size_t(index_in(c.a, i))], y = bv[size_t(index_in(c.b, i))];
          ref[size_t(i)] = kind == op::BinaryKind::add ? x + y : kind == op::BinaryKind::sub ? x - y : x * y;
          b32[size_t(i)] = kU32 * std::abs(ref[size_t(i)]);  // exact inputs, one rounding
        }
        const std::vector<double> tol = lowp_ref_and_bound(ref, b32, dtype);
        expect_within(out, ref, tol,
                      std::string(op_name(op::Binary{kind, &a, &b, &out})) + " " + dname(dtype) + " " + c.a.str() +
                          " with " + c.b.str());
      }
}

TEST(BinaryOps, WrappersAndInPlaceAdd) {
  auto be = make_cpu_backend({.threads = 2});
  const Tensor a = random_nonzero({4, 13}, 3), b = random_nonzero({13}, 4);
  const Tensor sum = ops::add(*be, a, b), diff = ops::sub(*be, a, b), prod = ops::mul(*be, a, b);
  Tensor acc = a.clone();
  be->run(op::Binary{op::BinaryKind::add, &acc, &b, &acc});  // residual-style in-place add
  expect_identical(acc, sum, "in-place add");
  const std::vector<float> av = a.to_floats(), bv = b.to_floats(), s = sum.to_floats(), d = diff.to_floats(),
                           p = prod.to_floats();
  for (size_t i = 0; i < av.size(); ++i) {
    // A single f32 operation is correctly rounded: exact equality with the f32 result.
    EXPECT_EQ(s[i], av[i] + bv[i % 13]);
    EXPECT_EQ(d[i], av[i] - bv[i % 13]);
    EXPECT_EQ(p[i], av[i] * bv[i % 13]);
  }
}

// ---------------------------------------------------------------- mul_add, modulate, affine

TEST(FusedOps, MulAddModulateAffineMatchDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType dtype : kFloatTypes) {
    const Shape s{2, 7, 33};
    const Tensor a = random_nonzero(s, 5, dtype), b = random_nonzero({7, 33}, 6, dtype),
                 c = random_nonzero({2, 1, 33}, 7, DType::f32);
    const Tensor ma = ops::mul_add(*be, a, b, c);
    const Tensor scale = random_nonzero({2, 1, 33}, 8, DType::f32), shift = random_nonzero({1, 1, 33}, 9, DType::f32);
    const Tensor mo = ops::modulate(*be, a, scale, shift);
    const float alpha = 1.7f, beta = -0.3f;
    const Tensor af = ops::affine(*be, a, alpha, beta);

    const std::vector<double> av = to_doubles(a), bv = to_doubles(b), cv = to_doubles(c), sc = to_doubles(scale),
                              sh = to_doubles(shift);
    const size_t n = av.size();
    std::vector<double> r1(n), t1(n), r2(n), t2(n), r3(n), t3(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t bi = i % (7 * 33), ci = (i / (7 * 33)) * 33 + i % 33, si = i % 33;
      r1[i] = av[i] + bv[bi] * cv[ci];
      t1[i] = 2 * kU32 * (std::abs(av[i]) + std::abs(bv[bi] * cv[ci]));  // product + sum roundings
      r2[i] = av[i] * (1 + sc[ci]) + sh[si];
      t2[i] = 3 * kU32 * (std::abs(av[i] * (1 + sc[ci])) + std::abs(sh[si]));  // 1+s, product, sum
      r3[i] = double(alpha) * av[i] + double(beta);
      t3[i] = 2 * kU32 * (std::abs(double(alpha) * av[i]) + std::abs(double(beta)));
    }
    expect_within(ma, r1, lowp_ref_and_bound(r1, t1, dtype), std::string("mul_add ") + dname(dtype));
    expect_within(mo, r2, lowp_ref_and_bound(r2, t2, dtype), std::string("modulate ") + dname(dtype));
    expect_within(af, r3, lowp_ref_and_bound(r3, t3, dtype), std::string("affine ") + dname(dtype));
  }
}

// ---------------------------------------------------------------- rope

TEST(Rope, InterleavedPairsMatchDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  const int64_t B = 2, S = 7, H = 3, D = 18;
  // Tables as the DiT builds them: one angle per pair, cos/sin repeated for both members.
  std::vector<float> cs(size_t(S * D)), sn(size_t(S * D));
  for (int64_t s = 0; s < S; ++s)
    for (int64_t j = 0; j < D / 2; ++j) {
      const double theta = double(s) * std::pow(10000.0, -2.0 * double(j) / double(D)) + 0.1;
      cs[size_t(s * D + 2 * j)] = cs[size_t(s * D + 2 * j + 1)] = float(std::cos(theta));
      sn[size_t(s * D + 2 * j)] = sn[size_t(s * D + 2 * j + 1)] = float(std::sin(theta));
    }
  const Tensor cos = Tensor::from_floats({S, D}, cs), sin = Tensor::from_floats({S, D}, sn);
  for (DType dtype : kFloatTypes) {
    const Tensor x = random_nonzero({B, S, H, D}, 12, dtype);
    const Tensor out = ops::rope(*be, x, cos, sin);
    const std::vector<double> xv = to_doubles(x);
    std::vector<double> ref(xv.size()), b32(xv.size());
    for (int64_t t = 0; t < B * S * H; ++t) {
      const int64_t s = (t / H) % S;
      for (int64_t j = 0; j < D; j += 2) {
        const size_t i = size_t(t * D + j);
        const double a = xv[i], b = xv[i + 1];
        const double c0 = cs[size_t(s * D + j)], s0 = sn[size_t(s * D + j)];
        ref[i] = a * c0 - b * s0;
        ref[i + 1] = a * s0 + b * c0;
        b32[i] = 2 * kU32 * (std::abs(a * c0) + std::abs(b * s0));  // two products, one sum
        b32[i + 1] = 2 * kU32 * (std::abs(a * s0) + std::abs(b * c0));
      }
    }
    const std::vector<double> tol = lowp_ref_and_bound(ref, b32, dtype);
    expect_within(out, ref, tol, std::string("rope ") + dname(dtype));
    Tensor inplace = x.clone();
    be->run(op::Rope{&inplace, &cos, &sin, &inplace});
    expect_identical(inplace, out, "rope in place");
  }
}

// ---------------------------------------------------------------- fill and convert

TEST(FillConvert, ExactRounding) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : {DType::f32, DType::bf16, DType::f16}) {
    const Tensor f = ops::full(*be, {3, 333}, t, 0.37f);
    for (float v : f.to_floats()) ASSERT_EQ(v, round_to(t, 0.37f)) << dname(t);
  }
  const Tensor fi = ops::full(*be, {5}, DType::i32, 3.0f);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fi.data<int32_t>()[i], 3);

  // Conversions round to nearest even: compare with the dtype.hpp reference conversion.
  for (DType from : kFloatTypes)
    for (DType to : kFloatTypes) {
      const Tensor x = random_nonzero({7, 13, 33}, 21, from, 1e-3f, 70.0f);
      const Tensor y = ops::convert(*be, x, to);
      const std::vector<float> xv = x.to_floats(), yv = y.to_floats();
      size_t bad = 0;
      for (size_t i = 0; i < xv.size(); ++i) bad += yv[i] != round_to(to, xv[i]);
      EXPECT_EQ(bad, 0u) << dname(from) << " -> " << dname(to);
    }
  std::vector<float> big = {1e6f, -7e4f, 65504.0f, 65520.0f, 1e-8f, 3e-5f};
  const Tensor edge = Tensor::from_floats({6}, big);
  for (DType to : {DType::bf16, DType::f16}) {
    const std::vector<float> yv = ops::convert(*be, edge, to).to_floats();
    for (size_t i = 0; i < big.size(); ++i) EXPECT_EQ(yv[i], round_to(to, big[i])) << dname(to) << " " << big[i];
  }
}

// ---------------------------------------------------------------- thread invariance

TEST(ElementwiseThreads, OneAndTwoThreadsGiveIdenticalBits) {
  for (DType t : {DType::f32, DType::bf16}) {
    const Tensor x = random_nonzero({64, 1031}, 31, t, 0.01f, 4.0f);
    const Tensor g = random_nonzero({1031}, 32, t);
    const Tensor sc = random_nonzero({64, 1}, 33, DType::f32);
    expect_thread_invariant([&](Backend& be) { return ops::silu(be, x); }, "silu");
    expect_thread_invariant([&](Backend& be) { return ops::gelu_tanh(be, x); }, "gelu_tanh");
    expect_thread_invariant([&](Backend& be) { return ops::relu(be, x); }, "relu");
    expect_thread_invariant([&](Backend& be) { return ops::tanh(be, x); }, "tanh");
    expect_thread_invariant([&](Backend& be) { return ops::gelu_erf(be, x); }, "gelu_erf");
    expect_thread_invariant([&](Backend& be) { return ops::add(be, x, g); }, "add");
    expect_thread_invariant([&](Backend& be) { return ops::mul_add(be, x, g, sc); }, "mul_add");
    expect_thread_invariant([&](Backend& be) { return ops::modulate(be, x, sc, g); }, "modulate");
    expect_thread_invariant([&](Backend& be) { return ops::affine(be, x, 0.5f, 2.0f); }, "affine");
    expect_thread_invariant([&](Backend& be) { return ops::convert(be, x, DType::f16); }, "convert");
  }
}
