// Sequence parallel across MPI ranks (reel/distributed.hpp). ctest runs this program under
// mpirun with 2 and 4 ranks (tests/CMakeLists.txt); on one rank every test skips.
//
// Every rank computes the one-process forward itself and compares its sequence-parallel
// result with it: Ulysses, ring and their mix, on the DiT fixtures of diffusers (T2V, I2V with
// image context, TI2V with per-token timesteps), f32 and bf16. A rank made to fail mid-forward
// (an attention kernel that throws on one rank) ends every rank with its status, and the
// ranks stay in step for the next forward.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>

#include "common/test_util.hpp"
#include "dit/dit_fixtures.hpp"
#include "distributed/sequence_parallel.hpp"
#include "reel/attention.hpp"
#include "reel/cuda_backend.hpp"
#include "distributed/mpi_world.hpp"
#include "reel/distributed.hpp"

namespace reel {
namespace {

using test::world;

// (ulysses, ring) with ulysses · ring = ranks and ulysses dividing the heads.
std::vector<std::pair<int, int>> arrangements(int ranks, int64_t heads) {
  std::vector<std::pair<int, int>> out;
  for (int u = 1; u <= ranks; ++u)
    if (ranks % u == 0 && heads % u == 0) out.push_back({u, ranks / u});
  return out;
}

TEST(SplitTokens, FirstRanksTakeTheRemainder) {
  EXPECT_EQ(dist::split_tokens(45, 4), (std::vector<int64_t>{12, 11, 11, 11}));
  EXPECT_EQ(dist::split_tokens(8, 2), (std::vector<int64_t>{4, 4}));
}

TEST(SequenceParallel, RefusesDegreesThatDoNotFit) {
  NEED_RANKS();
  // The T2V fixture has one head of 128: only ring attention splits it.
  const WanTransformer dit = WanTransformer::load(test::dit_dir("t2v") / "original.safetensors",
                                                  {.precision = WanPrecision::f32, .head_dim = 128});
  ASSERT_EQ(dit.config().heads, 1);
  const int n = world()->size();
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_sequence_parallel({world(), n, 2}); }, "must equal");
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_sequence_parallel({world(), -1, 0}); }, ">= 0");
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_sequence_parallel({world(), 0, n + 1}); }, "must equal");
  test::expect_code(StatusCode::invalid_argument, [&] { (void)dit.with_sequence_parallel({world(), n, 1}); }, "heads");
  EXPECT_EQ(dit.with_sequence_parallel({world(), 0, n}).sequence_parallel().ring, n);
  // Both degrees left to reel: as much Ulysses as the heads allow (none here), the rest ring.
  EXPECT_EQ(dit.with_sequence_parallel({world(), 0, 0}).sequence_parallel().ring, n);
  const WanTransformer two_heads = WanTransformer::load(test::dit_dir("ti2v") / "diffusers", {.precision = WanPrecision::f32});
  const SequenceParallel chosen = two_heads.with_sequence_parallel({world(), 0, 0}).sequence_parallel();
  EXPECT_EQ(chosen.ulysses, 2);
  EXPECT_EQ(chosen.ring, n / 2);
}

class SpFixture : public ::testing::TestWithParam<test::DitCase> {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend({.threads = 1});
};

// f32: each rank's linear layers see fewer rows and the ring merges partial softmaxes in
// another order, so the result differs from one process by rounding only (rel L2 ~1e-7);
// Ulysses alone runs the same attention rows and is usually bit-identical.
TEST_P(SpFixture, F32MatchesOneProcess) {
  NEED_RANKS();
  const test::DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  const WanTransformer dit = WanTransformer::load(
      c.has_diffusers ? test::dit_dir(c.name) / "diffusers" : test::dit_dir(c.name) / "original.safetensors",
      {.precision = WanPrecision::f32, .head_dim = c.head_dim});
  const std::vector<double> one = test::to_doubles(test::run_dit(dit, *be, io));
  const std::vector<double> ref = test::to_doubles(io.out_f32);
  const auto arr = arrangements(world()->size(), dit.config().heads);
  ASSERT_FALSE(arr.empty());
  for (auto [u, r] : arr) {
    const WanTransformer sp = dit.with_sequence_parallel({world(), u, r});
    EXPECT_EQ(sp.sequence_parallel().ulysses, u);
    const std::vector<double> got = test::to_doubles(test::run_dit(sp, *be, io));
    if (world()->rank() == 0)
      std::printf("%s f32, %d ranks, ulysses %d ring %d: rel L2 %.2e vs one process, %.2e vs diffusers\n", c.name.c_str(),
                  world()->size(), u, r, test::relative_l2(got, one), test::relative_l2(got, ref));
    EXPECT_LT(test::relative_l2(got, one), 1e-5) << c.name << " ulysses " << u << " ring " << r;
    EXPECT_LT(test::relative_l2(got, ref), 1e-4) << c.name << " vs diffusers, ulysses " << u << " ring " << r;
  }
}

