// reel::VideoStreamWriter and its always-available encoders: YUV4MPEG2 (header once, then
// "FRAME" + planes per frame; write_y4m is this encoder over a whole clip) and PNG (a folder of
// frames, or one .png), each under a temporary name renamed into place by finish().
#include "reel/video_stream.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "reel/status.hpp"
#include "video/atomic_output.hpp"
#include "video/stream_codecs.hpp"
#include "video/video_writers.hpp"
#include "video/yuv.hpp"

namespace reel {
namespace video {
namespace {

namespace fs = std::filesystem;

class Y4mEncoder final : public FrameEncoder {
 public:
  Y4mEncoder(const fs::path& path, int width, int height, double fps, Y4mChroma chroma)
      : out_(path, AtomicOutput::Kind::file), path_(path), width_(width), height_(height) {
    c420_ = chroma == Y4mChroma::c420jpeg;
    const Rational rate = fps_rational(fps);
    const std::string header = "YUV4MPEG2 W" + std::to_string(width) + " H" + std::to_string(height) + " F" +
                               std::to_string(rate.num) + ":" + std::to_string(rate.den) + " Ip A1:1 " +
                               (c420_ ? "C420jpeg" : "C444") + " XCOLORRANGE=LIMITED\n";
    const size_t w = size_t(width), h = size_t(height);
    cw_ = c420_ ? (w + 1) / 2 : w;
    ch_ = c420_ ? (h + 1) / 2 : h;
    planes_.resize(w * h + 2 * cw_ * ch_);
    file_.reset(std::fopen(out_.temp_path().c_str(), "wb"));
    if (!file_) fail(errno);
    put(header.data(), header.size());
  }

  void write(const uint8_t* rgb) override {
    const size_t w = size_t(width_), h = size_t(height_);
    uint8_t* p = planes_.data();
    rgb_to_yuv(rgb, width_, height_, YuvMatrix::bt601, c420_,
               YuvPlanes{p, ptrdiff_t(w), p + w * h, ptrdiff_t(cw_), p + w * h + cw_ * ch_, ptrdiff_t(cw_)});
    put("FRAME\n", 6);
    put(planes_.data(), planes_.size());
  }

  void finish() override {
    if (std::fclose(file_.release()) != 0) fail(errno);  // flushes: reports a full disk
    out_.commit();
  }

 private:
  void put(const void* data, size_t n) {
    if (std::fwrite(data, 1, n, file_.get()) != n) fail(errno);
  }
  [[noreturn]] void fail(int err) const {
    throw Error(StatusCode::io_error, "cannot write '" + path_.string() + "': " + os_error(err ? err : EIO));
  }

  AtomicOutput out_;
  fs::path path_;
  int width_, height_;
  bool c420_ = true;
  size_t cw_ = 0, ch_ = 0;
  std::vector<uint8_t> planes_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_{nullptr, &std::fclose};
};

class PngEncoder final : public FrameEncoder {
 public:
  PngEncoder(const fs::path& path, int width, int height, bool single)
      : out_(path, single ? AtomicOutput::Kind::file : AtomicOutput::Kind::directory),
        width_(width),
        height_(height),
        single_(single) {}

  void write(const uint8_t* rgb) override {
    if (single_) {
      require(frames_ == 0, StatusCode::invalid_argument,
              "'" + out_.final_path().string() +
                  "' holds one image but a second frame was written: use a folder path ending in '/' for PNG frames");
      write_file(out_.temp_path(), encode_png(rgb, width_, height_, out_.final_path()), out_.final_path());
    } else {
      // The count is not known in advance: 4 digits, more from frame 10 000 on (printf's %04d).
      const std::string name = png_frame_name(int(frames_), int(frames_) + 1);
      write_file(out_.temp_path() / name, encode_png(rgb, width_, height_, out_.final_path() / name),
                 out_.final_path() / name);
    }
    ++frames_;
  }

  void finish() override { out_.commit(); }

