// write_video's mp4 (H.264) / webm (VP9) output: the whole clip through the streaming encoder
// of ffmpeg_stream_encoder.cpp (open, write every frame, finish), and whether this build can
// write the format. Builds without FFmpeg (no REEL_HAVE_FFMPEG) answer `unsupported`.
#include <string>

#include "reel/status.hpp"
#include "video/stream_codecs.hpp"
#include "video/video_writers.hpp"

#if REEL_HAVE_FFMPEG
#include "video/ffmpeg_common.hpp"
#endif

namespace reel::video {
namespace fs = std::filesystem;

#if !REEL_HAVE_FFMPEG

bool ffmpeg_encoder_available(VideoFormat) { return false; }

void write_ffmpeg(const Video&, const fs::path& path, VideoFormat format, const VideoWriteOptions&) {
  throw Error(StatusCode::unsupported,
              "cannot write '" + path.string() + "': " + std::string(video_format_name(format)) +
                  " needs FFmpeg's libraries, and this build of reel has none (rebuild with -DREEL_FFMPEG=ON "
                  "and libavcodec/libavformat/libavutil/libswscale installed); .y4m and PNG frames always work");
}

#else

bool ffmpeg_encoder_available(VideoFormat format) {
  if (format != VideoFormat::mp4 && format != VideoFormat::webm) return false;
  return find_ffmpeg_encoder(format) != nullptr;
}

void write_ffmpeg(const Video& video, const fs::path& path, VideoFormat format, const VideoWriteOptions& options) {
  encode_all(*open_ffmpeg_encoder(path, video.width, video.height, video.fps, format, options), video);
}

#endif

}  // namespace reel::video
