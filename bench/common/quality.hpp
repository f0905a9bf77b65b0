// What a person sees, measured: PSNR and SSIM of a clip against a reference clip of the same
// size (RGB24), for the benches that trade quality for speed or memory (step caching,
// quantised weights) and report it against the exact path.
//
//   const double db = bench::psnr(fast.video, exact.video);   // 99 for identical clips
//   const double s = bench::ssim(fast.video, exact.video);    // 1 for identical clips
#pragma once
#include "reel/video_io.hpp"

namespace reel::bench {

// 10·log10(255² / MSE) over every byte; 99 when the clips are identical.
double psnr(const Video& a, const Video& b);
// Mean SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03) of the luma
// (BT.601: 0.299 R + 0.587 G + 0.114 B) over every frame and window position.
double ssim(const Video& a, const Video& b);

}  // namespace reel::bench
