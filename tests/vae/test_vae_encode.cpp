// Wan VAE encode against diffusers (tiny random-weight fixtures): the moments (mean and logvar
// after quant_conv) for 1, 5, 9 and 13 frames, the posterior mean, and input checks.
#include <gtest/gtest.h>

#include "vae/vae_test_util.hpp"

namespace reel::test {
namespace {

// f32 against diffusers' f32, different convolution summation order: the brief's f32 bound.
constexpr double kF32Tol = 1e-4;

class VaeEncode : public ::testing::TestWithParam<VaeFixture> {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend();
};

// Diffusers encodes the first frame alone, then chunks of 4; its runs are causal, so the
// moments of a prefix of frames are the prefix of the 13-frame moments (asserted by the
// fixture script).
TEST_P(VaeEncode, MomentsMatchDiffusersForEachFrameCount) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.decoder = false});
  WeightStore io = vae_io(f);
  const Tensor video = io.load("video", DType::f32);  // [1, 3, 13, H, W]
  const Tensor ref = io.load("moments", DType::f32);  // [1, 2z, 4, h, w]
  const int64_t z = vae.config().z_dim;
  ASSERT_EQ(ref.dim(1), 2 * z);
  for (int64_t frames : {1, 5, 9, 13}) {
    Tensor clip = ops::slice(*be, video, 2, 0, frames).reshape({3, frames, f.height, f.width});
    Tensor moments = vae.encode_moments(clip);
    const int64_t k = (frames - 1) / 4 + 1;
    ASSERT_EQ(moments.shape(), Shape({2 * z, k, ref.dim(3), ref.dim(4)}));
    const std::vector<double> want = frames_range(ref.select(0), 1, 0, k);
    EXPECT_LE(relative_l2(to_doubles(moments), want), kF32Tol) << f.tag << ", " << frames << " frames";
    // The mean is the first z channels.
    Tensor mean = vae.encode(clip);
    ASSERT_EQ(mean.shape(), Shape({z, k, ref.dim(3), ref.dim(4)}));
    EXPECT_EQ(max_abs_diff(to_doubles(mean), frames_range(moments, 0, 0, z)), 0.0);
  }
}

TEST_P(VaeEncode, BatchedAndLowPrecisionInputs) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.decoder = false});
  const Tensor video = ops::slice(*be, vae_io(f).load("video", DType::f32), 2, 0, 5);  // [1, 3, 5, H, W]
  Tensor batched = vae.encode_moments(video);
  Tensor single = vae.encode_moments(video.select(0));
  ASSERT_EQ(batched.rank(), 5);
  EXPECT_EQ(max_abs_diff(to_doubles(batched), to_doubles(single)), 0.0);
  // bf16 frames are converted to the f32 compute dtype: the same as encoding their f32 values.
  Tensor as_bf16 = video.to(DType::bf16);
  Tensor from_bf16 = vae.encode_moments(as_bf16);
  Tensor from_rounded = vae.encode_moments(as_bf16.to(DType::f32));
  EXPECT_EQ(max_abs_diff(to_doubles(from_bf16), to_doubles(from_rounded)), 0.0);
}

TEST_P(VaeEncode, RejectsBadFrames) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be);
  auto code = [&](const Tensor& x) {
    try {
      vae.encode(x);
    } catch (const Error& e) {
      return e.code();
    }
    return StatusCode::ok;
  };
  EXPECT_EQ(code(random_tensor({3, 4, f.height, f.width}, 1)), StatusCode::invalid_argument);  // not 4k+1 frames
  EXPECT_EQ(code(random_tensor({4, 1, f.height, f.width}, 1)), StatusCode::invalid_argument);  // 4 channels
  EXPECT_EQ(code(random_tensor({3, 1, f.height + 4, f.width}, 1)), StatusCode::invalid_argument);  // not a multiple of 8/16
  EXPECT_EQ(code(random_tensor({3, 1, 8, 8}, 1)), f.tag == "wan22" ? StatusCode::invalid_argument : StatusCode::ok);
  EXPECT_EQ(code(Tensor()), StatusCode::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VaeEncode, ::testing::Values(kWan21, kWan22),
                         [](const auto& info) { return info.param.tag; });

}  // namespace
}  // namespace reel::test
