// Wan VAE decode against diffusers (tiny random-weight fixtures), and the streaming decoder:
// any split of the latent frames into chunks decodes to the same frames.
#include <gtest/gtest.h>

#include <cstring>

#include "vae/vae_test_util.hpp"

namespace reel::test {
namespace {

// f32 compute against diffusers' f32: the same math with a different summation order in the
// convolutions (oneDNN vs PyTorch); the brief's bound for an f32 model component.
constexpr double kF32Tol = 1e-4;

class VaeDecode : public ::testing::TestWithParam<VaeFixture> {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend();
};

// latents[..., :k, :, :] of [1, z, F, h, w] as [z, k, h, w].
Tensor latent_prefix(Backend& be, const Tensor& z, int64_t k) {
  Tensor s = ops::slice(be, z, 2, 0, k);
  return s.reshape({s.dim(1), s.dim(2), s.dim(3), s.dim(4)});
}

// Diffusers decodes 1, 2, 3, 4 latent frames to 1, 5, 9, 13 frames; its runs are causal, so
// each is the prefix of the 13-frame reference (the fixture script asserts this).
TEST_P(VaeDecode, MatchesDiffusersForEachFrameCount) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  WeightStore io = vae_io(f);
  const Tensor z = io.load("latents", DType::f32);
  const Tensor ref = io.load("decoded", DType::f32);
  for (int64_t k = 1; k <= z.dim(2); ++k) {
    Tensor out = vae.decode(latent_prefix(*be, z, k));
    const int64_t frames = 4 * (k - 1) + 1;
    ASSERT_EQ(out.shape(), Shape({3, frames, f.height, f.width}));
    const std::vector<double> want = frames_range(ref.reshape({3, 13, f.height, f.width}), 1, 0, frames);
    const double err = relative_l2(to_doubles(out), want);
    EXPECT_LE(err, kF32Tol) << f.tag << ", " << frames << " frames";
    // Clamped to [-1, 1] like diffusers.
    EXPECT_LE(max_abs(to_doubles(out)), 1.0);
  }
}

TEST_P(VaeDecode, BatchedDecodeEqualsPerSample) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  const Tensor z = vae_io(f).load("latents", DType::f32);
  const Tensor z2 = ops::slice(*be, z, 2, 0, 2);                      // [1, z, 2, h, w]
  const Tensor other = ops::affine(*be, z2, -0.5f, 0.25f);            // a different sample
  const Tensor batch = ops::concat(*be, {&z2, &other}, 0);            // [2, z, 2, h, w]
  Tensor out = vae.decode(batch);
  ASSERT_EQ(out.shape(), Shape({2, 3, 5, f.height, f.width}));
  Tensor a = vae.decode(z2.select(0)), b = vae.decode(other.select(0));
  EXPECT_EQ(max_abs_diff(to_doubles(out.select(0)), to_doubles(a)), 0.0);
  EXPECT_EQ(max_abs_diff(to_doubles(out.select(1)), to_doubles(b)), 0.0);
}

// The reference chunking (one latent frame per chunk) against the whole clip as one chunk
// (the full-sequence equivalents of every first-chunk rule, wan.md §2.4) and an uneven split.
// Same f32 math, only the convolution shapes differ: agreement to f32 rounding.
TEST_P(VaeDecode, AnyChunkingGivesTheSameFrames) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  const Tensor z = latent_prefix(*be, vae_io(f).load("latents", DType::f32), 4);
  const Tensor one_by_one = vae.decode(z);
  for (int per_chunk : {2, 3, 4}) {
    Tensor joined = Tensor::zeros({3, 13, f.height, f.width}, DType::f32);
    int64_t expected_first = 0, calls = 0;
    vae.decode(
        z,
        [&](const Tensor& frames, int64_t first) {
          EXPECT_EQ(first, expected_first);
          expected_first += frames.dim(1);
          ++calls;
          const int64_t hw = f.height * f.width;
          for (int64_t c = 0; c < 3; ++c)
            std::memcpy(joined.data<float>() + (c * 13 + first) * hw, frames.data<float>() + c * frames.dim(1) * hw,
                        size_t(frames.dim(1) * hw) * sizeof(float));
        },
        per_chunk);
    EXPECT_EQ(expected_first, 13);
    EXPECT_EQ(calls, (4 + per_chunk - 1) / per_chunk);
    // f32 rounding of differently-shaped convolutions over ~30 layers: far below kF32Tol.
    EXPECT_LE(relative_l2(to_doubles(joined), to_doubles(one_by_one)), 1e-5) << per_chunk << " per chunk";
  }
}

