// The CLIP image encoder that Wan 2.1 I2V conditions on, as diffusers' WanImageToVideoPipeline
// runs it (encode_image): transformers' CLIPImageProcessor (resize the shortest side with PIL
// bicubic, center crop, rescale, normalize), then CLIPVisionModel's hidden_states[-2], the
// output of the penultimate encoder layer (ViT-H/14: [257, 1280]). That tensor is the
// pipeline's image_context. Details: docs/image_encoder.md.
//
//   auto proc = reel::ClipImageProcessor::open("Wan2.1-I2V-14B-480P-Diffusers/image_processor");
//   auto clip = reel::ClipVisionEncoder::load("Wan2.1-I2V-14B-480P-Diffusers/image_encoder");
//   auto cpu = reel::make_cpu_backend();
//   reel::Image first = reel::read_image("cat.jpg");
//   reel::Tensor features = clip.encode(*cpu, proc, {&first, 1});   // [1, 257, 1280] f32
//   request.image_context = features;                                // or let the pipeline do it
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "reel/backend.hpp"
#include "reel/export.hpp"
#include "reel/tensor.hpp"
#include "reel/video_io.hpp"

namespace reel {

// ------------------------------------------------------------------------- preprocessing

enum class ClipResample : uint8_t {
  bicubic,  // PIL BICUBIC (resample 3): CLIP's
  lanczos,  // PIL LANCZOS (resample 1)
};

// preprocessor_config.json of a CLIPImageProcessor. The defaults are CLIP's, which are what the
// Wan 2.1 I2V repositories ship in image_processor/.
struct ClipImageProcessorConfig {
  bool do_resize = true;
  int shortest_edge = 224;  // > 0: the shortest side becomes this, the other int(size · long / short)
  int resize_width = 0;     // used when shortest_edge is 0: resize to exactly this size
  int resize_height = 0;
  ClipResample resample = ClipResample::bicubic;
  bool do_center_crop = true;
  int crop_width = 224, crop_height = 224;  // crops (zero-pads) the centre, as transformers does
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};

  // invalid_argument naming the field that is out of range.
  void validate() const;
};

// Image → pixel values, bit for bit what transformers' CLIPImageProcessor (its PIL backend)
// computes: PIL resize on uint8, center crop, × rescale_factor in double rounded to float,
// (x − mean) / std in float. Immutable; safe to share between threads.
class REEL_API ClipImageProcessor {
 public:
  ClipImageProcessor() = default;  // CLIP's defaults (224, bicubic, OpenAI mean/std)
  explicit ClipImageProcessor(const ClipImageProcessorConfig& config);
  // `path`: a preprocessor_config.json, or a folder holding one (diffusers image_processor/).
  // Throws not_found, bad_format (malformed JSON or values), unsupported (a resample filter or
  // size rule reel does not implement, named).
  static ClipImageProcessor open(const std::filesystem::path& path);

  const ClipImageProcessorConfig& config() const { return config_; }
  // The size after the resize step for an image of this size (unchanged without do_resize).
  std::array<int, 2> resized_size(int width, int height) const;  // {width, height}
  // The resize step alone (uint8, as PIL returns it).
  Image resize(const Image& image) const;
  // [3, H, W] f32: the processor's pixel_values for one image.
  Tensor preprocess(const Image& image) const;

 private:
  ClipImageProcessorConfig config_;
};

// ------------------------------------------------------------------------------- encoder

enum class ClipActivation : uint8_t {
  gelu,        // exact (erf) GELU: "gelu" (OpenCLIP ViT-H/14, Wan's)
  quick_gelu,  // x · sigmoid(1.702 x): "quick_gelu" (OpenAI CLIP)
};

// CLIPVisionConfig: from config.json, checked against the weights' shapes.
struct ClipVisionConfig {
  int64_t hidden_size = 0;
  int64_t num_layers = 0;  // encoder layers in the checkpoint (hidden_states[-2] runs num_layers − 1)
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
  float layer_norm_eps = 1e-5f;
  ClipActivation activation = ClipActivation::gelu;

  int64_t head_dim() const { return hidden_size / num_heads; }
  int64_t grid() const { return image_size / patch_size; }
  int64_t tokens() const { return grid() * grid() + 1; }  // patches + the class token
};

struct ClipVisionLoadOptions {
  // f32 (diffusers' Wan I2V example loads the image encoder in float32) or bf16. The file may
  // hold f32, bf16 or f16.
  DType dtype = DType::f32;
  Device device = Device::cpu();
  // true: tensors stored in the compute dtype are used in place, in the memory-mapped file (no
  // copy, paged in lazily); the file must then not change while the weights live: truncating it
  // faults the process. false (default): private copies, immune to changes to the file.
  bool map_weights = false;
};

// Weights immutable after load; forward/encode may run concurrently on different backends.
class REEL_API ClipVisionEncoder {
 public:
  // `path`: a folder (transformers CLIPVisionModel / CLIPVisionModelWithProjection / CLIPModel:
  // config.json + model.safetensors or a sharded index), or a safetensors file (config.json
  // beside it is read; without one only OpenCLIP ViT-H/14, Wan's encoder, is recognised from
  // its shapes). Names with or without a prefix (`vision_model.`). Only what hidden_states[-2]
  // needs is loaded: the last layer, post_layernorm and the projection are skipped (ignored()).
  // Throws not_found / bad_format naming the file and tensor, unsupported (activation).
  static ClipVisionEncoder load(const std::filesystem::path& path, const ClipVisionLoadOptions& options = {});
  // The same checks as load, without reading tensor data (reel-cli inspect).
  static ClipVisionConfig read_config(const std::filesystem::path& path);

  const ClipVisionConfig& config() const;
  DType dtype() const;
  Device device() const;
  // Checkpoint tensors that were not loaded (the last layer, post_layernorm, visual_projection, ...).
  const std::vector<std::string>& ignored() const;

  // hidden_states[-2] for pixel values [B, 3, image_size, image_size] (f32, any device):
  // [B, tokens, hidden_size] f32 on the backend's device. The residual stream is f32 in both
  // dtypes; in bf16 the GEMM and attention inputs are bf16.
  Tensor forward(Backend& be, const Tensor& pixels) const;
  // preprocess every image, then forward: [images.size(), tokens, hidden_size] f32. The
  // processor must produce image_size × image_size pixels (invalid_argument otherwise).
  Tensor encode(Backend& be, const ClipImageProcessor& processor, std::span<const Image> images) const;

  struct Impl;  // lib/clip/clip_model.hpp
  explicit ClipVisionEncoder(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace reel
