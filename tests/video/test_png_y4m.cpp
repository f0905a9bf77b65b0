// PNG frames and Y4M output: PNG round trip through stb (bit-exact), Y4M header and planes
// against a double-precision BT.601 reference, and bad paths (io_error, nothing left behind).
#include <stb/stb_image.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "video/video_writers.hpp"
#include "video_test_util.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;
using test::expect_code;
using test::folder_entries;
using test::read_bytes;
using test::scratch_dir;

// Random bytes: PNG is lossless, so noise is the hardest honest round trip.
Video random_clip(int frames, int height, int width, double fps, uint64_t seed) {
  Video v = Video::blank(frames, height, width, fps);
  std::mt19937_64 rng(seed);
  for (auto& b : v.rgb) b = uint8_t(rng() & 0xFF);
  return v;
}

std::vector<uint8_t> stb_decode_rgb(const fs::path& file, int& w, int& h) {
  const std::vector<uint8_t> bytes = read_bytes(file);
  int channels = 0;
  stbi_uc* p = stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &channels, 3);
  EXPECT_NE(p, nullptr) << file << ": " << stbi_failure_reason();
  if (!p) return {};
  EXPECT_EQ(channels, 3) << "an RGB PNG was expected";
  std::vector<uint8_t> out(p, p + size_t(w) * h * 3);
  stbi_image_free(p);
  return out;
}

TEST(PngFrames, FolderRoundTripIsBitExact) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(3, 9, 13, 16.0, 5);
  write_video(v, dir / "frames/");
  EXPECT_EQ(folder_entries(dir / "frames"),
            (std::vector<std::string>{"frame_0000.png", "frame_0001.png", "frame_0002.png"}));
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"frames"}) << "a temporary was left behind";
  for (int t = 0; t < v.frames; ++t) {
    int w = 0, h = 0;
    const std::vector<uint8_t> got = stb_decode_rgb(dir / "frames" / video::png_frame_name(t, 3), w, h);
    ASSERT_EQ(w, v.width);
    ASSERT_EQ(h, v.height);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), v.frame(t))) << "frame " << t;
  }
}

TEST(PngFrames, EmptyExistingFolderIsFilledNonEmptyIsRefused) {
  const fs::path dir = scratch_dir();
  fs::create_directories(dir / "empty");
  const Video v = random_clip(2, 4, 4, 16.0, 6);
  write_video(v, dir / "empty/");
  EXPECT_EQ(folder_entries(dir / "empty").size(), 2u);
  // Written again: the folder is no longer empty, and nothing in it is touched.
  expect_code(StatusCode::io_error, [&] { write_video(v, dir / "empty/"); }, "not empty");
  EXPECT_EQ(folder_entries(dir / "empty").size(), 2u);
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"empty"});
}

TEST(PngFrames, FrameNamesWidenPastTenThousand) {
  EXPECT_EQ(video::png_frame_name(7, 81), "frame_0007.png");
  EXPECT_EQ(video::png_frame_name(9999, 10000), "frame_9999.png");
  EXPECT_EQ(video::png_frame_name(42, 10001), "frame_00042.png");
}

TEST(PngFrames, SinglePngHoldsOneFrame) {
  const fs::path dir = scratch_dir();
  const Video one = random_clip(1, 5, 7, 16.0, 7);
  write_video(one, dir / "still.png");
  int w = 0, h = 0;
  const std::vector<uint8_t> got = stb_decode_rgb(dir / "still.png", w, h);
  EXPECT_EQ(got, one.rgb);
  const Video two = random_clip(2, 5, 7, 16.0, 7);
  expect_code(StatusCode::invalid_argument, [&] { write_video(two, dir / "clip.png"); }, "2 frames");
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"still.png"});
}

// ------------------------------------------------------------------------------ Y4M

struct Y4m {
  std::string header;
  std::vector<std::vector<uint8_t>> frames;  // each: Y plane, then Cb, then Cr
};

Y4m parse_y4m(const fs::path& file, size_t frame_bytes) {
  const std::vector<uint8_t> b = read_bytes(file);
  Y4m y;
  size_t pos = 0;
  while (pos < b.size() && b[pos] != '\n') y.header += char(b[pos++]);
  ++pos;
  while (pos < b.size()) {
    EXPECT_EQ(std::string(b.begin() + pos, b.begin() + std::min(b.size(), pos + 6)), "FRAME\n");
    pos += 6;
    EXPECT_LE(pos + frame_bytes, b.size()) << "truncated frame";
    if (pos + frame_bytes > b.size()) break;
    y.frames.emplace_back(b.begin() + pos, b.begin() + pos + frame_bytes);
    pos += frame_bytes;
  }
  return y;
}

