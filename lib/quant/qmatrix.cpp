// Quantised weights and the CPU product on them (qmatrix.hpp): quantising and packing,
// activation quantisation, and the kernel in three forms that compute the same numbers:
// AVX-512 VNNI (16 output rows per vector, 4 activation rows per pass sharing each weight
// load), AVX2 (8 rows per vector) and portable C++.
#include "quant/qmatrix.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "parallel.hpp"
#include "reel/dtype.hpp"
#include "reel/status.hpp"
#include "weights/gguf_dequant.hpp"

namespace reel::quant {

namespace {

constexpr int64_t B = QMatrix::kBlock;
constexpr int64_t G = QMatrix::kGroup;

// The parts of one packed (group, block).
struct Packed {
  const uint8_t* q;      // bits·64 bytes
  const float* scale;    // [halves][16]
  const float* offset;   // [halves][16]
};
Packed parts(const QMatrix& w, const std::byte* p) {
  const size_t values = size_t(w.bits()) * 64;
  return {reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const float*>(p + values),
          reinterpret_cast<const float*>(p + values + 64 * size_t(w.halves()))};
}

// Value k (0..3) of row n in vector j (0..7) of a packed block.
uint8_t value(const QMatrix& w, const Packed& pk, int64_t j, int64_t n, int64_t k) {
  if (w.bits() == 8) return pk.q[(j * G + n) * 4 + k];
  const uint8_t byte = pk.q[((j / 2) * G + n) * 4 + k];
  return j % 2 == 0 ? byte & 0x0f : byte >> 4;
}

// Output rows [m0, m0 + rows) of row group g (portable).
void group_portable(const QActivations& xa, int64_t m0, int64_t rows, const QMatrix& w, int64_t g, const float* bias,
                    float* y) {
  const int64_t nb = w.blocks(), cols = std::min(G, w.rows() - g * G);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = m0 + r;
    float acc[G] = {};
    for (int64_t b = 0; b < nb; ++b) {
      const Packed pk = parts(w, w.block(g, b));
      const int8_t* xq = xa.q.data() + m * xa.cols + b * B;
      const float sx = xa.scale[size_t(m * nb + b)], tx = xa.sum[size_t(m * nb + b)];
      const float* hs = xa.half_sum.data() + 2 * (m * nb + b);
      for (int64_t n = 0; n < G; ++n) {
        if (w.halves() == 1) {
          int32_t isum = 0;
          for (int64_t j = 0; j < 8; ++j)
            for (int64_t k = 0; k < 4; ++k) isum += int32_t(value(w, pk, j, n, k)) * int32_t(xq[4 * j + k]);
          const float t = std::fma(pk.offset[n], tx, acc[n]);
          acc[n] = std::fma(float(isum), pk.scale[n] * sx, t);
        } else {  // each half with its own scale and offset, in the VNNI path's order
          int32_t isum[2] = {0, 0};
          for (int64_t j = 0; j < 8; ++j)
            for (int64_t k = 0; k < 4; ++k) isum[j / 4] += int32_t(value(w, pk, j, n, k)) * int32_t(xq[4 * j + k]);
          float t = std::fma(pk.offset[n], hs[0], acc[n]);
          t = std::fma(pk.offset[G + n], hs[1], t);
          t = std::fma(float(isum[0]), pk.scale[n] * sx, t);
          acc[n] = std::fma(float(isum[1]), pk.scale[G + n] * sx, t);
        }
      }
    }
    float* out = y + m * w.rows() + g * G;
    for (int64_t n = 0; n < cols; ++n) out[n] = bias ? acc[n] + bias[g * G + n] : acc[n];
  }
}

// int32 → f32 lanes. GCC 12's _mm512_cvtepi32_ps passes an undefined vector as its unused
// merge source, which -Wmaybe-uninitialized reports; the masked form with a zero source does not.
__attribute__((target("avx512f"))) inline __m512 to_float(__m512i v) {
  return _mm512_maskz_cvtepi32_ps(__mmask16(0xffff), v);
}

// The same with AVX-512 VNNI: 4 rows at a time share each block's 8 weight vectors.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
void group_vnni(const QActivations& xa, int64_t m0, int64_t rows, const QMatrix& w, int64_t g, const float* bias,
                float* y) {
  const int64_t nb = w.blocks(), cols = std::min(G, w.rows() - g * G);
  const __mmask16 keep = __mmask16((1u << cols) - 1u);
  const __m512 bias_v = bias ? _mm512_maskz_loadu_ps(keep, bias + g * G) : _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f);
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int64_t m = m0 + r;
    for (int64_t b = 0; b < nb; ++b) {
      const Packed pk = parts(w, w.block(g, b));
      __m512i wq[8];
      if (w.bits() == 8) {
        for (int j = 0; j < 8; ++j) wq[j] = _mm512_loadu_si512(pk.q + j * 64);
      } else {
        for (int j = 0; j < 4; ++j) {
          const __m512i both = _mm512_loadu_si512(pk.q + j * 64);
          wq[2 * j] = _mm512_and_si512(both, low);
          wq[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(both, 4), low);
        }
      }
      const __m512 sw = _mm512_loadu_ps(pk.scale), ow = _mm512_loadu_ps(pk.offset);
      for (int i = 0; i < 4; ++i) {
        const int8_t* xq = xa.q.data() + (m + i) * xa.cols + b * B;
        const size_t at = size_t((m + i) * nb + b);
        if (w.halves() == 1) {
          __m512i isum = _mm512_setzero_si512();
          for (int j = 0; j < 8; ++j) {
            int32_t four;
            std::memcpy(&four, xq + 4 * j, 4);
            isum = _mm512_dpbusd_epi32(isum, wq[j], _mm512_set1_epi32(four));
          }
          const __m512 t = _mm512_fmadd_ps(ow, _mm512_set1_ps(xa.sum[at]), acc[i]);
          acc[i] = _mm512_fmadd_ps(to_float(isum), _mm512_mul_ps(sw, _mm512_set1_ps(xa.scale[at])), t);
        } else {  // 16-weight sub-blocks: each half of the block with its own scale and offset
          __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
          for (int j = 0; j < 8; ++j) {
            int32_t four;
            std::memcpy(&four, xq + 4 * j, 4);
            isum[j / 4] = _mm512_dpbusd_epi32(isum[j / 4], wq[j], _mm512_set1_epi32(four));
          }
          const __m512 sw1 = _mm512_loadu_ps(pk.scale + G), ow1 = _mm512_loadu_ps(pk.offset + G);
          const __m512 sx = _mm512_set1_ps(xa.scale[at]);
          __m512 t = _mm512_fmadd_ps(ow, _mm512_set1_ps(xa.half_sum[2 * at]), acc[i]);
          t = _mm512_fmadd_ps(ow1, _mm512_set1_ps(xa.half_sum[2 * at + 1]), t);
          t = _mm512_fmadd_ps(to_float(isum[0]), _mm512_mul_ps(sw, sx), t);
          acc[i] = _mm512_fmadd_ps(to_float(isum[1]), _mm512_mul_ps(sw1, sx), t);
        }
      }
    }
    for (int i = 0; i < 4; ++i) {
      const __m512 out = bias ? _mm512_add_ps(acc[i], bias_v) : acc[i];
      _mm512_mask_storeu_ps(y + (m + i) * w.rows() + g * G, keep, out);
    }
  }
  if (r < rows) group_portable(xa, m0 + r, rows - r, w, g, bias, y);
}

