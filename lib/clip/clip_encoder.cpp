// ClipVisionEncoder: CLIPVisionModel up to hidden_states[-2] through the backend ops — patch
// embedding (the stride-p Conv2d as a linear layer over the patches), class token and position
// embeddings, pre_layrnorm, then num_layers − 1 pre-norm encoder layers (multi-head attention
// with 1/√head_dim, MLP with GELU or quick GELU). Residual stream, norms and activations in f32;
// GEMM and attention inputs in the weight dtype.
#include <cmath>
#include <cstring>

#include "clip/clip_model.hpp"
#include "reel/ops.hpp"

namespace reel {

namespace {

Tensor to_dtype(Backend& be, const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : ops::convert(be, x, dtype); }

// LayerNorm over the last dimension (statistics in f32), rounded once into `dtype`.
Tensor layer_norm(Backend& be, const Tensor& x, const clip::Affine& n, float eps, DType dtype) {
  Tensor out = be.empty(x.shape(), dtype);
  be.run(op::LayerNorm{&x, &n.weight, &n.bias, &out, eps});
  return out;
}

Tensor activate(Backend& be, const Tensor& x, ClipActivation act) {
  if (act == ClipActivation::gelu) return ops::gelu_erf(be, x);
  // quick GELU x·sigmoid(1.702x) = silu(1.702x) / 1.702, from the ops every backend has.
  constexpr float kAlpha = 1.702f;
  return ops::affine(be, ops::silu(be, ops::affine(be, x, kAlpha, 0.0f)), 1.0f / kAlpha, 0.0f);
}

// [B, C, S, S] f32 on the CPU → [B, g·g, C·p·p] patches, each flattened as (c, y, x): the
// layout of the Conv2d weight [hidden, C, p, p], so patches · weightᵀ is the convolution.
Tensor extract_patches(const Tensor& pixels, int64_t p) {
  const int64_t b = pixels.dim(0), c = pixels.dim(1), s = pixels.dim(2), g = s / p;
  Tensor out = Tensor::empty({b, g * g, c * p * p}, DType::f32);
  const float* in = pixels.data<float>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < b; ++n)
    for (int64_t gy = 0; gy < g; ++gy)
      for (int64_t gx = 0; gx < g; ++gx)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t y = 0; y < p; ++y) {
            const float* row = in + ((n * c + ch) * s + gy * p + y) * s + gx * p;
            std::memcpy(dst, row, size_t(p) * sizeof(float));
            dst += p;
          }
  return out;
}

Tensor encoder_layer(Backend& be, const clip::ClipWeights& w, const clip::ClipLayer& L, const Tensor& x) {
  const ClipVisionConfig& c = w.config;
  const int64_t b = x.dim(0), s = x.dim(1), heads = c.num_heads, hd = c.head_dim();
  const Tensor n1 = layer_norm(be, x, L.norm1, c.layer_norm_eps, w.dtype);
  const Tensor q = ops::linear(be, n1, L.q.weight, &L.q.bias).reshape({b, s, heads, hd});
  const Tensor k = ops::linear(be, n1, L.k.weight, &L.k.bias).reshape({b, s, heads, hd});
  const Tensor v = ops::linear(be, n1, L.v.weight, &L.v.bias).reshape({b, s, heads, hd});
  const float scale = float(1.0 / std::sqrt(double(hd)));  // transformers: head_dim ** -0.5
  const Tensor attn = ops::attention(be, q, k, v, scale).reshape({b, s, c.hidden_size});
  const Tensor h = ops::add(be, x, ops::linear(be, attn, L.out.weight, &L.out.bias, DType::f32));

  const Tensor n2 = layer_norm(be, h, L.norm2, c.layer_norm_eps, w.dtype);
  const Tensor up = activate(be, ops::linear(be, n2, L.fc1.weight, &L.fc1.bias, DType::f32), c.activation);
  return ops::add(be, h, ops::linear(be, to_dtype(be, up, w.dtype), L.fc2.weight, &L.fc2.bias, DType::f32));
}

}  // namespace

ClipVisionEncoder::ClipVisionEncoder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  require(impl_ != nullptr, StatusCode::invalid_argument, "ClipVisionEncoder: null weights");
}

const ClipVisionConfig& ClipVisionEncoder::config() const { return impl_->w.config; }
DType ClipVisionEncoder::dtype() const { return impl_->w.dtype; }
Device ClipVisionEncoder::device() const { return impl_->w.device; }
const std::vector<std::string>& ClipVisionEncoder::ignored() const { return impl_->w.ignored; }

