/* C API generation on the repository's tiny model, compiled as C99: a run with progress,
 * float frames and saving; rounding notices; a cancelled run; caller noise and embeddings;
 * every bad field (NULLs, zero/negative/huge sizes, unknown names, wrong counts) giving the
 * right status and a message that names it; Wan 2.1 I2V with its CLIP image encoder; live
 * previews in the progress callback (also through a TAEHV decoder); variants. */
#include <math.h>

#include "capi_test.h"

typedef struct {
  int calls;
  int cancel_at_denoise_step; /* 0: never */
  char last_stage[16];
  int last_step, last_total;
  int stages_seen; /* bit 0 text, 1 denoise, 2 decode */
  int previews;    /* denoising steps that carried a preview */
  int preview_elsewhere; /* previews outside the denoise stage (must stay 0) */
} progress_log;

static int on_progress(const reel_progress* p, void* user) {
  progress_log* log = (progress_log*)user;
  ++log->calls;
  CHECK(p->struct_size >= sizeof *p);
  CHECK(p->step >= 1 && p->step <= p->total && p->step_seconds >= 0.0 && p->stage_seconds >= 0.0);
  snprintf(log->last_stage, sizeof log->last_stage, "%s", p->stage);
  log->last_step = p->step;
  log->last_total = p->total;
  if (strcmp(p->stage, "text") == 0) log->stages_seen |= 1;
  if (strcmp(p->stage, "denoise") == 0) log->stages_seen |= 2;
  if (strcmp(p->stage, "decode") == 0) log->stages_seen |= 4;
  if (p->preview_rgb) {
    if (strcmp(p->stage, "denoise") != 0) ++log->preview_elsewhere;
    /* 64x48 pixels, 5 frames: 2 latent frames of 6x8 (the tiny model's x8 VAE) */
    CHECK(p->preview_frames == 2 && p->preview_height == 6 && p->preview_width == 8);
    ++log->previews;
  }
  return log->cancel_at_denoise_step > 0 && strcmp(p->stage, "denoise") == 0 && p->step >= log->cancel_at_denoise_step;
}

static void small_request(reel_generate_params* gp) {
  reel_generate_params_init(gp);
  gp->prompt = "a red fox runs through the snow";
  gp->negative_prompt = "blurred";
  gp->width = 64;
  gp->height = 48;
  gp->frames = 5;
  gp->steps = 2;
  gp->seed = 42;
}

static void generates_and_saves(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = NULL;
  progress_log log;
  size_t i, n;
  const float* f;
  const uint8_t* rgb;
  int in_range = 1;
  memset(&log, 0, sizeof log);
  small_request(&gp);
  gp.progress = on_progress;
  gp.progress_user_data = &log;
  gp.keep_float_frames = 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  if (!video) return;
  CHECK(reel_video_width(video) == 64 && reel_video_height(video) == 48 && reel_video_frame_count(video) == 5);
  CHECK(reel_video_fps(video) == 16.0);
  CHECK(reel_video_notice_count(video) == 0);
  CHECK(log.stages_seen == 7);
  CHECK(strcmp(log.last_stage, "decode") == 0 && log.last_step == 2 && log.last_total == 2);
  f = reel_video_frames_float(video);
  rgb = reel_video_frames_rgb(video);
  CHECK(f != NULL && rgb != NULL);
  n = (size_t)5 * 48 * 64 * 3;
  for (i = 0; f && rgb && i < n; ++i) {
    if (!(f[i] >= 0.0f && f[i] <= 1.0f)) in_range = 0;
    if (abs((int)rgb[i] - (int)lrintf(f[i] * 255.0f)) > 1) in_range = 0;
  }
  CHECK(in_range);
  CHECK_STATUS(reel_video_save(video, REEL_TEST_TMP_DIR "/capi_generated.y4m"), REEL_OK, NULL);
  reel_video_free(video);

  /* The same seed gives the same video; the noise from the caller replaces the seed. */
  {
    reel_video *a = NULL, *b = NULL;
    small_request(&gp);
    CHECK_STATUS(reel_generate(model, &gp, &a), REEL_OK, NULL);
    CHECK_STATUS(reel_generate(model, &gp, &b), REEL_OK, NULL);
    CHECK(a && b && memcmp(reel_video_frames_rgb(a), reel_video_frames_rgb(b), n) == 0);
    reel_video_free(b);
    b = NULL;
    gp.seed = 43;
    CHECK_STATUS(reel_generate(model, &gp, &b), REEL_OK, NULL);
    CHECK(a && b && memcmp(reel_video_frames_rgb(a), reel_video_frames_rgb(b), n) != 0);
    reel_video_free(a);
    reel_video_free(b);
  }
}

