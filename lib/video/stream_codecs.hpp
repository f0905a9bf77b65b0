// Internal: the per-format frame encoders behind reel::VideoStreamWriter and the frame
// decoders behind reel::VideoStreamReader.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "reel/video_io.hpp"

namespace reel::video {

// The largest picture reel decodes (an image, or a frame of a video being continued): 2^26
// pixels (8192x8192, 201 MB of RGB). Checked from the header, before decoding.
inline constexpr int64_t kMaxDecodedPixels = int64_t(1) << 26;

// Takes RGB24 frames one at a time; finish() completes the file and renames it into place.
// Destroyed unfinished: removes its temporary output.
class FrameEncoder {
 public:
  virtual ~FrameEncoder() = default;
  virtual void write(const uint8_t* rgb) = 0;
  virtual void finish() = 0;
};

// Writes every frame of `video` through `encoder`, then finishes the file: the one-shot
// writers behind write_video are this over the streaming encoders.
inline void encode_all(FrameEncoder& encoder, const Video& video) {
  for (int t = 0; t < video.frames; ++t) encoder.write(video.frame(t));
  encoder.finish();
}

std::unique_ptr<FrameEncoder> open_y4m_encoder(const std::filesystem::path& path, int width, int height, double fps,
                                               Y4mChroma chroma);
// `single`: a `.png` path, which takes exactly one frame; otherwise a folder of frame_NNNN.png.
std::unique_ptr<FrameEncoder> open_png_encoder(const std::filesystem::path& path, int width, int height, bool single);
// mp4 / webm through libavcodec; unsupported in builds without FFmpeg.
std::unique_ptr<FrameEncoder> open_ffmpeg_encoder(const std::filesystem::path& path, int width, int height, double fps,
                                                  VideoFormat format, const VideoWriteOptions& options);

// Hands back RGB24 frames one at a time.
class FrameDecoder {
 public:
  virtual ~FrameDecoder() = default;
  int width = 0, height = 0;
  double fps = 16.0;
  // Fills rgb with the next frame (width × height × 3 bytes); false at the end of the clip.
  virtual bool read(std::vector<uint8_t>& rgb) = 0;
};

std::unique_ptr<FrameDecoder> open_y4m_decoder(const std::filesystem::path& path);
std::unique_ptr<FrameDecoder> open_image_folder_decoder(const std::filesystem::path& path);
// mp4 / webm / mkv / mov through libavformat + libavcodec + libswscale; unsupported without FFmpeg.
std::unique_ptr<FrameDecoder> open_ffmpeg_decoder(const std::filesystem::path& path);

}  // namespace reel::video
