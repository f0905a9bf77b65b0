// WanTransformer: loading (layout, config, typed weights), the forward pass (input checks,
// patch embedding, conditions, blocks, output head) and unpatchify (reel/wan.md §1.3).
#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <unordered_map>

#include "reel/attention.hpp"
#include "reel/ops.hpp"
#include "wan/wan_model.hpp"

namespace reel {

namespace {

namespace fs = std::filesystem;

std::string shape_str(const Tensor& t) { return t.shape().str(); }

// The distinct timestep values and the token runs that share one (wan.md §1.3g).
struct TimestepPlan {
  std::vector<float> unique;
  std::vector<wan::Segment> segments;
};

TimestepPlan plan_timesteps(std::span<const float> t, int64_t batch, int64_t tokens) {
  const bool per_token = int64_t(t.size()) == batch * tokens && int64_t(t.size()) != batch;
  require(int64_t(t.size()) == batch || per_token, StatusCode::invalid_argument,
          "Wan transformer: " + std::to_string(t.size()) + " timesteps given; expected " + std::to_string(batch) +
              " (one per batch item) or " + std::to_string(batch * tokens) + " (per token, [B, L])");
  TimestepPlan p;
  std::unordered_map<uint32_t, int64_t> index;
  auto id = [&](float v) {
    require(std::isfinite(v), StatusCode::invalid_argument, "Wan transformer: a timestep is not finite");
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    auto [it, inserted] = index.emplace(bits, int64_t(p.unique.size()));
    if (inserted) p.unique.push_back(v);
    return it->second;
  };
  for (int64_t b = 0; b < batch; ++b) {
    if (!per_token) {
      p.segments.push_back({b, 0, tokens, id(t[size_t(b)])});
      continue;
    }
    int64_t begin = 0;
    for (int64_t l = 1; l <= tokens; ++l)
      if (l == tokens || t[size_t(b * tokens + l)] != t[size_t(b * tokens + begin)]) {
        p.segments.push_back({b, begin, l, id(t[size_t(b * tokens + begin)])});
        begin = l;
      }
  }
  return p;
}

std::vector<float> lora_strengths(const std::vector<AppliedLora>& loras) {
  std::vector<float> s;
  for (const AppliedLora& l : loras) s.push_back(l.spec.strength);
  return s;
}

Tensor on(const Tensor& t, Device device) { return t.device() == device ? t : t.to(device); }

// The segments' parts within tokens [begin, end), renumbered from begin.
std::vector<wan::Segment> segments_within(std::span<const wan::Segment> all, int64_t begin, int64_t end) {
  std::vector<wan::Segment> out;
  for (const wan::Segment& s : all) {
    const int64_t b = std::max(s.begin, begin), e = std::min(s.end, end);
    if (b < e) out.push_back({s.batch, b - begin, e - begin, s.timestep});
  }
  return out;
}

}  // namespace

std::string_view weight_format_name(WanWeightFormat f) {
  switch (f) {
    case WanWeightFormat::compute: return "compute";
    case WanWeightFormat::q8_0: return "q8_0";
    case WanWeightFormat::q4_0: return "q4_0";
    case WanWeightFormat::q4_k: return "q4_k";
    case WanWeightFormat::stored: return "stored";
  }
  return "?";
}

WanWeightFormat parse_weight_format(std::string_view name) {
  for (WanWeightFormat f : {WanWeightFormat::compute, WanWeightFormat::q8_0, WanWeightFormat::q4_0, WanWeightFormat::q4_k,
                            WanWeightFormat::stored})
    if (name == weight_format_name(f)) return f;
  throw Error(StatusCode::invalid_argument,
              "weight type \"" + std::string(name) + "\" is not one of compute, q8_0, q4_0, q4_k, stored");
}

WanTransformer::WanTransformer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  require(impl_ != nullptr, StatusCode::invalid_argument, "WanTransformer: null model");
}

WanTransformer WanTransformer::load(const fs::path& path, const WanLoadOptions& options) {
  const WeightStore store = WeightStore::open(path);
  return load(store, options, wan::find_config_json(path));
}

