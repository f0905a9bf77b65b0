// The caching allocator under the CUDA memory (size classes, reuse, statistics, out-of-memory
// recovery; on a fake memory source, so these run on every machine), the CUDA entry points on
// machines without a GPU (clear errors, no crash), and on a GPU: the registered device memory,
// its statistics, copies, and the backend's construction and stream options.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "cuda/cuda_test_util.hpp"
#include "memory/caching_allocator.hpp"
#include "reel/cuda_backend.hpp"
#include "reel/ops.hpp"

#ifdef REEL_HAVE_CUDA
#include <cuda_runtime.h>
#endif

using namespace reel;
using namespace reel::test;

namespace {

// malloc with a capacity, counting calls: a stand-in for cudaMalloc.
class FakeSource final : public RawMemory {
 public:
  explicit FakeSource(size_t capacity, int* live_blocks) : capacity_(capacity), live_(live_blocks) {}
  void* allocate(size_t bytes) override {
    ++allocations;
    if (used_ + bytes > capacity_) return nullptr;
    used_ += bytes;
    ++*live_;
    return std::malloc(bytes);
  }
  void release(void* p, size_t bytes) noexcept override {
    used_ -= bytes;
    --*live_;
    std::free(p);
  }
  void release_all_prepare() override { ++prepares; }
  int allocations = 0;
  int prepares = 0;

 private:
  size_t capacity_;
  size_t used_ = 0;
  int* live_;
};

}  // namespace

// ---------------------------------------------------------------- caching allocator (no GPU needed)

TEST(CachingAllocator, SizeClassesCoverTheRequestWithBoundedWaste) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(512), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  size_t previous = 0;
  for (size_t bytes = 1; bytes < (size_t(1) << 34); bytes = bytes * 3 / 2 + 7) {
    const size_t c = CachingAllocator::size_class(bytes);
    EXPECT_GE(c, bytes);
    EXPECT_EQ(c % 512, 0u) << bytes;
    // Granule = max(512, 2^floor(log2 bytes) / 8) capped at 2 MiB: at most 12.5% (or 512 B) over.
    EXPECT_LE(double(c), std::max(double(bytes) * 1.125, double(bytes) + 512.0)) << bytes;
    EXPECT_GE(c, previous) << "classes must grow with the request";
    EXPECT_EQ(CachingAllocator::size_class(c), c) << "a class is its own class";
    previous = c;
  }
  // Above 16 MiB the granule is 2 MiB: a 100 MB weight wastes less than 2 MiB.
  EXPECT_LT(CachingAllocator::size_class(100'000'000) - 100'000'000, size_t(2) << 20);
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameClass) {
  int live = 0;
  auto source = std::make_unique<FakeSource>(size_t(1) << 30, &live);
  FakeSource* src = source.get();
  {
    CachingAllocator a(std::move(source));
    void* p = a.allocate(1000);
    a.free(p);
    void* q = a.allocate(900);  // same 1024-byte class
    EXPECT_EQ(q, p);
    EXPECT_EQ(src->allocations, 1);
    void* r = a.allocate(5000);  // another class: a new block
    EXPECT_NE(r, q);
    EXPECT_EQ(src->allocations, 2);
    CachingAllocatorStats s = a.stats();
    EXPECT_EQ(s.cache_hits, 1u);
    EXPECT_EQ(s.source_allocations, 2u);
    EXPECT_EQ(s.in_use_bytes, 1024u + CachingAllocator::size_class(5000));
    EXPECT_EQ(s.live_blocks, 2u);
    a.free(q);
    a.free(r);
    s = a.stats();
    EXPECT_EQ(s.in_use_bytes, 0u);
    EXPECT_EQ(s.cached_bytes, 1024u + CachingAllocator::size_class(5000));
    EXPECT_EQ(s.reserved_bytes, s.cached_bytes);
    EXPECT_EQ(live, 2);  // cached, not handed back
  }
  EXPECT_EQ(live, 0);  // the destructor hands cached blocks back
}

TEST(CachingAllocator, PeakStatisticsAndReset) {
  int live = 0;
  CachingAllocator a(std::make_unique<FakeSource>(size_t(1) << 30, &live));
  const size_t mib = size_t(1) << 20;
  void* b1 = a.allocate(mib);
  void* b2 = a.allocate(mib);
  void* b3 = a.allocate(mib);
  a.free(b1);
  a.free(b2);
  a.free(b3);
  CachingAllocatorStats s = a.stats();
  EXPECT_EQ(s.peak_in_use_bytes, 3 * mib);
  EXPECT_EQ(s.peak_reserved_bytes, 3 * mib);
  EXPECT_EQ(s.in_use_bytes, 0u);
  EXPECT_EQ(s.cached_bytes, 3 * mib);
  a.reset_peak();
  s = a.stats();
  EXPECT_EQ(s.peak_in_use_bytes, 0u);
  EXPECT_EQ(s.peak_reserved_bytes, 3 * mib);  // still held by the cache
  void* c = a.allocate(mib);                  // from the cache
  EXPECT_EQ(a.stats().peak_in_use_bytes, mib);
  a.free(c);
  a.release_cached();
  s = a.stats();
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_EQ(s.reserved_bytes, 0u);
  EXPECT_EQ(live, 0);
}

