// The sampler interface: registry and options, plug-in samplers, cancel within one step, step
// reports, determinism over thread counts, the denoiser adapters, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/test_util.hpp"
#include "reel/backend.hpp"
#include "reel/gaussian_denoiser.hpp"
#include "reel/samplers.hpp"

namespace reel::test {
namespace {

const std::vector<std::string> kBuiltins{"euler", "euler_a", "heun", "dpmpp_2m", "dpm_flow", "dpmpp_2m_sde", "unipc",
                                         "lcm"};

// Counts model calls; a flow model with a smooth, x-dependent velocity.
struct CountingFlowModel {
  int calls = 0;
  Tensor operator()(const Tensor& x, float t) {
    ++calls;
    Tensor v = Tensor::empty(x.shape(), DType::f32);
    const float* xp = x.data<float>();
    float* vp = v.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) vp[i] = -0.5f * xp[i] + 0.3f * std::sin(xp[i]) + 1e-4f * t;
    return v;
  }
};

TEST(SamplerRegistry, BuiltinsAreListedAndRoundTripTheirNames) {
  std::vector<std::string> names;
  for (const auto& e : list_samplers()) {
    names.push_back(e.name);
    EXPECT_FALSE(e.description.empty()) << e.name;
  }
  for (const auto& n : kBuiltins) {
    ASSERT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    const auto s = make_sampler(n);
    EXPECT_EQ(make_sampler(s->name())->name(), s->name()) << n;  // name() is a spec that recreates it
  }
  EXPECT_EQ(make_sampler("unipc:order=3,variant=bh1")->name(),
            "unipc:order=3,variant=bh1,lower_order_final=true,corrector=true");
}

TEST(SamplerRegistry, BadNamesAndOptions) {
  std::string msg;
  EXPECT_EQ(code_of([] { make_sampler("no_such_sampler"); }, &msg), StatusCode::not_found);
  EXPECT_NE(msg.find("unipc"), std::string::npos) << "the error lists what is registered: " << msg;
  EXPECT_EQ(code_of([] { make_sampler("unipc:ordr=3"); }, &msg), StatusCode::invalid_argument);
  EXPECT_NE(msg.find("ordr"), std::string::npos) << msg;
  EXPECT_EQ(code_of([] { make_sampler("unipc:order=4"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("unipc:order=two"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("unipc:variant=bh3"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("euler_a:eta=-1"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("euler:follow_model_dtype=maybe"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("heun:x=1"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler("unipc:order=2,order=3"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { make_sampler(":order=2"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { register_sampler("unipc", "dup", [](const Options&) { return make_heun_sampler(); }); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { register_sampler("bad name", "x", [](const Options&) { return make_heun_sampler(); }); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { register_sampler("null_factory", "x", nullptr); }), StatusCode::invalid_argument);
}

TEST(Options, ParseAndTypedReads) {
  const auto [name, o] = parse_spec(" unipc : order = 3 , variant=bh1,lower_order_final=off ,x=0.5");
  EXPECT_EQ(name, "unipc");
  EXPECT_EQ(o.get_int("order", 2), 3);
  EXPECT_EQ(o.get_string("variant", "bh2"), "bh1");
  EXPECT_FALSE(o.get_bool("lower_order_final", true));
  EXPECT_DOUBLE_EQ(o.get_double("x", 0), 0.5);
  EXPECT_EQ(o.get_int("absent", 7), 7);
  EXPECT_NO_THROW(o.reject_unused("test"));
  EXPECT_EQ(code_of([] { Options::parse("a=1,,b=2"); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { Options::parse("a=1").get_int("a", 0) + Options::parse("a=1.5").get_int("a", 0); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { Options::parse("a=inf").get_double("a", 0); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { Options::parse("a=99999999999").get_int("a", 0); }), StatusCode::invalid_argument);
}

// A sampler written outside the library (explicit midpoint) with the public helpers,
// registered and used by name.
class MidpointSampler final : public Sampler {
 public:
  std::string name() const override { return "test_midpoint"; }
  Tensor sample(Denoiser& d, Tensor x_in, std::span<const float> sigmas, Rng&, StepObserver& obs) override {
    Tensor x = start_sample(x_in, "test_midpoint");
    check_sigmas(sigmas, d.path(), "test_midpoint");
    StepReporter report(obs, d, sigmas, "test_midpoint");
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const float s = sigmas[i], sn = sigmas[i + 1], sm = 0.5f * (s + sn);
      const Tensor x0 = denoise_checked(d, x, s, "test_midpoint").x0;
      Tensor xm = x.clone();
      for (int64_t j = 0; j < x.numel(); ++j)
        xm.data<float>()[j] += (sm - s) * (x.data<float>()[j] - x0.data<float>()[j]) / s;
      const Tensor x0m = denoise_checked(d, xm, sm, "test_midpoint").x0;
      for (int64_t j = 0; j < x.numel(); ++j)
        x.data<float>()[j] += (sn - s) * (xm.data<float>()[j] - x0m.data<float>()[j]) / sm;
      report.end_step(int(i), x, x0, 2);
    }
    return x;
  }
};

TEST(SamplerRegistry, PluginSamplerIsUsableByName) {
  register_sampler("test_midpoint", "explicit midpoint (test)", [](const Options& o) {
    return std::unique_ptr<Sampler>(new MidpointSampler);
  });
  auto s = make_sampler("test_midpoint");
  EXPECT_EQ(s->name(), "test_midpoint");
  GaussianDenoiser d(NoisePath::flow, 0.3, 0.2);
  Rng rng(0);
  const Tensor x = rng.normal({32});
  NoObserver none;
  const Schedule sch = flow_schedule(40, 3.0, 0.95, 0.05);
  const Tensor out = s->sample(d, x, sch.sigmas, rng, none);
  // Midpoint is 2nd order: at 40 steps it is far closer to the exact ODE solution than Euler.
  const auto want = to_doubles(d.transport(x, sch.sigmas.front(), sch.sigmas.back()));
  const double e_mid = max_abs_diff(to_doubles(out), want);
  const double e_euler = max_abs_diff(to_doubles(make_euler_sampler()->sample(d, x, sch.sigmas, rng, none)), want);
  EXPECT_LT(e_mid, 0.1 * e_euler) << e_mid << " vs " << e_euler;

  // The helpers give it what the built-ins have: checked inputs, step reports, cancel.
  EXPECT_EQ(code_of([&] { s->sample(d, Tensor(), sch.sigmas, rng, none); }), StatusCode::invalid_argument);
  const std::vector<float> rising = {0.2f, 0.5f};
  EXPECT_EQ(code_of([&] { s->sample(d, x, rising, rng, none); }), StatusCode::invalid_argument);
  std::vector<StepInfo> seen;
  CallbackObserver stop_at_3([&](const StepInfo& info) {
    seen.push_back(info);
    return info.step == 2 ? StepAction::cancel : StepAction::proceed;
  });
  EXPECT_EQ(code_of([&] { s->sample(d, x, sch.sigmas, rng, stop_at_3); }), StatusCode::cancelled);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].total, 40);
  EXPECT_EQ(seen[1].model_calls, 2);
  EXPECT_FLOAT_EQ(seen[1].sigma, sch.sigmas[1]);
  EXPECT_FLOAT_EQ(seen[1].timestep, d.timestep(sch.sigmas[1]));
  EXPECT_GE(seen[1].seconds, 0.0);
}

TEST(SamplerCancel, EverySamplerStopsWithinOneStep) {
  const Schedule sch = flow_unipc_schedule(8, 3.0);
  for (const auto& n : kBuiltins) {
    CountingFlowModel model;
    FlowDenoiser d([&](const Tensor& x, float t) { return model(x, t); }, schedule_timesteps(sch));
    int calls_at_cancel = -1, reports = 0;
    CallbackObserver obs([&](const StepInfo& s) {
      ++reports;
      if (s.step == 2) {
        calls_at_cancel = model.calls;
        return StepAction::cancel;
      }
      return StepAction::proceed;
    });
    Rng rng(1);
    std::string msg;
    const StatusCode c = code_of([&] { make_sampler(n)->sample(d, rng.normal({2, 3}), sch.sigmas, rng, obs); }, &msg);
    EXPECT_EQ(c, StatusCode::cancelled) << n;
    EXPECT_NE(msg.find("cancelled"), std::string::npos) << n << ": " << msg;
    EXPECT_EQ(reports, 3) << n;
    EXPECT_EQ(model.calls, calls_at_cancel) << n << ": a model call after the observer cancelled";
  }
}

TEST(SamplerSteps, StepInfoDescribesEachStep) {
  const Schedule sch = flow_unipc_schedule(5, 3.0);
  for (const auto& n : kBuiltins) {
    CountingFlowModel model;
    FlowDenoiser d([&](const Tensor& x, float t) { return model(x, t); }, schedule_timesteps(sch));
    std::vector<StepInfo> seen;
    CallbackObserver obs([&](const StepInfo& s) {
      seen.push_back(s);
      seen.back().x = s.x.clone();
      return StepAction::proceed;
    });
    Rng rng(4);
    const Tensor x = rng.normal({3, 4});
    const auto x_before = to_doubles(x);
    const Tensor out = make_sampler(n)->sample(d, x, sch.sigmas, rng, obs);
    EXPECT_EQ(to_doubles(x), x_before) << n << ": the caller's x was modified";
    ASSERT_EQ(seen.size(), 5u) << n;
    int calls = 0;
    for (int i = 0; i < 5; ++i) {
      const StepInfo& s = seen[size_t(i)];
      EXPECT_EQ(s.step, i);
      EXPECT_EQ(s.total, 5);
      EXPECT_EQ(s.sigma, sch.sigmas[size_t(i)]);
      EXPECT_EQ(s.sigma_next, sch.sigmas[size_t(i) + 1]);
      EXPECT_EQ(s.timestep, sch.timesteps[size_t(i)]) << n << ": the schedule's (truncated) timestep";
      EXPECT_GE(s.seconds, 0.0);
      EXPECT_EQ(s.x.shape(), x.shape());
      EXPECT_EQ(s.x0.shape(), x.shape());
      calls += s.model_calls;
    }
    EXPECT_EQ(calls, model.calls) << n;
    EXPECT_EQ(to_doubles(out), to_doubles(seen.back().x)) << n;
  }
}

// Same seed → same samples on 1 and 2 threads (the latent is large enough to be split).
TEST(SamplerDeterminism, SameSeedSameResultOnOneAndTwoThreads) {
  const Schedule sch = flow_unipc_schedule(4, 3.0);
  const int saved = num_threads();
  for (const auto& n : kBuiltins) {
    std::vector<std::vector<double>> results;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      GaussianDenoiser d(NoisePath::flow, 0.1, 0.5);
      Rng rng(1234);
      const Tensor x = rng.normal({3, 50000});
      NoObserver none;
      results.push_back(to_doubles(make_sampler(n)->sample(d, x, sch.sigmas, rng, none)));
    }
    EXPECT_EQ(results[0], results[1]) << n;
  }
  set_num_threads(saved);
}

TEST(SamplerInput, BadSigmasAndTensorsAreErrors) {
  GaussianDenoiser flow(NoisePath::flow, 0, 1);
  Rng rng(0);
  NoObserver none;
  const Tensor x = rng.normal({4});
  for (const auto& n : kBuiltins) {
    auto s = make_sampler(n);
    const auto run = [&](std::vector<float> sig, const Tensor& xx) { s->sample(flow, xx, sig, rng, none); };
    EXPECT_EQ(code_of([&] { run({0.5f}, x); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({0.5f, 0.7f}, x); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({0.5f, 0.5f, 0.0f}, x); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({NAN, 0.0f}, x); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({0.5f, -0.1f}, x); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({1.5f, 0.0f}, x); }), StatusCode::invalid_argument) << n << ": sigma > 1 on flow";
    EXPECT_EQ(code_of([&] { run({0.5f, 0.0f}, Tensor()); }), StatusCode::invalid_argument) << n;
    EXPECT_EQ(code_of([&] { run({0.5f, 0.0f}, Tensor::zeros({2}, DType::i32)); }), StatusCode::invalid_argument) << n;
    // A denoiser that returns the wrong shape is named, not a crash.
    FlowDenoiser wrong([](const Tensor&, float) { return Tensor::zeros({5}, DType::f32); }, flow_timesteps());
    std::string msg;
    EXPECT_EQ(code_of([&] { s->sample(wrong, x, std::vector<float>{0.5f, 0.0f}, rng, none); }, &msg),
              StatusCode::invalid_argument)
        << n;
    EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;
  }
  // UniPC needs λ(σ₀) finite.
  EXPECT_EQ(code_of([&] { make_unipc_sampler()->sample(flow, x, std::vector<float>{1.0f, 0.5f, 0.0f}, rng, none); }),
            StatusCode::invalid_argument);
}

TEST(Denoisers, FlowAdapterIsXMinusSigmaV) {
  CountingFlowModel model;
  FlowDenoiser d([&](const Tensor& x, float t) { return model(x, t); }, flow_timesteps());
  Rng rng(2);
  const Tensor x = rng.normal({16});
  const float sigma = 0.37f;
  const Denoised out = d.denoise(x, sigma);
  const Tensor v = model(x, sigma * 1000.0f);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out.x0.data<float>()[i], x.data<float>()[i] - sigma * v.data<float>()[i]);
    EXPECT_EQ(out.velocity.data<float>()[i], v.data<float>()[i]);
  }
  EXPECT_EQ(d.path(), NoisePath::flow);
  EXPECT_EQ(d.timestep(0.5f), 500.0f);
}

// eps and v models built from the exact Gaussian posterior on the VP scale: the adapters must
// recover the exact VE denoiser (checks the c_in / c_skip / c_out conventions).
TEST(Denoisers, EpsAndVAdaptersRecoverTheExactDenoiser) {
  GaussianDenoiser exact(NoisePath::ve, 0.3, 0.7);
  const TimestepFn t_of = [](float sigma) { return sigma; };  // the test models read σ from t
  EpsDenoiser eps(
      [&](const Tensor& x_in, float sigma) {  // x_in = x/√(σ²+1); eps = (x − x0)/σ
        const double c = std::sqrt(double(sigma) * sigma + 1.0);
        Tensor x = Tensor::empty(x_in.shape(), DType::f32);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(x_in.data<float>()[i] * c);
        const Tensor x0 = exact(x, sigma);
        Tensor e = Tensor::empty(x.shape(), DType::f32);
        for (int64_t i = 0; i < x.numel(); ++i)
          e.data<float>()[i] = float((double(x.data<float>()[i]) - x0.data<float>()[i]) / sigma);
        return e;
      },
      t_of);
  VDenoiser vden(
      [&](const Tensor& x_in, float sigma) {  // v = α·eps − σ_vp·x0 with α = 1/√(σ²+1), σ_vp = σ·α
        const double a = 1.0 / std::sqrt(double(sigma) * sigma + 1.0);
        Tensor x = Tensor::empty(x_in.shape(), DType::f32);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(x_in.data<float>()[i] / a);
        const Tensor x0 = exact(x, sigma);
        Tensor v = Tensor::empty(x.shape(), DType::f32);
        for (int64_t i = 0; i < x.numel(); ++i) {
          const double e = (double(x.data<float>()[i]) - x0.data<float>()[i]) / sigma;
          v.data<float>()[i] = float(a * e - sigma * a * x0.data<float>()[i]);
        }
        return v;
      },
      t_of);
  Rng rng(8);
  for (float sigma : {0.1f, 1.0f, 7.0f}) {
    Tensor x = rng.normal({64});
    for (int64_t i = 0; i < 64; ++i) x.data<float>()[i] *= std::sqrt(0.49f + sigma * sigma);
    const auto want = to_doubles(exact(x, sigma));
    // f32 round trips through x/√(σ²+1) and back: a few ulps of |x| ≈ σ.
    EXPECT_LE(max_abs_diff(to_doubles(eps(x, sigma)), want), 4e-6 * (1 + sigma)) << sigma;
    EXPECT_LE(max_abs_diff(to_doubles(vden(x, sigma)), want), 4e-6 * (1 + sigma)) << sigma;
  }
  // A model output of the wrong shape names both shapes.
  EpsDenoiser bad([](const Tensor&, float) { return Tensor::zeros({3}, DType::f32); }, t_of);
  std::string msg;
  EXPECT_EQ(code_of([&] { bad(Tensor::zeros({4}, DType::f32), 1.0f); }, &msg), StatusCode::invalid_argument);
  EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
  EXPECT_EQ(code_of([] { FlowDenoiser(nullptr, flow_timesteps()); }), StatusCode::invalid_argument);
}

TEST(Denoisers, ScheduleTimestepsLookUpExactSigmas) {
  const Schedule sch = flow_unipc_schedule(50, 3.0);
  const TimestepFn t = schedule_timesteps(sch);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t(sch.sigmas[size_t(i)]), sch.timesteps[size_t(i)]);
  EXPECT_FLOAT_EQ(t(0.25f), 250.0f);  // not a schedule sigma: σ·T
  EXPECT_EQ(sch.timesteps[1], 993.0f);
  EXPECT_NE(t(sch.sigmas[1]), sch.sigmas[1] * 1000.0f);  // truncation matters: 993 vs 993.25
}

}  // namespace
}  // namespace reel::test
