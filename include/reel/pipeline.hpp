// The Wan text/image-to-video pipeline (diffusers' WanPipeline and WanImageToVideoPipeline,
// reference/wan.md §4): model folder loading and variant detection, text conditioning, the
// denoising loop with batched classifier-free guidance, and the chunked VAE decode.
//
//   reel::Pipeline pipe = reel::Pipeline::load({.folder = "Wan2.1-T2V-1.3B-Diffusers"});
//   std::puts(pipe.info().description.c_str());          // "Wan 2.1 text-to-video, dim 1536 ..."
//   reel::GenerateRequest req;
//   req.prompt = "a red panda climbing a tree";
//   req.width = 832; req.height = 480; req.frames = 33; req.seed = 42;
//   reel::GenerateResult out = pipe.generate(req);        // defaults: the model's scheduler config
//   for (const std::string& n : out.notices) std::puts(n.c_str());   // e.g. "frames 32 -> 33"
//   reel::write_video(out.video, "panda.mp4");
//
// Progress and cancel: pass a GenerateObserver (on_progress returning false cancels within one
// denoising step or VAE chunk; the call then throws Error(cancelled)), or set a cancel flag
// from another thread (GenerateRequest::cancel). With GenerateRequest::previews, on_preview
// shows each denoising step's estimate of the video, so a bad seed can be stopped early.
//
// Thread safety: the weights are loaded once and never change. One Pipeline may be used by
// several threads at once: every generate() call keeps its own latents, caches and scratch.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/export.hpp"
#include "reel/tensor.hpp"
#include "reel/vae.hpp"
#include "reel/video_io.hpp"
#include "reel/wan_transformer.hpp"

