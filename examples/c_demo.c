/* A C99 program that uses only reel.h: loads a model folder, generates a short clip with a
 * progress line on stderr, and saves it.
 *
 *   c_demo MODEL_DIR OUT.{mp4,webm,y4m} ["prompt"] [WIDTHxHEIGHT] [FRAMES] [STEPS]
 *   c_demo models/tiny-wan-t2v demo.y4m "a red fox in the snow" 256x160 17 10
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reel.h"

static int show_progress(const reel_progress* p, void* user_data) {
  (void)user_data;
  fprintf(stderr, "\r%-8s %3d/%-3d  %6.2f s/step  ", p->stage, p->step, p->total, p->step_seconds);
  if (p->step == p->total) fputc('\n', stderr);
  return 0; /* non-zero would cancel */
}

int main(int argc, char** argv) {
  reel_model_params mp;
  reel_generate_params gp;
  reel_model* model = NULL;
  reel_video* video = NULL;
  reel_status status;
  size_t i;
  int width = 256, height = 160;

  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR OUT.{mp4,webm,y4m} [\"prompt\"] [WxH] [FRAMES] [STEPS]\n", argv[0]);
    return 2;
  }
  if (reel_version_number() != REEL_VERSION_NUMBER)
    fprintf(stderr, "note: built against reel %d.%d.%d, running with %s\n", REEL_VERSION_MAJOR, REEL_VERSION_MINOR,
            REEL_VERSION_PATCH, reel_version_string());

  reel_model_params_init(&mp);
  mp.path = argv[1];
  if (reel_model_load(&mp, &model) != REEL_OK) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], reel_last_error());
    return 1;
  }
  fprintf(stderr, "model: %s\n", reel_model_describe(model));

  reel_generate_params_init(&gp);
  gp.prompt = argc > 3 ? argv[3] : "a red fox runs through the snow, cinematic";
  if (argc > 4 && sscanf(argv[4], "%dx%d", &width, &height) != 2) {
    fprintf(stderr, "size must look like 256x160, got %s\n", argv[4]);
    reel_model_free(model);
    return 2;
  }
  gp.width = width;
  gp.height = height;
  gp.frames = argc > 5 ? atoi(argv[5]) : 17;
  gp.steps = argc > 6 ? atoi(argv[6]) : 10;
  gp.seed = 42;
  gp.progress = show_progress;

  status = reel_generate(model, &gp, &video);
  if (status != REEL_OK) {
    fprintf(stderr, "\ngeneration failed (%s): %s\n", reel_status_string(status), reel_last_error());
    reel_model_free(model);
    return 1;
  }
  for (i = 0; i < reel_video_notice_count(video); ++i) fprintf(stderr, "note: %s\n", reel_video_notice(video, i));
  if (reel_video_save(video, argv[2]) != REEL_OK) {
    fprintf(stderr, "cannot save %s: %s\n", argv[2], reel_last_error());
    reel_video_free(video);
    reel_model_free(model);
    return 1;
  }
  printf("wrote %s: %dx%d, %d frames at %.0f fps\n", argv[2], reel_video_width(video), reel_video_height(video),
         reel_video_frame_count(video), reel_video_fps(video));
  reel_video_free(video);
  reel_model_free(model);
  return 0;
}
