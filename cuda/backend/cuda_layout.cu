// Data-movement kernels of the CUDA backend (concat, slice, pad, nearest upsampling, permute).
// They move raw elements of 2 or 4 bytes, so one instantiation per element size serves every
// dtype; strided row copies move the widest unit (16 down to 1 bytes) that every address,
// stride and row length allows.
#include "backend/cuda_device.cuh"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void row_copy_kernel(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows,
                                int64_t row_units) {
  const int64_t n = rows * row_units;
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    const int64_t r = i / row_units, c = i % row_units;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

template <class T>
void row_copy_as(const RowCopyParams& p, cudaStream_t stream) {
  constexpr int64_t u = sizeof(T);
  const int64_t units = p.row_bytes / u;
  row_copy_kernel<T><<<grid_for(p.rows * units, kThreads), kThreads, 0, stream>>>(
      static_cast<T*>(p.dst), p.dst_stride / u, static_cast<const T*>(p.src), p.src_stride / u, p.rows, units);
  check_launch("row_copy_kernel");
}

template <class T>
__global__ void permute_kernel(GatherParams p) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.dims[d];
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    int64_t rem = i, off = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      off += (rem % p.dims[d]) * p.x_stride[d];
      rem /= p.dims[d];
    }
    out[i] = x[off];
  }
}

template <class T>
__global__ void pad_kernel(PadParams p) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.out_dims[d];
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const T fill = T(p.pattern);
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    int64_t rem = i, off = 0, x_stride = 1;
    bool inside = true;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = rem % p.out_dims[d] - p.before[d];
      rem /= p.out_dims[d];
      inside = inside && c >= 0 && c < p.x_dims[d];
      off += c * x_stride;
      x_stride *= p.x_dims[d];
    }
    out[i] = inside ? x[off] : fill;
  }
}

template <class T>
__global__ void upsample_kernel(UpsampleParams p) {
  const int64_t ow = p.w * p.sw, oh = p.h * p.sh;
  const int64_t n = p.planes * oh * ow;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    const int64_t col = i % ow, t = i / ow;
    const int64_t row = t % oh, plane = t / oh;
    out[i] = x[(plane * p.h + row / p.sh) * p.w + col / p.sw];
  }
}

}  // namespace

void launch_row_copy(const RowCopyParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.row_bytes <= 0) return;
  const uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p.dst)) | uint64_t(reinterpret_cast<uintptr_t>(p.src)) |
                        uint64_t(p.dst_stride) | uint64_t(p.src_stride) | uint64_t(p.row_bytes);
  if (bits % 16 == 0) row_copy_as<uint4>(p, stream);
  else if (bits % 8 == 0) row_copy_as<uint2>(p, stream);
  else if (bits % 4 == 0) row_copy_as<uint32_t>(p, stream);
  else if (bits % 2 == 0) row_copy_as<uint16_t>(p, stream);
  else row_copy_as<uint8_t>(p, stream);
}

void launch_permute(const GatherParams& p, cudaStream_t stream) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.dims[d];
  if (n <= 0) return;
  if (p.elem_bytes == 4) permute_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  else permute_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  check_launch("permute_kernel");
}

void launch_pad(const PadParams& p, cudaStream_t stream) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.out_dims[d];
  if (n <= 0) return;
  if (p.elem_bytes == 4) pad_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  else pad_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  check_launch("pad_kernel");
}

void launch_upsample_nearest(const UpsampleParams& p, cudaStream_t stream) {
  const int64_t n = p.planes * p.h * p.sh * p.w * p.sw;
  if (n <= 0) return;
  if (p.elem_bytes == 4) upsample_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  else upsample_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p);
  check_launch("upsample_kernel");
}

}  // namespace reel::cuda
