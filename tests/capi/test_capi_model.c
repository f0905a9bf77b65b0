/* C API model loading, compiled as C99: the tiny model loads and describes itself; missing
 * folders and files, a folder that is not a model, a file that is not a model, a truncated
 * model, pickle checkpoints, bad devices/threads/precision each give the right status and a
 * message naming the cause, and leave the output pointer untouched. LoRAs: merged and runtime,
 * strengths per request, unmapped modules in the notes, bad LoRA arguments refused. */
#include <math.h>
#include <sys/stat.h>

#include "capi_test.h"

static reel_model* const kSentinel = (reel_model*)0x1;

static void expect_load_fails(reel_model_params* mp, reel_status want, const char* word) {
  reel_model* model = kSentinel;
  CHECK_STATUS(reel_model_load(mp, &model), want, word);
  CHECK(model == kSentinel);
}

static void loads_the_tiny_model(void) {
  reel_model_params mp;
  reel_model* model = NULL;
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.threads = 2;
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  CHECK(model != NULL);
  CHECK(strstr(reel_model_describe(model), "text-to-video") != NULL);
  CHECK(strstr(reel_model_describe(model), "bf16") != NULL);
  reel_model_free(model);

  /* Explicit components (ComfyUI style), f32; an older caller's struct (without the appended
   * transformer_2_path) is still accepted. */
  {
    char t[1024], v[1024], te[1024], tok[1024];
    reel_model_params_init(&mp);
    mp.transformer_path = capi_path(t, sizeof t, capi_tiny_model(), "transformer/diffusion_pytorch_model.safetensors");
    mp.vae_path = capi_path(v, sizeof v, capi_tiny_model(), "vae");
    mp.text_encoder_path = capi_path(te, sizeof te, capi_tiny_model(), "text_encoder/model.safetensors");
    mp.tokenizer_path = capi_path(tok, sizeof tok, capi_tiny_model(), "tokenizer/spiece.model");
    mp.precision = REEL_PRECISION_F32;
    mp.struct_size = (uint32_t)offsetof(reel_model_params, transformer_2_path);
    model = NULL;
    CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
    CHECK(model != NULL && strstr(reel_model_describe(model), "f32") != NULL);
    reel_model_free(model);
  }
}

