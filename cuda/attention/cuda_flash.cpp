// cuda_flash: the AttentionKernel object of our FlashAttention-2-style sm80 kernel
// (flash_fwd_kernel.cuh): what it supports, and the dispatch to the per-(dtype, head_dim) launcher.
#include <memory>

#include "attention/builtin_kernels.hpp"
#include "attention/cuda_checks.hpp"
#include "attention/flash_fwd_launch.hpp"

namespace reel::attn {

namespace {

// The instantiation run() launches for these params (supports() checked dtype and head_dim).
kernel_image::ProbeFn probe_for(const AttentionParams& p) {
  const bool bf = p.dtype == REEL_ATTENTION_BF16;
  if (p.head_dim == 64) return bf ? flash::probe_bf16_hdim64 : flash::probe_f16_hdim64;
  return bf ? flash::probe_bf16_hdim128 : flash::probe_f16_hdim128;
}

class CudaFlash final : public AttentionKernel {
 public:
  std::string_view name() const override { return "cuda_flash"; }
  std::string_view description() const override {
    return "FlashAttention-2-style forward (mma.sync m16n8k16, ldmatrix, cp.async), sm80+, bf16/f16, d 64/128";
  }
  DeviceType device_type() const override { return DeviceType::cuda; }
  int priority() const override { return 100; }

  Support supports(const AttentionParams& p) const override {
    if (p.dtype != REEL_ATTENTION_BF16 && p.dtype != REEL_ATTENTION_F16)
      return Support::no("needs bf16 or f16, got " + std::string(dtype_name(DType(p.dtype))));
    if (p.head_dim != 64 && p.head_dim != 128)
      return Support::no("head_dim must be 64 or 128, got " + std::to_string(p.head_dim));
    if (p.batch > 65535 || p.heads > 65535) return Support::no("batch and heads must be <= 65535 (grid limits)");
    if (Support s = cuda_checks::aligned(p, 16, 8); !s) return s;
    if (Support s = cuda_checks::device_ok(p, 80); !s) return s;
    if (Support s = cuda_checks::kernel_image_ok(p, probe_for(p)); !s) return s;
    // D = 128 needs 102 KiB: more than sm_86/sm_89 allow (99 KiB), so refuse there (another
    // kernel is chosen) instead of failing in cudaFuncSetAttribute at run time.
    if (Support s = cuda_checks::shared_memory_ok(p, flash::smem_bytes(int(p.head_dim))); !s) return s;
    return cuda_checks::pointers_on_device(p);
  }

  void run(const AttentionParams& p) const override {
    cuda_checks::DeviceGuard guard(p.device_index);
    cuda_checks::ReelStreamOrder order(p);
    const bool bf = p.dtype == REEL_ATTENTION_BF16;
    int err = 0;
    if (p.head_dim == 64) err = bf ? flash::launch_bf16_hdim64(p) : flash::launch_f16_hdim64(p);
    else err = bf ? flash::launch_bf16_hdim128(p) : flash::launch_f16_hdim128(p);
    cuda_checks::check(cudaError_t(err), "cuda_flash launch");
    order.finish();
  }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_cuda_flash_kernel() { return std::make_shared<CudaFlash>(); }

}  // namespace reel::attn
