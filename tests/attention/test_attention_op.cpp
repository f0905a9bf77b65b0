// op::Attention through a Backend (what the DiT uses, so that on a GPU attention runs on the
// backend's stream): the same result as calling the kernel directly, a named kernel, and
// errors that name the cause for bad shapes, NULLs, unknown kernels and foreign devices.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_util.hpp"
#include "reel/attention.hpp"
#include "reel/ops.hpp"

namespace reel::test {
namespace {

TEST(AttentionOp, EqualsTheDirectCallForEachCpuKernel) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor q = random_tensor({2, 37, 3, 64}, 1, dt), k = random_tensor({2, 53, 3, 64}, 2, dt),
                 v = random_tensor({2, 53, 3, 64}, 3, dt);
    for (const char* name : {"", "cpu_reference", "cpu_flash", "onednn"}) {
      const Tensor via_op = ops::attention(*be, q, k, v, 0.125f, name);
      Tensor direct = Tensor::empty(q.shape(), dt);
      attention(q, k, v, direct, 0.125f, name);
      ASSERT_EQ(via_op.shape(), q.shape());
      EXPECT_EQ(std::memcmp(via_op.raw(), direct.raw(), direct.nbytes()), 0) << "kernel '" << name << "'";
    }
    // And it is attention: against the double reference within the same-precision rule.
    const Tensor best = ops::attention(*be, q, k, v, 0.125f);
    const Tensor ref = ops::attention(*be, q, k, v, 0.125f, "cpu_reference");
    EXPECT_LE(relative_l2(to_doubles(best), to_doubles(ref)), dt == DType::f32 ? 1e-5 : 1e-2);
  }
}

TEST(AttentionOp, BadInputsNameTheCause) {
  auto be = make_cpu_backend({.threads = 1});
  const Tensor q = random_tensor({1, 8, 2, 16}, 4), k = random_tensor({1, 9, 2, 16}, 5), v = random_tensor({1, 9, 2, 16}, 6);
  Tensor out = Tensor::empty(q.shape(), DType::f32);
  expect_code(StatusCode::invalid_argument, [&] { be->run(op::Attention{nullptr, &k, &v, &out}); }, "q is null");
  const Tensor short_v = random_tensor({1, 7, 2, 16}, 7);
  expect_code(StatusCode::invalid_argument, [&] { be->run(op::Attention{&q, &k, &short_v, &out, 0.25f}); }, "v has shape");
  Tensor wrong_out = Tensor::empty({1, 8, 2, 8}, DType::f32);
  expect_code(StatusCode::invalid_argument, [&] { be->run(op::Attention{&q, &k, &v, &wrong_out, 0.25f}); }, "out");
  expect_code(StatusCode::unsupported, [&] { be->run(op::Attention{&q, &k, &v, &out, 0.25f, "no_such_kernel"}); }, "no attention kernel named");
  expect_code(StatusCode::invalid_argument, [&] {
    Tensor alias = q;  // writing into q while reading it
    be->run(op::Attention{&q, &k, &v, &alias, 0.25f});
  }, "overlaps");
}

}  // namespace
}  // namespace reel::test