Tensor ClipVisionEncoder::forward(Backend& be, const Tensor& pixels) const {
  const clip::ClipWeights& w = impl_->w;
  const ClipVisionConfig& c = w.config;
  require(be.device() == w.device, StatusCode::invalid_argument,
          "the CLIP encoder's weights are on " + w.device.str() + " but the backend runs on " + be.device().str());
  require(pixels.defined() && pixels.dtype() == DType::f32 && pixels.rank() == 4 && pixels.dim(0) >= 1 &&
              pixels.dim(1) == c.num_channels && pixels.dim(2) == c.image_size && pixels.dim(3) == c.image_size,
          StatusCode::invalid_argument,
          "CLIP encoder: pixels must be f32 [B, " + std::to_string(c.num_channels) + ", " +
              std::to_string(c.image_size) + ", " + std::to_string(c.image_size) + "] (the model's image_size), got " +
              (pixels.defined() ? std::string(dtype_name(pixels.dtype())) + " " + pixels.shape().str() : "none"));
  const int64_t b = pixels.dim(0), d = c.hidden_size;

  // Embeddings: [class; patches · Wᵀ] + positions, then pre_layrnorm.
  Tensor patches = extract_patches(pixels.to(Device::cpu()), c.patch_size);
  if (be.device() != Device::cpu()) patches = patches.to(be.device());
  patches = to_dtype(be, patches, w.dtype);  // transformers casts the pixels to the weight dtype
  const Tensor embedded = ops::linear(be, patches, w.patch, nullptr, DType::f32);  // [B, g², D]
  const Tensor cls = ops::add(be, ops::full(be, {b, 1, d}, DType::f32, 0.0f), w.class_embedding);
  const Tensor tokens = ops::concat(be, {&cls, &embedded}, 1);
  Tensor x = layer_norm(be, ops::add(be, tokens, w.positions), w.pre_norm, c.layer_norm_eps, DType::f32);
  for (const clip::ClipLayer& L : w.layers) x = encoder_layer(be, w, L, x);
  return x;
}

Tensor ClipVisionEncoder::encode(Backend& be, const ClipImageProcessor& processor, std::span<const Image> images) const {
  const ClipVisionConfig& c = config();
  require(!images.empty(), StatusCode::invalid_argument, "CLIP encode: no images");
  const int64_t s = c.image_size, plane = 3 * s * s;
  require(c.num_channels == 3, StatusCode::unsupported,
          "CLIP encode: the encoder takes " + std::to_string(c.num_channels) + " channels, images have 3");
  Tensor pixels = Tensor::empty({int64_t(images.size()), 3, s, s}, DType::f32);
  for (size_t i = 0; i < images.size(); ++i) {
    const Tensor one = processor.preprocess(images[i]);
    require(one.dim(1) == s && one.dim(2) == s, StatusCode::invalid_argument,
            "CLIP encode: the image processor makes " + std::to_string(one.dim(2)) + "x" + std::to_string(one.dim(1)) +
                " pixels but the encoder's image_size is " + std::to_string(s) +
                " (the processor's crop_size must match the encoder)");
    std::memcpy(pixels.data<float>() + int64_t(i) * plane, one.data<float>(), size_t(plane) * sizeof(float));
  }
  return forward(be, pixels);
}

namespace {

// config.json in the folder, or beside the file.
std::optional<clip::ClipConfigJson> config_json_of(const std::filesystem::path& path) {
  std::error_code ec;
  const bool folder = std::filesystem::is_directory(path, ec);
  const std::filesystem::path config = (folder ? path : path.parent_path()) / "config.json";
  if (!std::filesystem::is_regular_file(config, ec)) return std::nullopt;
  return clip::read_clip_config_json(config);
}

}  // namespace

ClipVisionEncoder ClipVisionEncoder::load(const std::filesystem::path& path, const ClipVisionLoadOptions& options) {
  const WeightStore store = WeightStore::open(path);
  auto impl = std::make_shared<Impl>();
  impl->w = clip::load_clip_weights(store, config_json_of(path), options, path.string());
  return ClipVisionEncoder(std::move(impl));
}

ClipVisionConfig ClipVisionEncoder::read_config(const std::filesystem::path& path) {
  return clip::check_clip_checkpoint(WeightStore::open(path), config_json_of(path), path.string());
}

}  // namespace reel
