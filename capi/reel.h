/* reel — text/image-to-video with latent diffusion transformers. The whole C contract.
 *
 *   #include <reel.h>
 *
 *   reel_model_params mp;
 *   reel_model_params_init(&mp);
 *   mp.path = "Wan2.1-T2V-1.3B-Diffusers";            // a diffusers model folder
 *   reel_model* model = NULL;
 *   if (reel_model_load(&mp, &model) != REEL_OK) {
 *     fprintf(stderr, "load failed: %s\n", reel_last_error());
 *     return 1;
 *   }
 *   reel_generate_params gp;
 *   reel_generate_params_init(&gp);
 *   gp.prompt = "a red panda climbing a tree, cinematic";
 *   gp.width = 832; gp.height = 480; gp.frames = 33; gp.seed = 42;
 *   reel_video* video = NULL;
 *   if (reel_generate(model, &gp, &video) == REEL_OK) {
 *     reel_video_save(video, "panda.mp4");
 *     reel_video_free(video);
 *   }
 *   reel_model_free(model);
 *
 * Conventions
 * - Every fallible call returns reel_status; on failure reel_last_error() gives a message
 *   (UTF-8) naming the cause, valid until the next reel call on the same thread. On failure,
 *   out-parameters are left untouched. No C++ exception and no abort crosses this boundary.
 * - Params structs start with `struct_size`, set by their *_init function; fields are only
 *   ever appended, so a program compiled against an older header keeps working.
 * - The library frees what it allocates: reel_video_free, reel_model_free. *_free(NULL) is a
 *   no-op.
 * - Strings are UTF-8 and NUL-terminated; the library copies what it keeps.
 * - Thread safety: a reel_model may be shared by threads; reel_generate uses it read-only, so
 *   several generations may run on one model at once (each needs its own memory). A reel_video
 *   is owned by one thread at a time. All listing functions are thread-safe.
 */
#ifndef REEL_H
#define REEL_H

#include <stddef.h>
#include <stdint.h>

#include "reel/attention_params.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(REEL_BUILDING_LIBRARY)
#    define REEL_C_API __declspec(dllexport)
#  else
#    define REEL_C_API __declspec(dllimport)
#  endif
#else
#  define REEL_C_API __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------- version */

#define REEL_VERSION_MAJOR 0
#define REEL_VERSION_MINOR 1
#define REEL_VERSION_PATCH 0
#define REEL_VERSION_NUMBER (REEL_VERSION_MAJOR * 10000 + REEL_VERSION_MINOR * 100 + REEL_VERSION_PATCH)

/* The version of the library actually linked (compare with REEL_VERSION_NUMBER). */
REEL_C_API uint32_t reel_version_number(void);
REEL_C_API const char* reel_version_string(void); /* "0.1.0" */
/* Usable CUDA GPUs ("cuda:0" .. "cuda:N-1" for reel_model_params.device): 0 when the library
 * was built without CUDA or the machine has no GPU or driver. Never fails. */
REEL_C_API int32_t reel_cuda_device_count(void);

/* ---------------------------------------------------------------- status and errors */

typedef enum reel_status {
  REEL_OK = 0,
  REEL_ERROR_INVALID_ARGUMENT = 1, /* a NULL, a wrong size, an impossible value */
  REEL_ERROR_NOT_FOUND = 2,        /* a file, tensor, kernel, sampler or schedule that does not exist */
  REEL_ERROR_IO = 3,               /* the operating system refused a read or a write */
  REEL_ERROR_BAD_FORMAT = 4,       /* a truncated, hostile or foreign file */
  REEL_ERROR_UNSUPPORTED = 5,      /* valid, but this build or device cannot do it */
  REEL_ERROR_OUT_OF_MEMORY = 6,
  REEL_ERROR_CANCELLED = 7,        /* the progress callback asked to stop */
  REEL_ERROR_INTERNAL = 8,         /* a bug in reel */
  REEL_ERROR_NUMERICAL = 9         /* NaN or infinity appeared (corrupt weights, an overflow); the
                                      message names the stage and step where it first did */
} reel_status;

