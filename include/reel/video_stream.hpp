// Streaming video files: a writer that takes frames as they are produced (open → write →
// close) and a reader that hands back one frame at a time, so clips of any length pass
// through in bounded memory. Used by reel::VideoSession (endless video) and reel-cli.
//
//   reel::VideoStreamWriter out("long.mp4", 832, 480, 16.0);   // same formats as write_video
//   while (more) out.write(next_frames());                      // reel::Video of any frame count
//   out.close();                                                 // renamed into place only now
//
//   reel::VideoStreamReader in("clip.y4m");                      // .y4m, .mp4/.webm (FFmpeg), dir/
//   std::vector<uint8_t> rgb;
//   while (in.read(rgb)) use(rgb.data(), in.width(), in.height());   // one RGB24 frame per call
//
// The writer follows write_video's rules (docs/video_io.md): the format comes from the path,
// the file (or PNG folder) is written under a temporary sibling name and renamed into place by
// close(); a writer destroyed without close() (an error, a cancel) removes the temporary, so a
// failed run leaves nothing behind. PNG folders hold frame_0000.png, frame_0001.png, ... (4
// digits, more past 9 999 frames: read them with `-i dir/frame_%04d.png`).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "reel/export.hpp"
#include "reel/video_io.hpp"

namespace reel {

namespace video {
class FrameEncoder;  // one per format (lib/video/stream_codecs.hpp)
class FrameDecoder;
}  // namespace video

class REEL_API VideoStreamWriter {
 public:
  // Creates the temporary output and, for mp4/webm, opens the encoder. Errors as write_video:
  // invalid_argument (size, fps, options, extension; `.png` means a single frame), io_error
  // naming the path, unsupported (mp4/webm without FFmpeg).
  VideoStreamWriter(const std::filesystem::path& path, int width, int height, double fps,
                    const VideoWriteOptions& options = {});
  VideoStreamWriter(VideoStreamWriter&&) noexcept;
  VideoStreamWriter& operator=(VideoStreamWriter&&) noexcept;
  ~VideoStreamWriter();  // without close(): the temporary is removed

  // Appends every frame of `frames` (its width and height must be the writer's; fps is not
  // checked). invalid_argument on a size mismatch, io_error when the disk refuses.
  void write(const Video& frames);
  // Appends one frame: width × height × 3 bytes of RGB24.
  void write_frame(const uint8_t* rgb);
  // Flushes the encoder, finishes the file and renames it into place. A `.png` path needs
  // exactly one frame; any format needs at least one. After close() (or a failed write) the
  // writer takes no more frames.
  void close();

  bool is_open() const { return encoder_ != nullptr; }
  int64_t frames_written() const { return frames_; }
  int width() const { return width_; }
  int height() const { return height_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::unique_ptr<video::FrameEncoder> encoder_;
  std::filesystem::path path_;
  int width_ = 0, height_ = 0;
  int64_t frames_ = 0;
};

class REEL_API VideoStreamReader {
 public:
  // Opens `path`: a .y4m file (4:2:0 or 4:4:4, 8-bit, read as BT.601 limited range, what
  // reel's writer stores), a folder of PNG/JPEG frames (read in name order), or a .mp4 /
  // .webm / .mkv / .mov file (FFmpeg builds; converted to RGB24 with its colour tags).
  // Errors: not_found, io_error, bad_format naming the path, unsupported (no FFmpeg).
  explicit VideoStreamReader(const std::filesystem::path& path);
  VideoStreamReader(VideoStreamReader&&) noexcept;
  VideoStreamReader& operator=(VideoStreamReader&&) noexcept;
  ~VideoStreamReader();

  int width() const { return width_; }
  int height() const { return height_; }
  double fps() const { return fps_; }  // 16 when the file does not say (PNG folders)
  // Reads the next frame into `rgb` (resized to width × height × 3); false at the end.
  bool read(std::vector<uint8_t>& rgb);
  int64_t frames_read() const { return frames_; }

 private:
  std::unique_ptr<video::FrameDecoder> decoder_;
  int width_ = 0, height_ = 0;
  double fps_ = 16.0;
  int64_t frames_ = 0;
};

// The whole file in memory (for short clips; use VideoStreamReader for long ones).
REEL_API Video read_video(const std::filesystem::path& path);
// The last `frames` frames (all of them when the clip is shorter), read through the file while
// holding at most that many: what continuing a clip needs (VideoSessionOptions::source).
REEL_API Video read_video_tail(const std::filesystem::path& path, int frames);

}  // namespace reel
