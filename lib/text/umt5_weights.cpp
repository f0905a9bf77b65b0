// umT5 checkpoints: the one name-mapping table (transformers/diffusers/ComfyUI names and the
// original Wan names of wan.md §5.3), the shape checks that deduce the config, config.json, and
// loading into typed fields (any float or fp8 file dtype; ComfyUI's per-tensor fp8 scales).
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "weights/name_pattern.hpp"
#include "text/umt5_model.hpp"
#include "weights/strict_json.hpp"

namespace reel::text {

namespace {

enum class Param : uint8_t { embedding, final_norm, attn_norm, q, k, v, o, rel_bias, ffn_norm, wi_gate, wi_up, wo };
enum class Layout : uint8_t { transformers, wan };

struct NameRule {
  Param param;
  Layout layout;
  std::string_view pattern;  // "{}" stands for the layer index; rules of one param are tried in order
};

// THE table: every checkpoint name reel accepts for the umT5 encoder. Any common prefix is
// allowed (e.g. "text_encoders.umt5xxl.transformer."); it is found from the layer-0 query name.
constexpr NameRule kNames[] = {
    // transformers UMT5EncoderModel: diffusers text_encoder/ folders and ComfyUI single files
    {Param::embedding, Layout::transformers, "shared.weight"},
    {Param::embedding, Layout::transformers, "encoder.embed_tokens.weight"},
    {Param::final_norm, Layout::transformers, "encoder.final_layer_norm.weight"},
    {Param::attn_norm, Layout::transformers, "encoder.block.{}.layer.0.layer_norm.weight"},
    {Param::q, Layout::transformers, "encoder.block.{}.layer.0.SelfAttention.q.weight"},
    {Param::k, Layout::transformers, "encoder.block.{}.layer.0.SelfAttention.k.weight"},
    {Param::v, Layout::transformers, "encoder.block.{}.layer.0.SelfAttention.v.weight"},
    {Param::o, Layout::transformers, "encoder.block.{}.layer.0.SelfAttention.o.weight"},
    {Param::rel_bias, Layout::transformers, "encoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight"},
    {Param::ffn_norm, Layout::transformers, "encoder.block.{}.layer.1.layer_norm.weight"},
    {Param::wi_gate, Layout::transformers, "encoder.block.{}.layer.1.DenseReluDense.wi_0.weight"},
    {Param::wi_up, Layout::transformers, "encoder.block.{}.layer.1.DenseReluDense.wi_1.weight"},
    {Param::wo, Layout::transformers, "encoder.block.{}.layer.1.DenseReluDense.wo.weight"},
    // original Wan T5Encoder (wan/modules/t5.py), e.g. models_t5_umt5-xxl-enc-bf16 converted to safetensors
    {Param::embedding, Layout::wan, "token_embedding.weight"},
    {Param::final_norm, Layout::wan, "norm.weight"},
    {Param::attn_norm, Layout::wan, "blocks.{}.norm1.weight"},
    {Param::q, Layout::wan, "blocks.{}.attn.q.weight"},
    {Param::k, Layout::wan, "blocks.{}.attn.k.weight"},
    {Param::v, Layout::wan, "blocks.{}.attn.v.weight"},
    {Param::o, Layout::wan, "blocks.{}.attn.o.weight"},
    {Param::rel_bias, Layout::wan, "blocks.{}.pos_embedding.embedding.weight"},
    {Param::ffn_norm, Layout::wan, "blocks.{}.norm2.weight"},
    {Param::wi_gate, Layout::wan, "blocks.{}.ffn.gate.0.weight"},
    {Param::wi_up, Layout::wan, "blocks.{}.ffn.fc1.weight"},
    {Param::wo, Layout::wan, "blocks.{}.ffn.fc2.weight"},
};

// ComfyUI "scaled fp8" files: WeightStore::load_weight applies the per-tensor scales; the
// `scaled_fp8` marker and `scale_input` entries carry nothing the encoder needs.

constexpr int64_t kMaxLayers = 4096;

std::string_view layout_name(Layout l) {
  return l == Layout::transformers ? "transformers/diffusers/ComfyUI names" : "original Wan names";
}

std::string_view pattern_of(Param p, Layout l) {
  for (const NameRule& r : kNames)
    if (r.param == p && r.layout == l) return r.pattern;
  return {};
}

std::string block_prefix(Layout l) { return l == Layout::transformers ? "encoder.block." : "blocks."; }

// Which layout and prefix the checkpoint uses, and how many layers it has.
struct Resolved {
  Layout layout = Layout::transformers;
  std::string prefix;
  int64_t layers = 0;
  const ShapeLookup* shape_of = nullptr;

