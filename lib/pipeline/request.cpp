// Turning a GenerateRequest into what runs: defaults, rounding (with notices), validation of
// every field before any work starts; and the Run helper (progress, cancel, stage timings).
#include <cmath>
#include <sstream>

#include "pipeline/model_files.hpp"
#include "pipeline/pipeline_impl.hpp"
#include "pipeline/stage_models.hpp"
#include "pipeline/step_cache.hpp"
#include "reel/options.hpp"
#include "reel/sampler.hpp"

namespace reel::pipeline {

namespace {

std::string spec_of(const std::string& name, const Options& o) { return o.empty() ? name : name + ":" + o.str(); }

// Shortest text that reads back as the same float ("3", "4.5", "0.125").
std::string number_text(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

// Width or height: the default when 0, then floored to the model's multiple.
int resolve_size(int requested, int fallback, int multiple, const char* what, std::vector<std::string>& notices) {
  require(requested >= 0, StatusCode::invalid_argument,
          std::string(what) + " must be >= 0 (0: the model default), got " + std::to_string(requested));
  const int v = requested == 0 ? fallback : requested;
  const int rounded = v / multiple * multiple;
  require(rounded > 0, StatusCode::invalid_argument,
          std::string(what) + " " + std::to_string(v) + " is smaller than the model's multiple of " + std::to_string(multiple));
  if (rounded != v)
    notices.push_back(std::string(what) + " " + std::to_string(v) + " -> " + std::to_string(rounded) +
                      " (must be a multiple of " + std::to_string(multiple) + " for this model)");
  return rounded;
}

void check_embeds(const Tensor& t, const char* what, int64_t text_dim) {
  if (!t.defined()) return;
  const bool shape_ok = (t.rank() == 2 || (t.rank() == 3 && t.dim(0) == 1)) && t.dim(-2) >= 1 && t.dim(-1) == text_dim;
  require(shape_ok, StatusCode::invalid_argument,
          std::string(what) + " " + t.shape().str() + " must be [tokens, " + std::to_string(text_dim) + "] or [1, tokens, " +
              std::to_string(text_dim) + "] (the text encoder's width)");
  require(t.is_cpu() && t.dtype() != DType::i32, StatusCode::invalid_argument,
          std::string(what) + " must be a CPU float tensor");
}

}  // namespace

void note_prompt_length(const Pipeline::Impl& p, std::string_view text, const std::string& what,
                        std::vector<std::string>& notices) {
  if (!p.tokenizer) return;
  const TokenizerOptions options;  // what encode_prompts uses
  const size_t tokens = p.tokenizer->tokenize(text, options).size();
  if (tokens + 1 > size_t(options.max_length))
    notices.push_back(what + " has " + std::to_string(tokens) + " tokens: the text encoder reads the first " +
                      std::to_string(options.max_length - 1) + " (and </s>); the rest is ignored");
}

Resolved resolve_request(const Pipeline::Impl& p, const GenerateRequest& r) {
  const PipelineInfo& info = p.info;
  const PipelineDefaults& d = info.defaults;
  Resolved s;
  s.width = resolve_size(r.width, d.width, info.spatial_multiple, "width", s.notices);
  s.height = resolve_size(r.height, d.height, info.spatial_multiple, "height", s.notices);

  require(r.frames >= 0, StatusCode::invalid_argument,
          "frames must be >= 0 (0: the model default), got " + std::to_string(r.frames));
  const int tf = info.temporal_factor;
  s.frames = r.frames == 0 ? d.frames : r.frames;
  if (s.frames % tf != 1 % tf) {
    const int rounded = s.frames / tf * tf + 1;
    s.notices.push_back("frames " + std::to_string(s.frames) + " -> " + std::to_string(rounded) + " (the Wan VAE needs " +
                        std::to_string(tf) + "k + 1 frames)");
    s.frames = rounded;
  }

  // Far above what any Wan model was trained at (1280x720), and what keeps an absurd size (a
  // hostile image header, a typo) from starting a generation that takes the machine down.
  require(int64_t(s.width) * s.height <= kMaxFramePixels, StatusCode::invalid_argument,
          "the frame size " + std::to_string(s.width) + "x" + std::to_string(s.height) +
              " is over reel's limit of " + std::to_string(kMaxFramePixels) + " pixels (4096x4096)");

  const WanConfig& t = info.transformer;
  const int sf = info.vae.spatial_factor();
  s.channels = t.out_channels;
  s.latent_frames = (s.frames - 1) / tf + 1;
  s.latent_height = s.height / sf;
  s.latent_width = s.width / sf;
  const int64_t max_pos = t.rope_max_seq_len;
  require(s.latent_frames / t.patch.t <= max_pos && s.latent_height / t.patch.h <= max_pos &&
              s.latent_width / t.patch.w <= max_pos,
          StatusCode::invalid_argument,
          "the clip " + std::to_string(s.width) + "x" + std::to_string(s.height) + "x" + std::to_string(s.frames) +
              " has more than " + std::to_string(max_pos) + " token positions along an axis (the model's RoPE limit)");

  require(r.steps >= 0 && r.steps <= 10000, StatusCode::invalid_argument,
          "steps must be in [0, 10000] (0: the model default), got " + std::to_string(r.steps));
  s.steps = r.steps == 0 ? d.steps : r.steps;

  require(std::isfinite(r.guidance) && std::isfinite(r.guidance_2) && std::isfinite(r.shift),
          StatusCode::invalid_argument, "guidance, guidance_2 and shift must be finite numbers");
  s.guidance = r.guidance > 0 ? r.guidance : d.guidance;
  s.guidance_2 = r.guidance_2 > 0 ? r.guidance_2 : (d.guidance_2 > 0 && r.guidance <= 0 ? d.guidance_2 : s.guidance);
  if (!info.two_experts && r.guidance_2 > 0)
    s.notices.push_back("guidance_2 is ignored: this model has a single transformer");
  s.cfg = s.guidance > 1.0f || (info.two_experts && s.guidance_2 > 1.0f);
  s.shift = r.shift > 0 ? r.shift : d.shift;

  // Sampler and schedule: registry specs; the shift goes into flow schedules.
  s.sampler = r.sampler.empty() ? d.sampler : r.sampler;
  (void)make_sampler(s.sampler);  // unknown names and bad options fail here, before any work
  std::string schedule = r.schedule;
  if (schedule.empty()) {
    // The schedule the sampler's registry entry pairs it with, else the model's.
    const std::optional<RegistryEntry> sampler = r.sampler.empty() ? std::nullopt : find_sampler(parse_spec(r.sampler).first);
    schedule = sampler && !sampler->schedule.empty() ? sampler->schedule : d.schedule;
  }
  auto [name, opts] = parse_spec(schedule);
  const std::optional<RegistryEntry> entry = find_schedule(name);  // unknown: make_schedule names it below
  if (entry && entry->flow_shift) {
    if (!opts.has("shift")) opts.set("shift", number_text(s.shift));
    if (!opts.has("num_train_timesteps") && d.num_train_timesteps != 1000)
      opts.set("num_train_timesteps", std::to_string(d.num_train_timesteps));
  } else if (r.shift > 0) {
    s.notices.push_back("shift is ignored by the \"" + name + "\" schedule (only the flow_* schedules shift sigmas)");
  }
  s.sigmas = make_schedule(name, s.steps, opts);
  s.schedule = spec_of(name, opts);

  StepCache::check(r.step_cache);
  check_lora_strengths(p, r);

  // Conditioning inputs.
  if (!r.prompt_embeds.defined()) {
    check_prompt_text(r.prompt, "prompt");
    note_prompt_length(p, r.prompt, "the prompt", s.notices);
  }
  if (!r.negative_embeds.defined()) {
    check_prompt_text(r.negative_prompt, "negative_prompt");
    if (s.cfg) note_prompt_length(p, r.negative_prompt, "the negative prompt", s.notices);
  }
  check_embeds(r.prompt_embeds, "prompt_embeds", t.text_dim);
  check_embeds(r.negative_embeds, "negative_embeds", t.text_dim);
  require_finite(r.prompt_embeds, "prompt_embeds", StatusCode::invalid_argument);
  require_finite(r.negative_embeds, "negative_embeds", StatusCode::invalid_argument);
  if (!r.prompt_embeds.defined() || (s.cfg && !r.negative_embeds.defined()))
    require(info.can_encode_prompts, StatusCode::invalid_argument,
            "this model has no text encoder and tokenizer loaded: pass prompt embeddings (and negative embeddings "
            "when guidance > 1)");
  if (r.initial_noise.defined()) {
    const Tensor& n = r.initial_noise;
    const Shape want{s.channels, s.latent_frames, s.latent_height, s.latent_width};
    const bool ok = n.shape() == want || (n.rank() == 1 && n.numel() == want.numel()) ||
                    (n.rank() == 5 && n.dim(0) == 1 && n.dim(1) == want[0] && n.dim(2) == want[1] &&
                     n.dim(3) == want[2] && n.dim(4) == want[3]);
    require(ok, StatusCode::invalid_argument,
            "initial_noise " + n.shape().str() + " must be " + want.str() + " (" + std::to_string(want.numel()) +
                " values: latent channels, frames, height, width for " + std::to_string(s.width) + "x" +
                std::to_string(s.height) + "x" + std::to_string(s.frames) + ")");
    require(n.is_cpu() && n.dtype() != DType::i32, StatusCode::invalid_argument, "initial_noise must be a CPU float tensor");
    require_finite(n, "initial_noise", StatusCode::invalid_argument);
  }
  if (r.image) {
    require(info.accepts_image, StatusCode::unsupported,
            "this model is text-to-video only and cannot start from an image; use an I2V or TI2V model");
    require(r.image->width > 0 && r.image->height > 0 &&
                r.image->rgb.size() == size_t(r.image->width) * size_t(r.image->height) * 3,
            StatusCode::invalid_argument, "image: its RGB buffer does not hold width × height × 3 bytes");
  } else {
    require(!info.needs_image, StatusCode::invalid_argument, "this image-to-video model needs a first frame (image)");
  }
  if (info.needs_image_context) {
    require(r.image_context.defined() || info.can_encode_images, StatusCode::unsupported,
            "Wan 2.1 I2V models condition on CLIP image features, and this model was loaded without a CLIP image "
            "encoder: add its image_encoder/ (and image_processor/) to the model folder, pass one "
            "(PipelineLoadOptions::image_encoder, reel-cli --image-encoder), or pass the features (image_context "
            "[257, 1280], CLIP ViT-H/14 penultimate layer)");
    const Tensor& c = r.image_context;
    if (c.defined())
      require((c.rank() == 2 || (c.rank() == 3 && c.dim(0) == 1)) && c.dim(-1) == t.image_dim && c.dim(-2) >= 1 &&
                  c.is_cpu() && c.dtype() != DType::i32,
              StatusCode::invalid_argument,
              "image_context " + c.shape().str() + " must be a CPU float tensor [N, " + std::to_string(t.image_dim) + "]");
    require_finite(c, "image_context", StatusCode::invalid_argument);
  } else {
    require(!r.image_context.defined(), StatusCode::invalid_argument,
            "image_context is given, but this model has no image-context path (only Wan 2.1 I2V has)");
  }
  return s;
}

// ------------------------------------------------------------------------------ Run

void Run::notice(const std::string& message, std::vector<std::string>& sink) {
  sink.push_back(message);
  if (observer_) observer_->on_notice(message);
}

void Run::begin_stage(std::string stage, int total) {
  check_cancel();
  stage_ = std::move(stage);
  total_ = total;
  steps_ = 0;
  stage_start_ = Clock::now();
}

void Run::step_done(int step, double step_seconds, const Preview* preview) {
  if (!comm_ || local_) return report(step, step_seconds, preview);
  std::exception_ptr stop;
  try {
    report(step, step_seconds, preview);
    if (cancel_ && cancel_->load(std::memory_order_relaxed))
      throw Error(StatusCode::cancelled, "cancelled" + (stage_.empty() ? std::string() : " during " + stage_));
  } catch (...) {
    stop = std::current_exception();
  }
  agree(*comm_, stop);
}

void Run::on_root(const std::function<void()>& work) {
  if (!comm_) return work();
  std::exception_ptr failed;
  if (comm_->rank() == 0) {
    local_ = true;
    try {
      work();
    } catch (...) {
      failed = std::current_exception();
    }
    local_ = false;
  }
  agree(*comm_, failed);
}

void Run::report(int step, double step_seconds, const Preview* preview) {
  steps_ = step;
  const double elapsed = std::chrono::duration<double>(Clock::now() - stage_start_).count();
  if (observer_ && preview && !observer_->on_preview(*preview))
    throw Error(StatusCode::cancelled, "cancelled by the preview callback during " + stage_ + " (step " +
                                           std::to_string(step) + " of " + std::to_string(total_) + ")");
  if (observer_) {
    const Progress pr{stage_, step, total_, elapsed, step_seconds};
    if (!observer_->on_progress(pr))
      throw Error(StatusCode::cancelled, "cancelled by the progress callback during " + stage_ + " (step " +
                                             std::to_string(step) + " of " + std::to_string(total_) + ")");
  }
  check_cancel();
}

void Run::end_stage() {
  timings_.push_back({stage_, steps_, std::chrono::duration<double>(Clock::now() - stage_start_).count()});
}

void Run::check_cancel() const {
  if (comm_ && !local_) return;  // the ranks stop together, at the end of a step (step_done)
  if (cancel_ && cancel_->load(std::memory_order_relaxed))
    throw Error(StatusCode::cancelled, "cancelled" + (stage_.empty() ? std::string() : " during " + stage_));
}

}  // namespace reel::pipeline
