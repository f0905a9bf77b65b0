// The cuda_flash launchers, one explicit instantiation per (dtype, head_dim) in its own .cu file
// (flash_fwd_<dtype>_hdim<D>.cu). Declared without CUDA types so host C++ can call them.
#pragma once
#include "attention/kernel_image.hpp"
#include "reel/attention_params.h"

namespace reel::attn::flash {

// The kernel's tiles (flash_fwd_kernel.cuh) and the dynamic shared memory one CTA needs: Q plus
// double-buffered K and V tiles of 16-bit elements, rows padded by kPad elements. Host code
// (supports()) compares this with the device's opt-in limit.
constexpr int kBlockM = 128;  // query rows per CTA
constexpr int kBlockN = 64;   // key rows per step
constexpr int kPad = 8;       // elements of padding per shared-memory row
constexpr int smem_bytes(int head_dim) { return (kBlockM + 4 * kBlockN) * (head_dim + kPad) * 2; }

// Each returns a cudaError_t value (0 = cudaSuccess); params as accepted by cuda_flash.
int launch_bf16_hdim64(const reel_attention_params& p);
int launch_bf16_hdim128(const reel_attention_params& p);
int launch_f16_hdim64(const reel_attention_params& p);
int launch_f16_hdim128(const reel_attention_params& p);

// Whether this build holds the instantiation for the current device (kernel_image.hpp); each
// lives in its launcher's .cu file, so the answer is about the code that launch_* would run.
kernel_image::Probe probe_bf16_hdim64();
kernel_image::Probe probe_bf16_hdim128();
kernel_image::Probe probe_f16_hdim64();
kernel_image::Probe probe_f16_hdim128();

}  // namespace reel::attn::flash
