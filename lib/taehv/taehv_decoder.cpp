// TAEHV's base decoder (taehv.py, TAEHV.decoder), as an nn.Sequential reads:
//
//   0 Clamp (3·tanh(x/3))  1 conv C→n0, 2 ReLU
//   stage s = 0, 1, 2 at index i = 3 + 6s:
//     i, i+1, i+2  MemBlock(n_s): ReLU(conv(ReLU(conv(ReLU(conv(cat[x, past]))))) + x)
//     i+3          Upsample ×2 (nearest; ×1 without space upscale)
//     i+4          TGrow: 1×1 conv n_s → stride·n_s, each frame becomes `stride` frames
//     i+5          conv n_s → n_{s+1}, no bias
//   21 ReLU, 22 conv n3 → 3·p², then pixel shuffle p and a clamp to [0, 1]
//
// `past` of a MemBlock is its own input one frame earlier (zeros before the first). TGrow
// strides are taehv.py's defaults, 1, 2, 2 (4F − 3 frames once the first three are trimmed), or
// all 1 without time upscale; a file storing more rows than a stride needs keeps the last ones
// (taehv.py's patch_tgrow_layers). Frames run one latent frame at a time with each MemBlock's
// last input frame carried over, which is taehv.py's sequential mode (equal to its parallel one).
#include "reel/taehv.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "reel/ops.hpp"
#include "reel/weights.hpp"

namespace reel {

namespace {

struct Conv {
  Tensor weight, bias;  // bias undefined when the layer has none
};

struct Stage {
  std::array<std::array<Conv, 3>, 3> blocks;  // three MemBlocks of three convs
  Tensor grow;                                // [stride·n, n, 1, 1]
  int stride = 1;
  Conv conv;  // n_s → n_{s+1}
};

constexpr std::array<int, 3> kTimeStrides{1, 2, 2};  // taehv.py's decoder_time_upscale default

}  // namespace

struct TaehvDecoder::Impl {
  TaehvOptions options;
  int64_t channels = 0;
  int patch = 1;
  Conv conv_in, conv_out;
  std::array<Stage, 3> stages;
  int time_factor = 1;  // product of the TGrow strides
};

namespace {

class Reader {
 public:
  Reader(const WeightStore& store, const std::filesystem::path& path, Device device)
      : store_(store), path_(path), device_(device) {}

  [[noreturn]] void fail(StatusCode code, const std::string& why) const {
    throw Error(code, path_.string() + ": " + why);
  }

  const Shape& shape(const std::string& name) const {
    if (!store_.contains(name)) fail(StatusCode::bad_format, "not a TAEHV decoder: no tensor '" + name + "'");
    return store_.info(name).shape;
  }

  Tensor load(const std::string& name, const Shape& want) const {
    const Shape& got = shape(name);
    if (!(got == want))
      fail(StatusCode::bad_format, "tensor '" + name + "' has shape " + got.str() + ", expected " + want.str());
    return store_.load(name, DType::f32).to(device_);
  }

  // A 3×3 conv at decoder.<index> (bias when `bias`).
  Conv conv(int index, int64_t out, int64_t in, bool bias) const {
    const std::string at = "decoder." + std::to_string(index);
    Conv c;
    c.weight = load(at + ".weight", {out, in, 3, 3});
    if (bias) c.bias = load(at + ".bias", {out});
    return c;
  }

