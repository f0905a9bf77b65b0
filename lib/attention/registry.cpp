// The attention registry and selector, params validation, and the Tensor-level attention().
#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <string>

#include "attention/builtin_kernels.hpp"
#include "reel/attention.hpp"

namespace reel {

namespace {

std::string field_error(std::string_view field, std::string_view what) {
  return "attention params: " + std::string(field) + " " + std::string(what);
}

// Number of elements spanned by a [B, S, H, D] buffer with these strides (D contiguous).
double extent(const AttentionParams& p, int64_t seq, int64_t bs, int64_t rs, int64_t hs) {
  return double(p.batch - 1) * double(bs) + double(seq - 1) * double(rs) + double(p.heads - 1) * double(hs) +
         double(p.head_dim);
}

// Sufficient condition for distinct (b, s, h) rows of a buffer not to overlap: sorted by
// stride, each stride reaches past everything the smaller ones span.
bool rows_disjoint(int64_t d, std::array<std::pair<int64_t, int64_t>, 3> dims /* {stride, size} */) {
  std::sort(dims.begin(), dims.end());
  double span = double(d);
  for (auto [stride, size] : dims) {
    if (size <= 1) continue;
    if (double(stride) < span) return false;
    span += double(stride) * double(size - 1);
  }
  return true;
}

bool ranges_overlap(const void* a, double a_elems, const void* b, double b_elems, size_t elem) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  const double ea = double(pa) + a_elems * double(elem), eb = double(pb) + b_elems * double(elem);
  return double(pa) < eb && double(pb) < ea;
}

struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<AttentionKernel>> kernels;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: kernels may be used during static destruction
    reg->kernels.push_back(attn::make_cpu_flash_kernel());
    reg->kernels.push_back(attn::make_onednn_kernel());
    reg->kernels.push_back(attn::make_cpu_reference_kernel());
#ifdef REEL_HAVE_CUDA
    attn::add_cuda_attention_kernels(reg->kernels);
#endif
    return reg;
  }();
  return *r;
}

}  // namespace

AttentionParams default_attention_params() {
  AttentionParams p{};
  p.struct_size = sizeof(AttentionParams);
  return p;
}

