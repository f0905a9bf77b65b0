// ggml block dequantisation, one plain loop per type. The layouts (byte order within a block,
// which bits of which byte hold element e) follow ggml's block_* structs; each value is the same
// f32 expression ggml and gguf-py evaluate, in the same order (e.g. Q4_K: (d·sc)·q − dmin·m), so
// results are bit-identical. Scales are f16, widened exactly.
#include "weights/gguf_dequant.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "parallel.hpp"
#include "reel/dtype.hpp"
#include "reel/status.hpp"

namespace reel::detail {

namespace {

constexpr uint32_t kQK = 32;    // elements per block of the legacy types (Q4_0 ... Q8_0)
constexpr uint32_t kQKK = 256;  // elements per K-quant super-block

float f16_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  f16 h;
  h.bits = bits;
  return h.to_float();
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, from its 12 packed bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same
// for the mins; bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high nibble).
void k_scale_min(const uint8_t* s, int j, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = uint8_t((s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30));
    min = uint8_t((s[j + 4] >> 4) | ((s[j] >> 2) & 0x30));
  }
}

// block_q4_0: f16 d; 16 bytes: element l in the low nibble of byte l, element l+16 in the high.
void q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (uint32_t l = 0; l < kQK / 2; ++l) {
    y[l] = d * float(int(b[2 + l] & 0x0f) - 8);
    y[l + 16] = d * float(int(b[2 + l] >> 4) - 8);
  }
}

// block_q4_1: f16 d, f16 m; nibbles as Q4_0; y = d·q + m.
void q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  for (uint32_t l = 0; l < kQK / 2; ++l) {
    y[l] = d * float(b[4 + l] & 0x0f) + m;
    y[l + 16] = d * float(b[4 + l] >> 4) + m;
  }
}

// block_q5_0: f16 d; uint32 qh (bit e = 5th bit of element e); nibbles as Q4_0; q − 16.
void q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (uint32_t l = 0; l < kQK / 2; ++l) {
    const int lo = (b[6 + l] & 0x0f) | int(((qh >> l) & 1) << 4);
    const int hi = (b[6 + l] >> 4) | int(((qh >> (l + 16)) & 1) << 4);
    y[l] = d * float(lo - 16);
    y[l + 16] = d * float(hi - 16);
  }
}

// block_q5_1: f16 d, f16 m, uint32 qh, nibbles; y = d·q + m.
void q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (uint32_t l = 0; l < kQK / 2; ++l) {
    const int lo = (b[8 + l] & 0x0f) | int(((qh >> l) & 1) << 4);
    const int hi = (b[8 + l] >> 4) | int(((qh >> (l + 16)) & 1) << 4);
    y[l] = d * float(lo) + m;
    y[l + 16] = d * float(hi) + m;
  }
}

// block_q8_0: f16 d; 32 int8.
void q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (uint32_t l = 0; l < kQK; ++l) y[l] = float(int8_t(b[2 + l])) * d;
}

// block_q2_K: 16 scale bytes (low nibble scale, high nibble min, per 16 elements), 64 bytes of
// 2-bit values, f16 d, f16 dmin. Element e: half h = e/128, shift 2·((e%128)/32), byte h·32 + e%32.
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (uint32_t e = 0; e < kQKK; ++e) {
    const uint8_t sc = scales[e / 16];
    const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
    const int q = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    y[e] = dl * float(q) - ml;
  }
}

// block_q3_K: 32 bytes hmask (bit e/32 of byte e%32: set means no −4), 64 bytes of 2-bit values
// (as Q2_K), 12 bytes of 6-bit signed scales (offset 32), f16 d.
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sb = b + 96;
  const float d = f16_at(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int low = (i < 8 ? sb[i] : sb[i - 8] >> 4) & 0x0f;
    const int high = (sb[8 + i % 4] >> (2 * (i / 4))) & 3;
    dl[i] = d * float((low | (high << 4)) - 32);
  }
  for (uint32_t e = 0; e < kQKK; ++e) {
    const int low = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const int minus4 = ((hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4;
    y[e] = dl[e / 16] * float(low - minus4);
  }
}

// block_q4_K: f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins (k_scale_min), 128 bytes:
// sub-block j (32 elements) in the low (j even) or high (j odd) nibbles of bytes 32·(j/2)...
void q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k_scale_min(b + 4, j, sc, m);
    const float dj = d * float(sc), mj = dmin * float(m);
    for (int l = 0; l < 32; ++l) y[j * 32 + l] = dj * float((qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f) - mj;
  }
}

