// Video and image I/O: frames in memory (RGB24), writers chosen by the output path's
// extension, and the first-frame reader for image-to-video. Details: docs/video_io.md.
//
//   // VAE output [3, T, H, W] in [-1, 1] -> uint8 frames (diffusers' postprocess rounding)
//   reel::Video video = reel::video_from_floats(decoded, reel::FrameLayout::cthw,
//                                               reel::PixelRange::minus_one_to_one, 16.0);
//   reel::write_video(video, "out.mp4");     // H.264 yuv420p (needs the FFmpeg build)
//   reel::write_video(video, "out.webm");    // VP9 (needs the FFmpeg build)
//   reel::write_video(video, "frames/");     // frames/frame_0000.png, frame_0001.png, ...
//   reel::write_video(video, "out.y4m");     // YUV4MPEG2, always available
//
//   // First frame for image-to-video: decode, cover-resize (PIL Lanczos), [3, H, W] in [-1, 1]
//   reel::Tensor first = reel::load_image_tensor("cat.jpg", 832, 480);
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

// ----------------------------------------------------------------------- frames in memory

// A clip of 8-bit RGB frames: rgb holds [frames, height, width, 3], frame-major, rows top to
// bottom, pixels left to right, channels R, G, B.
struct REEL_API Video {
  int width = 0;
  int height = 0;
  int frames = 0;
  double fps = 16.0;  // Wan 2.1: 16, Wan 2.2 TI2V-5B: 24
  std::vector<uint8_t> rgb;

  // A zero-filled clip; invalid_argument for sizes that are not positive or too large.
  static Video blank(int frames, int height, int width, double fps);
  size_t frame_bytes() const { return size_t(width) * size_t(height) * 3; }
  uint8_t* frame(int t) { return rgb.data() + size_t(t) * frame_bytes(); }
  const uint8_t* frame(int t) const { return rgb.data() + size_t(t) * frame_bytes(); }
  // invalid_argument naming the field when sizes, fps or the buffer length disagree.
  void validate() const;
};

// 8-bit RGB image: rgb holds [height, width, 3].
struct REEL_API Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// What float pixel values mean: [-1, 1] (VAE output) or [0, 1].
enum class PixelRange : uint8_t { minus_one_to_one, zero_to_one };
// Float frame layouts: [T, H, W, 3] (channels last), or the VAE's [3, T, H, W] (channels first).
enum class FrameLayout : uint8_t { thwc, cthw };

// One float pixel value to uint8, exactly as diffusers does it in float32:
// VideoProcessor.postprocess_video maps [-1, 1] with (x / 2 + 0.5).clamp(0, 1), then
// numpy_to_pil computes (x * 255).round() (round half to even) and casts to uint8.
// [0, 1] input skips the first step. NaN becomes 0.
inline uint8_t pixel_to_u8(float x, PixelRange range) {
  float y = range == PixelRange::minus_one_to_one ? x / 2.0f + 0.5f : x;
  if (!(y >= 0.0f)) y = 0.0f;  // also catches NaN
  if (y > 1.0f) y = 1.0f;
  const float v = y * 255.0f;  // rounded to float32, like numpy's float32 product
  int r = static_cast<int>(v);  // floor: v >= 0
  const float frac = v - static_cast<float>(r);  // exact: v and r are within a factor of two, or r is 0
  if (frac > 0.5f || (frac == 0.5f && (r & 1))) ++r;  // ties to even, independent of the FP rounding mode
  return static_cast<uint8_t>(r);
}

// Converts float frames (f32, bf16 or f16; CPU or GPU) to a Video with pixel_to_u8.
// thwc accepts [T, H, W, 3] or one image [H, W, 3]; cthw accepts [3, T, H, W] or [1, 3, T, H, W].
REEL_API Video video_from_floats(const Tensor& frames, FrameLayout layout, PixelRange range, double fps);

// ----------------------------------------------------------------------- writing

enum class VideoFormat : uint8_t {
  mp4,         // "x.mp4": H.264 (libx264), yuv420p, BT.709 limited range, needs FFmpeg
  webm,        // "x.webm": VP9 (libvpx-vp9), yuv420p, BT.709 limited range, needs FFmpeg
  y4m,         // "x.y4m": YUV4MPEG2, BT.601 limited range, C420jpeg (default) or C444
  png,         // "x.png": one frame (the video must have exactly one)
  png_folder,  // "dir/" (path ends in '/'): dir/frame_0000.png, frame_0001.png, ...
};
REEL_API std::string_view video_format_name(VideoFormat format);
// The format for a path's extension (case-insensitive) or trailing '/';
// invalid_argument naming the path and the accepted endings otherwise.
REEL_API VideoFormat video_format_for_path(const std::filesystem::path& path);
// False for mp4/webm when the library was built without FFmpeg (REEL_FFMPEG=OFF or not found),
// or when FFmpeg lacks the encoder (libx264, libvpx-vp9).
REEL_API bool video_format_available(VideoFormat format);

