// Random GGUF blocks of a quantised type for tests: bytes uniformly random, then every f16
// scale field replaced by a finite value in [lo, hi] (random bytes there could be NaN or
// huge; the mins of Q4_1 and Q5_1 negative), so the blocks decode to finite weights.
#pragma once
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "reel/dtype.hpp"
#include "reel/weights.hpp"
#include "weights/gguf_dequant.hpp"

namespace reel::test {

inline std::vector<std::byte> random_gguf_blocks(FileDType type, int64_t rows, int64_t cols, uint64_t seed,
                                                 float lo = 1e-3f, float hi = 1e-1f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> scale(lo, hi);
  const detail::GgufBlock blk = detail::gguf_block(type);
  std::vector<std::byte> out(size_t(rows * cols) / blk.elements * blk.bytes);
  for (auto& b : out) b = std::byte(uint8_t(rng()));
  // f16 fields (byte offsets in the block): Q8_0, Q4_0, Q5_0 d; Q4_1, Q5_1 d, m; Q4_K, Q5_K
  // d, dmin; Q6_K d at 208; Q3_K d at 108; Q2_K d, dmin at 80, 82.
  const bool has_min = type == FileDType::q4_1 || type == FileDType::q5_1;
  std::vector<size_t> fields = {0};
  if (has_min || type == FileDType::q4_k || type == FileDType::q5_k) fields = {0, 2};
  if (type == FileDType::q6_k) fields = {208};
  if (type == FileDType::q3_k) fields = {108};
  if (type == FileDType::q2_k) fields = {80, 82};
  for (size_t b = 0; b < out.size() / blk.bytes; ++b)
    for (size_t f = 0; f < fields.size(); ++f) {
      const uint16_t d = f16::from_float(scale(rng) * (f == 1 && has_min ? -1.0f : 1.0f)).bits;
      std::memcpy(&out[b * blk.bytes + fields[f]], &d, 2);
    }
  return out;
}

}  // namespace reel::test