/* Previews: every denoising step's progress call carries the picture, only when asked for. */
static void shows_previews(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = NULL;
  progress_log log;
  memset(&log, 0, sizeof log);
  small_request(&gp);
  gp.progress = on_progress;
  gp.progress_user_data = &log;
  gp.previews = 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  CHECK(log.previews == 2 && log.preview_elsewhere == 0);
  reel_video_free(video);
  video = NULL;
  memset(&log, 0, sizeof log);
  gp.previews = 0;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  CHECK(log.previews == 0 && log.calls > 0);
  reel_video_free(video);
}

/* Previews through a TAEHV decoder (tests/fixtures/taehv/c16: 16-channel latents): frame-size
 * pictures, one per latent frame; one for 48-channel latents is refused at load, naming it. */
static int on_taehv_preview(const reel_progress* p, void* user) {
  int* seen = (int*)user;
  if (p->preview_rgb) {
    CHECK(p->preview_frames == 2 && p->preview_height == 48 && p->preview_width == 64);
    ++*seen;
  }
  return 0;
}

static void taehv_previews(void) {
  reel_model_params mp;
  reel_model* model = NULL;
  reel_generate_params gp;
  reel_video* video = NULL;
  char path[4096];
  int seen = 0;
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.threads = 2;
  snprintf(path, sizeof path, "%s/taehv/c16.safetensors", REEL_FIXTURES_DIR);
  mp.preview_decoder_path = path;
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  if (!model) return;
  small_request(&gp);
  gp.progress = on_taehv_preview;
  gp.progress_user_data = &seen;
  gp.previews = 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  CHECK(seen == 2);
  reel_video_free(video);
  reel_model_free(model);
  model = NULL;
  snprintf(path, sizeof path, "%s/taehv/c48.safetensors", REEL_FIXTURES_DIR);
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_ERROR_INVALID_ARGUMENT, "48-channel");
  CHECK(model == NULL);
}

/* Variants: each video equals reel_generate with its seed; bad counts and NULLs are named. */
static void generates_variants(reel_model* model) {
  reel_generate_params gp;
  const uint64_t seeds[3] = {3, 4, 5};
  reel_video* videos[3] = {NULL, NULL, NULL};
  reel_video* alone = NULL;
  int i;
  small_request(&gp);
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 3, 2, videos), REEL_OK, NULL);
  for (i = 0; i < 3; ++i) {
    CHECK(videos[i] != NULL);
    if (!videos[i]) continue;
    gp.seed = seeds[i];
    CHECK_STATUS(reel_generate(model, &gp, &alone), REEL_OK, NULL);
    if (alone) {
      const size_t n = (size_t)reel_video_width(alone) * (size_t)reel_video_height(alone) * 3u *
                       (size_t)reel_video_frame_count(alone);
      CHECK(reel_video_frame_count(videos[i]) == reel_video_frame_count(alone));
      CHECK(memcmp(reel_video_frames_rgb(videos[i]), reel_video_frames_rgb(alone), n) == 0);
    }
    reel_video_free(alone);
    alone = NULL;
    reel_video_free(videos[i]);
    videos[i] = NULL;
  }
  /* step caching: a method reel knows runs; one it does not is named */
  gp.step_cache = "teacache";
  gp.step_cache_threshold = 1.0f;
  CHECK_STATUS(reel_generate(model, &gp, &alone), REEL_OK, NULL);
  reel_video_free(alone);
  alone = NULL;
  /* variants cache each on their own */
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 3, 0, videos), REEL_OK, NULL);
  CHECK(videos[0] != NULL && videos[2] != NULL && reel_video_frame_count(videos[2]) > 0);
  for (i = 0; i < 3; ++i) {
    reel_video_free(videos[i]);
    videos[i] = NULL;
  }
  gp.step_cache = "magic";
  CHECK_STATUS(reel_generate(model, &gp, &alone), REEL_ERROR_INVALID_ARGUMENT, "step_cache.method");
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 3, 0, videos), REEL_ERROR_INVALID_ARGUMENT, "step_cache.method");
  gp.step_cache = NULL;
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 0, 0, videos), REEL_ERROR_INVALID_ARGUMENT, "count");
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 3, -1, videos), REEL_ERROR_INVALID_ARGUMENT, "batch");
  CHECK_STATUS(reel_generate_variants(model, &gp, NULL, 3, 0, videos), REEL_ERROR_INVALID_ARGUMENT, "seeds");
  CHECK_STATUS(reel_generate_variants(model, &gp, seeds, 3, 0, NULL), REEL_ERROR_INVALID_ARGUMENT, "videos");
  CHECK(videos[0] == NULL && videos[1] == NULL && videos[2] == NULL);
}

