// LoRAs through the pipeline: runtime strengths per request (0 = the model without it, s = the
// model with it merged at s), A14B experts chosen with LoraSpec::expert, requests that cannot
// work refused before any work, and guidance 1 (the distillation recipe) running one
// transformer pass per step instead of two.
#include <atomic>

#include "pipeline/pipeline_test_util.hpp"
#include "reel/attention.hpp"
#include "reel/lora.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;

// A random rank-4 LoRA (original names, alpha 2) on every block's self-attention q and FFN of
// a model of this shape.
fs::path write_lora(const WanConfig& c, const std::string& name, uint64_t seed) {
  const fs::path path = test::tmp_dir() / "pipeline_lora" / (name + ".safetensors");
  fs::create_directories(path.parent_path());
  std::vector<std::pair<std::string, Tensor>> t;
  const std::vector<float> alpha{2.0f};
  for (int64_t b = 0; b < c.layers; ++b)
    for (auto [module, out, in] : {std::tuple{"self_attn.q", c.dim, c.dim}, std::tuple{"ffn.0", c.ffn_dim, c.dim}}) {
      const std::string m = "diffusion_model.blocks." + std::to_string(b) + "." + module;
      t.push_back({m + ".lora_down.weight", test::random_tensor({4, in}, seed++, DType::f32, -0.3f, 0.3f)});
      t.push_back({m + ".lora_up.weight", test::random_tensor({out, 4}, seed++, DType::f32, -0.3f, 0.3f)});
      t.push_back({m + ".alpha", Tensor::from_floats({1}, alpha)});
    }
  save_safetensors(path, t);
  return path;
}

PipelineLoadOptions options(std::vector<LoraSpec> loras = {}, LoraMode mode = LoraMode::merge) {
  return {.folder = test::tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32,
          .loras = std::move(loras), .lora_mode = mode};
}

std::vector<double> frames(const Pipeline& p, const GenerateRequest& r) {
  return test::to_doubles(p.generate(r).latents);  // f32, before the 8-bit video
}

double rel(const std::vector<double>& a, const std::vector<double>& b) { return test::relative_l2(a, b); }

TEST(PipelineLora, RuntimeStrengthsPerRequestMatchMergedModels) {
  const Pipeline& base = test::tiny_t2v_f32();
  const fs::path lora = write_lora(base.info().transformer, "style", 100);
  const Pipeline runtime = Pipeline::load(options({{.path = lora}}, LoraMode::runtime));
  const Pipeline merged = Pipeline::load(options({{.path = lora, .strength = 0.7f}}));
  ASSERT_EQ(runtime.info().loras.size(), 1u);
  EXPECT_EQ(runtime.info().loras[0].targets, 2 * base.info().transformer.layers);
  EXPECT_TRUE(runtime.info().loras[0].unmapped.empty());

  GenerateRequest r = test::quick_request();
  const std::vector<double> plain = frames(base, r);
  r.lora_strengths = {0.0f};
  EXPECT_EQ(frames(runtime, r), plain);  // strength 0: no side path at all
  r.lora_strengths = {0.7f};
  const std::vector<double> at07 = frames(runtime, r);
  EXPECT_GT(rel(at07, plain), 1e-2);  // the LoRA does something
  r.lora_strengths = {};
  EXPECT_LT(rel(frames(merged, r), at07), 1e-4);  // merged at 0.7 = side path at 0.7 (f32 rounding)
  r.lora_strengths = {1.0f};
  EXPECT_GT(rel(frames(runtime, r), at07), 1e-3);  // and the strength matters

  r.lora_strengths = {0.5f};  // a merged LoRA keeps its strength
  test::expect_code(StatusCode::invalid_argument, [&] { (void)merged.generate(r); }, "merged into the weights");
  r.lora_strengths = {0.5f, 1.0f};
  test::expect_code(StatusCode::invalid_argument, [&] { (void)runtime.generate(r); }, "lora_strengths: 2 value(s)");
  r.lora_strengths = {0.5f};
  test::expect_code(StatusCode::invalid_argument, [&] { (void)base.generate(r); }, "0 LoRA(s)");
}

