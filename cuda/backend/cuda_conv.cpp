// CUDA Conv3d (NCDHW) and Conv2d (NCHW) through cuDNN's convolution API
// (cudnnConvolutionForward). Per shape/dtype a plan holds the descriptors and the algorithms
// cudnnGetConvolutionForwardAlgorithm_v7 ranks first (those that fit a 1 GiB workspace); an
// algorithm that cuDNN refuses at run time is skipped for the next one. The workspace comes
// from the caching allocator. The bias is added by reel's kernel after the convolution.
//
// Types: x, weight and out of one type run in it (bf16/f16 with f32 accumulation, f32 with
// FMA math, TF32 only when allowed); any mix runs in f32 from exactly widened operands and is
// rounded once into out.
#include <climits>
#include <vector>

#include "backend/cuda_ops.hpp"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default: return CUDNN_DATA_FLOAT;
  }
}

struct Candidate {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
  size_t workspace;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  std::vector<Candidate> candidates;  // best first; a refused one is erased
  ~ConvPlan() {
    if (conv) (void)cudnnDestroyConvolutionDescriptor(conv);
    if (w) (void)cudnnDestroyFilterDescriptor(w);
    if (y) (void)cudnnDestroyTensorDescriptor(y);
    if (x) (void)cudnnDestroyTensorDescriptor(x);
  }
};

std::vector<int> int_dims(const Shape& s) { return std::vector<int>(s.dims().begin(), s.dims().end()); }

std::vector<int> contiguous_strides(const std::vector<int>& dims) {
  std::vector<int> st(dims.size(), 1);
  for (int i = int(dims.size()) - 2; i >= 0; --i) st[size_t(i)] = st[size_t(i) + 1] * dims[size_t(i) + 1];
  return st;
}

