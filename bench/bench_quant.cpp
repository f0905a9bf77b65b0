// Q8_0 weights (lib/quant/qmatrix.hpp: activations quantised per block on the fly, integer block
// dot products with AVX-512 VNNI), three ways, each against its reference measured in this run:
//   linear/...     one Linear on the Wan shapes of bench/shapes/gemm_wan.txt vs reel's bf16
//                  Linear (oneDNN);
//   dit_forward/   the Wan2.1-T2V-1.3B-shape forward of bench_dit (30 layers, 1 280 tokens,
//                  random weights) with Q8_0 / Q4_0 block linears vs bf16;
//   demo/<type>    what a user sees: the trained demo model (models/reel-wan-demo, f32, its
//                  default 256×160×33, 20 steps) with quantised block linears vs without, over
//                  4 prompts × 2 seeds: PSNR and SSIM of the RGB frames against the exact clips,
//                  speed-up;
//   memory/        peak resident memory of loading a Wan2.1-T2V-14B-shape transformer (D 5120,
//                  ffn 13824; 1 and 2 of its 40 blocks, random bf16 weights written to a
//                  temporary safetensors file, then converted to a Q4_0 GGUF by convert_to_gguf)
//                  and running one forward: bf16 from the safetensors vs the GGUF kept as stored.
//                  Counters over the process's resident size before loading (after a warm-up
//                  that fills the process-wide caches): resident_mb right after loading (the
//                  model) and peak_mb (load transients and the forward included); file_mb.
//                  2 blocks − 1 block is what a block adds.
// Before timing, each quantised Linear checks its output against the f32 product of the same
// data: relative L2 <= 1.5e-2 for Q8_0 (~0.7 %), 0.15 for Q4_0 (~8 %); tests/quant measure the
// kernel itself to 2e-5 against the exact block sums.
// Counters: gflops (2·M·N·K / wall time), vs_bf16 (the bf16 Linear's time / this one's:
// > 1 is faster), weight_mb (the weights as the kernel reads them), check_rel_l2.
//
//   bench_quant --benchmark_format=json
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <map>
#include <mutex>
#include <random>

#include <chrono>
#include <optional>
#include <cmath>

#include "common/checks.hpp"
#include "common/demo_model.hpp"
#include "common/quality.hpp"
#include "common/measure.hpp"
#include "common/shapes.hpp"
#include "common/wan_shapes.hpp"
#include "quant/qmatrix.hpp"
#include "reel/ops.hpp"
#include "reel/weights.hpp"

