// Internal: the umT5 encoder's weights as typed fields, and the loader that fills them from a
// checkpoint (lib/text/umt5_weights.cpp, the one place that knows checkpoint names).
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "reel/text_encoder.hpp"
#include "reel/weights.hpp"

namespace reel::text {

struct Umt5Layer {
  Tensor attn_norm;  // [D] f32
  Tensor q, k, v;    // [inner, D]
  Tensor o;          // [D, inner]
  Tensor rel_bias;   // [num_buckets, H] f32, always on the CPU (the bias matrix is built there)
  Tensor ffn_norm;   // [D] f32
  Tensor wi_gate;    // [F, D] (GELU branch, transformers wi_0)
  Tensor wi_up;      // [F, D] (linear branch, wi_1)
  Tensor wo;         // [D, F] (f32 when the encoder runs in f16)
};

struct Umt5Weights {
  Umt5Config config;
  DType dtype = DType::bf16;
  Device device;
  Tensor embedding;  // [V, D], always on the CPU (rows are gathered there)
  std::vector<Umt5Layer> layers;
  Tensor final_norm;  // [D] f32
};

// Values of a transformers config.json that the shapes cannot tell.
struct Umt5ConfigHints {
  std::optional<int64_t> num_heads, d_kv, d_model, d_ff, num_layers, num_buckets;
  std::optional<int64_t> max_distance;
  std::optional<float> eps;
};

// Reads a transformers UMT5/T5 config.json. Throws bad_format for malformed JSON and
// unsupported for a feed-forward other than gated GELU (tanh).
Umt5ConfigHints read_umt5_config_json(const std::filesystem::path& path);
// The config.json Umt5Encoder::load reads for `path`: <folder>/config.json when `path` is a
// folder holding one, else none (empty).
std::filesystem::path umt5_config_json_for(const std::filesystem::path& path);

// Shape of a checkpoint tensor, or null when there is none of that name.
using ShapeLookup = std::function<const Shape*(const std::string&)>;

// Checks every tensor's shape and returns the config (see reel::umt5_config_from_shapes).
Umt5Config umt5_config_from_lookup(const std::vector<std::string>& names, const ShapeLookup& shape_of,
                                   const Umt5ConfigHints& hints);

Umt5Weights load_umt5_weights(const WeightStore& store, const Umt5LoadOptions& options,
                              const Umt5ConfigHints& hints);

}  // namespace reel::text

namespace reel {
struct Umt5Encoder::Impl {
  text::Umt5Weights w;
};
}  // namespace reel
