// The backend interface: memory and the ops the models need, for one device.
//
// Every op is a small plain struct (the op:: namespace below) holding tensor pointers and
// parameters. A backend answers `supports(op)` and runs `execute(op)`; `run(op)` checks the
// shapes (the same check for every backend), asks `supports`, and only then executes, so
// "can this backend do it" and "what it runs" can never disagree. Model code normally uses the
// typed wrappers in reel/ops.hpp, which allocate the output and call run().
//
//   auto cpu = reel::make_cpu_backend({.threads = 2});
//   reel::Tensor y = reel::Tensor::empty({4, 8}, reel::DType::f32);
//   cpu->run(reel::op::Linear{&x, &w, &b, &y});   // y = x·wᵀ + b
//   if (auto s = cpu->supports(reel::op::Unary{reel::op::UnaryKind::silu, &x, &y}); !s)
//     std::puts(s.reason.c_str());
#pragma once
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

namespace op {

// Linear layer, PyTorch layout: out[..., N] = x[..., K] · weight[N, K]ᵀ + bias[N].
// x f32/bf16/f16; weight f32/bf16/f16 (may differ from x); bias optional (f32 or weight's
// dtype); accumulation in f32; out f32 or x's dtype.
struct Linear {
  const Tensor* x;
  const Tensor* weight;
  const Tensor* bias;  // may be null
  Tensor* out;
};

// out[b] = alpha · a[b] · (transpose_b ? b[b]ᵀ : b[b]); a [B, M, K], b [B, K, N] or [B, N, K].
struct BatchMatMul {
  const Tensor* a;
  const Tensor* b;
  Tensor* out;
  bool transpose_b = false;
  float alpha = 1.0f;
};

// 3-D convolution, NCDHW: x [N, Cin, D, H, W], weight [Cout, Cin, kd, kh, kw], bias [Cout].
// Zero padding is symmetric per dimension; causal (front-only) padding is an op::Pad first.
struct Conv3d {
  const Tensor* x;
  const Tensor* weight;
  const Tensor* bias;  // may be null
  Tensor* out;
  std::array<int, 3> stride{1, 1, 1};
  std::array<int, 3> padding{0, 0, 0};
};

// 2-D convolution, NCHW: x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout].
struct Conv2d {
  const Tensor* x;
  const Tensor* weight;
  const Tensor* bias;  // may be null
  Tensor* out;
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> padding{0, 0};
};

// Over the last dimension: (x − mean) / sqrt(var + eps) [· weight + bias]. Statistics in f32.
// With mod_scale and mod_shift (adaLN, both or neither; D elements, f32 or x's dtype) the
// result is then modulated as op::Modulate does, · (1 + mod_scale) + mod_shift, in the same
// pass: all math in f32, one rounding into out.
struct LayerNorm {
  const Tensor* x;
  const Tensor* weight;  // null for no affine (then bias must be null too)
  const Tensor* bias;
  Tensor* out;
  float eps = 1e-6f;
  const Tensor* mod_scale = nullptr;
  const Tensor* mod_shift = nullptr;
};

// Over the last dimension: x / sqrt(mean(x²) + eps) [· weight]. Statistics in f32.
struct RmsNorm {
  const Tensor* x;
  const Tensor* weight;  // may be null
  Tensor* out;
  float eps = 1e-6f;
};

// The Wan VAE's "RMS" norm: L2 normalisation over dimension 1 (channels) of [N, C, ...]:
// x / max(‖x‖₂, eps) · sqrt(C) · gamma[C] (+ bias[C]).
struct ChannelL2Norm {
  const Tensor* x;
  const Tensor* gamma;  // [C] (any shape with C elements)
  const Tensor* bias;   // may be null
  Tensor* out;
  float eps = 1e-12f;
};

enum class UnaryKind : uint8_t { silu, gelu_tanh, gelu_erf, relu, tanh };

// Element-wise activation; out may be the same tensor as x.
struct Unary {
  UnaryKind kind;
  const Tensor* x;
  Tensor* out;
};

// softmax(scale · x) over the last dimension, in f32.
struct Softmax {
  const Tensor* x;
  Tensor* out;
  float scale = 1.0f;
};

// x · (1 + scale) + shift, with scale and shift broadcast to x (NumPy rules). Math in f32.
struct Modulate {
  const Tensor* x;
  const Tensor* scale;
  const Tensor* shift;
  Tensor* out;
};

// Rotary embedding with interleaved (adjacent) pairs, Wan §1.3a: x [B, S, H, D];
// cos, sin [S, D] f32, each value repeated for the two members of a pair.
// out[2j] = x[2j]·c − x[2j+1]·s,  out[2j+1] = x[2j]·s + x[2j+1]·c.  Math in f32.
struct Rope {
  const Tensor* x;
  const Tensor* cos;
  const Tensor* sin;
  Tensor* out;
};

enum class BinaryKind : uint8_t { add, sub, mul };

// out = a ∘ b with NumPy broadcasting of both operands to out's shape. Math in f32.
struct Binary {
  BinaryKind kind;
  const Tensor* a;
  const Tensor* b;
  Tensor* out;
};

// out = a + b · c with broadcasting (residual + gated branch). Math in f32.
struct MulAdd {
  const Tensor* a;
  const Tensor* b;
  const Tensor* c;
  Tensor* out;
};

// out = alpha · x + beta (element-wise, f32 math).
struct Affine {
  const Tensor* x;
  Tensor* out;
  float alpha = 1.0f;
  float beta = 0.0f;
};

struct Fill {
  Tensor* out;
  float value = 0.0f;
};

// Joins inputs (same dtype, same shape except `axis`) along `axis`.
struct Concat {
  std::vector<const Tensor*> inputs;
  int axis = 0;
  Tensor* out;
};

// Constant padding: before[i] / after[i] elements added to dimension i.
struct Pad {
  const Tensor* x;
  Tensor* out;
  std::array<int64_t, kMaxRank> before{};
  std::array<int64_t, kMaxRank> after{};
  float value = 0.0f;
};

// Nearest ("nearest-exact" for integer factors) upsampling of the last two dimensions.
struct UpsampleNearest {
  const Tensor* x;
  Tensor* out;
  int scale_h = 2;
  int scale_w = 2;
};

// out = x permuted: out.dim(i) = x.dim(perm[i]).
struct Permute {
  const Tensor* x;
  Tensor* out;
  std::array<int, kMaxRank> perm{0, 1, 2, 3, 4};
};

// Copies x[..., begin:begin+out.dim(axis), ...] (a range of any dimension) into out.
struct Slice {
  const Tensor* x;
  Tensor* out;
  int axis = 0;
  int64_t begin = 0;
};

// Element type conversion (a plain copy when the types match).
struct Convert {
  const Tensor* x;
  Tensor* out;
};

// Scaled dot-product attention: out = softmax(scale · q·kᵀ)·v for every batch item and head.
// q [B, Sq, H, D], k and v [B, Skv, H, D], out like q (rank 3 [S, H, D]: B = 1); one dtype,
// contiguous. The backend runs the best attention kernel for its device (reel/attention.hpp),
// or the one named by `kernel`, on its own stream, so it is ordered with the other ops.
struct Attention {
  const Tensor* q;
  const Tensor* k;
  const Tensor* v;
  Tensor* out;
  float scale = 1.0f;
  std::string_view kernel{};  // empty: the selector's choice
  // Optional: f32 [B, H, Sq] on out's device, each row's log-sum-exp (reel/attention_params.h),
  // for merging attention over key ranges (ring attention).
  Tensor* lse = nullptr;
};

}  // namespace op