WanTransformer WanTransformer::load(const WeightStore& store, const WanLoadOptions& options, const fs::path& config_json) {
  auto impl = std::make_shared<Impl>();
  const wan::CheckpointNames names = wan::detect_names(store);
  impl->config = wan::detect_config(store, names, options.head_dim, config_json);
  impl->precision = options.precision;
  impl->device = options.device;
  if (!options.attention_kernel.empty()) {
    wan::check_attention_kernel(options.attention_kernel, options.device);
    impl->attention_kernel = options.attention_kernel;
  }
  const bool merge = !options.loras.empty() && options.lora_mode == LoraMode::merge;
  require(options.weight_format == WanWeightFormat::compute || options.device == Device::cpu(),
          StatusCode::unsupported,
          "quantised weights (WanWeightFormat) run on the CPU only for now, not on " + options.device.str());
  impl->weights = wan::load_weights(store, names, impl->config, options.precision,
                                    merge ? Device::cpu() : options.device, options.map_weights, impl->checkpoint,
                                    options.weight_format);
  // Quantising at load comes after a merge (LoRA deltas go into the float weights first).
  const auto quantize = [&] {
    if (const std::optional<quant::QType> q = wan::load_qtype(options.weight_format))
      wan::quantize_block_linears(impl->weights, impl->config, *q);
  };
  if (!options.loras.empty()) {
    for (const LoraSpec& spec : options.loras)
      require(spec.expert == LoraExpert::both, StatusCode::invalid_argument,
              "LoRA " + spec.path.filename().string() +
                  ": a transformer loaded alone takes LoRAs for both experts (@high / @low are for a two-expert pipeline)");
    const std::vector<wan::LoraDelta> deltas =
        wan::read_lora_deltas(options.loras, options.lora_mode, impl->config, impl->weights, impl->loras);
    if (merge) {
      wan::merge_lora_deltas(impl->weights, deltas, impl->loras);
      quantize();
      if (!(options.device == Device::cpu())) impl->weights = wan::weights_on(impl->weights, impl->config, options.device);
    } else {
      quantize();
      impl->base = impl->weights;
      impl->runtime_deltas = std::make_shared<const std::vector<wan::LoraDelta>>(deltas);
      impl->weights = wan::compose_lora_deltas(impl->base, deltas, lora_strengths(impl->loras), options.device);
    }
  } else {
    quantize();
  }
  return WanTransformer(std::move(impl));
}

const std::vector<AppliedLora>& WanTransformer::loras() const { return impl_->loras; }

void WanTransformer::check_lora_strengths(std::span<const float> strengths) const {
  const std::vector<AppliedLora>& loras = impl_->loras;
  require(strengths.size() == loras.size(), StatusCode::invalid_argument,
          std::to_string(strengths.size()) + " LoRA strengths for a model loaded with " + std::to_string(loras.size()) +
              " LoRA" + (loras.size() == 1 ? "" : "s"));
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string name = "LoRA " + loras[i].spec.path.filename().string();
    require(std::isfinite(strengths[i]), StatusCode::invalid_argument, name + ": strength is not finite");
    require(strengths[i] == loras[i].spec.strength || loras[i].mode == LoraMode::runtime, StatusCode::invalid_argument,
            name + " was merged into the weights at load with strength " + std::to_string(loras[i].spec.strength) +
                "; load it with LoraMode::runtime (--lora-mode runtime) to change its strength per request");
  }
}

WanTransformer WanTransformer::with_lora_strengths(std::span<const float> strengths) const {
  check_lora_strengths(strengths);
  const std::vector<AppliedLora>& loras = impl_->loras;
  bool same = true;
  for (size_t i = 0; i < loras.size(); ++i) same = same && strengths[i] == loras[i].spec.strength;
  if (same) return *this;
  auto impl = std::make_shared<Impl>(*impl_);
  for (size_t i = 0; i < loras.size(); ++i) impl->loras[i].spec.strength = strengths[i];
  impl->weights = wan::compose_lora_deltas(impl->base, *impl->runtime_deltas, strengths, impl->device);
  return WanTransformer(std::move(impl));
}

WanTransformer WanTransformer::with_sequence_parallel(const SequenceParallel& sp) const {
  auto impl = std::make_shared<Impl>(*impl_);
  impl->sp = sp.active() ? dist::make_groups(sp, impl_->config.heads) : nullptr;
  return WanTransformer(std::move(impl));
}

SequenceParallel WanTransformer::sequence_parallel() const {
  if (!impl_->sp) return {};
  return {impl_->sp->world, impl_->sp->ulysses, impl_->sp->ring};
}

