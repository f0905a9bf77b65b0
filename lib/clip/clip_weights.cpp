// CLIP vision checkpoints: the one name table (transformers CLIPVisionModel names, with any
// prefix such as `vision_model.`), config.json, the shape checks, and loading what
// hidden_states[-2] needs into typed fields.
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "weights/name_pattern.hpp"
#include "clip/clip_model.hpp"
#include "weights/strict_json.hpp"

namespace reel::clip {

namespace {

// THE table: checkpoint names relative to the prefix; "{}" is the layer index.
constexpr std::string_view kPatch = "embeddings.patch_embedding.weight";  // also the anchor
constexpr std::string_view kClass = "embeddings.class_embedding";
constexpr std::string_view kPositions = "embeddings.position_embedding.weight";
constexpr std::string_view kPreNorm = "pre_layrnorm";  // sic: transformers' spelling
constexpr std::string_view kLayers = "encoder.layers.";
constexpr std::string_view kNorm1 = "encoder.layers.{}.layer_norm1";
constexpr std::string_view kQ = "encoder.layers.{}.self_attn.q_proj";
constexpr std::string_view kK = "encoder.layers.{}.self_attn.k_proj";
constexpr std::string_view kV = "encoder.layers.{}.self_attn.v_proj";
constexpr std::string_view kOut = "encoder.layers.{}.self_attn.out_proj";
constexpr std::string_view kNorm2 = "encoder.layers.{}.layer_norm2";
constexpr std::string_view kFc1 = "encoder.layers.{}.mlp.fc1";
constexpr std::string_view kFc2 = "encoder.layers.{}.mlp.fc2";
// Not loaded (hidden_states[-2] does not reach them): post_layernorm, the last layer,
// visual_projection (CLIPVisionModelWithProjection), embeddings.position_ids (old buffers).

constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxDim = 1 << 16;

std::string read_text(const std::filesystem::path& path) {
  return detail::read_small_file(path, "image encoder config", 4u << 20);
}

// The checkpoint's prefix and layer count; `where` names the file or folder.
struct Layout {
  std::string prefix;
  int64_t layers = 0;
};

Layout find_layout(const WeightStore& store, const std::string& where) {
  const std::vector<std::string> names = store.names();
  std::vector<std::string> prefixes;
  for (const std::string& n : names) {
    if (!n.ends_with(kPatch)) continue;
    const std::string prefix = n.substr(0, n.size() - kPatch.size());
    if (prefix.empty() || prefix.back() == '.') prefixes.push_back(prefix);
  }
  if (prefixes.empty())
    throw Error(StatusCode::bad_format,
                where + ": not a CLIP vision checkpoint: no tensor named '" + std::string(kPatch) +
                    "' (transformers names, with or without a prefix such as 'vision_model.')");
  if (prefixes.size() > 1) {
    std::string list;
    for (const std::string& p : prefixes) list += (list.empty() ? "'" : ", '") + p + "'";
    throw Error(StatusCode::bad_format, where + ": ambiguous CLIP checkpoint: vision towers under the prefixes " + list);
  }
  Layout l;
  l.prefix = prefixes[0];
  const std::string layers = l.prefix + std::string(kLayers);
  int64_t max_index = -1;
  for (const std::string& n : names) {
    if (!n.starts_with(layers)) continue;
    const char* first = n.data() + layers.size();
    const char* last = n.data() + n.size();
    int64_t index = 0;
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end == last || *end != '.' || index < 0) continue;
    if (index >= kMaxLayers)
      throw Error(StatusCode::bad_format, where + ": tensor '" + n + "' has layer index " + std::to_string(index) +
                                              ", more than " + std::to_string(kMaxLayers) + " layers");
    max_index = std::max(max_index, index);
  }
  l.layers = max_index + 1;
  return l;
}

class Checker {
 public:
  Checker(const WeightStore& store, const Layout& layout, const std::string& where)
      : store_(store), layout_(layout), where_(where) {}

