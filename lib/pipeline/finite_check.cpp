// Non-finite values (NaN, ±inf) stop a generation where they first appear, instead of turning
// into a black video reported as success: the caller's tensors when they arrive, then each
// stage's output (prompt embeddings, image features and latents, the transformer's output at
// every step, the decoded frames). Each check is one pass over a tensor the stage has just
// written, small next to the stage itself.
#include <atomic>
#include <cmath>

#include "parallel.hpp"
#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

void require_finite(const Tensor& t, const std::string& what, StatusCode code) {
  if (!t.defined() || t.numel() == 0) return;
  require(t.dtype() != DType::i32, StatusCode::internal, what + ": require_finite takes a float tensor");
  const Tensor host = host_f32(t);
  const float* x = host.data<float>();
  std::atomic<int64_t> first{-1};
  parallel_for(host.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    int bad = 0;
    for (int64_t i = begin; i < end; ++i) bad |= !std::isfinite(x[i]);  // no early exit: vectorises
    if (!bad) return;
    int64_t i = begin;
    while (std::isfinite(x[i])) ++i;  // this range's first; keep the smallest over all ranges
    int64_t seen = first.load();
    while ((seen < 0 || i < seen) && !first.compare_exchange_weak(seen, i)) {
    }
  });
  const int64_t at = first.load();
  if (at < 0) return;
  throw Error(code, what + " holds a non-finite value (" + (std::isnan(x[at]) ? "NaN" : "inf") + " at element " +
                        std::to_string(at) + " of " + t.shape().str() + ")");
}

}  // namespace reel::pipeline
