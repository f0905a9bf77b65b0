// Umt5Encoder: the umT5 encoder forward (wan.md §6) through the backend ops — pre-norm blocks
// of UNSCALED self-attention with a per-layer relative position bias and key mask, and a gated
// GELU-tanh feed-forward; RMS norms, no biases. Residual stream and attention math in f32;
// GEMM inputs in the weight dtype.
#include <cstring>
#include <limits>

#include "parallel.hpp"
#include "reel/ops.hpp"
#include "text/umt5_model.hpp"

namespace reel {

namespace {

// Embedding rows for ids[0, n) as f32 [n, D] on the CPU.
Tensor gather_embeddings(const Tensor& table, const int32_t* ids, int64_t n) {
  const int64_t vocab = table.dim(0), d = table.dim(1);
  for (int64_t i = 0; i < n; ++i)
    require(ids[i] >= 0 && ids[i] < vocab, StatusCode::invalid_argument,
            "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                " is outside the encoder's vocabulary [0, " + std::to_string(vocab) + ")");
  Tensor x = Tensor::empty({n, d}, DType::f32);
  const auto* base = static_cast<const std::byte*>(table.raw());
  const size_t row_bytes = size_t(d) * dtype_size(table.dtype());
  float* out = x.data<float>();
  parallel_for(n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      convert_elements(base + size_t(ids[i]) * row_bytes, table.dtype(), out + i * d, DType::f32, size_t(d));
  });
  return x;
}

// bias[h, i, j] = table[bucket(j − i), h] + key_bias[j]: the layer's position bias plus the
// attention mask (finfo(f32).min on padded keys, as transformers adds it), f32 [H, S, S].
Tensor attention_bias(const Umt5Config& c, const Tensor& table, const std::vector<int64_t>& bucket_of_offset,
                      const std::vector<float>& key_bias, int64_t s) {
  const int64_t heads = c.num_heads;
  Tensor bias = Tensor::empty({heads, s, s}, DType::f32);
  float* out = bias.data<float>();
  const float* tab = table.data<float>();
  parallel_for(heads * s, 8, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t h = row / s, i = row % s;
      float* o = out + row * s;
      for (int64_t j = 0; j < s; ++j) o[j] = tab[bucket_of_offset[size_t(j - i + s - 1)] * heads + h] + key_bias[size_t(j)];
    }
  });
  return bias;
}

Tensor to_dtype(Backend& be, const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : ops::convert(be, x, dtype); }

// [S, H·dk] → [H, S, dk]
Tensor split_heads(Backend& be, const Tensor& x, int64_t heads) {
  static constexpr int kPerm[3] = {1, 0, 2};
  return ops::permute(be, x.reshape({x.dim(0), heads, x.dim(1) / heads}), kPerm);
}

// The encoder on one sequence: x [S, D] f32 on the backend's device → final-normed [S, D] f32.
// key_bias[j]: 0 for a real key, finfo(f32).min for a padded one.
Tensor run_encoder(Backend& be, const text::Umt5Weights& w, Tensor x, const std::vector<float>& key_bias) {
  const Umt5Config& c = w.config;
  const int64_t s = x.dim(0);
  std::vector<int64_t> bucket_of_offset(size_t(2 * s - 1));
  for (int64_t off = -(s - 1); off <= s - 1; ++off)
    bucket_of_offset[size_t(off + s - 1)] = umt5_relative_bucket(off, c.num_buckets, c.max_distance);
  static constexpr int kMerge[3] = {1, 0, 2};
  for (const text::Umt5Layer& L : w.layers) {
    // Self-attention: softmax(q·kᵀ + bias) · v, no 1/√d_kv.
    const Tensor n = to_dtype(be, ops::rms_norm(be, x, &L.attn_norm, c.eps), w.dtype);
    const Tensor q = split_heads(be, ops::linear(be, n, L.q, nullptr, DType::f32), c.num_heads);
    const Tensor k = split_heads(be, ops::linear(be, n, L.k, nullptr, DType::f32), c.num_heads);
    const Tensor v = split_heads(be, ops::linear(be, n, L.v, nullptr, DType::f32), c.num_heads);
    Tensor bias = attention_bias(c, L.rel_bias, bucket_of_offset, key_bias, s);
    if (be.device().type != DeviceType::cpu) bias = bias.to(be.device());
    const Tensor scores = ops::add(be, ops::batch_matmul(be, q, k, /*transpose_b=*/true, 1.0f), bias);
    const Tensor attn = ops::batch_matmul(be, ops::softmax(be, scores), v);  // [H, S, dk]
    const Tensor merged = ops::permute(be, attn, kMerge).reshape({s, c.inner_dim()});
    x = ops::add(be, x, ops::linear(be, to_dtype(be, merged, w.dtype), L.o, nullptr, DType::f32));

    // Gated GELU-tanh feed-forward: wo(gelu(wi_0·n) ⊙ wi_1·n).
    const Tensor m = to_dtype(be, ops::rms_norm(be, x, &L.ffn_norm, c.eps), w.dtype);
    const Tensor gate = ops::gelu_tanh(be, ops::linear(be, m, L.wi_gate));
    const Tensor hidden = ops::mul(be, gate, ops::linear(be, m, L.wi_up));
    x = ops::add(be, x, ops::linear(be, to_dtype(be, hidden, L.wo.dtype()), L.wo, nullptr, DType::f32));
  }
  return ops::rms_norm(be, x, &w.final_norm, c.eps);
}

