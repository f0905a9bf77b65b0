// Wan VAE decode speed and peak memory against clip length: the Wan 2.1 VAE's real shapes
// (base 96, z 16; the decoder and post_quant_conv, 73 M parameters) with random weights, f32,
// at 64×64 pixels (latent 8×8; --vae_size=128 for 128×128): 8.7 MFLOP per output pixel, 36
// GFLOP per 64×64 frame, so the three cases take minutes on a small shared CPU.
//
// Cases `vae_decode/wan21/64x64/frames:N` for N = 9, 33, 81 (3, 9, 21 latent frames). The
// frames go to a sink that only checksums them (WanVae::decode with a callback), so nothing
// but the clip's length changes between the cases.
// Counters:
//   frames_per_s  decoded frames per second of wall time;
//   peak_mb       the decode's peak resident memory above the resident memory before it: the
//                 kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs ("5")
//                 right before the decode, then read after it. The weights are already resident
//                 (they are read once by the check), so this is the feature cache + one chunk's
//                 activations (+ oneDNN scratch). Large blocks are mmap-ed and returned on free
//                 (M_MMAP_THRESHOLD fixed at 128 KiB), so allocator slack stays out of it. It
//                 must not grow with N;
//   gflops        convolution and attention-matmul FLOPs (counted from the ops the decode ran) /
//                 wall time; of_ceiling: that over the measured oneDNN bf16 GEMM rate.
// Before timing, the bench checks that decoding 3 latent frames one per chunk equals decoding
// them as one chunk (the full-sequence equivalents of every first-chunk rule, wan.md §2.4) and
// that the frames are finite and inside [-1, 1].
//
//   bench_vae --benchmark_format=json [--vae_size=128]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <malloc.h>

#include "common/ceiling.hpp"
#include "common/measure.hpp"
#include "common/wan_vae_file.hpp"
#include "reel/ops.hpp"
#include "reel/vae.hpp"

namespace {

using namespace reel;

int64_t g_latent = 8;  // latent frame size: 64×64 pixels unless --vae_size=N (pixels, a multiple of 8)

// Forwards every op to the CPU backend and counts convolution and batched-matmul FLOPs.
class CountingBackend final : public Backend {
 public:
  CountingBackend() : inner_(make_cpu_backend()) {}
  std::string_view name() const override { return inner_->name(); }
  Device device() const override { return inner_->device(); }
  Support supports(const Op& op) const override { return inner_->supports(op); }
  void execute(const Op& op) override {
    if (const auto* c = std::get_if<op::Conv3d>(&op)) {
      const Tensor& w = *c->weight;
      flops += 2.0 * double(c->out->numel()) * double(w.dim(1) * w.dim(2) * w.dim(3) * w.dim(4));
    } else if (const auto* m = std::get_if<op::BatchMatMul>(&op)) {
      flops += 2.0 * double(m->out->numel()) * double(m->a->dim(2));
    }
    inner_->execute(op);
  }
  double flops = 0;

 private:
  std::unique_ptr<Backend> inner_;
};

// The Wan 2.1 decoder with random weights (bench/common/wan_vae_file.hpp: conv weights uniform
// ±1/sqrt(fan_in), PyTorch's default; gammas 1 ± 0.1, biases ±0.02); written as bf16 and read
// back as f32.
WanVae make_vae(Backend& be) {
  const std::filesystem::path path = bench::write_wan21_vae_decoder("vae", bench::VaeWeightValues::random);
  WanVae vae = WanVae::load(path, be, {.encoder = false});  // bf16 -> f32 copies: the file can go
  std::filesystem::remove(path);
  return vae;
}

Tensor random_latents(int64_t frames, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(size_t(16 * frames * g_latent * g_latent));
  for (float& x : v) x = d(rng);
  return Tensor::from_floats({16, frames, g_latent, g_latent}, v);
}

struct Setup {
  CountingBackend be;
  WanVae vae;
  std::string error;
  Setup() : vae(make_vae(be)) { error = check(); }

