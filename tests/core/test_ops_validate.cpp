// reel::validate and the CPU backend's supports(): wrong shapes, ranks and dtypes are
// rejected with Error(invalid_argument) naming the op and the tensor; valid requests the CPU
// backend cannot run (tensors in another device's memory) get Error(unsupported) with the
// reason; broadcast_shapes follows NumPy; the backend's thread option is applied and restored.
#include <cstdlib>
#include <cstring>

#include "core/op_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {
constexpr StatusCode kInvalid = StatusCode::invalid_argument;
Tensor f32(const Shape& s) { return random_nonzero(s, 1); }
}  // namespace

TEST(BroadcastShapes, FollowsNumpyRules) {
  EXPECT_EQ(ops::broadcast_shapes({2, 1, 5}, {3, 1}), Shape({2, 3, 5}));
  EXPECT_EQ(ops::broadcast_shapes({}, {4, 2}), Shape({4, 2}));
  EXPECT_EQ(ops::broadcast_shapes({7, 13}, {7, 13}), Shape({7, 13}));
  EXPECT_EQ(ops::broadcast_shapes({1}, {0}), Shape({0}));
  expect_code(kInvalid, [] { ops::broadcast_shapes({2, 3}, {4, 3}); }, "do not broadcast");
}

TEST(Validate, MatmulAndConvShapesAndDtypes) {
  const Tensor x = f32({4, 8}), w = f32({6, 8}), wbad = f32({6, 7}), b = f32({6}), b5 = f32({5});
  Tensor out = Tensor::empty({4, 6}, DType::f32), out_bad = Tensor::empty({4, 5}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &wbad, nullptr, &out}); }, "linear: weight [6, 7]");
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, nullptr, &out_bad}); }, "linear: out has shape [4, 5]");
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, &b5, &out}); }, "linear: bias has 5 elements");
  expect_code(kInvalid, [&] { validate(op::Linear{nullptr, &w, &b, &out}); }, "linear: x is null");
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, &b, nullptr}); }, "linear: out is null");
  const Tensor undefined;
  expect_code(kInvalid, [&] { validate(op::Linear{&undefined, &w, &b, &out}); }, "x is an undefined tensor");
  Tensor xi = Tensor::zeros({4, 8}, DType::i32);
  expect_code(kInvalid, [&] { validate(op::Linear{&xi, &w, &b, &out}); }, "linear: x has dtype i32");
  Tensor out_f16 = Tensor::empty({4, 6}, DType::f16);
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, &b, &out_f16}); }, "expected f32 or x's dtype");
  const Tensor bias_f16 = Tensor::zeros({6}, DType::f16);
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, &bias_f16, &out}); }, "linear: bias has dtype f16");
  // Read-only (memory-mapped) outputs are refused.
  auto storage = std::make_shared<std::vector<float>>(24);
  Tensor ro = Tensor::wrap({4, 6}, DType::f32, storage, storage->data());
  expect_code(kInvalid, [&] { validate(op::Linear{&x, &w, &b, &ro}); }, "out is read-only");
  validate(op::Linear{&x, &w, &b, &out});  // and the good one passes

  const Tensor a3 = f32({2, 3, 4}), b3 = f32({2, 5, 4});
  Tensor o3 = Tensor::empty({2, 3, 5}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::BatchMatMul{&a3, &b3, &o3, false}); }, "batch_matmul: b [2, 5, 4]");
  validate(op::BatchMatMul{&a3, &b3, &o3, true});
  const Tensor b3h = Tensor::zeros({2, 5, 4}, DType::bf16);
  expect_code(kInvalid, [&] { validate(op::BatchMatMul{&a3, &b3h, &o3, true}); }, "batch_matmul: b has dtype bf16");

  const Tensor vx = f32({1, 4, 3, 8, 8}), vw = f32({6, 4, 3, 3, 3}), vw_bad = f32({6, 5, 3, 3, 3});
  Tensor vo = Tensor::empty({1, 6, 3, 8, 8}, DType::f32);
  validate(op::Conv3d{&vx, &vw, nullptr, &vo, {1, 1, 1}, {1, 1, 1}});
  expect_code(kInvalid, [&] { validate(op::Conv3d{&vx, &vw_bad, nullptr, &vo, {1, 1, 1}, {1, 1, 1}}); }, "conv3d: weight [6, 5, 3, 3, 3] has 5 input channels");
  expect_code(kInvalid, [&] { validate(op::Conv3d{&vx, &vw, nullptr, &vo, {1, 1, 1}, {0, 0, 0}}); }, "conv3d: out has shape [1, 6, 3, 8, 8], expected [1, 6, 1, 6, 6]");
  expect_code(kInvalid, [&] { validate(op::Conv3d{&vx, &vw, nullptr, &vo, {0, 1, 1}, {1, 1, 1}}); }, "stride 0");
  const Tensor x4 = f32({1, 4, 8, 8});
  expect_code(kInvalid, [&] { validate(op::Conv3d{&x4, &vw, nullptr, &vo}); }, "conv3d: x has rank 4");
  const Tensor w2 = f32({6, 4, 9, 9});
  Tensor o2 = Tensor::empty({1, 6, 1, 1}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Conv2d{&x4, &w2, nullptr, &o2}); }, "conv2d: kernel");
}

