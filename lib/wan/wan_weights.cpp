// The Wan transformer's one checkpoint-name table (diffusers ↔ original/ComfyUI, reel/wan.md
// §5.1, incl. the norm2/norm3 swap), and the loader that fills the typed weights from it:
// shape checks, dtype conversion, fp8 dequantisation (w·scale), and random weights for benches.
#include <algorithm>
#include <cmath>
#include <set>

#include "weights/name_pattern.hpp"
#include "parallel.hpp"
#include "wan/wan_model.hpp"

namespace reel::wan {

namespace {

// When a tensor belongs to the model.
enum class When : uint8_t { always, image, cross_norm };
// Its dtype: the model's (bf16 in bf16 mode) or always f32 (diffusers' _keep_in_fp32_modules).
enum class Keep : uint8_t { model, f32 };
// How random_weights() fills it.
enum class Init : uint8_t { matrix, bias, norm, modulation };

using ShapeFn = Shape (*)(const WanConfig&);
using SlotFn = Tensor* (*)(WanWeights&, int64_t block);
using LinearFn = Linear* (*)(WanWeights&, int64_t block);

struct Entry {
  const char* diffusers;  // "{}" = block index
  const char* original;
  When when;
  Keep keep;
  Init init;
  ShapeFn shape;
  SlotFn slot;
  LinearFn linear = nullptr;  // the weight of a Linear: the layer (LoRA side paths live there)
  bool per_block() const { return std::string_view(diffusers).find("{}") != std::string_view::npos; }
};

// Shapes (PyTorch layouts: Linear weight [out, in]).
Shape d(const WanConfig& c) { return {c.dim}; }
Shape dd(const WanConfig& c) { return {c.dim, c.dim}; }
Shape patch_w(const WanConfig& c) { return {c.dim, c.in_channels, c.patch.t, c.patch.h, c.patch.w}; }
Shape time_in_w(const WanConfig& c) { return {c.dim, c.freq_dim}; }
Shape proj_w(const WanConfig& c) { return {6 * c.dim, c.dim}; }
Shape proj_b(const WanConfig& c) { return {6 * c.dim}; }
Shape text_in_w(const WanConfig& c) { return {c.dim, c.text_dim}; }
Shape img(const WanConfig& c) { return {c.image_dim}; }
Shape img_in_w(const WanConfig& c) { return {c.image_dim, c.image_dim}; }
Shape img_out_w(const WanConfig& c) { return {c.dim, c.image_dim}; }
Shape mod6(const WanConfig& c) { return {1, 6, c.dim}; }
Shape mod2(const WanConfig& c) { return {1, 2, c.dim}; }
Shape ffn_in_w(const WanConfig& c) { return {c.ffn_dim, c.dim}; }
Shape ffn_in_b(const WanConfig& c) { return {c.ffn_dim}; }
Shape ffn_out_w(const WanConfig& c) { return {c.dim, c.ffn_dim}; }
Shape head_w(const WanConfig& c) { return {c.out_channels * c.patch.volume(), c.dim}; }
Shape head_b(const WanConfig& c) { return {c.out_channels * c.patch.volume()}; }

#define TOP(m) [](WanWeights& w, int64_t) -> Tensor* { return &w.m; }
#define BLK(m) [](WanWeights& w, int64_t i) -> Tensor* { return &w.blocks[size_t(i)].m; }
#define TOPL(m) [](WanWeights& w, int64_t) -> Linear* { return &w.m; }
#define BLKL(m) [](WanWeights& w, int64_t i) -> Linear* { return &w.blocks[size_t(i)].m; }

// clang-format off
const Entry kTable[] = {
  // diffusers name                                       original name                      when              keep        init              shape       slot
  {"patch_embedding.weight",                              "patch_embedding.weight",          When::always,     Keep::model, Init::matrix,     patch_w,    TOP(patch.weight), TOPL(patch)},
  {"patch_embedding.bias",                                "patch_embedding.bias",            When::always,     Keep::model, Init::bias,       d,          TOP(patch.bias)},
  {"condition_embedder.time_embedder.linear_1.weight",    "time_embedding.0.weight",         When::always,     Keep::f32,   Init::matrix,     time_in_w,  TOP(time_in.weight), TOPL(time_in)},
  {"condition_embedder.time_embedder.linear_1.bias",      "time_embedding.0.bias",           When::always,     Keep::f32,   Init::bias,       d,          TOP(time_in.bias)},
  {"condition_embedder.time_embedder.linear_2.weight",    "time_embedding.2.weight",         When::always,     Keep::f32,   Init::matrix,     dd,         TOP(time_out.weight), TOPL(time_out)},
  {"condition_embedder.time_embedder.linear_2.bias",      "time_embedding.2.bias",           When::always,     Keep::f32,   Init::bias,       d,          TOP(time_out.bias)},
  {"condition_embedder.time_proj.weight",                 "time_projection.1.weight",        When::always,     Keep::model, Init::matrix,     proj_w,     TOP(time_proj.weight), TOPL(time_proj)},
  {"condition_embedder.time_proj.bias",                   "time_projection.1.bias",          When::always,     Keep::model, Init::bias,       proj_b,     TOP(time_proj.bias)},
  {"condition_embedder.text_embedder.linear_1.weight",    "text_embedding.0.weight",         When::always,     Keep::model, Init::matrix,     text_in_w,  TOP(text_in.weight), TOPL(text_in)},
  {"condition_embedder.text_embedder.linear_1.bias",      "text_embedding.0.bias",           When::always,     Keep::model, Init::bias,       d,          TOP(text_in.bias)},
  {"condition_embedder.text_embedder.linear_2.weight",    "text_embedding.2.weight",         When::always,     Keep::model, Init::matrix,     dd,         TOP(text_out.weight), TOPL(text_out)},
  {"condition_embedder.text_embedder.linear_2.bias",      "text_embedding.2.bias",           When::always,     Keep::model, Init::bias,       d,          TOP(text_out.bias)},
  {"condition_embedder.image_embedder.norm1.weight",      "img_emb.proj.0.weight",           When::image,      Keep::f32,   Init::norm,       img,        TOP(image_norm_in.weight)},
  {"condition_embedder.image_embedder.norm1.bias",        "img_emb.proj.0.bias",             When::image,      Keep::f32,   Init::bias,       img,        TOP(image_norm_in.bias)},
  {"condition_embedder.image_embedder.ff.net.0.proj.weight", "img_emb.proj.1.weight",        When::image,      Keep::model, Init::matrix,     img_in_w,   TOP(image_in.weight), TOPL(image_in)},
  {"condition_embedder.image_embedder.ff.net.0.proj.bias",   "img_emb.proj.1.bias",          When::image,      Keep::model, Init::bias,       img,        TOP(image_in.bias)},
  {"condition_embedder.image_embedder.ff.net.2.weight",   "img_emb.proj.3.weight",           When::image,      Keep::model, Init::matrix,     img_out_w,  TOP(image_out.weight), TOPL(image_out)},
  {"condition_embedder.image_embedder.ff.net.2.bias",     "img_emb.proj.3.bias",             When::image,      Keep::model, Init::bias,       d,          TOP(image_out.bias)},
  {"condition_embedder.image_embedder.norm2.weight",      "img_emb.proj.4.weight",           When::image,      Keep::f32,   Init::norm,       d,          TOP(image_norm_out.weight)},
  {"condition_embedder.image_embedder.norm2.bias",        "img_emb.proj.4.bias",             When::image,      Keep::f32,   Init::bias,       d,          TOP(image_norm_out.bias)},
  {"blocks.{}.scale_shift_table",                         "blocks.{}.modulation",            When::always,     Keep::f32,   Init::modulation, mod6,       BLK(modulation)},
  {"blocks.{}.attn1.to_q.weight",                         "blocks.{}.self_attn.q.weight",    When::always,     Keep::model, Init::matrix,     dd,         BLK(q.weight), BLKL(q)},
  {"blocks.{}.attn1.to_q.bias",                           "blocks.{}.self_attn.q.bias",      When::always,     Keep::model, Init::bias,       d,          BLK(q.bias)},
  {"blocks.{}.attn1.to_k.weight",                         "blocks.{}.self_attn.k.weight",    When::always,     Keep::model, Init::matrix,     dd,         BLK(k.weight), BLKL(k)},
  {"blocks.{}.attn1.to_k.bias",                           "blocks.{}.self_attn.k.bias",      When::always,     Keep::model, Init::bias,       d,          BLK(k.bias)},
  {"blocks.{}.attn1.to_v.weight",                         "blocks.{}.self_attn.v.weight",    When::always,     Keep::model, Init::matrix,     dd,         BLK(v.weight), BLKL(v)},
  {"blocks.{}.attn1.to_v.bias",                           "blocks.{}.self_attn.v.bias",      When::always,     Keep::model, Init::bias,       d,          BLK(v.bias)},
  {"blocks.{}.attn1.to_out.0.weight",                     "blocks.{}.self_attn.o.weight",    When::always,     Keep::model, Init::matrix,     dd,         BLK(o.weight), BLKL(o)},
  {"blocks.{}.attn1.to_out.0.bias",                       "blocks.{}.self_attn.o.bias",      When::always,     Keep::model, Init::bias,       d,          BLK(o.bias)},
  {"blocks.{}.attn1.norm_q.weight",                       "blocks.{}.self_attn.norm_q.weight", When::always,   Keep::model, Init::norm,       d,          BLK(norm_q)},
  {"blocks.{}.attn1.norm_k.weight",                       "blocks.{}.self_attn.norm_k.weight", When::always,   Keep::model, Init::norm,       d,          BLK(norm_k)},
  {"blocks.{}.attn2.to_q.weight",                         "blocks.{}.cross_attn.q.weight",   When::always,     Keep::model, Init::matrix,     dd,         BLK(cross_q.weight), BLKL(cross_q)},
  {"blocks.{}.attn2.to_q.bias",                           "blocks.{}.cross_attn.q.bias",     When::always,     Keep::model, Init::bias,       d,          BLK(cross_q.bias)},
  {"blocks.{}.attn2.to_k.weight",                         "blocks.{}.cross_attn.k.weight",   When::always,     Keep::model, Init::matrix,     dd,         BLK(cross_k.weight), BLKL(cross_k)},
  {"blocks.{}.attn2.to_k.bias",                           "blocks.{}.cross_attn.k.bias",     When::always,     Keep::model, Init::bias,       d,          BLK(cross_k.bias)},
  {"blocks.{}.attn2.to_v.weight",                         "blocks.{}.cross_attn.v.weight",   When::always,     Keep::model, Init::matrix,     dd,         BLK(cross_v.weight), BLKL(cross_v)},
  {"blocks.{}.attn2.to_v.bias",                           "blocks.{}.cross_attn.v.bias",     When::always,     Keep::model, Init::bias,       d,          BLK(cross_v.bias)},
  {"blocks.{}.attn2.to_out.0.weight",                     "blocks.{}.cross_attn.o.weight",   When::always,     Keep::model, Init::matrix,     dd,         BLK(cross_o.weight), BLKL(cross_o)},
  {"blocks.{}.attn2.to_out.0.bias",                       "blocks.{}.cross_attn.o.bias",     When::always,     Keep::model, Init::bias,       d,          BLK(cross_o.bias)},
  {"blocks.{}.attn2.norm_q.weight",                       "blocks.{}.cross_attn.norm_q.weight", When::always,  Keep::model, Init::norm,       d,          BLK(cross_norm_q)},
  {"blocks.{}.attn2.norm_k.weight",                       "blocks.{}.cross_attn.norm_k.weight", When::always,  Keep::model, Init::norm,       d,          BLK(cross_norm_k)},
  {"blocks.{}.attn2.add_k_proj.weight",                   "blocks.{}.cross_attn.k_img.weight", When::image,    Keep::model, Init::matrix,     dd,         BLK(image_k.weight), BLKL(image_k)},
  {"blocks.{}.attn2.add_k_proj.bias",                     "blocks.{}.cross_attn.k_img.bias", When::image,      Keep::model, Init::bias,       d,          BLK(image_k.bias)},
  {"blocks.{}.attn2.add_v_proj.weight",                   "blocks.{}.cross_attn.v_img.weight", When::image,    Keep::model, Init::matrix,     dd,         BLK(image_v.weight), BLKL(image_v)},
  {"blocks.{}.attn2.add_v_proj.bias",                     "blocks.{}.cross_attn.v_img.bias", When::image,      Keep::model, Init::bias,       d,          BLK(image_v.bias)},
  {"blocks.{}.attn2.norm_added_k.weight",                 "blocks.{}.cross_attn.norm_k_img.weight", When::image, Keep::model, Init::norm,     d,          BLK(image_norm_k)},
  // The cross-attention LayerNorm: diffusers norm2 is the original norm3 (wan.md §5.1).
  {"blocks.{}.norm2.weight",                              "blocks.{}.norm3.weight",          When::cross_norm, Keep::f32,   Init::norm,       d,          BLK(cross_norm.weight)},
  {"blocks.{}.norm2.bias",                                "blocks.{}.norm3.bias",            When::cross_norm, Keep::f32,   Init::bias,       d,          BLK(cross_norm.bias)},
  {"blocks.{}.ffn.net.0.proj.weight",                     "blocks.{}.ffn.0.weight",          When::always,     Keep::model, Init::matrix,     ffn_in_w,   BLK(ffn_in.weight), BLKL(ffn_in)},
  {"blocks.{}.ffn.net.0.proj.bias",                       "blocks.{}.ffn.0.bias",            When::always,     Keep::model, Init::bias,       ffn_in_b,   BLK(ffn_in.bias)},
  {"blocks.{}.ffn.net.2.weight",                          "blocks.{}.ffn.2.weight",          When::always,     Keep::model, Init::matrix,     ffn_out_w,  BLK(ffn_out.weight), BLKL(ffn_out)},
  {"blocks.{}.ffn.net.2.bias",                            "blocks.{}.ffn.2.bias",            When::always,     Keep::model, Init::bias,       d,          BLK(ffn_out.bias)},
  {"scale_shift_table",                                   "head.modulation",                 When::always,     Keep::f32,   Init::modulation, mod2,       TOP(head_modulation)},
  {"proj_out.weight",                                     "head.head.weight",                When::always,     Keep::model, Init::matrix,     head_w,     TOP(head.weight), TOPL(head)},
  {"proj_out.bias",                                       "head.head.bias",                  When::always,     Keep::model, Init::bias,       head_b,     TOP(head.bias)},
};
// clang-format on

#undef TOP
#undef BLK
#undef TOPL
#undef BLKL

bool applies(When when, const WanConfig& c) {
  switch (when) {
    case When::always: return true;
    case When::image: return c.has_image_context();
    case When::cross_norm: return c.cross_attn_norm;
  }
  return false;
}

const Entry& entry_for(std::string_view key) {
  for (const Entry& e : kTable)
    if (key == e.diffusers) return e;
  throw Error(StatusCode::internal, "Wan name table has no entry '" + std::string(key) + "'");
}

std::string source_of(const WeightStore& store) {
  const auto files = store.files();
  if (files.empty()) return "the checkpoint";
  if (files.size() == 1) return files.front().string();
  return files.front().parent_path().string() + " (" + std::to_string(files.size()) + " shards)";
}

std::string layout_name(WanLayout l) { return l == WanLayout::diffusers ? "diffusers" : "original"; }

// One tensor: present, with the expected shape.
void check_tensor(const WeightStore& store, const std::string& name, const Shape& expected, const WanConfig& cfg,
                  WanLayout layout) {
  if (!store.contains(name))
    throw Error(StatusCode::not_found, "Wan transformer: tensor '" + name + "' is missing from " + source_of(store) +
                                           " (" + layout_name(layout) + " layout, model " + cfg.str() + ")");
  const TensorInfo& ti = store.info(name);
  if (!(ti.shape == expected))
    throw Error(StatusCode::bad_format, "Wan transformer: tensor '" + name + "' in " + ti.file.filename().string() +
                                            " has shape " + ti.shape.str() + ", expected " + expected.str() +
                                            " (model " + cfg.str() + ")");
}

// One tensor: checked, converted to `dtype`, fp8 scales applied.
Tensor load_tensor(const WeightStore& store, const std::string& name, const Shape& expected, DType dtype,
                   const WanConfig& cfg, bool map, std::set<std::string>& used, WanCheckpointInfo& info) {
  check_tensor(store, name, expected, cfg, info.layout);
  const TensorInfo& ti = store.info(name);
  used.insert(name);
  const bool fp8 = ti.dtype == FileDType::f8_e4m3 || ti.dtype == FileDType::f8_e5m2;
  if (fp8) ++info.fp8_tensors;
  const std::string scale_name = store.scale_of(name);
  if (!scale_name.empty()) {
    used.insert(scale_name);
    if (fp8) ++info.scaled_fp8_tensors;
  }
  return store.load_weight(name, dtype, map);  // dequantised by its scale; a view when map and the dtype match
}

// WanWeightFormat::stored: a block linear stored in a quantised GGUF type goes straight into
// `layer.quantised` (every GGUF quantisation is kept as stored: QMatrix::keeps); returns false
// for float tensors (loaded as usual).
bool keep_quantised(const WeightStore& store, const std::string& name, const Shape& expected, const WanConfig& cfg,
                    std::set<std::string>& used, Linear& layer, WanCheckpointInfo& info) {
  check_tensor(store, name, expected, cfg, info.layout);
  const TensorInfo& ti = store.info(name);
  const bool quantised = ti.dtype >= FileDType::q4_0;
  if (!quantised || expected[1] % quant::QMatrix::kBlock != 0) return false;
  used.insert(name);
  layer.quantised = std::make_shared<const quant::QMatrix>(
      quant::QMatrix::from_gguf(ti.dtype, store.bytes(name).data(), expected[0], expected[1]));
  store.release(name);  // copied into the packed form
  return true;
}

DType dtype_for(Keep keep, WanPrecision precision) {
  return keep == Keep::f32 ? DType::f32 : activation_dtype(precision);
}

// The patch embedding is used as a Linear on channel-major tokens: [D, C, pt, ph, pw] → [D, C·pt·ph·pw].
void flatten_patch_weight(WanWeights& w) {
  if (w.patch.weight.defined() && w.patch.weight.rank() == 5)
    w.patch.weight = w.patch.weight.reshape({w.patch.weight.dim(0), w.patch.weight.numel() / w.patch.weight.dim(0)});
}

}  // namespace

DType activation_dtype(WanPrecision p) { return p == WanPrecision::bf16 ? DType::bf16 : DType::f32; }

CheckpointNames detect_names(const WeightStore& store) {
  constexpr std::string_view anchor = "patch_embedding.weight";
  std::set<std::string> prefixes;
  for (const std::string& n : store.names())
    if (n.size() >= anchor.size() && n.compare(n.size() - anchor.size(), anchor.size(), anchor) == 0) {
      const std::string prefix = n.substr(0, n.size() - anchor.size());
      if (prefix.empty() || prefix.back() == '.') prefixes.insert(prefix);
    }
  if (prefixes.empty())
    throw Error(StatusCode::bad_format, source_of(store) + ": not a Wan transformer checkpoint (no tensor '" +
                                            std::string(anchor) + "', under any prefix)");
  if (prefixes.size() > 1)
    throw Error(StatusCode::bad_format, source_of(store) + ": holds several models ('" + *prefixes.begin() +
                                            std::string(anchor) + "' and '" + *std::next(prefixes.begin()) +
                                            std::string(anchor) + "'); pass one transformer");
  CheckpointNames names;
  names.prefix = *prefixes.begin();
  const bool diffusers = store.contains(names.prefix + "condition_embedder.time_proj.weight");
  const bool original = store.contains(names.prefix + "time_projection.1.weight");
  if (diffusers == original)
    throw Error(StatusCode::bad_format,
                source_of(store) + ": cannot tell the Wan checkpoint layout: " +
                    (diffusers ? "both '" : "neither '") + names.prefix + "condition_embedder.time_proj.weight' (diffusers) " +
                    (diffusers ? "and '" : "nor '") + names.prefix + "time_projection.1.weight' (original) is present");
  names.layout = diffusers ? WanLayout::diffusers : WanLayout::original;
  return names;
}

std::string checkpoint_name(const CheckpointNames& names, std::string_view key, int64_t block) {
  const Entry& e = entry_for(key);
  return names.prefix + detail::layer_name(names.layout == WanLayout::diffusers ? e.diffusers : e.original, block);
}

void for_each_param(const WanConfig& config,
                    const std::function<void(std::string_view key, int64_t block, const Shape& shape, bool block_linear)>& fn) {
  for (const Entry& e : kTable) {
    if (!applies(e.when, config)) continue;
    const int64_t count = e.per_block() ? config.layers : 1;
    for (int64_t i = 0; i < count; ++i) fn(e.diffusers, e.per_block() ? i : -1, e.shape(config), e.linear && e.per_block());
  }
}

void check_weights(const WeightStore& store, const CheckpointNames& names, const WanConfig& config) {
  for (const Entry& e : kTable) {
    if (!applies(e.when, config)) continue;
    const int64_t count = e.per_block() ? config.layers : 1;
    for (int64_t i = 0; i < count; ++i)
      check_tensor(store, checkpoint_name(names, e.diffusers, e.per_block() ? i : -1), e.shape(config), config,
                   names.layout);
  }
}

WanWeights load_weights(const WeightStore& store, const CheckpointNames& names, const WanConfig& config,
                        WanPrecision precision, Device device, bool map, WanCheckpointInfo& info,
                        WanWeightFormat format) {
  check_weights(store, names, config);  // every tensor before reading any
  info.layout = names.layout;
  info.prefix = names.prefix;
  WanWeights w;
  w.blocks.resize(size_t(config.layers));
  std::set<std::string> used;
  for (const Entry& e : kTable) {
    if (!applies(e.when, config)) continue;
    const int64_t count = e.per_block() ? config.layers : 1;
    for (int64_t i = 0; i < count; ++i) {
      const std::string name = checkpoint_name(names, e.diffusers, e.per_block() ? i : -1);
      if (format == WanWeightFormat::stored && e.linear && e.per_block() &&
          keep_quantised(store, name, e.shape(config), config, used, *e.linear(w, i), info))
        continue;
      Tensor t = load_tensor(store, name, e.shape(config), dtype_for(e.keep, precision), config, map, used, info);
      *e.slot(w, i) = device == Device::cpu() ? std::move(t) : t.to(device);
    }
  }
  flatten_patch_weight(w);
  for (const std::string& n : store.names())
    if (!used.count(n)) info.ignored.push_back(n);
  return w;
}

WanWeights weights_on(const WanWeights& w, const WanConfig& config, Device device) {
  WanWeights out = w;  // shares every tensor; each slot is replaced by its copy below
  auto& src = const_cast<WanWeights&>(w);  // slot() hands out pointers; nothing is written through them
  auto on = [&](const Tensor& t) { return !t.defined() || t.device() == device ? t : t.to(device); };
  for (const Entry& e : kTable) {
    if (!applies(e.when, config)) continue;
    const int64_t count = e.per_block() ? config.layers : 1;
    for (int64_t i = 0; i < count; ++i) {
      if (e.linear && e.linear(src, i)->quantised)
        require(device == Device::cpu(), StatusCode::unsupported,
                "quantised weights (WanWeightFormat) run on the CPU only for now, not on " + device.str());
      *e.slot(out, i) = on(*e.slot(src, i));
      if (e.linear)
        for (SidePath& side : e.linear(out, i)->side_paths) side = {on(side.down), on(side.up)};
    }
  }
  return out;
}

// ---------------------------------------------------------------- LoRA targets

namespace {

// `name` matches `pattern` ("{}" = a block index); `underscores`: with every '.' of the pattern
// written '_' (Kohya's flattened names). Returns the block (-1 for a pattern without "{}").
std::optional<int64_t> match(std::string_view name, std::string pattern, bool underscores) {
  if (underscores) std::replace(pattern.begin(), pattern.end(), '.', '_');
  const size_t at = pattern.find("{}");
  if (at == std::string::npos) return name == pattern ? std::optional<int64_t>(-1) : std::nullopt;
  const std::string_view head = std::string_view(pattern).substr(0, at), tail = std::string_view(pattern).substr(at + 2);
  if (name.size() <= head.size() + tail.size() || name.substr(0, head.size()) != head ||
      name.substr(name.size() - tail.size()) != tail)
    return std::nullopt;
  const std::string_view digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(std::string(digits));
}

// The module pattern of a table name for `kind`: "blocks.{}.self_attn.q.weight" → "blocks.{}.self_attn.q".
std::optional<std::string> module_pattern(std::string_view name, ParamKind kind) {
  auto strip = [&](std::string_view end) -> std::optional<std::string> {
    if (name.size() > end.size() && name.substr(name.size() - end.size()) == end)
      return std::string(name.substr(0, name.size() - end.size()));
    return std::nullopt;
  };
  switch (kind) {
    case ParamKind::weight: return strip(".weight");
    case ParamKind::bias: return strip(".bias");
    case ParamKind::whole:
      if (strip(".weight") || strip(".bias")) return std::nullopt;
      return std::string(name);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ParamRef> find_param(std::string_view module, ParamKind kind, const WanConfig& config, std::string* why) {
  for (int i = 0; i < int(std::size(kTable)); ++i) {
    const Entry& e = kTable[i];
    for (const char* name : {e.diffusers, e.original}) {
      const std::optional<std::string> pattern = module_pattern(name, kind);
      if (!pattern) continue;
      for (bool underscores : {false, true}) {
        const std::optional<int64_t> block = match(module, *pattern, underscores);
        if (!block) continue;
        if (!applies(e.when, config)) {
          if (why) *why = e.when == When::image ? "the model has no image-context path" : "the model has no cross-attention norm";
          return std::nullopt;
        }
        if (*block >= config.layers) {
          if (why) *why = "block " + std::to_string(*block) + " of a model with " + std::to_string(config.layers);
          return std::nullopt;
        }
        return ParamRef{i, *block};
      }
    }
  }
  if (why) *why = "no such layer in a Wan transformer";
  return std::nullopt;
}

Tensor& param(WanWeights& w, ParamRef ref) { return *kTable[ref.entry].slot(w, ref.block); }
const Tensor& param(const WanWeights& w, ParamRef ref) { return *kTable[ref.entry].slot(const_cast<WanWeights&>(w), ref.block); }
Linear* linear_of(WanWeights& w, ParamRef ref) {
  const Entry& e = kTable[ref.entry];
  return e.linear ? e.linear(w, ref.block) : nullptr;
}
void quantize_block_linears(WanWeights& w, const WanConfig& config, quant::QType type) {
  for (const Entry& e : kTable) {
    if (!e.linear || !e.per_block() || !applies(e.when, config)) continue;
    for (int64_t i = 0; i < config.layers; ++i) {
      Linear& l = *e.linear(w, i);
      if (l.quantised || l.weight.dim(1) % quant::QMatrix::kBlock != 0) continue;
      require(l.weight.is_cpu(), StatusCode::internal, "quantize_block_linears: weights on " + l.weight.device().str());
      const std::vector<float> f = l.weight.to_floats();
      const quant::QType t = type == quant::QType::q4_k && l.weight.dim(1) % 256 != 0 ? quant::QType::q8_0 : type;
      l.quantised = std::make_shared<const quant::QMatrix>(
          quant::QMatrix::quantize(t, f.data(), l.weight.dim(0), l.weight.dim(1)));
      l.weight = Tensor();
    }
  }
}

std::optional<quant::QType> load_qtype(WanWeightFormat format) {
  switch (format) {
    case WanWeightFormat::q8_0: return quant::QType::q8_0;
    case WanWeightFormat::q4_0: return quant::QType::q4_0;
    case WanWeightFormat::q4_k: return quant::QType::q4_k;
    default: return std::nullopt;
  }
}

const Linear* linear_of(const WanWeights& w, ParamRef ref) { return linear_of(const_cast<WanWeights&>(w), ref); }
bool is_linear_weight(ParamRef ref) { return kTable[ref.entry].linear != nullptr; }
std::string param_name(ParamRef ref) { return detail::layer_name(kTable[ref.entry].diffusers, ref.block); }

WanWeights random_weights(const WanConfig& config, WanPrecision precision, uint64_t seed) {
  WanWeights w;
  w.blocks.resize(size_t(config.layers));
  uint64_t stream = 0;
  for (const Entry& e : kTable) {
    if (!applies(e.when, config)) continue;
    const int64_t count = e.per_block() ? config.layers : 1;
    for (int64_t i = 0; i < count; ++i) {
      const Shape shape = e.shape(config);
      std::vector<float> v(size_t(shape.numel()));
      const float fan_in = float(shape.numel() / std::max<int64_t>(shape[0], 1));
      const float amp = e.init == Init::matrix ? 1.0f / std::sqrt(fan_in) : e.init == Init::bias ? 0.05f : 0.2f;
      const float base = e.init == Init::norm ? 1.0f : 0.0f;
      const uint64_t key = seed * 0x9e3779b97f4a7c15ull + (++stream) * 0xbf58476d1ce4e5b9ull;
      parallel_for(int64_t(v.size()), 1 << 16, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          uint64_t z = key + uint64_t(j) * 0x94d049bb133111ebull;  // splitmix64 finaliser
          z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
          z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
          z ^= z >> 31;
          const float u = float(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;  // [-1, 1)
          v[size_t(j)] = base + amp * u;
        }
      });
      *e.slot(w, i) = Tensor::from_floats(shape, v, dtype_for(e.keep, precision));
    }
  }
  flatten_patch_weight(w);
  return w;
}

}  // namespace reel::wan
