// op::Attention on the CPU backend: the attention registry's best CPU kernel (cpu_flash,
// onednn, ...) or the named one, run under the backend's thread count like every other op.
#include "cpu/cpu_common.hpp"
#include "cpu/cpu_kernels.hpp"
#include "reel/attention.hpp"

namespace reel::cpu {

namespace {

AttentionParams params_of(const op::Attention& o) {
  AttentionParams p = attention_params(*o.q, *o.k, *o.v, *o.out, o.scale);
  if (o.lse) p.lse = static_cast<float*>(o.lse->raw());
  return p;
}

}  // namespace

Support supports(const op::Attention& o) {
  if (auto s = cpu_tensors({{o.q, "q"}, {o.k, "k"}, {o.v, "v"}, {o.out, "out"}}); !s) return s;
  if (o.lse)
    if (auto s = cpu_tensors({{o.lse, "lse"}}); !s) return s;
  const AttentionSelection sel = select_attention_kernel(params_of(o), o.kernel);
  return sel.kernel ? Support::yes() : Support::no(sel.reason);
}

void execute(const op::Attention& o, CpuContext&) { run_attention(params_of(o), o.kernel); }

}  // namespace reel::cpu
