// CUDA data-movement ops (concat, slice, pad, nearest upsampling, permute) against the CPU
// backend. They move elements without arithmetic, so the results must be bit-identical, for
// every element size (f32/i32: 4 bytes, bf16/f16: 2) and for views that start at odd
// addresses. Skips without a GPU.
#include "cuda/cuda_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

const DType kTypes[] = {DType::f32, DType::bf16, DType::i32};

// Random values of any dtype (i32: integers).
Tensor random_any(const Shape& shape, uint64_t seed, DType t) {
  if (t != DType::i32) return random_nonzero(shape, seed, t);
  Tensor x = Tensor::empty(shape, DType::i32);
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<int32_t>()[i] = int32_t(rng() % 2000001) - 1000000;
  return x;
}

}  // namespace

TEST(CudaConcat, AlongEveryAxis) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (DType t : kTypes)
    for (int axis : {0, 1, 2, -1}) {
      std::vector<Tensor> host, dev;
      for (int64_t extent : {3, 0, 5, 1}) {
        std::array<int64_t, 4> d{2, 3, 4, 5};
        d[size_t(axis < 0 ? axis + 4 : axis)] = extent;
        host.push_back(random_any(Shape(std::span<const int64_t>(d)), seed++, t));
        dev.push_back(on_gpu(host.back()));
      }
      std::vector<const Tensor*> hp, dp;
      for (size_t i = 0; i < host.size(); ++i) {
        hp.push_back(&host[i]);
        dp.push_back(&dev[i]);
      }
      const Tensor ref = ops::concat(cpu_backend(), hp, axis);
      const Tensor got = ops::concat(gpu(), dp, axis);
      expect_same_bits(got, ref, std::string("concat ") + dname(t) + " axis " + std::to_string(axis));
    }
}

TEST(CudaSlice, RangesOfEveryAxisAndOfViews) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 3100;
  for (DType t : kTypes) {
    const Tensor x = random_any({4, 5, 6, 7}, seed++, t);
    const Tensor gx = on_gpu(x);
    for (int axis = 0; axis < 4; ++axis)
      for (auto [b, e] : {std::pair<int64_t, int64_t>{1, 3}, {0, 1}, {2, 4}}) {
        const Tensor ref = ops::slice(cpu_backend(), x, axis, b, e);
        const Tensor got = ops::slice(gpu(), gx, axis, b, e);
        expect_same_bits(got, ref, std::string("slice ") + dname(t) + " axis " + std::to_string(axis));
      }
    // A view that starts one row in (odd address for 2-byte types), sliced along the last axis.
    const Tensor vx = x.slice(1, 4), gvx = gx.slice(1, 4);
    expect_same_bits(ops::slice(gpu(), gvx, -1, 1, 6), ops::slice(cpu_backend(), vx, -1, 1, 6),
                     std::string("slice of a view ") + dname(t));
  }
}

TEST(CudaPad, ConstantPaddingOfRanksOneToFive) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 3200;
  for (DType t : kTypes)
    for (const Shape& shape : {Shape{7}, Shape{3, 4}, Shape{2, 3, 4}, Shape{2, 1, 3, 5}, Shape{1, 2, 3, 4, 5}}) {
      const Tensor x = random_any(shape, seed++, t);
      std::vector<int64_t> before, after;
      for (int i = 0; i < shape.rank(); ++i) {
        before.push_back(i % 3);
        after.push_back((i + 1) % 2 + (i == shape.rank() - 1 ? 2 : 0));
      }
      const Tensor ref = ops::pad(cpu_backend(), x, before, after, 0.25f);
      const Tensor got = ops::pad(gpu(), on_gpu(x), before, after, 0.25f);
      expect_same_bits(got, ref, std::string("pad ") + dname(t) + " " + shape.str());
    }
  // The causal temporal padding of the VAE: two frames in front only.
  const Tensor x = random_nonzero({1, 4, 3, 5, 6}, 3299, DType::bf16);
  const std::vector<int64_t> before{0, 0, 2, 1, 1}, after{0, 0, 0, 1, 1};
  expect_same_bits(ops::pad(gpu(), on_gpu(x), before, after, 0.0f), ops::pad(cpu_backend(), x, before, after, 0.0f),
                   "causal pad");
}

TEST(CudaUpsampleNearest, IntegerFactors) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 3300;
  for (DType t : kTypes)
    for (auto [sh, sw] : {std::pair{2, 2}, {1, 3}, {3, 1}})
      for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{4, 9}, Shape{1, 2, 3, 4, 5}}) {
        const Tensor x = random_any(shape, seed++, t);
        const Tensor ref = ops::upsample_nearest(cpu_backend(), x, sh, sw);
        const Tensor got = ops::upsample_nearest(gpu(), on_gpu(x), sh, sw);
        expect_same_bits(got, ref, std::string("upsample ") + dname(t) + " " + shape.str() + " x" +
                                       std::to_string(sh) + "," + std::to_string(sw));
      }
}

TEST(CudaPermute, TransposesAndGeneralPermutations) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 3400;
  struct Case {
    Shape shape;
    std::vector<int> perm;
  };
  const Case cases[] = {
      {{33, 65}, {1, 0}},
      {{2, 3, 4, 5, 6}, {0, 2, 1, 4, 3}},
      {{2, 3, 4, 5, 6}, {4, 3, 2, 1, 0}},
      {{2, 1, 4, 1, 6}, {3, 4, 0, 1, 2}},
      {{5, 7, 2, 8}, {0, 2, 1, 3}},  // [B, S, H, D] -> [B, H, S, D]
      {{3}, {0}},
  };
  for (DType t : kTypes)
    for (const Case& c : cases) {
      const Tensor x = random_any(c.shape, seed++, t);
      const Tensor ref = ops::permute(cpu_backend(), x, c.perm);
      const Tensor got = ops::permute(gpu(), on_gpu(x), c.perm);
      expect_same_bits(got, ref, std::string("permute ") + dname(t) + " " + c.shape.str());
    }
}
