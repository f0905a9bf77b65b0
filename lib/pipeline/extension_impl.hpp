// Internal: the pieces of reel::VideoSession (endless video) that sit on the pipeline's stages.
#pragma once
#include <cstdint>

#include "pipeline/pipeline_impl.hpp"
#include "reel/video_session.hpp"

namespace reel::pipeline {

// Philox stream of chunk k's noise: k·2³². Chunk 0 uses stream 0, as generate() does, and the
// sampler's own draws (ancestral samplers) follow on the next streams of the same chunk.
constexpr uint64_t chunk_stream(int chunk) { return uint64_t(chunk) << 32; }

// The window's fixed context: normalised latents [C, K, h, w] (f32, CPU) and how they enter.
struct WindowContext {
  Tensor latents;
  ContextConditioning mode = ContextConditioning::replacement;  // per_token or replacement
};

// Denoises one window [C, F, h, w] (rs's latent sizes) from noise Rng(r.seed, stream) while
// the first K latent frames are held to the context; returns the final latents with those
// frames set to the context exactly.
Tensor denoise_window(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
                      const WindowContext& context, uint64_t stream, Run& run);

}  // namespace reel::pipeline
