// CPU attention kernels (every cpu_flash instruction-set variant and onednn) against the exact
// reference on random inputs over many shapes, with the tolerance rule of DESIGN.md
// (attention_test_util.hpp); plus strided layouts, the lse output and a ring-attention merge.
#include <map>
#include <tuple>

#include "attention/cpu_flash.hpp"
#include "attention/attention_test_util.hpp"

namespace reel::test {
namespace {

const std::vector<AttnShape>& shapes() {
  static const std::vector<AttnShape> s = {
      {1, 1, 1, 1, 64},       // smallest
      {1, 77, 300, 3, 128},   // odd lengths, Sq != Skv, several kv blocks with a tail
      {2, 64, 64, 2, 64},     // B > 1, whole blocks
      {2, 130, 257, 2, 128},  // q tail of 2 rows, odd Skv (bf16 key pairs padded)
      {1, 100, 512, 2, 128},  // cross-attention to 512 text tokens
      {3, 5, 17, 1, 64},      // tiny and B = 3
      {1, 33, 45, 2, 7},      // odd head_dim (bf16 takes the f32 path)
      {1, 70, 150, 1, 256},   // largest head_dim cpu_flash takes
      {1, 40, 1000, 1, 80},   // many kv blocks; head_dim not a multiple of the 6-row tile
  };
  return s;
}

// Inputs and tolerance per (shape, dtype), computed once and shared by every kernel.
struct Prepared {
  AttnInputs in;
  Tolerance tol;
};
const Prepared& prepared(size_t shape_index, DType dtype) {
  static std::map<std::pair<size_t, int>, Prepared> cache;
  auto key = std::make_pair(shape_index, int(dtype));
  auto it = cache.find(key);
  if (it == cache.end()) {
    Prepared p;
    p.in = make_attention_inputs(shapes()[shape_index], dtype, 1000 + 10 * shape_index);
    p.tol = attention_tolerance(p.in, dtype);
    it = cache.emplace(key, std::move(p)).first;
  }
  return it->second;
}

enum class Variant { flash_generic, flash_avx512, flash_avx512_bf16, onednn };

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::flash_generic: return "cpu_flash_generic";
    case Variant::flash_avx512: return "cpu_flash_avx512";
    case Variant::flash_avx512_bf16: return "cpu_flash_avx512_bf16";
    case Variant::onednn: return "onednn";
  }
  return "?";
}

attn::FlashIsa isa_of(Variant v) {
  return v == Variant::flash_generic  ? attn::FlashIsa::generic
         : v == Variant::flash_avx512 ? attn::FlashIsa::avx512
                                      : attn::FlashIsa::avx512_bf16;
}

// Runs the variant; returns false (with the reason) when it does not support the call.
bool run_variant(Variant v, const AttentionParams& p, std::string* why) {
  validate_attention_params(p);
  if (v == Variant::onednn) {
    const Support s = find_attention_kernel("onednn")->supports(p);
    if (!s) {
      *why = s.reason;
      return false;
    }
    run_attention(p, "onednn");
    return true;
  }
  if (!attn::flash_isa_available(isa_of(v))) {
    *why = std::string("this CPU lacks ") + attn::flash_isa_name(isa_of(v));
    return false;
  }
  attn::run_cpu_flash(p, isa_of(v));
  return true;
}

class CpuAttention : public ::testing::TestWithParam<std::tuple<Variant, DType>> {};

