// The Wan 2.1 T2V-1.3B pipeline's GPU stages at 480×832×81 with random weights (speed does not
// depend on values), on CUDA device 0:
//
//   denoise_step_cfg  one denoising step with classifier-free guidance, as lib/pipeline/denoise.cpp
//                     runs it with batch_cfg: the transformer (D 1536, 12 heads × 128, 30 layers,
//                     ffn 8960, bf16 weights) on a batch of 2 (cond, uncond; latents [2, 16, 21,
//                     60, 104] → 2 × 32 760 tokens, 512 text tokens each), the guidance combine
//                     u + g·(c − u) (each op rounded to bf16, as diffusers does) on the device
//                     that holds the prediction, and one UniPC step (reel::make_sampler("unipc")
//                     over 2 sigmas). The sampler math runs on the host, as in the pipeline: the
//                     latents go in from the host and the velocity comes back to it.
//   denoise_step      the same without CFG: a batch of 1, no combine.
//   vae_decode_480p   the Wan 2.1 VAE decoder (z 16, random weights, f32 compute as the pipeline
//                     loads it) decoding latents [16, 21, 60, 104] to 81 frames of 480×832, one
//                     latent frame per chunk, the frames handed to the host chunk by chunk.
//
// Counters: s_per_step / s_per_decode (wall seconds), tflops (analytic FLOPs / wall time; the
// FLOPs are counted below: 566.0 TFLOP per CFG step at 30 layers, 2 per multiply-add, the
// self-attention core 396 of them), tflop_per_step, frames_per_s, peak_gpu_gb (10⁹ bytes: the
// peak of reel's caching allocator, reel::cuda_memory_stats(0).peak_in_use_bytes, over the timed
// runs), resident_gpu_gb (in use before them). Both models stay on the GPU for every case, as in
// the pipeline, with the text encoder off the GPU (the text context, [2, 512, 4096] bf16, is
// uploaded once): peak_gpu_gb is the whole pipeline's peak during that stage. The weights are
// made on the host and uploaded once, before anything is timed; one untimed run of each case
// (the VAE: its first two latent frames) warms the cuBLASLt/cuDNN plan caches and the allocator.
//
// Before timing, each case's result is checked against the CPU backend with the same weights:
//   DiT: a 2-layer model of the same widths, latents [1, 16, 3, 16, 16] (192 tokens), 512 text
//        tokens: the forward on batches of 2 and 1, GPU vs CPU (both bf16), within a relative L2
//        of 2e-2 (each backend's bf16 result is ≈6e-3 from the f32 one: 5.6e-3 measured for the
//        CPU at these shapes, and bench_dit's check; a broken kernel or layout gives O(1)); the
//        GPU's guidance combine vs the same combine on the host (identical roundings: 1e-3); the
//        whole step (forward, combine, UniPC) on both, 5e-3 (the step scales the velocity's error
//        down: 6.5e-4 for bf16 vs f32 on the CPU); every output finite.
//   VAE: latents [16, 3, 8, 8] (9 frames of 64×64) decoded on both: f32 within 1e-3 (f32
//        rounding in other summation orders, no TF32; cuDNN's Winograd/FFT algorithms included),
//        bf16 compute (REEL_BENCH_GPU_VAE_DTYPE) within 5e-2 (tests/vae's bf16-vs-f32 bound);
//        finite, in [-1, 1].
// The full-size outputs are checked to be finite after timing.
//
// Without a CUDA GPU (or in a build without CUDA) it prints one line and exits with 0.
//
//   bench_gpu_pipeline --benchmark_format=json
//   bench_gpu_pipeline --benchmark_filter=denoise_step_cfg
// Environment, for quick runs:
//   REEL_BENCH_GPU_LAYERS=4       transformer layers (default 30)
//   REEL_BENCH_GPU_FRAMES=17      video frames, 4k + 1 (default 81; 21 latent frames)
//   REEL_BENCH_GPU_ITERS=5        timed denoising steps per case (default 3; the VAE decodes once)
//   REEL_BENCH_GPU_VAE_DTYPE=bf16 the VAE's compute dtype, f32 (default, the pipeline's) or bf16
//   REEL_BENCH_GPU_ATTENTION=cudnn the transformer's attention kernel (default: the selector's
//                                  choice; cuda_flash, cudnn or cublas to compare them in a step)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/wan_shapes.hpp"
#include "common/wan_vae_file.hpp"
#include "reel/attention.hpp"
#include "reel/cuda_backend.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/sampler.hpp"
#include "reel/vae.hpp"
#include "reel/wan_transformer.hpp"
#include "reel/weights.hpp"

