// Whole step sequences against diffusers: UniPC (bh1/bh2, orders 1–3), FlowMatchEuler and
// DPMSolverMultistep in flow mode, f32 and bf16 model outputs (tests/fixtures/samplers/).
// The "model" replays the outputs diffusers saw; every intermediate sample is compared.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "reel/samplers.hpp"
#include "sampling/sampler_fixtures.hpp"

namespace reel::test {
namespace {

// Relative error bound for a whole trajectory. Every op is reproduced in the same f32 order as
// torch; what remains is libm vs torch (1 ulp in log/expm1 of the step scalars) and UniPC's
// 2×2/3×3 solve (double here, LAPACK f32 there): a few f32 ulps (6e-8) per step.
constexpr double kTrajectoryTol = 1e-6;

struct Replay {
  const std::vector<double>* outputs;
  const std::vector<double>* samples;
  const std::vector<double>* timesteps;
  size_t cols;
  DType dtype;
  int calls = 0;
  double worst_input_error = 0;
};

Schedule schedule_for(const std::string& kind, int steps, double shift) {
  if (kind == "unipc") return flow_unipc_schedule(steps, shift);
  if (kind == "euler") return flow_euler_schedule(steps, shift);
  return flow_dpm_schedule(steps, shift);
}

std::unique_ptr<Sampler> sampler_for(const nlohmann::json& run) {
  const std::string kind = run.at("scheduler");
  if (kind == "euler") return make_euler_sampler();
  if (kind == "dpm") return make_dpmpp_2m_sampler();
  UniPCConfig c;
  c.order = run.at("order");
  c.variant = run.at("solver_type") == "bh1" ? UniPCVariant::bh1 : UniPCVariant::bh2;
  return make_unipc_sampler(c);
}

class DiffusersParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusersParity, WholeTrajectoryMatches) {
  const auto manifest = sampler_manifest();
  nlohmann::json run;
  for (const auto& r : manifest.at("runs"))
    if (r.at("name") == GetParam()) run = r;
  ASSERT_FALSE(run.is_null()) << "run " << GetParam() << " is not in the manifest";
  const SafetensorsFixture fx((fixtures_dir() / "samplers" / "trajectories.safetensors").string());
  const std::string name = run.at("name"), kind = run.at("scheduler");
  const int steps = run.at("steps");
  const size_t cols = 120;  // latent [1, 4, 2, 3, 5]
  const Shape shape{1, 4, 2, 3, 5};

  // The schedule reel computes must be diffusers' (checked element by element in test_schedules).
  const Schedule schedule = schedule_for(kind, steps, run.at("shift"));
  const auto& ref_sigmas = fx.at(name + ".sigmas");
  ASSERT_EQ(schedule.sigmas.size(), ref_sigmas.size());
  for (size_t i = 0; i < ref_sigmas.size(); ++i) ASSERT_EQ(double(schedule.sigmas[i]), ref_sigmas[i]) << "sigma " << i;

  Replay replay{&fx.at(name + ".model_outputs"), &fx.at(name + ".samples"), &fx.at(name + ".timesteps"), cols,
                run.at("model_dtype") == "bf16" ? DType::bf16 : DType::f32};
  FlowDenoiser denoiser(
      [&](const Tensor& x, float t) {
        const size_t k = size_t(replay.calls++);
        EXPECT_LT(k, size_t(steps)) << "more model calls than steps";
        EXPECT_EQ(double(t), (*replay.timesteps)[k]) << "model timestep at step " << k;
        replay.worst_input_error =
            std::max(replay.worst_input_error, relative_l2(to_doubles(x), row(*replay.samples, k, cols)));
        const std::vector<double> v = row(*replay.outputs, k, cols);
        return Tensor::from_floats(shape, std::vector<float>(v.begin(), v.end()), replay.dtype);  // exact in dtype
      },
      schedule_timesteps(schedule));

  std::vector<std::vector<double>> got_x, got_x0;
  CallbackObserver observer([&](const StepInfo& s) {
    got_x.push_back(to_doubles(s.x));
    got_x0.push_back(to_doubles(s.x0));
    EXPECT_EQ(s.total, steps);
    return StepAction::proceed;
  });
  Rng rng(0);
  const std::vector<double> x_init = row(fx.at(name + ".samples"), 0, cols);
  const Tensor x = Tensor::from_floats(shape, std::vector<float>(x_init.begin(), x_init.end()));
  const Tensor out = sampler_for(run)->sample(denoiser, x, schedule.sigmas, rng, observer);