/* A static English name for a status ("invalid argument"). Never NULL. */
REEL_C_API const char* reel_status_string(reel_status status);
/* The message of the last failed call on this thread ("" when none). Never NULL. */
REEL_C_API const char* reel_last_error(void);
/* Diagnostics that are not errors (FFmpeg's own warnings about a damaged video): off by
 * default, nothing is printed from inside reel. `fn` receives each message (one line) with
 * `user`, on the thread that produced it; NULL turns them off. */
typedef void (*reel_log_fn)(const char* message, void* user);
REEL_C_API void reel_set_log_callback(reel_log_fn fn, void* user);

/* ---------------------------------------------------------------- models */

typedef struct reel_model reel_model;

/* ---------------------------------------------------------------- sequence parallel
 * Several processes (MPI ranks) make one video together (docs/distributed.md): each loads the
 * model with the same communicator and makes the same calls; the transformer's tokens are
 * split over the ranks. Rank 0 decodes: its video holds the frames, the other ranks' videos
 * have none (reel_video_frame_count 0). A failure or cancel on any rank ends the call on every
 * rank with the same status.
 *
 *   reel_communicator* world;
 *   if (reel_communicator_mpi_world(&world) != REEL_OK) ...   // or reel_mpi.h with an MPI_Comm
 *   mp.communicator = world;  mp.ulysses = 0;  mp.ring = 0;   // 0, 0: reel chooses the split
 *   reel_model_load(&mp, &model);  reel_communicator_free(world);   // the model keeps its own reference
 */
typedef struct reel_communicator reel_communicator;
/* MPI_COMM_WORLD; MPI is initialised unless the program did it (and then finalised at exit).
 * UNSUPPORTED in a build without MPI. */
REEL_C_API reel_status reel_communicator_mpi_world(reel_communicator** out);
/* An MPI_Comm given by its bytes; use reel_communicator_from_mpi() of reel_mpi.h. */
REEL_C_API reel_status reel_communicator_from_mpi_handle(const void* handle, size_t handle_size, reel_communicator** out);
REEL_C_API int32_t reel_communicator_rank(const reel_communicator* comm); /* -1 for NULL */
REEL_C_API int32_t reel_communicator_size(const reel_communicator* comm); /* -1 for NULL */
REEL_C_API void reel_communicator_free(reel_communicator* comm);

typedef enum reel_precision {
  REEL_PRECISION_DEFAULT = 0, /* bf16 weights and activations where the model allows (fast) */
  REEL_PRECISION_BF16 = 1,
  REEL_PRECISION_F32 = 2      /* everything in f32 (slow; for comparisons) */
} reel_precision;