template <size_t N>
std::shared_ptr<ConvPlan> make_plan(CudaContext& ctx, const Shape& xs, const Shape& ws, const Shape& ys, DType ct,
                                    const std::array<int, N>& stride, const std::array<int, N>& padding) {
  auto plan = std::make_shared<ConvPlan>();
  const cudnnDataType_t type = cudnn_type(ct);
  check_cudnn(cudnnCreateTensorDescriptor(&plan->x), "cudnnCreateTensorDescriptor");
  check_cudnn(cudnnCreateTensorDescriptor(&plan->y), "cudnnCreateTensorDescriptor");
  check_cudnn(cudnnCreateFilterDescriptor(&plan->w), "cudnnCreateFilterDescriptor");
  check_cudnn(cudnnCreateConvolutionDescriptor(&plan->conv), "cudnnCreateConvolutionDescriptor");
  const std::vector<int> xd = int_dims(xs), wd = int_dims(ws), yd = int_dims(ys);
  check_cudnn(cudnnSetTensorNdDescriptor(plan->x, type, int(xd.size()), xd.data(), contiguous_strides(xd).data()),
              "cudnnSetTensorNdDescriptor(x)");
  check_cudnn(cudnnSetTensorNdDescriptor(plan->y, type, int(yd.size()), yd.data(), contiguous_strides(yd).data()),
              "cudnnSetTensorNdDescriptor(out)");
  check_cudnn(cudnnSetFilterNdDescriptor(plan->w, type, CUDNN_TENSOR_NCHW, int(wd.size()), wd.data()),
              "cudnnSetFilterNdDescriptor");
  std::array<int, N> dilation;
  dilation.fill(1);
  // Accumulation in f32 for every type (cuDNN's "pseudo half / pseudo bf16" configurations).
  check_cudnn(cudnnSetConvolutionNdDescriptor(plan->conv, int(N), padding.data(), stride.data(), dilation.data(),
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              "cudnnSetConvolutionNdDescriptor");
  const bool exact_f32 = ct == DType::f32 && !ctx.allow_tf32();
  const cudnnMathType_t math = ct != DType::f32 ? CUDNN_TENSOR_OP_MATH : exact_f32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  check_cudnn(cudnnSetConvolutionMathType(plan->conv, math), "cudnnSetConvolutionMathType");

  std::vector<int> check(xd.size());
  check_cudnn(cudnnGetConvolutionNdForwardOutputDim(plan->conv, plan->x, plan->w, int(check.size()), check.data()),
              "cudnnGetConvolutionNdForwardOutputDim");
  if (check != yd) throw Error(StatusCode::internal, "cuDNN computes another output shape than reel for this convolution");

  cudnnHandle_t h = ctx.dnn();
  int max_algos = 0;
  check_cudnn(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_algos), "cudnnGetConvolutionForwardAlgorithmMaxCount");
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(std::max(max_algos, 1)));
  int returned = 0;
  check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, plan->x, plan->w, plan->conv, plan->y, int(perf.size()),
                                                     &returned, perf.data()),
              "cudnnGetConvolutionForwardAlgorithm_v7");
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& p = perf[size_t(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    // Exact f32 keeps FMA math: an algorithm offered only with tensor-op math would use TF32.
    if (exact_f32 && (p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    const cudnnMathType_t m = exact_f32 ? CUDNN_FMA_MATH : p.mathType;
    if (cudnnSetConvolutionMathType(plan->conv, m) != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(h, plan->x, plan->w, plan->conv, plan->y, p.algo, &bytes) !=
        CUDNN_STATUS_SUCCESS)
      continue;
    if (bytes > kMaxWorkspace) continue;
    plan->candidates.push_back({p.algo, m, bytes});
  }
  return plan;
}

template <class O, size_t N>
void run_conv(const O& o, CudaContext& ctx, const char* name, const std::array<int, N>& stride,
              const std::array<int, N>& padding) {
  const Tensor& x = *o.x;
  const Tensor& w = *o.weight;
  Tensor& out = *o.out;
  if (out.numel() == 0) return;
  const int64_t batch = out.dim(0), channels = out.dim(1), spatial = out.numel() / (batch * channels);
  if (x.numel() == 0 || w.numel() == 0) {  // an empty sum (no input channels): out = bias or zeros
    launch_bias_channels({}, operand(o.bias), out.raw(), int(out.dtype()), batch, channels, spatial, ctx.stream());
    return;
  }
  DType ct = (x.dtype() == w.dtype() && out.dtype() == x.dtype()) ? x.dtype() : DType::f32;
  auto plan_for = [&](DType type) {
    std::string key = std::string(name) + " " + x.shape().str() + w.shape().str() + " " +
                      std::string(dtype_name(type));
    for (size_t i = 0; i < N; ++i) key += " " + std::to_string(stride[i]) + "," + std::to_string(padding[i]);
    return std::static_pointer_cast<ConvPlan>(ctx.cached(key, [&] {
      return std::static_pointer_cast<void>(make_plan<N>(ctx, x.shape(), w.shape(), out.shape(), type, stride, padding));
    }));
  };
  std::shared_ptr<ConvPlan> plan = plan_for(ct);
  if (plan->candidates.empty() && ct != DType::f32) plan = plan_for(ct = DType::f32);

  std::shared_ptr<std::byte> xh, wh, yh;
  auto as_type = [&](const Tensor& t, std::shared_ptr<std::byte>& holder) -> const void* {
    if (t.dtype() == ct) return t.raw();
    holder = ctx.scratch(size_t(t.numel()) * dtype_size(ct));
    launch_convert(t.raw(), int(t.dtype()), holder.get(), int(ct), t.numel(), ctx.stream());
    return holder.get();
  };
  const void* xp = nullptr;
  const void* wp = nullptr;
  bool direct = false;
  void* yp = nullptr;
  auto prepare_operands = [&] {
    xp = as_type(x, xh);
    wp = as_type(w, wh);
    direct = out.dtype() == ct;
    yp = direct ? out.raw() : (yh = ctx.scratch(size_t(out.numel()) * dtype_size(ct))).get();
  };
  prepare_operands();

  cudnnHandle_t h = ctx.dnn();
  const float alpha = 1.0f, beta = 0.0f;
  while (true) {
    if (plan->candidates.empty() && ct != DType::f32) {
      // Every bf16/f16 algorithm was refused at run time: run in f32 from widened operands,
      // as for mixed types, instead of failing.
      plan = plan_for(ct = DType::f32);
      prepare_operands();
      continue;
    }
    if (plan->candidates.empty())
      throw Error(StatusCode::unsupported, std::string(name) + ": cuDNN has no algorithm for x " + x.shape().str() +
                                               ", weight " + w.shape().str() + " in " + std::string(dtype_name(ct)));
    const Candidate c = plan->candidates.front();
    check_cudnn(cudnnSetConvolutionMathType(plan->conv, c.math), "cudnnSetConvolutionMathType");
    std::shared_ptr<std::byte> workspace = c.workspace ? ctx.scratch(c.workspace) : nullptr;
    const cudnnStatus_t s = cudnnConvolutionForward(h, &alpha, plan->x, xp, plan->w, wp, plan->conv, c.algo,
                                                    workspace.get(), c.workspace, &beta, plan->y, yp);
    if (s == CUDNN_STATUS_SUCCESS) break;
    if (int(s) / 1000 != int(CUDNN_STATUS_NOT_SUPPORTED) / 1000) check_cudnn(s, "cudnnConvolutionForward");
    plan->candidates.erase(plan->candidates.begin());  // refused for this shape: try the next one
  }
  if (!direct || o.bias) {
    const Operand src{yp, int(ct)};
    launch_bias_channels(src, operand(o.bias), out.raw(), int(out.dtype()), batch, channels, spatial, ctx.stream());
  }
}

Support conv_support(Device d, const Tensor* x, const Tensor* w, const Tensor* b, const Tensor* out) {
  if (auto s = on_device(d, {{x, "x"}, {w, "weight"}, {b, "bias"}, {out, "out"}}); !s) return s;
  for (auto [t, name] : {std::pair{x, "x"}, std::pair{w, "weight"}, std::pair<const Tensor*, const char*>{out, "out"}})
    if (t->numel() > INT_MAX)
      return Support::no(std::string(name) + " " + t->shape().str() +
                         " has more than 2^31 elements, beyond cuDNN's convolution API (split it, e.g. by frames)");
  return Support::yes();
}

}  // namespace

Support supports(const op::Conv3d& o, Device d) { return conv_support(d, o.x, o.weight, o.bias, o.out); }
void execute(const op::Conv3d& o, CudaContext& ctx) { run_conv(o, ctx, "conv3d", o.stride, o.padding); }

Support supports(const op::Conv2d& o, Device d) { return conv_support(d, o.x, o.weight, o.bias, o.out); }
void execute(const op::Conv2d& o, CudaContext& ctx) { run_conv(o, ctx, "conv2d", o.stride, o.padding); }

}  // namespace reel::cuda
