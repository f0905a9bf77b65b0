// Endless video in bounded memory: the peak resident memory of a 10-chunk session is within
// 10% of a 2-chunk one.
//
// Method: each configuration runs in a fresh child process (this executable, re-run with
// --gtest_filter on the child test and the configuration in environment variables), so
// nothing one run allocates or caches is seen by another. The child loads the tiny model,
// reads VmRSS, resets the kernel's peak-RSS mark (VmHWM, by writing "5" to
// /proc/self/clear_refs), runs the session writing every chunk to a .y4m stream as it comes,
// then reads VmHWM: growth = VmHWM − VmRSS before = everything the session made resident at
// its peak (VAE cache, activations, oneDNN scratch, text context, writer buffers). Large
// blocks are mmap-ed and returned to the kernel on free (M_MMAP_THRESHOLD fixed), so freed
// chunk buffers do not linger in the heap and each chunk's work shows at its real size.
// A control shows the measurement can fail: a caller that keeps every chunk (with its f32
// frames) grows with the chunk count, and the same comparison sees it.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "pipeline/pipeline_test_util.hpp"
#include "reel/video_session.hpp"
#include "reel/video_stream.hpp"

namespace reel::test {
namespace {

long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k(key);
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::atol(line.c_str() + k.size());
  return -1;
}

bool reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

struct Measured {
  long growth_kb = -1;
  std::string output;
};

Measured run_child(int chunks, bool keep) {
  char exe[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  EXPECT_GT(n, 0);
  const std::string cmd = "REEL_SESSION_MEMORY_CHUNKS=" + std::to_string(chunks) +
                          " REEL_SESSION_MEMORY_KEEP=" + (keep ? "1" : "0") + " OMP_NUM_THREADS=2 '" +
                          std::string(exe) + "' --gtest_filter=VideoSessionMemoryChild.OneConfiguration 2>&1";
  Measured m;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (!pipe) return m;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) m.output += buf;
  const int rc = ::pclose(pipe);
  EXPECT_EQ(rc, 0) << m.output;
  const size_t at = m.output.find("growth_kb=");
  if (at != std::string::npos) m.growth_kb = std::atol(m.output.c_str() + at + 10);
  EXPECT_GT(m.growth_kb, 0) << m.output;
  return m;
}

TEST(VideoSessionMemory, PeakOfTenChunksIsWithinTenPercentOfTwo) {
  if (!reset_peak() || status_kb("VmHWM:") < 0) GTEST_SKIP() << "no /proc/self/clear_refs or VmHWM on this system";
  const Measured two = run_child(2, false), ten = run_child(10, false);
  const Measured two_kept = run_child(2, true), ten_kept = run_child(10, true);
  std::printf("peak RSS growth: 2 chunks %ld KiB, 10 chunks %ld KiB (%.3fx); keeping every chunk: %ld KiB, %ld KiB (%.3fx)\n",
              two.growth_kb, ten.growth_kb, double(ten.growth_kb) / double(two.growth_kb), two_kept.growth_kb,
              ten_kept.growth_kb, double(ten_kept.growth_kb) / double(two_kept.growth_kb));
  EXPECT_LE(double(ten.growth_kb), 1.10 * double(two.growth_kb));
  // The control: 8 more chunks of 16 frames kept at 64×64 (f32 + RGB: 15 bytes a pixel) are
  // 7.5 MiB more.
  EXPECT_GT(double(ten_kept.growth_kb), 1.10 * double(two_kept.growth_kb));
}

// One configuration, run in its own process by the test above (skipped when run directly).
TEST(VideoSessionMemoryChild, OneConfiguration) {
  const char* chunks_env = std::getenv("REEL_SESSION_MEMORY_CHUNKS");
  if (!chunks_env) GTEST_SKIP() << "a child of VideoSessionMemory.PeakOfTenChunksIsWithinTenPercentOfTwo";
  const int chunks = std::atoi(chunks_env);
  const bool keep = std::getenv("REEL_SESSION_MEMORY_KEEP") && std::string(std::getenv("REEL_SESSION_MEMORY_KEEP")) == "1";
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  const Pipeline& pipe = tiny_t2v_f32();
  VideoSessionOptions o;
  o.request.prompt = "a long walk down a corridor";
  o.request.width = 64, o.request.height = 64, o.request.frames = 17, o.request.steps = 2;
  o.request.guidance = 4.0f, o.request.seed = 1;
  o.request.keep_float_frames = keep;
  o.context_frames = 1;
  const std::filesystem::path out = tmp_dir() / ("session_memory_" + std::to_string(::getpid()) + ".y4m");

  const long before = status_kb("VmRSS:");
  ASSERT_TRUE(reset_peak());
  std::vector<VideoChunk> kept;
  {
    VideoSession session(pipe, o);
    VideoStreamWriter writer(out, session.width(), session.height(), session.fps());
    for (int k = 0; k < chunks; ++k) {
      VideoChunk c = session.next();
      writer.write(c.video);
      if (keep) kept.push_back(std::move(c));
    }
    writer.close();
    EXPECT_EQ(writer.frames_written(), session.frames_after(chunks));
  }
  const long peak = status_kb("VmHWM:");
  std::filesystem::remove(out);
  std::printf("chunks=%d keep=%d rss_before_kb=%ld peak_kb=%ld growth_kb=%ld\n", chunks, int(keep), before, peak,
              peak - before);
}

}  // namespace
}  // namespace reel::test
