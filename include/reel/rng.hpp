// Rng: explicit, counter-based random numbers (Philox4x32-10), the same on every thread count.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) is keyed
// by the 64-bit seed (key = {seed_lo, seed_hi}). Every fill_* call uses one *stream* and then
// advances it; element i of a fill reads only the block at counter
//   {block_lo, block_hi, stream_lo, stream_hi}
// so a value depends only on (seed, stream, i): not on threads, chunking or the backend.
//
// Normal transform (Box–Muller on pairs): block b gives elements 2b and 2b+1. From its output
// words w0..w3: u1 = ((w0·2³² + w1) >> 11) + 1) · 2⁻⁵³ ∈ (0, 1], u2 = ((w2·2³² + w3) >> 11) · 2⁻⁵³
// ∈ [0, 1); r = √(−2 ln u1), θ = 2π·u2; element 2b = r·cos θ, element 2b+1 = r·sin θ, computed
// in double and rounded to f32.
// Uniform transform: element i takes word i mod 4 of block i/4: (w >> 8) · 2⁻²⁴ ∈ [0, 1).
//
//   reel::Rng rng(42);
//   reel::Tensor noise = rng.normal({1, 16, 21, 60, 104});   // stream 0
//   reel::Tensor more = rng.normal({4});                      // stream 1: fresh numbers
//   reel::Rng again(42);                                      // same seed: same `noise`
#pragma once
#include <array>
#include <cstdint>
#include <span>

#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

class REEL_API Rng {
 public:
  using Block = std::array<uint32_t, 4>;
  using Key = std::array<uint32_t, 2>;

  explicit Rng(uint64_t seed, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }  // the stream the next fill uses
  void set_stream(uint64_t stream) { stream_ = stream; }

  // Standard normal values; uses one stream.
  void fill_normal(std::span<float> out);
  Tensor normal(const Shape& shape);  // f32, CPU
  // Uniform values in [0, 1); uses one stream.
  void fill_uniform(std::span<float> out);

  // The raw generator: Philox4x32 with 10 rounds.
  static Block philox4x32_10(Block counter, Key key);
  // Element `index` of fill_normal on `stream`, without an Rng object.
  static float normal_at(uint64_t seed, uint64_t stream, uint64_t index);

 private:
  uint64_t seed_;
  uint64_t stream_;
};

}  // namespace reel