  std::string describe() const {
    return "umT5 checkpoint (" + std::string(layout_name(layout)) +
           (prefix.empty() ? std::string() : ", prefix '" + prefix + "'") + ")";
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(StatusCode::bad_format, describe() + ": " + message);
  }
  // The checkpoint name of a parameter (the first rule that is present).
  std::string name(Param p, int64_t layer = 0) const {
    std::string first;
    for (const NameRule& r : kNames) {
      if (r.param != p || r.layout != layout) continue;
      std::string candidate = prefix + detail::layer_name(r.pattern, layer);
      if ((*shape_of)(candidate)) return candidate;
      if (first.empty()) first = std::move(candidate);
    }
    throw Error(StatusCode::not_found, describe() + ": missing tensor '" + first + "'");
  }
  const Shape& shape(const std::string& name) const { return *(*shape_of)(name); }
};

Resolved resolve(const std::vector<std::string>& names, const ShapeLookup& shape_of) {
  std::vector<std::pair<Layout, std::string>> found;
  for (Layout l : {Layout::transformers, Layout::wan}) {
    const std::string anchor = detail::layer_name(pattern_of(Param::q, l), 0);
    for (const std::string& n : names) {
      if (!n.ends_with(anchor)) continue;
      const std::string prefix = n.substr(0, n.size() - anchor.size());
      if (prefix.empty() || prefix.back() == '.') found.emplace_back(l, prefix);
    }
  }
  if (found.empty())
    throw Error(StatusCode::bad_format,
                "not a umT5 encoder checkpoint: no tensor named '" + detail::layer_name(pattern_of(Param::q, Layout::transformers), 0) +
                    "' (transformers / diffusers / ComfyUI names) or '" + detail::layer_name(pattern_of(Param::q, Layout::wan), 0) +
                    "' (original Wan names), with or without a prefix");
  if (found.size() > 1) {
    std::string list;
    for (const auto& [l, p] : found) list += (list.empty() ? "'" : ", '") + p + "' (" + std::string(layout_name(l)) + ")";
    throw Error(StatusCode::bad_format, "ambiguous umT5 checkpoint: it holds more than one encoder, prefixes " + list);
  }
  Resolved r;
  r.layout = found[0].first;
  r.prefix = found[0].second;
  r.shape_of = &shape_of;
  const std::string blocks = r.prefix + block_prefix(r.layout);
  int64_t max_index = -1;
  for (const std::string& n : names) {
    if (!n.starts_with(blocks)) continue;
    const char* first = n.data() + blocks.size();
    const char* last = n.data() + n.size();
    int64_t index = 0;
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end == last || *end != '.' || index < 0) continue;
    if (index >= kMaxLayers) r.fail("tensor '" + n + "' has layer index " + std::to_string(index) + ", more than " +
                                    std::to_string(kMaxLayers) + " layers");
    max_index = std::max(max_index, index);
  }
  r.layers = max_index + 1;  // ≥ 1: the layer-0 query exists; gaps show up as missing tensors
  return r;
}

void expect_shape(const Resolved& r, const std::string& name, const Shape& want, std::string_view why) {
  const Shape& got = r.shape(name);
  if (!(got == want))
    r.fail("tensor '" + name + "' has shape " + got.str() + ", expected " + want.str() + " (" + std::string(why) + ")");
}

void expect_hint(const Resolved& r, const std::optional<int64_t>& hint, int64_t value, std::string_view key,
                 std::string_view from) {
  if (hint && *hint != value)
    r.fail("config.json says " + std::string(key) + " = " + std::to_string(*hint) + " but the weights have " +
           std::to_string(value) + " (" + std::string(from) + ")");
}

Umt5Config check_shapes(const Resolved& r, const Umt5ConfigHints& hints) {
  Umt5Config c;
  const std::string emb = r.name(Param::embedding);
  const Shape& e = r.shape(emb);
  if (e.rank() != 2 || e[0] < 1 || e[1] < 1) r.fail("tensor '" + emb + "' has shape " + e.str() + ", expected [vocab, d_model]");
  c.vocab_size = e[0];
  c.d_model = e[1];
  const int64_t d = c.d_model;

  const std::string bias0 = r.name(Param::rel_bias, 0);
  const Shape& b = r.shape(bias0);
  if (b.rank() != 2 || b[0] < 4 || b[0] % 2 != 0 || b[1] < 1)
    r.fail("tensor '" + bias0 + "' has shape " + b.str() + ", expected [num_buckets, num_heads] with an even num_buckets >= 4");
  c.num_buckets = b[0];
  c.num_heads = b[1];

  const std::string q0 = r.name(Param::q, 0);
  const Shape& q = r.shape(q0);
  if (q.rank() != 2 || q[1] != d || q[0] < 1 || q[0] % c.num_heads != 0)
    r.fail("tensor '" + q0 + "' has shape " + q.str() + ", expected [num_heads * d_kv, " + std::to_string(d) +
           "] with num_heads = " + std::to_string(c.num_heads) + " (from '" + bias0 + "')");
  c.d_kv = q[0] / c.num_heads;

  const std::string g0 = r.name(Param::wi_gate, 0);
  const Shape& g = r.shape(g0);
  if (g.rank() != 2 || g[1] != d || g[0] < 1)
    r.fail("tensor '" + g0 + "' has shape " + g.str() + ", expected [d_ff, " + std::to_string(d) + "]");
  c.d_ff = g[0];
  c.num_layers = r.layers;
  if (hints.max_distance) c.max_distance = *hints.max_distance;
  if (hints.eps) c.eps = *hints.eps;
  if (c.max_distance <= c.num_buckets / 4)
    r.fail("relative_attention_max_distance " + std::to_string(c.max_distance) + " must exceed num_buckets / 4 = " +
           std::to_string(c.num_buckets / 4));

  expect_hint(r, hints.num_heads, c.num_heads, "num_heads", "columns of the relative attention bias");
  expect_hint(r, hints.d_kv, c.d_kv, "d_kv", "query rows / heads");
  expect_hint(r, hints.d_model, c.d_model, "d_model", "embedding columns");
  expect_hint(r, hints.d_ff, c.d_ff, "d_ff", "wi_0 rows");
  expect_hint(r, hints.num_layers, c.num_layers, "num_layers", "encoder blocks");
  expect_hint(r, hints.num_buckets, c.num_buckets, "relative_attention_num_buckets", "relative attention bias rows");

  const int64_t inner = c.inner_dim();
  expect_shape(r, r.name(Param::final_norm), {d}, "d_model");
  for (int64_t l = 0; l < c.num_layers; ++l) {
    expect_shape(r, r.name(Param::attn_norm, l), {d}, "d_model");
    expect_shape(r, r.name(Param::ffn_norm, l), {d}, "d_model");
    for (Param p : {Param::q, Param::k, Param::v}) expect_shape(r, r.name(p, l), {inner, d}, "[heads * d_kv, d_model]");
    expect_shape(r, r.name(Param::o, l), {d, inner}, "[d_model, heads * d_kv]");
    expect_shape(r, r.name(Param::rel_bias, l), {c.num_buckets, c.num_heads}, "[num_buckets, heads]: every umT5 layer has its own");
    expect_shape(r, r.name(Param::wi_gate, l), {c.d_ff, d}, "[d_ff, d_model]");
    expect_shape(r, r.name(Param::wi_up, l), {c.d_ff, d}, "[d_ff, d_model]");
    expect_shape(r, r.name(Param::wo, l), {d, c.d_ff}, "[d_model, d_ff]");
  }
  return c;
}

std::string read_text(const std::filesystem::path& path) {
  return detail::read_small_file(path, "text encoder config", detail::kMaxConfigBytes);
}

// A tensor in the requested dtype on the requested device, dequantised by its ComfyUI fp8
// scale when it has one (WeightStore::load_weight).
Tensor load_param(const WeightStore& store, const std::string& name, DType dtype, Device device, bool map) {
  const Tensor t = store.load_weight(name, dtype, map && device.type == DeviceType::cpu);
  return t.to(device);
}

}  // namespace

