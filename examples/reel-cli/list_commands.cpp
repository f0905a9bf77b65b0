// reel-cli kernels / samplers: the registries (attention kernels; samplers and schedules).
#include <cstdio>

#include "cli_args.hpp"
#include "commands.hpp"
#include "reel/attention.hpp"
#include "reel/sampler.hpp"
#include "reel/schedule.hpp"

namespace reel_cli {

int kernels_command(const std::vector<std::string>& argv) {
  Args(argv, {}).reject_unknown({});
  for (const reel::AttentionKernel* k : reel::attention_kernels())
    std::printf("%-16s %-5s %.*s\n", std::string(k->name()).c_str(), k->device_type() == reel::DeviceType::cpu ? "cpu" : "cuda",
                int(k->description().size()), k->description().data());
  return 0;
}

int samplers_command(const std::vector<std::string>& argv) {
  Args(argv, {}).reject_unknown({});
  std::printf("samplers (--sampler NAME[:key=value,...]):\n");
  for (const reel::RegistryEntry& e : reel::list_samplers())
    std::printf("  %-14s %s\n", e.name.c_str(), e.description.c_str());
  std::printf("schedules (--schedule NAME[:key=value,...]):\n");
  for (const reel::RegistryEntry& e : reel::list_schedules())
    std::printf("  %-14s %s\n", e.name.c_str(), e.description.c_str());
  return 0;
}

}  // namespace reel_cli
