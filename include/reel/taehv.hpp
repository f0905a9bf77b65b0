// Tiny video decoders of the TAEHV family (github.com/madebyollin/taehv): taew2_1 decodes the
// 16-channel latents of Wan 2.1 and Wan 2.2 A14B, taew2_2 the 48-channel latents of Wan 2.2
// TI2V-5B, in a fraction of the full VAE's time and memory. They take the normalised latents a
// sampler works on (no latents_mean / latents_std), which is what makes them previews.
//
//   auto dec = reel::TaehvDecoder::load("taew2_1.safetensors");
//   reel::Tensor rgb = dec.decode(*backend, latents);   // [16, F, h, w] → [4F−3, 3, 8h, 8w] in [0, 1]
//   auto quick = reel::TaehvDecoder::load("taew2_1.safetensors", {.time_upscale = false});  // F frames
//
// The files are safetensors with taehv.py's tensor names (its safetensors/ folder; pickled .pth
// files are refused, as everywhere in reel). The base decoder is read, its widths from the
// weights; the "super" decoders are refused by name.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>

#include "reel/backend.hpp"
#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

struct TaehvOptions {
  // taehv.py's decoder_time_upscale / decoder_space_upscale: off, the decoder skips its
  // temporal (4F − 3 → F frames) or spatial (×8 → ×1 before the pixel shuffle) upsampling,
  // taehv.py's cheaper preview settings, with the same weights.
  bool time_upscale = true;
  bool space_upscale = true;
  Device device = Device::cpu();  // where the weights live (f32)
};

class REEL_API TaehvDecoder {
 public:
  // Throws not_found, bad_format (not a TAEHV decoder: names the tensor), unsupported (a
  // "super" decoder, a pickle).
  static TaehvDecoder load(const std::filesystem::path& path, const TaehvOptions& options = {});

  int64_t latent_channels() const;  // 16 (taew2_1) or 48 (taew2_2)
  int spatial_factor() const;       // pixels per latent pixel: 8 or 16 (1 or 2 without space_upscale)
  int64_t frames_for_latents(int64_t latent_frames) const;  // 4F − 3, or F without time_upscale

  // latents [C, F, h, w] (any float dtype, any device) → frames [T, 3, H, W] f32 in [0, 1] on
  // the backend's device. Runs one latent frame at a time through the decoder's memory, so
  // memory is bounded by the frame size, not the clip length. Throws invalid_argument naming a
  // shape that does not fit.
  Tensor decode(Backend& backend, const Tensor& latents) const;

  struct Impl;
  explicit TaehvDecoder(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace reel