namespace {

using namespace reel;

constexpr int kGpu = 0;
constexpr int64_t kTextTokens = 512, kLatentH = 60, kLatentW = 104;  // 480×832 pixels
constexpr float kGuidance = 5.0f;                                     // Wan 2.1 T2V's default
constexpr float kSigmas[2] = {0.95f, 0.90f};                          // one step near the start

struct BenchOptions {
  int64_t layers = 30, frames = 81, iterations = 3;
  DType vae_dtype = DType::f32;
  std::string attention;  // the GPU transformer's attention kernel; empty: the selector's
  int64_t latent_frames() const { return (frames - 1) / 4 + 1; }
};
BenchOptions g_options;

// ---------------------------------------------------------------- one denoising step

// u + g·(c − u) for a prediction [2, ...] (cond, uncond) on `be`, each op rounded to its dtype.
Tensor guide(Backend& be, const Tensor& prediction, float g) {
  const Tensor c = prediction.slice(0, 1), u = prediction.slice(1, 2);
  const Tensor d = ops::sub(be, c, u);
  return ops::add(be, u, ops::affine(be, d, g, 0.0f));
}

// The same combine on the host, rounding after each op as the GPU does.
std::vector<float> guide_on_host(const Tensor& prediction_cpu, float g) {
  const DType dt = prediction_cpu.dtype();
  const int64_t n = prediction_cpu.numel() / 2;
  const std::vector<float> all = prediction_cpu.to_floats();
  auto rounded = [&](std::vector<float> v) { return Tensor::from_floats({int64_t(v.size())}, v, dt).to_floats(); };
  const size_t count = static_cast<size_t>(n);
  std::vector<float> d(count), p(count), out(count);
  for (int64_t i = 0; i < n; ++i) d[size_t(i)] = all[size_t(i)] - all[size_t(n + i)];
  d = rounded(std::move(d));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = g * d[size_t(i)];
  p = rounded(std::move(p));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = all[size_t(n + i)] + p[size_t(i)];
  return rounded(std::move(out));
}

// One UniPC step from kSigmas[0] to kSigmas[1] of x [1, 16, F, H, W] (f32, host). With `cfg` the
// model runs on [x, x] with `text` [2, T, 4096] (cond, uncond) and the velocity is guided where
// the prediction lies (forward() returns it on the host or on `be`'s device); without, on x with
// `text` [1, T, 4096]. `host` concatenates the batch, as the pipeline does.
Tensor denoise_step(Backend& be, Backend& host, const WanTransformer& dit, Sampler& sampler, const Tensor& x,
                    const Tensor& text, bool cfg) {
  FlowDenoiser denoiser(
      [&](const Tensor& xt, float t) -> Tensor {
        if (!cfg) return dit.forward(be, xt, std::vector<float>{t}, text);
        const Tensor both = ops::concat(host, {&xt, &xt}, 0);
        const Tensor prediction = dit.forward(be, both, std::vector<float>{t, t}, text);
        return guide(prediction.device() == be.device() ? be : host, prediction, kGuidance);
      },
      flow_timesteps());
  Rng rng(3);
  NoObserver none;
  Tensor out = sampler.sample(denoiser, x, kSigmas, rng, none);
  be.synchronize();
  return out;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

double rel_l2(const Tensor& got, const Tensor& ref) {
  return bench::relative_l2(got.to(Device::cpu()).to_floats(), ref.to(Device::cpu()).to_floats());
}

// ---------------------------------------------------------------- setup and checks

struct Setup {
  std::unique_ptr<Backend> cpu, gpu;
  std::unique_ptr<Sampler> sampler;
  std::optional<WanTransformer> dit;
  std::optional<WanVae> vae;
  Tensor text;     // [2, 512, 4096] bf16 on the GPU: cond, uncond
  Tensor latents;  // [1, 16, F, 60, 104] f32 on the host
  std::string dit_error, vae_error;  // a failed check or setup: the cases report it
  double forward_err = -1, guidance_err = -1, step_err = -1, vae_err = -1;

  Setup() {
    try {
      cpu = make_cpu_backend();
      gpu = make_backend(Device::cuda(kGpu));
      sampler = make_sampler("unipc");
    } catch (const std::exception& e) {
      dit_error = vae_error = std::string("cannot start the CUDA backend: ") + e.what();
      return;
    }
    latents = Rng(1).normal({1, 16, g_options.latent_frames(), kLatentH, kLatentW});
    dit_error = guarded("DiT check", [&] { return check_dit(); });
    std::filesystem::path vae_file;
    vae_error = guarded("VAE check", [&] {
      vae_file = bench::write_wan21_vae_decoder("gpu_vae", bench::VaeWeightValues::random);
      const WeightStore store = WeightStore::open(vae_file);
      vae.emplace(WanVae::from_store(store, *gpu, {.compute = g_options.vae_dtype, .encoder = false}));
      const WanVae reference = WanVae::from_store(store, *cpu, {.encoder = false});
      return check_vae(reference);
    });
    std::error_code ec;
    if (!vae_file.empty()) std::filesystem::remove(vae_file, ec);
    if (!dit_error.empty()) return;
    dit_error = guarded("DiT setup", [&] {
      const WanConfig cfg = bench::wan_t2v_1_3b(g_options.layers);
      dit.emplace(bench::random_wan_transformer(cfg, WanPrecision::bf16, /*seed=*/7)
                      .to(gpu->device(), g_options.attention));
      text = bench::random_signed_tensor({2, kTextTokens, 4096}, 2, DType::bf16).to(gpu->device());
      return std::string();
    });
  }

  // fn()'s message (empty: passed), or "<what>: <exception>" when it throws.
  template <class Fn>
  static std::string guarded(const char* what, Fn&& fn) {
    try {
      return fn();
    } catch (const std::exception& e) {
      return std::string(what) + ": " + e.what();
    }
  }

  std::string check_dit() {
    const WanConfig cfg = bench::wan_t2v_1_3b(2);
    const WanTransformer on_cpu = bench::random_wan_transformer(cfg, WanPrecision::bf16, /*seed=*/7);
    const WanTransformer on_gpu = on_cpu.to(gpu->device(), g_options.attention);  // the same weights
    const Tensor x = Rng(11).normal({1, 16, 3, 16, 16});
    const Tensor text_cpu = bench::random_signed_tensor({2, kTextTokens, 4096}, 12, DType::bf16);
    const Tensor text_gpu = text_cpu.to(gpu->device());
    const Tensor both = ops::concat(*cpu, {&x, &x}, 0);
    const float t[2] = {950.0f, 950.0f};

    for (int64_t batch : {2, 1}) {
      const Tensor in = batch == 2 ? both : x;
      const Tensor ref = on_cpu.forward(*cpu, in, std::span(t, size_t(batch)), text_cpu.slice(0, batch));
      const Tensor got = on_gpu.forward(*gpu, in, std::span(t, size_t(batch)), text_gpu.slice(0, batch));
      if (!all_finite(got.to(Device::cpu()).to_floats())) return "2-layer forward on the GPU: not finite";
      const double err = rel_l2(got, ref);
      forward_err = std::max(forward_err, err);
      if (!(err <= 2e-2))
        return "2-layer forward, batch " + std::to_string(batch) + ": GPU vs CPU relative L2 " + std::to_string(err);
      if (batch == 1) continue;
      const Tensor got_gpu = got.to(gpu->device());
      const Tensor guided = guide(*gpu, got_gpu, kGuidance).to(Device::cpu());
      guidance_err = bench::relative_l2(guided.to_floats(), guide_on_host(got.to(Device::cpu()), kGuidance));
      if (!(guidance_err <= 1e-3))
        return "guidance combine: GPU vs host relative L2 " + std::to_string(guidance_err);
    }
    const Tensor step_ref = denoise_step(*cpu, *cpu, on_cpu, *sampler, x, text_cpu, true);
    const Tensor step_got = denoise_step(*gpu, *cpu, on_gpu, *sampler, x, text_gpu, true);
    if (!all_finite(step_got.to_floats())) return "2-layer CFG step on the GPU: not finite";
    step_err = rel_l2(step_got, step_ref);
    if (!(step_err <= 5e-3)) return "2-layer CFG step: GPU vs CPU relative L2 " + std::to_string(step_err);
    return "";
  }

  std::string check_vae(const WanVae& reference) {
    const Tensor z = Rng(21).normal({16, 3, 8, 8});
    const Tensor ref = reference.decode(z);
    const Tensor got = vae->decode(z);
    for (float v : got.to_floats())
      if (!std::isfinite(v) || std::abs(v) > 1.0f) return "GPU VAE decode: value " + std::to_string(v) + " not in [-1, 1]";
    vae_err = rel_l2(got, ref);
    const double bound = g_options.vae_dtype == DType::f32 ? 1e-3 : 5e-2;
    if (!(vae_err <= bound))
      return "VAE decode of 9 frames 64x64: GPU vs CPU relative L2 " + std::to_string(vae_err) + " > " +
             std::to_string(bound);
    return "";
  }
};

Setup& setup() {
  static Setup* s = new Setup();  // never destroyed: no CUDA calls during static destruction
  return *s;
}

void set_memory_counters(benchmark::State& state, uint64_t resident) {
  state.counters["peak_gpu_gb"] = double(cuda_memory_stats(kGpu).peak_in_use_bytes) / 1e9;
  state.counters["resident_gpu_gb"] = double(resident) / 1e9;
}

// ---------------------------------------------------------------- cases

void bench_denoise_step(benchmark::State& state, bool cfg) {
  Setup& s = setup();
  if (!s.dit_error.empty()) {
    state.SkipWithError(s.dit_error.c_str());
    return;
  }
  const Tensor text = cfg ? s.text : s.text.slice(0, 1);
  Tensor out;
  bench::LoopTimes times;
  uint64_t resident = 0;
  try {
    out = denoise_step(*s.gpu, *s.cpu, *s.dit, *s.sampler, s.latents, text, cfg);  // warm-up
    out = Tensor();
    reset_cuda_peak_memory(kGpu);
    resident = cuda_memory_stats(kGpu).in_use_bytes;
    times = bench::time_iterations(state, [&] { out = denoise_step(*s.gpu, *s.cpu, *s.dit, *s.sampler, s.latents, text, cfg); });
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  if (!all_finite(out.to_floats())) {
    state.SkipWithError("the denoising step's output is not finite");
    return;
  }
  const WanConfig& c = s.dit->config();
  const int64_t tokens = s.latents.dim(2) * (kLatentH / 2) * (kLatentW / 2);
  const double flops = bench::wan_forward_flops(c, cfg ? 2 : 1, tokens, kTextTokens);
  const double per_step = times.wall_s / double(state.iterations());
  state.counters["s_per_step"] = per_step;
  state.counters["tflops"] = flops / per_step / 1e12;
  state.counters["tflop_per_step"] = flops / 1e12;
  state.counters["layers"] = double(c.layers);
  state.counters["tokens"] = double(tokens);
  state.counters["check_forward_rel_l2"] = s.forward_err;
  state.counters["check_guidance_rel_l2"] = s.guidance_err;
  state.counters["check_step_rel_l2"] = s.step_err;
  set_memory_counters(state, resident);
}

void bench_vae_decode(benchmark::State& state) {
  Setup& s = setup();
  if (!s.vae_error.empty()) {
    state.SkipWithError(s.vae_error.c_str());
    return;
  }
  const Tensor z = s.latents.select(0);  // [16, F, 60, 104]
  const int64_t frames = g_options.frames;
  int64_t decoded = 0;
  bool finite = true;
  double checksum = 0;
  auto sink = [&](const Tensor& f, int64_t) {
    const float* v = f.data<float>();
    for (int64_t i = 0; i < f.numel(); i += 97) {
      finite = finite && std::isfinite(v[i]);
      checksum += v[i];
    }
    decoded += f.dim(1);
  };
  bench::LoopTimes times;
  uint64_t resident = 0;
  try {
    s.vae->decode(ops::slice(*s.cpu, z, 1, 0, std::min<int64_t>(2, z.dim(1))), sink);  // warm-up
    reset_cuda_peak_memory(kGpu);
    resident = cuda_memory_stats(kGpu).in_use_bytes;
    times = bench::time_iterations(state, [&] {
      decoded = 0;
      s.vae->decode(z, sink);
    });
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  benchmark::DoNotOptimize(checksum);
  if (decoded != frames || !finite) {
    state.SkipWithError(decoded != frames ? "wrong number of decoded frames" : "decoded frames are not finite");
    return;
  }
  const double per_decode = times.wall_s / double(state.iterations());
  state.counters["s_per_decode"] = per_decode;
  state.counters["frames_per_s"] = double(frames) / per_decode;
  state.counters["check_rel_l2"] = s.vae_err;
  set_memory_counters(state, resident);
}

// An integer from the environment in [lo, hi], or `fallback` when unset; nullopt when malformed.
std::optional<int64_t> env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) {
    std::fprintf(stderr, "%s=%s: expected an integer in [%lld, %lld]\n", name, v, (long long)lo, (long long)hi);
    return std::nullopt;
  }
  return x;
}

bool read_options() {
  const auto layers = env_int("REEL_BENCH_GPU_LAYERS", 30, 1, 30);
  const auto frames = env_int("REEL_BENCH_GPU_FRAMES", 81, 1, 1001);
  const auto iters = env_int("REEL_BENCH_GPU_ITERS", 3, 1, 1000);
  if (!layers || !frames || !iters) return false;
  if ((*frames - 1) % 4 != 0) {
    std::fprintf(stderr, "REEL_BENCH_GPU_FRAMES=%lld: expected 4k + 1 frames (1, 5, ..., 81)\n", (long long)*frames);
    return false;
  }
  const char* dt = std::getenv("REEL_BENCH_GPU_VAE_DTYPE");
  const std::string vae_dtype = dt ? dt : "f32";
  if (vae_dtype != "f32" && vae_dtype != "bf16") {
    std::fprintf(stderr, "REEL_BENCH_GPU_VAE_DTYPE=%s: expected f32 or bf16\n", vae_dtype.c_str());
    return false;
  }
  const char* attention = std::getenv("REEL_BENCH_GPU_ATTENTION");
  g_options = {*layers, *frames, *iters, vae_dtype == "bf16" ? DType::bf16 : DType::f32, attention ? attention : ""};
  if (!g_options.attention.empty()) {
    const AttentionKernel* k = find_attention_kernel(g_options.attention);
    if (!k || k->device_type() != DeviceType::cuda) {
      std::fprintf(stderr, "REEL_BENCH_GPU_ATTENTION=%s: not a CUDA attention kernel (reel-cli kernels)\n",
                   g_options.attention.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!read_options()) return 2;
  if (cuda_device_count() == 0) {
    std::printf("no CUDA GPU: bench_gpu_pipeline skipped\n");
    return 0;
  }
  const BenchOptions& o = g_options;
  const std::string size = "480x832x" + std::to_string(o.frames);
  const WanConfig cfg = bench::wan_t2v_1_3b(o.layers);
  const int64_t tokens = o.latent_frames() * (kLatentH / 2) * (kLatentW / 2);
  benchmark::AddCustomContext("model", "Wan2.1-T2V-1.3B shapes (" + std::to_string(o.layers) +
                                           " layers), random bf16 weights; Wan 2.1 VAE decoder, random weights, " +
                                           (o.vae_dtype == DType::f32 ? "f32" : "bf16"));
  benchmark::AddCustomContext("cfg_step_tflop",
                              std::to_string(bench::wan_forward_flops(cfg, 2, tokens, kTextTokens) / 1e12));
  for (bool cfg_batch : {true, false})
    benchmark::RegisterBenchmark(((cfg_batch ? "denoise_step_cfg/" : "denoise_step/") + std::string("t2v_1.3b/bf16/") + size).c_str(),
                                 [cfg_batch](benchmark::State& s) { bench_denoise_step(s, cfg_batch); })
        ->UseManualTime()
        ->Unit(benchmark::kSecond)
        ->Iterations(o.iterations);
  benchmark::RegisterBenchmark(("vae_decode_480p/wan21/" + std::string(o.vae_dtype == DType::f32 ? "f32/" : "bf16/") + size).c_str(),
                               bench_vae_decode)
      ->UseManualTime()
      ->Unit(benchmark::kSecond)
      ->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
