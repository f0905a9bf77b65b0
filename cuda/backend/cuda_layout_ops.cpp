// CUDA data-movement ops (host side): the support checks, and concat and slice as strided row
// copies, pad, nearest upsampling and permute as gathers (cuda_layout.cu), with the parameters
// cuda_params.cpp builds. Any dtype (they move raw elements).
#include "backend/cuda_ops.hpp"

namespace reel::cuda {

Support supports(const op::Concat& o, Device d) {
  for (size_t i = 0; i < o.inputs.size(); ++i)
    if (auto s = on_device(d, {{o.inputs[i], "an input"}}); !s) return s;
  return on_device(d, {{o.out, "out"}});
}
void execute(const op::Concat& o, CudaContext& ctx) {
  for (const RowCopyParams& p : concat_params(o)) launch_row_copy(p, ctx.stream());
}

Support supports(const op::Slice& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Slice& o, CudaContext& ctx) { launch_row_copy(slice_params(o), ctx.stream()); }

Support supports(const op::Pad& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Pad& o, CudaContext& ctx) { launch_pad(pad_params(o), ctx.stream()); }

Support supports(const op::UpsampleNearest& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::UpsampleNearest& o, CudaContext& ctx) {
  launch_upsample_nearest(upsample_params(o), ctx.stream());
}

Support supports(const op::Permute& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Permute& o, CudaContext& ctx) { launch_permute(permute_params(o), ctx.stream()); }

}  // namespace reel::cuda