// bf16: the ring merges bf16 partial outputs (each rounded once) in f32, one more rounding
// than a single kernel makes; well inside the bf16 bound the DiT tests use against diffusers.
TEST_P(SpFixture, Bf16MatchesOneProcess) {
  NEED_RANKS();
  const test::DitCase& c = GetParam();
  const test::DitIo io = test::read_dit_io(c.name);
  const WanTransformer dit = WanTransformer::load(
      c.has_diffusers ? test::dit_dir(c.name) / "diffusers" : test::dit_dir(c.name) / "original.safetensors",
      {.precision = WanPrecision::bf16, .head_dim = c.head_dim});
  const std::vector<double> one = test::to_doubles(test::run_dit(dit, *be, io));
  for (auto [u, r] : arrangements(world()->size(), dit.config().heads)) {
    const std::vector<double> got = test::to_doubles(test::run_dit(dit.with_sequence_parallel({world(), u, r}), *be, io));
    if (world()->rank() == 0)
      std::printf("%s bf16, %d ranks, ulysses %d ring %d: rel L2 %.2e vs one process\n", c.name.c_str(), world()->size(), u,
                  r, test::relative_l2(got, one));
    EXPECT_LT(test::relative_l2(got, one), 2e-2) << c.name << " ulysses " << u << " ring " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Dit, SpFixture, ::testing::ValuesIn(test::dit_cases()),
                         [](const auto& info) { return info.param.name; });

// An attention kernel that fails on one rank at its n-th call (like an allocation failing
// there): cpu_flash otherwise.
class FailingKernel final : public AttentionKernel {
 public:
  FailingKernel(int failing_rank, int at_call) : failing_rank_(failing_rank), at_call_(at_call) {}
  std::string_view name() const override { return "sp_test_failing"; }
  std::string_view description() const override { return "cpu_flash, failing on one rank (test)"; }
  DeviceType device_type() const override { return DeviceType::cpu; }
  int priority() const override { return -100; }
  Support supports(const AttentionParams& p) const override { return inner()->supports(p); }
  void run(const AttentionParams& p) const override {
    if (armed && world()->rank() == failing_rank_ && ++calls_ == at_call_)
      throw Error(StatusCode::out_of_memory, "test kernel: no memory for this call");
    inner()->run(p);
  }
  std::atomic<bool> armed{false};
  mutable std::atomic<int> calls_{0};

 private:
  static const AttentionKernel* inner() { return find_attention_kernel("cpu_flash"); }
  int failing_rank_, at_call_;
};

TEST(SequenceParallel, OneFailingRankEndsEveryRankWithItsStatus) {
  NEED_RANKS();
  static std::shared_ptr<FailingKernel> kernel = [] {
    auto k = std::make_shared<FailingKernel>(world()->size() - 1, 3);
    register_attention_kernel(k);
    return k;
  }();
  const test::DitIo io = test::read_dit_io("ti2v");
  const WanTransformer dit = WanTransformer::load(test::dit_dir("ti2v") / "diffusers",
                                                  {.precision = WanPrecision::f32, .attention_kernel = "sp_test_failing"});
  auto be = make_cpu_backend({.threads = 1});
  const std::vector<double> one = test::to_doubles(test::run_dit(dit, *be, io));
  for (auto [u, r] : arrangements(world()->size(), dit.config().heads)) {
    const WanTransformer sp = dit.with_sequence_parallel({world(), u, r});
    kernel->calls_ = 0;
    kernel->armed = true;
    std::string message;
    EXPECT_EQ(test::code_of([&] { (void)test::run_dit(sp, *be, io); }, &message), StatusCode::out_of_memory)
        << "ulysses " << u << " ring " << r;
    EXPECT_NE(message.find("rank " + std::to_string(world()->size() - 1) + " of"), std::string::npos) << message;
    EXPECT_NE(message.find("no memory for this call"), std::string::npos) << message;
    kernel->armed = false;
    // The ranks are still in step: the next forward is right.
    const std::vector<double> got = test::to_doubles(test::run_dit(sp, *be, io));
    EXPECT_LT(test::relative_l2(got, one), 1e-5) << "after a failure, ulysses " << u << " ring " << r;
  }
}

// GPU ranks: the same forward with the tokens moved by NCCL, one GPU per rank (NCCL refuses
// two ranks on one GPU). Skips without NCCL or enough GPUs (CI).
TEST(SequenceParallel, NcclMatchesOneProcessOnGpus) {
  NEED_RANKS();
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL (REEL_NCCL)";
  if (cuda_device_count() < world()->size())
    GTEST_SKIP() << cuda_device_count() << " CUDA GPU(s) for " << world()->size()
                 << " ranks: NCCL needs one per rank (the NCCL path compiles but cannot run here)";
  const int gpu = world()->rank();
  const std::shared_ptr<Communicator> gpus = nccl_communicator(world(), gpu);
  EXPECT_EQ(gpus->transport(), "nccl");
  const test::DitIo io = test::read_dit_io("ti2v");
  const WanTransformer dit = WanTransformer::load(test::dit_dir("ti2v") / "diffusers",
                                                  {.precision = WanPrecision::f32, .device = Device::cuda(gpu)});
  auto be = make_cuda_backend({.device = gpu});
  const std::vector<double> one = test::to_doubles(test::run_dit(dit, *be, io));
  for (auto [u, r] : arrangements(world()->size(), dit.config().heads)) {
    const std::vector<double> got = test::to_doubles(test::run_dit(dit.with_sequence_parallel({gpus, u, r}), *be, io));
    EXPECT_LT(test::relative_l2(got, one), 1e-5) << "NCCL, ulysses " << u << " ring " << r;
  }
}

TEST(Agree, EveryRankThrowsTheLowestFailingRanksError) {
  NEED_RANKS();
  Communicator& w = *world();
  EXPECT_NO_THROW(agree(w, nullptr));
  std::exception_ptr mine;
  if (w.rank() >= 1) mine = std::make_exception_ptr(Error(StatusCode::io_error, "disk " + std::to_string(w.rank())));
  std::string message;
  EXPECT_EQ(test::code_of([&] { agree(w, mine); }, &message), StatusCode::io_error);
  EXPECT_EQ(message, "rank 1 of " + std::to_string(w.size()) + ": disk 1");
}

}  // namespace
}  // namespace reel