  std::string name(std::string_view pattern, int64_t layer = 0, std::string_view suffix = {}) const {
    return layout_.prefix + detail::layer_name(pattern, layer) + std::string(suffix);
  }
  const Shape& shape(const std::string& name) const {
    if (!store_.contains(name))
      throw Error(StatusCode::not_found, where_ + ": missing tensor '" + name + "' of the CLIP vision encoder");
    return store_.info(name).shape;
  }
  void expect(const std::string& name, const Shape& want, std::string_view why) const {
    const Shape& got = shape(name);
    if (!(got == want))
      fail("tensor '" + name + "' has shape " + got.str() + ", expected " + want.str() + " (" + std::string(why) + ")");
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(StatusCode::bad_format, where_ + ": " + message);
  }

 private:
  const WeightStore& store_;
  const Layout& layout_;
  const std::string& where_;
};

// Config from the shapes, cross-checked with config.json (whose missing keys take
// CLIPVisionConfig's defaults, as transformers does), or the known ViT-H/14 without one.
ClipVisionConfig deduce_config(const Checker& c, const Layout& layout, const std::optional<ClipConfigJson>& json) {
  ClipVisionConfig cfg;
  const std::string patch = c.name(kPatch);
  const Shape& p = c.shape(patch);
  if (p.rank() != 4 || p[0] < 1 || p[0] > kMaxDim || p[1] < 1 || p[1] > 4 || p[2] < 1 || p[2] != p[3] || p[2] > 1024)
    c.fail("tensor '" + patch + "' has shape " + p.str() + ", expected [hidden, channels, patch, patch]");
  cfg.hidden_size = p[0];
  cfg.num_channels = p[1];
  cfg.patch_size = p[2];
  const std::string pos = c.name(kPositions);
  const Shape& ps = c.shape(pos);
  if (ps.rank() != 2 || ps[1] != cfg.hidden_size || ps[0] < 2)
    c.fail("tensor '" + pos + "' has shape " + ps.str() + ", expected [tokens, " + std::to_string(cfg.hidden_size) + "]");
  int64_t grid = 1;
  while ((grid + 1) * (grid + 1) + 1 <= ps[0]) ++grid;
  if (grid * grid + 1 != ps[0])
    c.fail("tensor '" + pos + "' has " + std::to_string(ps[0]) + " positions: not a square grid of patches plus the class token");
  cfg.image_size = grid * cfg.patch_size;
  cfg.num_layers = layout.layers;
  if (cfg.num_layers < 1) c.fail("no encoder layers ('" + layout.prefix + std::string(kLayers) + "0.*')");
  const std::string fc1 = c.name(kFc1, 0, ".weight");
  const Shape& f = c.shape(fc1);
  if (f.rank() != 2 || f[1] != cfg.hidden_size || f[0] < 1 || f[0] > 16 * kMaxDim)
    c.fail("tensor '" + fc1 + "' has shape " + f.str() + ", expected [intermediate, " + std::to_string(cfg.hidden_size) + "]");
  cfg.intermediate_size = f[0];

  if (!json) {
    // OpenCLIP ViT-H/14 (Wan 2.1's encoder, e.g. ComfyUI's clip_vision_h.safetensors).
    const bool vit_h = cfg.hidden_size == 1280 && cfg.patch_size == 14 && cfg.intermediate_size == 5120 &&
                       cfg.image_size == 224 && cfg.num_layers == 32;
    if (!vit_h)
      c.fail("no config.json beside the weights, and they are not OpenCLIP ViT-H/14 (hidden 1280, patch 14, "
             "32 layers): the number of heads and the activation cannot be read from the shapes; put the "
             "model's config.json beside the file");
    cfg.num_heads = 16;
    cfg.activation = ClipActivation::gelu;
    cfg.layer_norm_eps = 1e-5f;
  } else {
    auto check = [&](const std::optional<int64_t>& v, int64_t fallback, int64_t got, const char* key, const char* from) {
      const int64_t want = v.value_or(fallback);
      if (want != got)
        c.fail("config.json " + std::string(v ? "says " : "lacks ") + key + (v ? " = " : " (default ") +
               std::to_string(want) + (v ? "" : ")") + " but the weights have " + std::to_string(got) + " (" + from + ")");
    };
    check(json->hidden_size, 768, cfg.hidden_size, "hidden_size", "patch embedding rows");
    check(json->num_channels, 3, cfg.num_channels, "num_channels", "patch embedding input channels");
    check(json->patch_size, 32, cfg.patch_size, "patch_size", "patch embedding kernel");
    check(json->image_size, 224, cfg.image_size, "image_size", "position embeddings: (image_size / patch_size)² + 1");
    check(json->num_layers, 12, cfg.num_layers, "num_hidden_layers", "encoder.layers.N");
    check(json->intermediate_size, 3072, cfg.intermediate_size, "intermediate_size", "mlp.fc1 rows");
    cfg.num_heads = json->num_heads.value_or(12);
    cfg.activation = json->activation.value_or(ClipActivation::quick_gelu);
    cfg.layer_norm_eps = json->layer_norm_eps.value_or(1e-5f);
    if (cfg.num_heads < 1 || cfg.hidden_size % cfg.num_heads != 0)
      c.fail("config.json's num_attention_heads " + std::to_string(cfg.num_heads) + " does not divide hidden_size " +
             std::to_string(cfg.hidden_size));
  }
  return cfg;
}

void check_shapes(const Checker& c, const ClipVisionConfig& cfg) {
  const int64_t d = cfg.hidden_size, m = cfg.intermediate_size;
  c.expect(c.name(kClass), {d}, "hidden_size");
  c.expect(c.name(kPreNorm, 0, ".weight"), {d}, "hidden_size");
  c.expect(c.name(kPreNorm, 0, ".bias"), {d}, "hidden_size");
  for (int64_t l = 0; l + 1 < cfg.num_layers; ++l) {
    for (std::string_view norm : {kNorm1, kNorm2}) {
      c.expect(c.name(norm, l, ".weight"), {d}, "hidden_size");
      c.expect(c.name(norm, l, ".bias"), {d}, "hidden_size");
    }
    for (std::string_view proj : {kQ, kK, kV, kOut}) {
      c.expect(c.name(proj, l, ".weight"), {d, d}, "[hidden, hidden]");
      c.expect(c.name(proj, l, ".bias"), {d}, "hidden_size");
    }
    c.expect(c.name(kFc1, l, ".weight"), {m, d}, "[intermediate, hidden]");
    c.expect(c.name(kFc1, l, ".bias"), {m}, "intermediate_size");
    c.expect(c.name(kFc2, l, ".weight"), {d, m}, "[hidden, intermediate]");
    c.expect(c.name(kFc2, l, ".bias"), {d}, "hidden_size");
  }
}

class Loader {
 public:
  Loader(const WeightStore& store, const ClipVisionLoadOptions& o) : store_(store), options_(o) {}

