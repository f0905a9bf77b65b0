// The FFmpeg helpers of ffmpeg_common.hpp (encoder lookup, error strings). Built only with
// REEL_HAVE_FFMPEG.
#if REEL_HAVE_FFMPEG
#include "video/ffmpeg_common.hpp"

#include <cstdarg>
#include <mutex>

#include "log.hpp"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
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

namespace {

// FFmpeg's messages at warning level and above, one line each, to reel's log handler.
extern "C" void forward_ffmpeg_log(void* context, int level, const char* format, va_list args) {
  if (level > AV_LOG_WARNING) return;
  char line[1024];
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(context, level, format, copy, line, sizeof line, &print_prefix);
  va_end(copy);
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!text.empty()) log_message("ffmpeg: " + text);
}

}  // namespace

void route_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(forward_ffmpeg_log); });
}

}  // namespace reel::video
#endif