// block_q5_K: as Q4_K plus 32 bytes qh before the nibbles: bit j of byte l is the 5th bit of
// element 32·j + l.
void q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k_scale_min(b + 4, j, sc, m);
    const float dj = d * float(sc), mj = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      const int q = ((qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f) | (((qh[l] >> j) & 1) << 4);
      y[j * 32 + l] = dj * float(q) - mj;
    }
  }
}

// block_q6_K: 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, f16 d; q − 32.
// Element e: half h = e/128; low nibble of byte h·64 + e%64 (shift 4 when (e%128) ≥ 64); high
// bits at shift 2·((e%128)/32) of byte h·32 + e%32.
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const uint8_t* scales = b + 192;
  const float d = f16_at(b + 208);
  for (uint32_t e = 0; e < kQKK; ++e) {
    const uint32_t h = e / 128, r = e % 128;
    const int low = (ql[h * 64 + e % 64] >> (4 * (r / 64))) & 0x0f;
    const int high = (qh[h * 32 + e % 32] >> (2 * (r / 32))) & 3;
    const float ds = d * float(int8_t(scales[e / 16]));
    y[e] = ds * float((low | (high << 4)) - 32);
  }
}

void f32_block(const uint8_t* b, float* y) { std::memcpy(y, b, 4); }
void f16_block(const uint8_t* b, float* y) { *y = f16_at(b); }
void bf16_block(const uint8_t* b, float* y) {
  uint16_t bits;
  std::memcpy(&bits, b, 2);
  *y = std::bit_cast<float>(uint32_t(bits) << 16);
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(FileDType t) {
  switch (t) {
    case FileDType::f32: return f32_block;
    case FileDType::f16: return f16_block;
    case FileDType::bf16: return bf16_block;
    case FileDType::q4_0: return q4_0;
    case FileDType::q4_1: return q4_1;
    case FileDType::q5_0: return q5_0;
    case FileDType::q5_1: return q5_1;
    case FileDType::q8_0: return q8_0;
    case FileDType::q2_k: return q2_k;
    case FileDType::q3_k: return q3_k;
    case FileDType::q4_k: return q4_k;
    case FileDType::q5_k: return q5_k;
    case FileDType::q6_k: return q6_k;
    default: return nullptr;
  }
}

}  // namespace

GgufBlock gguf_block(FileDType t) {
  switch (t) {
    case FileDType::f32: return {1, 4};
    case FileDType::f16: return {1, 2};
    case FileDType::bf16: return {1, 2};
    case FileDType::q4_0: return {kQK, 18};
    case FileDType::q4_1: return {kQK, 20};
    case FileDType::q5_0: return {kQK, 22};
    case FileDType::q5_1: return {kQK, 24};
    case FileDType::q8_0: return {kQK, 34};
    case FileDType::q2_k: return {kQKK, 84};
    case FileDType::q3_k: return {kQKK, 110};
    case FileDType::q4_k: return {kQKK, 144};
    case FileDType::q5_k: return {kQKK, 176};
    case FileDType::q6_k: return {kQKK, 210};
    default: return {};
  }
}

void dequantize_gguf(FileDType t, const std::byte* src, float* dst, size_t n) {
  const GgufBlock blk = gguf_block(t);
  const BlockFn fn = block_fn(t);
  if (!fn || blk.elements == 0 || n % blk.elements != 0)
    throw Error(StatusCode::internal, "dequantize_gguf: " + std::string(file_dtype_name(t)) + " cannot decode " +
                                          std::to_string(n) + " elements");
  const auto* bytes = reinterpret_cast<const uint8_t*>(src);
  const int64_t blocks = int64_t(n / blk.elements);
  parallel_for(blocks, std::max<int64_t>(1, 65536 / blk.elements), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(bytes + size_t(i) * blk.bytes, dst + size_t(i) * blk.elements);
  });
}

