// ClipImageProcessor against transformers' CLIPImageProcessor (PIL backend) on the fixtures of
// tools/reference/make_clip_fixtures.py, and its preprocessor_config.json errors.
//
// Tolerance: none. Both sides do the same integer resampling (Pillow's 22-bit fixed point,
// uint8 between the passes) and the same two float operations per value (the float64 rescale
// rounded to float32, then (x − mean) / std in float32), so the pixels must be equal bit for bit.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_util.hpp"
#include "reel/image_encoder.hpp"
#include "reel/weights.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

fs::path clip_fixtures() { return fixtures_dir() / "clip"; }
Tensor reference(const std::string& name) {
  return WeightStore::open(clip_fixtures() / "reference.safetensors").load(name, DType::f32);
}
Image fixture_image(const std::string& name) { return read_image(clip_fixtures() / (name + ".png")); }

void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<float> a = got.to_floats(), b = want.to_floats();
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << a.size() << " values differ (max |diff| "
                        << max_abs_diff(to_doubles(got), to_doubles(want)) << ")";
}

class ProcessorCase : public ::testing::TestWithParam<std::string> {};

TEST_P(ProcessorCase, ResizeIsPilBicubicBitForBit) {
  const ClipImageProcessor proc = ClipImageProcessor::open(clip_fixtures() / "image_processor");
  const Image sized = proc.resize(fixture_image(GetParam()));
  const Tensor want = reference(GetParam() + "_resized");  // [h, w, 3] uint8 values
  ASSERT_EQ(sized.height, want.dim(0));
  ASSERT_EQ(sized.width, want.dim(1));
  std::vector<float> v(sized.rgb.begin(), sized.rgb.end());
  expect_equal(Tensor::from_floats(want.shape(), v), want, GetParam() + " resize");
}

TEST_P(ProcessorCase, PixelValuesEqualTransformers) {
  const ClipImageProcessor proc = ClipImageProcessor::open(clip_fixtures() / "image_processor");
  expect_equal(proc.preprocess(fixture_image(GetParam())), reference(GetParam() + "_pixels"), GetParam());
}

// wide 45×29 (upscaled), large 97×61 (downscaled: the antialiased kernel), tall 40×100 (portrait).
INSTANTIATE_TEST_SUITE_P(Images, ProcessorCase, ::testing::Values("wide", "large", "tall"));

TEST(ClipImageProcessor, TheWanConfigIsClipsDefaults) {
  // image_processor_224 is CLIPImageProcessor() saved by transformers: what the Wan 2.1 I2V
  // repositories ship. Reading it gives the built-in defaults.
  const ClipImageProcessor proc = ClipImageProcessor::open(clip_fixtures() / "image_processor_224" / "preprocessor_config.json");
  const ClipImageProcessorConfig& c = proc.config();
  const ClipImageProcessorConfig d;
  EXPECT_EQ(c.shortest_edge, 224);
  EXPECT_EQ(c.crop_width, 224);
  EXPECT_EQ(c.crop_height, 224);
  EXPECT_EQ(c.resample, ClipResample::bicubic);
  EXPECT_EQ(c.image_mean, d.image_mean);
  EXPECT_EQ(c.image_std, d.image_std);
  EXPECT_EQ(c.rescale_factor, d.rescale_factor);
  // 97×61 → 356×224 → the centre 224×224; every 7th row and column compared.
  const Tensor px = proc.preprocess(fixture_image("large"));
  ASSERT_EQ(px.shape(), (Shape{3, 224, 224}));
  Tensor strided = Tensor::empty({3, 32, 32}, DType::f32);
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x)
        strided.data<float>()[(ch * 32 + y) * 32 + x] = px.data<float>()[(ch * 224 + y * 7) * 224 + x * 7];
  expect_equal(strided, reference("large_pixels_224_strided"), "224 config");
  EXPECT_EQ(ClipImageProcessor().preprocess(fixture_image("large")).to_floats(), px.to_floats());
}