TEST(PipelineLora, ExpertsOfA14BAreChosenPerLora) {
  const fs::path folder = test::make_tiny_a14b_folder(test::tmp_dir() / "pipeline_lora" / "a14b");
  const Pipeline& base = test::tiny_t2v_f32();
  const fs::path lora = write_lora(base.info().transformer, "expert", 200);
  auto load = [&](std::vector<LoraSpec> loras) {
    PipelineLoadOptions o = options(std::move(loras));
    o.folder = folder;
    return Pipeline::load(o);
  };
  const Pipeline none = load({});
  const Pipeline high = load({{.path = lora, .expert = LoraExpert::high_noise}});
  const Pipeline low = load({{.path = lora, .expert = LoraExpert::low_noise}});
  const Pipeline both = load({{.path = lora}});
  EXPECT_EQ(both.info().loras.at(0).targets, 2 * high.info().loras.at(0).targets);
  EXPECT_EQ(low.info().loras.at(0).targets, high.info().loras.at(0).targets);
  // 3 steps with boundary 0.8: the high-noise expert runs the first step(s), the low-noise one the rest.
  const GenerateRequest r = test::quick_request();
  const std::vector<std::vector<double>> out = {frames(none, r), frames(high, r), frames(low, r), frames(both, r)};
  for (size_t i = 0; i < out.size(); ++i)
    for (size_t j = i + 1; j < out.size(); ++j) EXPECT_GT(rel(out[i], out[j]), 1e-3) << i << " vs " << j;
  // One expert's LoRA on a one-transformer model is refused by name.
  test::expect_code(StatusCode::invalid_argument,
                    [&] { (void)Pipeline::load(options({{.path = lora, .expert = LoraExpert::low_noise}})); },
                    "one transformer");
}

TEST(PipelineLora, UnmappedModulesBecomeNotes) {
  const fs::path path = test::tmp_dir() / "pipeline_lora" / "flux.safetensors";
  fs::create_directories(path.parent_path());
  save_safetensors(path, {{"diffusion_model.double_blocks.0.img_attn.qkv.lora_down.weight", test::random_tensor({2, 8}, 1)},
                          {"diffusion_model.double_blocks.0.img_attn.qkv.lora_up.weight", test::random_tensor({8, 2}, 2)}});
  const Pipeline p = Pipeline::load(options({{.path = path}}));
  bool noted = false;
  for (const std::string& n : p.info().notes) noted |= n.find("flux.safetensors: 1 module(s)") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(p.info().loras.at(0).targets, 0);
}

// Counts the transformer's attention calls (self + cross per block per forward pass).
struct CountingKernel final : AttentionKernel {
  mutable std::atomic<int> calls{0};
  std::string_view name() const override { return "test_lora_counting"; }
  std::string_view description() const override { return "counts, then runs cpu_reference"; }
  DeviceType device_type() const override { return DeviceType::cpu; }
  int priority() const override { return -1; }
  Support supports(const AttentionParams& p) const override { return find_attention_kernel("cpu_reference")->supports(p); }
  void run(const AttentionParams& p) const override {
    ++calls;
    find_attention_kernel("cpu_reference")->run(p);
  }
};

TEST(PipelineLora, GuidanceOneRunsOnePassPerStep) {
  static const auto kernel = [] {
    auto k = std::make_shared<CountingKernel>();
    register_attention_kernel(k);
    return k;
  }();
  PipelineLoadOptions o = options();
  o.attention_kernel = "test_lora_counting";
  const Pipeline p = Pipeline::load(o);
  const int64_t per_pass = 2 * p.info().transformer.layers;
  GenerateRequest r = test::quick_request();
  r.batch_cfg = false;  // two passes per step with guidance, so that passes can be counted
  kernel->calls = 0;
  (void)p.generate(r);
  EXPECT_EQ(kernel->calls.load(), 2 * r.steps * per_pass);
  r.guidance = 1.0f;
  kernel->calls = 0;
  (void)p.generate(r);
  EXPECT_EQ(kernel->calls.load(), r.steps * per_pass);
}

}  // namespace
}  // namespace reel
