// libFuzzer target for the GGUF reader: header, metadata key-values (every value type, arrays),
// tensor infos, alignment and range checks, then the dequantisation of accepted files.
// Anything but a reel::Error(bad_format or unsupported) escaping, or an ASan report, is a crash.
//
// Build as fuzz_safetensors (tests/fuzz/CMakeLists.txt), then run seeded with the fixtures:
//   ninja -C build-fuzz fuzz_gguf
//   mkdir -p build-fuzz/gguf-corpus && cp tests/fixtures/gguf/*.gguf build-fuzz/gguf-corpus/
//   build-fuzz/tests/fuzz/fuzz_gguf build-fuzz/gguf-corpus -max_total_time=600 -rss_limit_mb=2048 \
//     -max_len=65536 -print_final_stats=1
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "reel/status.hpp"
#include "weights/gguf_dequant.hpp"
#include "weights/gguf_reader.hpp"

namespace {

[[noreturn]] void crash() { __builtin_trap(); }

// Dequantises (up to 8192 elements of) every tensor of an accepted file, as WeightStore::load does.
void decode_all(std::span<const std::byte> file, const reel::detail::GgufLayout& layout) {
  std::vector<float> out;
  for (const auto& t : layout.tensors) {
    if (t.offset < layout.data_start || t.offset > file.size() || t.bytes > file.size() - t.offset) crash();
    const reel::detail::GgufBlock blk = reel::detail::gguf_block(t.dtype);
    const uint64_t n = uint64_t(t.shape.numel());
    if (blk.elements == 0 || n % blk.elements != 0 || n / blk.elements * blk.bytes != t.bytes) crash();
    const uint64_t m = std::min<uint64_t>(n, 8192) / blk.elements * blk.elements;
    out.resize(size_t(m));
    reel::detail::dequantize_gguf(t.dtype, file.data() + t.offset, out.data(), size_t(m));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    const reel::detail::GgufLayout layout = reel::detail::parse_gguf(file, "fuzz.gguf");
    decode_all(file, layout);
  } catch (const reel::Error& e) {
    if (e.code() != reel::StatusCode::bad_format && e.code() != reel::StatusCode::unsupported) {
      std::fprintf(stderr, "unexpected %s: %s\n", reel::status_name(e.code()), e.what());
      crash();
    }
  } catch (...) {
    crash();
  }
  return 0;
}
