// Pipeline::generate with sequence-parallel ranks (PipelineLoadOptions::sequence_parallel),
// under mpirun with 2 and 4 ranks (tests/CMakeLists.txt): the latents of a whole generation
// equal one process's, rank 0 alone holds the frames, and a cancel on one rank ends the call on
// every rank with the same status.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/test_util.hpp"
#include "distributed/mpi_world.hpp"
#include "reel/distributed.hpp"
#include "reel/pipeline.hpp"
#include "reel/video_session.hpp"

namespace reel {
namespace {

using test::world;

std::filesystem::path demo_model() { return std::filesystem::path(REEL_FIXTURES_DIR) / "../../models/reel-wan-demo"; }

PipelineLoadOptions options(SequenceParallel sp) {
  PipelineLoadOptions o;
  o.folder = demo_model();
  o.precision = PipelinePrecision::f32;
  o.threads = 1;
  o.sequence_parallel = std::move(sp);
  return o;
}

GenerateRequest small_request() {
  GenerateRequest r;
  r.prompt = "a red ball moving left over a blue background";
  r.width = 64, r.height = 64, r.frames = 5, r.steps = 3, r.seed = 11;
  return r;
}

// The demo model has 4 heads: every split of 2 or 4 ranks fits.
TEST(PipelineSequenceParallel, GenerateMatchesOneProcess) {
  NEED_RANKS();
  const int n = world()->size();
  const GenerateResult one = Pipeline::load(options({})).generate(small_request());
  for (auto [u, r] : std::vector<std::pair<int, int>>{{n, 1}, {1, n}}) {
    const Pipeline p = Pipeline::load(options({world(), u, r}));
    EXPECT_EQ(p.info().ranks, n);
    EXPECT_NE(p.info().description.find("ranks"), std::string::npos);
    const GenerateResult got = p.generate(small_request());
    const double err = test::relative_l2(test::to_doubles(got.latents), test::to_doubles(one.latents));
    EXPECT_LT(err, 1e-5) << "ulysses " << u << " ring " << r;
    if (world()->rank() == 0) {
      std::printf("generate, %d ranks, ulysses %d ring %d: latents rel L2 %.2e vs one process\n", n, u, r, err);
      EXPECT_EQ(got.video.frames, one.video.frames);
      ASSERT_EQ(got.video.rgb.size(), one.video.rgb.size());
      int worst = 0;  // ring: rounding-level latents can move a pixel by one level; Ulysses alone is exact
      for (size_t i = 0; i < got.video.rgb.size(); ++i) worst = std::max(worst, std::abs(got.video.rgb[i] - one.video.rgb[i]));
      EXPECT_LE(worst, r == 1 ? 0 : 1) << "ulysses " << u << " ring " << r;
    } else {
      EXPECT_EQ(got.video.frames, 0);  // rank 0 decodes
    }
  }
}

TEST(PipelineSequenceParallel, VariantsAndSessionsMatchOneProcess) {
  NEED_RANKS();
  const Pipeline one = Pipeline::load(options({}));
  const Pipeline split = Pipeline::load(options({world(), 0, 0}));
  const uint64_t seeds[] = {4, 9};
  const std::vector<GenerateResult> a = one.generate_variants(small_request(), seeds);
  const std::vector<GenerateResult> b = split.generate_variants(small_request(), seeds);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT(test::relative_l2(test::to_doubles(b[i].latents), test::to_doubles(a[i].latents)), 1e-5) << "variant " << i;
    EXPECT_EQ(b[i].video.frames, world()->rank() == 0 ? a[i].video.frames : 0);
  }
  // Endless video: two chunks; every rank decodes (the next window's context comes from it).
  VideoSessionOptions o;
  o.request = small_request();
  o.context_frames = 1;
  VideoSession s1(one, o), s2(split, o);
  for (int k = 0; k < 2; ++k) {
    const VideoChunk c1 = s1.next(), c2 = s2.next();
    EXPECT_EQ(c2.video.frames, c1.video.frames) << "chunk " << k;
    EXPECT_EQ(c2.video.rgb, c1.video.rgb) << "chunk " << k;  // all-Ulysses split: exact
  }
}

struct StopAt final : GenerateObserver {
  int rank, step;
  StopAt(int rank, int step) : rank(rank), step(step) {}
  bool on_progress(const Progress& p) override {
    return !(world()->rank() == rank && p.stage == "denoise" && p.step == step);
  }
};

TEST(PipelineSequenceParallel, ACancelOnOneRankCancelsEveryRank) {
  NEED_RANKS();
  const int n = world()->size();
  const Pipeline p = Pipeline::load(options({world(), 0, 1}));
  StopAt stop(n - 1, 2);
  std::string message;
  EXPECT_EQ(test::code_of([&] { (void)p.generate(small_request(), &stop); }, &message), StatusCode::cancelled);
  EXPECT_NE(message.find("rank " + std::to_string(n - 1) + " of " + std::to_string(n)), std::string::npos) << message;
  EXPECT_NE(message.find("step 2 of 3"), std::string::npos) << message;
  // The ranks are in step again: the next generation completes everywhere.
  EXPECT_NO_THROW((void)p.generate(small_request()));
}

}  // namespace
}  // namespace reel
