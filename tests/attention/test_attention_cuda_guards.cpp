// What the CUDA attention kernels guard against besides bad shapes:
// - a GPU this build has no code for: supports() refuses with the device's sm and the built
//   archs (cuda/attention/kernel_image.hpp) instead of run() failing with "no kernel image".
//   The text is checked on any machine; the probe and its cache on a GPU.
// - a caller's non-blocking stream: run() orders it with reel's stream both ways
//   (reel/attention_params.h, "CUDA streams"), so inputs written on reel's stream are read after
//   they land, and reel's copies (and the reuse of freed blocks) come after the kernel. GPU only.
#include <gtest/gtest.h>

#ifdef REEL_HAVE_CUDA

#include <cuda_runtime.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "attention/attention_test_util.hpp"
#include "attention/cuda_checks.hpp"
#include "attention/flash_fwd_launch.hpp"
#include "attention/kernel_image.hpp"
#include "cuda_memory.hpp"

namespace reel::test {
namespace {

using attn::kernel_image::no_code_reason;
using attn::kernel_image::parse_arch_list;
using attn::kernel_image::sm_names;

bool have_gpu() {
  (void)attention_kernels();  // registers the CUDA device memory when a GPU is present
  return cuda_device_count() > 0;
}

// ---------------------------------------------------------------- host only

TEST(CudaAttentionKernelImage, ParsesNvccArchLists) {
  EXPECT_EQ(parse_arch_list("800,900"), (std::vector<int>{80, 90}));
  EXPECT_EQ(parse_arch_list("1000, 1210"), (std::vector<int>{100, 121}));
  EXPECT_EQ(parse_arch_list("860"), (std::vector<int>{86}));
  EXPECT_EQ(parse_arch_list(""), (std::vector<int>{}));
  EXPECT_EQ(parse_arch_list("native,,900a,870"), (std::vector<int>{87}));  // non-numbers skipped
}

TEST(CudaAttentionKernelImage, NamesTheArchs) {
  EXPECT_EQ(sm_names("800,900"), "sm_80, sm_90");
  EXPECT_EQ(sm_names("1030"), "sm_103");
  EXPECT_EQ(sm_names(""), "no CUDA architecture");
}

TEST(CudaAttentionKernelImage, ReasonNamesTheDeviceSmAndTheBuiltArchs) {
  EXPECT_EQ(no_code_reason(0, 120, "800,900"),
            "this build has no code for sm_120 (CUDA device 0; built for sm_80, sm_90): rebuild with "
            "REEL_CUDA_ARCHITECTURES including 120");
  EXPECT_EQ(no_code_reason(3, 100, "800"),
            "this build has no code for sm_100 (CUDA device 3; built for sm_80): rebuild with "
            "REEL_CUDA_ARCHITECTURES including 100");
}

// The arch list really comes from nvcc (__CUDA_ARCH_LIST__ of the kernel's .cu file): without a
// GPU the probe's error is some "no device/driver" code, but its list is the build's.
TEST(CudaAttentionKernelImage, ProbesCarryTheBuildsArchList) {
  for (auto probe : {attn::flash::probe_bf16_hdim64, attn::flash::probe_bf16_hdim128, attn::flash::probe_f16_hdim64,
                     attn::flash::probe_f16_hdim128}) {
    const attn::kernel_image::Probe r = probe();
    (void)cudaGetLastError();
    const std::vector<int> archs = parse_arch_list(r.arch_list);
    ASSERT_FALSE(archs.empty()) << "arch list '" << r.arch_list << "'";
    for (int cc : archs) EXPECT_GE(cc, 80) << r.arch_list;  // reel needs sm_80+ (bf16 mma)
  }
}

// ---------------------------------------------------------------- GPU

int missing_probe_calls = 0;
attn::kernel_image::Probe missing_image_probe() {
  ++missing_probe_calls;
  return {int(cudaErrorNoKernelImageForDevice), "800,900"};
}

AttentionParams device0_params() {
  AttentionParams p = default_attention_params();
  p.device_type = REEL_ATTENTION_CUDA;
  p.device_index = 0;
  return p;
}

TEST(CudaAttentionKernelImage, MissingCodeIsRefusedOnceAndCached) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const AttentionParams p = device0_params();
  const Support a = attn::cuda_checks::kernel_image_ok(p, missing_image_probe);
  const Support b = attn::cuda_checks::kernel_image_ok(p, missing_image_probe);
  EXPECT_FALSE(a);
  EXPECT_EQ(a.reason, no_code_reason(0, attn::cuda_checks::compute_capability(0), "800,900"));
  EXPECT_FALSE(b);
  EXPECT_EQ(b.reason, a.reason);
  EXPECT_EQ(missing_probe_calls, 1);  // the second answer came from the cache
}

// On a GPU whose sm this build lists, the real probes find their kernels.
TEST(CudaAttentionKernelImage, RealProbesFindTheKernelsOnAListedGpu) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const int cc = attn::cuda_checks::compute_capability(0);
  const AttentionParams p = device0_params();
  for (auto probe : {attn::flash::probe_bf16_hdim64, attn::flash::probe_bf16_hdim128, attn::flash::probe_f16_hdim64,
                     attn::flash::probe_f16_hdim128}) {
    const std::vector<int> archs = parse_arch_list(probe().arch_list);
    (void)cudaGetLastError();
    if (std::find(archs.begin(), archs.end(), cc) == archs.end()) GTEST_SKIP() << "sm_" << cc << " is not built";
    const Support s = attn::cuda_checks::kernel_image_ok(p, probe);
    EXPECT_TRUE(s) << s.reason;
  }
}