TEST_P(VaeDecode, StreamCarriesTheCacheAndResets) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  const Tensor z = vae_io(f).load("latents", DType::f32);  // [1, z, 4, h, w]
  const Tensor whole = vae.decode(z.select(0));
  VaeDecodeStream stream = vae.decode_stream();
  for (int pass = 0; pass < 2; ++pass) {  // the second pass checks reset()
    for (int64_t k = 0; k < 4; ++k) {
      Tensor frames = stream.push(ops::slice(*be, z, 2, k, k + 1));  // [1, z, 1, h, w] also accepted
      ASSERT_EQ(frames.shape(), Shape({3, k == 0 ? 1 : 4, f.height, f.width}));
      const std::vector<double> v = to_doubles(frames);
      // frames of chunk k are frames [first, first + m) of the whole decode
      const int64_t first = k == 0 ? 0 : 1 + 4 * (k - 1);
      EXPECT_EQ(max_abs_diff(v, frames_range(whole, 1, first, first + frames.dim(1))), 0.0) << "chunk " << k;
    }
    EXPECT_EQ(stream.latent_frames(), 4);
    EXPECT_EQ(stream.frames(), 13);
    stream.reset();
  }
  // A different frame size within one clip is refused.
  stream.push(ops::slice(*be, z, 2, 0, 1));
  Tensor wrong = random_tensor({z.dim(1), 1, z.dim(3) + 1, z.dim(4)}, 3);
  EXPECT_THROW(stream.push(wrong), Error);
}

// diffusers' enable_tiling with tiny tiles (the fixture's metadata): per-tile caches and the
// in-place linear blending reproduce tiled_decode.
TEST_P(VaeDecode, TiledDecodeMatchesDiffusersTiledDecode) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  WeightStore io = vae_io(f);
  const auto& meta = io.metadata();
  VaeTiling t;
  t.enabled = true;
  t.tile_height = std::stoi(meta.at("tile_sample_min_height"));
  t.tile_width = std::stoi(meta.at("tile_sample_min_width"));
  t.stride_height = std::stoi(meta.at("tile_sample_stride_height"));
  t.stride_width = std::stoi(meta.at("tile_sample_stride_width"));
  vae.set_tiling(t);
  const Tensor z = ops::slice(*be, io.load("latents", DType::f32), 2, 0, 2);  // the reference's 2 latent frames
  Tensor out = vae.decode(z);
  ASSERT_EQ(out.shape(), Shape({1, 3, 5, f.height, f.width}));
  const std::vector<double> want = to_doubles(io.load("tiled_decoded", DType::f32));
  EXPECT_LE(relative_l2(to_doubles(out), want), kF32Tol);
  // Tiling changes the numerics: the untiled reference differs clearly.
  const Tensor plain = io.load("decoded", DType::f32);
  EXPECT_GT(relative_l2(to_doubles(out), frames_range(plain.select(0), 1, 0, 5)), 1e-2);
  // Streaming with tiles gives the same frames.
  VaeDecodeStream stream = vae.decode_stream();
  for (int64_t k = 0; k < 2; ++k) {
    Tensor frames = stream.push(ops::slice(*be, z, 2, k, k + 1));
    const int64_t first = k == 0 ? 0 : 1;
    EXPECT_EQ(max_abs_diff(to_doubles(frames), frames_range(out.select(0), 1, first, first + frames.dim(1))), 0.0);
  }
  VaeTiling bad = t;
  bad.stride_height = 3;
  EXPECT_THROW(vae.set_tiling(bad), Error);
}

TEST_P(VaeDecode, RejectsBadLatents) {
  const VaeFixture& f = GetParam();
  WanVae vae = WanVae::load(vae_weights_diffusers(f), *be, {.encoder = false});
  const int64_t z = vae.config().z_dim;
  EXPECT_THROW(vae.decode(Tensor()), Error);
  EXPECT_THROW(vae.decode(random_tensor({z + 1, 1, 2, 3}, 1)), Error);  // wrong channel count
  EXPECT_THROW(vae.decode(random_tensor({z, 2, 3}, 1)), Error);         // rank 3
  EXPECT_THROW(vae.decode(random_tensor({z, 0, 2, 3}, 1)), Error);      // no frames
  try {
    vae.decode(random_tensor({z + 1, 1, 2, 3}, 1));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("channels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vae.encode(random_tensor({3, 1, f.height, f.width}, 1)), Error);  // no encoder loaded
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VaeDecode, ::testing::Values(kWan21, kWan22),
                         [](const auto& info) { return info.param.tag; });

}  // namespace
}  // namespace reel::test
