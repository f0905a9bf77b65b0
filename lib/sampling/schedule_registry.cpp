// The schedule registry: built-in schedules by name, plus any registered by the application.
#include "reel/schedule.hpp"
#include "sampling/named_registry.hpp"

namespace reel {

namespace {

using Registry = detail::NamedRegistry<ScheduleFactory>;

void add_builtins(Registry& r) {
  r.add({"flow_unipc", "diffusers UniPC flow sigmas (Wan default); options: shift=1, num_train_timesteps=1000", "", true},
        [](int n, const Options& o) {
          return flow_unipc_schedule(n, o.get_double("shift", 1.0), o.get_int("num_train_timesteps", 1000));
        });
  r.add({"flow_euler", "diffusers FlowMatchEuler sigmas (shift applied twice); options: shift=1, num_train_timesteps=1000", "", true},
        [](int n, const Options& o) {
          return flow_euler_schedule(n, o.get_double("shift", 1.0), o.get_int("num_train_timesteps", 1000));
        });
  r.add({"flow_dpm", "diffusers DPMSolverMultistep flow sigmas; options: shift=1, num_train_timesteps=1000", "", true},
        [](int n, const Options& o) {
          return flow_dpm_schedule(n, o.get_double("shift", 1.0), o.get_int("num_train_timesteps", 1000));
        });
  r.add({"flow", "S(linspace(sigma_max, sigma_min, N+1)); options: shift=1, sigma_max=1, sigma_min=0 (original Wan: sigma_max=0.999)", "", true},
        [](int n, const Options& o) {
          return flow_schedule(n, o.get_double("shift", 1.0), o.get_double("sigma_max", 1.0),
                               o.get_double("sigma_min", 0.0), o.get_int("num_train_timesteps", 1000));
        });
  r.add({"uniform", "evenly spaced sigmas; options: sigma_max=1, sigma_min=0"}, [](int n, const Options& o) {
    return uniform_schedule(n, o.get_double("sigma_max", 1.0), o.get_double("sigma_min", 0.0),
                            o.get_int("num_train_timesteps", 1000));
  });
  r.add({"karras", "Karras (EDM) sigmas, then 0; options: sigma_min=0.002, sigma_max=1, rho=7"},
        [](int n, const Options& o) {
          return karras_schedule(n, o.get_double("sigma_min", 0.002), o.get_double("sigma_max", 1.0),
                                 o.get_double("rho", 7.0), o.get_int("num_train_timesteps", 1000));
        });
  r.add({"exponential", "log-spaced sigmas, then 0; options: sigma_min=0.002, sigma_max=1"},
        [](int n, const Options& o) {
          return exponential_schedule(n, o.get_double("sigma_min", 0.002), o.get_double("sigma_max", 1.0),
                                      o.get_int("num_train_timesteps", 1000));
        });
  r.add({"beta", "beta-distribution sigmas, then 0; options: sigma_min=0.002, sigma_max=1, alpha=0.6, beta=0.6"},
        [](int n, const Options& o) {
          return beta_schedule(n, o.get_double("sigma_min", 0.002), o.get_double("sigma_max", 1.0),
                               o.get_double("alpha", 0.6), o.get_double("beta", 0.6),
                               o.get_int("num_train_timesteps", 1000));
        });
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry("schedule");  // never destroyed: usable during static destruction
    add_builtins(*reg);
    return reg;
  }();
  return *r;
}

}  // namespace

void register_schedule(std::string_view name, std::string_view description, ScheduleFactory factory,
                       bool flow_shift) {
  registry().add({std::string(name), std::string(description), "", flow_shift}, std::move(factory));
}

Schedule make_schedule(std::string_view name, int steps, const Options& options) {
  const ScheduleFactory factory = registry().find(name);
  Schedule s = factory(steps, options);
  options.reject_unused("schedule '" + std::string(name) + "'");
  return s;
}

Schedule make_schedule(std::string_view spec, int steps) {
  const auto [name, options] = parse_spec(spec);
  return make_schedule(name, steps, options);
}

std::vector<RegistryEntry> list_schedules() { return registry().list(); }
std::optional<RegistryEntry> find_schedule(std::string_view name) { return registry().entry(name); }

}  // namespace reel
