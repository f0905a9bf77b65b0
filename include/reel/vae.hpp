// The Wan 2.1 / 2.2 causal video VAE (diffusers' AutoencoderKLWan): frames <-> latents.
//
// Decoding and encoding run chunk by chunk through the feature cache (reference/wan.md §2.4),
// so memory is bounded by one chunk and the frame size, never by the clip length. The decoder
// is also a streaming object: push latent frames as they come, get the new pixel frames back.
//
//   auto be = reel::make_cpu_backend();
//   reel::WanVae vae = reel::WanVae::load("Wan2.1-T2V-1.3B-Diffusers/vae", *be);  // or Wan2.1_VAE.safetensors
//   reel::Tensor z = reel::denormalize_latents(*be, latents, vae.config());   // pipeline latents -> VAE latents
//   reel::Tensor video = vae.decode(z);                  // [z, F, h, w] -> [3, 4(F-1)+1, 8h, 8w] in [-1, 1]
//   vae.decode(z, [&](const reel::Tensor& frames, int64_t first) { write(frames); });  // holds one chunk
//   reel::VaeDecodeStream stream = vae.decode_stream();   // "endless video"
//   reel::Tensor f0 = stream.push(z_frame0);              // [3, 1, H, W]
//   reel::Tensor f1 = stream.push(z_frame1);              // [3, 4, H, W]: the cache carries over
//   reel::Tensor mu = vae.encode(video);                  // posterior mean [z, F, h, w]
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "reel/backend.hpp"
#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

class WeightStore;

// AutoencoderKLWan's config (reference/wan.md §2.1). Variant decisions are made from it once,
// at load time.
struct REEL_API VaeConfig {
  int base_dim = 96;          // encoder width
  int decoder_base_dim = 96;  // decoder width (Wan 2.2: 256)
  int z_dim = 16;
  std::vector<int> dim_mult{1, 2, 4, 4};
  int num_res_blocks = 2;
  std::vector<bool> temporal_downsample{false, true, true};  // the decoder upsamples in reverse
  bool is_residual = false;  // Wan 2.2: residual down/up blocks with AvgDown3D / DupUp3D shortcuts
  int in_channels = 3;       // after patchify (Wan 2.2: 12)
  int out_channels = 3;      // before unpatchify (Wan 2.2: 12)
  int patch_size = 1;        // Wan 2.2: 2
  // Latent normalisation constants (§2.5), applied by the pipeline, not by the VAE. Empty when
  // the model is not a known Wan VAE (normalize_latents then throws).
  std::vector<float> latents_mean, latents_std;

  static VaeConfig wan21();  // the Wan 2.1 VAE (z 16, ×8 space)
  static VaeConfig wan22();  // the Wan 2.2 VAE (z 48, ×16 space)

  int spatial_factor() const;   // pixels per latent pixel: 2^(levels−1) · patch_size
  int temporal_factor() const;  // 2^(temporal downsamples): 4
  // Pixel frames decoded from n latent frames: 4(n − 1) + 1; and latent frames for T = 4k + 1 frames.
  int64_t frames_for_latents(int64_t latent_frames) const;
  int64_t latents_for_frames(int64_t frames) const;
  // Throws invalid_argument naming the field that diffusers would reject (or reel cannot run).
  void validate() const;
};

// Spatial tiling (diffusers' enable_tiling): decode overlapping tiles in latent space and
// blend them linearly. Lowers the activation peak for large frames; changes the numerics (the
// tiles do not see each other), so it is off by default. Sizes are in pixels, as in diffusers.
struct VaeTiling {
  bool enabled = false;
  int tile_height = 256, tile_width = 256;      // tile_sample_min_{height,width}
  int stride_height = 192, stride_width = 192;  // tile_sample_stride_{height,width}
};

struct VaeLoadOptions {
  // Default: the weights' shapes (Wan 2.1 or 2.2), then every key of a diffusers config.json in
  // the folder honoured or refused by name (load(); from_store() has only the shapes).
  std::optional<VaeConfig> config;
  DType compute = DType::f32;       // activations and weights; bf16/f16 need backend support
  bool encoder = true;              // load the encoder (decode-only users may skip it)
  bool decoder = true;
  // true: tensors stored in the compute dtype are used in place, in the memory-mapped file (no
  // copy, paged in lazily); the file must then not change while the weights live: truncating it
  // faults the process. false (default): private copies, immune to changes to the file.
  bool map_weights = false;
};

class VaeModel;  // the immutable weights, shared by the VAE and its streams

