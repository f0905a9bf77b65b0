#include "common/ceiling.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <utility>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "common/measure.hpp"
#include "reel/backend.hpp"

namespace reel::bench {

namespace {

// {wall-clock rate, CPU-time rate} in TFLOP/s; the CPU-time rate divides the process CPU time
// by the thread count, so it shows what the threads do while they run (on a shared machine,
// time waiting for a core does not count).
std::pair<double, double> measure() {
  using namespace dnnl;
  const int64_t n = 2048;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  memory::desc a({n, n}, memory::data_type::bf16, memory::format_tag::ab);
  memory::desc b({n, n}, memory::data_type::bf16, memory::format_tag::any);
  memory::desc c({n, n}, memory::data_type::f32, memory::format_tag::ab);
  matmul::primitive_desc pd(matmul::desc(a, b, c), eng);
  memory ma(a, eng), mb(pd.weights_desc(), eng), mc(c, eng);
  // Non-zero inputs (bf16 1.0 = 0x3f80, 0.5 = 0x3f00): the timing does not depend on values.
  std::fill_n(static_cast<uint16_t*>(ma.get_data_handle()), n * n, uint16_t(0x3f80));
  std::fill_n(static_cast<uint16_t*>(mb.get_data_handle()), pd.weights_desc().get_size() / 2, uint16_t(0x3f00));
  matmul mm(pd);
  double best = 1e30, best_cpu = 1e30;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    mm.execute(st, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    st.wait();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double c = (process_cpu_seconds() - c0) / num_threads();
    if (i > 0) best = std::min(best, s), best_cpu = std::min(best_cpu, c);  // first run is warm-up
  }
  const double flops = 2.0 * double(n) * n * n;
  return {flops / best / 1e12, flops / best_cpu / 1e12};
}

std::pair<double, double> cached() {
  static std::once_flag once;
  static std::pair<double, double> value;
  std::call_once(once, [] { value = measure(); });
  return value;
}
}  // namespace

double bf16_gemm_ceiling_tflops() { return cached().first; }

double bf16_gemm_ceiling_cpu_time_tflops() { return cached().second; }

}  // namespace reel::bench
