// The Wan transformer's configuration, read from the checkpoint's tensor shapes (and, for
// head_dim and eps, from a diffusers config.json when there is one).
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "wan/wan_model.hpp"
#include "weights/strict_json.hpp"

namespace reel {

namespace wan {

namespace {

const TensorInfo& need(const WeightStore& store, const CheckpointNames& names, std::string_view key,
                       int64_t block = -1) {
  const std::string name = checkpoint_name(names, key, block);
  if (!store.contains(name))
    throw Error(StatusCode::not_found, "Wan transformer: tensor '" + name + "' is missing (needed to read the " +
                                           "model configuration; " +
                                           (names.layout == WanLayout::diffusers ? "diffusers" : "original") +
                                           " layout)");
  return store.info(name);
}

void expect_rank(const TensorInfo& t, int rank) {
  if (t.shape.rank() != rank)
    throw Error(StatusCode::bad_format, "Wan transformer: tensor '" + t.name + "' has shape " + t.shape.str() +
                                            ", expected rank " + std::to_string(rank));
}

// 1 + the largest N of the `blocks.N.` tensors (under the layout's prefix).
int64_t count_layers(const WeightStore& store, const CheckpointNames& names) {
  const std::string lead = names.prefix + "blocks.";
  int64_t layers = 0;
  for (const std::string& n : store.names()) {
    if (n.compare(0, lead.size(), lead) != 0) continue;
    size_t i = lead.size();
    int64_t v = 0;
    bool digits = false;
    while (i < n.size() && n[i] >= '0' && n[i] <= '9' && v < 1000000) {
      v = v * 10 + (n[i] - '0');
      ++i;
      digits = true;
    }
    if (digits && i < n.size() && n[i] == '.') layers = std::max(layers, v + 1);
  }
  return layers;
}

struct JsonConfig {
  int64_t head_dim = 0, heads = 0;
  double eps = 0;
  int64_t rope_max_seq_len = 0;
  nlohmann::json j;  // the whole file, for the keys the weights decide (check_against_weights)
};

JsonConfig read_json_config(const std::filesystem::path& path) {
  JsonConfig out;
  const nlohmann::json j = detail::read_json_file(path, "transformer config (a diffusers config.json)");
  auto integer = [&](const char* key) -> int64_t {
    if (!j.contains(key) || j[key].is_null()) return 0;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0 || j[key].get<int64_t>() > (1 << 20))
      throw Error(StatusCode::bad_format, path.string() + ": '" + key + "' must be a positive integer");
    return j[key].get<int64_t>();
  };
  if (j.contains("_class_name") && !(j["_class_name"].is_string() && j["_class_name"] == "WanTransformer3DModel"))
    throw Error(StatusCode::unsupported, path.string() + ": '_class_name' " + j["_class_name"].dump() +
                                             " is not WanTransformer3DModel, the model reel runs");
  out.head_dim = integer("attention_head_dim");
  out.heads = integer("num_attention_heads");
  out.rope_max_seq_len = integer("rope_max_seq_len");
  if (j.contains("eps") && !j["eps"].is_null()) {
    if (!j["eps"].is_number() || !(j["eps"].get<double>() > 0) || j["eps"].get<double>() > 1)
      throw Error(StatusCode::bad_format, path.string() + ": 'eps' must be a number in (0, 1]");
    out.eps = j["eps"].get<double>();
  }
  if (j.contains("qk_norm") && !(j["qk_norm"].is_string() && j["qk_norm"] == "rms_norm_across_heads"))
    throw Error(StatusCode::unsupported, path.string() + ": qk_norm " + j["qk_norm"].dump() +
                                             " is not supported (Wan uses \"rms_norm_across_heads\")");
  if (j.contains("pos_embed_seq_len") && !j["pos_embed_seq_len"].is_null())
    throw Error(StatusCode::unsupported, path.string() + ": 'pos_embed_seq_len' marks a first-last-frame (FLF2V) "
                                                         "model, which reel does not run yet");
  out.j = j;
  return out;
}

// The keys of a diffusers config.json that the weights also decide must agree with them
// (bad_format naming the key and both values); keys WanTransformer3DModel does not have are
// ignored, as diffusers ignores them.
void check_against_weights(const JsonConfig& json, const WanConfig& c, int64_t added_kv, const std::filesystem::path& path) {
  const nlohmann::json& j = json.j;
  auto same = [&](const char* key, const nlohmann::json& want) {
    if (!j.contains(key)) return;
    if (j[key] != want)
      throw Error(StatusCode::bad_format, path.string() + ": '" + key + "' is " + j[key].dump() +
                                              " but the weights have " + want.dump());
  };
  same("in_channels", c.in_channels);
  same("out_channels", c.out_channels);
  same("text_dim", c.text_dim);
  same("freq_dim", c.freq_dim);
  same("ffn_dim", c.ffn_dim);
  same("num_layers", c.layers);
  same("patch_size", nlohmann::json::array({c.patch.t, c.patch.h, c.patch.w}));
  same("cross_attn_norm", c.cross_attn_norm);
  same("image_dim", c.has_image_context() ? nlohmann::json(c.image_dim) : nlohmann::json(nullptr));
  same("added_kv_proj_dim", added_kv > 0 ? nlohmann::json(added_kv) : nlohmann::json(nullptr));
}

}  // namespace

std::filesystem::path find_config_json(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::is_directory(path, ec) ? path : path.parent_path();
  const std::filesystem::path cfg = dir / "config.json";
  return std::filesystem::is_regular_file(cfg, ec) ? cfg : std::filesystem::path();
}

WanConfig detect_config(const WeightStore& store, const CheckpointNames& names, int64_t head_dim_option,
                        const std::filesystem::path& config_json) {
  WanConfig c;
  const TensorInfo& patch = need(store, names, "patch_embedding.weight");
  expect_rank(patch, 5);
  c.dim = patch.shape[0];
  c.in_channels = patch.shape[1];
  c.patch = Patch{patch.shape[2], patch.shape[3], patch.shape[4]};

  const TensorInfo& time_in = need(store, names, "condition_embedder.time_embedder.linear_1.weight");
  expect_rank(time_in, 2);
  c.freq_dim = time_in.shape[1];
  if (c.freq_dim % 2 != 0)
    throw Error(StatusCode::unsupported, "Wan transformer: '" + time_in.name + "' " + time_in.shape.str() +
                                             " gives an odd timestep sinusoid width " + std::to_string(c.freq_dim));
  const TensorInfo& text_in = need(store, names, "condition_embedder.text_embedder.linear_1.weight");
  expect_rank(text_in, 2);
  c.text_dim = text_in.shape[1];

  c.layers = count_layers(store, names);
  if (c.layers == 0)
    throw Error(StatusCode::bad_format, "Wan transformer: no '" + names.prefix + "blocks.N.*' tensors in the checkpoint");
  const TensorInfo& ffn = need(store, names, "blocks.{}.ffn.net.0.proj.weight", 0);
  expect_rank(ffn, 2);
  c.ffn_dim = ffn.shape[0];

  const TensorInfo& head = need(store, names, "proj_out.weight");
  expect_rank(head, 2);
  if (c.patch.volume() <= 0 || head.shape[0] % c.patch.volume() != 0)
    throw Error(StatusCode::bad_format, "Wan transformer: '" + head.name + "' " + head.shape.str() +
                                            " is not a whole number of channels per patch " + patch.shape.str());
  c.out_channels = head.shape[0] / c.patch.volume();

  // Image context (Wan 2.1 I2V / FLF2V): the image embedder and the blocks' added K/V come together.
  const bool image_embedder = store.contains(checkpoint_name(names, "condition_embedder.image_embedder.norm1.weight"));
  const bool added_kv_present = store.contains(checkpoint_name(names, "blocks.{}.attn2.add_k_proj.weight", 0));
  if (image_embedder != added_kv_present)
    throw Error(StatusCode::bad_format,
                std::string("Wan transformer: the checkpoint has ") +
                    (image_embedder ? "an image embedder but no image K/V projections ('" +
                                          checkpoint_name(names, "blocks.{}.attn2.add_k_proj.weight", 0) + "')"
                                    : "image K/V projections but no image embedder ('" +
                                          checkpoint_name(names, "condition_embedder.image_embedder.norm1.weight") + "')"));
  if (image_embedder) {
    const TensorInfo& n1 = need(store, names, "condition_embedder.image_embedder.norm1.weight");
    expect_rank(n1, 1);
    c.image_dim = n1.shape[0];
  }
  const std::string pos_embed = names.prefix + (names.layout == WanLayout::diffusers
                                                    ? "condition_embedder.image_embedder.pos_embed"
                                                    : "img_emb.emb_pos");
  if (store.contains(pos_embed))
    throw Error(StatusCode::unsupported, "Wan transformer: '" + pos_embed +
                                             "' marks a first-last-frame (FLF2V) model, which reel does not run yet");
  c.cross_attn_norm = store.contains(checkpoint_name(names, "blocks.{}.norm2.weight", 0));
  c.expand_timesteps = c.in_channels == 48 && c.out_channels == 48;  // Wan 2.2 VAE latents (TI2V-5B)

  JsonConfig json;
  if (!config_json.empty()) {
    json = read_json_config(config_json);
    const int64_t added_kv =
        added_kv_present ? need(store, names, "blocks.{}.attn2.add_k_proj.weight", 0).shape[1] : 0;
    check_against_weights(json, c, added_kv, config_json);
  }
  // A GGUF file reel wrote (convert_to_gguf) records the head_dim its source had.
  int64_t recorded = 0;
  if (const auto it = store.metadata().find(std::string(kGgufHeadDimKey)); it != store.metadata().end()) {
    recorded = std::atoll(it->second.c_str());
    require(recorded > 0 && recorded <= 4096, StatusCode::bad_format,
            std::string(kGgufHeadDimKey) + " = '" + it->second + "' is not a head_dim");
  }
  c.head_dim = head_dim_option > 0 ? head_dim_option : json.head_dim > 0 ? json.head_dim : recorded > 0 ? recorded : 128;
  if (c.head_dim <= 0 || c.dim % c.head_dim != 0)
    throw Error(StatusCode::invalid_argument, "Wan transformer: head_dim " + std::to_string(c.head_dim) +
                                                  " does not divide the model width " + std::to_string(c.dim) +
                                                  " (from '" + patch.name + "' " + patch.shape.str() + ")");
  if (c.head_dim % 2 != 0)
    throw Error(StatusCode::unsupported, "Wan transformer: head_dim " + std::to_string(c.head_dim) +
                                             " is odd (RoPE rotates pairs)");
  c.heads = c.dim / c.head_dim;
  if (json.heads > 0 && head_dim_option <= 0 && json.heads != c.heads)
    throw Error(StatusCode::bad_format, config_json.string() + ": num_attention_heads " + std::to_string(json.heads) +
                                            " × attention_head_dim " + std::to_string(c.head_dim) +
                                            " does not match the weights' width " + std::to_string(c.dim));
  if (json.eps > 0) c.eps = float(json.eps);
  if (json.rope_max_seq_len > 0) c.rope_max_seq_len = json.rope_max_seq_len;
  return c;
}

}  // namespace wan

