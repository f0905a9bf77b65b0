// First-frame reading: Pillow-exact Lanczos (fixtures), a double-precision reference of the
// same resampling, Wan 2.2 cover and diffusers stretch preprocessing, EXIF orientation, and
// broken files (bad_format / io_error, never a crash).
#include <array>
#include <bit>

#include "video_test_util.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;
using test::expect_code;
using test::read_bytes;
using test::video_fixture;

Image fixture_image(const std::string& name) { return read_image(video_fixture(name)); }

void expect_same_image(const Image& got, const Image& want, const std::string& what) {
  ASSERT_EQ(got.width, want.width) << what;
  ASSERT_EQ(got.height, want.height) << what;
  for (size_t i = 0; i < want.rgb.size(); ++i)
    ASSERT_EQ(int(got.rgb[i]), int(want.rgb[i]))
        << what << ": pixel (" << (i / 3) % want.width << ", " << (i / 3) / want.width << ") channel " << i % 3;
}

// Pillow's Image.resize(size, LANCZOS) of a random 37x23 image, for downscales (to 5x3: a
// 7x filter), upscales, one-axis and mixed resizes, both pass orders (50x12 and 30x5 run the
// vertical pass first): every byte equal.
TEST(ImageResize, MatchesPillowLanczosBitExact) {
  const Image src = fixture_image("resize_src.png");
  ASSERT_EQ(src.width, 37);
  ASSERT_EQ(src.height, 23);
  const int sizes[][2] = {{16, 16}, {64, 40}, {37, 11}, {20, 23}, {50, 12}, {30, 5}, {5, 3}, {37, 23}};
  for (const auto& s : sizes) {
    const std::string name = "resize_" + std::to_string(s[0]) + "x" + std::to_string(s[1]) + ".png";
    expect_same_image(resize_lanczos(src, s[0], s[1]), fixture_image(name), name);
  }
}

// ------------------------------------------------------------------ double-precision reference

// The resampling written out in double: Lanczos-3 weights L(x) = sinc(x)·sinc(x/3) on |x| < 3,
// widened by the downscale factor f = max(in/out, 1); output i centred at c = (i + ½)·in/out
// reads inputs trunc(c − 3f + ½) .. trunc(c + 3f + ½) (clamped) with weights L((j + ½ − c)/f)
// normalised to sum 1. One axis after the other (vertical first when the height loses more
// than twice as many pixels as the width), the first pass clipped to [0, 255], not rounded.
struct RefWeights {
  std::vector<int> first;
  std::vector<std::vector<double>> w;
  double max_abs_sum = 0;  // max over outputs of Σ|w|
};

double ref_lanczos(double x) {
  auto sinc = [](double v) { return v == 0 ? 1.0 : std::sin(v * M_PI) / (v * M_PI); };
  return std::abs(x) < 3 || x == -3 ? sinc(x) * sinc(x / 3) : 0.0;
}

RefWeights ref_weights(int in, int out) {
  RefWeights r;
  const double scale = double(in) / out, f = std::max(scale, 1.0), support = 3 * f;
  for (int i = 0; i < out; ++i) {
    const double c = (i + 0.5) * scale;
    const int lo = std::max(0, int(c - support + 0.5)), hi = std::min(in, int(c + support + 0.5));
    std::vector<double> w;
    double sum = 0;
    for (int j = lo; j < hi; ++j) {
      w.push_back(ref_lanczos((j + 0.5 - c) / f));
      sum += w.back();
    }
    double abs_sum = 0;
    for (double& v : w) abs_sum += std::abs(v /= sum);
    r.max_abs_sum = std::max(r.max_abs_sum, abs_sum);
    r.first.push_back(lo);
    r.w.push_back(std::move(w));
  }
  return r;
}

// A planar-free image of doubles [h, w, 3].
struct RefImage {
  int w, h;
  std::vector<double> v;
};

// Resamples one axis (horizontal or vertical) to `out` samples, clipping to [0, 255].
RefImage ref_pass(const RefImage& in, int out, bool horizontal) {
  const int n_in = horizontal ? in.w : in.h;
  RefImage o{horizontal ? out : in.w, horizontal ? in.h : out, {}};
  o.v.resize(size_t(o.w) * o.h * 3);
  const RefWeights rw = ref_weights(n_in, out);
  for (int y = 0; y < o.h; ++y)
    for (int x = 0; x < o.w; ++x)
      for (int c = 0; c < 3; ++c) {
        const int i = horizontal ? x : y;
        double s = 0;
        for (size_t k = 0; k < rw.w[i].size(); ++k) {
          const int j = rw.first[i] + int(k);
          s += rw.w[i][k] * in.v[((horizontal ? size_t(y) * in.w + j : size_t(j) * in.w + x)) * 3 + c];
        }
        o.v[(size_t(y) * o.w + x) * 3 + c] = std::clamp(s, 0.0, 255.0);
      }
  return o;
}

