// Linear and BatchMatMul of the CPU backend against double-precision references, for every
// supported dtype combination and odd shapes.
//
// Error bound for one output s = Σ_k a_k·b_k (+ bias), A = Σ_k |a_k·b_k| (+ |bias|):
//  * f32 accumulation of exact products of exact inputs: |ŝ − s| <= γ_{K+1}·A (Higham's
//    worst-case bound for any summation order; the bias is one more term; alpha one more
//    rounding, hence γ_{K+2} for BatchMatMul).
//  * f32 activations with bf16 weights run on the bf16 units: the activations are rounded to
//    bf16 first, which moves each product by at most u_bf16·|a_k·b_k|: add u_bf16·A.
//  * a bf16/f16 output is rounded once more: compared with the reference rounded to that type,
//    |out − round(s)| <= 2·u_t·|s| + b32·(1 + u_t).
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/op_test_util.hpp"
#include "cpu/cpu_backend.hpp"

using namespace reel;
using namespace reel::test;

namespace {

struct LinearCase {
  DType x, w, out;
  bool bias;
  DType bias_type;
};

std::string describe(const LinearCase& c) {
  return std::string("x ") + dname(c.x) + ", w " + dname(c.w) + ", out " + dname(c.out) +
         (c.bias ? std::string(", bias ") + dname(c.bias_type) : ", no bias");
}

void check_linear(Backend& be, bool native, const LinearCase& c, const Shape& xs, int64_t n, uint64_t seed) {
  const int64_t k = xs[-1];
  const Tensor x = random_nonzero(xs, seed, c.x);
  const Tensor w = random_nonzero({n, k}, seed + 1, c.w);
  const Tensor b = random_nonzero({n}, seed + 2, c.bias_type);
  const Tensor out = ops::linear(be, x, w, c.bias ? &b : nullptr, c.out);
  ASSERT_EQ(out.dtype(), c.out);
  const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), bv = to_doubles(b);
  const int64_t m = x.numel() / k;
  std::vector<double> ref(size_t(m * n)), tol(ref.size());
  // Only the native bf16 path rounds f32 activations to bf16.
  const double extra = (native && c.x == DType::f32 && c.w == DType::bf16) ? kUBf16 : 0.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = c.bias ? bv[size_t(j)] : 0.0, a = c.bias ? std::abs(bv[size_t(j)]) : 0.0;
      for (int64_t q = 0; q < k; ++q) {
        const double p = xv[size_t(i * k + q)] * wv[size_t(j * k + q)];
        s += p;
        a += std::abs(p);
      }
      const size_t o = size_t(i * n + j);
      ref[o] = s;
      double b32 = gamma_f32(k + 1) * a + extra * a;
      if (c.out != DType::f32) {
        const double ut = unit_roundoff(c.out);
        b32 = 2 * ut * std::abs(s) + b32 * (1 + ut);
        ref[o] = round_to(c.out, float(s));
      }
      tol[o] = b32;
    }
  expect_within(out, ref, tol,
                std::string(native ? "native " : "f32 compute ") + "linear " + describe(c) + " x " + xs.str() + " N " +
                    std::to_string(n));
}

// Both ways of running bf16/f16 GEMMs: oneDNN's bf16 kernels, and exact widening to f32.
std::unique_ptr<Backend> backend(bool native) {
  return cpu::make_cpu_backend({.threads = 2},
                               native ? cpu::LowPrecisionCompute::native : cpu::LowPrecisionCompute::f32);
}

}  // namespace

TEST(Linear, AllDtypeCombinationsMatchDoubleReference) {
  for (bool native : {true, false}) {
    auto be = backend(native);
    const LinearCase cases[] = {
        {DType::f32, DType::f32, DType::f32, true, DType::f32},
        {DType::f32, DType::f32, DType::f32, false, DType::f32},
        {DType::bf16, DType::bf16, DType::bf16, true, DType::bf16},
        {DType::bf16, DType::bf16, DType::f32, true, DType::f32},
        {DType::bf16, DType::bf16, DType::bf16, false, DType::f32},
        {DType::f32, DType::bf16, DType::f32, true, DType::bf16},
        {DType::f32, DType::bf16, DType::f32, false, DType::f32},
        {DType::f16, DType::f16, DType::f16, true, DType::f16},
        {DType::f16, DType::f16, DType::f32, false, DType::f32},
        {DType::f32, DType::f16, DType::f32, true, DType::f32},
        {DType::bf16, DType::f32, DType::bf16, true, DType::f32},
        {DType::f16, DType::bf16, DType::f16, true, DType::bf16},
    };
    uint64_t seed = 100;
    for (const LinearCase& c : cases) {
      check_linear(*be, native, c, {7, 33}, 13, seed += 10);
      check_linear(*be, native, c, {2, 5, 13}, 7, seed += 10);
      check_linear(*be, native, c, {3, 1}, 5, seed += 10);
      check_linear(*be, native, c, {65, 257}, 96, seed += 10);
    }
  }
}

TEST(Linear, CachedPrimitiveGivesSameResult) {
  auto be = make_cpu_backend({.threads = 2});
  const Tensor x = random_nonzero({33, 64}, 1, DType::bf16), w = random_nonzero({48, 64}, 2, DType::bf16);
  const Tensor first = ops::linear(*be, x, w);
  const Tensor second = ops::linear(*be, x, w);
  expect_identical(first, second, "second call (cached primitive)");
}