void check_device(const Backend& be, const text::Umt5Weights& w) {
  require(be.device() == w.device, StatusCode::invalid_argument,
          "the umT5 encoder's weights are on " + w.device.str() + " but the backend runs on " + be.device().str());
}

Tensor to_device(const Tensor& x, Device device) { return device.type == DeviceType::cpu ? x : x.to(device); }

}  // namespace

Umt5Encoder Umt5Encoder::load(const std::filesystem::path& path, const Umt5LoadOptions& options) {
  return load(WeightStore::open(path), options, text::umt5_config_json_for(path));
}

Umt5Encoder Umt5Encoder::load(const WeightStore& store, const Umt5LoadOptions& options,
                              const std::filesystem::path& config_json) {
  const text::Umt5ConfigHints hints =
      config_json.empty() ? text::Umt5ConfigHints{} : text::read_umt5_config_json(config_json);
  auto impl = std::make_shared<Impl>();
  impl->w = text::load_umt5_weights(store, options, hints);
  return Umt5Encoder(std::move(impl));
}

Umt5Encoder::Umt5Encoder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  require(impl_ != nullptr, StatusCode::invalid_argument, "Umt5Encoder: null weights");
}

const Umt5Config& Umt5Encoder::config() const { return impl_->w.config; }
DType Umt5Encoder::dtype() const { return impl_->w.dtype; }

Tensor Umt5Encoder::encode(Backend& be, std::span<const TokenizedPrompt> prompts) const {
  const text::Umt5Weights& w = impl_->w;
  check_device(be, w);
  require(!prompts.empty(), StatusCode::invalid_argument, "umT5 encode: no prompts");
  const int64_t len = int64_t(prompts[0].ids.size());
  for (size_t b = 0; b < prompts.size(); ++b) {
    const TokenizedPrompt& p = prompts[b];
    require(int64_t(p.ids.size()) == len && len >= 1, StatusCode::invalid_argument,
            "umT5 encode: prompt " + std::to_string(b) + " has " + std::to_string(p.ids.size()) +
                " ids but prompt 0 has " + std::to_string(len) + " (tokenize every prompt with the same max_length)");
    require(p.length >= 1 && p.length <= len, StatusCode::invalid_argument,
            "umT5 encode: prompt " + std::to_string(b) + " has length " + std::to_string(p.length) +
                ", expected 1 to " + std::to_string(len));
  }
  Tensor out = ops::full(be, {int64_t(prompts.size()), len, w.config.d_model}, DType::f32, 0.0f);
  for (size_t b = 0; b < prompts.size(); ++b) {
    // Only the valid ids: padded keys would be masked out and padded rows are zeroed anyway.
    const int64_t n = prompts[b].length;
    const Tensor x = to_device(gather_embeddings(w.embedding, prompts[b].ids.data(), n), be.device());
    const Tensor h = run_encoder(be, w, x, std::vector<float>(size_t(n), 0.0f));
    Tensor rows = out.select(int64_t(b)).slice(0, n);
    rows.copy_from(h);
  }
  return out;
}

Tensor Umt5Encoder::forward(Backend& be, const Tensor& ids, const Tensor& mask) const {
  const text::Umt5Weights& w = impl_->w;
  check_device(be, w);
  require(ids.defined() && ids.is_cpu() && ids.dtype() == DType::i32 && ids.rank() == 2 && ids.dim(1) >= 1,
          StatusCode::invalid_argument, "umT5 forward: ids must be a CPU i32 tensor [B, S] with S >= 1");
  require(mask.defined() && mask.is_cpu() && mask.dtype() == DType::i32 && mask.shape() == ids.shape(),
          StatusCode::invalid_argument,
          "umT5 forward: mask must be a CPU i32 tensor of the ids' shape " + ids.shape().str());
  const int64_t batch = ids.dim(0), s = ids.dim(1);
  Tensor out = be.empty({batch, s, w.config.d_model}, DType::f32);
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t* m = mask.data<int32_t>() + b * s;
    std::vector<float> key_bias(static_cast<size_t>(s));
    for (int64_t j = 0; j < s; ++j) key_bias[size_t(j)] = m[j] != 0 ? 0.0f : std::numeric_limits<float>::lowest();
    const Tensor x = to_device(gather_embeddings(w.embedding, ids.data<int32_t>() + b * s, s), be.device());
    Tensor row = out.select(b);
    row.copy_from(run_encoder(be, w, x, key_bias));
  }
  return out;
}

}  // namespace reel
