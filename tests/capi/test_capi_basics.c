/* C API basics, compiled as C99: version, status strings, the last error, params defaults,
 * every entry point with NULL arguments and too-small structs, *_free(NULL), and the sampler,
 * schedule and attention-kernel listings. */
#include <math.h>

#include "capi_test.h"

static void version_and_status(void) {
  char expect[32];
  reel_status s;
  CHECK(reel_version_number() == REEL_VERSION_NUMBER);
  snprintf(expect, sizeof expect, "%d.%d.%d", REEL_VERSION_MAJOR, REEL_VERSION_MINOR, REEL_VERSION_PATCH);
  CHECK(strcmp(reel_version_string(), expect) == 0);
  CHECK(strcmp(reel_status_string(REEL_OK), "ok") == 0);
  CHECK(strcmp(reel_status_string(REEL_ERROR_INVALID_ARGUMENT), "invalid argument") == 0);
  CHECK(strcmp(reel_status_string(REEL_ERROR_CANCELLED), "cancelled") == 0);
  for (s = REEL_OK; s <= REEL_ERROR_NUMERICAL; s = (reel_status)(s + 1)) CHECK(reel_status_string(s)[0] != '\0');
  CHECK(strcmp(reel_status_string((reel_status)1234), "unknown status") == 0);
  CHECK(reel_last_error() != NULL);
  CHECK(reel_last_error()[0] == '\0'); /* nothing failed yet on this thread */
}

static void params_defaults(void) {
  reel_model_params mp;
  reel_generate_params gp;
  reel_attention_params ap;
  memset(&mp, 0xab, sizeof mp);
  reel_model_params_init(&mp);
  CHECK(mp.struct_size == sizeof mp);
  CHECK(mp.path == NULL && mp.transformer_path == NULL && mp.transformer_2_path == NULL);
  CHECK(strcmp(mp.device, "cpu") == 0);
  CHECK(mp.threads == 0 && mp.precision == REEL_PRECISION_DEFAULT);
  memset(&gp, 0xab, sizeof gp);
  reel_generate_params_init(&gp);
  CHECK(gp.struct_size == sizeof gp);
  CHECK(gp.prompt != NULL && gp.prompt[0] == '\0');
  CHECK(gp.width == 0 && gp.height == 0 && gp.frames == 0 && gp.steps == 0 && gp.guidance == 0.0f);
  CHECK(gp.prompt_embeds == NULL && gp.initial_noise == NULL && gp.progress == NULL && gp.guidance_2 == 0.0f);
  memset(&ap, 0xab, sizeof ap);
  reel_attention_params_init(&ap);
  CHECK(ap.struct_size == sizeof ap && ap.q == NULL && ap.lse == NULL && ap.batch == 0);
  /* init(NULL) is harmless */
  reel_model_params_init(NULL);
  reel_generate_params_init(NULL);
  reel_attention_params_init(NULL);
}

