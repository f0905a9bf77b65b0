// The Wan VAE's one checkpoint-name table (diffusers names and original Wan / ComfyUI names,
// reference/wan.md §5.2), built by walking the module tree of a config, and the loader and
// config inference that use it. No other file knows checkpoint names.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "reel/weights.hpp"
#include "vae/vae_model.hpp"

namespace reel::vae {

namespace {

// A name in both layouts.
struct Names {
  std::string diffusers, original;
  Names operator+(const std::string& suffix) const { return {diffusers + suffix, original + suffix}; }
  Names sub(const std::string& d, const std::string& o) const { return {diffusers + d, original + o}; }
};

// Walks the module tree: assigns cache slots, records every parameter with its names and
// shape (and the shape the model uses it in), and points each at its field.
class TableBuilder {
 public:
  std::vector<VaeParam> params;

  void tensor(Tensor& dst, const Names& n, Shape file_shape, Shape model_shape) {
    params.push_back({n.diffusers, n.original, file_shape, model_shape, &dst});
  }
  void conv(CausalConv& c, const Names& n, int64_t out, int64_t in, int kt, int kh, int kw) {
    tensor(c.weight, n + ".weight", {out, in, kt, kh, kw}, {out, in, kt, kh, kw});
    tensor(c.bias, n + ".bias", {out}, {out});
  }
  void causal(CausalConv& c, const Names& n, int64_t out, int64_t in, int& slots) {
    conv(c, n, out, in, 3, 3, 3);
    c.pad_t = c.pad_h = c.pad_w = 1;
    c.slot = slots++;
  }
  void gamma(Tensor& g, const Names& n, int64_t c) { tensor(g, n, {c, 1, 1, 1}, {c}); }

  void res_block(ResBlock& b, const Names& n, int64_t in, int64_t out, int& slots) {
    gamma(b.norm1, n.sub(".norm1.gamma", ".residual.0.gamma"), in);
    causal(b.conv1, n.sub(".conv1", ".residual.2"), out, in, slots);
    gamma(b.norm2, n.sub(".norm2.gamma", ".residual.3.gamma"), out);
    causal(b.conv2, n.sub(".conv2", ".residual.6"), out, out, slots);
    b.has_shortcut = in != out;
    if (b.has_shortcut) conv(b.shortcut, n.sub(".conv_shortcut", ".shortcut"), out, in, 1, 1, 1);
  }

  void attn_block(AttnBlock& a, const Names& n, int64_t c) {
    tensor(a.norm, n + ".norm.gamma", {c, 1, 1}, {c});
    tensor(a.qkv_w, n + ".to_qkv.weight", {3 * c, c, 1, 1}, {3 * c, c, 1, 1, 1});
    tensor(a.qkv_b, n + ".to_qkv.bias", {3 * c}, {3 * c});
    tensor(a.proj_w, n + ".proj.weight", {c, c, 1, 1}, {c, c, 1, 1, 1});
    tensor(a.proj_b, n + ".proj.bias", {c}, {c});
  }

  void mid_block(MidBlock& m, const Names& side, int64_t c, int& slots) {
    res_block(m.res0, side.sub(".mid_block.resnets.0", ".middle.0"), c, c, slots);
    attn_block(m.attn, side.sub(".mid_block.attentions.0", ".middle.1"), c);
    res_block(m.res1, side.sub(".mid_block.resnets.1", ".middle.2"), c, c, slots);
  }

  // `out` is the spatial conv's output channels (upsample: upsample_out_dim; downsample: c).
  void resample(Resample& r, const Names& n, ResampleKind kind, int64_t c, int64_t out, int& slots) {
    r.kind = kind;
    if (kind == ResampleKind::none) return;
    tensor(r.conv_w, n + ".resample.1.weight", {out, c, 3, 3}, {out, c, 1, 3, 3});
    tensor(r.conv_b, n + ".resample.1.bias", {out}, {out});
    if (kind == ResampleKind::up3d) {
      conv(r.time_conv, n + ".time_conv", 2 * c, c, 3, 1, 1);
      r.time_conv.pad_t = 1;
      r.slot = r.time_conv.slot = slots++;
    } else if (kind == ResampleKind::down3d) {
      conv(r.time_conv, n + ".time_conv", c, c, 3, 1, 1);
      r.time_conv.stride_t = 2;
      r.slot = slots++;
    }
  }

