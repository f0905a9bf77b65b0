// LoRAs on the Wan transformer: each module of a LoRA file (reel/lora.hpp, lib/lora/) mapped to
// a parameter of the name table, its tensors read and shape-checked; then either merged into
// the weights (w += strength · scale · up·down, or + strength · diff) or composed at run time
// as side paths of the Linear layers (and small changed tensors: biases, norms, modulation).
#include <algorithm>
#include <cmath>

#include "cpu/cpu_common.hpp"
#include "parallel.hpp"
#include "reel/ops.hpp"
#include "reel/status.hpp"
#include "wan/wan_model.hpp"

namespace reel::wan {

namespace {

std::string where(const LoraSpec& spec) { return "LoRA " + spec.path.filename().string(); }

// A LoRA tensor as f32 on the host, finite (a NaN would silently turn the video black).
Tensor read_finite(const WeightStore& store, const std::string& name, const LoraSpec& spec) {
  Tensor t = store.load(name, DType::f32);
  const std::vector<float> v = t.to_floats();
  for (float x : v)
    require(std::isfinite(x), StatusCode::bad_format, where(spec) + ": tensor '" + name + "' holds a non-finite value");
  return t;
}

LoraDelta delta_for(ParamRef target, size_t lora) {
  LoraDelta d;
  d.target = target;
  d.lora = lora;
  return d;
}

WeightStore open_lora(const LoraSpec& spec) {
  try {
    return WeightStore::open(spec.path);
  } catch (const Error& e) {
    throw Error(e.code(), "LoRA " + spec.path.string() + ": " + e.what());
  }
}

// [out, in] of the stored weight (the patch embedding is stored flattened, so the same).
std::pair<int64_t, int64_t> out_in(const Tensor& w) { return {w.dim(0), w.numel() / std::max<int64_t>(w.dim(0), 1)}; }

// The shape of a parameter, also for a linear layer whose weight is held quantised.
Shape shape_of(const WanWeights& weights, ParamRef ref) {
  const Tensor& p = param(weights, ref);
  if (p.defined()) return p.shape();
  const Linear* l = linear_of(weights, ref);
  if (l && l->quantised) return {l->quantised->rows(), l->quantised->cols()};
  return p.shape();
}

void read_module(const WeightStore& store, const LoraSpec& spec, size_t index, const LoraModule& m,
                 const WanConfig& config, const WanWeights& weights, std::vector<LoraDelta>& out, AppliedLora& applied) {
  std::string why;
  auto unmapped = [&](const std::string& what) { applied.unmapped.push_back(m.name + " (" + what + ")"); };
  if (!m.down.empty() || !m.diff.empty()) {
    std::optional<ParamRef> ref = find_param(m.name, ParamKind::weight, config, &why);
    if (!ref && m.down.empty()) ref = find_param(m.name, ParamKind::whole, config, nullptr);  // modulation .diff
    if (!ref) return unmapped(why);
    const Shape w_shape = shape_of(weights, *ref);
    const int64_t o = w_shape[0], i = w_shape.numel() / std::max<int64_t>(o, 1);
    if (!m.down.empty()) {
      if (!is_linear_weight(*ref)) return unmapped(param_name(*ref) + " is not a linear layer");
      LoraDelta d = delta_for(*ref, index);
      d.down = read_finite(store, m.down, spec);
      d.up = read_finite(store, m.up, spec);
      require(d.down.numel() == m.rank * i && d.up.numel() == o * m.rank, StatusCode::bad_format,
              where(spec) + ": '" + m.down + "' " + d.down.shape().str() + " and '" + m.up + "' " + d.up.shape().str() +
                  " do not fit '" + param_name(*ref) + "' [" + std::to_string(o) + ", " + std::to_string(i) + "]");
      d.down = d.down.reshape({m.rank, i});
      d.up = d.up.reshape({o, m.rank});
      d.scale = m.scale();
      out.push_back(std::move(d));
      ++applied.targets;
    }
    if (!m.diff.empty()) {
      LoraDelta d = delta_for(*ref, index);
      d.full = read_finite(store, m.diff, spec);
      require(d.full.numel() == w_shape.numel(), StatusCode::bad_format,
              where(spec) + ": '" + m.diff + "' has shape " + d.full.shape().str() + ", '" + param_name(*ref) +
                  "' has " + w_shape.str());
      d.full = d.full.reshape(w_shape);
      out.push_back(std::move(d));
      ++applied.targets;
    }
  }
  if (!m.diff_b.empty()) {
    const std::optional<ParamRef> ref = find_param(m.name, ParamKind::bias, config, &why);
    if (!ref) return unmapped(why);
    const Tensor& b = param(weights, *ref);
    LoraDelta d = delta_for(*ref, index);
    d.full = read_finite(store, m.diff_b, spec);
    require(d.full.numel() == b.numel(), StatusCode::bad_format,
            where(spec) + ": '" + m.diff_b + "' has shape " + d.full.shape().str() + ", '" + param_name(*ref) +
                "' has " + b.shape().str());
    d.full = d.full.reshape(b.shape());
    out.push_back(std::move(d));
    ++applied.targets;
  }
}

// strength · scale · up·down, f32 [out, in] on the host.
Tensor low_rank_product(Backend& cpu, const LoraDelta& d, float factor) {
  const int perm[2] = {1, 0};
  const Tensor down_t = ops::permute(cpu, d.down, perm);                    // [in, r]
  const Tensor up = ops::affine(cpu, d.up, factor * d.scale, 0.0f);         // [out, r]
  return ops::linear(cpu, up, down_t);                                      // [out, in]
}

// host(t) + delta, in t's dtype on `device`.
Tensor plus(Backend& cpu, const Tensor& t, const Tensor& delta, Device device) {
  const Tensor host = t.device() == Device::cpu() ? t : t.to(Device::cpu());
  const Tensor sum = ops::add(cpu, ops::convert(cpu, host, DType::f32), delta.reshape(host.shape()));
  const Tensor typed = ops::convert(cpu, sum, t.dtype());
  return device == Device::cpu() ? typed : typed.to(device);
}

// row[i] += Σ_r coeffs[r] · down[r, i]: the inner loop of a merge (2·rank flops per element).
// Blocks of 64 columns stay in registers over all r; compiled for AVX-512, AVX2 and baseline.
REEL_CPU_CLONES void add_low_rank_row(float* __restrict row, const float* __restrict down,
                                      const float* __restrict coeffs, int64_t rank, int64_t in) {
  constexpr int64_t kCols = 64;
  int64_t i0 = 0;
  for (; i0 + kCols <= in; i0 += kCols) {
    float acc[kCols];
    for (int64_t i = 0; i < kCols; ++i) acc[i] = row[i0 + i];
    for (int64_t r = 0; r < rank; ++r) {
      const float c = coeffs[r];
      const float* __restrict a = down + r * in + i0;
      for (int64_t i = 0; i < kCols; ++i) acc[i] += c * a[i];
    }
    for (int64_t i = 0; i < kCols; ++i) row[i0 + i] = acc[i];
  }
  for (int64_t r = 0; r < rank; ++r)
    for (int64_t i = i0; i < in; ++i) row[i] += coeffs[r] * down[r * in + i];
}

// p + strength · delta in p's dtype, in one pass over the rows (the weights of a 14B model are
// many GB): each row in f32, plus Σ_r (strength·scale·up[o, r]) · down[r, :] for a low-rank
// delta (down stays in cache) or the delta's row, rounded once.
Tensor merged(const Tensor& p, const LoraDelta& d, float strength) {
  const auto shape = out_in(p);
  const int64_t out = shape.first, in = shape.second;  // not a structured binding: clang < 16 cannot capture those
  // In place when the weight is the loader's private copy (writing fresh memory costs more
  // than the arithmetic: page faults); a memory-mapped (read-only) weight gets a new tensor.
  Tensor result = p.read_only() ? Tensor::empty(p.shape(), p.dtype()) : p;
  const int64_t rank = d.full.defined() ? 0 : d.down.dim(0);
  const float* down = rank ? d.down.data<float>() : nullptr;
  const float* up = rank ? d.up.data<float>() : nullptr;
  const float* full = rank ? nullptr : d.full.data<float>();
  const float factor = strength * (rank ? d.scale : 1.0f);
  const std::byte* src = static_cast<const std::byte*>(p.raw());
  std::byte* dst = static_cast<std::byte*>(result.raw());
  const size_t esize = dtype_size(p.dtype());
  parallel_for(out, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> buffer(static_cast<size_t>(in)), coeffs(static_cast<size_t>(rank));
    float* row = buffer.data();
    for (int64_t o = begin; o < end; ++o) {
      const int64_t at = o * in;
      cpu::load_f32(src + size_t(at) * esize, p.dtype(), row, in);
      if (rank) {
        for (int64_t r = 0; r < rank; ++r) coeffs[size_t(r)] = factor * up[o * rank + r];
        add_low_rank_row(row, down, coeffs.data(), rank, in);
      } else {
        const float* delta = full + at;
        for (int64_t i = 0; i < in; ++i) row[i] += factor * delta[i];
      }
      cpu::store_f32(row, dst + size_t(at) * esize, p.dtype(), in);
    }
  });
  return result;
}

}  // namespace

