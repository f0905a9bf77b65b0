// Live previews: a linear map from a latent pixel (the normalised latents the sampler sees) to
// the RGB of the pixels it decodes to, fitted by least squares on the model's own VAE decoder:
// random smooth latent frames (Philox, fixed seed) are decoded as single first frames, each
// decoded frame is averaged over the s×s pixel block of each latent pixel (s the VAE's spatial
// factor), and rgb = a·z + b is solved over all latent pixels in double precision (normal
// equations, a tiny ridge). R² is measured on latents the fit did not see. A fit rather than published factors: it suits whatever VAE the model has, fine-tuned or
// the project's own.
#include <cmath>

#include "pipeline/pipeline_impl.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/video_io.hpp"

namespace reel::pipeline {

namespace {

constexpr int kFitFrames = 8, kTestFrames = 4;  // random latent frames to fit on / to measure on
constexpr int64_t kLatentSide = 8;              // each an 8×8 latent frame

// Rows: [z_0 .. z_{C-1}, 1] per latent pixel; targets: the block-averaged decoded RGB.
struct Samples {
  std::vector<double> x, y;  // [n, C + 1], [n, 3]
  int64_t n = 0;
};

Samples decode_samples(const Pipeline::Impl& p, int count, uint64_t stream) {
  const VaeConfig& vc = p.vae->config();
  const int64_t c = vc.z_dim, s = vc.spatial_factor(), hw = kLatentSide * kLatentSide;
  const int64_t W = kLatentSide * s, plane = W * W;
  Rng rng(0x5eed, stream);
  Samples out;
  for (int k = 0; k < count; ++k) {
    // Spatially smooth latents, as real ones are: a 4×4 normal field upsampled ×2, plus a
    // little per-pixel noise (iid latents decode to texture real clips do not have).
    const Tensor coarse = rng.normal({c, 4, 4}), fine = rng.normal({c, kLatentSide, kLatentSide});
    Tensor z = Tensor::empty({c, 1, kLatentSide, kLatentSide}, DType::f32);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < kLatentSide; ++i)
        for (int64_t j = 0; j < kLatentSide; ++j)
          z.data<float>()[ch * hw + i * kLatentSide + j] =
              coarse.data<float>()[(ch * 4 + i / 2) * 4 + j / 2] + 0.3f * fine.data<float>()[ch * hw + i * kLatentSide + j];
    const Tensor rgb = host_f32(p.vae->decode(denormalize_latents(*p.backend, z, vc)));  // [3, 1, W, W]
    const float* zp = z.data<float>();
    const float* dec = rgb.data<float>();
    for (int64_t i = 0; i < kLatentSide; ++i)
      for (int64_t j = 0; j < kLatentSide; ++j) {
        for (int64_t ch = 0; ch < c; ++ch) out.x.push_back(zp[ch * hw + i * kLatentSide + j]);
        out.x.push_back(1.0);
        for (int64_t col = 0; col < 3; ++col) {
          double sum = 0;
          for (int64_t u = 0; u < s; ++u)
            for (int64_t v = 0; v < s; ++v) sum += dec[col * plane + (i * s + u) * W + (j * s + v)];
          out.y.push_back(sum / double(s * s));
        }
        ++out.n;
      }
  }
  return out;
}

// Solves (XᵀX + λI)·w = Xᵀy for the three colours (Gaussian elimination with partial pivoting).
LatentRgb solve(const Samples& d, int64_t c) {
  const int64_t m = c + 1;
  std::vector<double> a(size_t(m * m), 0.0), r(size_t(m * 3), 0.0);
  for (int64_t k = 0; k < d.n; ++k) {
    const double* x = &d.x[size_t(k * m)];
    const double* y = &d.y[size_t(k * 3)];
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < m; ++j) a[size_t(i * m + j)] += x[i] * x[j];
      for (int64_t col = 0; col < 3; ++col) r[size_t(i * 3 + col)] += x[i] * y[col];
    }
  }
  for (int64_t i = 0; i < c; ++i) a[size_t(i * m + i)] += 1e-6 * double(d.n);  // ridge on the weights only
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t i = col + 1; i < m; ++i)
      if (std::fabs(a[size_t(i * m + col)]) > std::fabs(a[size_t(pivot * m + col)])) pivot = i;
    for (int64_t j = 0; j < m; ++j) std::swap(a[size_t(col * m + j)], a[size_t(pivot * m + j)]);
    for (int64_t j = 0; j < 3; ++j) std::swap(r[size_t(col * 3 + j)], r[size_t(pivot * 3 + j)]);
    const double d0 = a[size_t(col * m + col)];
    require(std::fabs(d0) > 1e-300, StatusCode::internal, "preview map: singular least-squares system");
    for (int64_t i = 0; i < m; ++i) {
      if (i == col) continue;
      const double f = a[size_t(i * m + col)] / d0;
      if (f == 0) continue;
      for (int64_t j = col; j < m; ++j) a[size_t(i * m + j)] -= f * a[size_t(col * m + j)];
      for (int64_t j = 0; j < 3; ++j) r[size_t(i * 3 + j)] -= f * r[size_t(col * 3 + j)];
    }
  }
  LatentRgb map;
  map.channels = c;
  map.a.assign(size_t(3 * c), 0.0);
  for (int64_t col = 0; col < 3; ++col) {
    for (int64_t i = 0; i < c; ++i) map.a[size_t(col * c + i)] = r[size_t(i * 3 + col)] / a[size_t(i * m + i)];
    map.b[col] = r[size_t(c * 3 + col)] / a[size_t(c * m + c)];
  }
  return map;
}

