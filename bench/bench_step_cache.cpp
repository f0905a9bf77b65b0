// Step caching: speed-up and quality against the uncached clip, on the trained demo model
// (models/reel-wan-demo at its default 256×160, 33 frames, 20 steps, UniPC; f32, CPU), over a
// fixed set of four prompts and two seeds. Cases `step_cache/<method>/threshold:<t·100>`.
// Counters:
//   speedup      wall time of the uncached generations / the cached ones, both measured in
//                this run (text and decode included, as a user sees it);
//   denoise_speedup  the same for the denoise stage alone;
//   psnr_db, ssim  means over the clips of the PSNR and SSIM (bench/common/quality.hpp) of
//                the cached clip's RGB24 frames against
//                the uncached clip's (∞ for identical clips is reported as 99);
//   calls        transformer calls made, as a fraction of the uncached run's.
// Before timing, the bench checks that threshold 0 gives the uncached clip bit for bit.
//
//   bench_step_cache --benchmark_format=json
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/demo_model.hpp"
#include "common/quality.hpp"
#include "reel/pipeline.hpp"

namespace {

using namespace reel;

const Pipeline& demo() { return bench::demo_pipeline(); }

const char* const kPrompts[] = {"a red ball rolls left across a blue floor",
                                "walking forward down a long green corridor",
                                "a yellow square moves up on a purple background",
                                "a white triangle slides right on an orange floor"};
const uint64_t kSeeds[] = {1, 2};

struct Clip {
  GenerateResult result;
  double seconds = 0, denoise_seconds = 0;
};

Clip run(const char* prompt, uint64_t seed, const StepCacheOptions& cache) {
  GenerateRequest r;
  r.prompt = prompt;
  r.seed = seed;
  r.step_cache = cache;
  const auto t0 = std::chrono::steady_clock::now();
  Clip c{demo().generate(r)};
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const StageTime& t : c.result.timings)
    if (t.stage == "denoise") c.denoise_seconds = t.seconds;
  return c;
}

// The uncached clips, made once (after one throwaway run: the first generation also pays for
// oneDNN's primitive creation and the caches' first fill).
const std::vector<Clip>& reference() {
  static const std::vector<Clip> clips = [] {
    (void)run(kPrompts[0], kSeeds[0], {});
    std::vector<Clip> out;
    for (const char* p : kPrompts)
      for (uint64_t s : kSeeds) out.push_back(run(p, s, {}));
    return out;
  }();
  return clips;
}

bool checked() {
  static const bool ok = [] {
    const Clip zero = run(kPrompts[0], kSeeds[0], {.method = "teacache", .threshold = 0.0f});
    return zero.result.video.rgb == reference()[0].result.video.rgb;
  }();
  return ok;
}

void BM_StepCache(benchmark::State& state, std::string method) {
  if (!checked()) {
    state.SkipWithError("threshold 0 does not give the uncached clip");
    return;
  }
  const float threshold = float(state.range(0)) / 100.0f;
  double base = 0, base_denoise = 0, cached = 0, cached_denoise = 0, quality = 0, structure = 0, calls = 0,
         base_calls = 0;
  for (auto _ : state) {
    size_t k = 0;
    for (const char* p : kPrompts)
      for (uint64_t s : kSeeds) {
        const Clip& ref = reference()[k++];
        const Clip c = run(p, s, {.method = method, .threshold = threshold});
        base += ref.seconds, base_denoise += ref.denoise_seconds;
        cached += c.seconds, cached_denoise += c.denoise_seconds;
        quality += bench::psnr(c.result.video, ref.result.video);
        structure += bench::ssim(c.result.video, ref.result.video);
        calls += c.result.transformer_calls, base_calls += ref.result.transformer_calls;
      }
  }
  const double n = double(state.iterations()) * std::size(kPrompts) * std::size(kSeeds);
  state.counters["speedup"] = base / cached;
  state.counters["denoise_speedup"] = base_denoise / cached_denoise;
  state.counters["psnr_db"] = quality / n;
  state.counters["ssim"] = structure / n;
  state.counters["calls"] = calls / base_calls;
}
BENCHMARK_CAPTURE(BM_StepCache, easycache, std::string("easycache"))
    ->Name("step_cache/easycache/threshold")->Arg(5)->Arg(10)->Arg(20)->Arg(40)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_StepCache, teacache, std::string("teacache"))
    ->Name("step_cache/teacache/threshold")->Arg(5)->Arg(10)->Arg(20)->Arg(40)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
