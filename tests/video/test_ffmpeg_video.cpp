// mp4 (H.264) and webm (VP9): write a smooth clip, decode it back here with libavformat /
// libavcodec, check frame count, size, fps, colour tags and PSNR. Skipped without FFmpeg.
#include "video/video_writers.hpp"
#include "video/yuv.hpp"
#include "video_test_util.hpp"

#if REEL_HAVE_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}
#endif

namespace reel {
namespace {

namespace fs = std::filesystem;
using test::expect_code;
using test::folder_entries;
using test::scratch_dir;

#if REEL_HAVE_FFMPEG

struct Decoded {
  int width = 0, height = 0;
  double fps = 0;
  AVCodecID codec = AV_CODEC_ID_NONE;
  AVColorSpace colorspace = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range = AVCOL_RANGE_UNSPECIFIED;
  std::vector<std::vector<uint8_t>> frames;  // yuv420p, tight: Y, then Cb, then Cr
};

// Decodes every frame of the first video stream; fails the test on any libav error.
Decoded decode(const fs::path& file) {
  Decoded d;
  AVFormatContext* fc = nullptr;
  if (avformat_open_input(&fc, file.c_str(), nullptr, nullptr) < 0) {
    ADD_FAILURE() << "cannot open " << file;
    return d;
  }
  EXPECT_GE(avformat_find_stream_info(fc, nullptr), 0);
  const AVCodec* dec = nullptr;
  const int si = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
  EXPECT_GE(si, 0);
  if (si < 0) {
    avformat_close_input(&fc);
    return d;
  }
  const AVStream* st = fc->streams[si];
  d.codec = st->codecpar->codec_id;
  d.colorspace = st->codecpar->color_space;
  d.range = st->codecpar->color_range;
  d.fps = av_q2d(st->avg_frame_rate);
  AVCodecContext* dc = avcodec_alloc_context3(dec);
  avcodec_parameters_to_context(dc, st->codecpar);
  EXPECT_GE(avcodec_open2(dc, dec, nullptr), 0);
  AVPacket* pkt = av_packet_alloc();
  AVFrame* fr = av_frame_alloc();
  auto receive = [&] {
    while (avcodec_receive_frame(dc, fr) >= 0) {
      EXPECT_EQ(fr->format, AV_PIX_FMT_YUV420P);
      d.width = fr->width;
      d.height = fr->height;
      const int cw = (fr->width + 1) / 2, ch = (fr->height + 1) / 2;
      std::vector<uint8_t> planes;
      for (int y = 0; y < fr->height; ++y)
        planes.insert(planes.end(), fr->data[0] + y * fr->linesize[0], fr->data[0] + y * fr->linesize[0] + fr->width);
      for (int p = 1; p <= 2; ++p)
        for (int y = 0; y < ch; ++y)
          planes.insert(planes.end(), fr->data[p] + y * fr->linesize[p], fr->data[p] + y * fr->linesize[p] + cw);
      d.frames.push_back(std::move(planes));
    }
  };
  while (av_read_frame(fc, pkt) >= 0) {
    if (pkt->stream_index == si) {
      EXPECT_GE(avcodec_send_packet(dc, pkt), 0);
      receive();
    }
    av_packet_unref(pkt);
  }
  avcodec_send_packet(dc, nullptr);
  receive();
  av_frame_free(&fr);
  av_packet_free(&pkt);
  avcodec_free_context(&dc);
  avformat_close_input(&fc);
  return d;
}

// The yuv420p frame the writer fed the encoder: the (padded) clip through reel's BT.709 conversion.
std::vector<uint8_t> expected_yuv(const Video& v, int t, int width, int height) {
  std::vector<uint8_t> rgb(size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      std::memcpy(&rgb[(size_t(y) * width + x) * 3],
                  v.frame(t) + (size_t(std::min(y, v.height - 1)) * v.width + std::min(x, v.width - 1)) * 3, 3);
  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  std::vector<uint8_t> out(size_t(width) * height + 2 * size_t(cw) * ch);
  video::rgb_to_yuv(rgb.data(), width, height, video::YuvMatrix::bt709, true,
                    {out.data(), width, out.data() + size_t(width) * height, cw,
                     out.data() + size_t(width) * height + size_t(cw) * ch, cw});
  return out;
}

// Decoded yuv420p back to RGB in double with the BT.709 limited-range inverse, chroma taken
// from the pixel's 2×2 block (nearest), compared with the original clip's pixels.
double rgb_psnr(const Video& v, int t, const std::vector<uint8_t>& yuv, int width, int height) {
  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  const uint8_t* Y = yuv.data();
  const uint8_t* U = Y + size_t(width) * height;
  const uint8_t* V = U + size_t(cw) * ch;
  const double kr = 0.2126, kb = 0.0722, kg = 1 - kr - kb;
  std::vector<uint8_t> back(v.frame_bytes());
  for (int y = 0; y < v.height; ++y)
    for (int x = 0; x < v.width; ++x) {
      const double e = (Y[y * width + x] - 16.0) / 219.0;
      const double pb = (U[(y / 2) * cw + x / 2] - 128.0) / 224.0, pr = (V[(y / 2) * cw + x / 2] - 128.0) / 224.0;
      const double r = e + 2 * (1 - kr) * pr, b = e + 2 * (1 - kb) * pb, g = (e - kr * r - kb * b) / kg;
      const double c[3] = {r, g, b};
      for (int k = 0; k < 3; ++k) back[(size_t(y) * v.width + x) * 3 + k] = uint8_t(std::clamp(std::lround(255 * c[k]), 0L, 255L));
    }
  return test::psnr(back.data(), v.frame(t), back.size());
}

struct Quality {
  double min_yuv_psnr = 1e9, min_rgb_psnr = 1e9;
};

Quality check_round_trip(const Video& v, const Decoded& d, int width, int height) {
  Quality q;
  EXPECT_EQ(d.width, width);
  EXPECT_EQ(d.height, height);
  EXPECT_EQ(int(d.frames.size()), v.frames);
  EXPECT_EQ(d.colorspace, AVCOL_SPC_BT709);
  EXPECT_EQ(d.range, AVCOL_RANGE_MPEG);
  for (int t = 0; t < v.frames && t < int(d.frames.size()); ++t) {
    const std::vector<uint8_t> want = expected_yuv(v, t, width, height);
    if (d.frames[size_t(t)].size() != want.size()) {
      ADD_FAILURE() << "frame " << t << " has the wrong size";
      continue;
    }
    q.min_yuv_psnr = std::min(q.min_yuv_psnr, test::psnr(d.frames[size_t(t)].data(), want.data(), want.size()));
    q.min_rgb_psnr = std::min(q.min_rgb_psnr, rgb_psnr(v, t, d.frames[size_t(t)], width, height));
  }
  return q;
}

// Bounds. The clip is smooth (gradients, ±2 levels of noise), so a constant-quality encode
// at the default CRF keeps the encoder's input to > 36 dB (yuv420p against what the writer fed
// the encoder: that is the codec's loss alone). Against the RGB original, 4:2:0 chroma with
// nearest upsampling adds its own error: > 30 dB. A wrong matrix, swapped planes or a frame
// shift fall far below both.
constexpr double kMinYuvPsnr = 36.0, kMinRgbPsnr = 30.0;

TEST(FfmpegVideo, Mp4RoundTrip) {
  ASSERT_TRUE(video_format_available(VideoFormat::mp4)) << "FFmpeg build without libx264";
  const fs::path dir = scratch_dir();
  const Video v = test::smooth_clip(17, 48, 64, 16.0, 21);
  write_video(v, dir / "clip.mp4");
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"clip.mp4"});
  const Decoded d = decode(dir / "clip.mp4");
  EXPECT_EQ(d.codec, AV_CODEC_ID_H264);
  EXPECT_NEAR(d.fps, 16.0, 1e-6);
  const Quality q = check_round_trip(v, d, 64, 48);
  std::printf("mp4 64x48x17: min PSNR yuv %.1f dB, rgb %.1f dB\n", q.min_yuv_psnr, q.min_rgb_psnr);
  EXPECT_GT(q.min_yuv_psnr, kMinYuvPsnr);
  EXPECT_GT(q.min_rgb_psnr, kMinRgbPsnr);
}

TEST(FfmpegVideo, WebmRoundTripOddSize) {
  ASSERT_TRUE(video_format_available(VideoFormat::webm)) << "FFmpeg build without libvpx-vp9";
  const fs::path dir = scratch_dir();
  const Video v = test::smooth_clip(13, 25, 33, 24.0, 22);  // VP9 takes odd sizes as they are
  write_video(v, dir / "clip.webm");
  const Decoded d = decode(dir / "clip.webm");
  EXPECT_EQ(d.codec, AV_CODEC_ID_VP9);
  EXPECT_NEAR(d.fps, 24.0, 24.0 * 1e-6);  // Matroska stores the frame duration in whole ns
  const Quality q = check_round_trip(v, d, 33, 25);
  std::printf("webm 33x25x13: min PSNR yuv %.1f dB, rgb %.1f dB\n", q.min_yuv_psnr, q.min_rgb_psnr);
  EXPECT_GT(q.min_yuv_psnr, kMinYuvPsnr);
  EXPECT_GT(q.min_rgb_psnr, kMinRgbPsnr);
}

// Odd sizes in mp4: padded by repeating the last column and row (the file is 1 pixel larger),
// or refused with OddSize::reject before anything is created.
TEST(FfmpegVideo, Mp4OddSizePadsOrRejects) {
  ASSERT_TRUE(video_format_available(VideoFormat::mp4));
  const fs::path dir = scratch_dir();
  const Video v = test::smooth_clip(5, 25, 33, 16.0, 23);
  write_video(v, dir / "odd.mp4");
  const Decoded d = decode(dir / "odd.mp4");
  const Quality q = check_round_trip(v, d, 34, 26);
  EXPECT_GT(q.min_yuv_psnr, kMinYuvPsnr);
  EXPECT_GT(q.min_rgb_psnr, kMinRgbPsnr);

  VideoWriteOptions o;
  o.odd_size = OddSize::reject;
  expect_code(StatusCode::invalid_argument, [&] { write_video(v, dir / "rejected.mp4", o); }, "33x25");
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"odd.mp4"});
}

