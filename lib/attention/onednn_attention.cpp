// onednn: the fallback CPU attention built from oneDNN primitives. Per (batch, head) and block
// of query rows: S = scale·Q·Kᵀ (matmul, f32 out), P = softmax(S) (softmax_v2, P in the input
// dtype), O = P·V (matmul). It materialises one block of Mq × Skv scores (≤ 8 MiB), not the
// whole matrix. The primitives read the [B, S, H, D] strides directly: no copies.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <memory>
#include <vector>

#include "attention/builtin_kernels.hpp"

namespace reel::attn {

namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;

constexpr int64_t kScoreBlockBytes = int64_t(8) << 20;

dt to_dnnl(int dtype) { return dtype == REEL_ATTENTION_BF16 ? dt::bf16 : dtype == REEL_ATTENTION_F16 ? dt::f16 : dt::f32; }

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// The three primitives for a block of `mq` query rows.
struct BlockPrimitives {
  memory::desc q, kt, s, p, v, o;
  dnnl::matmul qk, pv;
  dnnl::softmax_v2_forward softmax;

  BlockPrimitives(const AttentionParams& prm, int64_t mq) {
    const dt t = to_dnnl(prm.dtype);
    const int64_t d = prm.head_dim, skv = prm.seq_kv;
    const dnnl::engine& eng = cpu_engine();
    q = memory::desc({mq, d}, t, {prm.q_row_stride, 1});
    kt = memory::desc({d, skv}, t, {1, prm.k_row_stride});
    s = memory::desc({mq, skv}, dt::f32, {skv, 1});
    p = memory::desc({mq, skv}, t, {skv, 1});
    v = memory::desc({skv, d}, t, {prm.v_row_stride, 1});
    o = memory::desc({mq, d}, t, {prm.out_row_stride, 1});
    dnnl::primitive_attr scaled;
    scaled.set_output_scales(0, {prm.scale});
    qk = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q, kt, s), scaled, eng));
    softmax = dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate, s, p, 1),
        eng));
    pv = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p, v, o), eng));
  }
};

int64_t block_rows(const AttentionParams& p) {
  return std::clamp<int64_t>(kScoreBlockBytes / (p.seq_kv * 4), 16, 1024);
}

class OneDnnAttention final : public AttentionKernel {
 public:
  std::string_view name() const override { return "onednn"; }
  std::string_view description() const override {
    return "oneDNN matmul + softmax per block of query rows (the fallback)";
  }
  DeviceType device_type() const override { return DeviceType::cpu; }
  int priority() const override { return 50; }

  Support supports(const AttentionParams& p) const override {
    if (p.lse) return Support::no("does not produce the log-sum-exp output (lse)");
    try {
      BlockPrimitives probe(p, std::min(p.seq_q, block_rows(p)));
    } catch (const dnnl::error& e) {
      return Support::no(std::string("oneDNN cannot build the primitives for ") +
                         std::string(dtype_name(DType(p.dtype))) + " on this CPU (" + e.what() + ")");
    }
    return Support::yes();
  }

  void run(const AttentionParams& p) const override {
    try {
      run_blocks(p);
    } catch (const dnnl::error& e) {
      throw Error(StatusCode::internal, std::string("onednn attention: ") + e.what());
    }
  }

 private:
  static void run_blocks(const AttentionParams& p) {
    const int64_t mq = std::min(p.seq_q, block_rows(p)), tail = p.seq_q % mq;
    BlockPrimitives full(p, mq);
    std::unique_ptr<BlockPrimitives> last = tail ? std::make_unique<BlockPrimitives>(p, tail) : nullptr;
    const size_t elem = dtype_size(DType(p.dtype));
    std::vector<float> scores(size_t(mq * p.seq_kv));
    std::vector<char> probs(size_t(mq * p.seq_kv) * elem);
    dnnl::stream st(cpu_engine());
    auto at = [&](const void* base, int64_t offset) {
      return const_cast<char*>(static_cast<const char*>(base) + offset * int64_t(elem));
    };
    for (int64_t b = 0; b < p.batch; ++b)
      for (int64_t h = 0; h < p.heads; ++h)
        for (int64_t i0 = 0; i0 < p.seq_q; i0 += mq) {
          const BlockPrimitives& bp = (i0 + mq <= p.seq_q) ? full : *last;
          const dnnl::engine& eng = cpu_engine();
          memory q(bp.q, eng, at(p.q, b * p.q_batch_stride + i0 * p.q_row_stride + h * p.q_head_stride));
          memory kt(bp.kt, eng, at(p.k, b * p.k_batch_stride + h * p.k_head_stride));
          memory v(bp.v, eng, at(p.v, b * p.v_batch_stride + h * p.v_head_stride));
          memory o(bp.o, eng, at(p.out, b * p.out_batch_stride + i0 * p.out_row_stride + h * p.out_head_stride));
          memory s(bp.s, eng, scores.data());
          memory pr(bp.p, eng, probs.data());
          bp.qk.execute(st, {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, s}});
          bp.softmax.execute(st, {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, pr}});
          bp.pv.execute(st, {{DNNL_ARG_SRC, pr}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, o}});
        }
    st.wait();
  }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_onednn_kernel() { return std::make_shared<OneDnnAttention>(); }

}  // namespace reel::attn
