// Pillow-exact Lanczos and bicubic resizes for RGB (Image.resize(size, Image.LANCZOS / BICUBIC)
// of Pillow 13, libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc,
// ResampleHorizontal/Vertical_8bpc, the pass order), cover / stretch fitting, and the
// conversion to a [-1, 1] tensor.
#include <algorithm>
#include <climits>
#include <cmath>
#include <numbers>
#include <string>

#include "parallel.hpp"
#include "reel/video_io.hpp"

namespace reel {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's fixed-point weights for 8-bit images

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}
double lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0; }

// Pillow's bicubic kernel (Keys, a = −0.5), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// A separable filter: its kernel and support (in input samples, before antialiasing widens it).
struct Filter {
  double (*kernel)(double);
  double support;
};
constexpr Filter kLanczos{lanczos, 3.0};
constexpr Filter kBicubic{bicubic, 2.0};

// The weights of one axis: output sample i reads input samples [first[i], first[i] + count[i])
// with weights k[i * ksize + j], in Pillow's 22-bit fixed point.
struct Weights {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Weights filter_weights(const Filter& filter, int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);  // widen the filter when shrinking: antialiasing
  const double support = filter.support * filterscale;
  Weights w;
  w.ksize = int(std::ceil(support)) * 2 + 1;
  w.first.resize(size_t(out_size));
  w.count.resize(size_t(out_size));
  w.k.assign(size_t(out_size) * w.ksize, 0);
  std::vector<double> kk(size_t(w.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);  // C truncation, as Pillow
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      kk[size_t(x)] = filter.kernel((x + xmin - center + 0.5) * ss);
      ww += kk[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? kk[size_t(x)] / ww : kk[size_t(x)];
      v *= double(1 << kPrecisionBits);
      w.k[size_t(xx) * w.ksize + x] = int32_t(v < 0 ? -0.5 + v : 0.5 + v);
    }
    w.first[size_t(xx)] = xmin;
    w.count[size_t(xx)] = xmax;
  }
  return w;
}

inline uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return uint8_t(std::clamp<int64_t>(v, 0, 255));
}

// Horizontal pass over rows [row0, row0 + rows) of `in`, into an out_w-wide image.
Image resample_horizontal(const Image& in, const Filter& filter, int out_w, int row0, int rows) {
  const Weights w = filter_weights(filter, in.width, out_w);
  Image out;
  out.width = out_w;
  out.height = rows;
  out.rgb.resize(size_t(out_w) * rows * 3);
  parallel_for(rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t y = begin; y < end; ++y) {
      const uint8_t* src = in.rgb.data() + size_t(row0 + y) * in.width * 3;
      uint8_t* dst = out.rgb.data() + size_t(y) * out_w * 3;
      for (int xx = 0; xx < out_w; ++xx) {
        const int32_t* k = &w.k[size_t(xx) * w.ksize];
        const uint8_t* p = src + size_t(w.first[size_t(xx)]) * 3;
        int64_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < w.count[size_t(xx)]; ++x) {
          s0 += int64_t(p[3 * x + 0]) * k[x];
          s1 += int64_t(p[3 * x + 1]) * k[x];
          s2 += int64_t(p[3 * x + 2]) * k[x];
        }
        dst[3 * xx + 0] = clip8(s0);
        dst[3 * xx + 1] = clip8(s1);
        dst[3 * xx + 2] = clip8(s2);
      }
    }
  });
  return out;
}

// Vertical pass: `w` indexes rows of `in` shifted by `row0` (the first row `in` holds).
Image resample_vertical(const Image& in, const Weights& w, int out_h, int row0) {
  Image out;
  out.width = in.width;
  out.height = out_h;
  out.rgb.resize(size_t(in.width) * out_h * 3);
  const size_t row_bytes = size_t(in.width) * 3;
  parallel_for(out_h, 8, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> acc(row_bytes);
    for (int64_t yy = begin; yy < end; ++yy) {
      const int32_t* k = &w.k[size_t(yy) * w.ksize];
      std::fill(acc.begin(), acc.end(), int64_t(1) << (kPrecisionBits - 1));
      for (int y = 0; y < w.count[size_t(yy)]; ++y) {
        const uint8_t* src = in.rgb.data() + size_t(w.first[size_t(yy)] - row0 + y) * row_bytes;
        for (size_t i = 0; i < row_bytes; ++i) acc[i] += int64_t(src[i]) * k[y];
      }
      uint8_t* dst = out.rgb.data() + size_t(yy) * row_bytes;
      for (size_t i = 0; i < row_bytes; ++i) dst[i] = clip8(acc[i]);
    }
  });
  return out;
}

