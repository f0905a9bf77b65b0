// Internal: the CLIP vision encoder's weights as typed fields, its config.json reader and the
// loader (lib/clip/clip_weights.cpp, the one place that knows checkpoint names).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "reel/image_encoder.hpp"
#include "reel/weights.hpp"

namespace reel::clip {

struct Affine {  // weight and bias of a linear layer or a LayerNorm
  Tensor weight, bias;
};

struct ClipLayer {
  Affine norm1;            // layer_norm1, f32
  Affine q, k, v, out;     // self_attn.{q,k,v,out}_proj: [hidden, hidden], bias [hidden]
  Affine norm2;            // layer_norm2, f32
  Affine fc1;              // mlp.fc1: [intermediate, hidden]
  Affine fc2;              // mlp.fc2: [hidden, intermediate]
};

struct ClipWeights {
  ClipVisionConfig config;
  DType dtype = DType::f32;
  Device device;
  Tensor patch;            // [hidden, C·p·p]: the patch Conv2d as a linear layer over (c, y, x)
  Tensor class_embedding;  // [1, 1, hidden] f32
  Tensor positions;        // [1, tokens, hidden] f32
  Affine pre_norm;         // pre_layrnorm, f32
  std::vector<ClipLayer> layers;  // the first num_layers − 1: what hidden_states[-2] needs
  std::vector<std::string> ignored;
};

// What config.json says (a CLIPVisionConfig, or a CLIPConfig's "vision_config").
struct ClipConfigJson {
  std::optional<int64_t> hidden_size, num_layers, num_heads, intermediate_size, image_size, patch_size, num_channels;
  std::optional<float> layer_norm_eps;
  std::optional<ClipActivation> activation;
};
// Throws bad_format (malformed JSON, bad values) and unsupported (hidden_act), naming the path.
ClipConfigJson read_clip_config_json(const std::filesystem::path& path);

// The config from the shapes and config.json, every needed tensor's shape checked; reads no
// tensor data. Throws as load_clip_weights.
ClipVisionConfig check_clip_checkpoint(const WeightStore& store, const std::optional<ClipConfigJson>& json,
                                       const std::string& where);

// Checks every needed tensor's shape against the architecture and config.json (or, without
// one, the known OpenCLIP ViT-H/14) and loads them. `where` labels error messages.
ClipWeights load_clip_weights(const WeightStore& store, const std::optional<ClipConfigJson>& json,
                              const ClipVisionLoadOptions& options, const std::string& where);

}  // namespace reel::clip

namespace reel {
struct ClipVisionEncoder::Impl {
  clip::ClipWeights w;
};
}  // namespace reel
