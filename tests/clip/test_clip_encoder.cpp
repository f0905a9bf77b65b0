// ClipVisionEncoder against transformers' CLIPVisionModel(..., output_hidden_states=True)
// .hidden_states[-2] on the tiny random model of tools/reference/make_clip_fixtures.py, and
// the checkpoint errors.
//
// Tolerances:
// * f32: relative L2 ≤ 1e-5, the text encoder's bound for a transformer encoder in f32. Both
//   sides compute in f32 in different orders (GEMM blocking, the patch Conv2d as a GEMM,
//   attention kernels); each op differs by ~1e-7 relative and two layers add little (measured
//   values printed).
// * bf16: DESIGN.md's same-precision rule. What bf16 costs transformers is its bf16 run's
//   distance to its f32 run (`spread`). reel's bf16 run rounds in other places (it keeps the
//   residual stream in f32), so its distance to either reference must stay within 2·spread.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "reel/image_encoder.hpp"
#include "reel/weights.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

fs::path clip_fixtures() { return fixtures_dir() / "clip"; }
fs::path encoder_dir() { return clip_fixtures() / "image_encoder"; }
Tensor reference(const std::string& name) {
  return WeightStore::open(clip_fixtures() / "reference.safetensors").load(name, DType::f32);
}
Image fixture_image(const std::string& name) { return read_image(clip_fixtures() / (name + ".png")); }
ClipImageProcessor tiny_processor() { return ClipImageProcessor::open(clip_fixtures() / "image_processor"); }

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
  return *be;
}

const ClipVisionEncoder& tiny_f32() {
  static const ClipVisionEncoder enc = ClipVisionEncoder::load(encoder_dir());
  return enc;
}

double rel(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.numel(), want.numel());
  return relative_l2(to_doubles(got), to_doubles(want));
}

// Every tensor of the fixture model (f32), to write modified copies.
std::vector<std::pair<std::string, Tensor>> fixture_tensors() {
  const WeightStore store = WeightStore::open(encoder_dir());
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& n : store.names()) out.emplace_back(n, store.load(n, DType::f32));
  return out;
}

nlohmann::json fixture_config() { return nlohmann::json::parse(std::ifstream(encoder_dir() / "config.json")); }

fs::path write_model(const std::string& name, const std::vector<std::pair<std::string, Tensor>>& tensors,
                     const std::optional<nlohmann::json>& config) {
  const fs::path dir = tmp_dir() / ("clip_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  save_safetensors(dir / "model.safetensors", tensors);
  if (config) std::ofstream(dir / "config.json") << config->dump(1);
  return dir;
}

TEST(ClipVisionEncoder, ConfigAndSkippedTensors) {
  const ClipVisionEncoder& enc = tiny_f32();
  const ClipVisionConfig& c = enc.config();
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.image_size, 32);
  EXPECT_EQ(c.patch_size, 8);
  EXPECT_EQ(c.tokens(), 17);
  EXPECT_EQ(c.activation, ClipActivation::gelu);
  EXPECT_EQ(enc.dtype(), DType::f32);
  // hidden_states[-2] never reaches the last layer (16 tensors) or post_layernorm (2).
  ASSERT_EQ(enc.ignored().size(), 18u);
  for (const std::string& n : enc.ignored())
    EXPECT_TRUE(n.starts_with("encoder.layers.2.") || n.starts_with("post_layernorm.")) << n;
}

class EncoderCase : public ::testing::TestWithParam<std::string> {};