TEST(FfmpegVideo, LowerCrfGivesHigherQuality) {
  const fs::path dir = scratch_dir();
  const Video v = test::smooth_clip(5, 32, 32, 16.0, 24);
  VideoWriteOptions lo, hi;
  lo.crf = 40;
  hi.crf = 10;
  write_video(v, dir / "lo.mp4", lo);
  write_video(v, dir / "hi.mp4", hi);
  const Quality ql = check_round_trip(v, decode(dir / "lo.mp4"), 32, 32);
  const Quality qh = check_round_trip(v, decode(dir / "hi.mp4"), 32, 32);
  EXPECT_GT(qh.min_yuv_psnr, ql.min_yuv_psnr + 3.0);
  VideoWriteOptions bad;
  bad.crf = 52;
  expect_code(StatusCode::invalid_argument, [&] { write_video(v, dir / "bad.mp4", bad); }, "crf 52");
  bad.crf = 64;
  expect_code(StatusCode::invalid_argument, [&] { write_video(v, dir / "bad.webm", bad); }, "crf 64");
}

TEST(FfmpegVideo, BadPathsGiveIoErrorAndLeaveNothing) {
  const fs::path dir = scratch_dir();
  const Video v = test::smooth_clip(3, 16, 16, 16.0, 25);
  expect_code(StatusCode::io_error, [&] { write_video(v, dir / "missing/clip.mp4"); }, "missing");
  expect_code(StatusCode::io_error, [&] { write_video(v, "/proc/reel_video_test.webm"); }, "/proc/reel_video_test.webm");
  const Video big = test::smooth_clip(8, 64, 64, 16.0, 26);
  {
    test::FileSizeLimit limit(1024);  // a full disk in the middle of the stream
    expect_code(StatusCode::io_error, [&] { write_video(big, dir / "full.mp4"); }, "full.mp4");
    expect_code(StatusCode::io_error, [&] { write_video(big, dir / "full.webm"); }, "full.webm");
  }
  EXPECT_TRUE(folder_entries(dir).empty());
}

#else

TEST(FfmpegVideo, WithoutFfmpegMp4AndWebmAreUnsupported) {
  const fs::path dir = scratch_dir();
  const Video v = Video::blank(1, 4, 4, 16.0);
  EXPECT_FALSE(video_format_available(VideoFormat::mp4));
  EXPECT_FALSE(video_format_available(VideoFormat::webm));
  expect_code(StatusCode::unsupported, [&] { write_video(v, dir / "clip.mp4"); }, "REEL_FFMPEG");
  expect_code(StatusCode::unsupported, [&] { write_video(v, dir / "clip.webm"); }, "REEL_FFMPEG");
  EXPECT_TRUE(folder_entries(dir).empty());
  GTEST_SKIP() << "reel was built without FFmpeg: mp4/webm encode-decode tests skipped";
}

#endif

}  // namespace
}  // namespace reel
