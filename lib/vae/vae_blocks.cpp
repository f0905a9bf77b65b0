// The Wan VAE's building blocks (reference/wan.md §2.2): residual block, mid-block attention,
// resample up/down (with the first-chunk cases of §2.4), AvgDown3D and DupUp3D.
#include <cmath>

#include "vae/vae_model.hpp"

namespace reel::vae {

namespace {

Tensor silu_inplace(Backend& be, Tensor x) {
  be.run(op::Unary{op::UnaryKind::silu, &x, &x});
  return x;
}

const Tensor* bias_of(const Tensor& b) { return b.defined() ? &b : nullptr; }

}  // namespace

// a += b (in place: a is a fresh activation no one else holds).
Tensor add_into(Backend& be, Tensor a, const Tensor& b) {
  be.run(op::Binary{op::BinaryKind::add, &a, &b, &a});
  return a;
}

namespace {

// Per-frame Conv2d(3×3, pad 1) after a nearest ×2 upsample of H and W.
Tensor spatial_up(Backend& be, const Resample& r, const Tensor& x) {
  Tensor up = ops::upsample_nearest(be, x, 2, 2);
  return ops::conv3d(be, up, r.conv_w, bias_of(r.conv_b), {1, 1, 1}, {0, 1, 1});
}

// Per-frame ZeroPad2d(right 1, bottom 1) then Conv2d(3×3, stride 2).
Tensor spatial_down(Backend& be, const Resample& r, const Tensor& x) {
  const std::array<int64_t, 5> before{0, 0, 0, 0, 0}, after{0, 0, 0, 1, 1};
  Tensor padded = ops::pad(be, x, before, after);
  return ops::conv3d(be, padded, r.conv_w, bias_of(r.conv_b), {1, 2, 2}, {0, 0, 0});
}

// time_conv output [1, 2C, m, H, W] (phase 0 = channels [0, C), phase 1 = [C, 2C)) ->
// [1, C, 2m, H, W] with frames phase0_0, phase1_0, phase0_1, ...
Tensor interleave_phases(Backend& be, const Tensor& y) {
  const int64_t c = y.dim(1) / 2, m = y.dim(2), h = y.dim(3), w = y.dim(4);
  const std::array<int, 4> perm{1, 2, 0, 3};
  Tensor t = ops::permute(be, y.reshape({2, c, m, h * w}), perm);
  return t.reshape({1, c, 2 * m, h, w});
}

// upsample3d's temporal step. Full-sequence meaning (§2.4): frame 0 passes through; every later
// frame i gives two frames from TimeConv(u'_{i−2}, u'_{i−1}, u_i) with u'_0 = 0. Frame 0 is
// replaced by a zero frame in the cache, so any chunking gives the same frames.
Tensor up3d_time(Backend& be, const Resample& r, const Tensor& x, FeatureCache& cache) {
  Tensor& slot = cache.slots.at(size_t(r.slot));
  if (!cache.first) return interleave_phases(be, causal_conv(be, r.time_conv, x, &cache));
  const int64_t n = x.dim(2);
  Tensor head = frames_of(be, x, 0, 1);
  slot = ops::full(be, head.shape(), head.dtype(), 0.0f);  // u'_0 = 0 (diffusers: the "Rep" marker)
  if (n == 1) return head;
  Tensor rest = frames_of(be, x, 1, n);
  Tensor doubled = interleave_phases(be, causal_conv(be, r.time_conv, rest, &cache));
  return concat_frames(be, head, doubled);
}

// downsample3d's temporal step. Full-sequence meaning: out_0 = y_0, out_j = TimeConv(y_{2j−2},
// y_{2j−1}, y_{2j}) (kernel 3, stride 2). The slot keeps the frames the next window starts with.
Tensor down3d_time(Backend& be, const Resample& r, const Tensor& y, FeatureCache& cache) {
  Tensor& slot = cache.slots.at(size_t(r.slot));
  Tensor head, buffer;
  if (cache.first) {
    head = ops::slice(be, y, 2, 0, 1);  // a copy: the slot may keep y, and callers add into outputs
    buffer = y;
  } else {
    buffer = concat_frames(be, slot, y);
  }
  const int64_t len = buffer.dim(2);
  const int64_t outputs = len >= 3 ? (len - 3) / 2 + 1 : 0;
  slot = frames_of(be, buffer, 2 * outputs, len);
  if (outputs == 0) {
    require(head.defined(), StatusCode::internal, "VAE downsample3d: a chunk produced no frames");
    return head;
  }
  Tensor windows = frames_of(be, buffer, 0, 2 * outputs + 1);
  Tensor out = ops::conv3d(be, windows, r.time_conv.weight, bias_of(r.time_conv.bias), {2, 1, 1}, {0, 0, 0});
  return head.defined() ? concat_frames(be, head, out) : out;
}

}  // namespace

Tensor rms_norm_silu(Backend& be, const Tensor& x, const Tensor& gamma) {
  return silu_inplace(be, ops::channel_l2_norm(be, x, gamma));
}

Tensor rms_norm_silu_inplace(Backend& be, Tensor x, const Tensor& gamma) {
  be.run(op::ChannelL2Norm{&x, &gamma, nullptr, &x});
  return silu_inplace(be, std::move(x));
}

Tensor res_block(Backend& be, const ResBlock& b, const Tensor& x, FeatureCache* cache) {
  // Each intermediate is handed on (moved), so at most x, one concatenated input and one output
  // are live during a conv; the second norm writes over the first conv's output.
  Tensor a = causal_conv(be, b.conv1, rms_norm_silu(be, x, b.norm1), cache);
  a = causal_conv(be, b.conv2, rms_norm_silu_inplace(be, std::move(a), b.norm2), cache);
  // The shortcut last: its output is not held during the two 3×3×3 convs.
  if (!b.has_shortcut) return add_into(be, std::move(a), x);
  return add_into(be, std::move(a), causal_conv(be, b.shortcut, x, nullptr));
}

// Per frame: q, k, v = 1×1 convs of the L2-normalised pixels; one head over the H·W pixels.
Tensor attn_block(Backend& be, const AttnBlock& b, const Tensor& x) {
  const int64_t c = x.dim(1), t = x.dim(2), h = x.dim(3), w = x.dim(4);
  Tensor qkv = ops::conv3d(be, ops::channel_l2_norm(be, x, b.norm), b.qkv_w, bias_of(b.qkv_b));
  const std::array<int, 4> to_tokens{0, 2, 3, 1};
  Tensor tokens = ops::permute(be, qkv.reshape({3, c, t, h * w}), to_tokens);  // [3, T, HW, C]
  qkv = Tensor();
  Tensor scores = ops::batch_matmul(be, tokens.select(0), tokens.select(1), /*transpose_b=*/true,
                                    float(1.0 / std::sqrt(double(c))));
  be.run(op::Softmax{&scores, &scores, 1.0f});  // in place: the H·W × H·W scores are the big buffer
  Tensor mixed = ops::batch_matmul(be, scores, tokens.select(2));  // [T, HW, C]
  scores = Tensor();
  tokens = Tensor();
  const std::array<int, 3> to_channels{2, 0, 1};
  Tensor y = ops::permute(be, mixed, to_channels).reshape({1, c, t, h, w});
  return add_into(be, ops::conv3d(be, y, b.proj_w, bias_of(b.proj_b)), x);
}

Tensor mid_block(Backend& be, const MidBlock& b, const Tensor& x, FeatureCache* cache) {
  Tensor y = res_block(be, b.res0, x, cache);
  y = attn_block(be, b.attn, y);
  return res_block(be, b.res1, y, cache);
}

Tensor resample(Backend& be, const Resample& r, const Tensor& x, FeatureCache* cache) {
  switch (r.kind) {
    case ResampleKind::none: return x;
    case ResampleKind::up2d: return spatial_up(be, r, x);
    case ResampleKind::up3d: {
      require(cache != nullptr, StatusCode::internal, "VAE upsample3d needs a feature cache");
      return spatial_up(be, r, up3d_time(be, r, x, *cache));
    }
    case ResampleKind::down2d: return spatial_down(be, r, x);
    case ResampleKind::down3d: {
      require(cache != nullptr, StatusCode::internal, "VAE downsample3d needs a feature cache");
      return down3d_time(be, r, spatial_down(be, r, x), *cache);
    }
  }
  return x;
}

// AvgDown3D: front-pad time to a multiple of ft, fold (it, iy, ix) into channels
// (c·F + (it·fs + iy)·fs + ix, F = ft·fs²) and average groups of C·F/out channels.
Tensor avg_down_3d(Backend& be, const Tensor& x_in, int out_channels, int ft, int fs) {
  Tensor x = x_in;
  const int64_t c = x.dim(1), h = x.dim(3), w = x.dim(4);
  const int64_t pad_t = (ft - x.dim(2) % ft) % ft;
  if (pad_t > 0) {
    Tensor zeros = ops::full(be, {1, c, pad_t, h, w}, x.dtype(), 0.0f);
    x = concat_frames(be, zeros, x);
  }
  const int64_t t = x.dim(2), t2 = t / ft, h2 = h / fs, w2 = w / fs, f = int64_t(ft) * fs * fs;
  const int64_t group = c * f / out_channels;
  Tensor y = x;
  if (fs > 1) {
    const std::array<int, 3> ix_front{0, 2, 1};
    y = ops::permute(be, y.reshape({c * t * h, w2, fs}), ix_front);  // [C, T, H, ix, W']
    const std::array<int, 5> iy_front{0, 2, 3, 1, 4};
    y = ops::permute(be, y.reshape({c * t, h2, fs, fs, w2}), iy_front);  // [C, T, iy, ix, H', W']
  }
  if (f > 1) {
    const std::array<int, 4> it_front{0, 2, 1, 3};
    y = ops::permute(be, y.reshape({c, t2, f, h2 * w2}), it_front);  // [C, (it, iy, ix), T', H'W']
  }
  if (group == 1) return y.reshape({1, out_channels, t2, h2, w2});
  Tensor ones = ops::full(be, {out_channels, 1, group}, y.dtype(), 1.0f);
  Tensor mean = ops::batch_matmul(be, ones, y.reshape({out_channels, group, t2 * h2 * w2}), false,
                                  float(1.0 / double(group)));
  return mean.reshape({1, out_channels, t2, h2, w2});
}

// DupUp3D: repeat each channel r = out·F/in times, unfold channels o·F + (it·fs + iy)·fs + ix
// into time and space; the first chunk drops its first ft − 1 frames.
Tensor dup_up_3d(Backend& be, const Tensor& x, int out_channels, int ft, int fs, bool first_chunk) {
  const int64_t c = x.dim(1), t = x.dim(2), h = x.dim(3), w = x.dim(4);
  const int64_t f = int64_t(ft) * fs * fs, repeats = out_channels * f / c;
  Tensor flat = x.reshape({c, 1, t * h * w});
  std::vector<const Tensor*> copies(size_t(repeats), &flat);
  Tensor y = repeats > 1 ? ops::concat(be, copies, 1) : flat;  // channel ci·r + j
  const std::array<int, 5> time_front{0, 3, 1, 2, 4};
  y = ops::permute(be, y.reshape({out_channels, ft, int64_t(fs) * fs, t, h * w}), time_front);  // [O, T, ft, iy·ix, HW]
  const std::array<int, 5> space_in{0, 3, 1, 4, 2};
  y = ops::permute(be, y.reshape({out_channels * t * ft, fs, fs, h, w}), space_in);  // [O·T·ft, H, iy, W, ix]
  y = y.reshape({1, out_channels, t * ft, h * fs, w * fs});
  if (first_chunk && ft > 1) y = frames_of(be, y, ft - 1, t * ft);
  return y;
}

}  // namespace reel::vae
