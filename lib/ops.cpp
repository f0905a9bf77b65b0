// Backend-independent op checks (reel::validate), NumPy broadcasting, and the typed wrappers of
// reel/ops.hpp (output shape, allocation on the backend's device, Backend::run).
#include "reel/ops.hpp"

#include "reel/attention.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace reel {

namespace {

template <class... F> struct overloaded : F... { using F::operator()...; };
template <class... F> overloaded(F...) -> overloaded<F...>;

bool is_float(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

std::string describe(const Tensor& t) { return t.shape().str() + " " + std::string(dtype_name(t.dtype())); }

// Collects the checks of one op; every failure names the op and the tensor.
// Whether two tensors' bytes overlap (device pointers compare the same way as host ones).
bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0 || !(a.device() == b.device())) return false;
  const auto* pa = static_cast<const std::byte*>(a.raw());
  const auto* pb = static_cast<const std::byte*>(b.raw());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

enum class InPlace { forbidden, allowed };  // may out be exactly one of the inputs?

class Checker {
 public:
  Checker(std::string_view op, const Tensor* out, InPlace in_place = InPlace::forbidden)
      : op_(op), out_(out), in_place_(in_place) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw Error(StatusCode::invalid_argument, std::string(op_) + ": " + message);
  }
  void expect(bool ok, const std::string& message) const {
    if (!ok) fail(message);
  }

  // Present, defined, and on the output's device.
  const Tensor& input(const Tensor* t, const char* name) const {
    expect(t != nullptr, std::string(name) + " is null");
    expect(t->defined(), std::string(name) + " is an undefined tensor");
    if (out_ && out_->defined() && t != out_)
      expect(t->device() == out_->device(),
             std::string(name) + " is on " + t->device().str() + " but out is on " + out_->device().str());
    if (out_ && out_->defined() && overlaps(*t, *out_)) {
      const bool same = t->raw() == out_->raw() && t->shape() == out_->shape() && t->dtype() == out_->dtype();
      expect(in_place_ == InPlace::allowed && same,
             std::string(name) + " overlaps out's memory" +
                 (in_place_ == InPlace::allowed ? " (in-place use needs out to be exactly that tensor)"
                                                : " (this op cannot run in place)"));
    }
    return *t;
  }
  Tensor& output() const {
    expect(out_ != nullptr, "out is null");
    expect(out_->defined(), "out is an undefined tensor");
    expect(!out_->read_only(), "out is read-only (memory-mapped)");
    return *const_cast<Tensor*>(out_);
  }
  void floating(const Tensor& t, const char* name) const {
    expect(is_float(t.dtype()), std::string(name) + " has dtype " + std::string(dtype_name(t.dtype())) +
                                    ", expected f32, bf16 or f16");
  }
  void dtype_is(const Tensor& t, const char* name, DType want) const {
    expect(t.dtype() == want, std::string(name) + " has dtype " + std::string(dtype_name(t.dtype())) + ", expected " +
                                  std::string(dtype_name(want)));
  }
  void same_dtype(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name) const {
    expect(t.dtype() == ref.dtype(), std::string(name) + " has dtype " + std::string(dtype_name(t.dtype())) + " but " +
                                         ref_name + " has " + std::string(dtype_name(ref.dtype())));
  }
  void shape_is(const Tensor& t, const char* name, const Shape& want) const {
    expect(t.shape() == want, std::string(name) + " has shape " + t.shape().str() + ", expected " + want.str());
  }
  void rank_is(const Tensor& t, const char* name, int rank) const {
    expect(t.rank() == rank, std::string(name) + " has rank " + std::to_string(t.rank()) + " (shape " +
                                 t.shape().str() + "), expected rank " + std::to_string(rank));
  }
  void numel_is(const Tensor& t, const char* name, int64_t n, const char* what) const {
    expect(t.numel() == n, std::string(name) + " has " + std::to_string(t.numel()) + " elements (shape " +
                               t.shape().str() + "), expected " + std::to_string(n) + " (" + what + ")");
  }
  int axis(int axis, int rank) const {
    const int a = axis < 0 ? axis + rank : axis;
    expect(a >= 0 && a < rank, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    return a;
  }

 private:
  std::string_view op_;
  const Tensor* out_;
  InPlace in_place_;
};

Shape with_dims(std::span<const int64_t> dims) { return Shape(dims); }

void check_linear(const op::Linear& o) {
  Checker c("linear", o.out);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  const Tensor& w = c.input(o.weight, "weight");
  c.floating(x, "x");
  c.floating(w, "weight");
  c.expect(x.rank() >= 1, "x must have at least one dimension, got " + x.shape().str());
  c.rank_is(w, "weight", 2);
  const int64_t k = x.dim(-1), n = w.dim(0);
  c.expect(w.dim(1) == k, "weight " + w.shape().str() + " does not match x " + x.shape().str() +
                              " (weight must be [N, K] with K = x's last dimension " + std::to_string(k) + ")");
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < x.rank(); ++i) d[i] = x.dim(i);
  d[x.rank() - 1] = n;
  c.shape_is(out, "out", with_dims({d.data(), size_t(x.rank())}));
  c.expect(out.dtype() == DType::f32 || out.dtype() == x.dtype(),
           "out has dtype " + std::string(dtype_name(out.dtype())) + ", expected f32 or x's dtype " +
               std::string(dtype_name(x.dtype())));
  if (o.bias) {
    const Tensor& b = c.input(o.bias, "bias");
    c.expect(b.dtype() == DType::f32 || b.dtype() == w.dtype(),
             "bias has dtype " + std::string(dtype_name(b.dtype())) + ", expected f32 or weight's dtype " +
                 std::string(dtype_name(w.dtype())));
    c.rank_is(b, "bias", 1);
    c.numel_is(b, "bias", n, "weight's output features N");
  }
}