TEST_P(CpuAttention, MatchesReferenceOverShapes) {
  const auto [variant, dtype] = GetParam();
  for (size_t i = 0; i < shapes().size(); ++i) {
    const AttnShape& shape = shapes()[i];
    const Prepared& prep = prepared(i, dtype);
    Tensor out = Tensor::empty(prep.in.q.shape(), dtype);
    std::string why;
    if (!run_variant(variant, attention_params(prep.in.q, prep.in.k, prep.in.v, out, prep.in.scale), &why))
      GTEST_SKIP() << variant_name(variant) << " does not run " << dtype_name(dtype) << ": " << why;
    const double err = max_abs_diff(to_doubles(out), prep.tol.ref);
    EXPECT_LE(err, prep.tol.bound) << variant_name(variant) << " " << dtype_name(dtype) << " " << shape.str();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CpuAttention,
    ::testing::Combine(::testing::Values(Variant::flash_generic, Variant::flash_avx512, Variant::flash_avx512_bf16,
                                         Variant::onednn),
                       ::testing::Values(DType::f32, DType::bf16, DType::f16)),
    [](const auto& info) {
      return std::string(variant_name(std::get<0>(info.param))) + "_" +
             std::string(dtype_name(std::get<1>(info.param)));
    });

// Strided layouts: q/out with padded rows, k/v stored [B, H, S, D] (head-major), all through
// the params strides with no copies.
TEST(CpuAttentionLayout, StridedBuffersMatchContiguous) {
  const AttnShape s{2, 45, 70, 3, 64};
  for (DType dtype : {DType::f32, DType::bf16}) {
    const AttnInputs in = make_attention_inputs(s, dtype, 77);
    const Tolerance tol = attention_tolerance(in, dtype);
    const int64_t hd = s.heads * s.head_dim, pad = 8;
    // q and out: rows of hd + pad elements. k and v: [B, H, Skv, D].
    const StridedAttnValues strided = strided_attention_values(in, s, pad);
    const std::vector<float>&qs = strided.q, &ks = strided.k, &vs = strided.v;
    Tensor q = Tensor::from_floats({int64_t(qs.size())}, qs, dtype);
    Tensor k = Tensor::from_floats({int64_t(ks.size())}, ks, dtype);
    Tensor v = Tensor::from_floats({int64_t(vs.size())}, vs, dtype);
    for (const char* kernel : {"cpu_flash", "onednn", "cpu_reference"}) {
      Tensor out = Tensor::zeros({s.batch * s.seq_q * (hd + pad)}, dtype);
      AttentionParams p = default_attention_params();
      p.dtype = int32_t(dtype);
      p.q = q.raw();
      p.k = k.raw();
      p.v = v.raw();
      p.out = out.raw();
      set_strided_layout(p, s, pad);
      p.scale = in.scale;
      EXPECT_EQ(run_attention(p, kernel).name(), kernel);
      const std::vector<float> o = out.to_floats();
      std::vector<double> dense(size_t(s.batch * s.seq_q * hd));
      for (int64_t r = 0; r < s.batch * s.seq_q; ++r) {
        for (int64_t c = 0; c < hd; ++c) dense[size_t(r * hd + c)] = o[size_t(r * (hd + pad) + c)];
        for (int64_t c = hd; c < hd + pad; ++c) EXPECT_EQ(o[size_t(r * (hd + pad) + c)], 0.0f) << "padding written";
      }
      EXPECT_LE(max_abs_diff(dense, tol.ref), tol.bound) << kernel << " " << dtype_name(dtype);
    }
  }
}

// lse output of every cpu_flash variant and cpu_reference against the exact log-sum-exp of
// the inputs the kernel gets. The f32 accumulation of ≤ 256 products, scores of magnitude
// ≤ ~30 and the exp2 approximation (3e-7 relative) put the error well under 1e-4·(1 + |lse|).
TEST(CpuAttentionLse, MatchesExactLogSumExp) {
  const AttnShape s{2, 70, 300, 2, 128};
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const AttnInputs in = make_attention_inputs(s, dtype, 5);
    std::vector<double> lse_ref;
    (void)exact_attention(in.q, in.k, in.v, in.scale, &lse_ref);
    std::vector<std::pair<std::string, attn::FlashIsa>> runs = {{"generic", attn::FlashIsa::generic}};
    if (attn::flash_isa_available(attn::FlashIsa::avx512)) runs.push_back({"avx512", attn::FlashIsa::avx512});
    if (attn::flash_isa_available(attn::FlashIsa::avx512_bf16))
      runs.push_back({"avx512_bf16", attn::FlashIsa::avx512_bf16});
    runs.push_back({"cpu_reference", attn::FlashIsa::generic});
    for (const auto& [name, isa] : runs) {
      Tensor out = Tensor::empty(in.q.shape(), dtype);
      std::vector<float> lse(lse_ref.size(), -1.0f);
      AttentionParams p = attention_params(in.q, in.k, in.v, out, in.scale);
      p.lse = lse.data();
      if (name == "cpu_reference") run_attention(p, "cpu_reference");
      else attn::run_cpu_flash(p, isa);
      for (size_t i = 0; i < lse.size(); ++i)
        ASSERT_NEAR(lse[i], lse_ref[i], 1e-4 * (1.0 + std::abs(lse_ref[i]))) << name << " " << dtype_name(dtype) << " row " << i;
    }
  }
}

