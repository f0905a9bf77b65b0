// The whole pipeline on a real GPU (CudaBackend), compared with the CPU, on the shipped tiny
// model: f32 on both sides must agree closely (no TF32: the backend's default), and bf16 on
// the GPU must be as close to the f32 result as bf16 on the CPU is (DESIGN.md's same-precision
// rule, with a factor 2 for a different summation order). Also: the op::Attention path on the
// backend's stream, the device memory after repeated requests (no growth), and endless video.
// Skips with a message on machines without a GPU (tests/pipeline/test_pipeline_device.cpp
// checks the same device path on an emulated device there).
#include "common/test_util.hpp"
#include "pipeline/pipeline_test_util.hpp"
#include "reel/cuda_backend.hpp"
#include "reel/ops.hpp"
#include "reel/video_session.hpp"

namespace reel::test {
namespace {

bool have_gpu() { return cuda_device_count() > 0; }

const Pipeline& loaded(Device device, PipelinePrecision precision) {
  static std::map<std::string, std::unique_ptr<Pipeline>> pipelines;
  const std::string key = device.str() + (precision == PipelinePrecision::f32 ? "/f32" : "/bf16");
  auto& slot = pipelines[key];
  if (!slot)
    slot = std::make_unique<Pipeline>(
        Pipeline::load({.folder = tiny_t2v_model(), .device = device, .threads = 2, .precision = precision}));
  return *slot;
}

double rel(const Tensor& a, const Tensor& b) { return relative_l2(to_doubles(a), to_doubles(b)); }

TEST(PipelineCuda, F32OnTheGpuMatchesTheCpu) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const GenerateRequest r = device_test_request();
  const GenerateResult gpu = loaded(Device::cuda(0), PipelinePrecision::f32).generate(r);
  const GenerateResult cpu = loaded(Device::cpu(), PipelinePrecision::f32).generate(r);
  ASSERT_TRUE(gpu.latents.is_cpu());
  const double e = rel(gpu.latents, cpu.latents);
  std::printf("f32 GPU vs CPU latents: relative L2 %.3g\n", e);
  // Same f32 math in other summation orders (cuBLAS, cuDNN, our attention): ~1e-6 per op,
  // amplified by 3 steps of a random model: 1e-4 leaves a wide margin and still catches any
  // wrong layout, stride or missing op (those give errors of order 1).
  EXPECT_LE(e, 1e-4);
  EXPECT_EQ(gpu.video.frames, 9);
}

TEST(PipelineCuda, Bf16OnTheGpuIsAsCloseToF32AsTheCpu) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const GenerateRequest r = device_test_request();
  const Tensor reference = loaded(Device::cpu(), PipelinePrecision::f32).generate(r).latents;
  const Tensor cpu = loaded(Device::cpu(), PipelinePrecision::bf16).generate(r).latents;
  const Tensor gpu = loaded(Device::cuda(0), PipelinePrecision::bf16).generate(r).latents;
  const double e_cpu = rel(cpu, reference), e_gpu = rel(gpu, reference);
  std::printf("bf16 vs f32 latents: CPU %.3g, GPU %.3g (GPU vs CPU %.3g)\n", e_cpu, e_gpu, rel(gpu, cpu));
  EXPECT_GT(e_cpu, 0.0) << "bf16 should differ from f32 at all";
  EXPECT_LE(e_gpu, 2.0 * e_cpu + 1e-3);
}

TEST(PipelineCuda, RepeatedRequestsHoldNoMoreDeviceMemory) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const Pipeline& p = loaded(Device::cuda(0), PipelinePrecision::bf16);
  (void)p.generate(device_test_request());
  const uint64_t after_one = cuda_memory_stats(0).in_use_bytes;
  for (int i = 0; i < 3; ++i) (void)p.generate(device_test_request());
  const CudaMemoryStats s = cuda_memory_stats(0);
  std::printf("in use after 1 request %llu, after 4 %llu, peak %llu bytes\n", (unsigned long long)after_one,
              (unsigned long long)s.in_use_bytes, (unsigned long long)s.peak_in_use_bytes);
  EXPECT_EQ(s.in_use_bytes, after_one) << "a request left device memory behind";
}

TEST(PipelineCuda, AttentionOpRunsOnTheBackendStream) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  auto gpu = make_cuda_backend({.device = 0});
  auto cpu = make_cpu_backend({.threads = 2});
  for (const auto& [sq, skv] : {std::pair<int64_t, int64_t>{77, 77}, {130, 512}}) {
    const Tensor q = random_tensor({2, sq, 3, 64}, 1, DType::bf16), k = random_tensor({2, skv, 3, 64}, 2, DType::bf16),
                 v = random_tensor({2, skv, 3, 64}, 3, DType::bf16);
    const Tensor want = ops::attention(*cpu, q, k, v, 0.125f, "cpu_reference");
    // Queue an op before and after on the backend's stream: attention must see the first
    // one's result and the second must see attention's.
    const Tensor q2 = ops::affine(*gpu, q.to(Device::cuda(0)), 1.0f, 0.0f);
    const Tensor got = ops::affine(*gpu, ops::attention(*gpu, q2, k.to(Device::cuda(0)), v.to(Device::cuda(0)), 0.125f),
                                   1.0f, 0.0f)
                           .to(Device::cpu());
    const double e = rel(got, want);
    std::printf("attention op Sq %lld Skv %lld: relative L2 vs cpu_reference %.3g\n", (long long)sq, (long long)skv, e);
    EXPECT_LE(e, 1e-2);  // bf16 output rounding (2^-8 relative per value) dominates
  }
}

TEST(PipelineCuda, EndlessVideoOnTheGpuMatchesTheCpu) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  VideoSessionOptions o;
  o.request = device_test_request();
  o.request.height = 32;
  o.context_frames = 1;
  VideoSession gpu(loaded(Device::cuda(0), PipelinePrecision::f32), o);
  VideoSession cpu(loaded(Device::cpu(), PipelinePrecision::f32), o);
  for (int k = 0; k < 2; ++k) {
    const double e = rel(gpu.next().latents, cpu.next().latents);
    std::printf("endless video chunk %d: relative L2 %.3g\n", k, e);
    EXPECT_LE(e, 1e-4);
  }
}

}  // namespace
}  // namespace reel::test
