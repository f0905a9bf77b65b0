// Process CPU time, /proc/self/status memory readings and the shared benchmark counters.
#include "common/measure.hpp"

#include <malloc.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <string>

#include "common/ceiling.hpp"
#include "reel/backend.hpp"

namespace reel::bench {

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

int64_t proc_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key)));
  return -1;
}

double peak_resident_mb() {
  const int64_t kb = proc_status_kb("VmHWM:");
  return kb < 0 ? 0.0 : double(kb) / 1024.0;
}

bool reset_peak_resident() {
  ::malloc_trim(0);
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return bool(f);
}

void set_gflops_counters(benchmark::State& state, double flops_per_iteration, const LoopTimes& times) {
  const double flops = flops_per_iteration * double(state.iterations());
  const double rate = flops / times.wall_s;
  state.counters["gflops"] = rate / 1e9;
  state.counters["of_ceiling"] = rate / (bf16_gemm_ceiling_tflops() * 1e12);
  state.counters["gflops_per_cpu_s"] = flops / times.cpu_s / 1e9;
  state.counters["threads"] = num_threads();
}

void set_model_counters(benchmark::State& state, double flops_per_second) {
  state.counters["tflops"] = flops_per_second / 1e12;
  state.counters["of_ceiling"] = flops_per_second / (bf16_gemm_ceiling_tflops() * 1e12);
  state.counters["peak_mb"] = peak_resident_mb();
  state.counters["threads"] = num_threads();
}

void add_ceiling_context() {
  benchmark::AddCustomContext("bf16_gemm_ceiling_tflops", std::to_string(bf16_gemm_ceiling_tflops()));
}

}  // namespace reel::bench
