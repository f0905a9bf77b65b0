// CPU Linear and BatchMatMul through oneDNN matmul: f32, bf16 and f16 operands (f32
// accumulation), bf16 weights with f32 or bf16 activations. Primitives are built once per
// (shape, dtype) key and cached in the CpuContext.
#include <cstring>

#include "cpu/cpu_dnnl.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/cpu_skinny_gemm.hpp"
#include "parallel.hpp"

namespace reel::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

struct MatmulPrimitive {
  dnnl::matmul prim;
  memory::desc scratchpad;
  DType compute;  // operand type the primitive reads
  DType dst;      // type it writes (out's dtype, or f32 then converted)
};

// Builds a matmul for compute type c, or returns null when oneDNN has no fast kernel for it.
// dims: src [.., M, K], weights [.., K, N] (given by its desc), dst [.., M, N].
std::shared_ptr<MatmulPrimitive> try_build(const dnnl::engine& eng, DType c, DType out_type, const memory::dims& src,
                                           const memory::dims& wei, tag wei_tag, const memory::dims& dst,
                                           bool bias, float alpha) {
  const tag plain = src.size() == 2 ? tag::ab : tag::abc;
  const DType dst_type = (out_type == DType::f32 || out_type == c) ? out_type : DType::f32;
  try {
    memory::desc src_md(src, dnnl_type(c), plain);
    memory::desc wei_md(wei, dnnl_type(c), wei_tag);
    memory::desc dst_md(dst, dnnl_type(dst_type), plain);
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    dnnl::matmul::primitive_desc pd;
    if (bias) {
      memory::dims bdims(dst.size(), 1);
      bdims.back() = dst.back();
      memory::desc bias_md(bdims, memory::data_type::f32, plain);
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md), attr, eng);
    } else {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_md, dst_md), attr, eng);
    }
    if (c != DType::f32 && is_reference_impl(pd.impl_info_str())) return nullptr;
    return std::make_shared<MatmulPrimitive>(MatmulPrimitive{dnnl::matmul(pd), pd.scratchpad_desc(), c, dst_type});
  } catch (const dnnl::error&) {
    if (c == DType::f32) throw;
    return nullptr;
  }
}

std::shared_ptr<MatmulPrimitive> build(const dnnl::engine& eng, DType preferred, DType out_type,
                                       const memory::dims& src, const memory::dims& wei, tag wei_tag,
                                       const memory::dims& dst, bool bias, float alpha) {
  if (auto p = try_build(eng, preferred, out_type, src, wei, wei_tag, dst, bias, alpha)) return p;
  return try_build(eng, DType::f32, out_type, src, wei, wei_tag, dst, bias, alpha);
}

void run_matmul(CpuContext& ctx, const MatmulPrimitive& mp, const memory::dims& src, const void* a,
                const memory::dims& wei, tag wei_tag, const void* b, const float* bias, Tensor& out) {
  const dnnl::engine& eng = ctx.engine();
  const tag plain = src.size() == 2 ? tag::ab : tag::abc;
  memory::dims dst = src;
  dst.back() = wei.back();
  const bool via_scratch = mp.dst != out.dtype();
  void* dst_ptr = via_scratch ? scratch_buffer(kScratchDst, out.numel() * dtype_size(mp.dst)) : out.raw();
  memory src_m({src, dnnl_type(mp.compute), plain}, eng, const_cast<void*>(a));
  memory wei_m({wei, dnnl_type(mp.compute), wei_tag}, eng, const_cast<void*>(b));
  memory dst_m({dst, dnnl_type(mp.dst), plain}, eng, dst_ptr);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m},
                                       {DNNL_ARG_WEIGHTS, wei_m},
                                       {DNNL_ARG_DST, dst_m},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_memory(mp.scratchpad, eng)}};
  if (bias) {
    memory::dims bdims(dst.size(), 1);
    bdims.back() = dst.back();
    args.emplace(DNNL_ARG_BIAS, memory({bdims, memory::data_type::f32, plain}, eng, const_cast<float*>(bias)));
  }
  dnnl::stream stream(eng);
  mp.prim.execute(stream, args);
  stream.wait();
  if (via_scratch) convert_parallel(dst_ptr, mp.dst, out.raw(), out.dtype(), out.numel());
}

