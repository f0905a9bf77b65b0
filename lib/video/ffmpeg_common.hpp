// Internal: the FFmpeg pieces shared by the mp4/webm encoder and the video decoder: which
// encoder a format uses, libav error strings and codes, and owners of libav objects.
// Only for code built with REEL_HAVE_FFMPEG.
//
//   const AVCodec* codec = find_ffmpeg_encoder(VideoFormat::mp4);   // libx264, or nullptr
//   AvCodecContextPtr enc(avcodec_alloc_context3(codec));            // freed on any exit
//   if (rc < 0) throw Error(av_status(rc, StatusCode::io_error), "encoding failed: " + av_error_string(rc));
#pragma once
#if !REEL_HAVE_FFMPEG
#error "ffmpeg_common.hpp needs REEL_HAVE_FFMPEG"
#endif

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
}

#include <memory>
#include <string>

#include "reel/status.hpp"
#include "reel/video_io.hpp"

namespace reel::video {

// The libavcodec encoder reel uses for `format`: "libx264" for mp4, "libvpx-vp9" for webm.
const char* ffmpeg_encoder_name(VideoFormat format);
// That encoder, or nullptr when this FFmpeg has none.
const AVCodec* find_ffmpeg_encoder(VideoFormat format);

// libav's text for an AVERROR code.
std::string av_error_string(int err);
// out_of_memory for AVERROR(ENOMEM), else `otherwise`.
StatusCode av_status(int err, StatusCode otherwise);
// From the first call on, FFmpeg's own log lines (warnings and errors) go to reel's log handler
// (reel::set_log_handler, off by default) instead of stderr. FFmpeg has one log callback per
// process: an application that sets its own after this call takes them back.
void route_ffmpeg_log();

// Owners that free on any exit, also from a constructor that throws halfway.
struct AvCodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct AvFrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct AvPacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
using AvCodecContextPtr = std::unique_ptr<AVCodecContext, AvCodecContextDeleter>;
using AvFramePtr = std::unique_ptr<AVFrame, AvFrameDeleter>;
using AvPacketPtr = std::unique_ptr<AVPacket, AvPacketDeleter>;

}  // namespace reel::video
