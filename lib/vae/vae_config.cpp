// The Wan VAE config (presets, checks, compression factors), the pipeline's latent
// normalisation (reference/wan.md §2.5) and Wan 2.2's patchify / unpatchify (§2.2).
#include <array>
#include <string>

#include "reel/ops.hpp"
#include "reel/vae.hpp"

namespace reel {

namespace {

const std::vector<float> kWan21Mean{-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                                    0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
const std::vector<float> kWan21Std{2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                   3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};
const std::vector<float> kWan22Mean{
    -0.2289f, -0.0052f, -0.1323f, -0.2339f, -0.2799f, 0.0174f,  0.1838f,  0.1557f,  -0.1382f, 0.0542f,  0.2813f,  0.0891f,
    0.1570f,  -0.0098f, 0.0375f,  -0.1825f, -0.2246f, -0.1207f, -0.0698f, 0.5109f,  0.2665f,  -0.2108f, -0.2158f, 0.2502f,
    -0.2055f, -0.0322f, 0.1109f,  0.1567f,  -0.0729f, 0.0899f,  -0.2799f, -0.1230f, -0.0313f, -0.1649f, 0.0117f,  0.0723f,
    -0.2839f, -0.2083f, -0.0520f, 0.3748f,  0.0152f,  0.1957f,  0.1433f,  -0.2944f, 0.3573f,  -0.0548f, -0.1681f, -0.0667f};
const std::vector<float> kWan22Std{
    0.4765f, 1.0364f, 0.4514f, 1.1677f, 0.5313f, 0.4990f, 0.4818f, 0.5013f, 0.8158f, 1.0344f, 0.5894f, 1.0901f,
    0.6885f, 0.6165f, 0.8454f, 0.4978f, 0.5759f, 0.3523f, 0.7135f, 0.6804f, 0.5833f, 1.4146f, 0.8986f, 0.5659f,
    0.7069f, 0.5338f, 0.4889f, 0.4917f, 0.4069f, 0.4999f, 0.6866f, 0.4093f, 0.5709f, 0.6065f, 0.6415f, 0.4944f,
    0.5726f, 1.2042f, 0.5458f, 1.6887f, 0.3971f, 1.0600f, 0.3943f, 0.5537f, 0.5444f, 0.4089f, 0.7468f, 0.7744f};

[[noreturn]] void bad_config(const std::string& what) {
  throw Error(StatusCode::invalid_argument, "VaeConfig: " + what);
}

// [C, 1, 1, 1] per-channel values for broadcasting over [C, F, h, w] / [B, C, F, h, w].
Tensor per_channel(Backend& be, const std::vector<float>& v) {
  Tensor host = Tensor::from_floats({int64_t(v.size()), 1, 1, 1}, v);
  return be.device() == Device::cpu() ? host : host.to(be.device());
}

Tensor on_backend(Backend& be, const Tensor& t) { return t.to(be.device()); }

void check_latents(const Tensor& z, const VaeConfig& cfg, const char* fn) {
  require(cfg.latents_mean.size() == size_t(cfg.z_dim) && cfg.latents_std.size() == size_t(cfg.z_dim),
          StatusCode::invalid_argument,
          std::string(fn) + ": this VAE config has no latent normalisation constants (only the Wan 2.1 and Wan 2.2 "
                            "VAEs do)");
  require(z.defined() && (z.rank() == 4 || z.rank() == 5), StatusCode::invalid_argument,
          std::string(fn) + ": latents must be [C, F, h, w] or [B, C, F, h, w], got " +
              (z.defined() ? z.shape().str() : std::string("an undefined tensor")));
  const int64_t c = z.dim(z.rank() - 4);
  require(c == cfg.z_dim, StatusCode::invalid_argument,
          std::string(fn) + ": latents " + z.shape().str() + " have " + std::to_string(c) + " channels, the VAE has " +
              std::to_string(cfg.z_dim));
}

}  // namespace

VaeConfig VaeConfig::wan21() {
  VaeConfig c;
  c.latents_mean = kWan21Mean;
  c.latents_std = kWan21Std;
  return c;
}

VaeConfig VaeConfig::wan22() {
  VaeConfig c;
  c.base_dim = 160;
  c.decoder_base_dim = 256;
  c.z_dim = 48;
  c.is_residual = true;
  c.in_channels = c.out_channels = 12;
  c.patch_size = 2;
  c.latents_mean = kWan22Mean;
  c.latents_std = kWan22Std;
  return c;
}

int VaeConfig::spatial_factor() const { return (1 << (int(dim_mult.size()) - 1)) * patch_size; }

int VaeConfig::temporal_factor() const {
  int f = 1;
  for (size_t i = 0; i + 1 < dim_mult.size() && i < temporal_downsample.size(); ++i)
    if (temporal_downsample[i]) f *= 2;
  return f;
}

int64_t VaeConfig::frames_for_latents(int64_t latent_frames) const {
  return latent_frames <= 0 ? 0 : temporal_factor() * (latent_frames - 1) + 1;
}

int64_t VaeConfig::latents_for_frames(int64_t frames) const {
  return frames <= 0 ? 0 : (frames - 1) / temporal_factor() + 1;
}

void VaeConfig::validate() const {
  auto positive = [](int v, const char* name) {
    if (v <= 0 || v > (1 << 16)) bad_config(std::string(name) + " = " + std::to_string(v) + " must be in [1, 65536]");
  };
  positive(base_dim, "base_dim");
  positive(decoder_base_dim, "decoder_base_dim");
  positive(z_dim, "z_dim");
  positive(num_res_blocks, "num_res_blocks");
  positive(in_channels, "in_channels");
  positive(out_channels, "out_channels");
  positive(patch_size, "patch_size");
  if (dim_mult.size() < 2 || dim_mult.size() > 6) bad_config("dim_mult needs 2 to 6 levels");
  for (int m : dim_mult) positive(m, "dim_mult entry");
  if (temporal_downsample.size() != dim_mult.size() - 1)
    bad_config("temporal_downsample has " + std::to_string(temporal_downsample.size()) + " entries, expected " +
               std::to_string(dim_mult.size() - 1) + " (one per downsampling level)");
  const int p2 = patch_size * patch_size;
  if (in_channels != 3 * p2 || out_channels != 3 * p2)
    bad_config("in_channels/out_channels " + std::to_string(in_channels) + "/" + std::to_string(out_channels) +
               " must be 3·patch_size² = " + std::to_string(3 * p2) + " (RGB frames)");
  if (!latents_mean.empty() || !latents_std.empty()) {
    if (latents_mean.size() != size_t(z_dim) || latents_std.size() != size_t(z_dim))
      bad_config("latents_mean/latents_std need z_dim = " + std::to_string(z_dim) + " values each");
    for (float s : latents_std)
      if (!(s > 0.0f)) bad_config("latents_std values must be > 0");
  }
  if (is_residual) {
    // The parameter-free shortcuts regroup channels: diffusers asserts these divisibilities.
    const int levels = int(dim_mult.size());
    for (int i = 0; i < levels; ++i) {
      const int64_t in = int64_t(base_dim) * (i == 0 ? 1 : dim_mult[size_t(i) - 1]);
      const int64_t out = int64_t(base_dim) * dim_mult[size_t(i)];
      const bool down = i != levels - 1;
      const int64_t f = (down && temporal_downsample[size_t(i)] ? 2 : 1) * (down ? 4 : 1);
      if ((in * f) % out != 0)
        bad_config("encoder level " + std::to_string(i) + ": AvgDown3D " + std::to_string(in) + " -> " +
                   std::to_string(out) + " channels does not divide");
    }
    // Decoder dims: dec_base · [mult[-1], reversed(mult)...]; DupUp3D(in, out) needs out·F % in == 0.
    std::vector<int64_t> dims{int64_t(decoder_base_dim) * dim_mult.back()};
    for (int i = levels - 1; i >= 0; --i) dims.push_back(int64_t(decoder_base_dim) * dim_mult[size_t(i)]);
    for (int i = 0; i + 1 < levels; ++i) {
      const int64_t f = (temporal_downsample[size_t(levels - 2 - i)] ? 2 : 1) * 4;
      if ((dims[size_t(i) + 1] * f) % dims[size_t(i)] != 0)
        bad_config("decoder level " + std::to_string(i) + ": DupUp3D " + std::to_string(dims[size_t(i)]) + " -> " +
                   std::to_string(dims[size_t(i) + 1]) + " channels does not divide");
    }
  }
}

Tensor normalize_latents(Backend& be, const Tensor& latents, const VaeConfig& cfg) {
  check_latents(latents, cfg, "normalize_latents");
  std::vector<float> inv(cfg.latents_std.size());
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0f / cfg.latents_std[i];
  Tensor mean = per_channel(be, cfg.latents_mean), scale = per_channel(be, inv);
  return ops::mul(be, ops::sub(be, on_backend(be, latents), mean), scale);
}

Tensor denormalize_latents(Backend& be, const Tensor& latents, const VaeConfig& cfg) {
  check_latents(latents, cfg, "denormalize_latents");
  // diffusers divides by (1/std) built in f32; multiplying by 1/(1/std) differs by at most an ulp.
  std::vector<float> back(cfg.latents_std.size());
  for (size_t i = 0; i < back.size(); ++i) back[i] = float(1.0 / double(1.0f / cfg.latents_std[i]));
  Tensor mean = per_channel(be, cfg.latents_mean), scale = per_channel(be, back);
  return ops::mul_add(be, mean, on_backend(be, latents), scale);
}

namespace {

// [3, T, H, W] (or [1, 3, T, H, W]) as [3, T·h, p, w, p]: rows (y = h·p + qh), cols (x = w·p + qw).
void check_patch(const Tensor& x, int p, const char* fn, bool to_pixels) {
  require(p >= 1, StatusCode::invalid_argument, std::string(fn) + ": patch size must be >= 1");
  require(x.defined() && (x.rank() == 4 || (x.rank() == 5 && x.dim(0) == 1)), StatusCode::invalid_argument,
          std::string(fn) + ": expected [C, T, H, W] (or batch 1), got " +
              (x.defined() ? x.shape().str() : std::string("an undefined tensor")));
  const int o = x.rank() - 4;
  if (to_pixels)
    require(x.dim(o) % (int64_t(p) * p) == 0, StatusCode::invalid_argument,
            std::string(fn) + ": " + std::to_string(x.dim(o)) + " channels are not a multiple of p² = " +
                std::to_string(p * p));
  else
    require(x.dim(o + 2) % p == 0 && x.dim(o + 3) % p == 0, StatusCode::invalid_argument,
            std::string(fn) + ": frame size " + std::to_string(x.dim(o + 2)) + "×" + std::to_string(x.dim(o + 3)) +
                " is not a multiple of the patch size " + std::to_string(p));
}

}  // namespace

Tensor vae_patchify(Backend& be, const Tensor& frames, int p) {
  check_patch(frames, p, "vae_patchify", false);
  if (p == 1) return frames;
  const int o = frames.rank() - 4;
  const int64_t c = frames.dim(o), t = frames.dim(o + 1), h = frames.dim(o + 2) / p, w = frames.dim(o + 3) / p;
  const std::array<int, 5> perm{0, 4, 2, 1, 3};  // [C, T·h, qh, w, qw] -> [C, qw, qh, T·h, w]
  Tensor y = ops::permute(be, frames.reshape({c, t * h, p, w, p}), perm);
  const int64_t pc = c * p * p;
  return o == 1 ? y.reshape({1, pc, t, h, w}) : y.reshape({pc, t, h, w});
}

Tensor vae_unpatchify(Backend& be, const Tensor& x, int p) {
  check_patch(x, p, "vae_unpatchify", true);
  if (p == 1) return x;
  const int o = x.rank() - 4;
  const int64_t c = x.dim(o) / (int64_t(p) * p), t = x.dim(o + 1), h = x.dim(o + 2), w = x.dim(o + 3);
  const std::array<int, 5> perm{0, 3, 2, 4, 1};  // [C, qw, qh, T·h, w] -> [C, T·h, qh, w, qw]
  Tensor y = ops::permute(be, x.reshape({c, p, p, t * h, w}), perm);
  return o == 1 ? y.reshape({1, c, t, h * p, w * p}) : y.reshape({c, t, h * p, w * p});
}

}  // namespace reel
