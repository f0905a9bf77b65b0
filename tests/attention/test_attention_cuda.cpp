// CUDA attention kernels (cuda_flash, cudnn, cublas) against the exact reference, same shapes and
// tolerance rule as the CPU kernels (attention_test_util.hpp). Skips without a GPU.
#include "attention/attention_test_util.hpp"

namespace reel::test {
namespace {

const std::vector<AttnShape>& shapes() {
  static const std::vector<AttnShape> s = {
      {1, 1, 1, 1, 64},        // one row, one key: a single masked tile
      {1, 77, 300, 3, 128},    // odd lengths, Sq != Skv, partial q and kv tiles
      {2, 128, 128, 2, 64},    // B > 1, whole tiles
      {2, 130, 257, 2, 128},   // tails on both sides
      {1, 200, 512, 2, 128},   // cross-attention to 512 text tokens
      {3, 5, 17, 1, 64},       // tiny, B = 3
      {1, 300, 1000, 2, 64},   // many kv tiles (double buffering wraps around)
  };
  return s;
}

bool have_gpu() {
  (void)attention_kernels();  // registers the CUDA device memory when a GPU is present
  return cuda_device_count() > 0;
}

class CudaAttention : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};

TEST_P(CudaAttention, MatchesReferenceOverShapes) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const auto [name, dtype] = GetParam();
  const AttentionKernel* kernel = find_attention_kernel(name);
  ASSERT_NE(kernel, nullptr) << name;
  for (size_t i = 0; i < shapes().size(); ++i) {
    const AttnShape& shape = shapes()[i];
    const AttnInputs in = make_attention_inputs(shape, dtype, 2000 + 10 * i);
    const Tolerance tol = attention_tolerance(in, dtype);
    const Device gpu = Device::cuda();
    Tensor q = in.q.to(gpu), k = in.k.to(gpu), v = in.v.to(gpu), out = Tensor::empty(in.q.shape(), dtype, gpu);
    Tensor lse = Tensor::empty({shape.batch * shape.heads * shape.seq_q}, DType::f32, gpu);
    AttentionParams p = attention_params(q, k, v, out, in.scale);
    p.lse = static_cast<float*>(lse.raw());
    const Support s = kernel->supports(p);
    if (!s) GTEST_SKIP() << name << " does not run " << dtype_name(dtype) << ": " << s.reason;
    run_attention(p, name);
    const Tensor host = out.to(Device::cpu());  // synchronous copy: waits for the kernel
    EXPECT_LE(max_abs_diff(to_doubles(host), tol.ref), tol.bound) << name << " " << dtype_name(dtype) << " " << shape.str();
    // lse against the exact log-sum-exp of the rounded inputs (see test_attention_cpu).
    std::vector<double> lse_ref;
    (void)exact_attention(in.q, in.k, in.v, in.scale, &lse_ref);
    const std::vector<float> lse_host = lse.to(Device::cpu()).to_floats();
    for (size_t r = 0; r < lse_ref.size(); ++r)
      ASSERT_NEAR(lse_host[r], lse_ref[r], 1e-4 * (1.0 + std::abs(lse_ref[r]))) << name << " " << shape.str() << " row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaAttention,
                         ::testing::Combine(::testing::Values("cuda_flash", "cudnn", "cublas"),
                                            ::testing::Values(DType::bf16, DType::f16, DType::f32)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

// The selector prefers cuda_flash for bf16 CUDA tensors and falls back to cublas for f32.
TEST(CudaAttentionSelector, PicksFlashThenCublas) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  for (auto [dtype, want] : {std::pair{DType::bf16, "cuda_flash"}, std::pair{DType::f32, "cublas"}}) {
    const AttnInputs in = make_attention_inputs({1, 64, 64, 2, 128}, dtype, 3);
    Tensor q = in.q.to(Device::cuda()), k = in.k.to(Device::cuda()), v = in.v.to(Device::cuda());
    Tensor out = Tensor::empty(q.shape(), dtype, Device::cuda());
    AttentionSelection s = select_attention_kernel(attention_params(q, k, v, out, in.scale));
    ASSERT_NE(s.kernel, nullptr) << s.reason;
    EXPECT_EQ(s.kernel->name(), want);
  }
}

// CUDA kernels refuse host memory instead of faulting.
TEST(CudaAttentionSelector, RefusesHostPointers) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const AttnInputs in = make_attention_inputs({1, 16, 16, 1, 64}, DType::bf16, 4);
  Tensor out = Tensor::empty(in.q.shape(), DType::bf16);
  AttentionParams p = attention_params(in.q, in.k, in.v, out, in.scale);
  p.device_type = REEL_ATTENTION_CUDA;
  for (const char* name : {"cuda_flash", "cudnn", "cublas"}) {
    const Support s = find_attention_kernel(name)->supports(p);
    EXPECT_FALSE(s) << name;
    EXPECT_NE(s.reason.find("not"), std::string::npos) << s.reason;
  }
}

}  // namespace
}  // namespace reel::test