std::vector<LoraDelta> read_lora_deltas(std::span<const LoraSpec> specs, LoraMode mode, const WanConfig& config,
                                        const WanWeights& weights, std::vector<AppliedLora>& applied) {
  std::vector<LoraDelta> deltas;
  for (const LoraSpec& spec : specs) {
    require(std::isfinite(spec.strength), StatusCode::invalid_argument,
            where(spec) + ": strength " + std::to_string(spec.strength) + " is not finite");
    const WeightStore store = open_lora(spec);
    AppliedLora a;
    a.spec = spec;
    a.info = read_lora(store, spec.path);
    a.mode = mode;
    for (const LoraModule& m : a.info.modules) read_module(store, spec, applied.size(), m, config, weights, deltas, a);
    applied.push_back(std::move(a));
  }
  return deltas;
}

void merge_lora_deltas(WanWeights& w, std::span<const LoraDelta> deltas, std::span<const AppliedLora> loras) {
  const std::shared_ptr<Backend> cpu = make_cpu_backend();
  for (const LoraDelta& d : deltas) {
    const float strength = loras[d.lora].spec.strength;
    if (strength == 0.0f) continue;
    Tensor& p = param(w, d.target);
    const Linear* layer = linear_of(w, d.target);
    require(p.defined() || !layer || !layer->quantised, StatusCode::invalid_argument,
            "LoRA " + loras[d.lora].spec.path.filename().string() + " would merge into " + param_name(d.target) +
                ", which is kept quantised as the file stores it (weight format stored): apply it at run time "
                "(LoraMode::runtime, --lora-mode runtime)");
    if (p.device() != Device::cpu() || (p.dtype() != DType::f32 && p.dtype() != DType::bf16)) {
      const Tensor delta = d.full.defined() ? ops::affine(*cpu, d.full, strength, 0.0f) : low_rank_product(*cpu, d, strength);
      p = plus(*cpu, p, delta, p.device());
      continue;
    }
    p = merged(p, d, strength);
  }
}