int64_t WanConfig::parameter_count() const {
  const int64_t D = dim, vol = patch.volume();
  int64_t n = D * in_channels * vol + D;                  // patch embedding
  n += D * freq_dim + D + D * D + D;                      // time embedder
  n += 6 * D * D + 6 * D;                                 // time projection
  n += D * text_dim + D + D * D + D;                      // text embedder
  if (has_image_context()) n += 2 * image_dim + image_dim * image_dim + image_dim + D * image_dim + D + 2 * D;
  int64_t block = 6 * D;                                  // modulation
  block += 2 * (4 * (D * D + D) + 2 * D);                 // self- and cross-attention
  if (has_image_context()) block += 2 * (D * D + D) + D;  // image K/V
  if (cross_attn_norm) block += 2 * D;
  block += ffn_dim * D + ffn_dim + D * ffn_dim + D;       // FFN
  n += layers * block;
  n += 2 * D + out_channels * vol * D + out_channels * vol;  // head
  return n;
}

std::string WanConfig::str() const {
  std::string s = "dim " + std::to_string(dim) + " (" + std::to_string(heads) + " heads × " + std::to_string(head_dim) +
                  "), " + std::to_string(layers) + " layers, ffn " + std::to_string(ffn_dim) + ", channels " +
                  std::to_string(in_channels) + " → " + std::to_string(out_channels) + ", text " + std::to_string(text_dim);
  if (has_image_context()) s += ", image context " + std::to_string(image_dim);
  return s;
}

}  // namespace reel
