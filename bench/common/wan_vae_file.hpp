// A Wan 2.1 VAE decoder (its diffusers tensors: the decoder and post_quant_conv) written as a
// bf16 safetensors file in the temporary folder, for benchmarks that load it like a real one.
//
//   const std::filesystem::path file = bench::write_wan21_vae_decoder("vae", bench::VaeWeightValues::random);
//   WanVae vae = WanVae::load(file, *be, {.encoder = false});
//   std::filesystem::remove(file);  // the caller removes it
#pragma once
#include <filesystem>
#include <string_view>

namespace reel::bench {

enum class VaeWeightValues {
  random,  // conv weights uniform ±1/sqrt(fan_in) (PyTorch's default), gammas 1 ± 0.1, biases
           // ±0.02; one mt19937_64 stream from seed 2024, so every file holds the same values
  zeros,   // all zero: for runs that only count memory
};

// Writes <temp>/reel_bench_<tag>_<pid>.safetensors and returns its path.
std::filesystem::path write_wan21_vae_decoder(std::string_view tag, VaeWeightValues values);

}  // namespace reel::bench
