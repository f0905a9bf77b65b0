// A sampler written outside the library (the explicit midpoint method), registered by name and
// then used by name, on a problem with a known answer: Gaussian data, whose exact denoiser and
// ODE solution reel::GaussianDenoiser provides. Prints the error against Euler's.
#include <cmath>
#include <cstdio>

#include "reel/gaussian_denoiser.hpp"
#include "reel/samplers.hpp"

// Midpoint (RK2) on dx/dσ = (x − x0)/σ. Every sampler has this one signature; the helpers
// start_sample, check_sigmas, denoise_checked and StepReporter (reel/sampler.hpp) do what every
// built-in sampler does around its update rule: checks, the f32 copy, progress and cancel.
class MidpointSampler final : public reel::Sampler {
 public:
  std::string name() const override { return "midpoint"; }
  reel::Tensor sample(reel::Denoiser& d, reel::Tensor x_in, std::span<const float> sigmas, reel::Rng&,
                      reel::StepObserver& observer) override {
    reel::Tensor x = reel::start_sample(x_in, "midpoint");  // a private f32 CPU copy
    reel::check_sigmas(sigmas, d.path(), "midpoint");
    reel::StepReporter report(observer, d, sigmas, "midpoint");
    float* p = x.data<float>();
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const float s = sigmas[i], sn = sigmas[i + 1], sm = 0.5f * (s + sn);
      const reel::Tensor x0 = reel::denoise_checked(d, x, s, "midpoint").x0;
      reel::Tensor xm = x.clone();
      float* m = xm.data<float>();
      for (int64_t j = 0; j < x.numel(); ++j) m[j] += (sm - s) * (p[j] - x0.data<float>()[j]) / s;
      const reel::Tensor x0m = reel::denoise_checked(d, xm, sm, "midpoint").x0;
      for (int64_t j = 0; j < x.numel(); ++j) p[j] += (sn - s) * (m[j] - x0m.data<float>()[j]) / sm;
      report.end_step(int(i), x, x0, /*model_calls=*/2);  // throws cancelled when the observer asks
    }
    return x;
  }
};

int main() {
  // Registered with the schedule a pipeline pairs it with when a request names no schedule.
  reel::register_sampler("midpoint", "explicit midpoint, 2 model calls a step",
                         [](const reel::Options&) { return std::make_unique<MidpointSampler>(); }, "flow_euler");

  reel::GaussianDenoiser denoiser(reel::NoisePath::flow, /*mean=*/0.3, /*std=*/0.2);
  const reel::Schedule schedule = reel::make_schedule("flow:shift=3,sigma_max=0.95,sigma_min=0.05", 20);
  reel::Rng rng(42);
  const reel::Tensor x = rng.normal({4096});
  const reel::Tensor exact = denoiser.transport(x, schedule.sigmas.front(), schedule.sigmas.back());
  reel::NoObserver quiet;
  for (const char* name : {"midpoint", "euler", "heun"}) {
    const reel::Tensor got = reel::make_sampler(name)->sample(denoiser, x, schedule.sigmas, rng, quiet);
    double err = 0;
    for (int64_t i = 0; i < x.numel(); ++i)
      err = std::fmax(err, std::fabs(got.data<float>()[i] - exact.data<float>()[i]));
    std::printf("%-9s 20 steps: max error vs the exact ODE solution %.2e\n", name, err);
  }
}
