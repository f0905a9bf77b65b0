// Data-movement ops of the CPU backend (concat, slice, pad, upsample_nearest, permute)
// against naive index arithmetic. They move values without arithmetic, so results must be
// exactly equal, for every element size (f32/i32 4 bytes, bf16/f16 2 bytes).
#include <numeric>

#include "core/op_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

std::vector<int64_t> coords(const Shape& s, int64_t flat) {
  std::vector<int64_t> c(size_t(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    c[size_t(d)] = flat % s[d];
    flat /= s[d];
  }
  return c;
}
int64_t flat_of(const Shape& s, const std::vector<int64_t>& c) {
  int64_t f = 0;
  for (int d = 0; d < s.rank(); ++d) f = f * s[d] + c[size_t(d)];
  return f;
}

// Distinct values (the element index, rounded to the type): wrong moves show up.
Tensor iota(const Shape& s, DType t) {
  std::vector<float> v(size_t(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 251) + 0.5f;  // exact in bf16/f16, never zero
  if (t == DType::i32) {
    Tensor out = Tensor::empty(s, t);
    for (size_t i = 0; i < v.size(); ++i) out.data<int32_t>()[i] = int32_t(i) + 1;
    return out;
  }
  return Tensor::from_floats(s, v, t);
}

std::vector<double> values(const Tensor& t) {
  if (t.dtype() != DType::i32) return to_doubles(t);
  std::vector<double> v(size_t(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.data<int32_t>()[i];
  return v;
}

void expect_equal(const Tensor& out, const std::vector<double>& ref, const std::string& what) {
  const std::vector<double> got = values(out);
  ASSERT_EQ(got.size(), ref.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) bad += got[i] != ref[i];
  EXPECT_EQ(bad, 0u) << what;
}

const DType kAllTypes[] = {DType::f32, DType::bf16, DType::f16, DType::i32};

}  // namespace

TEST(Concat, AnyAxisMatchesIndexReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kAllTypes)
    for (int axis : {0, 1, 2, -1}) {
      const int a = axis < 0 ? axis + 3 : axis;
      std::vector<Tensor> parts;
      std::vector<const Tensor*> ptrs;
      for (int64_t len : {3, 1, 5}) {
        std::array<int64_t, 3> d{2, 7, 13};
        d[size_t(a)] = len;
        parts.push_back(iota(Shape{d[0], d[1], d[2]}, t));
      }
      for (auto& p : parts) ptrs.push_back(&p);
      const Tensor out = ops::concat(*be, ptrs, axis);
      std::vector<double> ref(size_t(out.numel()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        std::vector<int64_t> c = coords(out.shape(), i);
        size_t which = 0;
        while (c[size_t(a)] >= parts[which].dim(a)) c[size_t(a)] -= parts[which++].dim(a);
        ref[size_t(i)] = values(parts[which])[size_t(flat_of(parts[which].shape(), c))];
      }
      expect_equal(out, ref, std::string("concat ") + dname(t) + " axis " + std::to_string(axis));
    }
}

TEST(Slice, AnyAxisMatchesIndexReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kAllTypes)
    for (int axis : {0, 1, 2, 3}) {
      const Tensor x = iota({3, 5, 7, 9}, t);
      const int64_t begin = 1, end = x.dim(axis) - 1;
      const Tensor out = ops::slice(*be, x, axis, begin, end);
      const std::vector<double> xv = values(x);
      std::vector<double> ref(size_t(out.numel()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        std::vector<int64_t> c = coords(out.shape(), i);
        c[size_t(axis)] += begin;
        ref[size_t(i)] = xv[size_t(flat_of(x.shape(), c))];
      }
      expect_equal(out, ref, std::string("slice ") + dname(t) + " axis " + std::to_string(axis));
    }
}

TEST(Pad, ConstantPaddingMatchesIndexReference) {
  auto be = make_cpu_backend({.threads = 2});
  struct Case {
    Shape x;
    std::vector<int64_t> before, after;
  };
  const Case cases[] = {{{2, 3, 5}, {1, 0, 2}, {0, 2, 1}},
                        {{1, 4, 3, 6, 5}, {0, 0, 2, 1, 1}, {0, 0, 0, 1, 1}},  // VAE causal time + spatial
                        {{7}, {3}, {4}}};
  for (DType t : kAllTypes)
    for (const Case& c : cases) {
      const Tensor x = iota(c.x, t);
      const float value = t == DType::i32 ? -3.0f : -1.5f;
      const Tensor out = ops::pad(*be, x, c.before, c.after, value);
      const std::vector<double> xv = values(x);
      std::vector<double> ref(size_t(out.numel()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        std::vector<int64_t> co = coords(out.shape(), i);
        bool inside = true;
        for (int d = 0; d < x.rank(); ++d) {
          co[size_t(d)] -= c.before[size_t(d)];
          inside = inside && co[size_t(d)] >= 0 && co[size_t(d)] < x.dim(d);
        }
        ref[size_t(i)] = inside ? xv[size_t(flat_of(x.shape(), co))] : double(value);
      }
      expect_equal(out, ref, std::string("pad ") + dname(t) + " " + c.x.str());
    }
}

TEST(UpsampleNearest, IntegerFactorsMatchIndexReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kAllTypes)
    for (auto [shape, sh, sw] : {std::tuple{Shape{2, 3, 5, 7}, 2, 2}, std::tuple{Shape{1, 4, 3}, 1, 3},
                                 std::tuple{Shape{1, 2, 2, 9, 11}, 3, 2}}) {
      const Tensor x = iota(shape, t);
      const Tensor out = ops::upsample_nearest(*be, x, sh, sw);
      const std::vector<double> xv = values(x);
      std::vector<double> ref(size_t(out.numel()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        std::vector<int64_t> c = coords(out.shape(), i);
        c[size_t(shape.rank() - 2)] /= sh;  // nearest-exact for integer factors: floor(dst / scale)
        c[size_t(shape.rank() - 1)] /= sw;
        ref[size_t(i)] = xv[size_t(flat_of(shape, c))];
      }
      expect_equal(out, ref, std::string("upsample ") + dname(t) + " " + shape.str());
    }
}

TEST(Permute, AnyPermutationMatchesIndexReference) {
  auto be = make_cpu_backend({.threads = 2});
  struct Case {
    Shape x;
    std::vector<int> perm;
  };
  const Case cases[] = {
      {{2, 3, 4, 5}, {0, 2, 1, 3}},           // heads <-> sequence: rows stay contiguous
      {{2, 3, 4, 5}, {0, 3, 1, 2}},           // channels last -> first: a transpose
      {{3, 70, 45}, {0, 2, 1}},               // several 32×32 tiles with ragged edges
      {{2, 3, 4, 5, 6}, {0, 2, 4, 1, 3}},     // patchify-like 5-D shuffle
      {{1, 7, 1, 13}, {3, 2, 1, 0}},          // size-1 dims
      {{4, 6}, {0, 1}},                       // identity
  };
  for (DType t : kAllTypes)
    for (const Case& c : cases) {
      const Tensor x = iota(c.x, t);
      const Tensor out = ops::permute(*be, x, c.perm);
      const std::vector<double> xv = values(x);
      std::vector<double> ref(size_t(out.numel()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        const std::vector<int64_t> co = coords(out.shape(), i);
        std::vector<int64_t> ci(co.size());
        for (size_t d = 0; d < co.size(); ++d) ci[size_t(c.perm[d])] = co[d];
        ref[size_t(i)] = xv[size_t(flat_of(x.shape(), ci))];
      }
      expect_equal(out, ref, std::string("permute ") + dname(t) + " " + c.x.str());
    }
}

TEST(Layout, OneAndTwoThreadsGiveIdenticalBits) {
  const Tensor x = iota({4, 33, 70, 45}, DType::bf16);
  const std::vector<int> perm{0, 3, 1, 2};
  const std::vector<int64_t> before{0, 1, 2, 0}, after{1, 0, 0, 3};
  expect_thread_invariant([&](Backend& be) { return ops::permute(be, x, perm); }, "permute");
  expect_thread_invariant([&](Backend& be) { return ops::pad(be, x, before, after, 0.25f); }, "pad");
  expect_thread_invariant([&](Backend& be) { return ops::upsample_nearest(be, x, 2, 2); }, "upsample");
  expect_thread_invariant([&](Backend& be) { return ops::concat(be, {&x, &x}, 2); }, "concat");
}