namespace wan {

void check_attention_kernel(const std::string& name, Device device) {
  const AttentionKernel* k = find_attention_kernel(name);
  if (!k) {
    std::string names;
    for (const AttentionKernel* a : attention_kernels()) names += (names.empty() ? "" : ", ") + std::string(a->name());
    throw Error(StatusCode::not_found, "attention kernel \"" + name + "\" does not exist (kernels: " + names + ")");
  }
  require(k->device_type() == device.type, StatusCode::invalid_argument,
          "attention kernel \"" + name + "\" runs on " +
              (k->device_type() == DeviceType::cpu ? "the CPU" : "CUDA GPUs") + ", the weights are on " + device.str());
}

}  // namespace wan

WanTransformer WanTransformer::to(Device device, std::optional<std::string> attention_kernel) const {
  const std::string kernel = attention_kernel.value_or(impl_->attention_kernel);
  if (!kernel.empty()) wan::check_attention_kernel(kernel, device);
  auto impl = std::make_shared<Impl>();
  impl->config = impl_->config;
  impl->precision = impl_->precision;
  impl->device = device;
  impl->checkpoint = impl_->checkpoint;
  impl->attention_kernel = kernel;
  impl->loras = impl_->loras;
  impl->runtime_deltas = impl_->runtime_deltas;
  impl->sp = impl_->sp;
  if (device == impl_->device) {
    impl->weights = impl_->weights;
    impl->base = impl_->base;
  } else if (impl->runtime_deltas) {  // the base once on the device, the side paths made again there
    impl->base = wan::weights_on(impl_->base, impl_->config, device);
    impl->weights = wan::compose_lora_deltas(impl->base, *impl->runtime_deltas, lora_strengths(impl->loras), device);
  } else {
    impl->weights = wan::weights_on(impl_->weights, impl_->config, device);
  }
  return WanTransformer(std::move(impl));
}

WanConfig WanTransformer::read_config(const WeightStore& store, int64_t head_dim, const fs::path& config_json) {
  const wan::CheckpointNames names = wan::detect_names(store);
  const WanConfig config = wan::detect_config(store, names, head_dim, config_json);
  wan::check_weights(store, names, config);  // the checks load() makes: inspect and load agree
  return config;
}

const WanConfig& WanTransformer::config() const { return impl_->config; }
WanPrecision WanTransformer::precision() const { return impl_->precision; }
DType WanTransformer::activation_dtype() const { return wan::activation_dtype(impl_->precision); }
Device WanTransformer::device() const { return impl_->device; }
const WanCheckpointInfo& WanTransformer::checkpoint() const { return impl_->checkpoint; }