int gguf_affine_max_q(FileDType t) {
  switch (t) {
    case FileDType::q8_0: return 255;
    case FileDType::q4_0: case FileDType::q4_1: case FileDType::q4_k: return 15;
    case FileDType::q5_0: case FileDType::q5_1: case FileDType::q5_k: return 31;
    case FileDType::q6_k: return 63;
    case FileDType::q3_k: return 7;
    case FileDType::q2_k: return 3;
    default: return 0;
  }
}

int gguf_affine_sub(FileDType t) {
  return t == FileDType::q6_k || t == FileDType::q3_k || t == FileDType::q2_k ? 16 : 32;
}

bool gguf_affine_blocks(FileDType t, const std::byte* src, size_t n, uint8_t* q, float* scale, float* offset) {
  const auto* b = reinterpret_cast<const uint8_t*>(src);
  switch (t) {
    case FileDType::q8_0:
      for (size_t blk = 0; blk < n / 32; ++blk, b += 34) {
        const float d = f16_at(b);
        scale[blk] = d, offset[blk] = -128.0f * d;
        for (int l = 0; l < 32; ++l) q[blk * 32 + size_t(l)] = uint8_t(int(int8_t(b[2 + l])) + 128);
      }
      return true;
    case FileDType::q4_0:
    case FileDType::q4_1: {
      const bool has_min = t == FileDType::q4_1;
      const size_t bytes = has_min ? 20 : 18, nibbles = has_min ? 4 : 2;
      for (size_t blk = 0; blk < n / 32; ++blk, b += bytes) {
        const float d = f16_at(b);
        scale[blk] = d, offset[blk] = has_min ? f16_at(b + 2) : -8.0f * d;
        for (int l = 0; l < 16; ++l) {
          q[blk * 32 + size_t(l)] = b[nibbles + size_t(l)] & 0x0f;
          q[blk * 32 + size_t(l) + 16] = b[nibbles + size_t(l)] >> 4;
        }
      }
      return true;
    }
    case FileDType::q5_0:
    case FileDType::q5_1: {
      const bool has_min = t == FileDType::q5_1;
      const size_t head = has_min ? 4 : 2, bytes = has_min ? 24 : 22;
      for (size_t blk = 0; blk < n / 32; ++blk, b += bytes) {
        const float d = f16_at(b);
        scale[blk] = d, offset[blk] = has_min ? f16_at(b + 2) : -16.0f * d;
        uint32_t qh;
        std::memcpy(&qh, b + head, 4);
        const uint8_t* qs = b + head + 4;
        for (int l = 0; l < 16; ++l) {
          q[blk * 32 + size_t(l)] = uint8_t((qs[l] & 0x0f) | (((qh >> l) & 1) << 4));
          q[blk * 32 + size_t(l) + 16] = uint8_t((qs[l] >> 4) | (((qh >> (l + 16)) & 1) << 4));
        }
      }
      return true;
    }
    case FileDType::q4_k:
    case FileDType::q5_k: {  // Q5_K: Q4_K plus 32 bytes of fifth bits before the nibbles
      const bool five = t == FileDType::q5_k;
      for (size_t sb = 0; sb < n / 256; ++sb, b += five ? 176 : 144) {
        const float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t* qh = b + 16;
        const uint8_t* qs = b + (five ? 48 : 16);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          k_scale_min(b + 4, j, sc, m);
          const size_t blk = sb * 8 + size_t(j);
          scale[blk] = d * float(sc), offset[blk] = -(dmin * float(m));
          for (int l = 0; l < 32; ++l)
            q[blk * 32 + size_t(l)] = uint8_t(((qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f) |
                                              (five ? ((qh[l] >> j) & 1) << 4 : 0));
        }
      }
      return true;
    }
    // The 16-element types: the same element order as q2_k/q3_k/q6_k above.
    case FileDType::q6_k:
      for (size_t sb = 0; sb < n / 256; ++sb, b += 210) {
        const uint8_t* ql = b;
        const uint8_t* qh = b + 128;
        const float d = f16_at(b + 208);
        for (int i = 0; i < 16; ++i) {
          const float ds = d * float(int8_t(b[192 + i]));
          scale[sb * 16 + size_t(i)] = ds, offset[sb * 16 + size_t(i)] = -32.0f * ds;
        }
        for (uint32_t e = 0; e < 256; ++e) {
          const uint32_t h = e / 128, r = e % 128;
          const int low = (ql[h * 64 + e % 64] >> (4 * (r / 64))) & 0x0f;
          const int high = (qh[h * 32 + e % 32] >> (2 * (r / 32))) & 3;
          q[sb * 256 + e] = uint8_t(low | (high << 4));
        }
      }
      return true;
    case FileDType::q3_k:
      for (size_t sb = 0; sb < n / 256; ++sb, b += 110) {
        const uint8_t* hmask = b;
        const uint8_t* qs = b + 32;
        const uint8_t* sc = b + 96;
        const float d = f16_at(b + 108);
        for (int i = 0; i < 16; ++i) {
          const int low = (i < 8 ? sc[i] : sc[i - 8] >> 4) & 0x0f;
          const int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
          const float dl = d * float((low | (high << 4)) - 32);
          scale[sb * 16 + size_t(i)] = dl, offset[sb * 16 + size_t(i)] = -4.0f * dl;
        }
        for (uint32_t e = 0; e < 256; ++e) {
          const int low = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
          const int minus4 = ((hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4;
          q[sb * 256 + e] = uint8_t(low - minus4 + 4);
        }
      }
      return true;
    case FileDType::q2_k:
      for (size_t sb = 0; sb < n / 256; ++sb, b += 84) {
        const uint8_t* qs = b + 16;
        const float d = f16_at(b + 80), dmin = f16_at(b + 82);
        for (int i = 0; i < 16; ++i) {
          scale[sb * 16 + size_t(i)] = d * float(b[i] & 0x0f);
          offset[sb * 16 + size_t(i)] = -(dmin * float(b[i] >> 4));
        }
        for (uint32_t e = 0; e < 256; ++e) q[sb * 256 + e] = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      }
      return true;
    default:
      return false;
  }
}

namespace {

// The scale and min of one sub-block of 32 weights, x ≈ scale·q − min with q in 0..15 and
// min ≥ 0 (Q4_K's form), by a search in the manner of ggml's make_qkx2_quants: grids slightly
// finer and coarser than the range [min(0, lo), hi] on 0..15 each fix a rounding, a least-squares
// fit of scale and offset to that rounding follows (the offset held at ≤ 0), and the fit with the
// smallest squared error wins. The plain range is the first candidate, so the search is never
// worse than it; a finer grid clips the extremes when that lowers the error overall.
void fit_q4_k_sub_block(const float* x, float& scale, float& min) {
  float lo = 0.0f, hi = 0.0f;  // lo ≤ 0: the min term only ever adds
  for (int l = 0; l < 32; ++l) lo = std::min(lo, x[l]), hi = std::max(hi, x[l]);
  scale = (hi - lo) / 15.0f, min = -lo;
  if (!(hi > lo)) return;
  auto error = [&](float s, float m) {
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    double e = 0;
    for (int l = 0; l < 32; ++l) {
      const int q = std::clamp(int(std::lround((x[l] + m) * inv)), 0, 15);
      const double d = double(s) * q - m - x[l];
      e += d * d;
    }
    return e;
  };
  double best = error(scale, min);
  for (int step = -10; step <= 10; ++step) {
    const float inv = (15.0f + 0.1f * float(step)) / (hi - lo);
    double sq = 0, sx = 0, sqq = 0, sqx = 0;
    int q[32];
    for (int l = 0; l < 32; ++l) {
      q[l] = std::clamp(int(std::lround((x[l] - lo) * inv)), 0, 15);
      sq += q[l], sx += x[l], sqq += double(q[l]) * q[l], sqx += double(q[l]) * x[l];
    }
    const double det = 32.0 * sqq - sq * sq;
    if (det <= 0) continue;
    double a = (32.0 * sqx - sq * sx) / det, b = (sx - a * sq) / 32.0;  // x ≈ a·q + b
    if (b > 0) b = 0, a = sqq > 0 ? sqx / sqq : 0;                     // Q4_K's offset is ≤ 0
    if (!(a > 0)) continue;
    const double e = error(float(a), float(-b));
    if (e < best) best = e, scale = float(a), min = float(-b);
  }
}

// One Q4_K super-block of 256 values: per sub-block of 32 a scale and min from
// fit_q4_k_sub_block (w = d·sc·q − dmin·m), the 8 sub-block scales and mins as 6-bit multiples
// of the super-block's d and dmin (stored as f16; everything after uses the stored values).
void quantize_q4_k_block(const float* x, uint8_t* out) {
  float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    fit_q4_k_sub_block(x + j * 32, scale[j], min[j]);
    max_scale = std::max(max_scale, scale[j]), max_min = std::max(max_min, min[j]);
  }
  const uint16_t dbits = f16::from_float(max_scale / 63.0f).bits, mbits = f16::from_float(max_min / 63.0f).bits;
  std::memcpy(out, &dbits, 2);
  std::memcpy(out + 2, &mbits, 2);
  const float d = f16_at(out), dmin = f16_at(out + 2);
  uint8_t* s = out + 4;
  std::memset(s, 0, 12);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = uint8_t(d > 0.0f ? std::clamp(int(std::lround(scale[j] / d)), 0, 63) : 0);
    m[j] = uint8_t(dmin > 0.0f ? std::clamp(int(std::lround(min[j] / dmin)), 0, 63) : 0);
    if (j < 4) {  // the inverse of k_scale_min
      s[j] |= sc[j], s[j + 4] |= m[j];
    } else {
      s[j + 4] = uint8_t((sc[j] & 0x0f) | ((m[j] & 0x0f) << 4));
      s[j - 4] |= uint8_t((sc[j] >> 4) << 6);
      s[j] |= uint8_t((m[j] >> 4) << 6);
    }
  }
  uint8_t* qs = out + 16;
  std::memset(qs, 0, 128);
  for (int j = 0; j < 8; ++j) {
    const float dj = d * float(sc[j]), mj = dmin * float(m[j]);
    const float id = dj > 0.0f ? 1.0f / dj : 0.0f;
    for (int l = 0; l < 32; ++l) {
      const int q = std::clamp(int(std::lround((x[j * 32 + l] + mj) * id)), 0, 15);
      qs[(j / 2) * 32 + l] |= uint8_t(q << (4 * (j % 2)));
    }
  }
}

}  // namespace

