// Latents ↔ tokens for a 3-D patch (pt, ph, pw), and the token grid positions RoPE uses.
//
// A latent video [C, F, H, W] (or a batch [B, C, F, H, W]) is cut into F/pt · H/ph · W/pw
// patches; token l = (f·H' + h)·W' + w (frame-major, then rows, then columns) holds the
// C·pt·ph·pw values of patch (f, h, w). Two feature orders are offered, because the Wan DiT uses
// both: the patch embedding (a Conv3d with kernel = stride = patch) flattens its weight
// [D, C, pt, ph, pw] channel-major, while proj_out writes patch-position-major, channel-minor.
// Both directions are pure copies (any dtype), so a round trip is exact.
//
//   reel::PatchGrid g = reel::PatchGrid::of(latents.shape(), {1, 2, 2});          // [B,C,F,H,W]
//   reel::Tensor tok = reel::patchify(latents, g, reel::PatchOrder::channel_major); // [B, L, C·4]
//   reel::Tensor back = reel::unpatchify(tok, g, reel::PatchOrder::channel_major);  // == latents
//   reel::Tensor pos = reel::patch_positions(g);                                    // [L, 3] i32
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "reel/status.hpp"
#include "reel/tensor.hpp"

namespace reel {

struct Patch {
  int64_t t = 1, h = 2, w = 2;
  int64_t volume() const { return t * h * w; }
};

// Feature order inside a token.
enum class PatchOrder : uint8_t {
  // feature = ((c·pt + dt)·ph + dy)·pw + dx: the flattening of a Conv3d weight [D, C, pt, ph, pw]
  // (Wan's patch embedding is then a Linear on the tokens).
  channel_major,
  // feature = ((dt·ph + dy)·pw + dx)·C + c: diffusers' proj_out / unpatchify order (wan.md §1.3f).
  channel_minor,
};

// The token grid of one latent shape.
struct PatchGrid {
  int64_t batch = 0;     // 0 for unbatched [C, F, H, W] latents
  int64_t channels = 0;  // C
  int64_t frames = 0, height = 0, width = 0;  // in patches: F/pt, H/ph, W/pw
  Patch patch;

  int64_t tokens() const { return frames * height * width; }
  int64_t features() const { return channels * patch.volume(); }
  bool batched() const { return batch > 0; }

  // The grid of latents [C, F, H, W] or [B, C, F, H, W]. Throws invalid_argument when the
  // rank is wrong, a dimension is not a positive multiple of the patch, or the patch is not positive.
  static PatchGrid of(const Shape& latents, Patch patch) {
    const int r = latents.rank();
    require(r == 4 || r == 5, StatusCode::invalid_argument,
            "patchify: latents " + latents.str() + " must be [C, F, H, W] or [B, C, F, H, W]");
    require(patch.t > 0 && patch.h > 0 && patch.w > 0, StatusCode::invalid_argument,
            "patchify: patch sizes must be positive");
    PatchGrid g;
    g.patch = patch;
    g.batch = r == 5 ? latents[0] : 0;
    g.channels = latents[r - 4];
    const int64_t f = latents[r - 3], h = latents[r - 2], w = latents[r - 1];
    const bool ok = f > 0 && h > 0 && w > 0 && f % patch.t == 0 && h % patch.h == 0 && w % patch.w == 0;
    require(ok && g.channels > 0 && (r == 4 || g.batch > 0), StatusCode::invalid_argument,
            "patchify: latents " + latents.str() + " are not a non-empty whole number of patches (" +
                std::to_string(patch.t) + ", " + std::to_string(patch.h) + ", " + std::to_string(patch.w) +
                ") in frames, height and width");
    g.frames = f / patch.t;
    g.height = h / patch.h;
    g.width = w / patch.w;
    return g;
  }