 private:
  const WeightStore& store_;
  const std::filesystem::path& path_;
  Device device_;
};

Tensor conv3x3(Backend& be, const Tensor& x, const Conv& c) {
  return ops::conv2d(be, x, c.weight, c.bias.defined() ? &c.bias : nullptr, {1, 1}, {1, 1});
}

// x [t, n, H, W]; `memory` is the block's input frame before x's first (undefined: zeros) and
// becomes x's last frame.
Tensor mem_block(Backend& be, const Tensor& x, const std::array<Conv, 3>& convs, Tensor& memory) {
  const int64_t t = x.dim(0);
  const Shape frame{1, x.dim(1), x.dim(2), x.dim(3)};
  const Tensor before = memory.defined() ? memory : ops::full(be, frame, DType::f32, 0.0f);
  Tensor past = before;
  if (t > 1) {
    const Tensor head = ops::slice(be, x, 0, 0, t - 1);
    past = ops::concat(be, {&before, &head}, 0);
  }
  memory = ops::slice(be, x, 0, t - 1, t);
  Tensor h = ops::concat(be, {&x, &past}, 1);
  h = ops::relu(be, conv3x3(be, h, convs[0]));
  h = ops::relu(be, conv3x3(be, h, convs[1]));
  h = conv3x3(be, h, convs[2]);
  return ops::relu(be, ops::add(be, h, x));
}

// [t, 3·p², H, W] → [t, 3, H·p, W·p] (PyTorch's pixel_shuffle: channel c·p² + i·p + j goes to
// pixel (h·p + i, w·p + j) of channel c).
Tensor pixel_shuffle(Backend& be, const Tensor& x, int p) {
  if (p == 1) return x;
  const int64_t t = x.dim(0), c = x.dim(1) / (p * p), h = x.dim(2), w = x.dim(3);
  const Tensor split = x.reshape({t * c, p, p, h, w});
  const int perm[] = {0, 3, 1, 4, 2};
  return ops::permute(be, split, perm).reshape({t, c, h * p, w * p});
}

}  // namespace

TaehvDecoder::TaehvDecoder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

TaehvDecoder TaehvDecoder::load(const std::filesystem::path& path, const TaehvOptions& options) {
  const WeightStore store = WeightStore::open(path);
  const Reader r(store, path, options.device);
  if (store.contains("decoder.0.weight"))
    r.fail(StatusCode::unsupported, "a TAEHV \"super\" decoder (it has decoder.0.weight); reel runs the base "
                                    "decoders (taew2_1, taew2_2)");
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  const Shape& in = r.shape("decoder.1.weight");
  if (in.rank() != 4 || in[2] != 3 || in[3] != 3 || in[0] < 1 || in[1] < 1)
    r.fail(StatusCode::bad_format, "tensor 'decoder.1.weight' has shape " + in.str() + ", expected [n, C, 3, 3]");
  impl->channels = in[1];
  std::array<int64_t, 4> width{in[0], 0, 0, 0};
  for (int s = 0; s < 3; ++s) {
    const std::string name = "decoder." + std::to_string(8 + 6 * s) + ".weight";
    const Shape& next = r.shape(name);
    if (next.rank() != 4 || next[0] < 1) r.fail(StatusCode::bad_format, "tensor '" + name + "' has shape " + next.str());
    width[size_t(s) + 1] = next[0];
  }
  const Shape& out = r.shape("decoder.22.weight");
  const int64_t out_rows = out.rank() == 4 ? out[0] : 0;
  const int patch = out_rows == 3 ? 1 : out_rows == 12 ? 2 : out_rows == 48 ? 4 : 0;
  if (patch == 0)
    r.fail(StatusCode::bad_format, "tensor 'decoder.22.weight' has shape " + out.str() +
                                       ", expected [3·p², n, 3, 3] (RGB after a pixel shuffle of 1, 2 or 4)");
  impl->patch = patch;

  impl->conv_in = r.conv(1, width[0], impl->channels, true);
  for (int s = 0; s < 3; ++s) {
    Stage& st = impl->stages[size_t(s)];
    const int64_t n = width[size_t(s)];
    const int base = 3 + 6 * s;
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 3; ++j) {
        const std::string at = "decoder." + std::to_string(base + k) + ".conv." + std::to_string(2 * j);
        st.blocks[size_t(k)][size_t(j)].weight = r.load(at + ".weight", {n, j == 0 ? 2 * n : n, 3, 3});
        st.blocks[size_t(k)][size_t(j)].bias = r.load(at + ".bias", {n});
      }
    st.stride = options.time_upscale ? kTimeStrides[size_t(s)] : 1;
    const std::string grow = "decoder." + std::to_string(base + 4) + ".conv.weight";
    const Shape& g = r.shape(grow);
    if (g.rank() != 4 || g[1] != n || g[2] != 1 || g[3] != 1 || g[0] % n != 0 || g[0] < st.stride * n)
      r.fail(StatusCode::bad_format, "tensor '" + grow + "' has shape " + g.str() + ", expected [k·" +
                                         std::to_string(n) + ", " + std::to_string(n) + ", 1, 1] with k >= " +
                                         std::to_string(st.stride));
    const Tensor all = store.load(grow, DType::f32);  // the last stride·n rows (patch_tgrow_layers)
    st.grow = all.reshape({g[0], n}).slice(g[0] - st.stride * n, g[0]).clone().reshape({st.stride * n, n, 1, 1});
    st.grow = st.grow.to(options.device);
    st.conv = r.conv(base + 5, width[size_t(s) + 1], n, false);
    impl->time_factor *= st.stride;
  }
  impl->conv_out = r.conv(22, 3 * patch * patch, width[3], true);
  return TaehvDecoder(std::move(impl));
}

