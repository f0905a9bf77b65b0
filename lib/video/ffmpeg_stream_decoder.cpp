// Reading mp4 / webm / mkv / mov frame by frame for VideoStreamReader (continuing an existing
// video): libavformat demuxes the best video stream, libavcodec decodes it, libswscale turns
// each frame into RGB24 using the stream's colour tags (BT.709 when untagged at HD sizes,
// BT.601 below, as FFmpeg assumes). Guarded by REEL_HAVE_FFMPEG.
#include <string>

#include "regular_file.hpp"
#include "reel/status.hpp"
#include "video/stream_codecs.hpp"

#if REEL_HAVE_FFMPEG
extern "C" {
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <memory>

#include "video/ffmpeg_common.hpp"
#endif

namespace reel::video {
namespace fs = std::filesystem;

#if !REEL_HAVE_FFMPEG

std::unique_ptr<FrameDecoder> open_ffmpeg_decoder(const fs::path& path) {
  throw Error(StatusCode::unsupported, "cannot read '" + path.string() +
                                           "': this build of reel has no FFmpeg (rebuild with -DREEL_FFMPEG=ON), "
                                           "convert it to .y4m or PNG frames first");
}

#else

namespace {

constexpr int kMaxSide = 32768;

struct InputDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct ScaleDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

class FfmpegDecoder final : public FrameDecoder {
 public:
  explicit FfmpegDecoder(const fs::path& path) : path_(path) {
    detail::require_regular_file(path, "video");  // FFmpeg would wait on a FIFO forever
    route_ffmpeg_log();
    AVFormatContext* fc = nullptr;
    const int orc = avformat_open_input(&fc, path.c_str(), nullptr, nullptr);
    if (orc < 0)
      throw Error(orc == AVERROR(ENOENT) ? StatusCode::not_found : StatusCode::bad_format,
                  "cannot read '" + path.string() + "': " + av_error_string(orc));
    input_.reset(fc);
    check(avformat_find_stream_info(fc, nullptr), "reading the stream info");
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ < 0 || !codec) fail("it has no video stream reel can decode");
    const AVStream* st = fc->streams[stream_];
    dec_.reset(avcodec_alloc_context3(codec));
    if (!dec_) fail("avcodec_alloc_context3 failed");
    check(avcodec_parameters_to_context(dec_.get(), st->codecpar), "avcodec_parameters_to_context");
    check(avcodec_open2(dec_.get(), codec, nullptr), "opening the decoder");
    width = dec_->width;
    height = dec_->height;
    if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
      fail("its size " + std::to_string(width) + "x" + std::to_string(height) + " is out of range");
    if (int64_t(width) * height > kMaxDecodedPixels)
      throw Error(StatusCode::unsupported, "cannot read '" + path_.string() + "': its frames are " + std::to_string(width) +
                                               "x" + std::to_string(height) +
                                               ", more than reel decodes (2^26 = 67 M pixels, e.g. 8192x8192)");
    const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    if (rate.num > 0 && rate.den > 0) fps = av_q2d(rate);
    if (!(fps > 0 && fps <= 1000)) fps = 16.0;
    packet_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!packet_ || !frame_) fail("allocating a frame");
  }

  bool read(std::vector<uint8_t>& rgb) override {
    for (;;) {
      const int rc = avcodec_receive_frame(dec_.get(), frame_.get());
      if (rc >= 0) {
        convert(rgb);
        const int64_t ts = frame_->best_effort_timestamp;
        if (ts != AV_NOPTS_VALUE) last_frame_seconds_ = double(ts) * av_q2d(input_->streams[stream_]->time_base);
        av_frame_unref(frame_.get());
        return true;
      }
      if (rc == AVERROR_EOF) {
        check_complete();
        return false;
      }
      if (rc != AVERROR(EAGAIN)) check(rc, "decoding");
      if (flushed_) return false;
      // Feed the next packet of our stream (or the end-of-stream marker).
      for (;;) {
        const int r = av_read_frame(input_.get(), packet_.get());
        if (r == AVERROR_EOF) {
          check(avcodec_send_packet(dec_.get(), nullptr), "flushing the decoder");
          flushed_ = true;
          break;
        }
        check(r, "reading a packet");
        const bool ours = packet_->stream_index == stream_;
        const int s = ours ? avcodec_send_packet(dec_.get(), packet_.get()) : 0;
        av_packet_unref(packet_.get());
        check(s, "decoding");
        if (ours) break;
      }
    }
  }

 private:
  void convert(std::vector<uint8_t>& rgb) {
    if (frame_->width != width || frame_->height != height)
      fail("the frame size changes within the stream (" + std::to_string(frame_->width) + "x" +
           std::to_string(frame_->height) + ")");
    if (!scale_) {
      scale_.reset(sws_getContext(width, height, AVPixelFormat(frame_->format), width, height, AV_PIX_FMT_RGB24,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
      if (!scale_) fail("libswscale cannot convert its pixel format to RGB");
      // The stream's matrix and range (limited unless tagged full); RGB output is full range.
      const int space = frame_->colorspace != AVCOL_SPC_UNSPECIFIED ? int(frame_->colorspace)
                                                                     : (height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601);
      const int* coefs = sws_getCoefficients(space);
      sws_setColorspaceDetails(scale_.get(), coefs, frame_->color_range == AVCOL_RANGE_JPEG ? 1 : 0,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    rgb.resize(size_t(width) * height * 3);
    uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
    const int stride[4] = {width * 3, 0, 0, 0};
    sws_scale(scale_.get(), frame_->data, frame_->linesize, 0, height, dst, stride);
  }

  // A truncated file reads as a clean end of stream: compare where the frames stopped with the
  // length the container declares for the video stream (when it declares one).
  void check_complete() const {
    const AVStream* st = input_->streams[stream_];
    double declared = -1;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
      declared = double(st->duration) * av_q2d(st->time_base);
      if (st->start_time != AV_NOPTS_VALUE) declared += double(st->start_time) * av_q2d(st->time_base);
    } else if (input_->nb_streams == 1 && input_->duration != AV_NOPTS_VALUE && input_->duration > 0) {
      declared = double(input_->duration) / AV_TIME_BASE;
      if (input_->start_time != AV_NOPTS_VALUE) declared += double(input_->start_time) / AV_TIME_BASE;
    }
    if (declared <= 0 || fps <= 0) return;
    const double end = last_frame_seconds_ < 0 ? 0.0 : last_frame_seconds_ + 1.0 / fps;
    if (end + 1.5 / fps < declared)
      fail("it is truncated: the container declares " + std::to_string(declared) + " s of video, the frames end at " +
           std::to_string(end) + " s");
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(StatusCode::bad_format, "cannot read '" + path_.string() + "': " + why);
  }
  void check(int rc, const char* step) const {
    if (rc < 0)
      throw Error(av_status(rc, StatusCode::bad_format),
                  "cannot read '" + path_.string() + "': " + step + " failed: " + av_error_string(rc));
  }

  fs::path path_;
  std::unique_ptr<AVFormatContext, InputDeleter> input_;
  AvCodecContextPtr dec_;
  AvPacketPtr packet_;
  AvFramePtr frame_;
  std::unique_ptr<SwsContext, ScaleDeleter> scale_;
  int stream_ = -1;
  bool flushed_ = false;
  double last_frame_seconds_ = -1;  // timestamp of the last frame handed out
};

}  // namespace

std::unique_ptr<FrameDecoder> open_ffmpeg_decoder(const fs::path& path) {
  return std::make_unique<FfmpegDecoder>(path);
}

#endif

}  // namespace reel::video