void validate_attention_params(const AttentionParams& p) {
  auto check = [](bool ok, std::string_view field, std::string_view what) {
    if (!ok) throw Error(StatusCode::invalid_argument, field_error(field, what));
  };
  check(p.struct_size >= sizeof(AttentionParams), "struct_size",
        "is smaller than this library's reel_attention_params (start from default_attention_params())");
  check(p.dtype == REEL_ATTENTION_F32 || p.dtype == REEL_ATTENTION_BF16 || p.dtype == REEL_ATTENTION_F16, "dtype",
        "must be f32 (0), bf16 (1) or f16 (2), got " + std::to_string(p.dtype));
  check(p.device_type == REEL_ATTENTION_CPU || p.device_type == REEL_ATTENTION_CUDA, "device_type",
        "must be CPU (0) or CUDA (1), got " + std::to_string(p.device_type));
  check(p.device_index >= 0 && (p.device_type != REEL_ATTENTION_CPU || p.device_index == 0), "device_index",
        "must be 0 for the CPU and >= 0 for CUDA, got " + std::to_string(p.device_index));
  check(p.q && p.k && p.v && p.out, p.q ? (p.k ? (p.v ? "out" : "v") : "k") : "q", "is NULL");
  const int64_t limit = int64_t(1) << 31;
  const std::pair<const char*, int64_t> sizes[] = {{"batch", p.batch},   {"heads", p.heads},
                                                   {"head_dim", p.head_dim}, {"seq_q", p.seq_q},
                                                   {"seq_kv", p.seq_kv}};
  for (auto [name, value] : sizes)
    check(value >= 1 && value < limit, name, "must be in [1, 2^31), got " + std::to_string(value));
  const std::pair<const char*, int64_t> strides[] = {
      {"q_batch_stride", p.q_batch_stride},     {"q_row_stride", p.q_row_stride},
      {"q_head_stride", p.q_head_stride},       {"k_batch_stride", p.k_batch_stride},
      {"k_row_stride", p.k_row_stride},         {"k_head_stride", p.k_head_stride},
      {"v_batch_stride", p.v_batch_stride},     {"v_row_stride", p.v_row_stride},
      {"v_head_stride", p.v_head_stride},       {"out_batch_stride", p.out_batch_stride},
      {"out_row_stride", p.out_row_stride},     {"out_head_stride", p.out_head_stride}};
  for (auto [name, value] : strides)
    check(value >= 0 && value < (int64_t(1) << 48), name, "must be in [0, 2^48), got " + std::to_string(value));
  check(std::isfinite(p.scale), "scale", "must be finite");
  check(p.q_offset >= 0 && p.kv_offset >= 0, p.q_offset < 0 ? "q_offset" : "kv_offset", "must be >= 0");
  check(p.q_total == 0 || p.q_total >= p.q_offset + p.seq_q, "q_total",
        "must be 0 or >= q_offset + seq_q (" + std::to_string(p.q_offset + p.seq_q) + ")");
  check(p.kv_total == 0 || p.kv_total >= p.kv_offset + p.seq_kv, "kv_total",
        "must be 0 or >= kv_offset + seq_kv (" + std::to_string(p.kv_offset + p.seq_kv) + ")");

  const double q_ext = extent(p, p.seq_q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
  const double k_ext = extent(p, p.seq_kv, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
  const double v_ext = extent(p, p.seq_kv, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
  const double o_ext = extent(p, p.seq_q, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
  for (double e : {q_ext, k_ext, v_ext, o_ext})
    check(e < 0x1p62, "strides", "span more than 2^62 elements");
  check(rows_disjoint(p.head_dim, {{{p.out_batch_stride, p.batch}, {p.out_row_stride, p.seq_q},
                                    {p.out_head_stride, p.heads}}}),
        "out strides", "make distinct (batch, row, head) rows of out overlap");
  const size_t elem = dtype_size(DType(p.dtype));
  check(!ranges_overlap(p.out, o_ext, p.q, q_ext, elem), "out", "overlaps q");
  check(!ranges_overlap(p.out, o_ext, p.k, k_ext, elem), "out", "overlaps k");
  check(!ranges_overlap(p.out, o_ext, p.v, v_ext, elem), "out", "overlaps v");
  if (p.lse) {
    const double lse_elems = double(p.batch) * double(p.heads) * double(p.seq_q);
    check(!ranges_overlap(p.lse, lse_elems, p.out, o_ext * double(elem) / 4.0, 4), "lse", "overlaps out");
  }
}

AttentionParams attention_params(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, float scale) {
  const std::pair<const char*, const Tensor*> all[] = {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}};
  for (auto [name, t] : all) {
    require(t->defined(), StatusCode::invalid_argument, std::string("attention: ") + name + " is undefined");
    require(t->rank() == 3 || t->rank() == 4, StatusCode::invalid_argument,
            std::string("attention: ") + name + " must be [B, S, H, D] or [S, H, D], got " + t->shape().str());
    require(t->rank() == q.rank(), StatusCode::invalid_argument,
            std::string("attention: ") + name + " has rank " + std::to_string(t->rank()) + ", q has rank " +
                std::to_string(q.rank()));
    require(t->dtype() == q.dtype(), StatusCode::invalid_argument,
            std::string("attention: ") + name + " is " + std::string(dtype_name(t->dtype())) + ", q is " +
                std::string(dtype_name(q.dtype())));
    require(t->device() == q.device(), StatusCode::invalid_argument,
            std::string("attention: ") + name + " is on " + t->device().str() + ", q is on " + q.device().str());
  }
  require(q.dtype() == DType::f32 || q.dtype() == DType::bf16 || q.dtype() == DType::f16,
          StatusCode::invalid_argument,
          "attention: tensors must be f32, bf16 or f16, got " + std::string(dtype_name(q.dtype())));
  const int o = q.rank() == 4 ? 1 : 0;  // offset of the S dimension
  const int64_t batch = o ? q.dim(0) : 1;
  const int64_t sq = q.dim(o), skv = k.dim(o), heads = q.dim(o + 1), d = q.dim(o + 2);
  const auto expect = [&](const Tensor& t, const char* name, int64_t s) {
    const bool ok = (!o || t.dim(0) == batch) && t.dim(o) == s && t.dim(o + 1) == heads && t.dim(o + 2) == d;
    if (ok) return;
    const Shape want = o ? Shape{batch, s, heads, d} : Shape{s, heads, d};
    std::string msg = "attention: ";
    msg += name;
    msg += " has shape ";
    msg += t.shape().str();
    msg += ", expected ";
    msg += want.str();
    msg += " (from the shapes of q and k)";
    throw Error(StatusCode::invalid_argument, msg);
  };
  expect(v, "v", skv);
  expect(k, "k", skv);
  expect(out, "out", sq);

  AttentionParams p = default_attention_params();
  p.dtype = int32_t(q.dtype());
  p.device_type = int32_t(q.device().type);
  p.device_index = q.device().index;
  p.q = q.raw();
  p.k = k.raw();
  p.v = v.raw();
  p.out = out.raw();  // throws if out is read-only
  p.batch = batch;
  p.heads = heads;
  p.head_dim = d;
  p.seq_q = sq;
  p.seq_kv = skv;
  p.q_row_stride = p.out_row_stride = heads * d;
  p.k_row_stride = p.v_row_stride = heads * d;
  p.q_head_stride = p.k_head_stride = p.v_head_stride = p.out_head_stride = d;
  p.q_batch_stride = p.out_batch_stride = sq * heads * d;
  p.k_batch_stride = p.v_batch_stride = skv * heads * d;
  p.scale = scale;
  return p;
}

void register_attention_kernel(std::shared_ptr<AttentionKernel> kernel) {
  require(kernel != nullptr, StatusCode::invalid_argument, "register_attention_kernel: kernel is null");
  require(!kernel->name().empty(), StatusCode::invalid_argument, "register_attention_kernel: empty kernel name");
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& k : r.kernels)
    require(k->name() != kernel->name(), StatusCode::invalid_argument,
            "register_attention_kernel: a kernel named '" + std::string(kernel->name()) + "' already exists");
  r.kernels.push_back(std::move(kernel));
}

std::vector<const AttentionKernel*> attention_kernels() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<const AttentionKernel*> out;
  for (const auto& k : r.kernels) out.push_back(k.get());
  return out;
}

const AttentionKernel* find_attention_kernel(std::string_view name) {
  for (const AttentionKernel* k : attention_kernels())
    if (k->name() == name) return k;
  return nullptr;
}

AttentionSelection select_attention_kernel(const AttentionParams& p, std::string_view name) {
  AttentionSelection sel;
  std::vector<const AttentionKernel*> candidates;
  if (!name.empty()) {
    const AttentionKernel* k = find_attention_kernel(name);
    if (!k) {
      std::string names;
      for (const AttentionKernel* c : attention_kernels()) names += (names.empty() ? "" : ", ") + std::string(c->name());
      sel.reason = "no attention kernel named '" + std::string(name) + "' (registered: " + names + ")";
      return sel;
    }
    candidates.push_back(k);
  } else {
    candidates = attention_kernels();
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const AttentionKernel* a, const AttentionKernel* b) { return a->priority() > b->priority(); });
  }
  for (const AttentionKernel* k : candidates) {
    Support s = int(k->device_type()) == p.device_type
                    ? k->supports(p)
                    : Support::no("runs on " + Device{k->device_type(), 0}.str() + ", the buffers are on " +
                                  Device{DeviceType(p.device_type), p.device_index}.str());
    if (s) {
      sel.kernel = k;
      sel.reason.clear();
      return sel;
    }
    sel.reason += (sel.reason.empty() ? "" : "; ") + std::string(k->name()) + ": " + s.reason;
  }
  if (candidates.empty()) sel.reason = "no attention kernels are registered";
  return sel;
}

const AttentionKernel& run_attention(const AttentionParams& p, std::string_view name) {
  validate_attention_params(p);
  AttentionSelection sel = select_attention_kernel(p, name);
  if (!sel.kernel) {
    const bool unknown = !name.empty() && !find_attention_kernel(name);
    throw Error(unknown ? StatusCode::not_found : StatusCode::unsupported, "attention: " + sel.reason);
  }
  sel.kernel->run(p);
  return *sel.kernel;
}

void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, float scale, std::string_view kernel) {
  run_attention(attention_params(q, k, v, out, scale), kernel);
}

}  // namespace reel
