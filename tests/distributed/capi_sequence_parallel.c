/* The C API with sequence-parallel ranks (reel_mpi.h), run under mpirun with 2 and 4 ranks:
 * every rank loads the demo model with the communicator and generates; rank 0's frames equal
 * one process's exactly (the model's 4 heads take all-Ulysses splits, which compute each
 * attention row as one process does), the other ranks' videos hold no frames, and a split
 * that cannot work fails on every rank with INVALID_ARGUMENT. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "reel_mpi.h"

static int failures = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, " (%s)\n", reel_last_error());       \
      ++failures;                                          \
    }                                                      \
  } while (0)

static reel_video* generate(reel_communicator* comm, int ulysses, reel_status* status) {
  reel_model_params mp;
  reel_model_params_init(&mp);
  mp.path = REEL_FIXTURES_DIR "/../../models/reel-wan-demo";
  mp.precision = REEL_PRECISION_F32;
  mp.threads = 1;
  mp.communicator = comm;
  mp.ulysses = ulysses;
  reel_model* model = NULL;
  *status = reel_model_load(&mp, &model);
  if (*status != REEL_OK) return NULL;
  reel_generate_params gp;
  reel_generate_params_init(&gp);
  gp.prompt = "a yellow square moving up over a purple background";
  gp.width = 64, gp.height = 64, gp.frames = 5, gp.steps = 2, gp.seed = 3;
  reel_video* video = NULL;
  *status = reel_generate(model, &gp, &video);
  reel_model_free(model);
  return video;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  reel_communicator* comm = NULL;
  CHECK(reel_communicator_from_mpi(MPI_COMM_WORLD, &comm) == REEL_OK, "reel_communicator_from_mpi");
  const int rank = reel_communicator_rank(comm), size = reel_communicator_size(comm);
  int mpi_rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  CHECK(rank == mpi_rank && size >= 2, "rank %d of %d", rank, size);
  CHECK(reel_communicator_rank(NULL) == -1, "NULL communicator");

  reel_status st;
  reel_video* one = generate(NULL, 0, &st);
  CHECK(st == REEL_OK && one, "one process");
  reel_video* split = generate(comm, 0, &st);
  CHECK(st == REEL_OK && split, "%d ranks", size);
  if (one && split) {
    if (rank == 0) {
      const size_t bytes = (size_t)reel_video_frame_count(one) * reel_video_width(one) * reel_video_height(one) * 3;
      CHECK(reel_video_frame_count(split) == reel_video_frame_count(one), "frame count");
      CHECK(reel_video_frame_count(split) > 0 && memcmp(reel_video_frames_rgb(split), reel_video_frames_rgb(one), bytes) == 0,
            "rank 0's frames differ from one process's");
    } else {
      CHECK(reel_video_frame_count(split) == 0, "rank %d holds frames", rank);
    }
  }
  reel_video_free(one);
  reel_video_free(split);

  /* 3 does not divide 4 heads (nor the ranks): every rank gets the error, none hangs. */
  reel_video* bad = generate(comm, 3, &st);
  CHECK(st == REEL_ERROR_INVALID_ARGUMENT && !bad, "ulysses 3: status %d", (int)st);
  CHECK(strstr(reel_last_error(), "ulysses") != NULL, "message names ulysses");

  reel_communicator_free(comm);
  if (rank == 0) printf("%s: %d ranks, %d failure(s)\n", failures ? "FAILED" : "PASSED", size, failures);
  MPI_Finalize();
  return failures ? 1 : 0;
}
