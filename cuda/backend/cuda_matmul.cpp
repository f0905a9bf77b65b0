// CUDA Linear and BatchMatMul: cuBLASLt (bias fused as its epilogue), with classic cuBLAS
// (cublasGemmStridedBatchedEx) when cuBLASLt has no algorithm for a shape/alignment.
// bf16/f16 operands multiply with f32 accumulation; f32 operands in exact f32 FMA arithmetic
// unless the backend allows TF32. Row-major tensors are handed to the column-major libraries
// transposed: out[M, N] = x[M, K]·w[N, K]ᵀ is D[N, M] = op(W)[N, K]·X[K, M] column-major.
#include <climits>

#include "backend/cuda_gemm.hpp"
#include "backend/cuda_ops.hpp"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

cublasComputeType_t compute_type(DType ab, bool tf32) {
  return ab == DType::f32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// Alignment of every batch's base pointer: the address and the batch stride in bytes.
unsigned batched_alignment(const void* p, int64_t stride_elements, DType t, int64_t batch) {
  const uintptr_t stride = batch > 1 ? uintptr_t(stride_elements) * dtype_size(t) : 0;
  return alignment_of(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) | stride));
}

// ---------------------------------------------------------------- cuBLASLt

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
  ~LtPlan() {
    if (d) (void)cublasLtMatrixLayoutDestroy(d);
    if (b) (void)cublasLtMatrixLayoutDestroy(b);
    if (a) (void)cublasLtMatrixLayoutDestroy(a);
    if (op) (void)cublasLtMatmulDescDestroy(op);
  }
};

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& value, const char* what) {
  check_cublas(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(T)), what);
}

cublasLtMatrixLayout_t layout(DType t, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  check_cublas(cublasLtMatrixLayoutCreate(&l, cuda_type(t), uint64_t(rows), uint64_t(cols), ld),
               "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    const int64_t offset = stride;
    try {
      check_cublas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
                   "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)");
      check_cublas(
          cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &offset, sizeof offset),
          "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
    } catch (...) {
      (void)cublasLtMatrixLayoutDestroy(l);
      throw;
    }
  }
  return l;
}

std::shared_ptr<LtPlan> make_lt_plan(CudaContext& ctx, const Gemm& g, const void* d, DType d_type, const void* bias) {
  auto plan = std::make_shared<LtPlan>();
  check_cublas(cublasLtMatmulDescCreate(&plan->op, compute_type(g.ab, ctx.allow_tf32()), CUDA_R_32F),
               "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
  set_desc(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, ta, "cublasLtMatmulDescSetAttribute(TRANSA)");
  set_desc(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, tb, "cublasLtMatmulDescSetAttribute(TRANSB)");
  if (bias) {
    // The bias has D's element type (cuBLASLt's default); the caller made sure of that.
    set_desc(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS, "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    set_desc(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  }
  plan->a = layout(g.ab, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch, g.stride_a);
  plan->b = layout(g.ab, g.k, g.n, g.ldb, g.batch, g.stride_b);
  plan->d = layout(d_type, g.m, g.n, g.ldd, g.batch, g.stride_d);

  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  struct PrefGuard {
    cublasLtMatmulPreference_t p;
    ~PrefGuard() { (void)cublasLtMatmulPreferenceDestroy(p); }
  } guard{pref};
  const uint64_t workspace = CudaContext::kGemmWorkspaceBytes;
  check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                    sizeof workspace),
               "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  // cuBLASLt assumes 256-byte aligned operands unless told otherwise; views are not.
  const uint32_t align_a = batched_alignment(g.a, g.stride_a, g.ab, g.batch);
  const uint32_t align_b = batched_alignment(g.b, g.stride_b, g.ab, g.batch);
  const uint32_t align_d = batched_alignment(d, g.stride_d, d_type, g.batch);
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}};
  for (const auto& [attr, value] : aligns)
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value),
                 "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");

  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(ctx.lt(), plan->op, plan->a, plan->b, plan->d, plan->d, pref, 1, &result, &returned);
  if (s == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->found = true;
  } else if (s != CUBLAS_STATUS_SUCCESS && s != CUBLAS_STATUS_NOT_SUPPORTED) {
    check_cublas(s, "cublasLtMatmulAlgoGetHeuristic");
  }
  return plan;
}

