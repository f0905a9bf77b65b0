// C API: attention kernels (listing, supports, run on caller buffers) and the sampler and
// schedule registries, over reel/attention.hpp, reel/sampler.hpp and reel/schedule.hpp.
#include <cstring>

#include "capi_internal.hpp"
#include "reel/attention.hpp"
#include "reel/sampler.hpp"
#include "reel/schedule.hpp"

namespace {

// Listings never throw across the boundary: a failure gives 0 / NULL.
template <class F>
auto quietly(F&& fn, decltype(fn()) fallback) noexcept -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return fallback;
  }
}

// The caller's params, checked before the whole struct is read (an older, smaller struct
// must not be copied past its end).
reel::AttentionParams caller_params(const reel_attention_params* params) {
  reel::capi::require_pointer(params, "params");
  reel::capi::require_struct_size(params->struct_size, sizeof(reel_attention_params), "reel_attention_params");
  reel::AttentionParams p;
  std::memcpy(&p, params, sizeof p);
  reel::validate_attention_params(p);
  return p;
}

}  // namespace

extern "C" {

void reel_attention_params_init(reel_attention_params* params) {
  if (!params) return;
  std::memset(params, 0, sizeof *params);
  params->struct_size = sizeof *params;
}

size_t reel_attention_kernel_count(void) {
  return quietly([] { return reel::attention_kernels().size(); }, size_t(0));
}

const char* reel_attention_kernel_name(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto kernels = reel::attention_kernels();
        return index < kernels.size() ? reel::capi::intern(std::string(kernels[index]->name())) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

const char* reel_attention_kernel_description(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto kernels = reel::attention_kernels();
        return index < kernels.size() ? reel::capi::intern(std::string(kernels[index]->description())) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

reel_status reel_attention_supports(const char* kernel, const reel_attention_params* params) {
  return reel::capi::guarded("reel_attention_supports", [&] {
    using namespace reel;
    const AttentionParams p = caller_params(params);
    if (kernel && !find_attention_kernel(kernel))
      throw Error(StatusCode::not_found, std::string("no attention kernel named \"") + kernel + "\"");
    const AttentionSelection s = select_attention_kernel(p, kernel ? std::string_view(kernel) : std::string_view());
    if (!s.kernel) throw Error(StatusCode::unsupported, s.reason);
  });
}

reel_status reel_attention_run(const char* kernel, const reel_attention_params* params) {
  return reel::capi::guarded("reel_attention_run", [&] {
    const reel::AttentionParams p = caller_params(params);
    (void)reel::run_attention(p, kernel ? std::string_view(kernel) : std::string_view());
  });
}

size_t reel_sampler_count(void) {
  return quietly([] { return reel::list_samplers().size(); }, size_t(0));
}

const char* reel_sampler_name(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto list = reel::list_samplers();
        return index < list.size() ? reel::capi::intern(list[index].name) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

const char* reel_sampler_description(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto list = reel::list_samplers();
        return index < list.size() ? reel::capi::intern(list[index].description) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

size_t reel_schedule_count(void) {
  return quietly([] { return reel::list_schedules().size(); }, size_t(0));
}

const char* reel_schedule_name(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto list = reel::list_schedules();
        return index < list.size() ? reel::capi::intern(list[index].name) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

const char* reel_schedule_description(size_t index) {
  return quietly(
      [&]() -> const char* {
        const auto list = reel::list_schedules();
        return index < list.size() ? reel::capi::intern(list[index].description) : nullptr;
      },
      static_cast<const char*>(nullptr));
}

}  // extern "C"
