// fp8 e4m3 checkpoints: ComfyUI "fp8 scaled" files are dequantised w·scale (legacy
// `<layer>.scale_weight` and modern `<layer>.weight_scale` spellings), unscaled fp8 files load
// the codes as values. The files are variants of the t2v fixture written byte for byte here
// (reel's save_safetensors has no fp8 type), so the fp8 codes are the fixture's own.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "dit/dit_fixtures.hpp"
#include "wan/wan_model.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;

std::string safetensors_dtype(FileDType t) {
  switch (t) {
    case FileDType::f32: return "F32";
    case FileDType::f16: return "F16";
    case FileDType::bf16: return "BF16";
    case FileDType::f8_e4m3: return "F8_E4M3";
    case FileDType::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

// Copies the tensors of `src` (raw bytes, any dtype) into a new safetensors file, renaming
// through `rename` (an empty result drops the tensor).
fs::path rewrite(const fs::path& src, const std::string& out_name,
                 const std::function<std::string(const std::string&)>& rename) {
  const WeightStore store = WeightStore::open(src);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::string data;
  for (const std::string& n : store.names()) {
    const std::string to = rename(n);
    if (to.empty()) continue;
    const TensorInfo& info = store.info(n);
    std::ifstream in(info.file, std::ios::binary);
    in.seekg(std::streamoff(info.offset));
    std::string bytes(size_t(info.bytes), '\0');
    in.read(bytes.data(), std::streamsize(bytes.size()));
    std::vector<int64_t> shape(info.shape.dims().begin(), info.shape.dims().end());
    header[to] = {{"dtype", safetensors_dtype(info.dtype)},
                  {"shape", shape},
                  {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::string h = header.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');
  const fs::path p = test::tmp_dir() / (out_name + ".safetensors");
  std::ofstream out(p, std::ios::binary);
  const uint64_t n = h.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << data;
  return p;
}

const fs::path kT2v = test::dit_dir("t2v") / "original.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The self-attention q weight of block 1 as the model holds it, and the file's fp8 codes (f32).
struct Q1 {
  std::vector<float> model, codes;
  float scale = 0;
};
Q1 q1_of(const WanTransformer& dit, const fs::path& file) {
  const WeightStore s = WeightStore::open(file);
  Q1 r;
  r.model = wan_impl(dit).weights.blocks[1].q.weight.to_floats();
  r.codes = s.load("model.diffusion_model.blocks.1.self_attn.q.weight", DType::f32).to_floats();
  const std::string scale = "model.diffusion_model.blocks.1.self_attn.q.scale_weight";
  if (s.contains(scale)) r.scale = s.load(scale, DType::f32).to_floats()[0];
  return r;
}

TEST(WanFp8, ScaledWeightsAreDequantisedOnLoad) {
  const WanTransformer dit = WanTransformer::load(kT2v, {.precision = WanPrecision::f32});
  const Q1 q = q1_of(dit, kT2v);
  ASSERT_GT(q.scale, 0.0f);
  ASSERT_EQ(q.model.size(), q.codes.size());
  for (size_t i = 0; i < q.codes.size(); ++i) ASSERT_EQ(q.model[i], q.codes[i] * q.scale) << i;  // one f32 product
}

TEST(WanFp8, ModernWeightScaleSpellingGivesTheSameModel) {
  const fs::path p = rewrite(kT2v, "wan_fp8_weight_scale", [](const std::string& n) {
    return ends_with(n, ".scale_weight") ? n.substr(0, n.size() - 12) + "weight_scale" : n;
  });
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("t2v");
  const WanTransformer legacy = WanTransformer::load(kT2v, {.precision = WanPrecision::f32});
  const WanTransformer modern = WanTransformer::load(p, {.precision = WanPrecision::f32});
  EXPECT_EQ(modern.checkpoint().scaled_fp8_tensors, 20);
  const Tensor a = test::run_dit(legacy, *be, io), b = test::run_dit(modern, *be, io);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
}

TEST(WanFp8, UnscaledFp8LoadsTheCodes) {
  const fs::path p = rewrite(kT2v, "wan_fp8_unscaled", [](const std::string& n) {
    return ends_with(n, ".scale_weight") ? std::string() : n;
  });
  for (WanPrecision precision : {WanPrecision::f32, WanPrecision::bf16}) {
    const WanTransformer dit = WanTransformer::load(p, {.precision = precision});
    EXPECT_EQ(dit.checkpoint().fp8_tensors, 20);
    EXPECT_EQ(dit.checkpoint().scaled_fp8_tensors, 0);
    const Q1 q = q1_of(dit, p);
    EXPECT_EQ(q.model, q.codes);  // every e4m3 value is exact in f32 and bf16
  }
}

TEST(WanFp8, Bf16ModeRoundsTheDequantisedProduct) {
  const WanTransformer dit = WanTransformer::load(kT2v, {.precision = WanPrecision::bf16});
  EXPECT_EQ(wan_impl(dit).weights.blocks[1].q.weight.dtype(), DType::bf16);
  const Q1 q = q1_of(dit, kT2v);
  for (size_t i = 0; i < q.codes.size(); ++i) ASSERT_EQ(q.model[i], round_to(DType::bf16, q.codes[i] * q.scale)) << i;
}

}  // namespace
}  // namespace reel