TEST(Validate, NormElementwiseAndLayout) {
  const Tensor x = f32({2, 5, 8});
  Tensor out = Tensor::empty({2, 5, 8}, DType::f32);
  const Tensor w7 = f32({7}), w8 = f32({8});
  expect_code(kInvalid, [&] { validate(op::LayerNorm{&x, &w7, nullptr, &out}); }, "layer_norm: weight has 7 elements");
  expect_code(kInvalid, [&] { validate(op::LayerNorm{&x, nullptr, &w8, &out}); }, "layer_norm: bias without weight");
  const Tensor w8_bf16 = Tensor::zeros({8}, DType::bf16);
  validate(op::LayerNorm{&x, nullptr, nullptr, &out, 1e-6f, &w8, &w8});  // fused modulation
  expect_code(kInvalid, [&] { validate(op::LayerNorm{&x, nullptr, nullptr, &out, 1e-6f, &w8, nullptr}); }, "layer_norm: mod_scale and mod_shift must be given together");
  expect_code(kInvalid, [&] { validate(op::LayerNorm{&x, nullptr, nullptr, &out, 1e-6f, &w8, &w7}); }, "layer_norm: mod_shift has 7 elements");
  expect_code(kInvalid, [&] { validate(op::LayerNorm{&x, nullptr, nullptr, &out, 1e-6f, &w8_bf16, &w8}); }, "layer_norm: mod_scale has dtype bf16, expected f32 or x's dtype f32");
  expect_code(kInvalid, [&] { validate(op::RmsNorm{&x, &w8, &out, -1.0f}); }, "rms_norm: eps");
  expect_code(kInvalid, [&] { validate(op::ChannelL2Norm{&x, &w8, nullptr, &out}); }, "channel_l2_norm: gamma has 8 elements");
  Tensor out_small = Tensor::empty({2, 5, 7}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Unary{op::UnaryKind::silu, &x, &out_small}); }, "silu: out has shape");
  expect_code(kInvalid, [&] { validate(op::Softmax{&x, &out_small}); }, "softmax: out has shape");

  const Tensor a = f32({2, 5, 8}), bad = f32({3, 8});
  expect_code(kInvalid, [&] { validate(op::Binary{op::BinaryKind::mul, &a, &bad, &out}); }, "mul: a [2, 5, 8] and b [3, 8] do not broadcast");
  Tensor big = Tensor::empty({2, 2, 5, 8}, DType::f32);
  const Tensor c = f32({2, 1, 1, 8});
  expect_code(kInvalid, [&] { validate(op::MulAdd{&a, &a, &c, &out}); }, "mul_add: out has shape [2, 5, 8]");
  validate(op::MulAdd{&a, &a, &c, &big});
  expect_code(kInvalid, [&] { validate(op::Modulate{&x, &c, &w8, &out}); }, "modulate: scale [2, 1, 1, 8]");

  const Tensor q = f32({1, 3, 2, 6}), q_odd = f32({1, 3, 2, 5}), cs = f32({3, 6}), cs_bad = f32({4, 6});
  const Tensor cs_bf16 = Tensor::zeros({3, 6}, DType::bf16);
  Tensor qo = Tensor::empty({1, 3, 2, 6}, DType::f32), qo5 = Tensor::empty({1, 3, 2, 5}, DType::f32);
  validate(op::Rope{&q, &cs, &cs, &qo});
  expect_code(kInvalid, [&] { validate(op::Rope{&q_odd, &cs, &cs, &qo5}); }, "rope: x [1, 3, 2, 5] has an odd");
  expect_code(kInvalid, [&] { validate(op::Rope{&q, &cs_bad, &cs, &qo}); }, "rope: cos has shape [4, 6]");
  expect_code(kInvalid, [&] { validate(op::Rope{&q, &cs, &cs_bf16, &qo}); }, "rope: sin has dtype bf16");

  const Tensor p1 = f32({2, 3}), p2 = f32({2, 4});
  Tensor co = Tensor::empty({2, 8}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Concat{{&p1, &p2}, 1, &co}); }, "concat: out [2, 8] has 8 along axis 1");
  expect_code(kInvalid, [&] { validate(op::Concat{{&p1, &p2}, 0, &co}); }, "concat: inputs[0] [2, 3] differs");
  expect_code(kInvalid, [&] { validate(op::Concat{{&p1, nullptr}, 1, &co}); }, "concat: inputs[1] is null");
  Tensor po = Tensor::empty({3, 3}, DType::f32);
  op::Pad pad{&p1, &po};
  pad.before[0] = -1;
  pad.after[0] = 2;
  expect_code(kInvalid, [&] { validate(pad); }, "pad: padding of dimension 0 is negative");
  Tensor pe = Tensor::empty({3, 2}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Permute{&p1, &pe, {0, 0}}); }, "permute: perm is not a permutation");
  Tensor so = Tensor::empty({2, 2}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::Slice{&p1, &so, 1, 2}); }, "slice: range [2, 4) is out of bounds");
  Tensor ci = Tensor::empty({2, 3}, DType::i32);
  expect_code(kInvalid, [&] { validate(op::Convert{&p1, &ci}); }, "convert: i32 converts only to i32");
  Tensor up = Tensor::empty({2, 5}, DType::f32);
  expect_code(kInvalid, [&] { validate(op::UpsampleNearest{&p1, &up, 2, 2}); }, "upsample_nearest: out has shape");
}

