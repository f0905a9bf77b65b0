// Internal: the per-format writers behind reel::write_video, and PNG encoding.
#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

#include "reel/video_io.hpp"

namespace reel::video {

// PNG bytes of one RGB24 image (stb_image_write, its default zlib level 8).
std::vector<uint8_t> encode_png(const uint8_t* rgb, int width, int height, const std::filesystem::path& label);

void write_png_frame(const Video& video, const std::filesystem::path& path);
void write_png_folder(const Video& video, const std::filesystem::path& path);
// Frame file name for index t of a clip with `frames` frames: frame_0000.png (4 digits, more
// when the count needs them).
std::string png_frame_name(int t, int frames);

void write_y4m(const Video& video, const std::filesystem::path& path, Y4mChroma chroma);

// mp4 / webm through libavformat + libavcodec; unsupported in builds without FFmpeg.
void write_ffmpeg(const Video& video, const std::filesystem::path& path, VideoFormat format,
                  const VideoWriteOptions& options);
bool ffmpeg_encoder_available(VideoFormat format);

// fps as a rational num/den (den ≤ 1001·1000), exact for integers and for NTSC rates like 30000/1001.
struct Rational {
  int num, den;
};
Rational fps_rational(double fps);

}  // namespace reel::video
