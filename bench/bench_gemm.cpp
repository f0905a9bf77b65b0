// Linear (out = x·Wᵀ + b) through the CPU backend on the Wan DiT shapes of
// bench/shapes/gemm_wan.txt, in bf16, f32, and f32 activations with bf16 weights. Each case
// first checks sampled outputs against a double-precision dot product (bound: γ_{K+1}·Σ|x·w|,
// plus the bf16 roundings, as in tests/core/test_ops_matmul.cpp), then times.
// Counters: gflops (2·M·N·K per call / wall time), of_ceiling (fraction of the measured
// oneDNN bf16 GEMM rate, bench/common/ceiling.hpp) and gflops_per_cpu_s (per CPU-second of the
// process, all threads: steadier than wall time on a shared machine).
//
//   bench_gemm --benchmark_format=json
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/shapes.hpp"
#include "reel/ops.hpp"

namespace {

using namespace reel;

struct Config {
  const char* name;
  DType x, w, out;
};
const Config kConfigs[] = {{"bf16", DType::bf16, DType::bf16, DType::bf16},
                           {"f32", DType::f32, DType::f32, DType::f32},
                           {"f32_x_bf16w", DType::f32, DType::bf16, DType::f32}};

// Empty string when sampled outputs are within the bound, else a description of the miss.
std::string verify(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Config& c) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  const std::vector<float> xv = x.to_floats(), bv = b.to_floats(), ov = out.to_floats();
  const Tensor wf = w.to(DType::f32);
  const float* wp = wf.data<float>();
  const double extra = (c.x == DType::f32 && c.w == DType::bf16) ? 0x1p-8 : 0.0;
  const double ut = bench::output_rounding(c.out);
  std::mt19937_64 rng(99);
  for (int s = 0; s < 16; ++s) {
    const int64_t i = int64_t(rng() % uint64_t(m)), j = int64_t(rng() % uint64_t(n));
    double ref = bv[size_t(j)], abs_sum = std::abs(ref);
    for (int64_t q = 0; q < k; ++q) {
      const double p = double(xv[size_t(i * k + q)]) * wp[j * k + q];
      ref += p;
      abs_sum += std::abs(p);
    }
    const double bound = bench::dot_error_bound(k, abs_sum, ref, ut, extra);
    const double got = ov[size_t(i * n + j)];
    if (!(std::abs(got - ref) <= bound))
      return "out[" + std::to_string(i) + ", " + std::to_string(j) + "] = " + std::to_string(got) + ", reference " +
             std::to_string(ref) + ", bound " + std::to_string(bound);
  }
  return {};
}

void bench_linear(benchmark::State& state, int64_t m, int64_t k, int64_t n, Config c) {
  auto be = make_cpu_backend();
  const Tensor x = bench::random_signed_tensor({m, k}, 1, c.x), w = bench::random_signed_tensor({n, k}, 2, c.w),
               b = bench::random_signed_tensor({n}, 3, c.w);
  Tensor out = Tensor::empty({m, n}, c.out);
  const op::Linear op{&x, &w, &b, &out};
  be->run(op);  // builds and caches the primitive
  if (std::string err = verify(x, w, b, out, c); !err.empty()) {
    state.SkipWithError(("result check failed: " + err).c_str());
    return;
  }
  const bench::LoopTimes times = bench::time_iterations(state, [&] { be->run(op); });
  bench::set_gflops_counters(state, 2.0 * double(m) * double(n) * double(k), times);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::add_ceiling_context();
  for (const auto& row : bench::read_shapes("gemm_wan.txt", 3))
    for (const Config& c : kConfigs) {
      const std::string name = std::string("linear/") + c.name + "/M" + std::to_string(row[0]) + "_K" +
                               std::to_string(row[1]) + "_N" + std::to_string(row[2]);
      benchmark::RegisterBenchmark(name.c_str(), bench_linear, row[0], row[1], row[2], c)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
