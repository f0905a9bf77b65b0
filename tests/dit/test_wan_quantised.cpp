// Wan transformer with quantised block linears (WanWeightFormat) against diffusers' f32 output
// on the fixture models (tests/fixtures/dit): the weights are held quantised (Q8_0 and Q4_0 at
// load, a GGUF file's Q8_0 kept as stored), the error is the quantisation's (measured and
// bounded), and runtime LoRAs add to quantised layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cctype>
#include <cstring>
#include <map>
#include <random>

#include "common/gguf_blocks.hpp"
#include "dit/dit_fixtures.hpp"
#include "wan/wan_model.hpp"
#include "weights/save_gguf.hpp"

namespace reel {
namespace {

double rel(const Tensor& a, const Tensor& b) { return test::relative_l2(test::to_doubles(a), test::to_doubles(b)); }

// Every block linear whose input width is a multiple of 32 quantised (its weight tensor freed,
// a QMatrix instead); the others, and the head and patch embedding, in the compute dtype.
// Returns how many were quantised.
int expect_quantised(const WanTransformer& dit) {
  const wan::WanWeights& w = wan_impl(dit).weights;
  const int64_t dim = dit.config().dim, ffn = dit.config().ffn_dim;
  int quantised = 0;
  for (const wan::BlockWeights& b : w.blocks)
    for (const wan::Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.cross_q, &b.cross_k, &b.cross_v, &b.cross_o, &b.ffn_in, &b.ffn_out}) {
      const int64_t in = l == &b.ffn_out ? ffn : dim;
      EXPECT_EQ(l->quantised != nullptr, in % 32 == 0);
      EXPECT_EQ(l->weight.defined(), in % 32 != 0);
      quantised += l->quantised != nullptr;
    }
  EXPECT_TRUE(w.head.weight.defined());
  EXPECT_TRUE(w.patch.weight.defined());
  return quantised;
}

// 8-bit blocks on weights and activations: ~0.7 % per product (tests/quant); through two
// blocks with residual paths the fixtures' outputs move by 0.5-2 %. Bound 4e-2; a wrong
// scale, layout or bias is ≥ 30 %.
constexpr double kBound = 4e-2;

TEST(WanQuantised, F32ModelsWithQ8WeightsStayCloseToDiffusers) {
  auto be = make_cpu_backend({.threads = 2});
  for (const test::DitCase& c : test::dit_cases()) {
    if (!c.has_diffusers) continue;
    const test::DitIo io = test::read_dit_io(c.name);
    const WanTransformer dit = WanTransformer::load(
        test::dit_dir(c.name) / "diffusers", {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q8_0});
    const int quantised = expect_quantised(dit);
    const double err = rel(test::run_dit(dit, *be, io), io.out_f32);
    std::printf("%s: %d Q8_0 block linears, vs diffusers f32: relative L2 %.3g\n", c.name.c_str(), quantised, err);
    EXPECT_LT(err, kBound) << c.name;
    if (quantised > 0) EXPECT_GT(err, 1e-5) << c.name << ": the weights were not quantised";
    const WanTransformer bf16 = WanTransformer::load(
        test::dit_dir(c.name) / "diffusers", {.precision = WanPrecision::bf16, .weight_format = WanWeightFormat::q8_0});
    const double err16 = rel(test::run_dit(bf16, *be, io), io.out_f32);
    std::printf("%s: bf16 with Q8_0 block linears vs diffusers f32: relative L2 %.3g\n", c.name.c_str(), err16);
    EXPECT_LT(err16, kBound) << c.name;
  }
}

TEST(WanQuantised, RuntimeLorasAddToQ8Layers) {
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const auto folder = test::dit_dir("i2v") / "diffusers";
  const Tensor with_lora = WeightStore::open(test::fixtures_dir() / "lora" / "io.safetensors").load("out_same_1", DType::f32);
  const WanTransformer plain = WanTransformer::load(folder, {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q8_0});
  for (LoraMode mode : {LoraMode::runtime, LoraMode::merge}) {
    const WanTransformer dit = WanTransformer::load(
        folder, {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q8_0,
                 .loras = {{.path = test::fixtures_dir() / "lora" / "same_diffusers.safetensors"}}, .lora_mode = mode});
    EXPECT_EQ(expect_quantised(dit), 20);  // i2v: D 64, ffn 64, 2 blocks × 10
    const Tensor out = test::run_dit(dit, *be, io);
    EXPECT_LT(rel(out, with_lora), kBound) << (mode == LoraMode::runtime ? "runtime" : "merged, then quantised");
    EXPECT_GT(rel(out, test::run_dit(plain, *be, io)), 0.1);
  }
}

TEST(WanQuantised, Q4_0AtLoad) {
  // 4-bit weights: ~8 % per product on Gaussian data (tests/quant); through 2 blocks the
  // fixture moves by about that. Bound 0.2; a wrong nibble order or offset is O(1).
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const WanTransformer dit = WanTransformer::load(test::dit_dir("i2v") / "diffusers",
                                                  {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q4_0});
  EXPECT_EQ(expect_quantised(dit), 20);
  EXPECT_EQ(wan_impl(dit).weights.blocks[0].q.quantised->bits(), 4);
  const double err = rel(test::run_dit(dit, *be, io), io.out_f32);
  std::printf("i2v: Q4_0 block linears vs diffusers f32: relative L2 %.3g\n", err);
  EXPECT_LT(err, 0.2);
  EXPECT_GT(err, 1e-3);
  // Q4_K needs rows of 256: the fixture's 64-wide layers take Q8_0 instead (Q4_K itself:
  // GgufKTypesAreKeptAsStored).
  const WanTransformer k = WanTransformer::load(test::dit_dir("i2v") / "diffusers",
                                                {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q4_k});
  EXPECT_EQ(expect_quantised(k), 20);
  EXPECT_EQ(wan_impl(k).weights.blocks[0].q.quantised->type(), quant::QType::q8_0);
}

TEST(WanQuantised, GgufQ8_0IsKeptAsStored) {
  // tests/fixtures/gguf/wan_i2v.gguf: the i2v fixture as ComfyUI-GGUF quantises it (Q8_0 block
  // linears). `stored` keeps those blocks; `compute` dequantises them (the same weights in f32).
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const auto gguf = test::fixtures_dir() / "gguf" / "wan_i2v.gguf";
  const WanTransformer kept = WanTransformer::load(
      gguf, {.precision = WanPrecision::f32, .head_dim = 32, .weight_format = WanWeightFormat::stored});
  const WanTransformer dequantised = WanTransformer::load(gguf, {.precision = WanPrecision::f32, .head_dim = 32});
  EXPECT_EQ(expect_quantised(kept), 20);
  const wan::Linear& q = wan_impl(kept).weights.blocks[1].q;
  EXPECT_EQ(q.quantised->type(), quant::QType::q8_0);
  // The kept blocks hold the file's values: dequantised, they are the compute model's weights.
  const std::vector<float> kept_values = q.quantised->dequantize();
  const std::vector<float> file_values = wan_impl(dequantised).weights.blocks[1].q.weight.to_floats();
  ASSERT_EQ(kept_values.size(), file_values.size());
  for (size_t i = 0; i < kept_values.size(); ++i)
    ASSERT_NEAR(kept_values[i], file_values[i], 1e-6f * (1.0f + std::fabs(file_values[i]))) << i;
  // What remains is the activations' 8-bit rounding.
  const double err = rel(test::run_dit(kept, *be, io), test::run_dit(dequantised, *be, io));
  std::printf("GGUF Q8_0 kept vs dequantised: relative L2 %.3g\n", err);
  EXPECT_LT(err, kBound);
  EXPECT_GT(err, 1e-6);
  // A merged LoRA cannot go into weights kept as stored: refused, naming the way that works.
  test::expect_code(StatusCode::invalid_argument, [&] {
    (void)WanTransformer::load(gguf, {.precision = WanPrecision::f32, .head_dim = 32,
                                      .weight_format = WanWeightFormat::stored,
                                      .loras = {{.path = test::fixtures_dir() / "lora" / "same_original.safetensors"}}});
  }, "--lora-mode runtime");
}

// The K types with 16-weight sub-blocks (Q6_K, Q3_K, Q2_K) and the 5-bit ones, kept as stored
// through a whole forward: a Wan of width 256 (K-type rows hold whole 256-weight super-blocks)
// written as GGUF with random valid blocks for its block linears, loaded `stored` and `compute`
// (dequantised by the reader that matches gguf-py bit for bit).
TEST(WanQuantised, GgufKTypesAreKeptAsStored) {
  WanConfig cfg;
  cfg.dim = 256, cfg.heads = 2, cfg.head_dim = 128, cfg.layers = 2, cfg.ffn_dim = 512;
  cfg.in_channels = 16, cfg.out_channels = 16, cfg.text_dim = 64;
  const FileDType types[] = {FileDType::q6_k, FileDType::q3_k, FileDType::q2_k, FileDType::q5_k, FileDType::q5_0};
  // Scale fields sized so that each type's weights come out near 1/sqrt(256).
  const auto scale_range = [](FileDType t) -> std::pair<float, float> {
    switch (t) {
      case FileDType::q6_k: return {1e-6f, 2e-5f};
      case FileDType::q3_k: return {1e-4f, 5e-4f};
      case FileDType::q5_0: return {1e-3f, 4e-3f};
      default: return {3e-4f, 1.5e-3f};
    }
  };
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<detail::GgufTensor> tensors;
  int next = 0;
  std::map<std::string, FileDType> kept_as;
  wan::for_each_param(cfg, [&](std::string_view key, int64_t block, const Shape& shape, bool block_linear) {
    const std::string name = wan::checkpoint_name({WanLayout::original, ""}, key, block);
    detail::GgufTensor g{name, FileDType::f32, shape, {}};
    if (block_linear && shape[1] % 256 == 0) {
      g.type = types[next++ % 5];
      const auto [lo, hi] = scale_range(g.type);
      g.data = test::random_gguf_blocks(g.type, shape[0], shape[1], uint64_t(next), lo, hi);
      kept_as[name] = g.type;
    } else {
      const std::string k(key);
      const float fan_in = shape.rank() >= 2 ? float(shape.numel() / shape[0]) : 1.0f;
      std::vector<float> v(size_t(shape.numel()));
      for (float& x : v)
        x = k.find("norm") != std::string::npos ? 1.0f + 0.1f * u(rng)
            : k.ends_with(".bias") || k.find("table") != std::string::npos ? 0.05f * u(rng)
                                                                           : u(rng) / std::sqrt(fan_in);
      g.data.resize(v.size() * 4);
      std::memcpy(g.data.data(), v.data(), g.data.size());
    }
    tensors.push_back(std::move(g));
  });
  ASSERT_EQ(kept_as.size(), size_t(cfg.layers * 10));
  const auto path = test::tmp_dir() / "wan_k_types.gguf";
  detail::save_gguf(path, tensors, {{"general.architecture", "wan"}, {std::string(wan::kGgufHeadDimKey), "128"}});

  const WanTransformer kept = WanTransformer::load(path, {.precision = WanPrecision::f32,
                                                          .weight_format = WanWeightFormat::stored});
  const WanTransformer dequantised = WanTransformer::load(path, {.precision = WanPrecision::f32});
  EXPECT_EQ(expect_quantised(kept), cfg.layers * 10);
  // Each layer holds its file type (counted per type), and the values the file holds.
  std::map<std::string, int> in_file, in_model;
  for (const auto& [name, type] : kept_as) ++in_file[std::string(file_dtype_name(type))];
  for (size_t blk = 0; blk < wan_impl(kept).weights.blocks.size(); ++blk) {
    const wan::BlockWeights& b = wan_impl(kept).weights.blocks[blk];
    const wan::BlockWeights& d = wan_impl(dequantised).weights.blocks[blk];
    const wan::Linear* ks[] = {&b.q, &b.k, &b.v, &b.o, &b.cross_q, &b.cross_k, &b.cross_v, &b.cross_o, &b.ffn_in, &b.ffn_out};
    const wan::Linear* ds[] = {&d.q, &d.k, &d.v, &d.o, &d.cross_q, &d.cross_k, &d.cross_v, &d.cross_o, &d.ffn_in, &d.ffn_out};
    for (int i = 0; i < 10; ++i) {
      const quant::QMatrix& q = *ks[i]->quantised;
      std::string name(quant::qtype_name(q.type()));
      for (char& c : name) c = char(std::toupper(c));
      ++in_model[name];
      EXPECT_EQ(q.halves(), name == "Q6_K" || name == "Q3_K" || name == "Q2_K" ? 2 : 1) << name;
      EXPECT_EQ(q.bits(), name == "Q3_K" || name == "Q2_K" ? 4 : 8) << name;
      const std::vector<float> a = q.dequantize(), f = ds[i]->weight.to_floats();
      ASSERT_EQ(a.size(), f.size());
      for (size_t e = 0; e < a.size(); ++e) ASSERT_NEAR(a[e], f[e], 1e-6f * (1.0f + std::fabs(f[e]))) << name << " " << e;
    }
  }
  EXPECT_EQ(in_model, in_file);
  auto be = make_cpu_backend({.threads = 2});
  const Tensor latents = test::random_tensor({1, 16, 2, 8, 8}, 3);
  const Tensor text = test::random_tensor({1, 7, 64}, 4);
  const float t[] = {500.0f};
  const double err = rel(kept.forward(*be, latents, t, text), dequantised.forward(*be, latents, t, text));
  std::printf("GGUF K types kept vs dequantised: relative L2 %.3g\n", err);
  EXPECT_LT(err, kBound);  // the activations' 8-bit rounding only
  EXPECT_GT(err, 1e-6);
  // The same model quantised to Q4_K at load (reel's encoder; every layer 256-wide or more).
  const WanTransformer q4k = WanTransformer::load(path, {.precision = WanPrecision::f32,
                                                         .weight_format = WanWeightFormat::q4_k});
  EXPECT_EQ(wan_impl(q4k).weights.blocks[0].ffn_out.quantised->type(), quant::QType::q4_k);
  EXPECT_EQ(wan_impl(q4k).weights.blocks[0].q.quantised->type(), quant::QType::q4_k);
  const double err_k = rel(q4k.forward(*be, latents, t, text), dequantised.forward(*be, latents, t, text));
  std::printf("Q4_K at load vs the f32 model: relative L2 %.3g\n", err_k);
  EXPECT_LT(err_k, 0.2);
  EXPECT_GT(err_k, 1e-4);
}

TEST(WanQuantised, RefusedOffTheCpu) {
  test::expect_code(StatusCode::unsupported, [] {
    (void)WanTransformer::load(test::dit_dir("i2v") / "diffusers",
                               {.device = Device::cuda(0), .weight_format = WanWeightFormat::q8_0});
  }, "CPU only");
}

}  // namespace
}  // namespace reel
