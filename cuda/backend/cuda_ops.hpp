// Internal: the CUDA backend's per-op entry points. For every op struct in reel/backend.hpp,
// `supports(op, device)` says whether the CUDA backend of that device runs it (after
// validate() accepted it) and `execute(op, ctx)` runs it. cuda_backend.cpp puts exactly these
// pairs into its one table. Also the small helpers the op files share.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>

#include "backend/cuda_context.hpp"
#include "backend/cuda_launch.hpp"
#include "backend/cuda_params.hpp"
#include "reel/backend.hpp"

namespace reel::cuda {

// cuda_matmul.cpp
Support supports(const op::Linear&, Device);
void execute(const op::Linear&, CudaContext&);
Support supports(const op::BatchMatMul&, Device);
void execute(const op::BatchMatMul&, CudaContext&);
// cuda_conv.cpp
Support supports(const op::Conv3d&, Device);
void execute(const op::Conv3d&, CudaContext&);
Support supports(const op::Conv2d&, Device);
void execute(const op::Conv2d&, CudaContext&);
// cuda_pointwise_ops.cpp
Support supports(const op::LayerNorm&, Device);
void execute(const op::LayerNorm&, CudaContext&);
Support supports(const op::RmsNorm&, Device);
void execute(const op::RmsNorm&, CudaContext&);
Support supports(const op::ChannelL2Norm&, Device);
void execute(const op::ChannelL2Norm&, CudaContext&);
Support supports(const op::Softmax&, Device);
void execute(const op::Softmax&, CudaContext&);
Support supports(const op::Unary&, Device);
void execute(const op::Unary&, CudaContext&);
Support supports(const op::Binary&, Device);
void execute(const op::Binary&, CudaContext&);
Support supports(const op::MulAdd&, Device);
void execute(const op::MulAdd&, CudaContext&);
Support supports(const op::Modulate&, Device);
void execute(const op::Modulate&, CudaContext&);
Support supports(const op::Affine&, Device);
void execute(const op::Affine&, CudaContext&);
Support supports(const op::Fill&, Device);
void execute(const op::Fill&, CudaContext&);
Support supports(const op::Convert&, Device);
void execute(const op::Convert&, CudaContext&);
Support supports(const op::Rope&, Device);
void execute(const op::Rope&, CudaContext&);
// cuda_layout_ops.cpp
Support supports(const op::Concat&, Device);
void execute(const op::Concat&, CudaContext&);
Support supports(const op::Pad&, Device);
void execute(const op::Pad&, CudaContext&);
Support supports(const op::UpsampleNearest&, Device);
void execute(const op::UpsampleNearest&, CudaContext&);
Support supports(const op::Permute&, Device);
void execute(const op::Permute&, CudaContext&);
Support supports(const op::Slice&, Device);
void execute(const op::Slice&, CudaContext&);
// cuda_attention_op.cpp
Support supports(const op::Attention&, Device);
void execute(const op::Attention&, CudaContext&);

// ---------------------------------------------------------------- shared helpers

// Every CUDA op starts here: all (present) tensors must live on the backend's device.
inline Support on_device(Device device, std::initializer_list<std::pair<const Tensor*, const char*>> tensors) {
  for (const auto& [t, name] : tensors)
    if (t && t->defined() && !(t->device() == device))
      return Support::no(std::string(name) + " is on " + t->device().str() + "; this backend runs on " + device.str() +
                         " (copy it with Tensor::to(Device))");
  return Support::yes();
}

inline bool is_float(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

// The type Linear brings x and weight to (cuda_matmul.cpp explains the rule).
DType linear_compute_type(DType x, DType w);

}  // namespace reel::cuda
