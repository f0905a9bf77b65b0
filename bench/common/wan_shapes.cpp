// The benchmarks' Wan transformer shapes, FLOP count and random-weight transformers.
#include "common/wan_shapes.hpp"

#include <memory>
#include <random>
#include <utility>

namespace reel::bench {

WanConfig wan_t2v_config(int64_t dim, int64_t heads, int64_t layers, int64_t ffn_dim) {
  WanConfig c;
  c.dim = dim;
  c.heads = heads;
  c.head_dim = dim / heads;
  c.layers = layers;
  c.ffn_dim = ffn_dim;
  c.in_channels = 16;
  c.out_channels = 16;
  c.text_dim = 4096;
  return c;
}

WanConfig wan_t2v_1_3b(int64_t layers) { return wan_t2v_config(1536, 12, layers, 8960); }

WanConfig wan_t2v_14b() { return wan_t2v_config(5120, 40, 40, 13824); }

double wan_forward_flops(const WanConfig& c, int64_t batch, int64_t tokens, int64_t text_tokens) {
  const double L = double(tokens), T = double(text_tokens), D = double(c.dim), F = double(c.ffn_dim);
  double block = 2 * L * D * D * 4                        // self-attention q, k, v, o
                 + 4 * L * L * D                          // self-attention core
                 + 2 * L * D * D * 2 + 2 * T * D * D * 2  // cross-attention q, o and k, v
                 + 4 * L * T * D                          // cross-attention core
                 + 2 * L * D * F * 2;                     // FFN
  double rest = 2 * L * double(c.in_channels * c.patch.volume()) * D      // patch embedding
                + 2 * T * (double(c.text_dim) * D + D * D)               // text embedder
                + 2 * (double(c.freq_dim) * D + D * D + 6 * D * D)       // time embedder, projection
                + 2 * L * D * double(c.out_channels * c.patch.volume()); // proj_out
  return double(batch) * (double(c.layers) * block + rest);
}

WanTransformer wan_transformer(const WanConfig& config, wan::WanWeights weights, WanPrecision precision,
                               Device device) {
  auto impl = std::make_shared<WanTransformer::Impl>();
  impl->config = config;
  impl->precision = precision;
  impl->device = device;
  impl->weights = std::move(weights);
  return WanTransformer(std::move(impl));
}

WanTransformer random_wan_transformer(const WanConfig& config, WanPrecision precision, uint64_t seed) {
  return wan_transformer(config, wan::random_weights(config, precision, seed), precision, Device::cpu());
}

const WanForwardInputs& wan_forward_inputs() {
  static const WanForwardInputs in = [] {
    const auto normal = [](const Shape& s, uint64_t seed) {
      std::mt19937_64 rng(seed);
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> v(size_t(s.numel()));
      for (auto& x : v) x = d(rng);
      return Tensor::from_floats(s, v, DType::f32);
    };
    return WanForwardInputs{normal({1, 16, 5, 32, 32}, 1), normal({1, 512, 4096}, 2), {937.0f}};
  }();
  return in;
}

}  // namespace reel::bench
