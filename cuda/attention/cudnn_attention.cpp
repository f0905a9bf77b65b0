// cudnn: cuDNN 9's fused flash attention (SDPA forward), for comparison. There is no
// cudnn_frontend header here, so the graph is built with the backend C API directly, in the
// shape cudnn_frontend lowers its SDPA node to for cuDNN < 9.21 (the "composite" form, which
// cuDNN's fused attention engines recognise):
//   S = Q·Kᵀ (matmul, f32) → ·scale (by-value scalar) → max → sub → exp → sum → div → P (io dtype)
//   O = P·V (matmul); Stats = max + log(sum) (the lse output, or virtual without one).
// Q/K/V/O are described as [B, H, S, D] with our [B, S, H, D] strides (Kᵀ as [B, H, D, Skv]),
// so nothing is copied. Plans are built once per shape and thread (cuDNN handles and plans
// are per thread here) and cached.
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "attention/builtin_kernels.hpp"
#include "attention/cuda_checks.hpp"

namespace reel::attn {

namespace {

void check_cudnn(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw Error(StatusCode::unsupported, std::string("cudnn attention: ") + what + ": " + cudnnGetErrorString(s));
}

// One owned backend descriptor.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) { check_cudnn(cudnnBackendCreateDescriptor(type, &d_), "create descriptor"); }
  ~Desc() {
    if (d_) (void)cudnnBackendDestroyDescriptor(d_);
  }
  Desc(Desc&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }
  template <class T>
  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const T* values,
            const char* what) {
    check_cudnn(cudnnBackendSetAttribute(d_, name, type, count, values), what);
    return *this;
  }
  Desc& set_desc(cudnnBackendAttributeName_t name, const Desc& other, const char* what) {
    cudnnBackendDescriptor_t o = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &o, what);
  }
  void finalize(const char* what) { check_cudnn(cudnnBackendFinalize(d_), what); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

enum Uid : int64_t { kQ = 1, kK = 2, kV = 3, kO = 4, kScale = 5, kStats = 6, kVirtual = 100 };

struct Plan {
  std::vector<std::unique_ptr<Desc>> keep;  // tensors, op descriptors and the graph the plan refers to
  std::unique_ptr<Desc> plan;
  int64_t workspace = 0;
  bool stats = false;
};

class GraphBuilder {
 public:
  GraphBuilder(Plan& plan, cudnnDataType_t io) : plan_(plan), io_(io) {}

  const Desc& tensor(int64_t uid, cudnnDataType_t type, std::array<int64_t, 4> dims, std::array<int64_t, 4> strides,
                     bool is_virtual, bool by_value = false) {
    auto t = std::make_unique<Desc>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t alignment = 16;
    t->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid")
        .set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type")
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "tensor dims")
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "tensor strides")
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor alignment")
        .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value) t->set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
    t->finalize("tensor");
    return keep(std::move(t));
  }
  // A virtual intermediate with a fresh uid.
  const Desc& virt(cudnnDataType_t type, std::array<int64_t, 4> dims) {
    return tensor(next_uid_++, type, dims, packed(dims), true);
  }

  void matmul(const Desc& a, const Desc& b, const Desc& c) {
    auto m = std::make_unique<Desc>(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    m->set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "matmul compute type").finalize("matmul");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "matmul A")
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, "matmul B")
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "matmul C")
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, *m, "matmul desc")
        .finalize("matmul op");
    keep(std::move(m));
    ops_.push_back(&keep(std::move(op)));
  }

  void pointwise(cudnnPointwiseMode_t mode, const Desc& x, const Desc* b, const Desc& y) {
    auto pw = std::make_unique<Desc>(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    pw->set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode")
        .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision")
        .finalize("pointwise");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, *pw, "pointwise desc")
        .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise x");
    if (b) op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b, "pointwise b");
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise y").finalize("pointwise op");
    keep(std::move(pw));
    ops_.push_back(&keep(std::move(op)));
  }

  void reduction(cudnnReduceTensorOp_t mode, const Desc& x, const Desc& y) {
    auto r = std::make_unique<Desc>(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    r->set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction mode")
        .set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "reduction type")
        .finalize("reduction");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "reduction x")
        .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "reduction y")
        .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, *r, "reduction desc")
        .finalize("reduction op");
    keep(std::move(r));
    ops_.push_back(&keep(std::move(op)));
  }

  // Operation graph → heuristics (mode A) → the first engine config that builds a plan.
  void build(cudnnHandle_t handle) {
    std::vector<cudnnBackendDescriptor_t> raw;
    for (const Desc* d : ops_) raw.push_back(d->get());
    auto graph = std::make_unique<Desc>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    graph->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(raw.size()), raw.data(), "graph ops")
        .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle")
        .finalize("operation graph");
    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, *graph, "heuristics graph")
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode")
        .finalize("heuristics");
    int64_t count = 0;
    check_cudnn(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                         &count, nullptr),
                "heuristics count");
    if (count <= 0) throw Error(StatusCode::unsupported, "cudnn attention: no cuDNN engine matches this graph");
    std::vector<Desc> configs;
    std::vector<cudnnBackendDescriptor_t> config_raw;
    for (int64_t i = 0; i < count; ++i) {
      configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      config_raw.push_back(configs.back().get());
    }
    int64_t returned = 0;
    check_cudnn(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                         count, &returned, config_raw.data()),
                "heuristics results");
    std::string last_error = "no engine config";
    for (int64_t i = 0; i < returned; ++i) {
      auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      try {
        plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "plan handle")
            .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[size_t(i)], "plan engine config")
            .finalize("execution plan");
      } catch (const Error& e) {
        last_error = e.what();
        continue;
      }
      check_cudnn(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                           nullptr, &plan_.workspace),
                  "workspace size");
      // Keep the graph and the chosen engine config alive with the plan (cudnn_frontend keeps
      // them too; the backend API does not promise the plan holds copies).
      keep(std::move(graph));
      keep(std::make_unique<Desc>(std::move(configs[size_t(i)])));
      plan_.plan = std::move(plan);
      return;
    }
    throw Error(StatusCode::unsupported, "cudnn attention: no engine config builds a plan (" + last_error + ")");
  }

  cudnnDataType_t io() const { return io_; }

 private:
  static std::array<int64_t, 4> packed(std::array<int64_t, 4> d) {
    return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
  }
  const Desc& keep(std::unique_ptr<Desc> d) {
    plan_.keep.push_back(std::move(d));
    return *plan_.keep.back();
  }

  Plan& plan_;
  cudnnDataType_t io_;
  std::vector<const Desc*> ops_;
  int64_t next_uid_ = kVirtual;
};