void check_batch_matmul(const op::BatchMatMul& o) {
  Checker c("batch_matmul", o.out);
  Tensor& out = c.output();
  const Tensor& a = c.input(o.a, "a");
  const Tensor& b = c.input(o.b, "b");
  c.floating(a, "a");
  c.same_dtype(b, "b", a, "a");
  c.rank_is(a, "a", 3);
  c.rank_is(b, "b", 3);
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2);
  const int64_t bk = o.transpose_b ? b.dim(2) : b.dim(1), n = o.transpose_b ? b.dim(1) : b.dim(2);
  c.expect(b.dim(0) == batch, "b " + b.shape().str() + " has batch " + std::to_string(b.dim(0)) + " but a " +
                                  a.shape().str() + " has " + std::to_string(batch));
  c.expect(bk == k, "b " + b.shape().str() + " does not match a " + a.shape().str() +
                        (o.transpose_b ? " (transpose_b: b must be [B, N, K])" : " (b must be [B, K, N])"));
  c.shape_is(out, "out", {batch, m, n});
  c.expect(out.dtype() == DType::f32 || out.dtype() == a.dtype(),
           "out has dtype " + std::string(dtype_name(out.dtype())) + ", expected f32 or a's dtype");
  c.expect(std::isfinite(o.alpha), "alpha is not finite");
}

template <int N>
void check_conv(std::string_view name, const Tensor* xp, const Tensor* wp, const Tensor* bp, const Tensor* outp,
                const std::array<int, N>& stride, const std::array<int, N>& padding) {
  Checker c(name, outp);
  Tensor& out = c.output();
  const Tensor& x = c.input(xp, "x");
  const Tensor& w = c.input(wp, "weight");
  c.floating(x, "x");
  c.floating(w, "weight");
  c.rank_is(x, "x", N + 2);
  c.rank_is(w, "weight", N + 2);
  c.expect(w.dim(1) == x.dim(1), "weight " + w.shape().str() + " has " + std::to_string(w.dim(1)) +
                                     " input channels but x " + x.shape().str() + " has " + std::to_string(x.dim(1)));
  std::array<int64_t, kMaxRank> d{};
  d[0] = x.dim(0);
  d[1] = w.dim(0);
  for (int i = 0; i < N; ++i) {
    c.expect(stride[i] >= 1, "stride " + std::to_string(stride[i]) + " must be >= 1");
    c.expect(padding[i] >= 0, "padding " + std::to_string(padding[i]) + " must be >= 0");
    const int64_t span = x.dim(2 + i) + 2 * int64_t(padding[i]) - w.dim(2 + i);
    c.expect(w.dim(2 + i) >= 1 && span >= 0, "kernel " + w.shape().str() + " is larger than the padded input " +
                                                 x.shape().str());
    d[2 + i] = span / stride[i] + 1;
  }
  c.shape_is(out, "out", with_dims({d.data(), size_t(N + 2)}));
  c.expect(out.dtype() == DType::f32 || out.dtype() == x.dtype(),
           "out has dtype " + std::string(dtype_name(out.dtype())) + ", expected f32 or x's dtype");
  if (bp) {
    const Tensor& b = c.input(bp, "bias");
    c.expect(b.dtype() == DType::f32 || b.dtype() == w.dtype(),
             "bias has dtype " + std::string(dtype_name(b.dtype())) + ", expected f32 or weight's dtype");
    c.numel_is(b, "bias", w.dim(0), "output channels");
  }
}

