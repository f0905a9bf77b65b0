// The sampler registry: the built-in samplers by name, plus any registered by the application.
#include <string>

#include "reel/samplers.hpp"
#include "sampling/named_registry.hpp"

namespace reel {

namespace {

using Registry = detail::NamedRegistry<SamplerFactory>;

UniPCVariant parse_variant(const std::string& v) {
  if (v == "bh1") return UniPCVariant::bh1;
  if (v == "bh2") return UniPCVariant::bh2;
  throw Error(StatusCode::invalid_argument, "unipc: option 'variant' must be bh1 or bh2, got '" + v + "'");
}

void add_builtins(Registry& r) {
  r.add({"euler", "Euler; with a flow model = diffusers FlowMatchEuler. options: follow_model_dtype=true", "flow_euler"},
        [](const Options& o) { return make_euler_sampler({.follow_model_dtype = o.get_bool("follow_model_dtype", true)}); });
  r.add({"euler_a", "Euler ancestral (fresh noise each step). options: eta=1, s_noise=1", "flow_euler"}, [](const Options& o) {
    return make_euler_ancestral_sampler(
        {.eta = float(o.get_double("eta", 1.0)), .s_noise = float(o.get_double("s_noise", 1.0))});
  });
  r.add({"heun", "Heun, 2nd order, two model calls a step", "flow_euler"}, [](const Options&) { return make_heun_sampler(); });
  const auto dpm = [](const Options& o) {
    return make_dpmpp_2m_sampler({.lower_order_final = o.get_bool("lower_order_final", true)});
  };
  r.add({"dpmpp_2m", "DPM-Solver++(2M) = diffusers DPMSolverMultistep. options: lower_order_final=true", "flow_dpm"}, dpm);
  r.add({"dpm_flow", "alias of dpmpp_2m (original Wan's dpm++; pair with the flow_dpm schedule)", "flow_dpm"}, dpm);
  r.add({"dpmpp_2m_sde", "DPM-Solver++(2M) SDE, midpoint. options: eta=1, s_noise=1", "flow_dpm"}, [](const Options& o) {
    return make_dpmpp_2m_sde_sampler(
        {.eta = float(o.get_double("eta", 1.0)), .s_noise = float(o.get_double("s_noise", 1.0))});
  });
  r.add({"unipc", "UniPC predictor-corrector = diffusers UniPCMultistep (Wan default). "
                 "options: order=2, variant=bh2, lower_order_final=true, corrector=true", "flow_unipc"},
        [](const Options& o) {
          return make_unipc_sampler({.order = o.get_int("order", 2),
                                     .variant = parse_variant(o.get_string("variant", "bh2")),
                                     .lower_order_final = o.get_bool("lower_order_final", true),
                                     .corrector = o.get_bool("corrector", true)});
        });
  r.add({"lcm", "LCM / consistency multistep for distilled few-step models", "flow_unipc"}, [](const Options&) {
    return make_lcm_sampler();
  });
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry("sampler");  // never destroyed: usable during static destruction
    add_builtins(*reg);
    return reg;
  }();
  return *r;
}

}  // namespace

void register_sampler(std::string_view name, std::string_view description, SamplerFactory factory,
                      std::string_view schedule) {
  registry().add({std::string(name), std::string(description), std::string(schedule)}, std::move(factory));
}

std::unique_ptr<Sampler> make_sampler(std::string_view name, const Options& options) {
  const SamplerFactory factory = registry().find(name);
  std::unique_ptr<Sampler> s = factory(options);
  require(s != nullptr, StatusCode::internal, "the factory of sampler '" + std::string(name) + "' returned null");
  options.reject_unused("sampler '" + std::string(name) + "'");
  return s;
}

std::unique_ptr<Sampler> make_sampler(std::string_view spec) {
  const auto [name, options] = parse_spec(spec);
  return make_sampler(name, options);
}

std::vector<RegistryEntry> list_samplers() { return registry().list(); }
std::optional<RegistryEntry> find_sampler(std::string_view name) { return registry().entry(name); }

}  // namespace reel
