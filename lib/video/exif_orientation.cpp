// EXIF orientation: find the TIFF block in a JPEG APP1 segment or a PNG eXIf chunk, read tag
// 0x0112 from IFD0, and transpose the pixels the way PIL's exif_transpose does.
#include "video/exif_orientation.hpp"

#include <cstring>

namespace reel::video {
namespace {

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Orientation from a TIFF structure ("II*\0" or "MM\0*", IFD0 offset, entries of 12 bytes).
int tiff_orientation(std::span<const uint8_t> t) {
  if (t.size() < 8) return 1;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 1;
  auto u16 = [&](size_t at) -> uint32_t { return little ? uint32_t(t[at]) | uint32_t(t[at + 1]) << 8 : be16(&t[at]); };
  auto u32 = [&](size_t at) -> uint32_t {
    return little ? uint32_t(t[at]) | uint32_t(t[at + 1]) << 8 | uint32_t(t[at + 2]) << 16 | uint32_t(t[at + 3]) << 24
                  : be32(&t[at]);
  };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > t.size()) return 1;
  const uint32_t entries = u16(size_t(ifd));
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t e = ifd + 2 + uint64_t(i) * 12;
    if (e + 12 > t.size()) return 1;
    if (u16(size_t(e)) != 0x0112) continue;
    const uint32_t type = u16(size_t(e) + 2), count = u32(size_t(e) + 4);
    if ((type != 3 && type != 4) || count != 1) return 1;  // one SHORT or LONG, stored in the entry
    const uint32_t value = type == 3 ? u16(size_t(e) + 8) : u32(size_t(e) + 8);
    return value >= 1 && value <= 8 ? int(value) : 1;
  }
  return 1;
}

int jpeg_orientation(std::span<const uint8_t> f) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= f.size()) {
    if (f[pos] != 0xFF) return 1;
    const uint8_t marker = f[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // markers without a length
      pos += 2;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // image data: EXIF comes before it
    const size_t len = be16(&f[pos + 2]);
    if (len < 2 || pos + 2 + len > f.size()) return 1;
    if (marker == 0xE1 && len >= 8 + 6 && std::memcmp(&f[pos + 4], "Exif\0\0", 6) == 0)
      return tiff_orientation(f.subspan(pos + 10, len - 8));
    pos += 2 + len;
  }
  return 1;
}

int png_orientation(std::span<const uint8_t> f) {
  size_t pos = 8;  // after the signature
  while (pos + 12 <= f.size()) {
    const uint64_t len = be32(&f[pos]);
    if (pos + 12 + len > f.size()) return 1;
    if (std::memcmp(&f[pos + 4], "eXIf", 4) == 0) {
      std::span<const uint8_t> data = f.subspan(pos + 8, size_t(len));
      // Some writers keep JPEG's "Exif\0\0" prefix in the chunk; PIL accepts both.
      if (data.size() >= 6 && std::memcmp(data.data(), "Exif\0\0", 6) == 0) data = data.subspan(6);
      return tiff_orientation(data);
    }
    if (std::memcmp(&f[pos + 4], "IEND", 4) == 0) return 1;
    pos += 12 + size_t(len);
  }
  return 1;
}

}  // namespace

int exif_orientation(std::span<const uint8_t> file) {
  if (file.size() >= 3 && file[0] == 0xFF && file[1] == 0xD8) return jpeg_orientation(file);
  if (file.size() >= 8 && std::memcmp(file.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return png_orientation(file);
  return 1;
}

Image apply_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;  // transpose-like: width and height trade places
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // source pixel of output (x, y)
      switch (orientation) {
        case 2: sx = W - 1 - x; break;                  // FLIP_LEFT_RIGHT
        case 3: sx = W - 1 - x, sy = H - 1 - y; break;  // ROTATE_180
        case 4: sy = H - 1 - y; break;                  // FLIP_TOP_BOTTOM
        case 5: sx = y, sy = x; break;                  // TRANSPOSE
        case 6: sx = y, sy = H - 1 - x; break;          // ROTATE_270 (90° clockwise)
        case 7: sx = W - 1 - y, sy = H - 1 - x; break;  // TRANSVERSE
        case 8: sx = W - 1 - y, sy = x; break;          // ROTATE_90 (90° counter-clockwise)
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &in.rgb[(size_t(sy) * W + sx) * 3], 3);
    }
  return out;
}

}  // namespace reel::video