static void load_errors(void) {
  reel_model_params mp;
  char path[1024], src[1024];
  const char junk[] = "this is not a safetensors file at all";

  reel_model_params_init(&mp);
  mp.path = REEL_TEST_TMP_DIR "/no_such_model_folder";
  expect_load_fails(&mp, REEL_ERROR_NOT_FOUND, "no_such_model_folder");

  /* An empty folder is not a model folder. */
  mkdir(REEL_TEST_TMP_DIR "/capi_empty_folder", 0755);
  mp.path = REEL_TEST_TMP_DIR "/capi_empty_folder";
  expect_load_fails(&mp, REEL_ERROR_BAD_FORMAT, "model_index.json");

  /* A folder holding only pickles: the original Wan release. */
  mkdir(REEL_TEST_TMP_DIR "/capi_pickles", 0755);
  capi_write_file(REEL_TEST_TMP_DIR "/capi_pickles/Wan2.1_VAE.pth", junk, sizeof junk);
  mp.path = REEL_TEST_TMP_DIR "/capi_pickles";
  expect_load_fails(&mp, REEL_ERROR_UNSUPPORTED, "safetensors");

  /* A path that is a file. */
  mp.path = capi_path(path, sizeof path, capi_tiny_model(), "model_index.json");
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "is a file");

  /* A file that is not a model, as the transformer. */
  capi_write_file(REEL_TEST_TMP_DIR "/capi_junk.safetensors", junk, sizeof junk);
  reel_model_params_init(&mp);
  mp.transformer_path = REEL_TEST_TMP_DIR "/capi_junk.safetensors";
  mp.vae_path = capi_path(path, sizeof path, capi_tiny_model(), "vae");
  expect_load_fails(&mp, REEL_ERROR_BAD_FORMAT, "capi_junk.safetensors");

  /* A pickle given as the transformer: refused, naming what to use. */
  capi_write_file(REEL_TEST_TMP_DIR "/capi_model.pth", junk, sizeof junk);
  mp.transformer_path = REEL_TEST_TMP_DIR "/capi_model.pth";
  expect_load_fails(&mp, REEL_ERROR_UNSUPPORTED, "safetensors");

  /* A missing explicit component. */
  mp.transformer_path = REEL_TEST_TMP_DIR "/missing.safetensors";
  expect_load_fails(&mp, REEL_ERROR_NOT_FOUND, "missing.safetensors");

  /* A truncated transformer file. */
  capi_path(src, sizeof src, capi_tiny_model(), "transformer/diffusion_pytorch_model.safetensors");
  CHECK(capi_copy_file(src, REEL_TEST_TMP_DIR "/capi_truncated.safetensors", 100000) == 0);
  mp.transformer_path = REEL_TEST_TMP_DIR "/capi_truncated.safetensors";
  expect_load_fails(&mp, REEL_ERROR_BAD_FORMAT, "capi_truncated.safetensors");

  /* The VAE given as the transformer: not a Wan transformer. */
  mp.transformer_path = capi_path(src, sizeof src, capi_tiny_model(), "vae");
  expect_load_fails(&mp, REEL_ERROR_BAD_FORMAT, "not a Wan transformer");

  /* Only a transformer: the VAE is needed too. */
  mp.transformer_path = capi_path(src, sizeof src, capi_tiny_model(), "transformer");
  mp.vae_path = NULL;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "vae");

  /* Devices, threads, precision. */
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.device = "tpu";
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "tpu");
  CHECK(reel_cuda_device_count() >= 0);
  if (reel_cuda_device_count() == 0) {
    mp.device = "cuda:0";
    expect_load_fails(&mp, REEL_ERROR_UNSUPPORTED, "cuda");
  }
  mp.device = "cuda:999"; /* no such GPU: invalid with a GPU, unsupported without */
  expect_load_fails(&mp, reel_cuda_device_count() > 0 ? REEL_ERROR_INVALID_ARGUMENT : REEL_ERROR_UNSUPPORTED, "cuda");
  mp.device = NULL; /* NULL: the CPU */
  mp.text_encoder_device = "tpu";
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "tpu");
  mp.text_encoder_device = "cpu";
  {
    reel_model* model = NULL;
    CHECK(reel_model_load(&mp, &model) == REEL_OK);
    CHECK(strstr(reel_model_describe(model), "layers on cpu") != NULL);
    reel_model_free(model);
  }
  mp.text_encoder_device = NULL;
  mp.attention_kernel = "warp_drive";
  expect_load_fails(&mp, REEL_ERROR_NOT_FOUND, "cpu_flash"); /* lists the kernels there are */
  mp.attention_kernel = "onednn";
  mp.offload_transformer = 1; /* no effect on the CPU; accepted */
  {
    reel_model* model = NULL;
    CHECK(reel_model_load(&mp, &model) == REEL_OK);
    reel_model_free(model);
  }
  mp.attention_kernel = NULL;
  mp.offload_transformer = 0;
  mp.threads = -3;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "threads");
  mp.threads = 100000; /* crashed the OpenMP runtime once: now refused, naming the limit */
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "params->threads must be between 0");
  mp.threads = 0;
  mp.precision = (reel_precision)77;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "precision");
}

/* The f32 frames of a small generation (caller frees), with these LoRA strengths (NULL: as loaded). */
static float* frames_with(reel_model* model, const float* strengths, int32_t count, size_t* n) {
  reel_generate_params gp;
  reel_video* video = NULL;
  float* copy = NULL;
  reel_generate_params_init(&gp);
  gp.prompt = "a red fox runs through the snow";
  gp.width = 64, gp.height = 48, gp.frames = 5, gp.steps = 2, gp.seed = 3;
  gp.keep_float_frames = 1;
  gp.lora_strengths = strengths;
  gp.lora_strength_count = count;
  if (reel_generate(model, &gp, &video) != REEL_OK) return NULL;
  *n = (size_t)reel_video_frame_count(video) * (size_t)reel_video_height(video) * (size_t)reel_video_width(video) * 3;
  copy = (float*)malloc(*n * sizeof(float));
  memcpy(copy, reel_video_frames_float(video), *n * sizeof(float));
  reel_video_free(video);
  return copy;
}