  ASSERT_EQ(replay.calls, steps);
  ASSERT_EQ(int(got_x.size()), steps);
  EXPECT_LE(replay.worst_input_error, kTrajectoryTol) << "a model input differed from diffusers' sample";
  const bool nan_last = run.at("solver_type") == "bh1";  // diffusers' bh1 ends in NaN (see samplers.hpp)
  double worst = 0;
  for (int k = 0; k < steps; ++k) {
    const std::vector<double> want = row(fx.at(name + ".samples"), size_t(k) + 1, cols);
    if (nan_last && k == steps - 1) {
      ASSERT_TRUE(std::isnan(want[0])) << "the fixture's bh1 run no longer ends in NaN: revisit this test";
      EXPECT_EQ(got_x[size_t(k)], got_x0[size_t(k)]) << "the last step to sigma 0 must return x0";
      continue;
    }
    const double err = relative_l2(got_x[size_t(k)], want);
    worst = std::max(worst, err);
    EXPECT_LE(err, kTrajectoryTol) << name << ": sample after step " << k;
    if (run.at("has_x0")) {
      EXPECT_LE(relative_l2(got_x0[size_t(k)], row(fx.at(name + ".x0"), size_t(k), cols)), kTrajectoryTol)
          << name << ": x0 prediction at step " << k;
    }
  }
  EXPECT_EQ(to_doubles(out), got_x.back());
  RecordProperty("worst_relative_l2", std::to_string(worst));
  std::printf("%-24s worst relative L2 over %d steps: %.3g\n", name.c_str(), steps, worst);
}

INSTANTIATE_TEST_SUITE_P(Runs, DiffusersParity,
                         ::testing::Values("unipc_bh2_o2_n10_f32", "unipc_bh2_o2_n50_f32", "unipc_bh2_o2_n10_bf16",
                                           "unipc_bh2_o2_n50_bf16", "unipc_bh2_o1_n10_f32", "unipc_bh2_o3_n10_f32",
                                           "unipc_bh2_o3_n50_f32", "unipc_bh1_o2_n10_f32", "unipc_bh1_o3_n10_f32",
                                           "euler_n10_f32", "euler_n50_bf16", "euler_n10_bf16", "dpm_n10_f32",
                                           "dpm_n50_f32", "dpm_n10_bf16"),
                         [](const auto& info) { return info.param; });

// Every run in the manifest is covered by the list above.
TEST(DiffusersParity, EveryFixtureRunIsTested) {
  const auto manifest = sampler_manifest();
  EXPECT_EQ(manifest.at("runs").size(), 15u);
}

// The dtype option matters: on a bf16 run, keeping σ·v in f32 must move UniPC off diffusers'
// trajectory (by about a bf16 rounding of σ·v, ~4e-3 relative), and Euler's f32 mode too.
TEST(DiffusersParity, ExactDtypeBehaviourIsOptional) {
  const SafetensorsFixture fx((fixtures_dir() / "samplers" / "trajectories.safetensors").string());
  const Shape shape{1, 4, 2, 3, 5};
  for (const std::string name : {"unipc_bh2_o2_n10_bf16", "euler_n10_bf16"}) {
    const bool unipc = name.starts_with("unipc");
    const Schedule schedule = unipc ? flow_unipc_schedule(10, 3.0) : flow_euler_schedule(10, 5.0);
    int calls = 0;
    FlowDenoiser denoiser(
        [&](const Tensor&, float) {
          const auto v = row(fx.at(name + ".model_outputs"), size_t(calls++), 120);
          return Tensor::from_floats(shape, std::vector<float>(v.begin(), v.end()), DType::bf16);
        },
        schedule_timesteps(schedule), {.round_product_to_output_dtype = false});
    const auto x_init = row(fx.at(name + ".samples"), 0, 120);
    Rng rng(0);
    NoObserver none;
    auto sampler = unipc ? make_unipc_sampler() : make_euler_sampler({.follow_model_dtype = false});
    const Tensor out = sampler->sample(denoiser, Tensor::from_floats(shape, std::vector<float>(x_init.begin(), x_init.end())),
                                       schedule.sigmas, rng, none);
    const double err = relative_l2(to_doubles(out), row(fx.at(name + ".samples"), 10, 120));
    EXPECT_GT(err, 1e-5) << name << ": the f32 option should differ from diffusers' bf16 arithmetic";
    EXPECT_LT(err, 2e-2) << name << ": but only by bf16 roundings";
  }
}

}  // namespace
}  // namespace reel::test
