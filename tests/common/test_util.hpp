// Helpers shared by the test suites: seeded random tensors (never zeros), double-precision
// comparisons, fixture paths, the expected-error checks, and the GPU skip.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "reel/status.hpp"
#include "reel/tensor.hpp"

namespace reel::test {

// The environment variable `name` when set and non-empty, else the compiled-in `fallback`: lets
// a build run from another checkout (scripts/gpu-run.sh on a GPU machine) find its fixtures.
inline std::filesystem::path env_path_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}
inline std::filesystem::path fixtures_dir() { return env_path_or("REEL_FIXTURES_DIR", REEL_FIXTURES_DIR); }
inline std::filesystem::path tmp_dir() {
  std::filesystem::path p = env_path_or("REEL_TEST_TMP_DIR", REEL_TEST_TMP_DIR);
  std::filesystem::create_directories(p);
  return p;
}

// The status code fn throws as a reel::Error (StatusCode::ok when it returns), and its message.
inline StatusCode code_of(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return StatusCode::ok;
}

// Expects fn to throw reel::Error with `code` and a message containing `needle` (when given).
inline void expect_code(StatusCode code, const std::function<void()>& fn, const std::string& needle = "") {
  std::string message;
  const StatusCode got = code_of(fn, &message);
  EXPECT_EQ(got, code) << (got == StatusCode::ok ? "nothing was thrown" : message);
  if (!needle.empty() && got != StatusCode::ok)
    EXPECT_NE(message.find(needle), std::string::npos) << "'" << message << "' does not mention '" << needle << "'";
}

// Uniform values in [lo, hi), from a fixed seed; rounded to `dtype`.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f32, float lo = -1.0f,
                            float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_floats(shape, v, dtype);
}

inline std::vector<double> to_doubles(const Tensor& t) {
  std::vector<float> f = t.to_floats();
  return {f.begin(), f.end()};
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

// ‖a − b‖₂ / ‖b‖₂
inline double relative_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// Values rounded to dtype, as doubles: what a same-precision reference would hold.
inline std::vector<double> rounded(const std::vector<double>& v, DType dtype) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = round_to(dtype, float(v[i]));
  return r;
}

}  // namespace reel::test

// Skips a GPU test with a message when no CUDA device is usable.
#define REEL_SKIP_WITHOUT_GPU(have_gpu)                                              \
  do {                                                                               \
    if (!(have_gpu)) GTEST_SKIP() << "no CUDA GPU on this machine: GPU test skipped"; \
  } while (0)