  // A GEMM operand in the model dtype on the device.
  Tensor matrix(const std::string& name) { return place(fetch(name, options_.dtype)); }
  // A vector used in f32 (norms, embeddings): rounded to the model dtype first, as transformers
  // holds it in that dtype.
  Tensor vector(const std::string& name) {
    Tensor t = fetch(name, options_.dtype);
    return place(t.dtype() == DType::f32 ? t : t.to(DType::f32));
  }
  Affine linear(const std::string& base) { return {matrix(base + ".weight"), matrix(base + ".bias")}; }
  Affine norm(const std::string& base) { return {vector(base + ".weight"), vector(base + ".bias")}; }
  const std::set<std::string>& used() const { return used_; }

 private:
  Tensor fetch(const std::string& name, DType dtype) {
    used_.insert(name);
    const FileDType fd = store_.info(name).dtype;
    const bool same = (fd == FileDType::f32 && dtype == DType::f32) || (fd == FileDType::bf16 && dtype == DType::bf16);
    return same && options_.map_weights ? store_.view(name) : store_.load(name, dtype);
  }
  Tensor place(const Tensor& t) const { return options_.device.type == DeviceType::cpu ? t : t.to(options_.device); }

  const WeightStore& store_;
  const ClipVisionLoadOptions& options_;
  std::set<std::string> used_;
};

ClipActivation parse_activation(const std::string& act, const std::filesystem::path& path) {
  if (act == "gelu") return ClipActivation::gelu;
  if (act == "quick_gelu") return ClipActivation::quick_gelu;
  throw Error(StatusCode::unsupported, path.string() + ": hidden_act \"" + act +
                                           "\": reel's CLIP encoder implements \"gelu\" (erf) and \"quick_gelu\"");
}

}  // namespace