int64_t TaehvDecoder::latent_channels() const { return impl_->channels; }

int TaehvDecoder::spatial_factor() const { return (impl_->options.space_upscale ? 8 : 1) * impl_->patch; }

int64_t TaehvDecoder::frames_for_latents(int64_t latent_frames) const {
  return latent_frames < 1 ? 0 : latent_frames * impl_->time_factor - (impl_->time_factor - 1);
}

Tensor TaehvDecoder::decode(Backend& be, const Tensor& latents) const {
  const Impl& m = *impl_;
  if (latents.rank() != 4 || latents.dim(0) != m.channels || latents.dim(1) < 1 || latents.dim(2) < 1 ||
      latents.dim(3) < 1)
    throw Error(StatusCode::invalid_argument, "TAEHV decode: latents must be [" + std::to_string(m.channels) +
                                                  ", F, h, w] with F, h, w >= 1, got " + latents.shape().str());
  if (be.device() != m.options.device)
    throw Error(StatusCode::invalid_argument, "TAEHV decode: the decoder's weights are on " +
                                                  m.options.device.str() + ", the backend runs on " +
                                                  be.device().str());
  const int perm[] = {1, 0, 2, 3};  // [C, F, h, w] → taehv.py's frames-first [F, C, h, w]
  const Tensor all = ops::permute(be, ops::convert(be, latents.to(be.device()), DType::f32), perm);
  std::array<Tensor, 9> memory;
  std::vector<Tensor> frames;
  int64_t to_trim = m.time_factor - 1;
  for (int64_t f = 0; f < all.dim(0); ++f) {
    Tensor x = ops::slice(be, all, 0, f, f + 1);
    x = ops::affine(be, ops::tanh(be, ops::affine(be, x, 1.0f / 3.0f, 0.0f)), 3.0f, 0.0f);  // Clamp
    x = ops::relu(be, conv3x3(be, x, m.conv_in));
    for (size_t s = 0; s < 3; ++s) {
      const Stage& st = m.stages[s];
      for (size_t k = 0; k < 3; ++k) x = mem_block(be, x, st.blocks[k], memory[3 * s + k]);
      if (m.options.space_upscale) x = ops::upsample_nearest(be, x, 2, 2);
      const int64_t n = x.dim(1);
      x = ops::conv2d(be, x, st.grow, nullptr).reshape({x.dim(0) * st.stride, n, x.dim(2), x.dim(3)});
      x = conv3x3(be, x, st.conv);
    }
    x = conv3x3(be, ops::relu(be, x), m.conv_out);
    x = pixel_shuffle(be, x, m.patch);
    x = ops::affine(be, ops::relu(be, ops::affine(be, ops::relu(be, x), -1.0f, 1.0f)), -1.0f, 1.0f);  // [0, 1]
    if (to_trim > 0) {
      const int64_t drop = std::min(to_trim, x.dim(0));
      to_trim -= drop;
      if (drop == x.dim(0)) continue;
      x = ops::slice(be, x, 0, drop, x.dim(0));
    }
    frames.push_back(std::move(x));
  }
  std::vector<const Tensor*> parts;
  for (const Tensor& t : frames) parts.push_back(&t);
  return parts.size() == 1 ? frames[0] : ops::concat(be, parts, 0);
}

}  // namespace reel