namespace reel {

// The most seeds one generate_variants() call takes.
inline constexpr int kMaxVariants = 256;

// The largest frame (width x height) a request may ask for: 4096x4096 pixels.
inline constexpr int64_t kMaxFramePixels = int64_t(1) << 24;
// The longest prompt or negative prompt, in bytes of UTF-8. The text encoder reads 512 tokens
// (a notice says when a prompt is cut); 64 KiB is far past that in any language.
inline constexpr size_t kMaxPromptBytes = size_t(1) << 16;

// ------------------------------------------------------------------------------ the model

// What a model generates, decided once at load time from the weights (and model_index.json).
enum class WanVariant : uint8_t {
  t2v,   // Wan 2.1 T2V 1.3B / 14B, Wan 2.2 T2V-A14B (two experts): 16 latent channels
  i2v,   // Wan 2.1 I2V-14B (36 input channels + CLIP image context), Wan 2.2 I2V-A14B (no CLIP)
  ti2v,  // Wan 2.2 TI2V-5B: 48 channels, Wan 2.2 VAE, per-token timesteps; text or text+image
};
REEL_API std::string_view wan_variant_name(WanVariant variant);  // "t2v", "i2v", "ti2v"

enum class PipelinePrecision : uint8_t {
  bf16,  // transformer and text encoder as diffusers runs them with torch_dtype=bfloat16; VAE f32
  f32,   // everything in f32 (slow; what the parity tests compare)
};

struct PipelineLoadOptions {
  // A diffusers model folder: model_index.json, transformer/ (transformer_2/ for the A14B
  // experts), vae/, text_encoder/, tokenizer/, scheduler/scheduler_config.json. May be empty
  // when the transformer and the VAE are given below.
  std::filesystem::path folder;
  // Explicit components (ComfyUI style: single safetensors files or folders); each replaces
  // the folder's. A text encoder without a tokenizer (or none at all) means prompts must come
  // as embeddings.
  std::filesystem::path transformer, transformer_2, vae, text_encoder, tokenizer;
  // Wan 2.1 I2V: the CLIP image encoder (image_encoder/ folder, or a safetensors file such as
  // ComfyUI's clip_vision_h.safetensors) and its preprocessor_config.json (or a folder holding
  // it). An encoder folder given without a processor uses the preprocessor_config.json inside
  // it or the image_processor/ beside it; with neither, CLIP's defaults (Wan's). Without an
  // encoder, Wan 2.1 I2V requests must carry image_context.
  std::filesystem::path image_encoder, image_processor;
  // Optional: a TAEHV tiny decoder (reel/taehv.hpp: taew2_1.safetensors for 16-channel latents,
  // taew2_2 for Wan 2.2 TI2V-5B's 48) that draws the live previews (GenerateRequest::previews)
  // at the frame size, one frame per latent frame, instead of the fitted latent→RGB map's one
  // pixel per latent pixel. It runs on `device`; a decoder for other latents is refused at load.
  std::filesystem::path preview_decoder;
  // Where the transformer, the VAE and the sampler's model calls run: Device::cpu() or
  // Device::cuda(i) (a build with the CUDA backend). Weights are uploaded once, at load.
  Device device = Device::cpu();
  int threads = 0;  // CPU threads; 0: all hardware threads
  PipelinePrecision precision = PipelinePrecision::bf16;
  bool load_text_encoder = true;  // false: skip it (prompts must come as embeddings)
  bool load_image_encoder = true;  // false: skip it (Wan 2.1 I2V requests must carry image_context)
  // Where the umT5 text encoder runs. The CPU by default: umT5-XXL is ~11 GB in bf16, and it
  // runs once per request; the embeddings are then copied to `device`.
  Device text_encoder_device = Device::cpu();
  // Optional: run on this backend instead of making one for `device` (a custom or instrumented
  // backend, e.g. one that logs or times every op). The text encoder uses it too when it is
  // on the same device.
  std::shared_ptr<Backend> backend;
  // The transformer's attention kernel by name (`reel-cli kernels`: e.g. "cuda_flash", "cudnn",
  // "onednn"); empty: the best supported one for each call.
  std::string attention_kernel;
  // Keep the transformer(s) in host memory and upload them to `device` for the denoising of
  // each request, freeing them before the VAE decodes: a lower peak of device memory (Wan 2.1
  // 1.3B at 480×832×81: 10.0 → 7.2 GB, bench_device_memory) for one upload of the weights per
  // request (2.8 GB for 1.3B in bf16). No effect on the CPU.
  bool offload_transformer = false;
  // true: weights stored in the compute dtype are used in place in their memory-mapped files (no
  // copy; paged in lazily, shared with other processes). The files must then not change while
  // the pipeline lives: truncating one faults the process, overwriting one changes the model.
  // false (default): private copies made at load, immune to anything done to the files.
  bool map_weights = false;
  // How the transformer's block linears are held (WanWeightFormat: q8_0 / q4_0 quantised at
  // load, stored = a GGUF file's quantisation kept; CPU only; docs/dit.md#quantised-weights).
  WanWeightFormat weight_format = WanWeightFormat::compute;
  // LoRAs (reel/lora.hpp, docs/lora.md), applied in this order. LoraSpec::expert routes each to
  // the high-noise transformer, the low-noise one (Wan 2.2 A14B) or both; one-transformer
  // models take only `both`. merge: added into the weights at load; runtime: side paths whose
  // strengths GenerateRequest::lora_strengths changes per request.
  std::vector<LoraSpec> loras;
  LoraMode lora_mode = LoraMode::merge;
  // Sequence parallel (reel/distributed.hpp, docs/distributed.md): every rank of the
  // communicator loads the same pipeline and makes the same calls; the transformer's tokens are
  // split over the ranks. Rank 0 decodes: its results hold the frames, the other ranks' the
  // latents only. Cancel and progress callbacks act at the end of a denoising step on every
  // rank together; any rank's failure ends the call on every rank with that status.
  SequenceParallel sequence_parallel;
};

// The values a generation uses for every request field left at 0 / empty.
struct PipelineDefaults {
  int width = 832, height = 480, frames = 81, steps = 50;
  float guidance = 5.0f;
  float guidance_2 = 0.0f;     // low-noise expert (A14B); 0: same as guidance
  float shift = 3.0f;          // flow shift (scheduler_config.json's flow_shift)
  std::string sampler = "unipc";      // registry spec, from scheduler_config.json
  std::string schedule = "flow_unipc";
  float boundary_ratio = 0.0f;  // A14B: the high-noise expert runs while t >= ratio · 1000
  int num_train_timesteps = 1000;
  double fps = 16.0;
};

struct PipelineInfo {
  WanVariant variant = WanVariant::t2v;
  std::string description;     // one line: variant, sizes, precision, device
  WanConfig transformer;
  bool two_experts = false;    // transformer_2 loaded (Wan 2.2 A14B)
  int ranks = 1, ulysses = 1, ring = 1;  // sequence parallel (PipelineLoadOptions); 1: one process
  VaeConfig vae;
  int spatial_multiple = 16;   // width and height are rounded down to a multiple of this
  int temporal_factor = 4;     // frames are 4k + 1
  bool expand_timesteps = false;   // per-token timesteps (Wan 2.2 TI2V)
  bool needs_image = false;        // i2v: a first frame is required
  bool accepts_image = false;      // i2v and TI2V: a first frame may be given (not T2V)
  bool needs_image_context = false;  // Wan 2.1 I2V: CLIP image features are required
  bool can_encode_prompts = false;   // a text encoder and a tokenizer were loaded
  bool can_encode_images = false;    // Wan 2.1 I2V: a CLIP image encoder was loaded
  PipelineDefaults defaults;
  std::vector<std::string> notes;  // what loading noticed (ignored tensors, absent components)
  // The LoRAs of PipelineLoadOptions::loras, in order: what each changed (summed over the
  // experts it applies to) and what it could not map (also in notes).
  std::vector<AppliedLora> loras;
};

// A model folder or file examined without loading tensor data (reel-cli inspect).
struct ModelInspection {
  std::string kind;  // "model folder", "transformer", "vae", "text encoder", "safetensors file"
  std::optional<WanVariant> variant;
  std::vector<std::string> lines;     // "key: value" lines describing what was found
  std::vector<std::string> problems;  // what is missing, malformed or unsupported
};
struct InspectOptions {
  // Also read every tensor and report those holding NaN or infinity (one problem per tensor).
  // Reads the whole model, about as long as loading it; one tensor at a time in f32.
  bool scan_values = false;
};
// Throws not_found when the path does not exist; anything else found wrong goes to problems.
REEL_API ModelInspection inspect_model(const std::filesystem::path& path);
REEL_API ModelInspection inspect_model(const std::filesystem::path& path, const InspectOptions& options);

// ------------------------------------------------------------------------------ generating

struct Progress {
  std::string_view stage;  // "text", "denoise", "decode"
  int step = 0;            // 1-based, within the stage
  int total = 0;           // steps in the stage
  double stage_seconds = 0;
  double step_seconds = 0;
};

// A live preview of a denoising step (GenerateRequest::previews): the step's clean-video
// estimate x0, one frame per latent frame, through a linear latent→RGB map (one pixel per
// latent pixel; cheap, no VAE: about C·3 multiply-adds per latent pixel), or at the frame size
// through the TAEHV decoder of PipelineLoadOptions::preview_decoder. How the map is made and
// what each costs: docs/pipeline.md#live-previews.
struct Preview {
  int step = 0, total = 0;            // 1-based denoising step, steps in the stage
  int frames = 0, height = 0, width = 0;
  std::span<const uint8_t> rgb;       // RGB24 [frames, height, width, 3], valid during the call
};

class REEL_API GenerateObserver {
 public:
  virtual ~GenerateObserver() = default;
  // After each step of each stage; return false to cancel.
  virtual bool on_progress(const Progress& progress) { return true; }
  // After each denoising step when the request asks for previews (before on_progress of that
  // step); return false to cancel.
  virtual bool on_preview(const Preview& preview) { return true; }
  // Messages about how the request was adjusted (rounded sizes, ignored fields).
  virtual void on_notice(std::string_view message) {}
};

// Step caching: skip the transformer on denoising steps whose output can be predicted from the
// last one computed, reusing its transformation of the input (v − x). docs/pipeline.md#step-caching.
struct StepCacheOptions {
  // "" (off); "easycache": EasyCache's runtime transformation-rate criterion (Zhou et al.
  // 2025); "teacache": TeaCache's accumulated relative L1 change of the input (Liu et al. 2025),
  // on the model's input itself (no calibration).
  std::string method;
  float threshold = 0.0f;  // larger skips more; 0 never skips
  int warmup = 2;          // transformer calls always made at the start; the last step is always made

