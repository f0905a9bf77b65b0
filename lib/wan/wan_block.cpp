// One Wan transformer block (reel/wan.md §1.3d–e): modulated self-attention with 3-D RoPE,
// cross-attention to the text (and image) context, modulated GELU(tanh) MLP. The dtype of each
// intermediate follows diffusers: LayerNorm, modulation and the gated residual adds in f32,
// everything else in the activation dtype.
#include <cmath>

#include "reel/attention.hpp"
#include "reel/ops.hpp"
#include "wan/wan_model.hpp"

namespace reel::wan {

namespace {

// Rows of a [B, L, D] tensor for one segment (a view: writes go to t).
Tensor rows_of(const Tensor& t, const Segment& s) { return t.select(s.batch).slice(s.begin, s.end); }

// out[seg] = a[seg] + b[seg] · table[u, row] (f32 math), for every segment.
void gated_add(Backend& be, const Tensor& a, const Tensor& b, const Tensor& table, int row,
               std::span<const Segment> segments, Tensor& out) {
  for (const Segment& s : segments) {
    const Tensor as = rows_of(a, s), bs = rows_of(b, s);
    Tensor os = rows_of(out, s);
    const Tensor gate = table.select(s.timestep).select(row);  // [D]
    be.run(op::MulAdd{&as, &bs, &gate, &os});
  }
}

// [B, S, D] → [B, S, H, hd] (a view).
Tensor heads_of(const Tensor& t, int64_t heads) {
  return t.reshape({t.dim(0), t.dim(1), heads, t.dim(2) / heads});
}

// q/k projection followed by the RMSNorm across all heads (diffusers norm_q / norm_k).
Tensor project_normed(Backend& be, const Tensor& x, const Linear& l, const Tensor& norm, float eps) {
  const Tensor y = linear(be, x, l);
  return ops::rms_norm(be, y, &norm, eps);
}

// x·Wᵀ + b with quantised weights (quant/qmatrix.hpp): x and the result are f32 on the host.
Tensor quantised_linear(Backend& be, const Tensor& x, const Linear& l, DType out_dtype) {
  require(x.is_cpu(), StatusCode::unsupported, "quantised weights run on the CPU only for now (activations on " +
                                                   x.device().str() + ")");
  const Tensor x32 = x.dtype() == DType::f32 ? x : ops::convert(be, x, DType::f32);
  const int64_t k = x.shape()[x.rank() - 1], m = x.numel() / k, n = l.quantised->rows();
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = n;
  Tensor y = Tensor::empty(Shape(std::span<const int64_t>(dims)), DType::f32);
  const Tensor b32 = l.bias.defined() ? (l.bias.dtype() == DType::f32 ? l.bias : ops::convert(be, l.bias, DType::f32)) : Tensor();
  quant::q_linear(x32.data<float>(), m, *l.quantised, b32.defined() ? b32.data<float>() : nullptr, y.data<float>());
  return out_dtype == DType::f32 ? y : ops::convert(be, y, out_dtype);
}

}  // namespace

Tensor linear(Backend& be, const Tensor& x, const Linear& l, std::optional<DType> out_dtype) {
  Tensor y = l.quantised ? quantised_linear(be, x, l, out_dtype.value_or(x.dtype()))
                         : ops::linear(be, x, l.weight, &l.bias, out_dtype);
  for (const SidePath& side : l.side_paths) {  // runtime LoRAs
    Tensor h = ops::linear(be, x, side.down, nullptr, y.dtype());
    if (side.up.defined()) h = ops::linear(be, h, side.up, nullptr, y.dtype());
    y = ops::add(be, y, h);
  }
  return y;
}

void layer_norm_modulate(Backend& be, const Tensor& x, const Tensor& table, int shift_row,
                         std::span<const Segment> segments, float eps, Tensor& out) {
  // One pass per segment: LN(x.float()) in f32 (as FP32LayerNorm), modulated, rounded once.
  for (const Segment& s : segments) {
    const Tensor xs = rows_of(x, s);
    Tensor os = rows_of(out, s);
    const Tensor row = table.select(s.timestep);  // [rows, D]
    const Tensor shift = row.select(shift_row), scale = row.select(shift_row + 1);
    be.run(op::LayerNorm{.x = &xs, .weight = nullptr, .bias = nullptr, .out = &os, .eps = eps,
                         .mod_scale = &scale, .mod_shift = &shift});
  }
}

Tensor attend(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, std::string_view kernel) {
  return ops::attention(be, q, k, v, 1.0f / std::sqrt(float(q.dim(3))), kernel);
}

Tensor block_forward(Backend& be, const WanConfig& cfg, const BlockWeights& blk, const Tensor& x,
                     const BlockInputs& in) {
  const DType act = x.dtype();
  const int64_t batch = x.dim(0), tokens = x.dim(1), dim = x.dim(2), heads = cfg.heads;
  const float eps = cfg.eps;

  // e = scale_shift_table + timestep_proj (f32): rows shift, scale, gate (attention), shift, scale, gate (FFN).
  const int64_t unique = in.projection->dim(0);
  const Tensor proj = in.projection->reshape({unique, 6, dim});
  Tensor mod = be.empty({unique, 6, dim}, DType::f32);
  be.run(op::Binary{op::BinaryKind::add, &blk.modulation, &proj, &mod});

  // Each stage keeps only what later stages read: intermediates die in their scope (on a GPU
  // that bounds the activations of a 480p step with CFG, see bench_device_memory).

  // 1. Self-attention with RoPE.
  Tensor x1 = be.empty(x.shape(), act);
  {
    Tensor attn;
    {
      Tensor n = be.empty(x.shape(), act);
      layer_norm_modulate(be, x, mod, 0, in.segments, eps, n);
      Tensor q = heads_of(project_normed(be, n, blk.q, blk.norm_q, eps), heads);
      Tensor k = heads_of(project_normed(be, n, blk.k, blk.norm_k, eps), heads);
      const Tensor v = heads_of(linear(be, n, blk.v), heads);
      n = Tensor();
      be.run(op::Rope{&q, &in.rope->cos, &in.rope->sin, &q});  // q and k are fresh: rotated in place
      be.run(op::Rope{&k, &in.rope->cos, &in.rope->sin, &k});
      attn = in.sequence_parallel
                 ? in.sequence_parallel->attention(be, q, k, v, 1.0f / std::sqrt(float(q.dim(3))), in.attention_kernel)
                 : attend(be, q, k, v, in.attention_kernel);
      attn = attn.reshape({batch, tokens, dim});
    }
    const Tensor attn_out = linear(be, attn, blk.o);
    attn = Tensor();
    gated_add(be, x, attn_out, mod, 2, in.segments, x1);
  }

  // 2. Cross-attention to the text context (plus the image context, I2V), no RoPE, no mask.
  Tensor x2;
  {
    Tensor cross;
    {
      Tensor cq;
      {
        const Tensor n2 =
            cfg.cross_attn_norm ? ops::layer_norm(be, x1, &blk.cross_norm.weight, &blk.cross_norm.bias, eps) : x1;
        cq = heads_of(project_normed(be, n2, blk.cross_q, blk.cross_norm_q, eps), heads);
      }
      const Tensor ck = project_normed(be, *in.context, blk.cross_k, blk.cross_norm_k, eps);
      const Tensor cv = linear(be, *in.context, blk.cross_v);
      cross = attend(be, cq, heads_of(ck, heads), heads_of(cv, heads), in.attention_kernel);
      if (in.image_context) {
        const Tensor ik = project_normed(be, *in.image_context, blk.image_k, blk.image_norm_k, eps);
        const Tensor iv = linear(be, *in.image_context, blk.image_v);
        const Tensor image_attn = attend(be, cq, heads_of(ik, heads), heads_of(iv, heads), in.attention_kernel);
        be.run(op::Binary{op::BinaryKind::add, &cross, &image_attn, &cross});  // summed before to_out
      }
    }
    const Tensor cross_out = linear(be, cross.reshape({batch, tokens, dim}), blk.cross_o);
    cross = Tensor();
    x2 = ops::add(be, x1, cross_out);  // plain add in the activation dtype
  }
  x1 = Tensor();

  // 3. Feed-forward.
  Tensor ffn;
  {
    Tensor h;
    {
      Tensor n3 = be.empty(x.shape(), act);
      layer_norm_modulate(be, x2, mod, 3, in.segments, eps, n3);
      h = linear(be, n3, blk.ffn_in);
    }
    be.run(op::Unary{op::UnaryKind::gelu_tanh, &h, &h});
    ffn = linear(be, h, blk.ffn_out);
  }
  Tensor x3 = be.empty(x.shape(), act);
  gated_add(be, x2, ffn, mod, 5, in.segments, x3);
  return x3;
}

}  // namespace reel::wan