// What mp4 does with an odd width or height (H.264 yuv420p needs even sizes).
enum class OddSize : uint8_t {
  pad,     // repeat the last column / row: the file is 1 pixel wider / taller
  reject,  // invalid_argument naming the size
};
enum class Y4mChroma : uint8_t { c420jpeg, c444 };

struct VideoWriteOptions {
  // Constant-rate factor: lower is better; -1 picks the default (H.264: 18, VP9: 24).
  // H.264 accepts 0..51, VP9 0..63.
  int crf = -1;
  OddSize odd_size = OddSize::pad;
  Y4mChroma y4m_chroma = Y4mChroma::c420jpeg;
};

// Writes the clip in the format its path asks for (video_format_for_path). The file (or the
// folder of PNG frames) is written under a temporary name in the same folder and renamed into
// place on success, so a failure leaves nothing behind. An existing file is replaced; a PNG
// folder must be new or empty. Errors: invalid_argument (bad clip or options, unknown
// extension), io_error naming the path (missing folder, no permission, disk full),
// unsupported (mp4/webm in a build without FFmpeg: rebuild with -DREEL_FFMPEG=ON).
REEL_API void write_video(const Video& video, const std::filesystem::path& path,
                          const VideoWriteOptions& options = {});
// What write_video would refuse before it has frames: the extension, a format this build cannot
// write, a missing or read-only folder, a folder where a file should go, a name too long for
// the temporary sibling (a temporary is created and removed). Call it before a long
// generation; the same errors as write_video.
REEL_API void check_video_path(const std::filesystem::path& path);

// ----------------------------------------------------------------------- reading images

// Decodes a PNG or JPEG file to 8-bit RGB with stb_image (grey and palette images are
// expanded, alpha is dropped, 16-bit PNG keeps the high byte). A JPEG's or PNG's EXIF
// orientation is applied, as diffusers' load_image does. Errors: io_error (missing,
// unreadable), bad_format (not a regular file: a folder, or a FIFO, refused without blocking;
// not PNG/JPEG, corrupt, truncated), unsupported (over 2^26 pixels, 8192x8192, or over 1 GiB).
REEL_API Image read_image(const std::filesystem::path& path);
// The same from bytes in memory; `name` only labels error messages.
REEL_API Image decode_image(std::span<const uint8_t> bytes, std::string_view name);

enum class ResizeMode : uint8_t {
  // Scale to cover the target keeping the aspect ratio (size round(w·s) × round(h·s) with
  // s = max(W/w, H/h)), then crop the centre: original Wan 2.2 TI2V preprocessing.
  cover,
  // Scale to exactly W × H, ignoring the aspect ratio: diffusers' VideoProcessor.preprocess.
  stretch,
};

// Pillow 13's Image.resize(size, Image.LANCZOS) for RGB, reproduced bit for bit: separable
// Lanczos-3 (antialiased: support widened by the downscale factor), 22-bit fixed-point
// weights, uint8 rounding between the passes; the horizontal pass first unless the height
// shrinks by more than twice as many pixels as the width (then the vertical one).
REEL_API Image resize_lanczos(const Image& image, int width, int height);
// Pillow 13's Image.resize(size, Image.BICUBIC) for RGB, bit for bit: the same resampler with
// Pillow's bicubic kernel (a = −0.5, support 2, widened when shrinking). CLIP's preprocessing.
REEL_API Image resize_bicubic(const Image& image, int width, int height);
// Resizes to exactly width × height with the given mode (Lanczos as above).
REEL_API Image resize_image(const Image& image, int width, int height, ResizeMode mode = ResizeMode::cover);
// [3, H, W] f32 in [-1, 1]: 2 · (v / 255) − 1 in float32, as diffusers' preprocess computes it.
REEL_API Tensor image_to_tensor(const Image& image);
// read_image + resize_image + image_to_tensor.
REEL_API Tensor load_image_tensor(const std::filesystem::path& path, int width, int height,
                                  ResizeMode mode = ResizeMode::cover);

}  // namespace reel