// BT.601 limited range from the definition (ITU-R BT.601 with 8-bit studio swing):
// E'y = 0.299 R' + 0.587 G' + 0.114 B' (R', G', B' in [0, 1]); Y = 16 + 219 E'y;
// Cb = 128 + 224 (B' − E'y) / 1.772; Cr = 128 + 224 (R' − E'y) / 1.402.
struct Ycc {
  double y, cb, cr;
};
Ycc bt601(const uint8_t* p) {
  const double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
  const double ey = 0.299 * r + 0.587 * g + 0.114 * b;
  return {16 + 219 * ey, 128 + 224 * (b - ey) / 1.772, 128 + 224 * (r - ey) / 1.402};
}

// The library rounds half up from its own double arithmetic. Away from a .5 tie the result
// must equal round(reference); within 1e-6 of a tie (a last-bit difference in the sum decides)
// either neighbour is accepted.
void expect_rounded(int got, double ref, const char* what, int t, int x, int y) {
  const double frac = ref - std::floor(ref);
  if (std::abs(frac - 0.5) < 1e-6) {
    EXPECT_TRUE(got == int(std::floor(ref)) || got == int(std::ceil(ref)))
        << what << " at t=" << t << " (" << x << ", " << y << "): " << got << " vs " << ref;
  } else {
    EXPECT_EQ(got, int(std::lround(ref))) << what << " at t=" << t << " (" << x << ", " << y << ")";
  }
}

void check_y4m(const Video& v, const fs::path& file, bool c420) {
  const int W = v.width, H = v.height;
  const int cw = c420 ? (W + 1) / 2 : W, ch = c420 ? (H + 1) / 2 : H;
  const size_t frame_bytes = size_t(W) * H + 2 * size_t(cw) * ch;
  const Y4m y = parse_y4m(file, frame_bytes);
  ASSERT_EQ(int(y.frames.size()), v.frames);
  for (int t = 0; t < v.frames; ++t) {
    const uint8_t* Y = y.frames[size_t(t)].data();
    const uint8_t* U = Y + size_t(W) * H;
    const uint8_t* V = U + size_t(cw) * ch;
    for (int yy = 0; yy < H; ++yy)
      for (int xx = 0; xx < W; ++xx)
        expect_rounded(Y[yy * W + xx], bt601(v.frame(t) + (size_t(yy) * W + xx) * 3).y, "Y", t, xx, yy);
    for (int cy = 0; cy < ch; ++cy)
      for (int cx = 0; cx < cw; ++cx) {
        // 4:2:0: mean over the 2×2 block (fewer pixels at an odd edge); 4:4:4: the pixel.
        double cb = 0, cr = 0;
        int n = 0;
        const int bx = c420 ? 2 * cx : cx, by = c420 ? 2 * cy : cy, span = c420 ? 2 : 1;
        for (int dy = 0; dy < span && by + dy < H; ++dy)
          for (int dx = 0; dx < span && bx + dx < W; ++dx) {
            const Ycc p = bt601(v.frame(t) + (size_t(by + dy) * W + bx + dx) * 3);
            cb += p.cb, cr += p.cr, ++n;
          }
        expect_rounded(U[cy * cw + cx], cb / n, "Cb", t, cx, cy);
        expect_rounded(V[cy * cw + cx], cr / n, "Cr", t, cx, cy);
      }
  }
}

TEST(Y4m, C420jpegHeaderAndPlanesMatchBt601Reference) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(3, 6, 10, 16.0, 8);
  write_video(v, dir / "clip.y4m");
  const Y4m y = parse_y4m(dir / "clip.y4m", 60 + 2 * 15);
  EXPECT_EQ(y.header, "YUV4MPEG2 W10 H6 F16:1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED");
  check_y4m(v, dir / "clip.y4m", true);
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"clip.y4m"});
}

TEST(Y4m, OddSizesHaveCeilChromaPlanes) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(2, 7, 9, 24.0, 9);
  write_video(v, dir / "odd.y4m");
  const Y4m y = parse_y4m(dir / "odd.y4m", 63 + 2 * 5 * 4);
  EXPECT_EQ(y.header, "YUV4MPEG2 W9 H7 F24:1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED");
  check_y4m(v, dir / "odd.y4m", true);
}

TEST(Y4m, C444AndNtscRate) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(2, 5, 6, 30000.0 / 1001.0, 10);
  VideoWriteOptions o;
  o.y4m_chroma = Y4mChroma::c444;
  write_video(v, dir / "clip.Y4M", o);
  const Y4m y = parse_y4m(dir / "clip.Y4M", 3 * 30);
  EXPECT_EQ(y.header, "YUV4MPEG2 W6 H5 F30000:1001 Ip A1:1 C444 XCOLORRANGE=LIMITED");
  check_y4m(v, dir / "clip.Y4M", false);
}

