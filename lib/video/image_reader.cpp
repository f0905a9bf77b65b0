// Reading first frames: PNG / JPEG through stb_image (implementation compiled into Debian's
// libstb), to 8-bit RGB, with the EXIF orientation applied.
#include <stb/stb_image.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "regular_file.hpp"
#include "reel/video_io.hpp"
#include "video/atomic_output.hpp"
#include "video/exif_orientation.hpp"
#include "video/stream_codecs.hpp"

namespace reel {
namespace {

constexpr uint64_t kMaxPixels = uint64_t(video::kMaxDecodedPixels);
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;     // stb takes an int length

bool is_png(std::span<const uint8_t> b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }
bool is_jpeg(std::span<const uint8_t> b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// The size the header declares (PNG IHDR, JPEG's first SOFn), so huge images are refused
// before a decoder sees them; false when no header is found (the decoder then reports it).
bool declared_size(std::span<const uint8_t> b, uint64_t& w, uint64_t& h) {
  if (is_png(b)) {
    if (b.size() < 24 || std::memcmp(&b[12], "IHDR", 4) != 0) return false;
    w = be32(&b[16]), h = be32(&b[20]);
    return true;
  }
  size_t pos = 2;
  while (pos + 4 <= b.size() && b[pos] == 0xFF) {
    const uint8_t m = b[pos + 1];
    if (m == 0xFF) {
      ++pos;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      pos += 2;
      continue;
    }
    const size_t len = be16(&b[pos + 2]);
    if (len < 2 || pos + 2 + len > b.size()) return false;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && len >= 7) {
      h = be16(&b[pos + 5]), w = be16(&b[pos + 7]);
      return true;
    }
    if (m == 0xDA) return false;
    pos += 2 + len;
  }
  return false;
}

}  // namespace

Image decode_image(std::span<const uint8_t> bytes, std::string_view name) {
  std::string label(1, '\'');
  label.append(name);
  label += '\'';
  require(is_png(bytes) || is_jpeg(bytes), StatusCode::bad_format,
          "image " + label + " is not a PNG or JPEG file (unknown signature)");
  require(bytes.size() <= kMaxFileBytes, StatusCode::unsupported, "image " + label + " is larger than 1 GiB");
  uint64_t dw = 0, dh = 0;
  if (declared_size(bytes, dw, dh))
    require(dw * dh <= kMaxPixels, StatusCode::unsupported,
            "image " + label + " is " + std::to_string(dw) + "x" + std::to_string(dh) +
                ", more than reel decodes (2^26 = 67 M pixels, e.g. 8192x8192)");
  const int len = int(bytes.size());
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &channels)) {
    const char* why = stbi_failure_reason();
    throw Error(StatusCode::bad_format, "image " + label + " is corrupt: " + (why ? why : "unknown error"));
  }
  require(w >= 1 && h >= 1, StatusCode::bad_format, "image " + label + " has no pixels");
  require(uint64_t(w) * uint64_t(h) <= kMaxPixels, StatusCode::unsupported,
          "image " + label + " is " + std::to_string(w) + "x" + std::to_string(h) +
              ", more than reel decodes (2^26 = 67 M pixels, e.g. 8192x8192)");
  // Huffman-coded JPEG spends at least one bit on every 8x8 luma block: fewer bytes than that
  // is a truncated (or hostile) file, which stb would otherwise decode into a grey picture.
  require(!is_jpeg(bytes) || uint64_t(bytes.size()) * 512 >= uint64_t(w) * uint64_t(h), StatusCode::bad_format,
          "image " + label + " is truncated: " + std::to_string(bytes.size()) + " bytes cannot hold a " +
              std::to_string(w) + "x" + std::to_string(h) + " JPEG");

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
  // Only a regular file (never blocks on a FIFO), at most 1 GiB, checked before reading.
  const std::string bytes = detail::read_small_file(path, "image", kMaxFileBytes, StatusCode::io_error);
  return decode_image({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path.string());
}

}  // namespace reel