// A per-feature parameter (weight/bias/gamma) with `n` elements, any float dtype.
void check_param(const Checker& c, const Tensor* p, const char* name, int64_t n, const char* what) {
  const Tensor& t = c.input(p, name);
  c.floating(t, name);
  c.numel_is(t, name, n, what);
}

void check_same_shape_float(const Checker& c, const Tensor& x, const Tensor& out) {
  c.floating(x, "x");
  c.floating(out, "out");
  c.shape_is(out, "out", x.shape());
}

void check_eps(const Checker& c, float eps) {
  c.expect(std::isfinite(eps) && eps >= 0.0f, "eps " + std::to_string(eps) + " must be finite and >= 0");
}

void check_broadcast_to(const Checker& c, const Tensor& t, const char* name, const Shape& target) {
  Shape b;
  try {
    b = ops::broadcast_shapes(t.shape(), target);
  } catch (const Error&) {
    c.fail(std::string(name) + " " + t.shape().str() + " does not broadcast to " + target.str());
  }
  c.expect(b == target, std::string(name) + " " + t.shape().str() + " does not broadcast to " + target.str());
}

void check(const op::Linear& o) { check_linear(o); }
void check(const op::BatchMatMul& o) { check_batch_matmul(o); }
void check(const op::Conv3d& o) { check_conv<3>("conv3d", o.x, o.weight, o.bias, o.out, o.stride, o.padding); }
void check(const op::Conv2d& o) { check_conv<2>("conv2d", o.x, o.weight, o.bias, o.out, o.stride, o.padding); }

