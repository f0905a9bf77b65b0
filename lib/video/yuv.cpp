// RGB24 -> limited-range Y'CbCr 4:4:4 / 4:2:0 (formulas in yuv.hpp).
#include "video/yuv.hpp"

#include <array>
#include <cmath>

#include "parallel.hpp"

namespace reel::video {
namespace {

// Y, Cb and Cr are linear in R, G, B: per-channel tables of each term, in double.
struct Tables {
  std::array<double, 256> y[3], cb[3], cr[3];
};

Tables make_tables(YuvMatrix matrix) {
  const double kr = matrix == YuvMatrix::bt601 ? 0.299 : 0.2126;
  const double kb = matrix == YuvMatrix::bt601 ? 0.114 : 0.0722;
  const double kg = 1.0 - kr - kb;
  const double ys = 219.0 / 255.0, cs = 224.0 / 255.0;
  const double cbd = 2.0 * (1.0 - kb), crd = 2.0 * (1.0 - kr);
  // Coefficients of R, G, B in E, Cb − 128 and Cr − 128.
  const double ey[3] = {kr, kg, kb};
  const double ecb[3] = {-kr / cbd, -kg / cbd, (1.0 - kb) / cbd};
  const double ecr[3] = {(1.0 - kr) / crd, -kg / crd, -kb / crd};
  Tables t;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      t.y[c][v] = ys * ey[c] * v;
      t.cb[c][v] = cs * ecb[c] * v;
      t.cr[c][v] = cs * ecr[c] * v;
    }
  return t;
}

inline uint8_t round_u8(double x) { return static_cast<uint8_t>(std::floor(x + 0.5)); }

}  // namespace

void rgb_to_yuv(const uint8_t* rgb, int width, int height, YuvMatrix matrix, bool chroma_420,
                const YuvPlanes& out) {
  static const Tables t601 = make_tables(YuvMatrix::bt601);
  static const Tables t709 = make_tables(YuvMatrix::bt709);
  const Tables& t = matrix == YuvMatrix::bt601 ? t601 : t709;
  const size_t row_bytes = size_t(width) * 3;

  auto luma = [&](const uint8_t* p) { return 16.0 + t.y[0][p[0]] + t.y[1][p[1]] + t.y[2][p[2]]; };
  auto cb = [&](const uint8_t* p) { return t.cb[0][p[0]] + t.cb[1][p[1]] + t.cb[2][p[2]]; };
  auto cr = [&](const uint8_t* p) { return t.cr[0][p[0]] + t.cr[1][p[1]] + t.cr[2][p[2]]; };

  parallel_for(height, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const uint8_t* src = rgb + size_t(row) * row_bytes;
      uint8_t* yrow = out.y + row * out.y_stride;
      for (int x = 0; x < width; ++x) yrow[x] = round_u8(luma(src + 3 * x));
      if (!chroma_420) {
        uint8_t* urow = out.u + row * out.u_stride;
        uint8_t* vrow = out.v + row * out.v_stride;
        for (int x = 0; x < width; ++x) {
          urow[x] = round_u8(128.0 + cb(src + 3 * x));
          vrow[x] = round_u8(128.0 + cr(src + 3 * x));
        }
      }
    }
  });
  if (!chroma_420) return;

  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  parallel_for(ch, 8, [&](int64_t begin, int64_t end) {
    for (int64_t cy = begin; cy < end; ++cy) {
      const int rows = (2 * cy + 1 < height) ? 2 : 1;
      uint8_t* urow = out.u + cy * out.u_stride;
      uint8_t* vrow = out.v + cy * out.v_stride;
      for (int cx = 0; cx < cw; ++cx) {
        const int cols = (2 * cx + 1 < width) ? 2 : 1;
        double sb = 0, sr = 0;
        for (int dy = 0; dy < rows; ++dy)
          for (int dx = 0; dx < cols; ++dx) {
            const uint8_t* p = rgb + size_t(2 * cy + dy) * row_bytes + size_t(2 * cx + dx) * 3;
            sb += cb(p);
            sr += cr(p);
          }
        const double n = rows * cols;
        urow[cx] = round_u8(128.0 + sb / n);
        vrow[cx] = round_u8(128.0 + sr / n);
      }
    }
  });
}

}  // namespace reel::video
