// Reading first frames: PNG / JPEG through stb_image (implementation compiled into Debian's
// libstb), to 8-bit RGB, with the EXIF orientation applied.
#include <stb/stb_image.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "reel/video_io.hpp"
#include "video/atomic_output.hpp"
#include "video/exif_orientation.hpp"

namespace reel {
namespace {

constexpr uint64_t kMaxPixels = uint64_t(1) << 28;        // 268 M pixels: 805 MB of RGB
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;     // stb takes an int length

bool is_png(std::span<const uint8_t> b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }
bool is_jpeg(std::span<const uint8_t> b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

}  // namespace

Image decode_image(std::span<const uint8_t> bytes, std::string_view name) {
  std::string label(1, '\'');
  label.append(name);
  label += '\'';
  require(is_png(bytes) || is_jpeg(bytes), StatusCode::bad_format,
          "image " + label + " is not a PNG or JPEG file (unknown signature)");
  require(bytes.size() <= kMaxFileBytes, StatusCode::unsupported, "image " + label + " is larger than 1 GiB");
  const int len = int(bytes.size());
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &channels))
    throw Error(StatusCode::bad_format, "image " + label + " is corrupt: " + stbi_failure_reason());
  require(w >= 1 && h >= 1, StatusCode::bad_format, "image " + label + " has no pixels");
  require(uint64_t(w) * uint64_t(h) <= kMaxPixels, StatusCode::unsupported,
          "image " + label + " is " + std::to_string(w) + "x" + std::to_string(h) + ", more than 2^28 pixels");

  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(bytes.data(), len, &w, &h, &channels, 3),
                                                   &stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    throw Error(std::strcmp(why ? why : "", "outofmem") == 0 ? StatusCode::out_of_memory : StatusCode::bad_format,
                "image " + label + " could not be decoded: " + (why ? why : "unknown error"));
  }
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels.get(), pixels.get() + size_t(w) * size_t(h) * 3);
  return video::apply_orientation(image, video::exif_orientation(bytes));
}

Image read_image(const std::filesystem::path& path) {
  auto fail = [&](int err) {
    throw Error(StatusCode::io_error, "cannot read image '" + path.string() + "': " + video::os_error(err));
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(EISDIR);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(errno);
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const size_t n = std::fread(chunk, 1, sizeof chunk, f.get());
    bytes.insert(bytes.end(), chunk, chunk + n);
    require(bytes.size() <= kMaxFileBytes, StatusCode::unsupported,
            "image '" + path.string() + "' is larger than 1 GiB");
    if (n < sizeof chunk) {
      if (std::ferror(f.get())) fail(errno ? errno : EIO);
      break;
    }
  }
  return decode_image(bytes, path.string());
}

}  // namespace reel
