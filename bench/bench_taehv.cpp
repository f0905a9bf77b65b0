// TAEHV tiny decoders (reel/taehv.hpp) against the model's own VAE, on the demo model's clip:
// 48-channel latents of 9 × 10 × 16 (256×160, 33 frames), the published taew2_2 architecture
// (widths 256 / 128 / 64 / 64, 2×2 pixel shuffle) with random weights written to a temporary
// safetensors file, f32, the CPU. The reference of the same run is the demo model's VAE decode
// (models/reel-wan-demo/vae) of the same latents: ratio = vae seconds / case seconds.
//
// Cases: taehv/preview (what previews use: one frame per latent frame, 9 frames at 256×160),
// taehv/full (taehv.py's default: 33 frames), vae/decode (the reference).
// Before timing, each case's output is checked: its shape, and every value finite and in the
// decoder's range ([0, 1] for TAEHV, [-1, 1] for the VAE).
//
//   bench_taehv --benchmark_format=json
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <span>
#include <utility>
#include <vector>

#include "reel/backend.hpp"
#include "reel/rng.hpp"
#include "reel/taehv.hpp"
#include "reel/vae.hpp"
#include "reel/weights.hpp"

namespace {

using namespace reel;
namespace fs = std::filesystem;

Backend& backend() {
  static const std::shared_ptr<Backend> be = make_cpu_backend();
  return *be;
}

// A taew2_2-shaped decoder with He-scaled normal weights, under taehv.py's tensor names.
fs::path random_taew2_2() {
  static const fs::path path = [] {
    const fs::path p = fs::temp_directory_path() / "reel_bench_taew2_2.safetensors";
    Rng rng(77, 0);
    std::vector<std::pair<std::string, Tensor>> t;
    auto conv = [&](const std::string& name, int64_t out, int64_t in, int64_t k, bool bias) {
      Tensor w = rng.normal({out, in, k, k});
      const float s = std::sqrt(2.0f / float(in * k * k));
      for (float& v : std::span(w.data<float>(), size_t(w.numel()))) v *= s;
      t.emplace_back(name + ".weight", w);
      if (bias) t.emplace_back(name + ".bias", Tensor::zeros({out}, DType::f32));
    };
    const int64_t n[4] = {256, 128, 64, 64};
    conv("decoder.1", n[0], 48, 3, true);
    for (int s = 0; s < 3; ++s) {
      const int base = 3 + 6 * s;
      for (int k = 0; k < 3; ++k)
        for (int j = 0; j < 3; ++j)
          conv("decoder." + std::to_string(base + k) + ".conv." + std::to_string(2 * j), n[s], j == 0 ? 2 * n[s] : n[s],
               3, true);
      t.emplace_back("decoder." + std::to_string(base + 4) + ".conv.weight", rng.normal({2 * n[s], n[s], 1, 1}));
      conv("decoder." + std::to_string(base + 5), n[s + 1], n[s], 3, false);
    }
    conv("decoder.22", 12, n[3], 3, true);
    save_safetensors(p, t);
    return p;
  }();
  return path;
}

const Tensor& latents() {
  static const Tensor z = Rng(5, 0).normal({48, 9, 10, 16});
  return z;
}

const WanVae& demo_vae() {
  static const WanVae vae = WanVae::load(fs::path(REEL_BENCH_MODELS_DIR) / "reel-wan-demo" / "vae", backend());
  return vae;
}

bool in_range(const Tensor& t, const Shape& shape, float lo, float hi, const char* what) {
  bool ok = t.shape() == shape;
  for (float v : t.to_floats()) ok = ok && std::isfinite(v) && v >= lo && v <= hi;
  std::fprintf(stderr, "check: %s %s %s\n", what, t.shape().str().c_str(), ok ? "ok" : "WRONG");
  return ok;
}

template <typename Decode>
void run(benchmark::State& state, const Decode& decode, const char* what, const Shape& shape, float lo) {
  if (!in_range(decode(), shape, lo, 1.0f, what)) {
    state.SkipWithError("output out of shape or range");
    return;
  }
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = decode();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(out.data<float>());
  }
  state.counters["s_per_decode"] = seconds / double(state.iterations());
}

void BM_TaehvPreview(benchmark::State& state) {
  static const TaehvDecoder dec = TaehvDecoder::load(random_taew2_2(), {.time_upscale = false});
  run(state, [&] { return dec.decode(backend(), latents()); }, "taehv preview", {9, 3, 160, 256}, 0.0f);
}
void BM_TaehvFull(benchmark::State& state) {
  static const TaehvDecoder dec = TaehvDecoder::load(random_taew2_2());
  run(state, [&] { return dec.decode(backend(), latents()); }, "taehv full", {33, 3, 160, 256}, 0.0f);
}
void BM_VaeDecode(benchmark::State& state) {
  run(state, [&] { return demo_vae().decode(latents()); }, "demo VAE", {3, 33, 160, 256}, -1.0f);
}
BENCHMARK(BM_VaeDecode)->Name("vae/decode/demo/256x160x33")->Unit(benchmark::kSecond)->Iterations(2);
BENCHMARK(BM_TaehvPreview)->Name("taehv/preview/taew2_2-shape/256x160x9")->Unit(benchmark::kSecond)->Iterations(2);
BENCHMARK(BM_TaehvFull)->Name("taehv/full/taew2_2-shape/256x160x33")->Unit(benchmark::kSecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