// Inputs are written on reel's stream (behind a long copy) right before the call, the kernel
// runs on a caller's non-blocking stream, the inputs are released and their blocks refilled
// at once, and out is copied back on reel's stream: no synchronize of the caller's stream
// anywhere. Without the ordering the kernel would read the sentinel q, or k/v refilled with
// junk, and the copy would overtake the kernel (out still the sentinel). Expected: the same
// kernel on the legacy default stream.
TEST(CudaAttentionStreams, CallersStreamIsOrderedWithReelsStream) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const AttnShape shape{1, 4096, 4096, 8, 128};  // ~69 GFLOP: long enough for a race to show
  const DType dtype = DType::bf16;
  const AttnInputs in = make_attention_inputs(shape, dtype, 71);
  const Device gpu = Device::cuda();
  const Tensor q_ready = in.q.to(gpu);
  const int64_t n = in.q.numel();
  const std::vector<float> q_sentinel(size_t(n), 3.0f), out_sentinel(size_t(n), 1.0e4f), junk(size_t(n), -7.0f);
  const Tensor ballast_src = Tensor::empty({int64_t(64) << 20}, DType::f32, gpu);  // 256 MiB
  Tensor ballast_dst = Tensor::empty({int64_t(64) << 20}, DType::f32, gpu);
  cudaStream_t reel_stream = cuda_memory::stream(0);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  int ran = 0;
  for (const char* name : {"cuda_flash", "cudnn", "cublas"}) {
    Tensor k = in.k.to(gpu), v = in.v.to(gpu);
    Tensor expected_out = Tensor::empty(in.q.shape(), dtype, gpu);
    const AttentionParams ref = attention_params(q_ready, k, v, expected_out, in.scale);
    const Support ok = find_attention_kernel(name)->supports(ref);
    if (!ok) {
      if (std::string_view(name) != "cudnn") ADD_FAILURE() << name << " refuses " << shape.str() << ": " << ok.reason;
      continue;
    }
    ++ran;
    run_attention(ref, name);  // legacy default stream
    const std::vector<double> expected = to_doubles(expected_out.to(Device::cpu()));

    Tensor q = Tensor::from_floats(in.q.shape(), q_sentinel, dtype).to(gpu);
    Tensor out = Tensor::from_floats(in.q.shape(), out_sentinel, dtype).to(gpu);
    for (int i = 0; i < 4; ++i)
      ASSERT_EQ(cudaMemcpyAsync(ballast_dst.raw(), ballast_src.raw(), ballast_src.nbytes(), cudaMemcpyDeviceToDevice,
                                reel_stream),
                cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(q.raw(), q_ready.raw(), q.nbytes(), cudaMemcpyDeviceToDevice, reel_stream), cudaSuccess);
    AttentionParams p = attention_params(q, k, v, out, in.scale);
    p.stream = stream;
    run_attention(p, name);
    q = k = v = Tensor();  // released while the kernel may still run: their blocks are reused below
    std::vector<Tensor> refills;
    for (int i = 0; i < 3; ++i) refills.push_back(Tensor::from_floats(in.q.shape(), junk, dtype).to(gpu));
    const std::vector<double> got = to_doubles(out.to(Device::cpu()));
    EXPECT_LE(max_abs_diff(got, expected), 1e-2) << name;
  }
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  if (ran == 0) GTEST_SKIP() << "no kernel runs " << shape.str();
}

}  // namespace
}  // namespace reel::test

#endif  // REEL_HAVE_CUDA
