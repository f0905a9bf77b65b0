// op::Attention on the CUDA backend: the attention registry's best CUDA kernel (cuda_flash,
// cudnn, cublas) or the named one, launched on the backend's stream so it is ordered with the
// ops before and after it (reel::attention() on Tensors uses the legacy default stream).
#include "backend/cuda_ops.hpp"
#include "reel/attention.hpp"

namespace reel::cuda {

namespace {

AttentionParams params_of(const op::Attention& o, cudaStream_t stream) {
  AttentionParams p = attention_params(*o.q, *o.k, *o.v, *o.out, o.scale);
  p.stream = stream;
  if (o.lse) p.lse = static_cast<float*>(o.lse->raw());
  return p;
}

}  // namespace

Support supports(const op::Attention& o, Device d) {
  if (auto s = on_device(d, {{o.q, "q"}, {o.k, "k"}, {o.v, "v"}, {o.out, "out"}}); !s) return s;
  if (o.lse)
    if (auto s = on_device(d, {{o.lse, "lse"}}); !s) return s;
  const AttentionSelection sel = select_attention_kernel(params_of(o, nullptr), o.kernel);
  return sel.kernel ? Support::yes() : Support::no(sel.reason);
}

void execute(const op::Attention& o, CudaContext& ctx) { run_attention(params_of(o, ctx.stream()), o.kernel); }

}  // namespace reel::cuda
