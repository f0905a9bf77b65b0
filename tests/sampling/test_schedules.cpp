// Schedules against diffusers (tests/fixtures/samplers/schedules.safetensors): the three flow
// schedules for 1, 2, 10, 50 steps and shifts 1, 3, 5, 16; Karras, exponential and beta sigma
// shapes; the registry; and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "reel/schedule.hpp"
#include "sampling/sampler_fixtures.hpp"

namespace reel::test {
namespace {

// Relative error per element. The flow schedules are computed with the same float64 ops as numpy
// and cast to f32, so they should agree to the bit; the bound is the 1e-6.
constexpr double kScheduleTol = 1e-6;

double rel(double got, double want) { return want == 0 ? std::abs(got) : std::abs(got - want) / std::abs(want); }

TEST(Schedules, FlowSchedulesMatchDiffusers) {
  const auto manifest = sampler_manifest();
  const SafetensorsFixture fx((fixtures_dir() / "samplers" / "schedules.safetensors").string());
  int checked = 0, bit_exact = 0;
  for (const auto& s : manifest.at("schedules")) {
    const std::string key = s.at("key"), kind = s.at("scheduler");
    const int steps = s.at("steps");
    const double shift = s.at("shift");
    const Schedule got = kind == "unipc"   ? flow_unipc_schedule(steps, shift)
                         : kind == "euler" ? flow_euler_schedule(steps, shift)
                                           : flow_dpm_schedule(steps, shift);
    const auto& sig = fx.at(key + ".sigmas");
    const auto& ts = fx.at(key + ".timesteps");
    ASSERT_EQ(got.sigmas.size(), sig.size()) << key;
    ASSERT_EQ(got.timesteps.size(), ts.size()) << key;
    ASSERT_EQ(got.steps(), steps) << key;
    for (size_t i = 0; i < sig.size(); ++i) {
      EXPECT_LE(rel(got.sigmas[i], sig[i]), kScheduleTol) << key << " sigma " << i;
      bit_exact += double(got.sigmas[i]) == sig[i];
    }
    for (size_t i = 0; i < ts.size(); ++i) {
      if (kind == "euler") {
        EXPECT_LE(rel(got.timesteps[i], ts[i]), kScheduleTol) << key << " timestep " << i;
      } else {
        EXPECT_EQ(double(got.timesteps[i]), ts[i]) << key << " timestep " << i << " (an integer truncation)";
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3 * 4 * 4);
  std::printf("flow schedules: %d sigmas bit-exact\n", bit_exact);
}

// reference/wan.md §3.1: N=50, shift 3.
TEST(Schedules, UniPCWanDefaultValues) {
  const Schedule s = flow_unipc_schedule(50, 3.0);
  EXPECT_FLOAT_EQ(s.sigmas[0], 0.99999899f);
  EXPECT_FLOAT_EQ(s.sigmas[1], 0.99325007f);
  EXPECT_FLOAT_EQ(s.sigmas[2], 0.98631543f);
  EXPECT_FLOAT_EQ(s.sigmas[48], 0.11357587f);
  EXPECT_FLOAT_EQ(s.sigmas[49], 0.06040539f);
  EXPECT_EQ(s.sigmas[50], 0.0f);
  EXPECT_EQ(s.timesteps.front(), 999.0f);
  EXPECT_EQ(s.timesteps[1], 993.0f);
  EXPECT_EQ(s.timesteps.back(), 60.0f);
}

TEST(Schedules, SigmaShapesMatchDiffusers) {
  const auto manifest = sampler_manifest();
  const SafetensorsFixture fx((fixtures_dir() / "samplers" / "schedules.safetensors").string());
  int checked = 0;
  for (const auto& s : manifest.at("sigma_shapes")) {
    const std::string key = s.at("key"), shape = s.at("shape");
    const int steps = s.at("steps");
    const double lo = s.at("sigma_min"), hi = s.at("sigma_max");
    const Schedule got = shape == "karras"        ? karras_schedule(steps, lo, hi)
                         : shape == "exponential" ? exponential_schedule(steps, lo, hi)
                                                  : beta_schedule(steps, lo, hi);
    const auto& want = fx.at(key);  // float64, without the final 0
    ASSERT_EQ(got.sigmas.size(), want.size() + 1) << key;
    // f32 sigmas against float64 references: rounding alone is 6e-8 relative.
    for (size_t i = 0; i < want.size(); ++i) EXPECT_LE(rel(got.sigmas[i], want[i]), kScheduleTol) << key << " " << i;
    EXPECT_EQ(got.sigmas.back(), 0.0f) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 18);
}

TEST(Schedules, BetaPpfInvertsTheCdf) {
  // Symmetric Beta(a, a): the median is 1/2; Beta(1, 1) is uniform, its ppf the identity.
  EXPECT_NEAR(beta_ppf(0.5, 0.6, 0.6), 0.5, 1e-12);
  EXPECT_NEAR(beta_ppf(0.3, 1.0, 1.0), 0.3, 1e-12);
  // Beta(2, 1): CDF x², ppf √p.
  EXPECT_NEAR(beta_ppf(0.49, 2.0, 1.0), 0.7, 1e-12);
  EXPECT_EQ(beta_ppf(0.0, 0.6, 0.6), 0.0);
  EXPECT_EQ(beta_ppf(1.0, 0.6, 0.6), 1.0);
  EXPECT_THROW(beta_ppf(1.5, 0.6, 0.6), Error);
  EXPECT_THROW(beta_ppf(0.5, 0.0, 0.6), Error);
}

TEST(Schedules, FlowAndUniformShapes) {
  const Schedule f = flow_schedule(4, 3.0, 0.999, 0.0);  // original Wan's solver sigmas
  ASSERT_EQ(f.sigmas.size(), 5u);
  EXPECT_FLOAT_EQ(f.sigmas[0], float(flow_shift(0.999, 3.0)));
  EXPECT_FLOAT_EQ(f.sigmas[2], float(flow_shift(0.4995, 3.0)));
  EXPECT_EQ(f.sigmas[4], 0.0f);
  EXPECT_FLOAT_EQ(f.timesteps[0], f.sigmas[0] * 1000.0f);
  const Schedule u = uniform_schedule(4);
  EXPECT_EQ(u.sigmas, (std::vector<float>{1.0f, 0.75f, 0.5f, 0.25f, 0.0f}));
  EXPECT_EQ(flow_shift(0.5, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(flow_shift(0.5, 3.0), 0.75);
}

TEST(Schedules, CustomSigmas) {
  const std::vector<float> sigmas{0.9f, 0.5f, 0.1f, 0.0f};
  const Schedule s = custom_schedule(sigmas);
  EXPECT_EQ(s.sigmas, sigmas);
  EXPECT_EQ(s.timesteps, (std::vector<float>{900.0f, 500.0f, 100.0f}));
  EXPECT_THROW(custom_schedule(std::vector<float>{0.5f}), Error);
  EXPECT_THROW(custom_schedule(std::vector<float>{0.5f, 0.7f}), Error);
  EXPECT_THROW(custom_schedule(std::vector<float>{0.5f, NAN}), Error);
  EXPECT_THROW(custom_schedule(std::vector<float>{0.5f, -0.1f}), Error);
}

TEST(Schedules, RegistryByName) {
  const Schedule a = make_schedule("flow_unipc:shift=3", 50);
  EXPECT_EQ(a.sigmas, flow_unipc_schedule(50, 3.0).sigmas);
  EXPECT_EQ(make_schedule("flow_euler:shift=5", 10).timesteps, flow_euler_schedule(10, 5.0).timesteps);
  EXPECT_EQ(make_schedule("karras:sigma_min=0.03,sigma_max=14.6,rho=7", 7).sigmas,
            karras_schedule(7, 0.03, 14.6, 7.0).sigmas);
  std::vector<std::string> names;
  for (const auto& e : list_schedules()) names.push_back(e.name);
  for (const char* n : {"flow_unipc", "flow_euler", "flow_dpm", "flow", "uniform", "karras", "exponential", "beta"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;

  // A schedule added from outside the library.
  register_schedule("test_linear_quadratic", "test schedule", [](int steps, const Options& o) {
    const double p = o.get_double("power", 2.0);
    std::vector<float> s;
    for (int i = 0; i <= steps; ++i) s.push_back(float(std::pow(1.0 - double(i) / steps, p)));
    return custom_schedule(s);
  });
  EXPECT_EQ(make_schedule("test_linear_quadratic:power=1", 4).sigmas, uniform_schedule(4).sigmas);
}

TEST(Schedules, BadInputIsAnError) {
  const auto code = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()), "");
      return e.code();
    }
    return StatusCode::ok;
  };
  EXPECT_EQ(code([] { make_schedule("no_such_schedule", 10); }), StatusCode::not_found);
  EXPECT_EQ(code([] { make_schedule("flow_unipc:shfit=3", 10); }), StatusCode::invalid_argument);  // misspelled
  EXPECT_EQ(code([] { make_schedule("flow_unipc:shift=abc", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("flow_unipc:shift", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("flow_unipc", 0); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("flow_unipc:shift=-1", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("karras:sigma_min=2,sigma_max=1", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("exponential:sigma_min=0", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("flow:sigma_max=2", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { make_schedule("", 10); }), StatusCode::invalid_argument);
  EXPECT_EQ(code([] { register_schedule("flow_unipc", "dup", [](int, const Options&) { return Schedule{}; }); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(code([] { register_schedule("bad:name", "x", [](int, const Options&) { return Schedule{}; }); }),
            StatusCode::invalid_argument);
}

}  // namespace
}  // namespace reel::test