typedef struct reel_model_params {
  uint32_t struct_size;
  /* A diffusers model folder (model_index.json, transformer/, vae/, text_encoder/,
   * tokenizer/, scheduler/). May be NULL when the component paths below are all given. */
  const char* path;
  /* Explicit components (ComfyUI style); each overrides the folder's. NULL: from `path`. */
  const char* transformer_path;   /* safetensors file or folder */
  const char* vae_path;           /* safetensors file or folder */
  const char* text_encoder_path;  /* safetensors file or folder; NULL and no folder: prompts must come as embeddings */
  const char* tokenizer_path;     /* spiece.model or a folder holding it */
  const char* device;             /* "cpu" (default), "cuda", "cuda:1" */
  int32_t threads;                /* CPU threads; 0: all hardware threads; at most 4x the
                                     hardware threads (at least 64), else REEL_ERROR_INVALID_ARGUMENT */
  reel_precision precision;
  /* The low-noise expert of Wan 2.2 A14B (folder: transformer_2/); NULL: from `path`. */
  const char* transformer_2_path;
  /* Where the umT5 text encoder runs: NULL or "cpu" (default; keeps its weights, ~11 GB for
   * umT5-XXL in bf16, off the GPU), or a device as for `device`. */
  const char* text_encoder_device;
  /* The transformer's attention kernel by name (see reel_attention_kernel_count / reel-cli
   * kernels), e.g. "cudnn"; NULL: the best supported one for each call. */
  const char* attention_kernel;
  /* Non-zero: on a GPU, keep the transformer in host memory and upload it for each request's
   * denoising, freeing it before the VAE decodes (lower peak GPU memory, one upload per request). */
  int32_t offload_transformer;
  /* Wan 2.1 I2V: the CLIP image encoder (folder or safetensors file; its preprocessing is the
   * preprocessor_config.json inside that folder or the image_processor/ beside it, else CLIP's
   * defaults); NULL: the folder's image_encoder/ and image_processor/. Without one, such models
   * cannot generate through this API (it has no CLIP feature input). */
  const char* image_encoder_path;
  /* Non-zero: use weights stored in the compute dtype in place, in their memory-mapped files
   * (no copy, paged in lazily). The files must then not change while the model lives:
   * truncating one faults the process. 0 (default): private copies, immune to the files. */
  int32_t map_weights;
  /* LoRAs (docs/lora.md): `lora_count` safetensors files in any of the diffusers/PEFT,
   * original/ComfyUI, Kohya or full-delta (.diff) layouts, applied in order. lora_strengths:
   * NULL (all 1) or lora_count finite values; lora_experts: NULL (all REEL_LORA_BOTH) or
   * lora_count reel_lora_expert values (HIGH/LOW_NOISE only for two-expert Wan 2.2 A14B
   * models). Modules the model has no layer for are not applied and listed in the model's
   * notes (reel_model_note). */
  const char* const* lora_paths;
  const float* lora_strengths;
  const int32_t* lora_experts;
  int32_t lora_count;
  /* 0: LoRAs merged into the weights at load (fastest). Non-zero: kept as side paths whose
   * strengths each request may change (reel_generate_params.lora_strengths). */
  int32_t lora_runtime;
  /* How the transformer's block linears are held (docs/dit.md#quantised-weights): NULL, "" or
   * "compute" (the compute dtype); "q8_0" / "q4_0" / "q4_k" (quantised at load: 0.63× / 0.38× /
   * 0.38× the memory of bf16, faster products on AVX-512 VNNI CPUs); "stored" (a GGUF file's quantised tensors, any
   * type, kept as the file stores them). CPU only, else UNSUPPORTED. */
  const char* weight_type;
  /* Sequence parallel (see reel_communicator above): NULL, one process. ulysses · ring must be
   * the communicator's size and ulysses must divide the model's heads; 0 for one: chosen from
   * the other; 0 for both: as much Ulysses as the heads allow, the rest ring. Collective: every
   * rank calls reel_model_load with the same values. */
  reel_communicator* communicator;
  int32_t ulysses;
  int32_t ring;
  /* A TAEHV tiny decoder (taew2_1.safetensors for 16-channel latents, taew2_2 for Wan 2.2
   * TI2V-5B's 48; github.com/madebyollin/taehv) that draws the live previews
   * (reel_generate_params.previews) at the frame size, one frame per latent frame;
   * NULL: the fitted latent->RGB map (one pixel per latent pixel). A decoder for other
   * latents: REEL_ERROR_INVALID_ARGUMENT. */
  const char* preview_decoder_path;
} reel_model_params;

typedef enum reel_lora_expert {
  REEL_LORA_BOTH = 0,        /* every transformer */
  REEL_LORA_HIGH_NOISE = 1,  /* Wan 2.2 A14B: transformer/ only */
  REEL_LORA_LOW_NOISE = 2,   /* Wan 2.2 A14B: transformer_2/ only */
} reel_lora_expert;

