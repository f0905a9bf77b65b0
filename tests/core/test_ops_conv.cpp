// Conv3d (NCDHW) and Conv2d (NCHW) of the CPU backend against a naive double-precision
// convolution, with padding, strides, bias, odd sizes and every dtype combination.
//
// Bound per output (the same reasoning as test_ops_matmul.cpp): the output is a dot product of
// K = Cin·kd·kh·kw exact products plus the bias, so with A = Σ|x·w| + |bias|:
// f32 accumulation |ŝ − s| <= γ_{K+1}·A; f32 activations with bf16 weights add u_bf16·A (the
// activations are rounded to bf16); a bf16/f16 output compared with the reference rounded to
// its type adds 2·u_t·|s|.
#include <cmath>

#include "core/op_test_util.hpp"
#include "cpu/cpu_backend.hpp"

using namespace reel;
using namespace reel::test;

namespace {

struct ConvCase {
  Shape x, w;
  std::array<int, 3> stride, padding;  // spatial; a 2-D case uses the last two entries
};

struct Types {
  DType x, w, out;
};

// Naive convolution over spatial dims (1-D depth for 2-D convs is a size-1 dimension).
void check_conv(Backend& be, bool native, const ConvCase& c, const Types& t, bool three_d, uint64_t seed) {
  const Tensor x = random_nonzero(c.x, seed, t.x);
  const Tensor w = random_nonzero(c.w, seed + 1, t.w);
  const Tensor b = random_nonzero({c.w[0]}, seed + 2, DType::f32);
  const int r = three_d ? 3 : 2;
  // Normalise to 3 spatial dims: 2-D is depth 1.
  const int64_t n = c.x[0], ci = c.x[1], co = c.w[0];
  const int64_t id = three_d ? c.x[2] : 1, ih = c.x[r], iw = c.x[r + 1];
  const int64_t kd = three_d ? c.w[2] : 1, kh = c.w[r], kw = c.w[r + 1];
  const int sd = three_d ? c.stride[0] : 1, sh = c.stride[1], sw = c.stride[2];
  const int pd = three_d ? c.padding[0] : 0, ph = c.padding[1], pw = c.padding[2];
  const int64_t od = (id + 2 * pd - kd) / sd + 1, oh = (ih + 2 * ph - kh) / sh + 1, ow = (iw + 2 * pw - kw) / sw + 1;

  Tensor out;
  if (three_d) {
    out = Tensor::empty({n, co, od, oh, ow}, t.out);
    be.run(op::Conv3d{&x, &w, &b, &out, c.stride, c.padding});
  } else {
    out = Tensor::empty({n, co, oh, ow}, t.out);
    be.run(op::Conv2d{&x, &w, &b, &out, {c.stride[1], c.stride[2]}, {c.padding[1], c.padding[2]}});
  }
  const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), bv = to_doubles(b);
  const double extra = (native && t.x == DType::f32 && t.w == DType::bf16) ? kUBf16 : 0.0;  // bf16 activations
  const int64_t k_terms = ci * kd * kh * kw;
  std::vector<double> ref(size_t(out.numel())), tol(ref.size());
  size_t o = 0;
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t oc = 0; oc < co; ++oc)
      for (int64_t z = 0; z < od; ++z)
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t xx = 0; xx < ow; ++xx, ++o) {
            double s = bv[size_t(oc)], a = std::abs(bv[size_t(oc)]);
            for (int64_t c0 = 0; c0 < ci; ++c0)
              for (int64_t dz = 0; dz < kd; ++dz)
                for (int64_t dy = 0; dy < kh; ++dy)
                  for (int64_t dx = 0; dx < kw; ++dx) {
                    const int64_t zi = z * sd - pd + dz, yi = y * sh - ph + dy, xi = xx * sw - pw + dx;
                    if (zi < 0 || zi >= id || yi < 0 || yi >= ih || xi < 0 || xi >= iw) continue;  // zero pad
                    const double p = xv[size_t((((b0 * ci + c0) * id + zi) * ih + yi) * iw + xi)] *
                                     wv[size_t((((oc * ci + c0) * kd + dz) * kh + dy) * kw + dx)];
                    s += p;
                    a += std::abs(p);
                  }
            double b32 = gamma_f32(k_terms + 1) * a + extra * a;
            ref[o] = s;
            if (t.out != DType::f32) {
              const double ut = unit_roundoff(t.out);
              b32 = 2 * ut * std::abs(s) + b32 * (1 + ut);
              ref[o] = round_to(t.out, float(s));
            }
            tol[o] = b32;
          }
  expect_within(out, ref, tol,
                std::string(native ? "native " : "f32 compute ") + (three_d ? "conv3d " : "conv2d ") + c.x.str() +
                    " * " + c.w.str() + " x " + dname(t.x) + " w " + dname(t.w) + " out " + dname(t.out));
}

const Types kTypes[] = {
    {DType::f32, DType::f32, DType::f32},   {DType::bf16, DType::bf16, DType::bf16},
    {DType::bf16, DType::bf16, DType::f32}, {DType::f32, DType::bf16, DType::f32},
    {DType::f16, DType::f16, DType::f16},   {DType::bf16, DType::f32, DType::bf16},
};

std::unique_ptr<Backend> backend(bool native) {
  return cpu::make_cpu_backend({.threads = 2},
                               native ? cpu::LowPrecisionCompute::native : cpu::LowPrecisionCompute::f32);
}

}  // namespace

TEST(Conv3d, MatchesNaiveReference) {
  const ConvCase cases[] = {
      {{1, 5, 4, 7, 6}, {7, 5, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}},    // VAE-style 3×3×3, same padding
      {{2, 3, 3, 9, 11}, {13, 3, 3, 3, 3}, {1, 2, 1}, {0, 1, 2}},  // strides, uneven padding per dim
      {{1, 6, 2, 8, 10}, {7, 6, 1, 2, 2}, {1, 2, 2}, {0, 0, 0}},   // DiT patch embedding k = s = (1, 2, 2)
      {{1, 4, 5, 5, 5}, {3, 4, 1, 1, 1}, {1, 1, 1}, {0, 0, 0}},    // 1×1×1 (VAE shortcut)
  };
  uint64_t seed = 300;
  for (bool native : {true, false}) {
    auto be = backend(native);
    for (const Types& t : kTypes)
      for (const ConvCase& c : cases) check_conv(*be, native, c, t, true, seed += 5);
  }
}

TEST(Conv2d, MatchesNaiveReference) {
  const ConvCase cases[] = {
      {{2, 3, 9, 11}, {4, 3, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      {{1, 7, 13, 6}, {5, 7, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {{1, 4, 8, 8}, {6, 4, 1, 1}, {1, 1, 1}, {0, 0, 0}},
  };
  uint64_t seed = 500;
  for (bool native : {true, false}) {
    auto be = backend(native);
    for (const Types& t : kTypes)
      for (const ConvCase& c : cases) check_conv(*be, native, c, t, false, seed += 5);
  }
  auto be = make_cpu_backend({.threads = 2});
  // Wrapper: output shape and dtype.
  const Tensor x = random_nonzero({1, 3, 9, 11}, 1), w = random_nonzero({4, 3, 3, 3}, 2);
  const Tensor y = ops::conv2d(*be, x, w, nullptr, {2, 2}, {1, 1});
  EXPECT_EQ(y.shape(), Shape({1, 4, 5, 6}));
}
