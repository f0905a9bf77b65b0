// LoRA on the Wan transformer against diffusers (fixtures of tools/reference/make_lora_fixtures.py
// on the tiny Wan 2.1 I2V transformer of tests/fixtures/dit/i2v): the diffusers/PEFT, original
// (alpha) and Kohya layouts of one delta, two LoRAs at once with bias deltas, full deltas
// (.diff / .diff_b on weights, norms and modulation), merged and at run time, two strengths.
#include <gtest/gtest.h>

#include <fstream>

#include "dit/dit_fixtures.hpp"
#include "reel/lora.hpp"

namespace reel {
namespace {

std::filesystem::path lora_dir() { return test::fixtures_dir() / "lora"; }
std::filesystem::path lora(const std::string& name) { return lora_dir() / (name + ".safetensors"); }

Tensor reference(const std::string& name) {
  return WeightStore::open(lora_dir() / "io.safetensors").load(name, DType::f32);
}

WanTransformer load(std::vector<LoraSpec> loras, LoraMode mode) {
  return WanTransformer::load(test::dit_dir("i2v") / "diffusers",
                              {.precision = WanPrecision::f32, .loras = std::move(loras), .lora_mode = mode});
}

class LoraTest : public ::testing::TestWithParam<LoraMode> {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
  test::DitIo io = test::read_dit_io("i2v");

  double error(const WanTransformer& dit, const std::string& ref) {
    const Tensor out = test::run_dit(dit, *be, io);
    return test::relative_l2(test::to_doubles(out), test::to_doubles(reference(ref)));
  }
};

std::string mode_name(const ::testing::TestParamInfo<LoraMode>& p) {
  return p.param == LoraMode::merge ? "Merged" : "Runtime";
}

// f32, bound 1e-4 (DESIGN.md's for a DiT forward): the merge adds up·down once in f32 (diffusers'
// unfused path computes the same product per call), a side path sums in another order; both
// are rounding at 1e-6. Every LoRA changes the output by 9 % to 46 % (the fixture prints it),
// so a module dropped, a scale or an alpha misread, or a delta on the wrong layer fails.
constexpr double kBound = 1e-4;

TEST_P(LoraTest, DiffusersLayoutMatchesDiffusersAtTwoStrengths) {
  EXPECT_LT(error(load({{.path = lora("same_diffusers")}}, GetParam()), "out_same_1"), kBound);
  EXPECT_LT(error(load({{.path = lora("same_diffusers"), .strength = 0.5f}}, GetParam()), "out_same_05"), kBound);
  // diffusers' fuse_lora(lora_scale=0.5) gives the same model as the unfused adapter at 0.5.
  EXPECT_LT(error(load({{.path = lora("same_diffusers"), .strength = 0.5f}}, GetParam()), "out_same_fused_05"), kBound);
}

TEST_P(LoraTest, OriginalAndKohyaLayoutsWithAlphaMatchDiffusers) {
  EXPECT_LT(error(load({{.path = lora("same_original")}}, GetParam()), "out_original_1"), kBound);
  EXPECT_LT(error(load({{.path = lora("same_kohya")}}, GetParam()), "out_kohya_1"), kBound);
}

TEST_P(LoraTest, TheThreeLayoutsOfOneDeltaGiveOneModel) {
  const Tensor a = test::run_dit(load({{.path = lora("same_diffusers")}}, GetParam()), *be, io);
  const Tensor b = test::run_dit(load({{.path = lora("same_original")}}, GetParam()), *be, io);
  const Tensor c = test::run_dit(load({{.path = lora("same_kohya")}}, GetParam()), *be, io);
  // up/alpha-scale = B/2 · 2 is exact in f32: the three are the same numbers.
  EXPECT_LT(test::relative_l2(test::to_doubles(a), test::to_doubles(b)), 1e-6);
  EXPECT_EQ(test::to_doubles(b), test::to_doubles(c));
}

TEST_P(LoraTest, TwoLorasWithBiasDeltasMatchDiffusers) {
  const WanTransformer dit =
      load({{.path = lora("same_diffusers"), .strength = 0.5f}, {.path = lora("second"), .strength = 0.8f}}, GetParam());
  EXPECT_LT(error(dit, "out_two"), kBound);
  ASSERT_EQ(dit.loras().size(), 2u);
  EXPECT_EQ(dit.loras()[1].info.layout, LoraLayout::original);
  EXPECT_EQ(dit.loras()[1].info.max_rank, 2);
  EXPECT_EQ(dit.loras()[1].targets, 2 * 2 * 2 + 3);  // (q, ffn.0) × (low rank, bias) × 2 blocks + 3 top
  EXPECT_TRUE(dit.loras()[1].unmapped.empty());
}

TEST_P(LoraTest, FullDeltasOnWeightsNormsAndModulationMatchTheirDefinition) {
  EXPECT_LT(error(load({{.path = lora("full_delta")}}, GetParam()), "out_full_1"), kBound);
  EXPECT_LT(error(load({{.path = lora("full_delta"), .strength = 0.7f}}, GetParam()), "out_full_07"), kBound);
}

INSTANTIATE_TEST_SUITE_P(Modes, LoraTest, ::testing::Values(LoraMode::merge, LoraMode::runtime), mode_name);

TEST(Lora, RuntimeStrengthsChangeWithoutReloading) {
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const WanTransformer dit = load({{.path = lora("same_diffusers")}}, LoraMode::runtime);
  auto err = [&](const WanTransformer& t, const std::string& ref) {
    return test::relative_l2(test::to_doubles(test::run_dit(t, *be, io)), test::to_doubles(reference(ref)));
  };
  const float half = 0.5f, zero = 0.0f, one = 1.0f;
  EXPECT_LT(err(dit.with_lora_strengths({&half, 1}), "out_same_05"), kBound);
  EXPECT_LT(err(dit.with_lora_strengths({&zero, 1}), "out_base"), kBound);
  EXPECT_LT(err(dit.with_lora_strengths({&one, 1}), "out_same_1"), kBound);
  EXPECT_LT(err(dit, "out_same_1"), kBound);  // the original is untouched
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_lora_strengths({}); }, "1 LoRA");
  const float nan = std::nanf("");
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_lora_strengths({&nan, 1}); }, "not finite");
}