TEST(BatchMatMul, MatchesDoubleReference) {
  const int64_t B = 3, M = 7, K = 33, N = 13;
  for (bool native : {true, false}) {
    auto be = backend(native);
    for (DType t : {DType::f32, DType::bf16, DType::f16})
      for (bool trans : {false, true})
        for (DType out_type : {t, DType::f32}) {
          const float alpha = trans ? 0.37f : 1.0f;
          const Tensor a = random_nonzero({B, M, K}, 50, t);
          const Tensor b = trans ? random_nonzero({B, N, K}, 51, t) : random_nonzero({B, K, N}, 51, t);
          Tensor out = Tensor::empty({B, M, N}, out_type);
          be->run(op::BatchMatMul{&a, &b, &out, trans, alpha});
          const std::vector<double> av = to_doubles(a), bv = to_doubles(b);
          std::vector<double> ref(size_t(B * M * N)), tol(ref.size());
          for (int64_t z = 0; z < B; ++z)
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < N; ++j) {
                double s = 0, abs_sum = 0;
                for (int64_t q = 0; q < K; ++q) {
                  const double bq = trans ? bv[size_t((z * N + j) * K + q)] : bv[size_t((z * K + q) * N + j)];
                  const double p = av[size_t((z * M + i) * K + q)] * bq;
                  s += p;
                  abs_sum += std::abs(p);
                }
                s *= alpha;
                abs_sum *= alpha;
                const size_t o = size_t((z * M + i) * N + j);
                double b32 = gamma_f32(K + 2) * abs_sum;
                ref[o] = s;
                if (out_type != DType::f32) {
                  const double ut = unit_roundoff(out_type);
                  b32 = 2 * ut * std::abs(s) + b32 * (1 + ut);
                  ref[o] = round_to(out_type, float(s));
                }
                tol[o] = b32;
              }
          expect_within(out, ref, tol,
                        std::string(native ? "native " : "f32 compute ") + "batch_matmul " + dname(t) +
                            (trans ? " transposed" : "") + " out " + dname(out_type));
        }
  }
  auto be = make_cpu_backend({.threads = 2});
  // The wrapper returns a's dtype.
  const Tensor a = random_nonzero({2, 3, 4}, 1, DType::bf16), b = random_nonzero({2, 4, 5}, 2, DType::bf16);
  EXPECT_EQ(ops::batch_matmul(*be, a, b).dtype(), DType::bf16);
  EXPECT_EQ(ops::batch_matmul(*be, a, b).shape(), Shape({2, 3, 5}));
}

TEST(Linear, FewRowsKernelIsThreadInvariant) {
  // Few rows with bf16 weights in f32-compute mode take the skinny kernel (cpu_skinny_gemm.cpp),
  // which splits only output columns over threads: identical bits for any thread count.
  const Tensor x = random_nonzero({5, 3, 129}, 70, DType::f32), w = random_nonzero({301, 129}, 71, DType::bf16);
  const Tensor b = random_nonzero({301}, 72, DType::bf16);
  auto one = cpu::make_cpu_backend({.threads = 1}, cpu::LowPrecisionCompute::f32);
  auto two = cpu::make_cpu_backend({.threads = 2}, cpu::LowPrecisionCompute::f32);
  expect_identical(ops::linear(*one, x, w, &b), ops::linear(*two, x, w, &b), "skinny linear 1 vs 2 threads");
}

TEST(CpuBackend, OneBackendSharedByThreadsGivesTheSameResults) {
  // A model (and its backend) may be used by several threads at once: oneDNN primitives built
  // in one thread and run from others must not share scratch memory.
  auto be = make_cpu_backend({.threads = 1});
  const Tensor x = random_nonzero({96, 256}, 80, DType::f32), w = random_nonzero({192, 256}, 81, DType::f32);
  const Tensor v = random_nonzero({1, 16, 3, 12, 12}, 82, DType::f32), k = random_nonzero({16, 16, 3, 3, 3}, 83, DType::f32);
  const Tensor want_l = ops::linear(*be, x, w);
  const Tensor want_c = ops::conv3d(*be, v, k, nullptr, {1, 1, 1}, {1, 1, 1});
  std::atomic<int> mismatches{0};
  auto work = [&] {
    for (int i = 0; i < 40; ++i) {
      const Tensor l = ops::linear(*be, x, w);
      const Tensor c = ops::conv3d(*be, v, k, nullptr, {1, 1, 1}, {1, 1, 1});
      if (std::memcmp(l.raw(), want_l.raw(), l.nbytes()) != 0) ++mismatches;
      if (std::memcmp(c.raw(), want_c.raw(), c.nbytes()) != 0) ++mismatches;
    }
  };
  std::thread t1(work), t2(work), t3(work);
  t1.join();
  t2.join();
  t3.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// K = 0 is an empty sum: every output row is exactly the bias (zeros without one).
TEST(Linear, EmptySumIsTheBias) {
  auto be = make_cpu_backend({.threads = 2});
  const Tensor x = Tensor::empty({3, 5, 0}, DType::f32);
  const Tensor w = Tensor::empty({7, 0}, DType::bf16);
  const Tensor bias = random_tensor({7}, 41);
  for (const Tensor* b : {&bias, static_cast<const Tensor*>(nullptr)}) {
    const Tensor y = ops::linear(*be, x, w, b);
    ASSERT_EQ(y.shape(), Shape({3, 5, 7}));
    const float* py = y.data<float>();
    for (int64_t r = 0; r < 15; ++r)
      for (int64_t j = 0; j < 7; ++j)
        ASSERT_EQ(py[r * 7 + j], b ? bias.data<float>()[j] : 0.0f) << "row " << r << " col " << j;
  }
}
