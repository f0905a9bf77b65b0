// Internal: the CUDA backend's own kernels as host functions over plain structs (pointers,
// element types, sizes), so the .cu files need no reel headers and the op code (the .cpp
// files) never sees a kernel. Element types use reel::DType's values (0 f32, 1 bf16, 2 f16,
// 3 i32). Every kernel reads any float type, computes in f32 and rounds once on store.
// Each launcher queues its kernel on `stream` and throws reel::Error if the launch fails.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace reel::cuda {

inline constexpr int kMaxDims = 5;
inline constexpr int kMaxOperands = 3;

// A read-only operand: device pointer and element type.
struct Operand {
  const void* ptr = nullptr;
  int dtype = 0;
};

// out element i (row-major over dims) reads operand k at Σ_d coord_d · strides[k][d]
// (stride 0 along broadcast dimensions). Built by plan_broadcast (cuda_broadcast.hpp).
struct BroadcastIndex {
  int rank = 1;
  int64_t dims[kMaxDims] = {1, 1, 1, 1, 1};
  int64_t strides[kMaxOperands][kMaxDims] = {};
};

// Whether this build holds code the current device can run (cudaFuncGetAttributes on a
// kernel): cudaSuccess, or the error (e.g. cudaErrorNoKernelImageForDevice).
cudaError_t probe_kernel_image();

// ---------------------------------------------------------------- element-wise (cuda_pointwise.cu)

enum class PointwiseOp : int {
  copy,       // out = a (convert)
  silu,       // a · sigmoid(a)
  gelu_tanh,  // 0.5·a·(1 + tanh(√(2/π)(a + 0.044715a³)))
  gelu_erf,   // 0.5·a·(1 + erf(a/√2))
  relu,       // max(a, 0)
  tanh,       // tanh(a)
  add,        // a + b
  sub,        // a − b
  mul,        // a · b
  mul_add,    // a + b·c
  modulate,   // a·(1 + b) + c
  affine,     // alpha·a + beta
};

struct PointwiseParams {
  PointwiseOp op = PointwiseOp::copy;
  int inputs = 1;
  Operand in[kMaxOperands];
  void* out = nullptr;
  int out_dtype = 0;
  int64_t n = 0;  // output elements
  BroadcastIndex index;
  float alpha = 1.0f, beta = 0.0f;
};
void launch_pointwise(const PointwiseParams& p, cudaStream_t stream);

// n contiguous elements src (src_dtype) -> dst (dst_dtype).
void launch_convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n, cudaStream_t stream);

// n elements of elem_bytes (2 or 4) set to the low elem_bytes of `pattern`.
void launch_fill(void* out, int elem_bytes, uint32_t pattern, int64_t n, cudaStream_t stream);

// out[r, c] = src[r, c] + bias[c] for a row-major [rows, cols] f32 src (src null: 0; bias.ptr
// null: no bias), stored as out_dtype. One rounding.
void launch_bias_rows(const float* src, Operand bias, void* out, int out_dtype, int64_t rows, int64_t cols,
                      cudaStream_t stream);

// out[b, c, s] = src[b, c, s] + bias[c] over [batch, channels, spatial] (bias.ptr null: a
// plain conversion). src may be out itself (same dtype): in place.
void launch_bias_channels(Operand src, Operand bias, void* out, int out_dtype, int64_t batch, int64_t channels,
                          int64_t spatial, cudaStream_t stream);

// Interleaved-pair rotary embedding, x/out [batch, seq, heads, dim], cos/sin f32 [seq, dim].
struct RopeParams {
  Operand x;
  const float* cos = nullptr;
  const float* sin = nullptr;
  void* out = nullptr;
  int out_dtype = 0;
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
};
void launch_rope(const RopeParams& p, cudaStream_t stream);

// ---------------------------------------------------------------- reductions (cuda_norm.cu)

enum class RowOp : int { layer_norm, rms_norm, softmax };

// One block per row of a row-major [rows, cols] tensor; weight/bias: [cols] (ptr may be null).
// Layer norm with mod_scale/mod_shift [cols] (both or neither): · (1 + mod_scale) + mod_shift.
struct RowParams {
  RowOp op = RowOp::layer_norm;
  Operand x, weight, bias;
  Operand mod_scale, mod_shift;
  void* out = nullptr;
  int out_dtype = 0;
  int64_t rows = 0, cols = 0;
  float eps = 0.0f;
  float scale = 1.0f;  // softmax
};
void launch_row_op(const RowParams& p, cudaStream_t stream);

// x [batch, channels, spatial]: x / max(‖x[b, :, s]‖₂, eps) · (√channels · gamma[c]) + bias[c].
struct ChannelNormParams {
  Operand x, gamma, bias;
  void* out = nullptr;
  int out_dtype = 0;
  int64_t batch = 0, channels = 0, spatial = 0;
  float eps = 0.0f;
};
void launch_channel_l2_norm(const ChannelNormParams& p, cudaStream_t stream);

// ---------------------------------------------------------------- data movement (cuda_layout.cu)

// rows × row_bytes from src (rows src_stride bytes apart) to dst (dst_stride apart).
struct RowCopyParams {
  void* dst = nullptr;
  int64_t dst_stride = 0;
  const void* src = nullptr;
  int64_t src_stride = 0;
  int64_t rows = 0;
  int64_t row_bytes = 0;
};
void launch_row_copy(const RowCopyParams& p, cudaStream_t stream);

// out[i] = x[Σ coord_d(i) · x_stride[d]] over out's dims (permute: strides of x's permuted dims).
struct GatherParams {
  const void* x = nullptr;
  void* out = nullptr;
  int elem_bytes = 4;
  int rank = 1;
  int64_t dims[kMaxDims] = {1, 1, 1, 1, 1};      // out dims
  int64_t x_stride[kMaxDims] = {0, 0, 0, 0, 0};  // x's element stride per out dim
};
void launch_permute(const GatherParams& p, cudaStream_t stream);

// Constant padding: out dims, x dims, `before` offsets; elements outside x get `pattern`.
struct PadParams {
  const void* x = nullptr;
  void* out = nullptr;
  int elem_bytes = 4;
  uint32_t pattern = 0;
  int rank = 1;
  int64_t out_dims[kMaxDims] = {1, 1, 1, 1, 1};
  int64_t x_dims[kMaxDims] = {1, 1, 1, 1, 1};
  int64_t before[kMaxDims] = {0, 0, 0, 0, 0};
};
void launch_pad(const PadParams& p, cudaStream_t stream);

// Nearest upsampling of the last two dims: x [planes, h, w] -> out [planes, h·sh, w·sw].
struct UpsampleParams {
  const void* x = nullptr;
  void* out = nullptr;
  int elem_bytes = 4;
  int64_t planes = 0, h = 0, w = 0;
  int sh = 1, sw = 1;
};
void launch_upsample_nearest(const UpsampleParams& p, cudaStream_t stream);

}  // namespace reel::cuda
