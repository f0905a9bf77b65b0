// The FFmpeg helpers of ffmpeg_common.hpp (encoder lookup, error strings). Built only with
// REEL_HAVE_FFMPEG.
#if REEL_HAVE_FFMPEG
#include "video/ffmpeg_common.hpp"

extern "C" {
#include <libavutil/error.h>
}

namespace reel::video {

const char* ffmpeg_encoder_name(VideoFormat format) { return format == VideoFormat::mp4 ? "libx264" : "libvpx-vp9"; }

const AVCodec* find_ffmpeg_encoder(VideoFormat format) {
  return avcodec_find_encoder_by_name(ffmpeg_encoder_name(format));
}

std::string av_error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

StatusCode av_status(int err, StatusCode otherwise) {
  return err == AVERROR(ENOMEM) ? StatusCode::out_of_memory : otherwise;
}

}  // namespace reel::video
#endif
