/* C API endless video on the repository's tiny model, compiled as C99: a session's chunks
 * (frame counts, the first chunk equal to reel_generate), streamed into a writer; a prompt
 * schedule; continuing the written file; cancel and resume; and bad input (NULLs, struct
 * sizes, out-of-range fields, a broken schedule, writer misuse) with the right status. */
#include "capi_test.h"

typedef struct {
  int cancel_at_denoise_step; /* 0: never */
  int chunks_seen_decode;     /* decode stages finished */
} progress_log;

static int on_progress(const reel_progress* p, void* user) {
  progress_log* log = (progress_log*)user;
  if (strcmp(p->stage, "decode") == 0 && p->step == p->total) ++log->chunks_seen_decode;
  return log->cancel_at_denoise_step > 0 && strcmp(p->stage, "denoise") == 0 && p->step >= log->cancel_at_denoise_step;
}

static int exists(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static void window(reel_generate_params* gp) {
  reel_generate_params_init(gp);
  gp->prompt = "a red fox walks down a corridor";
  gp->negative_prompt = "blurred";
  gp->width = 64;
  gp->height = 48;
  gp->frames = 9; /* 3 latent frames per window */
  gp->steps = 2;
  gp->seed = 11;
}

static void chunks_stream_into_a_file(reel_model* model) {
  reel_generate_params gp;
  reel_session_params sp;
  reel_session* s = NULL;
  reel_video_writer* w = NULL;
  reel_video* first = NULL;
  int k;
  const char* path = REEL_TEST_TMP_DIR "/capi_session.y4m";
  window(&gp);
  reel_session_params_init(&sp);
  CHECK(sp.context_frames == 1 && sp.conditioning == REEL_CONTEXT_AUTO);
  sp.prompt_schedule = "0 a red fox walks down a corridor\n2: the fox opens a door\n";
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_OK, NULL);
  if (!s) return;
  CHECK(reel_session_width(s) == 64 && reel_session_height(s) == 48 && reel_session_fps(s) == 16.0);
  CHECK(reel_session_frames_after(s, 3) == 9 + 8 + 8);
  CHECK(reel_session_chunks_for_seconds(s, 2.0) == 1 + (32 - 9 + 7) / 8); /* 32 frames at 16 fps */
  CHECK(reel_session_chunks_for_seconds(s, -1.0) == -1);
  remove(path);
  CHECK_STATUS(reel_video_writer_open(path, 64, 48, 16.0, &w), REEL_OK, NULL);
  for (k = 0; k < 3; ++k) {
    reel_video* chunk = NULL;
    CHECK_STATUS(reel_session_next(s, NULL, &chunk), REEL_OK, NULL);
    if (!chunk) break;
    CHECK(reel_video_frame_count(chunk) == (k == 0 ? 9 : 8));
    CHECK(reel_video_frames_float(chunk) == NULL);
    CHECK_STATUS(reel_video_writer_write(w, chunk), REEL_OK, NULL);
    if (k == 0) first = chunk;
    else reel_video_free(chunk);
    CHECK(!exists(path)); /* nothing at the final path before close */
  }
  CHECK(reel_session_chunks_done(s) == 3 && reel_session_frames_done(s) == 25);
  CHECK(reel_video_writer_frame_count(w) == 25);
  CHECK_STATUS(reel_video_writer_close(w), REEL_OK, NULL);
  CHECK_STATUS(reel_video_writer_close(w), REEL_ERROR_INVALID_ARGUMENT, "closed");
  reel_video_writer_free(w);
  CHECK(exists(path));
  /* The first chunk of a new clip is reel_generate's video. */
  {
    reel_video* g = NULL;
    CHECK_STATUS(reel_generate(model, &gp, &g), REEL_OK, NULL);
    CHECK(first && g && memcmp(reel_video_frames_rgb(first), reel_video_frames_rgb(g), (size_t)9 * 48 * 64 * 3) == 0);
    reel_video_free(g);
  }
  reel_video_free(first);
  reel_session_free(s);

  /* Continue the file just written: its last 5 frames become 2 context latent frames. */
  reel_session_params_init(&sp);
  sp.context_frames = 2;
  sp.source_path = path;
  s = NULL;
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_OK, NULL);
  if (s) {
    reel_video* chunk = NULL;
    CHECK(reel_session_frames_after(s, 1) == 4);
    CHECK_STATUS(reel_session_next(s, "the fox looks back", &chunk), REEL_OK, NULL);
    CHECK(chunk && reel_video_frame_count(chunk) == 4);
    reel_video_free(chunk);
  }
  reel_session_free(s);
}