REEL_C_API void reel_model_params_init(reel_model_params* params);
/* Loads and validates every component. On success *model owns them until reel_model_free.
 * Errors: NOT_FOUND (missing folder, file or component, named), BAD_FORMAT (not a model, a
 * truncated or malformed file), UNSUPPORTED (pickle checkpoints: the message names the
 * safetensors files to use; a device this build cannot use), INVALID_ARGUMENT. */
REEL_C_API reel_status reel_model_load(const reel_model_params* params, reel_model** model);
REEL_C_API void reel_model_free(reel_model* model);
/* A one-line description: detected variant, configuration, precision, device. Valid as long
 * as the model is. NULL model gives "". */
REEL_C_API const char* reel_model_describe(const reel_model* model);
/* What loading noticed: ignored tensors, absent components, LoRA modules not applied. Valid as
 * long as the model is; reel_model_note gives NULL out of range (and 0 notes for NULL). */
REEL_C_API size_t reel_model_note_count(const reel_model* model);
REEL_C_API const char* reel_model_note(const reel_model* model, size_t index);

/* ---------------------------------------------------------------- generation */

typedef struct reel_progress {
  uint32_t struct_size;
  const char* stage;      /* "text", "encode" (image-to-video: the first frame), "denoise", "decode" */
  int32_t step;           /* 1-based step within the stage */
  int32_t total;          /* steps in the stage */
  double stage_seconds;   /* time spent in the stage so far */
  double step_seconds;    /* duration of the step just finished */
  /* Denoising steps of a request with `previews` set: the step's estimate of the video,
   * RGB24 [preview_frames, preview_height, preview_width, 3] (one frame per latent frame; one
   * pixel per latent pixel, or the frame size with reel_model_params.preview_decoder_path),
   * valid during the call only; NULL otherwise. */
  const uint8_t* preview_rgb;
  int32_t preview_frames;
  int32_t preview_height;
  int32_t preview_width;
} reel_progress;

/* Called after each step of each stage. Return 0 to continue, non-zero to cancel (the call
 * then fails with REEL_ERROR_CANCELLED within one step). Called on the generating thread; the
 * progress struct and its strings are valid during the call only. */
typedef int (*reel_progress_fn)(const reel_progress* progress, void* user_data);

typedef struct reel_generate_params {
  uint32_t struct_size;
  const char* prompt;           /* UTF-8; ignored when prompt_embeds is set */
  const char* negative_prompt;  /* NULL or "": the empty prompt */

  /* Caller-supplied text embeddings (the text encoder's output), f32 row-major
   * [tokens, dim]; NULL: encode `prompt` with the model's text encoder. */
  const float* prompt_embeds;
  int64_t prompt_embeds_tokens;
  int64_t prompt_embeds_dim;
  const float* negative_embeds; /* same layout; NULL: encode negative_prompt */
  int64_t negative_embeds_tokens;

  int32_t width;   /* 0: model default; rounded down to the model's multiple (a message says so) */
  int32_t height;
  int32_t frames;  /* 0: model default; rounded to 4k+1 */
  int32_t steps;   /* 0: model default */
  float guidance;  /* classifier-free guidance scale; <= 0: model default; 1: no guidance */
  float shift;     /* flow shift; <= 0: the model's scheduler config */
  const char* sampler;   /* NULL: the model's default (UniPC); see reel_sampler_name */
  const char* schedule;  /* NULL: the sampler's default; see reel_schedule_name */
  uint64_t seed;

  /* Optional initial noise, f32 [channels, latent_frames, latent_height, latent_width]
   * (count must match exactly); NULL: drawn from `seed`. */
  const float* initial_noise;
  size_t initial_noise_count;

  /* Optional first frame (image-to-video): a PNG/JPEG path, or RGB24 pixels. */
  const char* image_path;
  const uint8_t* image_rgb;
  int32_t image_width;
  int32_t image_height;

  reel_progress_fn progress;
  void* progress_user_data;

  int32_t keep_float_frames; /* non-zero: reel_video_frames_float is available */

  float guidance_2;          /* Wan 2.2 A14B low-noise expert; <= 0: the model default */

  int32_t previews;          /* non-zero: denoising steps' progress carries preview_rgb */

  /* Step caching (docs/pipeline.md#step-caching): NULL or "" (off), "easycache" or "teacache";
   * a larger threshold skips more transformer calls (0: none). */
  const char* step_cache;
  float step_cache_threshold;

  /* NULL (0 values): the LoRA strengths the model was loaded with. Else one finite strength
   * per LoRA of reel_model_params, in order; only LoRAs loaded with lora_runtime may differ
   * from their load strength (else INVALID_ARGUMENT naming the LoRA). */
  const float* lora_strengths;
  int32_t lora_strength_count;
} reel_generate_params;

