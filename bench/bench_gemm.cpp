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
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>

#include "common/ceiling.hpp"
#include "common/shapes.hpp"
#include "reel/ops.hpp"

namespace {

using namespace reel;

// CPU seconds used by the whole process so far (all threads): on a shared, oversubscribed
// machine flops per CPU-second is steadier than flops per wall second.
double process_cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + 1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

struct Config {
  const char* name;
  DType x, w, out;
};
const Config kConfigs[] = {{"bf16", DType::bf16, DType::bf16, DType::bf16},
                           {"f32", DType::f32, DType::f32, DType::f32},
                           {"f32_x_bf16w", DType::f32, DType::bf16, DType::f32}};

Tensor random(const Shape& s, uint64_t seed, DType t) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(0.05f, 1.0f);
  std::vector<float> v(size_t(s.numel()));
  for (auto& x : v) x = (rng() & 1) ? d(rng) : -d(rng);
  return Tensor::from_floats(s, v, t);
}

// Empty string when sampled outputs are within the bound, else a description of the miss.
std::string verify(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Config& c) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  const std::vector<float> xv = x.to_floats(), bv = b.to_floats(), ov = out.to_floats();
  const Tensor wf = w.to(DType::f32);
  const float* wp = wf.data<float>();
  const double u32 = 0x1p-24, gamma = double(k + 1) * u32 / (1 - double(k + 1) * u32);
  const double extra = (c.x == DType::f32 && c.w == DType::bf16) ? 0x1p-8 : 0.0;
  const double ut = c.out == DType::bf16 ? 0x1p-8 : c.out == DType::f16 ? 0x1p-11 : 0.0;
  std::mt19937_64 rng(99);
  for (int s = 0; s < 16; ++s) {
    const int64_t i = int64_t(rng() % uint64_t(m)), j = int64_t(rng() % uint64_t(n));
    double ref = bv[size_t(j)], abs_sum = std::abs(ref);
    for (int64_t q = 0; q < k; ++q) {
      const double p = double(xv[size_t(i * k + q)]) * wp[j * k + q];
      ref += p;
      abs_sum += std::abs(p);
    }
    const double bound = (gamma + extra) * abs_sum * (1 + ut) + ut * std::abs(ref);
    const double got = ov[size_t(i * n + j)];
    if (!(std::abs(got - ref) <= bound))
      return "out[" + std::to_string(i) + ", " + std::to_string(j) + "] = " + std::to_string(got) + ", reference " +
             std::to_string(ref) + ", bound " + std::to_string(bound);
  }
  return {};
}

void bench_linear(benchmark::State& state, int64_t m, int64_t k, int64_t n, Config c) {
  auto be = make_cpu_backend();
  const Tensor x = random({m, k}, 1, c.x), w = random({n, k}, 2, c.w), b = random({n}, 3, c.w);
  Tensor out = Tensor::empty({m, n}, c.out);
  const op::Linear op{&x, &w, &b, &out};
  be->run(op);  // builds and caches the primitive
  if (std::string err = verify(x, w, b, out, c); !err.empty()) {
    state.SkipWithError(("result check failed: " + err).c_str());
    return;
  }
  double total = 0;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    be->run(op);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    total += s;
  }
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const double rate = flops * double(state.iterations()) / total;
  state.counters["gflops"] = rate / 1e9;
  state.counters["of_ceiling"] = rate / (bench::bf16_gemm_ceiling_tflops() * 1e12);
  state.counters["gflops_per_cpu_s"] = flops * double(state.iterations()) / (process_cpu_seconds() - cpu0) / 1e9;
  state.counters["threads"] = num_threads();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const double ceiling = bench::bf16_gemm_ceiling_tflops();
  benchmark::AddCustomContext("bf16_gemm_ceiling_tflops", std::to_string(ceiling));
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