TEST(Lora, AMergedLoraKeepsItsStrength) {
  const WanTransformer dit = load({{.path = lora("same_diffusers")}}, LoraMode::merge);
  const float one = 1.0f, half = 0.5f;
  EXPECT_NO_THROW((void)dit.with_lora_strengths({&one, 1}));
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_lora_strengths({&half, 1}); }, "runtime");
}

TEST(Lora, MergingIntoMappedWeightsLeavesTheFileAlone) {
  // bf16 weights from a bf16 file with map_weights are views of the mapping: the merge must
  // write new tensors, never the mapped pages (read-only: writing would fault).
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const auto folder = test::dit_dir("i2v") / "diffusers";
  const auto before = test::to_doubles(
      test::run_dit(WanTransformer::load(folder, {.precision = WanPrecision::bf16, .map_weights = true}), *be, io));
  const WanTransformer with = WanTransformer::load(
      folder, {.precision = WanPrecision::bf16, .map_weights = true, .loras = {{.path = lora("same_diffusers")}}});
  const auto changed = test::to_doubles(test::run_dit(with, *be, io));
  const auto after = test::to_doubles(
      test::run_dit(WanTransformer::load(folder, {.precision = WanPrecision::bf16, .map_weights = true}), *be, io));
  EXPECT_EQ(before, after);
  EXPECT_GT(test::relative_l2(changed, before), 0.1);
}

TEST(Lora, ReadLoraReportsLayoutRankAndModules) {
  const LoraInfo d = read_lora(lora("same_diffusers"));
  EXPECT_EQ(d.layout, LoraLayout::diffusers);
  EXPECT_EQ(d.max_rank, 4);
  EXPECT_EQ(d.low_rank_modules, 2 * 12);
  EXPECT_EQ(d.delta_tensors, 0);
  const LoraInfo k = read_lora(lora("same_kohya"));
  EXPECT_EQ(k.layout, LoraLayout::kohya);
  ASSERT_FALSE(k.modules.empty());
  EXPECT_FLOAT_EQ(k.modules[0].alpha, 8.0f);
  EXPECT_FLOAT_EQ(k.modules[0].scale(), 2.0f);
  const LoraInfo f = read_lora(lora("full_delta"));
  EXPECT_EQ(f.layout, LoraLayout::original);
  EXPECT_EQ(f.low_rank_modules, 0);
  EXPECT_EQ(f.delta_tensors, 7);
}

// ------------------------------------------------------------------ hostile and foreign LoRAs

struct Scratch {
  std::filesystem::path dir = test::tmp_dir() / "lora";
  Scratch() { std::filesystem::create_directories(dir); }
  std::filesystem::path write(const std::string& name, const std::vector<std::pair<std::string, Tensor>>& tensors) {
    const auto path = dir / (name + ".safetensors");
    save_safetensors(path, tensors);
    return path;
  }
};

Tensor rnd(const Shape& s, uint64_t seed) { return test::random_tensor(s, seed, DType::f32, -0.1f, 0.1f); }