WanWeights compose_lora_deltas(const WanWeights& base, std::span<const LoraDelta> deltas,
                               std::span<const float> strengths, Device device) {
  const std::shared_ptr<Backend> cpu = make_cpu_backend();
  WanWeights w = base;  // shares every tensor; changed ones are replaced
  auto on = [&](const Tensor& t) { return device == Device::cpu() ? t : t.to(device); };
  for (const LoraDelta& d : deltas) {
    const float strength = strengths[d.lora];
    if (strength == 0.0f) continue;
    Tensor& p = param(w, d.target);
    Linear* layer = linear_of(w, d.target);
    // A Q8_0 layer has no weight tensor: its side paths take the dtype of its bias (the model's).
    const DType dtype = p.defined() || !layer ? p.dtype() : layer->bias.dtype();
    if (layer && !d.full.defined()) {
      layer->side_paths.push_back({on(ops::convert(*cpu, d.down, dtype)),
                                   on(ops::convert(*cpu, ops::affine(*cpu, d.up, strength * d.scale, 0.0f), dtype))});
    } else if (layer) {
      const auto [o, i] = out_in(d.full);  // the weight's stored shape (the weight may be Q8_0)
      layer->side_paths.push_back({on(ops::convert(*cpu, ops::affine(*cpu, d.full.reshape({o, i}), strength, 0.0f), dtype)), {}});
    } else {
      p = plus(*cpu, p, ops::affine(*cpu, d.full, strength, 0.0f), device);
    }
  }
  return w;
}

}  // namespace reel::wan
