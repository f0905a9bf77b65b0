// Q8_0 weights (lib/quant/qmatrix.hpp: activations quantised per block on the fly, integer block
// dot products with AVX-512 VNNI), three ways, each against its reference measured in this run:
//   linear/...     one Linear on the Wan shapes of bench/shapes/gemm_wan.txt vs reel's bf16
//                  Linear (oneDNN);
//   dit_forward/   the Wan2.1-T2V-1.3B-shape forward of bench_dit (30 layers, 1 280 tokens,
//                  random weights) with Q8_0 / Q4_0 block linears vs bf16;
//   demo/<type>    what a user sees: the trained demo model (models/reel-wan-demo, f32, its
//                  default 256×160×33, 20 steps) with quantised block linears vs without, over
//                  4 prompts × 2 seeds: PSNR of the RGB frames against the exact clips, speed-up.
// Before timing, each quantised Linear checks its output against the f32 product of the same
// data: relative L2 <= 1.5e-2 for Q8_0 (~0.7 %), 0.15 for Q4_0 (~8 %); tests/quant measure the
// kernel itself to 2e-5 against the exact block sums.
// Counters: gflops (2·M·N·K / wall time), vs_bf16 (the bf16 Linear's time / this one's:
// > 1 is faster), weight_mb (the weights as the kernel reads them), check_rel_l2.
//
//   bench_quant --benchmark_format=json
#include <benchmark/benchmark.h>

#include <map>
#include <random>

#include <chrono>
#include <optional>
#include <cmath>

#include "common/checks.hpp"
#include "common/demo_model.hpp"
#include "common/measure.hpp"
#include "common/shapes.hpp"
#include "common/wan_shapes.hpp"
#include "quant/qmatrix.hpp"
#include "reel/ops.hpp"

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

void bench_q(benchmark::State& state, int64_t m, int64_t k, int64_t n, quant::QType type) {
  const std::vector<float> x = gaussian(size_t(m * k), 1, 1.0f), wf = gaussian(size_t(n * k), 2, 0.05f);
  const std::vector<float> b = gaussian(size_t(n), 3, 0.1f);
  const quant::QMatrix w = quant::QMatrix::quantize(type, wf.data(), n, k);
  const double bound = type == quant::QType::q8_0 ? 1.5e-2 : 1.5e-1;
  std::vector<float> y(size_t(m * n));
  quant::q_linear(x.data(), m, w, b.data(), y.data());
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
      bench::time_iterations(state, [&] { quant::q_linear(x.data(), m, w, b.data(), y.data()); });
  bench::set_gflops_counters(state, 2.0 * double(m) * double(n) * double(k), times);
  state.counters["weight_mb"] = double(w.bytes()) / 1e6;
  state.counters["vnni"] = quant::q_has_vnni() ? 1 : 0;
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

double psnr(const Video& a, const Video& b) {
  double se = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) se += std::pow(double(a.rgb[i]) - b.rgb[i], 2);
  return se == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / (se / double(a.rgb.size())));
}

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
  double exact_s = 0, q_s = 0, quality = 0, worst = 99;
  int n = 0;
  for (auto _ : state)
    for (const char* prompt : kPrompts)
      for (uint64_t seed : {1, 2}) {
        const GenerateResult a = run(bench::demo_pipeline(), prompt, seed, exact_s);
        const GenerateResult b = run(quantised, prompt, seed, q_s);
        const double p = psnr(b.video, a.video);
        quality += p, worst = std::min(worst, p), ++n;
      }
  state.counters["psnr_db"] = quality / n;
  state.counters["worst_psnr_db"] = worst;
  state.counters["speedup"] = exact_s / q_s;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::add_ceiling_context();
  for (const auto& row : bench::read_shapes("gemm_wan.txt", 3)) {
    const std::string shape = "/M" + std::to_string(row[0]) + "_K" + std::to_string(row[1]) + "_N" + std::to_string(row[2]);
    benchmark::RegisterBenchmark(("linear/bf16" + shape).c_str(), bench_bf16, row[0], row[1], row[2])
        ->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
    for (quant::QType t : {quant::QType::q8_0, quant::QType::q4_0})
      benchmark::RegisterBenchmark(("linear/" + std::string(quant::qtype_name(t)) + shape).c_str(), bench_q, row[0],
                                   row[1], row[2], t)
          ->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
  }
  benchmark::RegisterBenchmark("dit_forward/t2v_1.3b/bf16/256x256x17", bench_dit, std::nullopt)
      ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  for (quant::QType t : {quant::QType::q8_0, quant::QType::q4_0})
    benchmark::RegisterBenchmark(("dit_forward/t2v_1.3b/" + std::string(quant::qtype_name(t)) + "/256x256x17").c_str(),
                                 bench_dit, std::optional<quant::QType>(t))
        ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("demo/q8_0", bench_demo, WanWeightFormat::q8_0)->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("demo/q4_0", bench_demo, WanWeightFormat::q4_0)->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
