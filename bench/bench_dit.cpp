// One Wan DiT forward pass with the Wan2.1-T2V-1.3B shapes (D 1536, 12 heads × 128, 30 layers,
// ffn 8960) at 256×256×17 frames (latents [1, 16, 5, 32, 32] → 1 280 tokens, 512 text
// tokens) on the CPU, bf16, random weights made in memory (speed does not depend on values).
//
// Before timing it checks the result: a 2-layer model with the same shapes runs in bf16 and in
// f32 (the f32 path is the one tests/dit checks against diffusers to 1e-4) and the two must
// agree to within bf16 accuracy (bound below). That run also builds and caches the oneDNN
// primitives, so the timed pass measures steady-state work.
// Counters: tokens_per_s, tflops (analytic FLOPs / wall time), of_ceiling (that rate / the
// measured oneDNN bf16 GEMM rate, bench/common/ceiling.hpp), peak_mb (VmHWM), flops,
// process_cpu_s (CPU seconds of all threads per forward, for runs on a shared machine).
//
//   bench_dit --benchmark_format=json
//   REEL_BENCH_DIT_LAYERS=4 bench_dit     (fewer layers, e.g. for profiling; default 30)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/wan_shapes.hpp"

namespace {

using namespace reel;

Tensor random(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(size_t(s.numel()));
  for (auto& x : v) x = d(rng);
  return Tensor::from_floats(s, v, DType::bf16);
}

void bench_dit_forward(benchmark::State& state) {
  const int64_t frames = 5, height = 32, width = 32, text_len = 512;
  auto be = make_cpu_backend();
  const Tensor latents = random({1, 16, frames, height, width}, 1);
  const Tensor text = random({1, text_len, 4096}, 2);
  const std::vector<float> t{937.0f};

  // Check: 2 layers, bf16 against f32. diffusers' own bf16 run differs from its f32 run by
  // ~5e-3 (relative L2) after 2 blocks (tests/fixtures/dit); we allow 4× that, 2e-2, for the
  // 10× wider model. A broken kernel or layout gives O(1).
  {
    const WanConfig two_layers = bench::wan_t2v_1_3b(2);
    const Tensor ref =
        bench::random_wan_transformer(two_layers, WanPrecision::f32, /*seed=*/7).forward(*be, latents, t, text);
    const Tensor got =
        bench::random_wan_transformer(two_layers, WanPrecision::bf16, /*seed=*/7).forward(*be, latents, t, text);
    const double err = bench::relative_l2(got.to_floats(), ref.to_floats());
    state.counters["check_rel_l2"] = err;
    if (!(err <= 2e-2)) {
      state.SkipWithError(("2-layer bf16 vs f32 check failed: relative L2 " + std::to_string(err)).c_str());
      return;
    }
  }

  const char* layers_env = std::getenv("REEL_BENCH_DIT_LAYERS");
  const WanConfig cfg = bench::wan_t2v_1_3b(layers_env ? std::max(1, std::atoi(layers_env)) : 30);
  const WanTransformer dit = bench::random_wan_transformer(cfg, WanPrecision::bf16, /*seed=*/7);
  const int64_t tokens = frames * (height / 2) * (width / 2);
  const double flops = bench::wan_forward_flops(cfg, 1, tokens, text_len);
  const bench::LoopTimes times = bench::time_iterations(state, [&] { return dit.forward(*be, latents, t, text); });
  const double n = double(state.iterations()), total = times.wall_s;
  // On a machine shared with other jobs, wall time overstates the cost: process_cpu_s / threads
  // is what the forward would take with the cores to itself (OpenMP spin-waits included).
  state.counters["process_cpu_s"] = times.cpu_s / n;
  state.counters["layers"] = double(cfg.layers);
  state.counters["tokens"] = double(tokens);
  state.counters["flops"] = flops;
  state.counters["seconds_per_forward"] = total / n;
  state.counters["tokens_per_s"] = double(tokens) * n / total;
  bench::set_model_counters(state, flops * n / total);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::add_ceiling_context();
  benchmark::AddCustomContext("model", "Wan2.1-T2V-1.3B shapes, random bf16 weights, latents [1,16,5,32,32]");
  benchmark::RegisterBenchmark("dit_forward/t2v_1.3b/bf16/256x256x17", bench_dit_forward)
      ->UseManualTime()
      ->Unit(benchmark::kSecond)
      ->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