// The same with AVX2 and FMA: 8 output rows per vector (the group's two halves in turn), 4
// activation rows per pass. vpmaddubsw adds pairs of u8·s8 products into 16 bits, which 8-bit
// values (q ≤ 255) could overflow: those are taken as s = q − 128 (|s| ≤ 128) against
// sign(x, s), and Σ q·x = Σ |s|·sign(x, s) + 128·Σ x; values of up to 6 bits go in directly
// (2·63·127 fits). The integers are exact, so they equal the other kernels' sums.
__attribute__((target("avx2,fma")))
void group_avx2(const QActivations& xa, int64_t m0, int64_t rows, const QMatrix& w, int64_t g, const float* bias,
                float* y) {
  const int64_t nb = w.blocks();
  const bool eight = w.bits() == 8, halves = w.halves() == 2;
  const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8(char(0x80));
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const int64_t m = m0 + r;
    for (int part = 0; part < 2; ++part) {  // rows 8·part .. 8·part + 7 of the group
      const int64_t first = g * G + 8 * part;
      if (first >= w.rows()) break;
      const int64_t cols = std::min<int64_t>(8, w.rows() - first);
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t b = 0; b < nb; ++b) {
        const Packed pk = parts(w, w.block(g, b));
        __m256i wq[8];
        if (eight) {
          for (int j = 0; j < 8; ++j)
            wq[j] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pk.q + j * 64 + 32 * part)), flip);
        } else {
          for (int j = 0; j < 4; ++j) {
            const __m256i both = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pk.q + j * 64 + 32 * part));
            wq[2 * j] = _mm256_and_si256(both, low);
            wq[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(both, 4), low);
          }
        }
        const __m256 sw = _mm256_loadu_ps(pk.scale + 8 * part), ow = _mm256_loadu_ps(pk.offset + 8 * part);
        for (int i = 0; i < 4; ++i) {
          const int8_t* xq = xa.q.data() + (m + i) * xa.cols + b * B;
          const size_t at = size_t((m + i) * nb + b);
          __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
          for (int j = 0; j < 8; ++j) {
            int32_t four;
            std::memcpy(&four, xq + 4 * j, 4);
            const __m256i xv = _mm256_set1_epi32(four);
            const __m256i pairs = eight ? _mm256_maddubs_epi16(_mm256_abs_epi8(wq[j]), _mm256_sign_epi8(xv, wq[j]))
                                        : _mm256_maddubs_epi16(wq[j], xv);
            isum[j / 4] = _mm256_add_epi32(isum[j / 4], _mm256_madd_epi16(pairs, ones));
          }
          if (eight) {  // + 128·Σx per half
            isum[0] = _mm256_add_epi32(isum[0], _mm256_set1_epi32(128 * xa.isum[2 * at]));
            isum[1] = _mm256_add_epi32(isum[1], _mm256_set1_epi32(128 * xa.isum[2 * at + 1]));
          }
          const __m256 sx = _mm256_set1_ps(xa.scale[at]);
          if (!halves) {
            const __m256 t = _mm256_fmadd_ps(ow, _mm256_set1_ps(xa.sum[at]), acc[i]);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1])), _mm256_mul_ps(sw, sx), t);
          } else {
            const __m256 sw1 = _mm256_loadu_ps(pk.scale + G + 8 * part), ow1 = _mm256_loadu_ps(pk.offset + G + 8 * part);
            __m256 t = _mm256_fmadd_ps(ow, _mm256_set1_ps(xa.half_sum[2 * at]), acc[i]);
            t = _mm256_fmadd_ps(ow1, _mm256_set1_ps(xa.half_sum[2 * at + 1]), t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[0]), _mm256_mul_ps(sw, sx), t);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[1]), _mm256_mul_ps(sw1, sx), t);
          }
        }
      }
      for (int i = 0; i < 4; ++i) {
        alignas(32) float out[8];
        _mm256_store_ps(out, acc[i]);
        float* dst = y + (m + i) * w.rows() + first;
        for (int64_t n = 0; n < cols; ++n) dst[n] = bias ? out[n] + bias[first + n] : out[n];
      }
    }
  }
  if (r < rows) group_portable(xa, m0 + r, rows - r, w, g, bias, y);
}

}  // namespace