Tensor WanTransformer::forward(Backend& be, const Tensor& latents, std::span<const float> timesteps,
                               const Tensor& text_context, const Tensor* image_context) const {
  const Impl& m = *impl_;
  const WanConfig& cfg = m.config;
  const wan::WanWeights& w = m.weights;
  const DType act = activation_dtype();
  const std::string who = "Wan transformer forward: ";
  require(be.device() == m.device, StatusCode::invalid_argument,
          who + "the backend runs on " + be.device().str() + " but the weights are on " + m.device.str());

  // ---- inputs
  require(latents.defined() && latents.rank() == 5 && latents.dim(1) == cfg.in_channels, StatusCode::invalid_argument,
          who + "latents " + (latents.defined() ? shape_str(latents) : "(undefined)") + " must be [B, " +
              std::to_string(cfg.in_channels) + ", F, H, W]");
  const PatchGrid grid = PatchGrid::of(latents.shape(), cfg.patch);
  const int64_t batch = grid.batch, tokens = grid.tokens();
  require(text_context.defined() && text_context.rank() == 3 && text_context.dim(0) == batch &&
              text_context.dim(1) >= 1 && text_context.dim(2) == cfg.text_dim,
          StatusCode::invalid_argument,
          who + "text_context " + (text_context.defined() ? shape_str(text_context) : "(undefined)") + " must be [" +
              std::to_string(batch) + ", T, " + std::to_string(cfg.text_dim) + "]");
  if (cfg.has_image_context()) {
    require(image_context && image_context->defined() && image_context->rank() == 3 &&
                image_context->dim(0) == batch && image_context->dim(1) >= 1 &&
                image_context->dim(2) == cfg.image_dim,
            StatusCode::invalid_argument,
            who + "this model (image context) needs image_context [" + std::to_string(batch) + ", N, " +
                std::to_string(cfg.image_dim) + "] (CLIP features), got " +
                (image_context && image_context->defined() ? shape_str(*image_context) : std::string("none")));
  } else {
    require(image_context == nullptr, StatusCode::invalid_argument,
            who + "image_context given, but this model has no image-context path (not a Wan 2.1 I2V model)");
  }
  for (const Tensor* t : {&latents, &text_context, image_context})
    if (t)
      require(t->is_cpu() || t->device() == m.device, StatusCode::invalid_argument,
              who + "an input is on " + t->device().str() + ", expected the CPU or " + m.device.str());
  const TimestepPlan plan = plan_timesteps(timesteps, batch, tokens);

  // ---- sequence parallel: this rank's tokens [begin, end) (all of them in one process)
  std::optional<dist::SpForward> sp;
  if (m.sp) sp.emplace(*m.sp, batch, tokens, cfg.heads, cfg.head_dim, act, m.device);
  const int64_t begin = sp ? sp->begin() : 0, end = sp ? sp->end() : tokens;
  const std::vector<wan::Segment> segments = segments_within(plan.segments, begin, end);
  const int64_t out_width = cfg.out_channels * cfg.patch.t * cfg.patch.h * cfg.patch.w;

  const auto run_tokens = [&]() -> Tensor {
    // ---- patch embedding: tokens (channel-major, the Conv3d weight order) · W_patchᵀ
    const Tensor latents_cpu = on(latents, Device::cpu());
    Tensor patches = patchify(latents_cpu, grid, PatchOrder::channel_major);
    if (patches.dtype() != act) patches = patches.to(act);
    patches = on(patches, m.device);
    if (sp) patches = ops::slice(be, patches, 1, begin, end);
    Tensor x = linear(be, patches, w.patch, act);  // [B, Lr, D]

    // ---- conditions
    const wan::TimeEmbedding te = wan::embed_timesteps(be, w, plan.unique, act);
    const Tensor text = wan::embed_text(be, w, on(text_context, m.device), act);
    Tensor image;
    if (image_context) image = wan::embed_image(be, w, on(*image_context, m.device), act);
    wan::RopeTables rope = m.rope_cache->get(cfg, grid, m.device);  // uploaded once per grid
    if (sp) rope = {rope.cos.slice(begin, end), rope.sin.slice(begin, end)};

    // ---- blocks
    const wan::BlockInputs in{&text, image.defined() ? &image : nullptr, &te.projection, &rope, segments,
                              m.attention_kernel, sp ? &*sp : nullptr};
    for (const wan::BlockWeights& blk : w.blocks) x = wan::block_forward(be, cfg, blk, x, in);

    // ---- output head: shift, scale = head_modulation + temb (not the projection), then proj_out
    const int64_t unique = int64_t(plan.unique.size());
    const Tensor temb = te.temb.reshape({unique, 1, cfg.dim});
    Tensor head_mod = be.empty({unique, 2, cfg.dim}, DType::f32);
    be.run(op::Binary{op::BinaryKind::add, &w.head_modulation, &temb, &head_mod});
    Tensor y = be.empty(x.shape(), act);
    wan::layer_norm_modulate(be, x, head_mod, 0, segments, cfg.eps, y);
    return linear(be, y, w.head, act);  // [B, Lr, out·pt·ph·pw]
  };
  Tensor out_tokens;
  if (!sp) {
    out_tokens = run_tokens();
  } else {
    // A failure on this rank still makes every collective (drain); gather() agrees first, so
    // every rank throws the failing rank's error.
    try {
      out_tokens = run_tokens();
    } catch (...) {
      sp->fail(std::current_exception());
    }
    sp->drain(be, int(w.blocks.size()));
    out_tokens = sp->gather(be, out_tokens, out_width);
  }

  // ---- unpatchify (channel-minor: diffusers' proj_out order)
  PatchGrid out_grid = grid;
  out_grid.channels = cfg.out_channels;
  const Tensor out = unpatchify(on(out_tokens, Device::cpu()), out_grid, PatchOrder::channel_minor);
  return on(out, latents.device());
}

}  // namespace reel
