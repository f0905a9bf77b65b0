// YUV4MPEG2 output: "YUV4MPEG2 W H F Ip A1:1 C420jpeg|C444 XCOLORRANGE=LIMITED", then per frame
// "FRAME\n" and the Y, Cb, Cr planes. BT.601 limited range (what Y4M readers assume), the
// colour conversion of yuv.hpp.
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "reel/status.hpp"
#include "video/atomic_output.hpp"
#include "video/video_writers.hpp"
#include "video/yuv.hpp"

namespace reel::video {
namespace fs = std::filesystem;

void write_y4m(const Video& video, const fs::path& path, Y4mChroma chroma) {
  AtomicOutput out(path, AtomicOutput::Kind::file);
  const bool c420 = chroma == Y4mChroma::c420jpeg;
  const Rational rate = fps_rational(video.fps);
  const std::string header = "YUV4MPEG2 W" + std::to_string(video.width) + " H" + std::to_string(video.height) +
                             " F" + std::to_string(rate.num) + ":" + std::to_string(rate.den) + " Ip A1:1 " +
                             (c420 ? "C420jpeg" : "C444") + " XCOLORRANGE=LIMITED\n";

  const size_t w = size_t(video.width), h = size_t(video.height);
  const size_t cw = c420 ? (w + 1) / 2 : w, ch = c420 ? (h + 1) / 2 : h;
  std::vector<uint8_t> planes(w * h + 2 * cw * ch);
  const YuvPlanes yuv{planes.data(), ptrdiff_t(w), planes.data() + w * h, ptrdiff_t(cw),
                      planes.data() + w * h + cw * ch, ptrdiff_t(cw)};

  auto fail = [&](int err) -> void {
    throw Error(StatusCode::io_error, "cannot write '" + path.string() + "': " + os_error(err ? err : EIO));
  };
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(out.temp_path().c_str(), "wb"), &std::fclose);
  if (!f) fail(errno);
  if (std::fwrite(header.data(), 1, header.size(), f.get()) != header.size()) fail(errno);
  static const char kFrame[] = "FRAME\n";
  for (int t = 0; t < video.frames; ++t) {
    rgb_to_yuv(video.frame(t), video.width, video.height, YuvMatrix::bt601, c420, yuv);
    if (std::fwrite(kFrame, 1, 6, f.get()) != 6) fail(errno);
    if (std::fwrite(planes.data(), 1, planes.size(), f.get()) != planes.size()) fail(errno);
  }
  FILE* raw = f.release();
  if (std::fclose(raw) != 0) fail(errno);
  out.commit();
}

}  // namespace reel::video