TEST(CachingAllocator, EmptiesTheCacheAndRetriesWhenTheSourceIsFull) {
  int live = 0;
  const size_t mib = size_t(1) << 20;
  auto source = std::make_unique<FakeSource>(3 * mib, &live);
  FakeSource* src = source.get();
  CachingAllocator a(std::move(source));
  void* small1 = a.allocate(mib);
  void* small2 = a.allocate(mib);
  a.free(small1);
  a.free(small2);  // 2 MiB cached in the 1 MiB class
  void* big = a.allocate(2 * mib + 1);  // another class; fits only once the cache is handed back
  EXPECT_NE(big, nullptr);
  EXPECT_EQ(src->prepares, 1);  // the source was asked to get ready (the GPU waits there)
  EXPECT_EQ(a.stats().cached_bytes, 0u);
  try {
    (void)a.allocate(2 * mib);
    ADD_FAILURE() << "expected out_of_memory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::out_of_memory);
    EXPECT_NE(std::string(e.what()).find("out of device memory"), std::string::npos) << e.what();
  }
  a.free(big);
}

TEST(CachingAllocator, IgnoresUnknownPointersAndCanRunUncached) {
  int live = 0;
  CachingAllocator a(std::make_unique<FakeSource>(size_t(1) << 30, &live), /*caching=*/false);
  int on_stack = 0;
  a.free(&on_stack);  // not ours: ignored
  a.free(nullptr);
  void* p = a.allocate(100);
  EXPECT_EQ(live, 1);
  a.free(p);
  EXPECT_EQ(live, 0);  // uncached: straight back to the source
  EXPECT_EQ(a.stats().cached_bytes, 0u);
  EXPECT_THROW((void)a.allocate(size_t(1) << 60), Error);
}

TEST(CachingAllocator, ThreadsShareItSafely) {
  int live = 0;
  CachingAllocator a(std::make_unique<FakeSource>(size_t(1) << 32, &live));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&a, t] {
      std::vector<void*> held;
      for (int i = 0; i < 2000; ++i) {
        held.push_back(a.allocate(size_t(512 * (1 + (i * 7 + t) % 13))));
        if (held.size() > 8) {
          a.free(held.front());
          held.erase(held.begin());
        }
      }
      for (void* p : held) a.free(p);
    });
  for (auto& th : threads) th.join();
  const CachingAllocatorStats s = a.stats();
  EXPECT_EQ(s.in_use_bytes, 0u);
  EXPECT_EQ(s.live_blocks, 0u);
  EXPECT_EQ(s.reserved_bytes, s.cached_bytes);
}

// ---------------------------------------------------------------- without a GPU

TEST(CudaWithoutGpu, EntryPointsFailWithAStatus) {
  if (have_gpu()) GTEST_SKIP() << "this machine has a GPU: the no-GPU behaviour is not observable";
  expect_code(StatusCode::unsupported, [] { (void)make_cuda_backend(); }, "");
  expect_code(StatusCode::unsupported, [] { (void)make_backend("cuda:0"); }, "");
  EXPECT_THROW((void)Tensor::empty({4}, DType::f32, Device::cuda(0)), Error);
  EXPECT_THROW((void)cuda_memory_stats(0), Error);
  // The CPU path of make_backend works everywhere.
  auto be = make_backend("cpu", 1);
  EXPECT_EQ(be->device(), Device::cpu());
  EXPECT_EQ(cuda_stream(*be), nullptr);
  expect_code(StatusCode::invalid_argument, [] { (void)make_backend("gpu"); }, "unknown device");
}

// ---------------------------------------------------------------- on a GPU

