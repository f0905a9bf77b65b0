// Internal: builds the kernels' parameter structs (cuda_launch.hpp) from reel's op structs:
// NumPy broadcast plans, permutation plans, row-copy plans for concat and slice, pad and
// upsample geometry. Host code only, no CUDA calls: the ops (cuda_*_ops.cpp) launch what these
// return, and the kernel-logic test runs the same parameters through the per-element bodies
// on the host (pointers are whatever the tensors hold).
#pragma once
#include <initializer_list>
#include <vector>

#include "backend/cuda_launch.hpp"
#include "reel/backend.hpp"

namespace reel::cuda {

inline Operand operand(const Tensor& t) { return {t.raw(), int(t.dtype())}; }
inline Operand operand(const Tensor* t) { return t ? operand(*t) : Operand{}; }

// out's dims with each input's strides (0 along broadcast dimensions), after dropping size-1
// dims and merging neighbours that are contiguous for every operand.
BroadcastIndex plan_broadcast(const Shape& out, const std::vector<const Shape*>& inputs);

PointwiseParams pointwise_params(PointwiseOp op, Tensor& out, std::initializer_list<const Tensor*> inputs,
                                 float alpha = 1.0f, float beta = 0.0f);
PointwiseOp pointwise_op(op::UnaryKind kind);
PointwiseOp pointwise_op(op::BinaryKind kind);

RowParams row_params(RowOp op, const Tensor& x, const Tensor* weight, const Tensor* bias, Tensor& out, float eps,
                     float scale);
RowParams layer_norm_params(const op::LayerNorm& o);  // with the fused modulation, if any
ChannelNormParams channel_norm_params(const op::ChannelL2Norm& o);
RopeParams rope_params(const op::Rope& o);

std::vector<RowCopyParams> concat_params(const op::Concat& o);  // one copy per input
RowCopyParams slice_params(const op::Slice& o);
PadParams pad_params(const op::Pad& o);
UpsampleParams upsample_params(const op::UpsampleNearest& o);
GatherParams permute_params(const op::Permute& o);

// The bits of `value` in `type` (i32: truncated towards zero, saturated, NaN as 0), as the
// CPU backend's fill and pad.
uint32_t fill_pattern(DType type, float value);

}  // namespace reel::cuda
