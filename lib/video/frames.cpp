// reel::Video: validation, float-to-uint8 conversion, format choice by path, write_video.
#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <string>

#include "parallel.hpp"
#include "reel/video_io.hpp"
#include "reel/status.hpp"
#include "video/atomic_output.hpp"
#include "video/video_writers.hpp"

namespace reel {
namespace {

constexpr int kMaxSide = 32768;  // larger than any codec here accepts; keeps sizes in int range

void check_size(int frames, int height, int width, const char* what) {
  require(frames >= 1 && height >= 1 && width >= 1, StatusCode::invalid_argument,
          std::string(what) + ": frames, height and width must be at least 1 (got " + std::to_string(frames) + ", " +
              std::to_string(height) + ", " + std::to_string(width) + ")");
  require(height <= kMaxSide && width <= kMaxSide, StatusCode::invalid_argument,
          std::string(what) + ": " + std::to_string(width) + "x" + std::to_string(height) +
              " is larger than the " + std::to_string(kMaxSide) + " pixels per side reel writes");
}

void check_fps(double fps, const char* what) {
  require(std::isfinite(fps) && fps > 0 && fps <= 1000, StatusCode::invalid_argument,
          std::string(what) + ": fps must be in (0, 1000] (got " + std::to_string(fps) + ")");
}

}  // namespace

Video Video::blank(int frames, int height, int width, double fps) {
  check_size(frames, height, width, "Video::blank");
  check_fps(fps, "Video::blank");
  Video v;
  v.frames = frames;
  v.height = height;
  v.width = width;
  v.fps = fps;
  v.rgb.assign(size_t(frames) * v.frame_bytes(), 0);
  return v;
}

void Video::validate() const {
  check_size(frames, height, width, "video");
  check_fps(fps, "video");
  require(rgb.size() == size_t(frames) * frame_bytes(), StatusCode::invalid_argument,
          "video: rgb holds " + std::to_string(rgb.size()) + " bytes but frames x height x width x 3 = " +
              std::to_string(size_t(frames) * frame_bytes()));
}

Video video_from_floats(const Tensor& frames, FrameLayout layout, PixelRange range, double fps) {
  require(frames.defined(), StatusCode::invalid_argument, "video_from_floats: the frames tensor is undefined");
  require(frames.dtype() != DType::i32, StatusCode::invalid_argument,
          "video_from_floats: frames must be f32, bf16 or f16 (got i32)");
  const Shape& s = frames.shape();
  int64_t t = 0, h = 0, w = 0, c = 0;
  if (layout == FrameLayout::thwc) {
    if (s.rank() == 3) {
      t = 1, h = s[0], w = s[1], c = s[2];
    } else if (s.rank() == 4) {
      t = s[0], h = s[1], w = s[2], c = s[3];
    } else {
      c = -1;
    }
  } else {
    if (s.rank() == 4) {
      c = s[0], t = s[1], h = s[2], w = s[3];
    } else if (s.rank() == 5 && s[0] == 1) {
      c = s[1], t = s[2], h = s[3], w = s[4];
    } else {
      c = -1;
    }
  }
  require(c == 3, StatusCode::invalid_argument,
          "video_from_floats: frames of shape " + s.str() +
              (layout == FrameLayout::thwc ? " are not [T, H, W, 3] or [H, W, 3]" : " are not [3, T, H, W] or [1, 3, T, H, W]"));
  require(t <= INT_MAX && h <= INT_MAX && w <= INT_MAX, StatusCode::invalid_argument,
          "video_from_floats: frames of shape " + s.str() + " are too large");
  check_size(int(t), int(h), int(w), "video_from_floats");
  check_fps(fps, "video_from_floats");

  const Tensor host = frames.to(Device::cpu());
  std::vector<float> converted;
  const float* src;
  if (host.dtype() == DType::f32) {
    src = host.data<float>();
  } else {
    converted = host.to_floats();
    src = converted.data();
  }

  Video v = Video::blank(int(t), int(h), int(w), fps);
  uint8_t* dst = v.rgb.data();
  const int64_t plane = t * h * w;  // cthw: elements per channel
  parallel_for(t * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      uint8_t* out = dst + row * w * 3;
      if (layout == FrameLayout::thwc) {
        const float* in = src + row * w * 3;
        for (int64_t i = 0; i < w * 3; ++i) out[i] = pixel_to_u8(in[i], range);
      } else {
        const float* in = src + row * w;
        for (int64_t x = 0; x < w; ++x)
          for (int ch = 0; ch < 3; ++ch) out[x * 3 + ch] = pixel_to_u8(in[ch * plane + x], range);
      }
    }
  });
  return v;
}

