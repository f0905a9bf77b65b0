// PNG output through stb_image_write (implementation compiled into Debian's libstb): one
// frame to x.png, or every frame to a folder as frame_0000.png, frame_0001.png, ...
#include <stb/stb_image_write.h>

#include <algorithm>
#include <string>

#include "parallel.hpp"
#include "reel/status.hpp"
#include "video/atomic_output.hpp"
#include "video/video_writers.hpp"

namespace reel::video {
namespace fs = std::filesystem;

std::vector<uint8_t> encode_png(const uint8_t* rgb, int width, int height, const fs::path& label) {
  std::vector<uint8_t> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  };
  const int ok = stbi_write_png_to_func(append, &bytes, width, height, 3, rgb, width * 3);
  if (!ok || bytes.empty())
    throw Error(StatusCode::out_of_memory, "cannot encode PNG for '" + label.string() + "' (stb_image_write failed)");
  return bytes;
}

std::string png_frame_name(int t, int frames) {
  int digits = 4;
  for (int n = frames - 1; n >= 10000; n /= 10) ++digits;
  std::string num = std::to_string(t);
  return "frame_" + std::string(size_t(std::max(0, digits - int(num.size()))), '0') + num + ".png";
}

void write_png_frame(const Video& video, const fs::path& path) {
  if (video.frames != 1) {
    std::string msg = "'";
    msg += path.string();
    msg += "' holds one image but the video has " + std::to_string(video.frames) +
           " frames: use a folder path ending in '/' for PNG frames";
    throw Error(StatusCode::invalid_argument, msg);
  }
  AtomicOutput out(path, AtomicOutput::Kind::file);
  write_file(out.temp_path(), encode_png(video.frame(0), video.width, video.height, path), path);
  out.commit();
}

void write_png_folder(const Video& video, const fs::path& path) {
  AtomicOutput out(path, AtomicOutput::Kind::directory);
  // Frames are independent: encode and write them in parallel; exceptions must not leave the
  // OpenMP region, so each frame keeps its own error and the first one is rethrown.
  std::vector<std::string> errors(size_t(video.frames));
  std::vector<StatusCode> codes(size_t(video.frames), StatusCode::ok);
  parallel_for_each(video.frames, [&](int64_t t) {
    const fs::path file = out.temp_path() / png_frame_name(int(t), video.frames);
    const fs::path label = out.final_path() / png_frame_name(int(t), video.frames);
    try {
      write_file(file, encode_png(video.frame(int(t)), video.width, video.height, label), label);
    } catch (const Error& e) {
      codes[size_t(t)] = e.code();
      errors[size_t(t)] = e.what();
    } catch (const std::exception& e) {
      codes[size_t(t)] = StatusCode::out_of_memory;
      errors[size_t(t)] = std::string("writing '") + label.string() + "': " + e.what();
    }
  });
  for (size_t t = 0; t < errors.size(); ++t)
    if (codes[t] != StatusCode::ok) throw Error(codes[t], errors[t]);
  out.commit();
}

}  // namespace reel::video
