// Variants: seconds per clip when N seeds run through Pipeline::generate_variants (their
// transformer calls batched, 2N items with CFG), for N = 1, 2, 4, on the trained demo model
// (models/reel-wan-demo, its default 256×160, 33 frames) with 8 denoising steps, f32, the
// CPU. N = 1 is the reference of the same run: the speed-up is s_per_variant(1) /
// s_per_variant(N). The time includes text encoding (once per call) and the decode of every
// variant, as a user sees it.
//
// Before timing, the bench checks that each variant of the N = 2 call equals generate() with
// its seed (relative L2 of the latents <= 1e-5).
//
//   bench_variants --benchmark_format=json
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/demo_model.hpp"
#include "reel/pipeline.hpp"

namespace {

using namespace reel;

const Pipeline& demo() { return bench::demo_pipeline(); }

GenerateRequest request() {
  GenerateRequest r;
  r.prompt = "a red ball rolls left across a blue floor";
  r.steps = 8;
  return r;
}

std::vector<uint64_t> seeds(int n) {
  std::vector<uint64_t> s;
  for (int i = 0; i < n; ++i) s.push_back(uint64_t(100 + i));
  return s;
}

double relative_l2(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_floats(), y = b.to_floats();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) num += double(x[i] - y[i]) * (x[i] - y[i]), den += double(y[i]) * y[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

bool checked() {
  static const bool ok = [] {
    GenerateRequest r = request();
    const std::vector<uint64_t> s = seeds(2);
    const std::vector<GenerateResult> together = demo().generate_variants(r, s);
    for (size_t i = 0; i < s.size(); ++i) {
      r.seed = s[i];
      const double e = relative_l2(together[i].latents, demo().generate(r).latents);
      std::fprintf(stderr, "check: variant %zu vs generate(): relative L2 %.3g\n", i, e);
      if (!(e <= 1e-5)) return false;
    }
    return true;
  }();
  return ok;
}

void BM_Variants(benchmark::State& state) {
  if (!checked()) {
    state.SkipWithError("variants differ from generate()");
    return;
  }
  const int n = int(state.range(0));
  const GenerateRequest r = request();
  const std::vector<uint64_t> s = seeds(n);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<GenerateResult> out = demo().generate_variants(r, s);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["s_per_variant"] = seconds / double(state.iterations()) / n;
  state.counters["variants"] = n;
}
BENCHMARK(BM_Variants)->Name("variants/demo/256x160x33/steps:8")->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