typedef struct reel_video reel_video;

REEL_C_API void reel_generate_params_init(reel_generate_params* params);
/* Runs one generation. Errors: INVALID_ARGUMENT (the message names the field), UNSUPPORTED
 * (e.g. a Wan 2.1 I2V model loaded without its CLIP image encoder; a first frame for a
 * text-only model), NOT_FOUND (unknown sampler or schedule, missing image file), CANCELLED,
 * OUT_OF_MEMORY. Sizes and frame counts the model cannot use are rounded; the video's notices
 * say so (reel_video_notice). */
REEL_C_API reel_status reel_generate(reel_model* model, const reel_generate_params* params, reel_video** video);
/* Variants: the request once per seed (params->seed is not used, initial_noise must be NULL; count in
 * [1, 256]), their transformer calls batched `batch` variants at a time (0: as many as the free memory of the
 * model's device holds; a notice on each video says when that is fewer than all). Each
 * video is what reel_generate gives with that seed (to the batched GEMM's rounding). `videos`
 * is an array of `count` pointers the call fills, each freed with reel_video_free; on any
 * error every entry is NULL. Progress: one run (the denoise stage counts every group's steps;
 * previews show the first variant of each group; one decode stage per variant). */
REEL_C_API reel_status reel_generate_variants(reel_model* model, const reel_generate_params* params,
                                              const uint64_t* seeds, int32_t count, int32_t batch,
                                              reel_video** videos);

/* ---------------------------------------------------------------- videos */

REEL_C_API int32_t reel_video_width(const reel_video* video);
REEL_C_API int32_t reel_video_height(const reel_video* video);
REEL_C_API int32_t reel_video_frame_count(const reel_video* video);
REEL_C_API double reel_video_fps(const reel_video* video);
/* RGB24 pixels, [frames][height][width][3]; valid until reel_video_free. */
REEL_C_API const uint8_t* reel_video_frames_rgb(const reel_video* video);
/* f32 RGB in [0, 1], same layout; NULL unless keep_float_frames was set. */
REEL_C_API const float* reel_video_frames_float(const reel_video* video);
/* Writes by extension: .mp4 (H.264) and .webm (VP9) when built with FFmpeg, .y4m, .png
 * (a folder of frames when the path ends in '/'). Nothing half-written is left on failure. */
REEL_C_API reel_status reel_video_save(const reel_video* video, const char* path);
/* What reel_video_save would refuse before it has frames (extension, a format this build lacks,
 * a missing or read-only folder, a name too long): call it before a long generation. */
REEL_C_API reel_status reel_video_check_path(const char* path);
/* Builds a video from caller pixels (RGB24 [frames][height][width][3]), e.g. to save frames. */
REEL_C_API reel_status reel_video_create(const uint8_t* rgb, int32_t width, int32_t height, int32_t frames,
                                         double fps, reel_video** video);
REEL_C_API void reel_video_free(reel_video* video);
/* Messages about how the request was adjusted (rounded sizes and frame counts, ignored
 * fields), for a generated video; 0 / NULL otherwise. Valid until reel_video_free. */
