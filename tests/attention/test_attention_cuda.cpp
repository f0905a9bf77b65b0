// CUDA attention kernels (cuda_flash, cudnn, cublas) against the exact reference, same shapes and
// tolerance rule as the CPU kernels (attention_test_util.hpp), with and without the lse output;
// strided buffers on a caller's stream. Skips without a GPU (except the host-only checks).
#include <cstdio>

#include "attention/attention_test_util.hpp"

#ifdef REEL_HAVE_CUDA
#include <cuda_runtime.h>
#endif

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
      {1, 260, 70, 2, 64},     // Sq > Skv: three q tiles over one whole and one 6-key kv tile
      {2, 129, 64, 3, 128},    // exactly one kv tile; a q tile of a single row; B and H > 1
  };
  return s;
}

bool have_gpu() {
  (void)attention_kernels();  // registers the CUDA device memory when a GPU is present
  return cuda_device_count() > 0;
}

class CudaAttention : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};

// Whether `kernel` must take every shape of this file in `dtype`: cuda_flash (bf16/f16) and
// cublas (any dtype) have no shape limits here, so a refusal is a bug; cudnn depends on the
// engines of the installed cuDNN, so its refusals are reported and the shape skipped.
bool must_support(std::string_view kernel, DType dtype) {
  if (kernel == "cublas") return true;
  if (kernel == "cuda_flash") return dtype != DType::f32;
  return false;
}

