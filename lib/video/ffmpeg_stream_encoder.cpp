// The mp4 (H.264, libx264) / webm (VP9, libvpx-vp9) encoder behind VideoStreamWriter and
// write_video (docs/video_io.md): frames are converted by reel's own RGB -> yuv420p (BT.709
// limited range, centred chroma; yuv.hpp) and tagged as such; the encoder and muxer stay open
// between frames, so a clip is encoded as it is produced. Guarded by REEL_HAVE_FFMPEG.
#include <algorithm>
#include <memory>
#include <string>

#include "reel/status.hpp"
#include "video/stream_codecs.hpp"
#include "video/video_writers.hpp"

#if REEL_HAVE_FFMPEG
extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
}

#include <cstring>

#include "video/atomic_output.hpp"
#include "video/ffmpeg_common.hpp"
#include "video/yuv.hpp"
#endif

namespace reel::video {
namespace fs = std::filesystem;

#if !REEL_HAVE_FFMPEG

std::unique_ptr<FrameEncoder> open_ffmpeg_encoder(const fs::path& path, int, int, double, VideoFormat format,
                                                  const VideoWriteOptions&) {
  throw Error(StatusCode::unsupported,
              "cannot write '" + path.string() + "': " + std::string(video_format_name(format)) +
                  " needs FFmpeg's libraries, and this build of reel has none (rebuild with -DREEL_FFMPEG=ON); "
                  ".y4m and PNG frames always work");
}

#else

namespace {

struct MuxerDeleter {  // closes the file before freeing the muxer
  void operator()(AVFormatContext* c) const {
    if (c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};

class FfmpegEncoder final : public FrameEncoder {
 public:
  FfmpegEncoder(const fs::path& path, int width, int height, double fps, VideoFormat format,
                const VideoWriteOptions& options)
      : path_(path), src_width_(width), src_height_(height) {
    const bool mp4 = format == VideoFormat::mp4;
    const int max_crf = mp4 ? 51 : 63;
    require(options.crf == -1 || (options.crf >= 0 && options.crf <= max_crf), StatusCode::invalid_argument,
            where() + "crf " + std::to_string(options.crf) + " is outside 0.." + std::to_string(max_crf) +
                " (or -1 for the default)");
    width_ = width, height_ = height;
    if (mp4 && (width % 2 || height % 2)) {
      require(options.odd_size == OddSize::pad, StatusCode::invalid_argument,
              where() + "H.264 yuv420p needs an even width and height, the video is " + std::to_string(width) + "x" +
                  std::to_string(height) + " (OddSize::pad repeats the last column/row)");
      width_ += width % 2;
      height_ += height % 2;
    }
    const AVCodec* codec = find_ffmpeg_encoder(format);
    if (!codec)
      fail(StatusCode::unsupported, std::string("this FFmpeg has no ") + ffmpeg_encoder_name(format) + " encoder");

    out_ = std::make_unique<AtomicOutput>(path, AtomicOutput::Kind::file);
    AVFormatContext* mux = nullptr;
    route_ffmpeg_log();
    check(avformat_alloc_output_context2(&mux, nullptr, mp4 ? "mp4" : "webm", out_->temp_path().c_str()),
          "avformat_alloc_output_context2");
    mux_.reset(mux);
    stream_ = avformat_new_stream(mux_.get(), nullptr);
    if (!stream_) fail(StatusCode::out_of_memory, "avformat_new_stream failed");
    enc_.reset(avcodec_alloc_context3(codec));
    if (!enc_) fail(StatusCode::out_of_memory, "avcodec_alloc_context3 failed");
    const Rational r = fps_rational(fps);
    const AVRational rate{r.num, r.den};
    enc_->width = width_;
    enc_->height = height_;
    enc_->pix_fmt = AV_PIX_FMT_YUV420P;
    enc_->time_base = av_inv_q(rate);
    enc_->framerate = rate;
    enc_->sample_aspect_ratio = AVRational{1, 1};
    enc_->color_range = AVCOL_RANGE_MPEG;
    enc_->colorspace = AVCOL_SPC_BT709;
    enc_->color_primaries = AVCOL_PRI_BT709;
    enc_->color_trc = AVCOL_TRC_BT709;
    enc_->chroma_sample_location = AVCHROMA_LOC_CENTER;
    enc_->thread_count = 0;  // FFmpeg picks
    // Demote the encoder's messages by one level: its banner and statistics (info) stay quiet at
    // FFmpeg's default log level, warnings and errors still show. Global log settings are left alone.
    enc_->log_level_offset = AV_LOG_VERBOSE - AV_LOG_INFO;
    if (mux_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    // The same frames give the same file: no creation time, random segment id or version
    // string from the muxer (WebM differed in 16 bytes between identical runs).
    mux_->flags |= AVFMT_FLAG_BITEXACT;
    enc_->flags |= AV_CODEC_FLAG_BITEXACT;
    AVDictionary* opts = nullptr;
    const int crf = options.crf >= 0 ? options.crf : (mp4 ? 18 : 24);
    av_dict_set(&opts, "crf", std::to_string(crf).c_str(), 0);
    if (mp4) {
      av_dict_set(&opts, "preset", "medium", 0);
    } else {
      enc_->bit_rate = 0;
      av_dict_set(&opts, "deadline", "good", 0);
      av_dict_set(&opts, "cpu-used", "4", 0);
      av_dict_set(&opts, "row-mt", "1", 0);
    }
    const int rc = avcodec_open2(enc_.get(), codec, &opts);
    av_dict_free(&opts);
    check(rc, "opening the encoder");
    check(avcodec_parameters_from_context(stream_->codecpar, enc_.get()), "avcodec_parameters_from_context");
    stream_->time_base = enc_->time_base;
    stream_->avg_frame_rate = rate;
    stream_->r_frame_rate = rate;
    check(avio_open(&mux_->pb, out_->temp_path().c_str(), AVIO_FLAG_WRITE), "opening the file");
    AVDictionary* mux_opts = nullptr;
    if (mp4) av_dict_set(&mux_opts, "movflags", "+faststart", 0);  // moov moved to the front on close
    const int hrc = avformat_write_header(mux_.get(), &mux_opts);
    av_dict_free(&mux_opts);
    check(hrc, "writing the header");

    packet_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!packet_ || !frame_) fail(StatusCode::out_of_memory, "allocating a frame");
    frame_->format = AV_PIX_FMT_YUV420P;
    frame_->width = width_;
    frame_->height = height_;
    frame_->color_range = AVCOL_RANGE_MPEG;
    frame_->colorspace = AVCOL_SPC_BT709;
    frame_->color_primaries = AVCOL_PRI_BT709;
    frame_->color_trc = AVCOL_TRC_BT709;
    frame_->chroma_location = AVCHROMA_LOC_CENTER;
    check(av_frame_get_buffer(frame_.get(), 0), "allocating a frame");
    if (width_ != src_width_ || height_ != src_height_) even_.resize(size_t(width_) * height_ * 3);
  }

  void write(const uint8_t* rgb) override {
    check(av_frame_make_writable(frame_.get()), "av_frame_make_writable");
    if (!even_.empty()) {  // repeat the last column / row up to even sizes
      for (int y = 0; y < height_; ++y) {
        const uint8_t* s = rgb + size_t(std::min(y, src_height_ - 1)) * src_width_ * 3;
        uint8_t* d = even_.data() + size_t(y) * width_ * 3;
        std::memcpy(d, s, size_t(src_width_) * 3);
        for (int x = src_width_; x < width_; ++x) std::memcpy(d + x * 3, s + (src_width_ - 1) * 3, 3);
      }
      rgb = even_.data();
    }
    rgb_to_yuv(rgb, width_, height_, YuvMatrix::bt709, true,
               YuvPlanes{frame_->data[0], frame_->linesize[0], frame_->data[1], frame_->linesize[1], frame_->data[2],
                         frame_->linesize[2]});
    frame_->pts = pts_++;
    check(avcodec_send_frame(enc_.get(), frame_.get()), "encoding");
    drain();
  }

  void finish() override {
    check(avcodec_send_frame(enc_.get(), nullptr), "flushing the encoder");
    drain();
    check(av_write_trailer(mux_.get()), "writing the trailer");
    check(avio_closep(&mux_->pb), "closing the file");
    out_->commit();
  }

 private:
  std::string where() const { return "cannot write '" + path_.string() + "': "; }
  [[noreturn]] void fail(StatusCode code, const std::string& why) const { throw Error(code, where() + why); }
  void check(int rc, const char* step) const {
    if (rc < 0)
      fail(av_status(rc, StatusCode::io_error), std::string(step) + " failed: " + av_error_string(rc));
  }
  void drain() {
    for (;;) {
      const int rc = avcodec_receive_packet(enc_.get(), packet_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      check(rc, "encoding");
      if (packet_->duration == 0) packet_->duration = 1;  // one frame, in the codec time base
      av_packet_rescale_ts(packet_.get(), enc_->time_base, stream_->time_base);
      packet_->stream_index = stream_->index;
      check(av_interleaved_write_frame(mux_.get(), packet_.get()), "writing a packet");
    }
  }

  fs::path path_;
  int src_width_, src_height_, width_ = 0, height_ = 0;
  // Declared before the libav objects, so destroyed after them (the file is closed first); it
  // removes the temporary unless finish() committed it.
  std::unique_ptr<AtomicOutput> out_;
  std::unique_ptr<AVFormatContext, MuxerDeleter> mux_;
  AVStream* stream_ = nullptr;  // owned by mux_
  AvCodecContextPtr enc_;
  AvPacketPtr packet_;
  AvFramePtr frame_;
  std::vector<uint8_t> even_;
  int64_t pts_ = 0;
};

}  // namespace

std::unique_ptr<FrameEncoder> open_ffmpeg_encoder(const fs::path& path, int width, int height, double fps,
                                                  VideoFormat format, const VideoWriteOptions& options) {
  return std::make_unique<FfmpegEncoder>(path, width, height, fps, format, options);
}

#endif

}  // namespace reel::video