static void cancels_and_resumes(reel_model* model) {
  reel_generate_params gp;
  reel_session_params sp;
  reel_session* s = NULL;
  reel_video* chunk = NULL;
  progress_log log;
  memset(&log, 0, sizeof log);
  window(&gp);
  gp.progress = on_progress;
  gp.progress_user_data = &log;
  gp.keep_float_frames = 1;
  reel_session_params_init(&sp);
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_OK, NULL);
  if (!s) return;
  log.cancel_at_denoise_step = 1;
  CHECK_STATUS(reel_session_next(s, NULL, &chunk), REEL_ERROR_CANCELLED, "cancelled");
  CHECK(chunk == NULL && reel_session_chunks_done(s) == 0);
  log.cancel_at_denoise_step = 0;
  CHECK_STATUS(reel_session_next(s, NULL, &chunk), REEL_OK, NULL);
  CHECK(chunk && reel_video_frame_count(chunk) == 9 && reel_video_frames_float(chunk) != NULL);
  CHECK(log.chunks_seen_decode == 1);
  reel_video_free(chunk);
  reel_session_free(s);
}

static void bad_input(reel_model* model) {
  reel_generate_params gp;
  reel_session_params sp;
  reel_session* s = NULL;
  reel_video_writer* w = NULL;
  reel_video* small = NULL;
  uint8_t pixels[4 * 4 * 3];
  window(&gp);
  reel_session_params_init(&sp);
  CHECK_STATUS(reel_session_create(NULL, &gp, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "model");
  CHECK_STATUS(reel_session_create(model, NULL, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "generate");
  CHECK_STATUS(reel_session_create(model, &gp, NULL, &s), REEL_ERROR_INVALID_ARGUMENT, "params");
  CHECK_STATUS(reel_session_create(model, &gp, &sp, NULL), REEL_ERROR_INVALID_ARGUMENT, "session");
  sp.struct_size = 4;
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "struct_size");
  reel_session_params_init(&sp);
  sp.context_frames = 3;
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "context_frames");
  reel_session_params_init(&sp);
  sp.conditioning = (reel_context_conditioning)7;
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "conditioning");
  reel_session_params_init(&sp);
  sp.prompt_schedule = "soon: a door";
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_ERROR_INVALID_ARGUMENT, "prompt_schedule line 1");
  reel_session_params_init(&sp);
  sp.source_path = REEL_TEST_TMP_DIR "/no_such_clip.y4m";
  CHECK_STATUS(reel_session_create(model, &gp, &sp, &s), REEL_ERROR_NOT_FOUND, "no_such_clip");
  CHECK(s == NULL);
  CHECK_STATUS(reel_session_next(NULL, NULL, &small), REEL_ERROR_INVALID_ARGUMENT, "session");
  reel_session_free(NULL);
  CHECK(reel_session_width(NULL) == 0 && reel_session_frames_after(NULL, 1) == -1);

  CHECK_STATUS(reel_video_writer_open(REEL_TEST_TMP_DIR "/x.avi", 4, 4, 16.0, &w), REEL_ERROR_INVALID_ARGUMENT, "x.avi");
  CHECK_STATUS(reel_video_writer_open(NULL, 4, 4, 16.0, &w), REEL_ERROR_INVALID_ARGUMENT, "path");
  CHECK_STATUS(reel_video_writer_open(REEL_TEST_TMP_DIR "/w.y4m", 0, 4, 16.0, &w), REEL_ERROR_INVALID_ARGUMENT, "width");
  CHECK(w == NULL);
  CHECK_STATUS(reel_video_writer_open(REEL_TEST_TMP_DIR "/w.y4m", 8, 8, 16.0, &w), REEL_OK, NULL);
  memset(pixels, 100, sizeof pixels);
  CHECK_STATUS(reel_video_create(pixels, 4, 4, 1, 16.0, &small), REEL_OK, NULL);
  CHECK_STATUS(reel_video_writer_write(w, small), REEL_ERROR_INVALID_ARGUMENT, "4x4");
  CHECK_STATUS(reel_video_writer_write(w, NULL), REEL_ERROR_INVALID_ARGUMENT, "frames");
  CHECK_STATUS(reel_video_writer_close(w), REEL_ERROR_INVALID_ARGUMENT, "no frames");
  reel_video_writer_free(w); /* nothing is left behind */
  reel_video_writer_free(NULL);
  reel_video_free(small);
  CHECK(!exists(REEL_TEST_TMP_DIR "/w.y4m"));
}

int main(void) {
  reel_model_params mp;
  reel_model* model = NULL;
  reel_model_params_init(&mp);
  mp.path = capi_tiny_model();
  mp.threads = 2;
  CHECK_STATUS(reel_model_load(&mp, &model), REEL_OK, NULL);
  if (model) {
    chunks_stream_into_a_file(model);
    cancels_and_resumes(model);
    bad_input(model);
  }
  reel_model_free(model);
  return capi_finish("test_capi_session");
}
