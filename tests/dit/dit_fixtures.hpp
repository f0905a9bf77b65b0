// Shared by the DiT tests: the fixture cases of tools/reference/make_dit_fixtures.py and a
// reader for their inputs and reference outputs.
#pragma once
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "reel/wan_transformer.hpp"
#include "reel/weights.hpp"

namespace reel::test {

struct DitCase {
  std::string name;
  int64_t head_dim;    // what the original-layout file (no config.json) must be told
  bool has_diffusers;  // t2v is stored only as a ComfyUI fp8-scaled original-layout file
};

// gtest prints parameters with this (clean test names in ctest).
inline void PrintTo(const DitCase& c, std::ostream* os) { *os << c.name; }

inline const std::vector<DitCase>& dit_cases() {
  static const std::vector<DitCase> cases = {{"t2v", 128, false}, {"i2v", 32, true}, {"ti2v", 24, true}};
  return cases;
}

inline std::filesystem::path dit_dir(const std::string& name) { return fixtures_dir() / "dit" / name; }

struct DitIo {
  Tensor latents, text, image;  // f32 copies of the (bf16-exact) inputs; image undefined for T2V/TI2V
  std::vector<float> timesteps;
  Tensor out_f32, out_bf16;     // diffusers references
};

inline DitIo read_dit_io(const std::string& name) {
  const WeightStore io = WeightStore::open(dit_dir(name) / "io.safetensors");
  DitIo r;
  r.latents = io.load("latents", DType::f32);
  r.text = io.load("text", DType::f32);
  if (io.contains("image")) r.image = io.load("image", DType::f32);
  r.timesteps = io.load("timesteps", DType::f32).to_floats();
  r.out_f32 = io.load("out_f32", DType::f32);
  r.out_bf16 = io.load("out_bf16", DType::f32);
  return r;
}

inline Tensor run_dit(const WanTransformer& dit, Backend& be, const DitIo& io) {
  return dit.forward(be, io.latents, io.timesteps, io.text, io.image.defined() ? &io.image : nullptr);
}

}  // namespace reel::test