  // WanEncoder3d: dims = base·[1, mult...]; Wan 2.1 numbers its blocks in one flat list.
  void encoder(Coder& e, const VaeConfig& cfg) {
    const Names side{"encoder", "encoder"};
    int slots = 0;
    std::vector<int64_t> dims{cfg.base_dim};
    for (int m : cfg.dim_mult) dims.push_back(int64_t(cfg.base_dim) * m);
    causal(e.conv_in, side.sub(".conv_in", ".conv1"), dims[0], cfg.in_channels, slots);
    const int levels = int(cfg.dim_mult.size()), nrb = cfg.num_res_blocks;
    e.levels.resize(size_t(levels));
    for (int i = 0; i < levels; ++i) {
      Level& level = e.levels[size_t(i)];
      const bool down = i != levels - 1;
      const bool temporal = down && cfg.temporal_downsample[size_t(i)];
      const std::string blk = std::to_string(i);
      int64_t in = dims[size_t(i)];
      const int64_t out = dims[size_t(i) + 1];
      // Wan 2.2: nested (diffusers resnets.j / downsampler; original downsamples.i.downsamples.j,
      // the resample at j = nrb). Wan 2.1: one flat list in both layouts, nrb resnets then the
      // resample per level.
      auto name = [&](int j, const std::string& diffusers_nested) {
        const std::string flat = std::to_string(i * (nrb + 1) + j);
        return cfg.is_residual ? side.sub(".down_blocks." + blk + diffusers_nested,
                                          ".downsamples." + blk + ".downsamples." + std::to_string(j))
                               : side.sub(".down_blocks." + flat, ".downsamples." + flat);
      };
      level.res.resize(size_t(nrb));
      for (int j = 0; j < nrb; ++j) {
        res_block(level.res[size_t(j)], name(j, ".resnets." + std::to_string(j)), in, out, slots);
        in = out;
      }
      if (down)
        resample(level.resample, name(nrb, ".downsampler"), temporal ? ResampleKind::down3d : ResampleKind::down2d,
                 out, out, slots);
      if (cfg.is_residual) {
        level.shortcut = true;
        level.shortcut_in = int(dims[size_t(i)]);
        level.shortcut_out = int(out);
        level.factor_t = temporal ? 2 : 1;
        level.factor_s = down ? 2 : 1;
      }
    }
    const int64_t top = dims.back();
    mid_block(e.mid, side, top, slots);
    gamma(e.norm_out, side.sub(".norm_out.gamma", ".head.0.gamma"), top);
    causal(e.conv_out, side.sub(".conv_out", ".head.2"), 2 * int64_t(cfg.z_dim), top, slots);
    e.num_slots = slots;
  }

