// Internal: the Wan VAE's modules as typed structs (weights only, immutable after load), the
// per-run feature cache, and the forward functions of each module.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "reel/backend.hpp"
#include "reel/ops.hpp"
#include "reel/vae.hpp"

namespace reel {

namespace vae {

// Causal 3-D conv (WanCausalConv3d): weight [out, in, kt, kh, kw], bias [out]. The time padding
// is 2·pad_t zero frames in front (fewer when cached frames stand in for them), none behind.
struct CausalConv {
  Tensor weight, bias;
  int pad_t = 0, pad_h = 0, pad_w = 0;
  int stride_t = 1;
  int slot = -1;  // feature-cache slot (convs that look back in time), else -1
};

// The feature cache of one decode or encode: per slot, the last input frames of that module
// (tensors on the backend's device). `first` is true while the chunk holding frame 0 runs.
struct FeatureCache {
  std::vector<Tensor> slots;
  bool first = true;
  void reset(size_t n) {
    slots.assign(n, Tensor());
    first = true;
  }
};

struct ResBlock {
  Tensor norm1, norm2;  // gamma [C] (WanRMS_norm)
  CausalConv conv1, conv2;
  bool has_shortcut = false;
  CausalConv shortcut;  // 1×1×1 when in != out
};

// Mid-block single-head attention over the pixels of each frame.
struct AttnBlock {
  Tensor norm;            // gamma [C]
  Tensor qkv_w, qkv_b;    // [3C, C, 1, 1, 1], [3C]
  Tensor proj_w, proj_b;  // [C, C, 1, 1, 1], [C]
};

enum class ResampleKind : uint8_t { none, up2d, up3d, down2d, down3d };

struct Resample {
  ResampleKind kind = ResampleKind::none;
  Tensor conv_w, conv_b;  // the per-frame Conv2d as a conv3d weight [out, in, 1, 3, 3]
  CausalConv time_conv;   // up3d: [2C, C, 3, 1, 1] causal; down3d: [C, C, 3, 1, 1] stride 2
  int slot = -1;          // up3d: time_conv's cache; down3d: the frames not yet consumed
};

// One resolution level: residual blocks, then the resample; Wan 2.2 adds a parameter-free
// shortcut around the whole level (AvgDown3D in the encoder, DupUp3D in the decoder).
struct Level {
  std::vector<ResBlock> res;
  Resample resample;
  bool shortcut = false;
  int shortcut_in = 0, shortcut_out = 0, factor_t = 1, factor_s = 1;
};

struct MidBlock {
  ResBlock res0;
  AttnBlock attn;
  ResBlock res1;
};

// WanEncoder3d or WanDecoder3d.
struct Coder {
  CausalConv conv_in;
  std::vector<Level> levels;  // encoder: before mid; decoder: after mid
  MidBlock mid;
  Tensor norm_out;
  CausalConv conv_out;
  int num_slots = 0;
};

}  // namespace vae

class VaeModel {
 public:
  VaeConfig config;
  Backend* backend = nullptr;
  DType compute = DType::f32;
  bool has_encoder = false, has_decoder = false;
  vae::Coder encoder, decoder;
  vae::CausalConv quant_conv, post_quant_conv;  // 1×1×1
};

namespace vae {

// ---- causal_conv.cpp
// Runs conv over x [1, C, T, H, W]. With a slot (conv.slot >= 0) the cached frames of the
// previous chunk stand in for the front padding, and the slot is updated (§2.4).
// Takes x by value: pass a temporary or std::move it, and its memory is free before the conv runs
// (only the cache-and-chunk concatenation and the output are live then).
Tensor causal_conv(Backend& be, const CausalConv& conv, Tensor x, FeatureCache* cache);
// x[:, :, begin:end] of a 5-D tensor.
Tensor frames_of(Backend& be, const Tensor& x, int64_t begin, int64_t end);
Tensor concat_frames(Backend& be, const Tensor& a, const Tensor& b);

// ---- vae_blocks.cpp
Tensor add_into(Backend& be, Tensor a, const Tensor& b);  // a + b, written into a
Tensor rms_norm_silu(Backend& be, const Tensor& x, const Tensor& gamma);  // SiLU(WanRMS_norm(x))
// The same, written over x (an activation no one else holds): one tensor less in memory.
Tensor rms_norm_silu_inplace(Backend& be, Tensor x, const Tensor& gamma);
Tensor res_block(Backend& be, const ResBlock& b, const Tensor& x, FeatureCache* cache);
Tensor attn_block(Backend& be, const AttnBlock& b, const Tensor& x);
Tensor mid_block(Backend& be, const MidBlock& b, const Tensor& x, FeatureCache* cache);
Tensor resample(Backend& be, const Resample& r, const Tensor& x, FeatureCache* cache);
Tensor avg_down_3d(Backend& be, const Tensor& x, int out_channels, int factor_t, int factor_s);
Tensor dup_up_3d(Backend& be, const Tensor& x, int out_channels, int factor_t, int factor_s, bool first_chunk);

// ---- vae_encoder.cpp / vae_decoder.cpp
// One encoder chunk: frames [1, in_channels, T, H, W] (T = 1 first, then 4) -> moments
// [1, 2z, T', h, w] (quant_conv applied).
Tensor encode_chunk(const VaeModel& m, const Tensor& x, FeatureCache& cache);
// The whole clip [1, in_channels, T, H, W] (T = 4k + 1) -> moments [1, 2z, k + 1, h, w].
Tensor encode_clip(const VaeModel& m, const Tensor& frames);
// One decoder chunk: latents [1, z, n, h, w] -> frames [1, out_channels, m, H', W'] on the
// device, unclamped; unpatchified to [1, 3, m, H, W] when `unpatchify`.
Tensor decode_chunk(const VaeModel& m, const Tensor& z, FeatureCache& cache, bool unpatchify = true);
// A device tensor [1, C, m, H, W] -> CPU f32 [C, m, H, W], clamped to [-1, 1] when `clamp`.
Tensor to_host_frames(const Tensor& x, bool clamp);

// ---- vae_weights.cpp
// One parameter: its names in both checkpoint layouts, its shape in the file, the shape the
// model uses, and the field it fills.
struct VaeParam {
  std::string diffusers, original;
  Shape file_shape, model_shape;
  Tensor* dst;
};
// Builds the module tree of model.config (levels, kinds, cache slots) and returns its
// parameter table, in module order.
std::vector<VaeParam> build_vae_table(VaeModel& model, bool encoder, bool decoder);
// Builds the module tree of `config` and fills it from `store`, through the one table of
// checkpoint names (diffusers and original Wan / ComfyUI).
void load_vae_weights(VaeModel& model, const WeightStore& store, const VaeLoadOptions& options);
// Reads the config from the tensor shapes (Wan 2.1 or 2.2 structure). `halves`, when given,
// says which of the encoder and decoder the weights hold (what the shapes could tell).
struct VaeHalves {
  bool encoder = false, decoder = false;
};
VaeConfig infer_vae_config(const WeightStore& store, VaeHalves* halves = nullptr);
// The config of the VAE at `vae_path` (a folder or a weights file): the weights' shapes, then
// every key of a diffusers config.json beside them (a folder's config.json) honoured, checked
// against the weights, or refused by name (bad_format for a contradiction, unsupported for a
// setting reel does not run). `notes` gets what the caller should know (no normalisation
// constants for an unknown z_dim).
VaeConfig read_vae_config(const std::filesystem::path& vae_path, std::vector<std::string>* notes = nullptr);

}  // namespace vae
}  // namespace reel
