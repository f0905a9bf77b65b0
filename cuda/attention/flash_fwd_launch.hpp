// The cuda_flash launchers, one explicit instantiation per (dtype, head_dim) in its own .cu file
// (flash_fwd_<dtype>_hdim<D>.cu). Declared without CUDA types so host C++ can call them.
#pragma once
#include "reel/attention_params.h"

namespace reel::attn::flash {

// Each returns a cudaError_t value (0 = cudaSuccess); params as accepted by cuda_flash.
int launch_bf16_hdim64(const reel_attention_params& p);
int launch_bf16_hdim128(const reel_attention_params& p);
int launch_f16_hdim64(const reel_attention_params& p);
int launch_f16_hdim128(const reel_attention_params& p);

}  // namespace reel::attn::flash
