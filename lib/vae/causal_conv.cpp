// The Wan VAE's causal 3-D convolution with its feature cache (reference/wan.md §2.2, §2.4).
#include <array>

#include "vae/vae_model.hpp"

namespace reel::vae {

Tensor frames_of(Backend& be, const Tensor& x, int64_t begin, int64_t end) {
  if (begin == 0 && end == x.dim(2)) return x;
  return ops::slice(be, x, 2, begin, end);
}

Tensor concat_frames(Backend& be, const Tensor& a, const Tensor& b) { return ops::concat(be, {&a, &b}, 2); }

// Every cached conv keeps the last 2 frames of its input (CACHE_T = 2). A one-frame chunk keeps
// the previous chunk's last frame in front of it, so the next chunk still sees two frames; the
// first one-frame chunk keeps just itself (the zero padding makes up the rest).
Tensor causal_conv(Backend& be, const CausalConv& conv, Tensor x, FeatureCache* cache) {
  const int64_t frames = x.dim(2);
  const int front = 2 * conv.pad_t;
  Tensor input = x;
  if (front > 0) {
    Tensor previous;
    if (cache && conv.slot >= 0) {
      Tensor& slot = cache->slots.at(size_t(conv.slot));
      previous = slot;
      if (frames >= 2) {
        slot = frames_of(be, x, frames - 2, frames);
      } else if (previous.defined()) {
        Tensor last = frames_of(be, previous, previous.dim(2) - 1, previous.dim(2));
        slot = concat_frames(be, last, x);
      } else {
        slot = x;  // tensors are never written in place: sharing is safe
      }
    }
    const int64_t cached = previous.defined() ? previous.dim(2) : 0;
    const int64_t zeros = front - cached;
    std::vector<const Tensor*> parts;
    Tensor zero_frames;
    if (zeros > 0) {
      Shape s{x.dim(0), x.dim(1), zeros, x.dim(3), x.dim(4)};
      zero_frames = ops::full(be, s, x.dtype(), 0.0f);
      parts.push_back(&zero_frames);
    }
    if (cached > 0) {
      if (zeros < 0) previous = frames_of(be, previous, cached - front, cached);
      parts.push_back(&previous);
    }
    parts.push_back(&x);
    input = ops::concat(be, parts, 2);
    parts.clear();  // the parts are in `input` now: free them before the conv (when no one else holds them)
    x = Tensor();
    previous = Tensor();
    zero_frames = Tensor();
  }
  return ops::conv3d(be, input, conv.weight, conv.bias.defined() ? &conv.bias : nullptr, {conv.stride_t, 1, 1},
                     {0, conv.pad_h, conv.pad_w});
}

}  // namespace reel::vae
