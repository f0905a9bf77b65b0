// The attention registry, the selector, params validation and the Tensor-level call:
// which kernel is picked and why, and that bad input gets an Error naming the cause.
#include <atomic>

#include "attention/attention_test_util.hpp"

namespace reel::test {
namespace {

AttentionParams small_params(Tensor& q, Tensor& k, Tensor& v, Tensor& out, DType dtype = DType::bf16) {
  q = random_tensor({1, 8, 2, 64}, 1, dtype);
  k = random_tensor({1, 9, 2, 64}, 2, dtype);
  v = random_tensor({1, 9, 2, 64}, 3, dtype);
  out = Tensor::empty(q.shape(), dtype);
  return attention_params(q, k, v, out, 0.125f);
}

TEST(AttentionRegistry, ListsTheBuiltInKernels) {
  std::vector<std::string> names;
  for (const AttentionKernel* k : attention_kernels()) names.emplace_back(k->name());
  for (const char* want : {"cpu_flash", "onednn", "cpu_reference"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
#ifdef REEL_HAVE_CUDA
  for (const char* want : {"cuda_flash", "cudnn", "cublas"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
#endif
  for (const AttentionKernel* k : attention_kernels()) EXPECT_FALSE(k->description().empty()) << k->name();
  EXPECT_EQ(find_attention_kernel("no_such_kernel"), nullptr);
}

TEST(AttentionSelector, PicksTheBestSupportedCpuKernel) {
  Tensor q, k, v, out;
  AttentionParams p = small_params(q, k, v, out);
  AttentionSelection s = select_attention_kernel(p);
  ASSERT_NE(s.kernel, nullptr) << s.reason;
  EXPECT_EQ(s.kernel->name(), "cpu_flash");

  // head_dim 300 is past cpu_flash's limit: the oneDNN fallback takes it, and says nothing
  // about cpu_flash's reason because it succeeded.
  Tensor q3 = random_tensor({1, 4, 1, 300}, 4, DType::f32), k3 = random_tensor({1, 5, 1, 300}, 5, DType::f32);
  Tensor v3 = random_tensor({1, 5, 1, 300}, 6, DType::f32), o3 = Tensor::empty(q3.shape(), DType::f32);
  AttentionParams big = attention_params(q3, k3, v3, o3, 0.05f);
  EXPECT_FALSE(find_attention_kernel("cpu_flash")->supports(big));
  s = select_attention_kernel(big);
  ASSERT_NE(s.kernel, nullptr);
  EXPECT_EQ(s.kernel->name(), "onednn");

  // ... and with an lse output (onednn has none) only the reference is left.
  std::vector<float> lse(4);
  big.lse = lse.data();
  s = select_attention_kernel(big);
  ASSERT_NE(s.kernel, nullptr);
  EXPECT_EQ(s.kernel->name(), "cpu_reference");
  EXPECT_EQ(run_attention(big).name(), "cpu_reference");
}

TEST(AttentionSelector, ExplainsWhyNothingRuns) {
  Tensor q, k, v, out;
  AttentionParams p = small_params(q, k, v, out);
  AttentionSelection s = select_attention_kernel(p, "no_such_kernel");
  EXPECT_EQ(s.kernel, nullptr);
  EXPECT_NE(s.reason.find("cpu_flash"), std::string::npos) << "lists the registered names: " << s.reason;
  expect_code(StatusCode::not_found, [&] { run_attention(p, "no_such_kernel"); }, "no_such_kernel");

  // CPU buffers described as CUDA memory: no CPU kernel runs them, and the CUDA ones (if
  // built) refuse too (no GPU here, or not device memory).
  AttentionParams gpu = p;
  gpu.device_type = REEL_ATTENTION_CUDA;
  s = select_attention_kernel(gpu);
  if (cuda_device_count() == 0) {
    EXPECT_EQ(s.kernel, nullptr);
    EXPECT_NE(s.reason.find("cpu_flash: runs on cpu"), std::string::npos) << s.reason;
    expect_code(StatusCode::unsupported, [&] { run_attention(gpu); }, "cpu_flash: runs on cpu");
  }
  // A CPU kernel named for CUDA params says so.
  s = select_attention_kernel(gpu, "onednn");
  EXPECT_EQ(s.kernel, nullptr);
  EXPECT_NE(s.reason.find("runs on cpu"), std::string::npos) << s.reason;
}

TEST(AttentionSelector, CudaKernelsRefuseWithoutAGpu) {
#ifndef REEL_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present: covered by test_attention_cuda";
  Tensor q, k, v, out;
  AttentionParams p = small_params(q, k, v, out);
  p.device_type = REEL_ATTENTION_CUDA;
  for (const char* name : {"cuda_flash", "cudnn", "cublas"}) {
    const AttentionKernel* kernel = find_attention_kernel(name);
    ASSERT_NE(kernel, nullptr) << name;
    const Support s = kernel->supports(p);
    EXPECT_FALSE(s) << name;
    EXPECT_NE(s.reason.find("no CUDA device"), std::string::npos) << name << ": " << s.reason;
  }
#endif
}

TEST(AttentionRegistry, AcceptsOutsideKernelsByName) {
  // A researcher's kernel: counts its calls and delegates to the reference.
  struct Counting final : AttentionKernel {
    mutable std::atomic<int> calls{0};
    std::string_view name() const override { return "test_counting"; }
    std::string_view description() const override { return "test kernel"; }
    DeviceType device_type() const override { return DeviceType::cpu; }
    int priority() const override { return -1; }  // never the default choice
    Support supports(const AttentionParams& p) const override {
      return p.head_dim == 64 ? Support::yes() : Support::no("only head_dim 64");
    }
    void run(const AttentionParams& p) const override {
      ++calls;
      find_attention_kernel("cpu_reference")->run(p);
    }
  };
  static bool registered = false;
  auto kernel = std::make_shared<Counting>();
  if (!registered) register_attention_kernel(kernel), registered = true;
  const auto* mine = dynamic_cast<const Counting*>(find_attention_kernel("test_counting"));
  ASSERT_NE(mine, nullptr);
  Tensor q, k, v, out;
  AttentionParams p = small_params(q, k, v, out);
  EXPECT_EQ(run_attention(p).name(), "cpu_flash");  // lower priority: not picked by default
  EXPECT_EQ(run_attention(p, "test_counting").name(), "test_counting");
  EXPECT_EQ(mine->calls.load(), 1);
  expect_code(StatusCode::invalid_argument, [&] { register_attention_kernel(std::make_shared<Counting>()); }, "already exists");
  expect_code(StatusCode::invalid_argument, [&] { register_attention_kernel(nullptr); }, "null");
}

TEST(AttentionValidation, RejectsBadParamsNamingTheField) {
  Tensor q, k, v, out;
  const AttentionParams good = small_params(q, k, v, out);
  EXPECT_NO_THROW(validate_attention_params(good));
  struct Case {
    const char* needle;
    void (*mutate)(AttentionParams&);
  };
  const Case cases[] = {
      {"struct_size", [](AttentionParams& p) { p.struct_size = 0; }},
      {"dtype", [](AttentionParams& p) { p.dtype = 7; }},
      {"device_type", [](AttentionParams& p) { p.device_type = 3; }},
      {"device_index", [](AttentionParams& p) { p.device_index = 1; }},  // CPU has only 0
      {"q is NULL", [](AttentionParams& p) { p.q = nullptr; }},
      {"v is NULL", [](AttentionParams& p) { p.v = nullptr; }},
      {"out is NULL", [](AttentionParams& p) { p.out = nullptr; }},
      {"seq_kv", [](AttentionParams& p) { p.seq_kv = 0; }},
      {"head_dim", [](AttentionParams& p) { p.head_dim = -3; }},
      {"batch", [](AttentionParams& p) { p.batch = int64_t(1) << 40; }},
      {"k_row_stride", [](AttentionParams& p) { p.k_row_stride = -1; }},
      {"scale", [](AttentionParams& p) { p.scale = NAN; }},
      {"scale", [](AttentionParams& p) { p.scale = INFINITY; }},
      {"kv_offset", [](AttentionParams& p) { p.kv_offset = -5; }},
      {"q_total", [](AttentionParams& p) { p.q_offset = 4, p.q_total = 10; }},  // 4 + 8 rows > 10
      {"out strides", [](AttentionParams& p) { p.out_row_stride = 0; }},
      {"out strides", [](AttentionParams& p) { p.out_head_stride = 32; }},  // heads overlap within a row
      {"overlaps q", [](AttentionParams& p) { p.out = const_cast<void*>(p.q); }},
  };
  for (const Case& c : cases) {
    AttentionParams p = good;
    c.mutate(p);
    expect_code(StatusCode::invalid_argument, [&] { validate_attention_params(p); }, c.needle);
    expect_code(StatusCode::invalid_argument, [&] { run_attention(p); }, c.needle);
  }
}

TEST(AttentionTensorCall, MatchesTheParamsCallAndChecksShapes) {
  const AttnInputs in = make_attention_inputs({2, 20, 33, 3, 64}, DType::bf16, 9);
  Tensor out = Tensor::empty(in.q.shape(), DType::bf16);
  attention(in.q, in.k, in.v, out, in.scale);
  const Tolerance tol = attention_tolerance(in, DType::bf16);
  EXPECT_LE(max_abs_diff(to_doubles(out), tol.ref), tol.bound);

  // Rank 3 is [S, H, D] with B = 1.
  Tensor q3 = in.q.select(0), k3 = in.k.select(0), v3 = in.v.select(0), o3 = Tensor::empty(q3.shape(), DType::bf16);
  attention(q3, k3, v3, o3, in.scale);
  const std::vector<double> full = to_doubles(out), first = to_doubles(o3);
  EXPECT_EQ(std::vector<double>(full.begin(), full.begin() + int64_t(first.size())), first);

  Tensor bad_k = random_tensor({2, 33, 3, 32}, 1, DType::bf16);
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, bad_k, in.v, out, in.scale); }, "k has shape");
  Tensor bad_v = random_tensor({2, 34, 3, 64}, 1, DType::bf16);
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, in.k, bad_v, out, in.scale); }, "v has shape");
  Tensor bad_out = Tensor::empty({2, 21, 3, 64}, DType::bf16);
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, in.k, in.v, bad_out, in.scale); }, "out has shape");
  Tensor f32_out = Tensor::empty(in.q.shape(), DType::f32);
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, in.k, in.v, f32_out, in.scale); }, "out is f32");
  Tensor ints = Tensor::empty(in.q.shape(), DType::i32);
  Tensor ints_out = Tensor::empty(in.q.shape(), DType::i32);
  expect_code(StatusCode::invalid_argument, [&] { attention(ints, ints, ints, ints_out, 1.0f); }, "f32, bf16 or f16");
  Tensor flat = random_tensor({64}, 1, DType::bf16);
  expect_code(StatusCode::invalid_argument, [&] { attention(flat, in.k, in.v, out, in.scale); }, "[B, S, H, D]");
  Tensor undefined;
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, undefined, in.v, out, in.scale); }, "k is undefined");
  // Memory-mapped (read-only) outputs are refused.
  auto owner = std::make_shared<std::vector<uint16_t>>(size_t(in.q.numel()));
  Tensor read_only = Tensor::wrap(in.q.shape(), DType::bf16, owner, owner->data());
  expect_code(StatusCode::invalid_argument, [&] { attention(in.q, in.k, in.v, read_only, in.scale); }, "read-only");
  expect_code(StatusCode::not_found, [&] { attention(in.q, in.k, in.v, out, in.scale, "nope"); }, "nope");
}

}  // namespace
}  // namespace reel::test