  // The preset `fast`: EasyCache at 0.1 (on the demo model: half the transformer calls, the
  // denoise stage 2.1× faster, 28 dB PSNR against the uncached clip; bench_step_cache).
  static StepCacheOptions fast() { return {"easycache", 0.1f, 2}; }
};

struct GenerateRequest {
  std::string prompt;           // UTF-8, at most kMaxPromptBytes
  std::string negative_prompt;  // "" is the empty prompt (diffusers' default)
  // Caller-given text embeddings [T, text_dim] or [1, T, text_dim] (f32/bf16/f16, CPU), used
  // as given (the text encoder's output is [512, text_dim] with zero rows past the prompt).
  // Undefined: encode `prompt` / `negative_prompt` with the model's text encoder.
  Tensor prompt_embeds;
  Tensor negative_embeds;

  int width = 0, height = 0;  // 0: the model's default; rounded down to info().spatial_multiple;
                              // width x height at most kMaxFramePixels
  int frames = 0;             // 0: default; T with T mod 4 != 1 becomes 4·floor(T/4) + 1
  int steps = 0;              // 0: default
  float guidance = 0.0f;      // <= 0: default; <= 1: no unconditional pass
  float guidance_2 = 0.0f;    // A14B low-noise expert; <= 0: default
  float shift = 0.0f;         // <= 0: the scheduler config's flow shift
  std::string sampler;        // registry spec ("unipc", "euler", "dpmpp_2m:...") ; "": default
  std::string schedule;       // registry spec; "": the sampler's usual schedule
  uint64_t seed = 0;
  Tensor initial_noise;       // [C, F, h, w] (or flat) latent noise; undefined: drawn from `seed`