// Returns the resized image; second_gain is Σ|w| of the second pass (0 when only one runs).
std::vector<double> ref_resize(const Image& src, int W, int H, double& second_gain) {
  RefImage img{src.width, src.height, {src.rgb.begin(), src.rgb.end()}};
  const bool need_h = W != src.width, need_v = H != src.height;
  const bool vertical_first = H < src.height && (src.height - H) > 2 * (src.width - W);
  second_gain = 0;
  if (need_h && need_v) {
    second_gain = vertical_first ? ref_weights(src.width, W).max_abs_sum : ref_weights(src.height, H).max_abs_sum;
    img = vertical_first ? ref_pass(ref_pass(img, H, false), W, true) : ref_pass(ref_pass(img, W, true), H, false);
  } else if (need_h) {
    img = ref_pass(img, W, true);
  } else if (need_v) {
    img = ref_pass(img, H, false);
  }
  return img.v;
}

// reel stores the first pass as uint8 (rounding error ≤ ½, carried through the second pass's
// weights: ≤ ½·Σ|w|), rounds the output (≤ ½), and uses 22-bit fixed-point weights (each off by
// ≤ 2^-23; over ≤ 2·3·7+1 taps of ≤ 255 that is < 0.003 per pass). So
// |reel − reference| ≤ ½·Σ|w_second| + ½ + 0.01.
TEST(ImageResize, WithinDerivedBoundOfDoubleReference) {
  std::mt19937_64 rng(77);
  for (const auto& [w, h, W, H] : std::vector<std::array<int, 4>>{
           {31, 19, 12, 8}, {31, 19, 70, 45}, {31, 19, 31, 7}, {31, 19, 9, 19}, {17, 29, 40, 6}, {64, 48, 7, 9},
           {40, 60, 30, 12}}) {
    Image src;
    src.width = w;
    src.height = h;
    src.rgb.resize(size_t(w) * h * 3);
    for (auto& b : src.rgb) b = uint8_t(rng() & 0xFF);
    double gain = 0;
    const std::vector<double> ref = ref_resize(src, W, H, gain);
    const Image got = resize_lanczos(src, W, H);
    ASSERT_EQ(got.width, W);
    ASSERT_EQ(got.height, H);
    const double bound = 0.5 * gain + 0.5 + 0.01;
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(got.rgb[i] - ref[i]));
    EXPECT_LE(worst, bound) << w << "x" << h << " -> " << W << "x" << H;
    // The bound is not vacuous: it is below 2 levels everywhere here.
    EXPECT_LT(bound, 2.0);
  }
}

// ------------------------------------------------------------------ cover / stretch / tensor

// Original Wan 2.2 TI2V preprocessing (scale to cover, centre crop), from the fixture script.
TEST(ImageResize, CoverMatchesWan22Preprocessing) {
  const Image src = fixture_image("resize_src.png");
  for (const auto& s : {std::array<int, 2>{32, 16}, {16, 32}, {48, 48}}) {
    const std::string name = "cover_" + std::to_string(s[0]) + "x" + std::to_string(s[1]) + ".png";
    expect_same_image(resize_image(src, s[0], s[1], ResizeMode::cover), fixture_image(name), name);
  }
}

// diffusers' VideoProcessor.preprocess(image, 16, 24): PIL Lanczos to 24x16 ignoring the aspect
// ratio, then 2 · (v / 255) − 1 in float32. Bitwise equal floats.
TEST(ImageResize, StretchTensorMatchesDiffusersPreprocess) {
  const std::vector<float> want = test::read_raw<float>(video_fixture("stretch_24x16.f32"));
  ASSERT_EQ(want.size(), 3u * 16 * 24);
  const Tensor got = load_image_tensor(video_fixture("resize_src.png"), 24, 16, ResizeMode::stretch);
  ASSERT_EQ(got.shape(), Shape({3, 16, 24}));
  const float* g = got.data<float>();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(g[i]), std::bit_cast<uint32_t>(want[i])) << i;
}

TEST(ImageResize, RejectsBadSizesAndImages) {
  const Image src = fixture_image("resize_src.png");
  expect_code(StatusCode::invalid_argument, [&] { resize_image(src, 0, 16); }, "0x16");
  expect_code(StatusCode::invalid_argument, [&] { resize_lanczos(src, 16, -3); }, "16x-3");
  Image broken = src;
  broken.rgb.resize(7);
  expect_code(StatusCode::invalid_argument, [&] { resize_image(broken, 8, 8); }, "bytes of RGB");
  expect_code(StatusCode::invalid_argument, [&] { image_to_tensor(Image{}); }, "0x0");
}

// ------------------------------------------------------------------ EXIF orientation