TEST(Validate, OutputMayAliasAnInputOnlyWhereTheOpRunsInPlace) {
  Tensor buf = f32({6, 8});
  const Tensor w = f32({8, 8});
  Tensor top = buf.slice(0, 4), shifted = buf.slice(2, 6);
  // GEMMs, convolutions and data movement never run in place.
  expect_code(kInvalid, [&] { validate(op::Linear{&top, &w, nullptr, &top}); }, "linear: x overlaps out's memory (this op cannot run in place)");
  Tensor flat = buf.reshape({48}), view = buf.slice(0, 3).reshape({24});
  expect_code(kInvalid, [&] { validate(op::Slice{&flat, &view, 0, 1}); }, "slice: x overlaps out's memory");
  // Element-wise ops run in place when out is exactly the input...
  validate(op::Unary{op::UnaryKind::silu, &top, &top});
  Tensor other = f32({4, 8});
  validate(op::Binary{op::BinaryKind::add, &top, &other, &other});
  // ...but not on a partially overlapping view (rows would be read after being written).
  expect_code(kInvalid, [&] { validate(op::Unary{op::UnaryKind::silu, &top, &shifted}); }, "silu: x overlaps out's memory (in-place use needs out to be exactly that tensor)");
  Tensor as_bias = buf.slice(0, 1);
  expect_code(kInvalid, [&] { validate(op::Binary{op::BinaryKind::mul, &top, &as_bias, &top}); }, "mul: b overlaps out's memory");
}