// Sequence parallelism: attention over keys [0, n) equals the lse-weighted merge of two calls
// over [0, m) and [m, n) (what a ring of devices does). f32 so that the only error is the
// kernels' own (tolerance rule with f32: 1e-5 + output rounding).
TEST(CpuAttentionRing, TwoKeyChunksMergeToTheWhole) {
  const AttnShape s{1, 50, 333, 2, 64};
  const AttnInputs in = make_attention_inputs(s, DType::f32, 11);
  const Tolerance tol = attention_tolerance(in, DType::f32);
  const int64_t split = 140;
  std::vector<float> outs[2], lses[2];
  for (int part = 0; part < 2; ++part) {
    const int64_t begin = part ? split : 0, end = part ? s.seq_kv : split;
    Tensor k = in.k.reshape({s.seq_kv, s.heads, s.head_dim}).slice(begin, end);
    Tensor v = in.v.reshape({s.seq_kv, s.heads, s.head_dim}).slice(begin, end);
    Tensor q = in.q.reshape({s.seq_q, s.heads, s.head_dim});
    Tensor out = Tensor::empty(q.shape(), DType::f32);
    lses[part].assign(size_t(s.heads * s.seq_q), 0.0f);
    AttentionParams p = attention_params(q, k, v, out, in.scale);
    p.lse = lses[part].data();
    p.kv_offset = begin;
    p.kv_total = s.seq_kv;
    EXPECT_EQ(run_attention(p).name(), "cpu_flash");
    outs[part] = out.to_floats();
  }
  std::vector<double> merged(outs[0].size());
  for (int64_t i = 0; i < s.seq_q; ++i)
    for (int64_t h = 0; h < s.heads; ++h) {
      const double a = lses[0][size_t(h * s.seq_q + i)], b = lses[1][size_t(h * s.seq_q + i)];
      const double m = std::max(a, b), lse = m + std::log(std::exp(a - m) + std::exp(b - m));
      for (int64_t c = 0; c < s.head_dim; ++c) {
        const size_t idx = size_t((i * s.heads + h) * s.head_dim + c);
        merged[idx] = std::exp(a - lse) * outs[0][idx] + std::exp(b - lse) * outs[1][idx];
      }
    }
  EXPECT_LE(max_abs_diff(merged, tol.ref), tol.bound);
}

// The AVX-512 exp2 used by cpu_flash: relative error against std::exp2 on [−126, 0].
TEST(CpuFlashExp2, RelativeErrorBelow3e7) {
  if (!attn::flash_isa_available(attn::FlashIsa::avx512)) GTEST_SKIP() << "this CPU has no AVX-512";
  std::vector<float> x, y;
  for (double t = -126.0; t <= 0.0; t += 1.0 / 4096.0) x.push_back(float(t));
  x.push_back(-0.0f);
  y.resize(x.size());
  attn::flash_exp2_avx512(x.data(), y.data(), int64_t(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp2(double(x[i]));
    worst = std::max(worst, std::abs(double(y[i]) - exact) / exact);
  }
  EXPECT_LE(worst, 3e-7);
  const float below[] = {-127.0f, -1000.0f, -INFINITY};
  float out[3];
  attn::flash_exp2_avx512(below, out, 3);
  for (float o : out) EXPECT_EQ(o, std::exp2(-126.0f)) << "inputs below -126 are clamped";
}

}  // namespace
}  // namespace reel::test

namespace reel::test {
namespace {

// REEL_CPU_FLASH_ISA picks the variant; a bad value is an error naming the variable.
TEST(CpuFlashIsa, EnvironmentOverride) {
  const AttnInputs in = make_attention_inputs({1, 10, 20, 1, 64}, DType::bf16, 21);
  Tensor out = Tensor::empty(in.q.shape(), DType::bf16);
  ASSERT_EQ(setenv("REEL_CPU_FLASH_ISA", "generic", 1), 0);
  EXPECT_EQ(attn::default_flash_isa(), attn::FlashIsa::generic);
  attention(in.q, in.k, in.v, out, in.scale, "cpu_flash");
  const Tolerance tol = attention_tolerance(in, DType::bf16);
  EXPECT_LE(max_abs_diff(to_doubles(out), tol.ref), tol.bound);
  ASSERT_EQ(setenv("REEL_CPU_FLASH_ISA", "sse9", 1), 0);
  try {
    attention(in.q, in.k, in.v, out, in.scale, "cpu_flash");
    ADD_FAILURE() << "a bad REEL_CPU_FLASH_ISA was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("REEL_CPU_FLASH_ISA=sse9"), std::string::npos) << e.what();
  }
  unsetenv("REEL_CPU_FLASH_ISA");
  EXPECT_EQ(attn::default_flash_isa(),
            attn::flash_isa_available(attn::FlashIsa::avx512) ? attn::FlashIsa::avx512 : attn::FlashIsa::generic);
}

}  // namespace
}  // namespace reel::test
