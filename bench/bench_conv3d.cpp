// Conv3d (NCDHW) through the CPU backend on the Wan VAE shapes of
// bench/shapes/conv3d_wan_vae.txt, in f32 and bf16. Each case first checks sampled outputs
// against a double-precision direct convolution (bound γ_{K+1}·Σ|x·w| with K = Cin·kd·kh·kw,
// plus the bf16 output rounding), then times.
// Counters: gflops (2·Cout·Cin·kd·kh·kw·outputs per call / wall time), of_ceiling (fraction
// of the measured oneDNN bf16 GEMM rate, bench/common/ceiling.hpp) and gflops_per_cpu_s (per
// CPU-second of the process, all threads: steadier than wall time on a shared machine).
//
//   bench_conv3d --benchmark_format=json
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "common/checks.hpp"
#include "common/measure.hpp"
#include "common/shapes.hpp"
#include "reel/ops.hpp"

namespace {

using namespace reel;

struct ConvShape {
  int64_t n, ci, d, h, w, co, kd, kh, kw;
  int pd, ph, pw;
};

std::string verify(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const ConvShape& s,
                   DType t) {
  const std::vector<float> xv = x.to_floats(), wv = w.to_floats(), bv = b.to_floats(), ov = out.to_floats();
  const int64_t od = out.dim(2), oh = out.dim(3), ow = out.dim(4);
  const int64_t k = s.ci * s.kd * s.kh * s.kw;
  const double ut = bench::output_rounding(t);
  std::mt19937_64 rng(7);
  for (int sample = 0; sample < 12; ++sample) {
    const int64_t oc = int64_t(rng() % uint64_t(s.co)), z = int64_t(rng() % uint64_t(od)),
                  y = int64_t(rng() % uint64_t(oh)), xx = int64_t(rng() % uint64_t(ow));
    double ref = bv[size_t(oc)], abs_sum = std::abs(ref);
    for (int64_t c = 0; c < s.ci; ++c)
      for (int64_t dz = 0; dz < s.kd; ++dz)
        for (int64_t dy = 0; dy < s.kh; ++dy)
          for (int64_t dx = 0; dx < s.kw; ++dx) {
            const int64_t zi = z - s.pd + dz, yi = y - s.ph + dy, xi = xx - s.pw + dx;
            if (zi < 0 || zi >= s.d || yi < 0 || yi >= s.h || xi < 0 || xi >= s.w) continue;
            const double p = double(xv[size_t(((c * s.d + zi) * s.h + yi) * s.w + xi)]) *
                             wv[size_t((((oc * s.ci + c) * s.kd + dz) * s.kh + dy) * s.kw + dx)];
            ref += p;
            abs_sum += std::abs(p);
          }
    const double bound = bench::dot_error_bound(k, abs_sum, ref, ut);
    const double got = ov[size_t(((oc * od + z) * oh + y) * ow + xx)];
    if (!(std::abs(got - ref) <= bound))
      return "out[0, " + std::to_string(oc) + ", " + std::to_string(z) + ", " + std::to_string(y) + ", " +
             std::to_string(xx) + "] = " + std::to_string(got) + ", reference " + std::to_string(ref);
  }
  return {};
}

void bench_conv(benchmark::State& state, ConvShape s, DType t) {
  auto be = make_cpu_backend();
  const Tensor x = bench::random_signed_tensor({s.n, s.ci, s.d, s.h, s.w}, 1, t),
               w = bench::random_signed_tensor({s.co, s.ci, s.kd, s.kh, s.kw}, 2, t),
               b = bench::random_signed_tensor({s.co}, 3, t);
  const std::array<int, 3> stride{1, 1, 1}, padding{s.pd, s.ph, s.pw};
  Tensor out = ops::conv3d(*be, x, w, &b, stride, padding);  // builds and caches the primitive
  if (std::string err = verify(x, w, b, out, s, t); !err.empty()) {
    state.SkipWithError(("result check failed: " + err).c_str());
    return;
  }
  const op::Conv3d op{&x, &w, &b, &out, stride, padding};
  const bench::LoopTimes times = bench::time_iterations(state, [&] { be->run(op); });
  bench::set_gflops_counters(state, 2.0 * double(s.co * s.ci * s.kd * s.kh * s.kw) * double(out.numel() / s.co),
                             times);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::add_ceiling_context();
  for (const auto& r : bench::read_shapes("conv3d_wan_vae.txt", 12)) {
    const ConvShape s{r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], int(r[9]), int(r[10]), int(r[11])};
    for (DType t : {DType::bf16, DType::f32}) {
      const std::string name = std::string("conv3d/") + std::string(dtype_name(t)) + "/x" + std::to_string(s.n) + "_" +
                               std::to_string(s.ci) + "_" + std::to_string(s.d) + "_" + std::to_string(s.h) + "_" +
                               std::to_string(s.w) + "_co" + std::to_string(s.co) + "_k" + std::to_string(s.kd) +
                               std::to_string(s.kh) + std::to_string(s.kw);
      benchmark::RegisterBenchmark(name.c_str(), bench_conv, s, t)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
