// Internal: RGB24 -> limited-range Y'CbCr (BT.601 or BT.709), 4:4:4 or 4:2:0, for the Y4M and
// FFmpeg writers. One conversion, so every format gets the same colours.
//
// Per pixel (R, G, B in 0..255, Kr/Kb of the matrix, Kg = 1 − Kr − Kb):
//   E  = Kr·R + Kg·G + Kb·B
//   Y  = 16  + 219/255 · E
//   Cb = 128 + 224/255 · (B − E) / (2·(1 − Kb))
//   Cr = 128 + 224/255 · (R − E) / (2·(1 − Kr))
// 4:2:0: each chroma sample is the mean of the per-pixel Cb / Cr over its 2×2 block (blocks
// at an odd right / bottom edge hold 2 or 1 pixels), i.e. centred chroma siting (JPEG,
// Y4M's C420jpeg). Chroma planes are ceil(W/2) × ceil(H/2). Every value is computed in double
// and rounded half up; all results lie in [16, 240], so no clipping happens.
#pragma once
#include <cstddef>
#include <cstdint>

namespace reel::video {

enum class YuvMatrix { bt601, bt709 };

struct YuvPlanes {
  uint8_t* y;
  ptrdiff_t y_stride;
  uint8_t* u;  // Cb
  ptrdiff_t u_stride;
  uint8_t* v;  // Cr
  ptrdiff_t v_stride;
};

// rgb: width × height × 3, tightly packed. Parallel over rows.
void rgb_to_yuv(const uint8_t* rgb, int width, int height, YuvMatrix matrix, bool chroma_420,
                const YuvPlanes& out);

}  // namespace reel::video
