// C API: generation parameters and reel_generate (a reel::GenerateRequest built field by
// field, every pointer and size checked, progress callback as the observer).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "capi_internal.hpp"

namespace {

using reel::Error;
using reel::StatusCode;

// The fields of reel_generate_params version 1 (0.1.0 without the appended ones).
constexpr size_t kGenerateParamsV1 = offsetof(reel_generate_params, keep_float_frames) + sizeof(int32_t);

// Caller floats [tokens, dim] → a CPU f32 tensor (copied: the library keeps nothing of the caller's).
reel::Tensor embeddings(const float* data, int64_t tokens, int64_t dim, const char* what) {
  if (tokens <= 0 || dim <= 0 || tokens > (int64_t(1) << 20) || dim > (int64_t(1) << 20) || tokens * dim > (int64_t(1) << 31))
    throw Error(StatusCode::invalid_argument, std::string(what) + ": tokens " + std::to_string(tokens) + " × dim " +
                                                  std::to_string(dim) + " is not a valid embedding size");
  return reel::Tensor::from_floats({tokens, dim}, {data, size_t(tokens * dim)});
}

reel::Image caller_image(const reel_generate_params* p) {
  if (p->image_width <= 0 || p->image_height <= 0 || p->image_width > 65536 || p->image_height > 65536)
    throw Error(StatusCode::invalid_argument, "params->image_width × image_height " + std::to_string(p->image_width) +
                                                  " × " + std::to_string(p->image_height) + " is not a valid image size");
  reel::Image img;
  img.width = p->image_width;
  img.height = p->image_height;
  img.rgb.assign(p->image_rgb, p->image_rgb + size_t(img.width) * size_t(img.height) * 3);
  return img;
}

}  // namespace

namespace reel::capi {

bool ProgressObserver::on_progress(const Progress& p) {
  if (!fn_) return true;
  const std::string stage(p.stage);
  reel_progress r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.stage = stage.c_str();
  r.step = p.step;
  r.total = p.total;
  r.stage_seconds = p.stage_seconds;
  r.step_seconds = p.step_seconds;
  if (preview_) {
    r.preview_rgb = preview_->rgb.data();
    r.preview_frames = preview_->frames;
    r.preview_height = preview_->height;
    r.preview_width = preview_->width;
  }
  const bool go_on = fn_(&r, user_) == 0;
  preview_.reset();
  return go_on;
}

GenerateRequest generate_request(const reel_generate_params& p, const reel_model* model) {
  require_struct_size(p.struct_size, kGenerateParamsV1, "reel_generate_params");
  GenerateRequest r;
  // A size without its pointer is a caller bug, not a request to ignore the size.
  require(p.prompt_embeds || p.prompt_embeds_tokens == 0, StatusCode::invalid_argument,
          "params->prompt_embeds is NULL but prompt_embeds_tokens is " + std::to_string(p.prompt_embeds_tokens));
  require(p.negative_embeds || p.negative_embeds_tokens == 0, StatusCode::invalid_argument,
          "params->negative_embeds is NULL but negative_embeds_tokens is " + std::to_string(p.negative_embeds_tokens));
  require(p.image_rgb || (p.image_width == 0 && p.image_height == 0), StatusCode::invalid_argument,
          "params->image_rgb is NULL but image_width x image_height is " + std::to_string(p.image_width) + "x" +
              std::to_string(p.image_height));
  if (p.prompt_embeds) {
    r.prompt_embeds = embeddings(p.prompt_embeds, p.prompt_embeds_tokens, p.prompt_embeds_dim, "params->prompt_embeds");
    if (p.negative_embeds)
      r.negative_embeds = embeddings(p.negative_embeds, p.negative_embeds_tokens, p.prompt_embeds_dim,
                                     "params->negative_embeds");
  } else {
    require_pointer(p.prompt, "params->prompt (give a prompt or prompt_embeds)");
    require(!p.negative_embeds, StatusCode::invalid_argument,
            "params->negative_embeds is set but prompt_embeds is not (give both, or prompts)");
    r.prompt = p.prompt;
  }
  if (p.negative_prompt) r.negative_prompt = p.negative_prompt;
  r.width = p.width;
  r.height = p.height;
  r.frames = p.frames;
  r.steps = p.steps;
  require(std::isfinite(p.guidance) && std::isfinite(p.shift), StatusCode::invalid_argument,
          "params->guidance and params->shift must be finite");
  r.guidance = p.guidance;
  r.shift = p.shift;
  if (p.struct_size >= offsetof(reel_generate_params, previews) + sizeof(int32_t)) r.previews = p.previews != 0;
  if (p.struct_size >= offsetof(reel_generate_params, step_cache_threshold) + sizeof(float)) {
    if (p.step_cache) r.step_cache.method = p.step_cache;
    r.step_cache.threshold = p.step_cache_threshold;
  }
  if (p.struct_size >= offsetof(reel_generate_params, lora_strength_count) + sizeof(int32_t) && p.lora_strength_count != 0) {
    require(p.lora_strength_count > 0 && p.lora_strength_count <= 256, StatusCode::invalid_argument,
            "params->lora_strength_count " + std::to_string(p.lora_strength_count) + " is not in [0, 256]");
    require_pointer(p.lora_strengths, "params->lora_strengths (with lora_strength_count > 0)");
    r.lora_strengths.assign(p.lora_strengths, p.lora_strengths + p.lora_strength_count);
  }
  if (p.struct_size >= offsetof(reel_generate_params, guidance_2) + sizeof(float)) {
    require(std::isfinite(p.guidance_2), StatusCode::invalid_argument, "params->guidance_2 must be finite");
    r.guidance_2 = p.guidance_2;
  }
  if (p.sampler) r.sampler = p.sampler;
  if (p.schedule) r.schedule = p.schedule;
  r.seed = p.seed;
  if (p.initial_noise) {
    require(p.initial_noise_count > 0 && p.initial_noise_count <= (size_t(1) << 34), StatusCode::invalid_argument,
            "params->initial_noise_count " + std::to_string(p.initial_noise_count) + " is not a valid count");
    r.initial_noise = Tensor::from_floats({int64_t(p.initial_noise_count)}, {p.initial_noise, p.initial_noise_count});
  } else {
    require(p.initial_noise_count == 0, StatusCode::invalid_argument,
            "params->initial_noise is NULL but initial_noise_count is not 0");
  }
  require(!(p.image_path && p.image_rgb), StatusCode::invalid_argument,
          "params->image_path and params->image_rgb are both set: give one first frame");
  if (p.image_rgb) r.image = caller_image(&p);  // the caller's buffer: cheap checks first
  require(!(p.image_path || p.image_rgb) || model->pipeline.info().accepts_image, StatusCode::unsupported,
          "this model is text-to-video only and cannot start from an image (params->image_path / image_rgb); use "
          "an I2V or TI2V model");
  if (p.image_path) r.image = read_image(p.image_path);  // decoded only for a model that takes it
  r.keep_float_frames = p.keep_float_frames != 0;
  return r;
}

// A generation's result as the C API hands it out.
std::unique_ptr<reel_video> video_of(GenerateResult out, bool keep_float) {
  auto v = std::make_unique<reel_video>();
  v->video = std::move(out.video);
  v->notices = std::move(out.notices);
  if (keep_float) {
    const float* f = out.frames.data<float>();
    v->frames_float.assign(f, f + out.frames.numel());
  }
  return v;
}

}  // namespace reel::capi