// A streaming decoder: its own feature cache over a shared, immutable model. A stream is not
// thread-safe; streams of one WanVae are independent (running them concurrently also needs a
// backend that may be used from several threads). After a push throws, call reset().
class REEL_API VaeDecodeStream {
 public:
  // Decodes the next latent frames, [z, n, h, w] or [1, z, n, h, w] with n >= 1 (any split of a
  // clip gives the same frames up to rounding). Returns the new frames as a CPU f32 tensor
  // [3, m, H, W] clamped to [-1, 1]: m = 4(n − 1) + 1 on the first push, 4n afterwards.
  Tensor push(const Tensor& latents);
  int64_t latent_frames() const { return latent_frames_; }  // pushed so far
  int64_t frames() const { return frames_; }                // returned so far
  // Drops the feature cache: the next push starts a new clip.
  void reset();

  VaeDecodeStream(VaeDecodeStream&&) noexcept;
  VaeDecodeStream& operator=(VaeDecodeStream&&) noexcept;
  ~VaeDecodeStream();

 private:
  friend class WanVae;
  struct State;
  VaeDecodeStream(std::shared_ptr<const VaeModel> model, const VaeTiling& tiling);
  std::shared_ptr<const VaeModel> model_;
  std::unique_ptr<State> state_;
  int64_t latent_frames_ = 0, frames_ = 0;
};

// Receives decoded frames: a CPU f32 tensor [3, m, H, W] in [-1, 1], and the index of its first
// frame in the clip. Valid only during the call.
using VaeFrameSink = std::function<void(const Tensor& frames, int64_t first_frame)>;

class REEL_API WanVae {
 public:
  // Reads a safetensors file, a folder (a diffusers `vae/` folder) or a sharded set, with
  // diffusers names or original Wan / ComfyUI names, stored as f32, bf16 or f16. Throws
  // not_found / bad_format naming the missing or mis-shaped tensor. `backend` must outlive
  // the VAE; weights live on its device.
  static WanVae load(const std::filesystem::path& path, Backend& backend, const VaeLoadOptions& options = {});
  static WanVae from_store(const WeightStore& store, Backend& backend, const VaeLoadOptions& options = {});

  const VaeConfig& config() const;
  bool has_encoder() const;
  bool has_decoder() const;

  // Tiling for decode() and decode_stream() (off by default).
  void set_tiling(const VaeTiling& tiling);
  const VaeTiling& tiling() const { return tiling_; }

  // Latents [z, F, h, w] (or batched [B, z, F, h, w]) -> CPU f32 frames [3, 4(F−1)+1, H, W]
  // (or [B, 3, ...]) clamped to [-1, 1]. One latent frame per chunk, as diffusers does.
  Tensor decode(const Tensor& latents) const;
  // The same frames, handed to `sink` chunk by chunk and never held together: peak memory
  // does not grow with F. `latent_frames_per_chunk` changes only rounding. Batch 1 only.
  void decode(const Tensor& latents, const VaeFrameSink& sink, int latent_frames_per_chunk = 1) const;
  VaeDecodeStream decode_stream() const;

  // Frames [3, T, H, W] (or [B, 3, T, H, W]) in [-1, 1], T = 4k + 1, H and W multiples of
  // spatial_factor(), any float dtype on any device -> the posterior mean [z, F, h, w] in the
  // compute dtype on the backend's device; encode_moments gives [2z, ...] (mean, then logvar
  // unclamped). Chunks of 1, then 4 frames, as diffusers does.
  Tensor encode(const Tensor& frames) const;
  Tensor encode_moments(const Tensor& frames) const;

  WanVae(WanVae&&) noexcept;
  WanVae& operator=(WanVae&&) noexcept;
  ~WanVae();

 private:
  explicit WanVae(std::shared_ptr<const VaeModel> model);
  std::shared_ptr<const VaeModel> model_;
  VaeTiling tiling_;
};

// The pipeline's per-channel latent normalisation (§2.5), on the backend's device:
// normalize: (μ − mean) · (1/std) (after encode); denormalize: z / (1/std) + mean (before
// decode; computed as z · std + mean, within an ulp). Latents [C, F, h, w] or [B, C, F, h, w]
// with C = z_dim, on the host or the backend's device (the result is on the backend's
// device); throws invalid_argument when the config has no constants.
REEL_API Tensor normalize_latents(Backend& backend, const Tensor& latents, const VaeConfig& config);
REEL_API Tensor denormalize_latents(Backend& backend, const Tensor& latents, const VaeConfig& config);

// Wan 2.2's pixel <-> channel rearrangement (§2.2): [3, T, H, W] <-> [3·p², T, H/p, W/p],
// channel c·p² + qw·p + qh. Exact; any rank-4 tensor (rank 5 with batch 1 also accepted).
REEL_API Tensor vae_patchify(Backend& backend, const Tensor& frames, int patch_size);
REEL_API Tensor vae_unpatchify(Backend& backend, const Tensor& x, int patch_size);

}  // namespace reel
