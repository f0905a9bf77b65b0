// Internal: the loaded pipeline (immutable weights shared by every generation) and the
// per-generation pieces the stages pass to each other.
#pragma once
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "reel/backend.hpp"
#include "reel/distributed.hpp"
#include "reel/image_encoder.hpp"
#include "reel/pipeline.hpp"
#include "reel/schedule.hpp"
#include "reel/taehv.hpp"
#include "reel/text_encoder.hpp"
#include "reel/video_session.hpp"

namespace reel {

namespace pipeline {
// Live previews' latent→RGB map (preview.cpp): rgb = a·z + b per latent pixel, z the
// normalised latents, rgb in [-1, 1]; fitted by least squares on the model's own VAE decoder.
struct LatentRgb {
  int64_t channels = 0;
  std::vector<double> a;  // [3, channels]
  double b[3] = {0, 0, 0};
  double r2 = 0;          // the fit's R² on held-out latents (mean over R, G, B)
};
}  // namespace pipeline

struct Pipeline::Impl {
  // Backends are safe to share between threads (the CPU one guards its caches); ops run on
  // the calling thread.
  std::shared_ptr<Backend> backend;       // transformer(s), VAE, conditioning
  std::shared_ptr<Backend> text_backend;  // the text encoder's (the same one when on the same device)
  std::optional<WanTransformer> transformer;
  std::optional<WanTransformer> transformer_2;  // A14B low-noise expert
  // For each transformer, which of PipelineLoadOptions::loras it carries (their indices).
  std::vector<size_t> loras_of_transformer, loras_of_transformer_2;
  // Offload: the transformer(s) stay on the host and are uploaded for each denoising stage
  // (pipeline/stage_models.hpp), with this attention kernel ("" selects per call).
  bool offload_transformer = false;
  std::string attention_kernel;
  // Sequence parallel: the ranks this pipeline's calls run on together (null: one process).
  std::shared_ptr<Communicator> comm;
  std::optional<WanVae> vae;
  std::filesystem::path vae_path;  // where the VAE was read (VideoSession loads its encoder from it when needed)
  std::optional<Umt5Tokenizer> tokenizer;
  std::optional<Umt5Encoder> text_encoder;
  std::optional<ClipVisionEncoder> image_encoder;  // Wan 2.1 I2V, on `backend`'s device, f32
  std::optional<TaehvDecoder> preview_decoder;     // draws previews when given (on `backend`'s device)
  ClipImageProcessor image_processor;              // its preprocessing (CLIP's defaults if no config)
  PipelineInfo info;
  // Fitted on the first request for previews (the VAE decodes a few small random latents once).
  mutable std::once_flag latent_rgb_once;
  mutable pipeline::LatentRgb latent_rgb;
};

namespace pipeline {

std::string_view variant_label(WanVariant v);

// `t` as an f32 tensor in host memory: itself when it already is one, else a converted copy.
inline Tensor host_f32(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  return host.dtype() == DType::f32 ? host : host.to(DType::f32);
}

// A request with every default filled in and every size rounded.
struct Resolved {
  int width = 0, height = 0, frames = 0, steps = 0;
  int64_t latent_frames = 0, latent_height = 0, latent_width = 0, channels = 0;
  float guidance = 0, guidance_2 = 0, shift = 0;
  bool cfg = false;  // an unconditional pass runs (guidance > 1)
  std::string sampler, schedule;  // full specs
  Schedule sigmas;
  std::vector<std::string> notices;
};
Resolved resolve_request(const Pipeline::Impl& p, const GenerateRequest& r);

// Throws `code` naming `what` when t (any device, float dtype) holds NaN or infinity: a
// stage's output (numerical_error) or a caller's tensor (invalid_argument).
void require_finite(const Tensor& t, const std::string& what, StatusCode code = StatusCode::numerical_error);

// A prompt's text as the text stage will take it: at most kMaxPromptBytes of valid UTF-8.
// invalid_argument naming `what` ("prompt", "negative_prompt", "prompts[3].prompt").
void check_prompt_text(std::string_view text, const std::string& what);
// Adds a notice when the text encoder will cut the prompt (more than 511 tokens and </s>).
void note_prompt_length(const Pipeline::Impl& p, std::string_view text, const std::string& what,
                        std::vector<std::string>& notices);

// Progress reporting, cancel checks and stage timings for one generation. With sequence
// parallel ranks (`comm`), step_done() is where the ranks agree: a cancel, a callback's stop or
// a failure on any rank ends the call on every rank there; check_cancel() waits for it.
class Run {
 public:
  Run(GenerateObserver* observer, const std::atomic<bool>* cancel, Communicator* comm = nullptr)
      : observer_(observer), cancel_(cancel), comm_(comm) {}
  void notice(const std::string& message, std::vector<std::string>& sink);
  void begin_stage(std::string stage, int total);
  // Reports a finished step of the current stage (with its preview first, when given); throws
  // cancelled when asked to stop.
  void step_done(int step, double step_seconds, const Preview* preview = nullptr);
  void end_stage();
  // Throws cancelled when the flag is set (checked between model calls and VAE chunks).
  void check_cancel() const;
  // Runs `work` on rank 0 only (everywhere in one process; progress and cancel local to it
  // meanwhile), then the ranks agree on how it went.
  void on_root(const std::function<void()>& work);
  bool is_root() const { return !comm_ || comm_->rank() == 0; }
  const std::vector<StageTime>& timings() const { return timings_; }

