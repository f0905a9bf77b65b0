// Sequence parallel on the CPU: run it under MPI, e.g.
//   mpirun -np 2 --bind-to none build/bench/bench_sequence_parallel --benchmark_format=json
// One Wan2.1-T2V-1.3B-shaped forward (random bf16 weights, 1 280 latent tokens, 512 text
// tokens) made by rank 0 alone on every core (the reference, measured in the same run), then
// split over all ranks (cores / ranks threads each) as Ulysses and as ring. Checked first: the
// split output against rank 0's one-process output (which is also the warm-up). Counters:
// seconds per forward, the ratio to the one-process forward, the peak of activation memory on
// each rank (resident peak during the timed forward minus resident before it: the weights and
// the warm-up's caches are resident before), and the bytes this rank sent to other ranks per
// forward through each collective. Only rank 0 reports.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <thread>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/wan_shapes.hpp"
#include "distributed/sequence_parallel.hpp"
#include "reel/distributed.hpp"

namespace reel {
namespace {

std::shared_ptr<Communicator>& world() {
  static std::shared_ptr<Communicator> w = mpi_world();
  return w;
}

const WanTransformer& model() {
  static const WanTransformer dit = bench::random_wan_transformer(bench::wan_t2v_1_3b(), WanPrecision::bf16, 7);
  return dit;
}

int cores() { return std::max(1, int(std::thread::hardware_concurrency())); }

// Rank 0's one-process output and seconds per forward (every core).
Tensor reference;
double reference_seconds = 0;

// The timed loop's seconds per call, and its peak of resident memory above what was resident
// before it (the weights, caches of the warm-up call): the activations.
struct Timed {
  double seconds = 0, activation_mb = 0;
};
template <class Fn>
Timed timed(benchmark::State& state, Fn&& fn) {
  bench::reset_peak_resident();
  const int64_t before = bench::proc_status_kb("VmRSS:");
  const bench::LoopTimes t = bench::time_iterations(state, fn);
  return {t.wall_s / double(state.iterations()), double(bench::proc_status_kb("VmHWM:") - before) / 1024.0};
}

void bench_one_process(benchmark::State& state) {
  const bool root = world()->rank() == 0;
  double activation_mb = 0;
  (void)model();  // the weights are made before anything is measured
  if (root) {
    auto be = make_cpu_backend({.threads = cores()});
    const bench::WanForwardInputs& in = bench::wan_forward_inputs();
    reference = model().forward(*be, in.latents, in.t, in.text);  // warm-up
    const Timed t = timed(state, [&] { return model().forward(*be, in.latents, in.t, in.text); });
    reference_seconds = t.seconds;
    activation_mb = t.activation_mb;
  } else {
    for (auto _ : state) state.SetIterationTime(0);
  }
  agree(*world(), nullptr);  // the other ranks wait here (sleeping, not spinning)
  state.counters["seconds_per_forward"] = reference_seconds;
  state.counters["activation_mb"] = activation_mb;
  state.counters["threads"] = cores();
}

void bench_split(benchmark::State& state, int ulysses, int ring) {
  const int ranks = world()->size();
  const WanTransformer sp = model().with_sequence_parallel({world(), ulysses, ring});  // weights shared
  auto be = make_cpu_backend({.threads = std::max(1, cores() / ranks)});
  const bench::WanForwardInputs& in = bench::wan_forward_inputs();
  const dist::SpGroups& groups = *wan_impl(sp).sp;
  const Tensor out = sp.forward(*be, in.latents, in.t, in.text);  // warm-up
  // The check: rank 0 compares with its one-process output, and every rank learns the verdict.
  std::exception_ptr wrong;
  if (world()->rank() == 0) {
    const double err = bench::relative_l2(out.to(DType::f32).to_floats(), reference.to(DType::f32).to_floats());
    state.counters["check_rel_l2"] = err;
    if (!(err <= 2e-2)) wrong = std::make_exception_ptr(Error(StatusCode::internal, "relative L2 " + std::to_string(err)));
  }
  try {
    agree(*world(), wrong);
  } catch (const Error& e) {
    state.SkipWithError((std::string("split forward differs from one process: ") + e.what()).c_str());
    return;
  }
  const int64_t a2a0 = groups.bytes.all_to_all, ring0 = groups.bytes.ring, gather0 = groups.bytes.gather;
  const Timed t = timed(state, [&] { return sp.forward(*be, in.latents, in.t, in.text); });
  const double n = double(state.iterations()), seconds = t.seconds, activation_mb = t.activation_mb;
  state.counters["seconds_per_forward"] = seconds;
  if (reference_seconds > 0) state.counters["speedup_vs_one_process"] = reference_seconds / seconds;
  state.counters["activation_mb"] = activation_mb;
  state.counters["all_to_all_mb"] = double(groups.bytes.all_to_all - a2a0) / n / 1048576.0;
  state.counters["ring_mb"] = double(groups.bytes.ring - ring0) / n / 1048576.0;
  state.counters["gather_mb"] = double(groups.bytes.gather - gather0) / n / 1048576.0;
  state.counters["ranks"] = ranks;
  state.counters["threads_per_rank"] = std::max(1, cores() / ranks);
}

class NullReporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace
}  // namespace reel

int main(int argc, char** argv) {
  using namespace reel;
  benchmark::Initialize(&argc, argv);
  const int ranks = world()->size();
  benchmark::AddCustomContext("model", "Wan2.1-T2V-1.3B shapes, random bf16 weights, latents [1,16,5,32,32] (1280 tokens)");
  benchmark::AddCustomContext("ranks", std::to_string(ranks));
  // Fixed iteration counts: every rank must make the same collectives.
  benchmark::RegisterBenchmark("sp_forward/one_process", bench_one_process)
      ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  if (ranks > 1) {
    if (bench::wan_t2v_1_3b().heads % ranks == 0)
      benchmark::RegisterBenchmark("sp_forward/ulysses", [](benchmark::State& s) { bench_split(s, 0, 1); })
          ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
    benchmark::RegisterBenchmark("sp_forward/ring", [](benchmark::State& s) { bench_split(s, 1, 0); })
        ->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  }
  if (world()->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);  // rank 0 reports (use --benchmark_format=json, not --benchmark_out)
  }
  benchmark::Shutdown();
  return 0;
}