using Op = std::variant<op::Linear, op::BatchMatMul, op::Conv3d, op::Conv2d, op::LayerNorm, op::RmsNorm,
                        op::ChannelL2Norm, op::Unary, op::Softmax, op::Modulate, op::Rope, op::Binary,
                        op::MulAdd, op::Affine, op::Fill, op::Concat, op::Pad, op::UpsampleNearest,
                        op::Permute, op::Slice, op::Convert, op::Attention>;

REEL_API std::string_view op_name(const Op& op);

// The answer to "can you run this?"; `reason` says why not.
struct Support {
  bool ok = true;
  std::string reason;
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
  explicit operator bool() const { return ok; }
};

// Checks shapes, ranks and dtypes of an op against its contract (backend-independent).
// Throws Error(invalid_argument) naming the op and the offending tensor.
REEL_API void validate(const Op& op);

class REEL_API Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;
  // The one place that decides whether this backend runs an op with these shapes and dtypes.
  virtual Support supports(const Op& op) const = 0;
  // Runs an op that validate() and supports() accepted. Call run() instead.
  virtual void execute(const Op& op) = 0;
  virtual void synchronize() {}

  // validate → supports → execute. Throws invalid_argument or unsupported with the reason.
  void run(const Op& op);
  Tensor empty(const Shape& shape, DType dtype) const { return Tensor::empty(shape, dtype, device()); }
};

struct CpuBackendOptions {
  int threads = 0;  // 0: all hardware threads
};

REEL_API std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options = {});

// The CPU thread count reel uses on the calling thread (oneDNN and reel's own loops).
REEL_API int num_threads();
// Sets it for the calling thread; 0 restores the default (all hardware threads).
REEL_API void set_num_threads(int threads);
// The most CPU threads reel accepts: 4x the hardware threads, at least 64 (more only slows a
// run down: 10 000 OpenMP threads take a minute to start, 100 000 crash the runtime).
REEL_API int max_threads();
// Throws invalid_argument, naming `what` (e.g. "--threads"), unless 0 <= threads <= max_threads().
REEL_API void check_thread_count(int threads, const std::string& what);

}  // namespace reel

namespace reel {
// Number of usable CUDA GPUs: 0 when reel was built without CUDA, or no GPU/driver is present.
REEL_API int cuda_device_count() noexcept;
}  // namespace reel