extern "C" {

void reel_generate_params_init(reel_generate_params* params) {
  if (!params) return;
  std::memset(params, 0, sizeof *params);
  params->struct_size = sizeof *params;
  params->prompt = "";
}

reel_status reel_generate(reel_model* model, const reel_generate_params* params, reel_video** video) {
  return reel::capi::guarded("reel_generate", [&] {
    using namespace reel;
    capi::require_pointer(model, "model");
    capi::require_pointer(params, "params");
    capi::require_pointer(video, "video (the output pointer)");
    const GenerateRequest r = capi::generate_request(*params, model);
    capi::ProgressObserver observer(params->progress, params->progress_user_data);
    *video = capi::video_of(model->pipeline.generate(r, &observer), r.keep_float_frames).release();
  });
}

reel_status reel_generate_variants(reel_model* model, const reel_generate_params* params, const uint64_t* seeds,
                                   int32_t count, int32_t batch, reel_video** videos) {
  if (videos && count > 0 && count <= reel::kMaxVariants) std::fill_n(videos, count, nullptr);
  return reel::capi::guarded("reel_generate_variants", [&] {
    using namespace reel;
    capi::require_pointer(model, "model");
    capi::require_pointer(params, "params");
    capi::require_pointer(seeds, "seeds");
    capi::require_pointer(videos, "videos (the output array)");
    require(count >= 1 && count <= kMaxVariants, StatusCode::invalid_argument,
            "count must be in [1, " + std::to_string(kMaxVariants) + "], got " + std::to_string(count));
    require(batch >= 0, StatusCode::invalid_argument, "batch must be >= 0 (0: as many as free memory holds), got " + std::to_string(batch));
    const GenerateRequest r = capi::generate_request(*params, model);
    capi::ProgressObserver observer(params->progress, params->progress_user_data);
    std::vector<GenerateResult> out =
        model->pipeline.generate_variants(r, std::span<const uint64_t>(seeds, size_t(count)), &observer, batch);
    std::vector<std::unique_ptr<reel_video>> made;  // all or nothing
    for (GenerateResult& g : out) made.push_back(capi::video_of(std::move(g), r.keep_float_frames));
    for (size_t i = 0; i < made.size(); ++i) videos[i] = made[i].release();
  });
}

}  // extern "C"
