// The decode stage: de-normalised latents through the VAE one latent frame per chunk (memory
// bounded by one chunk), each chunk's frames written straight into the RGB24 clip (and the f32
// frames when asked), with progress and cancel between chunks.
#include <chrono>

#include "parallel.hpp"
#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

void store_frames(const Tensor& decoded, uint8_t* rgb, float* floats) {
  const int64_t m = decoded.dim(1), plane = decoded.dim(2) * decoded.dim(3);
  const float* src = decoded.data<float>();
  parallel_for(m * plane, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t c = 0; c < 3; ++c) {
        const float v = src[c * m * plane + i];
        rgb[i * 3 + c] = pixel_to_u8(v, PixelRange::minus_one_to_one);
        if (floats) {  // diffusers' postprocess: (x / 2 + 0.5).clamp(0, 1) in f32
          const float y = v / 2.0f + 0.5f;
          floats[i * 3 + c] = y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
        }
      }
  });
}

void decode_latents(const Pipeline::Impl& p, const Tensor& latents, bool keep_float, Run& run, GenerateResult& out) {
  Backend& be = *p.backend;
  const VaeConfig& vc = p.vae->config();
  // The latents cross to the device once (they come from the sampler, on the host).
  const Tensor on_device = latents.to(be.device());
  const Tensor z = denormalize_latents(be, on_device, vc);  // wan.md §2.5: z / (1/std) + mean
  const int64_t latent_frames = latents.dim(1);
  const int64_t frames = vc.frames_for_latents(latent_frames);
  const int64_t height = latents.dim(2) * vc.spatial_factor(), width = latents.dim(3) * vc.spatial_factor();
  out.video = Video::blank(int(frames), int(height), int(width), p.info.defaults.fps);
  if (keep_float) out.frames = Tensor::empty({frames, height, width, 3}, DType::f32);

  run.begin_stage("decode", int(latent_frames));
  int chunk = 0;
  auto last = std::chrono::steady_clock::now();
  const int64_t plane = height * width;
  p.vae->decode(
      z,
      [&](const Tensor& chunk_frames, int64_t first) {
        // chunk_frames: CPU f32 [3, m, H, W] in [-1, 1]
        require_finite(chunk_frames, "the VAE decoder's output (from frame " + std::to_string(first) + ")");
        store_frames(chunk_frames, out.video.frame(int(first)),
                     keep_float ? out.frames.data<float>() + first * plane * 3 : nullptr);
        const auto now = std::chrono::steady_clock::now();
        run.step_done(++chunk, std::chrono::duration<double>(now - last).count());  // may cancel
        last = now;
      },
      1);
  run.end_stage();
}

}  // namespace reel::pipeline
