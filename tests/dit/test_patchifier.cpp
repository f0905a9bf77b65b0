// Patchifier: latents ↔ tokens in both feature orders (checked element by element against the
// index formulas of the Conv3d weight flattening and of diffusers' unpatchify), exact round
// trips, token positions, and rejected shapes.
#include <gtest/gtest.h>

#include "common/test_util.hpp"
#include "reel/patchifier.hpp"

namespace reel {
namespace {

// latents [B, C, F, H, W] value at (b, c, f, y, x), read through to_floats().
struct Latents {
  std::vector<float> v;
  int64_t C, F, H, W;
  float at(int64_t b, int64_t c, int64_t f, int64_t y, int64_t x) const {
    return v[size_t((((b * C + c) * F + f) * H + y) * W + x)];
  }
};

TEST(Patchifier, ChannelMajorMatchesConv3dWeightFlattening) {
  // Odd grid (3×3×5 patches), patch (1, 2, 2), batch 2; f32.
  const Patch patch{1, 2, 2};
  const Tensor x = test::random_tensor({2, 3, 3, 6, 10}, 11);
  const PatchGrid g = PatchGrid::of(x.shape(), patch);
  ASSERT_EQ(g.tokens(), 3 * 3 * 5);
  ASSERT_EQ(g.features(), 3 * 4);
  const Tensor t = patchify(x, g, PatchOrder::channel_major);
  ASSERT_EQ(t.shape(), (Shape{2, 45, 12}));
  const Latents lat{x.to_floats(), 3, 3, 6, 10};
  const std::vector<float> tok = t.to_floats();
  // Conv3d(k = s = patch): out[d, f, h, w] = Σ_{c,dt,dy,dx} W[d, c, dt, dy, dx] · in[c, f·pt+dt, h·ph+dy, w·pw+dx];
  // with W flattened to [D, C·pt·ph·pw] the feature of (c, dt, dy, dx) is ((c·pt + dt)·ph + dy)·pw + dx.
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t f = 0; f < 3; ++f)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 5; ++w)
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t dy = 0; dy < 2; ++dy)
              for (int64_t dx = 0; dx < 2; ++dx) {
                const int64_t token = (f * 3 + h) * 5 + w, feature = (c * 2 + dy) * 2 + dx;
                ASSERT_EQ(tok[size_t((b * 45 + token) * 12 + feature)], lat.at(b, c, f, 2 * h + dy, 2 * w + dx));
              }
}

TEST(Patchifier, ChannelMinorMatchesDiffusersUnpatchify) {
  // diffusers: tokens reshaped [B, F', H', W', pt, ph, pw, C], permuted to [B, C, F', pt, H', ph, W', pw]:
  // feature ((dt·ph + dy)·pw + dx)·C + c lands at latent (c, f·pt+dt, h·ph+dy, w·pw+dx). Patch (2, 2, 1)
  // exercises every patch axis.
  const Patch patch{2, 2, 1};
  const PatchGrid g = PatchGrid::of(Shape{1, 4, 4, 6, 3}, patch);
  const Tensor tokens = test::random_tensor(g.token_shape(), 12);
  const Tensor x = unpatchify(tokens, g, PatchOrder::channel_minor);
  ASSERT_EQ(x.shape(), (Shape{1, 4, 4, 6, 3}));
  const Latents lat{x.to_floats(), 4, 4, 6, 3};
  const std::vector<float> tok = tokens.to_floats();
  for (int64_t f = 0; f < 2; ++f)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t w = 0; w < 3; ++w)
        for (int64_t dt = 0; dt < 2; ++dt)
          for (int64_t dy = 0; dy < 2; ++dy)
            for (int64_t c = 0; c < 4; ++c) {
              const int64_t token = (f * 3 + h) * 3 + w, feature = (dt * 2 + dy) * 4 + c;
              ASSERT_EQ(lat.at(0, c, 2 * f + dt, 2 * h + dy, w), tok[size_t(token * 16 + feature)]);
            }
}

TEST(Patchifier, RoundTripIsExactInBothOrdersAndDtypes) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (PatchOrder order : {PatchOrder::channel_major, PatchOrder::channel_minor}) {
      const Tensor x = test::random_tensor({2, 5, 3, 4, 6}, 13, dt);  // batched
      const PatchGrid g = PatchGrid::of(x.shape(), {1, 2, 2});
      const Tensor back = unpatchify(patchify(x, g, order), g, order);
      ASSERT_EQ(back.shape(), x.shape());
      ASSERT_EQ(back.dtype(), dt);
      EXPECT_EQ(std::memcmp(back.raw(), x.raw(), x.nbytes()), 0);

      const Tensor u = test::random_tensor({7, 2, 2, 4}, 14, dt);  // unbatched [C, F, H, W], patch (2, 2, 2)
      const PatchGrid gu = PatchGrid::of(u.shape(), {2, 2, 2});
      EXPECT_FALSE(gu.batched());
      const Tensor tu = patchify(u, gu, order);
      ASSERT_EQ(tu.shape(), (Shape{2, 56}));
      EXPECT_EQ(std::memcmp(unpatchify(tu, gu, order).raw(), u.raw(), u.nbytes()), 0);
    }
}

TEST(Patchifier, PositionsAreFrameRowColumnInTokenOrder) {
  const PatchGrid g = PatchGrid::of(Shape{16, 3, 6, 10}, {1, 2, 2});
  const Tensor pos = patch_positions(g);
  ASSERT_EQ(pos.shape(), (Shape{45, 3}));
  const int32_t* p = pos.data<int32_t>();
  for (int64_t l = 0; l < 45; ++l) {
    EXPECT_EQ(p[l * 3 + 0], l / 15);
    EXPECT_EQ(p[l * 3 + 1], (l / 5) % 3);
    EXPECT_EQ(p[l * 3 + 2], l % 5);
  }
}

TEST(Patchifier, RejectsShapesThatAreNotWholePatches) {
  auto code_of = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return StatusCode::ok;
  };
  EXPECT_EQ(code_of([] { PatchGrid::of(Shape{1, 16, 3, 7, 10}, {1, 2, 2}); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { PatchGrid::of(Shape{16, 3, 6}, {1, 2, 2}); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { PatchGrid::of(Shape{0, 16, 3, 6, 10}, {1, 2, 2}); }), StatusCode::invalid_argument);
  EXPECT_EQ(code_of([] { PatchGrid::of(Shape{16, 3, 6, 10}, {1, 0, 2}); }), StatusCode::invalid_argument);
  const Tensor x = test::random_tensor({1, 4, 2, 4, 4}, 15);
  const PatchGrid g = PatchGrid::of(Shape{1, 4, 2, 4, 6}, {1, 2, 2});
  EXPECT_EQ(code_of([&] { patchify(x, g, PatchOrder::channel_major); }), StatusCode::invalid_argument);
  try {
    PatchGrid::of(Shape{1, 16, 3, 7, 10}, {1, 2, 2});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 16, 3, 7, 10]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reel