TEST(ClipImageProcessor, LanczosResample) {
  ClipImageProcessorConfig c;
  c.shortest_edge = 32, c.crop_width = 32, c.crop_height = 32, c.resample = ClipResample::lanczos;
  expect_equal(ClipImageProcessor(c).preprocess(fixture_image("wide")), reference("wide_pixels_lanczos"), "lanczos");
}

TEST(ClipImageProcessor, CropLargerThanTheImageZeroPads) {
  // No resize; crop 6 high (the image is 3: zero rows above and below) × 4 wide (of 5: cropped).
  ClipImageProcessorConfig c;
  c.do_resize = false, c.crop_height = 6, c.crop_width = 4;
  expect_equal(ClipImageProcessor(c).preprocess(fixture_image("tiny")), reference("tiny_pixels_padded"), "padded");
}

TEST(ClipImageProcessor, ResizedSizeFollowsTransformers) {
  const ClipImageProcessor proc;  // shortest edge 224
  EXPECT_EQ(proc.resized_size(832, 480), (std::array<int, 2>{388, 224}));  // int(224·832/480) = 388
  EXPECT_EQ(proc.resized_size(480, 832), (std::array<int, 2>{224, 388}));
  EXPECT_EQ(proc.resized_size(300, 300), (std::array<int, 2>{224, 224}));
  EXPECT_EQ(proc.resized_size(1, 3), (std::array<int, 2>{224, 672}));
}

void expect_open_error(const std::string& json, StatusCode code, const std::string& mentions) {
  const fs::path dir = tmp_dir() / "clip_processor_bad";
  fs::create_directories(dir);
  std::ofstream(dir / "preprocessor_config.json") << json;
  try {
    (void)ClipImageProcessor::open(dir);
    ADD_FAILURE() << "expected an error for " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(ClipImageProcessor, BadConfigsAreRefusedWithTheirCause) {
  expect_open_error("{\"resample\": 2}", StatusCode::unsupported, "BILINEAR");
  expect_open_error("{\"size\": {\"shortest_edge\": 224, \"longest_edge\": 400}}", StatusCode::unsupported, "size");
  expect_open_error("{\"crop_size\": {\"height\": 0, \"width\": 224}}", StatusCode::bad_format, "crop_size.height");
  expect_open_error("{\"image_std\": [0.2, 0.0, 0.3]}", StatusCode::bad_format, "image_std");
  expect_open_error("{\"image_mean\": [0.5, 0.5]}", StatusCode::bad_format, "image_mean");
  expect_open_error("{\"do_pad\": true}", StatusCode::unsupported, "do_pad");
  expect_open_error("{\"rescale_factor\": -1}", StatusCode::bad_format, "rescale_factor");
  expect_open_error("[1, 2]", StatusCode::bad_format, "not a JSON object");
  expect_open_error("{\"size\": ", StatusCode::bad_format, "preprocessor_config.json");
  try {
    (void)ClipImageProcessor::open(tmp_dir() / "no_such_processor");
    ADD_FAILURE() << "expected not_found";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::not_found);
    EXPECT_NE(std::string(e.what()).find("preprocessor_config.json"), std::string::npos) << e.what();
  }
}

TEST(ClipImageProcessor, BadImagesAndConfigsInCode) {
  const ClipImageProcessor proc;
  Image broken;
  broken.width = 4, broken.height = 4;
  broken.rgb.resize(10);
  EXPECT_THROW((void)proc.preprocess(broken), Error);
  ClipImageProcessorConfig c;
  c.crop_width = 0;
  EXPECT_THROW((void)ClipImageProcessor(c), Error);
  // A 1×20000 image would need a long side over 32768 pixels.
  Image thin;
  thin.width = 1, thin.height = 20000;
  thin.rgb.assign(size_t(20000) * 3, 128);
  try {
    (void)proc.preprocess(thin);
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument) << e.what();
  }
}

}  // namespace
}  // namespace reel::test
