// cuda_flash instantiation: f16, head_dim 128 (one file per instantiation keeps builds parallel).
#include "attention/flash_fwd_kernel.cuh"
#include "attention/flash_fwd_launch.hpp"

namespace reel::attn::flash {

int launch_f16_hdim128(const reel_attention_params& p) { return int(launch_flash_fwd<__half, 128>(p)); }
kernel_image::Probe probe_f16_hdim128() { return probe_flash_fwd<__half, 128>(); }

}  // namespace reel::attn::flash