static void rounds_with_notices(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = NULL;
  size_t i;
  int saw_width = 0, saw_frames = 0;
  small_request(&gp);
  gp.width = 70;
  gp.frames = 7;
  gp.steps = 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  if (!video) return;
  CHECK(reel_video_width(video) == 64 && reel_video_frame_count(video) == 5);
  CHECK(reel_video_notice_count(video) == 2);
  for (i = 0; i < reel_video_notice_count(video); ++i) {
    if (strstr(reel_video_notice(video, i), "width 70 -> 64")) saw_width = 1;
    if (strstr(reel_video_notice(video, i), "frames 7 -> 5")) saw_frames = 1;
  }
  CHECK(saw_width && saw_frames);
  CHECK(reel_video_notice(video, 2) == NULL);
  CHECK(reel_video_frames_float(video) == NULL); /* not asked for */
  reel_video_free(video);
}

static void cancels(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = (reel_video*)0x1;
  progress_log log;
  memset(&log, 0, sizeof log);
  small_request(&gp);
  gp.steps = 6;
  gp.progress = on_progress;
  gp.progress_user_data = &log;
  log.cancel_at_denoise_step = 2;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_CANCELLED, "cancel");
  CHECK(video == (reel_video*)0x1);
  CHECK(strcmp(log.last_stage, "denoise") == 0 && log.last_step == 2); /* stopped within one step */
}

static void caller_noise_and_embeddings(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = (reel_video*)0x1;
  /* 64x48x5 → latents [16, 2, 6, 8] = 1536 values; text_dim of the tiny model is 32. */
  static float noise[16 * 2 * 6 * 8], embeds[7 * 32], neg[3 * 32];
  size_t i;
  for (i = 0; i < sizeof noise / sizeof *noise; ++i) noise[i] = (float)sin(0.37 * (double)i);
  for (i = 0; i < sizeof embeds / sizeof *embeds; ++i) embeds[i] = (float)cos(0.11 * (double)i);
  for (i = 0; i < sizeof neg / sizeof *neg; ++i) neg[i] = (float)sin(0.05 * (double)i);
  small_request(&gp);
  gp.prompt = NULL;
  gp.prompt_embeds = embeds;
  gp.prompt_embeds_tokens = 7;
  gp.prompt_embeds_dim = 32;
  gp.negative_embeds = neg;
  gp.negative_embeds_tokens = 3;
  gp.initial_noise = noise;
  gp.initial_noise_count = sizeof noise / sizeof *noise;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
  if (video != (reel_video*)0x1) reel_video_free(video);

  video = (reel_video*)0x1;
  gp.initial_noise_count -= 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "initial_noise");
  gp.initial_noise_count += 1;
  /* Non-finite inputs are refused before any work (they once gave a black video and REEL_OK). */
  noise[17] = (float)NAN;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "initial_noise holds a non-finite value");
  noise[17] = 0.5f;
  embeds[3] = (float)INFINITY;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "prompt_embeds holds a non-finite value");
  embeds[3] = 0.5f;
  gp.prompt_embeds_dim = 31;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "prompt_embeds");
  gp.prompt_embeds_dim = 32;
  gp.prompt_embeds_tokens = 0;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "prompt_embeds");
  gp.prompt_embeds_tokens = (int64_t)1 << 40;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "prompt_embeds");
  CHECK(video == (reel_video*)0x1);
}