// diffusers' load_image applies ImageOps.exif_transpose: all eight orientations, bit-exact.
TEST(ImageRead, AppliesExifOrientationLikeDiffusers) {
  for (int n = 1; n <= 8; ++n) {
    const Image got = fixture_image("exif_" + std::to_string(n) + ".png");
    const Image want = fixture_image("exif_" + std::to_string(n) + "_expected.png");
    EXPECT_EQ(got.width, n >= 5 ? 3 : 5) << "orientation " << n;
    expect_same_image(got, want, "orientation " + std::to_string(n));
  }
}

// JPEG: stb_image and libjpeg-turbo (Pillow) are different conforming decoders: IDCTs accurate
// to ±1 (IEEE 1180) and different chroma upsampling. On this smooth 24x16 gradient (quality 95)
// they agree to a mean of ≤ 1 level and at most 4; the rotation must match exactly (a wrong one
// would put the gradients on the wrong axes: tens of levels off).
TEST(ImageRead, JpegWithOrientationCloseToPillow) {
  const Image got = fixture_image("exif_6.jpg");
  const Image want = fixture_image("exif_6_jpg_expected.png");
  ASSERT_EQ(got.width, 16);
  ASSERT_EQ(got.height, 24);
  ASSERT_EQ(want.width, 16);
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < want.rgb.size(); ++i) {
    const int d = std::abs(int(got.rgb[i]) - int(want.rgb[i]));
    sum += d;
    worst = std::max(worst, d);
  }
  std::printf("JPEG vs Pillow: mean |diff| %.3f, max %d\n", sum / want.rgb.size(), worst);
  EXPECT_LE(sum / want.rgb.size(), 1.0);
  EXPECT_LE(worst, 4);
}

// ------------------------------------------------------------------ broken input

TEST(ImageRead, CorruptFilesAreBadFormat) {
  const std::vector<uint8_t> png = read_bytes(video_fixture("resize_src.png"));
  const std::vector<uint8_t> jpg = read_bytes(video_fixture("exif_6.jpg"));
  auto decode = [](std::vector<uint8_t> b) { return [b] { decode_image(b, "test.img"); }; };

  expect_code(StatusCode::bad_format, decode({}), "not a PNG or JPEG");
  expect_code(StatusCode::bad_format, decode({'h', 'e', 'l', 'l', 'o'}), "test.img");
  expect_code(StatusCode::bad_format, decode(std::vector<uint8_t>(png.begin(), png.begin() + 8)), "test.img");
  expect_code(StatusCode::bad_format, decode(std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2)), "test.img");
  // The zlib stream header of the first IDAT chunk overwritten.
  std::vector<uint8_t> bad_zlib = png;
  for (size_t i = 8; i + 8 < bad_zlib.size(); ++i)
    if (std::memcmp(&bad_zlib[i], "IDAT", 4) == 0) {
      bad_zlib[i + 4] = 0xFF;
      bad_zlib[i + 5] = 0xFF;
      break;
    }
  expect_code(StatusCode::bad_format, decode(bad_zlib), "test.img");
  // A JPEG signature followed by noise.
  std::vector<uint8_t> noise = {0xFF, 0xD8, 0xFF};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) noise.push_back(uint8_t(rng()));
  expect_code(StatusCode::bad_format, decode(noise), "test.img");
  expect_code(StatusCode::bad_format, decode(std::vector<uint8_t>(jpg.begin(), jpg.begin() + 20)), "test.img");
}

// PNG headers declaring huge images (stb does not check CRCs, so a bare IHDR is enough):
// refused as unsupported before any pixel memory is allocated.
std::vector<uint8_t> png_header(uint32_t width, uint32_t height, uint8_t colour_type) {
  std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
  for (uint8_t v : {uint8_t(8), colour_type, uint8_t(0), uint8_t(0), uint8_t(0), uint8_t(0), uint8_t(0), uint8_t(0),
                    uint8_t(0)})
    b.push_back(v);
  return b;
}

TEST(ImageRead, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  expect_code(StatusCode::unsupported, [] { decode_image(png_header(100000, 100000, 2), "huge.png"); }, "huge.png");
  expect_code(StatusCode::unsupported, [] { decode_image(png_header(17000, 17000, 0), "grey.png"); }, "2^26");
  // A JPEG whose SOF0 declares 60000 x 60000.
  const std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xEA, 0x60, 0xEA, 0x60, 1, 1, 0x11, 0, 0xFF, 0xD9};
  expect_code(StatusCode::unsupported, [&] { decode_image(jpeg, "huge.jpg"); }, "60000x60000");
}

TEST(ImageRead, MissingFilesAndFoldersAreIoErrors) {
  const fs::path dir = test::scratch_dir();
  expect_code(StatusCode::io_error, [&] { read_image(dir / "none.png"); }, "none.png");
  expect_code(StatusCode::bad_format, [&] { read_image(dir); }, "not a regular file (a folder)");
  expect_code(StatusCode::io_error, [&] { load_image_tensor(dir / "none.jpg", 16, 16); }, "none.jpg");
}

}  // namespace
}  // namespace reel