std::string_view video_format_name(VideoFormat format) {
  switch (format) {
    case VideoFormat::mp4: return "mp4 (H.264)";
    case VideoFormat::webm: return "webm (VP9)";
    case VideoFormat::y4m: return "y4m (YUV4MPEG2)";
    case VideoFormat::png: return "png (one frame)";
    case VideoFormat::png_folder: return "folder of PNG frames";
  }
  return "?";
}

VideoFormat video_format_for_path(const std::filesystem::path& path) {
  const std::string& s = path.native();
  if (!s.empty() && s.back() == '/') return VideoFormat::png_folder;
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  if (ext == ".mp4") return VideoFormat::mp4;
  if (ext == ".webm") return VideoFormat::webm;
  if (ext == ".y4m") return VideoFormat::y4m;
  if (ext == ".png") return VideoFormat::png;
  throw Error(StatusCode::invalid_argument,
              "cannot tell the video format of '" + s +
                  "': use a path ending in .mp4, .webm, .y4m, .png (one frame) or '/' (a folder of PNG frames)");
}

bool video_format_available(VideoFormat format) {
  if (format == VideoFormat::mp4 || format == VideoFormat::webm) return video::ffmpeg_encoder_available(format);
  return true;
}

void check_video_path(const std::filesystem::path& path) {
  const VideoFormat format = video_format_for_path(path);
  if (!video_format_available(format))
    throw Error(StatusCode::unsupported, "cannot write '" + path.string() + "': this build cannot write " +
                                             std::string(video_format_name(format)) +
                                             " (built without FFmpeg or its encoder); use a .y4m or .png output");
  // Reserves (and on leaving scope removes) the temporary name write_video would use.
  const video::AtomicOutput probe(
      path, format == VideoFormat::png_folder ? video::AtomicOutput::Kind::directory : video::AtomicOutput::Kind::file);
}

void write_video(const Video& video, const std::filesystem::path& path, const VideoWriteOptions& options) {
  video.validate();
  const VideoFormat format = video_format_for_path(path);
  switch (format) {
    case VideoFormat::mp4:
    case VideoFormat::webm: video::write_ffmpeg(video, path, format, options); return;
    case VideoFormat::y4m: video::write_y4m(video, path, options.y4m_chroma); return;
    case VideoFormat::png: video::write_png_frame(video, path); return;
    case VideoFormat::png_folder: video::write_png_folder(video, path); return;
  }
}

namespace video {

Rational fps_rational(double fps) {
  // Continued-fraction convergents of fps, stopping when exact (to 1e-9) or the denominator
  // would pass 1001000.
  int64_t h0 = 0, h1 = 1, k0 = 1, k1 = 0;
  double r = fps;
  for (int i = 0; i < 64; ++i) {
    const double a = std::floor(r);
    const int64_t h2 = int64_t(a) * h1 + h0, k2 = int64_t(a) * k1 + k0;
    if (k2 > 1001000 || h2 > INT_MAX) break;
    h0 = h1, h1 = h2, k0 = k1, k1 = k2;
    const double frac = r - a;
    if (std::abs(fps - double(h1) / double(k1)) <= 1e-9 * fps || frac < 1e-12) break;
    r = 1.0 / frac;
  }
  if (k1 == 0) return {int(std::lround(fps)), 1};
  return {int(h1), int(k1)};
}

}  // namespace video
}  // namespace reel