Umt5ConfigHints read_umt5_config_json(const std::filesystem::path& path) {
  const nlohmann::json j = nlohmann::json::parse(read_text(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(StatusCode::bad_format, path.string() + " is not a JSON object");
  Umt5ConfigHints h;
  auto integer = [&](const char* key, std::optional<int64_t>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      throw Error(StatusCode::bad_format, path.string() + ": \"" + key + "\" must be a positive integer");
    out = it->get<int64_t>();
  };
  integer("num_heads", h.num_heads);
  integer("d_kv", h.d_kv);
  integer("d_model", h.d_model);
  integer("d_ff", h.d_ff);
  integer("num_layers", h.num_layers);
  integer("relative_attention_num_buckets", h.num_buckets);
  integer("relative_attention_max_distance", h.max_distance);
  if (auto it = j.find("layer_norm_epsilon"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0.0) || !(it->get<double>() < 1.0))
      throw Error(StatusCode::bad_format, path.string() + ": \"layer_norm_epsilon\" must be a number in (0, 1)");
    h.eps = float(it->get<double>());
  }
  auto text = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string ff = text("feed_forward_proj"), act = text("dense_act_fn");
  if (!ff.empty() && ff != "gated-gelu")
    throw Error(StatusCode::unsupported, path.string() + ": feed_forward_proj \"" + ff +
                                             "\": reel's umT5 encoder implements \"gated-gelu\" (tanh GELU) only");
  if (!act.empty() && act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast")
    throw Error(StatusCode::unsupported, path.string() + ": dense_act_fn \"" + act +
                                             "\": reel's umT5 encoder implements the tanh GELU only");
  return h;
}

std::filesystem::path umt5_config_json_for(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path config = path / "config.json";
  const bool folder_config = std::filesystem::is_directory(path, ec) && std::filesystem::exists(config, ec);
  return folder_config ? config : std::filesystem::path();
}

Umt5Config umt5_config_from_lookup(const std::vector<std::string>& names, const ShapeLookup& shape_of,
                                   const Umt5ConfigHints& hints) {
  return check_shapes(resolve(names, shape_of), hints);
}

Umt5Weights load_umt5_weights(const WeightStore& store, const Umt5LoadOptions& options, const Umt5ConfigHints& hints) {
  require(options.dtype == DType::f32 || options.dtype == DType::bf16 || options.dtype == DType::f16,
          StatusCode::invalid_argument,
          "umT5 encoder dtype must be f32, bf16 or f16, got " + std::string(dtype_name(options.dtype)));
  const std::vector<std::string> names = store.names();
  const ShapeLookup shape_of = [&](const std::string& n) -> const Shape* {
    return store.contains(n) ? &store.info(n).shape : nullptr;
  };
  const Resolved r = resolve(names, shape_of);
  Umt5Weights w;
  w.config = check_shapes(r, hints);
  w.dtype = options.dtype;
  w.device = options.device;
  const Device cpu = Device::cpu();
  const DType wo_dtype = options.dtype == DType::f16 ? DType::f32 : options.dtype;  // transformers keeps wo in f32
  w.embedding = load_param(store, r.name(Param::embedding), options.dtype, cpu, options.map_weights);
  w.final_norm = load_param(store, r.name(Param::final_norm), DType::f32, options.device, options.map_weights);
  w.layers.resize(size_t(w.config.num_layers));
  for (int64_t l = 0; l < w.config.num_layers; ++l) {
    Umt5Layer& L = w.layers[size_t(l)];
    L.attn_norm = load_param(store, r.name(Param::attn_norm, l), DType::f32, options.device, options.map_weights);
    L.q = load_param(store, r.name(Param::q, l), options.dtype, options.device, options.map_weights);
    L.k = load_param(store, r.name(Param::k, l), options.dtype, options.device, options.map_weights);
    L.v = load_param(store, r.name(Param::v, l), options.dtype, options.device, options.map_weights);
    L.o = load_param(store, r.name(Param::o, l), options.dtype, options.device, options.map_weights);
    L.rel_bias = load_param(store, r.name(Param::rel_bias, l), DType::f32, cpu, options.map_weights);
    L.ffn_norm = load_param(store, r.name(Param::ffn_norm, l), DType::f32, options.device, options.map_weights);
    L.wi_gate = load_param(store, r.name(Param::wi_gate, l), options.dtype, options.device, options.map_weights);
    L.wi_up = load_param(store, r.name(Param::wi_up, l), options.dtype, options.device, options.map_weights);
    L.wo = load_param(store, r.name(Param::wo, l), wo_dtype, options.device, options.map_weights);
  }
  return w;
}

}  // namespace reel::text

namespace reel {

Umt5Config umt5_config_from_shapes(const std::map<std::string, Shape>& shapes) {
  std::vector<std::string> names;
  names.reserve(shapes.size());
  for (const auto& [n, s] : shapes) names.push_back(n);
  const text::ShapeLookup shape_of = [&](const std::string& n) -> const Shape* {
    auto it = shapes.find(n);
    return it == shapes.end() ? nullptr : &it->second;
  };
  return text::umt5_config_from_lookup(names, shape_of, {});
}

}  // namespace reel
