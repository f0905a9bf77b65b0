// Internal: factories of the built-in attention kernels, called once by the registry.
// The CUDA ones live in cuda/attention/ and are declared here without any CUDA header.
#pragma once
#include <memory>
#include <vector>

#include "reel/attention.hpp"

namespace reel::attn {

std::shared_ptr<AttentionKernel> make_cpu_reference_kernel();
std::shared_ptr<AttentionKernel> make_cpu_flash_kernel();
std::shared_ptr<AttentionKernel> make_onednn_kernel();

#ifdef REEL_HAVE_CUDA
// Defined in cuda/attention/register.cpp: appends cuda_flash, cudnn and cublas (and makes sure
// the CUDA device memory is registered so Tensors can live on the GPU).
void add_cuda_attention_kernels(std::vector<std::shared_ptr<AttentionKernel>>& kernels);
#endif

}  // namespace reel::attn
