// Video frames in memory: float -> uint8 against diffusers' postprocess (fixtures), layouts,
// dtypes, validation, and the choice of format by path.
#include "video/video_writers.hpp"
#include "video_test_util.hpp"

namespace reel {
namespace {

using test::expect_code;
using test::read_raw;
using test::video_fixture;

// The fixture holds diffusers' uint8 frames for a float32 [1, 3, 2, 5, 7] VAE output with 27
// exact rounding ties: every byte must match (the conversion is exact float32 arithmetic).
TEST(VideoFromFloats, MatchesDiffusersPostprocessBitExact) {
  const std::vector<float> in = read_raw<float>(video_fixture("postprocess_in.f32"));
  const std::vector<uint8_t> want = read_raw<uint8_t>(video_fixture("postprocess_out.u8"));
  ASSERT_EQ(in.size(), 3u * 2 * 5 * 7);
  ASSERT_EQ(want.size(), in.size());
  const Tensor x = Tensor::from_floats({1, 3, 2, 5, 7}, in);
  const Video v = video_from_floats(x, FrameLayout::cthw, PixelRange::minus_one_to_one, 16.0);
  EXPECT_EQ(v.frames, 2);
  EXPECT_EQ(v.height, 5);
  EXPECT_EQ(v.width, 7);
  EXPECT_EQ(v.fps, 16.0);
  ASSERT_EQ(v.rgb.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(int(v.rgb[i]), int(want[i])) << "byte " << i;

  // The same values as [T, H, W, 3] (and without the batch dimension) give the same bytes.
  std::vector<float> thwc(in.size());
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2 * 5 * 7; ++i) thwc[size_t(i) * 3 + c] = in[size_t(c) * 70 + i];
  const Video v2 = video_from_floats(Tensor::from_floats({2, 5, 7, 3}, thwc), FrameLayout::thwc,
                                     PixelRange::minus_one_to_one, 16.0);
  EXPECT_EQ(v2.rgb, v.rgb);
  const Video v3 = video_from_floats(Tensor::from_floats({3, 2, 5, 7}, in), FrameLayout::cthw,
                                     PixelRange::minus_one_to_one, 16.0);
  EXPECT_EQ(v3.rgb, v.rgb);
}

// numpy_to_pil on [0, 1] input: (x * 255).round() in float32, ties to even.
TEST(VideoFromFloats, ZeroToOneMatchesNumpyRounding) {
  const std::vector<float> in = read_raw<float>(video_fixture("unit_in.f32"));
  const std::vector<uint8_t> want = read_raw<uint8_t>(video_fixture("unit_out.u8"));
  ASSERT_EQ(in.size(), want.size());
  for (size_t i = 0; i < in.size(); ++i)
    EXPECT_EQ(int(pixel_to_u8(in[i], PixelRange::zero_to_one)), int(want[i])) << "x = " << in[i];
}

TEST(VideoFromFloats, ClampsAndMapsNanToZero) {
  EXPECT_EQ(pixel_to_u8(-7.0f, PixelRange::minus_one_to_one), 0);
  EXPECT_EQ(pixel_to_u8(7.0f, PixelRange::minus_one_to_one), 255);
  EXPECT_EQ(pixel_to_u8(2.0f, PixelRange::zero_to_one), 255);
  EXPECT_EQ(pixel_to_u8(std::nanf(""), PixelRange::minus_one_to_one), 0);
  EXPECT_EQ(pixel_to_u8(-INFINITY, PixelRange::zero_to_one), 0);
  EXPECT_EQ(pixel_to_u8(INFINITY, PixelRange::zero_to_one), 255);
}

// bf16 frames: the bf16 values, widened exactly to f32, go through the same conversion.
TEST(VideoFromFloats, Bf16InputUsesItsExactValues) {
  const Tensor x = test::random_tensor({3, 2, 4, 6}, 11, DType::bf16, -1.1f, 1.1f);
  const std::vector<float> f = x.to_floats();
  const Video v = video_from_floats(x, FrameLayout::cthw, PixelRange::minus_one_to_one, 24.0);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2 * 4 * 6; ++i)
      ASSERT_EQ(v.rgb[size_t(i) * 3 + c], pixel_to_u8(f[size_t(c) * 48 + i], PixelRange::minus_one_to_one));
}

TEST(VideoFromFloats, RejectsBadShapesAndFps) {
  const Tensor four = test::random_tensor({4, 2, 4, 6}, 1);
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(four, FrameLayout::cthw, PixelRange::zero_to_one, 16); }, "[4, 2, 4, 6]");
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(four, FrameLayout::thwc, PixelRange::zero_to_one, 16); }, "[T, H, W, 3]");
  const Tensor ok = test::random_tensor({2, 4, 6, 3}, 1);
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(ok, FrameLayout::thwc, PixelRange::zero_to_one, 0.0); }, "fps");
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(ok, FrameLayout::thwc, PixelRange::zero_to_one, NAN); }, "fps");
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(Tensor(), FrameLayout::thwc, PixelRange::zero_to_one, 16); }, "undefined");
  const Tensor empty = Tensor::zeros({0, 4, 6, 3}, DType::f32);
  expect_code(StatusCode::invalid_argument, [&] { video_from_floats(empty, FrameLayout::thwc, PixelRange::zero_to_one, 16); }, "at least 1");
}