REEL_C_API size_t reel_video_notice_count(const reel_video* video);
REEL_C_API const char* reel_video_notice(const reel_video* video, size_t index);

/* ---------------------------------------------------------------- attention kernels */

/* Zeroes the struct and sets struct_size (then fill dtype, device, buffers, sizes, strides, scale). */
REEL_C_API void reel_attention_params_init(reel_attention_params* params);
/* Every registered attention kernel (CPU first, then CUDA when built with it). */
REEL_C_API size_t reel_attention_kernel_count(void);
/* Name and one-line description of kernel i; NULL when i is out of range. */
REEL_C_API const char* reel_attention_kernel_name(size_t index);
REEL_C_API const char* reel_attention_kernel_description(size_t index);
/* REEL_OK when `kernel` (NULL: the best one) can run these params; otherwise
 * REEL_ERROR_UNSUPPORTED / NOT_FOUND / INVALID_ARGUMENT with the reason in reel_last_error(). */
REEL_C_API reel_status reel_attention_supports(const char* kernel, const reel_attention_params* params);
/* Runs one kernel (NULL: the best supported one) on caller buffers. */
REEL_C_API reel_status reel_attention_run(const char* kernel, const reel_attention_params* params);

/* ---------------------------------------------------------------- samplers and schedules */

REEL_C_API size_t reel_sampler_count(void);
REEL_C_API const char* reel_sampler_name(size_t index);  /* NULL when out of range */
REEL_C_API const char* reel_sampler_description(size_t index);  /* NULL when out of range */
REEL_C_API size_t reel_schedule_count(void);
REEL_C_API const char* reel_schedule_name(size_t index); /* NULL when out of range */
REEL_C_API const char* reel_schedule_description(size_t index); /* NULL when out of range */

/* ---------------------------------------------------------------- endless video (sessions)
 *
 * A session extends a clip chunk by chunk: each window of latent frames is denoised while the
 * last K latent frames of the previous window are held fixed, and the new frames are decoded
 * through the VAE's causal cache and returned as they come, in bounded memory. Write them with
 * a reel_video_writer as they arrive. docs/extension.md says what to expect at the seams.
 *
 *   reel_generate_params gp;  reel_generate_params_init(&gp);
 *   gp.prompt = "walk down the corridor"; gp.frames = 33; gp.seed = 7;   // the window
 *   reel_session_params sp;   reel_session_params_init(&sp);
 *   sp.context_frames = 2;
 *   sp.prompt_schedule = "0s walk down the corridor\n6s open the door\n";
 *   reel_session* s = NULL;
 *   if (reel_session_create(model, &gp, &sp, &s) != REEL_OK) { ... reel_last_error() ... }
 *   reel_video_writer* w = NULL;
 *   reel_video_writer_open("corridor.mp4", reel_session_width(s), reel_session_height(s),
 *                          reel_session_fps(s), &w);
 *   for (int32_t k = 0; k < reel_session_chunks_for_seconds(s, 60.0); ++k) {
 *     reel_video* chunk = NULL;
 *     if (reel_session_next(s, NULL, &chunk) != REEL_OK) break;
 *     reel_video_writer_write(w, chunk);
 *     reel_video_free(chunk);
 *   }
 *   reel_video_writer_close(w);   // renamed into place only now
 *   reel_video_writer_free(w);
 *   reel_session_free(s);
 *
 * Thread safety: a session or a writer is used by one thread at a time; several sessions may
 * share a model. A session keeps what it needs of the model: the model may be freed first. */

typedef struct reel_session reel_session;

typedef enum reel_context_conditioning {
  REEL_CONTEXT_AUTO = 0,        /* per-token for models trained with it (Wan 2.2 TI2V), else replacement */
  REEL_CONTEXT_PER_TOKEN = 1,   /* context latents clean, their tokens at timestep 0 */
  REEL_CONTEXT_REPLACEMENT = 2  /* context latents noised to the current level at every step */
} reel_context_conditioning;

