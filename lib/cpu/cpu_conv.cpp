// CPU Conv3d (NCDHW) and Conv2d (NCHW) through oneDNN convolution: f32 and bf16 (f32
// accumulation); f16 and other mixes run in f32. oneDNN picks its preferred (blocked) layouts;
// the plain tensors are reordered in and out. Built primitives are cached per shape/dtype key.
#include "cpu/cpu_dnnl.hpp"
#include "cpu/cpu_kernels.hpp"

namespace reel::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

struct ConvPrimitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  DType compute;
  DType dst;
  memory::desc src_user, wei_user, dst_user;  // plain layouts of the reel tensors
};

memory::dims to_dims(const Shape& s) { return memory::dims(s.dims().begin(), s.dims().end()); }

std::shared_ptr<ConvPrimitive> try_build(const dnnl::engine& eng, DType c, DType out_type, const Shape& x,
                                         const Shape& w, const Shape& out, bool bias, const memory::dims& strides,
                                         const memory::dims& padding) {
  const bool three_d = x.rank() == 5;
  const tag act = three_d ? tag::ncdhw : tag::nchw;
  const tag wtag = three_d ? tag::oidhw : tag::oihw;
  const DType dst_type = (out_type == DType::f32 || out_type == c) ? out_type : DType::f32;
  try {
    memory::desc src_any(to_dims(x), dnnl_type(c), tag::any);
    memory::desc wei_any(to_dims(w), dnnl_type(c), tag::any);
    memory::desc dst_any(to_dims(out), dnnl_type(dst_type), tag::any);
    memory::desc bias_md = bias ? memory::desc({w[0]}, memory::data_type::f32, tag::a) : memory::desc();
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_any, wei_any, bias_md, dst_any, strides, padding, padding);
    dnnl::convolution_forward::primitive_desc pd(d, eng);
    if (c != DType::f32 && is_reference_impl(pd.impl_info_str())) return nullptr;
    auto p = std::make_shared<ConvPrimitive>();
    p->pd = pd;
    p->prim = dnnl::convolution_forward(pd);
    p->compute = c;
    p->dst = dst_type;
    p->src_user = memory::desc(to_dims(x), dnnl_type(c), act);
    p->wei_user = memory::desc(to_dims(w), dnnl_type(c), wtag);
    p->dst_user = memory::desc(to_dims(out), dnnl_type(dst_type), act);
    return p;
  } catch (const dnnl::error&) {
    if (c == DType::f32) throw;
    return nullptr;
  }
}

// A memory in the primitive's layout `want`, holding `user` (reordered when the layouts differ).
memory to_layout(const memory& user, const memory::desc& want, const dnnl::engine& eng, dnnl::stream& stream) {
  if (user.get_desc() == want) return user;
  memory m(want, eng);
  dnnl::reorder(user, m).execute(stream, const_cast<memory&>(user), m);
  return m;
}

template <class O, size_t N>
void run_conv(const O& o, CpuContext& ctx, const char* name, const std::array<int, N>& stride_in,
              const std::array<int, N>& padding_in) {
  const Tensor& x = *o.x;
  const Tensor& w = *o.weight;
  Tensor& out = *o.out;
  if (out.numel() == 0) return;
  const memory::dims strides(stride_in.begin(), stride_in.end());
  const memory::dims padding(padding_in.begin(), padding_in.end());
  std::string key = std::string(name) + " " + x.shape().str() + w.shape().str() + " s";
  for (size_t i = 0; i < N; ++i) key += std::to_string(stride_in[i]) + "," + std::to_string(padding_in[i]) + ";";
  key += std::string(dtype_name(x.dtype())) + std::string(dtype_name(w.dtype())) +
         std::string(dtype_name(out.dtype())) + (o.bias ? " b" : "");
  const DType preferred = compute_type(x.dtype(), w.dtype());
  auto cp = std::static_pointer_cast<ConvPrimitive>(ctx.cached(key, [&] {
    auto p = try_build(ctx.engine(), preferred, out.dtype(), x.shape(), w.shape(), out.shape(), o.bias != nullptr,
                       strides, padding);
    if (!p)
      p = try_build(ctx.engine(), DType::f32, out.dtype(), x.shape(), w.shape(), out.shape(), o.bias != nullptr,
                    strides, padding);
    return std::static_pointer_cast<void>(p);
  }));

  const dnnl::engine& eng = ctx.engine();
  dnnl::stream stream(eng);
  Tensor xh, wh, bh, tmp;
  memory src_user(cp->src_user, eng, const_cast<void*>(data_as(x, cp->compute, xh)));
  memory wei_user(cp->wei_user, eng, const_cast<void*>(data_as(w, cp->compute, wh)));
  void* dst_ptr = out.raw();
  if (cp->dst != out.dtype()) {
    tmp = Tensor::empty(out.shape(), cp->dst);
    dst_ptr = tmp.raw();
  }
  memory dst_user(cp->dst_user, eng, dst_ptr);
  memory src = to_layout(src_user, cp->pd.src_desc(), eng, stream);
  memory wei = to_layout(wei_user, cp->pd.weights_desc(), eng, stream);
  const bool dst_direct = cp->pd.dst_desc() == cp->dst_user;
  memory dst = dst_direct ? dst_user : memory(cp->pd.dst_desc(), eng);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  if (o.bias)
    args.emplace(DNNL_ARG_BIAS, memory(cp->pd.bias_desc(), eng, const_cast<void*>(data_as(*o.bias, DType::f32, bh))));
  cp->prim.execute(stream, args);
  if (!dst_direct) dnnl::reorder(dst, dst_user).execute(stream, dst, dst_user);
  stream.wait();
  if (tmp.defined()) convert_parallel(tmp.raw(), tmp.dtype(), out.raw(), out.dtype(), out.numel());
}

}  // namespace

Support supports(const op::Conv3d& o) {
  return cpu_tensors({{o.x, "x"}, {o.weight, "weight"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::Conv3d& o, CpuContext& ctx) { run_conv(o, ctx, "conv3d", o.stride, o.padding); }

Support supports(const op::Conv2d& o) {
  return cpu_tensors({{o.x, "x"}, {o.weight, "weight"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::Conv2d& o, CpuContext& ctx) { run_conv(o, ctx, "conv2d", o.stride, o.padding); }

}  // namespace reel::cpu
