// reel::VideoStreamReader and its always-available decoders: YUV4MPEG2 (8-bit 4:2:0 / 4:4:4 /
// mono, BT.601 limited range, the inverse of what reel's writer stores) and folders of PNG /
// JPEG frames; read_video on top.
#include "reel/video_stream.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "regular_file.hpp"
#include "reel/status.hpp"
#include "video/atomic_output.hpp"
#include "video/stream_codecs.hpp"

namespace reel {
namespace video {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxSide = 32768;

// Y'CbCr (BT.601, limited range) → RGB: the inverse of yuv.hpp's matrix, rounded half up.
inline void yuv601_to_rgb(int y, int cb, int cr, uint8_t* rgb) {
  constexpr double kr = 0.299, kb = 0.114, kg = 1.0 - kr - kb;
  const double e = (y - 16) / 219.0, pb = (cb - 128) / 224.0, pr = (cr - 128) / 224.0;
  const double r = e + 2 * (1 - kr) * pr, b = e + 2 * (1 - kb) * pb, g = (e - kr * r - kb * b) / kg;
  const double c[3] = {r, g, b};
  for (int k = 0; k < 3; ++k) rgb[k] = uint8_t(std::clamp(std::floor(255.0 * c[k] + 0.5), 0.0, 255.0));
}

class Y4mDecoder final : public FrameDecoder {
 public:
  explicit Y4mDecoder(const fs::path& path) : path_(path) {
    detail::FileHandle handle = detail::open_regular_file(path, "video");  // never a FIFO
    file_.reset(::fdopen(handle.fd(), "rb"));
    if (!file_) throw Error(StatusCode::io_error, "cannot read '" + path.string() + "': " + os_error(errno));
    (void)handle.release();  // the FILE owns the descriptor now
    const std::string header = line(4096);
    if (header.rfind("YUV4MPEG2 ", 0) != 0) bad("it does not start with the YUV4MPEG2 signature");
    std::string chroma = "420jpeg";
    size_t pos = 10;
    while (pos < header.size()) {
      const size_t end = std::min(header.find(' ', pos), header.size());
      const std::string tok = header.substr(pos, end - pos);
      pos = end + 1;
      if (tok.empty()) continue;
      const std::string v = tok.substr(1);
      switch (tok[0]) {
        case 'W': width = number(v, "width"); break;
        case 'H': height = number(v, "height"); break;
        case 'C': chroma = v; break;
        case 'F': {
          const size_t colon = v.find(':');
          if (colon == std::string::npos) bad("its frame rate '" + v + "' is not num:den");
          const int num = number(v.substr(0, colon), "frame rate"), den = number(v.substr(colon + 1), "frame rate");
          if (num > 0 && den > 0) fps = double(num) / den;
          break;
        }
        default: break;  // interlacing, aspect, X-tags: not needed
      }
    }
    if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
      bad("its size " + std::to_string(width) + "x" + std::to_string(height) + " is missing or out of range");
    if (int64_t(width) * height > kMaxDecodedPixels)
      throw Error(StatusCode::unsupported, "cannot read '" + path_.string() + "': its frames are " + std::to_string(width) +
                                               "x" + std::to_string(height) +
                                               ", more than reel decodes (2^26 = 67 M pixels, e.g. 8192x8192)");
    if (!(fps > 0 && fps <= 1000)) fps = 16.0;
    if (chroma == "420jpeg" || chroma == "420mpeg2" || chroma == "420paldv" || chroma == "420") {
      sub_ = 2;  // 420jpeg, 420mpeg2, 420paldv: chroma sited differently, read alike (nearest)
    } else if (chroma == "444") {
      sub_ = 1;
    } else if (chroma == "mono") {
      sub_ = 0;
    } else {
      throw Error(StatusCode::unsupported, "cannot read '" + path.string() + "': colour space C" + chroma +
                                               " (reel reads 8-bit 4:2:0, 4:4:4 and mono)");
    }
    const size_t w = size_t(width), h = size_t(height);
    cw_ = sub_ == 2 ? (w + 1) / 2 : (sub_ == 1 ? w : 0);
    ch_ = sub_ == 2 ? (h + 1) / 2 : (sub_ == 1 ? h : 0);
    planes_.resize(w * h + 2 * cw_ * ch_);
  }

  bool read(std::vector<uint8_t>& rgb) override {
    const int c = std::fgetc(file_.get());
    if (c == EOF) return false;
    std::ungetc(c, file_.get());
    const std::string tag = line(4096);
    if (tag.rfind("FRAME", 0) != 0) bad("frame " + std::to_string(frames_) + " does not start with FRAME");
    if (std::fread(planes_.data(), 1, planes_.size(), file_.get()) != planes_.size())
      bad("frame " + std::to_string(frames_) + " is truncated");
    const size_t w = size_t(width), h = size_t(height);
    rgb.resize(w * h * 3);
    const uint8_t* Y = planes_.data();
    const uint8_t* U = Y + w * h;
    const uint8_t* V = U + cw_ * ch_;
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < w; ++x) {
        const size_t ci = sub_ == 2 ? (y / 2) * cw_ + x / 2 : y * cw_ + x;
        yuv601_to_rgb(Y[y * w + x], sub_ ? U[ci] : 128, sub_ ? V[ci] : 128, &rgb[(y * w + x) * 3]);
      }
    ++frames_;
    return true;
  }