TEST(Video, ValidateNamesTheMismatch) {
  Video v = Video::blank(2, 4, 6, 16.0);
  EXPECT_NO_THROW(v.validate());
  v.rgb.pop_back();
  expect_code(StatusCode::invalid_argument, [&] { v.validate(); }, "rgb holds");
  expect_code(StatusCode::invalid_argument, [] { Video::blank(1, 0, 4, 16.0); }, "at least 1");
  expect_code(StatusCode::invalid_argument, [] { Video::blank(1, 4, 40000, 16.0); }, "40000");
}

TEST(VideoFormat, ChosenByExtensionOrTrailingSlash) {
  EXPECT_EQ(video_format_for_path("a/b.mp4"), VideoFormat::mp4);
  EXPECT_EQ(video_format_for_path("B.MP4"), VideoFormat::mp4);
  EXPECT_EQ(video_format_for_path("x.webm"), VideoFormat::webm);
  EXPECT_EQ(video_format_for_path("x.y4m"), VideoFormat::y4m);
  EXPECT_EQ(video_format_for_path("x.png"), VideoFormat::png);
  EXPECT_EQ(video_format_for_path("frames/"), VideoFormat::png_folder);
  EXPECT_EQ(video_format_for_path("frames.mp4/"), VideoFormat::png_folder);
  expect_code(StatusCode::invalid_argument, [] { video_format_for_path("clip.avi"); }, "clip.avi");
  expect_code(StatusCode::invalid_argument, [] { video_format_for_path("frames"); }, "'/'");
  EXPECT_TRUE(video_format_available(VideoFormat::y4m));
  EXPECT_TRUE(video_format_available(VideoFormat::png_folder));
}

TEST(VideoFormat, FpsAsRational) {
  struct Case {
    double fps;
    int num, den;
  } cases[] = {{16.0, 16, 1}, {24.0, 24, 1}, {30000.0 / 1001.0, 30000, 1001}, {12.5, 25, 2}, {0.5, 1, 2}};
  for (const Case& c : cases) {
    const video::Rational r = video::fps_rational(c.fps);
    EXPECT_EQ(r.num, c.num) << c.fps;
    EXPECT_EQ(r.den, c.den) << c.fps;
  }
  // Irrational rates: the approximation is within 1e-9 relative or uses the largest denominator.
  const video::Rational r = video::fps_rational(3.14159265358979);
  EXPECT_NEAR(double(r.num) / r.den, 3.14159265358979, 1e-9);
}

}  // namespace
}  // namespace reel