void check(const op::LayerNorm& o) {
  Checker c("layer_norm", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  check_same_shape_float(c, x, out);
  c.expect(x.rank() >= 1, "x must have at least one dimension");
  check_eps(c, o.eps);
  c.expect(o.weight || !o.bias, "bias without weight (an affine layer norm needs both)");
  if (o.weight) check_param(c, o.weight, "weight", x.dim(-1), "x's last dimension");
  if (o.bias) check_param(c, o.bias, "bias", x.dim(-1), "x's last dimension");
  c.expect(!o.mod_scale == !o.mod_shift, "mod_scale and mod_shift must be given together (or neither)");
  for (const auto& [p, name] : {std::pair{o.mod_scale, "mod_scale"}, std::pair{o.mod_shift, "mod_shift"}}) {
    if (!p) continue;
    check_param(c, p, name, x.dim(-1), "x's last dimension");
    c.expect(p->dtype() == DType::f32 || p->dtype() == x.dtype(),
             std::string(name) + " has dtype " + std::string(dtype_name(p->dtype())) + ", expected f32 or x's dtype " +
                 std::string(dtype_name(x.dtype())));
  }
}

void check(const op::RmsNorm& o) {
  Checker c("rms_norm", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  check_same_shape_float(c, x, out);
  c.expect(x.rank() >= 1, "x must have at least one dimension");
  check_eps(c, o.eps);
  if (o.weight) check_param(c, o.weight, "weight", x.dim(-1), "x's last dimension");
}

void check(const op::ChannelL2Norm& o) {
  Checker c("channel_l2_norm", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  check_same_shape_float(c, x, out);
  c.expect(x.rank() >= 2, "x " + x.shape().str() + " must be [N, C, ...] (rank >= 2)");
  check_eps(c, o.eps);
  check_param(c, o.gamma, "gamma", x.dim(1), "channels, dimension 1 of x");
  if (o.bias) check_param(c, o.bias, "bias", x.dim(1), "channels, dimension 1 of x");
}

void check(const op::Unary& o) {
  Checker c(op_name(Op(o)), o.out, InPlace::allowed);
  Tensor& out = c.output();
  check_same_shape_float(c, c.input(o.x, "x"), out);
}

void check(const op::Softmax& o) {
  Checker c("softmax", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  check_same_shape_float(c, x, out);
  c.expect(x.rank() >= 1, "x must have at least one dimension");
  c.expect(std::isfinite(o.scale), "scale is not finite");
}

void check(const op::Modulate& o) {
  Checker c("modulate", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  const Tensor& scale = c.input(o.scale, "scale");
  const Tensor& shift = c.input(o.shift, "shift");
  check_same_shape_float(c, x, out);
  c.floating(scale, "scale");
  c.floating(shift, "shift");
  check_broadcast_to(c, scale, "scale", x.shape());
  check_broadcast_to(c, shift, "shift", x.shape());
}

void check(const op::Rope& o) {
  Checker c("rope", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  const Tensor& cs = c.input(o.cos, "cos");
  const Tensor& sn = c.input(o.sin, "sin");
  check_same_shape_float(c, x, out);
  c.rank_is(x, "x", 4);
  c.expect(x.dim(3) % 2 == 0, "x " + x.shape().str() + " has an odd head dimension (pairs need an even one)");
  c.dtype_is(cs, "cos", DType::f32);
  c.dtype_is(sn, "sin", DType::f32);
  c.shape_is(cs, "cos", {x.dim(1), x.dim(3)});
  c.shape_is(sn, "sin", {x.dim(1), x.dim(3)});
}

void check(const op::Binary& o) {
  Checker c(op_name(Op(o)), o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& a = c.input(o.a, "a");
  const Tensor& b = c.input(o.b, "b");
  c.floating(a, "a");
  c.floating(b, "b");
  c.floating(out, "out");
  Shape s;
  try {
    s = ops::broadcast_shapes(a.shape(), b.shape());
  } catch (const Error&) {
    c.fail("a " + a.shape().str() + " and b " + b.shape().str() + " do not broadcast");
  }
  c.shape_is(out, "out", s);
}

void check(const op::MulAdd& o) {
  Checker c("mul_add", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& a = c.input(o.a, "a");
  const Tensor& b = c.input(o.b, "b");
  const Tensor& cc = c.input(o.c, "c");
  c.floating(a, "a");
  c.floating(b, "b");
  c.floating(cc, "c");
  c.floating(out, "out");
  Shape s;
  try {
    s = ops::broadcast_shapes(a.shape(), ops::broadcast_shapes(b.shape(), cc.shape()));
  } catch (const Error&) {
    c.fail("a " + a.shape().str() + ", b " + b.shape().str() + " and c " + cc.shape().str() + " do not broadcast");
  }
  c.shape_is(out, "out", s);
}

void check(const op::Affine& o) {
  Checker c("affine", o.out, InPlace::allowed);
  Tensor& out = c.output();
  check_same_shape_float(c, c.input(o.x, "x"), out);
  c.expect(std::isfinite(o.alpha) && std::isfinite(o.beta), "alpha and beta must be finite");
}

void check(const op::Fill& o) {
  Checker c("fill", o.out);
  c.output();
}

void check(const op::Concat& o) {
  Checker c("concat", o.out);
  Tensor& out = c.output();
  c.expect(!o.inputs.empty(), "no inputs");
  const int rank = out.rank();
  c.expect(rank >= 1, "out must have at least one dimension");
  const int axis = c.axis(o.axis, rank);
  int64_t total = 0;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const std::string name = "inputs[" + std::to_string(i) + "]";
    const Tensor& t = c.input(o.inputs[i], name.c_str());
    c.same_dtype(t, name.c_str(), out, "out");
    c.expect(t.rank() == rank, name + " " + t.shape().str() + " has a different rank than out " + out.shape().str());
    for (int d = 0; d < rank; ++d)
      if (d != axis)
        c.expect(t.dim(d) == out.dim(d), name + " " + t.shape().str() + " differs from out " + out.shape().str() +
                                             " in dimension " + std::to_string(d) + " (not the concat axis)");
    total += t.dim(axis);
  }
  c.expect(total == out.dim(axis), "out " + out.shape().str() + " has " + std::to_string(out.dim(axis)) +
                                       " along axis " + std::to_string(axis) + ", the inputs sum to " +
                                       std::to_string(total));
}

void check(const op::Pad& o) {
  Checker c("pad", o.out);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  c.same_dtype(out, "out", x, "x");
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < kMaxRank; ++i) {
    c.expect(o.before[i] >= 0 && o.after[i] >= 0, "padding of dimension " + std::to_string(i) + " is negative");
    if (i >= x.rank())
      c.expect(o.before[i] == 0 && o.after[i] == 0,
               "padding given for dimension " + std::to_string(i) + " but x " + x.shape().str() + " has rank " +
                   std::to_string(x.rank()));
    else
      d[i] = x.dim(i) + o.before[i] + o.after[i];
  }
  c.shape_is(out, "out", with_dims({d.data(), size_t(x.rank())}));
}

void check(const op::UpsampleNearest& o) {
  Checker c("upsample_nearest", o.out);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  c.same_dtype(out, "out", x, "x");
  c.expect(x.rank() >= 2, "x " + x.shape().str() + " needs at least two dimensions");
  c.expect(o.scale_h >= 1 && o.scale_w >= 1, "scale factors must be >= 1");
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < x.rank(); ++i) d[i] = x.dim(i);
  d[x.rank() - 2] *= o.scale_h;
  d[x.rank() - 1] *= o.scale_w;
  c.shape_is(out, "out", with_dims({d.data(), size_t(x.rank())}));
}

void check(const op::Permute& o) {
  Checker c("permute", o.out);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  c.same_dtype(out, "out", x, "x");
  const int rank = x.rank();
  std::array<bool, kMaxRank> seen{};
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < rank; ++i) {
    const int p = o.perm[i];
    c.expect(p >= 0 && p < rank && !seen[p], "perm is not a permutation of the " + std::to_string(rank) +
                                                 " dimensions of x " + x.shape().str());
    seen[p] = true;
    d[i] = x.dim(p);
  }
  c.shape_is(out, "out", with_dims({d.data(), size_t(rank)}));
}

void check(const op::Slice& o) {
  Checker c("slice", o.out);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  c.same_dtype(out, "out", x, "x");
  c.expect(x.rank() >= 1, "cannot slice a scalar");
  const int axis = c.axis(o.axis, x.rank());
  c.expect(out.rank() == x.rank(), "out " + out.shape().str() + " has a different rank than x " + x.shape().str());
  for (int d = 0; d < x.rank(); ++d)
    if (d != axis)
      c.expect(out.dim(d) == x.dim(d), "out " + out.shape().str() + " differs from x " + x.shape().str() +
                                           " in dimension " + std::to_string(d));
  c.expect(o.begin >= 0 && o.begin + out.dim(axis) <= x.dim(axis),
           "range [" + std::to_string(o.begin) + ", " + std::to_string(o.begin + out.dim(axis)) +
               ") is out of bounds for dimension " + std::to_string(axis) + " of x " + x.shape().str());
}

void check(const op::Convert& o) {
  Checker c("convert", o.out, InPlace::allowed);
  Tensor& out = c.output();
  const Tensor& x = c.input(o.x, "x");
  c.shape_is(out, "out", x.shape());
  c.expect((x.dtype() == DType::i32) == (out.dtype() == DType::i32),
           "i32 converts only to i32 (x " + describe(x) + ", out " + describe(out) + ")");
}

void check(const op::Attention& o) {
  Checker c("attention", o.out);
  Tensor& out = c.output();
  const Tensor& q = c.input(o.q, "q");
  const Tensor& k = c.input(o.k, "k");
  const Tensor& v = c.input(o.v, "v");
  AttentionParams p = attention_params(q, k, v, out, o.scale);
  if (o.lse) {
    const Tensor& lse = c.input(o.lse, "lse");
    const int r = q.rank();
    c.shape_is(lse, "lse", Shape{r == 4 ? q.dim(0) : 1, q.dim(r - 2), q.dim(r - 3)});
    c.expect(lse.dtype() == DType::f32 && lse.device() == out.device(),
             "lse must be f32 on out's device (lse " + describe(lse) + ")");
    p.lse = static_cast<float*>(o.lse->raw());
  }
  validate_attention_params(p);  // shapes, dtypes, strides, overlap
}

}  // namespace

void validate(const Op& op) {
  std::visit([](const auto& o) { check(o); }, op);
}

// ---------------------------------------------------------------- typed wrappers

namespace ops {

namespace {
[[noreturn]] void bad(std::string_view op, const std::string& message) {
  throw Error(StatusCode::invalid_argument, std::string(op) + ": " + message);
}
Shape replace_dim(const Shape& s, int axis, int64_t value) {
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < s.rank(); ++i) d[i] = s[i];
  d[axis] = value;
  return Shape(std::span<const int64_t>(d.data(), size_t(s.rank())));
}
int norm_axis(std::string_view op, int axis, int rank) {
  const int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) bad(op, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return a;
}
template <class O> Tensor run_same_shape(Backend& be, const Tensor& x, O op, DType dtype) {
  Tensor out = be.empty(x.shape(), dtype);
  op.out = &out;
  be.run(op);
  return out;
}
}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const int rank = std::max(a.rank(), b.rank());
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < rank; ++i) {
    const int ia = a.rank() - rank + i, ib = b.rank() - rank + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw Error(StatusCode::invalid_argument,
                  "shapes " + a.str() + " and " + b.str() + " do not broadcast (dimension " + std::to_string(i) + ")");
    d[i] = da == 1 ? db : da;
  }
  return Shape(std::span<const int64_t>(d.data(), size_t(rank)));
}

Tensor linear(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias, std::optional<DType> out_dtype) {
  if (x.rank() < 1 || weight.rank() != 2)
    bad("linear", "x " + x.shape().str() + " must have rank >= 1 and weight " + weight.shape().str() + " rank 2");
  Tensor out = be.empty(replace_dim(x.shape(), x.rank() - 1, weight.dim(0)), out_dtype.value_or(x.dtype()));
  be.run(op::Linear{&x, &weight, bias, &out});
  return out;
}

Tensor batch_matmul(Backend& be, const Tensor& a, const Tensor& b, bool transpose_b, float alpha) {
  if (a.rank() != 3 || b.rank() != 3)
    bad("batch_matmul", "a " + a.shape().str() + " and b " + b.shape().str() + " must both have rank 3");
  Tensor out = be.empty({a.dim(0), a.dim(1), transpose_b ? b.dim(1) : b.dim(2)}, a.dtype());
  be.run(op::BatchMatMul{&a, &b, &out, transpose_b, alpha});
  return out;
}

namespace {
template <int N>
Shape conv_out_shape(std::string_view op, const Tensor& x, const Tensor& w, const std::array<int, N>& stride,
                     const std::array<int, N>& padding) {
  if (x.rank() != N + 2 || w.rank() != N + 2)
    bad(op, "x " + x.shape().str() + " and weight " + w.shape().str() + " must have rank " + std::to_string(N + 2));
  std::array<int64_t, kMaxRank> d{};
  d[0] = x.dim(0);
  d[1] = w.dim(0);
  for (int i = 0; i < N; ++i) {
    if (stride[i] < 1 || padding[i] < 0) bad(op, "stride must be >= 1 and padding >= 0");
    const int64_t span = x.dim(2 + i) + 2 * int64_t(padding[i]) - w.dim(2 + i);
    if (span < 0) bad(op, "kernel " + w.shape().str() + " is larger than the padded input " + x.shape().str());
    d[2 + i] = span / stride[i] + 1;
  }
  return Shape(std::span<const int64_t>(d.data(), size_t(N + 2)));
}
}  // namespace

Tensor conv3d(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias, std::array<int, 3> stride,
              std::array<int, 3> padding) {
  Tensor out = be.empty(conv_out_shape<3>("conv3d", x, weight, stride, padding), x.dtype());
  be.run(op::Conv3d{&x, &weight, bias, &out, stride, padding});
  return out;
}

Tensor conv2d(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias, std::array<int, 2> stride,
              std::array<int, 2> padding) {
  Tensor out = be.empty(conv_out_shape<2>("conv2d", x, weight, stride, padding), x.dtype());
  be.run(op::Conv2d{&x, &weight, bias, &out, stride, padding});
  return out;
}

Tensor layer_norm(Backend& be, const Tensor& x, const Tensor* weight, const Tensor* bias, float eps) {
  return run_same_shape(be, x, op::LayerNorm{&x, weight, bias, nullptr, eps}, x.dtype());
}

Tensor rms_norm(Backend& be, const Tensor& x, const Tensor* weight, float eps) {
  return run_same_shape(be, x, op::RmsNorm{&x, weight, nullptr, eps}, x.dtype());
}

Tensor channel_l2_norm(Backend& be, const Tensor& x, const Tensor& gamma, const Tensor* bias) {
  return run_same_shape(be, x, op::ChannelL2Norm{&x, &gamma, bias, nullptr}, x.dtype());
}

Tensor silu(Backend& be, const Tensor& x) {
  return run_same_shape(be, x, op::Unary{op::UnaryKind::silu, &x, nullptr}, x.dtype());
}
Tensor gelu_tanh(Backend& be, const Tensor& x) {
  return run_same_shape(be, x, op::Unary{op::UnaryKind::gelu_tanh, &x, nullptr}, x.dtype());
}
Tensor gelu_erf(Backend& be, const Tensor& x) {
  return run_same_shape(be, x, op::Unary{op::UnaryKind::gelu_erf, &x, nullptr}, x.dtype());
}

Tensor relu(Backend& be, const Tensor& x) {
  return run_same_shape(be, x, op::Unary{op::UnaryKind::relu, &x, nullptr}, x.dtype());
}

Tensor tanh(Backend& be, const Tensor& x) {
  return run_same_shape(be, x, op::Unary{op::UnaryKind::tanh, &x, nullptr}, x.dtype());
}
Tensor softmax(Backend& be, const Tensor& x, float scale) {
  return run_same_shape(be, x, op::Softmax{&x, nullptr, scale}, x.dtype());
}

Tensor modulate(Backend& be, const Tensor& x, const Tensor& scale, const Tensor& shift) {
  return run_same_shape(be, x, op::Modulate{&x, &scale, &shift, nullptr}, x.dtype());
}

Tensor rope(Backend& be, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  return run_same_shape(be, x, op::Rope{&x, &cos, &sin, nullptr}, x.dtype());
}

namespace {
Tensor binary(Backend& be, op::BinaryKind kind, const Tensor& a, const Tensor& b) {
  Tensor out = be.empty(broadcast_shapes(a.shape(), b.shape()), a.dtype());
  be.run(op::Binary{kind, &a, &b, &out});
  return out;
}
}  // namespace

Tensor add(Backend& be, const Tensor& a, const Tensor& b) { return binary(be, op::BinaryKind::add, a, b); }
Tensor sub(Backend& be, const Tensor& a, const Tensor& b) { return binary(be, op::BinaryKind::sub, a, b); }
Tensor mul(Backend& be, const Tensor& a, const Tensor& b) { return binary(be, op::BinaryKind::mul, a, b); }

Tensor mul_add(Backend& be, const Tensor& a, const Tensor& b, const Tensor& c) {
  Tensor out = be.empty(broadcast_shapes(a.shape(), broadcast_shapes(b.shape(), c.shape())), a.dtype());
  be.run(op::MulAdd{&a, &b, &c, &out});
  return out;
}

Tensor affine(Backend& be, const Tensor& x, float alpha, float beta) {
  return run_same_shape(be, x, op::Affine{&x, nullptr, alpha, beta}, x.dtype());
}

Tensor full(Backend& be, const Shape& shape, DType dtype, float value) {
  Tensor out = be.empty(shape, dtype);
  be.run(op::Fill{&out, value});
  return out;
}

Tensor concat(Backend& be, const std::vector<const Tensor*>& inputs, int axis) {
  if (inputs.empty()) bad("concat", "no inputs");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i] || !inputs[i]->defined()) bad("concat", "inputs[" + std::to_string(i) + "] is null or undefined");
  const Tensor& first = *inputs[0];
  if (first.rank() < 1) bad("concat", "inputs must have at least one dimension");
  const int a = norm_axis("concat", axis, first.rank());
  int64_t total = 0;
  for (const Tensor* t : inputs) {
    if (t->rank() != first.rank())
      bad("concat", "inputs " + first.shape().str() + " and " + t->shape().str() + " have different ranks");
    total += t->dim(a);
  }
  Tensor out = be.empty(replace_dim(first.shape(), a, total), first.dtype());
  be.run(op::Concat{inputs, a, &out});
  return out;
}