std::string_view qtype_name(QType t) {
  switch (t) {
    case QType::q8_0: return "q8_0";
    case QType::q4_0: return "q4_0";
    case QType::q4_1: return "q4_1";
    case QType::q4_k: return "q4_k";
    case QType::q5_0: return "q5_0";
    case QType::q5_1: return "q5_1";
    case QType::q5_k: return "q5_k";
    case QType::q6_k: return "q6_k";
    case QType::q3_k: return "q3_k";
    case QType::q2_k: return "q2_k";
  }
  return "?";
}

bool q_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

bool q_has_vnni() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return yes;
}

QMatrix QMatrix::pack(QType type, int bits, int halves, int64_t rows, int64_t cols, const uint8_t* q,
                      const float* scale, const float* offset) {
  require(rows > 0 && cols > 0 && cols % B == 0, StatusCode::invalid_argument,
          "quantised weights: " + std::to_string(rows) + "×" + std::to_string(cols) + " is not rows × (a multiple of 32)");
  QMatrix m;
  m.type_ = type;
  m.bits_ = bits;
  m.halves_ = halves;
  m.rows_ = rows;
  m.cols_ = cols;
  m.data_ = std::shared_ptr<std::byte[]>(new std::byte[m.bytes()]());
  const int64_t nb = m.blocks();
  parallel_for(m.groups(), 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t b = 0; b < nb; ++b) {
        std::byte* p = m.data_.get() + (size_t(g) * size_t(nb) + size_t(b)) * m.block_bytes();
        auto* pq = reinterpret_cast<uint8_t*>(p);
        auto* ps = reinterpret_cast<float*>(p + size_t(bits) * 64);
        auto* po = ps + G * halves;
        for (int64_t n = 0; n < G; ++n) {
          const int64_t row = g * G + n;
          if (row >= rows) break;  // padding rows stay zero
          const uint8_t* src = q + row * cols + b * B;
          for (int64_t j = 0; j < 8; ++j)
            for (int64_t k = 0; k < 4; ++k) {
              const uint8_t v = src[4 * j + k];
              if (bits == 8) pq[(j * G + n) * 4 + k] = v;
              else pq[((j / 2) * G + n) * 4 + k] |= uint8_t(j % 2 == 0 ? v : v << 4);
            }
          for (int h = 0; h < halves; ++h) {
            ps[h * G + n] = scale[(row * nb + b) * halves + h];
            po[h * G + n] = offset[(row * nb + b) * halves + h];
          }
        }
      }
  });
  return m;
}