typedef struct reel_session_params {
  uint32_t struct_size;
  int32_t context_frames;  /* K latent frames carried into each next window; 0: 1 */
  reel_context_conditioning conditioning;
  /* A prompt schedule, one "<start> <prompt>" per line, start a chunk index ("3") or seconds
   * ("7.5s"); chunks before its first entry use the generate params' prompt. NULL: none. */
  const char* prompt_schedule;
  /* Continue an existing clip: a video file (.y4m; .mp4/.webm/.mkv/.mov with FFmpeg; a folder
   * of PNG/JPEG frames) or frames in memory. Its last 4(K-1)+1 frames become the first window's
   * context; its frames are not repeated in the output. NULL: a new clip. */
  const char* source_path;
  const reel_video* source;
} reel_session_params;

REEL_C_API void reel_session_params_init(reel_session_params* params);
/* `generate` describes the window: prompt (or embeddings), negative prompt, size, frames per
 * window (4k+1), steps, guidance, shift, sampler, schedule, seed, keep_float_frames, the
 * progress callback (called for every chunk's stages), and a first image (TI2V) for a new
 * clip. Everything is checked here. Errors: INVALID_ARGUMENT (naming the field),
 * UNSUPPORTED (Wan 2.1/2.2 I2V models), NOT_FOUND / BAD_FORMAT / IO (the source file). */
REEL_C_API reel_status reel_session_create(reel_model* model, const reel_generate_params* generate,
                                           const reel_session_params* params, reel_session** session);
/* Generates and decodes the next chunk: *chunk gets its new frames (for windows of F latent
 * frames: 4(F-1)+1 in a new clip's first chunk, 4(F-K) in each later one), with float frames
 * when asked for. `prompt` (NULL: the scheduled one) is used for this chunk only. CANCELLED
 * when the progress callback stops it: a chunk stopped while denoising is redone by the next
 * call; one stopped while decoding is finished by the next call, which returns all its frames. */
REEL_C_API reel_status reel_session_next(reel_session* session, const char* prompt, reel_video** chunk);
REEL_C_API void reel_session_free(reel_session* session);
REEL_C_API int32_t reel_session_width(const reel_session* session);   /* 0 for NULL */
REEL_C_API int32_t reel_session_height(const reel_session* session);
REEL_C_API double reel_session_fps(const reel_session* session);
REEL_C_API int32_t reel_session_chunks_done(const reel_session* session);
REEL_C_API int64_t reel_session_frames_done(const reel_session* session);
/* Frames the first n chunks give (-1 for a NULL session or a negative n); the fewest chunks
 * that give at least `seconds` of video (-1 for a NULL session, or a duration that is not a
 * number in [0, 1e7] seconds). */
REEL_C_API int64_t reel_session_frames_after(const reel_session* session, int32_t chunks);
REEL_C_API int32_t reel_session_chunks_for_seconds(const reel_session* session, double seconds);

/* ---------------------------------------------------------------- streaming video files */

typedef struct reel_video_writer reel_video_writer;

/* Opens a video file to be written frame by frame, in the format its extension names (as
 * reel_video_save). Nothing appears at `path` before reel_video_writer_close. */
REEL_C_API reel_status reel_video_writer_open(const char* path, int32_t width, int32_t height, double fps,
                                              reel_video_writer** writer);
/* Appends every frame of `frames` (same width and height). */
REEL_C_API reel_status reel_video_writer_write(reel_video_writer* writer, const reel_video* frames);
/* Finishes the file and renames it into place; the writer then takes no more frames. */
REEL_C_API reel_status reel_video_writer_close(reel_video_writer* writer);
REEL_C_API int64_t reel_video_writer_frame_count(const reel_video_writer* writer);
/* Frees the writer; an unclosed file is removed (nothing half-written is left). */
REEL_C_API void reel_video_writer_free(reel_video_writer* writer);

#ifdef __cplusplus
}
#endif

#endif /* REEL_H */
