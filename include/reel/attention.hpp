// Attention kernels: the AttentionKernel interface, the registry of kernels by name, the
// selector, and the Tensor-level call the models use.
//
// Every kernel reads one plain reel_attention_params struct (reel/attention_params.h), so the
// models, the C API and bench/ run exactly the same code. The selector and the "is this
// supported?" question are the same function: select_attention_kernel().
//
//   // Tensor level (DiT self/cross-attention, q/k/v laid out [B, S, H, D]):
//   reel::Tensor out = reel::Tensor::empty(q.shape(), q.dtype());
//   reel::attention(q, k, v, out, 1.0f / std::sqrt(128.0f));            // best kernel
//   reel::attention(q, k, v, out, scale, "onednn");                       // a named one
//
//   // Params level (caller-owned buffers, explicit strides):
//   reel::AttentionParams p = reel::attention_params(q, k, v, out, scale);
//   reel::AttentionSelection s = reel::select_attention_kernel(p);
//   if (!s.kernel) std::puts(s.reason.c_str());   // why nothing runs it
//   else s.kernel->run(p);                         // or: reel::run_attention(p)
//
//   for (const reel::AttentionKernel* k : reel::attention_kernels()) std::puts(k->name().data());
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reel/attention_params.h"
#include "reel/backend.hpp"
#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

using AttentionParams = reel_attention_params;

// A zeroed params struct with struct_size set.
REEL_API AttentionParams default_attention_params();

// Params for Tensors q [B, Sq, H, D], k and v [B, Skv, H, D], out [B, Sq, H, D] (rank 3
// [S, H, D] means B = 1): same dtype and device, contiguous. Throws invalid_argument naming
// the tensor whose shape, dtype or device does not fit.
REEL_API AttentionParams attention_params(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                                          float scale);

// Checks a params struct against the contract in attention_params.h (NULLs, sizes, strides,
// dtype, device, overlapping output rows). Throws invalid_argument naming the field.
REEL_API void validate_attention_params(const AttentionParams& p);

class REEL_API AttentionKernel {
 public:
  virtual ~AttentionKernel() = default;
  virtual std::string_view name() const = 0;         // unique, e.g. "cpu_flash"
  virtual std::string_view description() const = 0;  // one line for listings
  virtual DeviceType device_type() const = 0;
  // The selector prefers higher values among the kernels that support a call.
  virtual int priority() const = 0;
  // Whether this kernel runs these params (validated ones), and why not. No side effects.
  virtual Support supports(const AttentionParams& p) const = 0;
  // Runs params that validate_attention_params() and supports() accepted; use run_attention(),
  // which checks both. Safe to call from several threads at once. reel's CUDA kernels order
  // p.stream with reel's stream (reel/attention_params.h, "CUDA streams").
  virtual void run(const AttentionParams& p) const = 0;
};

// Adds a kernel (researchers may plug in their own). Throws invalid_argument on a duplicate
// or empty name.
REEL_API void register_attention_kernel(std::shared_ptr<AttentionKernel> kernel);
// Every registered kernel: the built-in ones first (CPU, then CUDA when built with CUDA).
REEL_API std::vector<const AttentionKernel*> attention_kernels();
// The kernel with this name, or nullptr.
REEL_API const AttentionKernel* find_attention_kernel(std::string_view name);

struct AttentionSelection {
  const AttentionKernel* kernel = nullptr;  // nullptr: nothing supports the call
  std::string reason;                       // when nullptr: every candidate's reason
};

// The best kernel for validated params: among the kernels for the params' device, the
// highest-priority one whose supports() says yes. With a name, only that kernel is
// considered (unknown names give reason "no attention kernel named ...").
REEL_API AttentionSelection select_attention_kernel(const AttentionParams& p, std::string_view name = {});

// validate → select (or the named kernel) → run. Throws invalid_argument for bad params,
// not_found for an unknown name, unsupported (with the reasons) when nothing can run it.
// Returns the kernel that ran.
REEL_API const AttentionKernel& run_attention(const AttentionParams& p, std::string_view name = {});

// out = softmax(scale · q·kᵀ)·v per batch and head, for [B, S, H, D] (or [S, H, D]) tensors;
// `kernel` empty picks the best one. CUDA tensors run on the legacy default stream, which
// CUDA orders with reel's stream both ways (reel/attention_params.h, "CUDA streams"). For a
// stream of your own, set it in attention_params(...).stream and call run_attention().
REEL_API void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, float scale,
                        std::string_view kernel = {});

// Attention FLOPs by the convention everyone uses: 4·B·H·Sq·Skv·D.
inline double attention_flops(const AttentionParams& p) {
  return 4.0 * double(p.batch) * double(p.heads) * double(p.seq_q) * double(p.seq_kv) * double(p.head_dim);
}

}  // namespace reel