// Extremes: every limited-range value stays inside [16, 235] (Y) and [16, 240] (Cb, Cr).
TEST(Y4m, PrimariesHitTheStudioRangeEnds) {
  const fs::path dir = scratch_dir();
  Video v = Video::blank(1, 2, 4, 16.0);
  const uint8_t px[8][3] = {{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {0, 0, 255},
                            {0, 255, 0}, {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};
  for (int i = 0; i < 8; ++i) std::memcpy(v.frame(0) + 3 * i, px[i], 3);
  VideoWriteOptions o;
  o.y4m_chroma = Y4mChroma::c444;
  write_video(v, dir / "p.y4m", o);
  const Y4m y = parse_y4m(dir / "p.y4m", 3 * 8);
  ASSERT_EQ(y.frames.size(), 1u);
  const uint8_t* Y = y.frames[0].data();
  EXPECT_EQ(Y[0], 16);   // black
  EXPECT_EQ(Y[1], 235);  // white
  EXPECT_EQ(y.frames[0][8 + 3], 240);   // Cb of blue
  EXPECT_EQ(y.frames[0][16 + 2], 240);  // Cr of red
  check_y4m(v, dir / "p.y4m", false);
}

// ------------------------------------------------------------------------------ bad paths

TEST(VideoPaths, MissingFolderGivesIoErrorAndLeavesNothing) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(1, 4, 4, 16.0, 11);
  for (const char* name : {"nope/clip.y4m", "nope/clip.png", "nope/frames/"})
    expect_code(StatusCode::io_error, [&] { write_video(v, dir / name); }, (dir / "nope").string());
  EXPECT_TRUE(folder_entries(dir).empty());
}

TEST(VideoPaths, UnwritablePlacesGiveIoError) {
  const fs::path dir = scratch_dir();
  const Video v = random_clip(1, 4, 4, 16.0, 12);
  // /proc refuses new files even to root.
  expect_code(StatusCode::io_error, [&] { write_video(v, "/proc/reel_video_test.y4m"); }, "/proc/reel_video_test.y4m");
  // A file where a folder should be.
  { std::FILE* f = std::fopen((dir / "plain").c_str(), "wb"); ASSERT_NE(f, nullptr); std::fclose(f); }
  expect_code(StatusCode::io_error, [&] { write_video(v, dir / "plain/clip.y4m"); }, "plain");
  expect_code(StatusCode::io_error, [&] { write_video(v, dir / "plain/"); }, "not a folder");
  // A folder where the file should be.
  fs::create_directories(dir / "taken.y4m");
  expect_code(StatusCode::io_error, [&] { write_video(v, dir / "taken.y4m"); }, "is a folder");
  // A read-only folder (root ignores permissions: then only the cases above apply).
  fs::create_directories(dir / "ro");
  ::chmod((dir / "ro").c_str(), 0555);
  if (::geteuid() != 0) {
    expect_code(StatusCode::io_error, [&] { write_video(v, dir / "ro/clip.y4m"); }, "ro/clip.y4m");
    EXPECT_TRUE(folder_entries(dir / "ro").empty());
  }
  ::chmod((dir / "ro").c_str(), 0755);
  EXPECT_EQ(folder_entries(dir), (std::vector<std::string>{"plain", "ro", "taken.y4m"}));
}

// A write that fails half way (the file-size limit plays a full disk) leaves no file, and an
// existing file of the same name is kept as it was.
TEST(VideoPaths, FailedWriteLeavesNothingHalfWritten) {
  const fs::path dir = scratch_dir();
  const Video small = random_clip(1, 4, 4, 16.0, 16);
  write_video(small, dir / "keep.y4m");
  const std::vector<uint8_t> before = read_bytes(dir / "keep.y4m");
  const Video big = random_clip(4, 64, 64, 16.0, 17);  // ~25 KB of Y4M, ~50 KB of PNG
  {
    test::FileSizeLimit limit(4096);
    expect_code(StatusCode::io_error, [&] { write_video(big, dir / "keep.y4m"); }, "keep.y4m");
    expect_code(StatusCode::io_error, [&] { write_video(big, dir / "frames/"); }, "frames");
  }
  EXPECT_EQ(read_bytes(dir / "keep.y4m"), before);
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"keep.y4m"});
}

TEST(VideoPaths, ReplacingAFileIsAtomic) {
  const fs::path dir = scratch_dir();
  write_video(random_clip(1, 4, 4, 16.0, 13), dir / "c.y4m");
  const Video bigger = random_clip(2, 6, 6, 16.0, 14);
  write_video(bigger, dir / "c.y4m");
  check_y4m(bigger, dir / "c.y4m", true);
  EXPECT_EQ(folder_entries(dir), std::vector<std::string>{"c.y4m"});
}

TEST(VideoPaths, InvalidClipIsRejectedBeforeAnythingIsCreated) {
  const fs::path dir = scratch_dir();
  Video v = random_clip(2, 4, 4, 16.0, 15);
  v.rgb.resize(10);
  expect_code(StatusCode::invalid_argument, [&] { write_video(v, dir / "c.y4m"); }, "rgb holds");
  EXPECT_TRUE(folder_entries(dir).empty());
}

}  // namespace
}  // namespace reel
