// Internal: Q8_0 weights kept quantised, and the CPU matrix product on them (issue 17, first
// type). Q8_0 is ggml's: blocks of 32 weights along a row, each an f16 scale d and 32 int8 q,
// w = d·q. The activations are quantised the same way on the fly (per row, per block of 32:
// d = max|x| / 127, q = round(x / d)), and each block's dot product is exact integer
// arithmetic (AVX-512 VNNI `vpdpbusd` where the CPU has it, the same sums in plain C++
// elsewhere), scaled by the two block scales and summed in f32:
//
//   y[m, n] = Σ_b  dx[m, b] · dw[n, b] · Σ_{i in b} qx[m, i] · qw[n, i]   (+ bias[n])
//
//   Q8Matrix w = Q8Matrix::quantize(weights_f32, rows, cols);      // or from_gguf(blocks, ...)
//   q8_linear(x, M, w, bias, y);                                      // y [M, rows]
//
// Packed layout (what the kernel streams): rows in groups of 16 (the last one padded with zero
// rows); per group and K-block of 32, 8 vectors of 64 bytes holding 4 consecutive K values of
// each of the 16 rows in turn (the operand order of vpdpbusd), then the 16 row scales (f32)
// and the 16 compensations 128·Σq (int32: the activations enter vpdpbusd as the unsigned
// bytes q + 128).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace reel::quant {

class Q8Matrix {
 public:
  static constexpr int64_t kBlock = 32;   // K values per block
  static constexpr int64_t kGroup = 16;   // rows per packed group (one 512-bit vector of int32)
  static constexpr size_t kBlockBytes = 8 * 64 + kGroup * 4 + kGroup * 4;  // per group per K-block

  Q8Matrix() = default;
  // w [rows, cols] f32 row-major, cols a multiple of 32; quantised as ggml's quantize_row_q8_0.
  static Q8Matrix quantize(const float* w, int64_t rows, int64_t cols);
  // GGUF Q8_0 tensor data: rows × (cols / 32) blocks of 34 bytes (f16 d, 32 int8).
  static Q8Matrix from_gguf(const std::byte* blocks, int64_t rows, int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t blocks() const { return cols_ / kBlock; }
  int64_t groups() const { return (rows_ + kGroup - 1) / kGroup; }
  size_t bytes() const { return size_t(groups()) * size_t(blocks()) * kBlockBytes; }
  bool empty() const { return rows_ == 0; }
  // The packed data of group g, K-block b.
  const std::byte* block(int64_t g, int64_t b) const { return data_.get() + (size_t(g) * size_t(blocks()) + size_t(b)) * kBlockBytes; }
  // The weights as f32 [rows, cols] (d·q, exactly): the reference the kernel is tested against.
  std::vector<float> dequantize() const;

 private:
  // Fills the packed layout from per-row scales and int8 values.
  static Q8Matrix pack(int64_t rows, int64_t cols, const float* scales, const int8_t* q);
  int64_t rows_ = 0, cols_ = 0;
  std::shared_ptr<std::byte[]> data_;
};

// Activations quantised per row and block of 32, as the kernel takes them.
struct Q8Activations {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> q;     // [rows, cols]: q + 128
  std::vector<float> scale;   // [rows, cols / 32]
};
Q8Activations quantize_activations(const float* x, int64_t rows, int64_t cols);

// y [M, w.rows()] = x [M, w.cols()] · wᵀ (+ bias [w.rows()] when not null), f32. Threaded over
// the row groups of w. `force_portable`: the plain C++ path even on a VNNI CPU (tests compare
// the two: same integers, same f32 operations, so the same bits).
void q8_linear(const float* x, int64_t M, const Q8Matrix& w, const float* bias, float* y, bool force_portable = false);
// Whether q8_linear uses AVX-512 VNNI on this CPU.
bool q8_has_vnni();

}  // namespace reel::quant