 private:
  AtomicOutput out_;
  int width_, height_;
  bool single_;
  int64_t frames_ = 0;
};

constexpr int kMaxSide = 32768;  // as write_video

}  // namespace

std::unique_ptr<FrameEncoder> open_y4m_encoder(const fs::path& path, int width, int height, double fps,
                                               Y4mChroma chroma) {
  return std::make_unique<Y4mEncoder>(path, width, height, fps, chroma);
}

std::unique_ptr<FrameEncoder> open_png_encoder(const fs::path& path, int width, int height, bool single) {
  return std::make_unique<PngEncoder>(path, width, height, single);
}

}  // namespace video

// ------------------------------------------------------------------------------ the writer

VideoStreamWriter::VideoStreamWriter(const std::filesystem::path& path, int width, int height, double fps,
                                     const VideoWriteOptions& options)
    : path_(path), width_(width), height_(height) {
  const std::string who = "VideoStreamWriter('" + path.string() + "')";
  require(width >= 1 && height >= 1 && width <= video::kMaxSide && height <= video::kMaxSide,
          StatusCode::invalid_argument,
          who + ": width and height must be in 1.." + std::to_string(video::kMaxSide) + " (got " +
              std::to_string(width) + "x" + std::to_string(height) + ")");
  require(std::isfinite(fps) && fps > 0 && fps <= 1000, StatusCode::invalid_argument,
          who + ": fps must be in (0, 1000] (got " + std::to_string(fps) + ")");
  const VideoFormat format = video_format_for_path(path);
  switch (format) {
    case VideoFormat::mp4:
    case VideoFormat::webm:
      encoder_ = video::open_ffmpeg_encoder(path, width, height, fps, format, options);
      break;
    case VideoFormat::y4m: encoder_ = video::open_y4m_encoder(path, width, height, fps, options.y4m_chroma); break;
    case VideoFormat::png: encoder_ = video::open_png_encoder(path, width, height, true); break;
    case VideoFormat::png_folder: encoder_ = video::open_png_encoder(path, width, height, false); break;
  }
}

VideoStreamWriter::VideoStreamWriter(VideoStreamWriter&&) noexcept = default;
VideoStreamWriter& VideoStreamWriter::operator=(VideoStreamWriter&&) noexcept = default;
VideoStreamWriter::~VideoStreamWriter() = default;

void VideoStreamWriter::write(const Video& frames) {
  require(frames.width == width_ && frames.height == height_, StatusCode::invalid_argument,
          "cannot write to '" + path_.string() + "': frames are " + std::to_string(frames.width) + "x" +
              std::to_string(frames.height) + ", the stream is " + std::to_string(width_) + "x" +
              std::to_string(height_));
  require(frames.frames >= 0 && frames.rgb.size() == size_t(frames.frames) * frames.frame_bytes(),
          StatusCode::invalid_argument,
          "cannot write to '" + path_.string() + "': the video's rgb buffer does not hold frames x height x width x 3 bytes");
  for (int t = 0; t < frames.frames; ++t) write_frame(frames.frame(t));
}

void VideoStreamWriter::write_frame(const uint8_t* rgb) {
  require(encoder_ != nullptr, StatusCode::invalid_argument,
          "cannot write to '" + path_.string() + "': the stream is closed (or a write failed)");
  require(rgb != nullptr, StatusCode::invalid_argument, "cannot write to '" + path_.string() + "': null frame");
  try {
    encoder_->write(rgb);
  } catch (...) {
    encoder_.reset();  // the temporary goes with it
    throw;
  }
  ++frames_;
}

void VideoStreamWriter::close() {
  require(encoder_ != nullptr, StatusCode::invalid_argument,
          "cannot close '" + path_.string() + "': the stream is already closed (or a write failed)");
  std::unique_ptr<video::FrameEncoder> enc = std::move(encoder_);
  require(frames_ >= 1, StatusCode::invalid_argument,
          "cannot write '" + path_.string() + "': no frames were written (nothing is left behind)");
  enc->finish();
}

}  // namespace reel
