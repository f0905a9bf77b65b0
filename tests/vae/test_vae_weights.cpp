// The Wan VAE's checkpoint-name table and loader: both layouts (diffusers, original Wan /
// ComfyUI) and all file dtypes give identical models; malformed files are rejected with a
// message naming the tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "vae/vae_model.hpp"
#include "vae/vae_test_util.hpp"

namespace reel::test {
namespace {

std::set<std::string> table_names(const VaeConfig& cfg, bool original) {
  VaeModel m;
  m.config = cfg;
  std::set<std::string> names;
  for (const auto& p : vae::build_vae_table(m, true, true)) names.insert(original ? p.original : p.diffusers);
  return names;
}

int64_t table_params(const VaeConfig& cfg) {
  VaeModel m;
  m.config = cfg;
  int64_t n = 0;
  for (const auto& p : vae::build_vae_table(m, true, true)) n += p.file_shape.numel();
  return n;
}

std::set<std::string> file_names(const std::filesystem::path& path) {
  const auto v = WeightStore::open(path).names();
  return {v.begin(), v.end()};
}

// Copies a weight file, renaming / dropping / replacing tensors, as f32.
void rewrite(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& prefix,
             const std::string& drop = "", const std::string& replace = "", Tensor replacement = {}) {
  WeightStore s = WeightStore::open(from);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& n : s.names()) {
    if (n == drop) continue;
    out.emplace_back(prefix + n, n == replace ? replacement : s.load(n, DType::f32));
  }
  out.emplace_back("some.unrelated.tensor", random_tensor({3}, 1));  // extra tensors are ignored
  save_safetensors(to, out);
}

std::string load_error(const std::filesystem::path& path, Backend& be, StatusCode* code,
                       const VaeLoadOptions& options = {}) {
  try {
    WanVae::load(path, be, options);
  } catch (const Error& e) {
    *code = e.code();
    return e.what();
  }
  *code = StatusCode::ok;
  return "";
}

// The table of the fixture's config names exactly the tensors diffusers saved, and their
// originals exactly the inverse-§5.2 names (checked against diffusers' own Wan 2.1 converter).
TEST(VaeWeights, TableNamesAreTheCheckpointNames) {
  for (const VaeFixture& f : {kWan21, kWan22}) {
    const VaeConfig cfg = vae::infer_vae_config(WeightStore::open(vae_weights_diffusers(f)));
    EXPECT_EQ(table_names(cfg, false), file_names(vae_weights_diffusers(f))) << f.tag;
    EXPECT_EQ(table_names(cfg, true), file_names(vae_weights_original(f))) << f.tag;
  }
}

// The real Wan VAEs, by parameter count (wan.md §2.1: 126,892,531 and 704,688,668).
TEST(VaeWeights, TableMatchesTheRealModelsParameterCounts) {
  EXPECT_EQ(table_params(VaeConfig::wan21()), 126892531);
  EXPECT_EQ(table_params(VaeConfig::wan22()), 704688668);
  const auto names = table_names(VaeConfig::wan21(), true);
  // A few original names of the real Wan2.1_VAE (§5.2): flat decoder list, shortcut at 4.
  for (const char* n : {"decoder.upsamples.4.shortcut.weight", "decoder.upsamples.3.time_conv.weight",
                        "decoder.upsamples.11.resample.1.weight", "encoder.downsamples.5.time_conv.bias",
                        "decoder.middle.1.to_qkv.weight", "conv2.weight", "decoder.head.2.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  const auto names22 = table_names(VaeConfig::wan22(), true);
  for (const char* n : {"encoder.downsamples.1.downsamples.2.time_conv.weight",
                        "decoder.upsamples.0.upsamples.3.time_conv.weight", "decoder.upsamples.2.upsamples.0.shortcut.bias"})
    EXPECT_TRUE(names22.count(n)) << n;
}

TEST(VaeWeights, ConfigIsInferredFromTheShapes) {
  const VaeConfig a = vae::infer_vae_config(WeightStore::open(vae_weights_original(kWan21)));
  EXPECT_EQ(a.base_dim, 4);
  EXPECT_EQ(a.decoder_base_dim, 4);
  EXPECT_EQ(a.z_dim, 4);
  EXPECT_FALSE(a.is_residual);
  EXPECT_EQ(a.patch_size, 1);
  EXPECT_EQ(a.spatial_factor(), 8);
  EXPECT_TRUE(a.latents_mean.empty());  // not the real z 16: no normalisation constants
  const VaeConfig b = vae::infer_vae_config(WeightStore::open(vae_weights_diffusers(kWan22)));
  EXPECT_EQ(b.base_dim, 2);
  EXPECT_EQ(b.decoder_base_dim, 4);
  EXPECT_EQ(b.z_dim, 6);
  EXPECT_TRUE(b.is_residual);
  EXPECT_EQ(b.patch_size, 2);
  EXPECT_EQ(b.in_channels, 12);
  EXPECT_EQ(b.spatial_factor(), 16);
}

// Same numbers in every file (the fixture weights are bf16-exact): every layout and dtype must
// give bit-identical decodes and encodes.
TEST(VaeWeights, LayoutsAndDtypesGiveIdenticalOutputs) {
  auto be = make_cpu_backend();
  for (const VaeFixture& f : {kWan21, kWan22}) {
    const auto f32_original = tmp_dir() / (f.tag + "_vae_original_f32_prefixed.safetensors");
    rewrite(vae_weights_original(f), f32_original, "first_stage_model.");  // f32, a combined-checkpoint prefix
    const auto f32_diffusers = tmp_dir() / (f.tag + "_vae_diffusers_f32.safetensors");
    rewrite(vae_weights_diffusers(f), f32_diffusers, "");
    WeightStore io = vae_io(f);
    const Tensor z = ops::slice(*be, io.load("latents", DType::f32), 2, 0, 2);
    const Tensor video = ops::slice(*be, io.load("video", DType::f32), 2, 0, 5);
    std::vector<double> ref_dec, ref_enc;
    for (const auto& path : {vae_weights_diffusers(f), vae_weights_original(f), f32_original, f32_diffusers}) {
      WanVae vae = WanVae::load(path, *be);
      const std::vector<double> dec = to_doubles(vae.decode(z)), enc = to_doubles(vae.encode_moments(video));
      if (ref_dec.empty()) {
        ref_dec = dec;
        ref_enc = enc;
        continue;
      }
      EXPECT_EQ(max_abs_diff(dec, ref_dec), 0.0) << path;
      EXPECT_EQ(max_abs_diff(enc, ref_enc), 0.0) << path;
    }
  }
}

TEST(VaeWeights, MissingTensorIsNamed) {
  auto be = make_cpu_backend();
  const auto path = tmp_dir() / "vae_missing.safetensors";
  const std::string name = "decoder.up_blocks.1.resnets.0.conv_shortcut.weight";
  rewrite(vae_weights_diffusers(kWan21), path, "", name);
  StatusCode code;
  const std::string msg = load_error(path, *be, &code);
  EXPECT_EQ(code, StatusCode::not_found);
  EXPECT_NE(msg.find(name), std::string::npos) << msg;
  // Original layout, missing encoder half: named, with the decoder-only hint.
  const auto path2 = tmp_dir() / "vae_missing_original.safetensors";
  rewrite(vae_weights_original(kWan22), path2, "", "encoder.downsamples.1.downsamples.2.time_conv.bias");
  const std::string msg2 = load_error(path2, *be, &code);
  EXPECT_EQ(code, StatusCode::not_found);
  EXPECT_NE(msg2.find("encoder.downsamples.1.downsamples.2.time_conv.bias"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("encoder = false"), std::string::npos) << msg2;
  load_error(path2, *be, &code, {.encoder = false});
  EXPECT_EQ(code, StatusCode::ok);
}

TEST(VaeWeights, WrongShapeIsNamed) {
  auto be = make_cpu_backend();
  const auto path = tmp_dir() / "vae_wrong_shape.safetensors";
  const std::string name = "decoder.mid_block.attentions.0.to_qkv.weight";
  rewrite(vae_weights_diffusers(kWan21), path, "", "", name, random_tensor({48, 16, 1, 2}, 5));
  StatusCode code;
  const std::string msg = load_error(path, *be, &code);
  EXPECT_EQ(code, StatusCode::bad_format);
  EXPECT_NE(msg.find(name), std::string::npos) << msg;
  EXPECT_NE(msg.find("[48, 16, 1, 2]"), std::string::npos) << msg;
  // A shape that disagrees with the inferred config (a z_dim of 5 in conv_in's input).
  const auto path2 = tmp_dir() / "vae_wrong_z.safetensors";
  rewrite(vae_weights_diffusers(kWan21), path2, "", "", "post_quant_conv.weight", random_tensor({5, 5, 1, 1, 1}, 6));
  const std::string msg2 = load_error(path2, *be, &code);
  EXPECT_EQ(code, StatusCode::bad_format);
  EXPECT_NE(msg2.find("post_quant_conv.weight"), std::string::npos) << msg2;
}

TEST(VaeWeights, NotAVaeAndBadOptions) {
  auto be = make_cpu_backend();
  const auto path = tmp_dir() / "not_a_vae.safetensors";
  save_safetensors(path, {{"blocks.0.attn.q.weight", random_tensor({4, 4}, 1)}});
  StatusCode code;
  const std::string msg = load_error(path, *be, &code);
  EXPECT_EQ(code, StatusCode::bad_format);
  EXPECT_NE(msg.find("decoder.conv_in.weight"), std::string::npos) << msg;
  load_error(vae_fixture("does_not_exist.safetensors"), *be, &code);
  EXPECT_EQ(code, StatusCode::not_found);
  load_error(vae_weights_diffusers(kWan21), *be, &code, {.encoder = false, .decoder = false});
  EXPECT_EQ(code, StatusCode::invalid_argument);
  load_error(vae_weights_diffusers(kWan21), *be, &code, {.compute = DType::i32});
  EXPECT_EQ(code, StatusCode::invalid_argument);
  // An explicit config that does not fit the file: the first mismatching tensor is named.
  VaeConfig wrong = VaeConfig::wan21();
  const std::string msg2 = load_error(vae_weights_diffusers(kWan21), *be, &code, {.config = wrong});
  EXPECT_EQ(code, StatusCode::bad_format);
  EXPECT_NE(msg2.find("encoder.conv_in.weight"), std::string::npos) << msg2;
}

// bf16 compute (optional): runs when the backend supports bf16 convolutions.
TEST(VaeWeights, Bf16ComputeIsCloseToF32) {
  auto be = make_cpu_backend();
  WeightStore io = vae_io(kWan21);
  const Tensor z = ops::slice(*be, io.load("latents", DType::f32), 2, 0, 2);
  const Tensor want = WanVae::load(vae_weights_diffusers(kWan21), *be).decode(z);
  Tensor got;
  try {
    got = WanVae::load(vae_weights_diffusers(kWan21), *be, {.compute = DType::bf16}).decode(z);
  } catch (const Error& e) {
    if (e.code() == StatusCode::unsupported) GTEST_SKIP() << "bf16 compute unsupported here: " << e.what();
    throw;
  }
  EXPECT_EQ(got.dtype(), DType::f32);
  // bf16 keeps 8 significant bits: each stored activation is off by up to 2^-9 (≈ 1e-3 RMS);
  // ~100 rounded activations through ~30 convs add up to ≈ sqrt(100)·1e-3 times the layers'
  // gain: 2.2e-2 measured on this fixture, bounded at 5e-2.
  EXPECT_LE(relative_l2(to_doubles(got), to_doubles(want)), 5e-2);
  EXPECT_GT(relative_l2(to_doubles(got), to_doubles(want)), 0.0);  // it really ran in bf16
}

}  // namespace
}  // namespace reel::test
