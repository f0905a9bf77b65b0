// Registers the CUDA attention kernels with the attention registry (called once from
// lib/attention/registry.cpp when reel is built with CUDA), and the CUDA device memory.
#include "attention/builtin_kernels.hpp"
#include "cuda_memory.hpp"

namespace reel::attn {

std::shared_ptr<AttentionKernel> make_cuda_flash_kernel();
std::shared_ptr<AttentionKernel> make_cudnn_kernel();
std::shared_ptr<AttentionKernel> make_cublas_kernel();

void add_cuda_attention_kernels(std::vector<std::shared_ptr<AttentionKernel>>& kernels) {
  cuda_memory::ensure_registered();
  kernels.push_back(make_cuda_flash_kernel());
  kernels.push_back(make_cudnn_kernel());
  kernels.push_back(make_cublas_kernel());
}

}  // namespace reel::attn