QMatrix QMatrix::quantize(QType type, const float* w, int64_t rows, int64_t cols) {
  require(type == QType::q8_0 || type == QType::q4_0 || type == QType::q4_k, StatusCode::unsupported,
          "quantising to " + std::string(qtype_name(type)) + " at load is not offered (q8_0, q4_0 or q4_k)");
  const int64_t block = type == QType::q4_k ? 256 : B;
  require(cols % block == 0, StatusCode::invalid_argument,
          std::string(qtype_name(type)) + " weights need rows of a multiple of " + std::to_string(block) + " values");
  // The GGUF block encoding first (the one place that quantises: GGUF files are written from
  // the same bytes), then unpacked as a GGUF tensor would be.
  const FileDType file_type = type == QType::q8_0 ? FileDType::q8_0 : type == QType::q4_0 ? FileDType::q4_0 : FileDType::q4_k;
  const size_t n = size_t(rows * cols);
  const detail::GgufBlock gb = detail::gguf_block(file_type);
  std::vector<std::byte> blocks(n / gb.elements * gb.bytes);
  detail::quantize_gguf(file_type, w, blocks.data(), n);
  return from_gguf(file_type, blocks.data(), rows, cols);
}

bool QMatrix::keeps(FileDType type) { return detail::gguf_affine_max_q(type) > 0; }

