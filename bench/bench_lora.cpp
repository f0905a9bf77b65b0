// What a LoRA costs: the Wan2.1-T2V-1.3B-shape forward of bench_dit (D 1536, 30 layers, bf16,
// 1 280 tokens, CPU) without a LoRA (= a merged LoRA: merging leaves the shapes and the work
// unchanged) and with a LoRA applied at run time (LoraMode::runtime: two thin GEMMs beside each
// of the 300 block linears), at ranks 32 and 128; and the one-off cost of merging a rank-32
// LoRA into those 300 weights at load. Random weights and factors made in memory.
//
// Before timing, a 2-layer f32 model checks that the side paths compute the merged model
// (relative L2 <= 1e-5; both are the same sum in another order) and that the LoRA changes the
// output (>= 1e-3), so neither path can be a no-op.
// Counters: seconds_per_forward; overhead = that / the no-LoRA forward measured in this run;
// merge_seconds (lora_merge, in place into private copies, as at load) and load_copy_seconds,
// the time to make those private copies at all (what loading the weights costs anyway),
// measured in the same run.
//
//   bench_lora --benchmark_format=json
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/wan_shapes.hpp"

namespace {

using namespace reel;

Tensor random(const Shape& s, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(size_t(s.numel()));
  for (auto& x : v) x = d(rng);
  return Tensor::from_floats(s, v, DType::f32);
}

// A LoRA of `rank` on every block linear (self/cross q k v o, FFN in/out), scale 1.
std::vector<wan::LoraDelta> random_lora(const WanConfig& c, int64_t rank, const wan::WanWeights& w) {
  std::vector<wan::LoraDelta> deltas;
  uint64_t seed = 100;
  for (int64_t b = 0; b < c.layers; ++b)
    for (const char* m : {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
                          "attn2.to_v", "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2"}) {
      wan::LoraDelta d;
      d.target = *wan::find_param("blocks." + std::to_string(b) + "." + m, wan::ParamKind::weight, c, nullptr);
      const Tensor& p = wan::param(w, d.target);
      d.down = random({rank, p.dim(1)}, seed++, 1.0f / std::sqrt(float(p.dim(1))));
      d.up = random({p.dim(0), rank}, seed++, 0.2f / std::sqrt(float(rank)));
      deltas.push_back(std::move(d));
    }
  return deltas;
}

const std::vector<AppliedLora>& one_lora() {
  static const std::vector<AppliedLora> loras(1);  // strength 1
  return loras;
}

bool checked(benchmark::State& state) {
  static const double err = [] {
    auto be = make_cpu_backend();
    const WanConfig two = bench::wan_t2v_1_3b(2);
    const wan::WanWeights base = wan::random_weights(two, WanPrecision::f32, 7);
    const std::vector<wan::LoraDelta> deltas = random_lora(two, 32, base);
    const float strength = 1.0f;
    const WanTransformer runtime = bench::wan_transformer(
        two, wan::compose_lora_deltas(base, deltas, {&strength, 1}, Device::cpu()), WanPrecision::f32, Device::cpu());
    wan::WanWeights merged_w = wan::random_weights(two, WanPrecision::f32, 7);  // merged in place
    wan::merge_lora_deltas(merged_w, deltas, one_lora());
    const WanTransformer merged = bench::wan_transformer(two, merged_w, WanPrecision::f32, Device::cpu());
    const WanTransformer plain = bench::wan_transformer(two, base, WanPrecision::f32, Device::cpu());
    const bench::WanForwardInputs& in = bench::wan_forward_inputs();
    const std::vector<float> a = runtime.forward(*be, in.latents, in.t, in.text).to_floats();
    const std::vector<float> b = merged.forward(*be, in.latents, in.t, in.text).to_floats();
    const std::vector<float> c = plain.forward(*be, in.latents, in.t, in.text).to_floats();
    return bench::relative_l2(b, c) >= 1e-3 ? bench::relative_l2(a, b) : 1.0;
  }();
  state.counters["check_rel_l2"] = err;
  if (!(err <= 1e-5)) {
    state.SkipWithError(("runtime LoRA vs merged check failed: relative L2 " + std::to_string(err)).c_str());
    return false;
  }
  return true;
}

const wan::WanWeights& base_weights() {
  static const wan::WanWeights w = wan::random_weights(bench::wan_t2v_1_3b(), WanPrecision::bf16, 7);
  return w;
}

double time_forward(benchmark::State& state, const WanTransformer& dit) {
  auto be = make_cpu_backend();
  const bench::WanForwardInputs& in = bench::wan_forward_inputs();
  (void)dit.forward(*be, in.latents, in.t, in.text);  // oneDNN primitives built and cached
  const bench::LoopTimes times = bench::time_iterations(state, [&] { return dit.forward(*be, in.latents, in.t, in.text); });
  return times.wall_s / double(state.iterations());
}

double base_seconds = 0;

void bench_base(benchmark::State& state) {
  if (!checked(state)) return;
  const WanTransformer dit = bench::wan_transformer(bench::wan_t2v_1_3b(), base_weights(), WanPrecision::bf16, Device::cpu());
  base_seconds = time_forward(state, dit);
  state.counters["seconds_per_forward"] = base_seconds;
}

void bench_runtime(benchmark::State& state) {
  if (!checked(state)) return;
  const WanConfig cfg = bench::wan_t2v_1_3b();
  const std::vector<wan::LoraDelta> deltas = random_lora(cfg, state.range(0), base_weights());
  const float strength = 1.0f;
  const WanTransformer dit = bench::wan_transformer(
      cfg, wan::compose_lora_deltas(base_weights(), deltas, {&strength, 1}, Device::cpu()), WanPrecision::bf16,
      Device::cpu());
  const double s = time_forward(state, dit);
  state.counters["seconds_per_forward"] = s;
  if (base_seconds > 0) state.counters["overhead"] = s / base_seconds;
}

void bench_merge(benchmark::State& state) {
  if (!checked(state)) return;
  const WanConfig cfg = bench::wan_t2v_1_3b();
  const std::vector<wan::LoraDelta> deltas = random_lora(cfg, state.range(0), base_weights());
  double total = 0;
  for (auto _ : state) {
    wan::WanWeights w = base_weights();  // private copies, as the loader's (the merge writes in place)
    for (const wan::LoraDelta& d : deltas) wan::param(w, d.target) = wan::param(w, d.target).clone();
    const auto t0 = std::chrono::steady_clock::now();
    wan::merge_lora_deltas(w, deltas, one_lora());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    total += s;
  }
  state.counters["merge_seconds"] = total / double(state.iterations());
  // The floor: one copy of the same 300 weights (what a merge must at least write), timed here.
  const auto t0 = std::chrono::steady_clock::now();
  wan::WanWeights copy = base_weights();
  for (const wan::LoraDelta& d : deltas) wan::param(copy, d.target) = wan::param(copy, d.target).clone();
  state.counters["load_copy_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("model", "Wan2.1-T2V-1.3B shapes, random bf16 weights, latents [1,16,5,32,32]");
  benchmark::RegisterBenchmark("lora_forward/none", bench_base)->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("lora_forward/runtime/rank", bench_runtime)
      ->Arg(32)->Arg(128)->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RegisterBenchmark("lora_merge/rank", bench_merge)->Arg(32)->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