static void nulls_everywhere(void) {
  reel_model_params mp;
  reel_generate_params gp;
  reel_model* model = (reel_model*)0x1;
  reel_video* video = (reel_video*)0x1;
  const uint8_t rgb[12] = {0};
  reel_model_params_init(&mp);
  reel_generate_params_init(&gp);

  CHECK_STATUS(reel_model_load(NULL, &model), REEL_ERROR_INVALID_ARGUMENT, "params is NULL");
  CHECK(model == (reel_model*)0x1); /* out-parameter untouched on failure */
  CHECK_STATUS(reel_model_load(&mp, NULL), REEL_ERROR_INVALID_ARGUMENT, "model");
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_ERROR_INVALID_ARGUMENT, "path is NULL");
  CHECK(model == (reel_model*)0x1);
  mp.struct_size = 8;
  mp.path = "x";
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_ERROR_INVALID_ARGUMENT, "reel_model_params.struct_size");
  mp.struct_size = 0;
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_ERROR_INVALID_ARGUMENT, "struct_size");

  CHECK_STATUS(reel_generate(NULL, &gp, &video), REEL_ERROR_INVALID_ARGUMENT, "model is NULL");
  CHECK(video == (reel_video*)0x1);
  CHECK_STATUS(reel_generate((reel_model*)0x1, NULL, &video), REEL_ERROR_INVALID_ARGUMENT, "params is NULL");
  CHECK_STATUS(reel_generate((reel_model*)0x1, &gp, NULL), REEL_ERROR_INVALID_ARGUMENT, "video");
  gp.struct_size = 4;
  CHECK_STATUS(reel_generate((reel_model*)0x1, &gp, &video), REEL_ERROR_INVALID_ARGUMENT,
               "reel_generate_params.struct_size");
  CHECK(video == (reel_video*)0x1);

  CHECK_STATUS(reel_video_save(NULL, "x.y4m"), REEL_ERROR_INVALID_ARGUMENT, "video is NULL");
  CHECK_STATUS(reel_video_create(NULL, 2, 2, 1, 16.0, &video), REEL_ERROR_INVALID_ARGUMENT, "rgb is NULL");
  CHECK_STATUS(reel_video_create(rgb, 2, 2, 1, 16.0, NULL), REEL_ERROR_INVALID_ARGUMENT, "video");
  CHECK(video == (reel_video*)0x1);

  /* Accessors and frees accept NULL. */
  CHECK(reel_video_width(NULL) == 0 && reel_video_height(NULL) == 0 && reel_video_frame_count(NULL) == 0);
  CHECK(reel_video_fps(NULL) == 0.0);
  CHECK(reel_video_frames_rgb(NULL) == NULL && reel_video_frames_float(NULL) == NULL);
  CHECK(reel_video_notice_count(NULL) == 0 && reel_video_notice(NULL, 0) == NULL);
  CHECK(strcmp(reel_model_describe(NULL), "") == 0);
  reel_model_free(NULL);
  reel_video_free(NULL);

  CHECK_STATUS(reel_attention_supports(NULL, NULL), REEL_ERROR_INVALID_ARGUMENT, "params is NULL");
  CHECK_STATUS(reel_attention_run("cpu_reference", NULL), REEL_ERROR_INVALID_ARGUMENT, "params is NULL");
}

static void video_objects(void) {
  uint8_t rgb[2 * 3 * 4 * 3];
  reel_video* video = NULL;
  size_t i;
  for (i = 0; i < sizeof rgb; ++i) rgb[i] = (uint8_t)(i * 7);
  CHECK_STATUS(reel_video_create(rgb, 4, 3, 2, 24.0, &video), REEL_OK, NULL);
  CHECK(video != NULL);
  CHECK(reel_video_width(video) == 4 && reel_video_height(video) == 3 && reel_video_frame_count(video) == 2);
  CHECK(reel_video_fps(video) == 24.0);
  CHECK(reel_video_frames_rgb(video) != NULL && memcmp(reel_video_frames_rgb(video), rgb, sizeof rgb) == 0);
  CHECK(reel_video_frames_float(video) == NULL);
  CHECK(reel_video_notice_count(video) == 0);
  CHECK_STATUS(reel_video_save(video, NULL), REEL_ERROR_INVALID_ARGUMENT, "path is NULL");
  CHECK_STATUS(reel_video_save(video, ""), REEL_ERROR_INVALID_ARGUMENT, "empty");
  CHECK_STATUS(reel_video_save(video, REEL_TEST_TMP_DIR "/clip.unknown"), REEL_ERROR_INVALID_ARGUMENT, "clip.unknown");
  CHECK_STATUS(reel_video_save(video, REEL_TEST_TMP_DIR "/no/such/folder/clip.y4m"), REEL_ERROR_IO, "no/such/folder");
  CHECK_STATUS(reel_video_save(video, REEL_TEST_TMP_DIR "/capi_clip.y4m"), REEL_OK, NULL);
  /* The same checks before there are frames: what a caller runs before a long generation. */
  CHECK_STATUS(reel_video_check_path(NULL), REEL_ERROR_INVALID_ARGUMENT, "path is NULL");
  CHECK_STATUS(reel_video_check_path(REEL_TEST_TMP_DIR "/no/such/folder/clip.y4m"), REEL_ERROR_IO, "no/such/folder");
  CHECK_STATUS(reel_video_check_path(REEL_TEST_TMP_DIR "/clip.unknown"), REEL_ERROR_INVALID_ARGUMENT, "clip.unknown");
  CHECK_STATUS(reel_video_check_path(REEL_TEST_TMP_DIR "/capi_checked.y4m"), REEL_OK, NULL);
  CHECK(fopen(REEL_TEST_TMP_DIR "/capi_checked.y4m", "rb") == NULL); /* checked, not written */
  reel_video_free(video);

  video = (reel_video*)0x1;
  CHECK_STATUS(reel_video_create(rgb, 0, 3, 2, 24.0, &video), REEL_ERROR_INVALID_ARGUMENT, NULL);
  CHECK_STATUS(reel_video_create(rgb, 4, -3, 2, 24.0, &video), REEL_ERROR_INVALID_ARGUMENT, NULL);
  CHECK_STATUS(reel_video_create(rgb, 4, 3, 0, 24.0, &video), REEL_ERROR_INVALID_ARGUMENT, NULL);
  CHECK_STATUS(reel_video_create(rgb, 4, 3, 2, 0.0, &video), REEL_ERROR_INVALID_ARGUMENT, "fps");
  CHECK_STATUS(reel_video_create(rgb, 4, 3, 2, -HUGE_VAL, &video), REEL_ERROR_INVALID_ARGUMENT, "fps");
  /* Huge sizes are refused before anything is allocated or read. */
  CHECK_STATUS(reel_video_create(rgb, 2147483647, 2147483647, 2147483647, 24.0, &video), REEL_ERROR_INVALID_ARGUMENT,
               NULL);
  CHECK(video == (reel_video*)0x1);
}