std::string type_key(DType t) { return std::string(dtype_name(t)); }

}  // namespace

// ---------------------------------------------------------------- Linear

Support supports(const op::Linear& o) {
  return cpu_tensors({{o.x, "x"}, {o.weight, "weight"}, {o.bias, "bias"}, {o.out, "out"}});
}

void execute(const op::Linear& o, CpuContext& ctx) {
  const Tensor& x = *o.x;
  const Tensor& w = *o.weight;
  Tensor& out = *o.out;
  const int64_t k = w.dim(1), n = w.dim(0);
  const int64_t m = n == 0 ? 0 : out.numel() / n;  // rows; x.numel() / k fails for K = 0
  if (out.numel() == 0) return;
  const float* bias = o.bias ? static_cast<const float*>(data_as(*o.bias, DType::f32, kScratchBias)) : nullptr;
  if (k == 0) {  // empty sum: out = bias (or zeros)
    std::vector<float> row(size_t(n), 0.0f);
    if (bias) std::copy_n(bias, n, row.data());
    for (int64_t r = 0; r < m; ++r) store_f32(row.data(), bytes_at(out, r * n), out.dtype(), n);
    return;
  }
  if (use_skinny_linear(o, ctx)) {
    skinny_linear(o);
    return;
  }
  const memory::dims src{m, k}, wei{k, n}, dst{m, n};
  const DType preferred = compute_type(x.dtype(), w.dtype(), ctx.native_low_precision());
  const std::string key = "linear " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) + " " +
                          type_key(x.dtype()) + type_key(w.dtype()) + type_key(out.dtype()) + (bias ? " b" : "");
  auto mp = std::static_pointer_cast<MatmulPrimitive>(ctx.cached(key, [&] {
    // weight [N, K] row-major is the [K, N] matrix in column-major order: tag ba.
    return std::static_pointer_cast<void>(build(ctx.engine(), preferred, out.dtype(), src, wei, tag::ba, dst,
                                                bias != nullptr, 1.0f));
  }));
  const void* a = data_as(x, mp->compute, kScratchSrc);
  const void* b = data_as(w, mp->compute, kScratchWeights);
  run_matmul(ctx, *mp, src, a, wei, tag::ba, b, bias, out);
}

// ---------------------------------------------------------------- BatchMatMul

Support supports(const op::BatchMatMul& o) { return cpu_tensors({{o.a, "a"}, {o.b, "b"}, {o.out, "out"}}); }

void execute(const op::BatchMatMul& o, CpuContext& ctx) {
  const Tensor& a = *o.a;
  const Tensor& b = *o.b;
  Tensor& out = *o.out;
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2), n = out.dim(2);
  if (out.numel() == 0) return;
  if (k == 0) {
    std::vector<float> zeros(size_t(out.numel()), 0.0f);
    store_f32(zeros.data(), out.raw(), out.dtype(), out.numel());
    return;
  }
  // b [B, N, K] row-major is [B, K, N] with the last two dims swapped: tag acb.
  const tag wei_tag = o.transpose_b ? tag::acb : tag::abc;
  const memory::dims src{batch, m, k}, wei{batch, k, n}, dst{batch, m, n};
  const std::string key = "bmm " + std::to_string(batch) + "x" + std::to_string(m) + "x" + std::to_string(k) + "x" +
                          std::to_string(n) + (o.transpose_b ? "t " : " ") + type_key(a.dtype()) +
                          type_key(out.dtype()) + " " + std::to_string(std::bit_cast<uint32_t>(o.alpha));
  auto mp = std::static_pointer_cast<MatmulPrimitive>(ctx.cached(key, [&] {
    return std::static_pointer_cast<void>(
        build(ctx.engine(), compute_type(a.dtype(), b.dtype(), ctx.native_low_precision()), out.dtype(), src, wei,
              wei_tag, dst, false, o.alpha));
  }));
  const void* pa = data_as(a, mp->compute, kScratchSrc);
  const void* pb = data_as(b, mp->compute, kScratchWeights);
  run_matmul(ctx, *mp, src, pa, wei, wei_tag, pb, nullptr, out);
}

}  // namespace reel::cpu
