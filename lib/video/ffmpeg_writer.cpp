// mp4 (H.264, libx264) and webm (VP9, libvpx-vp9) output through FFmpeg's libraries, guarded
// by REEL_HAVE_FFMPEG so the library builds without them. Frames are converted by reel's own
// RGB -> yuv420p (BT.709 limited range, centred chroma; yuv.hpp) and tagged as such.
#include <string>

#include "reel/status.hpp"
#include "video/video_writers.hpp"

#if REEL_HAVE_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
}

#include <cstring>
#include <memory>

#include "video/atomic_output.hpp"
#include "video/yuv.hpp"
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

namespace {

const char* encoder_name(VideoFormat format) { return format == VideoFormat::mp4 ? "libx264" : "libvpx-vp9"; }

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct Dict {
  AVDictionary* d = nullptr;
  ~Dict() { av_dict_free(&d); }
  void set(const char* key, const std::string& value) { av_dict_set(&d, key, value.c_str(), 0); }
};
// Owns the muxer and the file it writes; closes the file before freeing the muxer.
struct Muxer {
  AVFormatContext* ctx = nullptr;
  ~Muxer() {
    if (!ctx) return;
    if (ctx->pb) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};

// Copies an odd-sized frame into an even-sized buffer, repeating the last column and row.
void pad_to_even(const uint8_t* src, int w, int h, uint8_t* dst, int pw, int ph) {
  for (int y = 0; y < ph; ++y) {
    const uint8_t* s = src + size_t(std::min(y, h - 1)) * w * 3;
    uint8_t* d = dst + size_t(y) * pw * 3;
    std::memcpy(d, s, size_t(w) * 3);
    for (int x = w; x < pw; ++x) std::memcpy(d + x * 3, s + (w - 1) * 3, 3);
  }
}

}  // namespace

bool ffmpeg_encoder_available(VideoFormat format) {
  if (format != VideoFormat::mp4 && format != VideoFormat::webm) return false;
  return avcodec_find_encoder_by_name(encoder_name(format)) != nullptr;
}

void write_ffmpeg(const Video& video, const fs::path& path, VideoFormat format, const VideoWriteOptions& options) {
  const bool mp4 = format == VideoFormat::mp4;
  const std::string where = "cannot write '" + path.string() + "': ";
  auto fail = [&](StatusCode code, const std::string& why) { throw Error(code, where + why); };
  auto check = [&](int rc, const char* step) {
    if (rc < 0) fail(rc == AVERROR(ENOMEM) ? StatusCode::out_of_memory : StatusCode::io_error,
                     std::string(step) + " failed: " + av_error(rc));
  };

  const int max_crf = mp4 ? 51 : 63;
  require(options.crf == -1 || (options.crf >= 0 && options.crf <= max_crf), StatusCode::invalid_argument,
          where + "crf " + std::to_string(options.crf) + " is outside 0.." + std::to_string(max_crf) +
              " (or -1 for the default)");
  int width = video.width, height = video.height;
  if (mp4 && (width % 2 || height % 2)) {
    require(options.odd_size == OddSize::pad, StatusCode::invalid_argument,
            where + "H.264 yuv420p needs an even width and height, the video is " + std::to_string(width) + "x" +
                std::to_string(height) + " (OddSize::pad repeats the last column/row)");
    width += width % 2;
    height += height % 2;
  }

  const AVCodec* codec = avcodec_find_encoder_by_name(encoder_name(format));
  if (!codec)
    fail(StatusCode::unsupported, std::string("this FFmpeg has no ") + encoder_name(format) + " encoder");

  AtomicOutput out(path, AtomicOutput::Kind::file);
  Muxer mux;
  check(avformat_alloc_output_context2(&mux.ctx, nullptr, mp4 ? "mp4" : "webm", out.temp_path().c_str()),
        "avformat_alloc_output_context2");
  AVStream* stream = avformat_new_stream(mux.ctx, nullptr);
  if (!stream) fail(StatusCode::out_of_memory, "avformat_new_stream failed");

  std::unique_ptr<AVCodecContext, CodecContextDeleter> enc(avcodec_alloc_context3(codec));
  if (!enc) fail(StatusCode::out_of_memory, "avcodec_alloc_context3 failed");
  const Rational r = fps_rational(video.fps);
  const AVRational rate{r.num, r.den};
  enc->width = width;
  enc->height = height;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->sample_aspect_ratio = AVRational{1, 1};
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = AVCOL_SPC_BT709;
  enc->color_primaries = AVCOL_PRI_BT709;
  enc->color_trc = AVCOL_TRC_BT709;
  enc->chroma_sample_location = AVCHROMA_LOC_CENTER;
  enc->thread_count = 0;  // FFmpeg picks
  // Demote the encoder's messages by one level: its banner and statistics (info) stay quiet at
  // FFmpeg's default log level, warnings and errors still show. Global log settings are left alone.
  enc->log_level_offset = AV_LOG_VERBOSE - AV_LOG_INFO;
  if (mux.ctx->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  Dict codec_opts;
  const int crf = options.crf >= 0 ? options.crf : (mp4 ? 18 : 24);
  codec_opts.set("crf", std::to_string(crf));
  if (mp4) {
    codec_opts.set("preset", "medium");
  } else {
    enc->bit_rate = 0;  // with crf: constant quality
    codec_opts.set("deadline", "good");
    codec_opts.set("cpu-used", "4");
    codec_opts.set("row-mt", "1");
  }
  check(avcodec_open2(enc.get(), codec, &codec_opts.d), "opening the encoder");
  check(avcodec_parameters_from_context(stream->codecpar, enc.get()), "avcodec_parameters_from_context");
  stream->time_base = enc->time_base;
  stream->avg_frame_rate = rate;
  stream->r_frame_rate = rate;

  check(avio_open(&mux.ctx->pb, out.temp_path().c_str(), AVIO_FLAG_WRITE), "opening the file");
  Dict mux_opts;
  if (mp4) mux_opts.set("movflags", "+faststart");
  check(avformat_write_header(mux.ctx, &mux_opts.d), "writing the header");

  std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  if (!packet || !frame) fail(StatusCode::out_of_memory, "allocating a frame");
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = width;
  frame->height = height;
  frame->color_range = AVCOL_RANGE_MPEG;
  frame->colorspace = AVCOL_SPC_BT709;
  frame->color_primaries = AVCOL_PRI_BT709;
  frame->color_trc = AVCOL_TRC_BT709;
  frame->chroma_location = AVCHROMA_LOC_CENTER;
  check(av_frame_get_buffer(frame.get(), 0), "allocating a frame");

  auto drain = [&]() {
    for (;;) {
      const int rc = avcodec_receive_packet(enc.get(), packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      check(rc, "encoding");
      if (packet->duration == 0) packet->duration = 1;  // one frame, in the codec time base
      av_packet_rescale_ts(packet.get(), enc->time_base, stream->time_base);
      packet->stream_index = stream->index;
      check(av_interleaved_write_frame(mux.ctx, packet.get()), "writing a packet");
    }
  };

  const bool padded = width != video.width || height != video.height;
  std::vector<uint8_t> even(padded ? size_t(width) * height * 3 : 0);
  for (int t = 0; t < video.frames; ++t) {
    check(av_frame_make_writable(frame.get()), "av_frame_make_writable");
    const uint8_t* rgb = video.frame(t);
    if (padded) {
      pad_to_even(rgb, video.width, video.height, even.data(), width, height);
      rgb = even.data();
    }
    rgb_to_yuv(rgb, width, height, YuvMatrix::bt709, true,
               YuvPlanes{frame->data[0], frame->linesize[0], frame->data[1], frame->linesize[1], frame->data[2],
                         frame->linesize[2]});
    frame->pts = t;
    check(avcodec_send_frame(enc.get(), frame.get()), "encoding");
    drain();
  }
  check(avcodec_send_frame(enc.get(), nullptr), "flushing the encoder");
  drain();
  check(av_write_trailer(mux.ctx), "writing the trailer");
  check(avio_closep(&mux.ctx->pb), "closing the file");
  out.commit();
}

#endif

}  // namespace reel::video
