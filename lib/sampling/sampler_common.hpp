// Internal: the parallel element-wise loop every built-in sampler runs (the input checks, the
// checked denoiser call and the step report they share are public: reel/sampler.hpp).
#pragma once
#include <cstdint>

#include "parallel.hpp"
#include "reel/sampler.hpp"

namespace reel::detail {

// Calls fn(i) for every element index; deterministic: fn(i) must only touch element i.
// The grain is large: these loops are memory-bound, threads pay off only on big latents.
template <class F>
void for_each_element(int64_t n, F&& fn) {
  parallel_for(n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

}  // namespace reel::detail