  Shape latent_shape() const {
    if (batched()) return {batch, channels, frames * patch.t, height * patch.h, width * patch.w};
    return {channels, frames * patch.t, height * patch.h, width * patch.w};
  }
  Shape token_shape() const {
    if (batched()) return {batch, tokens(), features()};
    return {tokens(), features()};
  }
};

namespace detail {

// Calls copy(latent_offset, token_offset, run) for every run of `run` = pw contiguous elements
// (element offsets within one batch item).
template <class F>
void for_each_patch_run(const PatchGrid& g, PatchOrder order, F&& copy) {
  const int64_t pt = g.patch.t, ph = g.patch.h, pw = g.patch.w, c_count = g.channels;
  const int64_t lh = g.height * ph, lw = g.width * pw, lf = g.frames * pt;
  for (int64_t f = 0; f < g.frames; ++f)
    for (int64_t h = 0; h < g.height; ++h)
      for (int64_t w = 0; w < g.width; ++w) {
        const int64_t token = (f * g.height + h) * g.width + w;
        for (int64_t c = 0; c < c_count; ++c)
          for (int64_t dt = 0; dt < pt; ++dt)
            for (int64_t dy = 0; dy < ph; ++dy) {
              const int64_t src = ((c * lf + f * pt + dt) * lh + h * ph + dy) * lw + w * pw;
              if (order == PatchOrder::channel_major) {
                copy(src, token * g.features() + ((c * pt + dt) * ph + dy) * pw, pw, int64_t(1));
              } else {
                // channel-minor: consecutive dx are c_count apart in the token
                copy(src, token * g.features() + ((dt * ph + dy) * pw) * c_count + c, pw, c_count);
              }
            }
      }
}

inline void check_host_tensor(const Tensor& t, const char* what) {
  require(t.defined(), StatusCode::invalid_argument, std::string(what) + ": the tensor is undefined");
  require(t.is_cpu(), StatusCode::invalid_argument,
          std::string(what) + ": needs a CPU tensor, got one on " + t.device().str());
}

}  // namespace detail

// latents [C, F, H, W] / [B, C, F, H, W] (CPU, any dtype) → tokens [L, K] / [B, L, K], K = C·pt·ph·pw.
inline Tensor patchify(const Tensor& latents, const PatchGrid& g, PatchOrder order) {
  detail::check_host_tensor(latents, "patchify");
  require(latents.shape() == g.latent_shape(), StatusCode::invalid_argument,
          "patchify: latents " + latents.shape().str() + " do not match the grid's " + g.latent_shape().str());
  Tensor tokens = Tensor::empty(g.token_shape(), latents.dtype());
  const size_t es = dtype_size(latents.dtype());
  const int64_t items = g.batched() ? g.batch : 1, per_item = g.tokens() * g.features();
  const auto* src = static_cast<const std::byte*>(latents.raw());
  auto* dst = static_cast<std::byte*>(tokens.raw());
  for (int64_t b = 0; b < items; ++b) {
    const std::byte* s = src + size_t(b * per_item) * es;
    std::byte* d = dst + size_t(b * per_item) * es;
    detail::for_each_patch_run(g, order, [&](int64_t lat, int64_t tok, int64_t run, int64_t step) {
      if (step == 1) {
        std::memcpy(d + size_t(tok) * es, s + size_t(lat) * es, size_t(run) * es);
        return;
      }
      for (int64_t i = 0; i < run; ++i) std::memcpy(d + size_t(tok + i * step) * es, s + size_t(lat + i) * es, es);
    });
  }
  return tokens;
}

// tokens [L, K] / [B, L, K] (CPU, any dtype) → latents of the grid's shape. The inverse of patchify.
inline Tensor unpatchify(const Tensor& tokens, const PatchGrid& g, PatchOrder order) {
  detail::check_host_tensor(tokens, "unpatchify");
  require(tokens.shape() == g.token_shape(), StatusCode::invalid_argument,
          "unpatchify: tokens " + tokens.shape().str() + " do not match the grid's " + g.token_shape().str());
  Tensor latents = Tensor::empty(g.latent_shape(), tokens.dtype());
  const size_t es = dtype_size(tokens.dtype());
  const int64_t items = g.batched() ? g.batch : 1, per_item = g.tokens() * g.features();
  const auto* src = static_cast<const std::byte*>(tokens.raw());
  auto* dst = static_cast<std::byte*>(latents.raw());
  for (int64_t b = 0; b < items; ++b) {
    const std::byte* s = src + size_t(b * per_item) * es;
    std::byte* d = dst + size_t(b * per_item) * es;
    detail::for_each_patch_run(g, order, [&](int64_t lat, int64_t tok, int64_t run, int64_t step) {
      if (step == 1) {
        std::memcpy(d + size_t(lat) * es, s + size_t(tok) * es, size_t(run) * es);
        return;
      }
      for (int64_t i = 0; i < run; ++i) std::memcpy(d + size_t(lat + i) * es, s + size_t(tok + i * step) * es, es);
    });
  }
  return latents;
}

// The (frame, row, column) patch coordinates of every token, [L, 3] i32, token order as above.
inline Tensor patch_positions(const PatchGrid& g) {
  Tensor pos = Tensor::empty({g.tokens(), 3}, DType::i32);
  int32_t* p = pos.data<int32_t>();
  for (int64_t f = 0; f < g.frames; ++f)
    for (int64_t h = 0; h < g.height; ++h)
      for (int64_t w = 0; w < g.width; ++w) {
        *p++ = int32_t(f);
        *p++ = int32_t(h);
        *p++ = int32_t(w);
      }
  return pos;
}

}  // namespace reel
