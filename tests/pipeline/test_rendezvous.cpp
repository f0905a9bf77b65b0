// Where the variants' sampler loops meet (lib/pipeline/rendezvous.hpp): one batched call per
// timestep with the inputs of the loops present, outputs back to their owners, loops that
// skip a call (step caching) meeting the others without an input, no call when all skip, and
// a failure handed to every loop.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/test_util.hpp"
#include "pipeline/rendezvous.hpp"

namespace reel::pipeline {
namespace {

TEST(Rendezvous, BatchesThePresentAndSkipsTheAbsent) {
  constexpr int kLoops = 3;
  const float ts[] = {4.0f, 3.0f, 2.0f, 1.0f};
  // skips[i][c]: loop i skips call c. Call 1: loop 1 skips; call 2: every loop skips.
  const bool skips[kLoops][4] = {{false, false, true, false}, {false, true, true, false}, {false, false, true, false}};
  std::mutex log_mutex;
  std::vector<std::pair<float, size_t>> batches;  // (t, batch size) of every batched call
  Rendezvous meet(kLoops, [&](std::span<const Tensor* const> xs, float t) {
    {
      std::lock_guard lock(log_mutex);
      batches.push_back({t, xs.size()});
    }
    std::vector<Tensor> out;
    for (const Tensor* x : xs) out.push_back(Tensor::from_floats({1}, std::vector<float>{x->to_floats()[0] * 10.0f + t}));
    return out;
  });
  std::atomic<int> wrong{0};
  auto loop = [&](int i) {
    for (int c = 0; c < 4; ++c) {
      const Tensor x = Tensor::from_floats({1}, std::vector<float>{float(100 * i + c)});
      const Tensor v = meet.call(i, skips[i][c] ? nullptr : &x, ts[c]);
      if (skips[i][c] ? v.defined() : (!v.defined() || v.to_floats()[0] != float(100 * i + c) * 10.0f + ts[c])) ++wrong;
    }
    meet.leave(nullptr);
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < kLoops; ++i) threads.emplace_back(loop, i);
  loop(0);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  ASSERT_EQ(batches.size(), 3u);  // the call every loop skipped ran nothing
  EXPECT_EQ(batches[0], (std::pair<float, size_t>{4.0f, 3}));
  EXPECT_EQ(batches[1], (std::pair<float, size_t>{3.0f, 2}));
  EXPECT_EQ(batches[2], (std::pair<float, size_t>{1.0f, 3}));
}

TEST(Rendezvous, AFailureReachesEveryLoop) {
  Rendezvous meet(2, [](std::span<const Tensor* const> xs, float) { return std::vector<Tensor>(xs.size()); });
  std::thread other([&] { meet.leave(std::make_exception_ptr(Error(StatusCode::cancelled, "stopped"))); });
  other.join();
  const Tensor x = Tensor::from_floats({1}, std::vector<float>{1.0f});
  test::expect_code(StatusCode::cancelled, [&] { (void)meet.call(0, &x, 1.0f); }, "stopped");
}

}  // namespace
}  // namespace reel::pipeline