 private:
  using Clock = std::chrono::steady_clock;
  void report(int step, double step_seconds, const Preview* preview);
  GenerateObserver* observer_;
  const std::atomic<bool>* cancel_;
  Communicator* comm_;
  bool local_ = false;  // inside on_root()
  std::string stage_;
  int total_ = 0, steps_ = 0;
  Clock::time_point stage_start_;
  std::vector<StageTime> timings_;
};

// Text stage: [1 or 2, T, text_dim] contexts in the transformer's activation dtype.
struct TextContext {
  Tensor cond, uncond;  // uncond undefined without CFG
  Tensor batched;       // [2, T, D] = cond; uncond, when both have the same length
};
Tensor encode_prompts(const Pipeline::Impl& p, std::span<const std::string> prompts);
TextContext text_context(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, Run& run);

// What conditions one window of latents besides the text (wan.md §4.4, docs/extension.md).
// generate() is one window whose conditioning comes from the request's image; a video
// session's later windows hold the previous window's last latent frames fixed.
struct Conditioning {
  Tensor channels;       // I2V: [mask + z, F, h, w] f32 CPU, appended to the latents on channels
  Tensor image_context;  // Wan 2.1 I2V: CLIP features [1, N, image_dim], activation dtype
  // Latent frames [0, K) held fixed: [C, K, h, w] f32 CPU (TI2V's first frame, a session's
  // context), entering as `fixed_mode` says (per_token or replacement, never automatic).
  Tensor fixed;
  ContextConditioning fixed_mode = ContextConditioning::per_token;
};
// The first window's conditioning from the request: its image (VAE-encoded: TI2V's fixed first
// latent, or I2V's channels) and Wan 2.1 I2V's CLIP features (given, or encoded from the image).
Conditioning image_condition(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, Run& run);
// Wan 2.1 I2V's image context in the transformer's activation dtype on the backend's device:
// `given` (the caller's features [N, D] or [1, N, D]) when defined, else the model's CLIP
// image encoder run on `image`.
Tensor image_context_of(const Pipeline::Impl& p, const Tensor& given, const Image& image);
// I2V's extra input channels for a window that starts with `pixels` [3, n, H, W] in [-1, 1]
// (n = 4j + 1; the rest of the window's frames black): the mask (1 on the first n frames) and
// the normalised VAE latents of [pixels, zeros], as Wan's I2V pipelines build them.
Tensor i2v_channels(const Pipeline::Impl& p, const Resolved& rs, const Tensor& pixels);

// Philox stream of a video session's chunk k: k·2³². Chunk 0 uses stream 0, as generate()
// does; the sampler's own draws (ancestral samplers) follow on the next streams.
constexpr uint64_t chunk_stream(int chunk) { return uint64_t(chunk) << 32; }

// The denoising stage, the one loop of every window: noise (r.initial_noise, or drawn from
// Rng(r.seed, stream)) through the sampler with the guided transformer(s); returns the final
// latents [C, F, h, w] f32 with the fixed frames set to cond.fixed exactly. With r.step_cache,
// some transformer calls are replaced (step_cache.hpp); `counts`, when given, gets
// transformer_calls and skipped_calls.
Tensor denoise(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
               const Conditioning& cond, uint64_t stream, Run& run, GenerateResult* counts = nullptr);

// The pipeline's latent→RGB map, fitted on first use (thread-safe).
const LatentRgb& latent_rgb(const Pipeline::Impl& p);
// x0 [C, F, h, w] (f32 CPU, normalised latents) → RGB24 [F, h, w, 3] through the map.
std::vector<uint8_t> preview_pixels(const LatentRgb& map, const Tensor& x0);
// A preview of x0 (as above): through p's TAEHV decoder when it has one (F frames at its
// spatial factor), else through the fitted map.
struct PreviewImage {
  int frames = 0, height = 0, width = 0;
  std::vector<uint8_t> rgb;  // RGB24 [frames, height, width, 3]
};
PreviewImage draw_preview(const Pipeline::Impl& p, const Tensor& x0);

// Variants per transformer batch: `batch` (> 0), or with 0 as many as 80 % of the free memory
// of the model's device holds (DeviceMemory::available_bytes) at step_bytes_per_variant()
// each, with a notice when that is fewer than all n; all n when the memory cannot tell. With
// sequence-parallel ranks the smallest choice of any rank (collective).
int variant_group(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, int n, int batch, Run& run,
                  std::vector<std::string>& notices);
// An upper estimate of one variant's activations in a transformer call (`copies` 2: the CFG pair).
int64_t step_bytes_per_variant(const WanConfig& c, DType activations, int64_t tokens, int copies);
int variants_per_group(int64_t bytes_per_variant, std::optional<size_t> available, int n);

// Variants: denoise() of the same window for each seed (stream 0, as generate() with that seed),
// `batch` of them at a time (variant_group's choice) with their transformer calls batched together: each
// sampler runs on its own thread and they meet at every model call. Results: the latents, and
// with r.step_cache the transformer_calls / skipped_calls of each variant (each caches alone).
std::vector<GenerateResult> denoise_variants(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs,
                                     const TextContext& text, const Conditioning& cond,
                                     std::span<const uint64_t> seeds, int batch, Run& run);

// Decoder output [3, m, H, W] in [-1, 1] (CPU f32) → m RGB24 frames at `rgb` and, when `floats`
// is not null, diffusers' postprocessed f32 frames [m, H, W, 3] in [0, 1] there.
void store_frames(const Tensor& decoded, uint8_t* rgb, float* floats);

// Decode: latents → frames, one latent frame per VAE chunk.
void decode_latents(const Pipeline::Impl& p, const Tensor& latents, bool keep_float, Run& run, GenerateResult& out);

// Classifier-free guidance v = v_u + g·(v_c − v_u) on CPU tensors, each operation rounded to the
// model's dtype as torch does it in bf16 (the Python float g enters the multiply unrounded).
Tensor guide(const Tensor& cond, const Tensor& uncond, float g);

}  // namespace pipeline
}  // namespace reel