static void bad_fields(reel_model* model) {
  reel_generate_params gp;
  reel_video* video = (reel_video*)0x1;
  const uint8_t pixel[3] = {1, 2, 3};

  small_request(&gp);
  gp.prompt = NULL;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "prompt");
  small_request(&gp);
  gp.width = -64;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "width");
  small_request(&gp);
  gp.height = 8; /* below the model's multiple of 16 */
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "height 8");
  small_request(&gp);
  gp.width = 2000000000;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "over reel's limit");
  small_request(&gp);
  gp.frames = -1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "frames");
  small_request(&gp);
  gp.frames = 2147483647;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "RoPE");
  small_request(&gp);
  gp.steps = -2;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "steps");
  small_request(&gp);
  gp.steps = 1000000;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "steps");
  small_request(&gp);
  gp.guidance = (float)NAN;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "guidance");
  small_request(&gp);
  gp.sampler = "no_such_sampler";
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_NOT_FOUND, "no_such_sampler");
  small_request(&gp);
  gp.schedule = "no_such_schedule";
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_NOT_FOUND, "no_such_schedule");
  small_request(&gp);
  gp.sampler = "unipc:order=banana";
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "order");
  small_request(&gp);
  gp.image_path = REEL_TEST_TMP_DIR "/no_such_image.png"; /* refused before it is looked for */
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_UNSUPPORTED, "text-to-video");
  small_request(&gp);
  gp.image_rgb = pixel;
  gp.image_width = 1;
  gp.image_height = 1;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_UNSUPPORTED, "text-to-video");
  gp.image_width = 0;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "image_width");
  gp.image_path = "x.png";
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "image_path");
  small_request(&gp);
  gp.initial_noise_count = 10;
  CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "initial_noise");
  CHECK(video == (reel_video*)0x1);
}

/* Wan 2.1 I2V through the C API: the first frame's CLIP features come from the model's image
 * encoder (the API has no feature input), given by image_encoder_path or found in the folder. */
static void wan21_i2v_encodes_its_first_frame(void) {
  char i2v[1024], transformer[1024], encoder[1024], vae[1024], text_encoder[1024], tokenizer[1024], image[1024];
  reel_model_params mp;
  reel_model* model = NULL;
  reel_generate_params gp;
  reel_video* video = NULL;
  snprintf(i2v, sizeof i2v, "%s/pipeline/tiny-wan-i2v", REEL_FIXTURES_DIR);
  snprintf(image, sizeof image, "%s/pipeline/i2v_clip_first_frame.png", REEL_FIXTURES_DIR);
  reel_model_params_init(&mp);
  mp.transformer_path = capi_path(transformer, sizeof transformer, i2v, "transformer");
  mp.vae_path = capi_path(vae, sizeof vae, capi_tiny_model(), "vae");
  mp.text_encoder_path = capi_path(text_encoder, sizeof text_encoder, capi_tiny_model(), "text_encoder");
  mp.tokenizer_path = capi_path(tokenizer, sizeof tokenizer, capi_tiny_model(), "tokenizer");
  mp.threads = 2;
  reel_generate_params_init(&gp);
  gp.prompt = "a bird flies over the city at night";
  gp.image_path = image;
  gp.width = 32;
  gp.height = 32;
  gp.frames = 5;
  gp.steps = 2;
  gp.seed = 7;

  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  if (model) CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_UNSUPPORTED, "image_encoder");
  reel_model_free(model);
  model = NULL;

  mp.image_encoder_path = capi_path(encoder, sizeof encoder, i2v, "image_encoder");
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  if (model) {
    CHECK(strstr(reel_model_describe(model), "CLIP image encoder") != NULL);
    CHECK_STATUS(reel_generate(model, &gp, &video), REEL_OK, NULL);
    if (video) {
      CHECK(reel_video_width(video) == 32 && reel_video_height(video) == 32 && reel_video_frame_count(video) == 5);
      reel_video_free(video);
    }
    video = (reel_video*)0x1;
    gp.image_path = REEL_TEST_TMP_DIR "/no_such_image.png";
    CHECK_STATUS(reel_generate(model, &gp, &video), REEL_ERROR_IO, "no_such_image.png");
    CHECK(video == (reel_video*)0x1);
  }
  reel_model_free(model);
}

int main(void) {
  reel_model_params mp;
  reel_model* model = NULL;
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.threads = 2;
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  if (model) {
    generates_and_saves(model);
    shows_previews(model);
    generates_variants(model);
    rounds_with_notices(model);
    cancels(model);
    caller_noise_and_embeddings(model);
    bad_fields(model);
  }
  reel_model_free(model);
  wan21_i2v_encodes_its_first_frame();
  taehv_previews();
  return capi_finish("test_capi_generate");
}
