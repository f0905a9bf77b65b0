// libFuzzer target for the safetensors reader: the 8-byte length, the header JSON (SAX schema
// walk, duplicate keys, UTF-8), the range checks, then the data conversions of accepted files.
// The bytes after the length prefix also go through the strict JSON reader used for index.json.
// Anything but a reel::Error(bad_format) escaping, or an ASan report, is a crash.
//
// Build (clang; tests/fuzz/CMakeLists.txt compiles the reader sources it links with
// -fsanitize=fuzzer-no-link,address, or all of reel_internal with -DREEL_FUZZ_LINK_INTERNAL=ON)
// and run ~10 minutes, seeded with the committed corpus and valid files:
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
//     -DREEL_FUZZ=ON -DREEL_CUDA=OFF -DREEL_BUILD_BENCH=OFF -DREEL_BUILD_EXAMPLES=OFF
//   ninja -C build-fuzz fuzz_safetensors
//   mkdir -p build-fuzz/fuzz-corpus && cp tests/fixtures/safetensors_corrupt/* \
//     tests/fixtures/safetensors_valid/*.safetensors tests/fixtures/safetensors_valid/sharded/* build-fuzz/fuzz-corpus/
//   build-fuzz/tests/fuzz/fuzz_safetensors build-fuzz/fuzz-corpus -dict=tests/fuzz/safetensors.dict \
//     -max_total_time=600 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "reel/status.hpp"
#include "reel/tensor.hpp"
#include "weights/fp8.hpp"
#include "weights/safetensors_header.hpp"
#include "weights/strict_json.hpp"

namespace {

[[noreturn]] void crash() { __builtin_trap(); }

// Decodes (up to 4096 elements of) every tensor of an accepted file the way WeightStore::load does.
void convert_all(std::span<const std::byte> file, const reel::detail::SafetensorsLayout& layout) {
  using reel::FileDType;
  for (const auto& t : layout.tensors) {
    if (t.begin > t.end || layout.data_start + t.end > file.size()) crash();  // validation let a bad range through
    const size_t elem = reel::detail::file_dtype_size(t.dtype);
    if (uint64_t(t.shape.numel()) * elem != t.end - t.begin) crash();
    const size_t n = size_t(std::min<int64_t>(t.shape.numel(), 4096));
    const std::byte* src = file.data() + layout.data_start + t.begin;
    std::vector<float> out(n);
    if (t.dtype == FileDType::f8_e4m3 || t.dtype == FileDType::f8_e5m2) {
      reel::detail::convert_fp8(reinterpret_cast<const uint8_t*>(src), t.dtype == FileDType::f8_e5m2, out.data(),
                                reel::DType::f32, n);
    } else {
      const reel::DType dt = t.dtype == FileDType::f32 ? reel::DType::f32
                             : t.dtype == FileDType::bf16 ? reel::DType::bf16 : reel::DType::f16;
      std::vector<std::byte> aligned(n * elem + 1);
      if (n) std::memcpy(aligned.data(), src, n * elem);
      reel::convert_elements(aligned.data(), dt, out.data(), reel::DType::f32, n);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    convert_all(file, reel::detail::parse_safetensors(file, "fuzz.safetensors"));
  } catch (const reel::Error& e) {
    if (e.code() != reel::StatusCode::bad_format) crash();
  }
  if (size > 8) {
    try {
      reel::detail::parse_json_strict(std::string_view(reinterpret_cast<const char*>(data) + 8, size - 8), "fuzz.json");
    } catch (const reel::Error& e) {
      if (e.code() != reel::StatusCode::bad_format) crash();
    }
  }
  return 0;
}