TEST_P(EncoderCase, F32MatchesTransformersHiddenStatesMinus2) {
  const Image image = fixture_image(GetParam());
  const Tensor got = tiny_f32().encode(cpu(), tiny_processor(), {&image, 1});
  ASSERT_EQ(got.shape(), (Shape{1, 17, 32}));
  const double e = rel(got, reference(GetParam() + "_hidden"));
  std::printf("%s: relative L2 to transformers %.3g\n", GetParam().c_str(), e);
  EXPECT_LE(e, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Images, EncoderCase, ::testing::Values("wide", "large", "tall"));

TEST(ClipVisionEncoder, ForwardOnTheReferencePixelsAndABatch) {
  const Tensor wide = reference("wide_pixels"), tall = reference("tall_pixels");
  EXPECT_LE(rel(tiny_f32().forward(cpu(), wide.reshape({1, 3, 32, 32})), reference("wide_hidden")), 1e-5);
  const std::vector<Image> images = {fixture_image("wide"), fixture_image("tall")};
  const Tensor batch = tiny_f32().encode(cpu(), tiny_processor(), images);
  ASSERT_EQ(batch.shape(), (Shape{2, 17, 32}));
  EXPECT_LE(rel(batch, reference("batch_hidden")), 1e-5);
  // The penultimate layer is not the last one: the reference's last_hidden_state is far away.
  EXPECT_GT(rel(batch.select(0), reference("wide_last_hidden").select(0)), 0.1);
}

TEST(ClipVisionEncoder, Bf16StaysWithinTwiceWhatBf16CostsTransformers) {
  const ClipVisionEncoder enc = ClipVisionEncoder::load(encoder_dir(), {.dtype = DType::bf16});
  EXPECT_EQ(enc.dtype(), DType::bf16);
  const Image image = fixture_image("wide");
  const Tensor got = enc.encode(cpu(), tiny_processor(), {&image, 1});
  const Tensor want_bf16 = reference("wide_hidden_bf16"), want_f32 = reference("wide_hidden");
  const double spread = rel(want_bf16, want_f32);
  const double e = rel(got, want_bf16), e32 = rel(got, want_f32);
  std::printf("bf16: relative L2 to transformers bf16 %.3g, to f32 %.3g (transformers bf16 vs f32 %.3g)\n", e, e32,
              spread);
  EXPECT_GT(spread, 1e-4);  // the reference really ran in bf16
  EXPECT_LE(e, 2.0 * spread);
  EXPECT_LE(e32, 2.0 * spread);
}

TEST(ClipVisionEncoder, QuickGeluFromTheConfig) {
  nlohmann::json config = fixture_config();
  config["hidden_act"] = "quick_gelu";
  const fs::path dir = write_model("quick_gelu", fixture_tensors(), config);
  const ClipVisionEncoder enc = ClipVisionEncoder::load(dir);
  EXPECT_EQ(enc.config().activation, ClipActivation::quick_gelu);
  const Tensor got = enc.forward(cpu(), reference("wide_pixels").reshape({1, 3, 32, 32}));
  const double e = rel(got, reference("wide_hidden_quick_gelu"));
  std::printf("quick_gelu: relative L2 to transformers %.3g\n", e);
  EXPECT_LE(e, 1e-5);
}

TEST(ClipVisionEncoder, WanLayoutWithPrefixAndProjectionGivesTheSameOutput) {
  // What the Wan repositories ship (CLIPVisionModelWithProjection saved by transformers 4):
  // `vision_model.` names plus visual_projection.weight, here as a single file with config.json beside.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [n, t] : fixture_tensors()) tensors.emplace_back("vision_model." + n, t);
  tensors.emplace_back("visual_projection.weight", random_tensor({32, 32}, 5));
  const fs::path dir = write_model("prefixed", tensors, fixture_config());
  const ClipVisionEncoder enc = ClipVisionEncoder::load(dir / "model.safetensors");
  EXPECT_EQ(enc.ignored().size(), 19u);
  const Tensor px = reference("wide_pixels").reshape({1, 3, 32, 32});
  EXPECT_EQ(enc.forward(cpu(), px).to_floats(), tiny_f32().forward(cpu(), px).to_floats());
}

void expect_load_error(const fs::path& path, StatusCode code, const std::string& mentions) {
  try {
    (void)ClipVisionEncoder::load(path);
    ADD_FAILURE() << "expected an error loading " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(ClipVisionEncoder, BadCheckpointsNameTheCause) {
  const auto all = fixture_tensors();
  {  // a missing tensor of a layer that is loaded
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& p : all)
      if (p.first != "encoder.layers.1.layer_norm1.bias") t.push_back(p);
    expect_load_error(write_model("missing", t, fixture_config()), StatusCode::not_found,
                      "encoder.layers.1.layer_norm1.bias");
  }
  {  // a wrong shape
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& p : all)
      t.emplace_back(p.first, p.first == "encoder.layers.0.mlp.fc2.weight" ? random_tensor({32, 48}, 1) : p.second);
    expect_load_error(write_model("shape", t, fixture_config()), StatusCode::bad_format, "encoder.layers.0.mlp.fc2.weight");
  }
  {  // config.json disagreeing with the weights, or unusable
    nlohmann::json c = fixture_config();
    c["hidden_size"] = 64;
    expect_load_error(write_model("cfg_hidden", all, c), StatusCode::bad_format, "hidden_size");
    c = fixture_config();
    c["num_attention_heads"] = 5;
    expect_load_error(write_model("cfg_heads", all, c), StatusCode::bad_format, "num_attention_heads");
    c = fixture_config();
    c["hidden_act"] = "relu";
    expect_load_error(write_model("cfg_act", all, c), StatusCode::unsupported, "relu");
    c = fixture_config();
    c["num_hidden_layers"] = 4;
    expect_load_error(write_model("cfg_layers", all, c), StatusCode::bad_format, "num_hidden_layers");
  }
  // Without config.json the heads cannot be known (only ViT-H/14 is recognised).
  expect_load_error(write_model("no_config", all, std::nullopt) / "model.safetensors", StatusCode::bad_format,
                    "config.json");
  // Not a CLIP checkpoint at all.
  expect_load_error(write_model("not_clip", {{"blocks.0.weight", random_tensor({4, 4}, 2)}}, fixture_config()),
                    StatusCode::bad_format, "embeddings.patch_embedding.weight");
  expect_load_error(tmp_dir() / "no_such_clip", StatusCode::not_found, "no_such_clip");
  // A bad dtype request.
  try {
    (void)ClipVisionEncoder::load(encoder_dir(), {.dtype = DType::f16});
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
  }
}

TEST(ClipVisionEncoder, BadInputsAreRefused) {
  try {  // pixels of another size than image_size
    (void)tiny_f32().forward(cpu(), random_tensor({1, 3, 24, 24}, 3));
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("image_size"), std::string::npos) << e.what();
  }
  const Image image = fixture_image("wide");
  try {  // a processor whose crop (224) is not the encoder's image_size (32)
    (void)tiny_f32().encode(cpu(), ClipImageProcessor(), {&image, 1});
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("crop_size"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)tiny_f32().encode(cpu(), tiny_processor(), {}), Error);
}

}  // namespace
}  // namespace reel::test
