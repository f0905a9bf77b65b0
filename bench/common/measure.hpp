// What every benchmark measures besides its own work: process CPU time, resident memory (the
// peak, and resetting it), the manually timed iteration loop, and the GFLOP/s counters
// reported against the machine ceiling (ceiling.hpp).
//
//   const bench::LoopTimes t = bench::time_iterations(state, [&] { be->run(op); });
//   bench::set_gflops_counters(state, flops_per_call, t);  // gflops, of_ceiling, gflops_per_cpu_s, threads
//   state.counters["peak_mb"] = bench::peak_resident_mb();
#pragma once
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace reel::bench {

// CPU seconds used by the whole process so far (all threads): on a shared, oversubscribed
// machine work per CPU-second is steadier than work per wall second.
double process_cpu_seconds();

// kB of a "Vm...:" line of /proc/self/status (`key` with its colon, e.g. "VmRSS:"); -1 when absent.
int64_t proc_status_kb(const char* key);
// The process's peak resident memory so far (VmHWM) in MiB; 0 when unreadable.
double peak_resident_mb();
// Hands freed heap memory back to the kernel (so the resident size is what is live), then resets
// the peak (VmHWM) to the current resident size through /proc/self/clear_refs ("5"); false when
// that cannot be written.
bool reset_peak_resident();

// Wall seconds of the timed calls, and process CPU seconds over the whole loop.
struct LoopTimes {
  double wall_s = 0, cpu_s = 0;
};

// Runs fn() once per iteration of `state`, times each call by the wall clock and reports it
// with SetIterationTime (for benchmarks registered with UseManualTime). A value fn returns is
// kept from being optimised away and is destroyed outside the timed span.
template <class Fn>
LoopTimes time_iterations(benchmark::State& state, Fn&& fn) {
  LoopTimes times;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
      fn();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state.SetIterationTime(s);
      times.wall_s += s;
    } else {
      const auto result = fn();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(&result);
      state.SetIterationTime(s);
      times.wall_s += s;
    }
  }
  times.cpu_s = process_cpu_seconds() - cpu0;
  return times;
}

// Counters of a loop that does `flops_per_iteration` per call: gflops (per wall second),
// of_ceiling (that rate over the measured bf16 GEMM ceiling), gflops_per_cpu_s (per CPU second
// of the process, all threads) and threads.
void set_gflops_counters(benchmark::State& state, double flops_per_iteration, const LoopTimes& times);

// Counters of a whole-model benchmark running at `flops_per_second`: tflops, of_ceiling (over
// the measured bf16 GEMM ceiling), peak_mb (the process's VmHWM) and threads.
void set_model_counters(benchmark::State& state, double flops_per_second);

// Adds the context entry "bf16_gemm_ceiling_tflops" (the ceiling, measured now if not yet).
void add_ceiling_context();

}  // namespace reel::bench
