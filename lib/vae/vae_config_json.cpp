// A Wan VAE's configuration: what the weights' shapes say, then a diffusers config.json
// (AutoencoderKLWan) read key by key. Each of its settings is honoured (the architecture is built
// from it), checked against what the weights say, or refused by name; keys AutoencoderKLWan
// does not have are reported as notes (diffusers ignores them).
#include <cmath>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "vae/vae_model.hpp"
#include "weights/strict_json.hpp"
#include "reel/weights.hpp"

namespace reel::vae {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[noreturn]] void fail(StatusCode code, const std::string& key, const std::string& what) const {
    throw Error(code, where_ + "'" + key + "' " + what);
  }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  std::optional<int> integer(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = j_[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 16))
      fail(StatusCode::bad_format, key, "must be an integer in [1, 65536]");
    return int(v.get<int64_t>());
  }
  std::optional<bool> boolean(const char* key) const {
    if (!has(key)) return std::nullopt;
    if (!j_[key].is_boolean()) fail(StatusCode::bad_format, key, "must be true or false");
    return j_[key].get<bool>();
  }
  std::optional<std::vector<int>> integers(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& a = j_[key];
    if (!a.is_array() || a.size() > 16) fail(StatusCode::bad_format, key, "must be a list of at most 16 integers");
    std::vector<int> v;
    for (const json& x : a) {
      if (!x.is_number_integer() || x.get<int64_t>() <= 0 || x.get<int64_t>() > (1 << 16))
        fail(StatusCode::bad_format, key, "must hold integers in [1, 65536]");
      v.push_back(int(x.get<int64_t>()));
    }
    return v;
  }
  std::optional<std::vector<bool>> booleans(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& a = j_[key];
    if (!a.is_array() || a.size() > 16) fail(StatusCode::bad_format, key, "must be a list of at most 16 booleans");
    std::vector<bool> v;
    for (const json& x : a) {
      if (!x.is_boolean()) fail(StatusCode::bad_format, key, "must hold true or false");
      v.push_back(x.get<bool>());
    }
    return v;
  }
  std::optional<std::vector<float>> floats(const char* key, size_t n) const {
    if (!has(key)) return std::nullopt;
    const json& a = j_[key];
    if (!a.is_array() || a.size() != n)
      fail(StatusCode::bad_format, key, "must be a list of z_dim = " + std::to_string(n) + " numbers");
    std::vector<float> v;
    for (const json& x : a) {
      if (!x.is_number() || !std::isfinite(x.get<double>()))
        fail(StatusCode::bad_format, key, "holds a value that is not a finite number");
      v.push_back(float(x.get<double>()));
    }
    return v;
  }

 private:
  const json& j_;
  std::string where_;
};

