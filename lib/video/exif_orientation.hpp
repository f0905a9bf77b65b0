// Internal: the EXIF orientation tag (0x0112) of a JPEG (APP1 "Exif") or PNG (eXIf chunk),
// and the transposition that undoes it, as PIL's ImageOps.exif_transpose does.
#pragma once
#include <cstdint>
#include <span>

#include "reel/video_io.hpp"

namespace reel::video {

// 1..8; 1 (as stored) when the file has no orientation or the EXIF block is malformed
// (a broken EXIF block never makes an image unreadable).
int exif_orientation(std::span<const uint8_t> file);

// Applies PIL's method for the orientation: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
Image apply_orientation(const Image& image, int orientation);

}  // namespace reel::video