std::unique_ptr<Plan> build_plan(const AttentionParams& p, cudnnHandle_t handle) {
  auto plan = std::make_unique<Plan>();
  plan->stats = p.lse != nullptr;
  const cudnnDataType_t io = p.dtype == REEL_ATTENTION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  GraphBuilder g(*plan, io);
  const int64_t b = p.batch, h = p.heads, sq = p.seq_q, skv = p.seq_kv, d = p.head_dim;
  const Desc& q = g.tensor(kQ, io, {b, h, sq, d}, {p.q_batch_stride, p.q_head_stride, p.q_row_stride, 1}, false);
  const Desc& kt = g.tensor(kK, io, {b, h, d, skv}, {p.k_batch_stride, p.k_head_stride, 1, p.k_row_stride}, false);
  const Desc& v = g.tensor(kV, io, {b, h, skv, d}, {p.v_batch_stride, p.v_head_stride, p.v_row_stride, 1}, false);
  const Desc& o = g.tensor(kO, io, {b, h, sq, d}, {p.out_batch_stride, p.out_head_stride, p.out_row_stride, 1}, false);
  const Desc& scale = g.tensor(kScale, f32, {1, 1, 1, 1}, {1, 1, 1, 1}, false, /*by_value=*/true);

  const Desc& s = g.virt(f32, {b, h, sq, skv});
  g.matmul(q, kt, s);
  const Desc& scaled = g.virt(f32, {b, h, sq, skv});
  g.pointwise(CUDNN_POINTWISE_MUL, s, &scale, scaled);
  const Desc& max = g.virt(f32, {b, h, sq, 1});
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, scaled, max);
  const Desc& shifted = g.virt(f32, {b, h, sq, skv});
  g.pointwise(CUDNN_POINTWISE_SUB, scaled, &max, shifted);
  const Desc& e = g.virt(f32, {b, h, sq, skv});
  g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, e);
  const Desc& sum = g.virt(f32, {b, h, sq, 1});
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, sum);
  // Stats = max + log(sum) is always part of the graph, into a virtual tensor when no lse is
  // wanted: cudnn_frontend's composite softmax does the same for inference, and that is the
  // pattern the fused engines are known to match.
  const Desc& log_sum = g.virt(f32, {b, h, sq, 1});
  g.pointwise(CUDNN_POINTWISE_LOG, sum, nullptr, log_sum);
  const Desc& stats = plan->stats ? g.tensor(kStats, f32, {b, h, sq, 1}, {h * sq, sq, 1, 1}, false)
                                  : g.virt(f32, {b, h, sq, 1});
  g.pointwise(CUDNN_POINTWISE_ADD, max, &log_sum, stats);
  const Desc& prob = g.virt(io, {b, h, sq, skv});  // bmm2's A operand is in the io dtype
  g.pointwise(CUDNN_POINTWISE_DIV, e, &sum, prob);
  g.matmul(prob, v, o);
  g.build(handle);
  return plan;
}

using PlanKey = std::tuple<int, int, std::array<int64_t, 17>, bool>;