static void loras(void) {
  char lora[1024];
  const char* paths[1];
  const float half = 0.5f, zero = 0.0f, two[2] = {1.0f, 1.0f};
  const int32_t bad_expert = 5, low = REEL_LORA_LOW_NOISE;
  reel_model_params mp;
  reel_model *plain = NULL, *runtime = NULL, *merged = NULL;
  size_t n0 = 0, n1 = 0, n2 = 0, n3 = 0, i;
  float *base, *off, *on, *fixed;
  int noted = 0;
  paths[0] = capi_path(lora, sizeof lora, REEL_FIXTURES_DIR, "lora/tiny_t2v_kohya.safetensors");
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.threads = 2;
  mp.precision = REEL_PRECISION_F32;
  CHECK(reel_model_load(&mp, &plain) == REEL_OK);
  mp.lora_paths = paths;
  mp.lora_count = 1;
  mp.lora_runtime = 1;
  CHECK_STATUS(reel_model_load(&mp, &runtime), REEL_OK, NULL);
  mp.lora_runtime = 0;
  mp.lora_strengths = &half;
  CHECK_STATUS(reel_model_load(&mp, &merged), REEL_OK, NULL);
  if (!plain || !runtime || !merged) return;
  for (i = 0; i < reel_model_note_count(runtime); ++i)
    noted |= strstr(reel_model_note(runtime, i), "double_blocks_0_img_attn_qkv") != NULL;
  CHECK(noted); /* the Flux module of the file is reported, not silently dropped */
  CHECK(reel_model_note(runtime, 999) == NULL && reel_model_note_count(NULL) == 0);

  base = frames_with(plain, NULL, 0, &n0);
  off = frames_with(runtime, &zero, 1, &n1);
  on = frames_with(runtime, &half, 1, &n2);
  fixed = frames_with(merged, NULL, 0, &n3);
  CHECK(base && off && on && fixed && n0 == n1 && n0 == n2 && n0 == n3);
  if (base && off && on && fixed) {
    double d_off = 0, d_on = 0, d_merged = 0;
    for (i = 0; i < n0; ++i) {
      d_off += fabs((double)base[i] - off[i]);
      d_on += fabs((double)base[i] - on[i]);
      d_merged += fabs((double)on[i] - fixed[i]);
    }
    CHECK(d_off == 0.0);                     /* strength 0 at run time: the plain model */
    CHECK(d_on / (double)n0 > 1e-3);         /* strength 0.5 changes the clip */
    CHECK(d_merged / (double)n0 < 1e-4);     /* and equals the model merged at 0.5 */
  }
  free(base), free(off), free(on), free(fixed);
  {
    reel_generate_params gp;
    reel_video* video = NULL;
    reel_generate_params_init(&gp);
    gp.prompt = "x";
    gp.width = 64, gp.height = 48, gp.frames = 5, gp.steps = 1;
    gp.lora_strengths = two;
    gp.lora_strength_count = 2;
    CHECK_STATUS(reel_generate(runtime, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "lora_strengths: 2");
    gp.lora_strength_count = 1;
    gp.lora_strengths = NULL;
    CHECK_STATUS(reel_generate(runtime, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "lora_strengths");
    gp.lora_strengths = &zero;
    CHECK_STATUS(reel_generate(merged, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "merged into the weights");
    CHECK(video == NULL);
  }
  reel_model_free(plain), reel_model_free(runtime), reel_model_free(merged);

  mp.lora_strengths = NULL;
  mp.lora_paths = NULL;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "lora_paths");
  mp.lora_paths = paths;
  mp.lora_experts = &bad_expert;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "reel_lora_expert");
  mp.lora_experts = &low;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "one transformer");
  mp.lora_experts = NULL;
  mp.lora_count = -1;
  expect_load_fails(&mp, REEL_ERROR_INVALID_ARGUMENT, "lora_count");
  mp.lora_count = 1;
  paths[0] = capi_path(lora, sizeof lora, capi_tiny_model(), "vae"); /* weights, but no LoRA */
  expect_load_fails(&mp, REEL_ERROR_BAD_FORMAT, "no LoRA tensor");
}

int main(void) {
  loads_the_tiny_model();
  load_errors();
  loras();
  return capi_finish("test_capi_model");
}