TEST(Validate, WrappersRejectBadInputWithoutCrashing) {
  auto be = make_cpu_backend({.threads = 1});
  const Tensor x = f32({4, 8}), v = f32({8});
  expect_code(kInvalid, [&] { ops::linear(*be, x, v); }, "linear");
  expect_code(kInvalid, [&] { ops::slice(*be, x, 1, 3, 9); }, "slice: range [3, 9)");
  expect_code(kInvalid, [&] { ops::slice(*be, x, 2, 0, 1); }, "axis 2 is out of range");
  expect_code(kInvalid, [&] { ops::permute(*be, x, std::vector<int>{1}); }, "perm has 1 entries");
  expect_code(kInvalid, [&] { ops::pad(*be, x, std::vector<int64_t>{1}, std::vector<int64_t>{1}); }, "pad");
  expect_code(kInvalid, [&] { ops::add(*be, x, f32({3})); }, "do not broadcast");
  expect_code(kInvalid, [&] { ops::conv3d(*be, x, x, nullptr); }, "conv3d");
  expect_code(kInvalid, [&] { ops::concat(*be, {}, 0); }, "concat: no inputs");
  expect_code(kInvalid, [&] { ops::upsample_nearest(*be, v, 2, 2); }, "upsample_nearest");
  expect_code(kInvalid, [&] { ops::batch_matmul(*be, x, x); }, "batch_matmul");
}

// Host memory registered as the "cuda" device, so tensors can claim to live there without a
// GPU: the CPU backend must refuse them (unsupported), not read them.
class FakeDeviceMemory final : public DeviceMemory {
 public:
  std::shared_ptr<std::byte> allocate(Device, size_t bytes) override {
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(std::malloc(std::max<size_t>(bytes, 1))),
                                      [](std::byte* p) { std::free(p); });
  }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override { std::memcpy(dst, src, bytes); }
};

TEST(Supports, TensorsOnAnotherDeviceAreUnsupportedWithAReason) {
  DeviceMemory* previous = nullptr;
  try {
    previous = &device_memory(DeviceType::cuda);
  } catch (const Error&) {
  }
  FakeDeviceMemory fake;
  register_device_memory(DeviceType::cuda, &fake);
  auto be = make_cpu_backend({.threads = 1});
  const Tensor x = Tensor::zeros({4, 8}, DType::f32, Device::cuda(0)), w = Tensor::zeros({6, 8}, DType::f32, Device::cuda(0));
  Tensor out = Tensor::empty({4, 6}, DType::f32, Device::cuda(0));
  const op::Linear lin{&x, &w, nullptr, &out};
  validate(lin);  // valid: every tensor on the same device
  const Support s = be->supports(lin);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find("cuda:0"), std::string::npos) << s.reason;
  expect_code(StatusCode::unsupported, [&] { be->run(lin); }, "linear is not supported by the cpu backend: x is on cuda:0");
  // A wrapper allocates out on the backend's device, so a foreign input is a device mismatch.
  expect_code(kInvalid, [&] { ops::silu(*be, x); }, "silu: x is on cuda:0 but out is on cpu");
  // Mixing devices is a caller error, caught by validate.
  const Tensor host = f32({4, 8});
  expect_code(kInvalid, [&] { validate(op::Binary{op::BinaryKind::add, &host, &x, &out}); }, "a is on cpu but out is on cuda:0");
  register_device_memory(DeviceType::cuda, previous);
}

TEST(CpuBackend, ThreadOptionIsAppliedAndRestored) {
  expect_code(kInvalid, [] { make_cpu_backend({.threads = -1}); }, "threads must be between 0");
  auto be = make_cpu_backend({.threads = 1});
  EXPECT_EQ(be->name(), "cpu");
  EXPECT_EQ(be->device(), Device::cpu());
  set_num_threads(2);
  const Tensor x = f32({16, 64});
  const Tensor y = ops::silu(*be, x);
  EXPECT_EQ(num_threads(), 2);  // the caller's setting survives the call
  set_num_threads(0);
}