static void listings(void) {
  size_t i, n = reel_sampler_count();
  int unipc = 0, flow_unipc = 0, cpu_reference = 0;
  CHECK(n >= 7);
  for (i = 0; i < n; ++i) {
    CHECK(reel_sampler_name(i) != NULL && reel_sampler_name(i)[0] != '\0');
    CHECK(reel_sampler_description(i) != NULL);
    if (reel_sampler_name(i) && strcmp(reel_sampler_name(i), "unipc") == 0) unipc = 1;
  }
  CHECK(reel_sampler_name(n) == NULL && reel_sampler_description(n) == NULL);
  CHECK(reel_sampler_name((size_t)-1) == NULL);
  CHECK(unipc);
  n = reel_schedule_count();
  CHECK(n >= 8);
  for (i = 0; i < n; ++i) {
    CHECK(reel_schedule_name(i) != NULL && reel_schedule_description(i) != NULL);
    if (reel_schedule_name(i) && strcmp(reel_schedule_name(i), "flow_unipc") == 0) flow_unipc = 1;
  }
  CHECK(reel_schedule_name(n) == NULL && reel_schedule_description(n) == NULL);
  CHECK(flow_unipc);
  n = reel_attention_kernel_count();
  CHECK(n >= 3);
  for (i = 0; i < n; ++i) {
    CHECK(reel_attention_kernel_name(i) != NULL && reel_attention_kernel_description(i) != NULL);
    if (reel_attention_kernel_name(i) && strcmp(reel_attention_kernel_name(i), "cpu_reference") == 0) cpu_reference = 1;
  }
  CHECK(reel_attention_kernel_name(n) == NULL && reel_attention_kernel_description(n) == NULL);
  CHECK(cpu_reference);
  /* Names are stable pointers. */
  CHECK(reel_sampler_name(0) == reel_sampler_name(0));
}

/* Sequence parallel without MPI ranks (tests/distributed has the real ones): NULLs and a bad
 * handle give a status and leave the output alone; a build without MPI says UNSUPPORTED. */
static void communicator_misuse(void) {
  reel_communicator* comm = (reel_communicator*)&comm;
  const int zero = 0;
  reel_status s;
  CHECK(reel_communicator_rank(NULL) == -1 && reel_communicator_size(NULL) == -1);
  reel_communicator_free(NULL);
  CHECK_STATUS(reel_communicator_mpi_world(NULL), REEL_ERROR_INVALID_ARGUMENT, "out");
  s = reel_communicator_from_mpi_handle(NULL, sizeof(void*), &comm);
  CHECK(s == REEL_ERROR_INVALID_ARGUMENT || s == REEL_ERROR_UNSUPPORTED);
  CHECK(comm == (reel_communicator*)&comm);
  s = reel_communicator_from_mpi_handle(&zero, 1, &comm);  /* not an MPI_Comm's size */
  CHECK(s == REEL_ERROR_INVALID_ARGUMENT || s == REEL_ERROR_UNSUPPORTED);
  CHECK(comm == (reel_communicator*)&comm);
  CHECK(strstr(reel_last_error(), "MPI") != NULL);
}

int main(void) {
  version_and_status();
  communicator_misuse();
  params_defaults();
  nulls_everywhere();
  video_objects();
  listings();
  return capi_finish("test_capi_basics");
}