// Runs the GEMM through cuBLASLt into d (bias: null, or d_type values, one per row of D).
// Returns false when cuBLASLt has no algorithm for it.
bool lt_gemm(CudaContext& ctx, const Gemm& g, void* d, DType d_type, const void* bias) {
  std::string key = "lt " + std::to_string(g.trans_a) + " " + std::to_string(g.m) + "," + std::to_string(g.n) + "," +
                    std::to_string(g.k) + "," + std::to_string(g.batch) + " ld " + std::to_string(g.lda) + "," +
                    std::to_string(g.ldb) + "," + std::to_string(g.ldd) + " s " + std::to_string(g.stride_a) + "," +
                    std::to_string(g.stride_b) + "," + std::to_string(g.stride_d) + " " +
                    std::string(dtype_name(g.ab)) + ">" + std::string(dtype_name(d_type)) + " al " +
                    std::to_string(batched_alignment(g.a, g.stride_a, g.ab, g.batch)) + "," +
                    std::to_string(batched_alignment(g.b, g.stride_b, g.ab, g.batch)) + "," +
                    std::to_string(batched_alignment(d, g.stride_d, d_type, g.batch)) +
                    (bias ? " bias " + std::to_string(alignment_of(bias)) : "");
  auto plan = std::static_pointer_cast<LtPlan>(
      ctx.cached(key, [&] { return std::static_pointer_cast<void>(make_lt_plan(ctx, g, d, d_type, bias)); }));
  if (!plan->found) return false;
  if (bias) set_desc(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  const float alpha = g.alpha, beta = 0.0f;
  cublasLtHandle_t lt = ctx.lt();
  check_cublas(cublasLtMatmul(lt, plan->op, &alpha, g.a, plan->a, g.b, plan->b, &beta, d, plan->d, d, plan->d,
                              &plan->algo, ctx.gemm_workspace(), CudaContext::kGemmWorkspaceBytes, ctx.stream()),
               "cublasLtMatmul");
  return true;
}

// ---------------------------------------------------------------- classic cuBLAS

// Any shape and alignment; no bias. d_type is f32 or g.ab.
void classic_gemm(CudaContext& ctx, const Gemm& g, void* d, DType d_type) {
  const float alpha = g.alpha, beta = 0.0f;
  check_cublas(cublasGemmStridedBatchedEx(ctx.blas(), g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, int(g.m),
                                          int(g.n), int(g.k), &alpha, g.a, cuda_type(g.ab), int(g.lda), g.stride_a,
                                          g.b, cuda_type(g.ab), int(g.ldb), g.stride_b, &beta, d, cuda_type(d_type),
                                          int(g.ldd), g.stride_d, int(g.batch),
                                          compute_type(g.ab, ctx.allow_tf32()), CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

// ---------------------------------------------------------------- shared driver

// out (row-major [batch·n, m], i.e. D) = the GEMM + bias[m]. Writes out directly (bias in the
// epilogue) when the libraries can produce out's type and the bias has it; otherwise through an
// f32 buffer and one rounding in the bias kernel.
void gemm_to_output(CudaContext& ctx, const Gemm& g, Tensor& out, const Tensor* bias) {
  const DType out_t = out.dtype();
  Operand b = operand(bias);
  std::shared_ptr<std::byte> bias_f32;
  if (bias && out_t == DType::f32 && bias->dtype() != DType::f32) {  // widen the (short) bias: exact
    bias_f32 = ctx.scratch(size_t(g.m) * 4);
    launch_convert(bias->raw(), int(bias->dtype()), bias_f32.get(), int(DType::f32), g.m, ctx.stream());
    b = {bias_f32.get(), int(DType::f32)};
  }
  const bool direct = out_t == g.ab || out_t == DType::f32;
  if (direct && (!b.ptr || b.dtype == int(out_t))) {
    if (lt_gemm(ctx, g, out.raw(), out_t, b.ptr)) return;
    if (!b.ptr) {
      classic_gemm(ctx, g, out.raw(), out_t);
      return;
    }
  }
  auto acc = ctx.scratch(size_t(g.m) * size_t(g.n) * size_t(g.batch) * 4);
  if (!lt_gemm(ctx, g, acc.get(), DType::f32, nullptr)) classic_gemm(ctx, g, acc.get(), DType::f32);
  launch_bias_rows(reinterpret_cast<const float*>(acc.get()), b, out.raw(), int(out_t), g.n * g.batch, g.m,
                   ctx.stream());
}

// `t` as `type`: itself, or a converted copy in scratch (kept alive by `holder`).
const void* as_type(CudaContext& ctx, const Tensor& t, DType type, std::shared_ptr<std::byte>& holder) {
  if (t.dtype() == type) return t.raw();
  holder = ctx.scratch(size_t(t.numel()) * dtype_size(type));
  launch_convert(t.raw(), int(t.dtype()), holder.get(), int(type), t.numel(), ctx.stream());
  return holder.get();
}

Support within_int(std::initializer_list<std::pair<int64_t, const char*>> values) {
  for (const auto& [v, name] : values)
    if (v > INT_MAX)
      return Support::no(std::string(name) + " = " + std::to_string(v) +
                         " exceeds cuBLAS's 32-bit sizes (split the call)");
  return Support::yes();
}

}  // namespace

// The type both GEMM operands are brought to: their common type; bf16 for f32 activations with
// bf16 weights (the activations are rounded to bf16 so the large weight is used as stored, on
// the tensor cores, as the CPU backend does on AMX machines); f32 for any other mix (exact).
DType linear_compute_type(DType x, DType w) {
  if (x == w) return x;
  if (x == DType::f32 && w == DType::bf16) return DType::bf16;
  return DType::f32;
}

// ---------------------------------------------------------------- Linear

Support supports(const op::Linear& o, Device d) {
  if (auto s = on_device(d, {{o.x, "x"}, {o.weight, "weight"}, {o.bias, "bias"}, {o.out, "out"}}); !s) return s;
  const int64_t k = o.weight->dim(1), n = o.weight->dim(0);
  const int64_t m = k == 0 ? 0 : o.x->numel() / k;
  return within_int({{m, "rows of x"}, {n, "output features"}, {k, "input features"}});
}

void execute(const op::Linear& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  const Tensor& w = *o.weight;
  Tensor& out = *o.out;
  const int64_t k = w.dim(1), n = w.dim(0);
  if (out.numel() == 0) return;
  const int64_t rows = out.numel() / n;
  if (k == 0) {  // empty sum: out = bias (or zeros)
    launch_bias_rows(nullptr, operand(o.bias), out.raw(), int(out.dtype()), rows, n, ctx.stream());
    return;
  }
  const DType ct = linear_compute_type(x.dtype(), w.dtype());
  std::shared_ptr<std::byte> xh, wh;
  const void* wp = as_type(ctx, w, ct, wh);
  const void* xp = as_type(ctx, x, ct, xh);
  gemm_to_output(ctx, linear_gemm(xp, wp, rows, n, k, ct), out, o.bias);
}

Gemm linear_gemm(const void* x, const void* w, int64_t rows, int64_t n, int64_t k, DType ab) {
  Gemm g;
  g.trans_a = true;  // A = weight [N, K] row-major = K×N column-major; op(A) = N×K
  g.m = n;
  g.n = rows;
  g.k = k;
  g.a = w;
  g.lda = k;
  g.b = x;  // x [rows, K] row-major = K×rows column-major
  g.ldb = k;
  g.ldd = n;  // D = N×rows column-major = out [rows, N] row-major
  g.ab = ab;
  return g;
}

// ---------------------------------------------------------------- BatchMatMul

Support supports(const op::BatchMatMul& o, Device d) {
  if (auto s = on_device(d, {{o.a, "a"}, {o.b, "b"}, {o.out, "out"}}); !s) return s;
  const Tensor& a = *o.a;
  const Tensor& out = *o.out;
  return within_int({{a.dim(0), "batch"}, {a.dim(1), "M"}, {a.dim(2), "K"}, {out.dim(2), "N"}});
}

void execute(const op::BatchMatMul& o, CudaContext& ctx) {
  const Tensor& a = *o.a;
  Tensor& out = *o.out;
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2), n = out.dim(2);
  if (out.numel() == 0) return;
  if (k == 0) {
    launch_bias_rows(nullptr, {}, out.raw(), int(out.dtype()), batch * m, n, ctx.stream());
    return;
  }
  gemm_to_output(ctx, batch_matmul_gemm(o), out, nullptr);
}

}  // namespace reel::cuda

namespace reel::cuda {

Gemm batch_matmul_gemm(const op::BatchMatMul& o) {
  const Tensor& a = *o.a;
  const Tensor& b = *o.b;
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2), n = o.out->dim(2);
  // out[b]ᵀ (N×M column-major) = op(B_b) · A_bᵀ: b [K, N] row-major is N×K column-major (no
  // transpose); b [N, K] row-major (transpose_b) is K×N column-major, transposed.
  Gemm g;
  g.trans_a = o.transpose_b;
  g.m = n;
  g.n = m;
  g.k = k;
  g.batch = batch;
  g.a = b.raw();
  g.lda = o.transpose_b ? k : n;
  g.stride_a = n * k;
  g.b = a.raw();
  g.ldb = k;
  g.stride_b = m * k;
  g.ldd = n;
  g.stride_d = m * n;
  g.ab = a.dtype();
  g.alpha = o.alpha;
  return g;
}

}  // namespace reel::cuda