PlanKey key_of(const AttentionParams& p) {
  return {p.device_index, p.dtype,
          std::array<int64_t, 17>{p.batch, p.heads, p.head_dim, p.seq_q, p.seq_kv, p.q_batch_stride, p.q_row_stride,
                                  p.q_head_stride, p.k_batch_stride, p.k_row_stride, p.k_head_stride, p.v_batch_stride,
                                  p.v_row_stride, p.v_head_stride, p.out_batch_stride, p.out_row_stride,
                                  p.out_head_stride},
          p.lse != nullptr};
}

// Per thread: one handle per device and the plans built with it (a failed build is cached as
// its reason, so supports() does not retry it on every call).
struct ThreadState {
  std::map<int, cudnnHandle_t> handles;  // never destroyed: see cublas_attention.cu
  std::map<PlanKey, std::unique_ptr<Plan>> plans;
  std::map<PlanKey, std::string> failures;
};
ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

cudnnHandle_t handle_for(int device) {
  ThreadState& st = thread_state();
  auto it = st.handles.find(device);
  if (it != st.handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  check_cudnn(cudnnCreate(&h), "cudnnCreate");
  st.handles[device] = h;
  return h;
}

// The cached plan, or nullptr with *why set.
Plan* plan_for(const AttentionParams& p, std::string* why) {
  ThreadState& st = thread_state();
  const PlanKey key = key_of(p);
  if (auto it = st.plans.find(key); it != st.plans.end()) return it->second.get();
  if (auto it = st.failures.find(key); it != st.failures.end()) {
    *why = it->second;
    return nullptr;
  }
  try {
    cuda_checks::DeviceGuard guard(p.device_index);
    std::unique_ptr<Plan> plan = build_plan(p, handle_for(p.device_index));
    return (st.plans[key] = std::move(plan)).get();
  } catch (const Error& e) {
    st.failures[key] = e.what();
    *why = e.what();
    return nullptr;
  }
}

class CudnnAttention final : public AttentionKernel {
 public:
  std::string_view name() const override { return "cudnn"; }
  std::string_view description() const override {
    return "cuDNN 9 fused flash attention (SDPA forward graph through the backend API)";
  }
  DeviceType device_type() const override { return DeviceType::cuda; }
  int priority() const override { return 90; }

  Support supports(const AttentionParams& p) const override {
    if (p.dtype != REEL_ATTENTION_BF16 && p.dtype != REEL_ATTENTION_F16)
      return Support::no("needs bf16 or f16, got " + std::string(dtype_name(DType(p.dtype))));
    if (p.head_dim % 8 != 0 || p.head_dim > 256)
      return Support::no("head_dim must be a multiple of 8 and <= 256, got " + std::to_string(p.head_dim));
    if (Support s = cuda_checks::aligned(p, 16, 8); !s) return s;
    // The Stats tensor is described with a 16-byte alignment like the others.
    if (reinterpret_cast<uintptr_t>(p.lse) % 16 != 0) return Support::no("lse is not 16-byte aligned");
    if (Support s = cuda_checks::device_ok(p, 80); !s) return s;
    if (Support s = cuda_checks::pointers_on_device(p); !s) return s;
    std::string why;
    if (!plan_for(p, &why)) return Support::no(why);
    return Support::yes();
  }

  void run(const AttentionParams& p) const override {
    std::string why;
    Plan* plan = plan_for(p, &why);
    if (!plan) throw Error(StatusCode::unsupported, why);
    cuda_checks::DeviceGuard guard(p.device_index);
    cuda_checks::ReelStreamOrder order(p);
    auto stream = static_cast<cudaStream_t>(p.stream);
    cudnnHandle_t handle = handle_for(p.device_index);
    check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream");
    void* workspace = nullptr;
    if (plan->workspace > 0)
      cuda_checks::check(cudaMallocAsync(&workspace, size_t(plan->workspace), stream), "cudnn attention workspace");
    struct Release {
      void* ws;
      cudaStream_t stream;
      ~Release() {
        if (ws) (void)cudaFreeAsync(ws, stream);
      }
    } release{workspace, stream};
    float scale = p.scale;  // by-value tensor: read from host memory when the plan executes
    std::vector<int64_t> uids = {kQ, kK, kV, kO, kScale};
    std::vector<void*> ptrs = {const_cast<void*>(p.q), const_cast<void*>(p.k), const_cast<void*>(p.v), p.out, &scale};
    if (plan->stats) uids.push_back(kStats), ptrs.push_back(p.lse);
    Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data(), "variant uids")
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(ptrs.size()), ptrs.data(),
             "variant pointers")
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "variant workspace")
        .finalize("variant pack");
    const cudnnStatus_t s = cudnnBackendExecute(handle, plan->plan->get(), pack.get());
    if (s != CUDNN_STATUS_SUCCESS)
      throw Error(StatusCode::internal, std::string("cudnn attention: execute: ") + cudnnGetErrorString(s));
    order.finish();
  }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_cudnn_kernel() { return std::make_shared<CudnnAttention>(); }

}  // namespace reel::attn