  std::string check() {
    const Tensor z = random_latents(3, 1);
    std::vector<float> per_chunk, one_chunk;
    for (int n : {1, 3}) {
      std::vector<float>& dst = n == 1 ? per_chunk : one_chunk;
      vae.decode(z, [&](const Tensor& f, int64_t) {
        const auto v = f.to_floats();
        dst.insert(dst.end(), v.begin(), v.end());  // [3, m, H, W] per chunk; same order both ways
      }, n);
    }
    // The one-chunk frames are [3, 9, H, W]; the per-chunk ones [3, 1, H, W], then [3, 4, H, W]
    // twice: compare frame by frame.
    const int64_t hw = 64 * g_latent * g_latent;
    double num = 0, den = 0;
    int64_t offset = 0, first = 0;
    for (int64_t m : {1, 4, 4}) {
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < m * hw; ++i) {
          const double a = per_chunk[size_t(offset + c * m * hw + i)];
          const double b = one_chunk[size_t((c * 9 + first) * hw + i)];
          if (!std::isfinite(a) || std::abs(a) > 1.0) return "decoded value " + std::to_string(a) + " is not in [-1, 1]";
          num += (a - b) * (a - b);
          den += b * b;
        }
      offset += 3 * m * hw;
      first += m;
    }
    const double err = std::sqrt(num / std::max(den, 1e-30));
    // Same f32 math, only the convolution shapes differ: f32 rounding at most.
    if (!(err <= 1e-5)) return "one-per-chunk vs one-chunk decode differ: relative L2 " + std::to_string(err);
    if (den == 0) return "decoded frames are all zero";
    return "";
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

void BM_VaeDecode(benchmark::State& state, int64_t frames) {
  Setup& s = setup();
  if (!s.error.empty()) {
    state.SkipWithError(s.error.c_str());
    return;
  }
  const int64_t latent = (frames - 1) / 4 + 1;
  const Tensor z = random_latents(latent, 7 + uint64_t(frames));
  double peak_mb = 0, flops = 0, checksum = 0;
  for (auto _ : state) {
    const bool reset = bench::reset_peak_resident();
    const int64_t before = bench::proc_status_kb("VmRSS:");
    s.be.flops = 0;
    int64_t decoded = 0;
    s.vae.decode(z, [&](const Tensor& f, int64_t) {
      const float* v = f.data<float>();
      for (int64_t i = 0; i < f.numel(); i += 97) checksum += v[i];
      decoded += f.dim(1);
    });
    flops = s.be.flops;
    if (!reset || before < 0) {
      state.SkipWithError("cannot reset or read the peak RSS (/proc/self/clear_refs, /proc/self/status)");
      return;
    }
    peak_mb = double(bench::proc_status_kb("VmHWM:") - before) / 1024.0;
    if (decoded != frames) state.SkipWithError("wrong number of decoded frames");
  }
  benchmark::DoNotOptimize(checksum);
  state.counters["frames_per_s"] = benchmark::Counter(double(frames), benchmark::Counter::kIsRate);
  state.counters["peak_mb"] = peak_mb;
  state.counters["gflops"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["of_ceiling"] =
      benchmark::Counter(flops / (reel::bench::bf16_gemm_ceiling_tflops() * 1e12), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  // Every block of 128 KiB or more is its own mapping, returned to the kernel when freed (no
  // dynamic threshold): the resident size then follows the live tensors, not allocator slack.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--vae_size=", 0) == 0) {
      const int px = std::atoi(a.c_str() + 11);
      if (px < 8 || px % 8 != 0 || px > 2048) {
        std::fprintf(stderr, "--vae_size must be a multiple of 8 in [8, 2048]\n");
        return 2;
      }
      g_latent = px / 8;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  const std::string size = std::to_string(g_latent * 8) + "x" + std::to_string(g_latent * 8);
  for (int frames : {9, 33, 81})
    benchmark::RegisterBenchmark(("vae_decode/wan21/" + size + "/frames:" + std::to_string(frames)).c_str(),
                                 [frames](benchmark::State& s) { BM_VaeDecode(s, frames); })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kSecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