Tensor pad(Backend& be, const Tensor& x, std::span<const int64_t> before, std::span<const int64_t> after, float value) {
  if (before.size() != size_t(x.rank()) || after.size() != size_t(x.rank()))
    bad("pad", "before/after have " + std::to_string(before.size()) + "/" + std::to_string(after.size()) +
                   " entries, x " + x.shape().str() + " has rank " + std::to_string(x.rank()));
  op::Pad p{&x, nullptr};
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < x.rank(); ++i) {
    if (before[i] < 0 || after[i] < 0) bad("pad", "padding of dimension " + std::to_string(i) + " is negative");
    p.before[i] = before[i];
    p.after[i] = after[i];
    d[i] = x.dim(i) + before[i] + after[i];
  }
  p.value = value;
  Tensor out = be.empty(Shape(std::span<const int64_t>(d.data(), size_t(x.rank()))), x.dtype());
  p.out = &out;
  be.run(p);
  return out;
}

Tensor upsample_nearest(Backend& be, const Tensor& x, int scale_h, int scale_w) {
  if (x.rank() < 2) bad("upsample_nearest", "x " + x.shape().str() + " needs at least two dimensions");
  if (scale_h < 1 || scale_w < 1) bad("upsample_nearest", "scale factors must be >= 1");
  Shape s = replace_dim(x.shape(), x.rank() - 2, x.dim(-2) * scale_h);
  s = replace_dim(s, x.rank() - 1, x.dim(-1) * scale_w);
  Tensor out = be.empty(s, x.dtype());
  be.run(op::UpsampleNearest{&x, &out, scale_h, scale_w});
  return out;
}