  // Image-to-video: the first frame, resized to width × height.
  std::optional<Image> image;
  ResizeMode image_resize = ResizeMode::cover;
  // Wan 2.1 I2V: CLIP image features [N, image_dim] or [1, N, image_dim], used as given.
  // Undefined: the model's CLIP image encoder computes them from `image` (hidden_states[-2] of
  // the unresized image, as diffusers' encode_image); a model loaded without one fails with
  // unsupported.
  Tensor image_context;

  bool batch_cfg = true;           // conditional + unconditional in one batch of 2
  bool keep_float_frames = false;  // fill GenerateResult::frames
  bool previews = false;           // GenerateObserver::on_preview after every denoising step
  StepCacheOptions step_cache;     // off by default
  // One strength per LoRA of PipelineLoadOptions::loras (in that order); empty: as loaded.
  // Runtime LoRAs take any finite value; merged ones only their load strength.
  std::vector<float> lora_strengths;
  const std::atomic<bool>* cancel = nullptr;  // set from any thread to cancel
};

struct StageTime {
  std::string stage;
  int steps = 0;
  double seconds = 0;
};

struct GenerateResult {
  Video video;     // RGB24 frames
  Tensor frames;   // f32 [T, H, W, 3] in [0, 1] (diffusers' output_type "np") when asked for
  Tensor latents;  // the final latents [C, F, h, w] f32 (before de-normalisation)
  std::vector<std::string> notices;
  std::vector<StageTime> timings;
  // What actually ran.
  int width = 0, height = 0, frames_count = 0, steps = 0;
  float guidance = 0, shift = 0;
  std::string sampler, schedule;
  uint64_t seed = 0;
  int transformer_calls = 0;  // guided model evaluations made (CFG pairs count once; per variant)
  int skipped_calls = 0;      // evaluations step caching replaced (per variant: each caches alone)
};

class REEL_API Pipeline {
 public:
  struct Impl;

  // Throws not_found (naming the missing folder, file or component), bad_format (a file that
  // is not what it claims), unsupported (pickle checkpoints: names the safetensors files to
  // use; variants reel does not run) or invalid_argument (contradicting options).
  static Pipeline load(const PipelineLoadOptions& options);

  const PipelineInfo& info() const;

  // Runs one generation. Throws invalid_argument naming the field that cannot work,
  // unsupported (e.g. Wan 2.1 I2V without image_context or an image encoder), cancelled,
  // out_of_memory.
  GenerateResult generate(const GenerateRequest& request, GenerateObserver* observer = nullptr) const;

  // Variants: `request` once per seed (request.seed is not used), the transformer calls of
  // `batch` variants at a time batched together (2·batch items with CFG): faster per variant
  // than one generate() each, at the memory of a larger batch. 0: as many as 80 % of the free
  // memory of the model's device holds at an upper estimate of a variant's activations
  // (DeviceMemory::available_bytes; all when it cannot tell), with a notice when fewer than
  // all. Each result is what generate() gives with that seed, to the GEMM's rounding (relative
  // L2 <= 1e-5, the bound of batched against separate CFG). With request.step_cache each
  // variant caches on its own (its calls and skips in its result). request.initial_noise must
  // be undefined. The observer sees one run: text, encode, one "denoise" stage over every
  // group's steps (previews of the first variant of each group), then one "decode" stage per
  // variant. At most kMaxVariants seeds.
  std::vector<GenerateResult> generate_variants(const GenerateRequest& request, std::span<const uint64_t> seeds,
                                                GenerateObserver* observer = nullptr, int batch = 0) const;

  // The text encoder's prompt embeddings, [B, 512, text_dim] f32, rows past each prompt zero.
  // Throws invalid_argument when the model has no text encoder or tokenizer.
  Tensor encode_prompts(std::span<const std::string> prompts) const;


 private:
  friend class VideoSession;  // runs the pipeline's stages window by window
  explicit Pipeline(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }
  std::shared_ptr<const Impl> impl_;
};

}  // namespace reel
