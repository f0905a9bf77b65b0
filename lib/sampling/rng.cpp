// Philox4x32-10 and the normal/uniform transforms of reel::Rng (see rng.hpp for the contract).
#include "reel/rng.hpp"

#include <cmath>
#include <numbers>

#include "parallel.hpp"

namespace reel {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;   // Philox multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key bumps (golden ratio, sqrt(3)-1)

inline void philox_round(Rng::Block& c, const Rng::Key& k) {
  const uint64_t p0 = uint64_t(kMul0) * c[0];
  const uint64_t p1 = uint64_t(kMul1) * c[2];
  c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
}

inline Rng::Block block_at(uint64_t seed, uint64_t stream, uint64_t block) {
  return Rng::philox4x32_10({uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)},
                            {uint32_t(seed), uint32_t(seed >> 32)});
}

// Box–Muller on one block: the pair (r cos θ, r sin θ).
inline std::array<float, 2> normal_pair(const Rng::Block& w) {
  constexpr double kTwo53 = 1.0 / 9007199254740992.0;  // 2^-53
  const uint64_t a = (uint64_t(w[0]) << 32) | w[1];
  const uint64_t b = (uint64_t(w[2]) << 32) | w[3];
  const double u1 = double((a >> 11) + 1) * kTwo53;  // (0, 1]: log is finite
  const double u2 = double(b >> 11) * kTwo53;        // [0, 1)
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  return {float(r * std::cos(theta)), float(r * std::sin(theta))};
}
}  // namespace

Rng::Block Rng::philox4x32_10(Block counter, Key key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    philox_round(counter, key);
  }
  return counter;
}

float Rng::normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return normal_pair(block_at(seed, stream, index / 2))[index % 2];
}

void Rng::fill_normal(std::span<float> out) {
  const uint64_t seed = seed_, stream = stream_++;
  const int64_t n = int64_t(out.size());
  const int64_t blocks = (n + 1) / 2;
  parallel_for(blocks, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const auto pair = normal_pair(block_at(seed, stream, uint64_t(b)));
      out[size_t(2 * b)] = pair[0];
      if (2 * b + 1 < n) out[size_t(2 * b + 1)] = pair[1];
    }
  });
}

Tensor Rng::normal(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::f32);
  fill_normal({t.data<float>(), size_t(t.numel())});
  return t;
}

void Rng::fill_uniform(std::span<float> out) {
  const uint64_t seed = seed_, stream = stream_++;
  const int64_t n = int64_t(out.size());
  const int64_t blocks = (n + 3) / 4;
  parallel_for(blocks, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const Block w = block_at(seed, stream, uint64_t(b));
      for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j)
        out[size_t(4 * b + j)] = float(w[size_t(j)] >> 8) * (1.0f / 16777216.0f);
    }
  });
}

}  // namespace reel