ClipConfigJson read_clip_config_json(const std::filesystem::path& path) {
  nlohmann::json root = detail::parse_json_strict(read_text(path), path.string());
  if (!root.is_object()) throw Error(StatusCode::bad_format, path.string() + " is not a JSON object");
  // A CLIPModel's config holds the vision tower's under "vision_config".
  const nlohmann::json& j = root.contains("vision_config") && root["vision_config"].is_object() ? root["vision_config"] : root;
  ClipConfigJson c;
  auto integer = [&](const char* key, std::optional<int64_t>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 16 * kMaxDim)
      throw Error(StatusCode::bad_format, path.string() + ": \"" + key + "\" must be a positive integer");
    out = it->get<int64_t>();
  };
  integer("hidden_size", c.hidden_size);
  integer("num_hidden_layers", c.num_layers);
  integer("num_attention_heads", c.num_heads);
  integer("intermediate_size", c.intermediate_size);
  integer("image_size", c.image_size);
  integer("patch_size", c.patch_size);
  integer("num_channels", c.num_channels);
  if (auto it = j.find("layer_norm_eps"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0.0) || !(it->get<double>() < 1.0))
      throw Error(StatusCode::bad_format, path.string() + ": \"layer_norm_eps\" must be a number in (0, 1)");
    c.layer_norm_eps = float(it->get<double>());
  }
  if (auto it = j.find("hidden_act"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(StatusCode::bad_format, path.string() + ": \"hidden_act\" must be a string");
    c.activation = parse_activation(it->get<std::string>(), path);
  }
  return c;
}

ClipVisionConfig check_clip_checkpoint(const WeightStore& store, const std::optional<ClipConfigJson>& json,
                                       const std::string& where) {
  const Layout layout = find_layout(store, where);
  const Checker c(store, layout, where);
  const ClipVisionConfig config = deduce_config(c, layout, json);
  check_shapes(c, config);
  return config;
}

ClipWeights load_clip_weights(const WeightStore& store, const std::optional<ClipConfigJson>& json,
                              const ClipVisionLoadOptions& options, const std::string& where) {
  require(options.dtype == DType::f32 || options.dtype == DType::bf16, StatusCode::invalid_argument,
          "CLIP vision encoder dtype must be f32 or bf16, got " + std::string(dtype_name(options.dtype)));
  ClipWeights w;
  w.config = check_clip_checkpoint(store, json, where);
  const Layout layout = find_layout(store, where);
  const Checker c(store, layout, where);
  w.dtype = options.dtype;
  w.device = options.device;
  const ClipVisionConfig& cfg = w.config;

  Loader load(store, options);
  const int64_t d = cfg.hidden_size;
  w.patch = load.matrix(c.name(kPatch)).reshape({d, cfg.num_channels * cfg.patch_size * cfg.patch_size});
  w.class_embedding = load.vector(c.name(kClass)).reshape({1, 1, d});
  w.positions = load.vector(c.name(kPositions)).reshape({1, cfg.tokens(), d});
  w.pre_norm = load.norm(c.name(kPreNorm));
  w.layers.resize(size_t(cfg.num_layers - 1));
  for (int64_t l = 0; l + 1 < cfg.num_layers; ++l) {
    ClipLayer& L = w.layers[size_t(l)];
    L.norm1 = load.norm(c.name(kNorm1, l));
    L.q = load.linear(c.name(kQ, l));
    L.k = load.linear(c.name(kK, l));
    L.v = load.linear(c.name(kV, l));
    L.out = load.linear(c.name(kOut, l));
    L.norm2 = load.norm(c.name(kNorm2, l));
    L.fc1 = load.linear(c.name(kFc1, l));
    L.fc2 = load.linear(c.name(kFc2, l));
  }
  for (const std::string& n : store.names())
    if (!load.used().contains(n)) w.ignored.push_back(n);
  return w;
}

}  // namespace reel::clip
