// Data-movement kernels of the CUDA backend (concat, slice, pad, nearest upsampling, permute):
// grid-stride loops over the per-element bodies of cuda_elements.hpp. They move raw elements
// of 2 or 4 bytes, so one instantiation per element size serves every dtype; strided row
// copies move the widest unit (16 down to 1 bytes) that every address, stride and row length
// allows.
#include "backend/cuda_device.cuh"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void row_copy_kernel(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t row_units,
                                int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride())
    row_copy_element(dst, dst_stride, src, src_stride, row_units, i);
}

template <class T>
void row_copy_as(const RowCopyParams& p, cudaStream_t stream) {
  constexpr int64_t u = sizeof(T);
  const int64_t units = p.row_bytes / u, n = p.rows * units;
  row_copy_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<T*>(p.dst), p.dst_stride / u, static_cast<const T*>(p.src), p.src_stride / u, units, n);
  check_launch("row_copy_kernel");
}

template <class T>
__global__ void permute_kernel(GatherParams p, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) permute_element<T>(p, i);
}

template <class T>
__global__ void pad_kernel(PadParams p, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) pad_element<T>(p, i);
}

template <class T>
__global__ void upsample_kernel(UpsampleParams p, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) upsample_element<T>(p, i);
}

}  // namespace

void launch_row_copy(const RowCopyParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.row_bytes <= 0) return;
  switch (row_copy_unit(p)) {
    case 16: row_copy_as<uint4>(p, stream); break;
    case 8: row_copy_as<uint2>(p, stream); break;
    case 4: row_copy_as<uint32_t>(p, stream); break;
    case 2: row_copy_as<uint16_t>(p, stream); break;
    default: row_copy_as<uint8_t>(p, stream); break;
  }
}

void launch_permute(const GatherParams& p, cudaStream_t stream) {
  const int64_t n = element_count(p.dims, p.rank);
  if (n <= 0) return;
  if (p.elem_bytes == 4) permute_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  else permute_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  check_launch("permute_kernel");
}

void launch_pad(const PadParams& p, cudaStream_t stream) {
  const int64_t n = element_count(p.out_dims, p.rank);
  if (n <= 0) return;
  if (p.elem_bytes == 4) pad_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  else pad_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  check_launch("pad_kernel");
}

void launch_upsample_nearest(const UpsampleParams& p, cudaStream_t stream) {
  const int64_t n = upsample_count(p);
  if (n <= 0) return;
  if (p.elem_bytes == 4) upsample_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  else upsample_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, n);
  check_launch("upsample_kernel");
}

}  // namespace reel::cuda
