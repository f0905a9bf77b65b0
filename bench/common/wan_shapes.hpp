// The Wan 2.1 text-to-video transformer shapes the benchmarks run, the analytic FLOPs of one
// forward pass, and transformers of those shapes built from weights made in memory (values do
// not change the speed or the memory; checks compare two runs on the same weights).
//
//   const WanConfig cfg = bench::wan_t2v_1_3b();          // 30 layers; wan_t2v_1_3b(2) for a check
//   const WanTransformer dit = bench::random_wan_transformer(cfg, WanPrecision::bf16, /*seed=*/7);
//   const WanTransformer on_gpu = dit.to(Device::cuda(0));  // the same weights, uploaded once
//   const double flops = bench::wan_forward_flops(cfg, /*batch=*/2, /*tokens=*/32760, /*text_tokens=*/512);
#pragma once
#include <cstdint>
#include <vector>

#include "reel/wan_transformer.hpp"
#include "wan/wan_model.hpp"

namespace reel::bench {

// A T2V transformer of width `dim` (head_dim = dim / heads), `layers` blocks and FFN width
// `ffn_dim`, with 16 latent channels in and out and umT5-XXL text (4096 wide).
WanConfig wan_t2v_config(int64_t dim, int64_t heads, int64_t layers, int64_t ffn_dim);
// Wan2.1-T2V-1.3B: D 1536, 12 heads × 128, ffn 8960; 30 layers unless fewer are asked for.
WanConfig wan_t2v_1_3b(int64_t layers = 30);
// Wan2.1-T2V-14B: D 5120, 40 heads × 128, 40 layers, ffn 13824.
WanConfig wan_t2v_14b();

// Analytic FLOPs of one forward of `batch` items of `tokens` latent tokens and `text_tokens`
// text tokens (2 per multiply-add; attention 4·B·H·Sq·Skv·hd).
double wan_forward_flops(const WanConfig& config, int64_t batch, int64_t tokens, int64_t text_tokens);

// A transformer over `weights`, which lie on `device`.
WanTransformer wan_transformer(const WanConfig& config, wan::WanWeights weights, WanPrecision precision,
                               Device device);
// A transformer on the host with wan::random_weights(config, precision, seed).
WanTransformer random_wan_transformer(const WanConfig& config, WanPrecision precision, uint64_t seed);

// The inputs of one T2V forward the whole-model benches time: latents [1, 16, 5, 32, 32]
// (256×256×17: 1 280 tokens) and text [1, 512, 4096], standard normal (mt19937_64, seeds 1
// and 2), timestep 937. Made once.
struct WanForwardInputs {
  Tensor latents, text;
  std::vector<float> t;
};
const WanForwardInputs& wan_forward_inputs();

}  // namespace reel::bench
