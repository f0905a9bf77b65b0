// cuda_flash instantiation: f16, head_dim 64 (one file per instantiation keeps builds parallel).
#include "attention/flash_fwd_kernel.cuh"
#include "attention/flash_fwd_launch.hpp"

namespace reel::attn::flash {

int launch_f16_hdim64(const reel_attention_params& p) { return int(launch_flash_fwd<__half, 64>(p)); }
kernel_image::Probe probe_f16_hdim64() { return probe_flash_fwd<__half, 64>(); }

}  // namespace reel::attn::flash