TEST_P(CudaAttention, MatchesReferenceOverShapes) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const auto [name, dtype] = GetParam();
  const AttentionKernel* kernel = find_attention_kernel(name);
  ASSERT_NE(kernel, nullptr) << name;
  int ran = 0;
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
    if (!s) {
      if (must_support(name, dtype)) ADD_FAILURE() << name << " refuses " << dtype_name(dtype) << " " << shape.str() << ": " << s.reason;
      else std::printf("[   INFO   ] %s does not run %s %s: %s\n", name, dtype_name(dtype).data(), shape.str().c_str(), s.reason.c_str());
      continue;
    }
    ++ran;
    run_attention(p, name);
    const Tensor host = out.to(Device::cpu());  // synchronous copy: waits for the kernel
    EXPECT_LE(max_abs_diff(to_doubles(host), tol.ref), tol.bound) << name << " " << dtype_name(dtype) << " " << shape.str();
    // lse against the exact log-sum-exp of the rounded inputs (see test_attention_cpu).
    std::vector<double> lse_ref;
    (void)exact_attention(in.q, in.k, in.v, in.scale, &lse_ref);
    const std::vector<float> lse_host = lse.to(Device::cpu()).to_floats();
    for (size_t r = 0; r < lse_ref.size(); ++r)
      ASSERT_NEAR(lse_host[r], lse_ref[r], 1e-4 * (1.0 + std::abs(lse_ref[r]))) << name << " " << shape.str() << " row " << r;

    // Without lse: another code path (cudnn builds another graph, without the Stats output).
    AttentionParams plain = p;
    plain.lse = nullptr;
    Tensor out2 = Tensor::empty(in.q.shape(), dtype, gpu);
    plain.out = out2.raw();
    const Support s2 = kernel->supports(plain);
    ASSERT_TRUE(s2) << name << " takes the call with lse but not without: " << s2.reason;
    run_attention(plain, name);
    EXPECT_LE(max_abs_diff(to_doubles(out2.to(Device::cpu())), tol.ref), tol.bound)
        << name << " without lse " << dtype_name(dtype) << " " << shape.str();
  }
  if (ran == 0) GTEST_SKIP() << name << " runs none of the shapes in " << dtype_name(dtype);
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaAttention,
                         ::testing::Combine(::testing::Values("cuda_flash", "cudnn", "cublas"),
                                            ::testing::Values(DType::bf16, DType::f16, DType::f32)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

#ifdef REEL_HAVE_CUDA
// Strided buffers through the params strides, on a caller's non-blocking stream: q and out
// with rows padded by 8 elements (the padding must stay untouched), k and v head-major
// [B, H, Skv, D]. Catches element/byte stride mix-ups and launches on the wrong stream.
TEST(CudaAttentionLayout, StridedBuffersOnACallersStream) {
  REEL_SKIP_WITHOUT_GPU(have_gpu());
  const AttnShape s{2, 150, 70, 3, 64};
  const int64_t hd = s.heads * s.head_dim, pad = 8;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (DType dtype : {DType::bf16, DType::f16, DType::f32}) {
    const AttnInputs in = make_attention_inputs(s, dtype, 91);
    const Tolerance tol = attention_tolerance(in, dtype);
    const StridedAttnValues strided = strided_attention_values(in, s, pad);
    const std::vector<float>&qs = strided.q, &ks = strided.k, &vs = strided.v;
    const Device gpu = Device::cuda();
    const Tensor q = Tensor::from_floats({int64_t(qs.size())}, qs, dtype).to(gpu);
    const Tensor k = Tensor::from_floats({int64_t(ks.size())}, ks, dtype).to(gpu);
    const Tensor v = Tensor::from_floats({int64_t(vs.size())}, vs, dtype).to(gpu);
    const std::vector<float> sentinel(qs.size(), 7.0f);
    for (const char* name : {"cuda_flash", "cudnn", "cublas"}) {
      Tensor out = Tensor::from_floats({int64_t(qs.size())}, sentinel, dtype).to(gpu);
      AttentionParams p = default_attention_params();
      p.dtype = int32_t(dtype);
      p.device_type = REEL_ATTENTION_CUDA;
      p.stream = stream;
      p.q = q.raw();
      p.k = k.raw();
      p.v = v.raw();
      p.out = out.raw();
      set_strided_layout(p, s, pad);
      p.scale = in.scale;
      const Support ok = find_attention_kernel(name)->supports(p);
      if (!ok) {
        if (must_support(name, dtype)) ADD_FAILURE() << name << " refuses strided " << dtype_name(dtype) << ": " << ok.reason;
        continue;
      }
      run_attention(p, name);
      // Not needed (run() orders the stream with reel's, see test_attention_cuda_guards): this
      // test is about layouts only.
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << name;
      const std::vector<float> o = out.to(Device::cpu()).to_floats();
      std::vector<double> dense(size_t(s.batch * s.seq_q * hd));
      int touched = 0;
      for (int64_t r = 0; r < s.batch * s.seq_q; ++r) {
        for (int64_t c = 0; c < hd; ++c) dense[size_t(r * hd + c)] = o[size_t(r * (hd + pad) + c)];
        for (int64_t c = hd; c < hd + pad; ++c) touched += o[size_t(r * (hd + pad) + c)] != 7.0f;
      }
      EXPECT_EQ(touched, 0) << name << ": padding between rows was written";
      EXPECT_LE(max_abs_diff(dense, tol.ref), tol.bound) << name << " strided " << dtype_name(dtype);
    }
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}
#endif

// cublas materialises one query row of scores (f32) and probabilities (the io dtype) per
// head: 8 bytes per key in f32, 6 in bf16. A row over its 1 GiB workspace must be refused in
// supports() (run() would otherwise get chunks of 0 rows and never finish). Host-only: the
// check comes before any device query.
TEST(CudaAttentionCublas, RefusesRowsOverTheWorkspace) {
  const AttentionKernel* cublas = find_attention_kernel("cublas");
  if (!cublas) GTEST_SKIP() << "reel was built without CUDA";
  AttentionParams p = default_attention_params();
  p.device_type = REEL_ATTENTION_CUDA;
  p.batch = 1, p.heads = 1, p.head_dim = 64, p.seq_q = 1;
  p.seq_kv = 150'000'000;  // 1.2 GB per row in f32, 0.9 GB in bf16
  p.q_row_stride = p.k_row_stride = p.v_row_stride = p.out_row_stride = 64;
  p.scale = 0.125f;
  p.dtype = REEL_ATTENTION_F32;
  const Support f32 = cublas->supports(p);
  EXPECT_FALSE(f32);
  EXPECT_NE(f32.reason.find("workspace"), std::string::npos) << f32.reason;
  p.dtype = REEL_ATTENTION_BF16;
  const Support bf16 = cublas->supports(p);  // fits: refused later, if at all, for other reasons
  EXPECT_EQ(bf16.reason.find("workspace"), std::string::npos) << bf16.reason;
}

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