std::string list_text(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The config.json's settings over `weights` (the config the shapes gave).
VaeConfig apply_config_json(const json& j, const VaeConfig& weights, const VaeHalves& halves, const fs::path& path,
                            std::vector<std::string>* notes) {
  const std::string where = path.string() + ": ";
  const ConfigReader r(j, where);
  static const char* const kKeys[] = {
      "_class_name", "_diffusers_version", "_name_or_path", "attn_scales", "base_dim", "decoder_base_dim", "z_dim",
      "dim_mult", "num_res_blocks", "temperal_downsample", "dropout", "latents_mean", "latents_std", "is_residual",
      "in_channels", "out_channels", "patch_size", "scale_factor_temporal", "scale_factor_spatial"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* k : kKeys) known = known || key == k;
    if (!known && notes)  // diffusers' AutoencoderKLWan ignores it too
      notes->push_back(where + "'" + key + "' is not an AutoencoderKLWan setting; ignored, as diffusers ignores it");
  }
  if (r.has("_class_name") && !(j["_class_name"].is_string() && j["_class_name"].get<std::string>() == "AutoencoderKLWan"))
    r.fail(StatusCode::unsupported, "_class_name", "is not AutoencoderKLWan: this is not a Wan VAE");
  if (r.has("attn_scales") && !(j["attn_scales"].is_array() && j["attn_scales"].empty()))
    r.fail(StatusCode::unsupported, "attn_scales",
           "asks for attention in the down/up blocks; reel runs the Wan VAE, which has none (attn_scales: [])");
  if (r.has("dropout") && !(j["dropout"].is_number() && std::isfinite(j["dropout"].get<double>())))
    r.fail(StatusCode::bad_format, "dropout", "must be a number");  // training only: no effect on inference

  // Architecture: diffusers' defaults for keys left out, as AutoencoderKLWan's constructor has them.
  VaeConfig c = weights;
  c.base_dim = r.integer("base_dim").value_or(96);
  c.decoder_base_dim = r.integer("decoder_base_dim").value_or(c.base_dim);
  c.z_dim = r.integer("z_dim").value_or(16);
  c.dim_mult = r.integers("dim_mult").value_or(std::vector<int>{1, 2, 4, 4});
  c.num_res_blocks = r.integer("num_res_blocks").value_or(2);
  c.temporal_downsample = r.booleans("temperal_downsample").value_or(std::vector<bool>{false, true, true});
  c.is_residual = r.boolean("is_residual").value_or(false);
  c.in_channels = r.integer("in_channels").value_or(3);
  c.out_channels = r.integer("out_channels").value_or(3);
  c.patch_size = r.integer("patch_size").value_or(1);

  // What the weights decide must agree.
  auto same = [&](const char* key, int config, int from_weights) {
    if (config != from_weights)
      r.fail(StatusCode::bad_format, key,
             "is " + std::to_string(config) + " but the weights have " + std::to_string(from_weights));
  };
  same("z_dim", c.z_dim, weights.z_dim);
  if (c.is_residual != weights.is_residual)
    r.fail(StatusCode::bad_format, "is_residual",
           std::string("is ") + (c.is_residual ? "true" : "false") + " but the weights have " +
               (weights.is_residual ? "residual (Wan 2.2)" : "plain (Wan 2.1)") + " down/up blocks");
  if (halves.encoder) same("base_dim", c.base_dim, weights.base_dim);
  if (halves.decoder) same("decoder_base_dim", c.decoder_base_dim, weights.decoder_base_dim);
  if (halves.encoder) same("in_channels", c.in_channels, weights.in_channels);
  if (halves.decoder) same("out_channels", c.out_channels, weights.out_channels);
  same("patch_size", c.patch_size, weights.patch_size);
  // The compression factors the file states: the VAE itself does not use them (diffusers' pipelines
  // size their latents with them); reel sizes everything from the architecture and says so.
  if (const auto t = r.integer("scale_factor_temporal"); t && *t != c.temporal_factor() && notes)
    notes->push_back(where + "scale_factor_temporal " + std::to_string(*t) + " is not what temperal_downsample gives (" +
                     std::to_string(c.temporal_factor()) + "); reel uses " + std::to_string(c.temporal_factor()));
  if (const auto sp = r.integer("scale_factor_spatial"); sp && *sp != c.spatial_factor() && notes)
    notes->push_back(where + "scale_factor_spatial " + std::to_string(*sp) + " is not what dim_mult " +
                     list_text(c.dim_mult) + " and patch_size " + std::to_string(c.patch_size) + " give (" +
                     std::to_string(c.spatial_factor()) + "); reel uses " + std::to_string(c.spatial_factor()));

  // Normalisation constants: the file's, else the preset's when z_dim is a released one.
  if (const auto mean = r.floats("latents_mean", size_t(c.z_dim))) c.latents_mean = *mean;
  if (const auto std_ = r.floats("latents_std", size_t(c.z_dim))) c.latents_std = *std_;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(StatusCode::bad_format, where + e.what());
  }
  return c;
}

}  // namespace

VaeConfig read_vae_config(const fs::path& vae_path, std::vector<std::string>* notes) {
  const WeightStore store = WeightStore::open(vae_path);
  VaeHalves halves;
  VaeConfig cfg = infer_vae_config(store, &halves);
  const fs::path json_path = fs::is_directory(vae_path) ? vae_path / "config.json" : fs::path();
  std::error_code ec;
  if (!json_path.empty() && fs::exists(json_path, ec))
    cfg = apply_config_json(detail::read_json_file(json_path, "VAE config"), cfg, halves, json_path, notes);
  if (cfg.latents_mean.empty() && notes)
    notes->push_back("VAE z_dim " + std::to_string(cfg.z_dim) +
                     " is not a released Wan VAE and no config.json gives its latents_mean/latents_std");
  return cfg;
}

}  // namespace reel::vae