namespace {

using namespace reel;

std::vector<float> gaussian(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::map<std::string, double>& bf16_seconds() {
  static std::map<std::string, double> s;
  return s;
}

std::string key(int64_t m, int64_t k, int64_t n) {
  return std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
}

void bench_bf16(benchmark::State& state, int64_t m, int64_t k, int64_t n) {
  auto be = make_cpu_backend();
  const Tensor x = Tensor::from_floats({m, k}, gaussian(size_t(m * k), 1, 1.0f), DType::bf16);
  const Tensor w = Tensor::from_floats({n, k}, gaussian(size_t(n * k), 2, 0.05f), DType::bf16);
  const Tensor b = Tensor::from_floats({n}, gaussian(size_t(n), 3, 0.1f), DType::bf16);
  Tensor out = Tensor::empty({m, n}, DType::bf16);
  const op::Linear op{&x, &w, &b, &out};
  be->run(op);
  const bench::LoopTimes times = bench::time_iterations(state, [&] { be->run(op); });
  bf16_seconds()[key(m, k, n)] = times.wall_s / double(state.iterations());
  bench::set_gflops_counters(state, 2.0 * double(m) * double(n) * double(k), times);
  state.counters["weight_mb"] = double(n * k * 2) / 1e6;
}

void bench_q(benchmark::State& state, int64_t m, int64_t k, int64_t n, quant::QType type, quant::QKernel kernel) {
  if (kernel == quant::QKernel::avx2 && !quant::q_has_avx2()) {
    state.SkipWithError("this CPU has no AVX2");
    return;
  }
  const std::vector<float> x = gaussian(size_t(m * k), 1, 1.0f), wf = gaussian(size_t(n * k), 2, 0.05f);
  const std::vector<float> b = gaussian(size_t(n), 3, 0.1f);
  const quant::QMatrix w = quant::QMatrix::quantize(type, wf.data(), n, k);
  const double bound = type == quant::QType::q8_0 ? 1.5e-2 : 1.5e-1;  // 4-bit: Q4_0 and Q4_K
  std::vector<float> y(size_t(m * n));
  quant::q_linear(x.data(), m, w, b.data(), y.data(), kernel);
  {  // check against the f32 product on 64 sampled rows
    double num = 0, den = 0;
    for (int64_t i = 0; i < m; i += std::max<int64_t>(1, m / 64))
      for (int64_t j = 0; j < n; ++j) {
        double ref = b[size_t(j)];
        for (int64_t q = 0; q < k; ++q) ref += double(x[size_t(i * k + q)]) * wf[size_t(j * k + q)];
        num += (y[size_t(i * n + j)] - ref) * (y[size_t(i * n + j)] - ref), den += ref * ref;
      }
    const double err = std::sqrt(num / den);
    state.counters["check_rel_l2"] = err;
    if (!(err <= bound)) {
      state.SkipWithError(("quantised check failed: relative L2 " + std::to_string(err)).c_str());
      return;
    }
  }
  const bench::LoopTimes times =
      bench::time_iterations(state, [&] { quant::q_linear(x.data(), m, w, b.data(), y.data(), kernel); });
  bench::set_gflops_counters(state, 2.0 * double(m) * double(n) * double(k), times);
  state.counters["weight_mb"] = double(w.bytes()) / 1e6;
  state.counters["vnni"] = kernel == quant::QKernel::best && quant::q_has_vnni() ? 1 : 0;
  if (auto it = bf16_seconds().find(key(m, k, n)); it != bf16_seconds().end())
    state.counters["vs_bf16"] = it->second / (times.wall_s / double(state.iterations()));
}

double bf16_forward_seconds = 0;

void bench_dit(benchmark::State& state, std::optional<quant::QType> type) {
  const bool quantised = type.has_value();
  const WanConfig cfg = bench::wan_t2v_1_3b();
  wan::WanWeights w = wan::random_weights(cfg, WanPrecision::bf16, 7);
  if (type) wan::quantize_block_linears(w, cfg, *type);
  const WanTransformer dit = bench::wan_transformer(cfg, std::move(w), WanPrecision::bf16, Device::cpu());
  auto be = make_cpu_backend();
  const Tensor latents = Tensor::from_floats({1, 16, 5, 32, 32}, gaussian(16 * 5 * 32 * 32, 1, 1.0f), DType::bf16);
  const Tensor text = Tensor::from_floats({1, 512, 4096}, gaussian(512 * 4096, 2, 1.0f), DType::bf16);
  const std::vector<float> t{937.0f};
  (void)dit.forward(*be, latents, t, text);  // primitives built, caches warm
  const bench::LoopTimes times = bench::time_iterations(state, [&] { return dit.forward(*be, latents, t, text); });
  const double s = times.wall_s / double(state.iterations());
  state.counters["seconds_per_forward"] = s;
  if (!quantised) bf16_forward_seconds = s;
  else if (bf16_forward_seconds > 0) state.counters["vs_bf16"] = bf16_forward_seconds / s;
}

const char* const kPrompts[] = {"a red ball moving left on a blue background",
                                "a green hospital corridor with flickering lights",
                                "a yellow square moving up on a purple background",
                                "a white triangle bouncing on an orange background"};

void bench_demo(benchmark::State& state, WanWeightFormat format) {
  const Pipeline quantised = Pipeline::load({.folder = std::filesystem::path(REEL_BENCH_MODELS_DIR) / "reel-wan-demo",
                                      .precision = PipelinePrecision::f32, .weight_format = format});
  auto run = [](const Pipeline& p, const char* prompt, uint64_t seed, double& seconds) {
    GenerateRequest r;
    r.prompt = prompt;
    r.seed = seed;
    const auto t0 = std::chrono::steady_clock::now();
    GenerateResult out = p.generate(r);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
  };
  double warm = 0;
  (void)run(bench::demo_pipeline(), kPrompts[0], 1, warm), (void)run(quantised, kPrompts[0], 1, warm);
  double exact_s = 0, q_s = 0, quality = 0, worst = 99, structure = 0;
  int n = 0;
  for (auto _ : state)
    for (const char* prompt : kPrompts)
      for (uint64_t seed : {1, 2}) {
        const GenerateResult a = run(bench::demo_pipeline(), prompt, seed, exact_s);
        const GenerateResult b = run(quantised, prompt, seed, q_s);
        const double p = bench::psnr(b.video, a.video);
        quality += p, worst = std::min(worst, p), ++n;
        structure += bench::ssim(b.video, a.video);
      }
  state.counters["psnr_db"] = quality / n;
  state.counters["worst_psnr_db"] = worst;
  state.counters["ssim"] = structure / n;
  state.counters["speedup"] = exact_s / q_s;
}

// A 14B-shape transformer with 2 blocks: random bf16 weights in a safetensors file (diffusers
// names), and its Q4_0 GGUF; made once per process in the test tmp folder.
struct Files14b {
  std::filesystem::path dir, safetensors, gguf;
  ~Files14b() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};
const Files14b& files_14b(int blocks) {
  static std::map<int, Files14b> made;  // removed with their folders at exit
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  Files14b& f = made[blocks];
  if (!f.dir.empty()) return f;
  f.dir = std::filesystem::temp_directory_path() /
          ("reel_bench_14b_" + std::to_string(::getpid()) + "_" + std::to_string(blocks));
  std::filesystem::create_directories(f.dir);
  f.safetensors = f.dir / "transformer.safetensors";
  f.gguf = f.dir / "transformer-Q4_0.gguf";
  WanConfig cfg = bench::wan_t2v_14b();
  cfg.layers = blocks;
  std::vector<std::pair<std::string, Tensor>> tensors;
  uint64_t seed = 1;
  wan::for_each_param(cfg, [&](std::string_view key, int64_t block, const Shape& shape, bool) {
    const float amp = 1.0f / std::sqrt(float(shape.numel() / shape[0]));
    tensors.emplace_back(wan::checkpoint_name({WanLayout::diffusers, ""}, key, block),
                         Tensor::from_floats(shape, gaussian(size_t(shape.numel()), seed++, amp), DType::bf16));
  });
  save_safetensors(f.safetensors, tensors);
  tensors.clear();
  convert_to_gguf(f.safetensors, f.gguf, WanWeightFormat::q4_0, 128);
  return f;
}

// Loads the model (bf16 from safetensors, or the Q4_0 GGUF kept as stored) and runs a forward;
// returns the seconds taken and the resident size right after loading (MiB).
std::pair<double, double> load_and_forward(const Files14b& f, bool gguf) {
  const auto t0 = std::chrono::steady_clock::now();
  const WanTransformer dit =
      gguf ? WanTransformer::load(f.gguf, {.precision = WanPrecision::bf16, .head_dim = 128,
                                           .weight_format = WanWeightFormat::stored})
           : WanTransformer::load(f.safetensors, {.precision = WanPrecision::bf16, .head_dim = 128});
  fprintf(stderr, "after load: rss %.0f MB hwm %.0f\n", bench::proc_status_kb("VmRSS:")/1024.0, bench::peak_resident_mb());
  const double resident = double(bench::proc_status_kb("VmRSS:")) / 1024.0;
  auto be = make_cpu_backend();
  const Tensor latents = Tensor::from_floats({1, 16, 1, 16, 16}, gaussian(16 * 16 * 16, 1, 1.0f), DType::bf16);
  const Tensor text = Tensor::from_floats({1, 512, 4096}, gaussian(512 * 4096, 2, 1.0f), DType::bf16);
  const std::vector<float> t{500.0f};
  const Tensor out = dit.forward(*be, latents, t, text);
  benchmark::DoNotOptimize(out.raw());
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), resident};
}