TEST(CudaMemory, TensorsReuseCachedBlocks) {
  REEL_REQUIRE_GPU();
  (void)gpu();
  const CudaMemoryStats before = cuda_memory_stats(0);
  const void* first = nullptr;
  {
    Tensor t = Tensor::empty({1000, 1001}, DType::f32, Device::cuda(0));
    first = t.raw();
  }
  const CudaMemoryStats mid = cuda_memory_stats(0);
  EXPECT_EQ(mid.in_use_bytes, before.in_use_bytes);
  Tensor again = Tensor::empty({1001, 1000}, DType::f32, Device::cuda(0));  // same bytes
  EXPECT_EQ(static_cast<const void*>(again.raw()), first);
  const CudaMemoryStats after = cuda_memory_stats(0);
  EXPECT_EQ(after.device_allocations, mid.device_allocations);
  EXPECT_EQ(after.cache_hits, mid.cache_hits + 1);
}

TEST(CudaMemory, PeakTracksLiveTensors) {
  REEL_REQUIRE_GPU();
  (void)gpu();
  reset_cuda_peak_memory(0);
  const uint64_t base = cuda_memory_stats(0).in_use_bytes;
  {
    std::vector<Tensor> held;
    for (int i = 0; i < 3; ++i) held.push_back(Tensor::empty({1 << 20}, DType::f32, Device::cuda(0)));  // 4 MiB each
    EXPECT_EQ(cuda_memory_stats(0).in_use_bytes, base + 3 * (uint64_t(4) << 20));
  }
  const CudaMemoryStats s = cuda_memory_stats(0);
  EXPECT_EQ(s.in_use_bytes, base);
  EXPECT_GE(s.peak_in_use_bytes, base + 3 * (uint64_t(4) << 20));
  EXPECT_GE(s.cached_bytes, 3 * (uint64_t(4) << 20));
  release_cached_cuda_memory(0);
  EXPECT_EQ(cuda_memory_stats(0).cached_bytes, 0u);
}

TEST(CudaMemory, CopiesRoundTripAndOutOfMemoryIsAStatus) {
  REEL_REQUIRE_GPU();
  const Tensor host = random_nonzero({3, 77, 5}, 1, DType::bf16);
  const Tensor dev = on_gpu(host);
  EXPECT_EQ(dev.device(), Device::cuda(0));
  expect_identical(on_cpu(dev), host, "host -> cuda -> host");
  expect_identical(on_cpu(dev.clone()), host, "cuda -> cuda clone");
  expect_identical(on_cpu(dev.slice(1, 3)), host.slice(1, 3), "view of a CUDA tensor");
  // 2^48 f32 elements = 1 PiB: the driver refuses, the cache is emptied, the error is a status.
  expect_code(StatusCode::out_of_memory, [] { (void)Tensor::empty({int64_t(1) << 48}, DType::f32, Device::cuda(0)); }, "out of device memory");
  // The allocator still works afterwards.
  EXPECT_NO_THROW((void)Tensor::empty({16}, DType::f32, Device::cuda(0)));
}

TEST(CudaBackend, ConstructionAndDeviceChecks) {
  REEL_REQUIRE_GPU();
  expect_code(StatusCode::invalid_argument, [] { (void)make_cuda_backend({.device = 999}); }, "does not exist");
  auto be = make_backend("cuda");
  EXPECT_EQ(be->name(), "cuda");
  EXPECT_EQ(be->device(), Device::cuda(0));
  EXPECT_NE(cuda_stream(*be), nullptr);
  // A host tensor is refused with the reason, not dereferenced.
  const Tensor x = random_nonzero({4, 8}, 2);
  Tensor out = Tensor::empty({4, 8}, DType::f32, Device::cuda(0));
  const Support s = be->supports(op::Unary{op::UnaryKind::silu, &x, &out});
  EXPECT_FALSE(s);
  EXPECT_NE(s.reason.find("cpu"), std::string::npos) << s.reason;
  expect_code(StatusCode::invalid_argument, [&] { be->run(op::Unary{op::UnaryKind::silu, &x, &out}); }, "");
}

#ifdef REEL_HAVE_CUDA
// Ops on a caller's non-blocking stream are ordered against reel's stream (copies, reuse).
TEST(CudaBackend, CallerStreamIsOrderedWithReelMemory) {
  REEL_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    auto be = make_cuda_backend({.device = 0, .stream = stream});
    EXPECT_EQ(cuda_stream(*be), static_cast<void*>(stream));
    const Tensor host = random_nonzero({512, 1024}, 3);
    const Tensor x = on_gpu(host);
    Tensor y = x;
    for (int i = 0; i < 20; ++i) y = ops::affine(*be, y, 1.0f, 0.5f);  // + 10 in total
    const std::vector<float> got = on_cpu(y).to_floats();                // reel's stream: no sync by hand
    const std::vector<float> in = host.to_floats();
    for (size_t i = 0; i < got.size(); i += 997) EXPECT_NEAR(got[i], in[i] + 10.0f, 1e-4f) << i;
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}
#endif
