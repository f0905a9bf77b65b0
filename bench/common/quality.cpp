// PSNR over the bytes; SSIM on luma with a separable Gaussian window ("valid" positions only).
#include "common/quality.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace reel::bench {

namespace {

void require_same_size(const Video& a, const Video& b) {
  if (a.width != b.width || a.height != b.height || a.frames != b.frames || a.rgb.size() != b.rgb.size())
    throw std::invalid_argument("quality: the clips differ in size");
}

// frame f's luma, [height, width]
std::vector<double> luma(const Video& v, int f) {
  std::vector<double> y(size_t(v.width) * size_t(v.height));
  const uint8_t* p = v.rgb.data() + size_t(f) * y.size() * 3;
  for (size_t i = 0; i < y.size(); ++i) y[i] = 0.299 * p[3 * i] + 0.587 * p[3 * i + 1] + 0.114 * p[3 * i + 2];
  return y;
}

// Gaussian-weighted local means of `x` over 11×11 windows (separable), valid positions only.
std::vector<double> blur(const std::vector<double>& x, int w, int h, const std::vector<double>& g, int& ow, int& oh) {
  const int k = int(g.size());
  ow = w - k + 1, oh = h - k + 1;
  std::vector<double> rows(size_t(ow) * size_t(h)), out(size_t(ow) * size_t(oh));
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < ow; ++c) {
      double s = 0;
      for (int i = 0; i < k; ++i) s += g[size_t(i)] * x[size_t(r) * size_t(w) + size_t(c + i)];
      rows[size_t(r) * size_t(ow) + size_t(c)] = s;
    }
  for (int r = 0; r < oh; ++r)
    for (int c = 0; c < ow; ++c) {
      double s = 0;
      for (int i = 0; i < k; ++i) s += g[size_t(i)] * rows[size_t(r + i) * size_t(ow) + size_t(c)];
      out[size_t(r) * size_t(ow) + size_t(c)] = s;
    }
  return out;
}

}  // namespace

double psnr(const Video& a, const Video& b) {
  require_same_size(a, b);
  double se = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) se += std::pow(double(a.rgb[i]) - b.rgb[i], 2);
  return se == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / (se / double(a.rgb.size())));
}

double ssim(const Video& a, const Video& b) {
  require_same_size(a, b);
  std::vector<double> g(11);
  double total = 0;
  for (int i = 0; i < 11; ++i) total += g[size_t(i)] = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
  for (double& v : g) v /= total;
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  double sum = 0;
  int64_t count = 0;
  for (int f = 0; f < a.frames; ++f) {
    const std::vector<double> x = luma(a, f), y = luma(b, f);
    std::vector<double> xx(x.size()), yy(x.size()), xy(x.size());
    for (size_t i = 0; i < x.size(); ++i) xx[i] = x[i] * x[i], yy[i] = y[i] * y[i], xy[i] = x[i] * y[i];
    int w = 0, h = 0;
    const auto mx = blur(x, a.width, a.height, g, w, h), my = blur(y, a.width, a.height, g, w, h);
    const auto sxx = blur(xx, a.width, a.height, g, w, h), syy = blur(yy, a.width, a.height, g, w, h);
    const auto sxy = blur(xy, a.width, a.height, g, w, h);
    for (size_t i = 0; i < mx.size(); ++i) {
      const double vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i], cov = sxy[i] - mx[i] * my[i];
      sum += ((2 * mx[i] * my[i] + c1) * (2 * cov + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
      ++count;
    }
  }
  return count ? sum / double(count) : 1.0;
}

}  // namespace reel::bench