 private:
  // One header line without its '\n'; bad_format when longer than `max` or cut off.
  std::string line(size_t max) {
    std::string s;
    for (;;) {
      const int c = std::fgetc(file_.get());
      if (c == EOF) bad("a header line is cut off");
      if (c == '\n') return s;
      if (s.size() >= max) bad("a header line is longer than " + std::to_string(max) + " bytes");
      s.push_back(char(c));
    }
  }
  int number(const std::string& s, const char* what) {
    if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch); }))
      bad(std::string("its ") + what + " '" + s + "' is not a number");
    return std::stoi(s);
  }
  [[noreturn]] void bad(const std::string& why) const {
    throw Error(StatusCode::bad_format, "cannot read '" + path_.string() + "' as YUV4MPEG2: " + why);
  }

  fs::path path_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_{nullptr, &std::fclose};
  int sub_ = 2;
  size_t cw_ = 0, ch_ = 0;
  std::vector<uint8_t> planes_;
  int64_t frames_ = 0;
};

class ImageFolderDecoder final : public FrameDecoder {
 public:
  explicit ImageFolderDecoder(const fs::path& dir) : dir_(dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files_.push_back(e.path());
    }
    if (ec) throw Error(StatusCode::io_error, "cannot list '" + dir.string() + "': " + ec.message());
    if (files_.empty())
      throw Error(StatusCode::bad_format, "'" + dir.string() + "' holds no .png / .jpg frames");
    std::sort(files_.begin(), files_.end());
    first_ = read_image(files_[0]);
    width = first_.width;
    height = first_.height;
  }

  bool read(std::vector<uint8_t>& rgb) override {
    if (next_ >= files_.size()) return false;
    Image im = next_ == 0 ? std::move(first_) : read_image(files_[next_]);
    if (im.width != width || im.height != height)
      throw Error(StatusCode::bad_format, "'" + files_[next_].string() + "' is " + std::to_string(im.width) + "x" +
                                              std::to_string(im.height) + ", the first frame is " +
                                              std::to_string(width) + "x" + std::to_string(height));
    rgb = std::move(im.rgb);
    ++next_;
    return true;
  }

 private:
  fs::path dir_;
  std::vector<fs::path> files_;
  Image first_;
  size_t next_ = 0;
};

}  // namespace

std::unique_ptr<FrameDecoder> open_y4m_decoder(const fs::path& path) { return std::make_unique<Y4mDecoder>(path); }
std::unique_ptr<FrameDecoder> open_image_folder_decoder(const fs::path& path) {
  return std::make_unique<ImageFolderDecoder>(path);
}

}  // namespace video

// ------------------------------------------------------------------------------ the reader

VideoStreamReader::VideoStreamReader(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw Error(StatusCode::not_found, "cannot read the video '" + path.string() + "': no such file or folder");
  if (std::filesystem::is_directory(status)) {
    decoder_ = video::open_image_folder_decoder(path);
  } else {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if (ext == ".y4m") {
      decoder_ = video::open_y4m_decoder(path);
    } else if (ext == ".mp4" || ext == ".webm" || ext == ".mkv" || ext == ".mov") {
      decoder_ = video::open_ffmpeg_decoder(path);
    } else {
      throw Error(StatusCode::invalid_argument,
                  "cannot tell the video format of '" + path.string() +
                      "': reel reads .y4m, .mp4, .webm, .mkv, .mov (the last four with FFmpeg) and folders of PNG/JPEG frames");
    }
  }
  width_ = decoder_->width;
  height_ = decoder_->height;
  fps_ = decoder_->fps;
}

VideoStreamReader::VideoStreamReader(VideoStreamReader&&) noexcept = default;
VideoStreamReader& VideoStreamReader::operator=(VideoStreamReader&&) noexcept = default;
VideoStreamReader::~VideoStreamReader() = default;

bool VideoStreamReader::read(std::vector<uint8_t>& rgb) {
  require(decoder_ != nullptr, StatusCode::invalid_argument, "VideoStreamReader: the reader was moved from");
  if (!decoder_->read(rgb)) return false;
  ++frames_;
  return true;
}

Video read_video(const std::filesystem::path& path) {
  VideoStreamReader in(path);
  Video v;
  v.width = in.width();
  v.height = in.height();
  v.fps = in.fps();
  std::vector<uint8_t> frame;
  while (in.read(frame)) {
    v.rgb.insert(v.rgb.end(), frame.begin(), frame.end());
    ++v.frames;
  }
  if (v.frames == 0) {
    std::string msg = "cannot read '";  // (built step by step: GCC 12 misreports "'" + string)
    msg += path.string();
    msg += "': it holds no frames";
    throw Error(StatusCode::bad_format, msg);
  }
  return v;
}

Video read_video_tail(const std::filesystem::path& path, int frames) {
  require(frames >= 1, StatusCode::invalid_argument,
          "read_video_tail: frames must be at least 1, got " + std::to_string(frames));
  VideoStreamReader in(path);
  // A ring of `frames` frame buffers, oldest first from `next` once full.
  std::vector<std::vector<uint8_t>> ring;
  size_t next = 0;
  std::vector<uint8_t> frame;
  while (in.read(frame)) {
    if (ring.size() < size_t(frames)) {
      ring.push_back(std::move(frame));
    } else {
      std::swap(ring[next], frame);
      next = (next + 1) % ring.size();
    }
    frame.clear();
  }
  if (ring.empty()) {
    std::string msg = "cannot read '";
    msg += path.string();
    msg += "': it holds no frames";
    throw Error(StatusCode::bad_format, msg);
  }
  Video v;
  v.width = in.width();
  v.height = in.height();
  v.fps = in.fps();
  v.frames = int(ring.size());
  for (size_t i = 0; i < ring.size(); ++i) {
    const std::vector<uint8_t>& f = ring[(next + i) % ring.size()];
    v.rgb.insert(v.rgb.end(), f.begin(), f.end());
  }
  return v;
}

}  // namespace reel