void bench_memory(benchmark::State& state, bool gguf) {
  static const bool warm = [] {  // files made and process-wide caches filled once, before any case
    (void)files_14b(1), (void)files_14b(2);
    (void)load_and_forward(files_14b(1), false), (void)load_and_forward(files_14b(1), true);
    return true;
  }();
  (void)warm;
  const Files14b& f = files_14b(int(state.range(0)));
  bench::reset_peak_resident();
  const double before = bench::peak_resident_mb();
  double seconds = 0;
  for (auto _ : state) {
    const auto [s, resident] = load_and_forward(f, gguf);
    seconds += s;
    state.counters["resident_mb"] = resident - before;  // the loaded model
    state.counters["peak_mb"] = bench::peak_resident_mb() - before;  // the model is gone again here
  }
  state.counters["file_mb"] = double(std::filesystem::file_size(gguf ? f.gguf : f.safetensors)) / 1e6;
  state.counters["load_and_forward_s"] = seconds / double(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::add_ceiling_context();
  for (const auto& row : bench::read_shapes("gemm_wan.txt", 3)) {
    const std::string shape = "/M" + std::to_string(row[0]) + "_K" + std::to_string(row[1]) + "_N" + std::to_string(row[2]);
    benchmark::RegisterBenchmark(("linear/bf16" + shape).c_str(), bench_bf16, row[0], row[1], row[2])
        ->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
    for (quant::QType t : {quant::QType::q8_0, quant::QType::q4_0, quant::QType::q4_k})
      for (auto [kernel, tag] : {std::pair{quant::QKernel::best, ""}, std::pair{quant::QKernel::avx2, "_avx2"},
                                 std::pair{quant::QKernel::portable, "_portable"}}) {
        if (kernel == quant::QKernel::portable && row[0] * row[1] * row[2] > int64_t(1280) * 1536 * 1536) continue;  // ~1 s already
        benchmark::RegisterBenchmark(("linear/" + std::string(quant::qtype_name(t)) + tag + shape).c_str(), bench_q,
                                     row[0], row[1], row[2], t, kernel)
            ->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
      }
  }
  benchmark::RegisterBenchmark("dit_forward/t2v_1.3b/bf16/256x256x17", bench_dit, std::nullopt)
      ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  for (quant::QType t : {quant::QType::q8_0, quant::QType::q4_0, quant::QType::q4_k})
    benchmark::RegisterBenchmark(("dit_forward/t2v_1.3b/" + std::string(quant::qtype_name(t)) + "/256x256x17").c_str(),
                                 bench_dit, std::optional<quant::QType>(t))
        ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("demo/q8_0", bench_demo, WanWeightFormat::q8_0)->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("demo/q4_0", bench_demo, WanWeightFormat::q4_0)->Unit(benchmark::kSecond)->Iterations(1);
  // 1 and 2 blocks: the difference is what each of the 40 blocks adds.
  benchmark::RegisterBenchmark("memory/wan14b_shape/bf16_safetensors/blocks", bench_memory, false)
      ->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("memory/wan14b_shape/q4_0_gguf_stored/blocks", bench_memory, true)
      ->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
