// Internal: weights kept quantised, and the CPU matrix product on them (issue 17). Every
// supported type is held in one form: per row and run of 32 weights (a block), small unsigned
// integers q with a scale and an offset, w = scale·q + offset — ggml's Q8_0 (q = stored + 128,
// offset −128·d), Q4_0 (offset −8·d), Q4_1 and Q4_K (a scale and a min per 32-weight
// sub-block), Q5_0 (offset −16·d), Q5_1 and Q5_K (as Q4_1 and Q4_K with a fifth bit). Q6_K,
// Q3_K and Q2_K scale each half of a block on its own (16-weight sub-blocks): two scales and
// two offsets per block ("halves"). Values of 5 to 8 bits take a byte each (5- and 6-bit ones
// exactly), values of up to 4 bits half a byte.
//
// The activations are quantised per row and block on the fly as ggml's Q8_0 (d = max|x| / 127,
// qx = round(x / d)), so each block pair is an exact integer dot product (AVX-512 VNNI
// `vpdpbusd`: weights as the unsigned operand, activations as the signed one; the same sums in
// plain C++ on other CPUs), and
//
//   y[m, n] = Σ_b  (scale[n,b] · dx[m,b]) · Σ_i q[n,i]·qx[m,i]  +  offset[n,b] · (dx[m,b] · Σ_i qx[m,i])
//
// summed over blocks in f32 (+ bias); with halves, the same per half (i < 16, i ≥ 16).
//
//   QMatrix w = QMatrix::quantize(QType::q8_0, weights_f32, rows, cols);   // or from_gguf(...)
//   q_linear(x, M, w, bias, y);                                               // y [M, rows]
//
// Packed layout (what the kernel streams): rows in groups of 16 (the last one padded with zero
// rows); per group and block, the values as 8 vectors of 64 bytes, each holding 4 consecutive
// K values of the 16 rows in turn (vpdpbusd's operand order) — 4-bit values two to a byte,
// vector 2j in the low nibbles and 2j+1 in the high ones of 4 stored vectors — then the 16
// scales and the 16 offsets (f32); with halves, the 16 scales of each half, then the 16
// offsets of each half.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "reel/weights.hpp"

namespace reel::quant {

enum class QType : uint8_t { q8_0, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q3_k, q2_k };
std::string_view qtype_name(QType t);

class QMatrix {
 public:
  static constexpr int64_t kBlock = 32;  // K values per block
  static constexpr int64_t kGroup = 16;  // rows per packed group (one 512-bit vector of int32)

  QMatrix() = default;
  // w [rows, cols] f32 row-major, cols a multiple of 32 (256 for q4_k); q8_0, q4_0 or q4_k,
  // encoded as detail::quantize_gguf does.
  static QMatrix quantize(QType type, const float* w, int64_t rows, int64_t cols);
  // GGUF tensor data of a type `keeps` accepts, rows × cols elements.
  static QMatrix from_gguf(FileDType type, const std::byte* data, int64_t rows, int64_t cols);
  // The GGUF types from_gguf takes (Q8_0, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q3_K, Q2_K).
  static bool keeps(FileDType type);

  QType type() const { return type_; }
  int bits() const { return bits_; }
  int halves() const { return halves_; }  // scale/offset pairs per block: 1, or 2 (16-weight sub-blocks)
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t blocks() const { return cols_ / kBlock; }
  int64_t groups() const { return (rows_ + kGroup - 1) / kGroup; }
  size_t block_bytes() const { return size_t(bits_) * 64 + size_t(kGroup) * 8 * size_t(halves_); }
  size_t bytes() const { return size_t(groups()) * size_t(blocks()) * block_bytes(); }
  // The packed data of group g, block b.
  const std::byte* block(int64_t g, int64_t b) const {
    return data_.get() + (size_t(g) * size_t(blocks()) + size_t(b)) * block_bytes();
  }
  // The weights as f32 [rows, cols] (scale·q + offset): what the kernel multiplies by.
  std::vector<float> dequantize() const;

 private:
  // From q [rows, cols] and scale, offset [rows, cols / 32 · halves].
  static QMatrix pack(QType type, int bits, int halves, int64_t rows, int64_t cols, const uint8_t* q,
                      const float* scale, const float* offset);
  QType type_ = QType::q8_0;
  int bits_ = 8;
  int halves_ = 1;
  int64_t rows_ = 0, cols_ = 0;
  std::shared_ptr<std::byte[]> data_;
};

// Activations quantised per row and block of 32, as the kernel takes them.
struct QActivations {
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> q;     // [rows, cols]
  std::vector<float> scale;  // [rows, cols / 32]: dx
  std::vector<float> sum;    // [rows, cols / 32]: dx · Σ qx
  std::vector<float> half_sum;  // [rows, cols / 32, 2]: dx · Σ qx over each half of the block
  std::vector<int32_t> isum;    // [rows, cols / 32, 2]: Σ qx over each half (the AVX2 kernel's correction)
};
QActivations quantize_activations(const float* x, int64_t rows, int64_t cols);

// The kernels, which compute the same integers and f32 operations (the same bits): AVX-512
// VNNI, AVX2 (vpmaddubsw on sign-adjusted 8-bit values, so that no 16-bit pair sum can
// saturate), plain C++. `best`: the fastest this CPU has.
enum class QKernel : uint8_t { best, avx512_vnni, avx2, portable };
// y [M, w.rows()] = x [M, w.cols()] · wᵀ (+ bias [w.rows()] when not null), f32. Threaded over
// the row groups of w and blocks of 64 rows of x. A kernel the CPU lacks falls back to portable.
void q_linear(const float* x, int64_t M, const QMatrix& w, const float* bias, float* y, QKernel kernel = QKernel::best);
// Whether this CPU has what the kernels need.
bool q_has_vnni();
bool q_has_avx2();

}  // namespace reel::quant
