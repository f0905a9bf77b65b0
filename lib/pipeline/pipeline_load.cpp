// Pipeline::load: finds the components, loads each once (immutable afterwards), detects the
// variant and fills PipelineInfo.
#include <sstream>

#include "pipeline/model_files.hpp"
#include "vae/vae_model.hpp"
#include "reel/cuda_backend.hpp"
#include "pipeline/pipeline_impl.hpp"
#include "wan/wan_model.hpp"

namespace reel {

namespace {

std::shared_ptr<Backend> make_pipeline_backend(const PipelineLoadOptions& o) {
  check_thread_count(o.threads, "threads");
  if (o.backend) return o.backend;
  return make_backend(o.device, o.threads);  // unsupported (named) when this build or machine lacks the device
}

// The text encoder's backend: the pipeline's when it runs on the same device, else its own.
std::shared_ptr<Backend> make_text_backend(const PipelineLoadOptions& o, const std::shared_ptr<Backend>& main) {
  if (o.text_encoder_device == main->device()) return main;
  return make_backend(o.text_encoder_device, o.threads);
}

std::string describe(const Pipeline::Impl& p, const PipelineLoadOptions& options) {
  const PipelinePrecision precision = options.precision;
  const PipelineInfo& i = p.info;
  std::ostringstream s;
  const bool wan22 = i.variant == WanVariant::ti2v || i.two_experts;
  s << (wan22 ? "Wan 2.2 " : "Wan 2.1 ") << pipeline::variant_label(i.variant) << " ("
    << wan_variant_name(i.variant) << (i.two_experts ? ", two experts" : "") << "): transformer "
    << i.transformer.str() << "; VAE z " << i.vae.z_dim << " ×" << i.vae.spatial_factor() << " space ×"
    << i.vae.temporal_factor() << " time";
  if (p.text_encoder)
    s << "; umT5 d_model " << p.text_encoder->config().d_model << " × " << p.text_encoder->config().num_layers
      << " layers on " << p.text_backend->device().str();
  else s << "; no text encoder";
  if (p.image_encoder)
    s << "; CLIP image encoder " << p.image_encoder->config().hidden_size << " × "
      << p.image_encoder->config().num_layers << " layers (" << p.image_encoder->config().image_size << " px)";
  if (p.preview_decoder) s << "; TAEHV previews (" << p.preview_decoder->latent_channels() << " channels)";
  s << "; " << (precision == PipelinePrecision::bf16 ? "bf16" : "f32")
    << (options.weight_format == WanWeightFormat::compute
            ? ""
            : " (block linears " + std::string(weight_format_name(options.weight_format)) + ")")
    << " on "
    << p.backend->device().str();
  if (i.ranks > 1)
    s << " × " << i.ranks << " ranks (" << p.comm->transport() << ", ulysses " << i.ulysses << " × ring " << i.ring << ")";
  return s.str();
}

// Wan 2.1 I2V's CLIP image encoder, in f32 whatever the precision (diffusers' Wan I2V example
// loads it with torch_dtype=float32), on the pipeline's device, with its preprocessing.
void load_image_encoder(const pipeline::ModelFiles& files, Pipeline::Impl& p, bool map_weights) {
  PipelineInfo& info = p.info;
  if (files.image_encoder.empty()) {
    if (info.transformer.has_image_context())
      info.notes.push_back("no CLIP image encoder (image_encoder/): Wan 2.1 I2V requests must carry image_context");
    return;
  }
  if (!info.transformer.has_image_context()) {
    info.notes.push_back(files.image_encoder.string() + ": not loaded, the transformer has no image-context path");
    return;
  }
  p.image_encoder = ClipVisionEncoder::load(
      files.image_encoder, {.dtype = DType::f32, .device = p.backend->device(), .map_weights = map_weights});
  const ClipVisionConfig& c = p.image_encoder->config();
  if (c.hidden_size != info.transformer.image_dim)
    throw Error(StatusCode::bad_format, files.image_encoder.string() + ": the image encoder's width (hidden_size " +
                                            std::to_string(c.hidden_size) + ") is not the transformer's image_dim " +
                                            std::to_string(info.transformer.image_dim));
  if (!files.image_processor.empty()) p.image_processor = ClipImageProcessor::open(files.image_processor);
  else info.notes.push_back("no image_processor/preprocessor_config.json: CLIP's defaults (224 px, bicubic)");
  const ClipImageProcessorConfig& pc = p.image_processor.config();
  if (!pc.do_center_crop || pc.crop_width != c.image_size || pc.crop_height != c.image_size)
    throw Error(StatusCode::bad_format,
                (files.image_processor.empty() ? std::string("CLIP's default preprocessing") : files.image_processor.string()) +
                    ": crops to " + (pc.do_center_crop ? std::to_string(pc.crop_width) + "x" + std::to_string(pc.crop_height)
                                                       : std::string("no fixed size")) +
                    " but the image encoder takes " + std::to_string(c.image_size) + "x" + std::to_string(c.image_size));
  if (!p.image_encoder->ignored().empty())
    info.notes.push_back("image encoder: " + std::to_string(p.image_encoder->ignored().size()) +
                         " tensor(s) that hidden_states[-2] does not use were skipped (first: " +
                         p.image_encoder->ignored().front() + ")");
}

void note_ignored(const WanTransformer& t, const char* which, std::vector<std::string>& notes) {
  const auto& ignored = t.checkpoint().ignored;
  if (ignored.empty()) return;
  notes.push_back(std::string(which) + ": " + std::to_string(ignored.size()) + " tensor(s) not part of the model were "
                  "ignored (first: " + ignored.front() + ")");
}

// The LoRAs of one expert: their specs (expert cleared, as WanTransformer::load takes them)
// and their indices in PipelineLoadOptions::loras.
struct ExpertLoras {
  std::vector<LoraSpec> specs;
  std::vector<size_t> index;
};

ExpertLoras loras_for(const std::vector<LoraSpec>& all, LoraExpert expert, bool two_experts) {
  ExpertLoras out;
  for (size_t i = 0; i < all.size(); ++i) {
    require(two_experts || all[i].expert == LoraExpert::both, StatusCode::invalid_argument,
            "LoRA " + all[i].path.filename().string() + " is for the " +
                (all[i].expert == LoraExpert::high_noise ? "high" : "low") +
                "-noise expert, but the model has one transformer (no transformer_2)");
    if (all[i].expert != LoraExpert::both && all[i].expert != expert) continue;
    out.specs.push_back(all[i]);
    out.specs.back().expert = LoraExpert::both;
    out.index.push_back(i);
  }
  return out;
}

// PipelineInfo::loras and the notes: one entry per LoRA, over the experts it applies to.
void summarise_loras(const Pipeline::Impl& p, const std::vector<LoraSpec>& specs, PipelineInfo& info) {
  info.loras.assign(specs.size(), AppliedLora{});
  std::vector<bool> seen(specs.size(), false);
  auto add = [&](const WanTransformer& t, const std::vector<size_t>& index) {
    for (size_t k = 0; k < index.size(); ++k) {
      AppliedLora& out = info.loras[index[k]];
      const AppliedLora& a = t.loras()[k];
      if (!seen[index[k]]) {
        out = a;
        out.spec = specs[index[k]];
        seen[index[k]] = true;
      } else {
        out.targets += a.targets;
      }
    }
  };
  add(*p.transformer, p.loras_of_transformer);
  if (p.transformer_2) add(*p.transformer_2, p.loras_of_transformer_2);
  for (const AppliedLora& a : info.loras) {
    const std::string name = "LoRA " + a.spec.path.filename().string();
    if (!a.unmapped.empty())
      info.notes.push_back(name + ": " + std::to_string(a.unmapped.size()) +
                           " module(s) the model has no layer for were not applied (first: " + a.unmapped.front() + ")");
    if (!a.info.unrecognised.empty())
      info.notes.push_back(name + ": " + std::to_string(a.info.unrecognised.size()) +
                           " tensor(s) of no known LoRA kind were not applied (first: " + a.info.unrecognised.front() + ")");
  }
}

}  // namespace

std::string_view wan_variant_name(WanVariant variant) {
  switch (variant) {
    case WanVariant::t2v: return "t2v";
    case WanVariant::i2v: return "i2v";
    case WanVariant::ti2v: return "ti2v";
  }
  return "?";
}

Pipeline::Pipeline(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

const PipelineInfo& Pipeline::info() const { return impl_->info; }

namespace {

// Everything Pipeline::load does but the sequence-parallel split.
std::shared_ptr<Pipeline::Impl> load_components(const PipelineLoadOptions& options) {
  using namespace pipeline;
  const ModelFiles files = locate_model_files(options);
  auto p = std::make_shared<Pipeline::Impl>();
  PipelineInfo& info = p->info;
  info.notes = files.notes;
  p->backend = make_pipeline_backend(options);
  const bool f32 = options.precision == PipelinePrecision::f32;

  // Offload: the weights stay on the host; stage_models() uploads them for each denoising.
  p->offload_transformer = options.offload_transformer && !(p->backend->device() == Device::cpu());
  if (p->offload_transformer && !options.attention_kernel.empty())
    wan::check_attention_kernel(options.attention_kernel, p->backend->device());
  p->attention_kernel = options.attention_kernel;
  const bool two_experts = !files.transformer_2.empty();
  const ExpertLoras high = loras_for(options.loras, LoraExpert::high_noise, two_experts);
  const ExpertLoras low = loras_for(options.loras, LoraExpert::low_noise, two_experts);
  WanLoadOptions wan_options{.precision = f32 ? WanPrecision::f32 : WanPrecision::bf16,
                             .device = p->offload_transformer ? Device::cpu() : p->backend->device(),
                             .attention_kernel = p->offload_transformer ? "" : options.attention_kernel,
                             .map_weights = options.map_weights,
                             .weight_format = options.weight_format,
                             .loras = high.specs,
                             .lora_mode = options.lora_mode};
  p->transformer = WanTransformer::load(files.transformer, wan_options);
  p->loras_of_transformer = high.index;
  info.transformer = p->transformer->config();
  note_ignored(*p->transformer, "transformer", info.notes);
  if (!files.transformer_2.empty()) {
    wan_options.loras = low.specs;
    p->transformer_2 = WanTransformer::load(files.transformer_2, wan_options);
    p->loras_of_transformer_2 = low.index;
    const WanConfig& a = info.transformer;
    const WanConfig& b = p->transformer_2->config();
    if (a.dim != b.dim || a.in_channels != b.in_channels || a.out_channels != b.out_channels ||
        a.text_dim != b.text_dim || a.image_dim != b.image_dim)
      throw Error(StatusCode::bad_format, files.transformer_2.string() + ": the second expert (" + b.str() +
                                              ") does not match the first (" + a.str() + ")");
    note_ignored(*p->transformer_2, "transformer_2", info.notes);
    info.two_experts = true;
  }
  summarise_loras(*p, options.loras, info);

  info.vae = vae::read_vae_config(files.vae, &info.notes);
  info.variant = detect_variant(info.transformer, info.vae);
  const bool needs_encoder = info.variant != WanVariant::t2v;
  p->vae = WanVae::load(files.vae, *p->backend,
                        {.config = info.vae, .compute = DType::f32, .encoder = needs_encoder, .decoder = true,
                         .map_weights = options.map_weights});
  p->vae_path = files.vae;
  if (info.vae.latents_mean.empty())
    throw Error(StatusCode::bad_format, files.vae.string() + ": the VAE (z_dim " + std::to_string(info.vae.z_dim) +
                                            ") has no latents_mean/latents_std: add them to its config.json");

  if (!files.text_encoder.empty()) {
    p->text_backend = make_text_backend(options, p->backend);
    p->text_encoder = Umt5Encoder::load(files.text_encoder, {.dtype = f32 ? DType::f32 : DType::bf16,
                                                             .device = p->text_backend->device(),
                                                             .map_weights = options.map_weights});
    if (p->text_encoder->config().d_model != info.transformer.text_dim)
      throw Error(StatusCode::bad_format, files.text_encoder.string() + ": the text encoder's width (d_model " +
                                              std::to_string(p->text_encoder->config().d_model) +
                                              ") is not the transformer's text_dim " +
                                              std::to_string(info.transformer.text_dim));
  }
  if (!files.tokenizer.empty()) {
    p->tokenizer = Umt5Tokenizer::open(files.tokenizer);
    if (p->text_encoder && p->tokenizer->vocab_size() > p->text_encoder->config().vocab_size)
      throw Error(StatusCode::bad_format, files.tokenizer.string() + ": the tokenizer's " +
                                              std::to_string(p->tokenizer->vocab_size()) +
                                              " ids do not fit the text encoder's embedding of " +
                                              std::to_string(p->text_encoder->config().vocab_size) + " rows");
  }

  load_image_encoder(files, *p, options.map_weights);
  if (!options.preview_decoder.empty()) {
    p->preview_decoder = TaehvDecoder::load(
        options.preview_decoder, {.time_upscale = false, .space_upscale = true, .device = p->backend->device()});
    if (p->preview_decoder->latent_channels() != info.vae.z_dim)
      throw Error(StatusCode::invalid_argument,
                  options.preview_decoder.string() + ": a TAEHV decoder of " +
                      std::to_string(p->preview_decoder->latent_channels()) + "-channel latents; this model's have " +
                      std::to_string(info.vae.z_dim) + " (taew2_1 decodes 16, taew2_2 48)");
  }

  SchedulerSettings scheduler;
  if (!files.scheduler_config.empty()) scheduler = read_scheduler_config(files.scheduler_config);
  for (const std::string& n : scheduler.notes) info.notes.push_back(n);

  info.spatial_multiple = info.vae.spatial_factor() * int(info.transformer.patch.h);
  info.temporal_factor = info.vae.temporal_factor();
  info.expand_timesteps = files.index.expand_timesteps.value_or(info.variant == WanVariant::ti2v);
  info.needs_image = info.variant == WanVariant::i2v;
  info.accepts_image = info.variant != WanVariant::t2v;
  info.needs_image_context = info.transformer.has_image_context();
  info.can_encode_prompts = p->text_encoder.has_value() && p->tokenizer.has_value();
  info.can_encode_images = p->image_encoder.has_value();
  info.defaults = model_defaults(info.variant, info.two_experts, files, scheduler);
  if (info.two_experts && !files.index.boundary_ratio)
    info.notes.push_back("two experts but no boundary_ratio in model_index.json: using " +
                         std::to_string(info.defaults.boundary_ratio));
  return p;
}

}  // namespace

Pipeline Pipeline::load(const PipelineLoadOptions& options) {
  const SequenceParallel& sp = options.sequence_parallel;
  std::shared_ptr<Impl> p;
  if (!sp.active()) {
    p = load_components(options);
  } else {
    // A rank that cannot load (a file missing on its machine) fails every rank here, before
    // the collectives of the split.
    std::exception_ptr failed;
    try {
      p = load_components(options);
    } catch (...) {
      failed = std::current_exception();
    }
    agree(*sp.comm, failed);
    p->transformer = p->transformer->with_sequence_parallel(sp);  // every rank splits here, in this order
    if (p->transformer_2) p->transformer_2 = p->transformer_2->with_sequence_parallel(sp);
    const SequenceParallel resolved = p->transformer->sequence_parallel();
    p->comm = resolved.comm;
    p->info.ranks = resolved.comm->size(), p->info.ulysses = resolved.ulysses, p->info.ring = resolved.ring;
  }
  p->info.description = describe(*p, options);
  return Pipeline(std::move(p));
}

}  // namespace reel