// Mean over R, G, B of 1 − SSE/SST of the map on `d`.
double r_squared(const LatentRgb& map, const Samples& d) {
  const int64_t c = map.channels, m = c + 1;
  double total = 0;
  for (int64_t col = 0; col < 3; ++col) {
    double mean = 0;
    for (int64_t k = 0; k < d.n; ++k) mean += d.y[size_t(k * 3 + col)];
    mean /= double(d.n);
    double sse = 0, sst = 0;
    for (int64_t k = 0; k < d.n; ++k) {
      double pred = map.b[col];
      for (int64_t i = 0; i < c; ++i) pred += map.a[size_t(col * c + i)] * d.x[size_t(k * m + i)];
      const double y = d.y[size_t(k * 3 + col)];
      sse += (y - pred) * (y - pred);
      sst += (y - mean) * (y - mean);
    }
    total += sst > 0 ? 1.0 - sse / sst : 0.0;
  }
  return total / 3.0;
}

}  // namespace

const LatentRgb& latent_rgb(const Pipeline::Impl& p) {
  std::call_once(p.latent_rgb_once, [&] {
    require(p.vae && p.vae->has_decoder(), StatusCode::invalid_argument, "previews need the model's VAE decoder");
    const int64_t c = p.vae->config().z_dim;
    LatentRgb map = solve(decode_samples(p, kFitFrames, 0), c);
    map.r2 = r_squared(map, decode_samples(p, kTestFrames, 1));
    p.latent_rgb = std::move(map);
  });
  return p.latent_rgb;
}

std::vector<uint8_t> preview_pixels(const LatentRgb& map, const Tensor& x0) {
  const int64_t c = x0.dim(0), frames = x0.dim(1), hw = x0.dim(2) * x0.dim(3);
  require(c == map.channels, StatusCode::internal, "preview map: latent channels do not match");
  const float* z = x0.data<float>();
  std::vector<uint8_t> rgb(size_t(frames * hw * 3));
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t col = 0; col < 3; ++col) {
        double v = map.b[col];
        for (int64_t ch = 0; ch < c; ++ch) v += map.a[size_t(col * c + ch)] * z[(ch * frames + f) * hw + i];
        rgb[size_t((f * hw + i) * 3 + col)] = pixel_to_u8(float(v), PixelRange::minus_one_to_one);
      }
  return rgb;
}

PreviewImage draw_preview(const Pipeline::Impl& p, const Tensor& x0) {
  PreviewImage out;
  if (!p.preview_decoder) {
    out.rgb = preview_pixels(latent_rgb(p), x0);
    out.frames = int(x0.dim(1)), out.height = int(x0.dim(2)), out.width = int(x0.dim(3));
    return out;
  }
  // [T, 3, H, W] in [0, 1] → the VAE's channels-first layout → RGB24 [T, H, W, 3]
  const int perm[] = {1, 0, 2, 3};
  const Tensor frames = ops::permute(*p.backend, p.preview_decoder->decode(*p.backend, x0), perm);
  Video video = video_from_floats(frames, FrameLayout::cthw, PixelRange::zero_to_one, 1.0);  // fps: unused here
  out.frames = video.frames, out.height = video.height, out.width = video.width;
  out.rgb = std::move(video.rgb);
  return out;
}

}  // namespace reel::pipeline