bool quantize_gguf(FileDType t, const float* src, std::byte* dst, size_t n) {
  if (t == FileDType::q4_k) {
    parallel_for(int64_t(n / 256), 16, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk)
        quantize_q4_k_block(src + blk * 256, reinterpret_cast<uint8_t*>(dst + size_t(blk) * 144));
    });
    return true;
  }
  if (t != FileDType::q8_0 && t != FileDType::q4_0) return false;
  const size_t bytes = t == FileDType::q8_0 ? 34 : 18;
  parallel_for(int64_t(n / 32), 256, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const float* x = src + blk * 32;
      auto* out = reinterpret_cast<uint8_t*>(dst + size_t(blk) * bytes);
      float amax = 0.0f, max = 0.0f;
      for (int i = 0; i < 32; ++i)
        if (amax < std::fabs(x[i])) amax = std::fabs(x[i]), max = x[i];
      // Q8_0: d = amax / 127, q = round(x / d). Q4_0: d = (the value of largest magnitude) / −8,
      // q = min(15, trunc(x / d + 8.5)). d is stored as f16; q is computed with the f32 d.
      const float d = t == FileDType::q8_0 ? amax / 127.0f : max / -8.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const uint16_t dbits = f16::from_float(d).bits;
      std::memcpy(out, &dbits, 2);
      if (t == FileDType::q8_0) {
        for (int i = 0; i < 32; ++i) out[2 + i] = uint8_t(int8_t(std::lround(x[i] * id)));
      } else {
        for (int i = 0; i < 16; ++i) {
          const int lo = std::min(15, int(int8_t(x[i] * id + 8.5f)));
          const int hi = std::min(15, int(int8_t(x[i + 16] * id + 8.5f)));
          out[2 + i] = uint8_t(lo | (hi << 4));
        }
      }
    }
  });
  return true;
}

}  // namespace reel::detail