TEST(Lora, UnmappedModulesAreReportedNotIgnored) {
  Scratch s;
  const auto path = s.write("foreign", {
      {"diffusion_model.blocks.0.self_attn.q.lora_down.weight", rnd({2, 64}, 1)},
      {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", rnd({64, 2}, 2)},
      {"diffusion_model.double_blocks.0.img_attn.qkv.lora_down.weight", rnd({2, 64}, 3)},  // Flux
      {"diffusion_model.double_blocks.0.img_attn.qkv.lora_up.weight", rnd({192, 2}, 4)},
      {"diffusion_model.blocks.7.self_attn.q.lora_down.weight", rnd({2, 64}, 5)},  // 2 blocks only
      {"diffusion_model.blocks.7.self_attn.q.lora_up.weight", rnd({64, 2}, 6)},
      {"diffusion_model.blocks.0.self_attn.q.dora_scale", rnd({64, 1}, 7)},
  });
  const WanTransformer dit = load({{.path = path}}, LoraMode::merge);
  const AppliedLora& a = dit.loras().at(0);
  EXPECT_EQ(a.targets, 1);
  ASSERT_EQ(a.unmapped.size(), 2u);
  EXPECT_NE(a.unmapped[0].find("blocks.7.self_attn.q (block 7 of a model with 2"), std::string::npos) << a.unmapped[0];
  EXPECT_NE(a.unmapped[1].find("double_blocks.0.img_attn.qkv (no such layer"), std::string::npos) << a.unmapped[1];
  ASSERT_EQ(a.info.unrecognised.size(), 1u);
  EXPECT_EQ(a.info.unrecognised[0], "diffusion_model.blocks.0.self_attn.q.dora_scale");
}

TEST(Lora, ImagePathLorasOnAModelWithoutOneAreUnmapped) {
  Scratch s;
  const auto path = s.write("kimg", {{"diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight", rnd({2, 48}, 1)},
                                     {"diffusion_model.blocks.0.cross_attn.k_img.lora_up.weight", rnd({48, 2}, 2)}});
  const WanTransformer dit = WanTransformer::load(test::dit_dir("ti2v") / "diffusers",
                                                  {.precision = WanPrecision::f32, .loras = {{.path = path}}});
  ASSERT_EQ(dit.loras().at(0).unmapped.size(), 1u);
  EXPECT_NE(dit.loras()[0].unmapped[0].find("no image-context path"), std::string::npos);
}

TEST(Lora, MalformedLorasAreRefusedNamingTheTensor) {
  Scratch s;
  auto refused = [&](const std::string& name, const std::vector<std::pair<std::string, Tensor>>& tensors,
                     const std::string& needle) {
    test::expect_code(StatusCode::bad_format, [&] { (void)load({{.path = s.write(name, tensors)}}, LoraMode::merge); },
                      needle);
  };
  refused("no_up", {{"blocks.0.attn1.to_q.lora_A.weight", rnd({2, 64}, 1)}}, "without its up");
  refused("rank", {{"blocks.0.attn1.to_q.lora_A.weight", rnd({2, 64}, 1)},
                   {"blocks.0.attn1.to_q.lora_B.weight", rnd({64, 3}, 2)}}, "disagree on the rank");
  refused("shape", {{"blocks.0.attn1.to_q.lora_A.weight", rnd({2, 32}, 1)},
                    {"blocks.0.attn1.to_q.lora_B.weight", rnd({64, 2}, 2)}}, "blocks.0.attn1.to_q.lora_A.weight");
  const std::vector<float> minus_one{-1.0f};
  refused("alpha", {{"blocks.0.self_attn.q.lora_down.weight", rnd({2, 64}, 1)},
                    {"blocks.0.self_attn.q.lora_up.weight", rnd({64, 2}, 2)},
                    {"blocks.0.self_attn.q.alpha", Tensor::from_floats({1}, minus_one)}}, "not a finite positive alpha");
  refused("diff", {{"blocks.0.self_attn.q.diff", rnd({64, 63}, 1)}}, "blocks.0.self_attn.q.diff");
  refused("none", {{"some.tensor", rnd({4}, 1)}}, "no LoRA tensor");
  Tensor nan = rnd({64, 2}, 2);
  nan.data<float>()[5] = std::nanf("");
  refused("nan", {{"blocks.0.attn1.to_q.lora_A.weight", rnd({2, 64}, 1)}, {"blocks.0.attn1.to_q.lora_B.weight", nan}},
          "non-finite");
  // A truncated file goes through WeightStore's checks.
  const auto good = lora("same_diffusers");
  const auto cut = s.dir / "cut.safetensors";
  std::filesystem::copy_file(good, cut, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) / 2);
  test::expect_code(StatusCode::bad_format, [&] { (void)load({{.path = cut}}, LoraMode::merge); }, "cut.safetensors");
  test::expect_code(StatusCode::not_found, [&] { (void)load({{.path = s.dir / "absent.safetensors"}}, LoraMode::merge); });
  test::expect_code(StatusCode::invalid_argument,
                    [&] { (void)load({{.path = good, .strength = std::nanf("")}}, LoraMode::merge); }, "not finite");
  test::expect_code(StatusCode::invalid_argument,
                    [&] { (void)load({{.path = good, .expert = LoraExpert::low_noise}}, LoraMode::merge); }, "@low");
}

}  // namespace
}  // namespace reel