void check_image(const Image& image, const char* what) {
  require(image.width >= 1 && image.height >= 1 &&
              image.rgb.size() == size_t(image.width) * size_t(image.height) * 3,
          StatusCode::invalid_argument,
          std::string(what) + ": the image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
              " with " + std::to_string(image.rgb.size()) + " bytes of RGB (want width x height x 3, both >= 1)");
}

void check_target(int width, int height, const char* what) {
  require(width >= 1 && height >= 1 && width <= 32768 && height <= 32768, StatusCode::invalid_argument,
          std::string(what) + ": target size " + std::to_string(width) + "x" + std::to_string(height) +
              " is outside 1..32768");
}

// Python's round(): to nearest, ties to even.
double round_half_even(double x) {
  double r = std::floor(x);
  const double frac = x - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

// Image.resize with a separable filter (what Resample.c's ImagingResampleInner does).
Image resize_separable(const Image& image, const Filter& filter, int width, int height) {
  if (width == image.width && height == image.height) return image;
  const bool need_h = width != image.width, need_v = height != image.height;
  if (!need_v) return resample_horizontal(image, filter, width, 0, image.height);
  const Weights wv = filter_weights(filter, image.height, height);
  if (!need_h) return resample_vertical(image, wv, height, 0);
  // Pass order, as Pillow 13 chooses it (Resample.c after python-pillow/Pillow#9549; found by
  // matching Pillow 13.0.0 on ~900 random sizes, since the intermediate is rounded to uint8 the
  // order changes results by ±1): vertical first when the height shrinks by more than twice
  // as many pixels as the width does. Pillow 12 and older always went horizontal first.
  const bool vertical_first = height < image.height && (image.height - height) > 2 * (image.width - width);
  if (vertical_first) return resample_horizontal(resample_vertical(image, wv, height, 0), filter, width, 0, height);
  // Pillow runs the horizontal pass only over the rows the vertical pass reads.
  const int first = wv.first.front();
  const int last = wv.first.back() + wv.count.back();
  const Image tmp = resample_horizontal(image, filter, width, first, last - first);
  return resample_vertical(tmp, wv, height, first);
}

}  // namespace

Image resize_lanczos(const Image& image, int width, int height) {
  check_image(image, "resize_lanczos");
  check_target(width, height, "resize_lanczos");
  return resize_separable(image, kLanczos, width, height);
}

Image resize_bicubic(const Image& image, int width, int height) {
  check_image(image, "resize_bicubic");
  check_target(width, height, "resize_bicubic");
  return resize_separable(image, kBicubic, width, height);
}

Image resize_image(const Image& image, int width, int height, ResizeMode mode) {
  check_image(image, "resize_image");
  check_target(width, height, "resize_image");
  if (mode == ResizeMode::stretch) return resize_lanczos(image, width, height);
  // Original Wan 2.2 TI2V: scale = max(ow / iw, oh / ih); resize to
  // (round(iw * scale), round(ih * scale)); crop at ((w - ow) // 2, (h - oh) // 2).
  const double scale = std::max(double(width) / image.width, double(height) / image.height);
  const double sw = round_half_even(image.width * scale), sh = round_half_even(image.height * scale);
  require(sw <= 32768 && sh <= 32768, StatusCode::invalid_argument,
          "resize_image: covering " + std::to_string(width) + "x" + std::to_string(height) + " from " +
              std::to_string(image.width) + "x" + std::to_string(image.height) + " needs an intermediate image over 32768 pixels per side");
  const int rw = std::max(int(sw), width), rh = std::max(int(sh), height);
  const Image scaled = resize_lanczos(image, rw, rh);
  const int x0 = (rw - width) / 2, y0 = (rh - height) / 2;
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    std::copy_n(scaled.rgb.data() + (size_t(y0 + y) * rw + x0) * 3, size_t(width) * 3,
                out.rgb.data() + size_t(y) * width * 3);
  return out;
}

Tensor image_to_tensor(const Image& image) {
  check_image(image, "image_to_tensor");
  const int64_t plane = int64_t(image.width) * image.height;
  Tensor t = Tensor::empty({3, image.height, image.width}, DType::f32);
  float* out = t.data<float>();
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) out[c * plane + i] = 2.0f * (float(image.rgb[size_t(i) * 3 + c]) / 255.0f) - 1.0f;
  return t;
}

Tensor load_image_tensor(const std::filesystem::path& path, int width, int height, ResizeMode mode) {
  check_target(width, height, "load_image_tensor");
  return image_to_tensor(resize_image(read_image(path), width, height, mode));
}

}  // namespace reel
