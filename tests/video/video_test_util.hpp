// Helpers for the video I/O tests: fresh scratch folders, raw fixture files, smooth clips.
#pragma once
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "reel/video_io.hpp"

namespace reel::test {

// An empty folder for the running test: <tmp>/video/<suite>.<test>/.
inline std::filesystem::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path p = tmp_dir() / "video" / (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

template <class T>
std::vector<T> read_raw(const std::filesystem::path& path) {
  std::vector<uint8_t> b = read_bytes(path);
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

inline std::filesystem::path video_fixture(const std::string& name) { return fixtures_dir() / "video" / name; }

// Names in a folder (no recursion), sorted.
inline std::vector<std::string> folder_entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Moving colour gradients with a little seeded noise: smooth enough for a video codec to
// reach a high PSNR, never constant, different in every frame.
inline Video smooth_clip(int frames, int height, int width, double fps, uint64_t seed) {
  Video v = Video::blank(frames, height, width, fps);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> noise(-2.0, 2.0);
  for (int t = 0; t < frames; ++t)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        uint8_t* p = v.frame(t) + (size_t(y) * width + x) * 3;
        const double u = double(x) / width, w = double(y) / height, s = 0.15 * t;
        const double r = 128 + 100 * std::sin(2.0 * u * 3.14159 + s);
        const double g = 128 + 100 * std::cos(1.5 * w * 3.14159 - s);
        const double b = 40 + 170 * (u + w) / 2;
        const double c[3] = {r, g, b};
        for (int k = 0; k < 3; ++k) p[k] = uint8_t(std::clamp(std::lround(c[k] + noise(rng)), 0L, 255L));
      }
  return v;
}

// Peak signal-to-noise ratio of two equally sized byte arrays, in dB.
inline double psnr(const uint8_t* a, const uint8_t* b, size_t n) {
  double se = 0;
  for (size_t i = 0; i < n; ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  if (se == 0) return 1e9;
  return 10.0 * std::log10(255.0 * 255.0 / (se / double(n)));
}

// While alive, files this process writes may not grow past `bytes` (RLIMIT_FSIZE): writes fail
// with EFBIG, as on a full disk. SIGXFSZ is ignored meanwhile so the failure is an error code.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace reel::test