  // WanDecoder3d: dims = dec_base·[mult[-1], reversed(mult)...]; Wan 2.1's up blocks after the
  // first take half the channels (its upsamplers halve them) and number a flat original list.
  void decoder(Coder& d, const VaeConfig& cfg) {
    const Names side{"decoder", "decoder"};
    int slots = 0;
    const int levels = int(cfg.dim_mult.size()), nrb = cfg.num_res_blocks;
    std::vector<int64_t> dims{int64_t(cfg.decoder_base_dim) * cfg.dim_mult.back()};
    for (int i = levels - 1; i >= 0; --i) dims.push_back(int64_t(cfg.decoder_base_dim) * cfg.dim_mult[size_t(i)]);
    causal(d.conv_in, side.sub(".conv_in", ".conv1"), dims[0], cfg.z_dim, slots);
    mid_block(d.mid, side, dims[0], slots);
    d.levels.resize(size_t(levels));
    for (int i = 0; i < levels; ++i) {
      Level& level = d.levels[size_t(i)];
      const bool up = i != levels - 1;
      const bool temporal = up && cfg.temporal_downsample[size_t(levels - 2 - i)];
      const std::string blk = std::to_string(i);
      int64_t in = dims[size_t(i)];
      if (i > 0 && !cfg.is_residual) in /= 2;
      const int64_t out = dims[size_t(i) + 1];
      const int64_t block_in = in;
      level.res.resize(size_t(nrb + 1));
      for (int j = 0; j <= nrb; ++j) {
        const std::string o = cfg.is_residual ? ".upsamples." + blk + ".upsamples." + std::to_string(j)
                                              : ".upsamples." + std::to_string(i * (nrb + 2) + j);
        res_block(level.res[size_t(j)], side.sub(".up_blocks." + blk + ".resnets." + std::to_string(j), o), in, out,
                  slots);
        in = out;
      }
      if (up) {
        const Names n = cfg.is_residual ? side.sub(".up_blocks." + blk + ".upsampler",
                                                   ".upsamples." + blk + ".upsamples." + std::to_string(nrb + 1))
                                        : side.sub(".up_blocks." + blk + ".upsamplers.0",
                                                   ".upsamples." + std::to_string(i * (nrb + 2) + nrb + 1));
        resample(level.resample, n, temporal ? ResampleKind::up3d : ResampleKind::up2d, out,
                 cfg.is_residual ? out : out / 2, slots);
        if (cfg.is_residual) {
          level.shortcut = true;
          level.shortcut_in = int(block_in);
          level.shortcut_out = int(out);
          level.factor_t = temporal ? 2 : 1;
          level.factor_s = 2;
        }
      }
    }
    const int64_t last = dims.back();
    gamma(d.norm_out, side.sub(".norm_out.gamma", ".head.0.gamma"), last);
    causal(d.conv_out, side.sub(".conv_out", ".head.2"), cfg.out_channels, last, slots);
    d.num_slots = slots;
  }
};

}  // namespace

std::vector<VaeParam> build_vae_table(VaeModel& model, bool encoder, bool decoder) {
  const VaeConfig& cfg = model.config;
  TableBuilder t;
  const int64_t z = cfg.z_dim;
  if (encoder) {
    t.encoder(model.encoder, cfg);
    t.conv(model.quant_conv, {"quant_conv", "conv1"}, 2 * z, 2 * z, 1, 1, 1);
  }
  if (decoder) {
    t.conv(model.post_quant_conv, {"post_quant_conv", "conv2"}, z, z, 1, 1, 1);
    t.decoder(model.decoder, cfg);
  }
  return std::move(t.params);
}

namespace {

enum class Layout { diffusers, original };

struct Detected {
  Layout layout;
  std::string prefix;  // e.g. "vae." or "first_stage_model." in combined checkpoints
  std::string name(const std::string& diffusers, const std::string& original) const {
    return prefix + (layout == Layout::diffusers ? diffusers : original);
  }
};

std::string files_of(const WeightStore& store) {
  std::string s;
  for (const auto& f : store.files()) s += (s.empty() ? "" : ", ") + f.filename().string();
  return s.empty() ? "(no file)" : s;
}

Detected detect_layout(const WeightStore& store) {
  static const std::pair<const char*, Layout> probes[] = {{"decoder.conv_in.weight", Layout::diffusers},
                                                          {"decoder.conv1.weight", Layout::original},
                                                          {"encoder.conv_in.weight", Layout::diffusers},
                                                          {"encoder.conv1.weight", Layout::original}};
  for (const auto& [probe, layout] : probes)
    if (store.contains(probe)) return {layout, ""};
  for (const std::string& n : store.names())
    for (const auto& [probe, layout] : probes) {
      const std::string suffix = std::string(".") + probe;
      if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        return {layout, n.substr(0, n.size() - std::strlen(probe))};
    }
  throw Error(StatusCode::bad_format, "Wan VAE weights " + files_of(store) +
                                          ": not a Wan VAE checkpoint (found neither decoder.conv_in.weight "
                                          "(diffusers names) nor decoder.conv1.weight (original Wan / ComfyUI names))");
}

int64_t dim_of(const WeightStore& store, const std::string& name, int i, int rank) {
  const Shape& s = store.info(name).shape;
  if (s.rank() != rank)
    throw Error(StatusCode::bad_format, "Wan VAE weights " + files_of(store) + ": tensor '" + name + "' has shape " +
                                            s.str() + ", expected rank " + std::to_string(rank));
  return s[i];
}

}  // namespace

namespace {

// The settings that decide the tensor names and shapes, for messages.
std::string config_text(const VaeConfig& c) {
  std::string mult;
  for (int m : c.dim_mult) mult += (mult.empty() ? "" : ",") + std::to_string(m);
  return "z_dim " + std::to_string(c.z_dim) + ", base_dim " + std::to_string(c.base_dim) + ", decoder_base_dim " +
         std::to_string(c.decoder_base_dim) + ", dim_mult [" + mult + "], num_res_blocks " +
         std::to_string(c.num_res_blocks) + ", is_residual " + (c.is_residual ? "true" : "false");
}

}  // namespace

VaeConfig infer_vae_config(const WeightStore& store, VaeHalves* halves) {
  const Detected d = detect_layout(store);
  const bool has_decoder = store.contains(d.name("decoder.conv_in.weight", "decoder.conv1.weight"));
  const bool has_encoder = store.contains(d.name("encoder.conv_in.weight", "encoder.conv1.weight"));
  if (halves) *halves = {has_encoder, has_decoder};
  const bool residual =
      store.contains(d.name("decoder.up_blocks.0.upsampler.resample.1.weight",
                            "decoder.upsamples.0.upsamples.0.residual.0.gamma")) ||
      store.contains(d.name("encoder.down_blocks.0.resnets.0.norm1.gamma",
                            "encoder.downsamples.0.downsamples.0.residual.0.gamma"));
  VaeConfig cfg = residual ? VaeConfig::wan22() : VaeConfig::wan21();
  const int preset_z = cfg.z_dim;
  if (has_decoder) {
    const std::string out = d.name("decoder.conv_out.weight", "decoder.head.2.weight");
    cfg.out_channels = int(dim_of(store, out, 0, 5));
    cfg.decoder_base_dim = int(dim_of(store, out, 1, 5));
    cfg.z_dim = int(dim_of(store, d.name("decoder.conv_in.weight", "decoder.conv1.weight"), 1, 5));
  }
  if (has_encoder) {
    const std::string in = d.name("encoder.conv_in.weight", "encoder.conv1.weight");
    cfg.base_dim = int(dim_of(store, in, 0, 5));
    cfg.in_channels = int(dim_of(store, in, 1, 5));
    if (!has_decoder) cfg.z_dim = int(dim_of(store, d.name("encoder.conv_out.weight", "encoder.head.2.weight"), 0, 5) / 2);
  }
  if (!has_decoder) cfg.out_channels = cfg.in_channels;
  if (!has_encoder) cfg.in_channels = cfg.out_channels;
  const int pixels = has_decoder ? cfg.out_channels : cfg.in_channels;
  cfg.patch_size = std::max(1, int(std::lround(std::sqrt(pixels / 3.0))));
  if (3 * cfg.patch_size * cfg.patch_size != pixels)
    throw Error(StatusCode::bad_format, "Wan VAE weights " + files_of(store) + ": " + std::to_string(pixels) +
                                            " image channels is not 3·p² for a patch size p");
  if (cfg.z_dim != preset_z) cfg.latents_mean.clear(), cfg.latents_std.clear();
  cfg.validate();
  return cfg;
}

void load_vae_weights(VaeModel& model, const WeightStore& store, const VaeLoadOptions& options) {
  const Detected d = detect_layout(store);
  const char* layout = d.layout == Layout::diffusers ? "diffusers names" : "original Wan / ComfyUI names";
  std::vector<VaeParam> table = build_vae_table(model, options.encoder, options.decoder);
  const Device device = model.backend->device();
  for (const VaeParam& p : table) {
    const std::string name = d.name(p.diffusers, p.original);
    if (!store.contains(name)) {
      std::string hint;
      if (name.find("encoder.") != std::string::npos || p.diffusers.rfind("quant_conv", 0) == 0)
        hint = "; a decoder-only file loads with VaeLoadOptions::encoder = false";
      throw Error(StatusCode::not_found, "Wan VAE weights " + files_of(store) + ": missing tensor '" + name + "' (" +
                                             layout + ", config " + config_text(model.config) + ")" + hint);
    }
    const TensorInfo& info = store.info(name);
    if (!(info.shape == p.file_shape))
      throw Error(StatusCode::bad_format, "Wan VAE weights " + files_of(store) + ": tensor '" + name + "' has shape " +
                                              info.shape.str() + ", expected " + p.file_shape.str() +
                                              " for this config (" + config_text(model.config) + ")");
    const Tensor t = store.load_weight(name, model.compute, options.map_weights && device.type == DeviceType::cpu);
    *p.dst = t.to(device).reshape(p.model_shape);
  }
}

}  // namespace reel::vae