QMatrix QMatrix::from_gguf(FileDType type, const std::byte* data, int64_t rows, int64_t cols) {
  require(keeps(type), StatusCode::unsupported,
          "GGUF " + std::string(file_dtype_name(type)) +
              " weights cannot be kept quantised (Q8_0, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q3_K, Q2_K can)");
  const size_t n = size_t(rows * cols);
  const int sub = detail::gguf_affine_sub(type);
  std::vector<uint8_t> q(n);
  std::vector<float> scale(n / size_t(sub)), offset(n / size_t(sub));
  detail::gguf_affine_blocks(type, data, n, q.data(), scale.data(), offset.data());
  const auto qtype = [&] {
    switch (type) {
      case FileDType::q8_0: return QType::q8_0;
      case FileDType::q4_0: return QType::q4_0;
      case FileDType::q4_1: return QType::q4_1;
      case FileDType::q5_0: return QType::q5_0;
      case FileDType::q5_1: return QType::q5_1;
      case FileDType::q5_k: return QType::q5_k;
      case FileDType::q6_k: return QType::q6_k;
      case FileDType::q3_k: return QType::q3_k;
      case FileDType::q2_k: return QType::q2_k;
      default: return QType::q4_k;
    }
  };
  const QType t = qtype();
  return pack(t, detail::gguf_affine_max_q(type) > 15 ? 8 : 4, int(B) / sub, rows, cols, q.data(), scale.data(),
              offset.data());
}

std::vector<float> QMatrix::dequantize() const {
  std::vector<float> out(size_t(rows_ * cols_));
  for (int64_t row = 0; row < rows_; ++row)
    for (int64_t b = 0; b < blocks(); ++b) {
      const Packed pk = parts(*this, block(row / G, b));
      const int64_t n = row % G;
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t k = 0; k < 4; ++k)
          out[size_t(row * cols_ + b * B + 4 * j + k)] =
              pk.scale[(j / 4) % halves_ * G + n] * float(value(*this, pk, j, n, k)) + pk.offset[(j / 4) % halves_ * G + n];
    }
  return out;
}

QActivations quantize_activations(const float* x, int64_t rows, int64_t cols) {
  QActivations a;
  a.rows = rows;
  a.cols = cols;
  a.q.resize(size_t(rows * cols));
  a.scale.resize(size_t(rows * (cols / B)));
  a.sum.resize(a.scale.size());
  a.half_sum.resize(2 * a.scale.size());
  a.isum.resize(2 * a.scale.size());
  parallel_for(rows * (cols / B), 256, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* v = x + i * B;
      float amax = 0.0f;
      for (int64_t k = 0; k < B; ++k) amax = std::max(amax, std::fabs(v[k]));
      const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      int32_t half[2] = {0, 0};
      for (int64_t k = 0; k < B; ++k) {
        const int q = int(std::lround(v[k] * id));
        a.q[size_t(i * B + k)] = int8_t(q);
        half[k / 16] += q;
      }
      a.scale[size_t(i)] = d;
      a.sum[size_t(i)] = d * float(half[0] + half[1]);
      a.half_sum[size_t(2 * i)] = d * float(half[0]);
      a.half_sum[size_t(2 * i + 1)] = d * float(half[1]);
      a.isum[size_t(2 * i)] = half[0];
      a.isum[size_t(2 * i + 1)] = half[1];
    }
  });
  return a;
}

void q_linear(const float* x, int64_t M, const QMatrix& w, const float* bias, float* y, QKernel kernel) {
  const QActivations xa = quantize_activations(x, M, w.cols());
  if (kernel == QKernel::best) kernel = q_has_vnni() ? QKernel::avx512_vnni : q_has_avx2() ? QKernel::avx2 : QKernel::portable;
  if ((kernel == QKernel::avx512_vnni && !q_has_vnni()) || (kernel == QKernel::avx2 && !q_has_avx2()))
    kernel = QKernel::portable;
  // Work items: (row group, block of 64 activation rows); a group's weights stay in cache.
  constexpr int64_t kRows = 64;
  const int64_t row_blocks = (M + kRows - 1) / kRows, groups = w.groups();
  parallel_for(groups * row_blocks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i / row_blocks, m0 = (i % row_blocks) * kRows, rows = std::min(kRows, M - m0);
      switch (kernel) {
        case QKernel::avx512_vnni: group_vnni(xa, m0, rows, w, g, bias, y); break;
        case QKernel::avx2: group_avx2(xa, m0, rows, w, g, bias, y); break;
        default: group_portable(xa, m0, rows, w, g, bias, y);
      }
    }
  });
}

}  // namespace reel::quant
