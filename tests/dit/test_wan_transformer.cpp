// WanTransformer against diffusers' WanTransformer3DModel (fixtures of
// tools/reference/make_dit_fixtures.py): T2V (head_dim 128, ComfyUI fp8-scaled file), I2V
// (image context, head_dim 32), TI2V (per-token timesteps, sharded folder), batch 2 with two
// timesteps, f32 and bf16, both checkpoint layouts.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>
#include <thread>

#include "dit/dit_fixtures.hpp"

namespace reel {
namespace {

using test::DitCase;

std::string sci(double v) {
  std::ostringstream s;
  s << std::scientific << v;
  return s.str();
}

struct Loaded {
  WanTransformer dit;
  test::DitIo io;
};

// The original-layout file carries no config.json: head_dim is passed (as users of such files would).
WanTransformer load_case(const DitCase& c, WanLayout layout, WanPrecision precision) {
  if (layout == WanLayout::diffusers) return WanTransformer::load(test::dit_dir(c.name) / "diffusers", {.precision = precision});
  return WanTransformer::load(test::dit_dir(c.name) / "original.safetensors",
                              {.precision = precision, .head_dim = c.head_dim});
}

std::vector<WanLayout> layouts_of(const DitCase& c) {
  if (c.has_diffusers) return {WanLayout::diffusers, WanLayout::original};
  return {WanLayout::original};
}

std::string label(const DitCase& c, WanLayout l) {
  return c.name + (l == WanLayout::diffusers ? " (diffusers layout)" : " (original layout)");
}

class WanFixture : public ::testing::TestWithParam<DitCase> {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
};

// f32: the computation is the same as diffusers' in f32 up to summation order (GEMM blocking,
// attention kernel, LayerNorm partial sums). Each of the ~30 sequential f32 reductions per
// block adds a relative error of order K·2^-24 ≈ 1e-6..1e-5 for K ≤ 512, far below 1e-4
// (DESIGN.md's bound for a DiT forward); a wrong index, order or cast is ≥ 1e-2.
TEST_P(WanFixture, F32MatchesDiffusers) {
  const DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  for (WanLayout layout : layouts_of(c)) {
    const WanTransformer dit = load_case(c, layout, WanPrecision::f32);
    const Tensor out = test::run_dit(dit, *be, io);
    ASSERT_EQ(out.shape(), io.out_f32.shape());
    ASSERT_EQ(out.dtype(), DType::f32);
    const double err = test::relative_l2(test::to_doubles(out), test::to_doubles(io.out_f32));
    EXPECT_LE(err, 1e-4) << label(c, layout);
    RecordProperty(label(c, layout) + " f32 rel_l2", sci(err));
  }
}

// bf16: our run and diffusers' bf16 run round at the same places (wan.md §1.3h) but sum in
// different orders, so each differs from the exact result by about the bf16 reference's own
// error e = ‖ref_bf16 − ref_f32‖ (≈ 5e-3 relative here: 8-bit mantissas through 2 blocks).
// Independent errors of that size give ‖ours − ref_bf16‖ ≈ √2·e; we allow 2·e. A skipped f32
// stage (e.g. LayerNorm or modulation rounded to bf16) or a wrong cast shows as a larger gap.
// Our own error against f32 must also stay within 2·e (it is a bf16 computation, not a worse one).
TEST_P(WanFixture, Bf16WithinTheBf16ReferenceError) {
  const DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  const std::vector<double> ref32 = test::to_doubles(io.out_f32), ref16 = test::to_doubles(io.out_bf16);
  const double ref_err = test::relative_l2(ref16, ref32);
  ASSERT_GT(ref_err, 1e-4) << "the bf16 reference should differ from f32";
  for (WanLayout layout : layouts_of(c)) {
    const WanTransformer dit = load_case(c, layout, WanPrecision::bf16);
    const Tensor out = test::run_dit(dit, *be, io);
    ASSERT_EQ(out.dtype(), DType::bf16);
    const std::vector<double> ours = test::to_doubles(out);
    const double vs_bf16 = test::relative_l2(ours, ref16), vs_f32 = test::relative_l2(ours, ref32);
    EXPECT_LE(vs_bf16, 2 * ref_err) << label(c, layout) << ": ours vs bf16 reference " << vs_bf16
                                    << ", bf16 reference vs f32 " << ref_err;
    EXPECT_LE(vs_f32, 2 * ref_err) << label(c, layout) << ": ours vs f32 reference " << vs_f32;
    RecordProperty(label(c, layout) + " bf16: ours vs ref_bf16", sci(vs_bf16));
    RecordProperty(label(c, layout) + " bf16: ours vs ref_f32", sci(vs_f32));
    RecordProperty(c.name + " ref_bf16 vs ref_f32", sci(ref_err));
  }
}

// Both layouts hold the same values (bf16/f16/f32 files of bf16∩f16-exact numbers): identical
// bits. (t2v is stored in one layout only, see make_dit_fixtures.py.)
class WanLayouts : public WanFixture {};

TEST_P(WanLayouts, BothLayoutsGiveIdenticalOutputs) {
  const DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  for (WanPrecision p : {WanPrecision::f32, WanPrecision::bf16}) {
    const Tensor a = test::run_dit(load_case(c, WanLayout::diffusers, p), *be, io);
    const Tensor b = test::run_dit(load_case(c, WanLayout::original, p), *be, io);
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << c.name << (p == WanPrecision::f32 ? " f32" : " bf16");
  }
}

// Batch item 1 alone gives the same result as inside the batch of 2 (cond/uncond batching).
// Only the GEMM row blocking may differ: f32 rounding level (1e-6), not 1e-3.
TEST_P(WanFixture, BatchItemsAreIndependent) {
  const DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  const WanTransformer dit = load_case(c, layouts_of(c).front(), WanPrecision::f32);
  const Tensor both = test::run_dit(dit, *be, io);
  const size_t per_item = io.timesteps.size() / 2;
  const std::vector<float> t1(io.timesteps.begin() + per_item, io.timesteps.end());
  const Tensor image1 = io.image.defined() ? io.image.slice(1, 2) : Tensor();
  const Tensor one = dit.forward(*be, io.latents.slice(1, 2), t1, io.text.slice(1, 2),
                                 image1.defined() ? &image1 : nullptr);
  EXPECT_LE(test::relative_l2(test::to_doubles(one), test::to_doubles(both.slice(1, 2))), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Dit, WanFixture, ::testing::ValuesIn(test::dit_cases()),
                         [](const auto& info) { return info.param.name; });

std::vector<DitCase> cases_with_both_layouts() {
  std::vector<DitCase> v;
  for (const DitCase& c : test::dit_cases())
    if (c.has_diffusers) v.push_back(c);
  return v;
}
INSTANTIATE_TEST_SUITE_P(Dit, WanLayouts, ::testing::ValuesIn(cases_with_both_layouts()),
                         [](const auto& info) { return info.param.name; });

TEST(WanTransformer, ReadsTheConfigurationFromTheShapes) {
  struct Want {
    const char* name;
    int64_t dim, heads, ffn, in, out, text, image;
    bool expand;
  };
  for (const Want& w : {Want{"t2v", 128, 1, 64, 16, 16, 16, 0, false}, Want{"i2v", 64, 2, 64, 36, 16, 16, 24, false},
                        Want{"ti2v", 48, 2, 80, 48, 48, 32, 0, true}}) {
    const DitCase& c = *std::find_if(test::dit_cases().begin(), test::dit_cases().end(),
                                     [&](const DitCase& d) { return d.name == w.name; });
    for (WanLayout layout : layouts_of(c)) {
      const WanConfig cfg = load_case(c, layout, WanPrecision::f32).config();
      SCOPED_TRACE(label(c, layout) + ": " + cfg.str());
      EXPECT_EQ(cfg.dim, w.dim);
      EXPECT_EQ(cfg.heads, w.heads);
      EXPECT_EQ(cfg.head_dim, c.head_dim);
      EXPECT_EQ(cfg.layers, 2);
      EXPECT_EQ(cfg.ffn_dim, w.ffn);
      EXPECT_EQ(cfg.in_channels, w.in);
      EXPECT_EQ(cfg.out_channels, w.out);
      EXPECT_EQ(cfg.text_dim, w.text);
      EXPECT_EQ(cfg.image_dim, w.image);
      EXPECT_EQ(cfg.freq_dim, 256);
      EXPECT_TRUE(cfg.cross_attn_norm);
      EXPECT_EQ(cfg.expand_timesteps, w.expand);
    }
  }
}

TEST(WanTransformer, ComfyUiFp8ScaledCheckpoint) {
  const WanTransformer dit = WanTransformer::load(test::dit_dir("t2v") / "original.safetensors",
                                                  {.precision = WanPrecision::f32});
  const WanCheckpointInfo& info = dit.checkpoint();
  EXPECT_EQ(info.layout, WanLayout::original);
  EXPECT_EQ(info.prefix, "model.diffusion_model.");
  // 2 blocks × (q, k, v, o self + q, k, v, o cross + 2 FFN) linear weights, each with a scale.
  EXPECT_EQ(info.fp8_tensors, 20);
  EXPECT_EQ(info.scaled_fp8_tensors, 20);
  // The `scaled_fp8` marker is the only tensor the model does not use.
  EXPECT_EQ(info.ignored, std::vector<std::string>{"model.diffusion_model.scaled_fp8"});
}

// One loaded model, used by two threads at once (each with its own backend): the weights are
// read-only and each call keeps its own activations, so both get the single-thread result.
TEST(WanTransformer, OneModelServesSeveralThreads) {
  const WanTransformer dit = WanTransformer::load(test::dit_dir("ti2v") / "diffusers", {.precision = WanPrecision::bf16});
  const test::DitIo io = test::read_dit_io("ti2v");
  auto be = make_cpu_backend({.threads = 1});
  const Tensor expected = test::run_dit(dit, *be, io);
  Tensor results[2];
  std::thread workers[2];
  for (int i = 0; i < 2; ++i)
    workers[i] = std::thread([&, i] {
      auto own = make_cpu_backend({.threads = 1});
      results[i] = test::run_dit(dit, *own, io);
    });
  for (auto& w : workers) w.join();
  for (const Tensor& r : results) {
    ASSERT_TRUE(r.defined());
    EXPECT_EQ(std::memcmp(r.raw(), expected.raw(), expected.nbytes()), 0);
  }
}

TEST(WanTransformer, DiffusersFolderLayoutInfo) {
  const WanTransformer dit = WanTransformer::load(test::dit_dir("ti2v") / "diffusers", {.precision = WanPrecision::bf16});
  EXPECT_EQ(dit.checkpoint().layout, WanLayout::diffusers);
  EXPECT_EQ(dit.checkpoint().prefix, "");
  EXPECT_TRUE(dit.checkpoint().ignored.empty());
  EXPECT_EQ(dit.checkpoint().fp8_tensors, 0);
  EXPECT_EQ(dit.activation_dtype(), DType::bf16);
}

}  // namespace
}  // namespace reel