Tensor permute(Backend& be, const Tensor& x, std::span<const int> perm) {
  if (perm.size() != size_t(x.rank()))
    bad("permute", "perm has " + std::to_string(perm.size()) + " entries, x " + x.shape().str() + " has rank " +
                       std::to_string(x.rank()));
  op::Permute p{&x, nullptr};
  std::array<int64_t, kMaxRank> d{};
  std::array<bool, kMaxRank> seen{};
  for (int i = 0; i < x.rank(); ++i) {
    if (perm[i] < 0 || perm[i] >= x.rank() || seen[perm[i]]) bad("permute", "perm is not a permutation");
    seen[perm[i]] = true;
    p.perm[i] = perm[i];
    d[i] = x.dim(perm[i]);
  }
  Tensor out = be.empty(Shape(std::span<const int64_t>(d.data(), size_t(x.rank()))), x.dtype());
  p.out = &out;
  be.run(p);
  return out;
}

Tensor slice(Backend& be, const Tensor& x, int axis, int64_t begin, int64_t end) {
  if (x.rank() < 1) bad("slice", "cannot slice a scalar");
  const int a = norm_axis("slice", axis, x.rank());
  if (begin < 0 || end < begin || end > x.dim(a))
    bad("slice", "range [" + std::to_string(begin) + ", " + std::to_string(end) + ") is out of bounds for dimension " +
                     std::to_string(a) + " of x " + x.shape().str());
  Tensor out = be.empty(replace_dim(x.shape(), a, end - begin), x.dtype());
  be.run(op::Slice{&x, &out, a, begin});
  return out;
}

Tensor convert(Backend& be, const Tensor& x, DType dtype) {
  Tensor out = be.empty(x.shape(), dtype);
  be.run(op::Convert{&x, &out});
  return out;
}

Tensor attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 std::string_view kernel) {
  Tensor out = be.empty(q.shape(), q.dtype());
  be.run(op::Attention{&q, &k, &v, &out, scale, kernel});
  return out;
}

}  // namespace ops
}  // namespace reel
