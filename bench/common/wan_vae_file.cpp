// The benchmarks' Wan 2.1 VAE decoder files: random or zero weights in the checkpoint's shapes.
#include "common/wan_vae_file.hpp"

#include <unistd.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "reel/vae.hpp"
#include "reel/weights.hpp"
#include "vae/vae_model.hpp"

namespace reel::bench {

std::filesystem::path write_wan21_vae_decoder(std::string_view tag, VaeWeightValues values) {
  VaeModel shapes;
  shapes.config = VaeConfig::wan21();
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::mt19937_64 rng(2024);
  for (const auto& p : vae::build_vae_table(shapes, /*encoder=*/false, /*decoder=*/true)) {
    const Shape& s = p.file_shape;
    if (values == VaeWeightValues::zeros) {
      tensors.emplace_back(p.diffusers, Tensor::zeros(s, DType::bf16));
      continue;
    }
    float lo = -0.02f, hi = 0.02f;
    if (p.diffusers.find("gamma") != std::string::npos) {
      lo = 0.9f;
      hi = 1.1f;
    } else if (s.rank() >= 4) {
      hi = float(1.0 / std::sqrt(double(s.numel() / s[0])));
      lo = -hi;
    }
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(size_t(s.numel()));
    for (float& x : v) x = d(rng);
    tensors.emplace_back(p.diffusers, Tensor::from_floats(s, v, DType::bf16));
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("reel_bench_" + std::string(tag) + "_" + std::to_string(::getpid()) + ".safetensors");
  save_safetensors(path, tensors);
  return path;
}

}  // namespace reel::bench
