// CPU Conv3d (NCDHW) and Conv2d (NCHW) through oneDNN convolution: f32 and bf16 (f32
// accumulation) when the CPU runs bf16 natively, else f32 (CpuContext). oneDNN picks its
// preferred (blocked) layouts and types; one reorder per operand converts layout and dtype
// together. Built primitives and reorders are cached per shape/dtype key.
#include <optional>

#include "cpu/cpu_dnnl.hpp"
#include "cpu/cpu_kernels.hpp"

namespace reel::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

struct ConvPrimitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  // Plain layouts of the reel tensors in their own dtypes; a reorder moves each into (or, for
  // dst, out of) the primitive's preferred layout and type in one pass.
  memory::desc src_user, wei_user, dst_user;
  std::optional<dnnl::reorder> src_reorder, wei_reorder, dst_reorder;
  memory::desc scratchpad;  // large enough for the convolution and each reorder (run one after another)
};

memory::dims to_dims(const Shape& s) { return memory::dims(s.dims().begin(), s.dims().end()); }

std::shared_ptr<ConvPrimitive> try_build(const dnnl::engine& eng, DType c, const Tensor& x, const Tensor& w,
                                         const Tensor& out, bool bias, const memory::dims& strides,
                                         const memory::dims& padding) {
  const bool three_d = x.rank() == 5;
  const tag act = three_d ? tag::ncdhw : tag::nchw;
  const tag wtag = three_d ? tag::oidhw : tag::oihw;
  const DType dst_type = (out.dtype() == DType::f32 || out.dtype() == c) ? out.dtype() : DType::f32;
  try {
    memory::desc src_any(to_dims(x.shape()), dnnl_type(c), tag::any);
    memory::desc wei_any(to_dims(w.shape()), dnnl_type(c), tag::any);
    memory::desc dst_any(to_dims(out.shape()), dnnl_type(dst_type), tag::any);
    memory::desc bias_md = bias ? memory::desc({w.dim(0)}, memory::data_type::f32, tag::a) : memory::desc();
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_any, wei_any, bias_md, dst_any, strides, padding, padding);
    const dnnl::primitive_attr attr = user_scratchpad_attr();
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    if (c != DType::f32 && is_reference_impl(pd.impl_info_str())) return nullptr;
    auto p = std::make_shared<ConvPrimitive>();
    p->pd = pd;
    p->prim = dnnl::convolution_forward(pd);
    p->src_user = memory::desc(to_dims(x.shape()), dnnl_type(x.dtype()), act);
    p->wei_user = memory::desc(to_dims(w.shape()), dnnl_type(w.dtype()), wtag);
    p->dst_user = memory::desc(to_dims(out.shape()), dnnl_type(out.dtype()), act);
    size_t scratch = pd.scratchpad_desc().get_size();
    auto make_reorder = [&](const memory::desc& from, const memory::desc& to) {
      dnnl::reorder::primitive_desc rpd(eng, from, eng, to, attr);
      scratch = std::max(scratch, rpd.scratchpad_desc().get_size());
      return dnnl::reorder(rpd);
    };
    if (p->src_user != pd.src_desc()) p->src_reorder = make_reorder(p->src_user, pd.src_desc());
    if (p->wei_user != pd.weights_desc()) p->wei_reorder = make_reorder(p->wei_user, pd.weights_desc());
    if (p->dst_user != pd.dst_desc()) p->dst_reorder = make_reorder(pd.dst_desc(), p->dst_user);
    p->scratchpad = memory::desc({int64_t(std::max<size_t>(scratch, 1))}, memory::data_type::u8, tag::a);
    return p;
  } catch (const dnnl::error&) {
    if (c == DType::f32) throw;
    return nullptr;
  }
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
  const DType preferred = compute_type(x.dtype(), w.dtype(), ctx.native_low_precision());
  auto cp = std::static_pointer_cast<ConvPrimitive>(ctx.cached(key, [&] {
    auto p = try_build(ctx.engine(), preferred, x, w, out, o.bias != nullptr, strides, padding);
    if (!p) p = try_build(ctx.engine(), DType::f32, x, w, out, o.bias != nullptr, strides, padding);
    return std::static_pointer_cast<void>(p);
  }));

  const dnnl::engine& eng = ctx.engine();
  dnnl::stream stream(eng);
  memory src_user(cp->src_user, eng, const_cast<void*>(x.raw()));
  memory wei_user(cp->wei_user, eng, const_cast<void*>(w.raw()));
  memory dst_user(cp->dst_user, eng, out.raw());
  const memory scratchpad = scratchpad_memory(cp->scratchpad, eng);
  // Operands in the primitive's layout: the user memory itself, or a reordered copy in scratch.
  auto staged = [&](const memory& user, const std::optional<dnnl::reorder>& r, const memory::desc& want,
                    ScratchSlot slot) {
    if (!r) return user;
    memory m(want, eng, scratch_buffer(slot, want.get_size()));
    r->execute(stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
    return m;
  };
  memory src = staged(src_user, cp->src_reorder, cp->pd.src_desc(), kScratchSrc);
  memory wei = staged(wei_user, cp->wei_reorder, cp->pd.weights_desc(), kScratchWeights);
  memory dst = cp->dst_reorder ? memory(cp->pd.dst_desc(), eng, scratch_buffer(kScratchDst, cp->pd.dst_desc().get_size()))
                               : dst_user;
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratchpad}};
  if (o.bias)
    args.emplace(DNNL_ARG_BIAS,
                 memory(cp->pd.bias_desc(), eng, const_cast<void*>(data_as(*o.bias, DType::f32, kScratchBias))));
  cp->prim.execute(stream, args);
  if (cp->dst_reorder)
    cp->dst_reorder->execute(stream, {{DNNL_ARG_FROM, dst}, {DNNL_ARG_TO, dst_user}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
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
